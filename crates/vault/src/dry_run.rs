//! A wrapper that pretends: reads pass through, writes and deletes are recorded and not
//! done. `vault-prune --dry-run` runs its real plan through it, so what it prints is what a
//! real run would do, step for step.

use std::io::{Read, Write};
use std::sync::Mutex;

use toolkit::progress::Progress;

use crate::backend::{copy_checked, Backend, CreateOnly, Incomplete, ObjectInfo, PutReceipt};
use crate::error::{Error, ErrorKind, Result};
use crate::expect::Expect;
use crate::key::ObjectKey;

/// What a dry run would have changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// Store this object (this many bytes).
    Put(ObjectKey, u64),
    /// Delete this object.
    Delete(ObjectKey),
    /// Abort this unfinished upload.
    Abort(ObjectKey, String),
}

/// `inner`, with every change recorded instead of made.
pub struct DryRun<B> {
    inner: B,
    planned: Mutex<Vec<Planned>>,
}

impl<B: Backend> DryRun<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        DryRun {
            inner,
            planned: Mutex::new(Vec::new()),
        }
    }

    /// The changes a real run would have made, in order.
    pub fn planned(&self) -> Vec<Planned> {
        self.planned.lock().unwrap().clone()
    }

    fn deleted(&self, key: &ObjectKey) -> bool {
        self.planned
            .lock()
            .unwrap()
            .iter()
            .any(|p| matches!(p, Planned::Delete(k) if k == key))
    }
}

impl<B: Backend> Backend for DryRun<B> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn url_of(&self, key: &ObjectKey) -> String {
        self.inner.url_of(key)
    }

    /// Reads and hashes the source as a real put would (so what is printed is right),
    /// stores nothing.
    fn put(
        &self,
        key: &ObjectKey,
        src: &mut dyn Read,
        expect: Expect<'_>,
        progress: &dyn Progress,
    ) -> Result<PutReceipt> {
        if self.exists(key)? {
            return Err(crate::dir::already_exists(key));
        }
        let receipt = copy_checked(key, src, &mut std::io::sink(), expect, progress)?;
        self.planned
            .lock()
            .unwrap()
            .push(Planned::Put(key.clone(), receipt.bytes));
        Ok(receipt)
    }

    fn get(&self, key: &ObjectKey, dst: &mut dyn Write, progress: &dyn Progress) -> Result<u64> {
        self.inner.get(key, dst, progress)
    }

    fn stat(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>> {
        if self.deleted(key) {
            return Ok(None);
        }
        self.inner.stat(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut listed = self.inner.list(prefix)?;
        listed.retain(|o| !self.deleted(&o.key));
        Ok(listed)
    }

    /// Records the delete; a missing key is `NotFound`, as in a real run.
    fn delete(&self, key: &ObjectKey) -> Result<()> {
        if !self.exists(key)? {
            return Err(Error::new(ErrorKind::NotFound, "no such object").with_key(key));
        }
        self.planned
            .lock()
            .unwrap()
            .push(Planned::Delete(key.clone()));
        Ok(())
    }

    fn incomplete(&self, prefix: &str) -> Result<Vec<Incomplete>> {
        self.inner.incomplete(prefix)
    }

    fn abort(&self, upload: &Incomplete) -> Result<()> {
        if upload.in_progress {
            return Err(
                Error::new(ErrorKind::InvalidInput, "the upload is still in progress")
                    .with_key(&upload.key),
            );
        }
        self.planned
            .lock()
            .unwrap()
            .push(Planned::Abort(upload.key.clone(), upload.upload_id.clone()));
        Ok(())
    }

    fn create_only(&self) -> Result<CreateOnly> {
        self.inner.create_only()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemBackend;
    use manifest::Sha256;
    use toolkit::progress::Hidden;

    #[test]
    fn changes_are_recorded_not_made() {
        let mem = MemBackend::new();
        let a = ObjectKey::new("postgres/2025/01/30/a.dump").unwrap();
        mem.put(&a, &mut &b"abc"[..], Expect::exact(3, None), &Hidden)
            .unwrap();
        let dry = DryRun::new(&mem);
        dry.delete(&a).unwrap();
        assert!(!dry.exists(&a).unwrap(), "the dry run sees its own delete");
        assert!(mem.exists(&a).unwrap(), "the vault is untouched");
        assert_eq!(dry.delete(&a).unwrap_err().kind(), ErrorKind::NotFound);
        let b = ObjectKey::new("postgres/2025/01/30/b.dump").unwrap();
        let receipt = dry
            .put(&b, &mut &b"xyz"[..], Expect::exact(3, None), &Hidden)
            .unwrap();
        assert_eq!(receipt.sha256, Sha256::of(b"xyz"));
        assert!(!mem.exists(&b).unwrap());
        assert_eq!(dry.planned(), [Planned::Delete(a), Planned::Put(b, 3)]);
    }
}
