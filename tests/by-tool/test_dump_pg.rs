//! dump-pg: backups, failures as data, and restores that refuse to do harm.

use std::os::unix::fs::PermissionsExt;

use manifest::{Kind, Status};
use testkit::Scenario;

use crate::util::bin;

fn small_db(s: &Scenario) {
    s.sql(
        s.db(),
        "CREATE TABLE items (id int PRIMARY KEY, name text);
         INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 123) i;
         CREATE SCHEMA other; CREATE TABLE other.empty (x int);",
    );
}

#[test]
fn backup_manifest_describes_the_dump_exactly() {
    let s = Scenario::new();
    small_db(&s);
    let out = s
        .cmd(&bin("dump-pg"))
        .args(["--dbname", s.db(), "--run", "nightly_1"])
        .run();
    out.succeeds();
    let m = out.manifest();
    assert_eq!(m.kind, Kind::Postgres);
    assert_eq!(m.status, Status::Ok);
    assert_eq!(m.run.as_ref().map(|r| r.as_str()), Some("nightly_1"));
    assert!(
        m.id.as_str().starts_with(&format!("postgres_{}_", s.db())),
        "{}",
        m.id
    );
    let source = m.source.as_ref().unwrap();
    assert_eq!(source["database"], s.db());
    assert!(source["server_version"]
        .as_str()
        .unwrap()
        .starts_with("15."));
    let stats = m.stats.as_ref().unwrap();
    assert_eq!(stats["tables"]["public.items"], 123);
    assert_eq!(stats["tables"]["other.empty"], 0);
    assert_eq!(stats["large_objects"], 0);
    let artifact = m.artifact.as_ref().unwrap();
    assert_eq!(artifact.format, "pg_dump/custom");
    let (bytes, sha) = toolkit::fs::hash_file(&artifact.path).unwrap();
    assert_eq!((bytes, sha), (artifact.bytes, artifact.sha256));
    // pg_dump's custom format starts with "PGDMP".
    assert_eq!(&std::fs::read(&artifact.path).unwrap()[..5], b"PGDMP");
    assert_eq!(
        s.spool_files(),
        [format!("{}.dump", m.id)],
        "only the finished dump"
    );
}

/// The databases of other `--all` tests, by name prefix. testkit revokes CONNECT from
/// PUBLIC on every test database, so under another role each would be a failed manifest
/// (never a silent omission); each `--all` test excludes the others' and every plain
/// scenario database (`sv_*`), and then knows exactly what it must see.
const ALL_TEST_PREFIXES: [&str; 3] = ["allsv_", "unreachsv_", "collidesv_"];

fn all_excluding_other_tests(prefix: &str) -> Vec<String> {
    let mut args = vec![
        "--all".to_owned(),
        "--exclude-database".into(),
        "sv_*".into(),
    ];
    for other in ALL_TEST_PREFIXES.iter().filter(|p| **p != prefix) {
        args.extend(["--exclude-database".to_owned(), format!("{other}*")]);
    }
    args
}

fn database_of(m: &manifest::Manifest) -> String {
    m.source.as_ref().unwrap()["database"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn all_dumps_every_database_the_role_can_reach() {
    let s = Scenario::new();
    let role = s.create_role("owner");
    let (a, b) = (
        format!("all{}", s.db_name("a")),
        format!("all{}", s.db_name("b")),
    );
    for db in [&a, &b] {
        s.create_db(db);
        s.sql("postgres", &format!("ALTER DATABASE \"{db}\" OWNER TO \"{role}\"; GRANT CONNECT ON DATABASE \"{db}\" TO \"{role}\""));
    }
    s.sql(&a, &format!("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2); ALTER TABLE t OWNER TO \"{role}\""));
    let out = s
        .cmd(&bin("dump-pg"))
        .args(all_excluding_other_tests("allsv_"))
        .args(["--username", &role])
        .run();
    out.succeeds();
    let manifests = out.manifests();
    let names: Vec<_> = manifests.iter().map(database_of).collect();
    // In name order; postgres: PUBLIC may connect to it; templates are never listed.
    assert_eq!(names, [a.clone(), b.clone(), "postgres".to_owned()]);
    let run = manifests[0].run.clone();
    assert!(
        manifests.iter().all(|m| m.is_ok() && m.run == run),
        "one run, all ok"
    );
    let ma = manifests.iter().find(|m| database_of(m) == a).unwrap();
    assert_eq!(ma.stats.as_ref().unwrap()["tables"]["public.t"], 2);
}

#[test]
fn databases_whose_names_map_to_one_id_name_are_kept_apart_and_told() {
    let s = Scenario::new();
    let role = s.create_role("collider");
    // "my db" and "my-db" both become my-db in ids and file names.
    let base = format!("collide{}", s.db_name("my"));
    let (spaced, dashed) = (format!("{base} db"), format!("{base}-db"));
    for db in [&spaced, &dashed] {
        s.create_db(db);
        s.sql(
            "postgres",
            &format!("GRANT CONNECT ON DATABASE \"{db}\" TO \"{role}\""),
        );
    }
    let out = s
        .cmd(&bin("dump-pg"))
        .args(all_excluding_other_tests("collidesv_"))
        .args(["--exclude-database", "postgres", "--username", &role])
        .run();
    out.succeeds().stderr_contains("would get the same id name");
    let manifests = out.manifests();
    assert_eq!(manifests.len(), 2, "{manifests:?}");
    assert!(manifests.iter().all(|m| m.is_ok()));
    let ids: std::collections::BTreeSet<_> = manifests.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(ids.len(), 2, "distinct ids: {ids:?}");
    let of = |db: &str| {
        manifests
            .iter()
            .find(|m| database_of(m) == db)
            .unwrap()
            .id
            .to_string()
    };
    assert!(
        of(&dashed).starts_with(&format!("postgres_{dashed}_")),
        "the exact name keeps its id"
    );
    assert!(
        of(&spaced).starts_with(&format!("postgres_{dashed}-")),
        "{}",
        of(&spaced)
    );
}

#[test]
fn all_reports_each_database_it_cannot_connect_to_as_a_failed_manifest() {
    let s = Scenario::new();
    let role = s.create_role("lister");
    let [reachable, no_privilege, no_connections] = ["ok", "noprivilege", "noconnections"]
        .map(|suffix| format!("unreach{}", s.db_name(suffix)));
    for db in [&reachable, &no_privilege, &no_connections] {
        s.create_db(db);
    }
    for db in [&reachable, &no_connections] {
        s.sql(
            "postgres",
            &format!("GRANT CONNECT ON DATABASE \"{db}\" TO \"{role}\""),
        );
    }
    s.sql(
        "postgres",
        &format!("ALTER DATABASE \"{no_connections}\" ALLOW_CONNECTIONS false"),
    );
    let out = s
        .cmd(&bin("dump-pg"))
        .args(all_excluding_other_tests("unreachsv_"))
        .args([
            "--exclude-database",
            "postgres",
            "--username",
            &role,
            "--run",
            "r1",
        ])
        .run();
    out.fails_with(1);
    let manifests = out.manifests();
    let got: Vec<_> = manifests
        .iter()
        .map(|m| {
            (
                database_of(m),
                m.status.clone(),
                m.error.clone().unwrap_or_default(),
            )
        })
        .collect();
    // (database, status, part of the error): every database is accounted for.
    let want = [
        (
            &no_connections,
            Status::Failed,
            "does not allow connections",
        ),
        (
            &no_privilege,
            Status::Failed,
            &*format!("role {role} has no CONNECT privilege on database {no_privilege}"),
        ),
        (&reachable, Status::Ok, ""),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((db, status, error), (want_db, want_status, want_error)) in got.iter().zip(want) {
        assert_eq!((db, status.clone()), (want_db, want_status), "{got:?}");
        assert!(error.contains(want_error), "{db}: {error}");
    }
    for m in manifests.iter().filter(|m| !m.is_ok()) {
        assert_eq!(m.run.as_deref(), Some("r1"));
        assert!(m.artifact.is_none());
        assert!(
            m.id.starts_with(&format!("postgres_{}_", database_of(m))),
            "{}",
            m.id
        );
    }
    out.stderr_contains(&format!(
        "backup of {no_privilege} failed: role {role} has no CONNECT privilege"
    ));
}

#[test]
fn a_failing_pg_dump_gives_a_failed_manifest_with_its_stderr() {
    let s = Scenario::new();
    small_db(&s);
    // A role that may connect but not read the table: pg_dump itself fails.
    let role = s.create_role("reader");
    s.sql(
        "postgres",
        &format!("GRANT CONNECT ON DATABASE \"{}\" TO \"{role}\"", s.db()),
    );
    let out = s
        .cmd(&bin("dump-pg"))
        .args(["--dbname", s.db(), "--username", &role])
        .run();
    out.fails_with(1).stderr_contains("permission denied");
    let m = out.manifest();
    assert_eq!(m.status, Status::Failed);
    assert!(
        m.error.as_deref().unwrap().contains("permission denied"),
        "{:?}",
        m.error
    );
    assert!(m.artifact.is_none());
    assert!(
        s.spool_files().is_empty(),
        "left in spool: {:?}",
        s.spool_files()
    );
}

#[test]
fn a_missing_database_is_a_failed_manifest() {
    let s = Scenario::new();
    let out = s
        .cmd(&bin("dump-pg"))
        .args(["--dbname", "no_such_db_here"])
        .run();
    out.fails_with(1).stderr_contains("does not exist");
    assert_eq!(out.manifest().status, Status::Failed);
}

#[test]
fn no_database_named_is_a_usage_error() {
    let s = Scenario::new();
    s.cmd(&bin("dump-pg"))
        .run()
        .fails_with(2)
        .stderr_contains("--dbname");
}

/// A directory with a `pg_dump` that records its argv (`pg_dump.argv`, one argument a
/// line) and its environment (`pg_dump.env`, `env` output), then runs the real one: for
/// `--pg-bindir`, to see exactly what dump-pg handed it.
fn recording_pg_dump(s: &Scenario) -> std::path::PathBuf {
    crate::util::pg_dump_wrapper(
        s,
        "pgbin",
        "printf '%s\\n' \"$@\" > \"$0.argv\"\nenv > \"$0.env\"\nexec \"$REAL\" \"$@\"",
    )
}

/// What the recording pg_dump saw: (argv, environment variable → value).
fn recorded(bindir: &std::path::Path) -> (String, std::collections::BTreeMap<String, String>) {
    let argv = std::fs::read_to_string(bindir.join("pg_dump.argv")).unwrap();
    let env = std::fs::read_to_string(bindir.join("pg_dump.env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (argv, env)
}

#[test]
fn the_password_reaches_pg_dump_only_through_its_environment() {
    let s = Scenario::new();
    small_db(&s);
    let bindir = recording_pg_dump(&s);
    let secret = "s3cret-Pa55word";
    let out = s
        .cmd(&bin("dump-pg"))
        .env("PGPASSWORD", secret)
        .args(["--dbname", s.db(), "--pg-bindir", bindir.to_str().unwrap()])
        .run();
    out.succeeds();
    let (argv, env) = recorded(&bindir);
    assert!(
        argv.contains("--format=custom") && !argv.contains(secret),
        "{argv}"
    );
    assert_eq!(env["PGPASSWORD"], secret);
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
}

fn dumped(s: &Scenario) -> manifest::Manifest {
    let out = s.cmd(&bin("dump-pg")).args(["--dbname", s.db()]).run();
    out.succeeds();
    out.manifest()
}

/// Restores `m` into a new database (`--create`); returns the target's name and the outcome.
fn restore_into_new(s: &Scenario, m: manifest::Manifest) -> (String, testkit::Outcome) {
    let target = s.db_name("target");
    let out = s
        .cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", &target, "--create"])
        .manifests_in(&[m])
        .run();
    (target, out)
}

/// What a restore must bring back exactly: every table's rows as text, sorted and hashed;
/// the sequence's value, the large objects, the constraints.
fn content(s: &Scenario, db: &str) -> Vec<String> {
    let mut c = s.connect(db);
    let tables: Vec<String> = c
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'm') AND n.nspname = 'public' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out: Vec<String> = tables
        .iter()
        .map(|t| {
            let sql = format!(
                "SELECT count(*), md5(coalesce(string_agg(r, E'\\n' ORDER BY r), ''))
                 FROM (SELECT x::text AS r FROM ONLY {t} x) d"
            );
            let row = c.query_one(sql.as_str(), &[]).unwrap();
            format!(
                "{t}: {} rows, {}",
                row.get::<_, i64>(0),
                row.get::<_, String>(1)
            )
        })
        .collect();
    for sql in [
        "SELECT 'sequence ' || last_value FROM public.texts_id_seq",
        "SELECT 'large objects ' || string_agg(encode(lo_get(oid), 'escape'), ',' ORDER BY oid)
         FROM pg_largeobject_metadata",
        "SELECT 'constraints ' || string_agg(conname, ',' ORDER BY conname) FROM pg_constraint
         WHERE connamespace = 'public'::regnamespace",
    ] {
        out.push(c.query_one(sql, &[]).unwrap().get(0));
    }
    out
}

#[test]
fn a_restore_into_a_new_database_brings_back_every_kind_of_row_exactly() {
    let s = Scenario::new();
    // Rows that look like COPY's own syntax, bytes, NULLs, a table large enough to be dealt
    // over every connection, names that need quoting, a generated column, partitions, a
    // sequence, a large object (restored by pg_restore, not COPY), constraints, a view.
    s.sql(
        s.db(),
        r#"CREATE TABLE texts (id serial PRIMARY KEY, body text, raw bytea);
         INSERT INTO texts (body, raw) VALUES
           (E'\\.', '\x00ff'), ('\.', NULL), (E'line\nbreak\r\tand tab', ''),
           (NULL, '\x5c2e0a'), (E'back\\slash \\N', '\x00'), ('', NULL), ('ünïcødé ✓', '\xdeadbeef');
         INSERT INTO texts (body, raw)
           SELECT repeat(md5(i::text), 6) || E'\n\\.' || i, sha256(i::text::bytea)
           FROM generate_series(1, 20000) i;
         CREATE TABLE "Mixed Case" ("sp ace" int, twice int GENERATED ALWAYS AS ("sp ace" * 2) STORED,
           text_id int REFERENCES texts, UNIQUE ("sp ace"));
         INSERT INTO "Mixed Case" ("sp ace", text_id) SELECT i, i FROM generate_series(1, 50) i;
         CREATE TABLE parted (k int, v text) PARTITION BY RANGE (k);
         CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (100);
         CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (100) TO (1000);
         INSERT INTO parted SELECT i, 'v' || i FROM generate_series(0, 999) i;
         CREATE TABLE empty (x int CHECK (x > 0));
         SELECT setval('texts_id_seq', 40000);
         SELECT lo_from_bytea(0, 'a large object');
         CREATE MATERIALIZED VIEW long_texts AS SELECT id FROM texts WHERE length(body) > 100;"#,
    );
    let before = content(&s, s.db());
    let m = dumped(&s);
    let (target, out) = restore_into_new(&s, m);
    out.succeeds();
    assert_eq!(out.manifest().restore.unwrap()["jobs"], 4);
    assert_eq!(content(&s, &target), before);
    let mut c = s.connect(&target);
    let next: i32 = c
        .query_one("SELECT nextval('texts_id_seq')::int", &[])
        .unwrap()
        .get(0);
    assert_eq!(next, 40001);
}

#[test]
fn restore_refuses_a_damaged_file_and_leaves_the_target_alone() {
    let s = Scenario::new();
    small_db(&s);
    let m = dumped(&s);
    let path = &m.artifact.as_ref().unwrap().path;
    let mut data = std::fs::read(path).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(path, data).unwrap();
    let (target, out) = restore_into_new(&s, m);
    out.fails_with(1).stderr_contains("checksum mismatch");
    assert_eq!(out.manifest().status, Status::Failed);
    assert!(!s.db_exists(&target), "target was created");
}

#[test]
fn restore_over_an_existing_database_checks_the_file_before_touching_it() {
    let s = Scenario::new();
    small_db(&s);
    let m = dumped(&s);
    let path = &m.artifact.as_ref().unwrap().path;
    let mut data = std::fs::read(path).unwrap();
    data[0] ^= 0xff;
    std::fs::write(path, data).unwrap();
    let target = s.db_name("existing");
    s.create_db(&target);
    s.sql(
        &target,
        "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)",
    );
    let out = s
        .cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", &target, "--clean"])
        .manifests_in(&[m])
        .run();
    out.fails_with(1).stderr_contains("checksum mismatch");
    let kept: i32 = s
        .connect(&target)
        .query_one("SELECT x FROM kept", &[])
        .unwrap()
        .get(0);
    assert_eq!(kept, 7, "the existing database was touched");
}

#[test]
fn a_restore_that_fails_half_way_leaves_nothing_half_restored() {
    let s = Scenario::new();
    small_db(&s);
    // A table owned by a role that will not exist at restore time: pg_restore stops at its
    // ALTER ... OWNER, after the other tables are in.
    let role = s.create_role("gone");
    s.sql(
        s.db(),
        &format!("CREATE TABLE owned (x int); ALTER TABLE owned OWNER TO \"{role}\""),
    );
    let m = dumped(&s);
    s.sql(s.db(), "DROP TABLE owned");
    s.sql("postgres", &format!("DROP ROLE \"{role}\""));

    // Into a new database, in parallel: the database is dropped.
    let (target, out) = restore_into_new(&s, m.clone());
    out.fails_with(1).stderr_contains("does not exist");
    assert_eq!(out.manifest().status, Status::Failed);
    assert!(!s.db_exists(&target), "a half-restored database was left");

    // Over an existing database: one transaction, so nothing changed.
    let existing = s.db_name("existing_half");
    s.create_db(&existing);
    s.sql(
        &existing,
        "CREATE TABLE keepme (x int); INSERT INTO keepme VALUES (42)",
    );
    let out = s
        .cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", &existing, "--clean"])
        .manifests_in(&[m])
        .run();
    out.fails_with(1).stderr_contains("does not exist");
    let mut c = s.connect(&existing);
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "only keepme: the failed restore changed nothing");
}

#[test]
fn restore_refuses_a_failed_manifest() {
    let s = Scenario::new();
    small_db(&s);
    let mut m = dumped(&s);
    m.fail("pg_dump was killed");
    let (target, out) = restore_into_new(&s, m);
    out.fails_with(1)
        .stderr_contains("the backup is failed (pg_dump was killed)");
    assert!(!s.db_exists(&target));
}

#[test]
fn restore_over_an_existing_database_needs_clean() {
    let s = Scenario::new();
    small_db(&s);
    let m = dumped(&s);
    let target = s.db_name("existing");
    s.create_db(&target);
    s.sql(
        &target,
        "CREATE TABLE keepme (x int); INSERT INTO keepme VALUES (42)",
    );

    let refused = s
        .cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", &target])
        .manifests_in(std::slice::from_ref(&m))
        .run();
    refused.fails_with(1).stderr_contains("pass --clean");
    let mut c = s.connect(&target);
    assert_eq!(
        c.query_one("SELECT count(*) FROM keepme", &[])
            .unwrap()
            .get::<_, i64>(0),
        1
    );
    drop(c);

    let missing = s.db_name("missing");
    s.cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", &missing])
        .manifests_in(std::slice::from_ref(&m))
        .run()
        .fails_with(1)
        .stderr_contains("pass --create");

    let clean = s
        .cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", &target, "--clean"])
        .manifests_in(std::slice::from_ref(&m))
        .run();
    clean.succeeds();
    assert_eq!(clean.manifest().restore.unwrap()["result"], "ok");
    // Twice in a row: --clean is repeatable.
    s.cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", &target, "--clean"])
        .manifests_in(&[m])
        .run()
        .succeeds();
}

#[test]
fn restore_reports_differing_row_counts() {
    let s = Scenario::new();
    small_db(&s);
    let mut m = dumped(&s);
    // Pretend the backup had seen one more row than the dump holds.
    m.stats.as_mut().unwrap()["tables"]["public.items"] = serde_json::json!(124);
    let (_, out) = restore_into_new(&s, m);
    out.fails_with(1).stderr_contains(
        "differs from the backup in 1 item(s): rows of public.items: expected 124, found 123",
    );
    let r = out.manifest();
    assert_eq!(r.status, Status::Failed);
    let section = r.restore.unwrap();
    assert_eq!(section["result"], "mismatch");
    assert_eq!(
        section["differences"],
        serde_json::json!([{"item": "rows of public.items", "expected": 124, "actual": 123}])
    );
}

#[test]
fn malformed_input_to_restore_names_the_line() {
    let s = Scenario::new();
    s.cmd(&bin("dump-pg"))
        .args(["restore", "--target-db", "x", "--create"])
        .stdin("\n{\"schema\": 3\n")
        .run()
        .fails_with(2)
        .stderr_contains("stdin line 2");
}

/// The test cluster makes role `stackvault_pw` log in with a password (scripts/lib/postgres.sh).
const PW_ROLE: &str = "stackvault_pw";

#[test]
fn passwords_work_from_pgpassword_and_pgpass_and_their_absence_is_clear() {
    let s = Scenario::new();
    small_db(&s);
    // Roles are cluster-wide: this is the only test that uses this one.
    s.sql(
        "postgres",
        &format!(
            "DROP ROLE IF EXISTS {PW_ROLE}; CREATE ROLE {PW_ROLE} LOGIN PASSWORD 'pw-Secret-9';
             GRANT CONNECT ON DATABASE \"{db}\" TO {PW_ROLE}",
            db = s.db()
        ),
    );
    s.sql(s.db(), &format!("GRANT SELECT ON ALL TABLES IN SCHEMA public, other TO {PW_ROLE}; GRANT USAGE ON SCHEMA other TO {PW_ROLE}"));
    // Ids have one-second resolution and a spool file is never overwritten: each dump
    // gets its own spool.
    let calls = std::cell::Cell::new(0);
    let dump = |envs: &[(&str, &str)]| {
        calls.set(calls.get() + 1);
        let mut cmd = s
            .cmd(&bin("dump-pg"))
            .env("HOME", s.path())
            .env(
                "STACKVAULT_SPOOL",
                s.path().join(format!("spool{}", calls.get())),
            )
            .env_remove("PGPASSFILE")
            .args(["--dbname", s.db(), "--username", PW_ROLE]);
        for (k, v) in envs {
            cmd = cmd.env(k, v);
        }
        cmd.run()
    };
    let with_env = dump(&[("PGPASSWORD", "pw-Secret-9")]);
    with_env.succeeds();
    assert_eq!(
        with_env.manifest().stats.unwrap()["tables"]["public.items"],
        123
    );
    assert!(!with_env.stdout.contains("pw-Secret-9"));

    let pgpass = s.path().join("pgpass");
    std::fs::write(&pgpass, format!("*:*:*:{PW_ROLE}:pw-Secret-9\n")).unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    dump(&[("PGPASSFILE", pgpass.to_str().unwrap())]).succeeds();

    let without = dump(&[]);
    without.fails_with(1).stderr_contains("password");
    assert_eq!(without.manifest().status, Status::Failed);
    s.sql("postgres", &format!("DROP OWNED BY {PW_ROLE} CASCADE"));
}

/// `small_db`, readable by the TLS-only role and the client-certificate role.
fn tls_db(s: &Scenario) {
    small_db(s);
    let tls = &s.pg.tls;
    let roles = format!("{}, {}", tls.user, tls.cert_user);
    s.sql(
        "postgres",
        &format!("GRANT CONNECT ON DATABASE \"{}\" TO {roles}", s.db()),
    );
    s.sql(
        s.db(),
        &format!(
            "GRANT USAGE ON SCHEMA other TO {roles};
             GRANT SELECT ON ALL TABLES IN SCHEMA public, other TO {roles}"
        ),
    );
}

/// Environment variables, in order.
type Vars<'a> = Vec<(&'a str, &'a str)>;

/// dump-pg with only these libpq variables set over the scenario's defaults, an empty
/// home (no ~/.postgresql, no ~/.pgpass) and a spool of its own.
fn dump_pg_with(s: &Scenario, spool: &str, envs: &[(&str, &str)]) -> testkit::TestCommand {
    let mut cmd = s
        .cmd(&bin("dump-pg"))
        .env("HOME", s.path())
        .env("STACKVAULT_SPOOL", s.path().join(spool));
    for var in [
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "PGSSLCERT",
        "PGSSLKEY",
        "PGPASSFILE",
    ] {
        cmd = cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd = cmd.env(k, v);
    }
    cmd
}

#[test]
fn backs_up_over_tls_as_roles_that_may_only_log_in_with_tls() {
    let s = Scenario::new();
    tls_db(&s);
    let tls = s.pg.tls.clone();
    let root = tls.root_cert.to_str().unwrap();
    let (cert, key) = (
        tls.client_cert.to_str().unwrap(),
        tls.client_key.to_str().unwrap(),
    );
    // (sslmode, user, more libpq variables). Both roles are refused without TLS, so a
    // backup proves that dump-pg's connections and pg_dump's both used it.
    #[rustfmt::skip]
    let cases: [(&str, &str, Vars); 3] = [
        ("require", &tls.user, vec![("PGPASSWORD", &tls.password)]),
        ("verify-full", &tls.user, vec![("PGPASSWORD", &tls.password), ("PGSSLROOTCERT", root)]),
        ("verify-full", &tls.cert_user, vec![("PGSSLROOTCERT", root), ("PGSSLCERT", cert), ("PGSSLKEY", key)]),
    ];
    let bindir = recording_pg_dump(&s);
    for (i, (mode, user, more)) in cases.iter().enumerate() {
        let mut envs = vec![
            ("PGHOST", "127.0.0.1"),
            ("PGUSER", *user),
            ("PGSSLMODE", *mode),
        ];
        envs.extend(more.iter().copied());
        let out = dump_pg_with(&s, &format!("spool{i}"), &envs)
            .args(["--dbname", s.db(), "--pg-bindir", bindir.to_str().unwrap()])
            .run();
        out.succeeds();
        let m = out.manifest();
        assert_eq!(
            m.stats.as_ref().unwrap()["tables"]["public.items"],
            123,
            "{mode} {user}"
        );
        let source = m.source.as_ref().unwrap();
        assert_eq!(
            (&source["host"], &source["sslmode"]),
            (&"127.0.0.1".into(), &(*mode).into())
        );
        let (_, env) = recorded(&bindir);
        for (k, v) in &envs {
            assert_eq!(
                env.get(*k).map(String::as_str),
                Some(*v),
                "pg_dump's {k} ({mode} {user})"
            );
        }
    }
}

#[test]
fn tls_failures_are_failed_manifests_with_one_clear_line() {
    let s = Scenario::new();
    tls_db(&s);
    let tls = s.pg.tls.clone();
    let (good, wrong) = (
        tls.root_cert.to_str().unwrap(),
        tls.wrong_ca.to_str().unwrap(),
    );
    let not_signed = format!("the server's certificate is not signed by a CA in {wrong}");
    // (host, sslmode, root certificate, part of the error)
    #[rustfmt::skip]
    let cases = [
        (&*tls.host_not_in_cert, "verify-full", good, "certificate not valid for name \"127.0.0.2\""),
        ("127.0.0.1", "verify-full", wrong, &*not_signed),
        ("127.0.0.1", "disable", good, "pg_hba.conf rejects connection for host \"127.0.0.1\", user \"stackvault_ssl\""),
    ];
    for (i, (host, mode, root, part)) in cases.into_iter().enumerate() {
        let envs = [
            ("PGHOST", host),
            ("PGUSER", &*tls.user),
            ("PGPASSWORD", &*tls.password),
            ("PGSSLMODE", mode),
            ("PGSSLROOTCERT", root),
        ];
        let out = dump_pg_with(&s, &format!("spool{i}"), &envs)
            .args(["--dbname", s.db()])
            .run();
        out.fails_with(1).stderr_contains(part);
        let m = out.manifest();
        let error = m.error.unwrap();
        assert_eq!(m.status, Status::Failed);
        assert!(
            error.contains(part) && !error.contains('\n'),
            "{mode}: {error}"
        );
        assert!(
            error.contains(&format!("{host}:{}/{}", s.pg.port, s.db())),
            "{error}"
        );
        assert!(!out.stderr.contains(&tls.password) && !out.stdout.contains(&tls.password));
    }
}

#[test]
fn a_connection_string_with_a_password_works_and_the_password_goes_nowhere() {
    let s = Scenario::new();
    tls_db(&s);
    let tls = s.pg.tls.clone();
    let (pw, port, db) = (&tls.password, s.pg.port, s.db());
    let root = tls.root_cert.to_str().unwrap();
    // The scenario's environment points at the socket as the superuser: everything
    // here comes from the string. (string, sslmode it names)
    #[rustfmt::skip]
    let cases = [
        (format!("postgresql://{}:{pw}@127.0.0.1:{port}/{db}?sslmode=require", tls.user), "require"),
        (format!("host=127.0.0.1 port={port} user={} password='{pw}' dbname={db} sslmode=verify-full sslrootcert={root}", tls.user), "verify-full"),
    ];
    let bindir = recording_pg_dump(&s);
    for (i, (conninfo, mode)) in cases.iter().enumerate() {
        let out = dump_pg_with(&s, &format!("spool{i}"), &[])
            .args([
                "--dbname",
                conninfo,
                "--pg-bindir",
                bindir.to_str().unwrap(),
            ])
            .run();
        out.succeeds();
        let m = out.manifest();
        assert!(m.id.starts_with(&format!("postgres_{db}_")), "{}", m.id);
        let mut source = m.source.clone().unwrap();
        source.as_object_mut().unwrap().remove("server_version");
        assert_eq!(
            source,
            serde_json::json!({"host": "127.0.0.1", "port": port, "database": db, "sslmode": mode})
        );
        let (argv, env) = recorded(&bindir);
        for (k, v) in [
            ("PGPASSWORD", pw.as_str()),
            ("PGHOST", "127.0.0.1"),
            ("PGUSER", &tls.user),
            ("PGDATABASE", db),
            ("PGSSLMODE", mode),
        ] {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "pg_dump's {k}");
        }
        for text in [&out.stdout, &out.stderr, &argv] {
            assert!(!text.contains(pw.as_str()), "the password leaked: {text}");
        }
        assert!(
            !argv.contains("127.0.0.1") && !argv.contains(db),
            "pg_dump's argv: {argv}"
        );
    }

    // Failures say what failed, still without the password: a database that does not
    // exist (a failed manifest), a port that is no number (bad settings: exit 2).
    let missing = format!(
        "postgresql://{}:{pw}@127.0.0.1:{port}/no_such_db?sslmode=require",
        tls.user
    );
    let out = dump_pg_with(&s, "spool-missing", &[])
        .args(["--dbname", &missing])
        .run();
    out.fails_with(1)
        .stderr_contains("database \"no_such_db\" does not exist");
    assert!(out.manifest().id.starts_with("postgres_no_such_db_"));
    let bad_port = format!("postgresql://{}:{pw}@127.0.0.1:x{port}/{db}", tls.user);
    let bad = dump_pg_with(&s, "spool-bad", &[])
        .args(["--dbname", &bad_port])
        .run();
    bad.fails_with(2).stderr_contains("invalid port number");
    for out in [&out, &bad] {
        assert!(
            !out.stdout.contains(pw.as_str()) && !out.stderr.contains(pw.as_str()),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn all_takes_its_connection_from_a_uri_in_pgdatabase() {
    let s = Scenario::new();
    let tls = s.pg.tls.clone();
    // PGHOST points at the socket, where this role is refused: the URI's host, user,
    // password and sslmode must win; its database name is not used by --all.
    let uri = format!(
        "postgresql://{}:{}@127.0.0.1:{}/ignored?sslmode=require",
        tls.user, tls.password, s.pg.port
    );
    let out = dump_pg_with(&s, "spool", &[("PGDATABASE", &uri)])
        .args(all_excluding_other_tests(""))
        .run();
    out.succeeds();
    let manifests = out.manifests();
    assert_eq!(
        manifests.iter().map(database_of).collect::<Vec<_>>(),
        ["postgres"]
    );
    let source = manifests[0].source.as_ref().unwrap();
    assert_eq!(
        (&source["host"], &source["sslmode"]),
        (&"127.0.0.1".into(), &"require".into())
    );
    assert!(!out.stdout.contains(&tls.password) && !out.stderr.contains(&tls.password));
}

#[test]
fn the_compression_level_reaches_pg_dump_and_the_manifest() {
    let s = Scenario::new();
    small_db(&s);
    let bindir = recording_pg_dump(&s);
    let bindir_arg = bindir.to_str().unwrap();
    // (extra flags, what pg_dump is handed, what the manifest records)
    let cases: [(&[&str], &str, &str); 3] = [
        (&[], "--compress=1", "gzip:1"),
        (&["-Z", "6"], "--compress=6", "gzip:6"),
        (&["--compress", "0"], "--compress=0", "gzip:0"),
    ];
    for (flags, handed, recorded_as) in cases {
        let out = s
            .cmd(&bin("dump-pg"))
            .args(["--dbname", s.db(), "--pg-bindir", bindir_arg])
            .args(flags)
            .run();
        out.succeeds();
        let (argv, _) = recorded(&bindir);
        assert!(argv.lines().any(|a| a == handed), "{flags:?}: {argv}");
        let m = out.manifest();
        let artifact = m.artifact.as_ref().unwrap();
        assert_eq!(artifact.extra["compression"], recorded_as, "{flags:?}");
        std::fs::remove_file(&artifact.path).unwrap();
    }
    s.cmd(&bin("dump-pg"))
        .args(["--dbname", s.db(), "--compress", "10"])
        .run()
        .fails_with(2)
        .stderr_contains("--compress");
}
