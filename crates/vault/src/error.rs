//! The vault's error type.
//!
//! Rules: every error has a [`ErrorKind`] callers can match on, a message that says what
//! went wrong in the operator's terms (and, where there is one, what to do), the object key
//! it concerns, and the underlying cause. Errors gain context on the way up; they are never
//! downgraded to strings below the binary.

use std::fmt;

/// What kind of failure, for callers that react differently (404 vs. 403 vs. retry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object or bucket does not exist.
    NotFound,
    /// The key exists already; objects are never overwritten.
    AlreadyExists,
    /// Credentials missing, wrong or expired; access denied.
    Auth,
    /// The server could not be reached, or kept failing after retries.
    Unreachable,
    /// Local or remote I/O failed (disk full, permission denied…).
    Io,
    /// What was stored or read is not what was expected (size, SHA-256).
    Integrity,
    /// The server answered something this client does not understand.
    Protocol,
    /// A key or vault URL is not acceptable.
    InvalidInput,
}

/// A vault operation failed.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    key: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Result with the vault's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            key: None,
            source: None,
        }
    }

    /// Names the object key the error concerns.
    pub fn with_key(mut self, key: impl fmt::Display) -> Self {
        self.key = Some(key.to_string());
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Adds `text` to the message, keeping kind, key and cause.
    pub fn append(mut self, text: &str) -> Self {
        self.message.push_str(text);
        self
    }

    /// An I/O error, classified by its kind.
    pub fn io(message: impl Into<String>, source: std::io::Error) -> Self {
        let kind = match source.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            _ => ErrorKind::Io,
        };
        Error::new(kind, message).with_source(source)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The key the error concerns, if any.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(key) = &self.key {
            write!(f, " (key {key})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
