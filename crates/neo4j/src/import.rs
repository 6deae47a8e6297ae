//! The online import: an export of [`crate::export`] into a database over the HTTP API,
//! with the forms I1–I4 of `crates/testkit/src/fake_neo4j/EXPORT_FORMS.md`.
//!
//! The schema goes first, in a request of its own (schema and data never share a
//! transaction in Neo4j). Nodes follow in batched `UNWIND $rows` statements, one per
//! label set, each returning the new id of every exported id; relationships then find
//! their nodes by those ids, in batches per type. The artifact streams through: memory
//! holds one batch per label set or type, and the id map (16 bytes a node).

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use manifest::ndjson::JsonLinesReader;
use serde_json::{json, Map, Value};
use toolkit::progress::Progress;

use crate::client::{Access, Client, Statement};
use crate::error::Error;
use crate::format::{self, quote, Header, Node, Record, Rel};
use crate::stats::{SchemaKind, SchemaRule};

/// How to import.
#[derive(Clone, Copy, Debug)]
pub struct ImportOptions {
    /// Rows per `UNWIND` statement.
    pub batch_size: usize,
}

/// What an import did.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The artifact's header.
    pub header: Header,
    /// Schema rules created.
    pub schema: usize,
    /// Nodes created.
    pub nodes: u64,
    /// Relationships created.
    pub relationships: u64,
}

/// Nodes deleted per request when clearing a database.
const DELETE_BATCH: u64 = 10_000;

/// I1: deletes every node and relationship of `db`, then `schema` (each its own request).
pub fn clear(client: &Client, db: &str, schema: &[SchemaRule]) -> Result<u64, Error> {
    let mut deleted = 0;
    loop {
        toolkit::interrupt::check().map_err(|_| Error::Interrupted)?;
        let st = Statement::with(
            "MATCH (n) WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS deleted",
            json!({ "limit": DELETE_BATCH }),
        );
        let r = client.run(db, "deleting the target's nodes", &[st], Access::Write)?;
        let n = r[0]
            .data
            .first()
            .and_then(|row| row.row.first())
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::Protocol("Neo4j answered the delete without a count".into()))?;
        if n == 0 {
            break;
        }
        deleted += n;
    }
    if !schema.is_empty() {
        let drops: Vec<Statement> = schema
            .iter()
            .map(|rule| {
                let what = match rule.kind {
                    SchemaKind::Constraint => "CONSTRAINT",
                    SchemaKind::Index => "INDEX",
                };
                Statement::new(format!("DROP {what} {} IF EXISTS", quote(&rule.name)))
            })
            .collect();
        client.run(db, "dropping the target's schema", &drops, Access::Write)?;
    }
    Ok(deleted)
}

/// Batches waiting to be sent, by label set or type.
struct Batches<T> {
    size: usize,
    waiting: BTreeMap<Vec<String>, Vec<T>>,
}

impl<T> Batches<T> {
    fn new(size: usize) -> Self {
        Batches {
            size: size.max(1),
            waiting: BTreeMap::new(),
        }
    }

    /// Adds `item` under `key`; returns a full batch to send.
    fn push(&mut self, key: Vec<String>, item: T) -> Option<(Vec<String>, Vec<T>)> {
        let batch = self.waiting.entry(key.clone()).or_default();
        batch.push(item);
        if batch.len() >= self.size {
            let full = std::mem::take(batch);
            return Some((key, full));
        }
        None
    }

    /// Every batch that is not empty.
    fn drain(&mut self) -> Vec<(Vec<String>, Vec<T>)> {
        std::mem::take(&mut self.waiting)
            .into_iter()
            .filter(|(_, b)| !b.is_empty())
            .collect()
    }
}

/// `(kind, key)` pairs of a batch's `typed` maps, checked: the kind becomes a function
/// name in the statement, so only the kinds of [`format::conversion`] pass.
fn typed_keys<'a>(
    typed: impl Iterator<Item = &'a Map<String, Value>>,
) -> Result<BTreeSet<(String, String)>, Error> {
    let mut keys = BTreeSet::new();
    for t in typed {
        for (kind, values) in t {
            if format::conversion(kind).is_none() {
                return Err(Error::Artifact(format!(
                    "the export holds values of kind {kind:?}, which this version does not know"
                )));
            }
            let values = values
                .as_object()
                .ok_or_else(|| Error::Artifact(format!("typed.{kind} is not a map")))?;
            for key in values.keys() {
                keys.insert((kind.clone(), key.clone()));
            }
        }
    }
    Ok(keys)
}

/// ` SET n.`k` = coalesce(date(row.typed.date.`k`), n.`k`), …` for the typed keys.
fn conversions(keys: &BTreeSet<(String, String)>, var: &str) -> String {
    if keys.is_empty() {
        return String::new();
    }
    let sets: Vec<String> = keys
        .iter()
        .map(|(kind, key)| {
            let (f, list) = format::conversion(kind).expect("checked by typed_keys");
            let src = format!("row.typed.{kind}.{}", quote(key));
            let expr = if list {
                format!("[x IN {src} | {f}(x)]")
            } else {
                format!("{f}({src})")
            };
            format!("{var}.{k} = coalesce({expr}, {var}.{k})", k = quote(key))
        })
        .collect();
    format!(" SET {}", sets.join(", "))
}

struct Importer<'a> {
    client: &'a Client,
    db: &'a str,
    ids: Vec<(i64, i64)>,
    nodes: u64,
    relationships: u64,
    nodes_progress: &'a dyn Progress,
    rels_progress: &'a dyn Progress,
}

impl Importer<'_> {
    /// I3: one batch of nodes with the same labels.
    fn nodes(&mut self, labels: &[String], batch: Vec<Node>) -> Result<(), Error> {
        let keys = typed_keys(batch.iter().map(|n| &n.typed))?;
        let label_text: String = labels.iter().map(|l| format!(":{}", quote(l))).collect();
        let text = format!(
            "UNWIND $rows AS row CREATE (n{label_text}) SET n = properties(row.props){} \
             RETURN row.id AS old, id(n) AS new",
            conversions(&keys, "n")
        );
        let count = batch.len();
        let first = batch.first().map(|n| n.id).unwrap_or_default();
        let rows: Vec<Value> = batch
            .into_iter()
            .map(|n| json!({"id": n.id, "props": n.props, "typed": n.typed}))
            .collect();
        let what = format!("the batch of {count} nodes from id {first}");
        let r = self.client.run(
            self.db,
            &what,
            &[Statement::with(text, json!({ "rows": rows }))],
            Access::Write,
        )?;
        if r[0].data.len() != count {
            return Err(Error::Protocol(format!(
                "Neo4j created {} of {count} nodes of {what}",
                r[0].data.len()
            )));
        }
        for row in &r[0].data {
            match (
                row.row.first().and_then(Value::as_i64),
                row.row.get(1).and_then(Value::as_i64),
            ) {
                (Some(old), Some(new)) => self.ids.push((old, new)),
                _ => {
                    return Err(Error::Protocol(format!(
                        "Neo4j answered {what} without ids"
                    )))
                }
            }
        }
        self.nodes += count as u64;
        self.nodes_progress.inc(count as u64);
        Ok(())
    }

    /// After the last node: the id map, sorted for lookups.
    fn seal(&mut self) -> Result<(), Error> {
        self.ids.sort_unstable();
        if let Some(w) = self.ids.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::Artifact(format!(
                "the export holds node {} twice",
                w[0].0
            )));
        }
        self.nodes_progress.finish();
        Ok(())
    }

    fn new_id(&self, old: i64, rel: i64) -> Result<i64, Error> {
        self.ids
            .binary_search_by_key(&old, |(o, _)| *o)
            .map(|i| self.ids[i].1)
            .map_err(|_| {
                Error::Artifact(format!(
                    "relationship {rel} refers to node {old}, which the export does not hold"
                ))
            })
    }

    /// I4: one batch of relationships of one type.
    fn rels(&mut self, rel_type: &str, batch: Vec<Rel>) -> Result<(), Error> {
        let keys = typed_keys(batch.iter().map(|r| &r.typed))?;
        let text = format!(
            "UNWIND $rows AS row MATCH (a) WHERE id(a) = row.start MATCH (b) WHERE id(b) = row.end \
             CREATE (a)-[r:{}]->(b) SET r = properties(row.props){} RETURN count(r) AS created",
            quote(rel_type),
            conversions(&keys, "r")
        );
        let count = batch.len();
        let first = batch.first().map(|r| r.id).unwrap_or_default();
        let mut rows = Vec::with_capacity(count);
        for r in batch {
            let (start, end) = (self.new_id(r.start, r.id)?, self.new_id(r.end, r.id)?);
            rows.push(json!({"start": start, "end": end, "props": r.props, "typed": r.typed}));
        }
        let what = format!("the batch of {count} :{rel_type} relationships from id {first}");
        let r = self.client.run(
            self.db,
            &what,
            &[Statement::with(text, json!({ "rows": rows }))],
            Access::Write,
        )?;
        let created = r[0]
            .data
            .first()
            .and_then(|row| row.row.first())
            .and_then(Value::as_u64);
        if created != Some(count as u64) {
            return Err(Error::Protocol(format!(
                "Neo4j created {} of {count} relationships of {what}: their nodes were not found",
                created.map_or("none".into(), |c| c.to_string())
            )));
        }
        self.relationships += count as u64;
        self.rels_progress.inc(count as u64);
        Ok(())
    }
}

/// Imports the JSON lines of an export (decompressed) from `input` into `db`, which the
/// caller made sure is empty. `source_name` names the file in messages.
pub fn import(
    client: &Client,
    db: &str,
    input: impl BufRead,
    source_name: &str,
    options: ImportOptions,
    nodes_progress: &dyn Progress,
    rels_progress: &dyn Progress,
) -> Result<Imported, Error> {
    let mut records = JsonLinesReader::<_, Record>::new(input, source_name);
    let bad = |e: manifest::ndjson::ReadError| match e {
        manifest::ndjson::ReadError::Io { source, .. } => {
            Error::io(format!("cannot read {source_name}"))(source)
        }
        other => Error::Artifact(format!("{other}")),
    };
    let header = match records.next() {
        Some(Ok(Record::Header(h))) if h.format == format::EXPORT_FORMAT => h,
        Some(Ok(Record::Header(h))) => {
            return Err(Error::Artifact(format!(
                "{source_name} is a {:?} export; this version reads {:?}",
                h.format,
                format::EXPORT_FORMAT
            )))
        }
        Some(Ok(_)) => {
            return Err(Error::Artifact(format!(
                "{source_name} does not start with an export header"
            )))
        }
        Some(Err(e)) => return Err(bad(e)),
        None => return Err(Error::Artifact(format!("{source_name} is empty"))),
    };
    let mut importer = Importer {
        client,
        db,
        ids: Vec::new(),
        nodes: 0,
        relationships: 0,
        nodes_progress,
        rels_progress,
    };
    let mut schema: Vec<String> = Vec::new();
    let mut schema_done = false;
    let mut node_batches: Batches<Node> = Batches::new(options.batch_size);
    let mut rel_batches: Batches<Rel> = Batches::new(options.batch_size);
    let mut in_rels = false;
    let mut end = None;
    for record in records.by_ref() {
        toolkit::interrupt::check().map_err(|_| Error::Interrupted)?;
        let record = record.map_err(bad)?;
        if end.is_some() {
            return Err(Error::Artifact(format!(
                "{source_name} goes on after its end record"
            )));
        }
        if !matches!(record, Record::Schema { .. }) && !schema_done {
            schema_done = true;
            if !schema.is_empty() {
                let statements: Vec<Statement> = schema.iter().map(Statement::new).collect();
                client.run(db, "recreating the schema", &statements, Access::Write)?;
            }
        }
        match record {
            Record::Header(_) => {
                return Err(Error::Artifact(format!(
                    "{source_name} holds a second header"
                )))
            }
            Record::Schema { create, .. } if !schema_done => schema.push(create),
            Record::Schema { name, .. } => {
                return Err(Error::Artifact(format!(
                    "{source_name} holds schema rule {name} after the data"
                )))
            }
            Record::Node(node) => {
                if in_rels {
                    return Err(Error::Artifact(format!(
                        "{source_name} holds node {} after relationships",
                        node.id
                    )));
                }
                let mut key = node.labels.clone();
                key.sort();
                if let Some((labels, batch)) = node_batches.push(key, node) {
                    importer.nodes(&labels, batch)?;
                }
            }
            Record::Rel(rel) => {
                if !in_rels {
                    in_rels = true;
                    for (labels, batch) in node_batches.drain() {
                        importer.nodes(&labels, batch)?;
                    }
                    importer.seal()?;
                }
                if let Some((t, batch)) = rel_batches.push(vec![rel.rel_type.clone()], rel) {
                    importer.rels(&t[0], batch)?;
                }
            }
            Record::End {
                nodes,
                relationships,
            } => end = Some((nodes, relationships)),
        }
    }
    let Some((nodes, relationships)) = end else {
        return Err(Error::Artifact(format!(
            "{source_name} ends before its end record: the export is incomplete"
        )));
    };
    if !in_rels {
        for (labels, batch) in node_batches.drain() {
            importer.nodes(&labels, batch)?;
        }
        importer.seal()?;
    }
    for (t, batch) in rel_batches.drain() {
        importer.rels(&t[0], batch)?;
    }
    rels_progress.finish();
    if (importer.nodes, importer.relationships) != (nodes, relationships) {
        return Err(Error::Artifact(format!(
            "{source_name} says it holds {nodes} nodes and {relationships} relationships, but \
             {} and {} were read",
            importer.nodes, importer.relationships
        )));
    }
    Ok(Imported {
        header,
        schema: schema.len(),
        nodes,
        relationships,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_keys_become_coalesced_conversions() {
        let typed: Vec<Map<String, Value>> = vec![
            json!({"date": {"d": "2024-01-01"}, "point_list": {"p": []}})
                .as_object()
                .unwrap()
                .clone(),
            json!({"float": {"we`ird": "NaN"}})
                .as_object()
                .unwrap()
                .clone(),
        ];
        let keys = typed_keys(typed.iter()).unwrap();
        assert_eq!(
            conversions(&keys, "n"),
            " SET n.`d` = coalesce(date(row.typed.date.`d`), n.`d`), \
             n.`we``ird` = coalesce(toFloat(row.typed.float.`we``ird`), n.`we``ird`), \
             n.`p` = coalesce([x IN row.typed.point_list.`p` | point(x)], n.`p`)"
        );
        assert_eq!(conversions(&BTreeSet::new(), "r"), "");
        let evil = [json!({"x) DETACH DELETE n //": {"k": 1}})
            .as_object()
            .unwrap()
            .clone()];
        assert!(
            typed_keys(evil.iter()).is_err(),
            "a kind is never written into a statement unchecked"
        );
    }

    #[test]
    fn batches_fill_per_key_and_drain_what_is_left() {
        let mut b: Batches<u32> = Batches::new(2);
        assert!(b.push(vec!["A".into()], 1).is_none());
        assert!(b.push(vec!["B".into()], 2).is_none());
        assert_eq!(
            b.push(vec!["A".into()], 3),
            Some((vec!["A".into()], vec![1, 3]))
        );
        assert_eq!(b.drain(), vec![(vec!["B".to_owned()], vec![2])]);
        assert!(b.drain().is_empty());
    }
}
