//! Manifests the ledger could not record, kept for later.
//!
//! An unreachable or failing ledger must never swallow a backup: `vault-ledger` passes
//! every manifest on regardless, and keeps each one it could not record as a file in a
//! spool directory (`{id}.{digest}.json`, written `.partial`, fsynced and linked into
//! place by [`toolkit::spool::SpoolFile`]). The next run — any `vault-ledger` that reaches
//! the ledger, or `vault-ledger resync` — records them first and deletes each file once
//! its manifest is committed. Recording is idempotent, so a file recorded twice (a crash
//! between commit and delete) does no harm.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use manifest::{Manifest, Name, Sha256};
use toolkit::spool::{SpoolDir, SpoolFile, PARTIAL_SUFFIX};

use crate::{Error, Ledger, Result};

/// The directory of unrecorded manifests.
#[derive(Clone, Debug)]
pub struct Pending {
    dir: SpoolDir,
}

/// The default directory: `ledger-pending` in the spool.
pub fn default_dir(spool: &Path) -> PathBuf {
    spool.join("ledger-pending")
}

/// A pending file that could not be read as a manifest (left where it is).
#[derive(Debug)]
pub struct Unreadable {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub message: String,
}

impl Pending {
    /// Opens (creates, 0700) the directory.
    pub fn open(path: &Path) -> io::Result<Pending> {
        Ok(Pending {
            dir: SpoolDir::open(path)?,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps `m` until it is recorded. The same manifest kept twice is one file.
    pub fn keep(&self, m: &Manifest) -> io::Result<PathBuf> {
        let mut line = serde_json::to_vec(m).expect("manifests serialize");
        line.push(b'\n');
        let digest = Sha256::of(&line).to_string();
        let name = Name::new(format!("{}.{}.json", m.id, &digest[..16]))
            .expect("ids and hex digits make names");
        let path = self.dir.file(&name);
        if path.exists() {
            return Ok(path);
        }
        let mut file = SpoolFile::create(&self.dir, &name)?;
        file.write_all(&line)?;
        Ok(file.commit()?.path)
    }

    /// The kept files, oldest name first (ids sort by kind, then name, then time).
    pub fn files(&self) -> io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".json") && !n.ends_with(PARTIAL_SUFFIX))
            })
            .collect();
        files.sort();
        Ok(files)
    }

    /// How many files are kept.
    pub fn count(&self) -> usize {
        self.files().map(|f| f.len()).unwrap_or(0)
    }
}

/// What [`Ledger::record_pending`] did.
#[derive(Debug, Default)]
pub struct Flushed {
    /// Manifests recorded (and their files deleted).
    pub recorded: usize,
    /// Files that are not manifests (left in place).
    pub unreadable: Vec<Unreadable>,
}

impl Ledger {
    /// Records every kept manifest, deleting each file once recorded.
    ///
    /// # Errors
    ///
    /// The first ledger error (the files not yet recorded stay), or an I/O error reading
    /// the directory.
    pub fn record_pending(&mut self, pending: &Pending) -> Result<Flushed> {
        let io = |what: &str, path: &Path| {
            let context = format!("cannot {what} {}", path.display());
            move |source| Error::Io { context, source }
        };
        let files = pending.files().map_err(io("read", pending.path()))?;
        let mut flushed = Flushed::default();
        for path in files {
            let manifest = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| manifest::ndjson::parse_line(text.trim_end()));
            match manifest {
                Ok(m) => {
                    self.record(&m)?;
                    std::fs::remove_file(&path).map_err(io("delete", &path))?;
                    flushed.recorded += 1;
                }
                Err(message) => flushed.unreadable.push(Unreadable { path, message }),
            }
        }
        Ok(flushed)
    }
}
