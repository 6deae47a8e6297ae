//! The export and import statement forms of `src/fake_neo4j/EXPORT_FORMS.md`, run against
//! the fake: a full round trip of a graph with every property type Neo4j 5.3 stores
//! (export by keyset pages with the `meta` walk, import by batched `UNWIND $rows`), the
//! statements the real server refuses, and the test hooks (a graph changing during an
//! export, configurable expiry and lock times, the fake server of a fake `NEO4J_HOME`).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value as J};
use testkit::fake_neo4j::samples::{all_types, dt, pt, same_props, source_graph};
use testkit::fake_neo4j::temporal;
use testkit::fake_neo4j::value::Point;
use testkit::fake_neo4j::{client, FakeNeo4j, FakeNeo4jHome, Value};

struct Api {
    addr: std::net::SocketAddr,
    auth: String,
}

impl Api {
    fn new(addr: std::net::SocketAddr, user: &str, password: &str) -> Self {
        Api {
            addr,
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
        }
    }

    fn post(&self, path: &str, body: &J) -> client::RawResponse {
        let body = serde_json::to_vec(body).unwrap();
        client::send(
            self.addr,
            "POST",
            path,
            &[
                ("Host", "127.0.0.1:7474"),
                ("Accept", "application/json"),
                ("Authorization", &self.auth),
                ("Content-Type", "application/json"),
            ],
            Some(&body),
        )
        .unwrap()
    }

    /// One auto-commit request; the whole body.
    fn commit(&self, statements: &[(&str, J)]) -> J {
        let body = json!({
            "statements": statements.iter().map(|(s, p)| json!({"statement": s, "parameters": p})).collect::<Vec<_>>()
        });
        self.post("/db/neo4j/tx/commit", &body).json()
    }

    /// One auto-commit request that must succeed without notifications; its results.
    fn ok(&self, statements: &[(&str, J)]) -> Vec<J> {
        let body = self.commit(statements);
        assert_eq!(body["errors"], json!([]), "{statements:?}\n{body}");
        assert!(
            body.get("notifications").is_none(),
            "unexpected notifications for {statements:?}: {body}"
        );
        body["results"].as_array().unwrap().clone()
    }
}

fn rows(result: &J) -> Vec<(Vec<J>, Vec<J>)> {
    result["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["row"].as_array().unwrap().clone(),
                d["meta"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The graph of the round trip: every storable type.

// ---------------------------------------------------------------------------------------
// Export (forms E1–E5).

const NODE_PAGE: &str = "MATCH (n) WHERE id(n) > $after \
    WITH n ORDER BY id(n) LIMIT $limit \
    RETURN id(n) AS id, labels(n) AS labels, properties(n) AS props, \
    [k IN keys(n) WHERE n[k] STARTS WITH '' OR (n[k] + [] = n[k] AND head(n[k]) STARTS WITH '')] AS strings";

const REL_PAGE: &str = "MATCH (a)-[r]->(b) WHERE id(r) > $after \
    WITH a, r, b ORDER BY id(r) LIMIT $limit \
    RETURN id(r) AS id, type(r) AS type, id(a) AS startId, id(b) AS endId, properties(r) AS props, \
    [k IN keys(r) WHERE r[k] STARTS WITH '' OR (r[k] + [] = r[k] AND head(r[k]) STARTS WITH '')] AS strings";

const COUNTS: [&str; 4] = [
    "MATCH (n) RETURN count(n) AS nodes",
    "MATCH ()-[r]->() RETURN count(r) AS relationships",
    "MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS count ORDER BY label",
    "MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS count ORDER BY type",
];

#[derive(Debug, PartialEq)]
struct CountsOut {
    nodes: i64,
    rels: i64,
    labels: BTreeMap<String, i64>,
    types: BTreeMap<String, i64>,
}

fn counts(api: &Api) -> CountsOut {
    let r = api.ok(&COUNTS.map(|s| (s, json!({}))));
    let pairs = |r: &J| -> BTreeMap<String, i64> {
        rows(r)
            .iter()
            .map(|(row, _)| {
                (
                    row[0].as_str().unwrap().to_owned(),
                    row[1].as_i64().unwrap(),
                )
            })
            .collect()
    };
    CountsOut {
        nodes: rows(&r[0])[0].0[0].as_i64().unwrap(),
        rels: rows(&r[1])[0].0[0].as_i64().unwrap(),
        labels: pairs(&r[2]),
        types: pairs(&r[3]),
    }
}

fn special(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// A JSON row value with its meta entry as a typed value.
fn typed(v: &J, meta: &J, is_string: bool) -> Value {
    match meta.get("type").and_then(J::as_str) {
        Some("point") => {
            let coords: Vec<f64> = v["coordinates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_f64().unwrap())
                .collect();
            pt(v["crs"]["srid"].as_i64().unwrap(), &coords)
        }
        Some(t) => {
            let s = v.as_str().unwrap();
            match t {
                "date" => Value::Date(temporal::parse_date(s).unwrap()),
                "localtime" => Value::LocalTime(temporal::parse_local_time(s).unwrap()),
                "time" => {
                    let (t, o) = temporal::parse_time(s).unwrap();
                    Value::Time(t, o)
                }
                "localdatetime" => Value::LocalDateTime(temporal::parse_local_datetime(s).unwrap()),
                "datetime" => dt(s),
                "duration" => Value::Duration(temporal::Duration::parse(s).unwrap()),
                other => panic!("meta type {other}"),
            }
        }
        None => match v {
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) if n.is_i64() => Value::Int(n.as_i64().unwrap()),
            J::Number(n) => Value::Float(n.as_f64().unwrap()),
            J::String(s) if !is_string => special(s)
                .map(Value::Float)
                .unwrap_or_else(|| Value::str(s.clone())),
            J::String(s) => Value::str(s.clone()),
            other => panic!("unexpected {other}"),
        },
    }
}

/// The meta walk over a property map: one entry per scalar, per temporal or spatial value,
/// one for a stored array of primitives, one per element of a temporal or spatial array.
fn walk_props(
    props: &J,
    meta: &[J],
    mut at: usize,
    strings: &[String],
) -> (Vec<(String, Value)>, usize) {
    let mut out = Vec::new();
    for (k, v) in props.as_object().unwrap() {
        let is_string = strings.contains(k);
        let value = match v {
            J::Array(items) if items.is_empty() => {
                at += 1;
                Value::List(vec![])
            }
            J::Array(items) => {
                if meta[at].is_null() {
                    at += 1;
                    // A float array holds numbers and NaN/Infinity strings; a string array
                    // is listed in `strings`.
                    Value::List(
                        items
                            .iter()
                            .map(|i| typed(i, &J::Null, is_string))
                            .collect(),
                    )
                } else {
                    let l = items
                        .iter()
                        .enumerate()
                        .map(|(j, i)| typed(i, &meta[at + j], false))
                        .collect();
                    at += items.len();
                    Value::List(l)
                }
            }
            _ => {
                at += 1;
                typed(v, &meta[at - 1], is_string)
            }
        };
        out.push((k.clone(), value));
    }
    (out, at)
}

fn strings_of(v: &J) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

struct ExportedNode {
    id: i64,
    labels: Vec<String>,
    props: Vec<(String, Value)>,
}

struct ExportedRel {
    rel_type: String,
    start: i64,
    end: i64,
    props: Vec<(String, Value)>,
}

fn export_nodes(api: &Api, limit: i64) -> Vec<ExportedNode> {
    let mut out = Vec::new();
    let mut after = -1;
    loop {
        let r = api.ok(&[(NODE_PAGE, json!({"after": after, "limit": limit}))]);
        let page = rows(&r[0]);
        if page.is_empty() {
            return out;
        }
        for (row, meta) in page {
            let id = row[0].as_i64().unwrap();
            let labels = strings_of(&row[1]);
            let strings = strings_of(&row[3]);
            let (props, at) = walk_props(&row[2], &meta, 1 + labels.len(), &strings);
            assert_eq!(
                at + strings.len(),
                meta.len(),
                "the meta walk consumed every entry"
            );
            after = id;
            out.push(ExportedNode { id, labels, props });
        }
    }
}

fn export_rels(api: &Api, limit: i64) -> Vec<ExportedRel> {
    let mut out = Vec::new();
    let mut after = -1;
    loop {
        let r = api.ok(&[(REL_PAGE, json!({"after": after, "limit": limit}))]);
        let page = rows(&r[0]);
        if page.is_empty() {
            return out;
        }
        for (row, meta) in page {
            let strings = strings_of(&row[5]);
            let (props, at) = walk_props(&row[4], &meta, 4, &strings);
            assert_eq!(at + strings.len(), meta.len());
            after = row[0].as_i64().unwrap();
            out.push(ExportedRel {
                rel_type: row[1].as_str().unwrap().into(),
                start: row[2].as_i64().unwrap(),
                end: row[3].as_i64().unwrap(),
                props,
            });
        }
    }
}

// ---------------------------------------------------------------------------------------
// Import (forms I1–I4).

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// How a value travels: as JSON the server stores as it is (`props`), or in `typed.<kind>`
/// with the conversion the statement applies.
fn encode(v: &Value) -> Result<J, (&'static str, J)> {
    let point = |p: &Point| {
        let mut m = json!({"srid": p.crs.srid, "x": p.coords[0], "y": p.coords[1]});
        if let Some(z) = p.coords.get(2) {
            m["z"] = json!(z);
        }
        m
    };
    let float = |f: f64| {
        if f.is_finite() {
            json!(f)
        } else {
            json!(testkit::fake_neo4j::value::java_double(f))
        }
    };
    match v {
        Value::Int(i) => Ok(json!(i)),
        Value::Float(f) if f.is_finite() => Ok(json!(f)),
        Value::Float(f) => Err(("float", float(*f))),
        Value::Str(s) => Ok(json!(s)),
        Value::Bool(b) => Ok(json!(b)),
        Value::Bytes(b) => Ok(json!(b)),
        Value::Point(p) => Err(("point", point(p))),
        Value::List(items) | Value::Array(items) => {
            if items
                .iter()
                .any(|i| matches!(i, Value::Float(f) if !f.is_finite()))
            {
                return Err((
                    "float_list",
                    J::Array(items.iter().map(|i| float(i.as_f64().unwrap())).collect()),
                ));
            }
            match items.first().and_then(Value::meta_type) {
                None => Ok(J::Array(items.iter().map(|i| encode(i).unwrap()).collect())),
                Some(t) => {
                    let kind = match t {
                        "date" => "date_list",
                        "localtime" => "localtime_list",
                        "time" => "time_list",
                        "localdatetime" => "localdatetime_list",
                        "datetime" => "datetime_list",
                        "duration" => "duration_list",
                        _ => "point_list",
                    };
                    let enc = items
                        .iter()
                        .map(|i| match i {
                            Value::Point(p) => point(p),
                            other => json!(other.temporal_string().unwrap()),
                        })
                        .collect();
                    Err((kind, J::Array(enc)))
                }
            }
        }
        other => Err((
            other.meta_type().unwrap(),
            json!(other.temporal_string().unwrap()),
        )),
    }
}

fn conversion(kind: &str, key: &str, var: &str) -> String {
    let src = format!("row.typed.{kind}.{}", quote(key));
    let f = match kind.trim_end_matches("_list") {
        "float" => "toFloat",
        other => other,
    };
    let expr = if kind.ends_with("_list") {
        format!("[x IN {src} | {f}(x)]")
    } else {
        format!("{f}({src})")
    };
    format!("{var}.{k} = coalesce({expr}, {var}.{k})", k = quote(key))
}

/// `props` and `typed` of one row, and the (kind, key) pairs it needs.
fn encode_props(props: &[(String, Value)]) -> (J, J, Vec<(String, String)>) {
    let mut plain = serde_json::Map::new();
    let mut typed: BTreeMap<String, serde_json::Map<String, J>> = BTreeMap::new();
    let mut kinds = Vec::new();
    for (k, v) in props {
        match encode(v) {
            Ok(j) => {
                plain.insert(k.clone(), j);
            }
            Err((kind, j)) => {
                typed
                    .entry(kind.to_owned())
                    .or_default()
                    .insert(k.clone(), j);
                kinds.push((kind.to_owned(), k.clone()));
            }
        }
    }
    (J::Object(plain), json!(typed), kinds)
}

fn import(
    api: &Api,
    nodes: &[ExportedNode],
    rels: &[ExportedRel],
    batch: usize,
    schema: &[String],
) {
    // I2: schema first.
    if !schema.is_empty() {
        let stmts: Vec<(&str, J)> = schema.iter().map(|s| (s.as_str(), json!({}))).collect();
        api.ok(&stmts);
    }
    // I3: nodes per label set.
    let mut by_labels: BTreeMap<Vec<String>, Vec<&ExportedNode>> = BTreeMap::new();
    for n in nodes {
        let mut l = n.labels.clone();
        l.sort();
        by_labels.entry(l).or_default().push(n);
    }
    let mut new_ids: BTreeMap<i64, i64> = BTreeMap::new();
    for (labels, group) in by_labels {
        for chunk in group.chunks(batch) {
            let mut rows_json = Vec::new();
            let mut kinds: Vec<(String, String)> = Vec::new();
            for n in chunk {
                let (plain, typed, k) = encode_props(&n.props);
                for x in k {
                    if !kinds.contains(&x) {
                        kinds.push(x);
                    }
                }
                rows_json.push(json!({"id": n.id, "props": plain, "typed": typed}));
            }
            let label_text: String = labels.iter().map(|l| format!(":{}", quote(l))).collect();
            let mut stmt =
                format!("UNWIND $rows AS row CREATE (n{label_text}) SET n = properties(row.props)");
            if !kinds.is_empty() {
                stmt.push_str(" SET ");
                stmt.push_str(
                    &kinds
                        .iter()
                        .map(|(kind, k)| conversion(kind, k, "n"))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            }
            stmt.push_str(" RETURN row.id AS old, id(n) AS new");
            let r = api.ok(&[(&stmt, json!({"rows": rows_json}))]);
            for (row, _) in rows(&r[0]) {
                new_ids.insert(row[0].as_i64().unwrap(), row[1].as_i64().unwrap());
            }
        }
    }
    // I4: relationships per type, endpoints by their new ids.
    let mut by_type: BTreeMap<&str, Vec<&ExportedRel>> = BTreeMap::new();
    for r in rels {
        by_type.entry(&r.rel_type).or_default().push(r);
    }
    for (t, group) in by_type {
        for chunk in group.chunks(batch) {
            let mut rows_json = Vec::new();
            let mut kinds: Vec<(String, String)> = Vec::new();
            for r in chunk {
                let (plain, typed, k) = encode_props(&r.props);
                for x in k {
                    if !kinds.contains(&x) {
                        kinds.push(x);
                    }
                }
                rows_json.push(json!({"start": new_ids[&r.start], "end": new_ids[&r.end], "props": plain, "typed": typed}));
            }
            let mut stmt = format!(
                "UNWIND $rows AS row MATCH (a) WHERE id(a) = row.start MATCH (b) WHERE id(b) = row.end CREATE (a)-[r:{}]->(b) SET r = properties(row.props)",
                quote(t)
            );
            if !kinds.is_empty() {
                stmt.push_str(" SET ");
                stmt.push_str(
                    &kinds
                        .iter()
                        .map(|(kind, k)| conversion(kind, k, "r"))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            }
            stmt.push_str(" RETURN count(r) AS created");
            let r = api.ok(&[(&stmt, json!({"rows": rows_json}))]);
            assert_eq!(rows(&r[0])[0].0[0].as_i64().unwrap(), chunk.len() as i64);
        }
    }
}

#[test]
fn a_graph_with_every_type_round_trips_through_the_export_and_import_forms() {
    let source = FakeNeo4j::builder()
        .credentials("neo4j", "pw")
        .graph(source_graph())
        .start()
        .unwrap();
    let target = FakeNeo4j::builder()
        .credentials("neo4j", "pw")
        .start()
        .unwrap();
    let a = Api::new(source.addr(), "neo4j", "pw");
    let b = Api::new(target.addr(), "neo4j", "pw");

    let before = counts(&a);
    assert_eq!(before.nodes, 11);
    assert_eq!(before.labels["Person"], 2);
    assert_eq!(before.types["KNOWS"], 1);

    // E3: the schema to recreate.
    let r = a.ok(&[
        ("SHOW CONSTRAINTS YIELD name, type, entityType, labelsOrTypes, properties, createStatement", json!({})),
        ("SHOW INDEXES YIELD name, type, entityType, labelsOrTypes, properties, owningConstraint, createStatement", json!({})),
    ]);
    let mut schema: Vec<String> = rows(&r[0])
        .iter()
        .map(|(row, _)| row[5].as_str().unwrap().to_owned())
        .collect();
    schema.extend(
        rows(&r[1])
            .iter()
            .filter(|(row, _)| row[1] != "LOOKUP" && row[5].is_null())
            .map(|(row, _)| row[6].as_str().unwrap().to_owned()),
    );
    assert_eq!(schema.len(), 2, "{schema:?}");

    let nodes = export_nodes(&a, 3);
    let rels = export_rels(&a, 2);
    assert_eq!(nodes.len(), 11);
    assert_eq!(rels.len(), 3);
    let after = counts(&a);
    assert_eq!(before, after, "nothing changed during the export");

    // What the export read is what the source holds.
    let g = source.graph("neo4j");
    for n in &nodes {
        let rec = &g.nodes[&(n.id as u64)];
        assert_eq!(n.labels, rec.labels);
        same_props(&rec.props, &n.props).unwrap_or_else(|e| panic!("export of node {}: {e}", n.id));
    }

    import(&b, &nodes, &rels, 4, &schema);
    assert_eq!(counts(&b), before);

    // The restored graph holds the same values (byte[] as long[]).
    let restored = target.graph("neo4j");
    let key = |labels: &[String], props: &[(String, Value)]| {
        let mut labels = labels.to_vec();
        labels.sort();
        let pid = props
            .iter()
            .find(|(k, _)| k == "pid" || k == "cid" || k == "n" || k == "note")
            .map(|(_, v)| format!("{v:?}"));
        format!("{labels:?}{pid:?}")
    };
    let mut by_key: BTreeMap<String, &testkit::fake_neo4j::NodeRec> = BTreeMap::new();
    for n in restored.nodes.values() {
        by_key.insert(key(&n.labels, &n.props), n);
    }
    for n in g.nodes.values() {
        let r = by_key
            .get(&key(&n.labels, &n.props))
            .unwrap_or_else(|| panic!("{:?} not restored", n.labels));
        same_props(&n.props, &r.props).unwrap_or_else(|e| panic!("restore of {:?}: {e}", n.labels));
    }
    let knows = restored
        .rels
        .values()
        .find(|r| r.rel_type == "KNOWS")
        .unwrap();
    same_props(&all_types(), &knows.props).unwrap();
    let t = target.graph("neo4j");
    assert_eq!(t.constraints.len(), 1);
    assert!(t.indexes.iter().any(|i| i.name == "company_cid"));
    // The restored uniqueness constraint is enforced.
    let body = b.commit(&[("CREATE (:Person {pid: 1})", json!({}))]);
    assert_eq!(
        body["errors"][0]["code"],
        "Neo.ClientError.Schema.ConstraintValidationFailed"
    );
}

#[test]
fn overwrite_clears_data_and_schema_with_the_delete_forms() {
    let fake = FakeNeo4j::builder()
        .credentials("neo4j", "pw")
        .graph(source_graph())
        .start()
        .unwrap();
    let api = Api::new(fake.addr(), "neo4j", "pw");
    // I1: delete in batches until nothing is left, then the schema (its own transaction).
    loop {
        let r = api.ok(&[(
            "MATCH (n) WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS deleted",
            json!({"limit": 4}),
        )]);
        if rows(&r[0])[0].0[0] == 0 {
            break;
        }
    }
    api.ok(&[
        ("DROP CONSTRAINT `person_pid` IF EXISTS", json!({})),
        ("DROP INDEX `company_cid` IF EXISTS", json!({})),
    ]);
    let c = fake.counts("neo4j");
    assert_eq!((c.nodes, c.relationships), (0, 0));
    let g = fake.graph("neo4j");
    assert!(g.constraints.is_empty());
    assert!(g.indexes.iter().all(|i| i.kind == "LOOKUP"));
}

#[test]
fn what_the_real_server_refuses_the_fake_refuses() {
    let fake = FakeNeo4j::builder()
        .credentials("neo4j", "pw")
        .graph(source_graph())
        .start()
        .unwrap();
    let api = Api::new(fake.addr(), "neo4j", "pw");
    let code = |stmts: &[(&str, J)]| -> Vec<String> {
        api.commit(stmts)["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases: Vec<(Vec<(&str, J)>, &str)> = vec![
        (
            vec![("MATCH (n RETURN n", json!({}))],
            "Neo.ClientError.Statement.SyntaxError",
        ),
        (
            vec![("RETURN x", json!({}))],
            "Neo.ClientError.Statement.SyntaxError",
        ),
        (
            vec![("RETURN apoc.version()", json!({}))],
            "Neo.ClientError.Statement.SyntaxError",
        ),
        (
            vec![("CALL apoc.meta.stats()", json!({}))],
            "Neo.ClientError.Procedure.ProcedureNotFound",
        ),
        (
            vec![("RETURN $missing", json!({}))],
            "Neo.ClientError.Statement.ParameterMissing",
        ),
        (
            vec![("RETURN 'a' + {} AS x", json!({}))],
            "Neo.ClientError.Statement.SyntaxError",
        ),
        (
            vec![("RETURN 9223372036854775807 + 1", json!({}))],
            "Neo.ClientError.Statement.SyntaxError",
        ),
        (
            vec![("RETURN $x + 1", json!({"x": i64::MAX}))],
            "Neo.ClientError.Statement.ArithmeticError",
        ),
        (
            vec![("RETURN 1/0", json!({}))],
            "Neo.ClientError.Statement.ArithmeticError",
        ),
        (
            vec![("RETURN date('2024-02-30')", json!({}))],
            "Neo.ClientError.Statement.SyntaxError",
        ),
        (
            vec![("CREATE (n:X {m: {a: 1}})", json!({}))],
            "Neo.ClientError.Statement.TypeError",
        ),
        (
            vec![("CREATE (n:X {l: [[1], [2]]})", json!({}))],
            "Neo.ClientError.Statement.TypeError",
        ),
        (
            vec![("CREATE (n:X {l: [1, 'a']})", json!({}))],
            "Neo.ClientError.Statement.TypeError",
        ),
        (
            vec![("CREATE (n:X {l: [1, null]})", json!({}))],
            "Neo.ClientError.Statement.TypeError",
        ),
        (
            vec![(
                "UNWIND $rows AS row CREATE (n:X) SET n = properties(row)",
                json!({"rows": [{"m": {"a": 1}}]}),
            )],
            "Neo.ClientError.Statement.TypeError",
        ),
        (
            vec![("CREATE (:Person {pid: 1})", json!({}))],
            "Neo.ClientError.Schema.ConstraintValidationFailed",
        ),
        (
            vec![("MATCH (n:Person {pid: 1}) DELETE n", json!({}))],
            "Neo.ClientError.Schema.ConstraintValidationFailed",
        ),
        (
            vec![
                (
                    "CREATE INDEX tmp IF NOT EXISTS FOR (n:T) ON (n.x)",
                    json!({}),
                ),
                ("CREATE (:T {x: 1})", json!({})),
            ],
            "Neo.ClientError.Transaction.ForbiddenDueToTransactionType",
        ),
        (
            vec![
                ("CREATE (:T {x: 1})", json!({})),
                ("CREATE INDEX tmp2 FOR (n:T) ON (n.y)", json!({})),
            ],
            "Neo.ClientError.Transaction.ForbiddenDueToTransactionType",
        ),
        (
            vec![(
                "CREATE CONSTRAINT person_pid FOR (n:Person) REQUIRE n.pid IS UNIQUE",
                json!({}),
            )],
            "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists",
        ),
        (
            vec![(
                "CREATE CONSTRAINT c FOR (n:Person) REQUIRE n.name IS NOT NULL",
                json!({}),
            )],
            "Neo.DatabaseError.Statement.ExecutionFailed",
        ),
        (
            vec![(
                "CREATE CONSTRAINT ON (n:Person) ASSERT n.x IS UNIQUE",
                json!({}),
            )],
            "Neo.ClientError.Statement.SyntaxError",
        ),
        (
            vec![("CREATE DATABASE foo", json!({}))],
            "Neo.ClientError.Statement.UnsupportedAdministrationCommand",
        ),
        (
            vec![("CREATE (a)-[:R]-(b)", json!({}))],
            "Neo.ClientError.Statement.SyntaxError",
        ),
        (
            vec![("RETURN $x", json!({"x": 9223372036854775808u64}))],
            "Neo.DatabaseError.Statement.ExecutionFailed",
        ),
    ];
    for (stmts, want) in cases {
        assert_eq!(code(&stmts), vec![want.to_owned()], "{stmts:?}");
    }
    // Nothing of the refused writes stayed.
    assert_eq!(fake.counts("neo4j").nodes, 11);
    assert_eq!(fake.counts("neo4j").labels.get("X"), None);
    // `SET n = row` (not provably a map) is accepted with the deprecation warning.
    let body = api.commit(&[(
        "UNWIND $rows AS row CREATE (n:Batch) SET n = row RETURN count(n) AS c",
        json!({"rows": [{"a": 1}]}),
    )]);
    assert_eq!(body["errors"], json!([]));
    assert_eq!(
        body["notifications"][0]["code"],
        "Neo.ClientNotification.Statement.FeatureDeprecationWarning"
    );
}

#[test]
fn a_graph_changing_during_an_export_shows_in_the_counts() {
    let fake = FakeNeo4j::builder()
        .credentials("neo4j", "pw")
        .graph(source_graph())
        .start()
        .unwrap();
    let api = Api::new(fake.addr(), "neo4j", "pw");
    // After the counts and the first page, a writer adds a node.
    fake.on_request(|info, dbs| {
        if info.index == 2 {
            dbs.get_mut("neo4j")
                .unwrap()
                .graph
                .add_node(&["Person"], vec![("pid".into(), Value::Int(99))]);
        }
    });
    let before = counts(&api);
    let nodes = export_nodes(&api, 100);
    let after = counts(&api);
    assert_ne!(before, after);
    assert_eq!(after.nodes, before.nodes + 1);
    // Keyset paging reads the new node too (its id is higher); the counts tell the change.
    assert_eq!(nodes.len() as i64, after.nodes);
    assert_eq!(fake.request_count(), 5);
    assert!(fake.requests()[1].statements[0].starts_with("MATCH (n) WHERE id(n) > $after"));
}

#[test]
fn expiry_and_lock_times_are_configurable() {
    let t0: chrono::DateTime<chrono::Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
    let fake = FakeNeo4j::builder()
        .credentials("neo4j", "pw")
        .manual_clock(t0)
        .tx_idle_timeout(Duration::from_secs(30))
        .auth_lock_time(Duration::from_secs(1))
        .start()
        .unwrap();
    let api = Api::new(fake.addr(), "neo4j", "pw");
    let begun = api.post("/db/neo4j/tx", &json!({"statements": []}));
    assert_eq!(begun.status, 201);
    assert_eq!(
        begun.json()["transaction"]["expires"],
        "Tue, 01 Jan 2030 00:00:30 GMT"
    );
    let tx = begun
        .header("Location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    fake.advance(Duration::from_secs(29));
    assert_eq!(
        api.post(&format!("/db/neo4j/tx/{tx}"), &json!({"statements": []}))
            .status,
        200
    );
    fake.advance(Duration::from_secs(31));
    assert_eq!(
        api.post(&format!("/db/neo4j/tx/{tx}"), &json!({"statements": []}))
            .status,
        404
    );
    assert_eq!(fake.open_transactions(), 0);
    // Three failures lock the user for the configured second, even with the right password.
    let wrong = Api::new(fake.addr(), "neo4j", "nope");
    for _ in 0..3 {
        assert_eq!(
            wrong
                .post("/db/neo4j/tx/commit", &json!({"statements": []}))
                .status,
            401
        );
    }
    assert_eq!(
        api.post("/db/neo4j/tx/commit", &json!({"statements": []}))
            .status,
        429
    );
    fake.advance(Duration::from_millis(1001));
    assert_eq!(
        api.post("/db/neo4j/tx/commit", &json!({"statements": []}))
            .status,
        200
    );
}

#[test]
fn a_fake_home_serves_its_database_while_started_and_keeps_what_was_committed() {
    let home = FakeNeo4jHome::new();
    home.seed("neo4j", source_graph());
    assert!(home.http_url().is_none());
    let status = home.command("neo4j").arg("status").output().unwrap();
    assert_eq!(status.status.code(), Some(3));
    let start = home.command("neo4j").arg("start").output().unwrap();
    assert_eq!(
        start.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let url = home.http_url().expect("started");
    let (user, password) = home.credentials();
    let api = Api::new(
        url.trim_start_matches("http://").parse().unwrap(),
        &user,
        &password,
    );
    assert_eq!(counts(&api).nodes, 11);
    api.ok(&[(
        "CREATE (:Added {at: datetime('2024-01-01T00:00Z')})",
        json!({}),
    )]);
    // While it runs, the admin tool refuses to dump it.
    let dump = home
        .command("neo4j-admin")
        .args(["database", "dump", "neo4j", "--to-stdout"])
        .output()
        .unwrap();
    assert_eq!(dump.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dump.stdout).contains("The database is in use"));
    let stop = home.command("neo4j").arg("stop").output().unwrap();
    assert_eq!(stop.status.code(), Some(0));
    assert!(home.http_url().is_none());
    let g = home.graph("neo4j").unwrap();
    assert_eq!(g.counts().labels["Added"], 1);
    // Stopped, it dumps; the dump loads into another name.
    let dump = home
        .command("neo4j-admin")
        .args(["database", "dump", "neo4j", "--to-stdout"])
        .output()
        .unwrap();
    assert_eq!(dump.status.code(), Some(0));
    assert!(dump.stdout.starts_with(b"DZV1"));
    let mut load = home
        .command("neo4j-admin")
        .args(["database", "load", "copy", "--from-stdin"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    load.stdin.take().unwrap().write_all(&dump.stdout).unwrap();
    let out = load.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(home.graph("copy").unwrap().counts(), g.counts());
}

#[test]
fn answers_up_to_8192_bytes_carry_a_content_length_larger_ones_are_chunked() {
    let fake = FakeNeo4j::builder()
        .credentials("neo4j", "pw")
        .start()
        .unwrap();
    let api = Api::new(fake.addr(), "neo4j", "pw");
    let send = |len: usize| {
        let body = json!({"statements": [{"statement": "RETURN $s AS s", "parameters": {"s": "x".repeat(len)}}]});
        api.post("/db/neo4j/tx/commit", &body)
    };
    let overhead = send(0).body.len();
    let at_limit = send(8192 - overhead);
    assert_eq!(at_limit.body.len(), 8192);
    assert!(!at_limit.chunked);
    assert_eq!(at_limit.header("Content-Length"), Some("8192"));
    let over = send(8193 - overhead);
    assert_eq!(over.body.len(), 8193);
    assert!(over.chunked);
    assert_eq!(over.header("Content-Length"), None);
}
