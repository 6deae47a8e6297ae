//! The fake's property graph: nodes, relationships, token names, schema (indexes and
//! uniqueness constraints), and internal ids allocated as Neo4j allocates them (the lowest
//! freed id first, so rolled-back and deleted ids come back).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::temporal::{self, Crs, Duration};
use super::value::{Point, Value};

/// A node's labels and properties.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRec {
    /// Labels, in the order they were added.
    pub labels: Vec<String>,
    /// Properties, in the order they were set.
    pub props: Vec<(String, Value)>,
}

/// A relationship's type, endpoints and properties.
#[derive(Clone, Debug, PartialEq)]
pub struct RelRec {
    /// Relationship type.
    pub rel_type: String,
    /// Start node id.
    pub start: u64,
    /// End node id.
    pub end: u64,
    /// Properties.
    pub props: Vec<(String, Value)>,
}

/// What an index or constraint is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityType {
    /// Nodes (by label).
    Node,
    /// Relationships (by type).
    Relationship,
}

impl EntityType {
    /// `NODE` / `RELATIONSHIP`.
    pub fn name(&self) -> &'static str {
        match self {
            EntityType::Node => "NODE",
            EntityType::Relationship => "RELATIONSHIP",
        }
    }
}

/// An index.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexRule {
    /// Schema rule id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// `RANGE`, `LOOKUP`, `TEXT`, `POINT`, `FULLTEXT`.
    pub kind: String,
    /// Nodes or relationships.
    pub entity: EntityType,
    /// Labels or types (`None` for lookup indexes).
    pub labels_or_types: Option<Vec<String>>,
    /// Properties (`None` for lookup indexes).
    pub properties: Option<Vec<String>>,
    /// `range-1.0`, `token-lookup-1.0`, `text-1.0`, `point-1.0`.
    pub provider: String,
    /// The constraint that owns it.
    pub owning_constraint: Option<String>,
}

/// A uniqueness constraint (the only kind Community has).
#[derive(Clone, Debug, PartialEq)]
pub struct ConstraintRule {
    /// Schema rule id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// The label.
    pub label: String,
    /// The properties.
    pub properties: Vec<String>,
    /// Name of its backing index.
    pub owned_index: String,
    /// Id of its backing index.
    pub owned_index_id: u64,
}

impl IndexRule {
    /// `CREATE … INDEX` / `CREATE CONSTRAINT` text, as `SHOW INDEXES YIELD *` gives it.
    pub fn create_statement(&self, constraints: &[ConstraintRule]) -> String {
        if let Some(owner) = &self.owning_constraint {
            if let Some(c) = constraints.iter().find(|c| &c.name == owner) {
                return c.create_statement();
            }
        }
        let props = |var: &str| {
            self.properties
                .iter()
                .flatten()
                .map(|p| format!("{var}.`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (self.kind.as_str(), self.entity) {
            ("LOOKUP", EntityType::Node) => format!(
                "CREATE LOOKUP INDEX `{}` FOR (n) ON EACH labels(n)",
                self.name
            ),
            ("LOOKUP", EntityType::Relationship) => format!(
                "CREATE LOOKUP INDEX `{}` FOR ()-[r]-() ON EACH type(r)",
                self.name
            ),
            (kind, EntityType::Node) => format!(
                "CREATE {kind} INDEX `{}` FOR (n:`{}`) ON ({})",
                self.name,
                self.labels_or_types
                    .iter()
                    .flatten()
                    .next()
                    .cloned()
                    .unwrap_or_default(),
                props("n")
            ),
            (kind, EntityType::Relationship) => format!(
                "CREATE {kind} INDEX `{}` FOR ()-[r:`{}`]-() ON ({})",
                self.name,
                self.labels_or_types
                    .iter()
                    .flatten()
                    .next()
                    .cloned()
                    .unwrap_or_default(),
                props("r")
            ),
        }
    }
}

impl ConstraintRule {
    /// `CREATE CONSTRAINT … IS UNIQUE OPTIONS {…}` as Neo4j prints it.
    pub fn create_statement(&self) -> String {
        let props = self
            .properties
            .iter()
            .map(|p| format!("n.`{p}`"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "CREATE CONSTRAINT `{}` FOR (n:`{}`) REQUIRE ({}) IS UNIQUE OPTIONS {{indexConfig: {{}}, indexProvider: 'range-1.0'}}",
            self.name, self.label, props
        )
    }

    /// `Constraint( id=7, name='…', type='UNIQUENESS', schema=(:L {k}), ownedIndex=6 )`.
    pub fn describe(&self) -> String {
        format!(
            "Constraint( id={}, name='{}', type='UNIQUENESS', schema=(:{} {{{}}}), ownedIndex={} )",
            self.id,
            self.name,
            self.label,
            self.properties.join(", "),
            self.owned_index_id
        )
    }
}

/// Ids handed out and freed, shared by all transactions of a database.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdPool {
    next: u64,
    free: BTreeSet<u64>,
}

impl IdPool {
    /// A pool whose next fresh id is `next`.
    pub fn starting_at(next: u64) -> Self {
        IdPool {
            next,
            free: BTreeSet::new(),
        }
    }

    /// The lowest free id.
    pub fn take(&mut self) -> u64 {
        if let Some(id) = self.free.pop_first() {
            return id;
        }
        self.next += 1;
        self.next - 1
    }

    /// Gives an id back.
    pub fn release(&mut self, id: u64) {
        if id + 1 == self.next {
            self.next -= 1;
            while self.next > 0 && self.free.remove(&(self.next - 1)) {
                self.next -= 1;
            }
        } else {
            self.free.insert(id);
        }
    }

    /// Marks an id as used (seeding with explicit ids).
    pub fn reserve(&mut self, id: u64) {
        if id >= self.next {
            for free in self.next..id {
                self.free.insert(free);
            }
            self.next = id + 1;
        } else {
            self.free.remove(&id);
        }
    }
}

/// A property graph with its schema and token names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// Nodes by id.
    pub nodes: BTreeMap<u64, Arc<NodeRec>>,
    /// Relationships by id.
    pub rels: BTreeMap<u64, Arc<RelRec>>,
    /// Indexes.
    pub indexes: Vec<IndexRule>,
    /// Constraints.
    pub constraints: Vec<ConstraintRule>,
    /// Label names ever used, in creation order.
    pub labels: Vec<String>,
    /// Relationship type names ever used.
    pub rel_types: Vec<String>,
    /// Property key names ever used.
    pub prop_keys: Vec<String>,
    /// Node ids.
    pub node_ids: IdPool,
    /// Relationship ids.
    pub rel_ids: IdPool,
    /// Schema rule ids (indexes and constraints share them).
    pub schema_ids: IdPool,
}

/// Node and relationship counts, in total and per label / type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// All nodes.
    pub nodes: u64,
    /// All relationships.
    pub relationships: u64,
    /// Nodes per label.
    pub labels: BTreeMap<String, u64>,
    /// Relationships per type.
    pub types: BTreeMap<String, u64>,
}

impl Graph {
    /// An empty graph with the two token-lookup indexes every new Neo4j 5 database has.
    pub fn new() -> Self {
        let mut g = Graph {
            schema_ids: IdPool::starting_at(1),
            ..Graph::default()
        };
        for (entity, name) in [
            (EntityType::Node, "index_343aff4e"),
            (EntityType::Relationship, "index_f7700477"),
        ] {
            let id = g.schema_ids.take();
            g.indexes.push(IndexRule {
                id,
                name: name.into(),
                kind: "LOOKUP".into(),
                entity,
                labels_or_types: None,
                properties: None,
                provider: "token-lookup-1.0".into(),
                owning_constraint: None,
            });
        }
        g
    }

    /// Records token names (labels, types, keys) as used.
    pub fn note_tokens(&mut self, labels: &[String], rel_type: Option<&str>, keys: &[&str]) {
        for l in labels {
            if !self.labels.contains(l) {
                self.labels.push(l.clone());
            }
        }
        if let Some(t) = rel_type {
            if !self.rel_types.iter().any(|x| x == t) {
                self.rel_types.push(t.to_owned());
            }
        }
        for k in keys {
            if !self.prop_keys.iter().any(|x| x == k) {
                self.prop_keys.push((*k).to_owned());
            }
        }
    }

    /// Adds a node with the next id (seeding from Rust).
    pub fn add_node(&mut self, labels: &[&str], props: Vec<(String, Value)>) -> u64 {
        let id = self.node_ids.take();
        self.insert_node(id, labels.iter().map(|s| s.to_string()).collect(), props);
        id
    }

    /// Adds a node under an explicit id.
    pub fn insert_node(&mut self, id: u64, labels: Vec<String>, props: Vec<(String, Value)>) {
        let props: Vec<(String, Value)> = props.into_iter().map(|(k, v)| (k, v.stored())).collect();
        self.node_ids.reserve(id);
        let keys: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
        let keys: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
        self.note_tokens(
            &labels,
            None,
            &keys.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        );
        self.nodes.insert(id, Arc::new(NodeRec { labels, props }));
    }

    /// Adds a relationship with the next id.
    pub fn add_rel(
        &mut self,
        rel_type: &str,
        start: u64,
        end: u64,
        props: Vec<(String, Value)>,
    ) -> u64 {
        let id = self.rel_ids.take();
        self.insert_rel(id, rel_type, start, end, props);
        id
    }

    /// Adds a relationship under an explicit id.
    pub fn insert_rel(
        &mut self,
        id: u64,
        rel_type: &str,
        start: u64,
        end: u64,
        props: Vec<(String, Value)>,
    ) {
        let props: Vec<(String, Value)> = props.into_iter().map(|(k, v)| (k, v.stored())).collect();
        self.rel_ids.reserve(id);
        let keys: Vec<String> = props.iter().map(|(k, _)| k.clone()).collect();
        self.note_tokens(
            &[],
            Some(rel_type),
            &keys.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        );
        self.rels.insert(
            id,
            Arc::new(RelRec {
                rel_type: rel_type.into(),
                start,
                end,
                props,
            }),
        );
    }

    /// Adds a range index on one label and property (seeding).
    pub fn add_range_index(&mut self, name: &str, label: &str, props: &[&str]) -> u64 {
        let id = self.schema_ids.take();
        self.note_tokens(&[label.to_owned()], None, props);
        self.indexes.push(IndexRule {
            id,
            name: name.into(),
            kind: "RANGE".into(),
            entity: EntityType::Node,
            labels_or_types: Some(vec![label.into()]),
            properties: Some(props.iter().map(|s| s.to_string()).collect()),
            provider: "range-1.0".into(),
            owning_constraint: None,
        });
        id
    }

    /// Adds a uniqueness constraint with its backing index (seeding).
    pub fn add_unique_constraint(&mut self, name: &str, label: &str, props: &[&str]) -> u64 {
        let index_id = self.schema_ids.take();
        self.note_tokens(&[label.to_owned()], None, props);
        self.indexes.push(IndexRule {
            id: index_id,
            name: name.into(),
            kind: "RANGE".into(),
            entity: EntityType::Node,
            labels_or_types: Some(vec![label.into()]),
            properties: Some(props.iter().map(|s| s.to_string()).collect()),
            provider: "range-1.0".into(),
            owning_constraint: Some(name.into()),
        });
        let id = self.schema_ids.take();
        self.constraints.push(ConstraintRule {
            id,
            name: name.into(),
            label: label.into(),
            properties: props.iter().map(|s| s.to_string()).collect(),
            owned_index: name.into(),
            owned_index_id: index_id,
        });
        id
    }

    /// Counts in total and per label and type.
    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            nodes: self.nodes.len() as u64,
            relationships: self.rels.len() as u64,
            ..Counts::default()
        };
        for n in self.nodes.values() {
            for l in &n.labels {
                *c.labels.entry(l.clone()).or_default() += 1;
            }
        }
        for r in self.rels.values() {
            *c.types.entry(r.rel_type.clone()).or_default() += 1;
        }
        c
    }

    /// A node's property.
    pub fn node_prop(&self, id: u64, key: &str) -> Option<&Value> {
        self.nodes
            .get(&id)?
            .props
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

// ---------------------------------------------------------------------------------------
// The store file: the graph as JSON, values tagged with their type.

fn value_to_store(v: &Value) -> serde_json::Value {
    use serde_json::json;
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => json!({ "bool": b }),
        Value::Int(i) => json!({ "int": i }),
        Value::Float(f) if f.is_finite() => json!({ "float": f }),
        Value::Float(f) => json!({ "float": super::value::java_double(*f) }),
        Value::Str(s) => json!({ "str": s }),
        Value::Bytes(b) => json!({ "bytes": b }),
        Value::List(l) | Value::Array(l) => {
            json!({ "list": l.iter().map(value_to_store).collect::<Vec<_>>() })
        }
        Value::Date(_)
        | Value::LocalTime(_)
        | Value::Time(..)
        | Value::LocalDateTime(_)
        | Value::DateTime(_)
        | Value::Duration(_) => {
            json!({ v.meta_type().unwrap(): v.temporal_string().unwrap() })
        }
        Value::Point(p) => json!({ "point": { "srid": p.crs.srid, "coords": p.coords } }),
        other => json!({ "str": format!("{other:?}") }),
    }
}

fn value_from_store(j: &serde_json::Value) -> Result<Value, String> {
    let obj = match j {
        serde_json::Value::Null => return Ok(Value::Null),
        serde_json::Value::Object(o) if o.len() == 1 => o,
        other => return Err(format!("bad stored value {other}")),
    };
    let (tag, v) = obj.iter().next().unwrap();
    let s = || v.as_str().ok_or_else(|| format!("bad {tag}"));
    let bad = |e: temporal::TemporalError| e.0;
    Ok(match tag.as_str() {
        "bool" => Value::Bool(v.as_bool().ok_or("bad bool")?),
        "int" => Value::Int(v.as_i64().ok_or("bad int")?),
        "float" => match v {
            serde_json::Value::String(s) => Value::Float(match s.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                _ => return Err("bad float".into()),
            }),
            n => Value::Float(n.as_f64().ok_or("bad float")?),
        },
        "str" => Value::Str(s()?.to_owned()),
        "bytes" => Value::Bytes(
            v.as_array()
                .ok_or("bad bytes")?
                .iter()
                .map(|b| b.as_i64().unwrap_or(0) as i8)
                .collect(),
        ),
        "list" => Value::Array(
            v.as_array()
                .ok_or("bad list")?
                .iter()
                .map(value_from_store)
                .collect::<Result<_, _>>()?,
        ),
        "date" => Value::Date(temporal::parse_date(s()?).map_err(bad)?),
        "localtime" => Value::LocalTime(temporal::parse_local_time(s()?).map_err(bad)?),
        "time" => {
            let (t, o) = temporal::parse_time(s()?).map_err(bad)?;
            Value::Time(t, o)
        }
        "localdatetime" => Value::LocalDateTime(temporal::parse_local_datetime(s()?).map_err(bad)?),
        "datetime" => Value::DateTime(temporal::parse_datetime(s()?).map_err(bad)?),
        "duration" => Value::Duration(Duration::parse(s()?).ok_or("bad duration")?),
        "point" => {
            let srid = v["srid"].as_i64().ok_or("bad point")?;
            Value::Point(Point {
                crs: Crs::by_srid(srid).ok_or("bad srid")?,
                coords: v["coords"]
                    .as_array()
                    .ok_or("bad point")?
                    .iter()
                    .map(|c| c.as_f64().unwrap_or(0.0))
                    .collect(),
            })
        }
        other => return Err(format!("unknown stored type {other}")),
    })
}

fn props_to_store(props: &[(String, Value)]) -> serde_json::Value {
    serde_json::Value::Array(
        props
            .iter()
            .map(|(k, v)| serde_json::json!([k, value_to_store(v)]))
            .collect(),
    )
}

fn props_from_store(j: &serde_json::Value) -> Result<Vec<(String, Value)>, String> {
    j.as_array()
        .ok_or("bad props")?
        .iter()
        .map(|pair| {
            let k = pair[0].as_str().ok_or("bad key")?.to_owned();
            Ok((k, value_from_store(&pair[1])?))
        })
        .collect()
}

fn strings(j: &serde_json::Value) -> Vec<String> {
    j.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Graph {
    /// The graph as the fake's store document.
    pub fn to_store_json(&self) -> serde_json::Value {
        use serde_json::json;
        json!({
            "labels": self.labels,
            "relationshipTypes": self.rel_types,
            "propertyKeys": self.prop_keys,
            "nextNodeId": self.node_ids.next,
            "freeNodeIds": self.node_ids.free,
            "nextRelationshipId": self.rel_ids.next,
            "freeRelationshipIds": self.rel_ids.free,
            "nextSchemaId": self.schema_ids.next,
            "indexes": self.indexes.iter().map(|i| json!({
                "id": i.id, "name": i.name, "type": i.kind, "entityType": i.entity.name(),
                "labelsOrTypes": i.labels_or_types, "properties": i.properties,
                "indexProvider": i.provider, "owningConstraint": i.owning_constraint,
            })).collect::<Vec<_>>(),
            "constraints": self.constraints.iter().map(|c| json!({
                "id": c.id, "name": c.name, "label": c.label, "properties": c.properties,
                "ownedIndex": c.owned_index, "ownedIndexId": c.owned_index_id,
            })).collect::<Vec<_>>(),
            "nodes": self.nodes.iter().map(|(id, n)| json!({
                "id": id, "labels": n.labels, "props": props_to_store(&n.props),
            })).collect::<Vec<_>>(),
            "relationships": self.rels.iter().map(|(id, r)| json!({
                "id": id, "type": r.rel_type, "start": r.start, "end": r.end,
                "props": props_to_store(&r.props),
            })).collect::<Vec<_>>(),
        })
    }

    /// A graph from the fake's store document.
    pub fn from_store_json(j: &serde_json::Value) -> Result<Graph, String> {
        let ids = |next: &str, free: &str| IdPool {
            next: j[next].as_u64().unwrap_or(0),
            free: j[free]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
                .unwrap_or_default(),
        };
        let mut g = Graph {
            labels: strings(&j["labels"]),
            rel_types: strings(&j["relationshipTypes"]),
            prop_keys: strings(&j["propertyKeys"]),
            node_ids: ids("nextNodeId", "freeNodeIds"),
            rel_ids: ids("nextRelationshipId", "freeRelationshipIds"),
            schema_ids: IdPool {
                next: j["nextSchemaId"].as_u64().unwrap_or(1),
                free: BTreeSet::new(),
            },
            ..Graph::default()
        };
        for i in j["indexes"].as_array().ok_or("no indexes")? {
            g.indexes.push(IndexRule {
                id: i["id"].as_u64().ok_or("bad index")?,
                name: i["name"].as_str().unwrap_or_default().into(),
                kind: i["type"].as_str().unwrap_or("RANGE").into(),
                entity: if i["entityType"] == "RELATIONSHIP" {
                    EntityType::Relationship
                } else {
                    EntityType::Node
                },
                labels_or_types: i["labelsOrTypes"]
                    .as_array()
                    .map(|_| strings(&i["labelsOrTypes"])),
                properties: i["properties"]
                    .as_array()
                    .map(|_| strings(&i["properties"])),
                provider: i["indexProvider"].as_str().unwrap_or("range-1.0").into(),
                owning_constraint: i["owningConstraint"].as_str().map(str::to_owned),
            });
        }
        for c in j["constraints"].as_array().ok_or("no constraints")? {
            g.constraints.push(ConstraintRule {
                id: c["id"].as_u64().ok_or("bad constraint")?,
                name: c["name"].as_str().unwrap_or_default().into(),
                label: c["label"].as_str().unwrap_or_default().into(),
                properties: strings(&c["properties"]),
                owned_index: c["ownedIndex"].as_str().unwrap_or_default().into(),
                owned_index_id: c["ownedIndexId"].as_u64().unwrap_or(0),
            });
        }
        for n in j["nodes"].as_array().ok_or("no nodes")? {
            let id = n["id"].as_u64().ok_or("bad node id")?;
            g.nodes.insert(
                id,
                Arc::new(NodeRec {
                    labels: strings(&n["labels"]),
                    props: props_from_store(&n["props"])?,
                }),
            );
        }
        for r in j["relationships"].as_array().ok_or("no relationships")? {
            let id = r["id"].as_u64().ok_or("bad rel id")?;
            g.rels.insert(
                id,
                Arc::new(RelRec {
                    rel_type: r["type"].as_str().unwrap_or_default().into(),
                    start: r["start"].as_u64().ok_or("bad start")?,
                    end: r["end"].as_u64().ok_or("bad end")?,
                    props: props_from_store(&r["props"])?,
                }),
            );
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_ids_come_back_lowest_first() {
        let mut p = IdPool::starting_at(1001);
        assert_eq!(p.take(), 1001);
        assert_eq!(p.take(), 1002);
        assert_eq!(p.take(), 1003);
        p.release(1003);
        assert_eq!(p.take(), 1003);
        p.release(1001);
        assert_eq!(p.take(), 1001);
        assert_eq!(p.take(), 1004);
    }

    #[test]
    fn store_round_trip() {
        let mut g = Graph::new();
        let a = g.add_node(
            &["Person"],
            vec![
                ("pid".into(), Value::Int(1)),
                ("nan".into(), Value::Float(f64::NAN)),
                (
                    "d".into(),
                    Value::Date(temporal::parse_date("2024-02-29").unwrap()),
                ),
                ("b".into(), Value::Bytes(vec![0, -1])),
            ],
        );
        let b = g.add_node(&["Company"], vec![]);
        g.add_rel("WORKS_AT", a, b, vec![("since".into(), Value::Int(2001))]);
        g.add_unique_constraint("person_pid", "Person", &["pid"]);
        let back = Graph::from_store_json(&g.to_store_json()).unwrap();
        assert_eq!(back.counts(), g.counts());
        assert_eq!(back.constraints, g.constraints);
        assert!(matches!(back.node_prop(a, "nan"), Some(Value::Float(f)) if f.is_nan()));
        assert_eq!(back.node_prop(a, "b"), g.node_prop(a, "b"));
    }
}
