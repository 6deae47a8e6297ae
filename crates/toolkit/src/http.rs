//! The HTTP client every network tool uses: S3 (signed requests built by the vault), the
//! Qdrant REST API, the Neo4j HTTP API.
//!
//! Built on `ureq` (blocking, kept-alive connections, rustls). What it adds:
//!
//! - **Timeouts, each what it says**: `connect` (TCP connect), and per request either one
//!   deadline for the whole exchange, body included (`request`, or
//!   [`RequestTimeout::Total`]) or, for a stream of unbounded length (a snapshot download of
//!   many GiB, [`RequestTimeout::Idle`]), only a limit on how long no byte moves (`idle`).
//!   (`ureq` applies a whole-request deadline instead of, not besides, the idle one.)
//! - **Every HTTP status is an answer**, not an error: callers read the body of a 403 or a
//!   404 (S3 XML, Qdrant's JSON envelope, plain text) and decide. Errors are transport
//!   failures only, classified for the retry policy ([`HttpError::is_transient`],
//!   [`transient_status`]).
//! - No redirects (a signed request must not be replayed elsewhere), no transparent
//!   decompression (bytes are hashed as stored).
//! - URLs in messages are redacted ([`crate::secret::redact_url`]).

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::secret::redact_url;

/// How long to wait, and for what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect and TLS handshake.
    pub connect: Duration,
    /// Longest time without a byte moving, for [`RequestTimeout::Idle`] requests.
    pub idle: Duration,
    /// Longest time for one whole exchange, body included, for
    /// [`RequestTimeout::Default`] requests.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            request: Duration::from_secs(300),
        }
    }
}

/// The timeout of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestTimeout {
    /// The client's `request` timeout.
    Default,
    /// Only the idle timeout: for streams whose length has no bound (snapshot downloads).
    Idle,
    /// This long for the whole exchange.
    Total(Duration),
}

/// How the client is set up.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Timeouts.
    pub timeouts: Timeouts,
    /// A PEM file of CA certificates to trust instead of the built-in roots (a private CA
    /// for MinIO, Qdrant or Neo4j behind TLS).
    pub ca_file: Option<PathBuf>,
}

/// A transport failure (the server's answers, whatever their status, are not errors).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HttpError {
    /// What kind.
    pub kind: HttpErrorKind,
    /// The URL, redacted.
    pub url: String,
    /// One line for people, the URL first.
    pub message: String,
    /// What went wrong, without the URL (for callers that name the server themselves).
    pub problem: String,
}

/// What kind of transport failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// The URL cannot be used.
    InvalidUrl,
    /// No connection (refused, DNS, unreachable).
    Connect,
    /// A timeout expired.
    Timeout,
    /// TLS failed (certificate, handshake).
    Tls,
    /// The connection broke during the exchange.
    Io,
}

impl HttpError {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Io
        )
    }
}

/// Whether an HTTP status is worth a retry: 408, 429, and the 5xx a busy or restarting
/// server sends.
pub fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// A request body.
pub enum Body<'a> {
    /// None.
    Empty,
    /// These bytes.
    Bytes(&'a [u8]),
    /// Exactly `len` bytes from `reader`, streamed (sent with `Content-Length`).
    Stream {
        /// Where the bytes come from.
        reader: &'a mut dyn Read,
        /// How many.
        len: u64,
    },
}

/// The server's answer.
pub struct Response {
    /// HTTP status.
    pub status: u16,
    headers: Vec<(String, String)>,
    reader: Box<dyn Read + Send + Sync + 'static>,
    url: String,
}

impl Response {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `Content-Type`, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The body as a stream.
    pub fn into_reader(self) -> Box<dyn Read + Send + Sync + 'static> {
        self.reader
    }

    /// The body as text, read up to `limit` bytes (more is an error: no answer this tool
    /// reads whole is that large).
    pub fn text(self, limit: usize) -> Result<String, HttpError> {
        let url = self.url.clone();
        let mut data = Vec::new();
        self.reader
            .take(limit as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|e| io_error(&url, e))?;
        if data.len() > limit {
            let problem = format!("the answer is larger than {limit} bytes");
            return Err(HttpError {
                kind: HttpErrorKind::Io,
                message: format!("{url}: {problem}"),
                url,
                problem,
            });
        }
        Ok(String::from_utf8_lossy(&data).into_owned())
    }

    /// The URL this answered (redacted).
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A client with a pool of kept-alive connections. Cheap to share across threads.
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    timeouts: Timeouts,
}

impl HttpClient {
    /// A client set up as `options` say.
    pub fn new(options: &ClientOptions) -> Result<HttpClient, HttpError> {
        let t = options.timeouts;
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(t.connect)
            .timeout_read(t.idle)
            .timeout_write(t.idle)
            .redirects(0)
            .max_idle_connections_per_host(64)
            .user_agent(concat!("stackvault/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = &options.ca_file {
            builder = builder.tls_config(Arc::new(tls_config(ca_file)?));
        }
        Ok(HttpClient {
            agent: builder.build(),
            timeouts: t,
        })
    }

    /// The timeouts it was made with.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Sends one request (no retries: see [`crate::retry`]). Any HTTP status is `Ok`.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        timeout: RequestTimeout,
    ) -> Result<Response, HttpError> {
        let shown = redact_url(url);
        let mut request = self.agent.request(method, url);
        // Bytes are hashed as the server stores them: never let the transport inflate them.
        request = request.set("Accept-Encoding", "identity");
        for (name, value) in headers {
            request = request.set(name, value);
        }
        request = match timeout {
            RequestTimeout::Default => request.timeout(self.timeouts.request),
            RequestTimeout::Idle => request,
            RequestTimeout::Total(d) => request.timeout(d),
        };
        let result = match body {
            Body::Empty => request.call(),
            Body::Bytes(data) => request.send_bytes(data),
            Body::Stream { reader, len } => request
                .set("Content-Length", &len.to_string())
                .send(reader.take(len)),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                return Err(transport_error(&shown, t, &self.timeouts))
            }
        };
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                let value = response.header(&name)?.to_owned();
                Some((name, value))
            })
            .collect();
        Ok(Response {
            status: response.status(),
            headers,
            reader: response.into_reader(),
            url: shown,
        })
    }
}

fn tls_config(ca_file: &std::path::Path) -> Result<rustls::ClientConfig, HttpError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bad = |message: String| HttpError {
        kind: HttpErrorKind::Tls,
        url: String::new(),
        problem: message.clone(),
        message,
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| bad(format!("cannot read CA file {}: {e}", ca_file.display())))?;
    for cert in certs {
        let cert =
            cert.map_err(|e| bad(format!("bad certificate in {}: {e}", ca_file.display())))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("bad certificate in {}: {e}", ca_file.display())))?;
    }
    if roots.is_empty() {
        return Err(bad(format!(
            "no certificates in CA file {}",
            ca_file.display()
        )));
    }
    // Both of rustls' crypto providers are compiled in (other crates enable both), so the
    // provider is chosen explicitly: ring, the one ureq uses.
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS setup failed: {e}")))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

fn io_error(url: &str, e: io::Error) -> HttpError {
    let kind = if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        HttpErrorKind::Timeout
    } else {
        HttpErrorKind::Io
    };
    HttpError {
        kind,
        url: url.to_owned(),
        message: format!("{url}: {e}"),
        problem: e.to_string(),
    }
}

fn transport_error(url: &str, t: ureq::Transport, timeouts: &Timeouts) -> HttpError {
    use ureq::ErrorKind as K;
    let text = t.to_string();
    let timed_out = text.contains("timed out") || text.contains("Timeout");
    let (kind, problem) = match t.kind() {
        K::InvalidUrl | K::UnknownScheme | K::InsecureRequestHttpsOnly => {
            (HttpErrorKind::InvalidUrl, "invalid URL".to_owned())
        }
        K::Dns => (
            HttpErrorKind::Connect,
            "cannot resolve the host name".to_owned(),
        ),
        K::ConnectionFailed if timed_out => (
            HttpErrorKind::Timeout,
            format!("cannot connect within {} s", timeouts.connect.as_secs_f64()),
        ),
        K::ConnectionFailed => (HttpErrorKind::Connect, "cannot connect".to_owned()),
        _ if text.contains("certificate") || text.contains("tls") || text.contains("TLS") => {
            (HttpErrorKind::Tls, "TLS failed".to_owned())
        }
        _ if timed_out => (
            HttpErrorKind::Timeout,
            "no answer in time (the request timed out)".to_owned(),
        ),
        _ => (HttpErrorKind::Io, "the connection failed".to_owned()),
    };
    let detail = std::error::Error::source(&t)
        .map(|s| s.to_string())
        .or_else(|| t.message().map(str::to_owned));
    let problem = match detail {
        Some(d) if !problem.contains(&d) => format!("{problem}: {d}"),
        _ => problem,
    };
    HttpError {
        kind,
        url: url.to_owned(),
        message: format!("{url}: {problem}"),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::time::Instant;

    fn client(t: Timeouts) -> HttpClient {
        HttpClient::new(&ClientOptions {
            timeouts: t,
            ca_file: None,
        })
        .unwrap()
    }

    fn quick() -> Timeouts {
        Timeouts {
            connect: Duration::from_millis(500),
            idle: Duration::from_millis(500),
            request: Duration::from_secs(5),
        }
    }

    /// A server that answers each connection with `answer`.
    fn server(answer: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { break };
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut s, &mut buf);
                let _ = s.write_all(answer);
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn statuses_are_answers_with_readable_bodies() {
        let url = server(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nno such x");
        let r = client(quick())
            .send("GET", &url, &[], Body::Empty, RequestTimeout::Default)
            .unwrap();
        assert_eq!((r.status, r.content_type()), (404, Some("text/plain")));
        assert_eq!(r.text(100).unwrap(), "no such x");
    }

    #[test]
    fn a_refused_connection_is_transient_and_redacted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://user:pw@127.0.0.1:{port}/x");
        let err = client(quick())
            .send("GET", &url, &[], Body::Empty, RequestTimeout::Default)
            .err()
            .unwrap();
        assert_eq!(err.kind, HttpErrorKind::Connect, "{err}");
        assert!(err.is_transient());
        assert!(!err.to_string().contains("pw@"), "{err}");
    }

    /// Accepts connections, reads, never answers.
    fn mute_server() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut held = vec![];
            for s in listener.incoming().flatten() {
                held.push(s);
            }
        });
        format!("http://{addr}/")
    }

    #[test]
    fn a_mute_server_times_out_exactly_when_each_timeout_says() {
        let url = mute_server();
        let t = Timeouts {
            connect: Duration::from_secs(5),
            idle: Duration::from_millis(400),
            request: Duration::from_millis(1200),
        };
        // (timeout of the request, expected wait)
        let cases = [
            (RequestTimeout::Default, Duration::from_millis(1200)),
            (RequestTimeout::Idle, Duration::from_millis(400)),
            (
                RequestTimeout::Total(Duration::from_millis(700)),
                Duration::from_millis(700),
            ),
        ];
        for (timeout, want) in cases {
            let started = Instant::now();
            let err = client(t)
                .send("GET", &url, &[], Body::Empty, timeout)
                .err()
                .unwrap();
            let took = started.elapsed();
            assert_eq!(err.kind, HttpErrorKind::Timeout, "{timeout:?}: {err}");
            assert!(
                took >= want && took < want + Duration::from_millis(600),
                "{timeout:?}: {took:?}"
            );
        }
    }

    // The connect timeout against a host that never accepts is proven end to end (a full
    // accept queue, testkit::unconnectable_endpoint) in tests/hardening.rs.

    #[test]
    fn a_stream_body_is_sent_with_its_length() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 65536];
            while !String::from_utf8_lossy(&got).contains("\r\n\r\nhello") {
                let n = std::io::Read::read(&mut s, &mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&got).into_owned()
        });
        let mut data = &b"hello, and more that is not sent"[..];
        let r = client(quick())
            .send(
                "PUT",
                &format!("http://{addr}/o"),
                &[("x-test", "1")],
                Body::Stream {
                    reader: &mut data,
                    len: 5,
                },
                RequestTimeout::Default,
            )
            .unwrap();
        assert_eq!(r.status, 200);
        let request = seen.join().unwrap().to_ascii_lowercase();
        assert!(
            request.contains("content-length: 5") && request.contains("x-test: 1"),
            "{request}"
        );
        assert!(!request.contains("transfer-encoding"), "{request}");
    }
}
