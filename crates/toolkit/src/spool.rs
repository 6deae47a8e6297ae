//! The spool: the local directory where dumps are written before upload and downloads land
//! before restore, and the atomic way files are written into it.
//!
//! A spool file is written as `NAME.partial`, hashed in the same pass, fsynced and only then
//! linked to `NAME`: a file without `.partial` is always complete, and a crash leaves at
//! most a `.partial` that nobody mistakes for a backup.
//!
//! The spool must not be a place where someone else can plant files for us to follow: it is
//! created 0700, refused when world-writable or owned by another user, names are checked
//! [`Name`]s (never a path), and the `.partial` is created exclusively without following
//! symlinks, mode 0600, locked while it is written. A `.partial` whose writer died (its lock
//! is gone) is removed and replaced; one whose writer is alive is refused.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use manifest::sha256::{HashingWriter, Sha256};
use manifest::Name;

use crate::fs::{check_private_dir, create_new_private, create_private_dir_all, is_locked};
use crate::small_writes::{self, SmallWrites};

/// The suffix of files being written.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// The spool directory when neither `--spool` nor `STACKVAULT_SPOOL` names one:
/// `/var/lib/stackvault/spool` when it can be created and written (a system service), else
/// `$XDG_CACHE_HOME/stackvault/spool` or `~/.cache/stackvault/spool` (a user at a shell).
pub fn default_dir() -> PathBuf {
    let system = PathBuf::from("/var/lib/stackvault/spool");
    if SpoolDir::open(&system).is_ok() {
        return system;
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("stackvault").join("spool")
}

/// A spool directory that exists, belongs to this user and is not world-writable.
#[derive(Clone, Debug)]
pub struct SpoolDir {
    path: PathBuf,
}

impl SpoolDir {
    /// Opens `path`, creating it (mode 0700) if missing; refuses a directory others could
    /// plant files in.
    pub fn open(path: &Path) -> io::Result<SpoolDir> {
        create_private_dir_all(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create spool directory {}: {e}", path.display()),
            )
        })?;
        check_private_dir(path, "spool directory")
            .map_err(|m| io::Error::new(io::ErrorKind::PermissionDenied, m))?;
        // Writable at all? (A read-only mount passes the ownership checks.)
        let probe = path.join(format!(".probe-{}", std::process::id()));
        create_new_private(&probe)
            .and_then(|_| fs::remove_file(&probe))
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot write into spool directory {}: {e}", path.display()),
                )
            })?;
        let path = path.canonicalize()?;
        Ok(SpoolDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where a file called `name` lives in the spool.
    pub fn file(&self, name: &Name) -> PathBuf {
        self.path.join(name.as_str())
    }

    /// Whether `path` is a file directly in this spool (resolving symlinks and `..`):
    /// only such files are the spool's to delete.
    pub fn contains(&self, path: &Path) -> bool {
        let Ok(real) = path.canonicalize() else {
            return false;
        };
        real.parent() == Some(self.path.as_path())
    }
}

/// A file being written into the spool. Dropped without [`commit`](SpoolFile::commit), it
/// removes its `.partial`. Written in order, through a buffer, hashed as it is written.
pub struct SpoolFile {
    partial: Partial,
    writer: Option<HashingWriter<BufWriter<SmallWrites<File>>>>,
}

/// A spool file written at positions, by several threads at once (a download of parallel
/// ranges): the caller hashes what it writes and vouches for it at
/// [`commit_without_sync`](PositionedSpoolFile::commit_without_sync). Dropped without
/// committing, it removes its `.partial`.
pub struct PositionedSpoolFile {
    partial: Partial,
    file: Option<File>,
}

/// What [`SpoolFile::commit`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The final path.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content.
    pub sha256: Sha256,
}

fn exists_no_follow(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// The names of a spool file being written, and the rules for creating and finishing it.
struct Partial {
    final_path: PathBuf,
    partial_path: PathBuf,
    done: bool,
}

impl Partial {
    /// Creates `name.partial` in `spool` (see [`SpoolFile::create`]).
    fn create(spool: &SpoolDir, name: &Name) -> io::Result<(Partial, File)> {
        let final_path = spool.file(name);
        if exists_no_follow(&final_path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists already; move it away or upload it first",
                    final_path.display()
                ),
            ));
        }
        let partial_path = spool.path.join(format!("{name}{PARTIAL_SUFFIX}"));
        let file = match create_new_private(&partial_path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Self::replace_stale(&partial_path)?;
                create_new_private(&partial_path).map_err(|e| describe(&partial_path, e))?
            }
            Err(e) => return Err(describe(&partial_path, e)),
        };
        let partial = Partial {
            final_path,
            partial_path,
            done: false,
        };
        Ok((partial, file))
    }

    /// A `.partial` exists: a live writer's (refuse) or a dead one's (remove it).
    fn replace_stale(partial: &Path) -> io::Result<()> {
        let meta = fs::symlink_metadata(partial)?;
        if !meta.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a regular file (a symlink?); refusing to touch it: \
                     remove it if you did not put it there",
                    partial.display()
                ),
            ));
        }
        if is_locked(partial)? {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} is being written by another process right now (the same backup run \
                     twice at once?); wait for it to finish",
                    partial.display()
                ),
            ));
        }
        fs::remove_file(partial)
    }

    /// fsyncs (if `sync`), links `.partial` to the final name, removes `.partial`, fsyncs
    /// the directory (if `sync`).
    fn finish(&mut self, file: File, sync: bool) -> io::Result<PathBuf> {
        let result = (|| {
            if sync {
                file.sync_all()?;
            }
            // hard_link + remove instead of rename: link fails if the final name appeared
            // meanwhile, so a concurrent writer's complete file is never replaced.
            fs::hard_link(&self.partial_path, &self.final_path)?;
            drop(file); // the lock goes with the last descriptor, after the link
            fs::remove_file(&self.partial_path)?;
            if sync {
                if let Some(dir) = self.final_path.parent() {
                    File::open(dir)?.sync_all()?;
                }
            }
            Ok(())
        })();
        self.done = true;
        if let Err(e) = result {
            let _ = fs::remove_file(&self.partial_path);
            return Err(describe(&self.final_path, e));
        }
        Ok(self.final_path.clone())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.partial_path);
        }
    }
}

impl SpoolFile {
    /// Starts `name` in `spool`. Fails if `name` exists already (a spool file is never
    /// overwritten: it may be the only copy of a backup not yet uploaded), or if another
    /// live process is writing `name` right now.
    pub fn create(spool: &SpoolDir, name: &Name) -> io::Result<SpoolFile> {
        let (partial, file) = Partial::create(spool, name)?;
        Ok(SpoolFile {
            partial,
            writer: Some(HashingWriter::new(small_writes::buffered(file))),
        })
    }

    /// Where the file will be once committed.
    pub fn final_path(&self) -> &Path {
        &self.partial.final_path
    }

    /// Where it is while being written (for messages).
    pub fn partial_path(&self) -> &Path {
        &self.partial.partial_path
    }

    /// Size and SHA-256 of what was written so far: check them before committing.
    pub fn digest(&self) -> (u64, Sha256) {
        self.writer.as_ref().expect("not committed").digest()
    }

    /// Flushes, fsyncs, links `.partial` to the final name and fsyncs the directory, so
    /// the file and its name survive a power cut. For files that are the only copy (a dump
    /// not yet uploaded).
    pub fn commit(self) -> io::Result<Written> {
        self.finish(true)
    }

    /// Like [`commit`](Self::commit) without the fsyncs, for files that can be fetched
    /// again and are verified before every use (downloads): after a crash such a file is
    /// at worst caught by its checksum. Flushing 1 GiB to disk costs ~2.3 s here, more
    /// than the download itself.
    pub fn commit_without_sync(self) -> io::Result<Written> {
        self.finish(false)
    }

    fn finish(mut self, sync: bool) -> io::Result<Written> {
        let writer = self.writer.take().expect("commit runs once");
        let (buffered, bytes, sha256) = writer.finish();
        let file = match buffered.into_inner() {
            Ok(pieces) => pieces.into_inner(),
            Err(e) => return Err(describe(&self.partial.final_path, e.into_error())),
        };
        let path = self.partial.finish(file, sync)?;
        Ok(Written {
            path,
            bytes,
            sha256,
        })
    }
}

impl PositionedSpoolFile {
    /// Starts `name` in `spool`, as [`SpoolFile::create`] does.
    pub fn create(spool: &SpoolDir, name: &Name) -> io::Result<PositionedSpoolFile> {
        let (partial, file) = Partial::create(spool, name)?;
        Ok(PositionedSpoolFile {
            partial,
            file: Some(file),
        })
    }

    /// The file, for positioned writes from several threads
    /// ([`small_writes::write_all_at`], which keeps each write small).
    pub fn file(&self) -> &File {
        self.file.as_ref().expect("not committed")
    }

    /// Where it is while being written (for messages).
    pub fn partial_path(&self) -> &Path {
        &self.partial.partial_path
    }

    /// Links the file into place, without fsyncs (see [`SpoolFile::commit_without_sync`]).
    /// `bytes` and `sha256` are what the caller computed of what it wrote and checked.
    pub fn commit_without_sync(mut self, bytes: u64, sha256: Sha256) -> io::Result<Written> {
        let file = self.file.take().expect("commit runs once");
        let path = self.partial.finish(file, false)?;
        Ok(Written {
            path,
            bytes,
            sha256,
        })
    }
}

/// `path: error`, with a hint when the disk is full.
pub fn describe(path: &Path, e: io::Error) -> io::Error {
    let hint = if e.kind() == io::ErrorKind::StorageFull {
        " (the spool's disk is full: free space there, or point STACKVAULT_SPOOL at a larger disk)"
    } else {
        ""
    };
    io::Error::new(e.kind(), format!("{}: {e}{hint}", path.display()))
}

impl Write for SpoolFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn spool() -> (tempfile::TempDir, SpoolDir) {
        let dir = tempfile::tempdir().unwrap();
        let spool = SpoolDir::open(&dir.path().join("spool")).unwrap();
        (dir, spool)
    }

    fn name(text: &str) -> Name {
        Name::new(text).unwrap()
    }

    #[test]
    fn commit_links_and_hashes() {
        let (_dir, spool) = spool();
        let mut f = SpoolFile::create(&spool, &name("a.dump")).unwrap();
        f.write_all(b"hello").unwrap();
        let partial = spool.path().join("a.dump.partial");
        assert_eq!(
            fs::metadata(&partial).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let w = f.commit().unwrap();
        assert_eq!((w.bytes, w.sha256), (5, Sha256::of(b"hello")));
        assert_eq!(fs::read(spool.path().join("a.dump")).unwrap(), b"hello");
        assert!(!partial.exists());
        assert!(spool.contains(&w.path));
    }

    #[test]
    fn drop_without_commit_removes_partial() {
        let (_dir, spool) = spool();
        let mut f = SpoolFile::create(&spool, &name("a.dump")).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(fs::read_dir(spool.path()).unwrap().count(), 0);
    }

    #[test]
    fn never_overwrites_a_complete_file() {
        let (_dir, spool) = spool();
        fs::write(spool.path().join("a.dump"), b"precious").unwrap();
        let err = SpoolFile::create(&spool, &name("a.dump")).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(spool.path().join("a.dump")).unwrap(), b"precious");
    }

    #[test]
    fn a_planted_partial_symlink_is_refused_and_its_target_untouched() {
        let (dir, spool) = spool();
        let target = dir.path().join("victim");
        fs::write(&target, b"do not truncate").unwrap();
        std::os::unix::fs::symlink(&target, spool.path().join("a.dump.partial")).unwrap();
        let err = SpoolFile::create(&spool, &name("a.dump")).err().unwrap();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"do not truncate");
    }

    #[test]
    fn a_second_writer_of_the_same_name_is_refused_while_the_first_is_alive() {
        let (_dir, spool) = spool();
        let mut first = SpoolFile::create(&spool, &name("a.dump")).unwrap();
        first.write_all(b"first").unwrap();
        let err = SpoolFile::create(&spool, &name("a.dump")).err().unwrap();
        assert!(err.to_string().contains("another process"), "{err}");
        assert_eq!(first.commit().unwrap().sha256, Sha256::of(b"first"));
    }

    #[test]
    fn a_dead_writers_partial_is_replaced() {
        let (_dir, spool) = spool();
        // What a killed writer leaves: a .partial nobody holds a lock on.
        fs::write(spool.path().join("a.dump.partial"), b"stale").unwrap();
        let mut f = SpoolFile::create(&spool, &name("a.dump")).unwrap();
        f.write_all(b"fresh").unwrap();
        assert_eq!(f.commit().unwrap().sha256, Sha256::of(b"fresh"));
    }

    #[test]
    fn a_spool_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
        let err = SpoolDir::open(&path).unwrap_err();
        assert!(err.to_string().contains("writable by everyone"), "{err}");
    }

    #[test]
    fn only_files_directly_in_the_spool_are_its_own() {
        let (dir, spool) = spool();
        let outside = dir.path().join("passwd");
        fs::write(&outside, b"x").unwrap();
        assert!(!spool.contains(&outside));
        let sneaky = spool.path().join("../passwd");
        assert!(!spool.contains(&sneaky));
        std::os::unix::fs::symlink(&outside, spool.path().join("link")).unwrap();
        assert!(
            !spool.contains(&spool.path().join("link")),
            "a symlink out is not the spool's"
        );
    }
}
