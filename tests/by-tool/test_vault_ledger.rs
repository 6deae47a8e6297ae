//! vault-ledger against the real PostgreSQL of the test run (a ledger database per test)
//! and real vaults.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use manifest::Manifest;
use testkit::Scenario;

use crate::util::{bin, days, fabricated, ledger_db, ndjson};

fn ledger(s: &Scenario, url: &str) -> testkit::TestCommand {
    s.cmd(&bin("vault-ledger")).env("LEDGER_URL", url)
}

fn init(s: &Scenario, url: &str) {
    ledger(s, url).args(["init"]).run().succeeds();
}

fn record(s: &Scenario, url: &str, manifests: &[Manifest]) {
    let out = ledger(s, url).stdin(ndjson(manifests)).run();
    out.succeeds();
    assert_eq!(out.stdout, ndjson(manifests), "passed on unchanged");
}

fn count(s: &Scenario, db: &str, sql: &str) -> i64 {
    s.connect(db).query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn init_makes_the_seeds_table_exactly_adopts_an_existing_one_and_is_idempotent() {
    let s = Scenario::new();
    let (db, url) = ledger_db(&s);
    // The seed's own table, with a row its scripts wrote, before stackvault.
    s.sql(
        &db,
        "CREATE TABLE backup_history (id SERIAL PRIMARY KEY, backup_id VARCHAR(255) NOT NULL,
           backup_type VARCHAR(50) NOT NULL, timestamp TIMESTAMP NOT NULL, size_bytes BIGINT,
           checksum VARCHAR(64), status VARCHAR(20), error_message TEXT,
           created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
         INSERT INTO backup_history (backup_id, backup_type, timestamp, size_bytes, status)
           VALUES ('postgres_20250101_020000', 'postgres', '2025-01-01 02:00:00', 42, 'success');",
    );
    for _ in 0..2 {
        init(&s, &url);
    }
    let mut c = s.connect(&db);
    let columns: Vec<String> = c
        .query(
            "SELECT column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', '')
                    || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END
                    || coalesce(' default ' || column_default, '')
             FROM information_schema.columns WHERE table_name = 'backup_history' ORDER BY ordinal_position",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        columns,
        [
            "id integer not null default nextval('backup_history_id_seq'::regclass)",
            "backup_id character varying(255) not null",
            "backup_type character varying(50) not null",
            "timestamp timestamp without time zone not null",
            "size_bytes bigint",
            "checksum character varying(64)",
            "status character varying(20)",
            "error_message text",
            "created_at timestamp without time zone default CURRENT_TIMESTAMP",
        ]
    );
    let indexes: Vec<String> = c
        .query(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'backup_history' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for seed in [
        "idx_backup_history_status",
        "idx_backup_history_timestamp",
        "idx_backup_history_type",
    ] {
        assert!(indexes.iter().any(|i| i == seed), "{seed} in {indexes:?}");
    }
    assert_eq!(
        count(&s, &db, "SELECT count(*) FROM backup_history"),
        1,
        "the seed's row is kept"
    );
    assert_eq!(
        count(&s, &db, "SELECT count(*)::bigint FROM stackvault_schema"),
        ledger::schema::VERSION as i64
    );
    // The seed's row has no manifest: listed, and skipped with a note by --json.
    let out = ledger(&s, &url).args(["list", "--json"]).run();
    out.succeeds().stderr_contains("has no recorded manifest");
    assert_eq!(out.stdout, "");
}

#[test]
fn manifests_pass_through_are_recorded_once_and_the_seeds_queries_answer() {
    let s = Scenario::new();
    let (db, url) = ledger_db(&s);
    init(&s, &url);
    let mut all = vec![];
    for i in 0..12u32 {
        all.push(fabricated(
            "postgres",
            "app",
            days(f64::from(i)),
            "ok",
            1000 + u64::from(i) * 10,
        ));
    }
    let failed_recent = fabricated("postgres", "app", days(3.5), "failed", 0);
    let failed_old = fabricated("postgres", "app", days(10.5), "failed", 0);
    let qdrant = fabricated("qdrant", "docs", days(0.5), "ok", 4000);
    let redis = fabricated("redis", "cache", days(0.2), "verified", 7); // a kind and status from a newer tool
    all.extend([
        failed_recent.clone(),
        failed_old.clone(),
        qdrant.clone(),
        redis,
    ]);
    record(&s, &url, &all);
    record(&s, &url, &all); // idempotent
    assert_eq!(count(&s, &db, "SELECT count(*) FROM backup_history"), 16);
    assert_eq!(count(&s, &db, "SELECT count(*) FROM backup_manifest"), 16);
    let row = s
        .connect(&db)
        .query_one(
            "SELECT backup_type, status, size_bytes, checksum, timestamp::text FROM backup_history WHERE backup_id = $1",
            &[&qdrant.id.as_str()],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "qdrant");
    assert_eq!(row.get::<_, String>(1), "success");
    assert_eq!(row.get::<_, i64>(2), 4000);
    assert_eq!(
        row.get::<_, String>(3),
        qdrant.vault.as_ref().unwrap().sha256.to_string()
    );
    let utc = qdrant
        .created_at
        .to_string()
        .replace('T', " ")
        .replace('Z', "");
    assert_eq!(row.get::<_, String>(4), utc, "the backup time, in UTC");
    assert_eq!(
        count(&s, &db, "SELECT count(*) FROM backup_history WHERE backup_type = 'redis' AND status = 'verified'"),
        1
    );

    // A later status moves a row forward, never back.
    let mut pruned = all[11].clone();
    pruned.status = manifest::Status::Pruned;
    let mut refused = all[10].clone();
    refused.fail("already in the vault");
    refused.vault = None;
    let mut rerun = failed_recent.clone();
    rerun.status = manifest::Status::Ok;
    rerun.error = None;
    record(&s, &url, &[pruned.clone(), refused.clone(), rerun.clone()]);
    let status = |id: &manifest::Id| -> String {
        s.connect(&db)
            .query_one(
                "SELECT status FROM backup_history WHERE backup_id = $1",
                &[&id.as_str()],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(status(&pruned.id), "pruned");
    assert_eq!(
        status(&refused.id),
        "success",
        "a refused second upload is no failure"
    );
    assert_eq!(
        status(&rerun.id),
        "success",
        "a rerun that succeeded replaces the failure"
    );
    record(&s, &url, &[all[11].clone()]);
    assert_eq!(status(&pruned.id), "pruned", "pruned is final");
    // Back to the planted failure for the queries below.
    s.sql(
        &db,
        &format!(
            "UPDATE backup_history SET status = 'failed' WHERE backup_id = '{}'",
            failed_recent.id
        ),
    );

    // The README's copy-paste SQL, run as an operator would.
    let blocks = readme_sql();
    assert_eq!(
        blocks.len(),
        4,
        "recent, failures in 7 days, success rate, average size"
    );
    let mut c = s.connect(&db);
    let recent = c.query(blocks[0].as_str(), &[]).unwrap();
    assert_eq!(recent.len(), 10);
    let ids: Vec<String> = recent.iter().map(|r| r.get("backup_id")).collect();
    assert_eq!(ids[0], all[0].id.as_str(), "newest first");
    assert!(recent
        .windows(2)
        .all(|w| w[0].get::<_, std::time::SystemTime>("timestamp")
            >= w[1].get::<_, std::time::SystemTime>("timestamp")));
    let failures: Vec<String> = c
        .query(blocks[1].as_str(), &[])
        .unwrap()
        .iter()
        .map(|r| r.get("backup_id"))
        .collect();
    assert_eq!(
        failures,
        [failed_recent.id.to_string()],
        "only the failure of the last 7 days"
    );
    let rates = c.query(blocks[2].as_str(), &[]).unwrap();
    let pg = rates
        .iter()
        .find(|r| r.get::<_, String>("backup_type") == "postgres")
        .unwrap();
    assert_eq!(pg.get::<_, i64>("total"), 14);
    assert_eq!(
        pg.get::<_, i64>("successful"),
        12,
        "pruned backups were successful ones"
    );
    assert_eq!(
        pg.get::<_, rust_decimal_free::Rate>("success_rate").0,
        "85.71"
    );
    let sizes = c.query(blocks[3].as_str(), &[]).unwrap();
    let pg = sizes
        .iter()
        .find(|r| r.get::<_, String>("backup_type") == "postgres")
        .unwrap();
    assert_eq!(pg.get::<_, String>("average_size"), "1055 bytes");
}

/// NUMERIC read as text (no decimal crate needed for one comparison).
mod rust_decimal_free {
    pub struct Rate(pub String);
    impl<'a> postgres::types::FromSql<'a> for Rate {
        fn from_sql(
            _: &postgres::types::Type,
            raw: &'a [u8],
        ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
            // NUMERIC's binary form: ndigits, weight, sign, dscale, then base-10000 digits.
            let n = |i: usize| i16::from_be_bytes([raw[i], raw[i + 1]]);
            let (ndigits, weight, dscale) = (n(0) as usize, n(2) as i32, n(6) as usize);
            let mut value = 0f64;
            for d in 0..ndigits {
                value += f64::from(n(8 + 2 * d)) * 10000f64.powi(weight - d as i32);
            }
            Ok(Rate(format!("{value:.dscale$}")))
        }
        fn accepts(ty: &postgres::types::Type) -> bool {
            *ty == postgres::types::Type::NUMERIC
        }
    }
}

/// The ```sql blocks of the README.
fn readme_sql() -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    readme
        .split("```sql\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_owned())
        .collect()
}

/// `m` after a restore to `target` that took `minutes` and ended with `result`.
fn restored(m: &Manifest, minutes: u64, result: &str) -> Manifest {
    let mut m = m.clone();
    let end = manifest::time::Timestamp::now();
    let start = manifest::time::Timestamp::from_system_time(
        end.system_time() - Duration::from_secs(minutes * 60),
    );
    m.restore = Some(serde_json::json!({
        "target": {"database": "app_check"}, "started_at": start, "finished_at": end,
        "duration_ms": minutes * 60_000, "result": result, "checked": 3
    }));
    if result != "ok" {
        m.fail(format!("restore {result}"));
    }
    m
}

/// `m` after integrity checks that ended with `result`.
fn checked(m: &Manifest, result: &str) -> Manifest {
    let mut m = m.clone();
    m.checks = Some(serde_json::json!({
        "result": result, "checked_at": manifest::time::Timestamp::now(),
        "items": [{"name": "orphans documents.user_id", "status": result, "detail": "3 orphans",
                   "figures": {"orphans": 3}}]
    }));
    m
}

fn alerts(s: &Scenario, url: &str, extra: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = ledger(s, url).args(["check"]).args(extra).run();
    let lines = out.stdout.lines().map(|l| {
        let mut words = l.split(' ');
        assert_eq!(words.next(), Some("ALERT"), "{l}");
        format!(
            "{} {}",
            words.next().unwrap(),
            words.next().unwrap().trim_end_matches(':')
        )
    });
    (out.code, lines.collect())
}

#[test]
fn each_alert_fires_on_planted_data_and_stays_quiet_on_clean_data() {
    let s = Scenario::new();
    let (_, url) = ledger_db(&s);
    init(&s, &url);
    // Clean: every kind backed up within 25 h, sizes steady, a quick proven restore, checks pass.
    let app_old = fabricated("postgres", "app", days(1.0), "ok", 1000);
    let app = fabricated("postgres", "app", days(0.1), "ok", 1100);
    let docs = fabricated("qdrant", "docs", days(0.2), "ok", 5_000_000);
    let big = fabricated("postgres", "big", days(0.1), "ok", 90_000_000); // another source: not compared with app
    record(
        &s,
        &url,
        &[
            app_old,
            app.clone(),
            docs.clone(),
            big,
            restored(&app, 5, "ok"),
            checked(&app, "pass"),
        ],
    );
    assert_eq!(alerts(&s, &url, &[]), (Some(0), vec![]), "clean data");

    let failed = fabricated("postgres", "app", days(0.3), "failed", 0);
    let stale = fabricated("neo4j", "graph", days(2.0), "ok", 10);
    let jump = fabricated("qdrant", "docs", days(0.01), "ok", 9_000_000);
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<Manifest>, String)> = vec![
        ("a failed backup", vec![failed.clone()], format!("backup_failed {}", failed.id)),
        ("a kind without a success in 25 h", vec![stale], "backup_missing neo4j".into()),
        ("a size jump of 80 %", vec![jump.clone()], format!("size_changed {}", jump.id)),
        ("a restore of 2 h", vec![restored(&docs, 120, "ok")], format!("restore_slow {}", docs.id)),
        ("a failed integrity check", vec![checked(&app, "fail")], format!("validation_failed {}", app.id)),
    ];
    let mut want = vec![];
    for (what, planted, alert) in cases {
        record(&s, &url, &planted);
        want.push(alert);
        let (code, mut got) = alerts(&s, &url, &[]);
        got.sort();
        let mut expected = want.clone();
        expected.sort();
        assert_eq!((code, got), (Some(1), expected), "{what}");
    }
    // Each threshold is a flag.
    let (_, relaxed) = alerts(
        &s,
        &url,
        &[
            "--max-age",
            "3d",
            "--size-change",
            "90",
            "--max-restore",
            "3h",
        ],
    );
    assert_eq!(relaxed.len(), 2, "{relaxed:?}");
    let (_, required) = alerts(&s, &url, &["--kind", "mongo"]);
    assert!(
        required.contains(&"backup_missing mongo".to_owned()),
        "{required:?}"
    );
}

/// A port nothing listens on: connections are refused at once.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A one-shot HTTP server that answers 200 and hands over the request.
fn webhook_server() -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/hooks/T000/B000/secret-token",
        listener.local_addr().unwrap()
    );
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        String::from_utf8(request).unwrap()
    });
    (url, handle)
}

#[test]
fn the_webhook_receives_the_alerts_and_its_url_is_never_shown() {
    let s = Scenario::new();
    let (_, url) = ledger_db(&s);
    init(&s, &url);
    let failed = fabricated("postgres", "app", days(0.1), "failed", 0);
    record(&s, &url, std::slice::from_ref(&failed));
    let (hook, server) = webhook_server();
    let out = ledger(&s, &url)
        .args(["check"])
        .env("STACKVAULT_WEBHOOK_URL", &hook)
        .run();
    out.fails_with(1)
        .stderr_contains("posted 2 alert(s) to the webhook at http://127.0.0.1:");
    assert!(!out.stderr.contains("secret-token"), "{}", out.stderr);
    let request = server.join().unwrap();
    assert!(
        request.starts_with("POST /hooks/T000/B000/secret-token HTTP/1.1\r\n"),
        "{request}"
    );
    let body: serde_json::Value =
        serde_json::from_str(request.split_once("\r\n\r\n").unwrap().1).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("ALERT backup_failed {}", failed.id)),
        "{text}"
    );
    assert!(text.contains("ALERT backup_missing postgres"), "{text}");
    // A webhook that cannot be reached: the alerts are printed, the tool says so, exit 2.
    let dead = format!("http://127.0.0.1:{}/hooks/x", closed_port());
    let out = ledger(&s, &url).args(["check", "--webhook", &dead]).run();
    out.fails_with(2)
        .stderr_contains("cannot post the alerts to the webhook at http://127.0.0.1:");
    assert_eq!(out.stdout.lines().count(), 2);
}

#[test]
fn metrics_parse_with_the_prometheus_text_parser_and_the_dashboard_uses_exactly_them() {
    let s = Scenario::new();
    let (_, url) = ledger_db(&s);
    init(&s, &url);
    let app = fabricated("postgres", "app", days(0.1), "ok", 2048);
    record(
        &s,
        &url,
        &[
            fabricated("postgres", "app", days(2.0), "ok", 1024),
            fabricated("postgres", "app", days(0.5), "failed", 0),
            app.clone(),
            fabricated("qdrant", "docs", days(0.2), "ok", 4096),
            restored(&app, 3, "ok"),
        ],
    );
    let prom = s.path().join("stackvault.prom");
    ledger(&s, &url)
        .args(["metrics", "--textfile", prom.to_str().unwrap()])
        .run()
        .succeeds();
    let python = std::env::var("STACKVAULT_TEST_PYTHON").expect(
        "STACKVAULT_TEST_PYTHON is not set: run the suite with scripts/test, which installs prometheus_client",
    );
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
        \x20   for s in fam.samples:\n\
        \x20       out[s.name + ',' + s.labels.get('kind', '') + ',' + s.labels.get('source', '')] = s.value\n\
        print(json.dumps(out))\n";
    let parsed = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&prom)
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let samples: std::collections::BTreeMap<String, f64> =
        serde_json::from_slice(&parsed.stdout).unwrap();
    let at = |k: &str| {
        samples
            .get(k)
            .copied()
            .unwrap_or_else(|| panic!("no sample {k}: {samples:?}"))
    };
    assert_eq!(at("stackvault_vault_backups,postgres,app"), 2.0);
    assert_eq!(at("stackvault_vault_size_bytes,postgres,app"), 3072.0);
    assert_eq!(at("stackvault_backup_last_size_bytes,postgres,app"), 2048.0);
    assert_eq!(
        at("stackvault_backup_last_duration_seconds,postgres,app"),
        90.0
    );
    assert_eq!(at("stackvault_backup_recent_failures,postgres,app"), 1.0);
    // The parser drops a counter's _total suffix from the family, not from the sample.
    assert_eq!(at("stackvault_backup_failures_total,postgres,app"), 1.0);
    assert_eq!(at("stackvault_backup_success_total,qdrant,docs"), 1.0);
    assert_eq!(
        at("stackvault_restore_last_duration_seconds,postgres,app"),
        180.0
    );
    assert_eq!(at("stackvault_restore_last_success,postgres,app"), 1.0);
    let last = at("stackvault_backup_last_success_timestamp_seconds,postgres,app");
    assert_eq!(
        last,
        manifest::time::Timestamp::parse(&app.created_at.to_string())
            .unwrap()
            .system_time()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as f64
    );

    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/compose/grafana-stackvault.json"
    ))
    .unwrap();
    serde_json::from_str::<serde_json::Value>(&dashboard).expect("the dashboard is JSON");
    let used: std::collections::BTreeSet<&str> = dashboard
        .match_indices("stackvault_")
        .map(|(i, _)| {
            let rest = &dashboard[i..];
            &rest[..rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len())]
        })
        .filter(|name| name.len() > "stackvault_".len())
        .collect();
    let known: std::collections::BTreeSet<&str> = ledger::metrics::METRICS
        .iter()
        .map(|(n, _, _)| *n)
        .collect();
    assert_eq!(
        used, known,
        "the dashboard uses exactly the metrics vault-ledger writes"
    );
}

#[test]
fn an_unreachable_ledger_passes_manifests_through_keeps_them_and_a_later_run_records_them() {
    let s = Scenario::new();
    let (db, url) = ledger_db(&s);
    init(&s, &url);
    let first = [
        fabricated("postgres", "app", days(0.2), "ok", 10),
        fabricated("postgres", "app", days(0.1), "failed", 0),
    ];
    let down = format!(
        "postgresql://stackvault:hunter2@127.0.0.1:{}/{db}",
        closed_port()
    );
    let out = ledger(&s, &down).stdin(ndjson(&first)).run();
    out.fails_with(1)
        .stderr_lines(1)
        .stderr_contains("cannot record in the ledger: cannot connect to PostgreSQL 127.0.0.1:");
    out.stderr_contains("kept in");
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        ndjson(&first),
        "every manifest still goes to stdout"
    );
    let pending = ledger::pending::default_dir(&s.spool());
    assert_eq!(std::fs::read_dir(&pending).unwrap().count(), 2);
    // A ledger without its schema is a failing ledger too.
    let bare_db = s.db_name("bare");
    s.create_db(&bare_db);
    let bare = format!("dbname={bare_db}");
    ledger(&s, &bare)
        .stdin(ndjson(&first[..1]))
        .run()
        .fails_with(1)
        .stderr_contains("run vault-ledger init");

    let next = [fabricated("qdrant", "docs", days(0.05), "ok", 20)];
    let out = ledger(&s, &url).stdin(ndjson(&next)).run();
    out.succeeds()
        .stderr_contains("recorded 2 manifest(s) kept by an earlier run");
    assert_eq!(count(&s, &db, "SELECT count(*) FROM backup_history"), 3);
    assert_eq!(
        std::fs::read_dir(&pending).unwrap().count(),
        0,
        "recorded, so no longer kept"
    );
}

#[test]
fn resync_rebuilds_a_dropped_ledger_from_an_s3_vault_and_is_idempotent() {
    let s = Scenario::new();
    let (db, url) = ledger_db(&s);
    let vault_url = s.s3_vault();
    let backend = testkit::S3Server::from_env().backend(&testkit::bucket_of(&vault_url), "stack");
    let mut stored = vec![];
    for (kind, name, age) in [
        ("postgres", "app", 3.0),
        ("postgres", "app", 1.0),
        ("qdrant", "docs", 0.5),
    ] {
        stored.push(crate::util::store_fabricated(
            &s,
            &backend,
            kind,
            name,
            days(age),
            64,
        ));
    }
    let resync = || {
        ledger(&s, &url)
            .args(["resync", "--vault", &vault_url])
            .run()
    };
    resync()
        .succeeds()
        .stderr_contains("3 backup(s) in the vault, 3 new in the ledger, 0 updated");
    let ids = |db: &str| -> Vec<String> {
        s.connect(db)
            .query("SELECT backup_id || ' ' || status || ' ' || size_bytes FROM backup_history ORDER BY 1", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let before = ids(&db);
    assert_eq!(before.len(), 3);
    resync()
        .succeeds()
        .stderr_contains("0 new in the ledger, 0 updated");
    // The ledger's database is lost; the vault alone brings it back.
    s.sql("postgres", &format!("DROP DATABASE \"{db}\" WITH (FORCE)"));
    s.create_db(&db);
    resync().succeeds().stderr_contains("3 new in the ledger");
    assert_eq!(ids(&db), before);
    let vault_urls: i64 = count(
        &s,
        &db,
        "SELECT count(*) FROM backup_manifest WHERE vault_url LIKE 's3://%'",
    );
    assert_eq!(vault_urls, 3);

    // Queries: a table, filters, manifests, one backup in full.
    let table = ledger(&s, &url).args(["list"]).run();
    table.succeeds();
    let rows: Vec<&str> = table.stdout.lines().collect();
    assert!(
        rows[0].starts_with("ID ") && rows[0].contains("STATUS"),
        "{}",
        table.stdout
    );
    assert!(
        rows[1].starts_with(stored[2].id.as_str()),
        "newest first\n{}",
        table.stdout
    );
    assert_eq!(rows.len(), 4);
    let run0 = stored[0].run.as_ref().unwrap().to_string();
    #[rustfmt::skip]
    let cases: &[(&[&str], usize)] = &[
        (&["list", "--kind", "postgres"], 2),
        (&["list", "--limit", "1"], 1),
        (&["list", "--since", "2d"], 2),
        (&["list", "--status", "success", "--run", &run0], 1),
    ];
    for (args, n) in cases {
        let out = ledger(&s, &url).args(*args).run();
        out.succeeds();
        assert_eq!(
            out.stdout.lines().count(),
            n + 1,
            "{args:?}\n{}",
            out.stdout
        );
    }
    ledger(&s, &url)
        .args(["list", "--status", "failed"])
        .run()
        .fails_with(1)
        .stderr_contains("no backup in the ledger matches");
    let json = ledger(&s, &url).args(["list", "--json"]).run();
    json.succeeds();
    let listed: Vec<Manifest> = json.manifests();
    assert_eq!(
        listed,
        [stored[2].clone(), stored[1].clone(), stored[0].clone()],
        "the sidecar manifests, unchanged"
    );
    let one = ledger(&s, &url).args(["show", stored[0].id.as_str()]).run();
    one.succeeds();
    assert!(
        one.stdout.contains(&format!(
            "sha256        {}",
            stored[0].vault.as_ref().unwrap().sha256
        )),
        "{}",
        one.stdout
    );
    assert!(
        one.stdout.contains("status        success"),
        "{}",
        one.stdout
    );
    ledger(&s, &url)
        .args(["show", "postgres_nope_20250101_000000"])
        .run()
        .fails_with(1)
        .stderr_contains("is not in the ledger");
}

#[test]
fn a_ledger_in_another_postgresql_over_verified_tls_with_a_password_that_goes_nowhere() {
    let s = Scenario::new();
    let (db, _) = ledger_db(&s);
    let tls = s.pg.tls.clone();
    s.sql(
        "postgres",
        &format!(
            "GRANT CONNECT ON DATABASE \"{db}\" TO {0}; ALTER DATABASE \"{db}\" OWNER TO {0}",
            tls.user
        ),
    );
    s.sql(&db, &format!("ALTER SCHEMA public OWNER TO {}", tls.user));
    let root = tls.root_cert.to_str().unwrap();
    let with = |pw: &str| {
        format!(
            "postgresql://{}:{pw}@127.0.0.1:{}/{db}?sslmode=verify-full&sslrootcert={root}",
            tls.user, s.pg.port
        )
    };
    let url = with(&tls.password);
    init(&s, &url);
    let m = fabricated("postgres", "app", days(0.1), "ok", 10);
    record(&s, &url, std::slice::from_ref(&m));
    let listed = ledger(&s, &url).args(["list", "--json"]).run();
    listed.succeeds();
    assert_eq!(listed.manifest(), m);
    let wrong = ledger(&s, &with("not-the-password-x9"))
        .stdin(ndjson(std::slice::from_ref(&m)))
        .run();
    wrong
        .fails_with(1)
        .stderr_lines(1)
        .stderr_contains("password authentication failed");
    assert!(
        !wrong.stderr.contains("not-the-password-x9"),
        "{}",
        wrong.stderr
    );
    assert_eq!(wrong.stdout, ndjson(&[m]));
    let help = ledger(&s, &url).args(["--help"]).run();
    assert!(!help.stdout.contains(&tls.password), "no secret in --help");
}

#[test]
fn a_ledger_with_a_newer_schema_is_refused_and_nothing_is_lost() {
    let s = Scenario::new();
    let (db, url) = ledger_db(&s);
    init(&s, &url);
    s.sql(
        &db,
        "INSERT INTO stackvault_schema (version, description) VALUES (99, 'from the future')",
    );
    ledger(&s, &url)
        .args(["init"])
        .run()
        .fails_with(2)
        .stderr_contains(&format!(
            "newer than the {} this vault-ledger knows",
            ledger::schema::VERSION
        ));
    let m = fabricated("postgres", "app", days(0.1), "ok", 10);
    let out = ledger(&s, &url)
        .stdin(ndjson(std::slice::from_ref(&m)))
        .run();
    out.fails_with(1).stderr_contains("upgrade stackvault");
    assert_eq!(out.stdout, ndjson(&[m]));
    assert_eq!(count(&s, &db, "SELECT count(*) FROM backup_history"), 0);
}
