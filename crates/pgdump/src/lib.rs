//! PostgreSQL backup and restore for stackvault.
//!
//! - [`dump::dump_database`] runs `pg_dump --format=custom` into an atomic spool file,
//!   hashing it in the same pass, and records an exact fingerprint of the data (rows per
//!   table, large objects) taken **from the same snapshot** `pg_dump` dumps
//!   (`pg_export_snapshot()` + `pg_dump --snapshot`), so the counts match the dump exactly
//!   even while the database is being written to.
//! - [`restore::restore`] verifies the spool file's SHA-256 before touching anything,
//!   restores with `pg_restore` in a single transaction, and compares the restored row counts
//!   with the fingerprint.
//!
//! Connection settings follow libpq's own environment (`PGHOST`, `PGPORT`, `PGUSER`,
//! `PGPASSWORD`, `~/.pgpass`): see [`conn::PgArgs`]. The password reaches `pg_dump`/`pg_restore` only
//! through their environment, never their argv.
#![deny(missing_docs)]

pub mod conn;
pub mod dump;
mod error;
mod pgpass;
pub mod restore;
pub mod stats;

pub use error::{describe as describe_pg_error, Error};
