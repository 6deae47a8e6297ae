//! Errors of PostgreSQL backup and restore.

use manifest::child::ChildError;

/// What went wrong, in the operator's terms.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL {target}: {source}")]
    Connect {
        /// `host:port/database`.
        target: String,
        /// The driver's error.
        source: postgres::Error,
    },
    /// A query failed.
    #[error("{what}: {source}")]
    Query {
        /// What was being done.
        what: String,
        /// The driver's error.
        source: postgres::Error,
    },
    /// `pg_dump` or `pg_restore` failed.
    #[error(transparent)]
    Tool(#[from] ChildError),
    /// A local file could not be written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The request was refused before anything was touched.
    #[error("{0}")]
    Refused(String),
}

impl Error {
    pub(crate) fn query(what: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
        let what = what.into();
        move |source| Error::Query { what, source }
    }
}
