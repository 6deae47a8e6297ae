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

use crate::id::{Id, IdError};
use crate::name::Name;
use crate::sha256::Sha256;
use crate::time::Timestamp;

/// The value of `schema` this version writes and accepts.
pub const SCHEMA: &str = "stackvault.manifest/1";

/// Which database an artifact comes from.
///
/// Open-ended: a kind this version does not know (from a newer producer) is kept as
/// [`Kind::Other`], so generic tools (vault-put, vault-get, the ledger) carry on with it
/// instead of stopping the pipeline; only a database tool refuses a kind not its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// PostgreSQL, `pg_dump` custom format.
    Postgres,
    /// Qdrant collection snapshots.
    Qdrant,
    /// Neo4j dumps.
    Neo4j,
    /// A kind this version does not know: lowercase letters, digits and `-`, starting with
    /// a letter, at most 32 bytes (it becomes the first segment of vault keys).
    Other(String),
}

impl Kind {
    /// The kinds this version knows, in display order.
    pub const KNOWN: [Kind; 3] = [Kind::Postgres, Kind::Qdrant, Kind::Neo4j];

    /// The lowercase name used in ids, keys and manifests.
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Qdrant => "qdrant",
            Kind::Neo4j => "neo4j",
            Kind::Other(name) => name,
        }
    }

    /// Whether this version knows the kind.
    pub fn is_known(&self) -> bool {
        !matches!(self, Kind::Other(_))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    /// Parses any well-formed kind, known or not. Tools that accept only known kinds
    /// (`--kind` flags) check [`Kind::is_known`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(known) = Kind::KNOWN.into_iter().find(|k| k.as_str() == s) {
            return Ok(known);
        }
        let well_formed = !s.is_empty()
            && s.len() <= 32
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if well_formed {
            Ok(Kind::Other(s.to_owned()))
        } else {
            Err(format!(
                "invalid kind {s:?}: expected postgres, qdrant, neo4j, or another lowercase name"
            ))
        }
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Where a record stands.
///
/// Open-ended like [`Kind`]: a status this version does not know is kept as
/// [`Status::Other`] and treated like `failed` — passed on untouched, never uploaded,
/// fetched, restored or counted as a success.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Everything so far succeeded.
    Ok,
    /// A step failed; `error` says why. Later tools pass the record on untouched.
    Failed,
    /// Retention deleted the artifact from the vault.
    Pruned,
    /// A notice, not a result: the producer has started writing the artifact (its
    /// `writing` section says where), so a consumer may start uploading it while it is
    /// written. The record with the same id and its final status follows on the same
    /// stream; tools that do not act on notices pass them on, the ledger ignores them.
    Writing,
    /// A status from a newer tool: a lowercase word.
    Other(String),
}

impl Status {
    /// The status as on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Pruned => "pruned",
            Status::Writing => "writing",
            Status::Other(word) => word,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ok" => Status::Ok,
            "failed" => Status::Failed,
            "pruned" => Status::Pruned,
            "writing" => Status::Writing,
            _ if !s.is_empty()
                && s.len() <= 32
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '-') =>
            {
                Status::Other(s.to_owned())
            }
            _ => {
                return Err(format!(
                    "invalid status {s:?}: expected ok, failed, pruned, writing, or another lowercase word"
                ))
            }
        })
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
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
    /// Size of the artifact the object holds, verified after upload: the stored object's
    /// own size, unless it is encrypted (`encryption`, see [`VaultRecord::encryption`]):
    /// then the plaintext's, and the object's own is `encryption.bytes`.
    pub bytes: u64,
    /// SHA-256 of the artifact the object holds (the plaintext's when encrypted), what a
    /// fetch and a restore verify; an encrypted object's own is `encryption.sha256`.
    pub sha256: Sha256,
    /// When the upload was verified.
    pub stored_at: Timestamp,
    /// How what is stored was proven to be the artifact: `server-checksums` (the server
    /// verified the object's SHA-256, or every part's CRC32 and the object's), `read-back`
    /// (read back whole, SHA-256
    /// compared), `local-write` (written and fsynced into a directory vault by this
    /// process), or `size` (the stored size only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One manifest line. See the [module docs](self) for the wire format.
///
/// Reading a line checks what every tool relies on: the id is well formed and tied to the
/// record's `kind` and `created_at` (see [`Id`]), the run id is a [`Name`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Wire")]
pub struct Manifest {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// `{kind}_{name}_{YYYYMMDD}_{HHMMSS}`: unique per artifact, the base of its vault key.
    pub id: Id,
    /// Id of the whole backup run this artifact belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Name>,
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
    /// Fingerprint of the data at backup time (rows per table, points, nodes…), kept as it
    /// came; [`Manifest::fingerprint`] reads it as the kind's typed fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Value>,
    /// Where the artifact is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultRecord>,
    /// What a restore did (see [`crate::sections::Restore`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Value>,
    /// What integrity checks found (see [`crate::sections::Checks`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Value>,
    /// Fields this version does not know, kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The fields as they come off the wire, before the checks that tie them together.
#[derive(Deserialize)]
struct Wire {
    schema: String,
    id: Id,
    #[serde(default)]
    run: Option<Name>,
    kind: Kind,
    created_at: Timestamp,
    status: Status,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    source: Option<Value>,
    #[serde(default)]
    artifact: Option<Artifact>,
    #[serde(default)]
    stats: Option<Value>,
    #[serde(default)]
    vault: Option<VaultRecord>,
    #[serde(default)]
    restore: Option<Value>,
    #[serde(default)]
    checks: Option<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl TryFrom<Wire> for Manifest {
    type Error = IdError;

    fn try_from(w: Wire) -> Result<Self, Self::Error> {
        w.id.check_record(&w.kind, &w.created_at)?;
        Ok(Manifest {
            schema: w.schema,
            id: w.id,
            run: w.run,
            kind: w.kind,
            created_at: w.created_at,
            status: w.status,
            error: w.error,
            source: w.source,
            artifact: w.artifact,
            stats: w.stats,
            vault: w.vault,
            restore: w.restore,
            checks: w.checks,
            extra: w.extra,
        })
    }
}

impl Manifest {
    /// A new `ok` record of `kind`, made at `created_at`, for the thing called `name` (a
    /// database, a collection; `None` for the short id form).
    pub fn new(kind: Kind, name: Option<&Name>, created_at: Timestamp) -> Self {
        Manifest {
            schema: SCHEMA.to_owned(),
            id: Id::new(&kind, name, &created_at),
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
    fn unknown_kinds_and_statuses_are_kept_not_refused() {
        let line = LINE
            .replace("postgres_app", "redis_app")
            .replace("\"kind\":\"postgres\"", "\"kind\":\"redis\"")
            .replace("\"status\":\"ok\"", "\"status\":\"verified\"");
        let m: Manifest = serde_json::from_str(&line).unwrap();
        assert_eq!(m.kind, Kind::Other("redis".into()));
        assert!(!m.kind.is_known());
        assert_eq!(m.status, Status::Other("verified".into()));
        assert!(!m.is_ok(), "an unknown status is never ok");
        let again: Value = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(again, serde_json::from_str::<Value>(&line).unwrap());
    }

    #[test]
    fn table_of_rejected_identities() {
        let cases = [
            (
                "\"id\":\"postgres_app_20250130_020000\"",
                "\"id\":\"qdrant_app_20250130_020000\"",
                "kind",
            ),
            (
                "\"id\":\"postgres_app_20250130_020000\"",
                "\"id\":\"postgres_app_20250131_020000\"",
                "created_at",
            ),
            (
                "\"id\":\"postgres_app_20250130_020000\"",
                "\"id\":\"postgres_../x_20250130_020000\"",
                "invalid id",
            ),
            (
                "\"kind\":\"postgres\"",
                "\"kind\":\"Post gres\"",
                "invalid kind",
            ),
            (
                "\"run\":\"r1\"",
                "\"run\":\"r1\\n\\u001b[31m\"",
                "invalid name",
            ),
            ("\"status\":\"ok\"", "\"status\":\"OK!\"", "invalid status"),
        ];
        for (from, to, want) in cases {
            let line = LINE.replace(from, to);
            assert_ne!(line, LINE, "{to}");
            let err = serde_json::from_str::<Manifest>(&line)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{to}: {err}");
        }
    }

    #[test]
    fn fail_keeps_the_first_cause() {
        let at = crate::time::Timestamp::now();
        let mut m = Manifest::new(Kind::Neo4j, None, at);
        m.fail("first");
        m.fail("second");
        assert_eq!(m.error.as_deref(), Some("first"));
    }
}
