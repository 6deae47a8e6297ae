//! Artifact ids: `{kind}_{name}_{YYYYMMDD}_{HHMMSS}` or, as the original scripts wrote
//! them, `{kind}_{YYYYMMDD}_{HHMMSS}`.
//!
//! An id names the spool file and the vault objects of one backup, so it is a [`Name`] as
//! a whole (no `/`, no control characters). It is also **tied to its record**: the kind
//! before the first `_` is the record's `kind`, and the time at the end is the record's
//! `created_at` (to the second, UTC). That is what makes one id one backup: the vault key
//! `{kind}/YYYY/MM/DD/{id}.{ext}` is derived from the id alone, so the same id cannot be
//! stored twice under different dates or kinds.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::name::Name;
use crate::record::Kind;
use crate::time::Timestamp;

/// A checked artifact id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

/// The text is not an artifact id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {text:?}: {why}")]
pub struct IdError {
    /// The text, as given (shown escaped).
    pub text: String,
    /// What is wrong.
    pub why: String,
}

/// `YYYYMMDD_HHMMSS`.
const STAMP_LEN: usize = 15;

fn is_stamp(s: &str) -> bool {
    s.len() == STAMP_LEN
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 8 {
                b == b'_'
            } else {
                b.is_ascii_digit()
            }
        })
}

impl Id {
    /// The id of a backup of `kind`, of the thing called `name` (a database, a collection;
    /// `None` for the seed's short form), started at `at`.
    pub fn new(kind: &Kind, name: Option<&Name>, at: &Timestamp) -> Id {
        let text = match name {
            Some(name) => format!("{kind}_{name}_{}", at.compact()),
            None => format!("{kind}_{}", at.compact()),
        };
        Id::parse(&text).expect("kinds, names and stamps make valid ids")
    }

    /// Checks the form of `text`: a valid [`Name`], a kind before the first `_`, and a
    /// `YYYYMMDD_HHMMSS` time at the end.
    pub fn parse(text: &str) -> Result<Id, IdError> {
        let bad = |why: String| {
            Err(IdError {
                text: text.to_owned(),
                why,
            })
        };
        if let Err(e) = Name::new(text) {
            return bad(e.why.to_owned());
        }
        let Some((kind, rest)) = text.split_once('_') else {
            return bad("expected {kind}_{name}_{YYYYMMDD}_{HHMMSS}".into());
        };
        if let Err(e) = kind.parse::<Kind>() {
            return bad(e);
        }
        let stamp_ok = rest.len() >= STAMP_LEN
            && is_stamp(&rest[rest.len() - STAMP_LEN..])
            && (rest.len() == STAMP_LEN || rest[..rest.len() - STAMP_LEN].ends_with('_'))
            && rest.len() != STAMP_LEN + 1;
        if !stamp_ok {
            return bad("it must end in _YYYYMMDD_HHMMSS, the time the backup was made".into());
        }
        Ok(Id(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind part (before the first `_`).
    pub fn kind_str(&self) -> &str {
        self.0.split_once('_').expect("checked").0
    }

    /// The name part between the kind and the time (the database, the collection): what
    /// backups of one source share. `None` for the seed's short form `{kind}_{stamp}`.
    pub fn name(&self) -> Option<&str> {
        let rest = &self.0[self.kind_str().len() + 1..];
        // Checked in `parse`: either exactly the stamp, or `{name}_` before it.
        rest.strip_suffix(self.stamp())?.strip_suffix('_')
    }

    /// The `YYYYMMDD_HHMMSS` part.
    pub fn stamp(&self) -> &str {
        &self.0[self.0.len() - STAMP_LEN..]
    }

    /// `YYYY/MM/DD` from the id's time: the date directory of its vault keys.
    pub fn date_path(&self) -> String {
        let s = self.stamp();
        format!("{}/{}/{}", &s[0..4], &s[4..6], &s[6..8])
    }

    /// Checks that the id belongs to a record of `kind` created at `created_at`.
    pub fn check_record(&self, kind: &Kind, created_at: &Timestamp) -> Result<(), IdError> {
        let bad = |why: String| {
            Err(IdError {
                text: self.0.clone(),
                why,
            })
        };
        if self.kind_str() != kind.as_str() {
            return bad(format!(
                "it names kind {:?} but the record's kind is {kind}",
                self.kind_str()
            ));
        }
        if self.stamp() != created_at.compact() {
            return bad(format!(
                "its time {} is not the record's created_at {created_at}",
                self.stamp()
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Id {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Id::parse(s)
    }
}

/// A Id reads as the text it checked (it is never changed after the check).
impl std::ops::Deref for Id {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Id {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Id {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Id::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_ids() {
        let cases = [
            ("postgres_app_20250130_020000", true),
            ("postgres_20250130_020000", true),
            ("postgres_my_app_20250130_020000", true),
            ("qdrant_docs-v2_20250130_020000", true),
            ("redis_cache_20250130_020000", true), // a kind from a newer producer
            ("postgres__20250130_020000", false),
            ("postgres_app_20250130", false),
            ("postgres_app_2025013_020000", false),
            ("postgres_app_20250130-020000", false),
            ("app_20250130_020000x", false),
            ("Postgres_app_20250130_020000", false),
            ("postgres_../etc_20250130_020000", false),
            ("postgres_a\nb_20250130_020000", false),
            ("_app_20250130_020000", false),
            ("p1", false),
            ("", false),
        ];
        for (text, ok) in cases {
            assert_eq!(
                Id::parse(text).is_ok(),
                ok,
                "{text:?}: {:?}",
                Id::parse(text)
            );
        }
    }

    #[test]
    fn parts() {
        let id = Id::parse("postgres_my_app_20250130_020009").unwrap();
        assert_eq!(id.kind_str(), "postgres");
        assert_eq!(id.stamp(), "20250130_020009");
        assert_eq!(id.date_path(), "2025/01/30");
    }

    #[test]
    fn table_of_names() {
        let cases = [
            ("postgres_app_20250130_020000", Some("app")),
            ("postgres_my_app_20250130_020000", Some("my_app")),
            ("qdrant_docs-v2_20250130_020000", Some("docs-v2")),
            ("postgres_20250130_020000", None),
        ];
        for (text, want) in cases {
            assert_eq!(Id::parse(text).unwrap().name(), want, "{text}");
        }
    }

    #[test]
    fn an_id_is_tied_to_its_kind_and_time() {
        let at = Timestamp::parse("2025-01-30T02:00:00Z").unwrap();
        let id = Id::new(&Kind::Postgres, Some(&Name::new("app").unwrap()), &at);
        assert_eq!(id.as_str(), "postgres_app_20250130_020000");
        assert!(id.check_record(&Kind::Postgres, &at).is_ok());
        assert!(id.check_record(&Kind::Qdrant, &at).is_err());
        let later = Timestamp::parse("2025-01-31T02:00:00Z").unwrap();
        assert!(id.check_record(&Kind::Postgres, &later).is_err());
        let short = Id::new(&Kind::Neo4j, None, &at);
        assert_eq!(short.as_str(), "neo4j_20250130_020000");
    }
}
