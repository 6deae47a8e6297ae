//! Fetching a backup's artifact into the spool, verified as it streams.

use manifest::{Artifact, Manifest, Name};
use toolkit::progress::Progress;
use toolkit::spool::{PositionedSpoolFile, SpoolDir};

use crate::backend::Backend;
use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;

/// The artifact key a manifest's `vault.url` names in `backend`.
pub fn key_of(backend: &dyn Backend, manifest: &Manifest) -> Result<ObjectKey> {
    let vault = manifest.vault.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "manifest {} has no vault section: it was never stored (pipe it through \
                 vault-put first)",
                manifest.id
            ),
        )
    })?;
    let root = format!("{}/", backend.location().trim_end_matches('/'));
    let key = vault.url.strip_prefix(&root).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} is stored at {}, not in vault {}",
                manifest.id,
                toolkit::secret::redact_url(&vault.url),
                backend.location()
            ),
        )
    })?;
    ObjectKey::new(key)
}

/// Downloads the artifact of `manifest` (a sidecar or a `vault-put` output line) into
/// `spool`, verifying size and SHA-256 against the `vault` section as it streams. On a
/// mismatch the partial download is deleted and nothing is returned but the error. Returns
/// the manifest with `artifact` pointing at the local copy. A complete copy already in the
/// spool (right size and SHA-256) is reused.
pub fn fetch(
    backend: &dyn Backend,
    manifest: &Manifest,
    spool: &SpoolDir,
    progress: &dyn Progress,
) -> Result<Manifest> {
    let key = key_of(backend, manifest)?;
    let vault = manifest.vault.as_ref().expect("key_of checked");
    let name = Name::new(key.file_name()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("cannot name a spool file after the key: {e}"),
        )
    })?;
    let local = spool.file(&name);
    let reusable =
        toolkit::fs::hash_file(&local).is_ok_and(|got| got == (vault.bytes, vault.sha256));
    if !reusable {
        let file = PositionedSpoolFile::create(spool, &name)
            .map_err(|e| Error::io("cannot write into the spool", e))?;
        let (bytes, sha256) = backend
            .get_to_file(&key, file.file(), progress)
            .map_err(|e| {
                if e.io_kind() == Some(std::io::ErrorKind::StorageFull) {
                    return e.append(&format!(
                        ": the spool {} ran out of space while downloading {} ({} bytes); \
                         the partial download was removed: free space there, or point \
                         STACKVAULT_SPOOL at a larger disk",
                        spool.path().display(),
                        manifest.id,
                        vault.bytes
                    ));
                }
                e.append(&format!(
                    " (while downloading into {})",
                    file.partial_path().display()
                ))
            })?;
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
        file.commit_without_sync(bytes, sha256)
            .map_err(|e| Error::io("cannot finish the download in the spool", e))?;
    }
    let mut out = manifest.clone();
    let (format, extra) = match &manifest.artifact {
        Some(a) => (a.format.clone(), a.extra.clone()),
        None => ("unknown".to_owned(), Default::default()),
    };
    out.artifact = Some(Artifact {
        path: local,
        format,
        bytes: vault.bytes,
        sha256: vault.sha256,
        extra,
    });
    Ok(out)
}
