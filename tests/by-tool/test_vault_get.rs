//! vault-get: listing from sidecars, selection, verified downloads.

use manifest::{Manifest, Status};
use testkit::Scenario;
use vault::{Backend, ObjectKey};

use crate::util::bin;

fn stored(s: &Scenario, vault: &str, id: &str, created_at: &str, content: &[u8]) -> Manifest {
    std::fs::create_dir_all(s.spool()).unwrap();
    let path = s.spool().join(format!("{id}.dump"));
    std::fs::write(&path, content).unwrap();
    let kind = id.split('_').next().unwrap();
    let line = serde_json::json!({
        "schema": "stackvault.manifest/1", "id": id, "kind": kind, "run": "run_a",
        "created_at": created_at, "status": "ok",
        "artifact": {"path": path, "format": "test", "bytes": content.len(),
                     "sha256": manifest::Sha256::of(content).to_string()}
    });
    let out = s
        .cmd(&bin("vault-put"))
        .args(["--vault", vault])
        .stdin(format!("{line}\n"))
        .run();
    out.succeeds();
    out.manifest()
}

/// Two postgres backups (Jan 1 "old", Jan 3 "new") and `other` (another kind) on Jan 2.
fn store_three(s: &Scenario, vault: &str, other: &str) {
    let backups: [(&str, &str, &[u8]); 3] = [
        (
            "postgres_app_20250101_020000",
            "2025-01-01T02:00:00Z",
            b"old",
        ),
        (
            "postgres_app_20250103_020000",
            "2025-01-03T02:00:00Z",
            b"new",
        ),
        (other, "2025-01-02T02:00:00Z", b"other"),
    ];
    for (id, created_at, content) in backups {
        stored(s, vault, id, created_at, content);
    }
}

#[test]
fn list_is_newest_first_and_filters_by_kind() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    s.cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--list"])
        .run()
        .succeeds()
        .stderr_contains("no backups");
    store_three(&s, &vault, "qdrant_docs_20250102_020000");

    let table = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--list"])
        .run();
    table.succeeds();
    let ids: Vec<_> = table
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "postgres_app_20250103_020000",
            "qdrant_docs_20250102_020000",
            "postgres_app_20250101_020000"
        ]
    );
    assert!(table.stdout.lines().next().unwrap().starts_with("ID"));

    let json = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--list", "--json", "--kind", "postgres"])
        .run();
    json.succeeds();
    let ms = json.manifests();
    assert_eq!(ms.len(), 2);
    assert!(ms.iter().all(|m| m.vault.is_some()));
}

#[test]
fn selects_by_id_latest_and_run() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    store_three(&s, &vault, "neo4j_graph_20250102_020000");

    let by_id = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--id", "postgres_app_20250101_020000"])
        .run();
    by_id.succeeds();
    let m = by_id.manifest();
    assert_eq!(std::fs::read(&m.artifact.unwrap().path).unwrap(), b"old");

    let latest = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--latest", "--kind", "postgres"])
        .run();
    latest.succeeds();
    assert_eq!(latest.manifest().id, "postgres_app_20250103_020000");

    let run = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--run", "run_a"])
        .run();
    run.succeeds();
    assert_eq!(run.manifests().len(), 3);

    s.cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--id", "postgres_nope_20250101_020000"])
        .run()
        .fails_with(2)
        .stderr_contains("no backup with id postgres_nope_20250101_020000");
    s.cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--latest"])
        .run()
        .fails_with(2)
        .stderr_contains("--kind");
}

fn assert_corruption_caught(s: &Scenario, vault: &str, corrupt: impl FnOnce(&ObjectKey)) {
    let m = stored(
        s,
        vault,
        "postgres_app_20250101_020000",
        "2025-01-01T02:00:00Z",
        &vec![7u8; 300_000],
    );
    assert!(m
        .vault
        .as_ref()
        .unwrap()
        .url
        .ends_with("/postgres/2025/01/01/postgres_app_20250101_020000.dump"));
    let key = ObjectKey::new("postgres/2025/01/01/postgres_app_20250101_020000.dump").unwrap();
    corrupt(&key);
    let out = s
        .cmd(&bin("vault-get"))
        .args(["--vault", vault, "--id", m.id.as_str()])
        .run();
    out.fails_with(1).stderr_contains("checksum mismatch");
    assert_eq!(out.manifest().status, Status::Failed);
    assert!(
        s.spool_files().is_empty(),
        "partial download left: {:?}",
        s.spool_files()
    );
    // Piped on, the failed manifest is refused by restore and the target is never created.
    let target = s.db_name("never");
    s.cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", &target, "--create"])
        .stdin(out.stdout.clone())
        .run()
        .fails_with(1)
        .stderr_contains("refusing to restore");
    assert!(!s.db_exists(&target));
}

#[test]
fn a_corrupted_object_in_a_directory_vault_is_caught() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let root = s.path().join("vault");
    assert_corruption_caught(&s, &vault, |key| {
        let path = root.join(key.as_str());
        let mut data = std::fs::read(&path).unwrap();
        data[1000] ^= 1;
        std::fs::write(&path, data).unwrap();
    });
}

#[test]
fn a_corrupted_object_in_s3_is_caught() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let bucket = testkit::bucket_of(&vault);
    let backend = testkit::S3Server::from_env().backend(&bucket, "stack");
    assert_corruption_caught(&s, &vault, |key| {
        // Behind the vault's back: replace the object with same-size garbage.
        backend.delete(key).unwrap();
        let garbage = vec![8u8; 300_000];
        backend
            .put(
                key,
                &mut &garbage[..],
                vault::Expect::exact(garbage.len() as u64, None),
                &toolkit::progress::Hidden,
            )
            .unwrap();
    });
}

#[test]
fn a_download_whose_connection_breaks_resumes_from_the_byte_it_reached() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let m = crate::util::spooled(&s, "postgres_resume_20250130_020000", 12 << 20);
    let sha = m.artifact.as_ref().unwrap().sha256;
    let put = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .manifests_in(&[m])
        .run();
    put.succeeds();
    let server = testkit::S3Server::from_env();
    let bucket = testkit::bucket_of(&vault);
    // The first two range requests break half-way through their answer.
    let proxy = testkit::FaultyProxy::cutting(
        &server.endpoint,
        &format!("GET /{bucket}/stack/postgres/"),
        2,
    );
    let got = s
        .cmd(&bin("vault-get"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["--vault", &vault, "--s3-part-size", "5MiB"])
        .stdin(put.stdout.clone())
        .run();
    got.succeeds();
    let local = got.manifest().artifact.unwrap();
    assert_eq!(
        toolkit::fs::hash_file(&local.path).unwrap(),
        (12 << 20, sha)
    );
    // A retry asked for the rest of its range only: a Range that starts inside a part.
    let part = 5u64 << 20;
    let resumed: Vec<String> = proxy
        .request_heads()
        .iter()
        .filter_map(|h| {
            h.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("range: bytes="))
                .map(str::to_owned)
        })
        .filter(|r| {
            let from: u64 = r["range: bytes=".len()..]
                .split('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            !from.is_multiple_of(part)
        })
        .collect();
    assert_eq!(
        resumed.len(),
        2,
        "two resumed ranges: {:?}",
        proxy.request_heads().len()
    );
}

#[test]
fn a_range_that_trickles_past_the_request_timeout_is_given_up_within_it() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let m = crate::util::spooled(&s, "postgres_trickle_20250130_020000", 6 << 20);
    let put = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .manifests_in(&[m])
        .run();
    put.succeeds();
    let server = testkit::S3Server::from_env();
    let bucket = testkit::bucket_of(&vault);
    // 640 KiB/s: never idle, so only the limit on the whole request can end it.
    let proxy = testkit::FaultyProxy::trickling(
        &server.endpoint,
        &format!("GET /{bucket}/stack/postgres/"),
    );
    let started = std::time::Instant::now();
    let got = s
        .cmd(&bin("vault-get"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["--vault", &vault, "--s3-timeout", "2s", "--s3-retries", "1"])
        .stdin(put.stdout.clone())
        .run();
    let took = started.elapsed();
    got.fails_with(1)
        .stderr_contains("no complete answer within 2 s (--s3-timeout)");
    // Two attempts of about 2 s each (the first range is 6 MiB: 9 s at this rate).
    assert!(
        took < std::time::Duration::from_secs(8),
        "took {took:?}: the request limit was not kept"
    );
    assert!(
        s.spool_files().is_empty(),
        "a failed download leaves nothing: {:?}",
        s.spool_files()
    );
}

#[test]
fn check_format_fails_a_download_that_does_not_start_as_its_format() {
    let s = Scenario::new();
    let backend = vault::DirBackend::new(s.path().join("vault")).unwrap();
    // Stored as pg_dump/custom, but its bytes are the id repeated: no PGDMP.
    let stored = crate::util::store_fabricated(
        &s,
        &backend,
        "postgres",
        "app",
        crate::util::days(1.0),
        4096,
    );
    let fetch = |check: bool| {
        let mut args = vec![
            "--vault".to_owned(),
            s.dir_vault(),
            "--id".into(),
            stored.id.to_string(),
        ];
        if check {
            args.push("--check-format".into());
        }
        s.cmd(&bin("vault-get")).args(args).run()
    };
    fetch(false).succeeds();
    let out = fetch(true);
    out.fails_with(1);
    let m = out.manifest();
    assert_eq!(m.status, Status::Failed);
    assert!(
        m.error
            .as_deref()
            .unwrap_or("")
            .contains("is not pg_dump/custom"),
        "{:?}",
        m.error
    );
}
