//! Replays every recorded exchange with a real Qdrant 1.17.1
//! (`tests/fixtures/reference/qdrant-1.17.1/http-exchanges.ndjson`) against the fake, in
//! order, and requires the same answers: the same status, the same `content-type` (or none),
//! a body of the same shape — and, beyond shape, the same values wherever they do not
//! depend on the run (counts, ids, payloads, vectors, configs, operation ids, flags), and the
//! same error text after the normalisations listed below.
//!
//! Two fakes stand for the two recorded servers: the open instance, and the auth instance
//! with keys `secret-key` / `ro-key` (the recording masks them as `<secret-key>` /
//! `<ro-key>`). The recover-by-URL source is a local HTTP server started here, serving a
//! real earlier snapshot of the fake (`S1.snapshot`, the download recorded as
//! `snapshot-download`) and a non-tar `garbage.snapshot`.
//!
//! Normalisations, all of values that change on every run of a real server too:
//! - snapshot names: the fake's own, mapped to the recorded ones (learned from create
//!   answers, and for `wait=false` creates from the files that appeared); checksums
//!   likewise; the fake's clock is set to the recorded second before each create, so
//!   same-second collisions happen where they happened;
//! - paths: the fake's storage root stands for `/var/lib/qdrant`, its ports for the
//!   recorded ones, random temp-dir suffixes and segment UUIDs are masked;
//! - snapshot lists are compared sorted by name (the real order is directory order);
//! - `time`, `size`, `creation_time` and `checksum` values are not compared (shape only);
//! - in two error messages the serde column shifts with the length of the fake's path.
//!
//! Request bodies the recording describes in words (`<multipart: field snapshot, filename
//! …, N bytes tar>`) are rebuilt from what the fake served earlier, as the notes say.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use testkit::fake_qdrant::FakeQdrant;
use testkit::replay::{header, load, reference_path, same_shape, Exchange};

const BOUNDARY: &str = "----qdrantRefBoundary7MA4YWxkTrZu0gW";
const OPEN_PEER: &str = "8456338021989372";
const AUTH_PEER: &str = "5008817291495477";

/// Exchanges whose body is not compared (status and content type still are), and why.
const BODY_NOT_COMPARED: [(&str, &str); 3] = [
    (
        "metrics",
        "Prometheus text of process internals (memory, allocator); the fake writes a few gauges",
    ),
    (
        "telemetry",
        "run-dependent ids, timings and per-route statistics, trimmed in the recording",
    ),
    (
        "auth-telemetry-ro",
        "run-dependent ids, timings and per-route statistics, trimmed in the recording",
    ),
];

/// Error messages equal once the serde column is ignored: the request carried the fake's
/// storage path, longer than `/var/lib/qdrant`, before the error position.
const COLUMN_SHIFTS: [&str; 2] = ["recover-location-plain-path", "recover-priority-invalid"];

// --- a raw HTTP/1.1 client with keep-alive ---------------------------------------------

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Client {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        Client { addr, conn: None }
    }

    fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Answer {
        for attempt in 0..2 {
            if self.conn.is_none() {
                let stream = TcpStream::connect(self.addr).expect("connect to the fake");
                stream.set_nodelay(true).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(120)))
                    .unwrap();
                self.conn = Some(BufReader::new(stream));
            }
            match self.try_send(method, target, headers, body) {
                Some(answer) => {
                    if answer
                        .header("connection")
                        .is_some_and(|c| c.eq_ignore_ascii_case("close"))
                    {
                        self.conn = None;
                    }
                    return answer;
                }
                // The server closed an idle keep-alive connection: once more on a new one.
                None if attempt == 0 => self.conn = None,
                None => break,
            }
        }
        panic!("no answer to {method} {target}");
    }

    fn try_send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Option<Answer> {
        let conn = self.conn.as_mut()?;
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nAccept-Encoding: identity\r\n",
            self.addr
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let stream = conn.get_mut();
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        read_answer(conn)
    }
}

fn read_answer(conn: &mut BufReader<TcpStream>) -> Option<Answer> {
    loop {
        let mut status_line = String::new();
        if conn.read_line(&mut status_line).ok()? == 0 {
            return None;
        }
        let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (k, v) = line.split_once(':')?;
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        if status == 100 {
            continue;
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).ok()?;
        return Some(Answer {
            status,
            headers,
            body,
        });
    }
}

// --- the recover-by-URL source ----------------------------------------------------------

fn start_source(files: Arc<Mutex<HashMap<String, Vec<u8>>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let files = files.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                let path = request_line.split(' ').nth(1).unwrap_or("/");
                let file = files
                    .lock()
                    .unwrap()
                    .get(path.trim_start_matches('/'))
                    .cloned();
                let mut stream = stream;
                let _ = match file {
                    Some(bytes) => stream
                        .write_all(
                            format!(
                                "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                                bytes.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| stream.write_all(&bytes)),
                    None => stream.write_all(
                        b"HTTP/1.0 404 File not found\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n",
                    ),
                };
            });
        }
    });
    addr
}

// --- request bodies ---------------------------------------------------------------------

/// JSON as Python's `json.dumps` writes it (the recorder's client): `", "` and `": "`,
/// non-ASCII escaped. Error positions in the answers depend on it.
fn py_json(v: &Value) -> String {
    fn string(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => string(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    walk(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (k, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    string(k, out);
                    out.push_str(": ");
                    walk(item, out);
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    walk(v, &mut out);
    out
}

fn multipart(field: &str, filename: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut head = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"");
    if let Some(f) = filename {
        head.push_str(&format!("; filename=\"{f}\""));
    }
    head.push_str("\r\nContent-Type: application/octet-stream\r\n\r\n");
    let mut body = head.into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// 3700 bytes of ASCII text, not a tar.
fn garbage() -> Vec<u8> {
    let line = b"This is not a snapshot archive, only ASCII text for the replay test.\n";
    line.iter().copied().cycle().take(3700).collect()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

fn number_before(text: &str, word: &str) -> Option<usize> {
    let end = text.find(word)?;
    text[..end].split_whitespace().last()?.parse().ok()
}

// --- the replay ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Instance {
    Open,
    Auth,
}

struct Replay {
    open: FakeQdrant,
    auth: FakeQdrant,
    open_client: Client,
    auth_client: Client,
    source: SocketAddr,
    source_files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    /// Recorded snapshot name → the fake's.
    names: HashMap<String, String>,
    /// Recorded checksum → the fake's (lowercase).
    checksums: HashMap<String, String>,
    /// What the fake served for a download, by the recorded size.
    downloads: HashMap<u64, Vec<u8>>,
    /// Names the fake gave to snapshots created with `wait=false`, by instance and
    /// collection (`""`: full storage), not yet matched to recorded ones.
    pending: HashMap<(Instance, String), VecDeque<String>>,
}

/// The time in a snapshot name (`…-2026-11-26-10-14-24.snapshot`).
fn name_time(name: &str) -> Option<SystemTime> {
    let stem = name.strip_suffix(".snapshot")?;
    if stem.len() < 19 {
        return None;
    }
    let ts = &stem[stem.len() - 19..];
    let p: Vec<i64> = ts
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [y, mo, d, h, mi, s] = p.as_slice() else {
        return None;
    };
    let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
    humantime::parse_rfc3339(&text).ok()
}

fn is_snapshot_create(method: &str, path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or("");
    if method != "POST" {
        return None;
    }
    if path == "/snapshots" {
        return Some(String::new());
    }
    let rest = path.strip_prefix("/collections/")?;
    let collection = rest.strip_suffix("/snapshots")?;
    (!collection.contains('/')).then(|| collection.to_owned())
}

impl Replay {
    fn fake(&self, instance: Instance) -> &FakeQdrant {
        match instance {
            Instance::Open => &self.open,
            Instance::Auth => &self.auth,
        }
    }

    fn snapshot_files(&self, instance: Instance, collection: &str) -> Vec<String> {
        let fake = self.fake(instance);
        if collection.is_empty() {
            fake.full_snapshot_files()
        } else {
            fake.snapshot_files(collection)
        }
    }

    /// Recorded text with the fake's names, checksums, addresses and paths.
    fn to_fake(&self, instance: Instance, text: &str) -> String {
        let mut out = text.to_owned();
        let mut names: Vec<(&String, &String)> = self.names.iter().collect();
        names.sort_by_key(|(recorded, _)| std::cmp::Reverse(recorded.len()));
        for (recorded, fake) in names {
            out = out.replace(recorded.as_str(), fake);
        }
        for (recorded, fake) in &self.checksums {
            out = out.replace(recorded.as_str(), fake);
            out = out.replace(&recorded.to_uppercase(), &fake.to_uppercase());
        }
        out = out
            .replace("127.0.0.1:56380", &self.source.to_string())
            .replace("127.0.0.1:56333", &self.open.addr().to_string())
            .replace("127.0.0.1:56433", &self.auth.addr().to_string())
            .replace(
                "/var/lib/qdrant",
                &self.fake(instance).base_dir().display().to_string(),
            )
            .replace("<secret-key>", "secret-key")
            .replace("<ro-key>", "ro-key")
            .replace("<wrong>", "wrong-key");
        out
    }

    /// The fake's text in the recording's terms.
    fn to_recorded(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for fake in [&self.open, &self.auth] {
            out = out.replace(&fake.base_dir().display().to_string(), "/var/lib/qdrant");
        }
        let mut names: Vec<(&String, &String)> = self.names.iter().collect();
        names.sort_by_key(|(_, fake)| std::cmp::Reverse(fake.len()));
        for (recorded, fake) in names {
            out = out.replace(fake.as_str(), recorded);
        }
        for (recorded, fake) in &self.checksums {
            out = out.replace(fake.as_str(), recorded);
        }
        out.replace(&self.open.peer_id().to_string(), OPEN_PEER)
            .replace(&self.auth.peer_id().to_string(), AUTH_PEER)
            .replace(&self.source.to_string(), "127.0.0.1:56380")
            .replace(&self.open.addr().to_string(), "127.0.0.1:56333")
            .replace(&self.auth.addr().to_string(), "127.0.0.1:56433")
    }

    fn fake_name_to_recorded(&self, fake: &str) -> Option<String> {
        self.names
            .iter()
            .find(|(_, f)| f.as_str() == fake)
            .map(|(r, _)| r.clone())
    }

    fn body_for(&self, instance: Instance, ex: &Exchange) -> Vec<u8> {
        match &ex.request.body {
            Value::Null => Vec::new(),
            Value::String(description) => self.described_body(instance, description),
            json => self.to_fake(instance, &py_json(json)).into_bytes(),
        }
    }

    fn described_body(&self, instance: Instance, d: &str) -> Vec<u8> {
        if let Some(raw) = d
            .split("   <- raw text")
            .next()
            .filter(|_| d.contains("<- raw text"))
        {
            return raw.as_bytes().to_vec();
        }
        let inner = d.trim_start_matches('<').trim_end_matches('>');
        if let Some(rest) = inner.strip_prefix("raw ") {
            let n = number_before(rest, "bytes").expect("size of a raw body");
            return self.downloads[&(n as u64)].clone();
        }
        let rest = inner
            .strip_prefix("multipart: ")
            .unwrap_or_else(|| panic!("unknown body description {d}"));
        if rest.starts_with("no parts at all") {
            return format!("--{BOUNDARY}--\r\n").into_bytes();
        }
        let parts: Vec<&str> = rest.split(", ").collect();
        let field = parts[0].strip_prefix("field ").expect("field name");
        let mut filename = Some("test_col.snapshot".to_owned());
        let mut data = None;
        for part in &parts[1..] {
            if let Some(f) = part.strip_prefix("filename ") {
                filename = Some(self.to_fake(instance, f));
            } else if part.starts_with("NO filename") {
                filename = None;
            } else if part.contains("first half of a") {
                let total = number_before(part, "byte tar").expect("size of the whole tar");
                let whole = &self.downloads[&(total as u64)];
                data = Some(whole[..whole.len() / 2].to_vec());
            } else if part.ends_with("bytes tar") {
                let n = number_before(part, "bytes").unwrap();
                data = Some(self.downloads[&(n as u64)].clone());
            } else if part.contains("random") {
                data = Some(random_bytes(number_before(part, "bytes").unwrap()));
            } else if part.contains("ASCII") {
                data = Some(garbage());
            } else if part == &"0 bytes" {
                data = Some(Vec::new());
            } else if part == &"1 byte" {
                data = Some(b"x".to_vec());
            }
        }
        multipart(field, filename.as_deref(), &data.expect("body data"))
    }

    fn headers_for(&self, instance: Instance, ex: &Exchange) -> Vec<(String, String)> {
        ex.request
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
            .map(|(k, v)| (k.clone(), self.to_fake(instance, v.as_str().unwrap_or(""))))
            .collect()
    }

    /// Learns names and checksums from a create answer, and what a download served.
    fn learn(&mut self, ex: &Exchange, answer: &Answer, fake_body: &Value) {
        let recorded = &ex.response.body;
        if let (Some(r), Some(f)) = (
            recorded["result"]["name"].as_str(),
            fake_body["result"]["name"].as_str(),
        ) {
            self.names.insert(r.to_owned(), f.to_owned());
            if let (Some(rc), Some(fc)) = (
                recorded["result"]["checksum"].as_str(),
                fake_body["result"]["checksum"].as_str(),
            ) {
                self.checksums.insert(rc.to_owned(), fc.to_owned());
            }
        }
        if let Some(size) = recorded["binary_bytes"].as_u64() {
            self.downloads
                .entry(size)
                .or_insert_with(|| answer.body.clone());
        }
    }

    /// Matches names in a recorded snapshot list to the fake's, where a `wait=false` create
    /// left them unknown.
    fn learn_from_list(&mut self, instance: Instance, collection: &str, recorded: &Value) {
        let Some(entries) = recorded["result"].as_array() else {
            return;
        };
        for entry in entries {
            let Some(name) = entry["name"].as_str() else {
                continue;
            };
            if self.names.contains_key(name) || name_time(name).is_none() {
                continue;
            }
            if let Some(fake) = self
                .pending
                .get_mut(&(instance, collection.to_owned()))
                .and_then(VecDeque::pop_front)
            {
                self.names.insert(name.to_owned(), fake);
            }
        }
    }
}

/// The recorded body of a fake answer, as the recorder wrote bodies.
fn recorded_form(answer: &Answer) -> Value {
    if answer.body.is_empty() {
        return Value::Null;
    }
    match answer.header("content-type") {
        Some("application/json") => serde_json::from_slice(&answer.body)
            .unwrap_or_else(|e| panic!("fake sent bad JSON: {e}")),
        Some("application/octet-stream") => json!({
            "binary_bytes": answer.body.len(),
            "first_bytes_hex": answer.body.iter().take(64).map(|b| format!("{b:02x}")).collect::<String>(),
            "sha256": sha256(&answer.body),
        }),
        _ => json!({"text": String::from_utf8_lossy(&answer.body)}),
    }
}

fn sha256(data: &[u8]) -> String {
    manifest::sha256::Sha256::of(data).to_string()
}

/// Masks what differs between any two runs of a real server inside error texts: temp-dir
/// suffixes and UUIDs.
fn mask_random(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("-recovery-") {
        let end = i + "-recovery-".len();
        out.push_str(&rest[..end]);
        out.push_str("XXXXXX");
        rest = &rest[(end + 6).min(rest.len())..];
    }
    out.push_str(rest);
    // UUIDs: 8-4-4-4-12 hex.
    let bytes: Vec<char> = out.chars().collect();
    let mut masked = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() {
            let candidate: String = bytes[i..i + 36].iter().collect();
            let is_uuid = candidate.char_indices().all(|(j, c)| {
                if [8, 13, 18, 23].contains(&j) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
            if is_uuid {
                masked.push_str("<uuid>");
                i += 36;
                continue;
            }
        }
        masked.push(bytes[i]);
        i += 1;
    }
    masked
}

fn without_columns(text: &str) -> String {
    let mut out = String::new();
    let mut parts = text.split(" column ");
    out.push_str(parts.next().unwrap_or(""));
    for part in parts {
        out.push_str(" column N");
        out.push_str(part.trim_start_matches(|c: char| c.is_ascii_digit()));
    }
    out
}

/// Sorts a snapshot list by name (the real order is directory order).
fn sort_snapshot_list(body: &mut Value, rename: &dyn Fn(&str) -> String) {
    if let Some(list) = body.get_mut("result").and_then(Value::as_array_mut) {
        if list
            .iter()
            .all(|e| e.get("name").is_some() && e.get("size").is_some())
        {
            list.sort_by_key(|e| rename(e["name"].as_str().unwrap_or("")));
        }
    }
}

const RUN_DEPENDENT: [&str; 4] = ["time", "size", "creation_time", "checksum"];

/// Values equal, but for run-dependent keys; names already mapped.
fn same_values(
    path: &str,
    expected: &Value,
    actual: &Value,
    rename: &dyn Fn(&str) -> String,
    out: &mut Vec<String>,
) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                if RUN_DEPENDENT.contains(&k.as_str()) {
                    continue;
                }
                if let Some(av) = a.get(k) {
                    same_values(&format!("{path}.{k}"), ev, av, rename, out);
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{path}: {} elements expected, {} found",
                    e.len(),
                    a.len()
                ));
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                same_values(&format!("{path}[{i}]"), ev, av, rename, out);
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (e.as_f64().unwrap(), a.as_f64().unwrap());
            if (e - a).abs() > 1e-6 * e.abs().max(1.0) {
                out.push(format!("{path}: {e} expected, {a} found"));
            }
        }
        (Value::String(e), Value::String(a)) => {
            if path.ends_with(".status.error") {
                return; // compared on its own, with the text normalisations
            }
            let a = rename(a);
            if *e != a {
                out.push(format!("{path}: {e:?} expected, {a:?} found"));
            }
        }
        (e, a) => {
            if e != a {
                out.push(format!("{path}: {e} expected, {a} found"));
            }
        }
    }
}

fn send_oversized_json(addr: SocketAddr, ex: &Exchange) -> Answer {
    // As the recorder did, on a raw socket: the head, then the body until the server answers.
    let length: usize = header(&ex.request.headers, "content-length")
        .and_then(|l| l.parse().ok())
        .expect("recorded content-length");
    let point =
        r#"{"points": [{"id": 9000, "vector": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], "pad": ""#;
    let mut body = point.as_bytes().to_vec();
    body.resize(length - 4, b'x');
    body.extend_from_slice(b"\"}]}");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: identity\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n",
        ex.request.method, ex.request.path
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The first MiB only: the server answers before reading and closes; a client that
    // kept writing would see EPIPE or a reset, as the recording notes.
    let _ = stream.write_all(&body[..1 << 20]);
    read_answer(&mut BufReader::new(stream)).expect("an answer before the body was read")
}

#[test]
fn replays_the_recorded_qdrant_exchanges() {
    let exchanges = load(&reference_path("qdrant-1.17.1/http-exchanges.ndjson"));
    assert_eq!(exchanges.len(), 250);

    let open = FakeQdrant::start();
    let auth = FakeQdrant::builder()
        .api_key("secret-key")
        .read_only_key("ro-key")
        .start();
    // The final recording started at 10:14:22 UTC.
    let start = humantime::parse_rfc3339("2026-11-26T10:14:22Z").unwrap();
    open.freeze_clock(start);
    auth.freeze_clock(start);
    let source_files = Arc::new(Mutex::new(HashMap::new()));
    source_files
        .lock()
        .unwrap()
        .insert("garbage.snapshot".to_owned(), garbage());
    let source = start_source(source_files.clone());
    let mut replay = Replay {
        open_client: Client::new(open.addr()),
        auth_client: Client::new(auth.addr()),
        open,
        auth,
        source,
        source_files,
        names: HashMap::new(),
        checksums: HashMap::new(),
        downloads: HashMap::new(),
        pending: HashMap::new(),
    };

    let mut failures: Vec<String> = Vec::new();
    let mut compared_fully = 0;
    let mut compared_status_only = Vec::new();
    let mut messages_compared = 0;

    for (index, ex) in exchanges.iter().enumerate() {
        let instance = if ex.extra["note"]
            .as_str()
            .unwrap_or("")
            .starts_with("[auth instance]")
        {
            Instance::Auth
        } else {
            Instance::Open
        };
        let method = ex.request.method.as_str();
        let target = replay.to_fake(instance, &ex.request.path);

        // The clock: the recorded second of a create where the answer tells it, one second
        // on otherwise.
        let create_of = is_snapshot_create(method, &ex.request.path);
        let mut before = Vec::new();
        if let Some(collection) = &create_of {
            let fake = replay.fake(instance);
            match ex.response.body["result"]["name"]
                .as_str()
                .and_then(name_time)
            {
                Some(t) => fake.freeze_clock(t),
                None => fake.freeze_clock(fake.now() + Duration::from_secs(1)),
            }
            before = replay.snapshot_files(instance, collection);
        }

        let answer = if ex.name == "json-body-over-32MiB" {
            send_oversized_json(replay.fake(instance).addr(), ex)
        } else {
            let headers = replay.headers_for(instance, ex);
            let body = replay.body_for(instance, ex);
            let rebuilt = py_json(&ex.request.body)
                .replace("<secret-key>", "secret-key")
                .replace("<ro-key>", "ro-key");
            if let (Value::Object(_), Some(len), false) = (
                &ex.request.body,
                header(&ex.request.headers, "content-length"),
                // The recorder rewrote its temp dir to this path after sending, and masked
                // a wrong key of unknown length.
                rebuilt.contains("/var/lib/qdrant") || rebuilt.contains("<wrong>"),
            ) {
                // The rebuilt JSON is byte for byte what was sent, but for substituted values.
                assert_eq!(
                    rebuilt.len().to_string(),
                    len,
                    "#{index} {}: request body not rebuilt exactly",
                    ex.name
                );
            }
            let client = match instance {
                Instance::Open => &mut replay.open_client,
                Instance::Auth => &mut replay.auth_client,
            };
            client.send(method, &target, &headers, &body)
        };
        // Work a `wait=false` request started ends before the next request, as the
        // recorder's follow-up checks waited for it.
        replay.open.settle();
        replay.auth.settle();

        if let Some(collection) = &create_of {
            if ex.response.status == 202 {
                let after = replay.snapshot_files(instance, collection);
                let new: Vec<String> = after
                    .into_iter()
                    .filter(|f| f.ends_with(".snapshot") && !before.contains(f))
                    .collect();
                replay
                    .pending
                    .entry((instance, collection.clone()))
                    .or_default()
                    .extend(new);
            }
        }

        let fake_body = recorded_form(&answer);

        replay.learn(ex, &answer, &fake_body);
        if let Some(rest) = ex.request.path.strip_prefix("/collections/") {
            if method == "GET" {
                if let Some(collection) = rest.split('?').next().unwrap().strip_suffix("/snapshots")
                {
                    replay.learn_from_list(instance, collection, &ex.response.body);
                }
            }
        }
        if method == "GET" && ex.request.path == "/snapshots" {
            replay.learn_from_list(instance, "", &ex.response.body);
        }
        if ex.name == "snapshot-download" {
            // S1: the snapshot the recorder later served over HTTP.
            replay
                .source_files
                .lock()
                .unwrap()
                .insert("S1.snapshot".to_owned(), answer.body.clone());
        }

        let mut problems = Vec::new();
        if answer.status != ex.response.status {
            problems.push(format!(
                "status {} expected, {} found",
                ex.response.status, answer.status
            ));
        }
        let expected_type = ex.response.content_type();
        if answer.header("content-type") != expected_type {
            problems.push(format!(
                "content-type {expected_type:?} expected, {:?} found",
                answer.header("content-type")
            ));
        }
        if let Some((_, why)) = BODY_NOT_COMPARED.iter().find(|(n, _)| *n == ex.name) {
            compared_status_only.push(format!("{} ({why})", ex.name));
        } else {
            let rename = |s: &str| {
                replay
                    .fake_name_to_recorded(s)
                    .unwrap_or_else(|| s.to_owned())
            };
            let mut expected = ex.response.body.clone();
            let mut actual = fake_body.clone();
            match &expected {
                Value::Object(o) if o.contains_key("text") => {
                    let want = o["text"].as_str().unwrap_or("");
                    match actual.get("text").and_then(Value::as_str) {
                        Some(got) if !actual.as_object().unwrap().contains_key("binary_bytes") => {
                            let got = replay.to_recorded(got);
                            if mask_random(&got) != mask_random(want) {
                                problems.push(format!("text {want:?} expected, {got:?} found"));
                            }
                        }
                        _ => problems.push(format!("text body expected, {actual} found")),
                    }
                }
                Value::Object(o) if o.contains_key("binary_bytes") => {
                    if let Err(e) = same_shape(&expected, &actual) {
                        problems.push(e);
                    }
                    let n = actual["binary_bytes"].as_u64().unwrap_or(0);
                    if (ex.request.headers.contains_key("range") || o["binary_bytes"] == 64)
                        && o["binary_bytes"].as_u64() != Some(n)
                    {
                        problems.push(format!("{} bytes expected, {n} found", o["binary_bytes"]));
                    }
                    // What was downloaded is what its checksum said.
                    if let Some(fake_checksum) =
                        o["sha256"].as_str().and_then(|s| replay.checksums.get(s))
                    {
                        if ex.request.headers.get("range").is_none()
                            && actual["sha256"] != *fake_checksum
                        {
                            problems.push(
                                "downloaded bytes do not match the snapshot's checksum".into(),
                            );
                        }
                    }
                }
                _ => {
                    sort_snapshot_list(&mut expected, &|s| s.to_owned());
                    sort_snapshot_list(&mut actual, &rename);
                    if let Err(e) = same_shape(&expected, &actual) {
                        problems.push(e);
                    } else {
                        same_values("$", &expected, &actual, &rename, &mut problems);
                    }
                    if let (Some(want), Some(got)) = (
                        expected["status"]["error"].as_str(),
                        actual["status"]["error"].as_str(),
                    ) {
                        messages_compared += 1;
                        let mut want = mask_random(want);
                        let mut got = mask_random(&replay.to_recorded(got));
                        if COLUMN_SHIFTS.contains(&ex.name.as_str()) {
                            want = without_columns(&want);
                            got = without_columns(&got);
                        }
                        if want != got {
                            problems.push(format!("error {want:?} expected, {got:?} found"));
                        }
                    }
                }
            }
            compared_fully += 1;
        }
        if !problems.is_empty() {
            failures.push(format!(
                "#{index} {} ({} {}): {}",
                ex.name,
                method,
                ex.request.path,
                problems.join("; ")
            ));
        }
    }

    let mut by_route = BTreeMap::new();
    for (route, n) in replay
        .open
        .request_counts()
        .into_iter()
        .chain(replay.auth.request_counts())
    {
        *by_route.entry(route).or_insert(0) += n;
    }
    println!(
        "replayed {} exchanges: {compared_fully} compared in full (status, content type, body \
         shape and run-independent values; {messages_compared} error texts), {} by status and \
         content type only:",
        exchanges.len(),
        compared_status_only.len()
    );
    for s in &compared_status_only {
        println!("  - {s}");
    }
    println!("requests per route: {by_route:?}");
    assert!(
        failures.is_empty(),
        "{} of {} exchanges differ from the real server:\n{}",
        failures.len(),
        exchanges.len(),
        failures.join("\n")
    );
}

#[test]
fn python_style_json_matches_the_recorded_lengths() {
    let body = json!({"vectors": {"size": 8, "distance": "Cosine"}});
    assert_eq!(py_json(&body).len(), 46);
    assert_eq!(
        name_time("x-1-2026-11-26-10-14-24.snapshot"),
        humantime::parse_rfc3339("2026-11-26T10:14:24Z").ok()
    );
}
