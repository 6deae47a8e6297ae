//! One snapshot of one collection at a time.
//!
//! Qdrant names snapshots to the second (`<collection>-<peer>-YYYY-MM-DD-HH-MM-SS.snapshot`),
//! and a second create in the same second silently replaces the first (reference README,
//! surprise 3). So a snapshot is taken only while holding a lock keyed by server and
//! collection, and the lock is held until at least [`SAME_SECOND_GAP`] after the server
//! answered the create: whoever creates next on that server gets a later second, a name of
//! its own.
//!
//! **What it covers:** every `snap-qdrant` on this host that uses the same spool directory
//! (the lock file lives there while held: `.qdrant-lock-<hash of URL and collection>`), for
//! the same server URL as written (`localhost` and `127.0.0.1` are two keys). It is an
//! advisory `flock`, dropped by the kernel when a process dies, so a killed run never leaves
//! it stuck (only an empty file, reused by the next run). The holder removes the file when
//! it is done; a waiter that got the lock on a file removed meanwhile sees that its inode is
//! no longer the path's and tries again, so two holders are never possible. **Not covered:** another host, or another spool, snapshotting the same
//! collection; for those the checksum check after the download is the safety net — a
//! snapshot replaced by a same-second one no longer matches the checksum its create
//! returned, and the backup fails instead of storing the wrong file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use manifest::Sha256;

use crate::error::{ErrorKind, QdrantError};
use crate::Target;

/// How long the lock is kept after the create answered.
pub const SAME_SECOND_GAP: Duration = Duration::from_millis(1100);

/// A held lock. Dropping it waits out [`SAME_SECOND_GAP`] after [`SnapshotLock::created`],
/// then releases.
#[derive(Debug)]
pub struct SnapshotLock {
    _file: File,
    path: PathBuf,
    created: Option<Instant>,
}

impl SnapshotLock {
    /// The create has answered now.
    pub fn created(&mut self) {
        self.created = Some(Instant::now());
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SnapshotLock {
    fn drop(&mut self) {
        if let Some(at) = self.created {
            let left = SAME_SECOND_GAP.saturating_sub(at.elapsed());
            std::thread::sleep(left);
        }
        // Removed while still locked; the lock goes with the descriptor right after.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The lock file's name for `target` on the server at `server_url`.
pub fn lock_name(server_url: &str, target: &Target) -> String {
    let key = match target {
        Target::Collection(c) => format!("{}\ncollection\n{c}", server_url.trim_end_matches('/')),
        Target::Full => format!("{}\nfull", server_url.trim_end_matches('/')),
    };
    let hash = Sha256::of(key.as_bytes()).to_string();
    format!(".qdrant-lock-{}", &hash[..24])
}

/// Takes the lock for `target` in `dir`, waiting at most `max_wait` for another holder
/// (`on_wait` is called once if it has to wait). A termination signal stops the wait.
pub fn acquire(
    dir: &Path,
    server_url: &str,
    target: &Target,
    max_wait: Duration,
    on_wait: impl FnOnce(),
) -> Result<SnapshotLock, QdrantError> {
    let path = dir.join(lock_name(server_url, target));
    let io_err = |e: io::Error| {
        QdrantError::new(
            ErrorKind::Io,
            format!("cannot use the lock file {}: {e}", path.display()),
        )
    };
    let started = Instant::now();
    let mut on_wait = Some(on_wait);
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            // A planted symlink or FIFO is refused, not followed or waited on.
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(io_err(io::Error::other("not a regular file; remove it")));
        }
        match file.try_lock() {
            Ok(()) => {
                // The holder before may have removed the file after this one opened it.
                let current = std::fs::symlink_metadata(&path).ok();
                if current.is_some_and(|c| c.ino() == meta.ino() && c.dev() == meta.dev()) {
                    return Ok(SnapshotLock {
                        _file: file,
                        path,
                        created: None,
                    });
                }
                continue;
            }
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
        }
        drop(file);
        if let Some(f) = on_wait.take() {
            f();
        }
        if started.elapsed() >= max_wait {
            return Err(QdrantError::new(
                ErrorKind::Io,
                format!(
                    "another snap-qdrant on this host has been snapshotting {} for {} s (lock {}); \
                     gave up waiting",
                    target.describe(),
                    started.elapsed().as_secs(),
                    path.display()
                ),
            ));
        }
        toolkit::interrupt::sleep(Duration::from_millis(200)).map_err(|e| {
            QdrantError::new(ErrorKind::Interrupted, format!("waiting for the lock: {e}"))
        })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_a_gap_after_the_create() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target::Collection("docs".into());
        let mut first = acquire(dir.path(), "http://q:6333", &t, Duration::ZERO, || {}).unwrap();
        // Another collection, or the same one on another server, is another lock.
        let other = acquire(
            dir.path(),
            "http://q:6333",
            &Target::Collection("x".into()),
            Duration::ZERO,
            || {},
        );
        assert!(other.is_ok());
        assert!(acquire(dir.path(), "http://other:6333", &t, Duration::ZERO, || {}).is_ok());
        let mut waited = false;
        let err = acquire(
            dir.path(),
            "http://q:6333/",
            &t,
            Duration::from_millis(300),
            || waited = true,
        )
        .unwrap_err();
        assert!(
            waited && err.message.contains("another snap-qdrant"),
            "{err}"
        );
        first.created();
        let released = Instant::now();
        drop(first);
        assert!(released.elapsed() >= Duration::from_millis(1000));
        assert!(acquire(dir.path(), "http://q:6333", &t, Duration::ZERO, || {}).is_ok());
        drop(other);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "released locks leave no file"
        );
    }

    #[test]
    fn a_planted_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target::Full;
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(lock_name("http://q", &t))).unwrap();
        assert!(acquire(dir.path(), "http://q", &t, Duration::ZERO, || {}).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
