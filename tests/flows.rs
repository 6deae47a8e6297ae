//! The operator flows of `bin-wrappers/` end to end: the real tools on PATH, against the
//! harness's real PostgreSQL and SeaweedFS, the fake Qdrant and the fake Neo4j; the systemd
//! units through `systemd-analyze verify`; the wrappers through shellcheck.
//!
//! The restore flows end with integrity-check; without it on PATH they still restore and
//! prove each restore by the restore tool's own fingerprint, then fail clearly because
//! nothing checked them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use manifest::{Manifest, Status};
use serde_json::json;
use testkit::fake_neo4j::samples::source_graph;
use testkit::fake_neo4j::{FakeNeo4j, Graph};
use testkit::fake_qdrant::FakeQdrant;
use testkit::{Outcome, Scenario, TestCommand};

use crate::util::{bin, ledger_db, pg_dump_wrapper};

const NEO4J_PASSWORD: &str = "flows-Pw_42";
const TOOLS: [&str; 8] = [
    "integrity-check",
    "dump-pg",
    "snap-qdrant",
    "dump-neo4j",
    "vault-put",
    "vault-get",
    "vault-ledger",
    "vault-prune",
];

/// A wrapper script of `bin-wrappers/`.
fn wrapper(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bin-wrappers")
        .join(name)
}

/// The whole stack: a PostgreSQL database with 500 rows, a Qdrant collection of 20 points, a
/// Neo4j graph, an S3 vault and a ledger.
struct Stack {
    s: Scenario,
    qdrant: FakeQdrant,
    neo4j: FakeNeo4j,
    vault: String,
    ledger: String,
    ledger_db: String,
    path: String,
}

impl Stack {
    fn new() -> Stack {
        let s = Scenario::new();
        s.sql(
            s.db(),
            "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL);
             INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 500) g;",
        );
        let qdrant = FakeQdrant::start();
        qdrant.create_collection("docs", 4, "Cosine");
        let points: Vec<_> = (1..=20)
            .map(|i| json!({"id": i, "vector": [0.1, 0.2, 0.3, i as f64], "payload": {"n": i}}))
            .collect();
        qdrant.upsert("docs", json!(points)).unwrap();
        let neo4j = FakeNeo4j::builder()
            .credentials("neo4j", NEO4J_PASSWORD)
            .graph(source_graph())
            .start()
            .unwrap();
        let vault = s.s3_vault();
        let (ledger_db, ledger) = ledger_db(&s);
        s.cmd(&bin("vault-ledger"))
            .env("LEDGER_URL", &ledger)
            .args(["init"])
            .run()
            .succeeds();
        // The tools, and only they, first on PATH.
        let dir = s.path().join("bin");
        std::fs::create_dir_all(&dir).unwrap();
        for tool in TOOLS {
            std::os::unix::fs::symlink(bin(tool), dir.join(tool)).unwrap();
        }
        // stackvault-dr-drill runs stackvault-restore from PATH.
        let restore = "stackvault-restore";
        std::os::unix::fs::symlink(wrapper(restore), dir.join(restore)).unwrap();
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
        std::fs::create_dir_all(s.path().join("metrics")).unwrap();
        Stack {
            s,
            qdrant,
            neo4j,
            vault,
            ledger,
            ledger_db,
            path,
        }
    }

    /// A stack whose vault holds one backup of its PostgreSQL database.
    fn with_postgres_backup() -> Stack {
        let st = Stack::new();
        st.cmd("stackvault-nightly")
            .args(["--only", "postgres"])
            .run()
            .succeeds();
        st
    }

    /// Takes integrity-check off the stack's PATH.
    fn without_integrity_check(self) -> Stack {
        std::fs::remove_file(self.s.path().join("bin/integrity-check")).unwrap();
        self
    }

    /// A wrapper configured for the whole stack, nothing of the developer's environment.
    fn cmd(&self, name: &str) -> TestCommand {
        self.cmd_of(&wrapper(name))
    }

    /// [`Stack::cmd`] for any program (found on the stack's PATH).
    fn cmd_of(&self, program: &Path) -> TestCommand {
        let cmd = [
            "QDRANT_API_KEY",
            "NEO4J_ADMIN",
            "NEO4J_HOST",
            "NEO4J_PORT",
            "NEO4J_DATABASE",
            "STACKVAULT_RUN",
            "STACKVAULT_PG_BINDIR",
            "STACKVAULT_NEO4J_METHOD",
            "STACKVAULT_RESTORE_PG_DB",
            "STACKVAULT_PRUNE_ARGS",
            "BACKUP_RETENTION_DAYS",
            "STACKVAULT_WEBHOOK_URL",
        ]
        .iter()
        .fold(self.s.cmd(program), |c, v| c.env_remove(v));
        cmd.env("PATH", &self.path)
            .env("STACKVAULT_ENV_FILE", "")
            .env("VAULT_URL", &self.vault)
            .env("PGDATABASE", self.s.db())
            .env("QDRANT_URL", self.qdrant.url())
            .env("NEO4J_URL", self.neo4j.url())
            .env("NEO4J_USER", "neo4j")
            .env("NEO4J_PASSWORD", NEO4J_PASSWORD)
            .env("LEDGER_URL", &self.ledger)
            .env("STACKVAULT_LOG_DIR", self.s.path().join("log"))
            .env("STACKVAULT_LOCK_FILE", self.s.path().join("nightly.lock"))
            .env(
                "STACKVAULT_METRICS_FILE",
                self.s.path().join("metrics/stackvault.prom"),
            )
    }

    /// stackvault-restore's menu on a pseudo-terminal, answered by `steps` (what to wait
    /// for, what to type, …); the transcript of the terminal is the outcome's stdout.
    fn menu(&self, steps: &[&str]) -> Outcome {
        let python = std::env::var("STACKVAULT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let driver =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flows/pty_drive.py");
        let restore = wrapper("stackvault-restore");
        self.cmd_of(Path::new(&python))
            .args([driver.as_os_str()])
            .args(steps)
            .args(["--".as_ref(), restore.as_os_str()])
            .run()
    }

    /// (kind, status) of every row of the ledger's backup_history, sorted.
    fn history(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = self
            .s
            .connect(&self.ledger_db)
            .query("SELECT backup_type, status FROM backup_history", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        rows.sort();
        rows
    }

    fn pg_rows(&self) -> i64 {
        self.s
            .connect(self.s.db())
            .query_one("SELECT count(*) FROM notes", &[])
            .unwrap()
            .get(0)
    }
}

fn kinds(manifests: &[Manifest]) -> BTreeSet<(String, String)> {
    manifests
        .iter()
        .map(|m| (m.kind.as_str().to_owned(), m.status.as_str().to_owned()))
        .collect()
}

fn set(items: &[(&str, Status)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(k, s)| (k.to_string(), s.as_str().to_owned()))
        .collect()
}

fn restore_result(m: &Manifest) -> String {
    m.restore
        .as_ref()
        .map(|r| r["result"].to_string())
        .unwrap_or_default()
}

/// The restore step's one clear line when integrity-check is missing.
const UNCHECKED: &str = "integrity-check is not on PATH: the restored data was NOT checked";

fn assert_unchecked(out: &Outcome) {
    out.fails_with(2).stderr_contains(UNCHECKED);
}

#[test]
fn nightly_backs_up_the_stack_and_restore_brings_it_all_back() {
    let st = Stack::new();
    let out = st
        .cmd("stackvault-nightly")
        .env("BACKUP_RETENTION_DAYS", "30")
        .run();
    out.succeeds()
        .stderr_contains("stackvault-nightly: postgres: ok")
        .stderr_contains("stackvault-nightly: qdrant: ok")
        .stderr_contains("stackvault-nightly: neo4j: ok")
        .stderr_contains("stackvault-nightly: prune: ok")
        .stderr_contains("stackvault-nightly: metrics: ok");
    let stored = out.manifests();
    assert_eq!(
        kinds(&stored),
        set(&[
            ("neo4j", Status::Ok),
            ("postgres", Status::Ok),
            ("qdrant", Status::Ok)
        ])
    );
    let runs: BTreeSet<_> = stored.iter().map(|m| m.run.clone()).collect();
    assert_eq!(runs.len(), 1, "one run id for the set: {runs:?}");
    assert!(stored.iter().all(|m| m.vault.is_some()));
    let history = st.history();
    assert_eq!(
        history,
        [
            ("neo4j", "success"),
            ("postgres", "success"),
            ("qdrant", "success")
        ]
        .map(|(k, s)| (k.to_owned(), s.to_owned()))
    );
    let metrics = std::fs::read_to_string(st.s.path().join("metrics/stackvault.prom")).unwrap();
    assert!(metrics.contains("kind=\"qdrant\""), "{metrics}");
    let log = std::fs::read_to_string(st.s.path().join("log/runs.ndjson")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");

    // The sources are lost...
    let graph_before = st.neo4j.counts("neo4j");
    st.s.sql(st.s.db(), "DROP TABLE notes");
    assert!(st.qdrant.delete_collection("docs"));
    st.neo4j.with_graph("neo4j", |g| *g = Graph::new());

    // ... and come back from the newest set, proven by each restore tool.
    let out = st
        .cmd("stackvault-restore")
        .args(["--latest", "--type", "all", "--yes"])
        .run();
    out.succeeds()
        .stderr_contains("the newest backup set is run_")
        .stderr_contains("stackvault-restore: check: ok");
    let restored = out.manifests();
    assert_eq!(restored.len(), 3, "{restored:?}");
    for m in &restored {
        assert_eq!(m.status, Status::Ok, "{m:?}");
        assert_eq!(restore_result(m), "\"ok\"", "{m:?}");
        // ... and checked by integrity-check, whose verdict the ledger records.
        assert_eq!(m.checks.as_ref().unwrap()["result"], "pass", "{m:?}");
    }
    let check_runs: i64 =
        st.s.connect(&st.ledger_db)
            .query_one("SELECT count(*) FROM backup_check_run", &[])
            .unwrap()
            .get(0);
    assert_eq!(check_runs, 3);
    assert_eq!(st.pg_rows(), 500);
    assert_eq!(st.qdrant.count("docs"), Some(20));
    assert_eq!(st.neo4j.counts("neo4j"), graph_before);
    // Restores are in the ledger too.
    let restores: i64 =
        st.s.connect(&st.ledger_db)
            .query_one("SELECT count(*) FROM backup_restore", &[])
            .unwrap()
            .get(0);
    assert_eq!(restores, 3);
}

#[test]
fn a_database_that_breaks_mid_run_is_recorded_failed_while_the_others_are_stored() {
    let st = Stack::new();
    let broken = pg_dump_wrapper(
        &st.s,
        "broken",
        "echo 'pg_dump: error: connection to server lost' >&2; exit 1",
    );
    let out = st
        .cmd("stackvault-nightly")
        .env("STACKVAULT_PG_BINDIR", &broken)
        .run();
    out.fails_with(1)
        .stderr_contains("stackvault-nightly: postgres: failed")
        .stderr_contains("stackvault-nightly: qdrant: ok")
        .stderr_contains("stackvault-nightly: neo4j: ok")
        .stderr_contains("prune: skipped (no retention configured");
    assert_eq!(
        kinds(&out.manifests()),
        set(&[
            ("neo4j", Status::Ok),
            ("postgres", Status::Failed),
            ("qdrant", Status::Ok)
        ])
    );
    assert_eq!(
        st.history(),
        [
            ("neo4j", "success"),
            ("postgres", "failed"),
            ("qdrant", "success")
        ]
        .map(|(k, s)| (k.to_owned(), s.to_owned()))
    );
}

#[test]
fn only_some_kinds_and_no_ledger_say_what_they_do() {
    let st = Stack::new();
    let out = st
        .cmd("stackvault-nightly")
        .env_remove("LEDGER_URL")
        .args(["--only", "qdrant"])
        .run();
    out.succeeds()
        .stderr_contains("no ledger configured (LEDGER_URL unset)")
        .stderr_contains("metrics: skipped (no ledger)");
    assert_eq!(kinds(&out.manifests()), set(&[("qdrant", Status::Ok)]));
    assert!(st.history().is_empty());

    for (args, unset, message) in [
        (&["--only", "mysql"][..], "", "--only: unknown kind 'mysql'"),
        (
            &["--only", "neo4j"][..],
            "NEO4J_URL",
            "--only neo4j: not configured",
        ),
        (&["--bogus"][..], "", "unknown argument '--bogus'"),
    ] {
        let mut cmd = st.cmd("stackvault-nightly").args(args);
        if !unset.is_empty() {
            cmd = cmd.env_remove(unset);
        }
        cmd.run().fails_with(2).stderr_contains(message);
    }
}

#[test]
fn two_nightly_runs_never_overlap_and_a_killed_holder_leaves_no_lock() {
    let st = Stack::new();
    let slow = pg_dump_wrapper(&st.s, "slow", "sleep 3; exec \"$REAL\" \"$@\"");
    let first = st
        .cmd("stackvault-nightly")
        .args(["--only", "postgres"])
        .env("STACKVAULT_PG_BINDIR", &slow)
        .spawn_with_stdin("");
    std::thread::sleep(Duration::from_millis(1000));
    let second = st
        .cmd("stackvault-nightly")
        .args(["--only", "postgres"])
        .run();
    second
        .fails_with(2)
        .stderr_contains("another stackvault-nightly holds");
    assert!(second.manifests().is_empty());
    let first = first.wait();
    first.succeeds();
    assert_eq!(first.manifests().len(), 1);

    // A holder killed with SIGKILL: the kernel drops its lock, the lock file stays, and the
    // next run is not blocked by it. (One process holding the lock as a run does; systemd
    // kills a run's whole cgroup, its tools included, which hold it too.)
    let lock = st.s.path().join("nightly.lock");
    let mut holder = Command::new("sh")
        .args(["-c", "exec 9>>\"$0\" && flock 9 && exec sleep 60"])
        .arg(&lock)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    st.cmd("stackvault-nightly")
        .args(["--only", "qdrant"])
        .run()
        .fails_with(2)
        .stderr_contains("another stackvault-nightly holds");
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(lock.exists());
    st.cmd("stackvault-nightly")
        .args(["--only", "qdrant"])
        .run()
        .succeeds();
}

#[test]
fn without_integrity_check_the_restore_is_proven_but_said_unchecked() {
    let st = Stack::with_postgres_backup().without_integrity_check();
    st.s.sql(st.s.db(), "DROP TABLE notes");
    let out = st
        .cmd("stackvault-restore")
        .args(["--latest", "--type", "postgres", "--yes"])
        .run();
    assert_unchecked(&out);
    out.stderr_contains("stackvault-restore: check: stopped");
    let restored = out.manifests();
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert_eq!(restore_result(&restored[0]), "\"ok\"");
    assert!(restored[0].checks.is_none(), "nothing claims a check");
    assert_eq!(st.pg_rows(), 500);
    let smoke = st.cmd("stackvault-smoke").run();
    assert!(
        smoke.stdout.contains(
            "FAIL databases: integrity-check is not on PATH: the databases were NOT checked"
        ),
        "{}",
        smoke.stdout
    );
}

#[test]
fn restore_by_flags_refuses_what_it_cannot_do() {
    let st = Stack::with_postgres_backup();
    // Without --yes the restore tool refuses the existing database and leaves it alone.
    st.s.sql(st.s.db(), "DELETE FROM notes WHERE id > 10");
    let out = st
        .cmd("stackvault-restore")
        .args(["--latest", "--type", "postgres"])
        .run();
    out.fails_with(1)
        .stderr_contains("pass --clean to restore over it");
    assert_eq!(st.pg_rows(), 10);

    for (args, message) in [
        (&["--latest", "--run", "run_x"][..], "exclude each other"),
        (&["--type", "mysql", "--latest"][..], "unknown type 'mysql'"),
        (&[][..], "the menu needs a terminal"),
        (
            &["--backup-id", "oracle_x_20250101_000000"][..],
            "no kind postgres",
        ),
        (
            &["--latest", "--type", "neo4j"][..],
            "no good backup in the vault (type neo4j)",
        ),
    ] {
        st.cmd("stackvault-restore")
            .args(args)
            .run()
            .fails_with(2)
            .stderr_contains(message);
    }
}

#[test]
fn validate_only_downloads_and_verifies_without_restoring() {
    let st = Stack::new();
    st.cmd("stackvault-nightly").run().succeeds();
    st.s.sql(st.s.db(), "DELETE FROM notes WHERE id > 10");
    let out = st
        .cmd("stackvault-restore")
        .args(["--latest", "--validate-only"])
        .run();
    out.succeeds()
        .stderr_contains("validated only, nothing restored");
    let validated = out.manifests();
    assert_eq!(
        kinds(&validated),
        set(&[
            ("neo4j", Status::Ok),
            ("postgres", Status::Ok),
            ("qdrant", Status::Ok)
        ])
    );
    assert!(validated.iter().all(|m| m.restore.is_none()));
    assert_eq!(st.pg_rows(), 10, "nothing restored");
    for m in &validated {
        let path = &m.artifact.as_ref().unwrap().path;
        assert!(
            !path.exists(),
            "the download {} was deleted",
            path.display()
        );
    }
}

#[test]
fn the_menu_restores_a_chosen_backup_through_a_terminal() {
    let st = Stack::with_postgres_backup();
    st.s.sql(st.s.db(), "DROP TABLE notes");
    let db = st.s.db().to_owned();
    let confirm = format!("Type '{db}' to restore");
    let out = st.menu(&["Type [1-4", "1", "Backup [1-1]", "1", &confirm, &db]);
    // One transcript: the terminal carries both stdout and stderr.
    let transcript = &out.stdout;
    for shown in [
        "Restore what?",
        "postgres backups, newest first:",
        &format!("1) postgres_{db}_"),
        "run_",
        " ok",
        "Whatever exists there is replaced.",
        "stackvault-restore: postgres: ok", // restored and proven...
        "stackvault-restore: check: ok",    // ... and checked
    ] {
        assert!(transcript.contains(shown), "no {shown:?} in:\n{transcript}");
    }
    assert_eq!(out.code, Some(0), "{transcript}");
    assert_eq!(st.pg_rows(), 500);
}

#[test]
fn the_menu_restores_nothing_unless_the_name_is_typed_back() {
    let st = Stack::with_postgres_backup();
    st.s.sql(st.s.db(), "DELETE FROM notes WHERE id > 10");
    let out = st.menu(&[
        "Type [1-4",
        "7",
        "Answer with a number",
        "1",
        "Backup [1-1]",
        "1",
        "to restore, anything else",
        "yes",
    ]);
    assert!(
        out.stdout.contains("not confirmed; nothing restored"),
        "{}",
        out.stdout
    );
    assert_eq!(out.code, Some(2));
    assert_eq!(st.pg_rows(), 10);
}

#[test]
fn the_drill_restores_the_newest_set_into_scratch_targets_and_measures_rto_per_database() {
    let st = Stack::new();
    st.cmd("stackvault-nightly").run().succeeds();
    let scratch_qdrant = FakeQdrant::start();
    let scratch_neo4j = FakeNeo4j::builder()
        .credentials("neo4j", NEO4J_PASSWORD)
        .graph(Graph::new())
        .start()
        .unwrap();
    let scratch_db = st.s.db_name("scratch");
    let drill_env = st.s.path().join("drill.env");
    std::fs::write(
        &drill_env,
        format!(
            "QDRANT_URL={}\nNEO4J_URL={}\nSTACKVAULT_RESTORE_PG_DB={scratch_db}\n",
            scratch_qdrant.url(),
            scratch_neo4j.url()
        ),
    )
    .unwrap();
    // The production targets come from the environment file, as on a real host: the
    // restores must not read it again and restore over production.
    let prod_env = st.s.path().join("stackvault.env");
    std::fs::write(
        &prod_env,
        format!(
            "QDRANT_URL={}\nNEO4J_URL={}\n",
            st.qdrant.url(),
            st.neo4j.url()
        ),
    )
    .unwrap();
    st.s.sql(
        st.s.db(),
        "INSERT INTO notes VALUES (501, 'after the backup')",
    );
    let cleaned = st.s.path().join("cleaned");
    let out = st
        .cmd("stackvault-dr-drill")
        .env_remove("QDRANT_URL")
        .env_remove("NEO4J_URL")
        .env("STACKVAULT_ENV_FILE", &prod_env)
        .env("STACKVAULT_DRILL_ENV_FILE", &drill_env)
        .env(
            "STACKVAULT_DRILL_CLEANUP",
            format!("touch '{}'", cleaned.display()),
        )
        .args(["--max-rto", "0"])
        .run();
    // Every database came back into its scratch target, proven by its restore tool...
    assert_eq!(scratch_qdrant.count("docs"), Some(20), "{}", out.stderr);
    assert_eq!(scratch_neo4j.counts("neo4j"), st.neo4j.counts("neo4j"));
    let rows: i64 =
        st.s.connect(&scratch_db)
            .query_one("SELECT count(*) FROM notes", &[])
            .unwrap()
            .get(0);
    assert_eq!(rows, 500);
    assert_eq!(st.pg_rows(), 501, "production untouched");
    // ... and checked; but an RTO of 0 minutes is always exceeded.
    out.fails_with(1)
        .stderr_contains("ALERT rto_exceeded")
        .stderr_contains("stackvault-dr-drill: postgres: RTO ");
    assert!(cleaned.exists(), "the cleanup ran");
    let log = std::fs::read_to_string(st.s.path().join("log/dr_test_log.ndjson")).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(
        line,
        serde_json::from_str::<serde_json::Value>(out.stdout.trim()).unwrap()
    );
    assert_eq!(
        (&line["result"], &line["rto_exceeded"]),
        (&json!("failed"), &json!(true))
    );
    assert_eq!(line["set_check_exit_status"], 0);
    out.stderr_contains("the whole set: integrity-check exit status 0");
    let per_kind: Vec<_> = line["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap(),
                d["exit_status"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(per_kind, [("postgres", 0), ("qdrant", 0), ("neo4j", 0)]);
    for d in line["databases"].as_array().unwrap() {
        assert!(d["rto_seconds"].as_f64().unwrap() > 0.0, "{d}");
    }
    assert!(line["rto_seconds"].as_f64().unwrap() > 0.0);

    // A scratch target that is the production one: refused before anything is touched.
    std::fs::write(
        &drill_env,
        format!("STACKVAULT_RESTORE_PG_DB={scratch_db}\n"),
    )
    .unwrap();
    st.cmd("stackvault-dr-drill")
        .env("STACKVAULT_DRILL_ENV_FILE", &drill_env)
        .run()
        .fails_with(2)
        .stderr_contains("the scratch Qdrant is the production one");
}

#[test]
fn smoke_prints_one_line_per_check() {
    let st = Stack::new();
    st.cmd("stackvault-nightly")
        .args(["--only", "postgres,neo4j"])
        .run()
        .succeeds();
    let out = st.cmd("stackvault-smoke").run();
    out.fails_with(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let expected = [
        "ok vault: 2 backups listed",
        "ok recent postgres: the newest good backup is 0h old",
        "FAIL recent qdrant: no good backup in the vault",
        "ok recent neo4j: the newest good backup is 0h old",
        "ok databases: integrity-check --live passed",
    ];
    assert_eq!(lines[..5], expected, "{}", out.stdout);
    // The ledger saw no qdrant backup, so it raises no alert of its own about it.
    assert_eq!(lines[5..], ["ok ledger: no alert"], "{}", out.stdout);

    // A vault that cannot be listed: its directory is a file.
    let not_a_dir = st.s.path().join("not-a-dir");
    std::fs::write(&not_a_dir, "").unwrap();
    let out = st
        .cmd("stackvault-smoke")
        .env("VAULT_URL", format!("file://{}", not_a_dir.display()))
        .env_remove("LEDGER_URL")
        .run();
    out.fails_with(1);
    assert!(
        out.stdout
            .starts_with("FAIL vault: vault-get --list failed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with("skip ledger: LEDGER_URL unset\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn setup_prepares_spool_vault_and_ledger_and_is_idempotent() {
    use std::os::unix::fs::PermissionsExt;
    let st = Stack::new();
    let bucket = format!("{}-setup", st.s.db().replace('_', "-"));
    let spool = st.s.path().join("setup-spool");
    // A ledger database without tables (the stack's own has them already).
    let ledger_db = st.s.db_name("setup_ledger");
    st.s.create_db(&ledger_db);
    let ledger = format!("dbname={ledger_db}");
    let setup = || {
        // Backup ids have a resolution of one second.
        std::thread::sleep(Duration::from_millis(1100));
        st.cmd("stackvault-setup")
            .env("VAULT_URL", format!("s3://{bucket}/stack"))
            .env("STACKVAULT_SPOOL", &spool)
            .env("LEDGER_URL", &ledger)
            .run()
    };
    let first = setup();
    first
        .succeeds()
        .stderr_contains("spool: ")
        .stderr_contains(" created")
        .stderr_contains("vault: ready")
        .stderr_contains("ledger: ready")
        .stderr_contains("test backup: stored");
    let mode = std::fs::metadata(&spool).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert!(
        first.stdout.contains(&format!("postgres_{}_", st.s.db())),
        "{}",
        first.stdout
    );
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let second = setup();
    second.succeeds().stderr_contains("mode set to 0700");
    assert_eq!(
        second.stdout.lines().count(),
        3,
        "a header and two backups: {}",
        second.stdout
    );
    let rows: i64 =
        st.s.connect(&ledger_db)
            .query_one(
                "SELECT count(*) FROM backup_history WHERE status = 'success'",
                &[],
            )
            .unwrap()
            .get(0);
    assert_eq!(rows, 2);
    setup()
        .succeeds()
        .stderr_contains(&format!("spool: {} ok", spool.display()))
        .stderr_contains("is at schema version");
}

#[test]
fn the_compose_files_are_valid_and_hold_no_secret() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = [
        "compose/docker-compose.yaml",
        "compose/docker-compose.test.yaml",
    ];
    // Debian's python3 with python3-yaml and python3-jsonschema, as docker-compose uses.
    let out = Command::new("/usr/bin/python3")
        .arg(repo.join("tests/fixtures/compose/validate.py"))
        .arg(repo.join("tests/fixtures/compose/compose-spec.json"))
        .args(files.map(|f| repo.join(f)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secrets = [
        ("STACKVAULT_TEST_S3_ACCESS_KEY", "ak-flows"),
        ("STACKVAULT_TEST_S3_SECRET_KEY", "sk-flows"),
        ("NEO4J_AUTH", "neo4j/pw-flows"),
    ];
    for file in files {
        let config = |with_secrets: bool| {
            let mut cmd = Command::new("docker-compose");
            cmd.args(["-p", "stackvault-check", "-f"])
                .arg(repo.join(file))
                .arg("config");
            for (name, value) in secrets {
                cmd.env_remove(name);
                if with_secrets {
                    cmd.env(name, value);
                }
            }
            cmd.output()
                .expect("docker-compose (Debian's package) runs")
        };
        let out = config(true);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("neo4j/pw-flows"),
            "{file}: interpolated: {text}"
        );
        // Without the secrets in the environment, compose stops and names what is missing.
        let out = config(false);
        assert!(!out.status.success(), "{file}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("export "),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    // ExecStart= must name an executable that exists: the units point at /usr/local/bin,
    // so the copies point at the wrappers and tools of this checkout instead.
    let mut units = vec![];
    for entry in std::fs::read_dir(repo.join("systemd")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !(name.ends_with(".service") || name.ends_with(".timer")) {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        for line in text.clone().lines() {
            if let Some(exec) = line.strip_prefix("ExecStart=/usr/local/bin/") {
                let program = exec.split(' ').next().unwrap();
                let local = if wrapper(program).exists() {
                    wrapper(program)
                } else {
                    bin(program)
                };
                let replaced = line.replace(
                    &format!("/usr/local/bin/{program}"),
                    local.to_str().unwrap(),
                );
                text = text.replace(line, &replaced);
            }
        }
        std::fs::write(dir.path().join(&name), text).unwrap();
        units.push(name);
    }
    units.sort();
    assert_eq!(
        units,
        [
            "stackvault-alert@.service",
            "stackvault-dr-drill.service",
            "stackvault-dr-drill.timer",
            "stackvault-nightly.service",
            "stackvault-nightly.timer"
        ]
    );
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&units)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (Debian's systemd package) runs");
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    // verify exits 0 even for settings it ignores; every complaint is a line of output.
    assert!(out.status.success() && said.is_empty(), "{said}");
}

#[test]
fn the_wrappers_are_shellcheck_clean_and_have_help() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bin-wrappers");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    scripts.sort();
    let out = Command::new("shellcheck")
        .args(&scripts)
        .output()
        .expect("shellcheck (Debian's shellcheck package) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for script in &scripts {
        let out = Command::new(script).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        let name = script.file_name().unwrap().to_str().unwrap();
        assert!(out.status.success(), "{name} --help");
        assert!(help.starts_with(&format!("{name} - ")), "{name}: {help}");
        for section in ["Usage: ", "Exit status:\n", "Examples:\n"] {
            assert!(help.contains(section), "{name}: no {section:?}");
        }
    }
}
