//! The fingerprint of a Neo4j database: exact counts (nodes, relationships, nodes per
//! label, relationships per type) and the schema, read over the HTTP API with the forms E2
//! and E3 of `crates/testkit/src/fake_neo4j/EXPORT_FORMS.md`.

use std::collections::{BTreeMap, BTreeSet};

use manifest::fingerprint::Neo4jStats;
use serde_json::Value;

use crate::client::{Access, Client, ResultSet, Statement};
use crate::error::Error;

/// E2: four statements in one request, so that the four counts agree with each other.
pub const COUNTS: [&str; 4] = [
    "MATCH (n) RETURN count(n) AS nodes",
    "MATCH ()-[r]->() RETURN count(r) AS relationships",
    "MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS count ORDER BY label",
    "MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS count ORDER BY type",
];

/// E3: constraints and indexes with the text that recreates them.
pub const SCHEMA: [&str; 2] = [
    "SHOW CONSTRAINTS YIELD name, type, entityType, labelsOrTypes, properties, createStatement",
    "SHOW INDEXES YIELD name, type, entityType, labelsOrTypes, properties, owningConstraint, createStatement",
];

/// Exact counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// All nodes.
    pub nodes: u64,
    /// All relationships.
    pub relationships: u64,
    /// Label → nodes.
    pub labels: BTreeMap<String, u64>,
    /// Type → relationships.
    pub types: BTreeMap<String, u64>,
}

impl Counts {
    /// `12 nodes, 30 relationships`.
    pub fn summary(&self) -> String {
        format!("{} nodes, {} relationships", self.nodes, self.relationships)
    }
}

/// A constraint or an index.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SchemaKind {
    /// A constraint (its backing index comes with it).
    Constraint,
    /// An index owned by no constraint.
    Index,
}

/// One schema rule to keep: every constraint, and every index that is not a `LOOKUP` index
/// (every database has those) and not owned by a constraint (it comes with it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaRule {
    /// Constraint or index.
    pub kind: SchemaKind,
    /// Its name.
    pub name: String,
    /// `name: TYPE ENTITY :Label(prop, …)`, as the fingerprint lists it.
    pub description: String,
    /// The statement that recreates it (`createStatement`).
    pub create: String,
}

/// Counts and schema at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Counts.
    pub counts: Counts,
    /// Constraints and indexes to keep, sorted.
    pub schema: Vec<SchemaRule>,
}

impl Snapshot {
    /// As the typed fingerprint of a manifest's `stats`.
    pub fn fingerprint(&self) -> Neo4jStats {
        fingerprint(&self.counts, &self.schema)
    }
}

/// The typed fingerprint of `counts` and `schema`.
pub fn fingerprint(counts: &Counts, schema: &[SchemaRule]) -> Neo4jStats {
    let of = |kind| -> BTreeSet<String> {
        schema
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.description.clone())
            .collect()
    };
    Neo4jStats {
        nodes: counts.nodes,
        relationships: counts.relationships,
        labels: counts.labels.clone(),
        relationship_types: counts.types.clone(),
        constraints: of(SchemaKind::Constraint),
        indexes: of(SchemaKind::Index),
    }
}

/// Counts of `db` (E2).
pub fn counts(client: &Client, db: &str) -> Result<Counts, Error> {
    let statements: Vec<Statement> = COUNTS.iter().map(|s| Statement::new(*s)).collect();
    let r = client.run(db, "the counts", &statements, Access::Read)?;
    let single = |r: &ResultSet, what: &str| -> Result<u64, Error> {
        r.data
            .first()
            .and_then(|row| row.row.first())
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                Error::Protocol(format!(
                    "Neo4j answered the count of {what} without a number"
                ))
            })
    };
    let pairs = |r: &ResultSet, what: &str| -> Result<BTreeMap<String, u64>, Error> {
        r.data
            .iter()
            .map(|row| {
                match (
                    row.row.first().and_then(Value::as_str),
                    row.row.get(1).and_then(Value::as_u64),
                ) {
                    (Some(k), Some(n)) => Ok((k.to_owned(), n)),
                    _ => Err(Error::Protocol(format!(
                        "Neo4j answered the counts per {what} with a malformed row"
                    ))),
                }
            })
            .collect()
    };
    Ok(Counts {
        nodes: single(&r[0], "nodes")?,
        relationships: single(&r[1], "relationships")?,
        labels: pairs(&r[2], "label")?,
        types: pairs(&r[3], "type")?,
    })
}

/// The schema rules of `db` to keep (E3), sorted by kind and name.
pub fn schema(client: &Client, db: &str) -> Result<Vec<SchemaRule>, Error> {
    let statements: Vec<Statement> = SCHEMA.iter().map(|s| Statement::new(*s)).collect();
    let r = client.run(db, "the schema listing", &statements, Access::Read)?;
    let malformed =
        |what: &str| Error::Protocol(format!("Neo4j answered SHOW {what} with a malformed row"));
    let mut rules = Vec::new();
    for row in &r[0].data {
        let v = &row.row;
        let (Some(name), Some(create)) = (
            v.first().and_then(Value::as_str),
            v.get(5).and_then(Value::as_str),
        ) else {
            return Err(malformed("CONSTRAINTS"));
        };
        rules.push(SchemaRule {
            kind: SchemaKind::Constraint,
            name: name.to_owned(),
            description: describe(v),
            create: create.to_owned(),
        });
    }
    for row in &r[1].data {
        let v = &row.row;
        let (Some(name), Some(kind)) = (
            v.first().and_then(Value::as_str),
            v.get(1).and_then(Value::as_str),
        ) else {
            return Err(malformed("INDEXES"));
        };
        if kind == "LOOKUP" || !v.get(5).is_none_or(Value::is_null) {
            continue;
        }
        let create = v
            .get(6)
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("INDEXES"))?;
        rules.push(SchemaRule {
            kind: SchemaKind::Index,
            name: name.to_owned(),
            description: describe(v),
            create: create.to_owned(),
        });
    }
    rules.sort();
    Ok(rules)
}

/// `name: TYPE ENTITY :Label(prop, …)` from a SHOW row (name, type, entityType,
/// labelsOrTypes, properties, …).
fn describe(v: &[Value]) -> String {
    let list = |i: usize| -> String {
        v.get(i)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let text = |i: usize| v.get(i).and_then(Value::as_str).unwrap_or("");
    format!(
        "{}: {} {} :{}({})",
        text(0),
        text(1),
        text(2),
        list(3),
        list(4)
    )
}

/// Counts and schema of `db`.
pub fn snapshot(client: &Client, db: &str) -> Result<Snapshot, Error> {
    Ok(Snapshot {
        counts: counts(client, db)?,
        schema: schema(client, db)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_rules_are_described_alike_whatever_the_method() {
        let row = [
            json!("person_pid"),
            json!("UNIQUENESS"),
            json!("NODE"),
            json!(["Person"]),
            json!(["pid", "x"]),
        ];
        assert_eq!(
            describe(&row),
            "person_pid: UNIQUENESS NODE :Person(pid, x)"
        );
        let lookup = [
            json!("idx"),
            json!("LOOKUP"),
            json!("NODE"),
            Value::Null,
            Value::Null,
        ];
        assert_eq!(describe(&lookup), "idx: LOOKUP NODE :()");
    }
}
