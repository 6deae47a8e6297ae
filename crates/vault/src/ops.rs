//! What the tools do with a vault: store an artifact verified, read the catalogue, fetch an
//! artifact into the spool verified. Backend-independent: everything here works on any
//! [`Backend`].

use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use manifest::ndjson::parse_line;
use manifest::sha256::{HashingReader, HashingWriter};
use manifest::time::Timestamp;
use manifest::{Artifact, Kind, Manifest, Sha256, Status, VaultRecord};
use toolkit::progress::{Hidden, Progress};
use toolkit::spool::SpoolFile;

use crate::backend::Backend;
use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;
use crate::layout::{artifact_key, artifact_of_sidecar, sidecar_key, SIDECAR_SUFFIX};

/// How `store` checks what it stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Read the whole object back and compare size and SHA-256 (the default).
    ReadBack,
    /// Compare only the stored size (for slow links; the upload was still hashed as sent).
    Size,
}

/// Uploads the artifact `manifest` names, verifies it, writes the sidecar, and returns the
/// manifest with its `vault` section. The local file is left alone (deleting it is the
/// caller's decision, after this succeeded).
///
/// Refuses a missing file, a file whose size or SHA-256 differs from the manifest (caught
/// while streaming: the object is removed before anyone can list it), and an id the vault
/// already holds.
pub fn store(
    backend: &dyn Backend,
    manifest: &Manifest,
    verify: Verify,
    progress: &dyn Progress,
) -> Result<Manifest> {
    let artifact = manifest
        .require_artifact()
        .map_err(|m| Error::new(ErrorKind::InvalidInput, m))?;
    let key = artifact_key(manifest)?;
    let sidecar = sidecar_key(&key);
    // The artifact key itself is checked by `put`, which refuses to overwrite.
    if backend.exists(&sidecar)? {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "{} is already in the vault; objects are never overwritten",
                manifest.id
            ),
        )
        .with_key(&key));
    }
    let file = open_artifact(artifact)?;
    let mut reader = HashingReader::new(BufReader::with_capacity(1 << 20, file));
    backend.put(&key, &mut reader, artifact.bytes, progress)?;
    progress.finish(); // the read-back below is not part of the transfer rate
    let (sent, sent_sha) = reader.finish();
    if sent_sha != artifact.sha256 {
        let _ = backend.delete(&key);
        return Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "{} changed: its SHA-256 is {sent_sha}, the manifest says {}; nothing was stored",
                artifact.path.display(),
                artifact.sha256
            ),
        ));
    }
    let (stored_bytes, stored_sha) = match verify {
        Verify::ReadBack => {
            let mut sink = HashingWriter::new(io::sink());
            backend.get(&key, &mut sink, &Hidden)?;
            let (_, n, sha) = sink.finish();
            (n, sha)
        }
        Verify::Size => (stored_size(backend, &key)?, sent_sha),
    };
    if (stored_bytes, stored_sha) != (sent, sent_sha) {
        let _ = backend.delete(&key);
        return Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "the vault returned {stored_bytes} bytes with SHA-256 {stored_sha} for what was \
                 sent as {sent} bytes with {sent_sha}; the object was removed, try again"
            ),
        )
        .with_key(&key));
    }
    let mut out = manifest.clone();
    out.vault = Some(VaultRecord {
        url: backend.url_of(&key),
        bytes: stored_bytes,
        sha256: stored_sha,
        stored_at: Timestamp::now(),
        extra: Default::default(),
    });
    let mut text = serde_json::to_vec_pretty(&out).expect("manifests serialize");
    text.push(b'\n');
    backend.put(&sidecar, &mut &text[..], text.len() as u64, &Hidden)?;
    Ok(out)
}

fn open_artifact(artifact: &Artifact) -> Result<File> {
    let path = &artifact.path;
    let file = File::open(path)
        .map_err(|e| Error::io(format!("cannot open the spool file {}", path.display()), e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
        .len();
    if size != artifact.bytes {
        return Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "the spool file {} has {size} bytes but the manifest says {}: it is truncated \
                 or was changed; nothing was uploaded",
                path.display(),
                artifact.bytes
            ),
        ));
    }
    Ok(file)
}

fn stored_size(backend: &dyn Backend, key: &ObjectKey) -> Result<u64> {
    let listed = backend.list(key.as_str())?;
    listed
        .into_iter()
        .find(|o| &o.key == key)
        .map(|o| o.size)
        .ok_or_else(|| {
            Error::new(ErrorKind::NotFound, "the object vanished after upload").with_key(key)
        })
}

/// One backup in the vault, as its sidecar describes it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The artifact's key.
    pub key: ObjectKey,
    /// The sidecar manifest (with its `vault` section).
    pub manifest: Manifest,
}

/// A sidecar that could not be read; listed so a damaged vault is visible, not hidden.
#[derive(Debug)]
pub struct Problem {
    /// The sidecar's key.
    pub key: ObjectKey,
    /// What is wrong.
    pub message: String,
}

/// Every backup in the vault (of `kind`, if given), newest first, read from the sidecars
/// alone. Unreadable sidecars are returned as problems beside the entries.
pub fn catalogue(backend: &dyn Backend, kind: Option<Kind>) -> Result<(Vec<Entry>, Vec<Problem>)> {
    let prefix = kind.map(|k| format!("{k}/")).unwrap_or_default();
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for object in backend.list(&prefix)? {
        if !object.key.as_str().ends_with(SIDECAR_SUFFIX) {
            continue;
        }
        let Some(key) = artifact_of_sidecar(&object.key) else {
            continue;
        };
        match read_sidecar(backend, &object.key) {
            Ok(manifest) => entries.push(Entry { key, manifest }),
            Err(message) => problems.push(Problem {
                key: object.key,
                message,
            }),
        }
    }
    entries.sort_by(|a, b| {
        b.manifest
            .created_at
            .cmp(&a.manifest.created_at)
            .then_with(|| b.manifest.id.cmp(&a.manifest.id))
    });
    Ok((entries, problems))
}

/// Sidecars are small (a few KiB), so they are read whole.
const SIDECAR_LIMIT: u64 = 16 << 20;

fn read_sidecar(backend: &dyn Backend, key: &ObjectKey) -> std::result::Result<Manifest, String> {
    let mut data = Vec::new();
    let n = backend
        .get(key, &mut data, &Hidden)
        .map_err(|e| e.to_string())?;
    if n > SIDECAR_LIMIT {
        return Err(format!("sidecar is {n} bytes, too large to be a manifest"));
    }
    let text = String::from_utf8(data).map_err(|_| "sidecar is not UTF-8".to_owned())?;
    let manifest = parse_line(&text)?;
    if manifest.vault.is_none() {
        return Err("sidecar has no vault section".to_owned());
    }
    Ok(manifest)
}

/// The entry with `id`.
pub fn find_id(backend: &dyn Backend, id: &str) -> Result<Entry> {
    let kind = id.split('_').next().and_then(|k| k.parse().ok());
    let (entries, _) = catalogue(backend, kind)?;
    entries
        .into_iter()
        .find(|e| e.manifest.id == id)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "no backup with id {id} in {}; see vault-get --list",
                    backend.location()
                ),
            )
        })
}

/// The newest `ok` backup of `kind`.
pub fn latest(backend: &dyn Backend, kind: Kind) -> Result<Entry> {
    let (entries, _) = catalogue(backend, Some(kind))?;
    entries
        .into_iter()
        .find(|e| e.manifest.status == Status::Ok)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no {kind} backup in {}", backend.location()),
            )
        })
}

/// The artifact key a manifest's `vault.url` names in `backend`.
pub fn key_of(backend: &dyn Backend, manifest: &Manifest) -> Result<ObjectKey> {
    let vault = manifest.vault.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("manifest {} has no vault section: it was never stored (pipe it through vault-put first)", manifest.id),
        )
    })?;
    let root = format!("{}/", backend.location().trim_end_matches('/'));
    let key = vault.url.strip_prefix(&root).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} is stored at {}, not in vault {}",
                manifest.id,
                vault.url,
                backend.location()
            ),
        )
    })?;
    ObjectKey::new(key)
}

/// Downloads the artifact of `manifest` (a sidecar or a `vault-put` output line) into
/// `spool_dir`, verifying size and SHA-256 against the `vault` section as it streams. On a
/// mismatch the partial download is deleted and nothing is returned but the error. Returns
/// the manifest with `artifact` pointing at the local copy.
pub fn fetch(
    backend: &dyn Backend,
    manifest: &Manifest,
    spool_dir: &Path,
    progress: &dyn Progress,
) -> Result<Manifest> {
    let key = key_of(backend, manifest)?;
    let vault = manifest.vault.as_ref().expect("key_of checked");
    let local = spool_dir.join(key.file_name());
    let (bytes, sha256) = if local.exists() && matches_file(&local, vault.bytes, vault.sha256) {
        (vault.bytes, vault.sha256)
    } else {
        let mut file = SpoolFile::create(spool_dir, key.file_name())
            .map_err(|e| Error::io("cannot write into the spool", e))?;
        backend.get(&key, &mut file, progress)?;
        let (bytes, sha256) = file.digest();
        if (bytes, sha256) != (vault.bytes, vault.sha256) {
            drop(file); // removes the .partial
            return Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "checksum mismatch: the vault object is {bytes} bytes with SHA-256 {sha256}, \
                     but {} was stored as {} bytes with {}; the object is damaged, the download \
                     was deleted; restore another backup",
                    manifest.id, vault.bytes, vault.sha256
                ),
            )
            .with_key(&key));
        }
        // Not fsynced: a download can be fetched again, and every use verifies it first.
        file.commit_without_sync()
            .map_err(|e| Error::io("cannot finish the download in the spool", e))?;
        (bytes, sha256)
    };
    let mut out = manifest.clone();
    let format = manifest
        .artifact
        .as_ref()
        .map(|a| a.format.clone())
        .unwrap_or_else(|| "unknown".to_owned());
    let extra = manifest
        .artifact
        .as_ref()
        .map(|a| a.extra.clone())
        .unwrap_or_default();
    out.artifact = Some(Artifact {
        path: local,
        format,
        bytes,
        sha256,
        extra,
    });
    Ok(out)
}

/// Whether the file at `path` has this size and digest (a previous complete download).
fn matches_file(path: &Path, bytes: u64, sha256: Sha256) -> bool {
    manifest::sha256::hash_file(path).is_ok_and(|got| got == (bytes, sha256))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemBackend;
    use std::io::Write;

    fn spooled(dir: &Path, id: &str, data: &[u8]) -> Manifest {
        let at = Timestamp::parse("2025-01-30T02:00:00Z").unwrap();
        let path = dir.join(format!("{id}.dump"));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(data)
            .unwrap();
        let mut m = Manifest::new(id.into(), Kind::Postgres, at);
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
    fn store_then_fetch_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let m = spooled(dir.path(), "postgres_app_20250130_020000", b"dump bytes");
        let stored = store(&vault, &m, Verify::ReadBack, &Hidden).unwrap();
        let record = stored.vault.as_ref().unwrap();
        assert_eq!(
            record.url,
            "mem://test/postgres/2025/01/30/postgres_app_20250130_020000.dump"
        );
        assert_eq!(record.sha256, Sha256::of(b"dump bytes"));

        let (entries, problems) = catalogue(&vault, None).unwrap();
        assert!(problems.is_empty());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].manifest, stored);

        let spool = dir.path().join("restore");
        let fetched = fetch(&vault, &entries[0].manifest, &spool, &Hidden).unwrap();
        let local = &fetched.artifact.as_ref().unwrap().path;
        assert_eq!(local, &spool.join("postgres_app_20250130_020000.dump"));
        assert_eq!(std::fs::read(local).unwrap(), b"dump bytes");
    }

    #[test]
    fn second_store_of_an_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let m = spooled(dir.path(), "p1", b"x");
        store(&vault, &m, Verify::Size, &Hidden).unwrap();
        let err = store(&vault, &m, Verify::Size, &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    }

    #[test]
    fn changed_spool_file_is_refused_and_nothing_stored() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let m = spooled(dir.path(), "p1", b"original");
        std::fs::write(&m.artifact.as_ref().unwrap().path, b"tampered").unwrap();
        let err = store(&vault, &m, Verify::ReadBack, &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(vault.list("").unwrap().is_empty());
    }

    #[test]
    fn corrupted_object_is_caught_and_partial_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        let stored = store(
            &vault,
            &spooled(dir.path(), "p1", b"good"),
            Verify::ReadBack,
            &Hidden,
        )
        .unwrap();
        let key = key_of(&vault, &stored).unwrap();
        vault.tamper(&key, b"evil".to_vec());
        let spool = dir.path().join("spool");
        let err = fetch(&vault, &stored, &spool, &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert_eq!(
            std::fs::read_dir(&spool).unwrap().count(),
            0,
            "partial left behind"
        );
    }

    #[test]
    fn catalogue_is_newest_first_and_reports_bad_sidecars() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        for (id, at) in [
            ("a", "2025-01-01T00:00:00Z"),
            ("b", "2025-03-01T00:00:00Z"),
            ("c", "2025-02-01T00:00:00Z"),
        ] {
            let mut m = spooled(dir.path(), id, id.as_bytes());
            m.created_at = Timestamp::parse(at).unwrap();
            store(&vault, &m, Verify::Size, &Hidden).unwrap();
        }
        let junk = ObjectKey::new("postgres/2025/01/01/junk.dump.manifest.json").unwrap();
        vault
            .put(&junk, &mut &b"{not json"[..], 9, &Hidden)
            .unwrap();
        let (entries, problems) = catalogue(&vault, Some(Kind::Postgres)).unwrap();
        let ids: Vec<_> = entries.iter().map(|e| e.manifest.id.as_str()).collect();
        assert_eq!(ids, ["b", "c", "a"]);
        assert_eq!(problems.len(), 1);
        assert_eq!(latest(&vault, Kind::Postgres).unwrap().manifest.id, "b");
        assert_eq!(find_id(&vault, "c").unwrap().manifest.id, "c");
        assert_eq!(
            find_id(&vault, "zz").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            latest(&vault, Kind::Qdrant).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
