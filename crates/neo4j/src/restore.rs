//! `dump-neo4j restore`: a restore that a bad dump cannot destroy, proven against the
//! backup's fingerprint.
//!
//! Before anything is touched: the shared restorable check (status, kind, SHA-256 of the
//! file), the dump magic, and the versions (a dump of a newer Neo4j does not load into an
//! older one).
//!
//! Offline dumps: `neo4j-admin database load --overwrite-destination=true` deletes the
//! database it replaces *before* it reads the dump, so a bad dump would leave nothing (and
//! the next start silently creates an empty database). So, with the DBMS stopped, the
//! current database is first dumped into the spool as a rollback copy; after a failed
//! load (or a signal during it) the copy is loaded back. `--trial-load` loads the dump
//! under a scratch name first and checks it (`neo4j-admin database check`), while the
//! server still runs: a bad dump is then caught without any downtime.
//!
//! Online exports go into an empty database only (`--overwrite` empties it first).

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use manifest::fingerprint::Fingerprint;
use manifest::sections::{Proof, Restore, RestoreResult};
use manifest::time::Timestamp;
use manifest::{Artifact, Kind, Manifest, Name};
use serde_json::{json, Map, Value};
use toolkit::progress::{self, Style, Unit};
use toolkit::spool::{SpoolDir, SpoolFile, Written};

use crate::admin::{self, Admin, Hooks};
use crate::backup::{check_database_name, DUMP_FORMAT};
use crate::client::Client;
use crate::error::Error;
use crate::format;
use crate::import::{self, ImportOptions};
use crate::stats;

/// The database `--trial-load` loads into: Community never serves it, so it is safe to
/// load while the server runs.
pub const TRIAL_DATABASE: &str = "stackvault-trial";

/// How to restore.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Target database [default: the backup's].
    pub database: Option<String>,
    /// Online exports: empty a non-empty target first.
    pub overwrite: bool,
    /// Offline dumps: no rollback copy (the operator says the database is lost anyway).
    pub no_rollback_copy: bool,
    /// Offline dumps: load into [`TRIAL_DATABASE`] and check it first.
    pub trial_load: bool,
    /// Neo4j's data directory (holding `databases/` and `transactions/`), to remove the
    /// trial database afterwards.
    pub data_dir: Option<PathBuf>,
    /// Online exports: rows per statement.
    pub import: ImportOptions,
    /// How long to wait for the server after the start hook.
    pub start_timeout: Duration,
}

/// What a restore works with.
pub struct Env<'a> {
    /// `neo4j-admin`.
    pub admin: &'a Admin,
    /// The HTTP API (counts; the online import).
    pub client: Option<&'a Client>,
    /// Stop and start.
    pub hooks: &'a Hooks,
    /// Where the rollback copy goes.
    pub spool: &'a SpoolDir,
    /// How progress shows.
    pub style: Style,
}

/// A restore that ran: its section says how it ended (`ok`, `mismatch`, `unverified`, or
/// `failed` after the target was touched).
pub struct Restored {
    /// The target database.
    pub target: String,
    /// The `restore` section.
    pub section: Restore,
    /// Lines for the operator besides the conclusion.
    pub notes: Vec<String>,
}

/// Restores the artifact of `manifest`. `Err` means nothing was touched (or, for the
/// stop hook, nothing was loaded); once the target is touched the outcome is in the
/// section.
pub fn restore(
    manifest: &Manifest,
    options: &RestoreOptions,
    env: &Env,
) -> Result<Restored, Error> {
    let refuse =
        |why: String| Error::Refused(format!("refusing to restore {}: {why}", manifest.id));
    let artifact =
        toolkit::restorable::check(manifest, &Kind::Neo4j).map_err(|e| refuse(e.to_string()))?;
    let source = manifest.source.as_ref();
    let source_db = source
        .and_then(|s| s.get("database"))
        .and_then(Value::as_str);
    let target = options
        .database
        .as_deref()
        .or(source_db)
        .unwrap_or("neo4j")
        .to_owned();
    check_database_name(&target).map_err(|e| refuse(e.to_string()))?;
    let source_version = source
        .and_then(|s| s.get("server_version"))
        .and_then(Value::as_str);
    match artifact.format.as_str() {
        DUMP_FORMAT => restore_dump(manifest, artifact, &target, source_version, options, env)
            .map_err(|e| match e {
                Error::Refused(why) => refuse(why),
                other => other,
            }),
        format::ARTIFACT_FORMAT => {
            restore_export(manifest, artifact, &target, source_version, options, env).map_err(|e| {
                match e {
                    Error::Refused(why) => refuse(why),
                    other => other,
                }
            })
        }
        other => Err(refuse(format!(
            "its artifact format is {other:?}; dump-neo4j restores {DUMP_FORMAT} and {}",
            format::ARTIFACT_FORMAT
        ))),
    }
}

fn version_of(v: &str) -> Option<Vec<u64>> {
    admin::version_key(v)
}

fn failed(note: String) -> Proof {
    Proof {
        result: RestoreResult::Failed,
        checked: 0,
        differences: vec![],
        note: Some(note),
    }
}

/// The proof: the backup's fingerprint against what `target` holds now.
fn prove(manifest: &Manifest, client: Option<&Client>, target: &str, serving: bool) -> Proof {
    let unverified = |why: String| Proof {
        result: RestoreResult::Unverified,
        checked: 0,
        differences: vec![],
        note: Some(why),
    };
    let Some(client) = client.filter(|_| serving) else {
        return unverified(
            "the server did not answer after the load (no --start-cmd, or it did not come up in \
             time), so nothing could be counted"
                .into(),
        );
    };
    match stats::snapshot(client, target) {
        Ok(s) => Proof::new(manifest.fingerprint(), &Fingerprint::Neo4j(s.fingerprint())),
        Err(e) => unverified(format!("the restored database could not be counted: {e}")),
    }
}

fn restore_dump(
    manifest: &Manifest,
    artifact: &Artifact,
    target: &str,
    source_version: Option<&str>,
    options: &RestoreOptions,
    env: &Env,
) -> Result<Restored, Error> {
    if !admin::has_dump_magic(&artifact.path)? {
        return Err(Error::Refused(format!(
            "{} is not a Neo4j dump: it does not start with the dump magic DZV1",
            toolkit::cli::quote(&artifact.path)
        )));
    }
    let mut warnings = Vec::new();
    if options.overwrite {
        warnings.push("--overwrite is for online exports: a dump always replaces the target (after the rollback copy)".into());
    }
    let target_version = env
        .admin
        .version()
        .map_err(|e| Error::Refused(format!("cannot tell the target's Neo4j version: {e}")))?;
    match source_version.and_then(version_of) {
        Some(v) if Some(&v) > version_of(&target_version).as_ref() => {
            return Err(Error::Refused(format!(
                "the dump was made by Neo4j {}, the target runs {target_version}: a dump does not \
                 load into an older Neo4j; restore it into Neo4j {} or newer (or use a \
                 --method cypher backup)",
                source_version.unwrap_or_default(),
                source_version.unwrap_or_default()
            )))
        }
        Some(_) => {}
        None => warnings.push(format!(
            "the manifest does not say which Neo4j made the dump; the target runs {target_version}"
        )),
    }
    let mut extra = Map::new();
    extra.insert("method".into(), "admin".into());
    extra.insert("server_version".into(), target_version.clone().into());
    let mut notes = Vec::new();
    if options.trial_load {
        let data = options.data_dir.as_deref().ok_or_else(|| {
            Error::Refused(
                "--trial-load removes its scratch database from Neo4j's data directory afterwards: \
                 pass --neo4j-data DIR (or set NEO4J_HOME)"
                    .into(),
            )
        })?;
        trial(env, artifact, data)?;
        extra.insert(
            "trial_load".into(),
            json!({"database": TRIAL_DATABASE, "check": "passed"}),
        );
        notes.push(format!(
            "trial load of {} into {TRIAL_DATABASE} passed neo4j-admin database check",
            manifest.id
        ));
    }

    let started_at = Timestamp::now();
    let clock = Instant::now();
    let target_json =
        json!({"database": target, "method": "admin", "server_version": target_version});
    if let Some(stop) = &env.hooks.stop {
        if let Err(e) = admin::run_hook("stop", stop) {
            return Err(refuse_after_stop(
                env,
                options,
                format!("{e}; nothing was loaded"),
            ));
        }
    }

    // 1. The rollback copy, with the DBMS stopped.
    let rollback = if options.no_rollback_copy {
        warnings.push(
            "no rollback copy (--no-rollback-copy): had the load failed, the database would have \
             been lost"
                .into(),
        );
        None
    } else {
        match rollback_copy(env, manifest, target) {
            Ok(copy) => copy,
            Err(e) => {
                let why = format!(
                    "cannot make the rollback copy of {target}, so nothing was loaded: {e}; pass \
                     --no-rollback-copy only if the database is lost anyway"
                );
                return Err(refuse_after_stop(env, options, why));
            }
        }
    };
    if rollback.is_none() && !options.no_rollback_copy {
        notes.push(format!(
            "{target} does not exist yet: no rollback copy needed"
        ));
    }

    // 2. The load, which deletes the target first.
    let progress = progress::for_stderr(env.style, &format!("neo4j-admin database load {target}"));
    let loaded = env.admin.load(target, &artifact.path, true, &*progress);
    progress.finish();

    // 3. On any failure, the rollback copy goes back, whatever signal arrives meanwhile.
    let mut rolled_back = None;
    if let (Err(_), Some(copy)) = (&loaded, &rollback) {
        let _hold = toolkit::interrupt::defer();
        rolled_back = Some(
            env.admin
                .load(target, &copy.path, true, &toolkit::progress::Hidden)
                .map(|_| ()),
        );
    }

    // 4. Start, and count.
    let answers = env.client.map(|c| move || c.answers());
    let answers_ref = answers.as_ref().map(|f| f as &dyn Fn() -> bool);
    let (serving_at, started) =
        admin::start_and_wait(env.hooks, answers_ref, options.start_timeout);
    if env.hooks.stop.is_some() {
        let downtime = serving_at.unwrap_or_else(Instant::now) - clock;
        extra.insert("downtime_ms".into(), (downtime.as_millis() as u64).into());
    }
    if let Err(e) = &started {
        warnings.push(format!("{e}: the DBMS may still be stopped"));
    }

    let (proof, keep_copy) = match &loaded {
        Ok(said) => {
            if !said.stderr.is_empty() && said.stderr.contains("WARN") {
                warnings.push(said.stderr.clone());
            }
            let proof = prove(manifest, env.client, target, serving_at.is_some());
            let keep = proof.result != RestoreResult::Ok;
            (proof, keep)
        }
        Err(e) => {
            let (what, keep) = match (&rollback, &rolled_back) {
                (Some(_), Some(Ok(()))) => (
                    "the rollback copy was loaded back: the database is as it was before"
                        .to_owned(),
                    false,
                ),
                (Some(copy), Some(Err(again))) => (
                    format!(
                        "loading the rollback copy back failed too ({again}); it is kept at {}: \
                         load it with `neo4j-admin database load {target} --from-stdin \
                         --overwrite-destination=true < {}` with the DBMS stopped",
                        copy.path.display(),
                        copy.path.display()
                    ),
                    true,
                ),
                _ => (
                    format!(
                        "there was no rollback copy: {target} is gone, and the next start of the \
                         DBMS creates it empty"
                    ),
                    false,
                ),
            };
            (failed(format!("{e}; {what}")), keep)
        }
    };
    if let Some(copy) = &rollback {
        let mut info = json!({"path": copy.path, "bytes": copy.bytes, "sha256": copy.sha256.to_string(), "kept": keep_copy});
        if let Some(r) = &rolled_back {
            info["loaded_back"] = r.is_ok().into();
        }
        extra.insert("rollback_copy".into(), info);
        if keep_copy {
            notes.push(format!(
                "the rollback copy of {target} is kept at {}",
                copy.path.display()
            ));
        } else if let Err(e) = std::fs::remove_file(&copy.path) {
            notes.push(format!(
                "cannot remove the rollback copy {}: {e}",
                copy.path.display()
            ));
        }
    }
    Ok(Restored {
        target: target.to_owned(),
        section: Restore::proven(target_json, started_at, clock, proof, warnings, extra),
        notes,
    })
}

/// A refusal after the stop hook ran: the DBMS is started again first (the refusal says
/// if that failed too).
fn refuse_after_stop(env: &Env, options: &RestoreOptions, why: String) -> Error {
    let (_, started) = admin::start_and_wait(env.hooks, None, options.start_timeout);
    let restarted = started.err().map(|s| format!("; {s}")).unwrap_or_default();
    Error::Refused(format!("{why}{restarted}"))
}

/// Dumps the current `target` into the spool; `None` when it does not exist.
fn rollback_copy(env: &Env, manifest: &Manifest, target: &str) -> Result<Option<Written>, Error> {
    let name = Name::sanitize(&format!(
        "{}.rollback-{target}-{}.dump",
        manifest.id,
        Timestamp::now().compact()
    ));
    let mut file = SpoolFile::create(env.spool, &name)
        .map_err(Error::io("cannot create the rollback copy"))?;
    let sink = file.partial_path().display().to_string();
    let progress = progress::for_stderr(env.style, &format!("rollback copy of {target}"));
    let dumped = env.admin.dump(target, &mut file, &sink, &*progress);
    progress.finish();
    match dumped {
        Ok(_) => Ok(Some(
            file.commit()
                .map_err(Error::io("cannot finish the rollback copy"))?,
        )),
        Err(Error::Admin(m)) if m.contains("Database does not exist") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Loads the dump into [`TRIAL_DATABASE`], checks it, removes it (whatever the outcome).
fn trial(env: &Env, artifact: &Artifact, data: &Path) -> Result<(), Error> {
    if !data.join("databases").is_dir() {
        return Err(Error::Refused(format!(
            "{} has no databases/ directory: is it Neo4j's data directory (--neo4j-data)?",
            data.display()
        )));
    }
    let progress = progress::for_stderr(env.style, &format!("trial load into {TRIAL_DATABASE}"));
    let result = env
        .admin
        .load(TRIAL_DATABASE, &artifact.path, true, &*progress)
        .and_then(|_| env.admin.check(TRIAL_DATABASE));
    progress.finish();
    let removed = remove_trial(data);
    match (result, removed) {
        (Err(e), _) => Err(Error::Refused(format!(
            "the trial load into {TRIAL_DATABASE} failed, so the target was not touched: {e}"
        ))),
        (Ok(_), Err(e)) => Err(e),
        (Ok(_), Ok(())) => Ok(()),
    }
}

/// Removes the trial database's store and transaction directories.
fn remove_trial(data: &Path) -> Result<(), Error> {
    for dir in ["databases", "transactions"] {
        let path = data.join(dir).join(TRIAL_DATABASE);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path).map_err(Error::io(format!(
                "cannot remove the trial database {}",
                path.display()
            )))?,
            Ok(_) => {
                return Err(Error::Admin(format!(
                    "{} is not a directory; not touching it",
                    path.display()
                )))
            }
            Err(_) => {}
        }
    }
    Ok(())
}

fn restore_export(
    manifest: &Manifest,
    artifact: &Artifact,
    target: &str,
    source_version: Option<&str>,
    options: &RestoreOptions,
    env: &Env,
) -> Result<Restored, Error> {
    let client = env.client.ok_or_else(|| {
        Error::Refused(
            "a --method cypher backup is restored over the HTTP API: set NEO4J_URL".into(),
        )
    })?;
    let server = client
        .server()
        .map_err(|e| Error::Refused(format!("cannot reach the target server: {e}")))?;
    let mut warnings = Vec::new();
    if let (Some(src), Some(dst)) = (
        source_version.and_then(version_of),
        version_of(&server.version),
    ) {
        if src > dst {
            warnings.push(format!(
                "the export comes from Neo4j {}, the target runs {}: schema statements of the newer \
                 version may be refused",
                source_version.unwrap_or_default(),
                server.version
            ));
        }
    }
    let now = stats::snapshot(client, target)
        .map_err(|e| Error::Refused(format!("cannot read the target: {e}")))?;
    let mut notes = Vec::new();
    let mut extra = Map::new();
    extra.insert("method".into(), "cypher".into());
    extra.insert("server_version".into(), server.version.clone().into());
    let occupied = now.counts.nodes > 0 || now.counts.relationships > 0 || !now.schema.is_empty();
    if occupied && !options.overwrite {
        return Err(Error::Refused(format!(
            "database {target} holds {} and {} schema rule(s); a --method cypher backup goes into \
             an empty database: pass --overwrite to delete what it holds first",
            now.counts.summary(),
            now.schema.len()
        )));
    }
    let started_at = Timestamp::now();
    let clock = Instant::now();
    let target_json = json!({"url": client.shown_url(), "database": target, "method": "cypher"});
    if occupied {
        match import::clear(client, target, &now.schema) {
            Ok(deleted) => {
                extra.insert("deleted_nodes".into(), deleted.into());
                notes.push(format!(
                    "--overwrite: deleted {deleted} nodes and {} schema rule(s) of {target}",
                    now.schema.len()
                ));
            }
            Err(e) => {
                let proof = failed(format!("emptying {target} for the import failed: {e}"));
                return Ok(Restored {
                    target: target.into(),
                    section: Restore::proven(
                        target_json,
                        started_at,
                        clock,
                        proof,
                        warnings,
                        extra,
                    ),
                    notes,
                });
            }
        }
    }
    let file = toolkit::fs::open_regular(&artifact.path).map_err(Error::io(format!(
        "cannot open {}",
        artifact.path.display()
    )))?;
    let decoder =
        zstd::Decoder::new(file).map_err(Error::io("cannot start reading the zstd stream"))?;
    let label = |what: &str| format!("import into {target}: {what}");
    let nodes = progress::for_stderr_counting(env.style, &label("nodes"), Unit::Items("nodes"));
    let rels = progress::for_stderr_counting(
        env.style,
        &label("relationships"),
        Unit::Items("relationships"),
    );
    if let Ok(Fingerprint::Neo4j(fp)) = manifest.fingerprint() {
        nodes.set_length(fp.nodes);
        rels.set_length(fp.relationships);
    }
    let imported = import::import(
        client,
        target,
        BufReader::with_capacity(1 << 16, decoder),
        &artifact.path.display().to_string(),
        options.import,
        &*nodes,
        &*rels,
    );
    let proof = match imported {
        Ok(done) => {
            extra.insert("created".into(), json!({"nodes": done.nodes, "relationships": done.relationships, "schema": done.schema}));
            prove(manifest, Some(client), target, true)
        }
        Err(e) => failed(format!(
            "the import failed: {e}; {target} now holds part of the backup: restore again with \
             --overwrite"
        )),
    };
    Ok(Restored {
        target: target.into(),
        section: Restore::proven(target_json, started_at, clock, proof, warnings, extra),
        notes,
    })
}
