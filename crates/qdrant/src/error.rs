//! One error type for every way talking to Qdrant fails, each rendered as one line that
//! names what failed (the collection), the HTTP status, what the server said and what to do.
//!
//! Qdrant answers errors in several shapes, depending on the route and the layer that
//! refused (reference README, surprise 5): the JSON envelope `{"status":{"error":…}}` on
//! most routes; `text/plain` for snapshot downloads and multipart errors; a 401 in plain
//! text **without** a content type from the auth middleware; an empty 404 for unknown
//! routes and wrong methods; a 500 naming server paths for a corrupt upload. All of them
//! come here as (status, content type, body) and leave as a [`QdrantError`].

use std::fmt;

use toolkit::http::{transient_status, HttpError};

/// What kind of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No answer: connection, TLS, timeout.
    Transport,
    /// The server answered with an error status.
    Status,
    /// The server answered something this client cannot use.
    Protocol,
    /// A local file could not be read or written.
    Io,
    /// A termination signal arrived.
    Interrupted,
    /// The snapshot is not what the server said it is (size or checksum).
    Mismatch,
}

/// A failed Qdrant operation, as one line for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct QdrantError {
    /// What kind.
    pub kind: ErrorKind,
    /// The HTTP status, for [`ErrorKind::Status`].
    pub status: Option<u16>,
    /// The whole line.
    pub message: String,
    /// Whether another attempt may succeed.
    pub transient: bool,
}

impl fmt::Display for QdrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl QdrantError {
    /// A failure of kind `kind` with this message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        QdrantError {
            kind,
            status: None,
            message: message.into(),
            transient: false,
        }
    }

    /// A transport failure while doing `what`.
    pub fn transport(what: &str, e: &HttpError) -> Self {
        QdrantError {
            kind: ErrorKind::Transport,
            status: None,
            message: format!("{what}: {}", e.message),
            transient: e.is_transient(),
        }
    }

    /// An error answer to `what`: `status`, its content type and body as they came.
    pub fn answer(what: &str, status: u16, content_type: Option<&str>, body: &str) -> Self {
        let said = server_message(content_type, body);
        let advice = advice(status, &said);
        let mut message = format!("{what}: Qdrant answered HTTP {status}");
        if !said.is_empty() {
            message.push_str(": ");
            message.push_str(&said);
        }
        if !advice.is_empty() {
            message.push_str(" — ");
            message.push_str(&advice);
        }
        QdrantError {
            kind: ErrorKind::Status,
            status: Some(status),
            message,
            transient: transient_status(status),
        }
    }

    /// The same error with `more` appended (a cleanup note, the retries used).
    pub fn with_note(mut self, more: &str) -> Self {
        if !more.is_empty() {
            self.message.push_str(more);
        }
        self
    }

    /// Whether this is the answer `status`.
    pub fn is_status(&self, status: u16) -> bool {
        self.status == Some(status)
    }
}

/// Longest server message kept in a line (500s can be long and carry server paths).
const MAX_SAID: usize = 600;

/// What the server said, on one line: the envelope's `status.error`, or the text.
pub(crate) fn server_message(content_type: Option<&str>, body: &str) -> String {
    let json = content_type.is_some_and(|c| c.contains("json"));
    let parsed = json
        .then(|| serde_json::from_str::<serde_json::Value>(body).ok())
        .flatten();
    let text = match &parsed {
        Some(v) => match v.pointer("/status/error").and_then(|e| e.as_str()) {
            Some(e) => e.to_owned(),
            None => body.trim().to_owned(),
        },
        None => body.trim().to_owned(),
    };
    let mut one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() > MAX_SAID {
        one_line = one_line.chars().take(MAX_SAID).collect::<String>() + "…";
    }
    one_line
}

/// What to do about an answer, from its status and what the server said.
fn advice(status: u16, said: &str) -> String {
    let has = |s: &str| said.contains(s);
    let text = match status {
        401 if has("Must provide") => {
            "the server requires an API key and none was sent: set QDRANT_API_KEY"
        }
        401 => "the server does not accept the key in QDRANT_API_KEY: set it to the server's api key",
        403 if has("manage access") => {
            "QDRANT_API_KEY is a read-only key: it may list and download snapshots, but creating, \
             deleting and restoring them needs the server's full api key"
        }
        403 if has("snapshots directory") => {
            "a file:// location must name a file inside the node's snapshots directory: copy the \
             file there, or serve it over http(s)"
        }
        403 => "the key lacks the access this needs",
        404 if said.is_empty() => {
            "the server has no such route: is the URL Qdrant's REST endpoint (port 6333, not gRPC \
             6334), and the server Qdrant 1.7 or later?"
        }
        404 if has("Collection") && has("doesn't exist") => {
            "the collection does not exist on this server (check its name)"
        }
        404 if has("Snapshot") => "the snapshot is not on the server (deleted meanwhile?)",
        400 if has("not compatible") => {
            "the snapshot's vector configuration differs from the existing collection's: restore \
             under another name (--target-collection), or delete that collection and restore again"
        }
        400 if has("hecksum mismatch") => {
            "the bytes Qdrant got are not the file's (damaged on the way, or the file changed): \
             nothing was restored; try again"
        }
        400 if has("Multipart") || has("Required field") || has("Content-Type") => {
            "the upload reached Qdrant incomplete or malformed (cut off on the way?): try again"
        }
        400 if has("Failed to download") => {
            "the Qdrant node could not fetch the location: check that the URL is reachable from the \
             node (not only from here) and that it needs no other credentials"
        }
        400 if has("does not exist") => "the location names no file on the node",
        415 => "the upload was not sent as multipart/form-data",
        500 if has("No space left") => "the Qdrant node's disk is full: free space there",
        500 if has("Malformed tar")
            || has("failed to unpack")
            || has("failed to open file")
            || has("Failed to unpack")
            || has("Failed to load collection config") =>
        {
            "Qdrant could not read the snapshot: the file is damaged or not a Qdrant snapshot \
             this server can read (an existing collection was left as it was)"
        }
        500 if has("Http request error") => {
            "the Qdrant node could not connect to the location: check that the node can reach it"
        }
        502..=504 => "a proxy in front of Qdrant, or Qdrant itself, is not answering: check the server",
        500..=599 => "the server failed: its log says more",
        _ => "",
    };
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_error_lines() {
        let envelope =
            |e: &str| serde_json::json!({"status": {"error": e}, "time": 0.1}).to_string();
        let json = Some("application/json");
        let text = Some("text/plain; charset=utf-8");
        // (status, content type, body, what the line must contain)
        let cases: Vec<(u16, Option<&str>, String, &[&str])> = vec![
            (401, None, "Must provide an API key or an Authorization bearer token".into(), &["HTTP 401", "set QDRANT_API_KEY"]),
            (401, None, "Invalid API key or JWT".into(), &["HTTP 401", "does not accept the key"]),
            (403, json, envelope("Forbidden: Global manage access is required"), &["HTTP 403", "read-only key"]),
            (404, None, String::new(), &["HTTP 404 —", "no such route"]),
            (404, json, envelope("Not found: Collection `nope` doesn't exist!"), &["doesn't exist!", "does not exist on this server"]),
            (404, text, "Not found: Snapshot x.snapshot not found".into(), &["HTTP 404: Not found: Snapshot", "not on the server"]),
            (400, json, envelope("Wrong input: Snapshot is not compatible with existing collection: …"), &["HTTP 400", "--target-collection"]),
            (500, json, envelope("Service internal error: File IO error: failed to unpack `/var/lib/qdrant/storage/tmp/x.tar`"), &["HTTP 500", "damaged or not a Qdrant snapshot"]),
            (400, text, "Multipart stream is incomplete".into(), &["incomplete or malformed"]),
            (503, text, "busy\nnow".into(), &["HTTP 503: busy now", "not answering"]),
        ];
        for (status, ct, body, want) in cases {
            let e = QdrantError::answer("snapshot of collection docs", status, ct, &body);
            assert!(
                e.message.starts_with("snapshot of collection docs: "),
                "{e}"
            );
            assert!(!e.message.contains('\n'), "{e}");
            for w in want {
                assert!(e.message.contains(w), "{status}: {w:?} not in {e}");
            }
            assert_eq!(e.transient, status >= 500, "{e}");
        }
    }
}
