//! The online export's artifact (`neo4j/cypher-jsonl+zstd`): one zstd frame of JSON lines,
//! one record a line, in this order:
//!
//! ```text
//! {"type":"header","format":"stackvault.neo4j-export/1","database":"neo4j","server_version":"5.3.0","edition":"community"}
//! {"type":"schema","kind":"constraint","name":"person_pid","create":"CREATE CONSTRAINT `person_pid` FOR …"}
//! {"type":"node","id":0,"labels":["Person"],"props":{"pid":1,"name":"a"},"typed":{"date":{"joined":"2024-02-29"}}}
//! {"type":"rel","id":0,"rel_type":"KNOWS","start":0,"end":1,"props":{"w":1.5},"typed":{}}
//! {"type":"end","nodes":1,"relationships":1}
//! ```
//!
//! A property goes in `props` when JSON carries it as it is — integers (exact to
//! ±2^63−1), finite floats (always written with a `.` or an exponent), strings, booleans
//! and lists of those — and in `typed.<kind>.<key>` otherwise, with the text or map its
//! kind's Cypher function reads: `date`, `localtime`, `time`, `localdatetime`, `datetime`,
//! `duration` (Neo4j's own text of the value), `point` (`{srid, x, y[, z]}`), `float`
//! (`"NaN"`, `"Infinity"`, `"-Infinity"`), and `<kind>_list` for lists of them. That is
//! the parameter layout of the import statement (form I3), so a line goes to the server
//! as it is.
//!
//! The kinds are recovered from the HTTP API's `meta` (see [`decode_props`]); what it
//! cannot tell apart is said in [`Ambiguity`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::stats::SchemaKind;

/// The `format` of the header record.
pub const EXPORT_FORMAT: &str = "stackvault.neo4j-export/1";

/// The `artifact.format` of an online export.
pub const ARTIFACT_FORMAT: &str = "neo4j/cypher-jsonl+zstd";

/// The temporal kinds, each also the name of the Cypher function that reads its text.
pub const TEMPORAL: [&str; 6] = [
    "date",
    "localtime",
    "time",
    "localdatetime",
    "datetime",
    "duration",
];

/// One line of the artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    /// The first line.
    Header(Header),
    /// A constraint or index to recreate before the data.
    Schema {
        /// Constraint or index.
        kind: SchemaKind,
        /// Its name.
        name: String,
        /// Neo4j's `createStatement`.
        create: String,
    },
    /// A node.
    Node(Node),
    /// A relationship.
    Rel(Rel),
    /// The last line: what the artifact holds.
    End {
        /// Node records.
        nodes: u64,
        /// Relationship records.
        relationships: u64,
    },
}

/// What was exported, from where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// The database exported.
    pub database: String,
    /// The server's version.
    pub server_version: String,
    /// Its edition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
}

/// A node as exported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Its internal id in the source (relationships refer to it).
    pub id: i64,
    /// Its labels.
    pub labels: Vec<String>,
    /// Properties JSON carries as they are.
    pub props: Map<String, Value>,
    /// The others, by kind: `{"date": {"joined": "2024-02-29"}}`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub typed: Map<String, Value>,
}

/// A relationship as exported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rel {
    /// Its internal id in the source.
    pub id: i64,
    /// Its type.
    pub rel_type: String,
    /// The start node's internal id in the source.
    pub start: i64,
    /// The end node's internal id in the source.
    pub end: i64,
    /// Properties JSON carries as they are.
    pub props: Map<String, Value>,
    /// The others, by kind.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub typed: Map<String, Value>,
}

/// A property the HTTP API of Neo4j 5.3 leaves ambiguous.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ambiguity {
    /// A list of integers between −128 and 127: a `byte[]` reads exactly like such a
    /// `long[]`, and JSON cannot carry bytes back, so it is restored as `long[]`.
    MaybeBytes(String),
    /// An empty list: its element type is not in the answer; it is restored as Neo4j
    /// stores an empty list parameter.
    EmptyList(String),
}

/// A property map decoded by the `meta` walk.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    /// What goes to `props`.
    pub props: Map<String, Value>,
    /// What goes to `typed`.
    pub typed: Map<String, Value>,
    /// `meta` entries the map took.
    pub consumed: usize,
    /// Keys whose type the answer leaves open.
    pub ambiguous: Vec<Ambiguity>,
}

fn special_float(s: &str) -> bool {
    matches!(s, "NaN" | "Infinity" | "-Infinity")
}

fn meta_type(meta: &Value) -> Option<&str> {
    meta.get("type").and_then(Value::as_str)
}

/// Reads one property map of a row with its share of the row's `meta`, starting at entry
/// `at` (recordings `meta-flattening`, `values-node-all-types-read`; EXPORT_FORMS.md, "The
/// meta walk"): the map is walked in the order of its JSON keys; a scalar takes one
/// entry (`null`, or `{"type": …}` for a temporal or spatial value), a stored list of
/// primitives one `null` (empty or not), a list of temporal or spatial values one entry
/// per element. `strings` names the keys whose values are strings or lists of strings,
/// which tells the string `"NaN"` from the float NaN.
pub fn decode_props(
    props: &Value,
    meta: &[Value],
    at: usize,
    strings: &[String],
) -> Result<Decoded, String> {
    let map = props
        .as_object()
        .ok_or_else(|| format!("expected a property map, got {}", kind_of(props)))?;
    let mut out = Decoded::default();
    let mut typed: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut i = at;
    let mut next = |what: &str| -> Result<Value, String> {
        let m = meta
            .get(i)
            .cloned()
            .ok_or_else(|| format!("the answer's meta ends before {what}"))?;
        i += 1;
        Ok(m)
    };
    for (key, value) in map {
        let is_string = strings.iter().any(|s| s == key);
        let mut put_typed = |kind: String, v: Value| {
            typed.entry(kind).or_default().insert(key.clone(), v);
        };
        match value {
            Value::Array(items) if items.is_empty() => {
                next(key)?;
                out.ambiguous.push(Ambiguity::EmptyList(key.clone()));
                out.props.insert(key.clone(), Value::Array(vec![]));
            }
            Value::Array(items) => {
                let first = next(key)?;
                match meta_type(&first) {
                    None => {
                        if !first.is_null() {
                            return Err(format!("unexpected meta {first} for list property {key}"));
                        }
                        let specials = !is_string && items.iter().any(Value::is_string);
                        if specials {
                            // A float list holding NaN or ±Infinity.
                            for item in items {
                                match item {
                                    Value::Number(_) => {}
                                    Value::String(s) if special_float(s) => {}
                                    other => {
                                        return Err(format!(
                                            "list property {key} mixes numbers and {other}"
                                        ))
                                    }
                                }
                            }
                            put_typed("float_list".into(), value.clone());
                        } else {
                            if items
                                .iter()
                                .all(|v| v.as_i64().is_some_and(|n| (-128..=127).contains(&n)))
                            {
                                out.ambiguous.push(Ambiguity::MaybeBytes(key.clone()));
                            }
                            out.props.insert(key.clone(), value.clone());
                        }
                    }
                    Some(kind) => {
                        let mut encoded = Vec::with_capacity(items.len());
                        for (j, item) in items.iter().enumerate() {
                            let m = if j == 0 { first.clone() } else { next(key)? };
                            if meta_type(&m) != Some(kind) {
                                return Err(format!("list property {key} mixes {kind} and {m}"));
                            }
                            encoded.push(encode_typed(kind, item, key)?);
                        }
                        put_typed(format!("{kind}_list"), Value::Array(encoded));
                    }
                }
            }
            _ => {
                let m = next(key)?;
                match (meta_type(&m), value) {
                    (Some(kind), _) => put_typed(kind.to_owned(), encode_typed(kind, value, key)?),
                    (None, Value::String(s)) if !is_string => {
                        if !special_float(s) {
                            return Err(format!(
                                "property {key} is neither a string nor a float: {s:?}"
                            ));
                        }
                        put_typed("float".into(), value.clone());
                    }
                    (None, Value::Null) => return Err(format!("property {key} is null")),
                    (None, Value::Object(_)) => {
                        return Err(format!("property {key} is a map without a type"))
                    }
                    (None, _) if !m.is_null() => {
                        return Err(format!("unexpected meta {m} for property {key}"))
                    }
                    (None, _) => {
                        out.props.insert(key.clone(), value.clone());
                    }
                }
            }
        }
    }
    out.consumed = i - at;
    out.typed = typed
        .into_iter()
        .map(|(k, v)| (k, Value::Object(v)))
        .collect();
    Ok(out)
}

/// A temporal value's text, or a point as `{srid, x, y[, z]}`.
fn encode_typed(kind: &str, value: &Value, key: &str) -> Result<Value, String> {
    if kind == "point" {
        let coords = value["coordinates"]
            .as_array()
            .filter(|c| c.len() == 2 || c.len() == 3);
        let srid = value["crs"]["srid"].as_i64();
        let (Some(coords), Some(srid)) = (coords, srid) else {
            return Err(format!(
                "property {key} is a point without coordinates or srid: {value}"
            ));
        };
        let mut point = Map::new();
        point.insert("srid".into(), srid.into());
        for (name, c) in ["x", "y", "z"].iter().zip(coords) {
            point.insert((*name).into(), c.clone());
        }
        return Ok(Value::Object(point));
    }
    if !TEMPORAL.contains(&kind) {
        return Err(format!(
            "property {key} has a type this version does not know: {kind}"
        ));
    }
    match value {
        Value::String(_) => Ok(value.clone()),
        other => Err(format!(
            "property {key} is a {kind} but not a string: {other}"
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The Cypher function that turns a `typed` kind's values into the value, if the kind is
/// one this version writes (the kind goes into a statement: nothing else may).
pub fn conversion(kind: &str) -> Option<(&'static str, bool)> {
    let (base, list) = match kind.strip_suffix("_list") {
        Some(b) => (b, true),
        None => (kind, false),
    };
    let f = match base {
        "float" => "toFloat",
        "point" => "point",
        other => TEMPORAL.iter().find(|t| **t == other)?,
    };
    Some((f, list))
}

/// A label, type or key back-quoted for Cypher, a back-quote doubled.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ty(t: &str) -> Value {
        json!({ "type": t })
    }

    #[test]
    fn table_of_decoded_properties() {
        let point = json!({"type": "Point", "coordinates": [1.5, -2.0], "crs": {"srid": 7203, "name": "cartesian"}});
        // (value, its meta entries, in strings?, props, typed)
        let cases: Vec<(Value, Vec<Value>, bool, Value, Value)> = vec![
            (
                json!(42),
                vec![Value::Null],
                false,
                json!({"k": 42}),
                json!({}),
            ),
            (
                json!(9223372036854775807i64),
                vec![Value::Null],
                false,
                json!({"k": 9223372036854775807i64}),
                json!({}),
            ),
            (
                json!(-0.0),
                vec![Value::Null],
                false,
                json!({"k": -0.0}),
                json!({}),
            ),
            (
                json!("NaN"),
                vec![Value::Null],
                false,
                json!({}),
                json!({"float": {"k": "NaN"}}),
            ),
            (
                json!("NaN"),
                vec![Value::Null],
                true,
                json!({"k": "NaN"}),
                json!({}),
            ),
            (
                json!("-Infinity"),
                vec![Value::Null],
                false,
                json!({}),
                json!({"float": {"k": "-Infinity"}}),
            ),
            (
                json!(true),
                vec![Value::Null],
                false,
                json!({"k": true}),
                json!({}),
            ),
            (
                json!("2024-02-29"),
                vec![ty("date")],
                false,
                json!({}),
                json!({"date": {"k": "2024-02-29"}}),
            ),
            (
                json!("P-1DT2H"),
                vec![ty("duration")],
                false,
                json!({}),
                json!({"duration": {"k": "P-1DT2H"}}),
            ),
            (
                point.clone(),
                vec![ty("point")],
                false,
                json!({}),
                json!({"point": {"k": {"srid": 7203, "x": 1.5, "y": -2.0}}}),
            ),
            (
                json!([1, 2]),
                vec![Value::Null],
                false,
                json!({"k": [1, 2]}),
                json!({}),
            ),
            (
                json!([]),
                vec![Value::Null],
                false,
                json!({"k": []}),
                json!({}),
            ),
            (
                json!(["NaN", "x"]),
                vec![Value::Null],
                true,
                json!({"k": ["NaN", "x"]}),
                json!({}),
            ),
            (
                json!([1.5, "NaN"]),
                vec![Value::Null],
                false,
                json!({}),
                json!({"float_list": {"k": [1.5, "NaN"]}}),
            ),
            (
                json!(["2024-01-01", "2024-12-31"]),
                vec![ty("date"), ty("date")],
                false,
                json!({}),
                json!({"date_list": {"k": ["2024-01-01", "2024-12-31"]}}),
            ),
            (
                json!([point.clone()]),
                vec![ty("point")],
                false,
                json!({}),
                json!({"point_list": {"k": [{"srid": 7203, "x": 1.5, "y": -2.0}]}}),
            ),
        ];
        for (value, meta, is_string, props, typed) in cases {
            let strings = if is_string {
                vec!["k".to_owned()]
            } else {
                vec![]
            };
            let mut all = vec![Value::Null]; // an entry before the map, as a node id's
            all.extend(meta.iter().cloned());
            let d = decode_props(&json!({ "k": value }), &all, 1, &strings)
                .unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(
                (Value::Object(d.props), Value::Object(d.typed)),
                (props, typed),
                "{value}"
            );
            assert_eq!(d.consumed, meta.len(), "{value}");
        }
    }

    #[test]
    fn table_of_answers_the_walk_refuses() {
        // A walk that does not fit the answer stops the export instead of guessing types.
        let cases: Vec<(Value, Vec<Value>, &str)> = vec![
            (
                json!({"k": "plain"}),
                vec![Value::Null],
                "neither a string nor a float",
            ),
            (json!({"k": 1}), vec![], "meta ends before k"),
            (
                json!({"k": ["2024-01-01", 3]}),
                vec![ty("date"), Value::Null],
                "mixes date",
            ),
            (json!({"k": "x"}), vec![ty("node")], "does not know: node"),
            (
                json!({"k": {"a": 1}}),
                vec![Value::Null],
                "map without a type",
            ),
            (json!([1]), vec![], "expected a property map"),
        ];
        for (props, meta, want) in cases {
            let err = decode_props(&props, &meta, 0, &[]).unwrap_err();
            assert!(err.contains(want), "{props}: {err}");
        }
    }

    #[test]
    fn small_integer_lists_and_empty_lists_are_named_as_ambiguous() {
        let props = json!({"data": [0, 1, -128, 127], "big": [1, 300], "empty": [], "f": [1.5]});
        let d = decode_props(&props, &vec![Value::Null; 4], 0, &[]).unwrap();
        assert_eq!(
            d.ambiguous,
            [
                Ambiguity::MaybeBytes("data".into()),
                Ambiguity::EmptyList("empty".into())
            ]
        );
    }

    #[test]
    fn only_known_kinds_become_functions() {
        let cases = [
            ("date", Some(("date", false))),
            ("point_list", Some(("point", true))),
            ("float", Some(("toFloat", false))),
            ("duration_list", Some(("duration", true))),
            ("apoc.do.when", None),
            ("date) DETACH DELETE n //", None),
        ];
        for (kind, want) in cases {
            assert_eq!(conversion(kind), want, "{kind}");
        }
        assert_eq!(quote("we`ird"), "`we``ird`");
    }

    #[test]
    fn records_round_trip_as_one_line_each() {
        let records = [
            Record::Header(Header {
                format: EXPORT_FORMAT.into(),
                database: "neo4j".into(),
                server_version: "5.3.0".into(),
                edition: Some("community".into()),
            }),
            Record::Schema {
                kind: SchemaKind::Index,
                name: "i".into(),
                create: "CREATE RANGE INDEX `i` FOR (n:`L`) ON (n.`k`)".into(),
            },
            Record::Node(Node {
                id: 7,
                labels: vec!["A".into()],
                props: json!({"f": 2.0, "i": 2}).as_object().unwrap().clone(),
                typed: Map::new(),
            }),
            Record::End {
                nodes: 1,
                relationships: 0,
            },
        ];
        for r in records {
            let line = serde_json::to_string(&r).unwrap();
            assert!(!line.contains('\n'));
            let back: Record = serde_json::from_str(&line).unwrap();
            assert_eq!(back, r, "{line}");
        }
        // A float stays a float on the way through (2.0 is not 2).
        let line = r#"{"type":"node","id":1,"labels":[],"props":{"f":2.0}}"#;
        let Record::Node(n) = serde_json::from_str(line).unwrap() else {
            panic!()
        };
        assert_eq!(serde_json::to_string(&n.props).unwrap(), r#"{"f":2.0}"#);
    }
}
