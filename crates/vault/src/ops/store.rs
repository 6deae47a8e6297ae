//! Storing a backup: the artifact, verified, then its sidecar — and finishing a store that
//! was interrupted between the two.

use std::io::{BufReader, Read};

use manifest::sections::{Encryption, Lock, Writing};
use manifest::time::Timestamp;
use manifest::{Id, Manifest, VaultRecord};
use toolkit::cli::quote;
use toolkit::progress::{Hidden, Progress};

use crate::backend::{Backend, PutReceipt, StoreProof};
use crate::crypt::{self, PlainCheck, Recipients, Sealing};
use crate::error::{Error, ErrorKind, Result};
use crate::expect::{AtEndAnswer, Expect};
use crate::key::ObjectKey;
use crate::layout::{artifact_key, artifact_key_of, id_prefix, sidecar_key, SIDECAR_LIMIT};

use super::hash_object;

/// How `store` proves what it stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Verify {
    /// The server's own checksums: every part's CRC32 and the object's, recomputed by the
    /// server and compared with the ones sent (proves what the server received). Falls
    /// back to read-back, loudly, where the server verifies none. The default.
    Checksum,
    /// Read the whole object back and compare size and SHA-256 (proves what the server
    /// returns, at the time of the check; costs a download).
    ReadBack,
    /// Compare only the stored size (the upload was still hashed as it was sent).
    Size,
}

/// What [`store`] did.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The manifest with its `vault` section.
    pub manifest: Manifest,
    /// The artifact was already in the vault (a store interrupted after the artifact and
    /// before the sidecar); it was verified and only the sidecar was written.
    pub resumed: bool,
    /// Checksum verification was asked for, the server proved nothing, and the object was
    /// read back instead (the caller says so).
    pub fell_back_to_read_back: bool,
}

/// Uploads the artifact `manifest` names, verifies it, writes the sidecar, and returns the
/// manifest with its `vault` section. The local file is left alone (deleting it is the
/// caller's decision, after this succeeded).
///
/// Refuses: a missing file or one that is not a regular file; a file whose size or SHA-256
/// differs from the manifest (caught while streaming, before the object is created); an id
/// the vault already holds; a manifest too large to be a sidecar. An artifact of this id
/// that is stored, without a sidecar, with exactly the manifest's size and SHA-256 is the
/// trace of an interrupted store: it is verified and the store is finished.
pub fn store(
    backend: &dyn Backend,
    manifest: &Manifest,
    verify: Verify,
    progress: &dyn Progress,
) -> Result<Stored> {
    store_with(backend, manifest, verify, None, progress)
}

/// [`store`], encrypting the artifact to `recipients` while it streams when they are given:
/// the object is the age file (key `….age`), nothing of the plaintext is written anywhere
/// else, and the sidecar records `vault.encryption` (the ciphertext's size and SHA-256, the
/// recipients' fingerprints) beside the plaintext's `vault.bytes` / `vault.sha256`.
///
/// An encrypted artifact stored without its sidecar cannot be finished: without the
/// identity nothing proves the object holds this artifact (age's ciphertext is new every
/// time), so it is refused like any unknown object of the id, and left for the orphan sweep.
pub fn store_with(
    backend: &dyn Backend,
    manifest: &Manifest,
    verify: Verify,
    recipients: Option<&Recipients>,
    progress: &dyn Progress,
) -> Result<Stored> {
    let artifact = manifest
        .require_artifact()
        .map_err(|m| Error::new(ErrorKind::InvalidInput, m))?;
    let key = stored_key(artifact_key(manifest)?, recipients);
    check_sidecar_size(manifest)?;

    match existing(backend, &manifest.id, &key)? {
        Existing::Nothing => {
            let file = open_artifact(artifact)?;
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let receipt = match recipients {
                None => {
                    let expect = Expect::exact(artifact.bytes, Some(&artifact.sha256));
                    backend.put(&key, &mut reader, expect, progress)?
                }
                Some(recipients) => {
                    let check = PlainCheck::Exact(artifact.bytes, artifact.sha256);
                    let mut sealing = Sealing::new(reader, recipients, check)?;
                    // age's size is exact: S3 sizes its parts as for any file.
                    let expect = Expect::exact(sealing.sealed_len(artifact.bytes), None);
                    let put = backend.put(&key, &mut sealing, expect, progress);
                    refused_as_integrity(put, &sealing, &key)?
                }
            };
            progress.finish(); // the read-back below is not part of the transfer rate
            finish(backend, manifest, &key, receipt, verify, recipients)
        }
        Existing::ArtifactOnly if recipients.is_some() => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "the vault holds an encrypted object of id {} without a sidecar (an earlier \
                 upload stopped before its sidecar): without the identity nothing proves it \
                 is this artifact, so it is not vouched for; remove it (vault-prune sweeps \
                 orphans) and store again",
                manifest.id
            ),
        )
        .with_key(&key)),
        Existing::ArtifactOnly => {
            // Resuming: prove the stored object is this artifact before vouching for it.
            let (bytes, sha256) = hash_object(backend, &key)?;
            if (bytes, sha256) != (artifact.bytes, artifact.sha256) {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "the vault holds an object of id {} without a sidecar ({bytes} bytes, \
                         SHA-256 {sha256}) that is not this artifact ({} bytes, {}): left by \
                         another run or a failed one; it is not overwritten (vault-get \
                         --orphans lists it)",
                        manifest.id, artifact.bytes, artifact.sha256
                    ),
                )
                .with_key(&key));
            }
            // The artifact was stored (and locked, or not) by an earlier run: no lock is claimed
            // for it here.
            let manifest = write_sidecar(backend, manifest, &key, "read-back", None, None)?;
            Ok(Stored {
                manifest,
                resumed: true,
                fell_back_to_read_back: false,
            })
        }
    }
}

/// The key of the stored object: the artifact's, `.age` appended when it is encrypted.
fn stored_key(key: ObjectKey, recipients: Option<&Recipients>) -> ObjectKey {
    match recipients {
        None => key,
        Some(_) => {
            ObjectKey::new(format!("{key}{}", crypt::SUFFIX)).expect("suffix keeps a key valid")
        }
    }
}

/// A put that read a [`Sealing`] fails with the sealing's reason when the plaintext was
/// refused (it is not what its record says): an `Integrity` error, as for a plain put.
fn refused_as_integrity<R: Read>(
    put: Result<PutReceipt>,
    sealing: &Sealing<'_, R>,
    key: &ObjectKey,
) -> Result<PutReceipt> {
    let Err(e) = put else { return put };
    let Some(why) = sealing.refused() else {
        return Err(e);
    };
    let mut refused =
        Error::new(ErrorKind::Integrity, format!("{why}; nothing was stored")).with_key(key);
    if let Some((key, upload_id)) = e.incomplete_upload() {
        refused = refused.with_incomplete(key.clone(), upload_id.to_owned());
    }
    Err(refused)
}

/// An upload begun from a `writing` notice, while its producer still writes the artifact:
/// [`start_following`] on the notice, [`upload_following`] on a thread of its own reading
/// the growing file, [`finish_following`] with the final record.
#[derive(Debug)]
pub struct Following {
    key: ObjectKey,
    recipients: Option<Recipients>,
}

/// Where the artifact of a `writing` notice goes, checked as [`store`] checks it: refused
/// when the vault holds anything of this id (a store to finish is the final record's, the
/// usual way).
pub fn start_following(
    backend: &dyn Backend,
    notice: &Manifest,
    writing: &Writing,
) -> Result<Following> {
    start_following_with(backend, notice, writing, None)
}

/// [`start_following`], the upload encrypted to `recipients` when they are given, as
/// [`store_with`] encrypts.
pub fn start_following_with(
    backend: &dyn Backend,
    notice: &Manifest,
    writing: &Writing,
    recipients: Option<&Recipients>,
) -> Result<Following> {
    let key = stored_key(
        artifact_key_of(&notice.id, &writing.format, &writing.path)?,
        recipients,
    );
    check_sidecar_size(notice)?;
    match existing(backend, &notice.id, &key)? {
        Existing::Nothing => Ok(Following {
            key,
            recipients: recipients.cloned(),
        }),
        Existing::ArtifactOnly => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "the vault holds an artifact of {} without a sidecar: it is finished from the \
                 final record",
                notice.id
            ),
        )
        .with_key(&key)),
    }
}

/// Uploads the growing artifact from `src` (a [`toolkit::follow::Follower`]); `at_end` is
/// the final record's size and digest, asked for once the source ended, and checked before
/// the object becomes visible. Encrypted when the upload was started so: then the
/// plaintext is checked against `at_end` before the last chunk of ciphertext is sent.
pub fn upload_following(
    backend: &dyn Backend,
    following: &Following,
    src: &mut dyn Read,
    at_end: &(dyn Fn() -> AtEndAnswer + Sync),
    progress: &dyn Progress,
) -> Result<PutReceipt> {
    let receipt = match &following.recipients {
        None => backend.put(&following.key, src, Expect::AtEnd(at_end), progress)?,
        Some(recipients) => {
            let sealed = std::sync::OnceLock::new();
            let mut sealing =
                Sealing::new(src, recipients, PlainCheck::AtEnd(at_end))?.publishing(&sealed);
            // Set once the sealing gave out its last byte, which it does only after the
            // plaintext was accepted.
            let ciphertext = || {
                sealed
                    .get()
                    .copied()
                    .ok_or_else(|| "the encrypted stream did not end".to_owned())
            };
            let put = backend.put(
                &following.key,
                &mut sealing,
                Expect::AtEnd(&ciphertext),
                progress,
            );
            refused_as_integrity(put, &sealing, &following.key)?
        }
    };
    progress.finish();
    Ok(receipt)
}

/// Verifies the uploaded artifact as `verify` says and writes the sidecar of `manifest`,
/// the final record of the notice the upload followed.
pub fn finish_following(
    backend: &dyn Backend,
    manifest: &Manifest,
    following: Following,
    receipt: PutReceipt,
    verify: Verify,
) -> Result<Stored> {
    let key = stored_key(artifact_key(manifest)?, following.recipients.as_ref());
    if key != following.key {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the record of {} names an artifact stored as {key}, its notice said {}; the \
                 upload is left without a sidecar",
                manifest.id, following.key
            ),
        )
        .with_key(&following.key));
    }
    check_sidecar_size(manifest)?;
    finish(
        backend,
        manifest,
        &key,
        receipt,
        verify,
        following.recipients.as_ref(),
    )
}

/// After the artifact was put: proves it as `verify` says, writes the sidecar.
fn finish(
    backend: &dyn Backend,
    manifest: &Manifest,
    key: &ObjectKey,
    receipt: PutReceipt,
    verify: Verify,
    recipients: Option<&Recipients>,
) -> Result<Stored> {
    let mut fell_back_to_read_back = false;
    let how = match (verify, receipt.proof) {
        (Verify::Checksum, StoreProof::ServerChecksums) => "server-checksums",
        (Verify::Checksum, StoreProof::LocalWrite) => "local-write",
        (Verify::Checksum, StoreProof::None) => {
            fell_back_to_read_back = true;
            "read-back"
        }
        (Verify::ReadBack, _) => "read-back",
        (Verify::Size, _) => "size",
    };
    verify_stored(backend, key, receipt.bytes, receipt.sha256, how)?;
    let encryption = recipients.map(|r| Encryption {
        scheme: crypt::SCHEME.to_owned(),
        recipients: r.fingerprints(),
        bytes: receipt.bytes,
        sha256: receipt.sha256,
        extra: Default::default(),
    });
    // The lock this run applied to the artifact, and applies to the sidecar.
    let lock = backend.lock()?.map(|l| l.section());
    let manifest = write_sidecar(
        backend,
        manifest,
        key,
        how,
        encryption.as_ref(),
        lock.as_ref(),
    )?;
    Ok(Stored {
        manifest,
        resumed: false,
        fell_back_to_read_back,
    })
}

/// Writes the sidecar of the verified artifact at `key`; returns the manifest with its
/// `vault` section.
fn write_sidecar(
    backend: &dyn Backend,
    manifest: &Manifest,
    key: &ObjectKey,
    verified: &str,
    encryption: Option<&Encryption>,
    lock: Option<&Lock>,
) -> Result<Manifest> {
    let artifact = manifest
        .require_artifact()
        .map_err(|m| Error::new(ErrorKind::InvalidInput, m))?;
    let mut out = manifest.clone();
    out.vault = Some(VaultRecord {
        url: backend.url_of(key),
        bytes: artifact.bytes,
        sha256: artifact.sha256,
        stored_at: Timestamp::now(),
        verified: Some(verified.to_owned()),
        extra: Default::default(),
    });
    let record = out.vault.as_mut().expect("just set");
    record.set_encryption(encryption);
    record.set_lock(lock);
    let again = match encryption {
        None => format!(
            "run vault-put again with the same manifest to finish ({} is not uploaded twice)",
            manifest.id
        ),
        // An encrypted object cannot be proven to be this artifact without the identity.
        Some(_) => "it is left without a sidecar (an orphan, for vault-prune to sweep): store \
                    the manifest again once it is swept"
            .to_owned(),
    };
    let mut text = serde_json::to_vec_pretty(&out).expect("manifests serialize");
    text.push(b'\n');
    let expect = Expect::exact(text.len() as u64, None);
    backend
        .put(&sidecar_key(key), &mut &text[..], expect, &Hidden)
        .map_err(|e| {
            e.append(&format!(
                "; the artifact itself is stored and verified: {again}"
            ))
        })?;
    Ok(out)
}

enum Existing {
    Nothing,
    ArtifactOnly,
}

/// What the vault already holds of this id: one listing of the id's prefix sees every
/// object of it, whatever its extension.
fn existing(backend: &dyn Backend, id: &Id, key: &ObjectKey) -> Result<Existing> {
    let objects = backend.list(&id_prefix(id))?;
    let sidecar = sidecar_key(key);
    if objects.iter().any(|o| o.key == sidecar) {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{id} is already in the vault; objects are never overwritten"),
        )
        .with_key(key));
    }
    if let Some(other) = objects.iter().find(|o| &o.key != key) {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "the vault already holds {} for id {id}; one id is one backup, objects are \
                 never overwritten",
                other.key
            ),
        )
        .with_key(key));
    }
    Ok(if objects.is_empty() {
        Existing::Nothing
    } else {
        Existing::ArtifactOnly
    })
}

/// The sidecar is the manifest plus a `vault` section: refuse before uploading anything
/// if it would exceed what readers accept.
fn check_sidecar_size(manifest: &Manifest) -> Result<()> {
    let size = serde_json::to_vec_pretty(manifest)
        .expect("manifests serialize")
        .len() as u64;
    // Room for the vault section (URL, sizes, digest, time).
    if size + 4096 > SIDECAR_LIMIT {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the manifest of {} is {size} bytes; a sidecar may be at most {} MiB, so it \
                 could never be read back: nothing was stored",
                manifest.id,
                SIDECAR_LIMIT >> 20
            ),
        ));
    }
    Ok(())
}

/// Checks the stored object `how` says (`read-back`, `size`; the server's and the local
/// proofs were given while storing and need nothing more).
fn verify_stored(
    backend: &dyn Backend,
    key: &ObjectKey,
    sent: u64,
    sent_sha: manifest::Sha256,
    how: &str,
) -> Result<()> {
    let (stored, stored_sha) = match how {
        "server-checksums" | "local-write" => return Ok(()),
        "read-back" => hash_object(backend, key)?,
        _ => {
            let info = backend.stat(key)?.ok_or_else(|| {
                Error::new(ErrorKind::NotFound, "the object vanished after upload").with_key(key)
            })?;
            (info.size, sent_sha)
        }
    };
    if (stored, stored_sha) != (sent, sent_sha) {
        // Not deleted: on a server that ignores If-None-Match the object might not be ours.
        // Without a sidecar it is no backup; the orphan sweep finds it.
        return Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "the vault returned {stored} bytes with SHA-256 {stored_sha} for what was sent \
                 as {sent} bytes with {sent_sha}; no sidecar was written, so it is not listed \
                 as a backup"
            ),
        )
        .with_key(key));
    }
    Ok(())
}

fn open_artifact(artifact: &manifest::Artifact) -> Result<std::fs::File> {
    let path = &artifact.path;
    let file = toolkit::fs::open_regular(path)
        .map_err(|e| Error::io(format!("cannot open the spool file {}", quote(path)), e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}", quote(path)), e))?
        .len();
    if size != artifact.bytes {
        return Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "the spool file {} has {size} bytes but the manifest says {}: it is truncated \
                 or was changed; nothing was uploaded",
                quote(path),
                artifact.bytes
            ),
        ));
    }
    Ok(file)
}
