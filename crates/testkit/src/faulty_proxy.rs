//! A TCP proxy in front of the test S3 server that answers chosen requests with HTTP 503,
//! to prove retries and multipart aborts against a real server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

/// Which requests fail, and how often.
struct Rule {
    /// Substring of the request line (`PUT /bucket/key?partNumber=2&uploadId=…`).
    pattern: String,
    /// How many more matching requests get a 503 (`usize::MAX`: all of them).
    failures_left: usize,
    /// Matching requests seen (failed or passed).
    hits: usize,
}

/// Forwards to `upstream`, failing requests whose request line contains a pattern.
pub struct FaultyProxy {
    /// `http://127.0.0.1:PORT` to use as the S3 endpoint.
    pub endpoint: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    heads: Arc<Mutex<Vec<String>>>,
    gate: Option<Arc<Gate>>,
}

/// Holds the first request whose line contains `pattern` before it is forwarded, until the
/// test lets it go: puts another client's request between two of this one's, in an order
/// no timing can change.
struct Gate {
    pattern: String,
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    held: bool,
    released: bool,
}

/// What the proxy does besides failing requests.
#[derive(Clone, Default)]
struct Behaviour {
    /// Response headers removed (lowercase names): a server that does not echo them.
    strip: Vec<String>,
    /// Requests whose line contains this get one byte of their body flipped on the way: a
    /// network (or a buggy middlebox) that damages data.
    corrupt: Option<String>,
    /// Answers to requests whose line contains this are cut in the middle of their body
    /// and the connection closed, this many more times: a connection that breaks mid-answer.
    cut: Option<(String, Arc<Mutex<usize>>)>,
    /// Answers to requests whose line contains this are sent 64 KiB at a time, one piece
    /// every 100 ms: a server that keeps the connection alive but barely moves data.
    trickle: Option<String>,
    /// Every request head seen, for tests that look at what was asked (Range headers).
    heads: Arc<Mutex<Vec<String>>>,
    gate: Option<Arc<Gate>>,
}

impl FaultyProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) that answers the first `failures`
    /// requests whose request line contains `pattern` with 503 SlowDown.
    pub fn start(upstream: &str, pattern: &str, failures: usize) -> Self {
        Self::start_with(upstream, &[(pattern, failures)])
    }

    /// Like [`start`](Self::start) with several `(pattern, failures)` rules; the first rule
    /// whose pattern a request line contains decides.
    pub fn start_with(upstream: &str, rules: &[(&str, usize)]) -> Self {
        Self::start_full(upstream, rules, Behaviour::default())
    }

    /// A proxy that fails nothing and removes the response headers `names` from every
    /// answer: an S3 server that does not echo them (e.g. one that verifies no checksums).
    pub fn stripping(upstream: &str, names: &[&str]) -> Self {
        let behaviour = Behaviour {
            strip: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
            ..Behaviour::default()
        };
        Self::start_full(upstream, &[], behaviour)
    }

    /// A proxy that flips one byte in the body of every request whose request line contains
    /// `pattern`, and fails nothing.
    pub fn corrupting(upstream: &str, pattern: &str) -> Self {
        let behaviour = Behaviour {
            corrupt: Some(pattern.to_owned()),
            ..Behaviour::default()
        };
        Self::start_full(upstream, &[], behaviour)
    }

    /// A proxy that cuts the answers to the next `times` requests whose request line
    /// contains `pattern` in the middle of their body, then closes the connection.
    pub fn cutting(upstream: &str, pattern: &str, times: usize) -> Self {
        let behaviour = Behaviour {
            cut: Some((pattern.to_owned(), Arc::new(Mutex::new(times)))),
            ..Behaviour::default()
        };
        Self::start_full(upstream, &[], behaviour)
    }

    /// A proxy that sends the answers to requests whose request line contains `pattern`
    /// 64 KiB every 100 ms (never idle long enough for an idle timeout), and fails nothing.
    pub fn trickling(upstream: &str, pattern: &str) -> Self {
        let behaviour = Behaviour {
            trickle: Some(pattern.to_owned()),
            ..Behaviour::default()
        };
        Self::start_full(upstream, &[], behaviour)
    }

    /// A proxy that holds the first request whose request line contains `pattern` until
    /// [`release`](Self::release), and fails nothing.
    pub fn holding(upstream: &str, pattern: &str) -> Self {
        let behaviour = Behaviour {
            gate: Some(Arc::new(Gate {
                pattern: pattern.to_owned(),
                state: Mutex::default(),
                changed: Condvar::new(),
            })),
            ..Behaviour::default()
        };
        Self::start_full(upstream, &[], behaviour)
    }

    /// Waits until the held request has arrived (a holding proxy only).
    pub fn wait_until_held(&self) {
        let gate = self.gate.as_ref().expect("a holding proxy");
        let state = gate.state.lock().unwrap();
        let (_state, timeout) = gate
            .changed
            .wait_timeout_while(state, std::time::Duration::from_secs(60), |s| !s.held)
            .unwrap();
        assert!(
            !timeout.timed_out(),
            "no request matched {:?} in 60 s",
            gate.pattern
        );
    }

    /// Forwards the held request (and lets any later one through at once).
    pub fn release(&self) {
        let gate = self.gate.as_ref().expect("a holding proxy");
        gate.state.lock().unwrap().released = true;
        gate.changed.notify_all();
    }

    /// The heads (request line and headers) of every request seen so far.
    pub fn request_heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    fn start_full(upstream: &str, rules: &[(&str, usize)], behaviour: Behaviour) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let rules = Arc::new(Mutex::new(
            rules
                .iter()
                .map(|(pattern, failures)| Rule {
                    pattern: pattern.to_string(),
                    failures_left: *failures,
                    hits: 0,
                })
                .collect(),
        ));
        let shared = rules.clone();
        let heads = behaviour.heads.clone();
        let gate = behaviour.gate.clone();
        // The thread lives as long as the test process; the listener is never closed.
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (rules, upstream, behaviour) =
                    (shared.clone(), upstream.clone(), behaviour.clone());
                thread::spawn(move || serve(client, &upstream, &rules, &behaviour));
            }
        });
        FaultyProxy {
            endpoint,
            rules,
            heads,
            gate,
        }
    }

    /// How many requests matched the first pattern so far.
    pub fn hits(&self) -> usize {
        self.rules.lock().unwrap().first().map_or(0, |r| r.hits)
    }

    /// How many requests matched `pattern` so far.
    pub fn hits_of(&self, pattern: &str) -> usize {
        let rules = self.rules.lock().unwrap();
        rules
            .iter()
            .find(|r| r.pattern == pattern)
            .map_or(0, |r| r.hits)
    }
}

/// Serves one client connection, request by request (clients keep connections alive, so
/// every request on it is inspected, not only the first).
fn serve(client: TcpStream, upstream: &str, rules: &Mutex<Vec<Rule>>, behaviour: &Behaviour) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    while let Some(head) = read_head(&mut reader) {
        let mut body = vec![0u8; content_length(&head)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request_line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        behaviour
            .heads
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&head).into_owned());
        let cut = match &behaviour.cut {
            Some((pattern, left)) if request_line.contains(pattern.as_str()) => {
                let mut left = left.lock().unwrap();
                let cut = *left > 0;
                *left = left.saturating_sub(1);
                cut
            }
            _ => false,
        };
        let fail = {
            let mut rules = rules.lock().unwrap();
            match rules.iter_mut().find(|r| request_line.contains(&r.pattern)) {
                Some(rule) => {
                    rule.hits += 1;
                    let fail = rule.failures_left > 0;
                    rule.failures_left = rule.failures_left.saturating_sub(1);
                    fail
                }
                None => false,
            }
        };
        if let Some(gate) = &behaviour.gate {
            if request_line.contains(gate.pattern.as_str()) {
                hold(gate);
            }
        }
        if let Some(pattern) = &behaviour.corrupt {
            if request_line.contains(pattern.as_str()) && !body.is_empty() {
                let middle = body.len() / 2;
                body[middle] ^= 0x01;
            }
        }
        let answer = if fail {
            let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        } else {
            match forward(upstream, &head, &body) {
                Some(answer) => strip_headers(answer, &behaviour.strip),
                None => return,
            }
        };
        if cut {
            // Headers and half the body, then the connection breaks.
            let body_start = answer
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(answer.len(), |p| p + 4);
            let half = body_start + (answer.len() - body_start) / 2;
            let _ = client.write_all(&answer[..half]);
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
        let trickle = behaviour
            .trickle
            .as_ref()
            .is_some_and(|p| request_line.contains(p.as_str()));
        if trickle {
            for piece in answer.chunks(64 << 10) {
                if client.write_all(piece).is_err() {
                    return;
                }
                thread::sleep(std::time::Duration::from_millis(100));
            }
            continue;
        }
        if client.write_all(&answer).is_err() {
            return;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// Holds the first request that reaches `gate` until the test releases it.
fn hold(gate: &Gate) {
    let mut state = gate.state.lock().unwrap();
    if state.held {
        return;
    }
    state.held = true;
    gate.changed.notify_all();
    let _released = gate.changed.wait_while(state, |s| !s.released).unwrap();
}

/// Sends one request upstream on a connection of its own (`Connection: close`, so the
/// answer ends where the connection does) and returns the whole answer.
fn forward(upstream: &str, head: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).ok()?;
    let text = String::from_utf8_lossy(head);
    let mut lines: Vec<&str> = text
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    let head = format!("{}\r\n\r\n", lines.join("\r\n"));
    server.write_all(head.as_bytes()).ok()?;
    server.write_all(body).ok()?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).ok()?;
    Some(answer)
}

/// `answer` without the headers named in `strip`.
fn strip_headers(answer: Vec<u8>, strip: &[String]) -> Vec<u8> {
    if strip.is_empty() {
        return answer;
    }
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer;
    };
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let kept: Vec<&str> = head
        .split("\r\n")
        .filter(|line| {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            !strip.contains(&name)
        })
        .collect();
    let mut out = kept.join("\r\n").into_bytes();
    out.extend_from_slice(&answer[end..]);
    out
}

/// The request head, through the blank line.
fn read_head(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            return Some(head);
        }
        if head.len() > 1 << 20 {
            return None;
        }
    }
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}
