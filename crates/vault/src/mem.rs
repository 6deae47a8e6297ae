//! An in-memory vault for unit tests of code that takes a `&dyn Backend`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::SystemTime;

use toolkit::copy::{copy, CopyOptions};
use toolkit::progress::Progress;

use crate::backend::{
    copy_checked, copy_error, Backend, CreateOnly, Incomplete, ObjectInfo, PutReceipt,
};
use crate::dir::already_exists;
use crate::error::{Error, ErrorKind, Result};
use crate::expect::Expect;
use crate::key::ObjectKey;

/// Objects in a map. Holds whole objects in memory: for tests only.
#[derive(Default)]
pub struct MemBackend {
    objects: Mutex<BTreeMap<ObjectKey, (Vec<u8>, SystemTime)>>,
}

impl MemBackend {
    /// An empty vault.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces an object's bytes behind the vault's back (tests of corruption).
    pub fn tamper(&self, key: &ObjectKey, data: Vec<u8>) {
        self.objects
            .lock()
            .unwrap()
            .insert(key.clone(), (data, SystemTime::now()));
    }

    /// Sets an object's time (tests of ages).
    pub fn set_modified(&self, key: &ObjectKey, at: SystemTime) {
        if let Some(entry) = self.objects.lock().unwrap().get_mut(key) {
            entry.1 = at;
        }
    }
}

fn not_found(key: &ObjectKey) -> Error {
    Error::new(ErrorKind::NotFound, "no such object").with_key(key)
}

impl Backend for MemBackend {
    fn location(&self) -> String {
        "mem://test".to_owned()
    }

    fn put(
        &self,
        key: &ObjectKey,
        src: &mut dyn Read,
        expect: Expect<'_>,
        progress: &dyn Progress,
    ) -> Result<PutReceipt> {
        if self.exists(key)? {
            return Err(already_exists(key));
        }
        let mut data = Vec::new();
        let receipt = copy_checked(key, src, &mut data, expect, progress)?;
        let mut objects = self.objects.lock().unwrap();
        if objects.contains_key(key) {
            return Err(already_exists(key));
        }
        objects.insert(key.clone(), (data, SystemTime::now()));
        Ok(receipt)
    }

    fn get(&self, key: &ObjectKey, dst: &mut dyn Write, progress: &dyn Progress) -> Result<u64> {
        let (data, _) = self
            .objects
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .ok_or_else(|| not_found(key))?;
        progress.set_length(data.len() as u64);
        copy(
            &mut &data[..],
            dst,
            CopyOptions::exact(data.len() as u64),
            progress,
        )
        .map_err(|e| copy_error(e, key))?;
        Ok(data.len() as u64)
    }

    fn stat(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .get(key)
            .map(|(data, at)| ObjectInfo {
                key: key.clone(),
                size: data.len() as u64,
                modified: Some(*at),
            }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.as_str().starts_with(prefix))
            .map(|(k, (data, at))| ObjectInfo {
                key: k.clone(),
                size: data.len() as u64,
                modified: Some(*at),
            })
            .collect())
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.objects
            .lock()
            .unwrap()
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| not_found(key))
    }

    fn incomplete(&self, _prefix: &str) -> Result<Vec<Incomplete>> {
        Ok(Vec::new()) // a put here is all or nothing
    }

    fn abort(&self, upload: &Incomplete) -> Result<()> {
        Err(Error::new(ErrorKind::NotFound, "no such upload").with_key(&upload.key))
    }

    fn create_only(&self) -> Result<CreateOnly> {
        Ok(CreateOnly::Atomic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_backend() {
        crate::backend::contract::exercise_backend(&MemBackend::new());
    }
}
