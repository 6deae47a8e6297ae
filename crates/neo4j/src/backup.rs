//! Backups into the spool, one manifest per database, in the shape `dump-pg` writes:
//! id `neo4j_{database}_{YYYYMMDD}_{HHMMSS}`, `source` (URL without credentials,
//! database, server version, method), `artifact`, the typed fingerprint in `stats`, and a
//! `dump` section with what the method costs and saw (downtime, changes during the export,
//! warnings).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use manifest::fingerprint::Fingerprint;
use manifest::time::Timestamp;
use manifest::{Artifact, Kind, Manifest, Name};
use serde_json::{json, Map, Value};
use toolkit::progress::{self, Style, Unit};
use toolkit::spool::{SpoolDir, SpoolFile};

use crate::admin::{self, Admin, Hooks};
use crate::client::Client;
use crate::error::Error;
use crate::export::{self, ExportOptions};
use crate::format;
use crate::stats::{self, Snapshot};

/// The `artifact.format` of an offline dump.
pub const DUMP_FORMAT: &str = "neo4j/dump";

/// A database name as Neo4j allows it (letters, digits, `.`, `-`, `_`; a letter first; at
/// most 63): it goes into an HTTP path and `neo4j-admin`'s argv.
pub fn check_database_name(name: &str) -> Result<(), Error> {
    let ok = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "invalid Neo4j database name {name:?}: a letter, then letters, digits, '.', '-' or '_' \
             (at most 63)"
        )))
    }
}

fn new_manifest(database: &str, run: &Name, created_at: Timestamp, source: Value) -> Manifest {
    let mut m = Manifest::new(Kind::Neo4j, Some(&Name::sanitize(database)), created_at);
    m.run = Some(run.clone());
    m.source = Some(source);
    m
}

fn spool_name(m: &Manifest, ext: &str) -> Name {
    Name::new(format!("{}.{ext}", m.id)).expect("an id and an extension make a name")
}

fn artifact(written: toolkit::spool::Written, format: &str) -> Artifact {
    Artifact {
        path: written.path,
        format: format.to_owned(),
        bytes: written.bytes,
        sha256: written.sha256,
        extra: Default::default(),
    }
}

fn counts_json(s: &Snapshot) -> Value {
    json!({"nodes": s.counts.nodes, "relationships": s.counts.relationships})
}

/// What an online backup needs.
pub struct CypherBackup<'a> {
    /// The server.
    pub client: &'a Client,
    /// The database.
    pub database: &'a str,
    /// The run id.
    pub run: &'a Name,
    /// Where the artifact goes.
    pub spool: &'a SpoolDir,
    /// Page size.
    pub options: ExportOptions,
    /// How progress shows.
    pub style: Style,
}

/// Exports one database over the HTTP API (no downtime) and returns its manifest: `ok`
/// with artifact and fingerprint, or `failed` with the reason and nothing in the spool.
pub fn cypher(b: &CypherBackup) -> Manifest {
    let mut m = new_manifest(
        b.database,
        b.run,
        Timestamp::now(),
        json!({"url": b.client.shown_url(), "database": b.database, "method": "cypher"}),
    );
    if let Err(e) = cypher_into(b, &mut m) {
        m.fail(e);
    }
    m
}

fn cypher_into(b: &CypherBackup, m: &mut Manifest) -> Result<(), Error> {
    let clock = Instant::now();
    let server = b.client.server()?;
    if let Some(Value::Object(source)) = &mut m.source {
        source.insert("server_version".into(), server.version.clone().into());
        if let Some(e) = &server.edition {
            source.insert("edition".into(), e.clone().into());
        }
    }
    let mut file = SpoolFile::create(b.spool, &spool_name(m, "jsonl.zst"))
        .map_err(Error::io("cannot create the spool file"))?;
    let label = |what: &str| format!("export {} {what}", b.database);
    let nodes = progress::for_stderr_counting(b.style, &label("nodes"), Unit::Items("nodes"));
    let rels = progress::for_stderr_counting(
        b.style,
        &label("relationships"),
        Unit::Items("relationships"),
    );
    let exported = export::export(
        b.client, b.database, &server, &mut file, b.options, &*nodes, &*rels,
    )?;
    let written = file
        .commit()
        .map_err(Error::io("cannot finish the spool file"))?;
    m.artifact = Some(artifact(written, format::ARTIFACT_FORMAT));
    m.set_fingerprint(&Fingerprint::Neo4j(exported.stats.clone()));
    let mut section = Map::new();
    section.insert("method".into(), "cypher".into());
    section.insert(
        "duration_ms".into(),
        (clock.elapsed().as_millis() as u64).into(),
    );
    section.insert("pages".into(), exported.pages.into());
    section.insert("changed_during_export".into(), exported.changed().into());
    if exported.changed() {
        section.insert("counts_before".into(), counts_json(&exported.before));
        section.insert("counts_after".into(), counts_json(&exported.after));
        section.insert("dangling_relationships".into(), exported.dangling.into());
    }
    if !exported.warnings.is_empty() {
        section.insert("warnings".into(), json!(exported.warnings));
    }
    m.extra.insert("dump".into(), Value::Object(section));
    Ok(())
}

/// What an offline backup needs.
pub struct AdminBackup<'a> {
    /// `neo4j-admin`.
    pub admin: &'a Admin,
    /// The HTTP API, for the fingerprint before the stop and after the start.
    pub client: Option<&'a Client>,
    /// Databases to dump (`neo4j`, and `system` with `--with-system`).
    pub databases: &'a [String],
    /// Stop and start.
    pub hooks: &'a Hooks,
    /// The run id.
    pub run: &'a Name,
    /// Where the dumps go.
    pub spool: &'a SpoolDir,
    /// How progress shows.
    pub style: Style,
    /// How long to wait for the server to answer after the start hook.
    pub start_timeout: Duration,
}

/// What an offline backup did.
pub struct AdminOutcome {
    /// One manifest per database.
    pub manifests: Vec<Manifest>,
    /// The start hook failed: the DBMS may still be down.
    pub start_failed: Option<String>,
}

/// Dumps the databases with `neo4j-admin` between the stop and the start hook (the start
/// hook runs whatever happened), counting them over HTTP before the stop and after the
/// start.
pub fn admin(b: &AdminBackup) -> AdminOutcome {
    let created = Timestamp::now();
    let mut manifests: Vec<Manifest> = b
        .databases
        .iter()
        .map(|db| {
            let mut source =
                json!({"database": db, "method": "admin", "command": b.admin.display()});
            if let Some(c) = b.client {
                source["url"] = c.shown_url().into();
            }
            new_manifest(db, b.run, created.clone(), source)
        })
        .collect();
    let fail_all = |manifests: &mut Vec<Manifest>, why: &str| {
        for m in manifests.iter_mut() {
            m.fail(why);
        }
    };
    // Before anything is stopped: the tool runs, and the counts.
    let version = match b.admin.version() {
        Ok(v) => v,
        Err(e) => {
            fail_all(
                &mut manifests,
                &format!("nothing was stopped or dumped: {e}"),
            );
            return AdminOutcome {
                manifests,
                start_failed: None,
            };
        }
    };
    let user_dbs: Vec<&String> = b.databases.iter().filter(|d| *d != "system").collect();
    let serving = b.client.filter(|c| c.answers());
    let mut before: BTreeMap<String, Snapshot> = BTreeMap::new();
    let mut edition = None;
    if let Some(c) = serving {
        edition = c.server().ok().and_then(|s| s.edition);
        for db in &user_dbs {
            match stats::snapshot(c, db) {
                Ok(s) => {
                    before.insert((*db).clone(), s);
                }
                Err(Error::DatabaseNotFound { .. }) => {}
                Err(e) => {
                    fail_all(
                        &mut manifests,
                        &format!("nothing was stopped or dumped: cannot count {db} first: {e}"),
                    );
                    return AdminOutcome {
                        manifests,
                        start_failed: None,
                    };
                }
            }
        }
    }
    for m in manifests.iter_mut() {
        if let Some(Value::Object(s)) = &mut m.source {
            s.insert("server_version".into(), version.clone().into());
            if let Some(e) = &edition {
                s.insert("edition".into(), e.clone().into());
            }
        }
    }

    let stopped_at = Timestamp::now();
    let clock = Instant::now();
    let mut stop_error = None;
    if let Some(stop) = &b.hooks.stop {
        if let Err(e) = admin::run_hook("stop", stop) {
            stop_error = Some(e.to_string());
        }
    }
    let mut dump_ms: Vec<Option<u64>> = vec![None; manifests.len()];
    match &stop_error {
        Some(e) => fail_all(&mut manifests, &format!("nothing was dumped: {e}")),
        None => {
            for (i, (db, m)) in b.databases.iter().zip(manifests.iter_mut()).enumerate() {
                if toolkit::interrupt::is_interrupted() {
                    m.fail("interrupted by a signal before this dump started");
                    continue;
                }
                let started = Instant::now();
                match dump_one(b, db, m) {
                    Ok(a) => {
                        m.artifact = Some(a);
                        dump_ms[i] = Some(started.elapsed().as_millis() as u64);
                    }
                    Err(e) => m.fail(e),
                }
            }
        }
    }
    let answers = b.client.map(|c| move || c.answers());
    let answers_ref = answers.as_ref().map(|f| f as &dyn Fn() -> bool);
    let (serving_again, started) = admin::start_and_wait(b.hooks, answers_ref, b.start_timeout);
    let start_failed = started.err().map(|e| e.to_string());
    let downtime = b
        .hooks
        .stop
        .as_ref()
        .map(|_| serving_again.unwrap_or_else(Instant::now) - clock);

    let mut after: BTreeMap<String, Snapshot> = BTreeMap::new();
    if let (Some(c), Some(_)) = (b.client, serving_again) {
        for db in &user_dbs {
            if let Ok(s) = stats::snapshot(c, db) {
                after.insert((*db).clone(), s);
            }
        }
    }
    for (i, (db, m)) in b.databases.iter().zip(manifests.iter_mut()).enumerate() {
        let mut warnings: Vec<String> = Vec::new();
        if m.is_ok() {
            let (fp, w) = admin_fingerprint(db, before.get(db), after.get(db));
            if let Some(fp) = fp {
                m.set_fingerprint(&Fingerprint::Neo4j(fp.fingerprint()));
            }
            warnings.extend(w);
        }
        if let Some(e) = &start_failed {
            warnings.push(format!("{e}: the DBMS may still be stopped"));
        }
        let mut section = Map::new();
        section.insert("method".into(), "admin".into());
        if let Some(ms) = dump_ms[i] {
            section.insert("duration_ms".into(), ms.into());
        }
        if let Some(d) = downtime {
            section.insert("stopped_at".into(), json!(stopped_at));
            section.insert("downtime_ms".into(), (d.as_millis() as u64).into());
            section.insert("serving_again".into(), serving_again.is_some().into());
        }
        if !warnings.is_empty() {
            section.insert("warnings".into(), json!(warnings));
        }
        m.extra.insert("dump".into(), Value::Object(section));
    }
    AdminOutcome {
        manifests,
        start_failed,
    }
}

fn dump_one(b: &AdminBackup, db: &str, m: &Manifest) -> Result<Artifact, Error> {
    let mut file = SpoolFile::create(b.spool, &spool_name(m, "dump"))
        .map_err(Error::io("cannot create the spool file"))?;
    let progress = progress::for_stderr(b.style, &format!("neo4j-admin database dump {db}"));
    let sink = file.partial_path().display().to_string();
    let result = b.admin.dump(db, &mut file, &sink, &*progress);
    progress.finish();
    result?;
    let written = file
        .commit()
        .map_err(Error::io("cannot finish the spool file"))?;
    Ok(artifact(written, DUMP_FORMAT))
}

/// The fingerprint of an offline dump: the counts before the stop (the dump holds what
/// was committed at the stop), checked against those after the start.
fn admin_fingerprint<'s>(
    db: &str,
    before: Option<&'s Snapshot>,
    after: Option<&'s Snapshot>,
) -> (Option<&'s Snapshot>, Vec<String>) {
    if db == "system" {
        return (
            None,
            vec![
                "the system database (users, roles) cannot be counted over Cypher: a restore of \
                  it cannot be proven (dump-neo4j restore --accept-unverified)"
                    .into(),
            ],
        );
    }
    match (before, after) {
        (Some(b), Some(a)) if b != a => (
            Some(b),
            vec![format!(
                "the graph changed between the count before the stop ({}) and the count after \
                 the start ({}): writes came in around the stop, so the fingerprint (taken \
                 before) may not match the dump exactly",
                b.counts.summary(),
                a.counts.summary()
            )],
        ),
        (Some(b), _) => (Some(b), vec![]),
        (None, Some(a)) => (
            Some(a),
            vec![
                "the server was not serving before the dump: the fingerprint was counted after \
                  the start"
                    .into(),
            ],
        ),
        (None, None) => (
            None,
            vec![
                "no fingerprint: the server could not be counted before or after the dump (is \
                  NEO4J_URL right, and --start-cmd given?); a restore of this dump cannot be \
                  proven (dump-neo4j restore --accept-unverified)"
                    .into(),
            ],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_database_names() {
        let cases = [
            ("neo4j", true),
            ("system", true),
            ("my-db.v2_x", true),
            ("", false),
            ("1db", false),
            ("../x", false),
            ("a/b", false),
            ("a b", false),
        ];
        for (name, ok) in cases {
            assert_eq!(check_database_name(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn the_admin_fingerprint_says_how_sure_it_is() {
        let s = |nodes| Snapshot {
            counts: stats::Counts {
                nodes,
                ..Default::default()
            },
            schema: vec![],
        };
        let (a, b) = (s(10), s(11));
        // (db, before, after, fingerprint nodes, warning contains)
        type Case<'a> = (
            &'a str,
            Option<&'a Snapshot>,
            Option<&'a Snapshot>,
            Option<u64>,
            &'a str,
        );
        let cases: [Case; 5] = [
            ("neo4j", Some(&a), Some(&a), Some(10), ""),
            ("neo4j", Some(&a), Some(&b), Some(10), "changed between"),
            ("neo4j", None, Some(&b), Some(11), "counted after the start"),
            ("neo4j", None, None, None, "no fingerprint"),
            ("system", Some(&a), Some(&a), None, "cannot be counted"),
        ];
        for (db, before, after, nodes, want) in cases {
            let (fp, warnings) = admin_fingerprint(db, before, after);
            assert_eq!(
                fp.map(|f| f.counts.nodes),
                nodes,
                "{db} {before:?} {after:?}"
            );
            assert_eq!(warnings.is_empty(), want.is_empty());
            assert!(warnings.iter().all(|w| w.contains(want)), "{warnings:?}");
        }
    }
}
