//! A vault in a local directory (`file:///dir`): a mounted disk, NFS, or tests.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use toolkit::progress::Progress;

use crate::backend::{copy_exact, Backend, ObjectInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;

/// Objects are files under `root`, keys are relative paths.
pub struct DirBackend {
    root: PathBuf,
}

/// In-progress uploads are named `NAME.upload-PID-N` beside their final name; listings skip
/// them and a crash leaves only such a file, never a half object under a real key.
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
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Backend for DirBackend {
    fn location(&self) -> String {
        format!("file://{}", self.root.display())
    }

    fn put(
        &self,
        key: &ObjectKey,
        src: &mut dyn Read,
        len: u64,
        progress: &dyn Progress,
    ) -> Result<()> {
        let path = self.path(key);
        if path.exists() {
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
            let file = File::create(&temp)
                .map_err(|e| Error::io(format!("cannot create {}", temp.display()), e))?;
            let mut out = BufWriter::with_capacity(1 << 20, file);
            copy_exact(src, &mut out, len, progress).map_err(|e| e.into_error(key))?;
            let file = out
                .into_inner()
                .map_err(|e| Error::io("cannot write", e.into_error()))?;
            // fsync before the object gets its name: a name must never point at data that
            // a power cut could still take away.
            file.sync_all().map_err(|e| Error::io("cannot fsync", e))?;
            // hard_link fails if the key appeared meanwhile, so even two concurrent puts
            // of one key cannot overwrite each other (rename would).
            fs::hard_link(&temp, &path).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => already_exists(key),
                _ => Error::io(format!("cannot create {}", path.display()), e),
            })?;
            sync_dir(dir).map_err(|e| Error::io("cannot fsync the directory", e))
        })();
        let _ = fs::remove_file(&temp);
        result.map_err(|e| {
            if e.key().is_some() {
                e
            } else {
                e.with_key(key)
            }
        })
    }

    fn get(&self, key: &ObjectKey, dst: &mut dyn Write, progress: &dyn Progress) -> Result<u64> {
        let path = self.path(key);
        let mut file = File::open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e).with_key(key))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("cannot stat", e).with_key(key))?
            .len();
        progress.set_length(len);
        copy_exact(&mut file, dst, len, progress).map_err(|e| e.into_error(key))?;
        Ok(len)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        // Walk only the directory part of the prefix; filter the rest by string.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
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
            if !entry.file_type().is_file()
                || entry.file_name().to_string_lossy().contains(UPLOAD_MARK)
            {
                continue;
            }
            let rel = entry.path().strip_prefix(&self.root).expect("under root");
            let Some(rel) = rel.to_str() else { continue };
            if !rel.starts_with(prefix) {
                continue;
            }
            let Ok(key) = ObjectKey::new(rel) else {
                continue;
            };
            let size = entry
                .metadata()
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot stat {rel}: {e}")))?
                .len();
            out.push(ObjectInfo { key, size });
        }
        Ok(out)
    }

    fn exists(&self, key: &ObjectKey) -> Result<bool> {
        Ok(self.path(key).is_file())
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        let path = self.path(key);
        fs::remove_file(&path)
            .map_err(|e| Error::io(format!("cannot delete {}", path.display()), e).with_key(key))
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
    use crate::backend::tests_common::exercise_backend;

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
}
