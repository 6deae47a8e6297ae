//! S3 Object Lock against SeaweedFS 4.48, which implements it: `vault-put --lock-days`
//! stores artifact and sidecar locked (the server reports the lock on HEAD, as the
//! manifest records it), a bucket without Object Lock and a directory vault are
//! refused before anything is stored, and vault-prune keeps what is locked and says until
//! when.

use manifest::Manifest;
use testkit::{S3Server, Scenario};
use vault::layout::sidecar_key;
use vault::ObjectKey;

use crate::util::{bin, spooled_bytes};

fn put(s: &Scenario, vault: &str, m: &Manifest, lock: &[&str]) -> testkit::Outcome {
    s.cmd(&bin("vault-put"))
        .args(["--vault", vault])
        .args(lock)
        .env_remove("STACKVAULT_LOCK_DAYS")
        .env_remove("STACKVAULT_LOCK_MODE")
        .stdin(serde_json::to_string(m).unwrap() + "\n")
        .run()
}

#[test]
fn a_locked_store_is_locked_on_the_server_and_recorded_as_it_is() {
    let s = Scenario::new();
    let vault = s.s3_locked_vault();
    let bucket = testkit::bucket_of(&vault);
    let backend = S3Server::from_env().backend(&bucket, "stack");
    // (id, flags, mode the server must report); 6 MiB: one PUT at the default part size
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "postgres_a_20250130_020000",
            &["--lock-days", "3"],
            "GOVERNANCE",
        ),
        (
            "postgres_b_20250130_020000",
            // Larger than a part: one streamed PUT, its SHA-256 checked by the server.
            &[
                "--lock-days",
                "3",
                "--lock-mode",
                "compliance",
                "--s3-part-size",
                "5MiB",
            ],
            "COMPLIANCE",
        ),
        (
            "postgres_c_20250130_020000",
            // Two parts: the lock goes on the multipart upload.
            &[
                "--lock-days",
                "3",
                "--s3-part-size",
                "5MiB",
                "--s3-multipart-threshold",
                "0",
            ],
            "GOVERNANCE",
        ),
    ];
    for (id, flags, mode) in cases {
        let m = spooled_bytes(&s, id, &vec![1u8; 6 << 20]);
        let out = put(&s, &vault, &m, flags);
        out.succeeds();
        let stored = out.manifest();
        let lock = stored.vault.as_ref().unwrap().lock().unwrap().unwrap();
        assert_eq!(lock.mode, mode.to_lowercase());
        let days = lock
            .retain_until
            .system_time()
            .duration_since(std::time::SystemTime::now())
            .unwrap()
            .as_secs_f64()
            / 86_400.0;
        assert!((2.99..=3.0).contains(&days), "{days}");
        let key = ObjectKey::new(format!("postgres/2025/01/30/{id}.dump")).unwrap();
        for object in [key.clone(), sidecar_key(&key)] {
            let held = backend.object_lock_of(&object).unwrap();
            assert_eq!(
                held,
                Some((mode.to_owned(), lock.retain_until.to_string())),
                "{object}"
            );
        }
    }
}

#[test]
fn a_lock_is_refused_where_it_cannot_be_kept_before_anything_is_stored() {
    let s = Scenario::new();
    let m = spooled_bytes(&s, "postgres_a_20250130_020000", b"dump");
    // (vault, error)
    let cases = [
        (s.s3_vault(), "has no Object Lock enabled"),
        (s.dir_vault(), "Object Lock is an S3 feature"),
    ];
    for (vault, why) in cases {
        let out = put(&s, &vault, &m, &["--lock-days", "1"]);
        out.fails_with(2).stderr_contains(why);
        assert!(
            m.artifact.as_ref().unwrap().path.exists(),
            "the spool file stays"
        );
    }
    let bucket = testkit::bucket_of(&s.s3_vault());
    let backend = S3Server::from_env().backend(&bucket, "stack");
    assert!(vault::ops::catalogue(&backend, None).unwrap().0.is_empty());
}

#[test]
fn prune_keeps_a_locked_backup_past_its_rules_and_says_until_when() {
    let s = Scenario::new();
    let vault = s.s3_locked_vault();
    // Both made long ago (the ids' dates): by age alone the older would go.
    for (id, at) in [
        ("postgres_app_20250130_020000", "2025-01-30T02:00:00Z"),
        ("postgres_app_20250131_020000", "2025-01-31T02:00:00Z"),
    ] {
        let path = s.spool().join(format!("{id}.dump"));
        std::fs::create_dir_all(s.spool()).unwrap();
        std::fs::write(&path, id).unwrap();
        let line = serde_json::json!({
            "schema": "stackvault.manifest/1", "id": id, "kind": "postgres",
            "created_at": at, "status": "ok",
            "artifact": {"path": path, "format": "pg_dump/custom", "bytes": id.len(),
                         "sha256": manifest::Sha256::of(id.as_bytes()).to_string()}
        });
        let m = manifest::ndjson::parse_line(&line.to_string()).unwrap();
        put(&s, &vault, &m, &["--lock-days", "2"]).succeeds();
    }
    let out = s
        .cmd(&bin("vault-prune"))
        .args(["--vault", &vault, "--older-than", "30d"])
        .env_remove("BACKUP_RETENTION_DAYS")
        .run();
    out.succeeds()
        .stderr_contains("postgres_app_20250130_020000: locked (S3 Object Lock) until");
    let bucket = testkit::bucket_of(&vault);
    let backend = S3Server::from_env().backend(&bucket, "stack");
    assert_eq!(vault::ops::catalogue(&backend, None).unwrap().0.len(), 2);
}
