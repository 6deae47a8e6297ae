//! Neo4j 5 backup and restore for stackvault, written for what a real Neo4j 5.3 does
//! (`tests/fixtures/reference/neo4j-5.3/README.md`, "Surprises"):
//!
//! - [`backup::admin`]: `neo4j-admin database dump --to-stdout` into the spool, exact, with
//!   the DBMS stopped by hooks around it (Community cannot dump a running database), the
//!   exit code and the `DZV1` magic checked, the downtime measured ([`admin`]);
//! - [`backup::cypher`]: the online export over the HTTP transactional API ([`client`]),
//!   keyset-paged auto-commit requests, every property's type recovered from the
//!   answers' `meta` ([`format`], [`export`]);
//! - [`restore::restore`]: verified before anything is touched, a rollback copy before an
//!   overwriting load and its reload on failure, the online import ([`import`]) into an
//!   empty database, and the proof against the fingerprint ([`stats`]).
#![deny(missing_docs)]

pub mod admin;
pub mod backup;
pub mod client;
mod error;
pub mod export;
pub mod format;
pub mod import;
pub mod restore;
pub mod stats;

pub use error::Error;
