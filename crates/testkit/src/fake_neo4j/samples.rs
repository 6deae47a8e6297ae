//! Sample graphs for tests of the fake and of the tools that back Neo4j up: every
//! property type a real Neo4j 5.3 stores, and how to compare what comes back.

use super::graph::Graph;
use super::temporal::{self, Crs};
use super::value::{Point, Value};

/// A `DATETIME` from Neo4j's text of it.
pub fn dt(s: &str) -> Value {
    Value::DateTime(temporal::parse_datetime(s).unwrap())
}

/// A point of `srid` at `coords`.
pub fn pt(srid: i64, coords: &[f64]) -> Value {
    Value::Point(Point {
        crs: Crs::by_srid(srid).unwrap(),
        coords: coords.to_vec(),
    })
}

/// One property of every type Neo4j 5.3 stores (the recordings' `values-*` cases, the
/// byte array included), as a property list.
pub fn all_types() -> Vec<(String, Value)> {
    let p = |k: &str, v: Value| (k.to_owned(), v);
    vec![
        p("i", Value::Int(42)),
        p("maxLong", Value::Int(i64::MAX)),
        p("minLong", Value::Int(i64::MIN)),
        p("big53", Value::Int(9_007_199_254_740_993)),
        p("f", Value::Float(2.75)),
        p("fWhole", Value::Float(2.0)),
        p("negZero", Value::Float(-0.0)),
        p("nan", Value::Float(f64::NAN)),
        p("inf", Value::Float(f64::INFINITY)),
        p("negInf", Value::Float(f64::NEG_INFINITY)),
        p("tiny", Value::Float(5e-324)),
        p("s", Value::str("text")),
        p("sNaN", Value::str("NaN")),
        p("sInfinity", Value::str("Infinity")),
        p("emptyS", Value::str("")),
        p("unicode", Value::str("grüße \u{1F30D} 中文 \u{0}\u{1f}")),
        p("b", Value::Bool(true)),
        p("bytes", Value::Bytes(vec![0, 1, 2, 127, -128, -1])),
        p("ints", Value::List(vec![Value::Int(1), Value::Int(2)])),
        p(
            "floats",
            Value::List(vec![Value::Float(1.5), Value::Float(f64::NAN)]),
        ),
        p(
            "floatSpecials",
            Value::List(vec![Value::Float(f64::NAN), Value::Float(f64::INFINITY)]),
        ),
        p("strs", Value::List(vec![Value::str("a"), Value::str("b")])),
        p(
            "strSpecials",
            Value::List(vec![Value::str("NaN"), Value::str("Infinity")]),
        ),
        p(
            "bools",
            Value::List(vec![Value::Bool(true), Value::Bool(false)]),
        ),
        p("emptyList", Value::List(vec![])),
        p(
            "d",
            Value::Date(temporal::parse_date("2024-02-29").unwrap()),
        ),
        p(
            "lt",
            Value::LocalTime(temporal::parse_local_time("12:34:56.123456789").unwrap()),
        ),
        {
            let (t, o) = temporal::parse_time("12:34:56.123+02:00").unwrap();
            p("t", Value::Time(t, o))
        },
        p(
            "ldt",
            Value::LocalDateTime(
                temporal::parse_local_datetime("2024-02-29T12:34:56.123").unwrap(),
            ),
        ),
        p("dtOffset", dt("2024-02-29T12:34:56.123-05:30")),
        p("dtZone", dt("2024-02-29T12:34:56.123[Europe/Berlin]")),
        p("dtUtc", dt("1970-01-01T00:00Z")),
        p(
            "dur",
            Value::Duration(temporal::Duration::parse("P1Y2M3DT4H5M6.007S").unwrap()),
        ),
        p(
            "durNeg",
            Value::Duration(temporal::Duration::parse("P-1DT2H").unwrap()),
        ),
        p("pc2", pt(7203, &[1.5, -2.0])),
        p("pc3", pt(9157, &[1.0, 2.0, 3.0])),
        p("pw2", pt(4326, &[13.4, 52.5])),
        p("pw3", pt(4979, &[13.4, 52.5, 34.0])),
        p(
            "dates",
            Value::List(vec![
                Value::Date(temporal::parse_date("2024-01-01").unwrap()),
                Value::Date(temporal::parse_date("2024-12-31").unwrap()),
            ]),
        ),
        p(
            "points",
            Value::List(vec![pt(7203, &[1.0, 2.0]), pt(7203, &[3.0, 4.0])]),
        ),
        p(
            "datetimes",
            Value::List(vec![
                dt("2024-07-01T00:00[America/New_York]"),
                dt("2024-01-01T00:00Z"),
            ]),
        ),
    ]
}

/// A small graph holding [`all_types`] on a node and a relationship, nodes with several
/// labels and none, a key typed differently on different nodes, a self-loop, a unique
/// constraint and a range index.
pub fn source_graph() -> Graph {
    let mut g = Graph::new();
    let a = g.add_node(&["Person"], {
        let mut p = all_types();
        p.push(("pid".into(), Value::Int(1)));
        p
    });
    let b = g.add_node(
        &["Person", "Employee"],
        vec![
            ("pid".into(), Value::Int(2)),
            ("name".into(), Value::str("b")),
        ],
    );
    let c = g.add_node(
        &["Company"],
        vec![
            ("cid".into(), Value::Int(1)),
            ("founded".into(), dt("2000-01-04T00:00Z")),
        ],
    );
    let bare = g.add_node(&[], vec![("note".into(), Value::str("no label"))]);
    for i in 0..7 {
        // Same key, different types on different nodes of one label.
        let v = if i % 2 == 0 {
            Value::str(format!("s{i}"))
        } else {
            Value::Date(temporal::parse_date("2020-01-01").unwrap())
        };
        g.add_node(
            &["Mixed"],
            vec![("v".into(), v), ("n".into(), Value::Int(i))],
        );
    }
    g.add_rel("KNOWS", a, b, all_types());
    g.add_rel(
        "WORKS_AT",
        b,
        c,
        vec![
            ("since".into(), dt("2021-01-01T00:00Z")),
            ("w".into(), Value::Float(f64::NAN)),
        ],
    );
    g.add_rel("SELF", bare, bare, vec![]);
    g.add_unique_constraint("person_pid", "Person", &["pid"]);
    g.add_range_index("company_cid", "Company", &["cid"]);
    g
}

/// Values equal as a restore must keep them: NaN is NaN, -0.0 stays negative, `byte[]`
/// comes back as `long[]` (Neo4j 5.3 cannot tell them apart over HTTP).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        (Value::Bytes(x), Value::Array(y) | Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| *q == Value::Int(*p as i64))
        }
        (Value::Array(x) | Value::List(x), Value::Array(y) | Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => a == b,
    }
}

/// Property lists equal as [`same`] says, in any order; the error names the first
/// difference.
pub fn same_props(a: &[(String, Value)], b: &[(String, Value)]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} properties instead of {}", b.len(), a.len()));
    }
    for (k, v) in a {
        match b.iter().find(|(k2, _)| k2 == k) {
            Some((_, w)) if same(v, w) => {}
            other => return Err(format!("{k}: {other:?} instead of {v:?}")),
        }
    }
    Ok(())
}
