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
    /// A termination signal stopped the operation.
    Interrupted,
}

/// A vault operation failed. Boxed inside: errors travel through every `Result` of the
/// transfer loops, which should stay small.
#[derive(Debug)]
pub struct Error(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    message: String,
    key: Option<String>,
    incomplete: Option<(crate::ObjectKey, String)>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Result with the vault's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            key: None,
            incomplete: None,
            source: None,
        }))
    }

    /// Names the object key the error concerns.
    pub fn with_key(mut self, key: impl fmt::Display) -> Self {
        self.0.key = Some(key.to_string());
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    /// Records an unfinished upload this failure left behind (its key and upload id), so
    /// the caller can put it into the failed record for the orphan sweep.
    pub fn with_incomplete(mut self, key: crate::ObjectKey, upload_id: String) -> Self {
        self.0.incomplete = Some((key, upload_id));
        self
    }

    /// The unfinished upload this failure left behind, if any.
    pub fn incomplete_upload(&self) -> Option<(&crate::ObjectKey, &str)> {
        self.0.incomplete.as_ref().map(|(k, id)| (k, id.as_str()))
    }

    /// Adds `text` to the message, keeping kind, key and cause.
    pub fn append(mut self, text: &str) -> Self {
        self.0.message.push_str(text);
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
        self.0.kind
    }

    /// The kind of the I/O error underneath, if an I/O error is the cause.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return Some(io.kind());
            }
            cause = e.source();
        }
        None
    }

    /// The key the error concerns, if any.
    pub fn key(&self) -> Option<&str> {
        self.0.key.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)?;
        if let Some(key) = &self.0.key {
            write!(f, " (key {key})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_io_kind_underneath_is_found() {
        let io = std::io::Error::from_raw_os_error(28);
        let e = Error::io("cannot write", io).with_key("k").append("; more");
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::StorageFull));
        assert_eq!(Error::new(ErrorKind::Io, "x").io_kind(), None);
    }
}
