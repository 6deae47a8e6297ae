//! The Neo4j HTTP transactional API, as Neo4j 5.3 answers it (see
//! `tests/fixtures/reference/neo4j-5.3/README.md`, "Surprises").
//!
//! Every statement goes as an **auto-commit** request (`POST /db/{db}/tx/commit`): an
//! explicit transaction expires after 2 s without a request, which one slow page would
//! exceed. Nearly every failure is HTTP 200 with an `errors` array, and is an error here;
//! 401, 429 (the lock-out after three wrong passwords, which holds even for the right one)
//! and 415 each become one clear line.
//!
//! Reads are retried on transient failures ([`toolkit::retry`]); writes only where the
//! server provably did nothing (no connection, 429, 503, `Neo.TransientError.*`): a
//! write whose answer was lost may have been committed, and a repeat would duplicate it.

use std::io::{BufReader, Read};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use toolkit::http::{Body, ClientOptions, HttpClient, HttpErrorKind, RequestTimeout, Timeouts};
use toolkit::retry::{Failure, RetryPolicy};
use toolkit::secret::{redact_url, Secret};

use crate::error::Error;

/// The largest answer read (one page of an export, one batch's ids): far above what the
/// page sizes give, bounded whatever a server or proxy sends.
const MAX_ANSWER: u64 = 1 << 30;

/// Where the server is and who we are.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `http(s)://host:port[/prefix]`, without credentials or a trailing `/`.
    base: String,
    /// `base` with the user name of the URL's user info and `***` for its password, as shown
    /// in messages and manifests.
    shown: String,
    /// The user.
    pub user: String,
    /// The password (`None`: no `Authorization` header, for a server with auth disabled).
    password: Option<Secret>,
}

impl Endpoint {
    /// The endpoint from `url` (the flag or `NEO4J_URL`), else the seed's `NEO4J_HOST` and
    /// `NEO4J_PORT` [default `localhost:7474`], with credentials from the URL's user info,
    /// else `NEO4J_USER` / `NEO4J_PASSWORD`, else `NEO4J_AUTH` (`user/password`, the
    /// official Docker image's variable; `none`: no auth). `env` looks variables up.
    pub fn resolve(
        url: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Endpoint, Error> {
        let url = match url.filter(|u| !u.is_empty()) {
            Some(u) => u.to_owned(),
            None => format!(
                "http://{}:{}",
                env("NEO4J_HOST").unwrap_or_else(|| "localhost".into()),
                env("NEO4J_PORT").unwrap_or_else(|| "7474".into())
            ),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            Error::Config(format!(
                "invalid Neo4j URL {}: expected http://host:7474 or https://host:7473",
                redact_url(&url)
            ))
        })?;
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" => {}
            "bolt" | "bolt+s" | "bolt+ssc" | "neo4j" | "neo4j+s" | "neo4j+ssc" => {
                return Err(Error::Config(format!(
                    "the Neo4j URL {} is a Bolt URL; dump-neo4j uses the HTTP API: set NEO4J_URL \
                     to http://host:7474 (or https://host:7473)",
                    redact_url(&url)
                )))
            }
            other => {
                return Err(Error::Config(format!(
                    "the Neo4j URL {} has scheme {other:?}: expected http or https",
                    redact_url(&url)
                )))
            }
        }
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        if path.contains(['?', '#']) {
            return Err(Error::Config(format!(
                "the Neo4j URL {} has a query or fragment; give only http(s)://host:port[/path]",
                redact_url(&url)
            )));
        }
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(Error::Config(format!(
                "the Neo4j URL {} names no host",
                redact_url(&url)
            )));
        }
        let base = format!("{scheme}://{host}{}", path.trim_end_matches('/'));
        // The user name stays in what is shown (it tells which account), the password not.
        let shown = redact_url(&format!(
            "{scheme}://{authority}{}",
            path.trim_end_matches('/')
        ));
        let (url_user, url_password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pw)) => (Some(percent_decode(user)?), Some(percent_decode(pw)?)),
                None => (Some(percent_decode(u)?), None),
            },
            None => (None, None),
        };
        let auth = env("NEO4J_AUTH");
        let (auth_user, auth_password) = match auth.as_deref() {
            Some("none") | None => (None, None),
            Some(a) => match a.split_once('/') {
                Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
                None => (None, None),
            },
        };
        let user = url_user
            .or_else(|| env("NEO4J_USER"))
            .or(auth_user)
            .unwrap_or_else(|| "neo4j".into());
        let password = url_password
            .or_else(|| env("NEO4J_PASSWORD"))
            .or(auth_password)
            .filter(|p| !p.is_empty())
            .map(Secret::new);
        Ok(Endpoint {
            shown,
            base,
            user,
            password,
        })
    }

    /// The URL for messages and manifests (no credentials).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Whether a password is configured.
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }
}

fn percent_decode(text: &str) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::Config("bad %-escape in the Neo4j URL's user info".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::Config("the Neo4j URL's user info is not UTF-8".into()))
}

/// What `GET /` says about the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// `neo4j_version`, e.g. `5.3.0`.
    pub version: String,
    /// `neo4j_edition`: `community` or `enterprise`.
    pub edition: Option<String>,
}

/// Whether a request may be repeated after a failure whose outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads: repeat on any transient failure.
    Read,
    /// Writes: repeat only where the server provably did nothing.
    Write,
}

/// One statement with its parameters.
#[derive(Clone, Debug)]
pub struct Statement {
    /// The Cypher text.
    pub text: String,
    /// The parameters (a JSON object).
    pub params: Value,
}

impl Statement {
    /// A statement without parameters.
    pub fn new(text: impl Into<String>) -> Self {
        Statement {
            text: text.into(),
            params: json!({}),
        }
    }

    /// A statement with parameters.
    pub fn with(text: impl Into<String>, params: Value) -> Self {
        Statement {
            text: text.into(),
            params,
        }
    }
}

/// The result of one statement.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ResultSet {
    /// Column names.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Rows.
    #[serde(default)]
    pub data: Vec<Row>,
}

/// One row and its `meta`: a depth-first flattening of the row's values (see
/// [`crate::format`]).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Row {
    /// The values.
    #[serde(default)]
    pub row: Vec<Value>,
    /// The flattened type information.
    #[serde(default)]
    pub meta: Vec<Value>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<ResultSet>,
    #[serde(default)]
    errors: Vec<ApiError>,
}

#[derive(Clone, Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// A client of one server.
#[derive(Clone)]
pub struct Client {
    http: HttpClient,
    endpoint: Endpoint,
    retry: RetryPolicy,
    authorization: Option<Secret>,
}

impl Client {
    /// A client of `endpoint`; `timeout` bounds each request, body included.
    pub fn new(endpoint: Endpoint, timeout: Duration, retry: RetryPolicy) -> Result<Client, Error> {
        let http = HttpClient::new(&ClientOptions {
            timeouts: Timeouts {
                connect: Duration::from_secs(10),
                idle: timeout,
                request: timeout,
            },
            ca_file: None,
        })
        .map_err(|e| Error::Config(e.message))?;
        let authorization = endpoint.password.as_ref().map(|p| {
            let pair = format!("{}:{}", endpoint.user, p.expose());
            Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        });
        Ok(Client {
            http,
            endpoint,
            retry,
            authorization,
        })
    }

    /// The server, for messages and manifests.
    pub fn shown_url(&self) -> &str {
        self.endpoint.shown()
    }

    /// `GET /`: version and edition (no credentials needed).
    pub fn server(&self) -> Result<ServerInfo, Error> {
        let url = format!("{}/", self.endpoint.base);
        let body = self.attempts(|| {
            let r = self
                .http
                .send(
                    "GET",
                    &url,
                    &[("Accept", "application/json")],
                    Body::Empty,
                    RequestTimeout::Default,
                )
                .map_err(|e| transport(e, Access::Read))?;
            let status = r.status;
            let text = r.text(1 << 20).map_err(|e| transport(e, Access::Read))?;
            if status != 200 {
                let e = Error::Status {
                    url: self.shown_url().to_owned() + "/",
                    status,
                    message: shorten(&text),
                };
                return Err(if toolkit::http::transient_status(status) {
                    Failure::Transient(e)
                } else {
                    Failure::Permanent(e)
                });
            }
            Ok(text)
        })?;
        let doc: Value = serde_json::from_str(&body).map_err(|_| {
            Error::Protocol(format!(
                "{}/ did not answer with the Neo4j discovery document (is this the HTTP port, \
                 7474? Bolt is 7687): {}",
                self.shown_url(),
                shorten(&body)
            ))
        })?;
        let version = doc["neo4j_version"].as_str().ok_or_else(|| {
            Error::Protocol(format!(
                "{}/ answered without neo4j_version: {}",
                self.shown_url(),
                shorten(&body)
            ))
        })?;
        Ok(ServerInfo {
            version: version.to_owned(),
            edition: doc["neo4j_edition"].as_str().map(str::to_owned),
        })
    }

    /// Whether the server answers `GET /` right now (one attempt, no retries).
    pub fn answers(&self) -> bool {
        let url = format!("{}/", self.endpoint.base);
        self.http
            .send(
                "GET",
                &url,
                &[("Accept", "application/json")],
                Body::Empty,
                RequestTimeout::Total(Duration::from_secs(5)),
            )
            .is_ok_and(|r| r.status == 200)
    }

    /// Runs `statements` in one auto-commit request on `db` and returns one result per
    /// statement. `what` names the work in messages ("the node page after id 999").
    pub fn run(
        &self,
        db: &str,
        what: &str,
        statements: &[Statement],
        access: Access,
    ) -> Result<Vec<ResultSet>, Error> {
        let url = format!("{}/db/{db}/tx/commit", self.endpoint.base);
        let body = serde_json::to_vec(&json!({
            "statements": statements
                .iter()
                .map(|s| json!({"statement": s.text, "parameters": s.params}))
                .collect::<Vec<_>>()
        }))
        .expect("JSON values serialize");
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ];
        if let Some(a) = &self.authorization {
            headers.push(("Authorization", a.expose()));
        }
        let results = self.attempts(|| {
            let r = self
                .http
                .send(
                    "POST",
                    &url,
                    &headers,
                    Body::Bytes(&body),
                    RequestTimeout::Default,
                )
                .map_err(|e| transport(e, access))?;
            self.answer(r, db, what, access)
        })?;
        if results.len() != statements.len() {
            return Err(Error::Protocol(format!(
                "Neo4j answered {what} with {} results for {} statements",
                results.len(),
                statements.len()
            )));
        }
        Ok(results)
    }

    fn attempts<T>(&self, op: impl FnMut() -> Result<T, Failure<Error>>) -> Result<T, Error> {
        self.retry.run(op).map_err(|gave_up| {
            let suffix = gave_up.suffix();
            match gave_up.error {
                Error::Transport(m) => Error::Transport(format!("{m}{suffix}")),
                Error::Status {
                    url,
                    status,
                    message,
                } => Error::Status {
                    url,
                    status,
                    message: format!("{message}{suffix}"),
                },
                other => other,
            }
        })
    }

    /// One answer of `POST …/tx/commit`, classified.
    fn answer(
        &self,
        r: toolkit::http::Response,
        db: &str,
        what: &str,
        access: Access,
    ) -> Result<Vec<ResultSet>, Failure<Error>> {
        let status = r.status;
        let url = self.shown_url().to_owned();
        if status == 200 {
            let reader = BufReader::with_capacity(1 << 16, r.into_reader().take(MAX_ANSWER));
            let answer: Answer = serde_json::from_reader(reader).map_err(|e| {
                let e = Error::Protocol(format!(
                    "Neo4j's answer to {what} is not the HTTP API's JSON: {e}"
                ));
                // A connection cut mid-answer reads as broken JSON: a read may try again.
                match access {
                    Access::Read => Failure::Transient(e),
                    Access::Write => Failure::Permanent(e),
                }
            })?;
            return match answer.errors.first() {
                None => Ok(answer.results),
                Some(e) => {
                    let error = Error::Cypher {
                        what: what.to_owned(),
                        code: e.code.clone(),
                        message: e.message.clone(),
                    };
                    // A transient error rolled the transaction back: safe to repeat.
                    if e.code.starts_with("Neo.TransientError.") {
                        Err(Failure::Transient(error))
                    } else {
                        Err(Failure::Permanent(error))
                    }
                }
            };
        }
        let text = r.text(1 << 20).unwrap_or_default();
        let first = serde_json::from_str::<Answer>(&text)
            .ok()
            .and_then(|a| a.errors.into_iter().next());
        let detail = first
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_else(|| shorten(&text));
        let user = self.endpoint.user.clone();
        Err(match status {
            401 => Failure::Permanent(Error::Unauthorized {
                url,
                user,
                detail: if self.authorization.is_none() {
                    format!("{detail} NEO4J_PASSWORD is not set")
                } else {
                    detail
                },
            }),
            // Nothing ran: the login itself was refused. The lock lasts seconds.
            429 => Failure::Transient(Error::RateLimited { url, user, detail }),
            415 => Failure::Permanent(Error::UnsupportedMediaType { url }),
            404 if first
                .as_ref()
                .is_some_and(|e| e.code == "Neo.ClientError.Database.DatabaseNotFound") =>
            {
                Failure::Permanent(Error::DatabaseNotFound {
                    database: db.to_owned(),
                    url,
                })
            }
            _ => {
                let e = Error::Status {
                    url: format!("{url}/db/{db}/tx/commit"),
                    status,
                    message: detail,
                };
                let transient = match access {
                    Access::Read => toolkit::http::transient_status(status),
                    Access::Write => status == 503,
                };
                if transient {
                    Failure::Transient(e)
                } else {
                    Failure::Permanent(e)
                }
            }
        })
    }
}

fn transport(e: toolkit::http::HttpError, access: Access) -> Failure<Error> {
    // A write that never reached the server can be sent again; one whose answer was lost
    // may have been committed.
    let again = match access {
        Access::Read => e.is_transient(),
        Access::Write => e.kind == HttpErrorKind::Connect,
    };
    let error = Error::Transport(format!("Neo4j at {}", e.message));
    if again {
        Failure::Transient(error)
    } else {
        Failure::Permanent(error)
    }
}

/// At most 300 characters of a body, on one line.
fn shorten(text: &str) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 300 {
        format!("{}…", one.chars().take(300).collect::<String>())
    } else if one.is_empty() {
        "(empty body)".into()
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn table_of_endpoints() {
        // (url, environment, base, user, has password)
        type Case<'a> = (
            Option<&'a str>,
            &'a [(&'a str, &'a str)],
            &'a str,
            &'a str,
            bool,
        );
        let cases: [Case; 7] = [
            (None, &[], "http://localhost:7474", "neo4j", false),
            (
                None,
                &[("NEO4J_HOST", "db"), ("NEO4J_PORT", "17474")],
                "http://db:17474",
                "neo4j",
                false,
            ),
            (
                Some("http://db:7474/"),
                &[("NEO4J_PASSWORD", "pw")],
                "http://db:7474",
                "neo4j",
                true,
            ),
            (
                Some("https://u:p%40ss@db:7473/neo4j"),
                &[("NEO4J_USER", "other")],
                "https://db:7473/neo4j",
                "u",
                true,
            ),
            (
                Some("http://db:7474"),
                &[("NEO4J_AUTH", "admin/secret")],
                "http://db:7474",
                "admin",
                true,
            ),
            (
                Some("http://db:7474"),
                &[("NEO4J_AUTH", "none")],
                "http://db:7474",
                "neo4j",
                false,
            ),
            (
                Some("http://db:7474"),
                &[
                    ("NEO4J_USER", "backup"),
                    ("NEO4J_PASSWORD", "x"),
                    ("NEO4J_AUTH", "a/b"),
                ],
                "http://db:7474",
                "backup",
                true,
            ),
        ];
        for (url, vars, base, user, pw) in cases {
            let vars: &'static [(&str, &str)] = Box::leak(vars.to_vec().into_boxed_slice());
            let e = Endpoint::resolve(url, &env_of(vars)).unwrap();
            assert_eq!(
                (e.base.as_str(), e.user.as_str(), e.has_password()),
                (base, user, pw),
                "{url:?}"
            );
            assert!(!e.shown().contains("p%40ss"), "{}", e.shown());
        }
        let decoded = Endpoint::resolve(Some("https://u:p%40ss@db:7473/"), &env_of(&[])).unwrap();
        assert_eq!(decoded.shown(), "https://u:***@db:7473");
        assert_eq!(decoded.password.unwrap().expose(), "p@ss");
    }

    #[test]
    fn table_of_refused_urls() {
        let cases = [
            ("bolt://db:7687", "is a Bolt URL"),
            ("neo4j+s://db", "is a Bolt URL"),
            ("ftp://db", "scheme \"ftp\""),
            ("db:7474", "expected http://host:7474"),
            ("http://db:7474/?x=1", "query or fragment"),
            ("http://:pw@/", "names no host"),
        ];
        for (url, want) in cases {
            let err = Endpoint::resolve(Some(url), &|_| None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{url}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }

    /// A server that answers every connection with `status` and `body` (one request
    /// each), and the count of requests it had.
    fn counted(
        status: u16,
        content_type: &'static str,
        body: &'static str,
    ) -> (Client, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { break };
                seen.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 65536];
                let _ = s.read(&mut buf);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes());
            }
        });
        let url = format!("http://127.0.0.1:{}", addr.port());
        let env = |k: &str| (k == "NEO4J_PASSWORD").then(|| "pw".to_owned());
        let endpoint = Endpoint::resolve(Some(&url), &env).unwrap();
        let once = RetryPolicy {
            retries: 1,
            first_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        (
            Client::new(endpoint, Duration::from_secs(5), once).unwrap(),
            requests,
        )
    }

    fn canned(status: u16, content_type: &'static str, body: &'static str) -> Client {
        counted(status, content_type, body).0
    }

    #[test]
    fn table_of_answers_and_the_errors_they_become() {
        let json = "application/json";
        // (status, content type, body, the error says)
        let cases: [(u16, &str, &str, &str); 8] = [
            (200, json, r#"{"results":[],"errors":[{"code":"Neo.ClientError.Statement.SyntaxError","message":"Invalid input 'X'"}]}"#,
             "Neo4j refused the test: Neo.ClientError.Statement.SyntaxError: Invalid input 'X'"),
            (401, "application/json;charset=utf-8", r#"{"errors":[{"code":"Neo.ClientError.Security.Unauthorized","message":"Invalid username or password."}]}"#,
             "refused the credentials of user \"neo4j\" (401 Unauthorized: Invalid username or password.)"),
            (429, "application/json;charset=utf-8", r#"{"errors":[{"code":"Neo.ClientError.Security.AuthenticationRateLimit","message":"Too many failed authentication requests."}]}"#,
             "(429 AuthenticationRateLimit: Too many failed authentication requests.)"),
            (415, json, r#"{"servlet":"org.glassfish.jersey.servlet.ServletContainer-1","message":"Unsupported Media Type","status":"415"}"#,
             "415 Unsupported Media Type: it arrived without Content-Type: application/json"),
            (404, json, r#"{"errors":[{"code":"Neo.ClientError.Database.DatabaseNotFound","message":"The database requested does not exists."}]}"#,
             "database \"db\" does not exist on Neo4j at"),
            (404, "text/html;charset=iso-8859-1", "", "/db/db/tx/commit: unexpected HTTP 404: (empty body)"),
            (500, "text/plain", "boom", "unexpected HTTP 500: boom (gave up after 2 attempts"),
            (200, "text/html", "<html>proxy login</html>", "is not the HTTP API's JSON"),
        ];
        for (status, content_type, body, want) in cases {
            let err = canned(status, content_type, body)
                .run(
                    "db",
                    "the test",
                    &[Statement::new("RETURN 1")],
                    Access::Read,
                )
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(want), "{status} {body}: {err}");
            assert!(!err.contains("pw") && !err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn writes_are_repeated_only_where_nothing_ran() {
        // (status, requests for a read, requests for a write), one retry allowed
        let cases = [
            (500, 2, 1),
            (503, 2, 2),
            (429, 2, 2),
            (401, 1, 1),
            (400, 1, 1),
        ];
        for (status, read, write) in cases {
            for (access, want) in [(Access::Read, read), (Access::Write, write)] {
                let body = r#"{"errors":[{"code":"X","message":"m"}]}"#;
                let (client, requests) = counted(status, "application/json", body);
                assert!(client
                    .run("db", "w", &[Statement::new("CREATE ()")], access)
                    .is_err());
                let made = requests.load(std::sync::atomic::Ordering::SeqCst);
                assert_eq!(made, want, "{status} {access:?}");
            }
        }
    }
}
