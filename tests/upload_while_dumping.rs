//! `dump-pg --announce | vault-put`: the upload starts while pg_dump still writes, and what
//! is stored is proven against the final record exactly as for a complete file; a producer
//! that fails or vanishes leaves nothing in the vault and no unfinished upload.

use std::path::Path;
use std::time::{Duration, Instant};

use manifest::sections::Writing;
use manifest::{Manifest, Status};
use testkit::Scenario;

use crate::util::{bin, manifest_for, pg_dump_wrapper};

/// A database whose dump is a few parts of 5 MiB (random text compresses little).
fn sizable_db(s: &Scenario) {
    s.sql(
        s.db(),
        "CREATE TABLE chunks (id int PRIMARY KEY, body text);
         INSERT INTO chunks
         SELECT i, string_agg(md5(i::text || '-' || j::text), '') FROM generate_series(1, 12000) i,
                generate_series(1, 60) j GROUP BY i;",
    );
}

fn pipeline(s: &Scenario, dump_args: &str, vault: &str) -> testkit::Outcome {
    let script = format!(
        "{} --announce --dbname {} {dump_args} | {} --vault {vault} --s3-part-size 5MiB",
        bin("dump-pg").display(),
        s.db(),
        bin("vault-put").display(),
    );
    s.cmd(Path::new("/bin/bash"))
        .args(["-o", "pipefail", "-c", &script])
        .run()
}

fn fetched_sha(s: &Scenario, vault: &str, id: &str) -> manifest::Sha256 {
    let got = s
        .cmd(&bin("vault-get"))
        .args(["--vault", vault, "--id", id])
        .run();
    got.succeeds();
    let artifact = got.manifest().artifact.expect("fetched");
    toolkit::fs::hash_file(&artifact.path).unwrap().1
}

#[test]
fn the_upload_runs_while_pg_dump_writes_and_is_proven_like_any_other() {
    let s = Scenario::new();
    sizable_db(&s);
    let vault = s.s3_vault();
    let bucket = testkit::bucket_of(&vault);
    // pg_dump writes everything, then lingers 3 s before it exits, so the test can look at
    // the vault while the dump is not finished yet.
    let bindir = pg_dump_wrapper(&s, "slow-end", "\"$REAL\" \"$@\" || exit $?\nsleep 3");
    let script = format!(
        "{} --announce --dbname {} --pg-bindir {} | {} --vault {vault} --s3-part-size 5MiB",
        bin("dump-pg").display(),
        s.db(),
        bindir.display(),
        bin("vault-put").display(),
    );
    let running = s
        .cmd(Path::new("/bin/sh"))
        .args(["-c", &script])
        .spawn_with_stdin("");
    let server = testkit::S3Server::from_env();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen_in_flight = false;
    while Instant::now() < deadline && !seen_in_flight {
        seen_in_flight = !server.incomplete_uploads(&bucket, "stack/").is_empty();
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = running.wait();
    assert!(
        seen_in_flight,
        "no multipart upload was started while pg_dump was still running: {}",
        out.stderr
    );
    out.succeeds();
    let records = out.manifests();
    assert_eq!(records.len(), 1, "the notice is not passed on: {records:?}");
    let stored = &records[0];
    assert_eq!(stored.status, Status::Ok);
    let artifact = stored.artifact.as_ref().unwrap();
    let record = stored.vault.as_ref().expect("vault section");
    assert_eq!(record.verified.as_deref(), Some("server-checksums"));
    assert_eq!(
        (record.bytes, record.sha256),
        (artifact.bytes, artifact.sha256)
    );
    assert!(
        artifact.bytes > 10 << 20,
        "a multipart dump: {}",
        artifact.bytes
    );
    assert!(s.spool_files().is_empty(), "{:?}", s.spool_files());
    assert!(server.incomplete_uploads(&bucket, "stack/").is_empty());
    assert_eq!(
        fetched_sha(&s, &vault, stored.id.as_str()),
        artifact.sha256,
        "the stored object is the dump"
    );
}

#[test]
fn a_directory_vault_takes_the_announced_dump_too() {
    let s = Scenario::new();
    sizable_db(&s);
    let vault = s.dir_vault();
    let out = pipeline(&s, "", &vault);
    out.succeeds();
    let stored = out.manifest();
    let artifact = stored.artifact.as_ref().unwrap();
    assert_eq!(
        stored.vault.as_ref().unwrap().verified.as_deref(),
        Some("local-write")
    );
    assert!(s.spool_files().is_empty(), "{:?}", s.spool_files());
    assert_eq!(fetched_sha(&s, &vault, stored.id.as_str()), artifact.sha256);
}

#[test]
fn a_dump_that_fails_half_way_aborts_its_upload_and_stores_nothing() {
    let s = Scenario::new();
    sizable_db(&s);
    let vault = s.s3_vault();
    // Half the dump, then a failure.
    let bindir = pg_dump_wrapper(
        &s,
        "half",
        "\"$REAL\" \"$@\" | head -c 12000000\nsleep 1\necho 'pg_dump: error: connection lost' >&2\nexit 1",
    );
    let out = pipeline(&s, &format!("--pg-bindir {}", bindir.display()), &vault);
    out.fails_with(1); // dump-pg's status, through pipefail
    let records = out.manifests();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, Status::Failed);
    assert!(
        records[0]
            .error
            .as_deref()
            .unwrap()
            .contains("connection lost"),
        "{:?}",
        records[0].error
    );
    assert_nothing_stored(&s, &vault);
    assert!(s.spool_files().is_empty(), "{:?}", s.spool_files());
}

fn assert_nothing_stored(s: &Scenario, vault: &str) {
    let listed = s
        .cmd(&bin("vault-get"))
        .args(["--vault", vault, "--list", "--json"])
        .run();
    listed.succeeds();
    assert!(listed.stdout.trim().is_empty(), "{}", listed.stdout);
    let orphans = s
        .cmd(&bin("vault-get"))
        .args(["--vault", vault, "--orphans"])
        .run();
    assert!(
        orphans.stdout.trim().is_empty(),
        "left behind: {}",
        orphans.stdout
    );
    if vault.starts_with("s3://") {
        let server = testkit::S3Server::from_env();
        assert!(server
            .incomplete_uploads(&testkit::bucket_of(vault), "stack/")
            .is_empty());
    }
}

/// A notice for `id` whose file is being written at `partial` by this test.
fn notice_and_final(s: &Scenario, id: &str, data: &[u8]) -> (Manifest, Manifest) {
    std::fs::create_dir_all(s.spool()).unwrap();
    let path = s.spool().join(format!("{id}.dump"));
    let final_record = manifest_for(id, &path, data);
    let notice = final_record.writing_notice(&Writing {
        partial: s.spool().join(format!("{id}.dump.partial")),
        path,
        format: "pg_dump/custom".into(),
        extra: Default::default(),
    });
    (notice, final_record)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 2654435761) >> 11) as u8).collect()
}

/// Writes `data` to the partial in steps (a producer at work), then links it into place.
fn write_slowly(partial: &Path, path: &Path, data: &[u8]) {
    use std::io::Write;
    let mut file = std::fs::File::create(partial).unwrap();
    for chunk in data.chunks(1 << 20) {
        file.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    file.sync_all().unwrap();
    std::fs::hard_link(partial, path).unwrap();
    std::fs::remove_file(partial).unwrap();
}

fn vault_put_fed(s: &Scenario, vault: &str) -> testkit::Feeding {
    s.cmd(&bin("vault-put"))
        .args(["--vault", vault, "--s3-part-size", "5MiB"])
        .spawn_feeding()
}

#[test]
fn a_stream_that_ends_without_the_final_record_aborts_the_upload() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let id = "postgres_app_20250130_020000";
    let data = pattern(12 << 20);
    let (notice, _) = notice_and_final(&s, id, &data);
    let writing = notice.writing_section().unwrap().unwrap();
    let mut put = vault_put_fed(&s, &vault);
    std::fs::write(&writing.partial, &data[..7 << 20]).unwrap();
    put.send(&notice);
    std::thread::sleep(Duration::from_millis(500));
    let out = put.finish(); // the producer vanished
    out.fails_with(1);
    let failed = out.manifest();
    assert_eq!(failed.status, Status::Failed);
    assert!(failed.extra.get("writing").is_none());
    assert!(
        failed
            .error
            .as_deref()
            .unwrap()
            .contains("ended without the final record"),
        "{:?}",
        failed.error
    );
    assert_nothing_stored(&s, &vault);
}

#[test]
fn a_final_record_that_does_not_match_what_was_read_stores_nothing() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let id = "postgres_app_20250130_020000";
    let data = pattern(11 << 20);
    let (notice, mut final_record) = notice_and_final(&s, id, &data);
    // The record vouches for other bytes than the file holds.
    final_record.artifact.as_mut().unwrap().sha256 = manifest::Sha256::of(b"other bytes");
    let writing = notice.writing_section().unwrap().unwrap();
    let mut put = vault_put_fed(&s, &vault);
    put.send(&notice);
    write_slowly(&writing.partial, &writing.path, &data);
    put.send(&final_record);
    let out = put.finish();
    out.fails_with(1);
    let failed = out.manifest();
    assert_eq!(failed.status, Status::Failed);
    assert!(
        failed.error.as_deref().unwrap().contains("SHA-256"),
        "{:?}",
        failed.error
    );
    assert_nothing_stored(&s, &vault);
    assert!(writing.path.exists(), "the spool file is kept");
}

#[test]
fn notices_of_several_dumps_upload_side_by_side_and_each_is_finished_by_its_record() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    let ids = [
        "postgres_app_20250130_020000",
        "postgres_crm_20250130_020000",
    ];
    let data: Vec<Vec<u8>> = [9 << 20, 6 << 20].into_iter().map(pattern).collect();
    let pairs: Vec<_> = ids
        .iter()
        .zip(&data)
        .map(|(id, d)| notice_and_final(&s, id, d))
        .collect();
    let mut put = vault_put_fed(&s, &vault);
    for (notice, _) in &pairs {
        put.send(notice);
    }
    std::thread::scope(|scope| {
        for ((notice, _), d) in pairs.iter().zip(&data) {
            let writing = notice.writing_section().unwrap().unwrap();
            scope.spawn(move || write_slowly(&writing.partial, &writing.path, d));
        }
    });
    for (_, final_record) in &pairs {
        put.send(final_record);
    }
    let out = put.finish();
    out.succeeds();
    let stored = out.manifests();
    assert_eq!(
        stored.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ids,
        "records in their order"
    );
    assert!(s.spool_files().is_empty(), "{:?}", s.spool_files());
    for (m, d) in stored.iter().zip(&data) {
        assert_eq!(m.status, Status::Ok);
        assert_eq!(
            fetched_sha(&s, &vault, m.id.as_str()),
            manifest::Sha256::of(d)
        );
    }
}

#[test]
fn a_notice_that_cannot_be_followed_is_stored_when_its_record_arrives() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let id = "postgres_app_20250130_020000";
    let data = pattern(3 << 20);
    let (mut notice, final_record) = notice_and_final(&s, id, &data);
    // The notice names files this machine does not have (a producer elsewhere).
    let mut writing = notice.writing_section().unwrap().unwrap();
    writing.partial = "/nonexistent/postgres_app_20250130_020000.dump.partial".into();
    writing.path = "/nonexistent/postgres_app_20250130_020000.dump".into();
    notice = final_record.writing_notice(&writing);
    let mut put = vault_put_fed(&s, &vault);
    put.send(&notice);
    std::fs::write(&final_record.artifact.as_ref().unwrap().path, &data).unwrap();
    put.send(&final_record);
    let out = put.finish();
    out.succeeds()
        .stderr_contains("not uploading while it is written");
    assert_eq!(out.manifest().status, Status::Ok);
    assert_eq!(fetched_sha(&s, &vault, id), manifest::Sha256::of(&data));
}
