//! A vault in a local directory (`file:///dir`): a mounted disk, NFS, or tests.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use toolkit::copy::{copy, CopyOptions};
use toolkit::fs::{create_new_private, is_locked};
use toolkit::progress::Progress;

use crate::backend::{
    copy_checked, copy_error, Backend, CreateOnly, Incomplete, ObjectInfo, PutReceipt,
};
use crate::error::{Error, ErrorKind, Result};
use crate::expect::Expect;
use crate::key::ObjectKey;

/// Objects are files under `root`, keys are relative paths.
pub struct DirBackend {
    root: PathBuf,
}

/// In-progress uploads are named `NAME.upload-PID-N` beside their final name; listings skip
/// them, and a crash leaves only such a file, never a half object under a real key. While
/// written, the file is locked: [`Backend::incomplete`] tells a live upload from a dead
/// one's leftovers by that lock.
const UPLOAD_MARK: &str = ".upload-";

impl DirBackend {
    /// A vault rooted at `root`, created if missing.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| {
            Error::io(
                format!("cannot create vault directory {}", root.display()),
                e,
            )
        })?;
        Ok(DirBackend { root })
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// Every file under the directory part of `prefix`, with its key (relative path).
    fn walk(&self, prefix: &str) -> Result<Vec<(String, walkdir::DirEntry)>> {
        // Walk only the directory part of the prefix; filter the rest by string.
        let dir_part = prefix.rfind('/').map(|i| &prefix[..i]).unwrap_or("");
        let start = self.root.join(dir_part);
        if !start.exists() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&start).sort_by_file_name() {
            let entry = entry.map_err(|e| {
                let message = format!("cannot list {}", start.display());
                match e.into_io_error() {
                    Some(io) => Error::io(message, io),
                    None => Error::new(ErrorKind::Io, message),
                }
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry.path().strip_prefix(&self.root).expect("under root");
            let Some(rel) = rel.to_str() else { continue };
            if rel.starts_with(prefix) {
                out.push((rel.to_owned(), entry));
            }
        }
        Ok(out)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn info(key: ObjectKey, meta: &fs::Metadata) -> ObjectInfo {
    ObjectInfo {
        key,
        size: meta.len(),
        modified: meta.modified().ok(),
    }
}

impl Backend for DirBackend {
    fn location(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn put(
        &self,
        key: &ObjectKey,
        src: &mut dyn Read,
        expect: Expect<'_>,
        progress: &dyn Progress,
    ) -> Result<PutReceipt> {
        let path = self.path(key);
        if fs::symlink_metadata(&path).is_ok() {
            return Err(already_exists(key));
        }
        let dir = path.parent().expect("keys have a file name");
        fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e).with_key(key))?;
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = dir.join(format!(
            "{}{UPLOAD_MARK}{}-{n}",
            key.file_name(),
            std::process::id()
        ));
        let result = (|| {
            let file = create_new_private(&temp)
                .map_err(|e| Error::io(format!("cannot create {}", temp.display()), e))?;
            let mut out = toolkit::small_writes::buffered(file);
            let receipt = copy_checked(key, src, &mut out, expect, progress)?;
            let file = out
                .into_inner()
                .map_err(|e| Error::io("cannot write", e.into_error()))?
                .into_inner();
            // fsync before the object gets its name: a name must never point at data that
            // a power cut could still take away.
            file.sync_all().map_err(|e| Error::io("cannot fsync", e))?;
            // hard_link fails if the key appeared meanwhile, so even two concurrent puts
            // of one key cannot overwrite each other (rename would).
            fs::hard_link(&temp, &path).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => already_exists(key),
                _ => Error::io(format!("cannot create {}", path.display()), e),
            })?;
            sync_dir(dir).map_err(|e| Error::io("cannot fsync the directory", e))?;
            Ok(receipt)
        })();
        let _ = fs::remove_file(&temp);
        result.map_err(|e: Error| {
            if e.key().is_some() {
                e
            } else {
                e.with_key(key)
            }
        })
    }

    fn get(&self, key: &ObjectKey, dst: &mut dyn Write, progress: &dyn Progress) -> Result<u64> {
        let path = self.path(key);
        let mut file = toolkit::fs::open_regular(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e).with_key(key))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("cannot stat", e).with_key(key))?
            .len();
        progress.set_length(len);
        copy(&mut file, dst, CopyOptions::exact(len), progress).map_err(|e| copy_error(e, key))?;
        Ok(len)
    }

    fn stat(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>> {
        match fs::metadata(self.path(key)) {
            Ok(meta) if meta.is_file() => Ok(Some(info(key.clone(), &meta))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot stat", e).with_key(key)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        for (rel, entry) in self.walk(prefix)? {
            if entry.file_name().to_string_lossy().contains(UPLOAD_MARK) {
                continue;
            }
            let Ok(key) = ObjectKey::new(rel.as_str()) else {
                continue;
            };
            let meta = entry
                .metadata()
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot stat {rel}: {e}")))?;
            out.push(info(key, &meta));
        }
        Ok(out)
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        let path = self.path(key);
        fs::remove_file(&path)
            .map_err(|e| Error::io(format!("cannot delete {}", path.display()), e).with_key(key))
    }

    fn incomplete(&self, prefix: &str) -> Result<Vec<Incomplete>> {
        let mut out = Vec::new();
        for (rel, entry) in self.walk(prefix)? {
            let Some((final_rel, _)) = rel.rsplit_once(UPLOAD_MARK) else {
                continue;
            };
            let Ok(key) = ObjectKey::new(final_rel) else {
                continue;
            };
            let in_progress = is_locked(entry.path()).unwrap_or(false);
            out.push(Incomplete {
                key,
                upload_id: entry.file_name().to_string_lossy().into_owned(),
                started: entry.metadata().ok().and_then(|m| m.modified().ok()),
                in_progress,
            });
        }
        Ok(out)
    }

    fn abort(&self, upload: &Incomplete) -> Result<()> {
        let dir = self.path(&upload.key);
        let dir = dir.parent().expect("keys have a file name");
        let is_ours = upload.upload_id.starts_with(upload.key.file_name())
            && upload.upload_id.contains(UPLOAD_MARK)
            && !upload.upload_id.contains('/');
        if !is_ours {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} is not an upload temp file", upload.upload_id),
            )
            .with_key(&upload.key));
        }
        let temp = dir.join(&upload.upload_id);
        if is_locked(&temp).map_err(|e| Error::io("cannot check the temp file", e))? {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the upload is still in progress (its writer is alive); not removed",
            )
            .with_key(&upload.key));
        }
        fs::remove_file(&temp).map_err(|e| {
            Error::io(format!("cannot remove {}", temp.display()), e).with_key(&upload.key)
        })
    }

    fn create_only(&self) -> Result<CreateOnly> {
        Ok(CreateOnly::Atomic)
    }
}

pub(crate) fn already_exists(key: &ObjectKey) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        "the vault already holds this object; objects are never overwritten",
    )
    .with_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::contract::exercise_backend;
    use toolkit::progress::Hidden;

    #[test]
    fn behaves_like_a_backend() {
        let dir = tempfile::tempdir().unwrap();
        exercise_backend(&DirBackend::new(dir.path()).unwrap());
        // No upload temp files are left behind.
        let leftovers: Vec<_> = walkdir::WalkDir::new(dir.path())
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(UPLOAD_MARK))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_dead_uploads_temp_file_is_found_and_aborted_a_live_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let b = DirBackend::new(dir.path()).unwrap();
        let day = dir.path().join("postgres/2025/01/30");
        fs::create_dir_all(&day).unwrap();
        // What SIGKILL during an upload leaves: an unlocked temp file.
        fs::write(day.join("p.dump.upload-4242-0"), b"half").unwrap();
        // A live upload: the file is locked by its writer.
        let live = create_new_private(&day.join("q.dump.upload-4343-0")).unwrap();
        let mut found = b.incomplete("postgres/").unwrap();
        found.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].key.as_str(), "postgres/2025/01/30/p.dump");
        assert!(!found[0].in_progress && found[1].in_progress);
        assert!(found[0].started.is_some());
        assert!(b.list("").unwrap().is_empty(), "temp files are not objects");
        b.abort(&found[0]).unwrap();
        assert!(b
            .abort(&found[1])
            .unwrap_err()
            .to_string()
            .contains("still in progress"));
        drop(live);
        assert_eq!(b.incomplete("").unwrap().len(), 1);
        let mut fake = found[1].clone();
        fake.upload_id = "../../etc/passwd".into();
        assert_eq!(b.abort(&fake).unwrap_err().kind(), ErrorKind::InvalidInput);
        let _ = Hidden;
    }
}
