//! Fingerprints: what a backup held, counted at backup time, and the one comparison every
//! restore tool and `integrity-check` use to prove a restore.
//!
//! A record's `stats` section is its kind's fingerprint:
//!
//! | kind | `stats` |
//! | --- | --- |
//! | `postgres` | `tables` (`schema.table` → exact rows), `large_objects` |
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

/// The outcome of [`compare`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// How many items were compared.
    pub checked: usize,
    /// The items that differ, each by name.
    pub differences: Vec<Difference>,
}

impl Comparison {
    /// True when nothing differs.
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }

    fn item(&mut self, item: String, expected: Value, actual: Value) {
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
pub fn compare(expected: &Fingerprint, actual: &Fingerprint) -> Comparison {
    let mut c = Comparison::default();
    match (expected, actual) {
        (Fingerprint::Postgres(e), Fingerprint::Postgres(a)) => {
            c.maps(|t| format!("rows of {t}"), &e.tables, &a.tables, false);
            c.item(
                "large objects".into(),
                json!(e.large_objects),
                json!(a.large_objects),
            );
        }
        (Fingerprint::Qdrant(e), Fingerprint::Qdrant(a)) => {
            for (name, want) in &e.collections {
                let Some(got) = a.collections.get(name) else {
                    c.item(format!("collection {name}"), json!(true), Value::Null);
                    continue;
                };
                c.item(
                    format!("points in {name}"),
                    json!(want.points),
                    json!(got.points),
                );
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
        })
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
