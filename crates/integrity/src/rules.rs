//! The rules file: what must hold within and across the databases, beyond what a backup's
//! fingerprint says. TOML; every key is checked (a misspelt rule is an error, not a rule
//! that never fires). The full example for the seed's AI platform is in the README and in
//! `integrity-check(1)`.
//!
//! ```toml
//! [postgres]
//! database = "app"          # the rules below apply to backups of this database
//!
//! [[postgres.not_null]]
//! table = "public.documents"
//! columns = ["title", "owner_id"]
//!
//! [[postgres.orphans]]
//! table = "public.chunks"
//! column = "document_id"
//! references = "public.documents.id"
//!
//! [[qdrant.payload]]
//! collection = "chunks"
//! fields = ["document_id", "text"]
//!
//! [[neo4j.duplicate_relationships]]
//! types = ["MENTIONS"]
//!
//! [[cross]]
//! name = "documents"
//! postgres = { table = "public.documents", column = "id" }
//! qdrant = { collection = "documents" }
//! neo4j = { label = "Document", property = "id" }
//!
//! [backup_set]
//! kinds = ["postgres", "qdrant", "neo4j"]
//! max_spread = "2h"
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

/// The full example of a rules file for the AI platform (quoted by the README and
/// `integrity-check --help`; the tests parse it).
pub const EXAMPLE: &str = include_str!("../rules-example.toml");

/// Every rule of a rules file.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Rules within PostgreSQL.
    #[serde(default)]
    pub postgres: PgRules,
    /// Rules within Qdrant.
    #[serde(default)]
    pub qdrant: QdrantRules,
    /// Rules within Neo4j.
    #[serde(default)]
    pub neo4j: Neo4jRules,
    /// Rules across databases.
    #[serde(default)]
    pub cross: Vec<CrossRule>,
    /// What a backup set must hold.
    #[serde(default)]
    pub backup_set: SetRules,
}

/// Rules within PostgreSQL.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgRules {
    /// The database (as backed up: the `source` of a manifest, or the live database) the
    /// rules are about [default: every PostgreSQL database checked].
    pub database: Option<String>,
    /// Columns that must hold no NULL.
    #[serde(default)]
    pub not_null: Vec<NotNull>,
    /// References the schema does not enforce.
    #[serde(default)]
    pub orphans: Vec<Orphans>,
}

/// `columns` of `table` must hold no NULL.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotNull {
    /// `schema.table`.
    pub table: String,
    /// The critical columns.
    pub columns: Vec<String>,
}

/// Every non-NULL `table.column` must exist as `references` (`schema.table.column`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Orphans {
    /// `schema.table` holding the reference.
    pub table: String,
    /// Its column.
    pub column: String,
    /// `schema.table.column` it refers to.
    pub references: String,
}

/// Rules within Qdrant.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QdrantRules {
    /// Payload fields every point must have, not empty.
    #[serde(default)]
    pub payload: Vec<Payload>,
}

/// Every point of `collection` has each of `fields`, and none is null, `""`, `[]` or `{}`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// The collection (as backed up).
    pub collection: String,
    /// Top-level payload keys.
    pub fields: Vec<String>,
}

/// Rules within Neo4j.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neo4jRules {
    /// No two relationships of one type from the same node to the same node.
    #[serde(default)]
    pub duplicate_relationships: Vec<Duplicates>,
}

/// No two relationships of the same type between the same two nodes (same direction).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Duplicates {
    /// The database [default: neo4j].
    pub database: Option<String>,
    /// Relationship types [default: every type].
    #[serde(default)]
    pub types: Vec<String>,
}

/// The same ids on every side named, in both directions.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossRule {
    /// The rule's name in the report (`cross NAME`).
    pub name: String,
    /// A PostgreSQL column.
    pub postgres: Option<PgSide>,
    /// A Qdrant collection's point ids.
    pub qdrant: Option<QdrantSide>,
    /// A Neo4j label's property.
    pub neo4j: Option<Neo4jSide>,
}

/// The ids of a PostgreSQL column (integer, uuid or text).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgSide {
    /// `schema.table`.
    pub table: String,
    /// The id column.
    pub column: String,
}

/// The point ids of a Qdrant collection (unsigned integers or UUIDs).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QdrantSide {
    /// The collection (as backed up).
    pub collection: String,
}

/// The values of a property of the nodes with a label (integers or strings).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neo4jSide {
    /// The database [default: neo4j].
    pub database: Option<String>,
    /// The label.
    pub label: String,
    /// The property holding the id.
    pub property: String,
}

/// What a backup set (manifests sharing a `run`) must hold.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRules {
    /// Kinds every run must have [default: none required: the set's kinds, failures and
    /// spread are reported, a missing kind is not judged].
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Longest time between the first and the last backup of a run (`2h`) [default: none].
    #[serde(default, with = "duration_text")]
    pub max_spread: Option<Duration>,
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| manifest::time::parse_duration(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Rules {
    /// Parses a rules file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Rules, Error> {
        let rules: Rules = toml::from_str(text)
            .map_err(|e| Error::Input(format!("rules file {origin}: {}", e.to_string().trim())))?;
        rules
            .validate()
            .map_err(|e| Error::Input(format!("rules file {origin}: {e}")))?;
        Ok(rules)
    }

    /// Reads and parses the rules file at `path`.
    pub fn load(path: &Path) -> Result<Rules, Error> {
        let origin = toolkit::cli::quote(path);
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Input(format!("cannot read the rules file {origin}: {e}")))?;
        Rules::parse(&text, &origin)
    }

    fn validate(&self) -> Result<(), String> {
        let table = |t: &str| -> Result<(), String> {
            match t.split_once('.') {
                Some((s, n)) if !s.is_empty() && !n.is_empty() && !n.contains('.') => Ok(()),
                _ => Err(format!("table {t:?} must be written schema.table")),
            }
        };
        for r in &self.postgres.not_null {
            table(&r.table)?;
            if r.columns.is_empty() {
                return Err(format!("not_null on {} names no columns", r.table));
            }
        }
        for r in &self.postgres.orphans {
            table(&r.table)?;
            let (parent, _) = r.references.rsplit_once('.').ok_or_else(|| {
                format!(
                    "references {:?} must be written schema.table.column",
                    r.references
                )
            })?;
            table(parent)?;
        }
        for r in &self.qdrant.payload {
            if r.fields.is_empty() {
                return Err(format!("payload of {} names no fields", r.collection));
            }
        }
        for r in &self.cross {
            let sides = usize::from(r.postgres.is_some())
                + usize::from(r.qdrant.is_some())
                + usize::from(r.neo4j.is_some());
            if sides < 2 {
                return Err(format!(
                    "cross rule {:?} names fewer than two databases",
                    r.name
                ));
            }
            if let Some(p) = &r.postgres {
                table(&p.table)?;
            }
        }
        for kind in &self.backup_set.kinds {
            if kind.parse::<manifest::Kind>().is_err() {
                return Err(format!("backup_set kind {kind:?} is not a kind"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let rules = Rules::parse(EXAMPLE, "example").unwrap();
        assert!(!rules.postgres.not_null.is_empty());
        assert!(!rules.cross.is_empty());
        assert_eq!(
            rules.backup_set.max_spread,
            Some(Duration::from_secs(2 * 3600))
        );
    }

    #[test]
    fn table_of_bad_rules_files() {
        // (text, what the error says)
        #[rustfmt::skip]
        let cases = [
            ("[postgres]\nnot_nul = []", "unknown field `not_nul`"),
            ("[[postgres.not_null]]\ntable = \"documents\"\ncolumns = [\"a\"]", "schema.table"),
            ("[[postgres.not_null]]\ntable = \"public.d\"\ncolumns = []", "names no columns"),
            ("[[postgres.orphans]]\ntable = \"public.c\"\ncolumn = \"d\"\nreferences = \"d\"", "schema.table.column"),
            ("[[cross]]\nname = \"x\"\nqdrant = { collection = \"c\" }", "fewer than two"),
            ("[backup_set]\nmax_spread = \"soon\"", "invalid duration"),
            ("[backup_set]\nkinds = [\"Redis!\"]", "is not a kind"),
            ("this is not toml", "rules file t"),
        ];
        for (text, want) in cases {
            let err = Rules::parse(text, "t").unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        assert_eq!(Rules::parse("", "empty").unwrap(), Rules::default());
    }
}
