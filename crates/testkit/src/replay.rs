//! Recorded exchanges with real servers, and the comparison that proves a fake answers as
//! the real server did.
//!
//! The recordings in `tests/fixtures/reference/` (Qdrant 1.17.1, Neo4j 5.3) are one JSON
//! object per line: `{"name", "request": {"method", "path", "headers", "body"}, "response":
//! {"status", "headers", "body"}}`. A fake replays every request in order and must give the
//! same status, the same content type and a body of the same **shape**: the same keys, the
//! same value types, recursively. Values themselves may differ (times, ids, snapshot names,
//! checksums change on every run of a real server too).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One recorded request and the real server's answer.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Exchange {
    /// The recording's name for it (`snapshot-create`, `commit-scalars`…).
    pub name: String,
    /// What was sent.
    pub request: Recorded,
    /// What the real server answered.
    pub response: RecordedResponse,
    /// Everything else the recorder wrote (notes, timings, phases).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// A recorded request.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path with query string.
    pub path: String,
    /// Headers the client set (names as recorded).
    #[serde(default)]
    pub headers: serde_json::Map<String, Value>,
    /// The body: parsed JSON, a descriptive string for binary bodies, or null.
    #[serde(default)]
    pub body: Value,
}

/// A recorded response.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct RecordedResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers (lowercase names).
    #[serde(default)]
    pub headers: serde_json::Map<String, Value>,
    /// The body: parsed JSON, `{"text": …}` for text, null when empty.
    #[serde(default)]
    pub body: Value,
}

impl RecordedResponse {
    /// The `content-type` header, if the response had one.
    pub fn content_type(&self) -> Option<&str> {
        header(&self.headers, "content-type")
    }
}

/// A header's value by case-insensitive name.
pub fn header<'a>(headers: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

/// The repository's copy of the reference recordings: `tests/fixtures/reference/<rel>`.
pub fn reference_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/reference")
        .join(rel)
}

/// Every exchange of a recording file, in the order they were sent.
pub fn load(path: &Path) -> Vec<Exchange> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// The JSON type of a value, for messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether `actual` has the shape of `expected`: the same JSON types, objects with exactly
/// the same keys, arrays both empty or both not, each element of `actual` shaped like the
/// element of `expected` at the same index (or like its last one, when `actual` is longer).
/// Numbers are one type: a real server writes `0` and `0.5` for the same field. The error
/// names the first path that differs.
pub fn same_shape(expected: &Value, actual: &Value) -> Result<(), String> {
    shape_at("$", expected, actual)
}

fn shape_at(path: &str, expected: &Value, actual: &Value) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let missing: Vec<&String> = e.keys().filter(|k| !a.contains_key(*k)).collect();
            let extra: Vec<&String> = a.keys().filter(|k| !e.contains_key(*k)).collect();
            if !missing.is_empty() || !extra.is_empty() {
                return Err(format!(
                    "{path}: keys differ: missing {missing:?}, unexpected {extra:?}"
                ));
            }
            for (k, ev) in e {
                shape_at(&format!("{path}.{k}"), ev, &a[k])?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.is_empty() != a.is_empty() {
                return Err(format!(
                    "{path}: expected {} elements, got {}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, av) in a.iter().enumerate() {
                let ev = e.get(i).or(e.last()).expect("non-empty");
                shape_at(&format!("{path}[{i}]"), ev, av)?;
            }
            Ok(())
        }
        (e, a) if type_name(e) == type_name(a) => Ok(()),
        (e, a) => Err(format!(
            "{path}: expected {} ({e}), got {} ({a})",
            type_name(e),
            type_name(a)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_of_shapes() {
        let cases = [
            (json!({"a": 1, "b": "x"}), json!({"a": 2.5, "b": "y"}), true),
            (json!({"a": 1}), json!({"a": 1, "b": 2}), false),
            (json!({"a": 1, "b": 2}), json!({"a": 1}), false),
            (json!({"a": null}), json!({"a": 1}), false),
            (json!([]), json!([]), true),
            (json!([1]), json!([]), false),
            (json!([{"n": "a"}]), json!([{"n": "b"}, {"n": "c"}]), true),
            (json!([{"n": "a"}]), json!([{"n": "b"}, {"m": "c"}]), false),
            (
                json!({"x": {"y": [true]}}),
                json!({"x": {"y": ["no"]}}),
                false,
            ),
            (json!("text"), json!("other"), true),
        ];
        for (expected, actual, ok) in cases {
            assert_eq!(
                same_shape(&expected, &actual).is_ok(),
                ok,
                "{expected} vs {actual}: {:?}",
                same_shape(&expected, &actual)
            );
        }
    }

    #[test]
    fn the_recordings_load() {
        let qdrant = load(&reference_path("qdrant-1.17.1/http-exchanges.ndjson"));
        assert_eq!(qdrant.len(), 250);
        assert_eq!(qdrant[0].name, "root");
        let neo4j = load(&reference_path("neo4j-5.3/http-exchanges.ndjson"));
        assert_eq!(neo4j.len(), 219);
    }
}
