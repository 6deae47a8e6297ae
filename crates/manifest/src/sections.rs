//! The `restore`, `checks` and `writing` sections, and the `encryption`, `lock` and
//! `copied_from` parts of `vault`, typed.
//!
//! Like `stats`, they travel as raw JSON in [`Manifest`] (a tool that does not read them
//! passes them on unchanged); these types are how the tools that write and read them agree
//! on their shape. Fields a tool adds beyond these are kept in `extra`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::fingerprint::{compare, Difference, Fingerprint, FingerprintError};
use crate::record::Manifest;
use crate::time::Timestamp;

/// How a restore ended, as proven against the backup's fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreResult {
    /// Restored, and what the database holds matches the fingerprint.
    Ok,
    /// Restored, but the database differs from the fingerprint (see `differences`).
    Mismatch,
    /// Restored, but nothing proves it: the manifest had no readable fingerprint.
    Unverified,
    /// The restore itself failed.
    Failed,
}

impl RestoreResult {
    /// As on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreResult::Ok => "ok",
            RestoreResult::Mismatch => "mismatch",
            RestoreResult::Unverified => "unverified",
            RestoreResult::Failed => "failed",
        }
    }
}

/// What a restore tool did with one record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Restore {
    /// Where it went: host, port, database / collection (never a secret).
    pub target: Value,
    /// When the restore started.
    pub started_at: Timestamp,
    /// When it ended, counts compared.
    pub finished_at: Timestamp,
    /// How long it took, in milliseconds (the RTO of this artifact).
    pub duration_ms: u64,
    /// How it ended.
    pub result: RestoreResult,
    /// Items of the fingerprint compared.
    pub checked: usize,
    /// Each item that differs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<Difference>,
    /// Why the result is what it is, when that is not obvious (`unverified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Warnings of the database's own restore tool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Tool-specific fields (`created`, the rollback copy, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Restore {
    /// The section of a restore into `target` that started at `started_at` (`clock`: the
    /// same moment, monotonic, for the duration) and ends now, concluded by `proof`.
    pub fn proven(
        target: Value,
        started_at: Timestamp,
        clock: std::time::Instant,
        proof: Proof,
        warnings: Vec<String>,
        extra: Map<String, Value>,
    ) -> Restore {
        Restore {
            target,
            started_at,
            finished_at: Timestamp::now(),
            duration_ms: clock.elapsed().as_millis() as u64,
            result: proof.result,
            checked: proof.checked,
            differences: proof.differences,
            note: proof.note,
            warnings,
            extra,
        }
    }
}

/// The proof of one restore: the backup's fingerprint against what the target holds now.
#[derive(Clone, Debug, PartialEq)]
pub struct Proof {
    /// `ok`, `mismatch` or `unverified`.
    pub result: RestoreResult,
    /// Items compared.
    pub checked: usize,
    /// Items that differ.
    pub differences: Vec<Difference>,
    /// Why it is unverified.
    pub note: Option<String>,
}

impl Proof {
    /// Compares `expected` (the manifest's fingerprint, or why it has none) with `actual`.
    pub fn new(expected: Result<Fingerprint, FingerprintError>, actual: &Fingerprint) -> Proof {
        match expected {
            Ok(expected) => {
                let c = compare(&expected, actual);
                Proof {
                    result: if c.matches() {
                        RestoreResult::Ok
                    } else {
                        RestoreResult::Mismatch
                    },
                    checked: c.checked,
                    differences: c.differences,
                    note: None,
                }
            }
            Err(why) => Proof {
                result: RestoreResult::Unverified,
                checked: 0,
                differences: Vec::new(),
                note: Some(why.to_string()),
            },
        }
    }

    /// The differences as one line: `rows of public.a: expected 3, found 2; …`.
    pub fn summary(&self) -> String {
        self.differences
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The status of one integrity check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Checked, and fine.
    Pass,
    /// Checked, and not fine.
    Fail,
    /// Not checked; `detail` says why (never counted as a pass).
    Skip,
}

/// One integrity check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked: `health`, `fingerprint`, `orphans documents.user_id`…
    pub name: String,
    /// How it came out.
    pub status: CheckStatus,
    /// For people: the figures, or why it was skipped.
    pub detail: String,
    /// The figures, for machines.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub figures: Map<String, Value>,
}

/// What `integrity-check` found for one record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checks {
    /// `fail` if any check failed, else `pass` (skips do not make a pass).
    pub result: CheckStatus,
    /// When the checks ran.
    pub checked_at: Timestamp,
    /// Every check.
    pub items: Vec<Check>,
    /// Fields of newer versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Where an artifact is being written: the section of a `writing` notice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Writing {
    /// The file being written now (in the spool: `NAME.partial`, locked by its writer).
    pub partial: std::path::PathBuf,
    /// Where the file will be once complete: the final record's `artifact.path`, the same
    /// file (inode) as `partial`.
    pub path: std::path::PathBuf,
    /// What it will be, as the final record's `artifact.format`.
    pub format: String,
    /// Fields of newer versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Manifest {
    /// The notice that this record's artifact is being written, as `writing` says: the
    /// record without artifact, stats or error, with status `writing`.
    pub fn writing_notice(&self, writing: &Writing) -> Manifest {
        let mut notice = self.clone();
        notice.status = crate::Status::Writing;
        notice.error = None;
        notice.artifact = None;
        notice.stats = None;
        notice.extra.insert(
            "writing".into(),
            serde_json::to_value(writing).expect("sections serialize"),
        );
        notice
    }

    /// The `writing` section of a notice, typed; `None` when there is none.
    pub fn writing_section(&self) -> Option<Result<Writing, String>> {
        let value = self.extra.get("writing")?;
        Some(Writing::deserialize(value).map_err(|e| format!("invalid writing section: {e}")))
    }

    /// The `restore` section, typed; `None` when there is none.
    pub fn restore_section(&self) -> Option<Result<Restore, String>> {
        let value = self.restore.as_ref()?;
        Some(Restore::deserialize(value).map_err(|e| format!("invalid restore section: {e}")))
    }

    /// Sets the `restore` section.
    pub fn set_restore(&mut self, restore: &Restore) {
        self.restore = Some(serde_json::to_value(restore).expect("sections serialize"));
    }

    /// The `checks` section, typed; `None` when there is none.
    pub fn checks_section(&self) -> Option<Result<Checks, String>> {
        let value = self.checks.as_ref()?;
        Some(Checks::deserialize(value).map_err(|e| format!("invalid checks section: {e}")))
    }

    /// Sets the `checks` section.
    pub fn set_checks(&mut self, checks: &Checks) {
        self.checks = Some(serde_json::to_value(checks).expect("sections serialize"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::PgStats;

    fn pg(rows: u64) -> Fingerprint {
        Fingerprint::Postgres(PgStats {
            tables: [("public.a".to_string(), rows)].into(),
            large_objects: 0,
            ..PgStats::default()
        })
    }

    #[test]
    fn table_of_proofs() {
        let cases = [
            (Ok(pg(3)), pg(3), RestoreResult::Ok),
            (Ok(pg(3)), pg(2), RestoreResult::Mismatch),
            (
                Err(FingerprintError::Missing),
                pg(3),
                RestoreResult::Unverified,
            ),
        ];
        for (expected, actual, want) in cases {
            let proof = Proof::new(expected, &actual);
            assert_eq!(proof.result, want);
            assert_eq!(proof.note.is_some(), want == RestoreResult::Unverified);
        }
        let proof = Proof::new(Ok(pg(3)), &pg(2));
        assert_eq!(proof.summary(), "rows of public.a: expected 3, found 2");
    }

    #[test]
    fn a_restore_section_round_trips_with_tool_fields() {
        let at = Timestamp::parse("2025-01-30T02:00:00Z").unwrap();
        let mut extra = Map::new();
        extra.insert("created".into(), Value::Bool(true));
        let section = Restore {
            target: serde_json::json!({"database": "app"}),
            started_at: at.clone(),
            finished_at: at,
            duration_ms: 1200,
            result: RestoreResult::Unverified,
            checked: 0,
            differences: vec![],
            note: Some("no stats".into()),
            warnings: vec![],
            extra,
        };
        let value = serde_json::to_value(&section).unwrap();
        assert_eq!(value["result"], "unverified");
        assert_eq!(value["created"], true);
        assert_eq!(Restore::deserialize(&value).unwrap(), section);
    }
}

/// How the stored object is encrypted: `vault.encryption`. Present only when it is; then the
/// object in the vault is **not** the artifact: `vault.bytes` / `vault.sha256` stay the
/// artifact's (the plaintext, what a restore verifies), and these `bytes` / `sha256` are the
/// stored object's (the ciphertext, what `sha256sum` of a downloaded object shows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Encryption {
    /// `age` (age-encryption.org/v1, X25519 recipients).
    pub scheme: String,
    /// Fingerprints of the recipients it was encrypted to (never a key): the first 16 hex
    /// digits of the SHA-256 of each recipient's `age1…` text.
    pub recipients: Vec<String>,
    /// Size of the stored (encrypted) object.
    pub bytes: u64,
    /// SHA-256 of the stored (encrypted) object.
    pub sha256: crate::Sha256,
    /// Fields of newer versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The S3 Object Lock of the stored objects: `vault.lock`. The artifact and its sidecar
/// cannot be deleted or overwritten before `retain_until` (the later of their two dates).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    /// `governance` (users with s3:BypassGovernanceRetention may still delete) or
    /// `compliance` (nobody can, not even the account's root user).
    pub mode: String,
    /// Until when.
    pub retain_until: Timestamp,
    /// Fields of newer versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Where a copied backup came from: `vault.copied_from`, written by vault-copy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CopiedFrom {
    /// The artifact's URL in the vault it was copied from.
    pub url: String,
    /// When it was stored there.
    pub stored_at: Timestamp,
    /// Fields of newer versions.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl crate::VaultRecord {
    fn section<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<Result<T, String>> {
        let value = self.extra.get(name)?;
        Some(T::deserialize(value).map_err(|e| format!("invalid vault.{name}: {e}")))
    }

    fn set_section(&mut self, name: &str, value: Option<&impl Serialize>) {
        match value {
            Some(v) => {
                let v = serde_json::to_value(v).expect("sections serialize");
                self.extra.insert(name.to_owned(), v);
            }
            None => {
                self.extra.remove(name);
            }
        }
    }

    /// `vault.encryption`, typed; `None` when the stored object is the artifact itself.
    pub fn encryption(&self) -> Option<Result<Encryption, String>> {
        self.section("encryption")
    }

    /// Sets (or, with `None`, removes) `vault.encryption`.
    pub fn set_encryption(&mut self, encryption: Option<&Encryption>) {
        self.set_section("encryption", encryption);
    }

    /// `vault.lock`, typed; `None` when the objects are not locked.
    pub fn lock(&self) -> Option<Result<Lock, String>> {
        self.section("lock")
    }

    /// Sets (or removes) `vault.lock`.
    pub fn set_lock(&mut self, lock: Option<&Lock>) {
        self.set_section("lock", lock);
    }

    /// `vault.copied_from`, typed; `None` for a backup stored by vault-put.
    pub fn copied_from(&self) -> Option<Result<CopiedFrom, String>> {
        self.section("copied_from")
    }

    /// Sets (or removes) `vault.copied_from`.
    pub fn set_copied_from(&mut self, from: Option<&CopiedFrom>) {
        self.set_section("copied_from", from);
    }

    /// Size and SHA-256 of the object the vault holds: the ciphertext's when the artifact
    /// is encrypted, the artifact's otherwise. What a copy or a read-back compares.
    pub fn stored(&self) -> Result<(u64, crate::Sha256), String> {
        match self.encryption() {
            None => Ok((self.bytes, self.sha256)),
            Some(e) => e.map(|e| (e.bytes, e.sha256)),
        }
    }
}

#[cfg(test)]
mod vault_section_tests {
    use crate::ndjson::parse_line;

    #[test]
    fn encryption_and_lock_round_trip_and_stored_follows_encryption() {
        let plain = "a".repeat(64);
        let cipher = "b".repeat(64);
        let line = format!(
            r#"{{"schema":"stackvault.manifest/1","id":"postgres_app_20250130_020000","kind":"postgres","created_at":"2025-01-30T02:00:00Z","status":"ok","vault":{{"url":"file:///v/x.dump.age","bytes":10,"sha256":"{plain}","stored_at":"2025-01-30T02:00:07Z","encryption":{{"scheme":"age","recipients":["0123456789abcdef"],"bytes":250,"sha256":"{cipher}","future":1}},"lock":{{"mode":"governance","retain_until":"2025-03-01T02:00:07Z"}}}}}}"#
        );
        let m = parse_line(&line).unwrap();
        let v = m.vault.as_ref().unwrap();
        let e = v.encryption().unwrap().unwrap();
        assert_eq!((e.scheme.as_str(), e.bytes), ("age", 250));
        assert!(e.extra.contains_key("future"), "unknown fields are kept");
        assert_eq!(v.stored().unwrap(), (250, e.sha256));
        assert_eq!(v.lock().unwrap().unwrap().mode, "governance");
        let mut plain_record = v.clone();
        plain_record.set_encryption(None);
        assert_eq!(plain_record.stored().unwrap(), (10, v.sha256));
        assert_eq!(serde_json::to_string(&m).unwrap(), line, "written as read");
    }
}
