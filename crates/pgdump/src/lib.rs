//! PostgreSQL backup and restore for stackvault.
//!
//! - [`dump::dump_database`] runs `pg_dump --format=custom` into an atomic spool file,
//!   hashing it in the same pass, and records an exact fingerprint of the data (rows per
//!   table, large objects) taken **from the same snapshot** `pg_dump` dumps
//!   (`pg_export_snapshot()` + `pg_dump --snapshot`), so the counts match the dump exactly
//!   even while the database is being written to.
//! - [`restore::restore`] restores a verified spool file and compares the restored row
//!   counts with the fingerprint: over an existing database with `pg_restore` in a single
//!   transaction, after the SHA-256 is checked; into a database it creates while the
//!   SHA-256 is checked, section by section with each table's rows spread over several
//!   COPY connections, dropping the database on any failure.
//!
//! Connections are [`pgconn`]'s: libpq's environment, URIs and conninfo strings, the
//! password file, and `sslmode` over TLS, for stackvault's own connections and, through
//! their environment (never their argv), for `pg_dump` and `pg_restore`: see
//! [`conn::PgArgs`] and [`conn::Pg`].
#![deny(missing_docs)]

pub mod conn;
mod deal;
pub mod dump;
mod error;
pub mod restore;
mod sections;
pub mod stats;

pub use error::Error;
/// One line for a driver error, in the server's own words (see [`pgconn::describe`]).
pub use pgconn::describe as describe_pg_error;
