//! vault-put: verified uploads that never lose a spool file or overwrite an object.

use manifest::Status;
use testkit::Scenario;

use crate::util::{bin, spooled};

/// vault-put then vault-get of `size` bytes, both with `extra` flags, vault-put also with
/// `put_only`.
fn round_trip(s: &Scenario, vault: &str, size: usize, extra: &[&str], put_only: &[&str]) {
    let m = spooled(s, &format!("postgres_big{size}_20250130_020000"), size);
    let sha = m.artifact.as_ref().unwrap().sha256;
    let put = s
        .cmd(&bin("vault-put"))
        .args(["--vault", vault])
        .args(extra)
        .args(put_only)
        .manifests_in(&[m])
        .run();
    put.succeeds();
    let stored = put.manifest();
    assert_eq!(stored.vault.as_ref().unwrap().bytes, size as u64);
    assert!(s.spool_files().is_empty());
    let got = s
        .cmd(&bin("vault-get"))
        .args(["--vault", vault])
        .args(extra)
        .stdin(put.stdout.clone())
        .run();
    got.succeeds();
    let local = got.manifest().artifact.unwrap();
    assert_eq!(
        toolkit::fs::hash_file(&local.path).unwrap(),
        (size as u64, sha)
    );
    std::fs::remove_file(&local.path).unwrap();
}

#[test]
fn multipart_uploads_and_ranged_downloads_round_trip_on_s3() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let small_parts = ["--s3-part-size", "5MiB", "--s3-parallel", "3"];
    let multipart = ["--s3-multipart-threshold", "0"];
    // Exact multiple of the part size, one byte over, one byte under, a single part, empty.
    for size in [10 << 20, (10 << 20) + 1, (10 << 20) - 1, 1000, 0] {
        round_trip(&s, &vault, size, &small_parts, &multipart);
    }
    // Above a part and below the threshold: one streamed PUT (downloads still in ranges).
    round_trip(&s, &vault, (12 << 20) + 3, &small_parts, &[]);
    // The defaults, with a size that is an exact multiple of the part size.
    round_trip(&s, &vault, 16 << 20, &[], &[]);
}

#[test]
fn the_default_proof_is_the_servers_checksums_and_each_level_is_recorded() {
    let s = Scenario::new();
    // (vault, flags, size, how the sidecar says it was verified)
    let s3 = s.s3_vault();
    let dir = s.dir_vault();
    let cases: [(&str, &[&str], usize, &str); 6] = [
        (&s3, &[], 12 << 20, "server-checksums"),
        (&s3, &[], 1000, "server-checksums"),
        (&s3, &["--verify", "read-back"], 12 << 20, "read-back"),
        (&s3, &["--verify", "size"], 1000, "size"),
        (&dir, &[], 1000, "local-write"),
        (&dir, &["--verify", "read-back"], 1000, "read-back"),
    ];
    for (i, (vault, flags, size, want)) in cases.into_iter().enumerate() {
        let m = spooled(&s, &format!("postgres_proof{i}_20250130_020000"), size);
        let out = s
            .cmd(&bin("vault-put"))
            .args(["--vault", vault, "--s3-part-size", "5MiB"])
            .args(flags)
            .manifests_in(&[m])
            .run();
        out.succeeds();
        assert!(
            !out.stderr.contains("verifies no checksums"),
            "{}",
            out.stderr
        );
        assert_eq!(
            out.manifest().vault.unwrap().verified.as_deref(),
            Some(want),
            "{vault} {flags:?} {size}"
        );
    }
}

#[test]
fn a_server_that_verifies_no_checksums_is_read_back_instead_and_said_so() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let server = testkit::S3Server::from_env();
    let proxy = testkit::FaultyProxy::stripping(
        &server.endpoint,
        &["x-amz-checksum-crc32", "x-amz-checksum-sha256"],
    );
    for (i, size) in [12 << 20, 1000].into_iter().enumerate() {
        let m = spooled(&s, &format!("postgres_nocrc{i}_20250130_020000"), size);
        let out = s
            .cmd(&bin("vault-put"))
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args(["--vault", &vault, "--s3-part-size", "5MiB"])
            .manifests_in(&[m])
            .run();
        out.succeeds().stderr_contains("verifies no checksums");
        assert_eq!(
            out.manifest().vault.unwrap().verified.as_deref(),
            Some("read-back")
        );
    }
}

#[test]
fn bytes_damaged_on_the_way_are_refused_by_the_server_and_nothing_is_stored() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let bucket = testkit::bucket_of(&vault);
    let server = testkit::S3Server::from_env();
    // Part 2 of a multipart upload, a single PUT of one part, a streamed PUT of a file.
    let cases: [(usize, usize, &str, &str); 3] = [
        (0, 12 << 20, "partNumber=2&", "0"),
        (1, 1000, "PUT /", "2GiB"),
        (2, 12 << 20, "PUT /", "2GiB"),
    ];
    for (i, size, pattern, threshold) in cases {
        let proxy = testkit::FaultyProxy::corrupting(&server.endpoint, pattern);
        let m = spooled(&s, &format!("postgres_damaged{i}_20250130_020000"), size);
        let out = s
            .cmd(&bin("vault-put"))
            .env("AWS_ENDPOINT_URL", &proxy.endpoint)
            .args([
                "--vault",
                &vault,
                "--s3-part-size",
                "5MiB",
                "--s3-retries",
                "0",
                "--s3-multipart-threshold",
                threshold,
            ])
            .manifests_in(&[m])
            .run();
        out.fails_with(1).stderr_contains("BadDigest");
        let backend = server.backend(&bucket, "stack");
        assert!(
            vault::Backend::list(&backend, "").unwrap().is_empty(),
            "nothing stored"
        );
        assert!(
            server.incomplete_uploads(&bucket, "stack/").is_empty(),
            "upload aborted"
        );
        assert_eq!(s.spool_files().len(), i + 1, "spool files kept");
    }
}

#[test]
fn part_sizes_s3_would_refuse_are_a_usage_error() {
    let s = Scenario::new();
    s.cmd(&bin("vault-put"))
        .args(["--vault", "s3://b/p", "--s3-part-size", "1MiB"])
        .run()
        .fails_with(2)
        .stderr_contains("5MiB to 5GiB");
}

#[test]
fn a_second_put_of_an_id_is_refused() {
    let s = Scenario::new();
    for vault in [s.dir_vault(), s.s3_vault()] {
        let m = spooled(&s, "postgres_twice_20250130_020000", 5000);
        s.cmd(&bin("vault-put"))
            .args(["--vault", &vault, "--keep"])
            .manifests_in(std::slice::from_ref(&m))
            .run()
            .succeeds();
        assert_eq!(s.spool_files().len(), 1, "--keep kept the file");
        let again = s
            .cmd(&bin("vault-put"))
            .args(["--vault", &vault])
            .manifests_in(&[m])
            .run();
        again.fails_with(1).stderr_contains("already in the vault");
        assert_eq!(again.manifest().status, Status::Failed);
        assert_eq!(s.spool_files().len(), 1, "spool file kept after a refusal");
        std::fs::remove_file(s.spool().join(&s.spool_files()[0])).unwrap();
    }
}

#[test]
fn a_missing_or_truncated_spool_file_is_refused() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let missing = spooled(&s, "postgres_missing_20250130_020000", 100);
    std::fs::remove_file(&missing.artifact.as_ref().unwrap().path).unwrap();
    let truncated = spooled(&s, "postgres_short_20250130_020000", 1000);
    let path = truncated.artifact.as_ref().unwrap().path.clone();
    std::fs::write(&path, vec![0u8; 500]).unwrap();
    let out = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .manifests_in(&[missing, truncated])
        .run();
    out.fails_with(1)
        .stderr_contains("cannot open the spool file")
        .stderr_contains("truncated");
    let ms = out.manifests();
    assert!(ms.iter().all(|m| m.status == Status::Failed), "{ms:?}");
    assert!(
        path.exists(),
        "truncated spool file must stay for inspection"
    );
    let list = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--list", "--json"])
        .run();
    list.succeeds();
    assert_eq!(list.stdout, "", "nothing may be stored");
}

#[test]
fn a_malformed_line_names_its_number_and_keeps_earlier_work() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let good = spooled(&s, "postgres_good_20250130_020000", 10);
    let input = format!(
        "{}\n{{\"schema\":\"stackvault.manifest/1\",\"id\":\n",
        serde_json::to_string(&good).unwrap()
    );
    let out = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .stdin(input)
        .run();
    out.fails_with(2).stderr_contains("stdin line 2: not JSON");
    assert_eq!(
        out.manifest().id,
        "postgres_good_20250130_020000",
        "line 1 was stored and emitted"
    );
}

#[test]
fn an_unreachable_endpoint_fails_clearly_and_keeps_the_spool_file() {
    let s = Scenario::new();
    let m = spooled(&s, "postgres_offline_20250130_020000", 2000);
    let out = s
        .cmd(&bin("vault-put"))
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .args([
            "--vault",
            "s3://nowhere/stack",
            "--s3-retries",
            "1",
            "--no-progress",
        ])
        .manifests_in(&[m])
        .run();
    out.fails_with(1)
        .stderr_contains("cannot reach http://127.0.0.1:9: cannot connect")
        .stderr_lines(1);
    let failed = out.manifest();
    assert_eq!(failed.status, Status::Failed);
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .contains("(gave up after 2 attempts in 0 s)"),
        "{:?}",
        failed.error
    );
    assert_eq!(s.spool_files(), ["postgres_offline_20250130_020000.dump"]);
}

#[test]
fn wrong_credentials_fail_without_retries_and_keep_the_spool_file() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let m = spooled(&s, "postgres_denied_20250130_020000", 2000);
    let out = s
        .cmd(&bin("vault-put"))
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        .args(["--vault", &vault])
        .manifests_in(&[m])
        .run();
    out.fails_with(1)
        .stderr_contains("HTTP 403")
        .stderr_contains("AWS_SECRET_ACCESS_KEY");
    assert!(
        !out.stderr.contains("wrong-secret"),
        "secret leaked: {}",
        out.stderr
    );
    assert_eq!(s.spool_files().len(), 1);
}

#[test]
fn missing_credentials_or_vault_are_fatal_before_reading_input() {
    let s = Scenario::new();
    let m = spooled(&s, "postgres_x_20250130_020000", 10);
    s.cmd(&bin("vault-put"))
        .manifests_in(std::slice::from_ref(&m))
        .run()
        .fails_with(2)
        .stderr_contains("no vault given");
    s.cmd(&bin("vault-put"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .args(["--vault", "s3://b/p"])
        .manifests_in(&[m])
        .run()
        .fails_with(2)
        .stderr_contains("no S3 credentials");
    assert_eq!(s.spool_files().len(), 1);
}

#[test]
fn failed_manifests_pass_through_untouched() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let line = r#"{"schema":"stackvault.manifest/1","id":"qdrant_docs_20250130_020000","kind":"qdrant","created_at":"2025-01-30T02:00:00Z","status":"failed","error":"snapshot timed out","x_other":{"a":1}}"#;
    let out = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .stdin(format!("{line}\n"))
        .run();
    out.succeeds();
    let a: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let b: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(a, b);
}

#[test]
fn sigterm_mid_upload_aborts_the_multipart_upload_and_keeps_everything() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let m = spooled(&s, "postgres_interrupted_20250130_020000", 200 << 20);
    let input = format!("{}\n", serde_json::to_string(&m).unwrap());
    let child = s
        .cmd(&bin("vault-put"))
        .args([
            "--vault",
            &vault,
            "--s3-parallel",
            "1",
            "--s3-part-size",
            "5MiB",
            "--s3-multipart-threshold",
            "0",
        ])
        .spawn_with_stdin(input);
    // Wait until the upload is under way (some parts sent), then stop it.
    let bucket = testkit::bucket_of(&vault);
    let server = testkit::S3Server::from_env();
    let backend = server.backend(&bucket, "stack");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.incomplete_uploads(&bucket, "stack/").is_empty() {
        assert!(std::time::Instant::now() < deadline, "upload never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.signal("TERM");
    let out = child.wait();
    out.fails_with(2).stderr_contains("interrupted by a signal");
    let failed = out.manifest();
    assert_eq!(
        failed.status,
        Status::Failed,
        "the record in progress is emitted as failed"
    );
    assert_eq!(
        server.incomplete_uploads(&bucket, "stack/"),
        Vec::<String>::new(),
        "multipart upload left behind"
    );
    assert!(
        vault::Backend::list(&backend, "").unwrap().is_empty(),
        "nothing may be stored"
    );
    assert_eq!(
        s.spool_files(),
        ["postgres_interrupted_20250130_020000.dump"]
    );
}

#[test]
fn the_seed_scripts_minio_variables_are_accepted() {
    let s = Scenario::new();
    let vault = s.s3_vault(); // creates the bucket
    let bucket = testkit::bucket_of(&vault);
    let server = testkit::S3Server::from_env();
    let m = spooled(&s, "postgres_minio_20250130_020000", 3000);
    let out = s
        .cmd(&bin("vault-put"))
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        // host:port without a scheme, as the original scripts set it
        .env(
            "MINIO_ENDPOINT",
            server.endpoint.trim_start_matches("http://"),
        )
        .env("MINIO_ACCESS_KEY", &server.access_key)
        .env("MINIO_SECRET_KEY", &server.secret_key)
        .env("MINIO_BUCKET", &bucket)
        .manifests_in(&[m])
        .run();
    out.succeeds();
    let url = out.manifest().vault.unwrap().url;
    assert_eq!(
        url,
        format!("s3://{bucket}/postgres/2025/01/30/postgres_minio_20250130_020000.dump")
    );
}

/// vault-put through a proxy that answers some part uploads with 503.
fn put_through_faulty_proxy(
    failures: usize,
    retries: &str,
) -> (Scenario, testkit::Outcome, testkit::FaultyProxy, String) {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let server = testkit::S3Server::from_env();
    let proxy = testkit::FaultyProxy::start(&server.endpoint, "partNumber=2&", failures);
    let m = spooled(&s, "postgres_flaky_20250130_020000", 12 << 20);
    let out = s
        .cmd(&bin("vault-put"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args([
            "--vault",
            &vault,
            "--s3-part-size",
            "5MiB",
            "--s3-retries",
            retries,
            "--s3-multipart-threshold",
            "0",
        ])
        .manifests_in(&[m])
        .run();
    let bucket = testkit::bucket_of(&vault);
    (s, out, proxy, bucket)
}

#[test]
fn transient_s3_errors_are_retried() {
    let (s, out, proxy, _) = put_through_faulty_proxy(2, "3");
    out.succeeds();
    assert_eq!(
        proxy.hits(),
        3,
        "part 2 sent three times: two 503s, then success"
    );
    assert!(out.manifest().vault.is_some());
    assert!(s.spool_files().is_empty());
}

#[test]
fn a_part_that_keeps_failing_aborts_the_upload_and_keeps_the_spool_file() {
    let (s, out, proxy, bucket) = put_through_faulty_proxy(usize::MAX, "1");
    out.fails_with(1)
        .stderr_contains("upload part 2")
        .stderr_contains("HTTP 503 (SlowDown")
        .stderr_contains("gave up after 2 attempts");
    assert_eq!(proxy.hits(), 2);
    assert_eq!(out.manifest().status, Status::Failed);
    let server = testkit::S3Server::from_env();
    assert_eq!(
        server.incomplete_uploads(&bucket, "stack/"),
        Vec::<String>::new(),
        "orphan parts"
    );
    let backend = server.backend(&bucket, "stack");
    assert!(
        vault::Backend::list(&backend, "").unwrap().is_empty(),
        "nothing may be stored"
    );
    assert_eq!(s.spool_files(), ["postgres_flaky_20250130_020000.dump"]);
}

#[test]
fn create_vault_makes_a_missing_bucket_or_directory_and_is_idempotent() {
    let s = Scenario::new();
    let bucket = format!("{}-created", s.db().replace('_', "-"));
    for vault in [
        format!("s3://{bucket}/stack"),
        format!("file://{}", s.path().join("new-vault").display()),
    ] {
        for _ in 0..2 {
            s.cmd(&bin("vault-put"))
                .args(["--vault", &vault, "--create-vault"])
                .run()
                .succeeds()
                .stderr_contains("is ready");
        }
        let m = spooled(&s, "postgres_app_20250130_020000", 1000);
        let out = s
            .cmd(&bin("vault-put"))
            .args(["--vault", &vault])
            .manifests_in(&[m])
            .run();
        out.succeeds();
        assert_eq!(out.manifest().status, Status::Ok);
    }
    assert!(s.path().join("new-vault").is_dir());
}

/// vault-put of a 12 MiB file (5 MiB parts) through a proxy that records what was asked,
/// with `extra` flags.
fn put_recorded(
    s: &Scenario,
    id: &str,
    rules: &[(&str, usize)],
    extra: &[&str],
) -> (testkit::Outcome, testkit::FaultyProxy, manifest::Manifest) {
    let vault = s.s3_vault();
    let server = testkit::S3Server::from_env();
    let proxy = testkit::FaultyProxy::start_with(&server.endpoint, rules);
    let m = spooled(s, id, 12 << 20);
    let out = s
        .cmd(&bin("vault-put"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args(["--vault", &vault, "--s3-part-size", "5MiB", "--no-progress"])
        .args(extra)
        .manifests_in(std::slice::from_ref(&m))
        .run();
    (out, proxy, m)
}

#[test]
fn a_file_up_to_the_threshold_goes_in_one_put_carrying_the_manifests_sha256() {
    use base64::Engine;
    // (threshold flags, one streamed PUT?)
    let cases: [(&[&str], bool); 3] = [
        (&[], true),
        (&["--s3-multipart-threshold", "12MiB"], true),
        (&["--s3-multipart-threshold", "10MiB"], false),
    ];
    for (i, (flags, streamed)) in cases.into_iter().enumerate() {
        let s = Scenario::new();
        let id = format!("postgres_one{i}_20250130_020000");
        let (out, proxy, m) = put_recorded(&s, &id, &[], flags);
        out.succeeds();
        let sha = m.artifact.as_ref().unwrap().sha256;
        let b64 = base64::engine::general_purpose::STANDARD.encode(sha.as_bytes());
        let heads: Vec<String> = proxy
            .request_heads()
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let artifact_puts: Vec<&String> = heads
            .iter()
            .filter(|h| h.starts_with("put ") && h.contains(&format!("{id}.dump")))
            .filter(|h| !h.contains(".manifest.json"))
            .collect();
        let started_multipart = heads.iter().any(|h| h.contains("?uploads"));
        assert_eq!(started_multipart, !streamed, "{flags:?}");
        if streamed {
            assert_eq!(artifact_puts.len(), 1, "{flags:?}: {artifact_puts:?}");
            assert!(
                artifact_puts[0]
                    .contains(&format!("x-amz-checksum-sha256: {}", b64.to_lowercase())),
                "{}",
                artifact_puts[0]
            );
        } else {
            assert_eq!(artifact_puts.len(), 3, "three parts: {flags:?}");
        }
        assert_eq!(
            out.manifest().vault.unwrap().verified.as_deref(),
            Some("server-checksums")
        );
        assert!(s.spool_files().is_empty());
    }
}

#[test]
fn a_streamed_put_that_fails_is_sent_again_whole_and_stores_the_file() {
    let s = Scenario::new();
    let id = "postgres_again_20250130_020000";
    // The artifact's PUT (not its sidecar's, not the probes').
    let bucket = testkit::bucket_of(&s.s3_vault());
    let pattern = format!("PUT /{bucket}/stack/postgres/2025/01/30/{id}.dump HTTP");
    let (out, proxy, m) = put_recorded(&s, id, &[(&pattern, 1)], &[]);
    out.succeeds();
    assert_eq!(
        proxy.hits_of(&pattern),
        2,
        "a 503, then the whole file again"
    );
    let stored = out.manifest().vault.unwrap();
    let artifact = m.artifact.unwrap();
    assert_eq!(
        (stored.bytes, stored.sha256),
        (artifact.bytes, artifact.sha256)
    );
    let got = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &s.s3_vault()])
        .stdin(out.stdout.clone())
        .run();
    got.succeeds();
    let local = got.manifest().artifact.unwrap();
    assert_eq!(
        toolkit::fs::hash_file(&local.path).unwrap(),
        (artifact.bytes, artifact.sha256)
    );
}

#[test]
fn sigterm_mid_streamed_put_stores_nothing_and_keeps_everything() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let m = spooled(&s, "postgres_cut_20250130_020000", 300 << 20);
    let input = format!("{}\n", serde_json::to_string(&m).unwrap());
    let child = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault, "--no-progress"])
        .spawn_with_stdin(input);
    // The create-only probe is written just before the artifact's PUT starts.
    let bucket = testkit::bucket_of(&vault);
    let server = testkit::S3Server::from_env();
    let backend = server.backend(&bucket, "stack");
    let probe = server.backend(&bucket, "stack/.stackvault");
    let probe_key = vault::ObjectKey::new("create-only-probe").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !vault::Backend::exists(&probe, &probe_key).unwrap() {
        assert!(std::time::Instant::now() < deadline, "upload never started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.signal("TERM");
    let out = child.wait();
    out.fails_with(2).stderr_contains("interrupted by a signal");
    assert_eq!(out.manifest().status, Status::Failed);
    assert!(
        vault::Backend::list(&backend, "").unwrap().is_empty(),
        "nothing may be stored"
    );
    assert_eq!(s.spool_files(), ["postgres_cut_20250130_020000.dump"]);
}
