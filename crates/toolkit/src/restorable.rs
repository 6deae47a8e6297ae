//! What every restore tool checks before it touches a database, and how it concludes.
//!
//! [`check`] is the one "can this record be restored" test: the record is `ok`, of the
//! tool's kind, names a local artifact, and that file is a regular file whose size and
//! SHA-256 are what the record says. Nothing is touched before it passes. Its two halves
//! are there for a tool that can undo its work: [`check_record`] (cheap) first, then
//! [`check_file`] (a read of the whole file) side by side with the restore — a database
//! created for the restore is dropped again if the file proves damaged.
//!
//! [`conclude`] turns the proof of a restore (the backup's fingerprint against what the
//! target holds now) into the record's status: `ok` only when proven; a mismatch fails the
//! record; an *unverified* restore (no readable fingerprint) fails it too, unless the
//! operator said `--accept-unverified` — a restore that nothing proves must not look like
//! one that was proven.

use std::path::PathBuf;

use manifest::sections::{Restore, RestoreResult};
use manifest::{Artifact, Kind, Manifest, Sha256, Status};

use crate::cli::quote;

/// Why a record cannot be restored. Nothing was touched.
#[derive(Debug, thiserror::Error)]
pub enum NotRestorable {
    /// The record is not `ok`.
    #[error("the backup is {status} ({reason})")]
    NotOk {
        /// Its status.
        status: Status,
        /// Its error, or "no reason given".
        reason: String,
    },
    /// The record is of another kind.
    #[error("it is a {kind} backup; this tool restores {wanted} backups")]
    WrongKind {
        /// The record's kind.
        kind: Kind,
        /// The tool's kind.
        wanted: Kind,
    },
    /// The record names no local file.
    #[error("the manifest has no artifact section (fetch it with vault-get first)")]
    NoArtifact,
    /// The file cannot be read (missing, not a regular file…).
    #[error("cannot read {}: {source}", quote(.path))]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not what the record says.
    #[error(
        "checksum mismatch: {} is {bytes} bytes{}, the manifest says {expected_bytes} bytes \
         with {expected_sha256}; the file is damaged, fetch it again with vault-get",
        quote(.path),
        .sha256.map(|s| format!(" with SHA-256 {s}")).unwrap_or_default()
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// Its digest (`None`: the size alone differed, the file was not hashed).
        sha256: Option<Sha256>,
        /// The record's size.
        expected_bytes: u64,
        /// The record's digest.
        expected_sha256: Sha256,
    },
}

/// Checks that `manifest` can be restored by a tool for `kind`, hashing the local file in
/// full. Returns its artifact section. [`check_record`] then [`check_file`].
pub fn check<'m>(manifest: &'m Manifest, kind: &Kind) -> Result<&'m Artifact, NotRestorable> {
    let artifact = check_record(manifest, kind)?;
    check_file(artifact)?;
    Ok(artifact)
}

/// The cheap half of [`check`]: the record is `ok`, of `kind`, and names a file that is a
/// regular file of the recorded size. What it does not prove is the content: a tool that
/// starts work before [`check_file`] has answered must be able to undo that work.
pub fn check_record<'m>(
    manifest: &'m Manifest,
    kind: &Kind,
) -> Result<&'m Artifact, NotRestorable> {
    if manifest.status != Status::Ok {
        return Err(NotRestorable::NotOk {
            status: manifest.status.clone(),
            reason: manifest
                .error
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        });
    }
    if &manifest.kind != kind {
        return Err(NotRestorable::WrongKind {
            kind: manifest.kind.clone(),
            wanted: kind.clone(),
        });
    }
    let artifact = manifest
        .artifact
        .as_ref()
        .ok_or(NotRestorable::NoArtifact)?;
    let unreadable = |source| NotRestorable::Unreadable {
        path: artifact.path.clone(),
        source,
    };
    let bytes = crate::fs::open_regular(&artifact.path)
        .and_then(|file| file.metadata())
        .map_err(unreadable)?
        .len();
    if bytes != artifact.bytes {
        return Err(NotRestorable::Mismatch {
            path: artifact.path.clone(),
            bytes,
            sha256: None,
            expected_bytes: artifact.bytes,
            expected_sha256: artifact.sha256,
        });
    }
    Ok(artifact)
}

/// The expensive half of [`check`]: the file's size and SHA-256 are the artifact's.
pub fn check_file(artifact: &Artifact) -> Result<(), NotRestorable> {
    let (bytes, sha256) =
        crate::fs::hash_file(&artifact.path).map_err(|source| NotRestorable::Unreadable {
            path: artifact.path.clone(),
            source,
        })?;
    if (bytes, sha256) != (artifact.bytes, artifact.sha256) {
        return Err(NotRestorable::Mismatch {
            path: artifact.path.clone(),
            bytes,
            sha256: Some(sha256),
            expected_bytes: artifact.bytes,
            expected_sha256: artifact.sha256,
        });
    }
    Ok(())
}

/// The flag every restore tool has.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct ProofArgs {
    /// Accept a restore that cannot be proven (the manifest has no readable stats to
    /// compare with): it is reported as "unverified" but exits 0.
    #[arg(long)]
    pub accept_unverified: bool,
}

/// How a restore concluded, for the tool to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conclusion {
    /// Proven: the message says what matched.
    Proven(String),
    /// Not proven, but accepted by the operator: a warning.
    Accepted(String),
    /// The record is now `failed`: the message is its error.
    Failed(String),
}

/// Puts `section` into `manifest` and sets its status from the proof: a mismatch, or an
/// unverified restore without `--accept-unverified`, fails the record. `what` names the
/// restore for messages (`postgres_app_… into app_check`).
pub fn conclude(
    manifest: &mut Manifest,
    section: &Restore,
    proof: &ProofArgs,
    what: &str,
) -> Conclusion {
    manifest.set_restore(section);
    let note = section.note.as_deref().unwrap_or("no fingerprint");
    let conclusion = match section.result {
        RestoreResult::Ok => Conclusion::Proven(format!(
            "restored {what}: all {} fingerprint items match",
            section.checked
        )),
        RestoreResult::Unverified if proof.accept_unverified => Conclusion::Accepted(format!(
            "restored {what}, but UNVERIFIED: {note}; accepted (--accept-unverified)"
        )),
        RestoreResult::Unverified => Conclusion::Failed(format!(
            "restored {what}, but it is UNVERIFIED: {note}; nothing proves the restore \
             complete (pass --accept-unverified to accept an unproven restore)"
        )),
        RestoreResult::Mismatch => Conclusion::Failed(format!(
            "restored {what}, but it differs from the backup in {} item(s): {}",
            section.differences.len(),
            section
                .differences
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )),
        RestoreResult::Failed => Conclusion::Failed(format!("restore of {what} failed: {note}")),
    };
    if let Conclusion::Failed(message) = &conclusion {
        manifest.fail(message);
    }
    conclusion
}

#[cfg(test)]
mod tests {
    use super::*;
    use manifest::time::Timestamp;

    fn spooled(dir: &std::path::Path, data: &[u8]) -> Manifest {
        let at = Timestamp::parse("2025-01-30T02:00:00Z").unwrap();
        let mut m = Manifest::new(
            Kind::Postgres,
            Some(&manifest::Name::new("app").unwrap()),
            at,
        );
        let path = dir.join("a.dump");
        std::fs::write(&path, data).unwrap();
        m.artifact = Some(Artifact {
            path,
            format: "pg_dump/custom".into(),
            bytes: data.len() as u64,
            sha256: Sha256::of(data),
            extra: Default::default(),
        });
        m
    }

    #[test]
    fn table_of_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let good = spooled(dir.path(), b"dump");
        assert!(check(&good, &Kind::Postgres).is_ok());
        let mut failed = good.clone();
        failed.fail("pg_dump died");
        let mut other_status = good.clone();
        other_status.status = Status::Other("verified".into());
        let mut no_artifact = good.clone();
        no_artifact.artifact = None;
        let mut missing = good.clone();
        missing.artifact.as_mut().unwrap().path = dir.path().join("gone");
        let mut wrong_sha = good.clone();
        wrong_sha.artifact.as_mut().unwrap().sha256 = Sha256::of(b"other");
        let mut wrong_size = good.clone();
        wrong_size.artifact.as_mut().unwrap().bytes = 5;
        let cases: [(&Manifest, Kind, &str); 7] = [
            (&failed, Kind::Postgres, "is failed (pg_dump died)"),
            (&other_status, Kind::Postgres, "is verified"),
            (&good, Kind::Qdrant, "it is a postgres backup"),
            (&no_artifact, Kind::Postgres, "no artifact"),
            (&missing, Kind::Postgres, "cannot read"),
            (&wrong_sha, Kind::Postgres, "checksum mismatch: "),
            (
                &wrong_size,
                Kind::Postgres,
                "is 4 bytes, the manifest says 5 bytes",
            ),
        ];
        for (m, kind, want) in cases {
            let err = check(m, &kind).unwrap_err().to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn the_record_check_reads_no_content_and_the_file_check_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut wrong_sha = spooled(dir.path(), b"dump");
        wrong_sha.artifact.as_mut().unwrap().sha256 = Sha256::of(b"damp");
        // Same size, other content: only hashing can tell.
        let artifact = check_record(&wrong_sha, &Kind::Postgres).unwrap();
        let err = check_file(artifact).unwrap_err().to_string();
        assert!(err.contains("with SHA-256 "), "{err}");
        // A size that differs is refused before any hashing, and says so without a digest.
        let mut wrong_size = wrong_sha.clone();
        wrong_size.artifact.as_mut().unwrap().bytes = 3;
        let err = check_record(&wrong_size, &Kind::Postgres)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is 4 bytes, the manifest says 3"), "{err}");
        assert!(!err.contains("SHA-256 "), "{err}");
    }

    fn section(result: RestoreResult) -> Restore {
        let at = Timestamp::parse("2025-01-30T02:00:00Z").unwrap();
        Restore {
            target: serde_json::json!({"database": "x"}),
            started_at: at.clone(),
            finished_at: at,
            duration_ms: 1,
            result,
            checked: 4,
            differences: vec![],
            note: (result == RestoreResult::Unverified).then(|| "the manifest has no stats".into()),
            warnings: vec![],
            extra: Default::default(),
        }
    }

    #[test]
    fn an_unverified_restore_fails_unless_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (RestoreResult::Ok, false, Status::Ok),
            (RestoreResult::Unverified, false, Status::Failed),
            (RestoreResult::Unverified, true, Status::Ok),
            (RestoreResult::Mismatch, true, Status::Failed),
        ];
        for (result, accept, want) in cases {
            let mut m = spooled(dir.path(), b"d");
            let proof = ProofArgs {
                accept_unverified: accept,
            };
            let conclusion = conclude(&mut m, &section(result), &proof, "x into y");
            assert_eq!(m.status, want, "{result:?} accept={accept}: {conclusion:?}");
            assert_eq!(m.restore.as_ref().unwrap()["result"], result.as_str());
        }
    }
}
