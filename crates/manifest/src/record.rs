//! The manifest record: one JSON object per artifact, one per line.
//!
//! # Wire format (`stackvault.manifest/1`)
//!
//! ```json
//! {"schema":"stackvault.manifest/1","id":"postgres_app_20250130_020000",
//!  "run":"run_20250130_020000","kind":"postgres","created_at":"2025-01-30T02:00:00Z",
//!  "status":"ok",
//!  "source":{"host":"db","port":5432,"database":"app","server_version":"15.18"},
//!  "artifact":{"path":"/var/lib/stackvault/spool/postgres_app_20250130_020000.dump",
//!              "format":"pg_dump/custom","bytes":1048576,"sha256":"…64 hex…"},
//!  "stats":{"tables":{"public.users":1200},"large_objects":1},
//!  "vault":{"url":"s3://backups/stack/postgres/2025/01/30/postgres_app_20250130_020000.dump",
//!           "bytes":1048576,"sha256":"…","stored_at":"2025-01-30T02:00:07Z"}}
//! ```
//!
//! - `schema`, `id`, `kind`, `created_at` and `status` are required.
//! - `status` is `ok`, `failed` (with `error`) or `pruned`. A tool that receives a `failed`
//!   record passes it on untouched, so the ledger records the failure.
//! - Sections a tool does not know (`stats`, `restore`, `checks`, anything newer) are kept as
//!   they came; unknown top-level fields and unknown fields inside `artifact` and `vault`
//!   are kept too. Readers must ignore what they do not understand.
//! - Secrets never appear in a record.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::sha256::Sha256;
use crate::time::Timestamp;

/// The value of `schema` this version writes and accepts.
pub const SCHEMA: &str = "stackvault.manifest/1";

/// Which database an artifact comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// PostgreSQL, `pg_dump` custom format.
    Postgres,
    /// Qdrant collection snapshots.
    Qdrant,
    /// Neo4j dumps.
    Neo4j,
}

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 3] = [Kind::Postgres, Kind::Qdrant, Kind::Neo4j];

    /// The lowercase name used in ids, keys and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Qdrant => "qdrant",
            Kind::Neo4j => "neo4j",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown kind {s:?}: expected postgres, qdrant or neo4j"))
    }
}

/// Where a record stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything so far succeeded.
    Ok,
    /// A step failed; `error` says why. Later tools pass the record on untouched.
    Failed,
    /// Retention deleted the artifact from the vault.
    Pruned,
}

impl Status {
    /// `ok`, `failed` or `pruned`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Pruned => "pruned",
        }
    }
}

/// The local file a record describes: written by a producer, or downloaded by `vault-get`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Local path of the file.
    pub path: PathBuf,
    /// What the file is, e.g. `pg_dump/custom`.
    pub format: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the whole file.
    pub sha256: Sha256,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Where `vault-put` stored the artifact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaultRecord {
    /// `s3://bucket/key` or `file:///dir/key` of the artifact object.
    pub url: String,
    /// Size of the stored object, verified after upload.
    pub bytes: u64,
    /// SHA-256 of the stored object, verified after upload.
    pub sha256: Sha256,
    /// When the upload was verified.
    pub stored_at: Timestamp,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One manifest line. See the [module docs](self) for the wire format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// `{kind}_{name}_{YYYYMMDD}_{HHMMSS}`: unique per artifact, the base of its vault key.
    pub id: String,
    /// Id of the whole backup run this artifact belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Which database.
    pub kind: Kind,
    /// When the producer started the backup.
    pub created_at: Timestamp,
    /// Where the record stands.
    pub status: Status,
    /// Why it failed, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was backed up (endpoint, database, server version; never a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
    /// The local file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// Fingerprint of the data at backup time (rows per table, points, nodes…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Value>,
    /// Where the artifact is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultRecord>,
    /// What a restore did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Value>,
    /// What integrity checks found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Value>,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Manifest {
    /// A new `ok` record with the given identity and nothing else.
    pub fn new(id: String, kind: Kind, created_at: Timestamp) -> Self {
        Manifest {
            schema: SCHEMA.to_owned(),
            id,
            run: None,
            kind,
            created_at,
            status: Status::Ok,
            error: None,
            source: None,
            artifact: None,
            stats: None,
            vault: None,
            restore: None,
            checks: None,
            extra: Map::new(),
        }
    }

    /// Marks the record failed with `error` (the first failure wins: it is the cause).
    pub fn fail(&mut self, error: impl fmt::Display) {
        if self.status != Status::Failed {
            self.status = Status::Failed;
            self.error = Some(error.to_string());
        }
    }

    /// True when the record is `ok`.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The artifact section, or an error naming the record.
    pub fn require_artifact(&self) -> Result<&Artifact, String> {
        self.artifact
            .as_ref()
            .ok_or_else(|| format!("manifest {} has no artifact section", self.id))
    }

    /// Builds an id: `{kind}_{name}_{YYYYMMDD}_{HHMMSS}`, with `name` reduced to characters
    /// that are safe in object keys and file names.
    pub fn make_id(kind: Kind, name: &str, at: &Timestamp) -> String {
        format!("{kind}_{}_{}", safe_name(name), at.compact())
    }
}

/// `name` with every character outside `[A-Za-z0-9._-]` replaced by `-`, so that it can be
/// part of an id, a file name and an object key.
pub fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("x{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"schema":"stackvault.manifest/1","id":"postgres_app_20250130_020000","run":"r1","kind":"postgres","created_at":"2025-01-30T02:00:00Z","status":"ok","source":{"database":"app"},"artifact":{"path":"/s/a.dump","format":"pg_dump/custom","bytes":3,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","compression":"zstd"},"stats":{"tables":{"public.t":1}},"future_tool":{"x":[1,2]}}"#;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let m: Manifest = serde_json::from_str(LINE).unwrap();
        assert_eq!(m.extra["future_tool"], serde_json::json!({"x": [1, 2]}));
        let artifact = m.artifact.as_ref().unwrap();
        assert_eq!(artifact.extra["compression"], "zstd");
        let again: Value = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        let original: Value = serde_json::from_str(LINE).unwrap();
        assert_eq!(again, original);
    }

    #[test]
    fn ids_are_safe_in_keys() {
        let at = crate::time::Timestamp::parse("2025-01-30T02:00:00Z").unwrap();
        let cases = [
            ("app", "postgres_app_20250130_020000"),
            ("my_app", "postgres_my_app_20250130_020000"),
            ("my db/..", "postgres_my-db-.._20250130_020000"),
            ("", "postgres_x_20250130_020000"),
            (".hidden", "postgres_x.hidden_20250130_020000"),
        ];
        for (name, want) in cases {
            assert_eq!(Manifest::make_id(Kind::Postgres, name, &at), want);
        }
    }

    #[test]
    fn fail_keeps_the_first_cause() {
        let at = crate::time::Timestamp::now();
        let mut m = Manifest::new("x".into(), Kind::Neo4j, at);
        m.fail("first");
        m.fail("second");
        assert_eq!(m.error.as_deref(), Some("first"));
    }
}
