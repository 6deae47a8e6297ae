//! The ledger: stackvault's catalogue of backups in PostgreSQL.
//!
//! The seed kept every backup's metadata in a table `backup_history` and answered
//! operators' questions with plain SQL. This crate keeps that table **exactly** (columns,
//! types, the three indexes, the status values `success` / `failed` / `pruned`), so the
//! seed's own queries run unchanged, and adds beside it what a manifest knows and the seed
//! did not record: run, source, vault URL, stats and the whole manifest (`backup_manifest`),
//! restores (`backup_restore`) and integrity checks (`backup_check_run`, `backup_check`).
//! See [`schema`] for the tables and how they are migrated.
//!
//! - [`Ledger::record`] records one manifest, idempotently (the same manifest twice is one
//!   row; a later status of the same id updates it; a restore or a check adds to it);
//! - [`pending`]: manifests the ledger could not record, kept in a spool directory for the
//!   next run, so an unreachable ledger never swallows a backup;
//! - [`query`]: the latest backups, one backup with its restores and checks;
//! - [`alerts`]: the seed's five alerts;
//! - [`metrics`]: Prometheus text exposition for node_exporter's textfile collector;
//! - [`Ledger::resync`]: the ledger rebuilt or completed from the vault's sidecars.
//!
//! Connections are made with `pgconn` ([`settings`]: `LEDGER_URL`, or libpq's environment),
//! so TLS, password files and error messages are libpq's. Every session runs in UTC, so
//! the seed's `TIMESTAMP` columns hold UTC.
#![deny(missing_docs)]

pub mod alerts;
pub mod metrics;
pub mod pending;
pub mod query;
mod record;
mod resync;
pub mod schema;

use std::time::{Duration, SystemTime};

pub use record::{seed_status, source_of, Outcome, Recorded};
pub use resync::Resynced;

/// The environment variable naming the ledger: a libpq URI or keyword/value string.
pub const LEDGER_URL: &str = "LEDGER_URL";

/// What went wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// PostgreSQL said no, or could not be reached (the server's words, never a secret).
    #[error(transparent)]
    Pg(#[from] pgconn::Error),
    /// The database has no ledger schema.
    #[error("the ledger {target} has no stackvault schema yet: run vault-ledger init")]
    NotInitialized {
        /// `host:port/database`.
        target: String,
    },
    /// The schema is older than this version writes.
    #[error(
        "the ledger {target} has schema version {found}, this vault-ledger writes version \
         {known}: run vault-ledger init to migrate it (rows are kept)"
    )]
    Older {
        /// `host:port/database`.
        target: String,
        /// The database's version.
        found: i32,
        /// This crate's version.
        known: i32,
    },
    /// The schema is newer than this version knows.
    #[error(
        "the ledger {target} has schema version {found}, newer than the {known} this \
         vault-ledger knows: upgrade stackvault"
    )]
    Newer {
        /// `host:port/database`.
        target: String,
        /// The database's version.
        found: i32,
        /// This crate's version.
        known: i32,
    },
    /// The vault could not be read (resync).
    #[error(transparent)]
    Vault(#[from] vault::Error),
    /// A local file (the pending spool) could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether the connection itself is gone or was never made (the next statement would
    /// fail too): the caller keeps the rest of its manifests for later instead of trying
    /// each.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::Pg(e) => {
                e.kind() != pgconn::ErrorKind::Query || e.pg_error().is_some_and(|p| p.is_closed())
            }
            Error::Io { .. } => false,
            _ => true,
        }
    }
}

/// Results of ledger operations.
pub type Result<T> = std::result::Result<T, Error>;

/// The connection settings of the ledger: `ledger_url` (from `LEDGER_URL`, a libpq URI or
/// keyword/value string) over libpq's environment (`PGHOST`, `PGSSLMODE`, `PGPASSWORD`, the
/// password file…), or the environment alone.
pub fn settings(ledger_url: Option<&str>) -> std::result::Result<pgconn::Settings, pgconn::Error> {
    let mut builder = pgconn::Settings::builder();
    if let Some(url) = ledger_url.filter(|u| !u.is_empty()) {
        builder = builder.conninfo(url);
    }
    builder.env().build()
}

/// An open connection to the ledger.
pub struct Ledger {
    client: postgres::Client,
    target: String,
}

impl Ledger {
    /// Connects (as libpq would) and sets the session to UTC.
    ///
    /// # Errors
    ///
    /// [`Error::Pg`] with the server's or the driver's words.
    pub fn connect(settings: &pgconn::Settings) -> Result<Ledger> {
        let mut client = settings.connect()?;
        client
            .batch_execute("SET TIME ZONE 'UTC'")
            .map_err(|e| pgconn::Error::query("cannot set the ledger session to UTC", e))?;
        Ok(Ledger {
            client,
            target: settings.target(),
        })
    }

    /// `host:port/database`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The connection, for callers that run their own SQL (tests, the README's queries).
    pub fn client(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

/// A query error with what was being done.
pub(crate) fn q(context: &str) -> impl FnOnce(postgres::Error) -> Error + '_ {
    move |e| Error::Pg(pgconn::Error::query(context, e))
}

/// `now - window`, saturating at the epoch.
pub(crate) fn cutoff(now: SystemTime, window: Duration) -> SystemTime {
    now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Seconds since the epoch, for metrics and messages.
pub(crate) fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
