//! Errors of PostgreSQL backup and restore.

use toolkit::child::ChildError;

/// What went wrong, in the operator's terms.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL {target}: {message}")]
    Connect {
        /// `host:port/database`.
        target: String,
        /// The server's or driver's message.
        message: String,
    },
    /// A query failed.
    #[error("{what}: {message}")]
    Query {
        /// What was being done.
        what: String,
        /// The server's or driver's message.
        message: String,
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
        move |source| Error::Query {
            what,
            message: describe(&source),
        }
    }
}

/// The driver's `Display` says only "db error" for errors the server sent; the server's
/// own words (severity, message, detail, hint) are what an operator needs.
pub fn describe(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        text.push_str(&format!(": {e}"));
        cause = e.source();
    }
    text
}
