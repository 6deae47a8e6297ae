//! Faults on the night it runs long: the S3 server killed mid-transfer and restarted, a full
//! spool during a download, pg_dump killed mid-run — and secrets that must never leak.

use std::time::{Duration, Instant};

use manifest::Status;
use testkit::{OwnS3, Scenario};

use crate::util::{bin, pg_dump_wrapper, spooled};

/// A command pointed at `own` instead of the shared test server.
fn at(s: &Scenario, own: &OwnS3, tool: &str) -> testkit::TestCommand {
    s.cmd(&bin(tool))
        .env("AWS_ENDPOINT_URL", &own.endpoint)
        .env("AWS_ACCESS_KEY_ID", &own.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &own.secret_key)
}

fn own_server(own: &OwnS3) -> testkit::S3Server {
    testkit::S3Server {
        endpoint: own.endpoint.clone(),
        access_key: own.access_key.clone(),
        secret_key: own.secret_key.clone(),
        region: "us-east-1".into(),
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_s3_server_killed_mid_upload_leaves_nothing_but_a_sweepable_upload_and_a_rerun_succeeds() {
    let s = Scenario::new();
    let own = OwnS3::start("faults");
    let server = own_server(&own);
    let m = spooled(&s, "postgres_killed_20250130_020000", 200 << 20);
    let child = at(&s, &own, "vault-put")
        .args([
            "--vault",
            "s3://faults/stack",
            "--s3-parallel",
            "1",
            "--s3-part-size",
            "5MiB",
            "--s3-multipart-threshold",
            "0",
        ])
        .args([
            "--s3-retries",
            "2",
            "--s3-give-up-after",
            "3s",
            "--no-progress",
        ])
        .spawn_with_stdin(format!("{}\n", serde_json::to_string(&m).unwrap()));
    wait_until("the multipart upload started", || {
        !server.incomplete_uploads("faults", "stack/").is_empty()
    });
    own.kill();
    let out = child.wait();
    out.fails_with(1).stderr_contains("could not be aborted");
    let failed = out.manifest();
    assert_eq!(failed.status, Status::Failed);
    assert!(failed.extra["incomplete_upload"]["upload_id"].is_string());
    let backend =
        spool_kept_and_nothing_stored_after_restart(&s, &own, "postgres_killed_20250130_020000");
    // The upload the dead server could not abort is found and swept.
    let orphans = at(&s, &own, "vault-get")
        .args(["--vault", "s3://faults/stack", "--orphans"])
        .run();
    orphans.succeeds();
    assert!(
        orphans.stdout.contains("unfinished-upload"),
        "{}",
        orphans.stdout
    );
    for orphan in vault::ops::orphans(&backend, "").unwrap() {
        vault::ops::sweep(&backend, &orphan).unwrap();
    }
    assert!(server.incomplete_uploads("faults", "stack/").is_empty());
    at(&s, &own, "vault-put")
        .args(["--vault", "s3://faults/stack"])
        .manifests_in(&[m])
        .run()
        .succeeds();
    assert!(s.spool_files().is_empty());
}

#[test]
fn the_s3_server_killed_mid_streamed_put_stores_nothing_and_a_rerun_succeeds() {
    let s = Scenario::new();
    let own = OwnS3::start("faults");
    let m = spooled(&s, "postgres_cutput_20250130_020000", 300 << 20);
    let child = at(&s, &own, "vault-put")
        .args(["--vault", "s3://faults/stack", "--no-progress"])
        .args(["--s3-retries", "2", "--s3-give-up-after", "3s"])
        .spawn_with_stdin(format!("{}\n", serde_json::to_string(&m).unwrap()));
    // The create-only probe is written just before the artifact's PUT starts.
    let probe = own.backend("faults", "stack/.stackvault");
    let probe_key = vault::ObjectKey::new("create-only-probe").unwrap();
    wait_until("the streamed PUT started", || {
        vault::Backend::exists(&probe, &probe_key).unwrap_or(false)
    });
    std::thread::sleep(Duration::from_millis(150));
    own.kill();
    let out = child.wait();
    out.fails_with(1);
    assert_eq!(out.manifest().status, Status::Failed);
    spool_kept_and_nothing_stored_after_restart(&s, &own, "postgres_cutput_20250130_020000");
    at(&s, &own, "vault-put")
        .args(["--vault", "s3://faults/stack"])
        .manifests_in(&[m])
        .run()
        .succeeds();
    assert!(s.spool_files().is_empty());
}

/// After an upload to `own` failed with the server killed: the spool holds `id`'s dump
/// alone, and once the server is back no object is in the vault. Returns the vault.
fn spool_kept_and_nothing_stored_after_restart(
    s: &Scenario,
    own: &OwnS3,
    id: &str,
) -> vault::s3::S3Backend {
    assert_eq!(s.spool_files(), [format!("{id}.dump")], "spool kept");
    own.restart();
    let backend = own.backend("faults", "stack");
    assert!(
        vault::Backend::list(&backend, "").unwrap().is_empty(),
        "no object at the key"
    );
    backend
}

/// Uploads `size` bytes to `own` and returns the stored manifest line.
fn stored(s: &Scenario, own: &OwnS3, id: &str, size: usize) -> String {
    let put = at(s, own, "vault-put")
        .args(["--vault", "s3://faults/stack"])
        .manifests_in(&[spooled(s, id, size)])
        .run();
    put.succeeds();
    put.stdout.clone()
}

fn partial_exists(s: &Scenario) -> bool {
    s.spool_files().iter().any(|f| f.ends_with(".partial"))
}

#[test]
fn the_s3_server_killed_mid_download_is_a_clear_failure_and_a_restart_in_time_is_resumed() {
    let s = Scenario::new();
    let own = OwnS3::start("faults");
    let line = stored(&s, &own, "postgres_dl_20250130_020000", 300 << 20);
    let slow = [
        "--vault",
        "s3://faults/stack",
        "--s3-parallel",
        "1",
        "--s3-part-size",
        "5MiB",
        "--no-progress",
    ];

    // Killed for good: a clear error, the partial download removed.
    let child = at(&s, &own, "vault-get")
        .args(slow)
        .args(["--s3-retries", "1", "--s3-give-up-after", "2s"])
        .spawn_with_stdin(line.clone());
    wait_until("the download started", || partial_exists(&s));
    own.kill();
    let out = child.wait();
    out.fails_with(1).stderr_contains("cannot reach");
    assert_eq!(out.manifest().status, Status::Failed);
    assert!(
        s.spool_files().is_empty(),
        "partial removed: {:?}",
        s.spool_files()
    );

    // Killed and back within the retries: the download goes on from where it was.
    own.restart();
    let child = at(&s, &own, "vault-get")
        .args(slow)
        .args(["--s3-retries", "30", "--s3-give-up-after", "60s"])
        .spawn_with_stdin(line);
    wait_until("the download started", || partial_exists(&s));
    own.kill();
    std::thread::sleep(Duration::from_millis(500));
    own.restart();
    let out = child.wait();
    out.succeeds();
    let local = out.manifest().artifact.unwrap();
    assert_eq!(
        toolkit::fs::hash_file(&local.path).unwrap(),
        (local.bytes, local.sha256)
    );
}

#[test]
fn a_full_spool_during_a_download_says_so_and_leaves_no_partial_file() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let put = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .manifests_in(&[spooled(&s, "postgres_full_20250130_020000", 4 << 20)])
        .run();
    put.succeeds();
    let spool = s.path().join("small-spool");
    std::fs::create_dir_all(&spool).unwrap();
    // A 1 MiB tmpfs as the spool, in a mount namespace of its own; after the failure the
    // spool is listed from inside it.
    let script = format!(
        "mount -t tmpfs -o size=1m,mode=0700 tmpfs {spool} && {get} --vault {vault} --no-progress; \
         rc=$?; ls -A {spool} >&2; exit $rc",
        spool = spool.display(),
        get = bin("vault-get").display(),
    );
    let out = s
        .cmd(std::path::Path::new("unshare"))
        .env("STACKVAULT_SPOOL", &spool)
        .args(["-m", "sh", "-c", &script])
        .stdin(put.stdout.clone())
        .run();
    out.fails_with(1)
        .stderr_contains("ran out of space while downloading")
        .stderr_contains(&spool.display().to_string());
    assert_eq!(out.manifest().status, Status::Failed);
    assert!(
        !out.stderr.contains(".partial"),
        "partial left: {}",
        out.stderr
    );
}

#[test]
fn pg_dump_killed_mid_run_is_a_failed_backup_never_an_ok_one() {
    let s = Scenario::new();
    s.sql(s.db(), "CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
    // Writes the start of a dump, then dies as if the OOM killer took it.
    let bindir = pg_dump_wrapper(
        &s,
        "killedbin",
        "head -c 100000 /dev/urandom\nkill -KILL $$",
    );
    let out = s
        .cmd(&bin("dump-pg"))
        .args(["--dbname", s.db(), "--pg-bindir", bindir.to_str().unwrap()])
        .run();
    out.fails_with(1).stderr_contains("signal: 9");
    let m = out.manifest();
    assert_eq!(m.status, Status::Failed);
    assert!(m.artifact.is_none(), "a killed dump has no artifact");
    assert!(s.spool_files().is_empty(), "{:?}", s.spool_files());
}

/// The passwords and keys of the secrets test.
const PG_SECRET: &str = "pg-Secret-Pa55-4711";

#[test]
fn secrets_appear_in_no_argv_output_manifest_or_sidecar() {
    let s = Scenario::new();
    let role = "stackvault_secret"; // pg_hba makes it log in with a password
    s.sql(
        "postgres",
        &format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD '{PG_SECRET}';
             GRANT CONNECT ON DATABASE \"{db}\" TO {role}",
            db = s.db()
        ),
    );
    s.sql(
        s.db(),
        &format!("CREATE TABLE t (x int); INSERT INTO t VALUES (1); GRANT SELECT ON t TO {role}"),
    );
    let vault = s.s3_vault();
    let s3_secret = testkit::S3Server::from_env().secret_key;
    let secrets = [PG_SECRET.to_owned(), s3_secret];

    // Watch every process's command line while the pipeline runs.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let seen_in_argv = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                        if secrets.iter().any(|sec| cmdline.contains(sec.as_str())) {
                            seen.push(cmdline);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            seen
        });
        let mut outputs = Vec::new();
        let dumped = s
            .cmd(&bin("dump-pg"))
            .env("PGPASSWORD", PG_SECRET)
            .args(["--dbname", s.db(), "--username", role])
            .run();
        dumped.succeeds();
        let put = s
            .cmd(&bin("vault-put"))
            .args(["--vault", &vault])
            .stdin(dumped.stdout.clone())
            .run();
        put.succeeds();
        let got = s
            .cmd(&bin("vault-get"))
            .args(["--vault", &vault])
            .stdin(put.stdout.clone())
            .run();
        got.succeeds();
        let target = s.db_name("secret_restore");
        let restored = s
            .cmd(&bin("dump-pg"))
            .env("PGPASSWORD", PG_SECRET)
            .args(["restore", "--target-db", &target, "--create"])
            .stdin(got.stdout.clone())
            .run();
        restored.succeeds();
        let listed = s
            .cmd(&bin("vault-get"))
            .args(["--vault", &vault, "--list", "--json"])
            .run();
        for out in [&dumped, &put, &got, &restored, &listed] {
            outputs.push(format!("{}\n{}", out.stdout, out.stderr));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let seen = watcher.join().unwrap();
        // The sidecars, as stored.
        let backend = testkit::S3Server::from_env().backend(&testkit::bucket_of(&vault), "stack");
        for object in vault::Backend::list(&backend, "").unwrap() {
            if object.key.as_str().ends_with(".manifest.json") {
                let mut text = Vec::new();
                vault::Backend::get(&backend, &object.key, &mut text, &toolkit::progress::Hidden)
                    .unwrap();
                outputs.push(String::from_utf8(text).unwrap());
            }
        }
        for text in &outputs {
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "a secret leaked into:\n{text}"
                );
            }
        }
        seen
    });
    assert!(seen_in_argv.is_empty(), "secrets in argv: {seen_in_argv:?}");
}
