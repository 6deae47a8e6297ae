//! A small HTTP/1.1 server on `std::net`, one thread per connection, keep-alive with the
//! real server's 5 s idle timeout.
//!
//! Written by hand rather than on a server crate because the fake must control exactly
//! what goes on the wire: no automatic `Server` or `Content-Type` headers (401 and 404 come
//! without content type), an answer sent *before* reading an oversized JSON body followed
//! by a close, and a download cut off mid-body on request.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::router;
use super::util::{http_date, reason};
use super::Shared;

/// How long an idle keep-alive connection stays open (actix's default, as Qdrant runs it).
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How long a client may pause while sending a request.
const BODY_TIMEOUT: Duration = Duration::from_secs(120);
/// Qdrant's `service.max_request_size_mb` default, applied to JSON bodies.
pub(crate) const JSON_LIMIT: u64 = 32 * 1024 * 1024;
const MAX_HEAD: usize = 64 * 1024;

/// A request as read off the wire.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    /// The path as sent (percent-encoded), without the query.
    pub path: String,
    /// The query string as sent, without `?`.
    pub query: String,
    /// Header names lowercased, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a response carries.
pub(crate) enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from its current position.
    File {
        file: File,
        len: u64,
    },
}

/// A response to write.
pub(crate) struct Response {
    pub status: u16,
    /// Extra headers (`content-length`, `date` and `vary` are added when written).
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Close the connection after this response.
    pub close: bool,
    /// Fault injection: write only this many body bytes, then drop the connection.
    pub cut_after: Option<u64>,
}

impl Response {
    pub fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        Response {
            status,
            headers,
            body: Body::Bytes(body),
            close: false,
            cut_after: None,
        }
    }

    /// `application/json`.
    pub fn json(status: u16, value: &Value) -> Self {
        Self::new(
            status,
            vec![("content-type".into(), "application/json".into())],
            serde_json::to_vec(value).expect("a Value serializes"),
        )
    }

    /// `text/plain; charset=utf-8`.
    pub fn text(status: u16, text: &str) -> Self {
        Self::new(
            status,
            vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            text.as_bytes().to_vec(),
        )
    }

    /// A body without any content type (what the auth middleware sends).
    pub fn bare(status: u16, text: &str) -> Self {
        Self::new(status, Vec::new(), text.as_bytes().to_vec())
    }

    /// No body, no content type: unknown routes and wrong methods.
    pub fn empty(status: u16) -> Self {
        Self::new(status, Vec::new(), Vec::new())
    }

    fn body_len(&self) -> u64 {
        match &self.body {
            Body::Bytes(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }
}

/// The request line and headers, body not read yet.
pub(crate) struct Head {
    pub method: String,
    pub target: String,
    pub http10: bool,
    pub headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        if self.http10 {
            !connection.contains("keep-alive")
        } else {
            connection.contains("close")
        }
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> Result<Option<u64>, ()> {
        match self.header("content-length") {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| ()),
        }
    }
}

enum HeadError {
    /// Clean end of the connection (EOF or idle timeout between requests).
    Closed,
    /// Not HTTP.
    Malformed,
}

fn read_head(reader: &mut BufReader<TcpStream>) -> Result<Head, HeadError> {
    let mut lines = Vec::new();
    let mut total = 0usize;
    loop {
        let mut line = Vec::new();
        let n = reader
            .by_ref()
            .take((MAX_HEAD - total) as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|_| HeadError::Closed)?;
        if n == 0 {
            return Err(if lines.is_empty() {
                HeadError::Closed
            } else {
                HeadError::Malformed
            });
        }
        total += n;
        if total > MAX_HEAD {
            return Err(HeadError::Malformed);
        }
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        if text.is_empty() {
            if lines.is_empty() {
                // Tolerate blank lines before a request (RFC 9112 §2.2).
                continue;
            }
            break;
        }
        lines.push(text);
    }
    let mut parts = lines[0].split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || target.is_empty() {
        return Err(HeadError::Malformed);
    }
    let mut headers = Vec::new();
    for line in &lines[1..] {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HeadError::Malformed);
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(Head {
        method: method.to_owned(),
        target: target.to_owned(),
        http10: version == "HTTP/1.0",
        headers,
    })
}

/// Reads a chunked body; `None` when it grows beyond `limit`.
fn read_chunked(reader: &mut BufReader<TcpStream>, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size_text = line
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let size = u64::from_str_radix(&size_text, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    break;
                }
            }
            return Ok(Some(body));
        }
        if body.len() as u64 + size > limit {
            return Ok(None);
        }
        let start = body.len();
        body.resize(start + size as usize, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

/// Serves one connection until the client closes it, it idles for 5 s, or the fake stops.
pub(crate) fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut writer = stream;
    loop {
        let _ = reader.get_ref().set_read_timeout(Some(KEEP_ALIVE));
        let head = match read_head(&mut reader) {
            Ok(head) => head,
            Err(HeadError::Closed) => return,
            Err(HeadError::Malformed) => {
                let mut response = Response::empty(400);
                response.close = true;
                let _ = write_response(&mut writer, response, true);
                return;
            }
        };
        if shared.is_stopping() {
            return;
        }
        let _ = reader.get_ref().set_read_timeout(Some(BODY_TIMEOUT));
        let close_requested = head.wants_close();
        let (path, query) = match head.target.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (head.target.clone(), String::new()),
        };
        let json_limited = router::json_limited(&shared, &head.method, &path, &head.headers);
        let length = match head.content_length() {
            Ok(length) => length,
            Err(()) => {
                let mut response = Response::empty(400);
                response.close = true;
                let _ = write_response(&mut writer, response, true);
                return;
            }
        };
        if json_limited {
            if let Some(len) = length {
                if len > JSON_LIMIT && !head.chunked() {
                    let mut response = router::json_too_large(Some(len));
                    response.close = true;
                    let _ = write_response(&mut writer, response, true);
                    drain_and_close(&mut reader, &writer);
                    return;
                }
            }
        }
        let expects_body = head.chunked() || length.unwrap_or(0) > 0;
        if expects_body
            && head
                .header("expect")
                .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return;
        }
        let limit = if json_limited { JSON_LIMIT } else { u64::MAX };
        let body = if head.chunked() {
            match read_chunked(&mut reader, limit) {
                Ok(Some(body)) => body,
                Ok(None) => {
                    let mut response = router::json_too_large(None);
                    response.close = true;
                    let _ = write_response(&mut writer, response, true);
                    drain_and_close(&mut reader, &writer);
                    return;
                }
                Err(_) => return,
            }
        } else {
            let len = length.unwrap_or(0);
            let mut body = Vec::new();
            match reader.by_ref().take(len).read_to_end(&mut body) {
                Ok(n) if n as u64 == len => body,
                _ => return,
            }
        };
        let request = Request {
            method: head.method,
            path,
            query,
            headers: head.headers,
            body,
        };
        let response = router::handle(&shared, request);
        // `wants_close` already knows that HTTP/1.0 closes unless asked to keep alive.
        let close = close_requested || response.close;
        match write_response(&mut writer, response, close) {
            Ok(true) => {}
            _ => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        }
        if close {
            let _ = writer.shutdown(Shutdown::Write);
            return;
        }
    }
}

/// After answering early, stop sending, read (and drop) what the client still sends for a
/// moment, so that it sees the answer rather than a reset, then close.
fn drain_and_close(reader: &mut BufReader<TcpStream>, writer: &TcpStream) {
    let _ = writer.shutdown(Shutdown::Write);
    let _ = reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)));
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut sink = [0u8; 64 * 1024];
    while std::time::Instant::now() < deadline {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
}

/// Writes a response; `Ok(false)` when a fault cut it short on purpose.
fn write_response(writer: &mut TcpStream, response: Response, close: bool) -> io::Result<bool> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-length: {}\r\n",
        response.status,
        reason(response.status),
        response.body_len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(
        "vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n",
    );
    head.push_str(&format!("date: {}\r\n", http_date(SystemTime::now())));
    if close || response.close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;
    let cut = response.cut_after;
    match response.body {
        Body::Bytes(bytes) => match cut {
            Some(n) if (n as usize) < bytes.len() => {
                writer.write_all(&bytes[..n as usize])?;
                writer.flush()?;
                return Ok(false);
            }
            _ => writer.write_all(&bytes)?,
        },
        Body::File { file, len } => {
            let send = cut.map_or(len, |n| n.min(len));
            let copied = io::copy(&mut file.take(send), writer)?;
            if copied != send {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
            }
            if send < len {
                writer.flush()?;
                return Ok(false);
            }
        }
    }
    writer.flush()?;
    Ok(true)
}
