//! The vault: where stackvault keeps artifacts, and the catalogue of what it holds.
//!
//! - [`Backend`] is the one storage interface: streaming `put` (never overwrites), `get`,
//!   `list`, `exists`, `delete`. [`DirBackend`] (`file:///dir`) and [`S3Backend`]
//!   (`s3://bucket/prefix`, any S3-compatible server) implement it; `MemBackend` (behind the `testing`
//!   feature) serves unit tests. [`open`] turns a vault URL into a backend.
//! - [`layout`] says where an artifact and its sidecar manifest live:
//!   `{kind}/YYYY/MM/DD/{id}.{ext}` and `{…}.manifest.json`. The sidecars make the vault
//!   its own catalogue: listing and restore need nothing but the vault.
//! - [`ops`] is what the tools do with a vault: store an artifact verified
//!   ([`ops::store`]), read the catalogue ([`ops::catalogue`]), fetch an artifact into the
//!   spool verified ([`ops::fetch`]). SHA-256 is checked on every read.
//!
//! Errors are one [`Error`] type with an [`ErrorKind`] that callers match on (`NotFound`,
//! `AlreadyExists`, `Auth`, `Integrity`…) and a message that says what to do.
#![deny(missing_docs)]

pub mod args;
mod backend;
mod dir;
mod error;
mod key;
pub mod layout;
#[cfg(any(test, feature = "testing"))]
mod mem;
mod open;
pub mod ops;
pub mod s3;

pub use backend::{Backend, ObjectInfo};
pub use dir::DirBackend;
pub use error::{Error, ErrorKind, Result};
pub use key::ObjectKey;
#[cfg(any(test, feature = "testing"))]
pub use mem::MemBackend;
pub use open::{open, VaultUrl};
pub use s3::S3Backend;
