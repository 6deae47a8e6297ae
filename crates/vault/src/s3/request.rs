//! One signed S3 request: URL, SigV4 signature, sending with the shared HTTP client and
//! retry policy, and the server's error answer turned into a vault error.
//!
//! Why not rust-s3's own requests: its blocking transport (attohttpc) opens a connection per
//! request and fixes connect and read timeouts at 30 s whatever the caller asks (so a mute
//! server cost ~31 s per attempt, and `--s3-timeout` could not be honoured), hashes each
//! body twice, and cannot send `If-None-Match` or parse SeaweedFS's ListMultipartUploads
//! answer. rust-s3's SigV4 functions (`s3::signing`) are used as they are: signing stays
//! rust-s3's, the transport is `toolkit::http` (ureq, kept-alive connections, exact
//! timeouts).

use std::time::SystemTime;

use hmac::Mac;
use s3::signing;
use toolkit::http::{transient_status, Body, HttpClient, RequestTimeout};
use toolkit::retry::Failure;

use crate::error::{Error, ErrorKind, Result};

use super::config::S3Config;
use super::file_body::FileBody;

/// How much of a file body one read takes (the transport then writes it in its own
/// smaller pieces).
const FILE_READ: usize = 1 << 20;

/// The SHA-256 of an empty payload, as SigV4 wants it.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A request's body.
pub(crate) enum Payload<'a> {
    Empty,
    /// Signed with its SHA-256 hex digest (small bodies: XML).
    Bytes(&'a [u8], String),
    /// Sent as `UNSIGNED-PAYLOAD`: the signature covers the headers, not the body. Used for
    /// parts and objects, whose integrity is proven by the `x-amz-checksum-crc32` the server
    /// verifies instead — hashing every byte twice more for SigV4 was a third of the
    /// client's CPU.
    Unsigned(&'a [u8]),
    /// A file, streamed from its start, `UNSIGNED-PAYLOAD`: a single PUT of a large object
    /// whose whole-object checksum header the server verifies. Every attempt sends it all
    /// again, and only an idle timeout applies (its length has no bound a whole-request
    /// timeout could be sized for).
    File(&'a FileBody<'a>),
}

/// A request to send.
pub(crate) struct S3Request<'a> {
    pub method: &'static str,
    /// The object's path in the bucket (prefix included), or `None` for the bucket itself.
    pub path: Option<&'a str>,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub payload: Payload<'a>,
    /// Answers with these statuses are returned, not turned into errors (e.g. 404 for a
    /// HEAD that asks whether an object exists).
    pub accept: &'static [u16],
}

impl<'a> S3Request<'a> {
    pub fn new(method: &'static str, path: Option<&'a str>) -> Self {
        S3Request {
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            payload: Payload::Empty,
            accept: &[],
        }
    }
}

/// The server's answer.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Signs and sends requests to one bucket.
pub(crate) struct S3Client {
    pub config: S3Config,
    http: HttpClient,
    /// `scheme://host[:port]` of the endpoint.
    endpoint: url::Url,
    region: s3::Region,
}

impl S3Client {
    pub fn new(config: S3Config) -> Result<Self> {
        if config.access_key.is_none() || config.secret_key.is_none() {
            return Err(Error::new(
                ErrorKind::Auth,
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (or MINIO_ACCESS_KEY and MINIO_SECRET_KEY) in the environment",
            ));
        }
        let endpoint_text = match &config.endpoint {
            Some(e) => e.trim_end_matches('/').to_owned(),
            None => format!("https://s3.{}.amazonaws.com", config.region),
        };
        let endpoint = url::Url::parse(&endpoint_text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "invalid S3 endpoint {endpoint_text:?}: {e} (expected e.g. http://minio:9000)"
                ),
            )
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("invalid S3 endpoint {endpoint_text:?}: expected http(s)://host[:port]"),
            ));
        }
        let http = HttpClient::new(&toolkit::http::ClientOptions {
            timeouts: config.timeouts,
            ca_file: config.ca_file.clone(),
        })
        .map_err(|e| Error::new(ErrorKind::InvalidInput, e.to_string()))?;
        let region = s3::Region::Custom {
            region: config.region.clone(),
            endpoint: endpoint_text,
        };
        Ok(S3Client {
            config,
            http,
            endpoint,
            region,
        })
    }

    /// `s3://bucket`, for messages.
    pub fn place(&self) -> String {
        format!("s3://{}", self.config.bucket)
    }

    fn url(&self, path: Option<&str>, query: &[(&'static str, String)]) -> url::Url {
        let mut url = self.endpoint.clone();
        let bucket = &self.config.bucket;
        let object = path.map(|p| format!("/{p}")).unwrap_or_default();
        if self.config.path_style {
            url.set_path(&format!("/{bucket}{object}"));
        } else {
            let host = format!("{bucket}.{}", self.endpoint.host_str().expect("checked"));
            url.set_host(Some(&host))
                .expect("a bucket name makes a host");
            url.set_path(if object.is_empty() { "/" } else { &object });
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// The `Authorization` header and the headers it signs.
    fn sign(
        &self,
        method: &str,
        url: &url::Url,
        extra: &[(&'static str, String)],
        payload_sha256: &str,
    ) -> Result<Vec<(String, String)>> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let datetime = time::OffsetDateTime::from_unix_timestamp(now as i64).expect("a valid time");
        let stamp = humantime::format_rfc3339_seconds(
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(now),
        )
        .to_string()
        .replace(['-', ':'], "");
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().expect("checked")),
            None => url.host_str().expect("checked").to_owned(),
        };
        let mut headers = http::HeaderMap::new();
        let mut put = |name: &str, value: &str| -> Result<()> {
            let name = http::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| Error::new(ErrorKind::Protocol, format!("bad header name: {e}")))?;
            let value = http::header::HeaderValue::from_str(value)
                .map_err(|e| Error::new(ErrorKind::Protocol, format!("bad header value: {e}")))?;
            headers.insert(name, value);
            Ok(())
        };
        put("host", &host)?;
        put("x-amz-date", &stamp)?;
        put("x-amz-content-sha256", payload_sha256)?;
        if let Some(token) = &self.config.session_token {
            put("x-amz-security-token", token.expose())?;
        }
        for (name, value) in extra {
            put(name, value)?;
        }
        let signing_error = |e: s3::error::S3Error| {
            Error::new(ErrorKind::Protocol, format!("cannot sign the request: {e}"))
        };
        let canonical = signing::canonical_request(method, url, &headers, payload_sha256)
            .map_err(signing_error)?;
        let to_sign =
            signing::string_to_sign(&datetime, &self.region, &canonical).map_err(signing_error)?;
        let secret = self.config.secret_key.as_ref().expect("checked in new");
        let key = signing::signing_key(&datetime, secret.expose(), &self.region, "s3")
            .map_err(signing_error)?;
        let mut mac = signing::HmacSha256::new_from_slice(&key).expect("HMAC takes any key");
        mac.update(to_sign.as_bytes());
        let signature: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let access_key = self.config.access_key.as_deref().expect("checked in new");
        let authorization = signing::authorization_header(
            access_key,
            &datetime,
            &self.region,
            &signing::signed_header_string(&headers),
            &signature,
        )
        .map_err(signing_error)?;
        let mut out: Vec<(String, String)> = headers
            .iter()
            .filter(|(name, _)| name.as_str() != "host") // the transport writes the same Host
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        out.push(("authorization".into(), authorization));
        Ok(out)
    }

    /// One attempt: the answer with its body unread, for a status that is success or in
    /// `req.accept`; an error answer is read and classified. `timeout`: the request's
    /// (`Default`: --s3-timeout for the whole exchange), or `Idle` for a caller that reads a
    /// large body and keeps the total time itself — ureq enforces a whole-request deadline
    /// by setting the socket's timeouts before every 8 KiB read (two system calls each).
    pub fn attempt_stream(
        &self,
        req: &S3Request<'_>,
        what: &str,
        timeout: RequestTimeout,
    ) -> std::result::Result<toolkit::http::Response, Failure<Error>> {
        let url = self.url(req.path, &req.query);
        let mut from_file = None;
        let (body, sha) = match &req.payload {
            Payload::Empty => (Body::Empty, EMPTY_SHA256.to_owned()),
            Payload::Bytes(data, sha) => (Body::Bytes(data), sha.clone()),
            Payload::Unsigned(data) => (Body::Bytes(data), "UNSIGNED-PAYLOAD".to_owned()),
            Payload::File(file) => (
                Body::Stream {
                    reader: from_file
                        .insert(std::io::BufReader::with_capacity(FILE_READ, file.reader())),
                    len: file.len,
                },
                "UNSIGNED-PAYLOAD".to_owned(),
            ),
        };
        let headers = self
            .sign(req.method, &url, &req.headers, &sha)
            .map_err(Failure::Permanent)?;
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let response = self
            .http
            .send(req.method, url.as_str(), &header_refs, body, timeout)
            .map_err(|e| {
                let transient = e.is_transient();
                let endpoint = self.endpoint.as_str().trim_end_matches('/');
                let error = Error::new(
                    ErrorKind::Unreachable,
                    format!("{what}: cannot reach {endpoint}: {}", e.problem),
                );
                if transient {
                    Failure::Transient(error)
                } else {
                    Failure::Permanent(error)
                }
            })?;
        let status = response.status;
        if (200..300).contains(&status) || req.accept.contains(&status) {
            return Ok(response);
        }
        let answer = read_answer(response, what)?;
        Err(self.classify(&answer, what))
    }

    fn attempt(
        &self,
        req: &S3Request<'_>,
        what: &str,
    ) -> std::result::Result<Answer, Failure<Error>> {
        let timeout = match req.payload {
            Payload::File(_) => RequestTimeout::Idle,
            _ => RequestTimeout::Default,
        };
        read_answer(self.attempt_stream(req, what, timeout)?, what)
    }

    /// Sends `req` with the retry policy. `what` names it in messages (`upload part 3`).
    pub fn call(&self, req: &S3Request<'_>, what: &str) -> Result<Answer> {
        self.config
            .retry
            .run(|| self.attempt(req, what))
            .map_err(|gave_up| {
                let suffix = gave_up.suffix();
                gave_up.error.append(&suffix)
            })
    }

    /// An S3 error answer as a vault error, and whether a retry may help.
    fn classify(&self, answer: &Answer, what: &str) -> Failure<Error> {
        let body = answer.text();
        let detail = s3_error_detail(&body);
        let status = answer.status;
        let code = xml_tag(&body, "Code").unwrap_or_default();
        let (kind, transient, hint) = match status {
            404 if code == "NoSuchBucket" => (
                ErrorKind::NotFound,
                false,
                format!(
                    "; bucket {:?} does not exist: create it first",
                    self.config.bucket
                ),
            ),
            404 => (ErrorKind::NotFound, false, String::new()),
            401 | 403 => (
                ErrorKind::Auth,
                false,
                "; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, that they have not \
                 expired, and that the clock is right"
                    .to_owned(),
            ),
            412 => (ErrorKind::AlreadyExists, false, String::new()),
            // What we sent is not what the server received: the same bytes sent again are
            // refused again, and nothing was stored.
            400 if refuses_digest(&code) => (ErrorKind::Integrity, false, String::new()),
            // A concurrent conditional write on AWS: the winner is not known yet.
            409 if code == "ConditionalRequestConflict" => {
                (ErrorKind::Unreachable, true, String::new())
            }
            s if transient_status(s) => (ErrorKind::Unreachable, true, String::new()),
            _ => (ErrorKind::Protocol, false, String::new()),
        };
        let error = Error::new(
            kind,
            format!(
                "{what}: {} answered HTTP {status}{detail}{hint}",
                self.place()
            ),
        );
        if transient {
            Failure::Transient(error)
        } else {
            Failure::Permanent(error)
        }
    }
}

/// Whether an S3 error code is a refused checksum: `BadDigest` (AWS, SeaweedFS) or MinIO's
/// `XAmzContentChecksumMismatch`.
pub(crate) fn refuses_digest(code: &str) -> bool {
    matches!(code, "BadDigest" | "XAmzContentChecksumMismatch")
}

/// The headers an answer is read for.
const KEPT_HEADERS: [&str; 8] = [
    "etag",
    "content-length",
    "last-modified",
    "content-range",
    "x-amz-checksum-crc32",
    "x-amz-checksum-sha256",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
];

/// The whole answer (small: XML, or nothing).
fn read_answer(
    response: toolkit::http::Response,
    what: &str,
) -> std::result::Result<Answer, Failure<Error>> {
    let status = response.status;
    let headers = kept_headers(&response);
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).map_err(|e| {
        Failure::Transient(Error::new(
            ErrorKind::Unreachable,
            format!("{what}: the answer broke off: {e}"),
        ))
    })?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The headers of `response` stackvault reads.
pub(crate) fn kept_headers(response: &toolkit::http::Response) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|h| Some((h.to_string(), response.header(h)?.to_owned())))
        .collect()
}

/// The text of the first `<tag>…</tag>` in `xml`, entities unescaped.
pub(crate) fn xml_tag(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(unescape(xml[start..end].trim()))
}

/// XML's five entities (S3 escapes keys and messages with them).
pub(crate) fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

/// ` (Code: Message)` from an S3 XML error body, or a trimmed plain body.
pub(crate) fn s3_error_detail(body: &str) -> String {
    match (xml_tag(body, "Code"), xml_tag(body, "Message")) {
        (Some(code), Some(message)) => format!(" ({code}: {message})"),
        (Some(code), None) => format!(" ({code})"),
        _ if body.trim().is_empty() => String::new(),
        _ => format!(
            " ({})",
            body.trim()
                .chars()
                .take(200)
                .collect::<String>()
                .replace('\n', " ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_one_line() {
        let cases = [
            (
                "<Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>",
                " (AccessDenied: Access Denied.)",
            ),
            ("", ""),
            ("plain text\n", " (plain text)"),
            ("<Error><Code>A&amp;B</Code></Error>", " (A&B)"),
        ];
        for (body, want) in cases {
            assert_eq!(s3_error_detail(body), want);
        }
    }

    #[test]
    fn error_answers_are_classified_by_status_and_code() {
        use ErrorKind::{AlreadyExists, Auth, Integrity, NotFound, Protocol, Unreachable};
        let c = client(true, "http://127.0.0.1:8333");
        // (status, S3 error code, kind, whether a retry may help), one case a line.
        let cases = [
            (400, "BadDigest", Integrity, false),
            (400, "XAmzContentChecksumMismatch", Integrity, false),
            (400, "InvalidArgument", Protocol, false),
            (404, "NoSuchBucket", NotFound, false),
            (403, "AccessDenied", Auth, false),
            (412, "PreconditionFailed", AlreadyExists, false),
            (409, "ConditionalRequestConflict", Unreachable, true),
            (503, "SlowDown", Unreachable, true),
        ];
        for (status, code, kind, transient) in cases {
            let answer = Answer {
                status,
                headers: Vec::new(),
                body: format!("<Error><Code>{code}</Code></Error>").into_bytes(),
            };
            let (got, retried) = match c.classify(&answer, "upload") {
                Failure::Transient(e) => (e, true),
                Failure::Permanent(e) => (e, false),
            };
            assert_eq!((got.kind(), retried), (kind, transient), "{status} {code}");
        }
    }

    fn client(path_style: bool, prefix_endpoint: &str) -> S3Client {
        let mut c = S3Config::new("backups", Some(prefix_endpoint));
        c.path_style = path_style;
        c.access_key = Some("AK".into());
        c.secret_key = Some(toolkit::secret::Secret::new("SK"));
        S3Client::new(c).unwrap()
    }

    #[test]
    fn table_of_urls() {
        let q = |k: &'static str, v: &str| vec![(k, v.to_owned())];
        let cases = [
            (
                true,
                "http://127.0.0.1:8333",
                Some("stack/a b"),
                vec![],
                "http://127.0.0.1:8333/backups/stack/a%20b",
            ),
            (
                true,
                "http://h:9000/",
                None,
                q("uploads", ""),
                "http://h:9000/backups?uploads=",
            ),
            (
                false,
                "https://s3.eu-west-1.amazonaws.com",
                Some("k"),
                vec![],
                "https://backups.s3.eu-west-1.amazonaws.com/k",
            ),
            (
                true,
                "http://h",
                None,
                q("prefix", "stack/x&y"),
                "http://h/backups?prefix=stack%2Fx%26y",
            ),
        ];
        for (path_style, endpoint, path, query, want) in cases {
            assert_eq!(
                client(path_style, endpoint).url(path, &query).as_str(),
                want
            );
        }
    }

    #[test]
    fn a_missing_credential_is_refused_before_any_request() {
        let c = S3Config::new("b", Some("http://h"));
        let err = S3Client::new(c).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::Auth);
    }
}
