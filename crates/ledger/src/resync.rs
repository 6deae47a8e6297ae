//! The ledger rebuilt from the vault: every sidecar is a manifest, recorded as a backup
//! passing through would be. The vault is its own catalogue, so a ledger whose database
//! was the one lost comes back from `vault-ledger init && vault-ledger resync`.

use vault::ops::{catalogue, Problem};
use vault::Backend;

use crate::{Ledger, Outcome, Result};

/// What [`Ledger::resync`] did.
#[derive(Debug, Default)]
pub struct Resynced {
    /// Sidecars read.
    pub seen: usize,
    /// Rows created.
    pub inserted: usize,
    /// Rows updated.
    pub updated: usize,
    /// Unreadable sidecars (not recorded).
    pub problems: Vec<Problem>,
}

impl Ledger {
    /// Records every backup the vault's sidecars describe. Idempotent: a second resync
    /// changes nothing; a backup the ledger knows with a later status (`pruned`) keeps it.
    ///
    /// # Errors
    ///
    /// The vault's listing error (nothing recorded then), or the ledger's.
    pub fn resync(&mut self, backend: &dyn Backend) -> Result<Resynced> {
        let (entries, problems) = catalogue(backend, None)?;
        let mut done = Resynced {
            seen: entries.len(),
            problems,
            ..Resynced::default()
        };
        // Oldest first, as they were made.
        for entry in entries.iter().rev() {
            match self.record(&entry.manifest)?.backup {
                Outcome::Inserted => done.inserted += 1,
                Outcome::Updated => done.updated += 1,
                Outcome::Unchanged => {}
            }
        }
        Ok(done)
    }
}
