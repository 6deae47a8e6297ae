//! Replays every recorded exchange of `neo4j-5.3/http-exchanges.ndjson`, in order, against
//! the fake HTTP API, and requires for each: the same status, the same content type, the
//! same framing (Content-Length or chunked), a body of the same shape, and — stricter than
//! the shape — the same error codes and messages, result columns, stats, notifications,
//! transaction ids (Location, commit URL), `transaction.expires` (the fake's clock follows
//! the recorded request times) and, except for the four exchanges of `VALUES_DIFFER`, the
//! same row and meta values (node ids and element ids included).
//!
//! The fake starts as the recorded server did: the test graph plus the `:RefBytes` node, the
//! recorded database ids, transaction ids from 3. Between the records of the admin run the
//! server state is set as the admin steps left it (see `phase_setup`).

use base64::Engine;
use serde_json::Value;
use testkit::fake_neo4j::{self, client, fixture, FakeNeo4j};
use testkit::replay::{self, same_shape, Exchange};

const PASSWORD: &str = "testpassword";

/// Exchanges whose `meta` lists are compared as multisets (by the shape of their entries)
/// instead of position by position, and why.
const META_AS_MULTISET: &[(&str, &str)] = &[(
    "values-node-all-types-read",
    "Neo4j iterates a node's properties in the order of its property-record chain, which \
     comes from hash maps keyed by property-key ids inside the kernel; the fake returns \
     maps in java.util.HashMap order of the properties' insertion order, which differs \
     inside one hash bucket (`key` and `pc2` here), so the flattened meta of `properties(n)` \
     holds the same entries in another order",
)];

/// Exchanges whose row or meta values are not compared (shapes still are), and why.
const VALUES_DIFFER: &[(&str, &str)] = &[
    ("values-node-all-types-read", "keys(n) follows Neo4j's property-record chain order"),
    ("show-databases-yield-all-system", "serverID is random per server, and the fake reports the creation date of db.info() as creationTime"),
    ("db-property-keys", "property key tokens are created in the iteration order of Neo4j's internal maps"),
    ("admin-phase-counts-after-failed-load-start", "the new database gets a random id and the current time"),
];

/// `results[].data[].{row, meta}` of a body; maps compare without order.
fn values(v: &Value) -> Vec<Value> {
    v.get("results")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .flat_map(|r| r["data"].as_array().cloned().unwrap_or_default())
                .map(|d| serde_json::json!([d.get("row"), d.get("meta")]))
                .collect()
        })
        .unwrap_or_default()
}

/// Strings over 2,000 characters cut as the recorder cut them.
fn truncate_like_recorder(v: &mut Value) {
    match v {
        Value::String(s) if s.chars().count() > 2000 => {
            let n = s.chars().count();
            *s = format!(
                "{}...<truncated by recorder: original length {n} chars>",
                s.chars().take(2000).collect::<String>()
            );
        }
        Value::Array(a) => a.iter_mut().for_each(truncate_like_recorder),
        Value::Object(o) => o.values_mut().for_each(truncate_like_recorder),
        _ => {}
    }
}

fn shape_key(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<String> = o
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}:{}",
                        if k == "type" {
                            v.to_string()
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            keys.sort();
            keys.join(",")
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(shape_key).collect::<Vec<_>>().join(";")
        ),
        other => other.to_string().chars().take(1).collect(),
    }
}

fn sort_meta(v: &mut Value) {
    if let Some(results) = v.get_mut("results").and_then(Value::as_array_mut) {
        for r in results {
            if let Some(data) = r.get_mut("data").and_then(Value::as_array_mut) {
                for row in data {
                    if let Some(Value::Array(meta)) = row.get_mut("meta") {
                        meta.sort_by_key(shape_key);
                    }
                }
            }
        }
    }
}

fn auth(placeholder: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    match placeholder {
        "Basic <neo4j:testpassword>" => format!("Basic {}", b64("neo4j:testpassword")),
        "Basic <wrong>" => format!("Basic {}", b64("neo4j:wrongpassword")),
        other => other.to_owned(),
    }
}

/// Strings the recorder cut to 2,000 characters are rebuilt from their repeating pattern.
fn untruncate(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Some(i) = s.find("...<truncated by recorder: original length ") {
                let n: usize = s[i..]
                    .trim_start_matches("...<truncated by recorder: original length ")
                    .trim_end_matches(" chars>")
                    .parse()
                    .unwrap();
                let prefix: Vec<char> = s[..i].chars().collect();
                let period = (1..=prefix.len())
                    .find(|p| prefix.iter().enumerate().all(|(j, c)| *c == prefix[j % p]))
                    .unwrap();
                *s = (0..n).map(|j| prefix[j % period]).collect();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(untruncate),
        Value::Object(o) => o.values_mut().for_each(untruncate),
        _ => {}
    }
}

fn start() -> FakeNeo4j {
    let mut db = fixture::database(true);
    // Token names as they were before the HTTP run (what the recorder's setup had made).
    db.graph.labels.truncate(4);
    db.graph.rel_types.truncate(3);
    db.graph.prop_keys.truncate(19);
    let first: chrono::DateTime<chrono::Utc> = "2026-11-26T10:16:20.900Z".parse().unwrap();
    FakeNeo4j::builder()
        .credentials("neo4j", PASSWORD)
        .manual_clock(first)
        .first_tx_id(3)
        .database(db)
        .start()
        .unwrap()
}

/// Server state changes made by the admin run between the recorded HTTP requests.
fn phase_setup(fake: &FakeNeo4j, ex: &Exchange) {
    match ex.name.as_str() {
        // After `load --overwrite-destination=true` of garbage and a start: a new, empty
        // neo4j database (admin entries 83–84).
        "admin-phase-counts-after-failed-load-start" => {
            fake.restart();
            fake.replace_database(
                "neo4j",
                fake_neo4j::new_database("neo4j", fake_neo4j::Graph::new()),
            );
        }
        // Restarts between admin steps (entries 74, 84, 87, 92) reset tx ids and logins.
        "admin-phase-show-databases-after-load-new-name"
        | "admin-phase-counts-after-load-attempts-while-running"
        | "admin-phase-after-recovery" => {
            fake.restart();
        }
        // Section J: the server restarted with db.transaction.timeout=60s.
        "cfg-txtimeout60-begin" => {
            fake.restart();
            fake.set_db_transaction_timeout(std::time::Duration::from_secs(60));
        }
        // The supplementary run: restarted on the restored original data.
        "get-db-neo4j-accept-any" => {
            fake.restart();
            fake.set_db_transaction_timeout(std::time::Duration::ZERO);
            let mut db = fixture::database(false);
            db.graph.labels.truncate(4);
            fake.replace_database("neo4j", db);
        }
        _ => {}
    }
}

fn error_codes(v: &Value) -> Vec<String> {
    v.get("errors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| e["code"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn columns(v: &Value) -> Vec<Value> {
    v.get("results")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|r| r["columns"].clone()).collect())
        .unwrap_or_default()
}

#[test]
fn every_recorded_http_exchange_replays() {
    let exchanges = replay::load(&replay::reference_path("neo4j-5.3/http-exchanges.ndjson"));
    assert_eq!(exchanges.len(), 219);
    let fake = start();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut values_compared = 0;
    let mut values_not_compared: Vec<String> = Vec::new();
    for ex in &exchanges {
        phase_setup(&fake, ex);
        // The server's "now" is taken as the end of the recorded request (the recorder's
        // clock plus its elapsed time): transactions count as used when answered.
        let at: chrono::DateTime<chrono::Utc> = ex.extra["client_request_utc"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let elapsed = ex.extra["client_elapsed_ms"].as_f64().unwrap_or(0.0);
        fake.set_time(at + chrono::Duration::microseconds((elapsed * 1000.0) as i64));
        let req = &ex.request;
        let headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|(k, v)| {
                let v = v.as_str().unwrap_or_default();
                (
                    k.clone(),
                    if k == "Authorization" {
                        auth(v)
                    } else {
                        v.to_owned()
                    },
                )
            })
            .collect();
        let body: Option<Vec<u8>> = match &req.body {
            Value::Null => None,
            Value::String(s) => Some(s.clone().into_bytes()),
            other => {
                let mut b = other.clone();
                untruncate(&mut b);
                Some(serde_json::to_vec(&b).unwrap())
            }
        };
        let hdrs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let got =
            client::send(fake.addr(), &req.method, &req.path, &hdrs, body.as_deref()).unwrap();
        compared += 1;
        let want = &ex.response;
        let mut problems = Vec::new();
        if got.status != want.status {
            problems.push(format!("status {} instead of {}", got.status, want.status));
        }
        let want_ct = want.content_type().map(str::to_ascii_lowercase);
        let got_ct = got.header("Content-Type").map(str::to_ascii_lowercase);
        if want_ct != got_ct {
            problems.push(format!("content type {got_ct:?} instead of {want_ct:?}"));
        }
        let want_chunked = replay::header(&want.headers, "transfer-encoding").is_some();
        if want_chunked != got.chunked {
            problems.push(format!(
                "chunked {} instead of {want_chunked} ({} bytes)",
                got.chunked,
                got.body.len()
            ));
        }
        let format = ex.response_format();
        let actual: Value = match format.as_str() {
            "empty" => {
                if !got.body.is_empty() {
                    problems.push(format!("body {:?} instead of none", got.text()));
                }
                Value::Null
            }
            "text" => Value::String(got.text()),
            f if f.starts_with("json-seq") => Value::Array(
                got.text()
                    .split('\u{1e}')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| serde_json::from_str(s.trim()).unwrap_or(Value::Null))
                    .collect(),
            ),
            _ => serde_json::from_slice(&got.body)
                .unwrap_or_else(|e| Value::String(format!("not JSON ({e}): {}", got.text()))),
        };
        let mut actual = actual;
        let mut expected = want.body.clone();
        if META_AS_MULTISET.iter().any(|(n, _)| *n == ex.name) {
            sort_meta(&mut actual);
            sort_meta(&mut expected);
        }
        if format == "text" {
            if actual != want.body {
                problems.push(format!("text {actual} instead of {}", want.body));
            }
        } else if let Err(e) = same_shape(&expected, &actual) {
            problems.push(format!("shape: {e}"));
        }
        if error_codes(&want.body) != error_codes(&actual) {
            problems.push(format!(
                "error codes {:?} instead of {:?}",
                error_codes(&actual),
                error_codes(&want.body)
            ));
        }
        if columns(&want.body) != columns(&actual) {
            problems.push(format!(
                "columns {:?} instead of {:?}",
                columns(&actual),
                columns(&want.body)
            ));
        }
        let want_loc = replay::header(&want.headers, "location");
        if want_loc != got.header("Location") {
            problems.push(format!(
                "Location {:?} instead of {want_loc:?}",
                got.header("Location")
            ));
        }
        if want.body.get("commit") != actual.get("commit") {
            problems.push(format!(
                "commit {:?} instead of {:?}",
                actual.get("commit"),
                want.body.get("commit")
            ));
        }
        // Values, not only shapes: rows and meta must be the recorded ones (ids included),
        // after cutting long strings as the recorder cut them, except where listed.
        if let Some((_, why)) = VALUES_DIFFER.iter().find(|(n, _)| *n == ex.name) {
            values_not_compared.push(format!("{} ({why})", ex.name));
        } else {
            let mut cut = actual.clone();
            truncate_like_recorder(&mut cut);
            let (w, g) = (values(&expected), values(&cut));
            if w != g {
                problems.push(format!(
                    "values differ:\n      want {}\n      got  {}",
                    serde_json::to_string(&w)
                        .unwrap()
                        .chars()
                        .take(800)
                        .collect::<String>(),
                    serde_json::to_string(&g)
                        .unwrap()
                        .chars()
                        .take(800)
                        .collect::<String>()
                ));
            } else {
                values_compared += 1;
            }
        }
        let messages = |v: &Value| -> Vec<Value> {
            v.get("errors")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|e| e["message"].clone()).collect())
                .unwrap_or_default()
        };
        let stats = |v: &Value| -> Vec<Value> {
            v.get("results")
                .and_then(Value::as_array)
                .map(|rs| {
                    rs.iter()
                        .map(|r| r.get("stats").cloned().unwrap_or(Value::Null))
                        .collect()
                })
                .unwrap_or_default()
        };
        if stats(&want.body) != stats(&actual) {
            problems.push(format!(
                "stats {:?} instead of {:?}",
                stats(&actual),
                stats(&want.body)
            ));
        }
        if want.body.get("notifications") != actual.get("notifications") {
            problems.push(format!(
                "notifications {:?} instead of {:?}",
                actual.get("notifications"),
                want.body.get("notifications")
            ));
        }
        if messages(&want.body) != messages(&actual) {
            problems.push(format!(
                "error messages {:?} instead of {:?}",
                messages(&actual),
                messages(&want.body)
            ));
        }
        let expires = |v: &Value| v.pointer("/transaction/expires").cloned();
        if expires(&want.body) != expires(&actual) {
            problems.push(format!(
                "expires {:?} instead of {:?}",
                expires(&actual),
                expires(&want.body)
            ));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "#{} {}: {}\n    got: {}",
                ex.extra["seq"],
                ex.name,
                problems.join("; "),
                got.text().chars().take(600).collect::<String>()
            ));
        }
    }
    println!(
        "compared {compared} of {} recorded HTTP exchanges, skipped none",
        exchanges.len()
    );
    for (name, why) in META_AS_MULTISET {
        println!("meta compared as a multiset in {name}: {why}");
    }
    println!(
        "row and meta values equal to the recording in {values_compared} exchanges; not compared in {}: {}",
        values_not_compared.len(),
        values_not_compared.join("; ")
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} exchanges differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

trait Format {
    fn response_format(&self) -> String;
}

impl Format for Exchange {
    fn response_format(&self) -> String {
        // The recorder's `body_format` sits in the response; `Exchange` keeps only the
        // parsed fields, so it is read from the raw record.
        match &self.response.body {
            Value::Null => "empty".into(),
            Value::String(_) if !self.response.content_type().unwrap_or("").contains("json") => {
                "text".into()
            }
            Value::Array(_)
                if self
                    .response
                    .content_type()
                    .unwrap_or("")
                    .contains("json-seq") =>
            {
                "json-seq".into()
            }
            _ => "json".into(),
        }
    }
}
