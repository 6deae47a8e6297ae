//! dump-neo4j against the fakes of Neo4j 5.3 (testkit::fake_neo4j): offline dumps between
//! the hooks, failed dumps that never look done, restores that a bad dump cannot destroy,
//! online exports that keep every value type, and graphs that change while they are read.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use base64::Engine;
use manifest::{Kind, Manifest, Status};
use serde_json::{json, Value as J};
use testkit::fake_neo4j::home::HomeConfig;
use testkit::fake_neo4j::samples::{same_props, source_graph};
use testkit::fake_neo4j::{client, FakeNeo4j, FakeNeo4jHome, Graph, Value};
use testkit::{Outcome, Scenario, TestCommand};

use crate::util::bin;

const PASSWORD: &str = "s3cret-Pw_77";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The environment every run gets: nothing of the developer's own Neo4j settings.
fn clean(cmd: TestCommand) -> TestCommand {
    [
        "NEO4J_URL",
        "NEO4J_HOST",
        "NEO4J_PORT",
        "NEO4J_AUTH",
        "NEO4J_HOME",
        "NEO4J_DATABASE",
        "STACKVAULT_NEO4J_STOP_CMD",
        "STACKVAULT_NEO4J_START_CMD",
    ]
    .iter()
    .fold(cmd, |c, v| c.env_remove(v))
    .env("NEO4J_USER", "neo4j")
    .env("NEO4J_PASSWORD", PASSWORD)
}

/// Runs and checks what every run must keep: the password is nowhere in the output.
fn run(cmd: TestCommand) -> Outcome {
    let out = cmd.run();
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "the password leaked:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    out
}

/// A fake DBMS in its own NEO4J_HOME (fake neo4j-admin and bin/neo4j), on a fixed port
/// so that its URL survives a stop and a start.
struct Dbms {
    home: FakeNeo4jHome,
    port: u16,
}

impl Dbms {
    fn new(graph: Graph) -> Dbms {
        let port = free_port();
        let config = HomeConfig {
            http_port: port,
            password: PASSWORD.into(),
            ..HomeConfig::default()
        };
        Dbms {
            home: FakeNeo4jHome::with_config(config, Some(graph)),
            port,
        }
    }

    fn started(graph: Graph) -> Dbms {
        let d = Dbms::new(graph);
        d.neo4j("start");
        d
    }

    fn neo4j(&self, what: &str) {
        let out = self.home.command("neo4j").arg(what).output().unwrap();
        assert!(
            out.status.success(),
            "neo4j {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn running(&self) -> bool {
        self.home.server_pid().is_some()
    }

    fn stop_cmd(&self) -> String {
        format!("{} stop", self.home.neo4j_path().display())
    }

    /// Leaves a mark that the start hook ran, and starts the DBMS.
    fn start_cmd(&self, s: &Scenario) -> String {
        format!(
            "touch {} && {} start",
            s.path().join("started").display(),
            self.home.neo4j_path().display()
        )
    }

    fn graph(&self) -> Graph {
        self.home.graph("neo4j").expect("a readable neo4j database")
    }

    /// dump-neo4j (`args` may start with `restore`) pointed at this DBMS, without hooks.
    fn cmd(&self, s: &Scenario, args: &[&str]) -> TestCommand {
        clean(s.cmd(&bin("dump-neo4j")))
            .env("NEO4J_URL", self.url())
            .env("NEO4J_ADMIN", self.home.admin_path())
            .env("FAKE_NEO4J_HOME", self.home.path())
            .args(args)
    }

    /// dump-neo4j with the stop and start hooks.
    fn hooked(&self, s: &Scenario, args: &[&str]) -> TestCommand {
        self.cmd(s, args).args([
            "--stop-cmd",
            &self.stop_cmd(),
            "--start-cmd",
            &self.start_cmd(s),
        ])
    }

    /// Runs a statement on the running server.
    fn cypher(&self, statement: &str) -> J {
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("neo4j:{PASSWORD}"))
        );
        let body = serde_json::to_vec(&json!({"statements": [{"statement": statement}]})).unwrap();
        let addr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let r = client::send(
            addr,
            "POST",
            "/db/neo4j/tx/commit",
            &[
                ("Host", "127.0.0.1"),
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
                ("Authorization", &auth),
            ],
            Some(&body),
        )
        .unwrap()
        .json();
        assert_eq!(r["errors"], json!([]), "{statement}: {r}");
        r
    }
}

fn section<'m>(m: &'m Manifest, name: &str) -> &'m J {
    m.extra
        .get(name)
        .unwrap_or_else(|| panic!("no {name} section: {m:?}"))
}

fn restore_section(m: &Manifest) -> &J {
    m.restore.as_ref().expect("a restore section")
}

/// Nodes and relationships equal in labels, types and every property value (by value,
/// not id: a restore over the HTTP API gives new ids).
fn assert_same_graph(want: &Graph, got: &Graph) {
    assert_eq!(want.counts(), got.counts());
    let mut unused: Vec<_> = got.nodes.values().collect();
    for n in want.nodes.values() {
        let mut labels = n.labels.clone();
        labels.sort();
        let found = unused.iter().position(|m| {
            let mut l = m.labels.clone();
            l.sort();
            l == labels && same_props(&n.props, &m.props).is_ok()
        });
        let i =
            found.unwrap_or_else(|| panic!("node {:?} {:?} was not restored", n.labels, n.props));
        unused.remove(i);
    }
    let mut unused: Vec<_> = got.rels.values().collect();
    for r in want.rels.values() {
        let i = unused
            .iter()
            .position(|m| m.rel_type == r.rel_type && same_props(&r.props, &m.props).is_ok())
            .unwrap_or_else(|| panic!(":{} {:?} was not restored", r.rel_type, r.props));
        unused.remove(i);
    }
    let names = |g: &Graph| {
        let mut v: Vec<String> = g.constraints.iter().map(|c| c.name.clone()).collect();
        v.extend(
            g.indexes
                .iter()
                .filter(|i| i.kind != "LOOKUP")
                .map(|i| i.name.clone()),
        );
        v.sort();
        v
    };
    assert_eq!(names(want), names(got));
}

fn ids(g: &Graph) -> (Vec<u64>, Vec<u64>) {
    (
        g.nodes.keys().copied().collect(),
        g.rels.keys().copied().collect(),
    )
}

/// A hand-made manifest of an artifact file, as a producer would write it.
fn manifest_of(path: &Path, format: &str, server_version: &str, stats: J) -> Manifest {
    let data = std::fs::read(path).unwrap();
    let line = json!({
        "schema": "stackvault.manifest/1", "id": "neo4j_neo4j_20250130_020000", "kind": "neo4j",
        "created_at": "2025-01-30T02:00:00Z", "status": "ok",
        "source": {"database": "neo4j", "server_version": server_version, "method": "admin"},
        "artifact": {"path": path, "format": format, "bytes": data.len(),
                     "sha256": manifest::Sha256::of(&data).to_string()},
        "stats": stats,
    });
    manifest::ndjson::parse_line(&line.to_string()).unwrap()
}

fn write_file(s: &Scenario, name: &str, data: &[u8]) -> PathBuf {
    std::fs::create_dir_all(s.spool()).unwrap();
    let path = s.spool().join(name);
    std::fs::write(&path, data).unwrap();
    path
}

// ---------------------------------------------------------------------------------------
// --method admin

#[test]
fn admin_round_trip_stops_dumps_starts_and_restores_exactly() {
    let s = Scenario::new();
    let dbms = Dbms::started(source_graph());
    let original = dbms.graph();
    let out = run(dbms.hooked(&s, &["--method", "admin", "--run", "nightly_1"]));
    out.succeeds().stderr_contains("the DBMS was down");
    let m = out.manifest();
    assert_eq!(
        (m.kind.clone(), m.status.clone()),
        (Kind::Neo4j, Status::Ok)
    );
    assert!(m.id.as_str().starts_with("neo4j_neo4j_"), "{}", m.id);
    let source = m.source.as_ref().unwrap();
    assert_eq!(
        (
            &source["database"],
            &source["server_version"],
            &source["method"],
            &source["url"]
        ),
        (
            &json!("neo4j"),
            &json!("5.3.0"),
            &json!("admin"),
            &json!(dbms.url())
        )
    );
    let artifact = m.artifact.as_ref().unwrap();
    assert_eq!(artifact.format, "neo4j/dump");
    let bytes = std::fs::read(&artifact.path).unwrap();
    assert_eq!(&bytes[..4], b"DZV1");
    assert_eq!(
        (bytes.len() as u64, manifest::Sha256::of(&bytes)),
        (artifact.bytes, artifact.sha256)
    );
    let stats = m.stats.as_ref().unwrap();
    let counts = original.counts();
    assert_eq!(
        (stats["nodes"].as_u64(), stats["relationships"].as_u64()),
        (Some(counts.nodes), Some(counts.relationships))
    );
    assert_eq!(stats["labels"]["Person"], 2);
    assert_eq!(
        stats["constraints"],
        json!(["person_pid: UNIQUENESS NODE :Person(pid)"])
    );
    assert_eq!(
        stats["indexes"],
        json!(["company_cid: RANGE NODE :Company(cid)"])
    );
    let dump = section(&m, "dump");
    assert_eq!(dump["method"], "admin");
    assert!(dump["downtime_ms"].as_u64().unwrap() > 0, "{dump}");
    assert_eq!(dump["serving_again"], true);
    assert!(dbms.running(), "the start hook ran after the dump");
    assert_eq!(s.spool_files(), [format!("{}.dump", m.id)]);

    // The database changes; the restore brings back exactly what was dumped.
    dbms.cypher("CREATE (:Added {x: 1})");
    dbms.cypher("MATCH (n:Mixed) DETACH DELETE n");
    let out = run(dbms.hooked(&s, &["restore"]).manifests_in(&[m]));
    out.succeeds()
        .stderr_contains("all 11 fingerprint items match");
    let r = out.manifest();
    let section = restore_section(&r);
    assert_eq!(
        (&section["result"], &section["method"]),
        (&json!("ok"), &json!("admin"))
    );
    assert_eq!(section["rollback_copy"]["kept"], false);
    assert!(section["downtime_ms"].as_u64().unwrap() > 0);
    assert!(dbms.running());
    assert_same_graph(&original, &dbms.graph());
    assert_eq!(
        ids(&dbms.graph()),
        ids(&original),
        "a dump keeps even the ids"
    );
    assert_eq!(
        s.spool_files().len(),
        1,
        "the rollback copy is gone once the restore is proven"
    );
}

#[test]
fn with_system_dumps_both_databases_in_one_stop() {
    let s = Scenario::new();
    let dbms = Dbms::started(source_graph());
    let out = run(dbms.hooked(&s, &["--method", "admin", "--with-system"]));
    out.succeeds();
    let ms = out.manifests();
    let dbs: Vec<_> = ms
        .iter()
        .map(|m| m.source.as_ref().unwrap()["database"].clone())
        .collect();
    assert_eq!(dbs, [json!("neo4j"), json!("system")]);
    assert!(ms.iter().all(|m| m.is_ok() && m.run == ms[0].run));
    assert!(
        ms[0].stats.is_some() && ms[1].stats.is_none(),
        "system cannot be counted"
    );
    let warning = &section(&ms[1], "dump")["warnings"][0];
    assert!(
        warning.as_str().unwrap().contains("cannot be proven"),
        "{warning}"
    );
    assert_eq!(
        section(&ms[0], "dump")["downtime_ms"],
        section(&ms[1], "dump")["downtime_ms"]
    );
    assert!(s.path().join("started").exists() && dbms.running());
}

#[test]
fn a_failed_dump_is_never_ok_and_leaves_nothing_in_the_spool() {
    // (what is wrong, extra arguments, the DBMS is left running?, what the error says)
    type Setup = fn(&Dbms, &Scenario) -> Vec<String>;
    let cases: [(&str, Setup, &str); 4] = [
        (
            "the stop hook does not stop it",
            |d, s| {
                vec![
                    "--stop-cmd".into(),
                    "true".into(),
                    "--start-cmd".into(),
                    d.start_cmd(s),
                ]
            },
            "The database is in use. Stop database 'neo4j' and try again",
        ),
        (
            "the server was killed: needs recovery",
            |d, s| {
                d.home.kill_server();
                // A start hook that does not start it: no waiting for a server that
                // will not come.
                vec![
                    "--start-cmd".into(),
                    format!("touch {}", s.path().join("started").display()),
                    "--start-timeout".into(),
                    "1s".into(),
                ]
            },
            "start the Neo4j server once so that it recovers",
        ),
        (
            "no such database",
            |d, s| {
                let mut a = vec![
                    "--database".into(),
                    "nosuch".into(),
                    "--stop-cmd".into(),
                    d.stop_cmd(),
                ];
                a.extend(["--start-cmd".into(), d.start_cmd(s)]);
                a
            },
            "Database does not exist: nosuch",
        ),
        (
            "text before the dump",
            |d, s| {
                let wrapper = s.path().join("chatty-admin");
                std::fs::write(
                    &wrapper,
                    format!(
                        "#!/bin/sh\ncase \"$*\" in *dump*) echo 'Executing command line: java' ;; esac\nexec {} \"$@\"\n",
                        d.home.admin_path().display()
                    ),
                )
                .unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
                let mut a = vec!["--neo4j-admin".into(), wrapper.display().to_string()];
                a.extend([
                    "--stop-cmd".into(),
                    d.stop_cmd(),
                    "--start-cmd".into(),
                    d.start_cmd(s),
                ]);
                a
            },
            "does not start with the dump magic DZV1 but with \"Executing command line",
        ),
    ];
    for (what, setup, want) in cases {
        let s = Scenario::new();
        let dbms = Dbms::started(source_graph());
        let args = setup(&dbms, &s);
        let mut cmd = dbms.cmd(&s, &["--method", "admin"]);
        cmd = cmd.args(&args);
        let out = run(cmd);
        out.fails_with(1);
        let m = out.manifest();
        assert_eq!(m.status, Status::Failed, "{what}");
        let error = m.error.as_deref().unwrap();
        assert!(error.contains(want), "{what}: {error}");
        assert!(m.artifact.is_none() && m.stats.is_none(), "{what}");
        assert!(s.spool_files().is_empty(), "{what}: {:?}", s.spool_files());
        assert!(
            s.path().join("started").exists(),
            "{what}: the start hook ran anyway"
        );
    }
}

#[test]
fn the_message_neo4j_admin_wrote_to_stdout_reaches_the_failed_manifest() {
    let s = Scenario::new();
    let dbms = Dbms::started(source_graph());
    let out = run(dbms.cmd(&s, &["--method", "admin"]));
    out.fails_with(1).stderr_contains("stop the DBMS first");
    let error = out.manifest().error.unwrap();
    // stderr's summary and stdout's ERROR lines, one line.
    assert!(
        error.contains("Dump failed for databases: 'neo4j'")
            && error.contains("ERROR [o.n.c.d.DumpCommand]"),
        "{error}"
    );
    assert!(!error.contains('\n'));
}

/// An executable script `name` in the scenario running `body` (`$ADMIN` is the fake
/// neo4j-admin).
fn script(s: &Scenario, dbms: &Dbms, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = s.path().join(name);
    let text = format!(
        "#!/bin/sh\nADMIN={}\n{body}\n",
        dbms.home.admin_path().display()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{what} did not happen within 10 s");
}

#[test]
fn neither_neo4j_admin_nor_the_hooks_see_the_password() {
    let s = Scenario::new();
    let dbms = Dbms::started(source_graph());
    let seen = s.path().join("seen");
    let admin = script(
        &s,
        &dbms,
        "admin",
        &format!("env >> {}\nexec $ADMIN \"$@\"", seen.display()),
    );
    let stop = format!("env >> {} && {}", seen.display(), dbms.stop_cmd());
    let out = run(dbms
        .cmd(&s, &["--method", "admin", "--neo4j-admin", &admin])
        .args(["--stop-cmd", &stop, "--start-cmd", &dbms.start_cmd(&s)]));
    out.succeeds();
    let env = std::fs::read_to_string(seen).unwrap();
    assert!(
        env.contains("FAKE_NEO4J_HOME="),
        "the wrapper and the hook ran"
    );
    assert!(!env.contains("NEO4J_PASSWORD") && !env.contains(PASSWORD));
}

#[test]
fn a_signal_during_the_dump_still_starts_the_dbms_again() {
    let s = Scenario::new();
    let dbms = Dbms::started(source_graph());
    // A dump that hangs until it is stopped.
    let admin = script(
        &s,
        &dbms,
        "admin",
        "case \"$*\" in *'database dump'*) exec sleep 30 ;; esac\nexec $ADMIN \"$@\"",
    );
    let running = dbms
        .hooked(&s, &["--method", "admin", "--neo4j-admin", &admin])
        .spawn_with_stdin("");
    wait_for("the stop", || !dbms.running());
    std::thread::sleep(std::time::Duration::from_millis(300));
    running.signal("TERM");
    let out = running.wait();
    out.fails_with(2);
    let m = out.manifest();
    assert_eq!(m.status, Status::Failed);
    assert!(
        m.error
            .as_deref()
            .unwrap()
            .contains("interrupted by a signal"),
        "{m:?}"
    );
    assert!(
        s.path().join("started").exists() && dbms.running(),
        "started again despite the signal"
    );
    assert!(s.spool_files().is_empty());
}

#[test]
fn a_signal_during_the_load_still_loads_the_rollback_copy_back() {
    let s = Scenario::new();
    let dbms = Dbms::started(source_graph());
    let original = dbms.graph();
    let m = run(dbms.hooked(&s, &["--method", "admin"])).manifest();
    // The first load destroys the database, as a real one does before it reads, and hangs.
    let mark = s.path().join("loading");
    let store = dbms.home.path().join("data/databases/neo4j/graph.json");
    let body = format!(
        "case \"$*\" in *'database load neo4j'*) if [ ! -e {m} ]; then touch {m}; rm -f {st}; exec sleep 30; fi ;; esac\nexec $ADMIN \"$@\"",
        m = mark.display(),
        st = store.display()
    );
    let admin = script(&s, &dbms, "admin", &body);
    let running = dbms
        .hooked(&s, &["restore", "--neo4j-admin", &admin])
        .spawn_with_stdin(format!("{}\n", serde_json::to_string(&m).unwrap()));
    wait_for("the load", || mark.exists());
    std::thread::sleep(std::time::Duration::from_millis(300));
    running.signal("TERM");
    let out = running.wait();
    out.fails_with(2);
    let r = out.manifest();
    let section = restore_section(&r);
    assert_eq!(section["result"], "failed");
    assert!(
        section["note"]
            .as_str()
            .unwrap()
            .contains("the rollback copy was loaded back"),
        "{section}"
    );
    assert!(dbms.running());
    assert_same_graph(&original, &dbms.graph());
}

// ---------------------------------------------------------------------------------------
// restore of offline dumps

/// A real dump of the fake, cut in half (what a truncated upload would be if its checksum
/// were not checked, and what a bad dump is whose manifest was made from it).
fn half_dump(dbms: &Dbms) -> Vec<u8> {
    dbms.neo4j("stop");
    let out = dbms
        .home
        .command("neo4j-admin")
        .args(["database", "dump", "neo4j", "--to-stdout"])
        .output()
        .unwrap();
    assert!(out.status.success());
    dbms.neo4j("start");
    out.stdout[..out.stdout.len() / 2].to_vec()
}

#[test]
fn a_bad_dump_cannot_destroy_the_database_it_was_to_replace() {
    // (the bad dump, flags, what becomes of the database)
    let cases: [(&str, &[&str], bool); 3] = [
        ("magic then garbage", &[], true),
        ("truncated", &[], true),
        ("magic then garbage", &["--no-rollback-copy"], false),
    ];
    for (kind, flags, kept) in cases {
        let s = Scenario::new();
        let dbms = Dbms::started(source_graph());
        let original = dbms.graph();
        let data = match kind {
            "truncated" => half_dump(&dbms),
            _ => [b"DZV1".as_slice(), &[0xAB; 5000]].concat(),
        };
        let path = write_file(&s, "bad.dump", &data);
        let m = manifest_of(
            &path,
            "neo4j/dump",
            "5.3.0",
            json!({"nodes": 11, "relationships": 3}),
        );
        let out = run(dbms.hooked(&s, &["restore"]).args(flags).manifests_in(&[m]));
        out.fails_with(1);
        let r = out.manifest();
        assert_eq!(r.status, Status::Failed);
        let section = restore_section(&r);
        assert_eq!(section["result"], "failed", "{kind} {flags:?}");
        let note = section["note"].as_str().unwrap();
        assert!(note.contains("Failed to load database 'neo4j'"), "{note}");
        assert!(dbms.running(), "the DBMS was started again");
        if kept {
            assert!(note.contains("the rollback copy was loaded back"), "{note}");
            assert_eq!(section["rollback_copy"]["loaded_back"], true);
            assert_same_graph(&original, &dbms.graph());
            assert_eq!(
                s.spool_files(),
                ["bad.dump"],
                "the rollback copy is removed once loaded back"
            );
        } else {
            // What the rollback copy prevents: the failed load took the database, and the
            // start made a new empty one (surprise 3 of the recordings).
            assert!(
                note.contains("the next start of the DBMS creates it empty"),
                "{note}"
            );
            assert_eq!(dbms.graph().counts().nodes, 0);
        }
    }
}

#[test]
fn restores_are_refused_before_anything_is_touched() {
    // (what is wrong, the manifest's changes, flags, the refusal)
    let cases: [(&str, &str, &[&str], &str); 4] = [
        (
            "newer Neo4j",
            "5.26.0",
            &[],
            "the dump was made by Neo4j 5.26.0, the target runs 5.3.0",
        ),
        (
            "no magic",
            "not-dzv1",
            &[],
            "does not start with the dump magic DZV1",
        ),
        ("checksum", "damaged", &[], "checksum mismatch"),
        (
            "trial load of a bad dump",
            "bad-trial",
            &["--trial-load"],
            "the trial load into stackvault-trial failed",
        ),
    ];
    for (what, change, flags, want) in cases {
        let s = Scenario::new();
        let dbms = Dbms::started(source_graph());
        let original = dbms.graph();
        let data: Vec<u8> = match change {
            "not-dzv1" => b"PGDMP not a neo4j dump".to_vec(),
            "bad-trial" => [b"DZV1".as_slice(), &[7; 100]].concat(),
            _ => half_dump(&dbms),
        };
        let path = write_file(&s, "x.dump", &data);
        let version = if change == "5.26.0" {
            "5.26.0"
        } else {
            "5.3.0"
        };
        let m = manifest_of(
            &path,
            "neo4j/dump",
            version,
            json!({"nodes": 11, "relationships": 3}),
        );
        if change == "damaged" {
            std::fs::write(&path, [data.as_slice(), b"x"].concat()).unwrap();
        }
        let stop_mark = s.path().join("stopped");
        let stop = format!("touch {} && {}", stop_mark.display(), dbms.stop_cmd());
        let out = run(dbms
            .cmd(&s, &["restore", "--neo4j-data"])
            .args([dbms.home.path().join("data")])
            .args(["--stop-cmd", &stop, "--start-cmd", &dbms.start_cmd(&s)])
            .args(flags)
            .manifests_in(&[m]));
        out.fails_with(1);
        let r = out.manifest();
        let error = r.error.as_deref().unwrap();
        assert!(
            error.starts_with("refusing to restore neo4j_neo4j_20250130_020000: "),
            "{error}"
        );
        assert!(error.contains(want), "{what}: {error}");
        assert!(r.restore.is_none(), "{what}");
        assert!(!stop_mark.exists(), "{what}: the DBMS was never stopped");
        assert!(dbms.running());
        assert_same_graph(&original, &dbms.graph());
        assert!(
            !dbms
                .home
                .path()
                .join("data/databases/stackvault-trial")
                .exists(),
            "{what}"
        );
    }
}

#[test]
fn no_load_without_a_rollback_copy_of_what_is_there() {
    let s = Scenario::new();
    let dbms = Dbms::started(source_graph());
    let original = dbms.graph();
    let m = run(dbms.hooked(&s, &["--method", "admin"])).manifest();
    // A crash: the database needs recovery, so it cannot be dumped as a rollback copy.
    dbms.home.kill_server();
    let out = run(dbms.hooked(&s, &["restore"]).manifests_in(&[m]));
    out.fails_with(1);
    let error = out.manifest().error.unwrap();
    assert!(
        error.contains("cannot make the rollback copy of neo4j, so nothing was loaded")
            && error.contains("start the Neo4j server once"),
        "{error}"
    );
    assert!(dbms.running(), "started again (which recovers it)");
    assert_same_graph(&original, &dbms.graph());
}

#[test]
fn a_trial_load_checks_the_dump_in_a_scratch_database_first() {
    let s = Scenario::new();
    let dbms = Dbms::started(source_graph());
    let m = run(dbms.hooked(&s, &["--method", "admin"])).manifest();
    dbms.cypher("CREATE (:Added)");
    let out = run(dbms
        .hooked(&s, &["restore", "--trial-load"])
        .env("NEO4J_HOME", dbms.home.path())
        .manifests_in(&[m]));
    out.succeeds()
        .stderr_contains("passed neo4j-admin database check");
    let section = restore_section(&out.manifest()).clone();
    assert_eq!(
        section["trial_load"],
        json!({"database": "stackvault-trial", "check": "passed"})
    );
    assert_eq!(section["result"], "ok");
    assert!(!dbms
        .home
        .path()
        .join("data/databases/stackvault-trial")
        .exists());
    assert!(!dbms
        .home
        .path()
        .join("data/transactions/stackvault-trial")
        .exists());
    assert_eq!(dbms.graph().counts().labels.get("Added"), None);
}

#[test]
fn the_recorded_real_dump_restores_and_proves_its_counts() {
    let s = Scenario::new();
    let dbms = Dbms::started(Graph::new());
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reference/neo4j-5.3/fixtures/neo4j.dump");
    let path = write_file(&s, "real.dump", &std::fs::read(fixture).unwrap());
    let stats = json!({
        "nodes": 1001, "relationships": 2000,
        "labels": {"Company": 400, "Person": 600, "RefBytes": 1},
        "relationship_types": {"KNOWS": 1000, "PARTNER_OF": 400, "WORKS_AT": 600},
        "constraints": ["person_pid: UNIQUENESS NODE :Person(pid)"],
        "indexes": ["company_cid: RANGE NODE :Company(cid)"],
    });
    let out = run(dbms.hooked(&s, &["restore"]).manifests_in(&[manifest_of(
        &path,
        "neo4j/dump",
        "5.3.0",
        stats,
    )]));
    out.succeeds();
    assert_eq!(restore_section(&out.manifest())["checked"], 10);
    assert_eq!(dbms.graph().counts().nodes, 1001);
}

// ---------------------------------------------------------------------------------------
// --method cypher

fn fake(graph: Graph) -> FakeNeo4j {
    FakeNeo4j::builder()
        .credentials("neo4j", PASSWORD)
        .graph(graph)
        .start()
        .unwrap()
}

fn cypher_cmd(s: &Scenario, server: &FakeNeo4j, args: &[&str]) -> TestCommand {
    clean(s.cmd(&bin("dump-neo4j")))
        .env("NEO4J_URL", server.url())
        .args(args)
}

#[test]
fn cypher_round_trip_keeps_every_value_type() {
    let s = Scenario::new();
    let source = fake(source_graph());
    let out = run(cypher_cmd(&s, &source, &["--page-size", "3"]));
    out.succeeds().stderr_contains("warning: neo4j: ");
    let m = out.manifest();
    assert_eq!(m.status, Status::Ok);
    let artifact = m.artifact.as_ref().unwrap();
    assert_eq!(artifact.format, "neo4j/cypher-jsonl+zstd");
    assert!(artifact.path.to_string_lossy().ends_with(".jsonl.zst"));
    assert_eq!(
        &std::fs::read(&artifact.path).unwrap()[..4],
        &[0x28, 0xB5, 0x2F, 0xFD],
        "a zstd frame"
    );
    assert_eq!(m.source.as_ref().unwrap()["method"], "cypher");
    assert_eq!(m.source.as_ref().unwrap()["server_version"], "5.3.0");
    let dump = section(&m, "dump");
    assert_eq!(dump["changed_during_export"], false);
    assert_eq!(
        dump["pages"],
        5 + 2,
        "11 nodes in pages of 3, 3 relationships, each ending on an empty page"
    );
    let warnings = dump["warnings"].to_string();
    assert!(
        warnings.contains("byte[]") && warnings.contains(":Person.bytes"),
        "{warnings}"
    );
    assert!(
        warnings.contains("empty lists") && warnings.contains(":Person.emptyList"),
        "{warnings}"
    );
    let counts = source.counts("neo4j");
    assert_eq!(m.stats.as_ref().unwrap()["nodes"], counts.nodes);

    let target = fake(Graph::new());
    let out = run(cypher_cmd(&s, &target, &["restore", "--batch-size", "2"]).manifests_in(&[m]));
    out.succeeds();
    let r = out.manifest();
    let section = restore_section(&r);
    assert_eq!(
        (&section["result"], &section["method"]),
        (&json!("ok"), &json!("cypher"))
    );
    assert_eq!(
        section["created"],
        json!({"nodes": 11, "relationships": 3, "schema": 2})
    );
    assert_same_graph(&source.graph("neo4j"), &target.graph("neo4j"));
    // The restored uniqueness constraint holds.
    let g = target.graph("neo4j");
    assert_eq!(g.constraints.len(), 1);
    let typed = g
        .nodes
        .values()
        .find(|n| n.props.iter().any(|(k, _)| k == "dtZone"))
        .unwrap();
    let dt = typed.props.iter().find(|(k, _)| k == "dtZone").unwrap();
    assert!(
        matches!(dt.1, Value::DateTime(_)),
        "a datetime, not its text: {dt:?}"
    );
}

#[test]
fn a_cypher_restore_goes_into_an_empty_database_unless_told_to_overwrite() {
    let s = Scenario::new();
    let source = fake(source_graph());
    let m = run(cypher_cmd(&s, &source, &[])).manifest();
    let mut other = Graph::new();
    other.add_node(&["Precious"], vec![("x".into(), Value::Int(1))]);
    other.add_range_index("precious_x", "Precious", &["x"]);
    let target = fake(other);
    let out = run(cypher_cmd(&s, &target, &["restore"]).manifests_in(std::slice::from_ref(&m)));
    out.fails_with(1);
    let error = out.manifest().error.unwrap();
    assert!(
        error.contains("holds 1 nodes, 0 relationships and 1 schema rule(s)")
            && error.contains("--overwrite"),
        "{error}"
    );
    assert_eq!(
        target.counts("neo4j").labels.get("Precious"),
        Some(&1),
        "untouched"
    );

    let out = run(cypher_cmd(&s, &target, &["restore", "--overwrite"]).manifests_in(&[m]));
    out.succeeds()
        .stderr_contains("--overwrite: deleted 1 nodes and 1 schema rule(s)");
    assert_same_graph(&source.graph("neo4j"), &target.graph("neo4j"));
}

#[test]
fn counts_that_change_during_the_export_are_flagged() {
    // (when the writer comes, what it does, exported nodes more than before, dangling)
    type Hook = fn(&mut Graph);
    let cases: [(&str, Hook, u64, u64); 2] = [
        (
            "MATCH (n) WHERE id(n) > $after",
            |g| {
                g.add_node(&["Person"], vec![("pid".into(), Value::Int(99))]);
            },
            1,
            0,
        ),
        (
            "MATCH (a)-[r]->(b) WHERE id(r) > $after",
            |g| {
                let first = *g.nodes.keys().next().unwrap();
                let new = g.add_node(&["Late"], vec![]);
                g.add_rel("LATE", first, new, vec![]);
            },
            0,
            1,
        ),
    ];
    for (page, hook, more_nodes, dangling) in cases {
        let s = Scenario::new();
        let source = fake(source_graph());
        let before = source.counts("neo4j");
        let mut done = false;
        source.on_request(move |info, dbs| {
            if !done
                && info
                    .statements
                    .first()
                    .is_some_and(|st| st.starts_with(page))
            {
                done = true;
                hook(&mut dbs.get_mut("neo4j").unwrap().graph);
            }
        });
        let out = run(cypher_cmd(&s, &source, &["--page-size", "4"]));
        out.succeeds()
            .stderr_contains("the graph changed during the export");
        let m = out.manifest();
        assert_eq!(
            m.status,
            Status::Ok,
            "a read-committed export is still a backup, flagged"
        );
        let dump = section(&m, "dump");
        assert_eq!(dump["changed_during_export"], true, "{page}");
        assert_eq!(dump["counts_before"]["nodes"], before.nodes);
        assert_eq!(dump["counts_after"]["nodes"], before.nodes + 1);
        assert_eq!(dump["dangling_relationships"], dangling);
        assert!(dump["warnings"][0]
            .as_str()
            .unwrap()
            .contains("not one snapshot"));
        let stats = m.stats.as_ref().unwrap();
        assert_eq!(
            stats["nodes"],
            before.nodes + more_nodes,
            "the fingerprint is what the export holds"
        );
        assert_eq!(stats["relationships"], before.relationships);

        // What the export holds restores, and is proven.
        let target = fake(Graph::new());
        run(cypher_cmd(&s, &target, &["restore"]).manifests_in(&[m])).succeeds();
    }
}

#[test]
fn http_failures_are_one_clear_line() {
    let server = FakeNeo4j::builder()
        .credentials("neo4j", PASSWORD)
        .max_failed_attempts(3)
        .auth_lock_time(std::time::Duration::from_secs(60))
        .start()
        .unwrap();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let wrong: &[(&str, &str)] = &[("NEO4J_PASSWORD", "wrong-password")];
    // (URL, environment changes, arguments, exit, what stderr says), in order: the last
    // rows lock the user out.
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Env, &[&str], i32, &str); 7] = [
        (
            &server.url(),
            &[],
            &["--database", "nosuch"],
            1,
            "database \"nosuch\" does not exist on Neo4j at",
        ),
        (&closed, &[], &[], 1, "cannot connect"),
        (
            "bolt://127.0.0.1:7687",
            &[],
            &[],
            2,
            "is a Bolt URL; dump-neo4j uses the HTTP API",
        ),
        (
            &server.url(),
            wrong,
            &[],
            1,
            "refused the credentials of user \"neo4j\" (401 Unauthorized",
        ),
        (
            &server.url(),
            wrong,
            &[],
            1,
            "check NEO4J_USER and NEO4J_PASSWORD",
        ),
        (
            &server.url(),
            wrong,
            &[],
            1,
            "401 Unauthorized: Invalid username or password.",
        ),
        // Three wrong passwords lock the user out, even with the right one.
        (
            &server.url(),
            &[],
            &[],
            1,
            "locks user \"neo4j\" out after repeated failed logins (429",
        ),
    ];
    for (url, env, args, code, want) in cases {
        let s = Scenario::new();
        let mut cmd = clean(s.cmd(&bin("dump-neo4j")))
            .env("NEO4J_URL", url)
            .args(args);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        let out = run(cmd);
        out.fails_with(code).stderr_lines(1).stderr_contains(want);
        if code == 1 {
            assert!(out.manifest().error.unwrap().contains(want));
            assert!(s.spool_files().is_empty());
        }
    }
}

// ---------------------------------------------------------------------------------------
// A real Neo4j, when the environment names one (compose/README.md).

mod live {
    use super::*;

    /// The live server, or `None` after saying in one line why these tests did not run.
    fn live(what: &str) -> Option<String> {
        match std::env::var("NEO4J_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                eprintln!("live Neo4j test {what} did not run: NEO4J_URL is not set (see compose/README.md)");
                None
            }
        }
    }

    fn live_cmd(s: &Scenario, args: &[&str]) -> TestCommand {
        // The developer's own NEO4J_* settings are the point here.
        s.cmd(&bin("dump-neo4j")).args(args)
    }

    #[test]
    fn cypher_export_and_restore_of_a_live_server() {
        let Some(_) = live("cypher_export_and_restore_of_a_live_server") else {
            return;
        };
        let s = Scenario::new();
        let out = live_cmd(&s, &[]).run();
        out.succeeds();
        let m = out.manifest();
        assert_eq!(
            m.artifact.as_ref().unwrap().format,
            "neo4j/cypher-jsonl+zstd"
        );
        assert!(m.stats.is_some());
        // The live database goes back into itself: the export is its only source of truth.
        live_cmd(&s, &["restore", "--overwrite"])
            .manifests_in(&[m])
            .run()
            .succeeds();
    }

    #[test]
    fn admin_dump_and_restore_of_a_live_server() {
        let Some(_) = live("admin_dump_and_restore_of_a_live_server") else {
            return;
        };
        for var in [
            "NEO4J_ADMIN",
            "STACKVAULT_NEO4J_STOP_CMD",
            "STACKVAULT_NEO4J_START_CMD",
        ] {
            if std::env::var(var).is_err() {
                eprintln!("live Neo4j test admin_dump_and_restore_of_a_live_server did not run: {var} is not set");
                return;
            }
        }
        let s = Scenario::new();
        let out = live_cmd(&s, &["--method", "admin"]).run();
        out.succeeds();
        let m = out.manifest();
        assert!(section(&m, "dump")["downtime_ms"].as_u64().is_some());
        live_cmd(&s, &["restore"])
            .manifests_in(&[m])
            .run()
            .succeeds();
    }
}
