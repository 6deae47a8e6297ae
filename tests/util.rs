//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::PathBuf;

use manifest::Manifest;
use testkit::Scenario;

/// The path of a tool binary built for this test run.
pub fn bin(tool: &str) -> PathBuf {
    PathBuf::from(match tool {
        "dump-pg" => env!("CARGO_BIN_EXE_dump-pg"),
        "dump-neo4j" => env!("CARGO_BIN_EXE_dump-neo4j"),
        "vault-put" => env!("CARGO_BIN_EXE_vault-put"),
        "vault-get" => env!("CARGO_BIN_EXE_vault-get"),
        "snap-qdrant" => env!("CARGO_BIN_EXE_snap-qdrant"),
        "vault-ledger" => env!("CARGO_BIN_EXE_vault-ledger"),
        "vault-prune" => env!("CARGO_BIN_EXE_vault-prune"),
        "integrity-check" => env!("CARGO_BIN_EXE_integrity-check"),
        "vault-copy" => env!("CARGO_BIN_EXE_vault-copy"),
        other => panic!("no tool {other}"),
    })
}

/// A fixture file's text.
pub fn fixture(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Loads the rich fixture (schemas, json, bytea, arrays, large object, view, FK, sequence,
/// a few MB of rows) into `database`.
pub fn load_rich(s: &Scenario, database: &str) {
    s.sql(database, &fixture("dump-pg/rich.sql"));
}

/// `schema.table` → (row count, md5 of all rows in a fixed order): two databases with
/// equal fingerprints hold the same data.
pub fn table_fingerprints(s: &Scenario, database: &str) -> BTreeMap<String, (i64, String)> {
    let mut client = s.connect(database);
    let tables = client
        .query(
            "SELECT table_schema, table_name FROM information_schema.tables
             WHERE table_type = 'BASE TABLE'
               AND table_schema NOT IN ('pg_catalog', 'information_schema')
             ORDER BY 1, 2",
            &[],
        )
        .unwrap();
    let mut out = BTreeMap::new();
    for row in tables {
        let (schema, table): (String, String) = (row.get(0), row.get(1));
        let sql = format!(
            "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '')
             FROM \"{schema}\".\"{table}\" t"
        );
        let r = client.query_one(sql.as_str(), &[]).unwrap();
        out.insert(format!("{schema}.{table}"), (r.get(0), r.get(1)));
    }
    out
}

/// What else a restore must bring back: large object bytes, the view's rows, the
/// sequence position, the index and the foreign key.
pub fn schema_fingerprint(s: &Scenario, database: &str) -> Vec<String> {
    let mut c = s.connect(database);
    let one = |c: &mut postgres::Client, sql: &str| -> String {
        c.query_one(sql, &[])
            .unwrap()
            .get::<_, Option<String>>(0)
            .unwrap_or_default()
    };
    vec![
        one(&mut c, "SELECT md5(lo_get(body)) FROM public.documents WHERE name = 'manual.txt'"),
        one(&mut c, "SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM shop.customer_totals t"),
        one(&mut c, "SELECT last_value::text || '/' || is_called::text FROM shop.invoice_no"),
        one(&mut c, "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'shop'"),
        one(&mut c, "SELECT string_agg(conname || ':' || pg_get_constraintdef(oid), ',' ORDER BY conname) FROM pg_constraint WHERE contype = 'f'"),
    ]
}

/// A spooled artifact of `size` pseudo-random bytes and its manifest, as a producer would
/// write them (no database needed).
pub fn spooled(s: &Scenario, id: &str, size: usize) -> Manifest {
    let data: Vec<u8> = (0..size)
        .map(|i| ((i * 2654435761usize) >> 13) as u8)
        .collect();
    spooled_bytes(s, id, &data)
}

/// `data` as a spooled artifact with id `id` (created 2025-01-30T02:00:00Z, kind postgres).
pub fn spooled_bytes(s: &Scenario, id: &str, data: &[u8]) -> Manifest {
    std::fs::create_dir_all(s.spool()).unwrap();
    let path = s.spool().join(format!("{id}.dump"));
    std::fs::write(&path, data).unwrap();
    manifest_for(id, &path, data)
}

/// The manifest a producer would write for `data` stored at `path`.
pub fn manifest_for(id: &str, path: &std::path::Path, data: &[u8]) -> Manifest {
    let line = serde_json::json!({
        "schema": "stackvault.manifest/1", "id": id, "kind": "postgres",
        "created_at": "2025-01-30T02:00:00Z", "status": "ok",
        "artifact": {"path": path, "format": "pg_dump/custom", "bytes": data.len(),
                     "sha256": manifest::Sha256::of(data).to_string()}
    });
    manifest::ndjson::parse_line(&line.to_string()).unwrap()
}

/// A directory `dir` (under the scenario) with a `pg_dump` that runs `script` (a shell
/// script body; `$REAL` is the real pg_dump), for `--pg-bindir`: to see what dump-pg hands
/// pg_dump, to slow it down, or to make it hang.
pub fn pg_dump_wrapper(s: &Scenario, dir: &str, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bindir = s.path().join(dir);
    std::fs::create_dir_all(&bindir).unwrap();
    let real = std::process::Command::new("sh")
        .args(["-c", "command -v pg_dump"])
        .output()
        .unwrap()
        .stdout;
    let real = String::from_utf8(real).unwrap();
    let wrapper = bindir.join("pg_dump");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nREAL={}\n{script}\n", real.trim()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    bindir
}

/// A manifest as the pipeline would carry it, made `ago` before now: kind `kind`, source
/// `name`, `status` ("ok", "failed", …), an artifact of `size` bytes and, when `ok`, a vault
/// section stored 90 s after the start.
pub fn fabricated(
    kind: &str,
    name: &str,
    ago: std::time::Duration,
    status: &str,
    size: u64,
) -> Manifest {
    use manifest::time::Timestamp;
    let at = Timestamp::from_system_time(std::time::SystemTime::now() - ago);
    let id = format!("{kind}_{name}_{}", at.compact());
    let sha = manifest::Sha256::of(id.as_bytes()).to_string();
    let mut line = serde_json::json!({
        "schema": "stackvault.manifest/1", "id": id, "run": format!("run_{}", at.compact()),
        "kind": kind, "created_at": at.to_string(), "status": status,
        "source": {"database": name},
        "artifact": {"path": format!("/spool/{id}.dump"), "format": "pg_dump/custom",
                     "bytes": size, "sha256": sha},
    });
    if status == "ok" || status == "pruned" {
        let stored =
            Timestamp::from_system_time(at.system_time() + std::time::Duration::from_secs(90));
        line["vault"] = serde_json::json!({"url": format!("file:///vault/{kind}/{id}.dump"),
            "bytes": size, "sha256": sha, "stored_at": stored.to_string()});
    } else {
        line["error"] = serde_json::json!(format!("{kind} {name} failed on purpose"));
    }
    manifest::ndjson::parse_line(&line.to_string()).unwrap()
}

/// Days as a duration.
pub fn days(n: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(n * 86_400.0)
}

/// A fresh database for a ledger, and the `LEDGER_URL` naming it (a keyword/value string:
/// host, port and user come from the scenario's PG* environment).
pub fn ledger_db(s: &Scenario) -> (String, String) {
    let db = s.db_name("ledger");
    s.create_db(&db);
    let url = format!("dbname={db}");
    (db, url)
}

/// Manifests as NDJSON text.
pub fn ndjson(manifests: &[Manifest]) -> String {
    manifests
        .iter()
        .map(|m| serde_json::to_string(m).unwrap() + "\n")
        .collect()
}

/// Stores a backup made `ago` before now into `backend` as vault-put would (artifact of
/// `size` bytes, then sidecar), with `status` in its sidecar; returns the sidecar manifest.
pub fn store_fabricated_as(
    s: &Scenario,
    backend: &dyn vault::Backend,
    kind: &str,
    name: &str,
    ago: std::time::Duration,
    size: usize,
    status: &str,
) -> Manifest {
    let mut m = fabricated(kind, name, ago, "ok", size as u64);
    m.vault = None;
    let dir = s.path().join("fabricated");
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> = m.id.as_bytes().iter().copied().cycle().take(size).collect();
    let path = dir.join(format!("{}.dump", m.id));
    std::fs::write(&path, &data).unwrap();
    let artifact = m.artifact.as_mut().unwrap();
    artifact.path = path;
    artifact.sha256 = manifest::Sha256::of(&data);
    if status != "ok" {
        m.fail("failed on purpose");
        m.status = status.parse().unwrap();
    }
    vault::ops::store(
        backend,
        &m,
        vault::ops::Verify::Size,
        &toolkit::progress::Hidden,
    )
    .unwrap_or_else(|e| panic!("cannot store {}: {e}", m.id))
    .manifest
}

/// [`store_fabricated_as`] an `ok` backup.
pub fn store_fabricated(
    s: &Scenario,
    backend: &dyn vault::Backend,
    kind: &str,
    name: &str,
    ago: std::time::Duration,
    size: usize,
) -> Manifest {
    store_fabricated_as(s, backend, kind, name, ago, size, "ok")
}
