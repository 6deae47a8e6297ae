//! Why a check could not run.

/// Why a check could not give its answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database did not answer (connection refused, timeout, TLS, authentication): the
    /// rest of its checks are skipped and the tool exits 2.
    #[error("{0}")]
    Unreachable(String),
    /// The database answered, but the check could not be made (a table of a rule does not
    /// exist, an answer was malformed): the check fails.
    #[error("{0}")]
    Failed(String),
    /// The rules file or the input cannot be used (exit 2).
    #[error("{0}")]
    Input(String),
}

impl Error {
    /// `Err(Error::Input)` once SIGINT or SIGTERM arrived: the paging loops stop between two
    /// pages, the checks not made are reported, the manifests still go out, and the tool
    /// exits 2.
    pub fn check_interrupted() -> Result<(), Error> {
        toolkit::interrupt::check()
            .map_err(|_| Error::Input("interrupted by a signal before this check ended".into()))
    }

    /// From a PostgreSQL error: connection, TLS and authentication failures are
    /// [`Error::Unreachable`], the rest [`Error::Failed`], in the server's words.
    pub fn from_pg(e: pgdump::Error) -> Error {
        match &e {
            pgdump::Error::Postgres(p) => match p.kind() {
                pgconn::ErrorKind::Query => Error::Failed(p.describe()),
                pgconn::ErrorKind::Config => Error::Input(p.describe()),
                _ => Error::Unreachable(p.describe()),
            },
            other => Error::Failed(toolkit::cli::chain(other)),
        }
    }

    /// From a Qdrant error: no answer is [`Error::Unreachable`].
    pub fn from_qdrant(e: qdrant::QdrantError) -> Error {
        match e.kind {
            qdrant::ErrorKind::Transport => Error::Unreachable(e.message),
            _ => Error::Failed(e.message),
        }
    }

    /// From a Neo4j error: no answer, or credentials refused, is [`Error::Unreachable`].
    pub fn from_neo4j(e: ::neo4j::Error) -> Error {
        let text = toolkit::cli::chain(&e);
        match e {
            ::neo4j::Error::Transport(_)
            | ::neo4j::Error::Unauthorized { .. }
            | ::neo4j::Error::RateLimited { .. } => Error::Unreachable(text),
            ::neo4j::Error::Status { status, .. } if status >= 500 => Error::Unreachable(text),
            ::neo4j::Error::Config(_) => Error::Input(text),
            _ => Error::Failed(text),
        }
    }

    /// From a failed PostgreSQL statement.
    pub fn pg_query(what: &str, e: postgres::Error) -> Error {
        Error::from_pg(pgdump::Error::Postgres(pgconn::Error::query(what, e)))
    }
}
