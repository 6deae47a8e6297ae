//! Cypher values, and the JSON Neo4j 5.3 writes for them: Java's float formatting
//! (`1.0E-7`, `4.9E-324`, `-0.0`), `"NaN"`/`"Infinity"` as strings, non-BMP characters as
//! surrogate-pair escapes, upper-case `\u001F` control escapes.

use std::cmp::Ordering;
use std::fmt::Write as _;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::temporal::{self, Crs, Duration, ZonedDateTime};

/// A point: its CRS and 2 or 3 coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// The coordinate reference system.
    pub crs: Crs,
    /// x/y[/z] or longitude/latitude[/height].
    pub coords: Vec<f64>,
}

/// A node or relationship that exists only in a result (`db.schema.visualization()`).
#[derive(Clone, Debug, PartialEq)]
pub struct Virtual {
    /// Negative id.
    pub id: i64,
    /// Whether a node (else a relationship).
    pub node: bool,
    /// Labels (nodes) or `[type]` (relationships).
    pub labels: Vec<String>,
    /// Properties.
    pub props: Vec<(String, Value)>,
}

/// A Cypher value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// Boolean.
    Bool(bool),
    /// 64-bit integer.
    Int(i64),
    /// 64-bit float.
    Float(f64),
    /// String.
    Str(String),
    /// A `byte[]` property (only ever read from a store or seeded from Rust: Cypher 5.3 has
    /// no way to make one).
    Bytes(Vec<i8>),
    /// List.
    List(Vec<Value>),
    /// A list stored as a property: Neo4j keeps it as an array, which the `meta` walk does
    /// not expand (one `null`) unless its elements are temporal or spatial.
    Array(Vec<Value>),
    /// Map, in insertion order.
    Map(Vec<(String, Value)>),
    /// A node by internal id.
    Node(u64),
    /// A relationship by internal id.
    Rel(u64),
    /// A path: node, relationship, node, …
    Path(Vec<Value>),
    /// A virtual node or relationship.
    Virtual(Box<Virtual>),
    /// `DATE`.
    Date(NaiveDate),
    /// `LOCAL TIME`.
    LocalTime(NaiveTime),
    /// `TIME` (with offset seconds).
    Time(NaiveTime, i32),
    /// `LOCAL DATETIME`.
    LocalDateTime(NaiveDateTime),
    /// `DATETIME`.
    DateTime(ZonedDateTime),
    /// `DURATION`.
    Duration(Duration),
    /// `POINT`.
    Point(Point),
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Self {
        Value::Str(s.into())
    }

    /// A stored array as a plain list (what expressions over it see).
    pub fn unarray(self) -> Value {
        match self {
            Value::Array(a) => Value::List(a),
            other => other,
        }
    }

    /// A value as a property stores it (lists become arrays).
    pub fn stored(self) -> Value {
        match self {
            Value::List(a) => Value::Array(a),
            other => other,
        }
    }

    /// Whether `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The Cypher type name used in error messages (`Integer`, `String`, `Map`…).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Bool(_) => "Boolean",
            Value::Int(_) => "Integer",
            Value::Float(_) => "Float",
            Value::Str(_) => "String",
            Value::Bytes(_) => "ByteArray",
            Value::List(_) | Value::Array(_) => "List",
            Value::Map(_) => "Map",
            Value::Node(_) => "Node",
            Value::Rel(_) => "Relationship",
            Value::Path(_) => "Path",
            Value::Virtual(v) => {
                if v.node {
                    "Node"
                } else {
                    "Relationship"
                }
            }
            Value::Date(_) => "Date",
            Value::LocalTime(_) => "LocalTime",
            Value::Time(..) => "Time",
            Value::LocalDateTime(_) => "LocalDateTime",
            Value::DateTime(_) => "DateTime",
            Value::Duration(_) => "Duration",
            Value::Point(_) => "Point",
        }
    }

    /// The `meta` type of temporal and spatial values (`date`, `datetime`, `point`…).
    pub fn meta_type(&self) -> Option<&'static str> {
        Some(match self {
            Value::Date(_) => "date",
            Value::LocalTime(_) => "localtime",
            Value::Time(..) => "time",
            Value::LocalDateTime(_) => "localdatetime",
            Value::DateTime(_) => "datetime",
            Value::Duration(_) => "duration",
            Value::Point(_) => "point",
            _ => return None,
        })
    }

    /// The value as a float, if numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// A map entry by key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Temporal and spatial values printed as Neo4j prints them.
    pub fn temporal_string(&self) -> Option<String> {
        Some(match self {
            Value::Date(d) => temporal::format_date(d),
            Value::LocalTime(t) => temporal::format_local_time(t),
            Value::Time(t, o) => temporal::format_time(t, *o),
            Value::LocalDateTime(dt) => temporal::format_local_datetime(dt),
            Value::DateTime(z) => z.format(),
            Value::Duration(d) => d.format(),
            _ => return None,
        })
    }
}

/// Whether a map key lookup order-insensitive equal.
fn maps_equal(a: &[(String, Value)], b: &[(String, Value)]) -> Option<bool> {
    if a.len() != b.len() {
        return Some(false);
    }
    let mut unknown = false;
    for (k, v) in a {
        match b.iter().find(|(k2, _)| k2 == k) {
            None => return Some(false),
            Some((_, v2)) => match cypher_eq(v, v2) {
                Some(false) => return Some(false),
                None => unknown = true,
                _ => {}
            },
        }
    }
    if unknown {
        None
    } else {
        Some(true)
    }
}

/// Cypher `=`: `None` is `null` (either side null, or NaN-free comparisons of nulls in
/// lists).
pub fn cypher_eq(a: &Value, b: &Value) -> Option<bool> {
    use Value::*;
    Some(match (a, b) {
        (Null, _) | (_, Null) => return None,
        (Array(x), _) => return cypher_eq(&List(x.clone()), b),
        (_, Array(y)) => return cypher_eq(a, &List(y.clone())),
        (Int(x), Int(y)) => x == y,
        (Int(x), Float(y)) | (Float(y), Int(x)) => (*x as f64) == *y,
        (Float(x), Float(y)) => x == y,
        (Bool(x), Bool(y)) => x == y,
        (Str(x), Str(y)) => x == y,
        (Bytes(x), Bytes(y)) => x == y,
        (Bytes(x), List(y)) | (List(y), Bytes(x)) => {
            let l: Vec<Value> = x.iter().map(|b| Int(*b as i64)).collect();
            return cypher_eq(&List(l), &List(y.clone()));
        }
        (List(x), List(y)) => {
            if x.len() != y.len() {
                return Some(false);
            }
            let mut unknown = false;
            for (p, q) in x.iter().zip(y) {
                match cypher_eq(p, q) {
                    Some(false) => return Some(false),
                    None => unknown = true,
                    _ => {}
                }
            }
            if unknown {
                return None;
            }
            true
        }
        (Map(x), Map(y)) => return maps_equal(x, y),
        (Node(x), Node(y)) => x == y,
        (Rel(x), Rel(y)) => x == y,
        (Path(x), Path(y)) => x == y,
        (Virtual(x), Virtual(y)) => x.id == y.id && x.node == y.node,
        (Date(x), Date(y)) => x == y,
        (LocalTime(x), LocalTime(y)) => x == y,
        (Time(x, o), Time(y, p)) => {
            let nx = x
                .signed_duration_since(NaiveTime::MIN)
                .num_nanoseconds()
                .unwrap_or(0)
                - *o as i64 * 1_000_000_000;
            let ny = y
                .signed_duration_since(NaiveTime::MIN)
                .num_nanoseconds()
                .unwrap_or(0)
                - *p as i64 * 1_000_000_000;
            nx == ny
        }
        (LocalDateTime(x), LocalDateTime(y)) => x == y,
        (DateTime(x), DateTime(y)) => x.epoch() == y.epoch(),
        (Duration(x), Duration(y)) => x == y,
        (Point(x), Point(y)) => x == y,
        _ => false,
    })
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Map(_) => 0,
        Value::Node(_) | Value::Virtual(_) => 1,
        Value::Rel(_) => 2,
        Value::List(_) | Value::Array(_) | Value::Bytes(_) => 3,
        Value::Path(_) => 4,
        Value::DateTime(_) => 5,
        Value::LocalDateTime(_) => 6,
        Value::Date(_) => 7,
        Value::Time(..) => 8,
        Value::LocalTime(_) => 9,
        Value::Duration(_) => 10,
        Value::Point(_) => 11,
        Value::Str(_) => 12,
        Value::Bool(_) => 13,
        Value::Int(_) | Value::Float(_) => 14,
        Value::Null => 15,
    }
}

/// The total order of `ORDER BY` (Cypher orderability): by type group, then value;
/// `null` last.
pub fn order(a: &Value, b: &Value) -> Ordering {
    use Value::*;
    if let Array(x) = a {
        return order(&List(x.clone()), b);
    }
    if let Array(y) = b {
        return order(a, &List(y.clone()));
    }
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Int(x), Int(y)) => x.cmp(y),
        (Int(_), Float(_)) | (Float(_), Int(_)) | (Float(_), Float(_)) => {
            let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            match (x.is_nan(), y.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
            }
        }
        (Str(x), Str(y)) => x.cmp(y),
        (Bool(x), Bool(y)) => x.cmp(y),
        (List(x), List(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = order(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Node(x), Node(y)) | (Rel(x), Rel(y)) => x.cmp(y),
        (Date(x), Date(y)) => x.cmp(y),
        (LocalTime(x), LocalTime(y)) => x.cmp(y),
        (LocalDateTime(x), LocalDateTime(y)) => x.cmp(y),
        (DateTime(x), DateTime(y)) => x.epoch().cmp(&y.epoch()),
        (Time(x, o), Time(y, p)) => (*x - chrono::Duration::seconds(*o as i64))
            .cmp(&(*y - chrono::Duration::seconds(*p as i64))),
        _ => Ordering::Equal,
    }
}

/// Cypher `<`, `>`…: `None` when incomparable (different types, nulls, NaN).
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    use Value::*;
    if let Array(x) = a {
        return compare(&List(x.clone()), b);
    }
    if let Array(y) = b {
        return compare(a, &List(y.clone()));
    }
    match (a, b) {
        (Null, _) | (_, Null) => None,
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Int(_) | Float(_), Int(_) | Float(_)) => {
            a.as_f64().unwrap().partial_cmp(&b.as_f64().unwrap())
        }
        (Str(x), Str(y)) => Some(x.cmp(y)),
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (List(_), List(_)) => Some(order(a, b)),
        (Date(_), Date(_))
        | (LocalTime(_), LocalTime(_))
        | (LocalDateTime(_), LocalDateTime(_))
        | (DateTime(_), DateTime(_))
        | (Time(..), Time(..)) => Some(order(a, b)),
        _ => None,
    }
}

/// Why a value cannot be stored as a property (Neo4j's `TypeError` messages).
pub fn check_storable(v: &Value) -> Result<(), String> {
    match v {
        Value::Bool(_)
        | Value::Int(_)
        | Value::Float(_)
        | Value::Str(_)
        | Value::Bytes(_)
        | Value::Date(_)
        | Value::LocalTime(_)
        | Value::Time(..)
        | Value::LocalDateTime(_)
        | Value::DateTime(_)
        | Value::Duration(_)
        | Value::Point(_) => Ok(()),
        Value::List(items) | Value::Array(items) => {
            if items.iter().any(|i| matches!(i, Value::List(_) | Value::Array(_) | Value::Bytes(_))) {
                return Err("Collections containing collections can not be stored in properties.".into());
            }
            if items.iter().any(Value::is_null) {
                return Err("Collections containing null values can not be stored in properties.".into());
            }
            let mut kinds = items.iter().map(storable_kind);
            if let Some(first) = kinds.next() {
                if first.is_none() || kinds.any(|k| k != first) {
                    return Err("Neo4j only supports a subset of Cypher types for storage as singleton or array properties. Please refer to section cypher/syntax/values of the manual for more details.".into());
                }
            }
            Ok(())
        }
        Value::Map(m) => Err(format!(
            "Property values can only be of primitive types or arrays thereof. Encountered: Map{{{}}}.",
            m.iter()
                .map(|(k, v)| format!("{k} -> {}", java_value_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        other => Err(format!(
            "Property values can only be of primitive types or arrays thereof. Encountered: {}.",
            java_value_repr(other)
        )),
    }
}

fn storable_kind(v: &Value) -> Option<u8> {
    Some(match v {
        Value::Bool(_) => 1,
        // Integers and floats do not mix in one array.
        Value::Int(_) => 2,
        Value::Float(_) => 3,
        Value::Str(_) => 4,
        Value::Date(_) => 5,
        Value::LocalTime(_) => 6,
        Value::Time(..) => 7,
        Value::LocalDateTime(_) => 8,
        Value::DateTime(_) => 9,
        Value::Duration(_) => 10,
        Value::Point(_) => 11,
        _ => return None,
    })
}

fn java_value_repr(v: &Value) -> String {
    match v {
        Value::Int(i) => format!("Long({i})"),
        Value::Float(f) => format!("Double({})", java_double(*f)),
        Value::Str(s) => format!("String(\"{s}\")"),
        Value::Bool(b) => format!("Boolean('{b}')"),
        Value::Null => "NO_VALUE".into(),
        Value::List(l) | Value::Array(l) => format!(
            "List{{{}}}",
            l.iter().map(java_value_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(m) => format!(
            "Map{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k} -> {}", java_value_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Node(id) => format!("({id})"),
        Value::Rel(id) => format!("[{id}]"),
        other => other.type_name().to_owned(),
    }
}

/// `Double.toString` of Java 17: decimal between 10^-3 and 10^7, else `d.dddE±n`; at least
/// one digit after the point, the shortest digits that round-trip, but never fewer than
/// two significant digits in scientific form (`4.9E-324`, `1.0E20`).
pub fn java_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let a = f.abs();
    let sign = if f < 0.0 { "-" } else { "" };
    if (1e-3..1e7).contains(&a) {
        let s = format!("{a}");
        let s = if s.contains('.') { s } else { format!("{s}.0") };
        return format!("{sign}{s}");
    }
    // Shortest round-tripping digits in scientific form, e.g. "1.2345e-7".
    let sci = format!("{a:e}");
    let (mant, exp) = sci.split_once('e').unwrap();
    let mant = if mant.contains('.') {
        mant.to_owned()
    } else {
        // One significant digit: Java prints two, correctly rounded.
        let two = format!("{a:.1e}");
        let (m2, e2) = two.split_once('e').unwrap();
        return format!("{sign}{m2}E{e2}");
    };
    format!("{sign}{mant}E{exp}")
}

/// A JSON document as Neo4j writes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// null
    Null,
    /// true/false
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float: Java formatting; NaN and infinities become strings.
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, in order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from pairs.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// Compact text.
    pub fn compact(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    /// Compact text appended to `out`.
    pub fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Float(f) => {
                if f.is_finite() {
                    out.push_str(&java_double(*f));
                } else {
                    write_str(out, &java_double(*f));
                }
            }
            Json::Str(s) => write_str(out, s),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Obj(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    /// Jackson's default pretty printer (`{\n  "a" : 1,\n  "b" : [ {\n    … } ]\n}`), as
    /// the discovery document and the auth errors use it.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write_pretty(&mut out, 0);
        out
    }

    fn write_pretty(&self, out: &mut String, depth: usize) {
        let pad = |out: &mut String, d: usize| {
            for _ in 0..d {
                out.push_str("  ");
            }
        };
        match self {
            Json::Arr(items) if !items.is_empty() => {
                out.push_str("[ ");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_pretty(out, depth);
                }
                out.push_str(" ]");
            }
            Json::Obj(pairs) if !pairs.is_empty() => {
                out.push_str("{\n");
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                    }
                    pad(out, depth + 1);
                    write_str(out, k);
                    out.push_str(" : ");
                    v.write_pretty(out, depth + 1);
                }
                out.push('\n');
                pad(out, depth);
                out.push('}');
            }
            Json::Arr(_) => out.push_str("[ ]"),
            Json::Obj(_) => out.push_str("{ }"),
            other => other.write(out),
        }
    }

    /// Parses JSON text (for tests and stores; numbers keep int vs float).
    pub fn parse(text: &str) -> Result<Json, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Ok(Json::from_serde(&v))
    }

    /// From a serde_json value.
    pub fn from_serde(v: &serde_json::Value) -> Json {
        match v {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Json::Int(i)
                } else {
                    Json::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Json::Str(s.clone()),
            serde_json::Value::Array(a) => Json::Arr(a.iter().map(Json::from_serde).collect()),
            serde_json::Value::Object(o) => Json::Obj(
                o.iter()
                    .map(|(k, v)| (k.clone(), Json::from_serde(v)))
                    .collect(),
            ),
        }
    }

    /// An object field.
    pub fn field(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(p) => p.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A JSON string as Jackson escapes it for Neo4j: short escapes for `"` `\` and the usual
/// controls, `\u00XX` (upper-case hex) for other controls, non-BMP characters as surrogate
/// escapes, everything else raw (DEL included).
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c if (c as u32) > 0xFFFF => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04X}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_float_formatting() {
        for (f, s) in [
            (1.0e-7, "1.0E-7"),
            (1.0e20, "1.0E20"),
            (9.007199254740992e15, "9.007199254740992E15"),
            (5e-324, "4.9E-324"),
            (-0.0, "-0.0"),
            (1.7976931348623157e308, "1.7976931348623157E308"),
            (0.30000000000000004, "0.30000000000000004"),
            (2.0, "2.0"),
            (1.5, "1.5"),
            (1e308, "1.0E308"),
            (0.14285714285714285, "0.14285714285714285"),
            (1000.5, "1000.5"),
            (1.0e7, "1.0E7"),
            (0.001, "0.001"),
        ] {
            assert_eq!(java_double(f), s, "{f}");
        }
    }

    #[test]
    fn strings_escape_as_jackson() {
        let mut out = String::new();
        write_str(
            &mut out,
            "grüße \u{1F30D} 中文\u{0}\u{1}\u{1f}\u{7f}\n\t\\ 'q' \"dq\"",
        );
        assert_eq!(
            out,
            "\"grüße \\uD83C\\uDF0D 中文\\u0000\\u0001\\u001F\u{7f}\\n\\t\\\\ 'q' \\\"dq\\\"\""
        );
    }

    #[test]
    fn pretty_printing_as_jackson() {
        let j = Json::obj([(
            "errors",
            Json::Arr(vec![Json::obj([
                ("code", Json::str("Neo.ClientError.Security.Unauthorized")),
                ("message", Json::str("Invalid username or password.")),
            ])]),
        )]);
        assert_eq!(
            j.pretty(),
            "{\n  \"errors\" : [ {\n    \"code\" : \"Neo.ClientError.Security.Unauthorized\",\n    \"message\" : \"Invalid username or password.\"\n  } ]\n}"
        );
    }
}
