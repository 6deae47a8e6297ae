//! Errors of Neo4j backup and restore, in the operator's terms: each one a line that says
//! what was refused, by whom, and what to do.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No answer from the server (connection, timeout, TLS), retries included.
    #[error("{0}")]
    Transport(String),
    /// HTTP 401: the credentials are wrong or missing.
    #[error(
        "Neo4j at {url} refused the credentials of user {user:?} (401 Unauthorized: {detail}); \
         check NEO4J_USER and NEO4J_PASSWORD (three wrong passwords lock the user out for a few \
         seconds)"
    )]
    Unauthorized {
        /// The server (redacted).
        url: String,
        /// The user name sent.
        user: String,
        /// The server's message.
        detail: String,
    },
    /// HTTP 429: the user is locked out after failed logins, even with the right password.
    #[error(
        "Neo4j at {url} locks user {user:?} out after repeated failed logins (429 \
         AuthenticationRateLimit: {detail}); wait a few seconds, and check that NEO4J_PASSWORD is \
         right (every wrong attempt extends the lock)"
    )]
    RateLimited {
        /// The server (redacted).
        url: String,
        /// The user name sent.
        user: String,
        /// The server's message.
        detail: String,
    },
    /// HTTP 415: the request arrived without its `Content-Type: application/json`.
    #[error(
        "Neo4j at {url} refused the request as 415 Unsupported Media Type: it arrived without \
         Content-Type: application/json (a proxy in between dropping the header?)"
    )]
    UnsupportedMediaType {
        /// The server (redacted).
        url: String,
    },
    /// HTTP 404 `DatabaseNotFound`.
    #[error(
        "database {database:?} does not exist on Neo4j at {url} (Community Edition serves only \
         neo4j and system)"
    )]
    DatabaseNotFound {
        /// The database asked for.
        database: String,
        /// The server (redacted).
        url: String,
    },
    /// Another HTTP status than the API answers with.
    #[error("{url}: unexpected HTTP {status}: {message}")]
    Status {
        /// The URL (redacted).
        url: String,
        /// The status.
        status: u16,
        /// The body, shortened.
        message: String,
    },
    /// The statement failed: HTTP 200 with an `errors` array.
    #[error("Neo4j refused {what}: {code}: {message}")]
    Cypher {
        /// What was being done.
        what: String,
        /// The Neo4j status code (`Neo.ClientError.Statement.SyntaxError`).
        code: String,
        /// The server's message.
        message: String,
    },
    /// An answer that is not what the API sends.
    #[error("{0}")]
    Protocol(String),
    /// `neo4j-admin` or a hook failed; the message is complete.
    #[error("{0}")]
    Admin(String),
    /// A local file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the file.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// An export artifact that cannot be imported.
    #[error("{0}")]
    Artifact(String),
    /// Bad configuration (URL, command line).
    #[error("{0}")]
    Config(String),
    /// Refused before anything was touched.
    #[error("{0}")]
    Refused(String),
    /// A termination signal arrived.
    #[error("interrupted by a signal")]
    Interrupted,
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| {
            if source.kind() == std::io::ErrorKind::Interrupted
                && toolkit::interrupt::is_interrupted()
            {
                Error::Interrupted
            } else {
                Error::Io { what, source }
            }
        }
    }
}
