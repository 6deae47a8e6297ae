//! The storage interface every vault implements.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::sync::Arc;
use std::time::SystemTime;

use manifest::sha256::HashingWriter;
use manifest::Sha256;
use toolkit::progress::Progress;

use crate::error::Result;
use crate::expect::Expect;
use crate::key::ObjectKey;

/// An object: its key, size and when it was last written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key, relative to the vault root.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written, if the backend knows.
    pub modified: Option<SystemTime>,
}

/// Work that was started and never finished: an S3 multipart upload neither completed nor
/// aborted, or a directory vault's temp file. Invisible to listings, but it takes space
/// (and, on S3, is billed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incomplete {
    /// The key it was meant for.
    pub key: ObjectKey,
    /// The S3 upload id, or the temp file's name.
    pub upload_id: String,
    /// When it was started, if known.
    pub started: Option<SystemTime>,
    /// Whether a live process is still writing it (known for directory vaults).
    pub in_progress: bool,
}

/// What a `put` stored, measured while streaming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PutReceipt {
    /// Bytes stored.
    pub bytes: u64,
    /// SHA-256 of what was read from the source and sent.
    pub sha256: Sha256,
    /// What the backend proved about what it stored, while storing it.
    pub proof: StoreProof,
}

/// What a backend proved, while storing, about what it stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreProof {
    /// The server recomputed the checksums sent — the object's SHA-256, or the CRC32 of
    /// every part and of the object — refused any that differed, and reported the same
    /// values back: it received exactly these bytes.
    ServerChecksums,
    /// Written by this process into a local file, fsynced before it got its name.
    LocalWrite,
    /// The server accepted the bytes and proved nothing (it echoes no checksums): only a
    /// read-back shows what it holds.
    None,
}

/// How a backend keeps "objects are never overwritten".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateOnly {
    /// The write itself fails when the key exists (hard link; S3 `If-None-Match: *`):
    /// of two simultaneous puts of one key exactly one wins.
    Atomic,
    /// A check before the write: two simultaneous puts of one key can both pass it
    /// (the server ignores `If-None-Match`).
    CheckThenPut,
}

/// One place artifacts are stored. Object-safe, shared across threads.
///
/// Everything streams: an artifact may be many GiB, and no implementation holds a whole
/// object in memory (S3 holds a bounded number of parts).
pub trait Backend: Send + Sync {
    /// The vault's URL (`s3://bucket/prefix`, `file:///dir`), for messages and records.
    fn location(&self) -> String;

    /// The URL of one object in this vault.
    fn url_of(&self, key: &ObjectKey) -> String {
        format!("{}/{}", self.location().trim_end_matches('/'), key)
    }

    /// Stores what `src` gives under `key`, hashing it as it streams.
    ///
    /// Fails with [`AlreadyExists`](crate::ErrorKind::AlreadyExists) if `key` exists:
    /// objects are never overwritten. Fails with `Integrity` if the source is not what
    /// `expect` says (it ends early, or hashes to something else, or its producer failed)
    /// — checked **before** the object becomes visible, so a failed put leaves nothing
    /// under `key` and never removes anything it did not write itself.
    fn put(
        &self,
        key: &ObjectKey,
        src: &mut dyn Read,
        expect: Expect<'_>,
        progress: &dyn Progress,
    ) -> Result<PutReceipt>;

    /// [`put`](Backend::put) of the whole of `file`, just opened (its cursor at the start):
    /// what `vault-put` stores. The default reads it in order; S3 may send it as one PUT
    /// that a retry sends again from the start.
    fn put_file(
        &self,
        key: &ObjectKey,
        file: &File,
        expect: Expect<'_>,
        progress: &dyn Progress,
    ) -> Result<PutReceipt> {
        let mut reader = BufReader::with_capacity(1 << 20, file);
        self.put(key, &mut reader, expect, progress)
    }

    /// Writes the object's bytes to `dst`; returns how many.
    fn get(&self, key: &ObjectKey, dst: &mut dyn Write, progress: &dyn Progress) -> Result<u64>;

    /// Writes the object into `file` (empty, open for writing) and returns its size and
    /// SHA-256. The default reads it in order through [`get`](Backend::get); S3 fetches
    /// ranges on parallel connections and writes each at its position, hashing in order on
    /// a thread of its own.
    fn get_to_file(
        &self,
        key: &ObjectKey,
        file: &File,
        progress: &dyn Progress,
    ) -> Result<(u64, Sha256)> {
        let mut out = HashingWriter::new(toolkit::small_writes::buffered(file));
        self.get(key, &mut out, progress)?;
        let (buffered, bytes, sha256) = out.finish();
        buffered.into_inner().map_err(|e| {
            crate::Error::io("cannot write the download", e.into_error()).with_key(key)
        })?;
        Ok((bytes, sha256))
    }

    /// The object's size and time, or `None` if there is no such object: one request, no
    /// listing.
    fn stat(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>>;

    /// Whether `key` exists.
    fn exists(&self, key: &ObjectKey) -> Result<bool> {
        Ok(self.stat(key)?.is_some())
    }

    /// Every object whose key starts with `prefix` (any string; empty for all), in no
    /// particular order.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;

    /// Deletes `key`. Deleting a missing key is `NotFound`.
    fn delete(&self, key: &ObjectKey) -> Result<()>;

    /// Unfinished uploads whose key starts with `prefix`.
    fn incomplete(&self, prefix: &str) -> Result<Vec<Incomplete>>;

    /// Aborts an unfinished upload (frees its space). Refuses one still in progress.
    fn abort(&self, upload: &Incomplete) -> Result<()>;

    /// How this backend keeps objects from being overwritten.
    fn create_only(&self) -> Result<CreateOnly>;

    /// The Object Lock every [`put`](Backend::put) applies, checked against the server once:
    /// an error when a lock was asked for and the bucket has no Object Lock enabled.
    /// `None` (the default): objects are not locked.
    fn lock(&self) -> Result<Option<crate::lock::ObjectLock>> {
        Ok(None)
    }
}

/// `Backend` for pointers to backends (`Arc<dyn Backend>`, `&B`), forwarding every method.
macro_rules! forward_backend {
    ($($ptr:ty),*) => {$(
        impl<B: Backend + ?Sized> Backend for $ptr {
            fn location(&self) -> String {
                (**self).location()
            }
            fn url_of(&self, key: &ObjectKey) -> String {
                (**self).url_of(key)
            }
            fn put(
                &self,
                key: &ObjectKey,
                src: &mut dyn Read,
                expect: Expect<'_>,
                progress: &dyn Progress,
            ) -> Result<PutReceipt> {
                (**self).put(key, src, expect, progress)
            }
            fn put_file(
                &self,
                key: &ObjectKey,
                file: &File,
                expect: Expect<'_>,
                progress: &dyn Progress,
            ) -> Result<PutReceipt> {
                (**self).put_file(key, file, expect, progress)
            }
            fn get(&self, key: &ObjectKey, dst: &mut dyn Write, progress: &dyn Progress) -> Result<u64> {
                (**self).get(key, dst, progress)
            }
            fn get_to_file(&self, key: &ObjectKey, file: &File, progress: &dyn Progress) -> Result<(u64, Sha256)> {
                (**self).get_to_file(key, file, progress)
            }
            fn stat(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>> {
                (**self).stat(key)
            }
            fn exists(&self, key: &ObjectKey) -> Result<bool> {
                (**self).exists(key)
            }
            fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
                (**self).list(prefix)
            }
            fn delete(&self, key: &ObjectKey) -> Result<()> {
                (**self).delete(key)
            }
            fn incomplete(&self, prefix: &str) -> Result<Vec<Incomplete>> {
                (**self).incomplete(prefix)
            }
            fn abort(&self, upload: &Incomplete) -> Result<()> {
                (**self).abort(upload)
            }
            fn create_only(&self) -> Result<CreateOnly> {
                (**self).create_only()
            }
            fn lock(&self) -> Result<Option<crate::lock::ObjectLock>> {
                (**self).lock()
            }
        }
    )*};
}

forward_backend!(Arc<B>, &B);

/// Copies `src` into `dst`, hashing it, and checks it against `expect`: the body of every
/// `put` that writes somewhere it can still discard (a temp file, memory, nowhere) before
/// the object becomes visible.
pub(crate) fn copy_checked(
    key: &ObjectKey,
    src: &mut dyn Read,
    dst: &mut dyn Write,
    expect: Expect<'_>,
    progress: &dyn Progress,
) -> Result<PutReceipt> {
    let options = match expect.known_len() {
        Some(len) => toolkit::copy::CopyOptions::exact(len),
        None => toolkit::copy::CopyOptions::to_end(),
    };
    let copied = toolkit::copy::copy(src, dst, options.hashed(), progress)
        .map_err(|e| copy_error(e, key))?;
    let sha256 = copied.sha256.expect("hashed");
    expect.check(key, copied.bytes, &sha256)?;
    Ok(PutReceipt {
        bytes: copied.bytes,
        sha256,
        proof: StoreProof::LocalWrite,
    })
}

/// A copy error from [`toolkit::copy`] as a vault error about `key`.
pub(crate) fn copy_error(e: toolkit::copy::CopyError, key: &ObjectKey) -> crate::Error {
    use crate::error::{Error, ErrorKind};
    use toolkit::copy::CopyError;
    match e {
        CopyError::Short { expected, got } => Error::new(
            ErrorKind::Integrity,
            format!("source ended after {got} of {expected} bytes"),
        ),
        CopyError::Interrupted => Error::new(ErrorKind::Interrupted, "interrupted by a signal"),
        CopyError::Read(e) => Error::io("cannot read the source", e),
        CopyError::Write(e) => Error::io("cannot write", e),
    }
    .with_key(key)
}

/// The contract every backend must keep, run against each implementation (S3 by the
/// integration tests, against a real server).
#[cfg(any(test, feature = "testing"))]
pub mod contract {
    use super::*;
    use crate::ErrorKind;
    use toolkit::progress::Hidden;

    /// Exercises `b`, which must be empty: put (create-only, checked), get, stat, list,
    /// delete, and sources known only at their end.
    pub fn exercise_backend(b: &dyn Backend) {
        let key = ObjectKey::new("postgres/2025/01/30/a.dump").unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        assert!(!b.exists(&key).unwrap());
        assert_eq!(b.stat(&key).unwrap(), None);
        let receipt = b
            .put(
                &key,
                &mut &data[..],
                Expect::exact(data.len() as u64, Some(&Sha256::of(&data))),
                &Hidden,
            )
            .unwrap();
        assert_eq!(
            (receipt.bytes, receipt.sha256),
            (data.len() as u64, Sha256::of(&data))
        );
        let info = b.stat(&key).unwrap().expect("stored");
        assert_eq!(info.size, data.len() as u64);

        let err = b
            .put(&key, &mut &b"other"[..], Expect::exact(5, None), &Hidden)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);

        let mut back = Vec::new();
        assert_eq!(b.get(&key, &mut back, &Hidden).unwrap(), data.len() as u64);
        assert!(back == data, "object changed");

        let short = ObjectKey::new("postgres/2025/01/30/short.dump").unwrap();
        let err = b
            .put(&short, &mut &b"abc"[..], Expect::exact(10, None), &Hidden)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(!b.exists(&short).unwrap(), "a failed put left an object");

        let changed = ObjectKey::new("postgres/2025/01/30/changed.dump").unwrap();
        let err = b
            .put(
                &changed,
                &mut &b"abc"[..],
                Expect::exact(3, Some(&Sha256::of(b"abd"))),
                &Hidden,
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(
            !b.exists(&changed).unwrap(),
            "a source that changed was stored"
        );

        let other = ObjectKey::new("qdrant/2025/01/30/b.snapshot").unwrap();
        b.put(&other, &mut &b"x"[..], Expect::exact(1, None), &Hidden)
            .unwrap();
        let mut all: Vec<_> = b
            .list("")
            .unwrap()
            .into_iter()
            .map(|o| o.key.to_string())
            .collect();
        all.sort();
        assert_eq!(
            all,
            ["postgres/2025/01/30/a.dump", "qdrant/2025/01/30/b.snapshot"]
        );
        let pg = b.list("postgres/").unwrap();
        assert_eq!(pg.len(), 1);
        assert_eq!(pg[0].size, data.len() as u64);
        assert_eq!(
            b.list("postgres/2025/01/30/a.").unwrap().len(),
            1,
            "prefix inside a name"
        );
        assert!(
            b.incomplete("").unwrap().is_empty(),
            "nothing left unfinished"
        );

        // A source whose size and digest are known only at its end (a file still being
        // written): read to the end, then checked before the object becomes visible.
        let growing = ObjectKey::new("postgres/2025/01/30/growing.dump").unwrap();
        let final_record = || Ok((data.len() as u64, Sha256::of(&data)));
        let receipt = b
            .put(
                &growing,
                &mut &data[..],
                Expect::AtEnd(&final_record),
                &Hidden,
            )
            .unwrap();
        assert_eq!(receipt.bytes, data.len() as u64);
        let mut back = Vec::new();
        b.get(&growing, &mut back, &Hidden).unwrap();
        assert!(back == data, "object changed");
        let producer_failed = || Err("the dump failed".to_owned());
        let wrong_digest = || Ok((data.len() as u64, Sha256::of(b"abc")));
        let wrong_size = || Ok((data.len() as u64 + 1, Sha256::of(&data)));
        let refusals: [&(dyn Fn() -> crate::AtEndAnswer + Sync); 3] =
            [&producer_failed, &wrong_digest, &wrong_size];
        for at_end in refusals {
            let key = ObjectKey::new("postgres/2025/01/30/refused.dump").unwrap();
            let err = b
                .put(&key, &mut &data[..], Expect::AtEnd(at_end), &Hidden)
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
            assert!(!b.exists(&key).unwrap(), "a refused source was stored");
        }
        let empty = ObjectKey::new("postgres/2025/01/30/empty.dump").unwrap();
        let nothing = || Ok((0, Sha256::of(b"")));
        b.put(&empty, &mut &b""[..], Expect::AtEnd(&nothing), &Hidden)
            .unwrap();
        assert_eq!(b.stat(&empty).unwrap().expect("stored").size, 0);
        assert!(
            b.incomplete("").unwrap().is_empty(),
            "nothing left unfinished"
        );
        b.delete(&growing).unwrap();
        b.delete(&empty).unwrap();

        b.delete(&other).unwrap();
        assert_eq!(b.delete(&other).unwrap_err().kind(), ErrorKind::NotFound);
        let mut sink = Vec::new();
        assert_eq!(
            b.get(&other, &mut sink, &Hidden).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
