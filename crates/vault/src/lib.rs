//! The vault: where stackvault keeps artifacts, and the catalogue of what it holds.
//!
//! - [`Backend`] is the one storage interface: streaming, create-only `put` (hashed while it
//!   streams, checked before the object becomes visible), `get`, `stat`, `list`, `delete`,
//!   and the unfinished uploads (`incomplete`, `abort`). [`DirBackend`] (`file:///dir`) and
//!   [`S3Backend`] (`s3://bucket/prefix`, any S3-compatible server) implement it;
//!   [`DryRun`] wraps any backend and records what it would change; `MemBackend` (behind
//!   the `testing` feature) serves unit tests. [`open`] turns a vault URL into a backend.
//! - [`layout`] says where an artifact and its sidecar manifest live:
//!   `{kind}/YYYY/MM/DD/{id}.{ext}` and `{…}.manifest.json`. The sidecars make the vault
//!   its own catalogue: listing and restore need nothing but the vault.
//! - [`ops`] is what the tools do with a vault: store an artifact verified (and finish an
//!   interrupted store), read the catalogue, fetch an artifact into the spool verified, find
//!   and sweep orphans, remove a backup in the safe order. SHA-256 is checked on every read.
//!
//! Errors are one [`Error`] type with an [`ErrorKind`] that callers match on (`NotFound`,
//! `AlreadyExists`, `Auth`, `Integrity`…) and a message that says what to do.
#![deny(missing_docs)]

pub mod args;
mod backend;
pub mod crypt;
mod dir;
pub mod dry_run;
mod error;
mod expect;
mod key;
pub mod layout;
pub mod lock;
#[cfg(any(test, feature = "testing"))]
mod mem;
mod open;
pub mod ops;
pub mod pipe;
pub mod s3;

#[cfg(any(test, feature = "testing"))]
pub use backend::contract;
pub use backend::{Backend, CreateOnly, Incomplete, ObjectInfo, PutReceipt, StoreProof};
pub use dir::DirBackend;
pub use dry_run::DryRun;
pub use error::{Error, ErrorKind, Result};
pub use expect::{AtEndAnswer, Expect};
pub use key::ObjectKey;
#[cfg(any(test, feature = "testing"))]
pub use mem::MemBackend;
pub use open::{create, open, VaultUrl};
pub use s3::S3Backend;
