//! Replays every recorded run of `neo4j-5.3/admin-exchanges.ndjson` (96 `neo4j-admin` /
//! `neo4j` invocations), in order, against the fake binary on one fake `NEO4J_HOME`, and
//! requires the same exit code, output on the same streams (stdout vs stderr, dump bytes vs
//! text) and the same text lines, modulo paths, times, pids, ports and sizes. The HTTP
//! requests the recorder made between the runs are made too, against the fake server that
//! `neo4j start` started, with the values the recording shows (counts, a new empty
//! database after a failed load, a committed write surviving a kill).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use testkit::fake_neo4j::home::{self, HomeConfig};
use testkit::fake_neo4j::{client, FakeNeo4jHome};
use testkit::replay::reference_path;

const PASSWORD: &str = "testpassword";

/// Lines whose numbers are not compared, and why.
const NUMBERS_NOT_COMPARED: &[(u64, &str, &str)] = &[
    (
        94,
        "Last committed transaction id:",
        "Neo4j also commits internal transactions (recovery, token creation); the fake counts one per committed write request",
    ),
];

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn run(home: &FakeNeo4jHome, tool: &str, args: &[String], stdin: &[u8]) -> Run {
    let mut c: Command = home.command(tool);
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run fake");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// `cd $NEO4J_HOME && bin/neo4j-admin database dump neo4j --to-stdout > /srv/dumps/x.bin`
/// → (`neo4j-admin`, args).
fn parse_command(cmd: &str, scratch: &Path) -> (String, Vec<String>) {
    let cmd = cmd.strip_prefix("cd $NEO4J_HOME && ").unwrap();
    let cmd = cmd.split(" > ").next().unwrap();
    let cmd = cmd.split(" < ").next().unwrap();
    let mut words = cmd.split_whitespace();
    let tool = words.next().unwrap().trim_start_matches("bin/").to_owned();
    let scratch = scratch.display().to_string();
    let args = words
        .map(|w| w.trim_matches('\'').replace("/srv/dumps", &scratch))
        .collect();
    (tool, args)
}

fn is_progress(line: &str) -> bool {
    line.starts_with("Files: ") && line.contains(", data:")
}

/// Lines with paths, times, pids, ports and sizes replaced.
fn normalize(
    text: &str,
    home: &Path,
    scratch: &Path,
    exact_sizes: bool,
    loose_numbers: &[&str],
) -> Vec<String> {
    let text = text
        .replace(&home.display().to_string(), "$NEO4J_HOME")
        .replace(&scratch.display().to_string(), "/srv/dumps");
    let mut out = Vec::new();
    for line in text.lines() {
        let mut l = line.to_owned();
        if is_progress(&l) || l.starts_with("Done: ") || l.is_empty() {
            continue;
        }
        let b = l.as_bytes();
        if b.len() > 29 && b[4] == b'-' && b[10] == b' ' && &l[23..28] == "+0000" {
            l = format!("<TS>{}", &l[28..]);
        }
        if let Some(i) = l.find("pid ") {
            l = format!("{}pid <PID>", &l[..i]);
        }
        if let Some(i) = l.find("(pid:") {
            let rest = &l[i..];
            let end = rest.find(')').unwrap_or(rest.len());
            l = format!("{}(pid:<PID>{}", &l[..i], &rest[end..]);
        }
        if let Some(i) = l.find("http://127.0.0.1:") {
            l = format!("{}<URL>", &l[..i]);
        }
        if l.starts_with("Stopping Neo4j") {
            l = "Stopping Neo4j… stopped.".into();
        }
        if l.starts_with("WARNING: Max ") {
            l = "WARNING: Max <N> open files allowed, minimum of 40000 recommended. See the Neo4j manual.".into();
        }
        for prefix in [
            "Running consistency check with max off-heap:",
            "  Store size:",
            "  Allocated page cache:",
            "  Off-heap memory for caching:",
        ] {
            if l.starts_with(prefix) {
                l = format!("{prefix}<SIZE>");
            }
        }
        if !exact_sizes && (l.starts_with("Files: ") || l.starts_with("Bytes: ")) {
            l = format!("{}<N>", &l[..7]);
        }
        for p in loose_numbers {
            if l.starts_with(p) {
                l = format!("{p}<N>");
            }
        }
        out.push(l);
    }
    out
}

fn garbage() -> Vec<u8> {
    b"this is not a neo4j dump\n".repeat(200)
}

fn random_bytes() -> Vec<u8> {
    let seed = Sha256::digest(b"seed");
    seed.iter().copied().cycle().take(8192).collect()
}

fn http(home: &FakeNeo4jHome, db: &str, statements: &[&str]) -> client::RawResponse {
    let url = home.http_url().expect("the fake server runs");
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("neo4j:{PASSWORD}"))
    );
    let body = serde_json::json!({
        "statements": statements.iter().map(|s| serde_json::json!({"statement": s})).collect::<Vec<_>>()
    });
    let body = serde_json::to_vec(&body).unwrap();
    let path = format!("/db/{db}/tx/commit");
    client::send(
        addr,
        "POST",
        &path,
        &[
            ("Host", "127.0.0.1:7474"),
            ("Accept", "application/json"),
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(&body),
    )
    .unwrap()
}

fn first_value(resp: &client::RawResponse, result: usize) -> Value {
    let j = resp.json();
    assert_eq!(j["errors"], serde_json::json!([]), "{}", resp.text());
    j["results"][result]["data"][0]["row"][0].clone()
}

fn counts(home: &FakeNeo4jHome) -> (i64, i64, String) {
    let r = http(
        home,
        "neo4j",
        &[
            "MATCH (n) RETURN count(n) AS nodes",
            "MATCH ()-[r]->() RETURN count(r) AS rels",
            "CALL db.info() YIELD id, name, creationDate RETURN id, name, creationDate",
        ],
    );
    (
        first_value(&r, 0).as_i64().unwrap(),
        first_value(&r, 1).as_i64().unwrap(),
        first_value(&r, 2).as_str().unwrap().to_owned(),
    )
}

const FIXTURE_DB_ID: &str = "29A3923D651247A401B098E5AA931C8ECC229C82A62820374848857CC92C8C9D";

/// The HTTP requests of the admin run (`admin-phase-*`, `cfg-txtimeout60-*` in
/// http-exchanges.ndjson), made after the admin entry `n`.
fn http_after(n: u64, home: &FakeNeo4jHome) {
    match n {
        18 => {
            // admin-phase-stop-database, -show-databases-after-stop-attempt, -counts-before-stop
            let r = http(home, "system", &["STOP DATABASE neo4j"]);
            assert_eq!(
                r.json()["errors"][0]["code"],
                "Neo.ClientError.Statement.UnsupportedAdministrationCommand"
            );
            assert_eq!(counts(home), (1001, 2000, FIXTURE_DB_ID.into()));
        }
        75 => {
            // admin-phase-show-databases-after-load-new-name, -query-restored, -counts-after-loads
            let r = http(
                home,
                "system",
                &["SHOW DATABASES YIELD name, currentStatus RETURN name, currentStatus"],
            );
            let names: Vec<Value> = r.json()["results"][0]["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["row"][0].clone())
                .collect();
            assert_eq!(names, vec![Value::from("neo4j"), Value::from("system")]);
            let r = http(home, "restored", &["MATCH (n) RETURN count(n) AS n"]);
            assert_eq!(r.status, 404);
            assert_eq!(
                r.json()["errors"][0]["code"],
                "Neo.ClientError.Database.DatabaseNotFound"
            );
            assert_eq!(counts(home), (1001, 2000, FIXTURE_DB_ID.into()));
        }
        80 => assert_eq!(counts(home), (1001, 2000, FIXTURE_DB_ID.into())),
        84 => {
            // After a failed overwrite load and a start: a new, empty database.
            let (nodes, rels, id) = counts(home);
            assert_eq!((nodes, rels), (0, 0));
            assert_ne!(id, FIXTURE_DB_ID);
        }
        87 => {
            let r = http(
                home,
                "neo4j",
                &["CREATE (n:RefCrash {at: datetime()}) RETURN count(n) AS created"],
            );
            assert_eq!(first_value(&r, 0), 1);
            // The recorder then killed the server (SIGKILL).
            home.kill_server();
        }
        92 => {
            let r = http(home, "neo4j", &["MATCH (n:RefCrash) RETURN count(n) AS c"]);
            assert_eq!(
                first_value(&r, 0),
                1,
                "the committed write survives the kill"
            );
            http(home, "neo4j", &["MATCH (n:RefCrash) DELETE n"]);
        }
        95 => {
            let r = http(home, "neo4j", &["CALL dbms.listConfig('db.transaction.timeout') YIELD name, value RETURN name, value"]);
            assert_eq!(r.json()["results"][0]["data"][0]["row"][1], "1m");
        }
        _ => {}
    }
}

/// Server configuration changes of the recording (section J: db.transaction.timeout=60s).
fn config_before(n: u64, home_dir: &Path) {
    let mut c = home::read_config(home_dir);
    match n {
        95 => c.db_transaction_timeout_ms = 60_000,
        96 => {}
        _ => return,
    }
    home::write_config(home_dir, &c).unwrap();
}

fn post_check(rec: &Value, home: &FakeNeo4jHome, scratch: &Path) -> Option<String> {
    let post = rec["post"].as_str()?;
    let name = rec["name"].as_str().unwrap();
    if let Some(i) = post.find("state of data/databases/") {
        let db: String = post[i + 24..].chars().take_while(|c| *c != ' ').collect();
        let listing = &post[i..];
        let files: Vec<String> = std::fs::read_dir(home::db_dir(home.path(), &db))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let only_lock = files == vec!["database_lock".to_owned()];
        let want_only_lock = !listing.contains("neostore");
        if only_lock != want_only_lock {
            return Some(format!("{name}: data/databases/{db} holds {files:?}"));
        }
    }
    let exists = |p: &str| scratch.join(p).exists();
    match name {
        "dump-running-path" if std::fs::read_dir(scratch.join("running")).unwrap().count() != 0 => {
            Some("running/ is not empty".into())
        }
        "dump-path" if !exists("p1/neo4j.dump") => Some("p1/neo4j.dump missing".into()),
        "dump-path-missing-dir" if exists("does") => Some("does/ was created".into()),
        "dump-default-destination" if !home.path().join("data/dumps/neo4j.dump").exists() => {
            Some("data/dumps/neo4j.dump missing".into())
        }
        "dump-glob-all" if !(exists("all/neo4j.dump") && exists("all/system.dump")) => {
            Some("all/*.dump missing".into())
        }
        _ => None,
    }
}

#[test]
fn every_recorded_admin_run_replays() {
    let text = std::fs::read_to_string(reference_path("neo4j-5.3/admin-exchanges.ndjson")).unwrap();
    let records: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 96);
    let fixture = std::fs::read(reference_path("neo4j-5.3/fixtures/neo4j.dump")).unwrap();

    let config = HomeConfig {
        password: PASSWORD.into(),
        ..HomeConfig::default()
    };
    let home = FakeNeo4jHome::with_config(config, None);
    let scratch_dir = tempfile::tempdir().unwrap();
    let scratch: PathBuf = scratch_dir.path().to_path_buf();
    for d in ["running", "p1", "sys", "all"] {
        std::fs::create_dir_all(scratch.join(d)).unwrap();
    }
    // The recorded state at the start: the fixture's graph in neo4j, the server running.
    let setup = run(
        &home,
        "neo4j-admin",
        &[
            "database".into(),
            "load".into(),
            "neo4j".into(),
            "--from-stdin".into(),
        ],
        &fixture,
    );
    assert_eq!(setup.code, 0, "{}", String::from_utf8_lossy(&setup.stderr));
    let start = run(&home, "neo4j", &["start".into()], b"");
    assert_eq!(start.code, 0, "{}", String::from_utf8_lossy(&start.stderr));

    let mut outputs: std::collections::HashMap<u64, Vec<u8>> = std::collections::HashMap::new();
    let mut failures = Vec::new();
    let mut compared = 0;
    for rec in &records {
        let n = rec["n"].as_u64().unwrap();
        let name = rec["name"].as_str().unwrap();
        config_before(n, home.path());
        let (tool, args) = parse_command(rec["command"].as_str().unwrap(), &scratch);
        let desc = rec["stdin"]["desc"].as_str().unwrap_or("");
        let stdin: Vec<u8> = if rec.get("stdin").is_none() {
            Vec::new()
        } else if desc.starts_with("/srv/dumps/good-stdout.dump") {
            fixture.clone()
        } else if desc.starts_with("/srv/dumps/verbose-stdout.dump") {
            outputs[&23].clone()
        } else if desc.starts_with("/srv/dumps/verbose-stripped.dump") {
            let v = &outputs[&23];
            let at = v.windows(4).position(|w| w == b"DZV1").unwrap();
            v[at..].to_vec()
        } else if desc.starts_with("/srv/dumps/system-stdout.dump") {
            outputs[&34].clone()
        } else if desc.contains("garbage") {
            garbage()
        } else if desc.contains("pseudo-random") {
            random_bytes()
        } else if desc.starts_with("/dev/null") {
            Vec::new()
        } else if desc.starts_with("first 64 bytes") {
            fixture[..64].to_vec()
        } else if desc.contains("truncated-half") {
            fixture[..169_779].to_vec()
        } else {
            panic!("#{n}: unknown stdin {desc}");
        };
        // Inputs that are the recorded bytes must be exactly those.
        if let Some(hex) = rec["stdin"]["first32_hex"].as_str() {
            let own = stdin
                .iter()
                .take(32)
                .map(|b| format!("{b:02x}"))
                .collect::<String>();
            let made_by_the_fake = desc.contains("verbose") || desc.contains("system-stdout");
            if !made_by_the_fake {
                assert_eq!(own, hex, "#{n} stdin");
                assert_eq!(
                    stdin.len() as u64,
                    rec["stdin"]["bytes"].as_u64().unwrap(),
                    "#{n} stdin size"
                );
            }
        }
        let got = run(&home, &tool, &args, &stdin);
        outputs.insert(n, got.stdout.clone());
        compared += 1;
        let mut problems = Vec::new();
        let want_code = rec["exit_code"].as_i64().unwrap() as i32;
        if got.code != want_code {
            problems.push(format!("exit {} instead of {want_code}", got.code));
        }
        let loose: Vec<&str> = NUMBERS_NOT_COMPARED
            .iter()
            .filter(|(k, _, _)| *k == n)
            .map(|(_, p, _)| *p)
            .collect();
        let exact_sizes =
            rec.get("stdin").is_some() && desc.starts_with("/srv/dumps/good-stdout.dump");
        for (stream, want, got_bytes) in [
            ("stdout", &rec["stdout"], &got.stdout),
            ("stderr", &rec["stderr"], &got.stderr),
        ] {
            match want["kind"].as_str().unwrap() {
                "empty" => {
                    if !got_bytes.is_empty() {
                        problems.push(format!(
                            "{stream} not empty: {:?}",
                            String::from_utf8_lossy(got_bytes)
                        ));
                    }
                }
                "binary" => {
                    let magic_first = want
                        .get("stdout_starts_with_dump_magic")
                        .and_then(Value::as_bool)
                        .or_else(|| {
                            rec.get("stdout_starts_with_dump_magic")
                                .and_then(Value::as_bool)
                        })
                        .unwrap_or(true);
                    let at = got_bytes.windows(4).position(|w| w == b"DZV1");
                    match (magic_first, at) {
                        (true, Some(0)) => {}
                        (false, Some(i)) if i > 0 => {
                            let prefix = String::from_utf8_lossy(&got_bytes[..i]).into_owned();
                            let want_prefix = want["text_before_dump_magic"].as_str().unwrap_or("");
                            let a = normalize(&prefix, home.path(), &scratch, true, &[]);
                            let b = normalize(
                                want_prefix,
                                Path::new("/nonexistent-home"),
                                Path::new("/nonexistent"),
                                true,
                                &[],
                            );
                            if a != b {
                                problems.push(format!("{stream} text before the dump differs:\n  got  {a:?}\n  want {b:?}"));
                            }
                        }
                        _ => problems.push(format!(
                            "{stream}: DZV1 at {at:?}, expected at the start: {magic_first}"
                        )),
                    }
                    if let Some(i) = at {
                        if let Err(e) =
                            testkit::fake_neo4j::dump::read_header_only(&mut &got_bytes[i..])
                        {
                            problems.push(format!("{stream} is not a readable dump: {e:?}"));
                        }
                    }
                }
                _ => {
                    let want_text = want["text"].as_str().unwrap();
                    let got_text = String::from_utf8_lossy(got_bytes);
                    let a = normalize(&got_text, home.path(), &scratch, exact_sizes, &loose);
                    let b = normalize(
                        want_text,
                        Path::new("/nonexistent-home"),
                        Path::new("/nonexistent"),
                        exact_sizes,
                        &loose,
                    );
                    if a != b {
                        problems.push(format!("{stream} differs:\n  got  {a:?}\n  want {b:?}"));
                    }
                    if want_text.lines().any(is_progress) && !got_text.lines().any(is_progress) {
                        problems.push(format!("{stream} has no progress lines"));
                    }
                    if got_bytes.is_empty() {
                        problems.push(format!("{stream} is empty"));
                    }
                }
            }
        }
        if let Some(p) = post_check(rec, &home, &scratch) {
            problems.push(p);
        }
        if !problems.is_empty() {
            failures.push(format!(
                "#{n} {name} ({tool} {}):\n    {}",
                args.join(" "),
                problems.join("\n    ")
            ));
        }
        http_after(n, &home);
    }
    println!(
        "compared {compared} of {} recorded admin runs, skipped none",
        records.len()
    );
    for (n, prefix, why) in NUMBERS_NOT_COMPARED {
        println!("#{n}: the number after {prefix:?} is not compared: {why}");
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} runs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
