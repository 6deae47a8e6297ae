//! Reading a spool file while its producer still writes it, so an upload can start before
//! the dump ends.
//!
//! The producer's side is a [`Growth`]: it says when the file is complete (with the size
//! and digest of its final record) or that it never will be. The consumer reads through a
//! [`Follower`], which returns bytes as they are written, waits while the writer is behind,
//! and ends only when the file is complete and read to its end: a reader that caught up
//! with a live writer never mistakes that for the end of the file.

use std::fs::File;
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use manifest::Sha256;

/// How often a follower that caught up looks for more: the writer does not signal each
/// write, so new bytes are found by polling (a read of a file at its end costs nothing).
const POLL: Duration = Duration::from_millis(20);

/// Where the file being written stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The writer is still writing.
    Writing,
    /// Complete: the final record says this size and digest.
    Complete {
        /// Bytes.
        bytes: u64,
        /// SHA-256 of the whole file.
        sha256: Sha256,
    },
    /// The writer failed or vanished; the file must not be used. Why, for messages.
    Abandoned(String),
}

/// The writer's side of a followed file, shared with its [`Follower`].
#[derive(Debug)]
pub struct Growth {
    outcome: Mutex<Outcome>,
    changed: Condvar,
}

impl Growth {
    /// A file whose writer is writing.
    pub fn new() -> Arc<Growth> {
        Arc::new(Growth {
            outcome: Mutex::new(Outcome::Writing),
            changed: Condvar::new(),
        })
    }

    /// The file is complete, with this size and digest. The first outcome set stays.
    pub fn complete(&self, bytes: u64, sha256: Sha256) {
        self.settle(Outcome::Complete { bytes, sha256 });
    }

    /// The file will never be complete, because `why`. The first outcome set stays.
    pub fn abandon(&self, why: impl Into<String>) {
        self.settle(Outcome::Abandoned(why.into()));
    }

    fn settle(&self, outcome: Outcome) {
        let mut current = self.outcome.lock().unwrap();
        if *current == Outcome::Writing {
            *current = outcome;
        }
        self.changed.notify_all();
    }

    /// Where it stands now.
    pub fn outcome(&self) -> Outcome {
        self.outcome.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for an outcome; returns where it stands then.
    fn wait(&self, timeout: Duration) -> Outcome {
        let current = self.outcome.lock().unwrap();
        let (current, _) = self
            .changed
            .wait_timeout_while(current, timeout, |o| *o == Outcome::Writing)
            .unwrap();
        current.clone()
    }
}

/// Reads a file as it grows; see the [module docs](self).
pub struct Follower {
    file: File,
    growth: Arc<Growth>,
}

impl Follower {
    /// Follows `file` (open for reading at its start) as `growth` says.
    pub fn new(file: File, growth: Arc<Growth>) -> Follower {
        Follower { file, growth }
    }
}

impl Read for Follower {
    /// Bytes as they are written. Waiting for the writer, a signal (SIGINT/SIGTERM) ends
    /// the read with an error, as does an abandoned file; the end comes only once the file
    /// is complete.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            match self.growth.outcome() {
                Outcome::Writing => {
                    crate::interrupt::check()?;
                    if let Outcome::Writing = self.growth.wait(POLL) {
                        continue;
                    }
                }
                Outcome::Complete { .. } => {
                    // Complete only after its last write: one more read finds any bytes
                    // written between the read above and the outcome.
                    return self.file.read(buf);
                }
                Outcome::Abandoned(why) => return Err(io::Error::other(why)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pair() -> (tempfile::TempDir, File, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.partial");
        let writer = File::create(&path).unwrap();
        let reader = File::open(&path).unwrap();
        (dir, writer, reader)
    }

    #[test]
    fn reads_what_a_live_writer_writes_and_ends_only_when_it_is_complete() {
        let (_dir, mut writer, reader) = pair();
        let growth = Growth::new();
        let mut follower = Follower::new(reader, growth.clone());
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let writing = {
            let (data, growth) = (data.clone(), growth.clone());
            std::thread::spawn(move || {
                for chunk in data.chunks(7_000) {
                    writer.write_all(chunk).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
                growth.complete(data.len() as u64, Sha256::of(&data));
            })
        };
        let mut read = Vec::new();
        follower.read_to_end(&mut read).unwrap();
        writing.join().unwrap();
        assert!(read == data, "read {} of {} bytes", read.len(), data.len());
        assert_eq!(
            growth.outcome(),
            Outcome::Complete {
                bytes: data.len() as u64,
                sha256: Sha256::of(&data)
            }
        );
    }

    #[test]
    fn an_abandoned_file_is_an_error_not_an_end() {
        let (_dir, mut writer, reader) = pair();
        writer.write_all(b"half a dump").unwrap();
        let growth = Growth::new();
        let mut follower = Follower::new(reader, growth.clone());
        let abandoning = {
            let growth = growth.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                growth.abandon("pg_dump failed");
                growth.complete(3, Sha256::of(b"abc")); // too late: the first outcome stays
            })
        };
        let mut read = Vec::new();
        let err = follower.read_to_end(&mut read).unwrap_err();
        abandoning.join().unwrap();
        assert_eq!(err.to_string(), "pg_dump failed");
        assert_eq!(read, b"half a dump");
        assert_eq!(
            growth.outcome(),
            Outcome::Abandoned("pg_dump failed".into())
        );
    }
}
