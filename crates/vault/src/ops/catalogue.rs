//! Reading the vault's catalogue: the sidecars.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use manifest::ndjson::parse_line;
use manifest::{Id, Kind, Manifest, Status};
use toolkit::progress::Hidden;

use crate::backend::{Backend, ObjectInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;
use crate::layout::{artifact_of_sidecar, id_of_key, id_prefix, SIDECAR_LIMIT, SIDECAR_SUFFIX};

/// Sidecars fetched at once: enough to hide the round trips of a remote vault, few enough
/// to be polite to it.
const PARALLEL_READS: usize = 8;

/// One backup in the vault, as its sidecar describes it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The artifact's key.
    pub key: ObjectKey,
    /// The sidecar manifest (with its `vault` section).
    pub manifest: Manifest,
}

/// A sidecar that could not be read; listed so a damaged vault is visible, not hidden.
#[derive(Debug)]
pub struct Problem {
    /// The sidecar's key.
    pub key: ObjectKey,
    /// What is wrong.
    pub message: String,
}

/// Every backup in the vault (of `kind`, if given), newest first, read from the sidecars
/// alone (fetched in parallel). Unreadable sidecars are returned as problems beside the
/// entries.
pub fn catalogue(backend: &dyn Backend, kind: Option<&Kind>) -> Result<(Vec<Entry>, Vec<Problem>)> {
    let prefix = kind.map(|k| format!("{k}/")).unwrap_or_default();
    let sidecars: Vec<ObjectInfo> = backend
        .list(&prefix)?
        .into_iter()
        .filter(|o| o.key.as_str().ends_with(SIDECAR_SUFFIX))
        .collect();
    let entries = Mutex::new(Vec::new());
    let problems = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_READS.min(sidecars.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(object) = sidecars.get(i) else { break };
                match read_entry(backend, object) {
                    Ok(entry) => entries.lock().unwrap().push(entry),
                    Err(message) => problems.lock().unwrap().push(Problem {
                        key: object.key.clone(),
                        message,
                    }),
                }
            });
        }
    });
    let mut entries = entries.into_inner().unwrap();
    let mut problems = problems.into_inner().unwrap();
    entries.sort_by(|a, b| {
        b.manifest
            .created_at
            .cmp(&a.manifest.created_at)
            .then_with(|| b.manifest.id.cmp(&a.manifest.id))
    });
    problems.sort_by(|a, b| a.key.cmp(&b.key));
    Ok((entries, problems))
}

/// A sidecar, read and checked: not over the size cap (known from the listing, before
/// reading), a manifest, with a `vault` section, and about the id its key names.
fn read_entry(backend: &dyn Backend, object: &ObjectInfo) -> std::result::Result<Entry, String> {
    let key = artifact_of_sidecar(&object.key).ok_or("not a sidecar key")?;
    let manifest = read_sidecar(backend, &object.key, object.size)?;
    if id_of_key(&object.key).as_ref() != Some(&manifest.id) {
        return Err(format!(
            "the sidecar describes {}, not the backup its key names",
            manifest.id
        ));
    }
    Ok(Entry { key, manifest })
}

/// Reads the sidecar at `key` whose size is `size`.
pub(crate) fn read_sidecar(
    backend: &dyn Backend,
    key: &ObjectKey,
    size: u64,
) -> std::result::Result<Manifest, String> {
    if size > SIDECAR_LIMIT {
        return Err(format!(
            "sidecar is {size} bytes, over the {} MiB a manifest may have; not read",
            SIDECAR_LIMIT >> 20
        ));
    }
    let mut data = Vec::with_capacity(size as usize);
    let mut capped = CappedWriter { inner: &mut data };
    backend
        .get(key, &mut capped, &Hidden)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8(data).map_err(|_| "sidecar is not UTF-8".to_owned())?;
    let manifest = parse_line(&text)?;
    if manifest.vault.is_none() {
        return Err("sidecar has no vault section".to_owned());
    }
    Ok(manifest)
}

/// Refuses to grow past [`SIDECAR_LIMIT`]: an object that grew since it was listed is not
/// read into memory whole.
struct CappedWriter<'a> {
    inner: &'a mut Vec<u8>,
}

impl std::io::Write for CappedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.inner.len() as u64 + buf.len() as u64 > SIDECAR_LIMIT {
            return Err(std::io::Error::other(
                "the sidecar is larger than a manifest may be",
            ));
        }
        self.inner.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The backup with `id`: one listing of the id's own prefix (its kind and date are in the
/// id), not a scan of the vault.
pub fn find_id(backend: &dyn Backend, id: &Id) -> Result<Entry> {
    let not_found = || {
        Error::new(
            ErrorKind::NotFound,
            format!(
                "no backup with id {id} in {}; see vault-get --list",
                backend.location()
            ),
        )
    };
    let sidecar = backend
        .list(&id_prefix(id))?
        .into_iter()
        .find(|o| o.key.as_str().ends_with(SIDECAR_SUFFIX))
        .ok_or_else(not_found)?;
    read_entry(backend, &sidecar).map_err(|message| {
        Error::new(
            ErrorKind::Protocol,
            format!("unreadable sidecar {}: {message}", sidecar.key),
        )
    })
}

/// The newest `ok` backup of `kind`.
pub fn latest(backend: &dyn Backend, kind: &Kind) -> Result<Entry> {
    let (entries, _) = catalogue(backend, Some(kind))?;
    entries
        .into_iter()
        .find(|e| e.manifest.status == Status::Ok)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("no {kind} backup in {}", backend.location()),
            )
        })
}
