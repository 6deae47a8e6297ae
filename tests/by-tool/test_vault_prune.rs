//! vault-prune against real directory and SeaweedFS vaults holding backups spread over 90
//! days (fabricated dates: the ids follow the time).

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use manifest::time::Timestamp;
use manifest::{Manifest, Status};
use testkit::{FaultyProxy, S3Server, Scenario};
use vault::{Backend, DirBackend};

use crate::util::{bin, days, ledger_db, store_fabricated, store_fabricated_as};

fn prune(s: &Scenario, vault: &str) -> testkit::TestCommand {
    s.cmd(&bin("vault-prune"))
        .args(["--vault", vault])
        .env_remove("BACKUP_RETENTION_DAYS")
}

fn dir_backend(s: &Scenario) -> (String, DirBackend) {
    let url = s.dir_vault();
    let path = url.strip_prefix("file://").unwrap();
    std::fs::create_dir_all(path).unwrap();
    (
        url.clone(),
        DirBackend::new(std::path::PathBuf::from(path)).unwrap(),
    )
}

/// The ids the plan on stderr keeps (`keep  ID: why`) and deletes.
fn plan_of(stderr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut keep = BTreeSet::new();
    let mut delete = BTreeSet::new();
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix("vault-prune: ") else {
            continue;
        };
        let (set, rest) = match rest.split_once(' ') {
            Some(("keep", r)) => (&mut keep, r),
            Some(("delete", r)) => (&mut delete, r),
            _ => continue,
        };
        set.insert(rest.trim_start().split(':').next().unwrap().to_owned());
    }
    (keep, delete)
}

fn ids(manifests: &[Manifest]) -> BTreeSet<String> {
    manifests.iter().map(|m| m.id.to_string()).collect()
}

fn listed(backend: &dyn Backend) -> BTreeSet<String> {
    let (entries, _) = vault::ops::catalogue(backend, None).unwrap();
    entries.iter().map(|e| e.manifest.id.to_string()).collect()
}

/// Which of `made` (newest first, index = days ago) each rule keeps, computed apart from
/// the retention crate: days and months from the timestamps' text, weeks from the day
/// number (1970-01-01 was a Thursday).
fn expected(made: &[Manifest], rule: &str, n: usize) -> BTreeSet<String> {
    let bucket = |m: &Manifest| -> String {
        let text = Timestamp::from_system_time(m.created_at.system_time()).to_string();
        let day = m
            .created_at
            .system_time()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86_400;
        match rule {
            "daily" => text[..10].to_owned(),
            "weekly" => ((day + 3) / 7).to_string(),
            "monthly" => text[..7].to_owned(),
            "last" => m.id.to_string(),
            "within" => (m.created_at.age() < days(n as f64)).to_string(),
            _ => unreachable!(),
        }
    };
    if rule == "within" {
        return made
            .iter()
            .filter(|m| bucket(m) == "true")
            .map(|m| m.id.to_string())
            .collect();
    }
    let mut seen = Vec::new();
    let mut kept = BTreeSet::new();
    for m in made {
        let b = bucket(m);
        if seen.len() < n && !seen.contains(&b) {
            seen.push(b);
            kept.insert(m.id.to_string());
        }
    }
    kept
}

#[test]
fn a_vault_of_90_days_is_planned_by_each_rule_and_by_combinations() {
    let s = Scenario::new();
    let (url, backend) = dir_backend(&s);
    // One backup a day of app, one every ten days of docs (another source: its own newest is kept).
    let app: Vec<Manifest> = (0..90)
        .map(|i| {
            store_fabricated(
                &s,
                &backend,
                "postgres",
                "app",
                days(f64::from(i)) + Duration::from_secs(3600),
                16,
            )
        })
        .collect();
    let docs: Vec<Manifest> = (0..9)
        .map(|i| {
            store_fabricated(
                &s,
                &backend,
                "postgres",
                "docs",
                days(f64::from(i * 10 + 45)),
                16,
            )
        })
        .collect();
    let newest_docs = docs[0].id.to_string();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, usize)]);
    #[rustfmt::skip]
    let cases: &[Case] = &[
        (&["--older-than", "30d"], &[("within", 30)]),
        (&["--keep-last", "7"], &[("last", 7)]),
        (&["--keep-daily", "10"], &[("daily", 10)]),
        (&["--keep-weekly", "4"], &[("weekly", 4)]),
        (&["--keep-monthly", "3"], &[("monthly", 3)]),
        (
            &["--keep-last", "3", "--keep-daily", "5"],
            &[("last", 3), ("daily", 5)],
        ),
        (
            &["--older-than", "10d", "--keep-last", "20"],
            &[("within", 10), ("last", 20)],
        ),
        (
            &[
                "--keep-daily",
                "7",
                "--keep-weekly",
                "4",
                "--keep-monthly",
                "6",
            ],
            &[("daily", 7), ("weekly", 4), ("monthly", 6)],
        ),
        (
            &["--older-than", "5d", "--keep-weekly", "8"],
            &[("within", 5), ("weekly", 8)],
        ),
    ];
    for (args, rules) in cases {
        let out = prune(&s, &url).args(*args).arg_dry_run().run();
        out.succeeds()
            .stderr_contains("dry run: nothing was changed");
        assert_eq!(out.stdout, "", "a dry run emits no manifest");
        let (keep, delete) = plan_of(&out.stderr);
        let mut want: BTreeSet<String> = rules
            .iter()
            .flat_map(|(r, n)| {
                expected(&app, r, *n)
                    .into_iter()
                    .chain(expected(&docs, r, *n))
            })
            .collect();
        want.insert(app[0].id.to_string()); // the newest good one, always
        want.insert(newest_docs.clone());
        assert_eq!(keep, want, "{args:?}");
        assert_eq!(
            keep.len() + delete.len(),
            99,
            "{args:?}: every backup is decided"
        );
        assert_eq!(
            listed(&backend).len(),
            99,
            "{args:?}: a dry run changes nothing"
        );
    }
}

trait DryRunArg {
    fn arg_dry_run(self) -> Self;
}

impl DryRunArg for testkit::TestCommand {
    fn arg_dry_run(self) -> Self {
        self.args(["--dry-run"])
    }
}

#[test]
fn old_backups_keep_their_newest_a_failed_one_is_never_kept_and_the_ledger_marks_the_pruned() {
    let s = Scenario::new();
    let (url, backend) = dir_backend(&s);
    let old: Vec<Manifest> = [40.0, 50.0, 60.0, 70.0]
        .iter()
        .map(|d| store_fabricated(&s, &backend, "postgres", "app", days(*d), 32))
        .collect();
    let failed = store_fabricated_as(&s, &backend, "postgres", "db", days(1.0), 32, "failed");
    let good = store_fabricated(&s, &backend, "postgres", "db", days(35.0), 32);
    let older = store_fabricated(&s, &backend, "postgres", "db", days(36.0), 32);
    let protected = store_fabricated(&s, &backend, "qdrant", "docs", days(80.0), 32);
    let newest = store_fabricated(&s, &backend, "qdrant", "docs", days(0.5), 32);
    let (db, ledger_url) = ledger_db(&s);
    let ledger = || s.cmd(&bin("vault-ledger")).env("LEDGER_URL", &ledger_url);
    ledger().args(["init"]).run().succeeds();
    ledger().args(["resync", "--vault", &url]).run().succeeds();

    let out = prune(&s, &url)
        .args(["--protect", protected.id.as_str()])
        .env("BACKUP_RETENTION_DAYS", "30")
        .run();
    out.succeeds();
    let pruned = out.manifests();
    assert!(pruned
        .iter()
        .all(|m| m.status == Status::Pruned && m.vault.is_some()));
    let gone: BTreeSet<String> = [&old[1], &old[2], &old[3], &failed, &older]
        .iter()
        .map(|m| m.id.to_string())
        .collect();
    assert_eq!(ids(&pruned), gone);
    let left: BTreeSet<String> = [&old[0], &good, &protected, &newest]
        .iter()
        .map(|m| m.id.to_string())
        .collect();
    assert_eq!(
        listed(&backend),
        left,
        "the newest of each source, never the failed one; the protected one"
    );
    assert!(
        vault::ops::orphans(&backend, "").unwrap().is_empty(),
        "artifacts went with their sidecars"
    );
    out.stderr_contains(&format!(
        "keep   {}: newest good backup of its kind and source",
        old[0].id
    ));
    out.stderr_contains(&format!(
        "delete {}: status failed: never kept by a rule",
        failed.id
    ));

    let recorded = ledger().stdin(out.stdout.clone()).run();
    recorded.succeeds();
    let mut c = s.connect(&db);
    let statuses: Vec<(String, String)> = c
        .query(
            "SELECT backup_id, status FROM backup_history ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (id, status) in statuses {
        let want = if gone.contains(&id) {
            "pruned"
        } else {
            "success"
        };
        assert_eq!(status, want, "{id}");
    }
}

#[test]
fn table_of_refusals_each_changes_nothing() {
    let s = Scenario::new();
    let (url, backend) = dir_backend(&s);
    let (empty_url, _) = {
        let path = s.path().join("empty-vault");
        std::fs::create_dir_all(&path).unwrap();
        (format!("file://{}", path.display()), ())
    };
    store_fabricated_as(&s, &backend, "neo4j", "graph", days(50.0), 8, "failed");
    store_fabricated_as(&s, &backend, "neo4j", "graph", days(60.0), 8, "failed");
    store_fabricated(&s, &backend, "postgres", "app", days(50.0), 8);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("no rule", vec!["--vault", &url], "no retention rule"),
        ("an empty vault", vec!["--vault", &empty_url, "--older-than", "30d"], "lists no backups in file://"),
        ("a kind with no good backup", vec!["--vault", &url, "--older-than", "30d"], "would delete all 2 neo4j backups"),
        ("a listing that fails", vec!["--vault", "s3://nobucket/x", "--s3-endpoint", &dead, "--s3-retries", "0", "--older-than", "30d"], "refusing to prune"),
        ("an empty kind", vec!["--vault", &url, "--kind", "qdrant", "--older-than", "30d"], "lists no backups in file://"),
    ];
    for (what, args, message) in cases {
        let out = s
            .cmd(&bin("vault-prune"))
            .env_remove("BACKUP_RETENTION_DAYS")
            .args(&args)
            .run();
        out.fails_with(2).stderr_contains(message);
        assert_eq!(out.stdout, "", "{what}");
        assert_eq!(listed(&backend).len(), 3, "{what}: nothing deleted");
    }
    // Only postgres: the neo4j backups are not this run's business.
    let out = prune(&s, &url)
        .args(["--kind", "postgres", "--older-than", "30d"])
        .run();
    out.succeeds();
    assert_eq!(out.stdout, "");
}

#[test]
fn an_interrupted_prune_on_s3_is_finished_by_the_next_run() {
    let s = Scenario::new();
    let url = s.s3_vault();
    let server = S3Server::from_env();
    let bucket = testkit::bucket_of(&url);
    let backend = server.backend(&bucket, "stack");
    let made: Vec<Manifest> = (0..8)
        .map(|i| {
            store_fabricated(
                &s,
                &backend,
                "postgres",
                "app",
                days(f64::from(i) * 10.0 + 0.5),
                64,
            )
        })
        .collect();
    // Oldest first: made[7], made[6], … are deleted in that order; the third one's artifact
    // delete fails, after its sidecar went.
    let victim = vault::ops::key_of(&backend, &made[5]).unwrap();
    let proxy = FaultyProxy::start(
        &server.endpoint,
        &format!("DELETE /{bucket}/stack/{victim} HTTP"),
        usize::MAX,
    );
    let first = prune(&s, &url)
        .args([
            "--keep-last",
            "2",
            "--s3-endpoint",
            &proxy.endpoint,
            "--s3-retries",
            "0",
        ])
        .run();
    first
        .fails_with(2)
        .stderr_contains("the next run finishes the plan");
    let first_pruned = ids(&first.manifests());
    assert_eq!(
        first_pruned,
        ids(&made[5..]),
        "its sidecar is gone, so it is pruned"
    );
    assert_eq!(
        vault::ops::orphans(&backend, "").unwrap().len(),
        1,
        "the artifact left alone"
    );

    // An upload whose process died: its part 2 and its abort both failed.
    let unfinished = crate::util::spooled(&s, "postgres_unfinished_20250130_020000", 12 << 20);
    let broken = FaultyProxy::start_with(
        &server.endpoint,
        &[("partNumber=2&", usize::MAX), ("DELETE /", usize::MAX)],
    );
    s.cmd(&bin("vault-put"))
        .args([
            "--vault",
            &url,
            "--s3-endpoint",
            &broken.endpoint,
            "--s3-retries",
            "0",
            "--s3-multipart-threshold",
            "0",
        ])
        .manifests_in(&[unfinished])
        .run()
        .fails_with(1);
    assert_eq!(server.incomplete_uploads(&bucket, "stack/").len(), 1);

    // The next run finishes the plan; the leftovers are younger than the grace period.
    let second = prune(&s, &url).args(["--keep-last", "2"]).run();
    second.succeeds();
    second.stderr_contains(&format!("leave  artifact-without-sidecar {victim}"));
    second.stderr_contains("leave  unfinished-upload");
    assert_eq!(ids(&second.manifests()), ids(&made[2..5]));
    assert_eq!(listed(&backend), ids(&made[..2]));
    // Past the grace period, they are swept and reported.
    let third = prune(&s, &url)
        .args(["--keep-last", "2", "--orphans-older-than", "0s"])
        .run();
    third
        .succeeds()
        .stderr_contains(&format!("swept artifact-without-sidecar {victim}"));
    third.stderr_contains(
        "swept unfinished-upload postgres/2025/01/30/postgres_unfinished_20250130_020000.dump",
    );
    assert_eq!(third.stdout, "", "no backup was deleted");
    assert_eq!(listed(&backend), ids(&made[..2]));
    assert!(vault::ops::orphans(&backend, "").unwrap().is_empty());
    assert!(server.incomplete_uploads(&bucket, "stack/").is_empty());
}
