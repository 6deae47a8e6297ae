//! Storing a backup: the artifact, verified, then its sidecar — and finishing a store that
//! was interrupted between the two.

use std::io::{BufReader, Read};

use manifest::sections::{CopiedFrom, Encryption, Lock, Writing};
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
use crate::pipe::pipe;

use super::hash_object;

/// How `store` proves what it stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Verify {
    /// The server's own checksums: the whole object's SHA-256 (one streamed PUT), or every
    /// part's CRC32 and the object's (multipart), recomputed by the
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
            let receipt = match recipients {
                None => {
                    let expect = Expect::exact(artifact.bytes, Some(&artifact.sha256));
                    backend.put_file(&key, &file, expect, progress)?
                }
                Some(recipients) => {
                    let reader = BufReader::with_capacity(1 << 20, file);
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
            let manifest = write_sidecar(backend, manifest, &key, "read-back", None, None, None)?;
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
    let (how, fell_back_to_read_back) = prove(backend, key, &receipt, verify)?;
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
        None,
    )?;
    Ok(Stored {
        manifest,
        resumed: false,
        fell_back_to_read_back,
    })
}

/// Proves the object just put at `key` as `verify` says; returns how (`vault.verified`),
/// and whether checksums were asked for and a read-back had to stand in.
fn prove(
    backend: &dyn Backend,
    key: &ObjectKey,
    receipt: &PutReceipt,
    verify: Verify,
) -> Result<(&'static str, bool)> {
    let (how, fell_back) = match (verify, receipt.proof) {
        (Verify::Checksum, StoreProof::ServerChecksums) => ("server-checksums", false),
        (Verify::Checksum, StoreProof::LocalWrite) => ("local-write", false),
        (Verify::Checksum, StoreProof::None) => ("read-back", true),
        (Verify::ReadBack, _) => ("read-back", false),
        (Verify::Size, _) => ("size", false),
    };
    verify_stored(backend, key, receipt.bytes, receipt.sha256, how)?;
    Ok((how, fell_back))
}

/// Copies the backup `entry` of vault `from` into vault `to` under the same key: the stored
/// object streams from one to the other as it is (an encrypted one stays encrypted: no key
/// is needed), checked against its recorded size and SHA-256 before it becomes visible,
/// proved as [`store`] proves an upload (`verify`), then the sidecar is written — last —
/// with `to`'s `vault` section and `vault.copied_from`. An artifact of the id already in
/// `to` without a sidecar (a copy interrupted before it) is verified against the record
/// and only the sidecar is written; a backup `to` lists already is `AlreadyExists` (the
/// caller skips what the destination's catalogue has).
pub fn copy_backup(
    from: &dyn Backend,
    to: &dyn Backend,
    entry: &super::Entry,
    verify: Verify,
    progress: &dyn Progress,
) -> Result<Stored> {
    let source = entry.manifest.vault.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{} has no vault section", entry.manifest.id),
        )
    })?;
    let invalid = |m: String| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{}: {m}", entry.manifest.id),
        )
    };
    let (bytes, sha256) = source.stored().map_err(invalid)?;
    let encryption = source.encryption().transpose().map_err(invalid)?;
    let copied_from = CopiedFrom {
        url: source.url.clone(),
        stored_at: source.stored_at.clone(),
        extra: Default::default(),
    };
    let key = &entry.key;
    let mut manifest = entry.manifest.clone();
    manifest.vault = None;
    check_sidecar_size(&manifest)?;
    let (how, resumed, fell_back_to_read_back) = match existing(to, &manifest.id, key)? {
        Existing::Nothing => {
            let (writer, mut reader) = pipe();
            let (got, put) = std::thread::scope(|scope| {
                let getting = scope.spawn(move || {
                    let mut writer = writer;
                    let n = from.get(key, &mut writer, &Hidden)?;
                    // The put reads exactly the recorded size and may be gone before the
                    // end mark: whether it got everything is the put's to say.
                    let _ = writer.finish();
                    Ok::<u64, Error>(n)
                });
                let put = to.put(
                    key,
                    &mut reader,
                    Expect::exact(bytes, Some(&sha256)),
                    progress,
                );
                // A put that stopped early stops the download with it.
                drop(reader);
                (getting.join().expect("downloads do not panic"), put)
            });
            progress.finish();
            let receipt = match (got, put) {
                (Ok(_), Ok(receipt)) => receipt,
                // The put read a cut stream: the download's error is the cause.
                (Err(e), Err(p)) if p.io_kind() == Some(std::io::ErrorKind::ConnectionAborted) => {
                    return Err(e.append(&format!("; nothing was stored in {}", to.location())))
                }
                // Otherwise the put stopped first (and the download with it).
                (_, Err(e)) => return Err(e),
                (Err(e), Ok(_)) => return Err(e),
            };
            let (how, fell_back) = prove(to, key, &receipt, verify)?;
            (how, false, fell_back)
        }
        Existing::ArtifactOnly => {
            let held = hash_object(to, key)?;
            if held != (bytes, sha256) {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "{} holds an object of id {} without a sidecar ({} bytes, SHA-256 {}) \
                         that is not this backup's ({bytes} bytes, {sha256}); it is not \
                         overwritten",
                        to.location(),
                        manifest.id,
                        held.0,
                        held.1
                    ),
                )
                .with_key(key));
            }
            ("read-back", true, false)
        }
    };
    // Locked as the destination locks what it stores; a resumed artifact's lock is not
    // known here, so none is claimed.
    let lock = match resumed {
        false => to.lock()?.map(|l| l.section()),
        true => None,
    };
    let manifest = write_sidecar(
        to,
        &manifest,
        key,
        how,
        encryption.as_ref(),
        lock.as_ref(),
        Some(&copied_from),
    )?;
    Ok(Stored {
        manifest,
        resumed,
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
    copied_from: Option<&CopiedFrom>,
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
    record.set_copied_from(copied_from);
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
