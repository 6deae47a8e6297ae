//! The ledger's tables, and the versioned migrations that create them.
//!
//! Version 1 is the seed's table, exactly: `backup_history` with its three indexes, made
//! with `IF NOT EXISTS` so a database the seed's scripts already filled is adopted as it is,
//! rows included. Version 2 adds stackvault's side tables beside it, keyed by `backup_id`
//! (and a unique index on `backup_id`, which is what makes recording idempotent; the seed
//! wrote one row per backup id anyway):
//!
//! | table | one row per | what |
//! | --- | --- | --- |
//! | `backup_history` | backup id | the seed's columns: `backup_id`, `backup_type` (kind), `timestamp` (backup time, UTC), `size_bytes`, `checksum` (SHA-256 hex), `status` (`success`, `failed`, `pruned`, or a newer tool's word), `error_message`, `created_at` |
//! | `backup_manifest` | backup id | `run`, `source` (the name in the id: database, collection), `source_info` (the manifest's `source`), `vault_url`, `stored_at`, `manifest_status` (as on the wire), `stats`, the whole `manifest` as jsonb |
//! | `backup_restore` | restore | `target`, `started_at`, `finished_at`, `duration_ms`, `result` (`ok`, `mismatch`, `unverified`, `failed`), `checked`, `differences`, `note` |
//! | `backup_check_run` | integrity-check run | `checked_at`, `result` (`pass`, `fail`, `skip`), `items` |
//! | `backup_check` | check of a run | `name`, `status`, `detail`, `figures` |
//!
//! `stackvault_schema` records which versions were applied and when. A later release adds
//! a migration at the end of [`MIGRATIONS`]; `vault-ledger init` applies what is missing,
//! each in its own transaction, under an advisory lock (two inits at once do not race).

use crate::{q, Error, Ledger, Result};

/// One schema change.
pub struct Migration {
    /// Its number: 1, 2, … in order.
    pub version: i32,
    /// What it does, as recorded in `stackvault_schema`.
    pub description: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "the seed's backup_history table and its three indexes",
        sql: "
CREATE TABLE IF NOT EXISTS backup_history (
    id SERIAL PRIMARY KEY,
    backup_id VARCHAR(255) NOT NULL,
    backup_type VARCHAR(50) NOT NULL,
    timestamp TIMESTAMP NOT NULL,
    size_bytes BIGINT,
    checksum VARCHAR(64),
    status VARCHAR(20),
    error_message TEXT,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_backup_history_timestamp ON backup_history(timestamp);
CREATE INDEX IF NOT EXISTS idx_backup_history_type ON backup_history(backup_type);
CREATE INDEX IF NOT EXISTS idx_backup_history_status ON backup_history(status);
",
    },
    Migration {
        version: 2,
        description: "manifests, restores and integrity checks beside backup_history",
        sql: "
CREATE UNIQUE INDEX backup_history_backup_id_key ON backup_history(backup_id);
CREATE TABLE backup_manifest (
    backup_id VARCHAR(255) PRIMARY KEY REFERENCES backup_history(backup_id) ON DELETE CASCADE,
    run VARCHAR(255),
    source VARCHAR(255) NOT NULL DEFAULT '',
    source_info JSONB,
    vault_url TEXT,
    stored_at TIMESTAMP,
    manifest_status VARCHAR(32) NOT NULL,
    stats JSONB,
    manifest JSONB NOT NULL,
    recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX backup_manifest_run ON backup_manifest(run);
CREATE TABLE backup_restore (
    id BIGSERIAL PRIMARY KEY,
    backup_id VARCHAR(255) NOT NULL REFERENCES backup_history(backup_id) ON DELETE CASCADE,
    target JSONB,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    duration_ms BIGINT,
    result VARCHAR(20) NOT NULL,
    checked INTEGER,
    differences JSONB,
    note TEXT,
    section_sha256 CHAR(64) NOT NULL,
    recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (backup_id, section_sha256)
);
CREATE INDEX backup_restore_finished_at ON backup_restore(finished_at);
CREATE TABLE backup_check_run (
    id BIGSERIAL PRIMARY KEY,
    backup_id VARCHAR(255) NOT NULL REFERENCES backup_history(backup_id) ON DELETE CASCADE,
    checked_at TIMESTAMP,
    result VARCHAR(20) NOT NULL,
    items JSONB,
    section_sha256 CHAR(64) NOT NULL,
    recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (backup_id, section_sha256)
);
CREATE INDEX backup_check_run_checked_at ON backup_check_run(checked_at);
CREATE TABLE backup_check (
    run_id BIGINT NOT NULL REFERENCES backup_check_run(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    status VARCHAR(20) NOT NULL,
    detail TEXT,
    figures JSONB
);
CREATE INDEX backup_check_run_id ON backup_check(run_id);
",
    },
    Migration {
        version: 3,
        description: "copies of backups in other vaults (vault-copy)",
        sql: "
CREATE TABLE backup_copy (
    backup_id VARCHAR(255) NOT NULL REFERENCES backup_history(backup_id) ON DELETE CASCADE,
    vault_url TEXT NOT NULL,
    copied_from TEXT NOT NULL,
    stored_at TIMESTAMP,
    size_bytes BIGINT,
    checksum VARCHAR(64),
    recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (backup_id, vault_url)
);
",
    },
];

/// The version this crate writes.
pub const VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// An arbitrary constant: the advisory lock `init` holds while migrating.
const MIGRATION_LOCK: i64 = 0x5354_4b56_4c44_4752; // "STKVLDGR"

impl Ledger {
    /// Creates or migrates the schema; returns the versions it applied (none when it was
    /// current). Idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::Newer`] when the database has a version this crate does not know; the
    /// server's error when a migration fails (that migration is rolled back whole).
    pub fn init(&mut self) -> Result<Vec<i32>> {
        let mut applied = Vec::new();
        let target = self.target.clone();
        let mut tx = self
            .client
            .transaction()
            .map_err(q("cannot start the migration"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(q("cannot lock the schema for migration"))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS stackvault_schema (
                 version INTEGER PRIMARY KEY,
                 description TEXT NOT NULL,
                 applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
             )",
        )
        .map_err(q("cannot create stackvault_schema"))?;
        let found: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM stackvault_schema",
                &[],
            )
            .map_err(q("cannot read the schema version"))?
            .get(0);
        if found > VERSION {
            return Err(Error::Newer {
                target,
                found,
                known: VERSION,
            });
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > found) {
            tx.batch_execute(m.sql).map_err(|e| {
                Error::Pg(pgconn::Error::query(
                    format!("migration {} ({}) failed", m.version, m.description),
                    e,
                ))
            })?;
            tx.execute(
                "INSERT INTO stackvault_schema (version, description) VALUES ($1, $2)",
                &[&m.version, &m.description],
            )
            .map_err(q("cannot record the migration"))?;
            applied.push(m.version);
        }
        tx.commit().map_err(q("cannot commit the migration"))?;
        Ok(applied)
    }

    /// The schema version of the database, `None` when it has none.
    pub fn schema_version(&mut self) -> Result<Option<i32>> {
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('stackvault_schema') IS NOT NULL", &[])
            .map_err(q("cannot look for the ledger schema"))?
            .get(0);
        if !exists {
            return Ok(None);
        }
        let version: Option<i32> = self
            .client
            .query_one("SELECT max(version) FROM stackvault_schema", &[])
            .map_err(q("cannot read the schema version"))?
            .get(0);
        Ok(version)
    }

    /// Fails unless the schema is exactly the version this crate writes.
    pub fn require_schema(&mut self) -> Result<()> {
        let target = self.target.clone();
        match self.schema_version()? {
            None | Some(0) => Err(Error::NotInitialized { target }),
            Some(v) if v < VERSION => Err(Error::Older {
                target,
                found: v,
                known: VERSION,
            }),
            Some(v) if v > VERSION => Err(Error::Newer {
                target,
                found: v,
                known: VERSION,
            }),
            Some(_) => Ok(()),
        }
    }
}
