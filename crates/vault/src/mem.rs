//! An in-memory vault for unit tests of code that takes a `&dyn Backend`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Mutex;

use toolkit::progress::Progress;

use crate::backend::{copy_exact, Backend, ObjectInfo};
use crate::dir::already_exists;
use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;

/// Objects in a map. Holds whole objects in memory: for tests only.
#[derive(Default)]
pub struct MemBackend {
    objects: Mutex<BTreeMap<ObjectKey, Vec<u8>>>,
}

impl MemBackend {
    /// An empty vault.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces an object's bytes behind the vault's back (tests of corruption).
    pub fn tamper(&self, key: &ObjectKey, data: Vec<u8>) {
        self.objects.lock().unwrap().insert(key.clone(), data);
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
        len: u64,
        progress: &dyn Progress,
    ) -> Result<()> {
        if self.exists(key)? {
            return Err(already_exists(key));
        }
        let mut data = Vec::new();
        copy_exact(src, &mut data, len, progress).map_err(|e| e.into_error(key))?;
        let mut objects = self.objects.lock().unwrap();
        if objects.contains_key(key) {
            return Err(already_exists(key));
        }
        objects.insert(key.clone(), data);
        Ok(())
    }

    fn get(&self, key: &ObjectKey, dst: &mut dyn Write, progress: &dyn Progress) -> Result<u64> {
        let data = self
            .objects
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .ok_or_else(|| not_found(key))?;
        progress.set_length(data.len() as u64);
        copy_exact(&mut &data[..], dst, data.len() as u64, progress)
            .map_err(|e| e.into_error(key))?;
        Ok(data.len() as u64)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.as_str().starts_with(prefix))
            .map(|(k, v)| ObjectInfo {
                key: k.clone(),
                size: v.len() as u64,
            })
            .collect())
    }

    fn exists(&self, key: &ObjectKey) -> Result<bool> {
        Ok(self.objects.lock().unwrap().contains_key(key))
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.objects
            .lock()
            .unwrap()
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| not_found(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_backend() {
        crate::backend::tests_common::exercise_backend(&MemBackend::new());
    }
}
