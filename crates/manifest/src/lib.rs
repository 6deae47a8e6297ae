//! The stackvault manifest protocol and the conventions every stackvault tool shares.
//!
//! Tools talk through **manifests**: one JSON object per line (NDJSON) on stdin and stdout,
//! one line per artifact. A producer (`dump-pg`, later `snap-qdrant`, `dump-neo4j`) writes
//! the first version of a line; every tool after it adds its own section and passes the line
//! on, **keeping every field it does not know** so that newer producers work with older
//! consumers. The wire format is specified in [`record`] and, for users, in the
//! `backup-manifest(5)` man page.
//!
//! Besides the record types this crate holds the value types records are made of:
//!
//! - [`ndjson`]: a reader that names the offending line in its errors and a writer that
//!   flushes each record, so the next tool in a pipeline sees it at once;
//! - [`sha256`]: the hex digest newtype and hashing readers/writers (hash while streaming);
//! - [`time`]: RFC 3339 timestamps that round-trip byte for byte;
//! - [`name`], [`id`]: the checked names and artifact ids that spool files and vault keys
//!   are made of;
//! - [`fingerprint`]: each kind's typed `stats` and the one comparison that proves a
//!   restore; [`sections`]: the typed `restore` and `checks` sections.
//!
//! What tools share beyond the protocol (main, signals, spool, child processes) is in the
//! `toolkit` crate.
#![deny(missing_docs)]

pub mod fingerprint;
pub mod id;
pub mod name;
pub mod ndjson;
pub mod record;
pub mod sections;
pub mod sha256;
pub mod time;

pub use fingerprint::{compare, compare_only, Aspect, Difference, Fingerprint, FingerprintError};
pub use id::Id;
pub use name::Name;
pub use record::{Artifact, Kind, Manifest, Status, VaultRecord, SCHEMA};
pub use sha256::Sha256;
