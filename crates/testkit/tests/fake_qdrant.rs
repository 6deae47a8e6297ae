//! The fake Qdrant's test-side API: data helpers, exact snapshot round trips, fault knobs,
//! clock, cluster simulation, request counts, and the HTTP details tools depend on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::fake_qdrant::FakeQdrant;

const BOUNDARY: &str = "fakeQdrantTestBoundary";

struct Answer {
    status: u16,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

fn call(request: ureq::Request, body: Option<&[u8]>) -> Answer {
    let result = match body {
        Some(b) => request.send_bytes(b),
        None => request.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    let content_type = response.header("content-type").map(str::to_owned);
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body).unwrap();
    Answer {
        status,
        content_type,
        body,
    }
}

fn get(q: &FakeQdrant, path: &str) -> Answer {
    call(ureq::get(&format!("{}{path}", q.url())), None)
}

fn post(q: &FakeQdrant, path: &str) -> Answer {
    call(ureq::post(&format!("{}{path}", q.url())), None)
}

fn send_json(q: &FakeQdrant, method: &str, path: &str, body: Value) -> Answer {
    call(
        ureq::request(method, &format!("{}{path}", q.url()))
            .set("content-type", "application/json"),
        Some(body.to_string().as_bytes()),
    )
}

fn multipart(filename: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"snapshot\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn upload(q: &FakeQdrant, collection: &str, filename: &str, data: &[u8]) -> Answer {
    call(
        ureq::post(&format!(
            "{}/collections/{collection}/snapshots/upload?priority=snapshot",
            q.url()
        ))
        .set(
            "content-type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        ),
        Some(&multipart(filename, data)),
    )
}

fn sha256(data: &[u8]) -> String {
    manifest::sha256::Sha256::of(data).to_string()
}

fn sample(q: &FakeQdrant, name: &str) {
    q.create_collection_with(
        name,
        json!({
            "vectors": {"text": {"size": 4, "distance": "Cosine"}, "image": {"size": 2, "distance": "Dot"}},
            "sparse_vectors": {"keywords": {}},
            "on_disk_payload": false
        }),
    )
    .unwrap();
    q.create_payload_index(name, "city", json!("keyword"))
        .unwrap();
    q.create_payload_index(name, "n", json!({"type": "integer", "range": true}))
        .unwrap();
    let points: Vec<Value> = (1..=40usize)
        .map(|i| {
            let city = ["Oslo", "Lima", "Rome"][i % 3];
            json!({
                "id": i,
                "vector": {
                    "text": [i as f32, 1.0, -2.5, 0.125],
                    "image": [0.5, i as f32],
                    "keywords": {"indices": [i, 1000 + i], "values": [0.5, 0.25]}
                },
                "payload": {"city": city, "n": i, "tags": {"a": [i, "x"]}}
            })
        })
        .chain([json!({
            "id": "5C56C793-69F3-4FBF-87E6-C4BF54C28C26",
            "vector": {"text": [0.0, 0.0, 0.0, 1.0]},
            "payload": null
        })])
        .collect();
    q.upsert(name, json!(points)).unwrap();
}

#[test]
fn a_snapshot_restores_the_collection_exactly() {
    let q = FakeQdrant::start();
    sample(&q, "docs");
    let points = q.points("docs").unwrap();
    let info = q.collection_info("docs").unwrap();
    assert_eq!(q.count("docs"), Some(41));
    assert_eq!(
        info["payload_schema"]["city"],
        json!({"data_type": "keyword", "points": 40})
    );
    assert_eq!(
        info["payload_schema"]["n"],
        json!({"data_type": "integer", "params": {"type": "integer", "range": true}, "points": 40})
    );
    assert_eq!(points[40]["id"], "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");

    let created = post(&q, "/collections/docs/snapshots?wait=true").json()["result"].clone();
    let name = created["name"].as_str().unwrap().to_owned();
    assert!(
        name.starts_with(&format!("docs-{}-", q.peer_id())),
        "{name}"
    );
    let download = get(&q, &format!("/collections/docs/snapshots/{name}"));
    assert_eq!(download.status, 200);
    assert_eq!(
        download.content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(sha256(&download.body), created["checksum"]);
    assert_eq!(
        download.body.len() as u64,
        created["size"].as_u64().unwrap()
    );

    // Wholesale replacement over a changed collection, from an upload…
    q.upsert(
        "docs",
        json!([{"id": 999, "vector": {"text": [1, 2, 3, 4]}}]),
    )
    .unwrap();
    let answer = upload(&q, "docs", "docs.snapshot", &download.body);
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(q.points("docs").unwrap(), points);
    assert_eq!(q.collection_info("docs").unwrap(), info);
    // …and into a new collection from a file:// location.
    let location = format!("file://{}/docs/{name}", q.snapshots_dir().display());
    let answer = send_json(
        &q,
        "PUT",
        "/collections/copy/snapshots/recover",
        json!({"location": location, "checksum": created["checksum"]}),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(q.points("copy").unwrap(), points);
    assert_eq!(q.collection_info("copy").unwrap(), info);
    // The upload is kept next to the snapshot, without a checksum sidecar.
    let files = q.snapshot_files("docs");
    assert_eq!(
        files,
        vec![
            name.clone(),
            format!("{name}.checksum"),
            "docs.snapshot".to_owned()
        ]
    );
}

#[test]
fn snapshot_files_are_tars_that_qdrants_tar_reader_accepts() {
    let q = FakeQdrant::start();
    sample(&q, "docs");
    let name = post(&q, "/collections/docs/snapshots").json()["result"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes = get(&q, &format!("/collections/docs/snapshots/{name}")).body;
    assert_eq!(&bytes[257..265], b"ustar  \0", "GNU tar magic");
    assert_eq!(bytes.len() % 512, 0);
    let mut archive = tar::Archive::new(bytes.as_slice());
    let members: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(members[0].starts_with("0/segments/") && members[0].ends_with(".tar"));
    for m in [
        "config.json",
        "payload_index.json",
        "0/shard_config.json",
        "version.info",
    ] {
        assert!(members.iter().any(|x| x == m), "{m} in {members:?}");
    }
    // Not byte-reproducible, as a real server's.
    q.advance_clock(Duration::from_secs(1));
    let again = post(&q, "/collections/docs/snapshots").json()["result"].clone();
    assert_ne!(again["checksum"].as_str(), Some(sha256(&bytes).as_str()));
}

#[test]
fn a_frozen_clock_makes_same_second_snapshots_replace_each_other() {
    let q = FakeQdrant::start();
    q.create_collection("c", 2, "Euclid");
    q.freeze_clock(humantime::parse_rfc3339("2030-01-02T03:04:05Z").unwrap());
    let first = post(&q, "/collections/c/snapshots").json()["result"].clone();
    let second = post(&q, "/collections/c/snapshots").json()["result"].clone();
    assert_eq!(first["name"], second["name"]);
    assert_eq!(
        first["name"],
        format!("c-{}-2030-01-02-03-04-05.snapshot", q.peer_id())
    );
    assert_eq!(first["creation_time"], "2030-01-02T03:04:05");
    let list = get(&q, "/collections/c/snapshots").json()["result"].clone();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["checksum"], second["checksum"]);
    q.advance_clock(Duration::from_secs(1));
    let third = post(&q, "/collections/c/snapshots").json()["result"].clone();
    assert_ne!(third["name"], first["name"]);
}

fn raw_get(addr: std::net::SocketAddr, path: &str) -> (Vec<String>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        head.push(line.trim().to_owned());
    }
    let mut body = Vec::new();
    let _ = reader.read_to_end(&mut body);
    (head, body)
}

#[test]
fn a_download_can_be_cut_once() {
    let q = FakeQdrant::start();
    sample(&q, "docs");
    let created = post(&q, "/collections/docs/snapshots").json()["result"].clone();
    let path = format!(
        "/collections/docs/snapshots/{}",
        created["name"].as_str().unwrap()
    );
    q.cut_next_download_after(1000);
    let (head, body) = raw_get(q.addr(), &path);
    let size = created["size"].as_u64().unwrap();
    assert!(
        head.contains(&format!("content-length: {size}")),
        "{head:?}"
    );
    assert_eq!(body.len(), 1000, "closed after 1000 bytes");
    let whole = get(&q, &path);
    assert_eq!(whole.body.len() as u64, size);
    assert_eq!(sha256(&whole.body), created["checksum"]);
    assert_eq!(
        q.requests("GET /collections/{collection_name}/snapshots/{snapshot_name}"),
        2
    );
}

#[test]
fn the_next_snapshot_can_carry_a_wrong_checksum() {
    let q = FakeQdrant::start();
    q.create_collection("c", 2, "Dot");
    q.wrong_checksum_on_next_snapshot();
    let bad = post(&q, "/collections/c/snapshots").json()["result"].clone();
    let bytes = get(
        &q,
        &format!("/collections/c/snapshots/{}", bad["name"].as_str().unwrap()),
    )
    .body;
    assert_ne!(bad["checksum"].as_str(), Some(sha256(&bytes).as_str()));
    let listed = get(&q, "/collections/c/snapshots").json()["result"][0].clone();
    assert_eq!(
        listed["checksum"], bad["checksum"],
        "the sidecar says the same"
    );
    q.advance_clock(Duration::from_secs(1));
    let good = post(&q, "/collections/c/snapshots").json()["result"].clone();
    let bytes = get(
        &q,
        &format!(
            "/collections/c/snapshots/{}",
            good["name"].as_str().unwrap()
        ),
    )
    .body;
    assert_eq!(good["checksum"].as_str(), Some(sha256(&bytes).as_str()));
}

#[test]
fn snapshots_can_be_slow_or_fail() {
    let q = FakeQdrant::start();
    q.create_collection("c", 2, "Dot");
    q.create_collection("d", 2, "Dot");

    q.delay_snapshot_creation(Duration::from_millis(800));
    let t = Instant::now();
    assert_eq!(post(&q, "/collections/c/snapshots?wait=true").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(800));
    let t = Instant::now();
    q.advance_clock(Duration::from_secs(1));
    assert_eq!(post(&q, "/collections/c/snapshots?wait=false").status, 202);
    assert!(t.elapsed() < Duration::from_millis(800));
    q.settle();
    assert_eq!(
        get(&q, "/collections/c/snapshots").json()["result"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    q.clear_faults();

    q.fail_snapshots_of("d");
    let failed = post(&q, "/collections/d/snapshots?wait=true");
    assert_eq!(failed.status, 500);
    assert_eq!(failed.content_type.as_deref(), Some("application/json"));
    assert!(failed.json()["status"]["error"]
        .as_str()
        .unwrap()
        .starts_with("Service internal error: "));
    assert_eq!(post(&q, "/collections/d/snapshots?wait=false").status, 202);
    q.settle();
    assert!(q.snapshot_files("d").is_empty());
    assert_eq!(
        q.background_errors().len(),
        1,
        "{:?}",
        q.background_errors()
    );
    assert_eq!(
        post(&q, "/snapshots?wait=true").status,
        500,
        "a full snapshot fails too"
    );
    q.clear_faults();
    assert_eq!(post(&q, "/collections/d/snapshots").status, 200);
}

#[test]
fn single_node_or_a_simulated_cluster() {
    let single = FakeQdrant::start();
    assert_eq!(
        get(&single, "/cluster").json()["result"],
        json!({"status": "disabled"})
    );
    let cluster = FakeQdrant::builder().peers(3).start();
    let status = get(&cluster, "/cluster").json()["result"].clone();
    assert_eq!(status["status"], "enabled");
    assert_eq!(status["peer_id"], cluster.peer_id());
    assert_eq!(status["peers"].as_object().unwrap().len(), 3);
    assert_eq!(cluster.requests("GET /cluster"), 1);
}

#[test]
fn keys_and_what_the_read_only_key_may_do() {
    let q = FakeQdrant::builder()
        .api_key("k")
        .read_only_key("ro")
        .start();
    q.create_collection("c", 2, "Dot");
    let url = q.url();
    let with = |key: &str, r: ureq::Request| r.set("api-key", key);
    assert_eq!(
        call(ureq::get(&format!("{url}/collections")), None).status,
        401
    );
    assert_eq!(call(ureq::get(&format!("{url}/healthz")), None).status, 200);
    let created = call(
        with("k", ureq::post(&format!("{url}/collections/c/snapshots"))),
        None,
    );
    assert_eq!(created.status, 200);
    let name = created.json()["result"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let download = call(
        ureq::get(&format!("{url}/collections/c/snapshots/{name}"))
            .set("authorization", "Bearer ro"),
        None,
    );
    assert_eq!(download.status, 200);
    for (method, path) in [
        ("POST", "/collections/c/snapshots?wait=false".to_owned()),
        ("DELETE", format!("/collections/c/snapshots/{name}")),
        ("POST", "/snapshots".to_owned()),
        ("DELETE", "/collections/c".to_owned()),
    ] {
        let answer = call(
            with("ro", ureq::request(method, &format!("{url}{path}"))),
            None,
        );
        assert_eq!(answer.status, 403, "{method} {path}");
        assert_eq!(
            answer.json()["status"]["error"],
            "Forbidden: Global manage access is required"
        );
    }
    let wrong = call(with("nope", ureq::get(&format!("{url}/collections"))), None);
    assert_eq!((wrong.status, wrong.content_type), (401, None));
    assert_eq!(wrong.body, b"Invalid API key or JWT");
}

#[test]
fn keep_alive_chunked_bodies_and_http_1_0() {
    let q = FakeQdrant::start();
    q.create_collection("c", 2, "Dot");
    let mut stream = TcpStream::connect(q.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut read_answer = || {
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        (status, String::from_utf8(body).unwrap())
    };
    // Two requests on one connection; the second with a chunked JSON body.
    write!(
        stream,
        "GET /collections/c/exists HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let (status, body) = read_answer();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(body.contains("true"));
    let json = r#"{"exact": true}"#;
    write!(
        stream,
        "POST /collections/c/points/count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{json}\r\n0\r\n\r\n",
        json.len()
    )
    .unwrap();
    let (status, body) = read_answer();
    assert!(status.starts_with("HTTP/1.1 200"), "{status} {body}");
    assert!(body.contains(r#""count":0"#), "{body}");

    // HTTP/1.0 without keep-alive: the server closes after the answer.
    let mut old = TcpStream::connect(q.addr()).unwrap();
    write!(old, "GET /healthz HTTP/1.0\r\n\r\n").unwrap();
    let mut all = String::new();
    old.read_to_string(&mut all).unwrap();
    assert!(all.ends_with("healthz check passed"), "{all}");
}

#[test]
fn dropping_the_fake_removes_its_storage() {
    let q = FakeQdrant::start();
    q.create_collection("c", 2, "Dot");
    assert_eq!(post(&q, "/collections/c/snapshots").status, 200);
    let dir = q.base_dir().to_owned();
    assert!(dir.join("snapshots/c").is_dir());
    drop(q);
    assert!(!dir.exists());
}
