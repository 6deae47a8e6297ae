//! Fetching a backup's artifact into the spool, verified as it streams.

use std::path::Path;

use manifest::sections::Encryption;
use manifest::sha256::HashingWriter;
use manifest::{Artifact, Manifest, Name};
use toolkit::progress::Progress;
use toolkit::spool::{PositionedSpoolFile, SpoolDir, SpoolFile};

use crate::crypt::{self, Identities, OpenError};
use crate::pipe::pipe;

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
/// spool (right size and SHA-256) is reused. An encrypted artifact is refused, saying which
/// identity it needs: [`fetch_with`] decrypts it.
pub fn fetch(
    backend: &dyn Backend,
    manifest: &Manifest,
    spool: &SpoolDir,
    progress: &dyn Progress,
) -> Result<Manifest> {
    fetch_with(backend, manifest, spool, None, progress)
}

/// [`fetch`], decrypting an encrypted artifact (`vault.encryption`) with `identities`
/// while it downloads: the object streams in order into age's decryptor, which writes the
/// plaintext into the spool file; the ciphertext's size and SHA-256 and the plaintext's
/// are both checked. A wrong identity is refused before anything is downloaded; a
/// truncated or changed ciphertext fails authentication, and its partial plaintext is
/// deleted with the `.partial` file: no plaintext of a damaged object is left.
pub fn fetch_with(
    backend: &dyn Backend,
    manifest: &Manifest,
    spool: &SpoolDir,
    identities: Option<&Identities>,
    progress: &dyn Progress,
) -> Result<Manifest> {
    let key = key_of(backend, manifest)?;
    let vault = manifest.vault.as_ref().expect("key_of checked");
    let encryption = vault
        .encryption()
        .transpose()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("{}: {e}", manifest.id)))?;
    let file_name = match &encryption {
        Some(_) => key
            .file_name()
            .strip_suffix(crypt::SUFFIX)
            .unwrap_or(key.file_name()),
        None => key.file_name(),
    };
    let name = Name::new(file_name).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("cannot name a spool file after the key: {e}"),
        )
    })?;
    let local = spool.file(&name);
    let reusable =
        toolkit::fs::hash_file(&local).is_ok_and(|got| got == (vault.bytes, vault.sha256));
    if !reusable {
        match &encryption {
            None => download(backend, manifest, &key, spool, &name, progress)?,
            Some(encryption) => {
                let identities = usable(manifest, encryption, identities)?;
                decrypt(
                    backend, manifest, &key, encryption, identities, spool, &name, progress,
                )?
            }
        }
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

/// Downloads a plain artifact into the spool at `name`, checked against `vault`.
fn download(
    backend: &dyn Backend,
    manifest: &Manifest,
    key: &ObjectKey,
    spool: &SpoolDir,
    name: &Name,
    progress: &dyn Progress,
) -> Result<()> {
    let vault = manifest.vault.as_ref().expect("key_of checked");
    let file = PositionedSpoolFile::create(spool, name)
        .map_err(|e| Error::io("cannot write into the spool", e))?;
    let (bytes, sha256) = backend
        .get_to_file(key, file.file(), progress)
        .map_err(|e| download_error(e, manifest, spool, file.partial_path()))?;
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
        .with_key(key));
    }
    // Not fsynced: a download can be fetched again, and every use verifies it first.
    file.commit_without_sync(bytes, sha256)
        .map_err(|e| Error::io("cannot finish the download in the spool", e))?;
    Ok(())
}

fn download_error(e: Error, manifest: &Manifest, spool: &SpoolDir, partial: &Path) -> Error {
    let vault = manifest.vault.as_ref().expect("key_of checked");
    if e.io_kind() == Some(std::io::ErrorKind::StorageFull) {
        return e.append(&format!(
            ": the spool {} ran out of space while downloading {} ({} bytes); the partial \
             download was removed: free space there, or point STACKVAULT_SPOOL at a larger \
             disk",
            spool.path().display(),
            manifest.id,
            vault.bytes
        ));
    }
    e.append(&format!(" (while downloading into {})", partial.display()))
}

/// The identities, if one of them opens `encryption`; otherwise which one is needed.
fn usable<'a>(
    manifest: &Manifest,
    encryption: &Encryption,
    identities: Option<&'a Identities>,
) -> Result<&'a Identities> {
    let wanted = encryption.recipients.join(", ");
    match identities {
        None => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} is encrypted ({}) to the recipient(s) {wanted}: pass --identity FILE (or \
                 STACKVAULT_AGE_IDENTITY) with the secret key of one of them",
                manifest.id, encryption.scheme
            ),
        )),
        Some(_) if encryption.scheme != crypt::SCHEME => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} is encrypted with {:?}, which this version cannot decrypt (it knows {})",
                manifest.id,
                encryption.scheme,
                crypt::SCHEME
            ),
        )),
        Some(ids) if !ids.opens(&encryption.recipients) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the identity {} ({}) is not one {} was encrypted to: it needs the secret key \
                 of {wanted}",
                ids.origin(),
                ids.fingerprints().join(", "),
                manifest.id
            ),
        )),
        Some(ids) => Ok(ids),
    }
}

/// Downloads an encrypted artifact in order and decrypts it into the spool at `name`.
///
/// In order, through [`Backend::get`] on this thread, into a bounded [`pipe`] that age's
/// decryptor reads on another: age's STREAM authenticates chunk after chunk, so the
/// plaintext is written as the ciphertext arrives, with no ciphertext copy on disk (a
/// parallel download into the spool first would need the object's size again in space,
/// and a second pass over it).
#[allow(clippy::too_many_arguments)]
fn decrypt(
    backend: &dyn Backend,
    manifest: &Manifest,
    key: &ObjectKey,
    encryption: &Encryption,
    identities: &Identities,
    spool: &SpoolDir,
    name: &Name,
    progress: &dyn Progress,
) -> Result<()> {
    let vault = manifest.vault.as_ref().expect("key_of checked");
    let mut file =
        SpoolFile::create(spool, name).map_err(|e| Error::io("cannot write into the spool", e))?;
    let partial = file.partial_path().to_owned();
    let (writer, mut reader) = pipe();
    progress.set_length(encryption.bytes);
    let (got, opened) = std::thread::scope(|scope| {
        let out = &mut file;
        // The reader moves in, so it is dropped as soon as the decryptor stops — early on
        // a damaged object — and the download stops with it instead of waiting on a full
        // pipe.
        let opening = scope.spawn(move || crypt::open(&mut reader, identities, out));
        let mut hashing = HashingWriter::new(writer);
        let got = match backend.get(key, &mut hashing, progress) {
            Ok(_) => {
                let (writer, bytes, sha256) = hashing.finish();
                writer
                    .finish()
                    .map(|()| (bytes, sha256))
                    // The decryptor stopped reading: its own error says why.
                    .map_err(|e| Error::io("the decryption stopped", e))
            }
            // Dropped unfinished before the join: the decryptor sees a cut, not an end.
            Err(e) => {
                drop(hashing);
                Err(e)
            }
        };
        (got, opening.join().expect("decryption does not panic"))
    });
    let damaged = |why: String| {
        Error::new(
            ErrorKind::Integrity,
            format!(
                "{} cannot be decrypted: {why}; the partial plaintext was deleted; restore \
                 another backup",
                manifest.id
            ),
        )
        .with_key(key)
    };
    // Dropping `file` on any error below removes the .partial and what it held.
    let plain = match (got, opened) {
        (_, Err(OpenError::NotARecipient)) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the identity {} is not a recipient of {} (the object's header names none \
                     of its keys)",
                    identities.origin(),
                    manifest.id
                ),
            )
            .with_key(key))
        }
        (_, Err(OpenError::Damaged(why))) => return Err(damaged(why)),
        (Err(e), _) => return Err(download_error(e, manifest, spool, &partial)),
        (Ok(_), Err(OpenError::Io(e))) => {
            return Err(Error::io(
                format!("cannot write the plaintext into {}", partial.display()),
                toolkit::spool::describe(&partial, e),
            ))
        }
        (Ok(cipher), Ok(_)) => {
            if cipher != (encryption.bytes, encryption.sha256) {
                return Err(damaged(format!(
                    "the vault object is {} bytes with SHA-256 {}, but it was stored as {} \
                     bytes with {}",
                    cipher.0, cipher.1, encryption.bytes, encryption.sha256
                )));
            }
            file.digest()
        }
    };
    if plain != (vault.bytes, vault.sha256) {
        return Err(damaged(format!(
            "its plaintext is {} bytes with SHA-256 {}, but {} bytes with {} were stored",
            plain.0, plain.1, vault.bytes, vault.sha256
        )));
    }
    file.commit_without_sync()
        .map_err(|e| Error::io("cannot finish the download in the spool", e))?;
    Ok(())
}
