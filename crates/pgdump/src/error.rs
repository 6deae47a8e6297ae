//! Errors of PostgreSQL backup and restore.

use toolkit::child::ChildError;

/// What went wrong, in the operator's terms.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Connecting to PostgreSQL or a statement failed, or the connection settings are
    /// invalid: [`pgconn::Error::kind`] says which, with the server's own words.
    #[error(transparent)]
    Postgres(#[from] pgconn::Error),
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
    /// A `map_err` for a failed statement: `what` says what was being done.
    pub(crate) fn query(what: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
        let what = what.into();
        move |source| Error::Postgres(pgconn::Error::query(what, source))
    }
}
