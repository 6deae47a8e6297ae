//! The client: URLs, the `api-key` header, retries, and JSON answers.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use toolkit::http::{
    Body, ClientOptions, HttpClient, HttpErrorKind, RequestTimeout, Response, Timeouts,
};
use toolkit::retry::{Failure, GaveUp, RetryPolicy};
use toolkit::secret::{redact_url, Secret};

use crate::error::{ErrorKind, QdrantError};

/// How to reach a Qdrant server.
#[derive(Clone, Debug)]
pub struct Config {
    /// The REST endpoint, e.g. `http://localhost:6333` (a path prefix of a reverse proxy is
    /// kept).
    pub url: String,
    /// Sent as the `api-key` header when set.
    pub api_key: Option<Secret>,
    /// Connect, idle (downloads: longest time no byte moves) and request timeouts.
    pub timeouts: Timeouts,
    /// How long to wait for work the server does while a request is open: creating a
    /// snapshot, restoring an upload or a location. Minutes for a large collection.
    pub server_timeout: Duration,
    /// Retries of idempotent requests (and of any request that never reached the server).
    pub retry: RetryPolicy,
    /// A PEM file of CA certificates for a Qdrant behind TLS with a private CA.
    pub ca_file: Option<PathBuf>,
}

impl Config {
    /// `url` with the defaults: no key, the toolkit's timeouts, an hour for server work,
    /// the default retries.
    pub fn new(url: &str) -> Config {
        Config {
            url: url.to_owned(),
            api_key: None,
            timeouts: Timeouts::default(),
            server_timeout: Duration::from_secs(3600),
            retry: RetryPolicy::default(),
            ca_file: None,
        }
    }
}

/// A Qdrant REST client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    base: String,
    shown: String,
    key: Option<Secret>,
    http: HttpClient,
    /// For uploads: the idle timeout is the server timeout, since after the last byte the
    /// server restores before it answers.
    slow: HttpClient,
    retry: RetryPolicy,
    server_timeout: Duration,
}

/// One request.
pub(crate) struct Req<'a> {
    pub method: &'a str,
    /// Path with its segments already encoded ([`encode`]).
    pub path: String,
    pub query: Vec<(&'a str, String)>,
    pub json: Option<Value>,
    pub timeout: RequestTimeout,
    /// Safe to send twice (GET, DELETE, an exact count): retried on transient failures. A
    /// request that never reached the server is retried whatever it is.
    pub idempotent: bool,
}

impl<'a> Req<'a> {
    pub fn get(path: String) -> Self {
        Req {
            method: "GET",
            path,
            query: vec![],
            json: None,
            timeout: RequestTimeout::Default,
            idempotent: true,
        }
    }
}

/// `text` percent-encoded as one path segment or query value: everything but
/// `A-Za-z0-9-._~` (collection and snapshot names come from servers and manifests: a `/`,
/// `?` or `#` in one must not change what is asked for).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for `config`.
    pub fn new(config: &Config) -> Result<Client, QdrantError> {
        let base = config.url.trim().trim_end_matches('/').to_owned();
        let shown = redact_url(&base);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(QdrantError::new(
                ErrorKind::Protocol,
                format!("invalid Qdrant URL {shown:?}: expected http://HOST:6333 or https://…"),
            ));
        }
        let options = |idle: Duration| ClientOptions {
            timeouts: Timeouts {
                idle,
                ..config.timeouts
            },
            ca_file: config.ca_file.clone(),
        };
        let make = |o: &ClientOptions| {
            HttpClient::new(o).map_err(|e| {
                QdrantError::new(
                    ErrorKind::Transport,
                    format!("Qdrant at {shown}: {}", e.problem),
                )
            })
        };
        Ok(Client {
            http: make(&options(config.timeouts.idle))?,
            slow: make(&options(config.server_timeout.max(config.timeouts.idle)))?,
            base,
            shown,
            key: config.api_key.clone(),
            retry: config.retry.clone(),
            server_timeout: config.server_timeout,
        })
    }

    /// The server's URL without credentials: what messages and manifests show.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// How long server work may take.
    pub fn server_timeout(&self) -> Duration {
        self.server_timeout
    }

    pub(crate) fn url_of(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut url = format!("{}{path}", self.base);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode(v));
        }
        url
    }

    pub(crate) fn headers<'h>(&'h self, extra: &[(&'h str, &'h str)]) -> Vec<(&'h str, &'h str)> {
        let mut headers = Vec::with_capacity(extra.len() + 2);
        if let Some(key) = &self.key {
            headers.push(("api-key", key.expose()));
        }
        headers.extend_from_slice(extra);
        headers
    }

    /// Sends `req` once with `body` (no retries); any status is an answer.
    pub(crate) fn send_once(
        &self,
        req: &Req<'_>,
        extra_headers: &[(&str, &str)],
        body: Body<'_>,
        slow: bool,
        what: &str,
    ) -> Result<Response, QdrantError> {
        let url = self.url_of(&req.path, &req.query);
        let mut headers = self.headers(extra_headers);
        if matches!(body, Body::Bytes(_)) && req.json.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let client = if slow { &self.slow } else { &self.http };
        client
            .send(req.method, &url, &headers, body, req.timeout)
            .map_err(|e| {
                let mut err = QdrantError::transport(what, &e);
                // A request that never got a connection was never seen by the server.
                err.transient =
                    e.kind == HttpErrorKind::Connect || (req.idempotent && e.is_transient());
                err
            })
    }

    /// Runs `op` with the retry policy; the last error says how many attempts it took.
    pub(crate) fn retrying<T>(
        &self,
        mut op: impl FnMut() -> Result<T, QdrantError>,
    ) -> Result<T, QdrantError> {
        self.retry
            .run(|| {
                op().map_err(|e| {
                    if e.transient {
                        Failure::Transient(e)
                    } else {
                        Failure::Permanent(e)
                    }
                })
            })
            .map_err(|g: GaveUp<QdrantError>| {
                let suffix = g.suffix();
                g.error.with_note(&suffix)
            })
    }

    /// Sends `req` (retried as its kind allows) and returns the envelope's `result`.
    /// `what` names the operation and its collection for messages.
    pub(crate) fn call(&self, req: Req<'_>, what: &str) -> Result<Value, QdrantError> {
        let body_bytes = req.json.as_ref().map(|v| v.to_string().into_bytes());
        self.retrying(|| {
            let body = match &body_bytes {
                Some(b) => Body::Bytes(b),
                None => Body::Empty,
            };
            let response = self.send_once(&req, &[], body, false, what)?;
            let result = read_result(response, what);
            match result {
                Err(mut e) if e.kind == ErrorKind::Status => {
                    e.transient &= req.idempotent;
                    Err(e)
                }
                other => other,
            }
        })
    }
}

/// Largest JSON answer read whole (collection infos with many payload indexes are the
/// largest this client reads).
const ANSWER_LIMIT: usize = 64 << 20;

/// The `result` of a 2xx JSON envelope, or the error answer as a [`QdrantError`].
pub(crate) fn read_result(response: Response, what: &str) -> Result<Value, QdrantError> {
    let status = response.status;
    let content_type = response.content_type().map(str::to_owned);
    let text = response
        .text(ANSWER_LIMIT)
        .map_err(|e| QdrantError::transport(what, &e))?;
    if !(200..300).contains(&status) {
        return Err(QdrantError::answer(
            what,
            status,
            content_type.as_deref(),
            &text,
        ));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        QdrantError::new(
            ErrorKind::Protocol,
            format!(
                "{what}: Qdrant answered HTTP {status} with something that is not JSON ({e}): is the \
                 URL a Qdrant REST endpoint?"
            ),
        )
    })?;
    if status == 202 {
        // Only `wait=false` answers 202, and this client never sends it: a 202 proves nothing.
        return Err(QdrantError::new(
            ErrorKind::Protocol,
            format!("{what}: Qdrant answered 202 accepted, which says nothing about the outcome"),
        ));
    }
    Ok(value.get("result").cloned().unwrap_or(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_segment() {
        let cases = [
            ("docs", "docs"),
            ("my docs/../x?y#z", "my%20docs%2F..%2Fx%3Fy%23z"),
            ("ünï", "%C3%BCn%C3%AF"),
            ("a-b_c.d~e", "a-b_c.d~e"),
        ];
        for (text, want) in cases {
            assert_eq!(encode(text), want);
        }
    }

    #[test]
    fn a_url_is_refused_unless_http() {
        for (url, ok) in [
            ("http://localhost:6333", true),
            ("https://q.example/prefix/", true),
            ("localhost:6333", false),
            ("grpc://q:6334", false),
        ] {
            assert_eq!(Client::new(&Config::new(url)).is_ok(), ok, "{url}");
        }
        let c = Client::new(&Config::new("http://u:pw@q:6333/")).unwrap();
        assert_eq!(c.shown_url(), "http://u:***@q:6333");
        assert_eq!(
            c.url_of(
                "/collections/a%20b",
                &[("wait", "true".into()), ("checksum", "ab".into())]
            ),
            "http://u:pw@q:6333/collections/a%20b?wait=true&checksum=ab"
        );
    }
}
