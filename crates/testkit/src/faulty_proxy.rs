//! A TCP proxy in front of the test S3 server that answers chosen requests with HTTP 503,
//! to prove retries and multipart aborts against a real server.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
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
    rule: Arc<Mutex<Rule>>,
}

impl FaultyProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) that answers the first `failures`
    /// requests whose request line contains `pattern` with 503 SlowDown.
    pub fn start(upstream: &str, pattern: &str, failures: usize) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let rule = Arc::new(Mutex::new(Rule {
            pattern: pattern.to_owned(),
            failures_left: failures,
            hits: 0,
        }));
        let shared = rule.clone();
        // The thread lives as long as the test process; the listener is never closed.
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (rule, upstream) = (shared.clone(), upstream.clone());
                thread::spawn(move || serve(client, &upstream, &rule));
            }
        });
        FaultyProxy { endpoint, rule }
    }

    /// How many requests matched the pattern so far.
    pub fn hits(&self) -> usize {
        self.rule.lock().unwrap().hits
    }
}

fn serve(mut client: TcpStream, upstream: &str, rule: &Mutex<Rule>) {
    let Some((head, body_start)) = read_head(&mut client) else {
        return;
    };
    let request_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let fail = {
        let mut rule = rule.lock().unwrap();
        if request_line.contains(&rule.pattern) {
            rule.hits += 1;
            if rule.failures_left > 0 {
                rule.failures_left = rule.failures_left.saturating_sub(1);
                true
            } else {
                false
            }
        } else {
            false
        }
    };
    if fail {
        // Read the body first, as a real server would, so the client sees the 503.
        let length = content_length(&head).saturating_sub(body_start.len());
        let _ = std::io::copy(&mut (&client).take(length as u64), &mut std::io::sink());
        let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let _ = write!(
            client,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    if server
        .write_all(&head)
        .and_then(|()| server.write_all(&body_start))
        .is_err()
    {
        return;
    }
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = up.join();
}

/// The request head (through the blank line) and any body bytes read with it.
fn read_head(client: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = client.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = data.split_off(end + 4);
            return Some((data, body));
        }
        if data.len() > 1 << 20 {
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
