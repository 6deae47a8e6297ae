//! vault-copy between a SeaweedFS bucket and a directory vault, both ways: what the
//! destination lacks is copied (encrypted artifacts as they are), an interrupted copy is
//! finished by the next run, a run with nothing to do copies nothing, and --verify-only
//! says whether the two hold the same backups.

use std::collections::BTreeSet;

use manifest::Manifest;
use testkit::{S3Server, Scenario};
use vault::layout::sidecar_key;
use vault::Backend;

use crate::util::{bin, ledger_db, ndjson};

/// Stores `id` (created at `at`) into `vault` with vault-put, encrypted to `recipients`.
fn stored(
    s: &Scenario,
    vault: &str,
    id: &str,
    at: &str,
    recipients: Option<&std::path::Path>,
) -> Vec<Manifest> {
    let path = s.spool().join(format!("{id}.dump"));
    std::fs::create_dir_all(s.spool()).unwrap();
    let data = format!("{id} ").repeat(50_000);
    std::fs::write(&path, &data).unwrap();
    let line = serde_json::json!({
        "schema": "stackvault.manifest/1", "id": id, "kind": id.split('_').next().unwrap(),
        "created_at": at, "status": "ok",
        "artifact": {"path": path, "format": "pg_dump/custom", "bytes": data.len(),
                     "sha256": manifest::Sha256::of(data.as_bytes()).to_string()}
    });
    let mut cmd = s.cmd(&bin("vault-put")).args(["--vault", vault]);
    if let Some(r) = recipients {
        cmd = cmd.args([std::path::Path::new("--encrypt-to"), r]);
    }
    cmd.stdin(format!("{line}\n")).run().succeeds().manifests()
}

fn copy(s: &Scenario, from: &str, to: &str, more: &[&str]) -> testkit::Outcome {
    s.cmd(&bin("vault-copy"))
        .args(["--from", from, "--to", to])
        .args(more)
        .run()
}

fn ids(manifests: &[Manifest]) -> BTreeSet<String> {
    manifests.iter().map(|m| m.id.to_string()).collect()
}

#[test]
fn copies_what_the_destination_lacks_both_ways_resumes_and_verifies() {
    let s = Scenario::new();
    let s3 = s.s3_vault();
    let dir = s.dir_vault();
    let s3_backend = S3Server::from_env().backend(&testkit::bucket_of(&s3), "stack");
    let dir_path = std::path::PathBuf::from(dir.strip_prefix("file://").unwrap());
    let (secret, public) = vault::crypt::generate();
    let (identity, recipients) = (s.path().join("key.txt"), s.path().join("recipients.txt"));
    std::fs::write(&identity, secret).unwrap();
    std::fs::write(&recipients, public).unwrap();
    let backups = [
        ("postgres_app_20250101_020000", "2025-01-01T02:00:00Z"),
        ("postgres_app_20250102_020000", "2025-01-02T02:00:00Z"),
        ("qdrant_docs_20250103_020000", "2025-01-03T02:00:00Z"),
    ];
    for (i, (id, at)) in backups.iter().enumerate() {
        stored(&s, &s3, id, at, (i == 1).then_some(recipients.as_path()));
    }

    // A first, partial run: postgres since Jan 2 only (the encrypted one).
    let first = copy(
        &s,
        &s3,
        &dir,
        &["--kind", "postgres", "--since", "2025-01-02"],
    );
    first.succeeds();
    assert_eq!(
        ids(&first.manifests()),
        ["postgres_app_20250102_020000".to_owned()].into()
    );
    let copied = &first.manifests()[0];
    let record = copied.vault.as_ref().unwrap();
    assert!(
        record.url.starts_with(&dir) && record.url.ends_with(".dump.age"),
        "{}",
        record.url
    );
    assert!(record.copied_from().unwrap().unwrap().url.starts_with(&s3));
    assert!(record.encryption().is_some());

    // Interrupted between artifact and sidecar: what a killed copy leaves.
    let key =
        vault::ObjectKey::new("postgres/2025/01/01/postgres_app_20250101_020000.dump").unwrap();
    let mut object = Vec::new();
    s3_backend
        .get(&key, &mut object, &toolkit::progress::Hidden)
        .unwrap();
    std::fs::create_dir_all(dir_path.join("postgres/2025/01/01")).unwrap();
    std::fs::write(dir_path.join(key.as_str()), &object).unwrap();

    let second = copy(&s, &s3, &dir, &[]);
    second
        .succeeds()
        .stderr_contains("an earlier copy stopped before its sidecar");
    assert_eq!(
        ids(&second.manifests()),
        [
            "postgres_app_20250101_020000",
            "qdrant_docs_20250103_020000"
        ]
        .map(str::to_owned)
        .into()
    );
    copy(&s, &s3, &dir, &["--verify-only"]).succeeds();
    let third = copy(&s, &s3, &dir, &[]);
    third.succeeds();
    assert!(third.manifests().is_empty(), "nothing left to copy");

    // The copy restores: the encrypted one with its key, from the directory vault.
    s.cmd(&bin("vault-get"))
        .args(["--vault", &dir, "--id", "postgres_app_20250102_020000"])
        .args([std::path::Path::new("--identity"), &identity])
        .run()
        .succeeds();

    // Directory to S3, into an empty prefix; then a backup lost there is reported.
    let back = s3.replace("/stack", "/copy");
    copy(&s, &dir, &back, &[]).succeeds();
    copy(&s, &dir, &back, &["--verify-only"]).succeeds();
    let back_backend = S3Server::from_env().backend(&testkit::bucket_of(&s3), "copy");
    back_backend.delete(&sidecar_key(&key)).unwrap();
    let out = copy(&s, &dir, &back, &["--verify-only"]);
    out.fails_with(1)
        .stderr_contains("missing postgres_app_20250101_020000");
    assert_eq!(
        out.stdout, "",
        "--verify-only copies nothing and emits nothing"
    );
}

#[test]
fn the_ledger_records_a_copy_beside_the_backup_and_keeps_its_own_vault() {
    let s = Scenario::new();
    let s3 = s.s3_vault();
    let dir = s.dir_vault();
    let (db, url) = ledger_db(&s);
    let ledger = |manifests: &[Manifest]| {
        s.cmd(&bin("vault-ledger"))
            .env("LEDGER_URL", &url)
            .stdin(ndjson(manifests))
            .run()
            .succeeds();
    };
    s.cmd(&bin("vault-ledger"))
        .env("LEDGER_URL", &url)
        .args(["init"])
        .run()
        .succeeds();
    let known = stored(
        &s,
        &s3,
        "postgres_app_20250101_020000",
        "2025-01-01T02:00:00Z",
        None,
    );
    ledger(&known);
    // A backup the ledger never saw (stored before it existed): its copy records it.
    stored(
        &s,
        &s3,
        "postgres_app_20250102_020000",
        "2025-01-02T02:00:00Z",
        None,
    );
    let copies = copy(&s, &s3, &dir, &[]).succeeds().manifests();
    assert_eq!(copies.len(), 2);
    ledger(&copies);
    ledger(&copies); // idempotent

    let mut client = s.connect(&db);
    let rows: Vec<(String, String, String)> = client
        .query(
            "SELECT h.backup_id, h.status, m.vault_url FROM backup_history h
             JOIN backup_manifest m USING (backup_id) ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // The known backup keeps the vault vault-put stored it in.
    assert_eq!(rows[0].0, "postgres_app_20250101_020000");
    assert_eq!(rows[0].1, "success");
    assert!(rows[0].2.starts_with(&s3), "{rows:?}");
    // The unknown one is known from its copy.
    assert!(rows[1].2.starts_with(&dir), "{rows:?}");
    let copied: Vec<(String, String, String)> = client
        .query(
            "SELECT backup_id, vault_url, copied_from FROM backup_copy ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(copied.len(), 2, "{copied:?}");
    for (id, to, from) in &copied {
        assert!(
            to.starts_with(&dir) && to.contains(id.as_str()),
            "{copied:?}"
        );
        assert!(from.starts_with(&s3), "{copied:?}");
    }

    // vault-prune of the second vault says the copy is gone: the backup itself is not.
    let mut pruned = copies
        .iter()
        .find(|m| m.id.as_str() == "postgres_app_20250101_020000")
        .unwrap()
        .clone();
    pruned.status = manifest::Status::Pruned;
    ledger(&[pruned]);
    let left: Vec<String> = client
        .query("SELECT backup_id FROM backup_copy", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, ["postgres_app_20250102_020000"]);
    let status: String = client
        .query_one(
            "SELECT status FROM backup_history WHERE backup_id = 'postgres_app_20250101_020000'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(status, "success");
}
