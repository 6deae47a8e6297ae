//! The storage interface every vault implements.

use std::io::{Read, Write};
use std::sync::Arc;

use toolkit::progress::Progress;

use crate::error::Result;
use crate::key::ObjectKey;

/// An object in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key, relative to the vault root.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
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

    /// Stores `len` bytes read from `src` under `key`. Fails with
    /// [`AlreadyExists`](crate::ErrorKind::AlreadyExists) if `key` exists: objects are
    /// never overwritten. Fails with `Integrity` if `src` ends before `len` bytes. A failed
    /// put leaves nothing behind under `key`.
    fn put(
        &self,
        key: &ObjectKey,
        src: &mut dyn Read,
        len: u64,
        progress: &dyn Progress,
    ) -> Result<()>;

    /// Writes the object's bytes to `dst`; returns how many.
    fn get(&self, key: &ObjectKey, dst: &mut dyn Write, progress: &dyn Progress) -> Result<u64>;

    /// Every object whose key starts with `prefix` (a `/`-terminated directory or empty for
    /// all), in no particular order.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;

    /// Whether `key` exists.
    fn exists(&self, key: &ObjectKey) -> Result<bool>;

    /// Deletes `key`. Deleting a missing key is `NotFound`.
    fn delete(&self, key: &ObjectKey) -> Result<()>;
}

impl<B: Backend + ?Sized> Backend for Arc<B> {
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
        len: u64,
        progress: &dyn Progress,
    ) -> Result<()> {
        (**self).put(key, src, len, progress)
    }
    fn get(&self, key: &ObjectKey, dst: &mut dyn Write, progress: &dyn Progress) -> Result<u64> {
        (**self).get(key, dst, progress)
    }
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        (**self).list(prefix)
    }
    fn exists(&self, key: &ObjectKey) -> Result<bool> {
        (**self).exists(key)
    }
    fn delete(&self, key: &ObjectKey) -> Result<()> {
        (**self).delete(key)
    }
}

/// Copies exactly `len` bytes from `src` to `dst` in `buf`-sized steps, reporting progress.
/// Fails with `Integrity` if `src` ends early. Shared by the directory and memory backends.
pub(crate) fn copy_exact(
    src: &mut dyn Read,
    dst: &mut dyn Write,
    len: u64,
    progress: &dyn Progress,
) -> std::result::Result<(), CopyError> {
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        toolkit::interrupt::check().map_err(CopyError::Read)?;
        let want = buf.len().min(left as usize);
        let n = match src.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(CopyError::Short {
                    expected: len,
                    got: len - left,
                })
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        dst.write_all(&buf[..n]).map_err(CopyError::Write)?;
        left -= n as u64;
        progress.inc(n as u64);
    }
    Ok(())
}

/// Why [`copy_exact`] stopped.
#[derive(Debug)]
pub(crate) enum CopyError {
    Short { expected: u64, got: u64 },
    Read(std::io::Error),
    Write(std::io::Error),
}

impl CopyError {
    pub(crate) fn into_error(self, key: &ObjectKey) -> crate::Error {
        use crate::error::{Error, ErrorKind};
        match self {
            CopyError::Short { expected, got } => Error::new(
                ErrorKind::Integrity,
                format!("source ended after {got} of {expected} bytes"),
            ),
            CopyError::Read(e) => Error::io("cannot read the source", e),
            CopyError::Write(e) => Error::io("cannot write", e),
        }
        .with_key(key)
    }
}

/// The contract every backend must keep, run against each implementation.
#[cfg(test)]
pub(crate) mod tests_common {
    use super::*;
    use crate::ErrorKind;
    use toolkit::progress::Hidden;

    pub(crate) fn exercise_backend(b: &dyn Backend) {
        let key = ObjectKey::new("postgres/2025/01/30/a.dump").unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        assert!(!b.exists(&key).unwrap());
        b.put(&key, &mut &data[..], data.len() as u64, &Hidden)
            .unwrap();
        assert!(b.exists(&key).unwrap());

        let err = b.put(&key, &mut &b"other"[..], 5, &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);

        let mut back = Vec::new();
        assert_eq!(b.get(&key, &mut back, &Hidden).unwrap(), data.len() as u64);
        assert!(back == data, "object changed");

        let short = ObjectKey::new("postgres/2025/01/30/short.dump").unwrap();
        let err = b.put(&short, &mut &b"abc"[..], 10, &Hidden).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(!b.exists(&short).unwrap(), "a failed put left an object");

        let other = ObjectKey::new("qdrant/2025/01/30/b.snapshot").unwrap();
        b.put(&other, &mut &b"x"[..], 1, &Hidden).unwrap();
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

        b.delete(&other).unwrap();
        assert_eq!(b.delete(&other).unwrap_err().kind(), ErrorKind::NotFound);
        let mut sink = Vec::new();
        assert_eq!(
            b.get(&other, &mut sink, &Hidden).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
