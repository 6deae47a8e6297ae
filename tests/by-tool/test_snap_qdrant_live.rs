//! snap-qdrant against a real Qdrant, whenever `QDRANT_URL` is set (and `QDRANT_API_KEY`
//! if the server wants one): `compose/` starts one. Without it each test says it is skipped
//! and passes; the same behaviours are proven against the fake Qdrant in
//! `test_snap_qdrant.rs`. Every test works on collections of its own
//! (`stackvault_live_<pid>_<n>…`) and deletes them at the end.

use std::sync::atomic::{AtomicUsize, Ordering};

use manifest::{Manifest, Status};
use serde_json::{json, Value};
use testkit::{Scenario, TestCommand};
use toolkit::http::{Body, ClientOptions, HttpClient, RequestTimeout};

use crate::util::bin;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The live server, or `None` (the test is skipped) when `QDRANT_URL` is not set.
struct Live {
    url: String,
    key: Option<String>,
    http: HttpClient,
    created: Vec<String>,
}

impl Live {
    fn get() -> Option<Live> {
        let Some(url) = std::env::var("QDRANT_URL").ok().filter(|u| !u.is_empty()) else {
            eprintln!("skipped: QDRANT_URL is not set (no real Qdrant to test against)");
            return None;
        };
        Some(Live {
            url: url.trim_end_matches('/').to_owned(),
            key: std::env::var("QDRANT_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            http: HttpClient::new(&ClientOptions::default()).unwrap(),
            created: vec![],
        })
    }

    fn name(&mut self, what: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("stackvault_live_{}_{n}_{what}", std::process::id());
        self.created.push(name.clone());
        name
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(k) = &self.key {
            headers.push(("api-key", k.as_str()));
        }
        let text = body.map(|b| b.to_string());
        let body = match &text {
            Some(t) => Body::Bytes(t.as_bytes()),
            None => Body::Empty,
        };
        let r = self
            .http
            .send(
                method,
                &format!("{}{path}", self.url),
                &headers,
                body,
                RequestTimeout::Default,
            )
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status;
        let text = r.text(64 << 20).unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer["result"].clone()
    }

    /// Named dense vectors, a sparse vector, two payload indexes, `n` points.
    fn multi(&self, name: &str, n: usize) {
        self.ok(
            "PUT",
            &format!("/collections/{name}"),
            Some(json!({
                "vectors": {"image": {"size": 4, "distance": "Dot"}, "text": {"size": 8, "distance": "Cosine"}},
                "sparse_vectors": {"keywords": {}}
            })),
        );
        for (field, schema) in [("category", json!("keyword")), ("rank", json!("integer"))] {
            self.ok(
                "PUT",
                &format!("/collections/{name}/index?wait=true"),
                Some(json!({"field_name": field, "field_schema": schema})),
            );
        }
        let points: Vec<Value> = (1..=n)
            .map(|i| {
                let category = ["a", "b"][i % 2];
                json!({
                    "id": i,
                    "vector": {
                        "image": [i as f32, 0.5, -1.0, 2.0],
                        "text": [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, i as f32],
                        "keywords": {"indices": [i, 1000 + i], "values": [0.5, 0.25]}
                    },
                    "payload": {"category": category, "rank": i}
                })
            })
            .collect();
        self.ok(
            "PUT",
            &format!("/collections/{name}/points?wait=true"),
            Some(json!({ "points": points })),
        );
    }

    fn count(&self, name: &str) -> u64 {
        self.ok(
            "POST",
            &format!("/collections/{name}/points/count"),
            Some(json!({"exact": true})),
        )["count"]
            .as_u64()
            .unwrap()
    }

    fn snapshots(&self, name: &str) -> Vec<Value> {
        self.ok("GET", &format!("/collections/{name}/snapshots"), None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn cmd(&self, s: &Scenario) -> TestCommand {
        let mut cmd = s.cmd(&bin("snap-qdrant")).env("QDRANT_URL", &self.url);
        if let Some(k) = &self.key {
            cmd = cmd.env("QDRANT_API_KEY", k);
        }
        cmd
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        for name in &self.created {
            let _ = self.call("DELETE", &format!("/collections/{name}"), None);
        }
    }
}

#[test]
fn live_round_trip_under_another_name_is_proven_and_leaves_no_snapshot() {
    let Some(mut live) = Live::get() else { return };
    let s = Scenario::new();
    let (source, target) = (live.name("src"), live.name("dst"));
    live.multi(&source, 40);
    let backed = live.cmd(&s).args(["--collection", &source]).run();
    backed.succeeds();
    let m = backed.manifest();
    let stats = &m.stats.as_ref().unwrap()["collections"][&source];
    assert_eq!(stats["points"], 40);
    assert_eq!(
        stats["payload_indexes"],
        json!({"category": "keyword", "rank": "integer"})
    );
    assert!(stats["sparse_vectors"].get("keywords").is_some(), "{stats}");
    assert!(
        live.snapshots(&source).is_empty(),
        "left: {:?}",
        live.snapshots(&source)
    );
    let restored = live
        .cmd(&s)
        .args(["restore", "--target-collection", &target])
        .manifests_in(std::slice::from_ref(&m))
        .run();
    restored.succeeds();
    assert_eq!(restored.manifest().restore.unwrap()["result"], "ok");
    assert_eq!(live.count(&target), 40);
    assert!(
        live.snapshots(&target).is_empty(),
        "upload left: {:?}",
        live.snapshots(&target)
    );
    // Over the existing collection: refused without --overwrite, replaced with it.
    live.cmd(&s)
        .args(["restore", "--target-collection", &target])
        .manifests_in(std::slice::from_ref(&m))
        .run()
        .fails_with(1)
        .stderr_contains("--overwrite");
    live.cmd(&s)
        .args(["restore", "--target-collection", &target, "--overwrite"])
        .manifests_in(&[m])
        .run()
        .succeeds();
    assert_eq!(live.count(&target), 40);
}

#[test]
fn live_a_corrupt_upload_is_one_line_with_the_status() {
    let Some(mut live) = Live::get() else { return };
    let s = Scenario::new();
    let target = live.name("corrupt");
    let garbage = b"this is not a tar archive\n".repeat(1000);
    std::fs::create_dir_all(s.spool()).unwrap();
    let path = s.spool().join("qdrant_x_20250130_020000.snapshot");
    std::fs::write(&path, &garbage).unwrap();
    let (_, root) = live.call("GET", "/", None);
    let m: Manifest = manifest::ndjson::parse_line(
        &json!({
            "schema": "stackvault.manifest/1", "id": "qdrant_x_20250130_020000", "kind": "qdrant",
            "created_at": "2025-01-30T02:00:00Z", "status": "ok",
            "source": {"collection": target, "server_version": root["version"]},
            "artifact": {"path": path, "format": "qdrant/snapshot", "bytes": garbage.len(),
                         "sha256": manifest::Sha256::of(&garbage).to_string()},
            "stats": {"collections": {target.clone(): {"points": 1}}}
        })
        .to_string(),
    )
    .unwrap();
    let out = live.cmd(&s).args(["restore"]).manifests_in(&[m]).run();
    out.fails_with(1).stderr_contains("HTTP 500");
    assert_eq!(out.manifest().status, Status::Failed);
}

#[test]
fn live_a_missing_collection_is_a_failed_manifest_and_the_others_proceed() {
    let Some(mut live) = Live::get() else { return };
    let s = Scenario::new();
    let (good, missing) = (live.name("good"), live.name("missing"));
    live.multi(&good, 3);
    let out = live
        .cmd(&s)
        .args(["--collection", &good, "--collection", &missing])
        .run();
    out.fails_with(1).stderr_contains("HTTP 404");
    let ms = out.manifests();
    assert_eq!(ms.len(), 2);
    assert!(ms[0].is_ok() && ms[1].status == Status::Failed);
}
