//! Errors: what kind, against which server, in the server's own words.
//!
//! Rules: the driver's `postgres::Error` is kept as the source, but its `Display` says
//! only "db error" for everything the server sent, so the message is always built from
//! the server's fields (severity, message, detail, hint, SQLSTATE) instead. Messages are
//! one line. No message ever holds a password: values from connection strings are never
//! quoted, and connection strings are shown only through [`crate::redact`].

use std::fmt;

/// What kind of failure, in the operator's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The settings are wrong (bad `sslmode`, unparsable URI, unknown keyword, ...):
    /// nothing was sent anywhere.
    Config,
    /// The server could not be reached or refused the connection for a reason that is
    /// not authentication (no such database, too many connections, timeout, ...).
    Connect,
    /// TLS: refused by the server, the handshake failed, the certificate did not verify,
    /// or a certificate file could not be read.
    Tls,
    /// The login was refused: no `pg_hba.conf` entry, wrong or missing password, missing
    /// client certificate (SQLSTATE class 28, or the driver's authentication error).
    Authentication,
    /// A statement failed on an open connection.
    Query,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "configuration",
            ErrorKind::Connect => "connection",
            ErrorKind::Tls => "TLS",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Query => "query",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the server said (an `ErrorResponse`), field by field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerMessage {
    /// `ERROR`, `FATAL`, ...
    pub severity: String,
    /// The five-character SQLSTATE, e.g. `28P01`.
    pub code: String,
    /// The primary message.
    pub message: String,
    /// Detail, if any.
    pub detail: Option<String>,
    /// Hint, if any.
    pub hint: Option<String>,
}

impl ServerMessage {
    fn from_db(db: &postgres::error::DbError) -> Self {
        ServerMessage {
            severity: db.severity().to_owned(),
            code: db.code().code().to_owned(),
            message: db.message().to_owned(),
            detail: db.detail().map(str::to_owned),
            hint: db.hint().map(str::to_owned),
        }
    }
}

impl fmt::Display for ServerMessage {
    /// `FATAL: message; detail: …; hint: … [SQLSTATE 28P01]`, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, one_line(&self.message))?;
        if let Some(detail) = &self.detail {
            write!(f, "; detail: {}", one_line(detail))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {}", one_line(hint))?;
        }
        write!(f, " [SQLSTATE {}]", self.code)
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure to configure, connect to or query PostgreSQL.
///
/// `Display` is one line: `cannot connect to PostgreSQL host:port/db: …` for connection
/// failures, `what was being done: …` for queries, `invalid PostgreSQL connection
/// settings: …` for configuration. [`Error::kind`], [`Error::target`] and
/// [`Error::server`] give the parts; the driver's error, when there is one, is the
/// [`source`](std::error::Error::source) (see [`Error::pg_error`]).
#[derive(Debug)]
pub struct Error(Box<Inner>);

// Boxed: connection results travel through every call, and most of them are `Ok`.
#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    target: Option<String>,
    context: Option<String>,
    message: String,
    server: Option<ServerMessage>,
    /// What an earlier attempt of the same connection said (libpq's `allow`/`prefer`
    /// retry), so the reason of the first failure is not lost behind the second.
    earlier: Option<String>,
    source: Option<Source>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            target: None,
            context: None,
            message: message.into(),
            server: None,
            earlier: None,
            source: None,
        }))
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    pub(crate) fn with_target(mut self, target: impl Into<String>) -> Self {
        self.0.target = Some(target.into());
        self
    }

    pub(crate) fn append_message(mut self, extra: &str) -> Self {
        self.0.message.push_str(extra);
        self
    }

    pub(crate) fn with_earlier(mut self, how: &str, earlier: &Error) -> Self {
        self.0.earlier = Some(format!("{how}: {}", earlier.0.message));
        self
    }

    /// A connection attempt to `target` failed with the driver's `error`.
    pub(crate) fn connect(target: &str, error: postgres::Error) -> Self {
        let kind = match error.as_db_error() {
            Some(db) if db.code().code().starts_with("28") => ErrorKind::Authentication,
            Some(_) => ErrorKind::Connect,
            // tokio-postgres keeps its error kinds private; its Display (without the
            // cause) is the kind's fixed text. The unit tests pin the strings.
            None => match error.to_string().as_str() {
                "error performing TLS handshake" => ErrorKind::Tls,
                "authentication error" => ErrorKind::Authentication,
                _ => ErrorKind::Connect,
            },
        };
        let mut e = Error::from_postgres(kind, error);
        e.0.target = Some(target.to_owned());
        e
    }

    /// A statement failed: `context` says what was being done ("cannot list databases").
    pub fn query(context: impl Into<String>, error: postgres::Error) -> Self {
        let mut e = Error::from_postgres(ErrorKind::Query, error);
        e.0.context = Some(context.into());
        e
    }

    fn from_postgres(kind: ErrorKind, error: postgres::Error) -> Self {
        let server = error.as_db_error().map(ServerMessage::from_db);
        let message = describe(&error);
        Error(Box::new(Inner {
            kind,
            target: None,
            context: None,
            message,
            server,
            earlier: None,
            source: Some(Box::new(error)),
        }))
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// `host:port/database` of the connection that failed, when known.
    pub fn target(&self) -> Option<&str> {
        self.0.target.as_deref()
    }

    /// What the server said, if the failure came from the server.
    pub fn server(&self) -> Option<&ServerMessage> {
        self.0.server.as_ref()
    }

    /// The SQLSTATE, if the server sent one.
    pub fn sqlstate(&self) -> Option<&str> {
        self.0.server.as_ref().map(|s| s.code.as_str())
    }

    /// The driver's error, if there is one.
    pub fn pg_error(&self) -> Option<&postgres::Error> {
        self.0.source.as_ref()?.downcast_ref()
    }

    /// The message without the target or context: the server's words, or the driver's
    /// or this crate's one-line reason.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The whole error on one line (the same as `Display`).
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.kind, &self.0.context, &self.0.target) {
            (ErrorKind::Config, _, _) => write!(
                f,
                "invalid PostgreSQL connection settings: {}",
                self.0.message
            )?,
            (_, Some(context), _) => write!(f, "{context}: {}", self.0.message)?,
            (_, None, Some(target)) => write!(
                f,
                "cannot connect to PostgreSQL {target}: {}",
                self.0.message
            )?,
            (_, None, None) => write!(f, "PostgreSQL {} error: {}", self.0.kind, self.0.message)?,
        }
        if let Some(earlier) = &self.0.earlier {
            write!(f, " (after a first attempt {earlier})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

/// One line for a driver error. For errors the server sent, its own words
/// ([`ServerMessage`]'s format); otherwise the driver's message and its causes, joined by
/// `: ` (the driver's `Display` alone says only "error performing TLS handshake" without
/// saying why).
pub fn describe(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return ServerMessage::from_db(db).to_string();
    }
    let text = toolkit::cli::chain(error);
    one_line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_displays() {
        let server = ServerMessage {
            severity: "FATAL".into(),
            code: "28P01".into(),
            message: "password authentication failed for user \"u\"".into(),
            detail: Some("two\nlines".into()),
            hint: Some("check it".into()),
        };
        let mut auth =
            Error::new(ErrorKind::Authentication, server.to_string()).with_target("h:5432/db");
        auth.0.server = Some(server);
        let mut query = Error::new(
            ErrorKind::Query,
            "ERROR: permission denied [SQLSTATE 42501]",
        );
        query.0.context = Some("cannot list databases".into());
        let plain = Error::new(
            ErrorKind::Authentication,
            "FATAL: no pg_hba.conf entry [SQLSTATE 28000]",
        )
        .with_target("h:5432/db");
        let tls = Error::new(
            ErrorKind::Tls,
            "error performing TLS handshake: invalid peer certificate: UnknownIssuer",
        );
        let cases = [
            (
                auth,
                "cannot connect to PostgreSQL h:5432/db: FATAL: password authentication failed for user \"u\"; detail: two lines; hint: check it [SQLSTATE 28P01]",
            ),
            (query, "cannot list databases: ERROR: permission denied [SQLSTATE 42501]"),
            (
                plain.with_earlier("with TLS", &tls),
                "cannot connect to PostgreSQL h:5432/db: FATAL: no pg_hba.conf entry [SQLSTATE 28000] (after a first attempt with TLS: error performing TLS handshake: invalid peer certificate: UnknownIssuer)",
            ),
            (Error::config("invalid port \"x\""), "invalid PostgreSQL connection settings: invalid port \"x\""),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
        }
    }
}
