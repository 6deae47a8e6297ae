//! Opening and creating files so that a planted file cannot be turned against the tool.
//!
//! The spool and the directory vault are places where other people's files may appear: a
//! symlink named like the next temp file (whose target would be truncated), a FIFO named
//! like an artifact (`open()` on it blocks forever), a hand-typed manifest naming
//! `/etc/passwd`. So:
//!
//! - temp files are created **exclusively, without following symlinks, mode 0600**
//!   ([`create_new_private`]) and hold an advisory lock while they are written, so a sweep
//!   can tell a live writer's file from a dead one's ([`is_locked`]);
//! - files are read only when they are **regular files**, checked without blocking
//!   ([`open_regular`]);
//! - spool directories are created 0700 and refused when world-writable or owned by
//!   someone else ([`check_private_dir`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use manifest::sha256::{Hasher, Sha256};

/// Opens `path` for reading if it is a regular file. A FIFO, socket, device or directory
/// is refused at once: the open itself does not block (`O_NONBLOCK`), and the descriptor
/// is switched back to blocking reads once it is known to be a file.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is {what}; refusing to read it", path.display()),
        ));
    }
    set_blocking(&file)?;
    Ok(file)
}

fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, with flag arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates `path` for writing: it must not exist (not even as a dangling symlink), a
/// symlink is never followed, and the file is readable by its owner only. The returned
/// file holds an exclusive advisory lock until it is closed.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true) // O_CREAT | O_EXCL: fails on any existing name, symlinks included
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)?;
    // Nobody else knows the file yet, so the lock cannot be held by anyone.
    file.try_lock().map_err(|e| match e {
        fs::TryLockError::Error(e) => e,
        fs::TryLockError::WouldBlock => io::Error::other("a new file is locked"),
    })?;
    Ok(file)
}

/// Whether the file at `path` is locked by a live process (a writer still at work). A
/// file whose writer died is unlocked: the kernel drops the lock with the process.
/// A symlink is not followed (and reported as not locked: no writer of ours made it).
pub fn is_locked(path: &Path) -> io::Result<bool> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(fs::TryLockError::WouldBlock) => Ok(true),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Refuses a directory that others could plant files in: world-writable, or owned by
/// another user. The message says what to do.
pub fn check_private_dir(dir: &Path, what: &str) -> Result<(), String> {
    let meta =
        fs::metadata(dir).map_err(|e| format!("cannot use {what} {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{what} {} is not a directory", dir.display()));
    }
    let me = euid();
    if meta.uid() != me {
        return Err(format!(
            "{what} {} belongs to uid {}, not to this user (uid {me}): another user could \
             replace its files; use a directory of your own (--spool, STACKVAULT_SPOOL) or \
             chown it",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.permissions().mode() & 0o002 != 0 {
        return Err(format!(
            "{what} {} is writable by everyone: anyone could plant files in it; \
             chmod 700 it or use another directory",
            dir.display()
        ));
    }
    Ok(())
}

/// Size and SHA-256 of a regular file, read in one streaming pass (a FIFO is refused, not
/// waited on).
pub fn hash_file(path: &Path) -> io::Result<(u64, Sha256)> {
    let mut file = open_regular(path)?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        crate::interrupt::check()?;
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("artifact.dump");
        mkfifo(&fifo);
        let started = std::time::Instant::now();
        let err = open_regular(&fifo).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(hash_file(&fifo).is_err());
        assert!(open_regular(dir.path())
            .unwrap_err()
            .to_string()
            .contains("directory"));
    }

    #[test]
    fn a_regular_file_reads_normally_after_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"hello").unwrap();
        let mut text = String::new();
        open_regular(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello");
        assert_eq!(hash_file(&path).unwrap(), (5, Sha256::of(b"hello")));
    }

    #[test]
    fn a_planted_symlink_is_not_followed_and_its_target_survives() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        fs::write(&target, b"keep me").unwrap();
        let planted = dir.path().join("x.partial");
        std::os::unix::fs::symlink(&target, &planted).unwrap();
        assert!(create_new_private(&planted).is_err());
        let dangling = dir.path().join("y.partial");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(create_new_private(&dangling).is_err());
        assert!(
            !dir.path().join("nowhere").exists(),
            "followed a dangling symlink"
        );
        assert_eq!(fs::read(&target).unwrap(), b"keep me");
    }

    #[test]
    fn new_files_are_private_and_locked_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.partial");
        let mut file = create_new_private(&path).unwrap();
        file.write_all(b"x").unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(is_locked(&path).unwrap());
        drop(file);
        assert!(!is_locked(&path).unwrap(), "a closed file's lock is gone");
        assert!(create_new_private(&path).is_err(), "never reopened as new");
    }

    #[test]
    fn directories_others_could_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("a/b/spool");
        create_private_dir_all(&spool).unwrap();
        assert_eq!(
            fs::metadata(&spool).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(check_private_dir(&spool, "spool").is_ok());
        fs::set_permissions(&spool, fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_private_dir(&spool, "spool").unwrap_err();
        assert!(err.contains("writable by everyone"), "{err}");
    }

    #[test]
    fn a_directory_owned_by_someone_else_is_refused() {
        if euid() != 0 {
            eprintln!("not root: cannot give a directory to another user; checked as root in CI");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        create_private_dir_all(&spool).unwrap();
        std::os::unix::fs::chown(&spool, Some(65534), None).unwrap();
        let err = check_private_dir(&spool, "spool").unwrap_err();
        assert!(err.contains("belongs to uid 65534"), "{err}");
    }
}
