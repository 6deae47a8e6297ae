//! What was found when the tools were tried as an attacker or an unlucky operator would:
//! each test reproduces one finding and proves it fixed, on the real servers.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use manifest::{Kind, Status};
use testkit::Scenario;

use crate::util::{bin, manifest_for, spooled};

fn mkfifo(path: &std::path::Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

fn line(m: &serde_json::Value) -> String {
    format!("{m}\n")
}

// ---- the spool and the ids ----------------------------------------------------------

#[test]
fn a_planted_partial_symlink_is_neither_followed_nor_truncated() {
    let s = Scenario::new();
    s.sql(s.db(), "CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    std::fs::create_dir_all(s.spool()).unwrap();
    let victim = s.path().join("victim");
    std::fs::write(&victim, b"an operator's precious file").unwrap();
    // The next few seconds' dump names, planted as symlinks to the victim.
    let now = std::time::SystemTime::now();
    for ahead in 0..8 {
        let at = manifest::time::Timestamp::from_system_time(now + Duration::from_secs(ahead));
        let name = format!("postgres_{}_{}.dump.partial", s.db(), at.compact());
        std::os::unix::fs::symlink(&victim, s.spool().join(name)).unwrap();
    }
    let out = s.cmd(&bin("dump-pg")).args(["--dbname", s.db()]).run();
    out.fails_with(1)
        .stderr_contains("not a regular file (a symlink?)");
    assert_eq!(out.manifest().status, Status::Failed);
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"an operator's precious file"
    );
}

#[test]
fn ids_that_could_escape_or_forge_output_are_refused_before_anything_is_written() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let good = spooled(&s, "postgres_x_20250130_020000", 10);
    let mut text = serde_json::to_value(&good).unwrap();
    for evil in [
        "postgres_../../../tmp/evil_20250130_020000",
        "postgres_a\n\u{1b}[31mvault-put: stored everything_20250130_020000",
    ] {
        text["id"] = serde_json::json!(evil);
        let out = s
            .cmd(&bin("vault-put"))
            .args(["--vault", &vault])
            .stdin(line(&text))
            .run();
        out.fails_with(2)
            .stderr_contains("stdin line 1: invalid manifest: invalid id");
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "one line, control characters escaped: {}",
            out.stderr
        );
        assert!(!out.stderr.contains('\u{1b}'), "{}", out.stderr);
        assert!(!s.path().join("vault").exists() || walk_files(&s.path().join("vault")).is_empty());
    }
    assert!(!std::path::Path::new("/tmp/evil_20250130_020000.dump").exists());
}

#[test]
fn an_id_is_tied_to_its_kind_and_date() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let m = spooled(&s, "postgres_x_20250130_020000", 10);
    let mut text = serde_json::to_value(&m).unwrap();
    let cases = [
        (
            "created_at",
            serde_json::json!("2025-02-01T02:00:00Z"),
            "is not the record's created_at",
        ),
        (
            "kind",
            serde_json::json!("qdrant"),
            "the record's kind is qdrant",
        ),
    ];
    for (field, value, want) in cases {
        let original = text[field].clone();
        text[field] = value;
        s.cmd(&bin("vault-put"))
            .args(["--vault", &vault])
            .stdin(line(&text))
            .run()
            .fails_with(2)
            .stderr_contains(want);
        text[field] = original;
    }
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

#[test]
fn a_manifest_naming_a_file_outside_the_spool_uploads_it_and_keeps_it() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let copy = s.path().join("passwd");
    std::fs::copy("/etc/passwd", &copy).unwrap();
    let data = std::fs::read(&copy).unwrap();
    let m = manifest_for("postgres_passwd_20250130_020000", &copy, &data);
    let out = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .manifests_in(&[m])
        .run();
    out.succeeds().stderr_contains("it is not in the spool");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        data,
        "a file outside the spool is never deleted"
    );
    assert!(out.manifest().vault.is_some());
}

#[test]
fn fifos_are_refused_at_once_by_every_tool_that_opens_a_file() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    std::fs::create_dir_all(s.spool()).unwrap();
    let fifo = s.spool().join("postgres_fifo_20250130_020000.dump");
    mkfifo(&fifo);
    let m = manifest_for("postgres_fifo_20250130_020000", &fifo, b"whatever");
    let started = Instant::now();
    s.cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .manifests_in(std::slice::from_ref(&m))
        .run()
        .fails_with(1)
        .stderr_contains("not a regular file");
    s.cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", "x", "--create"])
        .manifests_in(&[m])
        .run()
        .fails_with(1)
        .stderr_contains("not a regular file");

    // A FIFO in the spool under the name of a download.
    let stored = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .manifests_in(&[spooled(&s, "postgres_real_20250130_020000", 100)])
        .run();
    stored.succeeds();
    mkfifo(&s.spool().join("postgres_real_20250130_020000.dump"));
    s.cmd(&bin("vault-get"))
        .args(["--vault", &vault])
        .stdin(stored.stdout.clone())
        .run()
        .fails_with(1)
        .stderr_contains("exists already");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "nothing blocked on a FIFO"
    );
}

#[test]
fn a_spool_that_others_can_write_is_refused() {
    let s = Scenario::new();
    std::fs::create_dir_all(s.spool()).unwrap();
    std::fs::set_permissions(s.spool(), std::fs::Permissions::from_mode(0o777)).unwrap();
    s.cmd(&bin("dump-pg"))
        .args(["--dbname", s.db()])
        .run()
        .fails_with(2)
        .stderr_contains("writable by everyone");
}

#[test]
fn two_dumps_of_one_database_in_the_same_second_never_share_a_file() {
    let s = Scenario::new();
    s.sql(
        s.db(),
        "CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 1000);",
    );
    // A pg_dump that takes a second to start, so that the two runs overlap.
    let bindir = crate::util::pg_dump_wrapper(&s, "slowbin", "sleep 1\nexec \"$REAL\" \"$@\"");
    // Start both just after a second begins, so they get the same id.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    std::thread::sleep(Duration::from_nanos(
        1_000_000_000 - now.subsec_nanos() as u64 + 20_000_000,
    ));
    let runs: Vec<_> = (0..2)
        .map(|_| {
            s.cmd(&bin("dump-pg"))
                .args(["--dbname", s.db(), "--pg-bindir", bindir.to_str().unwrap()])
                .spawn_with_stdin("")
        })
        .collect();
    let outs: Vec<_> = runs.into_iter().map(|r| r.wait()).collect();
    let manifests: Vec<_> = outs.iter().map(|o| o.manifest()).collect();
    assert_eq!(
        manifests[0].id, manifests[1].id,
        "the runs did not start in the same second"
    );
    let ok: Vec<_> = manifests.iter().filter(|m| m.is_ok()).collect();
    assert_eq!(
        ok.len(),
        1,
        "exactly one run writes the dump: {manifests:?}"
    );
    let refused = outs
        .iter()
        .find(|o| o.code == Some(1))
        .expect("one run refused");
    assert!(
        refused.stderr.contains("being written by another process"),
        "{}",
        refused.stderr
    );
    let artifact = ok[0].artifact.as_ref().unwrap();
    assert_eq!(
        toolkit::fs::hash_file(&artifact.path).unwrap(),
        (artifact.bytes, artifact.sha256),
        "the ok manifest describes the file exactly"
    );
}

#[test]
fn colliding_names_and_unknown_kinds_and_statuses_do_not_stop_a_pipeline() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    // A newer producer's kind and status: stored, listed, passed on; never restored.
    let m = spooled(&s, "postgres_cache_20250130_020000", 100);
    let mut text = serde_json::to_value(&m).unwrap();
    text["kind"] = serde_json::json!("redis");
    text["id"] = serde_json::json!("redis_cache_20250130_020000");
    let mut verified = text.clone();
    verified["id"] = serde_json::json!("redis_other_20250130_020000");
    verified["status"] = serde_json::json!("verified");
    let out = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .stdin(format!("{}{}", line(&text), line(&verified)))
        .run();
    out.succeeds();
    let ms = out.manifests();
    assert_eq!(ms[0].kind, Kind::Other("redis".into()));
    assert!(ms[0]
        .vault
        .as_ref()
        .unwrap()
        .url
        .contains("/redis/2025/01/30/redis_cache_20250130_020000."));
    assert_eq!(
        serde_json::to_value(&ms[1]).unwrap(),
        verified,
        "an unknown status passes untouched"
    );
    let listed = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--list"])
        .run();
    listed.succeeds();
    assert!(
        listed.stdout.contains("redis_cache_20250130_020000"),
        "{}",
        listed.stdout
    );
    let got = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault])
        .stdin(out.stdout.clone())
        .run();
    got.succeeds();
    s.cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", "x", "--create"])
        .stdin(got.stdout.lines().next().unwrap().to_owned() + "\n")
        .run()
        .fails_with(1)
        .stderr_contains("it is a redis backup; this tool restores postgres backups");
}

// ---- the vault: races, resumes, orphans -----------------------------------------------

fn race(s: &Scenario, vault: &str, size: usize) {
    let id = "postgres_race_20250130_020000";
    // Two hosts back up the same id at the same time, each from its own spool.
    let contents: Vec<Vec<u8>> = (0..2u8).map(|k| vec![k + 1; size]).collect();
    let runs: Vec<_> = contents
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let spool = s.path().join(format!("spool{i}"));
            std::fs::create_dir_all(&spool).unwrap();
            let path = spool.join(format!("{id}.dump"));
            std::fs::write(&path, data).unwrap();
            let m = manifest_for(id, &path, data);
            s.cmd(&bin("vault-put"))
                .env("STACKVAULT_SPOOL", &spool)
                .args(["--vault", vault, "--s3-part-size", "5MiB", "--no-progress"])
                .spawn_with_stdin(format!("{}\n", serde_json::to_string(&m).unwrap()))
        })
        .collect();
    let outs: Vec<_> = runs.into_iter().map(|r| r.wait()).collect();
    let ok: Vec<usize> = (0..2).filter(|&i| outs[i].code == Some(0)).collect();
    assert_eq!(ok.len(), 1, "exactly one run wins: {outs:#?}");
    let (winner, loser) = (ok[0], 1 - ok[0]);
    // Refused before or after uploading, depending on when it saw the winner's object.
    outs[loser].fails_with(1).stderr_contains("overwritten");
    // The vault holds the winner's bytes, and its sidecar says so.
    let got = s
        .cmd(&bin("vault-get"))
        .args(["--vault", vault, "--id", id])
        .run();
    got.succeeds();
    let local = got.manifest().artifact.unwrap();
    assert_eq!(std::fs::read(&local.path).unwrap(), contents[winner]);
    // The winner's spool file is gone (verified upload); the loser's stays.
    assert!(!s.path().join(format!("spool{winner}/{id}.dump")).exists());
    assert_eq!(
        std::fs::read(s.path().join(format!("spool{loser}/{id}.dump"))).unwrap(),
        contents[loser]
    );
}

#[test]
fn two_runs_storing_one_id_at_once_on_s3_exactly_one_wins_and_nothing_is_lost() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    race(&s, &vault, 40 << 20);
    let server = testkit::S3Server::from_env();
    assert!(
        server
            .incomplete_uploads(&testkit::bucket_of(&vault), "stack/")
            .is_empty(),
        "the loser aborted its upload"
    );
}

#[test]
fn two_runs_storing_one_id_at_once_in_a_directory_exactly_one_wins() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    race(&s, &vault, 40 << 20);
}

#[test]
fn the_s3_backend_keeps_the_backend_contract() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let backend = testkit::S3Server::from_env().backend(&testkit::bucket_of(&vault), "stack");
    vault::contract::exercise_backend(&backend);
}

#[test]
fn seaweedfs_honours_create_only_writes() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let backend = testkit::S3Server::from_env().backend(&testkit::bucket_of(&vault), "stack");
    assert_eq!(
        vault::Backend::create_only(&backend).unwrap(),
        vault::CreateOnly::Atomic,
        "SeaweedFS refused the second If-None-Match PUT of the probe"
    );
    // Two multipart uploads of one key, both past the check before the write: only the
    // create-only Complete can keep the later one out. The first's Complete is held at a
    // proxy until the second has stored its object, so the order is fixed, not raced:
    // two Completes sent at the same instant are SeaweedFS's own atomicity (4.48 has let
    // both through under heavy load), which no client can add.
    let racing = vault::ObjectKey::new("postgres/2025/01/30/race.dump").unwrap();
    let data: Vec<Vec<u8>> = (0..2u8).map(|k| vec![k + 7; 12 << 20]).collect();
    let server = testkit::S3Server::from_env();
    let proxy = testkit::FaultyProxy::holding(&server.endpoint, "race.dump?uploadId=");
    let held = testkit::S3Server {
        endpoint: proxy.endpoint.clone(),
        ..server.clone()
    }
    .backend(&testkit::bucket_of(&vault), "stack");
    let put = |backend: &vault::S3Backend, bytes: &[u8]| {
        vault::Backend::put(
            backend,
            &racing,
            &mut &bytes[..],
            vault::Expect::exact(bytes.len() as u64, None),
            &toolkit::progress::Hidden,
        )
    };
    let loser = std::thread::scope(|scope| {
        let first = scope.spawn(|| put(&held, &data[0]));
        proxy.wait_until_held();
        put(&backend, &data[1]).expect("the second upload completes first");
        proxy.release();
        first.join().unwrap().unwrap_err()
    });
    assert_eq!(loser.kind(), vault::ErrorKind::AlreadyExists, "{loser}");
    assert!(
        loser
            .to_string()
            .contains("another upload created it first"),
        "refused by the server at Complete (412), not by the check before: {loser}"
    );
    let mut stored = Vec::new();
    vault::Backend::get(&backend, &racing, &mut stored, &toolkit::progress::Hidden).unwrap();
    assert!(stored == data[1], "the first stored object's bytes, whole");
    assert!(server
        .incomplete_uploads(&testkit::bucket_of(&vault), "stack/")
        .is_empty());
    // A create-only PUT of an existing key, sent behind vault-put's back, is refused too.
    let key = vault::ObjectKey::new("postgres/2025/01/30/x.dump").unwrap();
    vault::Backend::put(
        &backend,
        &key,
        &mut &b"one"[..],
        vault::Expect::exact(3, None),
        &toolkit::progress::Hidden,
    )
    .unwrap();
    let err = vault::Backend::put(
        &backend,
        &key,
        &mut &b"two"[..],
        vault::Expect::exact(3, None),
        &toolkit::progress::Hidden,
    )
    .unwrap_err();
    assert_eq!(err.kind(), vault::ErrorKind::AlreadyExists);
}

/// vault-put through a proxy whose `rules` fail requests; returns the outcome.
fn put_through(
    s: &Scenario,
    vault: &str,
    rules: &[(&str, usize)],
    m: &manifest::Manifest,
    extra: &[&str],
) -> (testkit::Outcome, testkit::FaultyProxy) {
    let server = testkit::S3Server::from_env();
    let proxy = testkit::FaultyProxy::start_with(&server.endpoint, rules);
    let out = s
        .cmd(&bin("vault-put"))
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .args([
            "--vault",
            vault,
            "--s3-part-size",
            "5MiB",
            "--s3-retries",
            "0",
            "--no-progress",
        ])
        .args(extra)
        .manifests_in(std::slice::from_ref(m))
        .run();
    (out, proxy)
}

fn finishes_on_rerun(s: &Scenario, vault: &str, m: &manifest::Manifest) {
    let orphans = s
        .cmd(&bin("vault-get"))
        .args(["--vault", vault, "--orphans"])
        .run();
    orphans.succeeds();
    assert!(
        orphans.stdout.contains("artifact-without-sidecar"),
        "{}",
        orphans.stdout
    );
    s.cmd(&bin("vault-get"))
        .args(["--vault", vault, "--list"])
        .run()
        .succeeds()
        .stderr_contains("1 leftover(s) that are not backups");
    let again = s
        .cmd(&bin("vault-put"))
        .args(["--vault", vault])
        .manifests_in(std::slice::from_ref(m))
        .run();
    again
        .succeeds()
        .stderr_contains("the artifact was already stored");
    assert!(
        s.spool_files().is_empty(),
        "spool file deleted once the backup is complete"
    );
    let listed = s
        .cmd(&bin("vault-get"))
        .args(["--vault", vault, "--list", "--json"])
        .run();
    listed.succeeds();
    assert_eq!(listed.manifest().id, m.id);
    let orphans = s
        .cmd(&bin("vault-get"))
        .args(["--vault", vault, "--orphans"])
        .run();
    orphans.succeeds().stderr_contains("no leftovers");
}

#[test]
fn a_sidecar_write_that_fails_is_finished_by_the_next_run() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let m = spooled(&s, "postgres_sidecar_20250130_020000", 12 << 20);
    let (out, proxy) = put_through(&s, &vault, &[(".manifest.json HTTP", usize::MAX)], &m, &[]);
    out.fails_with(1)
        .stderr_contains("the artifact itself is stored and verified: run vault-put again");
    assert_eq!(proxy.hits_of(".manifest.json HTTP"), 1);
    assert_eq!(s.spool_files().len(), 1, "spool file kept");
    finishes_on_rerun(&s, &vault, &m);
}

#[test]
fn a_read_back_that_fails_after_the_object_is_complete_is_finished_by_the_next_run() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let bucket = testkit::bucket_of(&vault);
    let m = spooled(&s, "postgres_readback_20250130_020000", 12 << 20);
    // Every GET of the object fails: the read-back after the upload completed.
    let pattern = format!("GET /{bucket}/stack/postgres/");
    let (out, _proxy) = put_through(
        &s,
        &vault,
        &[(&pattern, usize::MAX)],
        &m,
        &["--verify", "read-back"],
    );
    out.fails_with(1).stderr_contains("HTTP 503");
    assert_eq!(s.spool_files().len(), 1);
    finishes_on_rerun(&s, &vault, &m);
}

#[test]
fn a_failed_abort_is_said_and_the_upload_named_in_the_failed_manifest() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let bucket = testkit::bucket_of(&vault);
    let m = spooled(&s, "postgres_abort_20250130_020000", 12 << 20);
    let (out, _proxy) = put_through(
        &s,
        &vault,
        &[("partNumber=2&", usize::MAX), ("DELETE /", usize::MAX)],
        &m,
        &["--s3-multipart-threshold", "0"],
    );
    out.fails_with(1).stderr_contains("could not be aborted");
    let failed = out.manifest();
    let incomplete = &failed.extra["incomplete_upload"];
    let upload_id = incomplete["upload_id"].as_str().unwrap().to_owned();
    assert!(incomplete["url"]
        .as_str()
        .unwrap()
        .ends_with("postgres_abort_20250130_020000.dump"));
    let server = testkit::S3Server::from_env();
    assert_eq!(server.incomplete_uploads(&bucket, "stack/").len(), 1);
    // The orphan listing finds it by that id; aborting it leaves nothing.
    let orphans = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--orphans"])
        .run();
    orphans.succeeds();
    assert!(orphans.stdout.contains(&upload_id), "{}", orphans.stdout);
    let backend = server.backend(&bucket, "stack");
    for leftover in vault::Backend::incomplete(&backend, "").unwrap() {
        vault::Backend::abort(&backend, &leftover).unwrap();
    }
    assert!(server.incomplete_uploads(&bucket, "stack/").is_empty());
}

#[test]
fn an_upload_killed_mid_way_is_found_and_aborted_on_seaweedfs() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let bucket = testkit::bucket_of(&vault);
    let server = testkit::S3Server::from_env();
    let m = spooled(&s, "postgres_killed_20250130_020000", 200 << 20);
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
        .spawn_with_stdin(format!("{}\n", serde_json::to_string(&m).unwrap()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.incomplete_uploads(&bucket, "stack/").is_empty() {
        assert!(Instant::now() < deadline, "upload never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.signal("KILL"); // no chance to clean up
    let _ = child.wait();
    assert_eq!(server.incomplete_uploads(&bucket, "stack/").len(), 1);
    let orphans = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--orphans"])
        .run();
    orphans.succeeds();
    assert!(
        orphans.stdout.contains("unfinished-upload"),
        "{}",
        orphans.stdout
    );
    s.cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--list"])
        .run()
        .succeeds()
        .stderr_contains("leftover(s) that are not backups");
    let backend = server.backend(&bucket, "stack");
    let found = vault::ops::orphans(&backend, "").unwrap();
    assert_eq!(found.len(), 1);
    vault::ops::sweep(&backend, &found[0]).unwrap();
    assert!(server.incomplete_uploads(&bucket, "stack/").is_empty());
}

#[test]
fn a_directory_uploads_temp_file_left_by_sigkill_is_found() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let day = s.path().join("vault/postgres/2025/01/30");
    std::fs::create_dir_all(&day).unwrap();
    // What SIGKILL during a directory upload leaves: an unlocked temp file.
    std::fs::write(
        day.join("postgres_x_20250130_020000.dump.upload-4242-0"),
        vec![0u8; 4096],
    )
    .unwrap();
    let orphans = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--orphans"])
        .run();
    orphans.succeeds();
    assert!(
        orphans.stdout.contains("unfinished-upload"),
        "{}",
        orphans.stdout
    );
    assert!(
        orphans.stdout.contains("upload-4242-0"),
        "{}",
        orphans.stdout
    );
}

// ---- timeouts -------------------------------------------------------------------------

fn put_to(s: &Scenario, endpoint: &str, extra: &[&str]) -> (testkit::Outcome, Duration) {
    let m = spooled(s, "postgres_slow_20250130_020000", 1000);
    let started = Instant::now();
    let out = s
        .cmd(&bin("vault-put"))
        .env("AWS_ENDPOINT_URL", endpoint)
        .args(["--vault", "s3://nowhere/stack", "--no-progress"])
        .args(extra)
        .manifests_in(&[m])
        .run();
    (out, started.elapsed())
}

#[test]
fn a_mute_endpoint_costs_what_the_request_timeout_and_the_budget_say() {
    let s = Scenario::new();
    let mute = testkit::mute_endpoint();
    // (flags, least and most time it may take)
    let cases: [(&[&str], u64, u64); 2] = [
        (&["--s3-timeout", "2s", "--s3-retries", "0"], 2, 5),
        (
            &[
                "--s3-timeout",
                "1s",
                "--s3-retries",
                "50",
                "--s3-give-up-after",
                "4s",
            ],
            4,
            8,
        ),
    ];
    for (flags, least, most) in cases {
        let (out, took) = put_to(&s, &mute, flags);
        out.fails_with(1).stderr_contains("the request timed out");
        assert!(
            took >= Duration::from_secs(least) && took <= Duration::from_secs(most),
            "{flags:?} took {took:?}"
        );
        assert_eq!(s.spool_files().len(), 1, "spool file kept");
        std::fs::remove_file(s.spool().join(&s.spool_files()[0])).unwrap();
    }
}

#[test]
fn an_endpoint_that_never_accepts_costs_the_connect_timeout() {
    let s = Scenario::new();
    let closed = testkit::unconnectable_endpoint();
    let (out, took) = put_to(
        &s,
        &closed.endpoint,
        &["--s3-connect-timeout", "1s", "--s3-retries", "1"],
    );
    out.fails_with(1)
        .stderr_contains("cannot connect within 1 s");
    // Two attempts of 1 s and a 0.25 s backoff.
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "took {took:?}"
    );
}

// ---- failures that must say what happened ---------------------------------------------

#[test]
fn a_full_spool_during_a_dump_says_the_spool_ran_out_of_space() {
    let s = Scenario::new();
    crate::util::load_rich(&s, s.db());
    std::fs::create_dir_all(s.spool()).unwrap();
    // A 256 KiB tmpfs as the spool, in a mount namespace of its own (nothing to unmount).
    let dump_pg = bin("dump-pg");
    let script = format!(
        "mount -t tmpfs -o size=256k,mode=0700 tmpfs {spool} && exec {dump_pg} --dbname {db}",
        spool = s.spool().display(),
        dump_pg = dump_pg.display(),
        db = s.db()
    );
    let out = s
        .cmd(std::path::Path::new("unshare"))
        .args(["-m", "sh", "-c", &script])
        .run();
    out.fails_with(1)
        .stderr_contains("ran out of space while pg_dump was writing")
        .stderr_contains(&s.spool().display().to_string());
    assert!(!out.stderr.contains("SIGKILL"), "{}", out.stderr);
    let m = out.manifest();
    assert_eq!(m.status, Status::Failed);
    assert!(m.artifact.is_none());
}

#[test]
fn the_first_sigterm_stops_a_tool_blocked_on_a_silent_child() {
    let s = Scenario::new();
    let bindir = crate::util::pg_dump_wrapper(&s, "hangbin", "exec sleep 600");
    let child = s
        .cmd(&bin("dump-pg"))
        .args(["--dbname", s.db(), "--pg-bindir", bindir.to_str().unwrap()])
        .spawn_with_stdin("");
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    child.signal("TERM");
    let out = child.wait();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    out.fails_with(2).stderr_contains("interrupted by a signal");
    assert_eq!(
        out.manifest().status,
        Status::Failed,
        "the record in progress is emitted"
    );
    assert!(s.spool_files().is_empty(), "{:?}", s.spool_files());
}

#[test]
fn a_manifest_too_large_for_a_sidecar_is_refused_before_anything_is_stored() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let m = spooled(&s, "postgres_huge_20250130_020000", 10);
    let mut text = serde_json::to_value(&m).unwrap();
    // Over the line cap: refused as input, by line number.
    text["padding"] = serde_json::json!("x".repeat(50 << 20));
    s.cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .stdin(line(&text))
        .run()
        .fails_with(2)
        .stderr_contains("stdin line 1: longer than 16 MiB");
    // Under the line cap (1.1 million short entries: 13.6 MiB as a line), too large once
    // stored as a pretty-printed sidecar (20 MiB).
    let many: serde_json::Map<String, serde_json::Value> = (0..1_100_000)
        .map(|i| (format!("k{i}"), serde_json::json!(0)))
        .collect();
    text["padding"] = serde_json::Value::Object(many);
    let out = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .stdin(line(&text))
        .run();
    out.fails_with(1)
        .stderr_contains("a sidecar may be at most 16 MiB");
    assert!(walk_files(&s.path().join("vault")).is_empty());
    assert_eq!(s.spool_files().len(), 1);
}

#[test]
fn a_restore_that_nothing_proves_is_unverified_and_fails_unless_accepted() {
    let s = Scenario::new();
    s.sql(s.db(), "CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    let dumped = s.cmd(&bin("dump-pg")).args(["--dbname", s.db()]).run();
    dumped.succeeds();
    let base = dumped.manifest();
    let mut no_stats = base.clone();
    no_stats.stats = None;
    let mut malformed = base.clone();
    malformed.stats = Some(serde_json::json!({"tables": "all of them"}));
    let cases = [
        (no_stats, "has no stats"),
        (malformed, "not a valid postgres fingerprint"),
    ];
    for (i, (m, why)) in cases.into_iter().enumerate() {
        let target = s.db_name(&format!("unproven{i}"));
        let out = s
            .cmd(&bin("dump-pg"))
            .args(["restore", "--target-db", &target, "--create"])
            .manifests_in(std::slice::from_ref(&m))
            .run();
        out.fails_with(1)
            .stderr_contains("UNVERIFIED")
            .stderr_contains(why);
        let r = out.manifest();
        assert_eq!(r.status, Status::Failed);
        assert_eq!(r.restore.as_ref().unwrap()["result"], "unverified");
        let accepted = s.db_name(&format!("accepted{i}"));
        let out = s
            .cmd(&bin("dump-pg"))
            .args([
                "restore",
                "--target-db",
                &accepted,
                "--create",
                "--accept-unverified",
            ])
            .manifests_in(&[m])
            .run();
        out.succeeds().stderr_contains("UNVERIFIED");
        let r = out.manifest();
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.restore.as_ref().unwrap()["result"], "unverified");
    }
}

#[test]
fn help_never_shows_a_secret_from_the_environment() {
    let s = Scenario::new();
    let secret = "pa55-in-a-url";
    for tool in ["dump-pg", "snap-qdrant", "vault-put", "vault-get"] {
        for args in [&["--help"][..], &["restore", "--help"][..]] {
            if !["dump-pg", "snap-qdrant"].contains(&tool) && args.len() == 2 {
                continue;
            }
            let out = s
                .cmd(&bin(tool))
                .env("QDRANT_URL", format!("http://u:{secret}@qdrant:6333"))
                .env("QDRANT_API_KEY", secret)
                .env("PGDATABASE", format!("postgresql://u:{secret}@db/app"))
                .env("PGPASSWORD", secret)
                .env("VAULT_URL", format!("s3://b/p?token={secret}"))
                .env("AWS_ENDPOINT_URL", format!("http://k:{secret}@minio:9000"))
                .args(args)
                .run();
            out.succeeds();
            assert!(
                !out.stdout.contains(secret),
                "{tool} {args:?}:\n{}",
                out.stdout
            );
        }
    }
}
