//! Values as the HTTP API writes them: the `row` format (entities as property maps), the
//! flattened `meta` walk (SURPRISE 2 of the recordings), the `graph` format, the legacy
//! `rest` format, and JOLT (v1 with numeric ids, v2 with element ids, strict or sparse).

use super::graph::Graph;
use super::temporal::Crs;
use super::value::{java_double, Json, Point, Value};

/// A transaction's view of the graph, to resolve entities.
pub struct View<'a> {
    /// The graph as the transaction sees it (deleted entities are absent).
    pub graph: &'a Graph,
    /// The database uuid of element ids.
    pub uuid: &'a str,
}

fn crs_json(c: &Crs) -> Json {
    Json::obj([
        ("srid", Json::Int(c.srid as i64)),
        ("name", Json::str(c.name)),
        ("type", Json::str("link")),
        (
            "properties",
            Json::obj([("href", Json::Str(c.href())), ("type", Json::str("ogcwkt"))]),
        ),
    ])
}

/// A point as GeoJSON-ish JSON with its CRS.
pub fn point_json(p: &Point) -> Json {
    Json::obj([
        ("type", Json::str("Point")),
        (
            "coordinates",
            Json::Arr(p.coords.iter().map(|c| Json::Float(*c)).collect()),
        ),
        ("crs", crs_json(&p.crs)),
    ])
}

/// Map entries in the iteration order of a `java.util.HashMap` filled in the given order:
/// Neo4j's map values (literals, property maps) are hash maps, and the flattened `meta`
/// follows that order.
pub fn java_order(pairs: &[(String, Value)]) -> Vec<&(String, Value)> {
    let hash = |s: &str| {
        let mut h: u32 = 0;
        for u in s.encode_utf16() {
            h = h.wrapping_mul(31).wrapping_add(u as u32);
        }
        h ^ (h >> 16)
    };
    let mut cap = 16usize;
    while pairs.len() as f64 > cap as f64 * 0.75 {
        cap *= 2;
    }
    let mut keyed: Vec<(usize, usize, &(String, Value))> = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| (hash(&p.0) as usize & (cap - 1), i, p))
        .collect();
    keyed.sort_by_key(|(b, i, _)| (*b, *i));
    keyed.into_iter().map(|(_, _, p)| p).collect()
}

fn props_json(view: &View, props: &[(String, Value)]) -> Json {
    Json::Obj(
        java_order(props)
            .into_iter()
            .map(|(k, v)| (k.clone(), view.row(v)))
            .collect(),
    )
}

impl View<'_> {
    /// Element id of a node.
    pub fn node_eid(&self, id: u64) -> String {
        format!("4:{}:{id}", self.uuid)
    }

    /// Element id of a relationship.
    pub fn rel_eid(&self, id: u64) -> String {
        format!("5:{}:{id}", self.uuid)
    }

    /// The `row` rendering.
    pub fn row(&self, v: &Value) -> Json {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::Int(*i),
            Value::Float(f) => Json::Float(*f),
            Value::Str(s) => Json::Str(s.clone()),
            Value::Bytes(b) => Json::Arr(b.iter().map(|x| Json::Int(*x as i64)).collect()),
            Value::List(l) | Value::Array(l) => Json::Arr(l.iter().map(|x| self.row(x)).collect()),
            Value::Map(m) => Json::Obj(
                java_order(m)
                    .into_iter()
                    .map(|(k, x)| (k.clone(), self.row(x)))
                    .collect(),
            ),
            Value::Node(id) => match self.graph.nodes.get(id) {
                Some(n) => props_json(self, &n.props),
                None => Json::Obj(vec![]),
            },
            Value::Rel(id) => match self.graph.rels.get(id) {
                Some(r) => props_json(self, &r.props),
                None => Json::Obj(vec![]),
            },
            Value::Path(items) => Json::Arr(items.iter().map(|x| self.row(x)).collect()),
            Value::Virtual(vn) => props_json(self, &vn.props),
            Value::Point(p) => point_json(p),
            other => Json::Str(other.temporal_string().unwrap_or_default()),
        }
    }

    fn entity_meta(&self, v: &Value) -> Json {
        match v {
            Value::Node(id) => Json::obj([
                ("id", Json::Int(*id as i64)),
                ("elementId", Json::Str(self.node_eid(*id))),
                ("type", Json::str("node")),
                ("deleted", Json::Bool(!self.graph.nodes.contains_key(id))),
            ]),
            Value::Rel(id) => Json::obj([
                ("id", Json::Int(*id as i64)),
                ("elementId", Json::Str(self.rel_eid(*id))),
                ("type", Json::str("relationship")),
                ("deleted", Json::Bool(!self.graph.rels.contains_key(id))),
            ]),
            Value::Virtual(vn) => Json::obj([
                ("id", Json::Int(vn.id)),
                ("elementId", Json::Str(vn.id.to_string())),
                (
                    "type",
                    Json::str(if vn.node { "node" } else { "relationship" }),
                ),
                ("deleted", Json::Bool(false)),
            ]),
            _ => Json::Null,
        }
    }

    /// Appends the depth-first flattened `meta` entries of `v`.
    pub fn meta(&self, v: &Value, out: &mut Vec<Json>) {
        match v {
            Value::List(l) => l.iter().for_each(|x| self.meta(x, out)),
            // A stored array is one value, unless its elements are temporal or spatial
            // (Neo4j reads those back as lists of values).
            Value::Array(a) if !a.is_empty() && a.iter().all(|x| x.meta_type().is_some()) => {
                a.iter().for_each(|x| self.meta(x, out))
            }
            Value::Array(_) => out.push(Json::Null),
            Value::Map(m) => java_order(m)
                .into_iter()
                .for_each(|(_, x)| self.meta(x, out)),
            Value::Node(_) | Value::Rel(_) | Value::Virtual(_) => out.push(self.entity_meta(v)),
            Value::Path(items) => out.push(Json::Arr(
                items.iter().map(|x| self.entity_meta(x)).collect(),
            )),
            other => match other.meta_type() {
                Some(t) => out.push(Json::obj([("type", Json::str(t))])),
                None => out.push(Json::Null),
            },
        }
    }

    /// Nodes and relationships a value reaches (relationship endpoints included).
    pub fn collect(&self, v: &Value, nodes: &mut Vec<Value>, rels: &mut Vec<Value>) {
        let push = |list: &mut Vec<Value>, x: &Value| {
            if !list.contains(x) {
                list.push(x.clone());
            }
        };
        match v {
            Value::Node(_) => push(nodes, v),
            Value::Virtual(vn) if vn.node => push(nodes, v),
            Value::Rel(id) => {
                if let Some(r) = self.graph.rels.get(id) {
                    push(nodes, &Value::Node(r.start));
                    push(nodes, &Value::Node(r.end));
                }
                push(rels, v);
            }
            Value::List(l) | Value::Path(l) => l.iter().for_each(|x| self.collect(x, nodes, rels)),
            Value::Map(m) => m.iter().for_each(|(_, x)| self.collect(x, nodes, rels)),
            _ => {}
        }
    }

    /// The `graph` object of one row.
    pub fn graph_json(&self, row: &[Value]) -> Json {
        let (mut nodes, mut rels) = (Vec::new(), Vec::new());
        for v in row {
            self.collect(v, &mut nodes, &mut rels);
        }
        let nodes: Vec<Json> = nodes
            .iter()
            .map(|n| match n {
                Value::Node(id) => match self.graph.nodes.get(id) {
                    Some(rec) => Json::obj([
                        ("id", Json::Str(id.to_string())),
                        ("elementId", Json::Str(self.node_eid(*id))),
                        (
                            "labels",
                            Json::Arr(rec.labels.iter().map(|l| Json::Str(l.clone())).collect()),
                        ),
                        ("properties", props_json(self, &rec.props)),
                    ]),
                    None => Json::obj([
                        ("id", Json::Str(id.to_string())),
                        ("elementId", Json::Str(self.node_eid(*id))),
                        ("deleted", Json::Bool(true)),
                    ]),
                },
                Value::Virtual(vn) => Json::obj([
                    ("id", Json::Str(vn.id.to_string())),
                    ("elementId", Json::Str(vn.id.to_string())),
                    (
                        "labels",
                        Json::Arr(vn.labels.iter().map(|l| Json::Str(l.clone())).collect()),
                    ),
                    ("properties", props_json(self, &vn.props)),
                ]),
                _ => Json::Null,
            })
            .collect();
        let rels: Vec<Json> = rels
            .iter()
            .map(|r| match r {
                Value::Rel(id) => match self.graph.rels.get(id) {
                    Some(rec) => Json::obj([
                        ("id", Json::Str(id.to_string())),
                        ("elementId", Json::Str(self.rel_eid(*id))),
                        ("type", Json::Str(rec.rel_type.clone())),
                        ("startNode", Json::Str(rec.start.to_string())),
                        ("startNodeElementId", Json::Str(self.node_eid(rec.start))),
                        ("endNode", Json::Str(rec.end.to_string())),
                        ("endNodeElementId", Json::Str(self.node_eid(rec.end))),
                        ("properties", props_json(self, &rec.props)),
                    ]),
                    None => Json::obj([
                        ("id", Json::Str(id.to_string())),
                        ("elementId", Json::Str(self.rel_eid(*id))),
                        ("deleted", Json::Bool(true)),
                    ]),
                },
                _ => Json::Null,
            })
            .collect();
        Json::obj([
            ("nodes", Json::Arr(nodes)),
            ("relationships", Json::Arr(rels)),
        ])
    }

    /// The legacy `rest` rendering (entities with their metadata).
    pub fn rest(&self, v: &Value) -> Json {
        match v {
            Value::Node(id) => match self.graph.nodes.get(id) {
                Some(n) => Json::obj([
                    (
                        "metadata",
                        Json::obj([
                            ("id", Json::Int(*id as i64)),
                            (
                                "labels",
                                Json::Arr(n.labels.iter().map(|l| Json::Str(l.clone())).collect()),
                            ),
                        ]),
                    ),
                    ("data", props_json(self, &n.props)),
                ]),
                None => Json::Obj(vec![]),
            },
            Value::Rel(id) => match self.graph.rels.get(id) {
                Some(r) => Json::obj([
                    (
                        "metadata",
                        Json::obj([
                            ("id", Json::Int(*id as i64)),
                            ("type", Json::Str(r.rel_type.clone())),
                        ]),
                    ),
                    ("data", props_json(self, &r.props)),
                ]),
                None => Json::Obj(vec![]),
            },
            Value::List(l) | Value::Array(l) | Value::Path(l) => {
                Json::Arr(l.iter().map(|x| self.rest(x)).collect())
            }
            Value::Map(m) => Json::Obj(m.iter().map(|(k, x)| (k.clone(), self.rest(x))).collect()),
            other => self.row(other),
        }
    }

    /// JOLT: `v2` uses element ids; `strict` tags every value.
    pub fn jolt(&self, v: &Value, strict: bool, v2: bool) -> Json {
        let tag = |k: &str, j: Json| Json::Obj(vec![(k.to_owned(), j)]);
        let props = |p: &[(String, Value)]| -> Json {
            Json::Obj(
                java_order(p)
                    .into_iter()
                    .map(|(k, x)| (k.clone(), self.jolt(x, strict, v2)))
                    .collect(),
            )
        };
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => {
                if strict {
                    tag("?", Json::Str(b.to_string()))
                } else {
                    Json::Bool(*b)
                }
            }
            Value::Int(i) => {
                if strict || *i > i32::MAX as i64 || *i < i32::MIN as i64 {
                    tag("Z", Json::Str(i.to_string()))
                } else {
                    Json::Int(*i)
                }
            }
            Value::Float(f) => tag("R", Json::Str(java_double(*f))),
            Value::Str(s) => {
                if strict {
                    tag("U", Json::Str(s.clone()))
                } else {
                    Json::Str(s.clone())
                }
            }
            Value::Bytes(b) => tag(
                "#",
                Json::Str(
                    b.iter()
                        .map(|x| format!("{:02X}", *x as u8))
                        .collect::<String>(),
                ),
            ),
            Value::List(l) | Value::Array(l) => {
                let a = Json::Arr(l.iter().map(|x| self.jolt(x, strict, v2)).collect());
                if strict {
                    tag("[]", a)
                } else {
                    a
                }
            }
            Value::Map(m) => {
                let o = props(m);
                if strict {
                    tag("{}", o)
                } else {
                    o
                }
            }
            Value::Node(id) => {
                let (labels, p) = match self.graph.nodes.get(id) {
                    Some(n) => (n.labels.clone(), props(&n.props)),
                    None => (vec![], Json::Obj(vec![])),
                };
                let idj = if v2 {
                    Json::Str(self.node_eid(*id))
                } else {
                    Json::Int(*id as i64)
                };
                tag(
                    "()",
                    Json::Arr(vec![
                        idj,
                        Json::Arr(labels.into_iter().map(Json::Str).collect()),
                        p,
                    ]),
                )
            }
            Value::Rel(id) => {
                let Some(r) = self.graph.rels.get(id) else {
                    return tag("->", Json::Arr(vec![]));
                };
                let (i, s, e) = if v2 {
                    (
                        Json::Str(self.rel_eid(*id)),
                        Json::Str(self.node_eid(r.start)),
                        Json::Str(self.node_eid(r.end)),
                    )
                } else {
                    (
                        Json::Int(*id as i64),
                        Json::Int(r.start as i64),
                        Json::Int(r.end as i64),
                    )
                };
                tag(
                    "->",
                    Json::Arr(vec![
                        i,
                        s,
                        Json::Str(r.rel_type.clone()),
                        e,
                        props(&r.props),
                    ]),
                )
            }
            Value::Path(items) => tag(
                "..",
                Json::Arr(items.iter().map(|x| self.jolt(x, strict, v2)).collect()),
            ),
            Value::Virtual(vn) => {
                if vn.node {
                    tag(
                        "()",
                        Json::Arr(vec![
                            if v2 {
                                Json::Str(vn.id.to_string())
                            } else {
                                Json::Int(vn.id)
                            },
                            Json::Arr(vn.labels.iter().map(|l| Json::Str(l.clone())).collect()),
                            props(&vn.props),
                        ]),
                    )
                } else {
                    tag("->", Json::Arr(vec![Json::Int(vn.id)]))
                }
            }
            Value::Point(p) => tag(
                "@",
                Json::Str(format!(
                    "SRID={};POINT{}({})",
                    p.crs.srid,
                    if p.coords.len() == 3 { " Z " } else { "" }.trim_end(),
                    p.coords
                        .iter()
                        .map(|c| java_double(*c))
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
            ),
            other => tag("T", Json::Str(other.temporal_string().unwrap_or_default())),
        }
    }
}
