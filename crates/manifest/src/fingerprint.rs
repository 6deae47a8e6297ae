//! Fingerprints: what a backup held, counted at backup time, and the one comparison every
//! restore tool and `integrity-check` use to prove a restore.
//!
//! A record's `stats` section is its kind's fingerprint:
//!
//! | kind | `stats` |
//! | --- | --- |
//! | `postgres` | `tables` (`schema.table` → exact rows), `large_objects`; optionally `content` (per-table content digests) and `schema` (catalog objects) |
//! | `qdrant` | `collections`: per collection `points`, `vectors` (name → `size`, `distance`; `""` is the unnamed vector), `sparse_vectors` (name → `modifier`), `payload_indexes` (field → `data_type`), `status` |
//! | `neo4j` | `nodes`, `relationships`, `labels` (label → nodes), `relationship_types` (type → relationships), `constraints`, `indexes` |
//!
//! The section stays raw JSON in [`Manifest`] so that a record whose `stats` a tool cannot
//! read still passes through every tool unchanged; [`Manifest::fingerprint`] reads it
//! when it matters — and a restore whose fingerprint is missing or unreadable is
//! *unverified*, never `ok`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::record::{Kind, Manifest};

/// PostgreSQL: exact rows per table, and large objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgStats {
    /// `schema.table` → exact row count.
    pub tables: BTreeMap<String, u64>,
    /// Large objects (`pg_largeobject_metadata`).
    pub large_objects: u64,
    /// Order-independent digests of every table's rows, taken in the same snapshot as the
    /// counts (`dump-pg --content-digest`); absent in older manifests and without the flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentDigests>,
    /// The catalog objects of the user tables (tables, columns, indexes, constraints), each
    /// as one line; absent in older manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<BTreeSet<String>>,
}

/// Per-table content digests and how they were computed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentDigests {
    /// The method, so that digests made differently are never compared
    /// (`md5-sum/1`: see `pgdump::stats`).
    pub algorithm: String,
    /// `schema.table` → digest (hex).
    pub tables: BTreeMap<String, String>,
}

/// Qdrant: one entry per collection in the artifact (one for a collection snapshot, all
/// for a full-storage snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QdrantStats {
    /// Collection name → what it held.
    pub collections: BTreeMap<String, CollectionStats>,
}

/// One Qdrant collection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionStats {
    /// Exact number of points.
    pub points: u64,
    /// Dense vectors: name → parameters; the unnamed vector of a single-vector collection
    /// is `""`.
    #[serde(default)]
    pub vectors: BTreeMap<String, VectorParams>,
    /// Sparse vectors: name → parameters.
    #[serde(default)]
    pub sparse_vectors: BTreeMap<String, SparseVectorParams>,
    /// Payload indexes: field → data type (`keyword`, `integer`…).
    #[serde(default)]
    pub payload_indexes: BTreeMap<String, String>,
    /// Collection status at backup time (`green`, `yellow`…): recorded, not compared (a
    /// freshly restored collection may still be optimizing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A dense vector's parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorParams {
    /// Dimensions.
    pub size: u64,
    /// `Cosine`, `Dot`, `Euclid`, `Manhattan`.
    pub distance: String,
}

/// A sparse vector's parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SparseVectorParams {
    /// `idf` or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modifier: Option<String>,
}

/// Neo4j: totals, nodes per label, relationships per type, and the schema.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neo4jStats {
    /// All nodes (labels overlap, so this is not the sum of `labels`).
    pub nodes: u64,
    /// All relationships.
    pub relationships: u64,
    /// Label → nodes carrying it.
    #[serde(default)]
    pub labels: BTreeMap<String, u64>,
    /// Relationship type → relationships of that type.
    #[serde(default)]
    pub relationship_types: BTreeMap<String, u64>,
    /// Constraints, each as `name: description`.
    #[serde(default)]
    pub constraints: BTreeSet<String>,
    /// Indexes, each as `name: description`.
    #[serde(default)]
    pub indexes: BTreeSet<String>,
}

/// A typed `stats` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fingerprint {
    /// Of a PostgreSQL database.
    Postgres(PgStats),
    /// Of Qdrant collections.
    Qdrant(QdrantStats),
    /// Of a Neo4j database.
    Neo4j(Neo4jStats),
}

/// Why a record has no usable fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintError {
    /// The record has no `stats` section.
    #[error("the manifest has no stats (fingerprint) to compare with")]
    Missing,
    /// The section is not this kind's fingerprint.
    #[error("the manifest's stats are not a valid {kind} fingerprint: {message}")]
    Malformed {
        /// The record's kind.
        kind: Kind,
        /// What is wrong.
        message: String,
    },
    /// This version knows no fingerprint for the kind.
    #[error("no fingerprint is defined for kind {0}")]
    UnknownKind(Kind),
}

impl Fingerprint {
    /// Reads `stats` as the fingerprint of `kind`.
    pub fn from_stats(kind: &Kind, stats: &Value) -> Result<Fingerprint, FingerprintError> {
        let malformed = |e: serde_json::Error| FingerprintError::Malformed {
            kind: kind.clone(),
            message: e.to_string(),
        };
        // serde reads a struct from an array too, by position: a fingerprint is an object.
        if !stats.is_object() {
            return Err(FingerprintError::Malformed {
                kind: kind.clone(),
                message: "expected a JSON object".into(),
            });
        }
        Ok(match kind {
            Kind::Postgres => {
                Fingerprint::Postgres(PgStats::deserialize(stats).map_err(malformed)?)
            }
            Kind::Qdrant => {
                Fingerprint::Qdrant(QdrantStats::deserialize(stats).map_err(malformed)?)
            }
            Kind::Neo4j => Fingerprint::Neo4j(Neo4jStats::deserialize(stats).map_err(malformed)?),
            Kind::Other(_) => return Err(FingerprintError::UnknownKind(kind.clone())),
        })
    }

    /// The kind this fingerprint describes.
    pub fn kind(&self) -> Kind {
        match self {
            Fingerprint::Postgres(_) => Kind::Postgres,
            Fingerprint::Qdrant(_) => Kind::Qdrant,
            Fingerprint::Neo4j(_) => Kind::Neo4j,
        }
    }

    /// The `stats` section.
    pub fn to_value(&self) -> Value {
        match self {
            Fingerprint::Postgres(s) => serde_json::to_value(s),
            Fingerprint::Qdrant(s) => serde_json::to_value(s),
            Fingerprint::Neo4j(s) => serde_json::to_value(s),
        }
        .expect("fingerprints serialize")
    }
}

impl Manifest {
    /// The record's fingerprint, read from `stats` for its kind.
    pub fn fingerprint(&self) -> Result<Fingerprint, FingerprintError> {
        let stats = self.stats.as_ref().ok_or(FingerprintError::Missing)?;
        Fingerprint::from_stats(&self.kind, stats)
    }

    /// Sets `stats` to `fingerprint`.
    pub fn set_fingerprint(&mut self, fingerprint: &Fingerprint) {
        self.stats = Some(fingerprint.to_value());
    }
}

/// One thing that differs between what was backed up and what is there now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    /// What differs, for people: `rows of public.users`, `points in docs`, `nodes :Person`.
    pub item: String,
    /// At backup time (`null`: absent).
    pub expected: Value,
    /// Now (`null`: absent).
    pub actual: Value,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Value| match v {
            Value::Null => "absent".to_owned(),
            other => other.to_string(),
        };
        write!(
            f,
            "{}: expected {}, found {}",
            self.item,
            show(&self.expected),
            show(&self.actual)
        )
    }
}

/// What an item of a fingerprint is about, for [`compare_only`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Aspect {
    /// How much there is: rows, large objects, points, nodes, relationships.
    #[default]
    Counts,
    /// What the rows hold: PostgreSQL content digests.
    Content,
    /// The shape: PostgreSQL catalog objects, Qdrant vectors and payload indexes, Neo4j
    /// constraints and indexes.
    Schema,
}

/// The outcome of [`compare`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// How many items were compared.
    pub checked: usize,
    /// The items that differ, each by name.
    pub differences: Vec<Difference>,
    /// Only items of this aspect are compared ([`compare_only`]); `None`: all.
    only: Option<Aspect>,
    /// The aspect of the items being compared now.
    current: Aspect,
}

impl Comparison {
    fn wanted(&self, aspect: Aspect) -> bool {
        self.only.is_none_or(|only| only == aspect)
    }

    fn aspect(&mut self, aspect: Aspect) -> &mut Self {
        self.current = aspect;
        self
    }

    /// True when nothing differs.
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }

    fn item(&mut self, item: String, expected: Value, actual: Value) {
        if !self.wanted(self.current) {
            return;
        }
        self.checked += 1;
        if expected != actual {
            self.differences.push(Difference {
                item,
                expected,
                actual,
            });
        }
    }

    /// Compares every key of `expected` with `actual`; with `extra_differs`, keys only in
    /// `actual` differ too.
    fn maps<V: Serialize + PartialEq>(
        &mut self,
        what: impl Fn(&str) -> String,
        expected: &BTreeMap<String, V>,
        actual: &BTreeMap<String, V>,
        extra_differs: bool,
    ) {
        for (key, want) in expected {
            self.item(what(key), json!(want), json!(actual.get(key)));
        }
        if extra_differs {
            for (key, got) in actual.iter().filter(|(k, _)| !expected.contains_key(*k)) {
                self.item(what(key), Value::Null, json!(got));
            }
        }
    }

    fn sets(&mut self, what: &str, expected: &BTreeSet<String>, actual: &BTreeSet<String>) {
        for item in expected.union(actual) {
            let present = |s: &BTreeSet<String>| s.contains(item).then(|| json!(true));
            self.item(
                format!("{what} {item}"),
                json!(present(expected)),
                json!(present(actual)),
            );
        }
    }
}

/// Compares what was backed up (`expected`) with what a database holds now (`actual`),
/// returning every difference by name.
///
/// What counts as a difference, per kind:
/// - PostgreSQL: a table of the backup missing or with another row count; the number of
///   large objects. Tables only in `actual` are not (`--clean` keeps objects that are not
///   in the dump).
/// - Qdrant: a collection of the backup missing; its points count; its vectors, sparse
///   vectors and payload indexes, in both directions (a restored collection has exactly
///   the backup's configuration). Collections only in `actual` are not (a DR instance may
///   hold others). The status is not compared.
/// - Neo4j: the totals, every label and relationship type count, constraints and
///   indexes, in both directions (a restore goes into an empty database).
///
/// Content digests (PostgreSQL) are compared per table of the backup's when both sides
/// have them, made the same way; the PostgreSQL schema, when the backup recorded it, item
/// by item of the backup's (objects only in `actual` are not differences).
pub fn compare(expected: &Fingerprint, actual: &Fingerprint) -> Comparison {
    compare_with(expected, actual, None)
}

/// [`compare`], restricted to the items of one [`Aspect`]: what `integrity-check` reports
/// as its `fingerprint`, `content` and `schema` checks. The three together are exactly
/// [`compare`].
pub fn compare_only(expected: &Fingerprint, actual: &Fingerprint, aspect: Aspect) -> Comparison {
    compare_with(expected, actual, Some(aspect))
}

fn compare_with(expected: &Fingerprint, actual: &Fingerprint, only: Option<Aspect>) -> Comparison {
    let mut c = Comparison {
        only,
        ..Comparison::default()
    };
    match (expected, actual) {
        (Fingerprint::Postgres(e), Fingerprint::Postgres(a)) => {
            c.maps(|t| format!("rows of {t}"), &e.tables, &a.tables, false);
            c.item(
                "large objects".into(),
                json!(e.large_objects),
                json!(a.large_objects),
            );
            if let (Some(want), Some(got)) = (&e.content, &a.content) {
                if want.algorithm == got.algorithm {
                    c.aspect(Aspect::Content).maps(
                        |t| format!("content of {t}"),
                        &want.tables,
                        &got.tables,
                        false,
                    );
                }
            }
            if let (Some(want), Some(got)) = (&e.schema, &a.schema) {
                c.aspect(Aspect::Schema);
                for item in want {
                    let present = got.contains(item).then(|| json!(true));
                    c.item(format!("schema {item}"), json!(true), json!(present));
                }
            }
        }
        (Fingerprint::Qdrant(e), Fingerprint::Qdrant(a)) => {
            for (name, want) in &e.collections {
                c.aspect(Aspect::Counts);
                let Some(got) = a.collections.get(name) else {
                    c.item(format!("collection {name}"), json!(true), Value::Null);
                    continue;
                };
                c.aspect(Aspect::Counts).item(
                    format!("points in {name}"),
                    json!(want.points),
                    json!(got.points),
                );
                c.aspect(Aspect::Schema);
                let vector = |v: &str| match v {
                    "" => format!("vector of {name}"),
                    v => format!("vector {name}/{v}"),
                };
                c.maps(vector, &want.vectors, &got.vectors, true);
                let sparse = |v: &str| format!("sparse vector {name}/{v}");
                c.maps(sparse, &want.sparse_vectors, &got.sparse_vectors, true);
                let index = |f: &str| format!("payload index {name}/{f}");
                c.maps(index, &want.payload_indexes, &got.payload_indexes, true);
            }
        }
        (Fingerprint::Neo4j(e), Fingerprint::Neo4j(a)) => {
            c.item("nodes".into(), json!(e.nodes), json!(a.nodes));
            c.item(
                "relationships".into(),
                json!(e.relationships),
                json!(a.relationships),
            );
            c.maps(|l| format!("nodes :{l}"), &e.labels, &a.labels, true);
            let rel = |t: &str| format!("relationships :{t}");
            c.maps(rel, &e.relationship_types, &a.relationship_types, true);
            c.aspect(Aspect::Schema);
            c.sets("constraint", &e.constraints, &a.constraints);
            c.sets("index", &e.indexes, &a.indexes);
        }
        (e, a) => c.item(
            "kind".into(),
            json!(e.kind().as_str()),
            json!(a.kind().as_str()),
        ),
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(tables: &[(&str, u64)], lo: u64) -> Fingerprint {
        Fingerprint::Postgres(PgStats {
            tables: tables.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            large_objects: lo,
            ..PgStats::default()
        })
    }

    /// A PostgreSQL fingerprint with content digests (`algorithm`, table → digest) and
    /// schema lines.
    fn pg_full(algorithm: &str, digests: &[(&str, &str)], schema: &[&str]) -> Fingerprint {
        Fingerprint::Postgres(PgStats {
            tables: digests.iter().map(|(t, _)| (t.to_string(), 3)).collect(),
            large_objects: 0,
            content: Some(ContentDigests {
                algorithm: algorithm.into(),
                tables: digests
                    .iter()
                    .map(|(t, d)| (t.to_string(), d.to_string()))
                    .collect(),
            }),
            schema: Some(schema.iter().map(|s| s.to_string()).collect()),
        })
    }

    #[test]
    fn table_of_postgres_content_and_schema_comparisons() {
        let base = pg_full(
            "md5-sum/1",
            &[("public.a", "aa")],
            &["table public.a", "column public.a.id bigint not null"],
        );
        // (actual, aspect, differing items, items checked in that aspect)
        #[rustfmt::skip]
        let cases: [(Fingerprint, Aspect, &[&str], usize); 9] = [
            (base.clone(), Aspect::Content, &[], 1),
            (base.clone(), Aspect::Schema, &[], 2),
            (base.clone(), Aspect::Counts, &[], 2),
            (pg_full("md5-sum/1", &[("public.a", "ab")], &["table public.a", "column public.a.id bigint not null"]), Aspect::Content, &["content of public.a"], 1),
            // Digests made another way are not compared.
            (pg_full("md5-sum/2", &[("public.a", "ab")], &["table public.a", "column public.a.id bigint not null"]), Aspect::Content, &[], 0),
            (pg_full("md5-sum/1", &[("public.a", "aa")], &["table public.a"]), Aspect::Schema, &["schema column public.a.id bigint not null"], 2),
            // Objects only in the target are not differences.
            (pg_full("md5-sum/1", &[("public.a", "aa")], &["table public.a", "column public.a.id bigint not null", "table public.b"]), Aspect::Schema, &[], 2),
            // A target without digests or schema: nothing to compare.
            (pg(&[("public.a", 3)], 0), Aspect::Content, &[], 0),
            (pg(&[("public.a", 3)], 0), Aspect::Schema, &[], 0),
        ];
        for (actual, aspect, want, checked) in cases {
            let c = compare_only(&base, &actual, aspect);
            assert_eq!(
                (items(&c), c.checked),
                (want.to_vec(), checked),
                "{aspect:?} {actual:?}"
            );
        }
        assert_eq!(compare(&base, &base).checked, 5);
    }

    #[test]
    fn the_aspects_add_up_to_the_whole_comparison() {
        let q = |points, size| {
            let mut c = CollectionStats {
                points,
                ..CollectionStats::default()
            };
            c.vectors.insert(
                "".into(),
                VectorParams {
                    size,
                    distance: "Cosine".into(),
                },
            );
            c.payload_indexes.insert("lang".into(), "keyword".into());
            Fingerprint::Qdrant(QdrantStats {
                collections: [("docs".to_string(), c)].into(),
            })
        };
        let cases = [(q(5, 8), q(4, 16), ["points in docs"], ["vector of docs"])];
        for (e, a, counts, schema) in cases {
            let all = compare(&e, &a);
            let c = compare_only(&e, &a, Aspect::Counts);
            let s = compare_only(&e, &a, Aspect::Schema);
            assert_eq!(items(&c), counts);
            assert_eq!(items(&s), schema);
            assert_eq!(c.checked + s.checked, all.checked);
            assert_eq!(
                c.differences.len() + s.differences.len(),
                all.differences.len()
            );
        }
        let n = neo4j(1000, &[("Person", 600)], &["person_pid"]);
        let m = neo4j(999, &[("Person", 600)], &[]);
        assert_eq!(
            items(&compare_only(&n, &m, Aspect::Schema)),
            ["constraint person_pid"]
        );
        assert_eq!(items(&compare_only(&n, &m, Aspect::Counts)), ["nodes"]);
    }

    fn items(c: &Comparison) -> Vec<&str> {
        c.differences.iter().map(|d| d.item.as_str()).collect()
    }

    #[test]
    fn table_of_postgres_comparisons() {
        // (expected, actual, differing items)
        let cases: [(Fingerprint, Fingerprint, &[&str]); 6] = [
            (pg(&[("public.a", 3)], 0), pg(&[("public.a", 3)], 0), &[]),
            (
                pg(&[("public.a", 3)], 0),
                pg(&[("public.a", 2)], 0),
                &["rows of public.a"],
            ),
            (pg(&[("public.a", 3)], 0), pg(&[], 0), &["rows of public.a"]),
            (
                pg(&[("public.a", 3)], 0),
                pg(&[("public.a", 3), ("x.extra", 9)], 0),
                &[],
            ),
            (pg(&[], 1), pg(&[], 0), &["large objects"]),
            (
                pg(&[], 0),
                Fingerprint::Neo4j(Neo4jStats::default()),
                &["kind"],
            ),
        ];
        for (expected, actual, want) in cases {
            assert_eq!(
                items(&compare(&expected, &actual)),
                want,
                "{expected:?} vs {actual:?}"
            );
        }
    }

    fn collection(
        points: u64,
        vectors: &[(&str, u64, &str)],
        indexes: &[(&str, &str)],
    ) -> CollectionStats {
        CollectionStats {
            points,
            vectors: vectors
                .iter()
                .map(|(n, size, d)| {
                    (
                        n.to_string(),
                        VectorParams {
                            size: *size,
                            distance: d.to_string(),
                        },
                    )
                })
                .collect(),
            sparse_vectors: BTreeMap::new(),
            payload_indexes: indexes
                .iter()
                .map(|(f, t)| (f.to_string(), t.to_string()))
                .collect(),
            status: Some("green".into()),
        }
    }

    fn qdrant(collections: &[(&str, CollectionStats)]) -> Fingerprint {
        Fingerprint::Qdrant(QdrantStats {
            collections: collections
                .iter()
                .map(|(n, c)| (n.to_string(), c.clone()))
                .collect(),
        })
    }

    #[test]
    fn table_of_qdrant_comparisons() {
        let docs = collection(
            52,
            &[("text", 8, "Cosine"), ("image", 4, "Dot")],
            &[("rank", "integer")],
        );
        let mut yellow = docs.clone();
        yellow.status = Some("yellow".into());
        let cases: [(Fingerprint, Fingerprint, &[&str]); 6] = [
            (
                qdrant(&[("docs", docs.clone())]),
                qdrant(&[("docs", yellow)]),
                &[],
            ),
            (
                qdrant(&[("docs", docs.clone())]),
                qdrant(&[(
                    "docs",
                    collection(
                        27,
                        &[("text", 8, "Cosine"), ("image", 4, "Dot")],
                        &[("rank", "integer")],
                    ),
                )]),
                &["points in docs"],
            ),
            (
                qdrant(&[("docs", docs.clone())]),
                qdrant(&[(
                    "docs",
                    collection(
                        52,
                        &[("text", 8, "Dot"), ("image", 4, "Dot")],
                        &[("rank", "integer")],
                    ),
                )]),
                &["vector docs/text"],
            ),
            (
                qdrant(&[("docs", docs.clone())]),
                qdrant(&[(
                    "docs",
                    collection(52, &[("text", 8, "Cosine"), ("image", 4, "Dot")], &[]),
                )]),
                &["payload index docs/rank"],
            ),
            (
                qdrant(&[("docs", docs.clone())]),
                qdrant(&[("other", docs.clone())]),
                &["collection docs"],
            ),
            (
                qdrant(&[("c", collection(1, &[("", 8, "Cosine")], &[]))]),
                qdrant(&[("c", collection(1, &[("", 16, "Cosine")], &[]))]),
                &["vector of c"],
            ),
        ];
        for (expected, actual, want) in cases {
            assert_eq!(items(&compare(&expected, &actual)), want);
        }
    }

    fn neo4j(nodes: u64, labels: &[(&str, u64)], constraints: &[&str]) -> Fingerprint {
        Fingerprint::Neo4j(Neo4jStats {
            nodes,
            relationships: 2000,
            labels: labels.iter().map(|(l, n)| (l.to_string(), *n)).collect(),
            relationship_types: [("KNOWS".to_string(), 2000)].into(),
            constraints: constraints.iter().map(|c| c.to_string()).collect(),
            indexes: BTreeSet::new(),
        })
    }

    #[test]
    fn table_of_neo4j_comparisons() {
        let base = neo4j(1000, &[("Person", 600), ("Company", 400)], &["person_pid"]);
        let cases: [(Fingerprint, Fingerprint, &[&str]); 4] = [
            (base.clone(), base.clone(), &[]),
            (
                base.clone(),
                neo4j(999, &[("Person", 599), ("Company", 400)], &["person_pid"]),
                &["nodes", "nodes :Person"],
            ),
            (
                base.clone(),
                neo4j(
                    1000,
                    &[("Person", 600), ("Company", 400), ("Extra", 1)],
                    &["person_pid"],
                ),
                &["nodes :Extra"],
            ),
            (
                base.clone(),
                neo4j(1000, &[("Person", 600), ("Company", 400)], &[]),
                &["constraint person_pid"],
            ),
        ];
        for (expected, actual, want) in cases {
            assert_eq!(items(&compare(&expected, &actual)), want);
        }
    }

    #[test]
    fn stats_are_read_by_kind_and_malformed_ones_named() {
        let ok = json!({"tables": {"public.t": 1}, "large_objects": 0});
        assert!(Fingerprint::from_stats(&Kind::Postgres, &ok).is_ok());
        let cases = [
            (
                Kind::Postgres,
                json!({"tables": {"public.t": "many"}, "large_objects": 0}),
            ),
            (Kind::Postgres, json!({"rows": 3})),
            (Kind::Qdrant, json!({"collections": {"c": {"vectors": {}}}})),
            (Kind::Neo4j, json!([1, 2])),
        ];
        for (kind, stats) in cases {
            let err = Fingerprint::from_stats(&kind, &stats).unwrap_err();
            assert!(
                matches!(err, FingerprintError::Malformed { .. }),
                "{stats}: {err}"
            );
        }
        let other = Kind::Other("redis".into());
        assert_eq!(
            Fingerprint::from_stats(&other, &ok).unwrap_err(),
            FingerprintError::UnknownKind(other)
        );
    }

    #[test]
    fn a_difference_reads_as_one_line() {
        let d = Difference {
            item: "rows of public.a".into(),
            expected: json!(3),
            actual: Value::Null,
        };
        assert_eq!(d.to_string(), "rows of public.a: expected 3, found absent");
    }
}
