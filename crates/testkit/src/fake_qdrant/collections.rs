//! Collections: config as Qdrant writes it, create (with serde's own messages for bad
//! bodies, as Qdrant's typed extractor gives them), info, list, delete, payload indexes.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::errors::QError;
use super::http::Response;
use super::points::{payload_values, Point, PointId};
use super::router::{validate_collection_name, Ctx};
use super::Shared;

/// One collection's state.
#[derive(Clone, Debug)]
pub(crate) struct Collection {
    /// `{"params", "hnsw_config", "optimizer_config", "wal_config", "quantization_config"}`,
    /// as `GET /collections/{name}` shows it and `config.json` in a snapshot holds it.
    pub config: Value,
    pub points: BTreeMap<PointId, Point>,
    /// Payload indexes: field → schema as it was given (`"keyword"` or an object).
    pub indexes: BTreeMap<String, Value>,
    /// The last operation id.
    pub op_seq: u64,
}

/// A dense vector's parameters.
#[derive(Clone, Debug)]
pub(crate) struct DenseSpec {
    pub size: usize,
    pub distance: String,
    pub multivector: bool,
}

/// What vectors a collection takes, read from its config.
#[derive(Clone, Debug, Default)]
pub(crate) struct VectorsSpec {
    /// Dense vectors by name; `""` is the unnamed vector of a single-vector collection.
    pub dense: BTreeMap<String, DenseSpec>,
    pub sparse: BTreeSet<String>,
}

impl VectorsSpec {
    fn from_config(config: &Value) -> VectorsSpec {
        let params = &config["params"];
        let mut spec = VectorsSpec::default();
        let dense_of = |v: &Value| DenseSpec {
            size: v["size"].as_u64().unwrap_or(0) as usize,
            distance: v["distance"].as_str().unwrap_or("").to_owned(),
            multivector: v.get("multivector_config").is_some_and(|m| !m.is_null()),
        };
        match &params["vectors"] {
            Value::Object(map) if map.contains_key("size") => {
                spec.dense
                    .insert(String::new(), dense_of(&params["vectors"]));
            }
            Value::Object(map) => {
                for (name, v) in map {
                    spec.dense.insert(name.clone(), dense_of(v));
                }
            }
            _ => {}
        }
        if let Some(sparse) = params["sparse_vectors"].as_object() {
            spec.sparse.extend(sparse.keys().cloned());
        }
        spec
    }
}

impl Collection {
    pub fn new(config: Value) -> Collection {
        Collection {
            config,
            points: BTreeMap::new(),
            indexes: BTreeMap::new(),
            op_seq: 0,
        }
    }

    pub fn spec(&self) -> VectorsSpec {
        VectorsSpec::from_config(&self.config)
    }

    /// The next operation id.
    pub fn next_op(&mut self) -> u64 {
        self.op_seq += 1;
        self.op_seq
    }

    /// `payload_schema`: each index's type and how many points have a value for it.
    pub fn payload_schema(&self) -> Value {
        let mut schema = Map::new();
        for (field, field_schema) in &self.indexes {
            let points = self
                .points
                .values()
                .filter(|p| !payload_values(&p.payload, field).is_empty())
                .count();
            let mut info = Map::new();
            info.insert("data_type".into(), json!(index_type(field_schema)));
            // An object schema is `PayloadSchemaParams`, shown as given (`type` included).
            if let Value::Object(params) = field_schema {
                info.insert("params".into(), Value::Object(params.clone()));
            }
            info.insert("points".into(), json!(points));
            schema.insert(field.clone(), Value::Object(info));
        }
        Value::Object(schema)
    }

    /// What `GET /collections/{name}` answers as `result`.
    pub fn info(&self) -> Value {
        // Sparse vectors are indexed as they are written; dense ones only past the
        // indexing threshold (10000), which tests do not reach.
        let indexed: usize = self
            .points
            .values()
            .map(|p| p.vectors.values().filter(|v| v.is_sparse()).count())
            .sum();
        json!({
            "status": "green",
            "optimizer_status": "ok",
            "indexed_vectors_count": indexed,
            "points_count": self.points.len(),
            "segments_count": 2,
            "config": self.config,
            "payload_schema": self.payload_schema(),
            "update_queue": {"length": 0}
        })
    }
}

/// The index type of a field schema (`"keyword"` or `{"type": "keyword", …}`).
pub(crate) fn index_type(schema: &Value) -> &str {
    match schema {
        Value::String(s) => s,
        Value::Object(o) => o.get("type").and_then(Value::as_str).unwrap_or(""),
        _ => "",
    }
}

// --- create -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename = "CreateCollection")]
struct CreateCollection {
    #[serde(default)]
    vectors: Option<VectorsConfig>,
    shard_number: Option<u32>,
    sharding_method: Option<ShardingMethod>,
    replication_factor: Option<u32>,
    write_consistency_factor: Option<u32>,
    on_disk_payload: Option<bool>,
    hnsw_config: Option<Map<String, Value>>,
    wal_config: Option<Map<String, Value>>,
    optimizers_config: Option<Map<String, Value>>,
    quantization_config: Option<Value>,
    sparse_vectors: Option<BTreeMap<String, SparseVectorParams>>,
    strict_mode_config: Option<Map<String, Value>>,
    metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum VectorsConfig {
    Single(VectorParams),
    Multi(BTreeMap<String, VectorParams>),
}

#[derive(Deserialize)]
struct VectorParams {
    size: NonZeroU64,
    distance: Distance,
    hnsw_config: Option<Map<String, Value>>,
    quantization_config: Option<Value>,
    on_disk: Option<bool>,
    datatype: Option<Datatype>,
    multivector_config: Option<MultiVectorConfig>,
}

#[derive(Deserialize, Clone, Copy)]
enum Distance {
    Cosine,
    Euclid,
    Dot,
    Manhattan,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Datatype {
    Float32,
    Uint8,
    Float16,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ShardingMethod {
    Auto,
    Custom,
}

#[derive(Deserialize)]
struct MultiVectorConfig {
    comparator: MultiVectorComparator,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum MultiVectorComparator {
    MaxSim,
}

#[derive(Deserialize)]
struct SparseVectorParams {
    index: Option<Map<String, Value>>,
    modifier: Option<Modifier>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Modifier {
    None,
    Idf,
}

impl VectorParams {
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("size".into(), json!(self.size.get()));
        let distance = match self.distance {
            Distance::Cosine => "Cosine",
            Distance::Euclid => "Euclid",
            Distance::Dot => "Dot",
            Distance::Manhattan => "Manhattan",
        };
        out.insert("distance".into(), json!(distance));
        if let Some(h) = &self.hnsw_config {
            out.insert("hnsw_config".into(), Value::Object(h.clone()));
        }
        if let Some(q) = &self.quantization_config {
            out.insert("quantization_config".into(), q.clone());
        }
        if let Some(d) = self.on_disk {
            out.insert("on_disk".into(), json!(d));
        }
        if let Some(d) = self.datatype {
            let d = match d {
                Datatype::Float32 => "float32",
                Datatype::Uint8 => "uint8",
                Datatype::Float16 => "float16",
            };
            out.insert("datatype".into(), json!(d));
        }
        if let Some(m) = &self.multivector_config {
            let MultiVectorComparator::MaxSim = m.comparator;
            out.insert(
                "multivector_config".into(),
                json!({"comparator": "max_sim"}),
            );
        }
        Value::Object(out)
    }
}

fn merged(defaults: Value, given: &Option<Map<String, Value>>) -> Value {
    let mut out = defaults;
    if let (Value::Object(out), Some(given)) = (&mut out, given) {
        for (k, v) in given {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn positive(field: &str, value: Option<u32>) -> Result<u32, QError> {
    match value {
        Some(0) => Err(QError::validation(
            "JSON body",
            format!("{field}: value 0 invalid, must be 1 or larger"),
        )),
        Some(n) => Ok(n),
        None => Ok(1),
    }
}

/// The collection config a create body describes (the 422 checks included).
fn config_of(body: &CreateCollection) -> Result<Value, QError> {
    let shard_number = positive("shard_number", body.shard_number)?;
    let replication_factor = positive("replication_factor", body.replication_factor)?;
    let write_consistency_factor =
        positive("write_consistency_factor", body.write_consistency_factor)?;
    let vectors = match &body.vectors {
        None => json!({}),
        Some(VectorsConfig::Single(p)) => p.to_json(),
        Some(VectorsConfig::Multi(map)) => Value::Object(
            map.iter()
                .map(|(name, p)| (name.clone(), p.to_json()))
                .collect(),
        ),
    };
    let mut params = Map::new();
    params.insert("vectors".into(), vectors);
    params.insert("shard_number".into(), json!(shard_number));
    if let Some(m) = body.sharding_method {
        let m = match m {
            ShardingMethod::Auto => "auto",
            ShardingMethod::Custom => "custom",
        };
        params.insert("sharding_method".into(), json!(m));
    }
    params.insert("replication_factor".into(), json!(replication_factor));
    params.insert(
        "write_consistency_factor".into(),
        json!(write_consistency_factor),
    );
    params.insert(
        "on_disk_payload".into(),
        json!(body.on_disk_payload.unwrap_or(true)),
    );
    if let Some(sparse) = body.sparse_vectors.as_ref().filter(|s| !s.is_empty()) {
        let mut out = Map::new();
        for (name, p) in sparse {
            let mut obj = Map::new();
            if let Some(index) = &p.index {
                obj.insert("index".into(), Value::Object(index.clone()));
            }
            if let Some(m) = p.modifier {
                let m = match m {
                    Modifier::None => "none",
                    Modifier::Idf => "idf",
                };
                obj.insert("modifier".into(), json!(m));
            }
            out.insert(name.clone(), Value::Object(obj));
        }
        params.insert("sparse_vectors".into(), Value::Object(out));
    }
    let mut config = Map::new();
    config.insert("params".into(), Value::Object(params));
    config.insert(
        "hnsw_config".into(),
        merged(
            json!({"m": 16, "ef_construct": 100, "full_scan_threshold": 10000,
                   "max_indexing_threads": 0, "on_disk": false}),
            &body.hnsw_config,
        ),
    );
    config.insert(
        "optimizer_config".into(),
        merged(
            json!({"deleted_threshold": 0.2, "vacuum_min_vector_number": 1000,
                   "default_segment_number": 0, "max_segment_size": null,
                   "memmap_threshold": null, "indexing_threshold": 10000,
                   "flush_interval_sec": 5, "max_optimization_threads": null,
                   "prevent_unoptimized": null}),
            &body.optimizers_config,
        ),
    );
    config.insert(
        "wal_config".into(),
        merged(
            json!({"wal_capacity_mb": 32, "wal_segments_ahead": 0, "wal_retain_closed": 1}),
            &body.wal_config,
        ),
    );
    config.insert(
        "quantization_config".into(),
        body.quantization_config.clone().unwrap_or(Value::Null),
    );
    if let Some(strict) = &body.strict_mode_config {
        config.insert("strict_mode_config".into(), Value::Object(strict.clone()));
    }
    if let Some(metadata) = &body.metadata {
        config.insert("metadata".into(), Value::Object(metadata.clone()));
    }
    Ok(Value::Object(config))
}

/// Whether a config read back from a snapshot is one this fake understands.
pub(crate) fn config_is_valid(config: &Value) -> Result<(), String> {
    let params = config
        .get("params")
        .and_then(Value::as_object)
        .ok_or("missing field `params`")?;
    let vectors = params.get("vectors").ok_or("missing field `vectors`")?;
    serde_json::from_value::<VectorsConfig>(vectors.clone()).map_err(|e| e.to_string())?;
    Ok(())
}

fn insert_new(shared: &Shared, name: &str, config: Value) -> Result<(), QError> {
    let mut state = shared.state();
    if state.collections.contains_key(name) {
        return Err(QError::already_exists(name));
    }
    state
        .collections
        .insert(name.to_owned(), Collection::new(config));
    Ok(())
}

/// `PUT /collections/{name}`.
pub(crate) fn create(ctx: &Ctx, name: &str) -> Response {
    let result = (|| {
        validate_collection_name(name)?;
        let body: CreateCollection = ctx.json()?;
        let config = config_of(&body)?;
        ctx.query().get("timeout")?;
        ctx.access.require_manage()?;
        insert_new(ctx.shared, name, config)?;
        Ok(json!(true))
    })();
    ctx.reply(result)
}

/// The test helper behind [`FakeQdrant::create_collection_with`](super::FakeQdrant).
pub(crate) fn create_from_value(shared: &Shared, name: &str, body: &Value) -> Result<(), QError> {
    validate_collection_name(name)?;
    let body: CreateCollection =
        serde_json::from_value(body.clone()).map_err(|e| QError::format("JSON body", e))?;
    insert_new(shared, name, config_of(&body)?)
}

/// `GET /collections`.
pub(crate) fn list(ctx: &Ctx) -> Response {
    let names: Vec<Value> = ctx
        .shared
        .state()
        .collections
        .keys()
        .map(|n| json!({"name": n}))
        .collect();
    ctx.reply(Ok(json!({ "collections": names })))
}

/// `GET /collections/{name}`.
pub(crate) fn get(ctx: &Ctx, name: &str) -> Response {
    let info = ctx
        .shared
        .state()
        .collections
        .get(name)
        .map(Collection::info);
    ctx.reply(info.ok_or_else(|| QError::no_collection(name)))
}

/// `GET /collections/{name}/exists`: 200 either way.
pub(crate) fn exists(ctx: &Ctx, name: &str) -> Response {
    let exists = ctx.shared.state().collections.contains_key(name);
    ctx.reply(Ok(json!({ "exists": exists })))
}

/// `DELETE /collections/{name}`: `false` for a missing one; the snapshot files stay.
pub(crate) fn delete(ctx: &Ctx, name: &str) -> Response {
    let result = (|| {
        ctx.query().get("timeout")?;
        ctx.access.require_manage()?;
        let removed = ctx.shared.state().collections.remove(name).is_some();
        Ok(json!(removed))
    })();
    ctx.reply(result)
}

const INDEX_TYPES: [&str; 8] = [
    "keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid",
];

fn check_field_schema(schema: &Value) -> Result<(), QError> {
    let ok = match schema {
        Value::String(s) => INDEX_TYPES.contains(&s.as_str()),
        Value::Object(o) => o
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| INDEX_TYPES.contains(&t)),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(QError::format(
            "JSON body",
            "data did not match any variant of untagged enum PayloadFieldSchema",
        ))
    }
}

#[derive(Deserialize)]
#[serde(rename = "CreateFieldIndex")]
struct CreateFieldIndex {
    field_name: String,
    field_schema: Option<Value>,
}

fn add_index(shared: &Shared, name: &str, field: &str, schema: Value) -> Result<u64, QError> {
    let mut state = shared.state();
    let collection = state
        .collections
        .get_mut(name)
        .ok_or_else(|| QError::no_collection(name))?;
    collection.indexes.insert(field.to_owned(), schema);
    // An index creation takes two operation ids on a real server (2, then 4, for the
    // first two indexes of a fresh collection in the recording).
    collection.next_op();
    Ok(collection.next_op())
}

/// `PUT /collections/{name}/index` (default `wait=false`: `acknowledged`).
pub(crate) fn create_index(ctx: &Ctx, name: &str) -> Response {
    let result = (|| {
        let body: CreateFieldIndex = ctx.json()?;
        let schema = body.field_schema.ok_or_else(|| {
            QError::bad_input(format!(
                "Can't auto-detect field type for {}, please specify `field_schema`",
                body.field_name
            ))
        })?;
        check_field_schema(&schema)?;
        let query = ctx.query();
        let wait = query.wait(false)?;
        query.variant("ordering", &["weak", "medium", "strong"])?;
        ctx.access.require_manage()?;
        let op = add_index(ctx.shared, name, &body.field_name, schema)?;
        Ok(update_result(op, wait))
    })();
    ctx.reply(result)
}

/// The test helper behind [`FakeQdrant::create_payload_index`](super::FakeQdrant).
pub(crate) fn create_index_value(
    shared: &Shared,
    name: &str,
    field: &str,
    schema: Value,
) -> Result<(), QError> {
    check_field_schema(&schema)?;
    add_index(shared, name, field, schema).map(|_| ())
}

/// `DELETE /collections/{name}/index/{field}`.
pub(crate) fn delete_index(ctx: &Ctx, name: &str, field: &str) -> Response {
    let result = (|| {
        let wait = ctx.query().wait(false)?;
        ctx.access.require_manage()?;
        let mut state = ctx.shared.state();
        let collection = state
            .collections
            .get_mut(name)
            .ok_or_else(|| QError::no_collection(name))?;
        collection.indexes.remove(field);
        let op = collection.next_op();
        Ok(update_result(op, wait))
    })();
    ctx.reply(result)
}

/// `UpdateResult`: `completed` when waited for, else `acknowledged`.
pub(crate) fn update_result(operation_id: u64, wait: bool) -> Value {
    json!({
        "operation_id": operation_id,
        "status": if wait { "completed" } else { "acknowledged" }
    })
}

/// `VectorsConfig` as Rust's `{:?}` prints it, for the "not compatible" message.
pub(crate) fn debug_vectors(vectors: &Value) -> String {
    fn params(p: &Value) -> String {
        let opt = |key: &str| match p.get(key) {
            None | Some(Value::Null) => "None".to_owned(),
            Some(Value::String(s)) => format!("Some({})", capitalised(s)),
            Some(v) => format!("Some({v})"),
        };
        format!(
            "VectorParams {{ size: {}, distance: {}, hnsw_config: {}, quantization_config: {}, on_disk: {}, datatype: {}, multivector_config: {} }}",
            p["size"],
            p["distance"].as_str().unwrap_or(""),
            opt("hnsw_config"),
            opt("quantization_config"),
            opt("on_disk"),
            opt("datatype"),
            opt("multivector_config"),
        )
    }
    fn capitalised(s: &str) -> String {
        let mut c = s.chars();
        match c.next() {
            Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
            None => String::new(),
        }
    }
    match vectors {
        Value::Object(map) if map.contains_key("size") => format!("Single({})", params(vectors)),
        Value::Object(map) => format!(
            "Multi({{{}}})",
            map.iter()
                .map(|(name, p)| format!("{name:?}: {}", params(p)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => format!("{other}"),
    }
}
