//! Points: ids, vectors (dense, sparse, multi; Cosine vectors normalised on write, as a real
//! server stores them), payload, filters, and the upsert / retrieve / scroll / count /
//! delete routes — enough to set up and inspect test data.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::collections::{update_result, VectorsSpec};
use super::errors::QError;
use super::http::Response;
use super::router::Ctx;
use super::util::{f32_json, parse_uuid};
use super::Shared;

/// A point id: integers sort before UUIDs, as Qdrant's `ExtendedPointId` does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PointId {
    Num(u64),
    Uuid(String),
}

impl PointId {
    pub fn to_json(&self) -> Value {
        match self {
            PointId::Num(n) => json!(n),
            PointId::Uuid(u) => json!(u),
        }
    }

    fn display(&self) -> String {
        match self {
            PointId::Num(n) => n.to_string(),
            PointId::Uuid(u) => u.clone(),
        }
    }

    /// From JSON, with Qdrant's message for anything else.
    pub fn parse(value: &Value) -> Result<PointId, QError> {
        let bad = |shown: String| {
            QError::format(
                "JSON body",
                format!(
                    "value {shown} is not a valid point ID, valid values are either an unsigned integer or a UUID"
                ),
            )
        };
        match value {
            Value::Number(n) => n
                .as_u64()
                .map(PointId::Num)
                .ok_or_else(|| bad(n.to_string())),
            Value::String(s) => parse_uuid(s)
                .map(PointId::Uuid)
                .ok_or_else(|| bad(s.clone())),
            other => Err(bad(other.to_string())),
        }
    }

    /// From a path segment (`GET /collections/{c}/points/{id}`).
    pub fn parse_str(text: &str) -> Option<PointId> {
        text.parse::<u64>()
            .ok()
            .map(PointId::Num)
            .or_else(|| parse_uuid(text).map(PointId::Uuid))
    }
}

/// One named vector of a point.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Vector {
    Dense(Vec<f32>),
    Multi(Vec<Vec<f32>>),
    Sparse { indices: Vec<u32>, values: Vec<f32> },
}

impl Vector {
    pub fn is_sparse(&self) -> bool {
        matches!(self, Vector::Sparse { .. })
    }

    fn to_json(&self) -> Value {
        let dense = |v: &[f32]| Value::Array(v.iter().map(|x| f32_json(*x)).collect());
        match self {
            Vector::Dense(v) => dense(v),
            Vector::Multi(vs) => Value::Array(vs.iter().map(|v| dense(v)).collect()),
            Vector::Sparse { indices, values } => json!({
                "indices": indices,
                "values": values.iter().map(|x| f32_json(*x)).collect::<Vec<_>>(),
            }),
        }
    }

    /// From the JSON of one vector (a dense array, an array of arrays, or
    /// `{"indices", "values"}`).
    fn parse(value: &Value) -> Result<Vector, QError> {
        let floats = |v: &Value| -> Result<Vec<f32>, QError> {
            v.as_array()
                .ok_or_else(|| {
                    QError::format(
                        "JSON body",
                        format!("invalid type: {v}, expected a sequence"),
                    )
                })?
                .iter()
                .map(|x| {
                    x.as_f64().map(|f| f as f32).ok_or_else(|| {
                        QError::format("JSON body", format!("invalid type: {x}, expected f32"))
                    })
                })
                .collect()
        };
        match value {
            Value::Array(items) if items.iter().all(Value::is_array) && !items.is_empty() => Ok(
                Vector::Multi(items.iter().map(floats).collect::<Result<_, _>>()?),
            ),
            Value::Array(_) => Ok(Vector::Dense(floats(value)?)),
            Value::Object(obj) if obj.contains_key("indices") && obj.contains_key("values") => {
                let indices = obj["indices"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|i| i.as_u64().and_then(|i| u32::try_from(i).ok()))
                            .collect::<Option<Vec<u32>>>()
                    })
                    .unwrap_or(None)
                    .ok_or_else(|| {
                        QError::format("JSON body", "invalid sparse vector indices, expected u32")
                    })?;
                let values = floats(&obj["values"])?;
                if indices.len() != values.len() {
                    return Err(QError::validation(
                        "JSON body",
                        "values: must be the same length as indices",
                    ));
                }
                if indices.iter().collect::<BTreeSet<_>>().len() != indices.len() {
                    return Err(QError::validation("JSON body", "indices: must be unique"));
                }
                Ok(Vector::Sparse { indices, values })
            }
            other => Err(QError::format(
                "JSON body",
                format!("data did not match any variant of untagged enum VectorStruct: {other}"),
            )),
        }
    }
}

/// A stored point.
#[derive(Clone, Debug)]
pub(crate) struct Point {
    pub id: PointId,
    /// By vector name; `""` is the unnamed vector.
    pub vectors: BTreeMap<String, Vector>,
    pub payload: Map<String, Value>,
}

/// Which payload to return.
#[derive(Clone, Debug)]
pub(crate) enum WithPayload {
    None,
    All,
    Include(Vec<String>),
    Exclude(Vec<String>),
}

/// Which vectors to return.
#[derive(Clone, Debug)]
pub(crate) enum WithVector {
    None,
    All,
    Only(Vec<String>),
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

impl WithPayload {
    fn parse(v: Option<&Value>, default: bool) -> Result<WithPayload, QError> {
        let bad = || {
            QError::format(
                "JSON body",
                "data did not match any variant of untagged enum WithPayloadInterface",
            )
        };
        Ok(match v {
            None | Some(Value::Null) => {
                if default {
                    WithPayload::All
                } else {
                    WithPayload::None
                }
            }
            Some(Value::Bool(true)) => WithPayload::All,
            Some(Value::Bool(false)) => WithPayload::None,
            Some(v @ Value::Array(_)) => WithPayload::Include(strings(v).ok_or_else(bad)?),
            Some(Value::Object(o)) if o.contains_key("include") => {
                WithPayload::Include(strings(&o["include"]).ok_or_else(bad)?)
            }
            Some(Value::Object(o)) if o.contains_key("exclude") => {
                WithPayload::Exclude(strings(&o["exclude"]).ok_or_else(bad)?)
            }
            Some(_) => return Err(bad()),
        })
    }
}

impl WithVector {
    fn parse(v: Option<&Value>) -> Result<WithVector, QError> {
        Ok(match v {
            None | Some(Value::Null) | Some(Value::Bool(false)) => WithVector::None,
            Some(Value::Bool(true)) => WithVector::All,
            Some(v @ Value::Array(_)) => WithVector::Only(strings(v).ok_or_else(|| {
                QError::format(
                    "JSON body",
                    "data did not match any variant of untagged enum WithVector",
                )
            })?),
            Some(_) => {
                return Err(QError::format(
                    "JSON body",
                    "data did not match any variant of untagged enum WithVector",
                ))
            }
        })
    }
}

impl Point {
    /// As the API writes a point: `id`, then `payload` and `vector` when asked for.
    pub fn to_json(&self, with_payload: &WithPayload, with_vector: &WithVector) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), self.id.to_json());
        let payload = match with_payload {
            WithPayload::None => None,
            WithPayload::All => Some(self.payload.clone()),
            WithPayload::Include(keys) => Some(
                self.payload
                    .iter()
                    .filter(|(k, _)| keys.iter().any(|want| want == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            WithPayload::Exclude(keys) => Some(
                self.payload
                    .iter()
                    .filter(|(k, _)| !keys.iter().any(|no| no == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        };
        if let Some(payload) = payload {
            out.insert("payload".into(), Value::Object(payload));
        }
        let vector = match with_vector {
            WithVector::None => None,
            WithVector::All => Some(self.vectors_json(|_| true)),
            WithVector::Only(names) => Some(self.vectors_json(|n| names.iter().any(|w| w == n))),
        };
        if let Some(vector) = vector {
            out.insert("vector".into(), vector);
        }
        Value::Object(out)
    }

    fn vectors_json(&self, wanted: impl Fn(&str) -> bool) -> Value {
        if let (Some(v), 1) = (self.vectors.get(""), self.vectors.len()) {
            return v.to_json();
        }
        Value::Object(
            self.vectors
                .iter()
                .filter(|(name, _)| wanted(name))
                .map(|(name, v)| (name.clone(), v.to_json()))
                .collect(),
        )
    }

    /// The line of a snapshot's `points.json` (exact: `f32` values round-trip).
    pub fn to_storage(&self) -> Value {
        json!({
            "id": self.id.to_json(),
            "vectors": self.vectors.iter().map(|(n, v)| (n.clone(), v.to_json())).collect::<Map<_, _>>(),
            "payload": self.payload,
        })
    }

    /// Back from [`to_storage`](Point::to_storage).
    pub fn from_storage(value: &Value) -> Result<Point, String> {
        let id = PointId::parse(&value["id"]).map_err(|e| e.message)?;
        let mut vectors = BTreeMap::new();
        for (name, v) in value["vectors"].as_object().ok_or("no vectors")? {
            vectors.insert(name.clone(), Vector::parse(v).map_err(|e| e.message)?);
        }
        let payload = value["payload"].as_object().cloned().unwrap_or_default();
        Ok(Point {
            id,
            vectors,
            payload,
        })
    }
}

/// The values at a payload key (`a.b`, `a[].b`), arrays flattened, nulls left out.
pub(crate) fn payload_values<'a>(payload: &'a Map<String, Value>, key: &str) -> Vec<&'a Value> {
    fn walk<'a>(value: &'a Value, parts: &[&str], out: &mut Vec<&'a Value>) {
        match parts.split_first() {
            None => match value {
                Value::Null => {}
                Value::Array(items) => out.extend(items.iter().filter(|v| !v.is_null())),
                v => out.push(v),
            },
            Some((part, rest)) => {
                let (name, flatten) = match part.strip_suffix("[]") {
                    Some(name) => (name, true),
                    None => (*part, false),
                };
                let next = |v: &'a Value, out: &mut Vec<&'a Value>| {
                    if let Some(child) = v.get(name) {
                        if flatten {
                            if let Value::Array(items) = child {
                                for item in items {
                                    walk(item, rest, out);
                                }
                            }
                        } else {
                            walk(child, rest, out);
                        }
                    }
                };
                match value {
                    Value::Array(items) => items.iter().for_each(|item| next(item, out)),
                    v => next(v, out),
                }
            }
        }
    }
    let mut out = Vec::new();
    let parts: Vec<&str> = key.split('.').collect();
    // The first step looks into the map itself, the rest into values.
    if let Some((first, rest)) = parts.split_first() {
        let (name, flatten) = match first.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (*first, false),
        };
        if let Some(top) = payload.get(name) {
            if flatten {
                if let Value::Array(items) = top {
                    for item in items {
                        walk(item, rest, &mut out);
                    }
                }
            } else {
                walk(top, rest, &mut out);
            }
        }
    }
    out
}

// --- filters ------------------------------------------------------------------------

fn conditions(value: Option<&Value>) -> Vec<&Value> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
    }
}

/// Whether a point passes a filter (`must`, `should`, `must_not`, `min_should`).
pub(crate) fn matches(filter: &Value, point: &Point) -> Result<bool, QError> {
    if filter.is_null() {
        return Ok(true);
    }
    if !filter.is_object() {
        return Err(QError::format(
            "JSON body",
            format!("invalid type: {filter}, expected struct Filter"),
        ));
    }
    for c in conditions(filter.get("must")) {
        if !condition(c, point)? {
            return Ok(false);
        }
    }
    let should = conditions(filter.get("should"));
    if !should.is_empty() {
        let mut any = false;
        for c in should {
            any |= condition(c, point)?;
        }
        if !any {
            return Ok(false);
        }
    }
    for c in conditions(filter.get("must_not")) {
        if condition(c, point)? {
            return Ok(false);
        }
    }
    if let Some(min) = filter.get("min_should").filter(|m| !m.is_null()) {
        let needed = min["min_count"].as_u64().unwrap_or(1) as usize;
        let mut hits = 0;
        for c in conditions(min.get("conditions")) {
            hits += usize::from(condition(c, point)?);
        }
        if hits < needed {
            return Ok(false);
        }
    }
    Ok(true)
}

fn numbers_cmp(range: &Value, x: f64) -> bool {
    let bound = |k: &str| range.get(k).and_then(Value::as_f64);
    bound("gt").is_none_or(|b| x > b)
        && bound("gte").is_none_or(|b| x >= b)
        && bound("lt").is_none_or(|b| x < b)
        && bound("lte").is_none_or(|b| x <= b)
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

fn condition(c: &Value, point: &Point) -> Result<bool, QError> {
    let unknown = || {
        QError::format(
            "JSON body",
            "data did not match any variant of untagged enum Condition",
        )
    };
    let Some(obj) = c.as_object() else {
        return Err(unknown());
    };
    if let Some(key) = obj.get("key").and_then(Value::as_str) {
        let values = payload_values(&point.payload, key);
        if let Some(m) = obj.get("match") {
            if let Some(v) = m.get("value") {
                return Ok(values.iter().any(|x| same_value(x, v)));
            }
            if let Some(any) = m.get("any").and_then(Value::as_array) {
                return Ok(values.iter().any(|x| any.iter().any(|v| same_value(x, v))));
            }
            if let Some(except) = m.get("except").and_then(Value::as_array) {
                return Ok(values
                    .iter()
                    .all(|x| !except.iter().any(|v| same_value(x, v))));
            }
            if let Some(text) = m.get("text").and_then(Value::as_str) {
                return Ok(values
                    .iter()
                    .any(|x| x.as_str().is_some_and(|s| s.contains(text))));
            }
            return Err(unknown());
        }
        if let Some(range) = obj.get("range") {
            return Ok(values
                .iter()
                .any(|x| x.as_f64().is_some_and(|x| numbers_cmp(range, x))));
        }
        if let Some(count) = obj.get("values_count") {
            return Ok(numbers_cmp(count, values.len() as f64));
        }
        return Err(unknown());
    }
    if let Some(inner) = obj.get("is_empty") {
        let key = inner["key"].as_str().ok_or_else(unknown)?;
        return Ok(payload_values(&point.payload, key).is_empty());
    }
    if let Some(inner) = obj.get("is_null") {
        let key = inner["key"].as_str().ok_or_else(unknown)?;
        return Ok(point.payload.get(key).is_some_and(Value::is_null));
    }
    if let Some(ids) = obj.get("has_id").and_then(Value::as_array) {
        let ids: Vec<PointId> = ids.iter().map(PointId::parse).collect::<Result<_, _>>()?;
        return Ok(ids.contains(&point.id));
    }
    if let Some(name) = obj.get("has_vector").and_then(Value::as_str) {
        return Ok(point.vectors.contains_key(name));
    }
    if let Some(nested) = obj.get("nested") {
        let key = nested["key"].as_str().ok_or_else(unknown)?;
        for item in payload_values(&point.payload, key) {
            if let Some(payload) = item.as_object() {
                let element = Point {
                    id: point.id.clone(),
                    vectors: BTreeMap::new(),
                    payload: payload.clone(),
                };
                if matches(&nested["filter"], &element)? {
                    return Ok(true);
                }
            }
        }
        return Ok(false);
    }
    if obj.contains_key("must") || obj.contains_key("should") || obj.contains_key("must_not") {
        return matches(c, point);
    }
    Err(unknown())
}

// --- upsert -------------------------------------------------------------------------

/// A point from an upsert body, not yet checked against the collection.
struct NewPoint {
    id: PointId,
    vectors: BTreeMap<String, Vector>,
    payload: Map<String, Value>,
}

fn missing(field: &str) -> QError {
    QError::format("JSON body", format!("missing field `{field}`"))
}

fn vectors_of(value: &Value) -> Result<BTreeMap<String, Vector>, QError> {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(name, v)| Ok((name.clone(), Vector::parse(v)?)))
            .collect(),
        other => Ok(BTreeMap::from([(String::new(), Vector::parse(other)?)])),
    }
}

fn payload_of(value: Option<&Value>) -> Result<Map<String, Value>, QError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(other) => Err(QError::format(
            "JSON body",
            format!("invalid type: {other}, expected a map"),
        )),
    }
}

/// The points of `{"points": […]}` or `{"batch": {"ids", "vectors", "payloads"}}`.
fn parse_upsert(body: &Value) -> Result<Vec<NewPoint>, QError> {
    let untagged = || {
        QError::format(
            "JSON body",
            "data did not match any variant of untagged enum PointInsertOperations",
        )
    };
    if let Some(points) = body.get("points") {
        let points = points.as_array().ok_or_else(untagged)?;
        return points
            .iter()
            .map(|p| {
                let obj = p.as_object().ok_or_else(untagged)?;
                let id = PointId::parse(obj.get("id").ok_or_else(|| missing("id"))?)?;
                let vectors = vectors_of(obj.get("vector").ok_or_else(|| missing("vector"))?)?;
                let payload = payload_of(obj.get("payload"))?;
                Ok(NewPoint {
                    id,
                    vectors,
                    payload,
                })
            })
            .collect();
    }
    if let Some(batch) = body.get("batch") {
        let ids = batch
            .get("ids")
            .ok_or_else(|| missing("ids"))?
            .as_array()
            .ok_or_else(untagged)?
            .iter()
            .map(PointId::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let n = ids.len();
        let vectors = batch.get("vectors").ok_or_else(|| missing("vectors"))?;
        let mut per_point: Vec<BTreeMap<String, Vector>> = vec![BTreeMap::new(); n];
        let wrong_len = || QError::bad_input("number of ids and vectors must be equal");
        match vectors {
            Value::Array(list) => {
                if list.len() != n {
                    return Err(wrong_len());
                }
                for (slot, v) in per_point.iter_mut().zip(list) {
                    slot.insert(String::new(), Vector::parse(v)?);
                }
            }
            Value::Object(named) => {
                for (name, list) in named {
                    let list = list.as_array().ok_or_else(untagged)?;
                    if list.len() != n {
                        return Err(wrong_len());
                    }
                    for (slot, v) in per_point.iter_mut().zip(list) {
                        slot.insert(name.clone(), Vector::parse(v)?);
                    }
                }
            }
            _ => return Err(untagged()),
        }
        let payloads: Vec<Map<String, Value>> = match batch.get("payloads") {
            None | Some(Value::Null) => vec![Map::new(); n],
            Some(Value::Array(list)) if list.len() == n => list
                .iter()
                .map(|p| payload_of(Some(p)))
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(QError::bad_input(
                    "number of ids and payloads must be equal",
                ))
            }
        };
        return Ok(ids
            .into_iter()
            .zip(per_point)
            .zip(payloads)
            .map(|((id, vectors), payload)| NewPoint {
                id,
                vectors,
                payload,
            })
            .collect());
    }
    Err(untagged())
}

/// Checks a point against the collection's vectors and normalises Cosine vectors.
fn prepare(spec: &VectorsSpec, point: NewPoint) -> Result<Point, QError> {
    let mut vectors = BTreeMap::new();
    for (name, vector) in point.vectors {
        let vector = match vector {
            Vector::Sparse { .. } => {
                if !spec.sparse.contains(&name) {
                    return Err(QError::bad_input(format!(
                        "Not existing vector name error: {name}"
                    )));
                }
                vector
            }
            Vector::Dense(mut v) => {
                let Some(dense) = spec.dense.get(&name) else {
                    return Err(QError::bad_input(format!(
                        "Not existing vector name error: {name}"
                    )));
                };
                if dense.multivector {
                    return Err(QError::bad_input(
                        "Conversion between multi and regular vectors failed",
                    ));
                }
                if v.len() != dense.size {
                    return Err(QError::bad_input(format!(
                        "Vector dimension error: expected dim: {}, got {}",
                        dense.size,
                        v.len()
                    )));
                }
                if dense.distance == "Cosine" {
                    normalise(&mut v);
                }
                Vector::Dense(v)
            }
            Vector::Multi(mut vs) => {
                let Some(dense) = spec.dense.get(&name) else {
                    return Err(QError::bad_input(format!(
                        "Not existing vector name error: {name}"
                    )));
                };
                if !dense.multivector {
                    return Err(QError::bad_input(
                        "Conversion between multi and regular vectors failed",
                    ));
                }
                for v in &mut vs {
                    if v.len() != dense.size {
                        return Err(QError::bad_input(format!(
                            "Vector dimension error: expected dim: {}, got {}",
                            dense.size,
                            v.len()
                        )));
                    }
                    if dense.distance == "Cosine" {
                        normalise(v);
                    }
                }
                Vector::Multi(vs)
            }
        };
        vectors.insert(name, vector);
    }
    Ok(Point {
        id: point.id,
        vectors,
        payload: point.payload,
    })
}

/// Qdrant's cosine preprocessing: divide by the L2 norm, computed in `f32`.
fn normalise(v: &mut [f32]) {
    let length = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if length < f32::EPSILON {
        return;
    }
    for x in v.iter_mut() {
        *x /= length;
    }
}

/// Applies parsed points; with `wait=false` a point that does not fit is dropped silently,
/// as the real server drops it after answering `acknowledged`.
fn apply_upsert(
    shared: &Shared,
    name: &str,
    points: Vec<NewPoint>,
    wait: bool,
) -> Result<Value, QError> {
    let mut state = shared.state();
    let collection = state
        .collections
        .get_mut(name)
        .ok_or_else(|| QError::no_collection(name))?;
    let op = collection.next_op();
    let spec = collection.spec();
    let prepared: Result<Vec<Point>, QError> =
        points.into_iter().map(|p| prepare(&spec, p)).collect();
    match prepared {
        Ok(points) => {
            for p in points {
                collection.points.insert(p.id.clone(), p);
            }
        }
        Err(e) if wait => return Err(e),
        Err(_) => {}
    }
    Ok(update_result(op, wait))
}

/// `PUT /collections/{name}/points` (default `wait=false`).
pub(crate) fn upsert(ctx: &Ctx, name: &str) -> Response {
    let result = (|| {
        let body: Value = ctx.json()?;
        let points = parse_upsert(&body)?;
        let query = ctx.query();
        let wait = query.wait(false)?;
        query.variant("ordering", &["weak", "medium", "strong"])?;
        ctx.access.require_manage()?;
        apply_upsert(ctx.shared, name, points, wait)
    })();
    ctx.reply(result)
}

/// The test helper behind [`FakeQdrant::upsert`](super::FakeQdrant::upsert).
pub(crate) fn upsert_value(shared: &Shared, name: &str, body: &Value) -> Result<(), QError> {
    let points = parse_upsert(body)?;
    apply_upsert(shared, name, points, true).map(|_| ())
}

// --- reads --------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename = "PointRequest")]
struct PointRequest {
    ids: Vec<Value>,
    with_payload: Option<Value>,
    with_vector: Option<Value>,
}

/// `POST /collections/{name}/points`: the points that exist, missing ids left out.
pub(crate) fn retrieve(ctx: &Ctx, name: &str) -> Response {
    let result = (|| {
        let body: PointRequest = ctx.json()?;
        let ids = body
            .ids
            .iter()
            .map(PointId::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let with_payload = WithPayload::parse(body.with_payload.as_ref(), true)?;
        let with_vector = WithVector::parse(body.with_vector.as_ref())?;
        let state = ctx.shared.state();
        let collection = state
            .collections
            .get(name)
            .ok_or_else(|| QError::no_collection(name))?;
        let mut seen = BTreeSet::new();
        let points: Vec<Value> = ids
            .iter()
            .filter(|id| seen.insert((*id).clone()))
            .filter_map(|id| collection.points.get(id))
            .map(|p| p.to_json(&with_payload, &with_vector))
            .collect();
        Ok(Value::Array(points))
    })();
    ctx.reply(result)
}

/// `GET /collections/{name}/points/{id}`: vector and payload included.
pub(crate) fn get_point(ctx: &Ctx, name: &str, id: &str) -> Response {
    let result = (|| {
        let point_id = PointId::parse_str(id)
            .ok_or_else(|| QError::bad_input(format!("Can not recognize \"{id}\" as point id")))?;
        let state = ctx.shared.state();
        let collection = state
            .collections
            .get(name)
            .ok_or_else(|| QError::no_collection(name))?;
        collection
            .points
            .get(&point_id)
            .map(|p| p.to_json(&WithPayload::All, &WithVector::All))
            .ok_or_else(|| {
                QError::not_found(format!(
                    "Point with id {} does not exists!",
                    point_id.display()
                ))
            })
    })();
    ctx.reply(result)
}

#[derive(Deserialize)]
#[serde(rename = "ScrollRequest")]
struct ScrollRequest {
    offset: Option<Value>,
    limit: Option<usize>,
    filter: Option<Value>,
    with_payload: Option<Value>,
    with_vector: Option<Value>,
    order_by: Option<Value>,
}

/// `POST /collections/{name}/points/scroll`: ids in order from `offset`, `limit` (10) at a
/// time, `next_page_offset` the next id or null.
pub(crate) fn scroll(ctx: &Ctx, name: &str) -> Response {
    let result = (|| {
        let body: ScrollRequest = ctx.json()?;
        let limit = body.limit.unwrap_or(10);
        if limit == 0 {
            return Err(QError::validation(
                "JSON body",
                "scroll_request.limit: value 0 invalid, must be 1 or larger",
            ));
        }
        let offset = match body.offset.as_ref().filter(|o| !o.is_null()) {
            Some(o) => Some(PointId::parse(o)?),
            None => None,
        };
        let with_payload = WithPayload::parse(body.with_payload.as_ref(), true)?;
        let with_vector = WithVector::parse(body.with_vector.as_ref())?;
        if body.order_by.as_ref().is_some_and(|o| !o.is_null()) {
            return Err(QError::bad_request(
                "order_by is not supported by this fake Qdrant",
            ));
        }
        let filter = body.filter.unwrap_or(Value::Null);
        let state = ctx.shared.state();
        let collection = state
            .collections
            .get(name)
            .ok_or_else(|| QError::no_collection(name))?;
        let mut page = Vec::new();
        let mut next = Value::Null;
        let candidates: Box<dyn Iterator<Item = &Point>> = match &offset {
            Some(o) => Box::new(collection.points.range(o.clone()..).map(|(_, p)| p)),
            None => Box::new(collection.points.values()),
        };
        for point in candidates {
            if !matches(&filter, point)? {
                continue;
            }
            if page.len() == limit {
                next = point.id.to_json();
                break;
            }
            page.push(point.to_json(&with_payload, &with_vector));
        }
        Ok(json!({"points": page, "next_page_offset": next}))
    })();
    ctx.reply(result)
}

#[derive(Deserialize)]
#[serde(rename = "CountRequest")]
struct CountRequest {
    filter: Option<Value>,
    #[allow(dead_code)]
    exact: Option<bool>,
}

/// `POST /collections/{name}/points/count` (always exact here).
pub(crate) fn count(ctx: &Ctx, name: &str) -> Response {
    let result = (|| {
        let body: CountRequest = ctx.json()?;
        let filter = body.filter.unwrap_or(Value::Null);
        let state = ctx.shared.state();
        let collection = state
            .collections
            .get(name)
            .ok_or_else(|| QError::no_collection(name))?;
        let mut n = 0usize;
        for p in collection.points.values() {
            n += usize::from(matches(&filter, p)?);
        }
        Ok(json!({ "count": n }))
    })();
    ctx.reply(result)
}

/// `POST /collections/{name}/points/delete`: `{"points": [ids]}` or `{"filter": …}`.
pub(crate) fn delete(ctx: &Ctx, name: &str) -> Response {
    let result = (|| {
        let body: Value = ctx.json()?;
        enum Selector {
            Ids(Vec<PointId>),
            Filter(Value),
        }
        let selector = if let Some(ids) = body.get("points").and_then(Value::as_array) {
            Selector::Ids(ids.iter().map(PointId::parse).collect::<Result<_, _>>()?)
        } else if let Some(filter) = body.get("filter").filter(|f| f.is_object()) {
            Selector::Filter(filter.clone())
        } else {
            return Err(QError::format(
                "JSON body",
                "data did not match any variant of untagged enum PointsSelector",
            ));
        };
        let query = ctx.query();
        let wait = query.wait(false)?;
        query.variant("ordering", &["weak", "medium", "strong"])?;
        ctx.access.require_manage()?;
        let mut state = ctx.shared.state();
        let collection = state
            .collections
            .get_mut(name)
            .ok_or_else(|| QError::no_collection(name))?;
        let op = collection.next_op();
        match selector {
            Selector::Ids(ids) => {
                for id in ids {
                    collection.points.remove(&id);
                }
            }
            Selector::Filter(filter) => {
                let mut doomed = Vec::new();
                for p in collection.points.values() {
                    if matches(&filter, p)? {
                        doomed.push(p.id.clone());
                    }
                }
                for id in doomed {
                    collection.points.remove(&id);
                }
            }
        }
        Ok(update_result(op, wait))
    })();
    ctx.reply(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_vectors_are_stored_as_the_real_server_stores_them() {
        // `upsert-wait-true` point 1 and what `scroll-with-vectors` returned for it.
        let mut v = vec![
            0.2789f32, -0.95, -0.4499, -0.5536, 0.4729, 0.3534, 0.7844, -0.8261,
        ];
        normalise(&mut v);
        let written: Vec<String> = v.iter().map(|x| f32_json(*x).to_string()).collect();
        let recorded = [
            "0.15750733",
            "-0.53650755",
            "-0.2540787",
            "-0.31264272",
            "0.26706782",
            "0.1995808",
            "0.4429858",
            "-0.4665357",
        ];
        assert_eq!(written, recorded);
    }

    #[test]
    fn payload_paths() {
        let payload = json!({"a": {"b": [1, 2]}, "c": [{"d": "x"}, {"d": "y"}], "n": null});
        let payload = payload.as_object().unwrap();
        assert_eq!(payload_values(payload, "a.b").len(), 2);
        assert_eq!(payload_values(payload, "c[].d").len(), 2);
        assert_eq!(payload_values(payload, "c.d").len(), 2);
        assert!(payload_values(payload, "n").is_empty());
        assert!(payload_values(payload, "zz").is_empty());
    }
}
