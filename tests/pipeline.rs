//! The whole slice: `dump-pg | vault-put`, then `vault-get | dump-pg restore`, on both
//! backends, proving the restored database equal to the original.

use serde_json::json;
use testkit::Scenario;

use crate::util::{bin, load_rich, schema_fingerprint, table_fingerprints};

fn round_trip(s: &Scenario, vault: &str) {
    load_rich(s, s.db());
    let dumped = s.cmd(&bin("dump-pg")).args(["--dbname", s.db()]).run();
    dumped.succeeds();
    let mut manifest = dumped.manifest();
    // A field from a newer tool must survive every step.
    manifest
        .extra
        .insert("x_future".into(), json!({"kept": [1, 2, 3]}));

    let put = s
        .cmd(&bin("vault-put"))
        .args(["--vault", vault])
        .manifests_in(&[manifest])
        .run();
    put.succeeds();
    let stored = put.manifest();
    let record = stored.vault.as_ref().expect("vault section");
    assert!(
        record.url.starts_with(vault),
        "{} not under {vault}",
        record.url
    );
    assert_eq!(record.sha256, stored.artifact.as_ref().unwrap().sha256);
    assert!(
        s.spool_files().is_empty(),
        "spool not emptied: {:?}",
        s.spool_files()
    );

    let listed = s
        .cmd(&bin("vault-get"))
        .args(["--vault", vault, "--list"])
        .run();
    listed.succeeds();
    assert!(
        listed.stdout.contains(stored.id.as_str()),
        "{}",
        listed.stdout
    );

    let got = s
        .cmd(&bin("vault-get"))
        .args(["--vault", vault, "--latest", "--kind", "postgres"])
        .run();
    got.succeeds();
    let fetched = got.manifest();
    assert_eq!(fetched.extra["x_future"], json!({"kept": [1, 2, 3]}));
    let local = &fetched.artifact.as_ref().unwrap().path;
    assert!(local.starts_with(s.spool()), "{}", local.display());

    let target = s.db_name("restored");
    let restored = s
        .cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", &target, "--create"])
        .stdin(got.stdout.clone())
        .run();
    restored
        .succeeds()
        .stderr_contains("all 5 fingerprint items match");
    let out = restored.manifest();
    assert_eq!(out.extra["x_future"], json!({"kept": [1, 2, 3]}));
    let section = out.restore.expect("restore section");
    assert_eq!(section["result"], "ok");
    assert_eq!(section["target"]["database"], target.as_str());
    assert_eq!(section["checked"], 5, "4 tables and the large objects");

    let original = table_fingerprints(s, s.db());
    assert_eq!(original.len(), 4);
    assert_eq!(original["audit.events"].0, 30_000);
    assert_eq!(table_fingerprints(s, &target), original);
    assert_eq!(
        schema_fingerprint(s, &target),
        schema_fingerprint(s, s.db())
    );
}

#[test]
fn postgres_round_trip_through_a_directory_vault() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    round_trip(&s, &vault);
}

#[test]
fn postgres_round_trip_through_s3() {
    let s = Scenario::new();
    let vault = s.s3_vault();
    round_trip(&s, &vault);
}
