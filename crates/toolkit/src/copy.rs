//! The one copy loop: every byte stackvault moves between a reader and a writer goes
//! through [`copy`] — spool files, child process output, directory and memory vaults,
//! HTTP downloads.
//!
//! In one pass it hashes (optionally), reports progress, checks for a termination signal
//! between chunks, and holds the source to an exact length when one is expected: a source
//! that ends early is an error, never a silently short artifact.

use std::io::{self, Read, Write};

use manifest::sha256::{Hasher, Sha256};

use crate::progress::Progress;

/// Chunk size: large enough that syscalls and hashing calls are few, small enough to be
/// nothing next to a part buffer.
const CHUNK: usize = 1 << 20;

/// What [`copy`] moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Copied {
    /// Bytes copied.
    pub bytes: u64,
    /// Their SHA-256, when hashing was asked for.
    pub sha256: Option<Sha256>,
}

/// Why [`copy`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Reading the source failed.
    #[error("cannot read: {0}")]
    Read(#[source] io::Error),
    /// Writing the destination failed (disk full, broken pipe…).
    #[error("cannot write: {0}")]
    Write(#[source] io::Error),
    /// The source ended before the expected length.
    #[error("the source ended after {got} of {expected} bytes")]
    Short {
        /// Bytes expected.
        expected: u64,
        /// Bytes the source had.
        got: u64,
    },
    /// A termination signal arrived.
    #[error("interrupted by a signal; stopping")]
    Interrupted,
}

impl CopyError {
    /// The I/O error behind it, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            CopyError::Read(e) | CopyError::Write(e) => Some(e),
            _ => None,
        }
    }

    /// As an `io::Error` (for `Read`/`Write` implementations built on `copy`).
    pub fn into_io(self) -> io::Error {
        match self {
            CopyError::Read(e) | CopyError::Write(e) => e,
            CopyError::Short { .. } => {
                io::Error::new(io::ErrorKind::UnexpectedEof, self.to_string())
            }
            CopyError::Interrupted => io::Error::new(io::ErrorKind::Interrupted, self.to_string()),
        }
    }
}

/// How to copy.
#[derive(Clone, Copy, Debug, Default)]
pub struct CopyOptions {
    /// Copy exactly this many bytes: stop there, and fail if the source ends first.
    pub len: Option<u64>,
    /// Hash what passes.
    pub hash: bool,
}

impl CopyOptions {
    /// Exactly `len` bytes.
    pub fn exact(len: u64) -> Self {
        CopyOptions {
            len: Some(len),
            hash: false,
        }
    }

    /// Everything up to the end of the source.
    pub fn to_end() -> Self {
        CopyOptions::default()
    }

    /// And hash it.
    pub fn hashed(self) -> Self {
        CopyOptions { hash: true, ..self }
    }
}

/// Copies from `src` to `dst` as `options` say, reporting each chunk on `progress`, and
/// flushes `dst` at the end.
pub fn copy(
    src: &mut dyn Read,
    dst: &mut dyn Write,
    options: CopyOptions,
    progress: &dyn Progress,
) -> Result<Copied, CopyError> {
    let mut buf = vec![0u8; CHUNK];
    let mut hasher = options.hash.then(Hasher::new);
    let mut total = 0u64;
    loop {
        if crate::interrupt::is_interrupted() {
            return Err(CopyError::Interrupted);
        }
        let want = match options.len {
            Some(len) if total >= len => break,
            Some(len) => CHUNK.min((len - total).try_into().unwrap_or(CHUNK)),
            None => CHUNK,
        };
        let n = match src.read(&mut buf[..want]) {
            Ok(0) => match options.len {
                Some(expected) => {
                    return Err(CopyError::Short {
                        expected,
                        got: total,
                    })
                }
                None => break,
            },
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        dst.write_all(&buf[..n]).map_err(CopyError::Write)?;
        if let Some(h) = hasher.as_mut() {
            h.update(&buf[..n]);
        }
        total += n as u64;
        progress.inc(n as u64);
    }
    dst.flush().map_err(CopyError::Write)?;
    Ok(Copied {
        bytes: total,
        sha256: hasher.map(|h| h.finish().1),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::progress::Hidden;

    #[test]
    fn table_of_copies() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        // (source length, options, copied length or None for an error)
        let cases = [
            (data.len(), CopyOptions::to_end(), Some(data.len())),
            (
                data.len(),
                CopyOptions::exact(data.len() as u64),
                Some(data.len()),
            ),
            (data.len(), CopyOptions::exact(10), Some(10)),
            (100, CopyOptions::exact(200), None),
            (0, CopyOptions::to_end(), Some(0)),
            (0, CopyOptions::exact(0), Some(0)),
        ];
        for (src_len, options, want) in cases {
            let mut out = Vec::new();
            let got = copy(&mut &data[..src_len], &mut out, options.hashed(), &Hidden);
            match want {
                Some(n) => {
                    let copied = got.unwrap();
                    assert_eq!(copied.bytes, n as u64);
                    assert_eq!(copied.sha256, Some(Sha256::of(&data[..n])));
                    assert!(out == data[..n]);
                }
                None => assert!(matches!(
                    got,
                    Err(CopyError::Short {
                        expected: 200,
                        got: 100
                    })
                )),
            }
        }
    }

    /// A sink that fails like a full disk (also used by the child runner's tests).
    pub(crate) struct FullDisk;
    impl Write for FullDisk {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "No space left on device",
            ))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_destination_is_a_write_error() {
        let err = copy(
            &mut &b"abc"[..],
            &mut FullDisk,
            CopyOptions::to_end(),
            &Hidden,
        )
        .unwrap_err();
        assert_eq!(err.io_error().unwrap().kind(), io::ErrorKind::StorageFull);
        assert!(matches!(err, CopyError::Write(_)));
    }
}
