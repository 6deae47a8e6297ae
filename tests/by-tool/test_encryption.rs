//! age encryption at rest: `vault-put --encrypt-to`, `vault-get --identity`, on both
//! backends; a missing or wrong identity and a damaged ciphertext leave no plaintext; and
//! the break-glass restore with Debian's `age` CLI and no binary of ours.

use std::path::{Path, PathBuf};

use manifest::{Manifest, Status};
use testkit::Scenario;

use crate::util::{bin, load_rich, spooled, table_fingerprints};

/// A key pair in files: (identity file, recipients file, recipient's fingerprint).
fn keys(s: &Scenario, name: &str) -> (PathBuf, PathBuf, String) {
    let (secret, public) = vault::crypt::generate();
    let identity = s.path().join(format!("{name}.key"));
    let recipients = s.path().join(format!("{name}.pub"));
    std::fs::write(&identity, format!("# test key\n{secret}\n")).unwrap();
    std::fs::write(&recipients, format!("# backups\n{public}\n")).unwrap();
    let fingerprint = manifest::Sha256::of(public.as_bytes()).to_string()[..16].to_owned();
    (identity, recipients, fingerprint)
}

fn put_encrypted(s: &Scenario, vault: &str, m: &Manifest, recipients: &Path) -> Manifest {
    let out = s
        .cmd(&bin("vault-put"))
        .args(["--vault", vault, "--s3-part-size", "5MiB", "--encrypt-to"])
        .args([recipients])
        .stdin(serde_json::to_string(m).unwrap() + "\n")
        .run();
    out.succeeds();
    out.manifest()
}

#[test]
fn an_encrypted_backup_round_trips_on_both_backends_and_needs_its_identity() {
    for s3 in [false, true] {
        let s = Scenario::new();
        let vault = if s3 { s.s3_vault() } else { s.dir_vault() };
        let (identity, recipients, fingerprint) = keys(&s, "ops");
        let (other, _, _) = keys(&s, "other");
        // Several 5 MiB parts on S3; a last age chunk that is not full.
        let m = spooled(&s, "postgres_app_20250130_020000", 12 << 20);
        let original = std::fs::read(&m.artifact.as_ref().unwrap().path).unwrap();
        let stored = put_encrypted(&s, &vault, &m, &recipients);
        let record = stored.vault.as_ref().unwrap();
        assert!(record.url.ends_with(".dump.age"), "{}", record.url);
        assert_eq!(
            (record.bytes, record.sha256),
            (original.len() as u64, manifest::Sha256::of(&original)),
            "vault.bytes / vault.sha256 stay the plaintext's"
        );
        let encryption = record.encryption().unwrap().unwrap();
        assert_eq!(encryption.recipients, std::slice::from_ref(&fingerprint));
        assert!(encryption.bytes > record.bytes);
        assert_ne!(encryption.sha256, record.sha256);
        let text = serde_json::to_string(&stored).unwrap();
        assert!(
            !text.contains("age1") && !text.contains("AGE-SECRET"),
            "{text}"
        );
        assert!(!s.spool().join("postgres_app_20250130_020000.dump").exists());

        // The sidecar is plaintext: the listing works without any key.
        let listed = s
            .cmd(&bin("vault-get"))
            .args(["--vault", &vault, "--list", "--json"])
            .run();
        listed.succeeds();
        assert_eq!(listed.manifests(), std::slice::from_ref(&stored));

        // (identity given, exit code, stderr contains)
        let refusals: [(Option<&Path>, &str); 2] = [
            (None, "pass --identity FILE"),
            (
                Some(&other),
                "is not one postgres_app_20250130_020000 was encrypted to",
            ),
        ];
        for (given, why) in refusals {
            let mut cmd = s
                .cmd(&bin("vault-get"))
                .args(["--vault", &vault, "--id", "postgres_app_20250130_020000"])
                .env_remove("STACKVAULT_AGE_IDENTITY");
            if let Some(path) = given {
                cmd = cmd.args([Path::new("--identity"), path]);
            }
            let out = cmd.run();
            out.fails_with(1)
                .stderr_contains(why)
                .stderr_contains(&fingerprint);
            assert_eq!(out.manifest().status, Status::Failed);
            assert!(s.spool_files().is_empty(), "{:?}", s.spool_files());
        }

        let got = s
            .cmd(&bin("vault-get"))
            .args(["--vault", &vault, "--id", "postgres_app_20250130_020000"])
            .env("STACKVAULT_AGE_IDENTITY", &identity)
            .run();
        got.succeeds();
        let artifact = got.manifest().artifact.unwrap();
        assert_eq!(
            artifact.path,
            s.spool().join("postgres_app_20250130_020000.dump")
        );
        assert!(
            std::fs::read(&artifact.path).unwrap() == original,
            "s3 {s3}"
        );
    }
}

#[test]
fn a_recipients_file_holding_a_secret_key_is_refused_without_echoing_it() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let (identity, _, _) = keys(&s, "ops");
    let m = spooled(&s, "postgres_app_20250130_020000", 1000);
    let out = s
        .cmd(&bin("vault-put"))
        .args(["--vault", &vault])
        .env("STACKVAULT_AGE_RECIPIENTS", &identity)
        .stdin(serde_json::to_string(&m).unwrap() + "\n")
        .run();
    out.fails_with(2)
        .stderr_contains("is a secret key, not a recipient");
    assert!(!out.stderr.contains("AGE-SECRET-KEY"), "{}", out.stderr);
    assert!(s.spool().join("postgres_app_20250130_020000.dump").exists());
}

#[test]
fn a_damaged_ciphertext_fails_and_leaves_no_plaintext_in_the_spool() {
    let s = Scenario::new();
    let vault = s.dir_vault();
    let (identity, recipients, _) = keys(&s, "ops");
    let m = spooled(&s, "postgres_app_20250130_020000", 1 << 20);
    let stored = put_encrypted(&s, &vault, &m, &recipients);
    let object = s
        .path()
        .join("vault/postgres/2025/01/30/postgres_app_20250130_020000.dump.age");
    let good = std::fs::read(&object).unwrap();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 1;
    // (what the object becomes, what the error says)
    let cases: [(Vec<u8>, &str); 3] = [
        (flipped, "fails authentication"),
        (good[..good.len() - 1000].to_vec(), "truncated or changed"),
        // Cut on a chunk boundary: every chunk left is authentic, the last one is missing.
        (
            good[..good.len() - (65_536 + 16)].to_vec(),
            "truncated or changed",
        ),
    ];
    for (damaged, why) in cases {
        std::fs::write(&object, &damaged).unwrap();
        let out = s
            .cmd(&bin("vault-get"))
            .args(["--vault", &vault, "--identity", identity.to_str().unwrap()])
            .stdin(serde_json::to_string(&stored).unwrap() + "\n")
            .run();
        out.fails_with(1)
            .stderr_contains("cannot be decrypted")
            .stderr_contains(why);
        assert!(s.spool_files().is_empty(), "{why}: {:?}", s.spool_files());
    }
}

/// Runs `script` in bash (with the scenario's PostgreSQL environment); its stdout.
fn sh(s: &Scenario, script: &str) -> String {
    let out = s
        .cmd(Path::new("/bin/bash"))
        .args(["-e", "-o", "pipefail", "-c", script])
        .run();
    out.succeeds();
    out.stdout.clone()
}

/// `dump-pg --announce | vault-put --encrypt-to`: the dump uploaded, encrypted, while
/// pg_dump writes it; the stored record.
fn announced_and_encrypted(s: &Scenario, vault: &str, recipients: &Path) -> Manifest {
    let line = sh(
        s,
        &format!(
            "{} --announce --dbname {} | {} --vault {vault} --encrypt-to {}",
            bin("dump-pg").display(),
            s.db(),
            bin("vault-put").display(),
            recipients.display()
        ),
    );
    manifest::ndjson::parse_line(line.trim()).unwrap()
}

/// The README's break-glass procedure, with the `age` CLI (Debian's package `age`), the
/// coreutils and PostgreSQL's own pg_restore: keys from `age-keygen`, the dump uploaded
/// while pg_dump writes it (`--announce`), the object copied out of the vault by hand.
#[test]
fn break_glass_the_age_cli_and_pg_restore_bring_back_an_encrypted_backup() {
    let s = Scenario::new();
    load_rich(&s, s.db());
    let vault = s.dir_vault();
    let key = s.path().join("key.txt");
    let recipients = s.path().join("recipients.txt");
    sh(
        &s,
        &format!(
            "age-keygen -o {k} 2>/dev/null && age-keygen -y {k} > {r}",
            k = key.display(),
            r = recipients.display()
        ),
    );
    let stored = announced_and_encrypted(&s, &vault, &recipients);
    let record = stored.vault.as_ref().unwrap();
    let encryption = record.encryption().unwrap().unwrap();

    // By hand: the sidecar says what to check; cp, sha256sum, age -d, sha256sum, pg_restore.
    let object = PathBuf::from(record.url.strip_prefix("file://").unwrap());
    let sidecar: Manifest = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.manifest.json", object.display())).unwrap(),
    )
    .unwrap();
    assert_eq!(&sidecar, &stored);
    let work = s.path().join("break-glass");
    std::fs::create_dir(&work).unwrap();
    let sums = sh(
        &s,
        &format!(
            "cd {w} && cp {o} backup.dump.age && sha256sum backup.dump.age && \
         age -d -i {k} -o backup.dump backup.dump.age && sha256sum backup.dump",
            w = work.display(),
            o = object.display(),
            k = key.display()
        ),
    );
    assert_eq!(
        sums,
        format!(
            "{}  backup.dump.age\n{}  backup.dump\n",
            encryption.sha256, record.sha256
        )
    );
    let target = s.db_name("glass");
    s.create_db(&target);
    sh(
        &s,
        &format!(
            "pg_restore --no-owner --dbname {target} {}/backup.dump",
            work.display()
        ),
    );
    assert_eq!(
        table_fingerprints(&s, &target),
        table_fingerprints(&s, s.db())
    );
}

/// A dump uploaded while pg_dump writes it (`--announce`) into S3, encrypted: the multipart
/// upload of a source known only at its end, sealed; fetched back, it is the dump.
#[test]
fn an_announced_dump_is_encrypted_into_s3_while_it_is_written() {
    let s = Scenario::new();
    load_rich(&s, s.db());
    let vault = s.s3_vault();
    let (identity, recipients, fingerprint) = keys(&s, "ops");
    let stored = announced_and_encrypted(&s, &vault, &recipients);
    let record = stored.vault.as_ref().unwrap();
    assert!(record.url.ends_with(".dump.age"), "{}", record.url);
    assert_eq!(
        record.encryption().unwrap().unwrap().recipients,
        [fingerprint]
    );
    let got = s
        .cmd(&bin("vault-get"))
        .args(["--vault", &vault, "--id", stored.id.as_str()])
        .args([Path::new("--identity"), &identity])
        .run();
    got.succeeds();
    let artifact = got.manifest().artifact.unwrap();
    assert_eq!(
        toolkit::fs::hash_file(&artifact.path).unwrap(),
        (record.bytes, record.sha256)
    );
}
