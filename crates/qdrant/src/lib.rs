//! A client of Qdrant's REST API for what backing Qdrant up and restoring it needs, written
//! for how a real server (1.7 or later; recorded: 1.17.1) behaves, not only for what its
//! OpenAPI description says (see `tests/fixtures/reference/qdrant-1.17.1/README.md`).
//!
//! - [`Client`]: requests on `toolkit::http` with `toolkit::retry`, the `api-key` header
//!   from a [`toolkit::secret::Secret`], and every error shape Qdrant has (JSON envelope,
//!   plain text, a 401 without content type, an empty 404) turned into one
//!   [`QdrantError`] line naming what failed, the HTTP status and what to do;
//! - [`server`]: the server's version (and the same-minor rule of snapshot restores),
//!   cluster detection, collections, the typed fingerprint of a collection
//!   ([`manifest::fingerprint::CollectionStats`]), polling until green;
//! - [`snapshot`]: create (`wait=true` only: `wait=false` answers 202 even when the snapshot
//!   fails), download into the spool with HTTP Range resume and the server's checksum
//!   compared, delete;
//! - [`restore`]: upload-restore as a streamed multipart body with `Content-Length` (memory
//!   flat whatever the size), recover from a location;
//! - [`lock`]: one snapshot of one collection at a time on this host (snapshot names have
//!   one-second resolution);
//! - [`waiting`]: what stderr says while the server works and the client only waits.
#![deny(missing_docs)]

mod client;
mod error;
pub mod lock;
pub mod restore;
pub mod server;
pub mod snapshot;
pub mod waiting;

pub use client::{encode, Client, Config};
pub use error::{ErrorKind, QdrantError};

/// The `artifact.format` of a collection snapshot.
pub const FORMAT: &str = "qdrant/snapshot";

/// The `artifact.format` of a full-storage snapshot (`POST /snapshots`): it cannot be
/// restored over REST, only by starting Qdrant with `--storage-snapshot FILE`.
pub const FULL_FORMAT: &str = "qdrant/full-snapshot";

/// The default URL of a Qdrant REST endpoint.
pub const DEFAULT_URL: &str = "http://localhost:6333";

/// The Qdrant URL a tool uses: `flag` (`--url`, or `QDRANT_URL` through clap) when given,
/// else the seed's `http://$QDRANT_HOST:$QDRANT_PORT` (either may be missing: `localhost`,
/// `6333`), else [`DEFAULT_URL`]. `env` looks variables up.
pub fn resolve_url(flag: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> String {
    if let Some(url) = flag.filter(|u| !u.is_empty()) {
        return url.to_owned();
    }
    let env = |n: &str| env(n).filter(|v| !v.is_empty());
    match (env("QDRANT_HOST"), env("QDRANT_PORT")) {
        (None, None) => DEFAULT_URL.to_owned(),
        (host, port) => {
            let host = host.unwrap_or_else(|| "localhost".into());
            let port = port.unwrap_or_else(|| "6333".into());
            if host.contains("://") {
                format!("{}:{port}", host.trim_end_matches('/'))
            } else {
                format!("http://{host}:{port}")
            }
        }
    }
}

/// What a snapshot is of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One collection (its name as the server has it).
    Collection(String),
    /// The whole storage (`POST /snapshots`).
    Full,
}

impl Target {
    /// `collection docs` or `the full storage`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Target::Collection(c) => format!("collection {}", toolkit::cli::quote(c)),
            Target::Full => "the full storage".to_owned(),
        }
    }

    /// The path of its snapshots: `/collections/{c}/snapshots` or `/snapshots`.
    pub fn snapshots_path(&self) -> String {
        match self {
            Target::Collection(c) => format!("/collections/{}/snapshots", encode(c)),
            Target::Full => "/snapshots".to_owned(),
        }
    }
}
