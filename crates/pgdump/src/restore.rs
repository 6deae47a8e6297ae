//! `pg_restore` from a verified spool file, then proof: restored row counts against the
//! fingerprint taken at backup time.

use std::time::Instant;

use manifest::fingerprint::Fingerprint;
use manifest::sections::{Proof, Restore};
use manifest::time::Timestamp;
use manifest::{Kind, Manifest};
use serde_json::{json, Value};

use crate::conn::{database_exists, quote_ident, Pg};
use crate::error::Error;
use crate::stats::collect;

/// How to restore.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Database to restore into [default: the database the backup came from].
    pub target_db: Option<String>,
    /// Create the target database (it must not exist unless `clean` is set too).
    pub create: bool,
    /// Restore over an existing database: objects in the dump are dropped first.
    pub clean: bool,
    /// Do not restore ownership (when the original roles do not exist on this server).
    pub no_owner: bool,
    /// Database to connect to for CREATE DATABASE and existence checks.
    pub maintenance_db: String,
    /// pg_restore jobs for a database this restore creates (`pg_restore -j`); a restore
    /// over an existing database always runs in one transaction, in one job.
    pub jobs: u16,
}

/// What a restore did: where it went and its `restore` section, the proof included.
#[derive(Clone, Debug)]
pub struct Restored {
    /// The target database.
    pub target: String,
    /// The `restore` section (result `ok`, `mismatch` or `unverified`).
    pub section: Restore,
}

/// Restores the artifact of `manifest` and proves it against the manifest's fingerprint.
/// Returns `Err` (and leaves nothing behind) when the manifest is not restorable (the shared
/// check: failed, not PostgreSQL, file missing or checksum wrong), or the target exists
/// without `clean`, or is missing without `create`. Into a database it creates, the file's
/// SHA-256 is checked while the restore runs (the hash of a large dump is seconds of a
/// restore flow's critical path otherwise), a section at a time with each table's rows over
/// `jobs` COPY connections (see `sections.rs`); a damaged file then drops the database again.
/// Over an existing database the file is checked first: nothing is touched before. A
/// restore that ran returns its section, whose `result` says whether it was proven: the
/// caller concludes the record's status from it ([`toolkit::restorable::conclude`]).
pub fn restore(pg: &Pg, manifest: &Manifest, options: &RestoreOptions) -> Result<Restored, Error> {
    let refuse = |why: String| {
        Err(Error::Refused(format!(
            "refusing to restore {}: {why}",
            manifest.id
        )))
    };
    let artifact = match toolkit::restorable::check_record(manifest, &Kind::Postgres) {
        Ok(artifact) => artifact,
        Err(e) => return refuse(e.to_string()),
    };
    let source_db = manifest
        .source
        .as_ref()
        .and_then(|s| s.get("database"))
        .and_then(Value::as_str);
    let Some(target) = options.target_db.as_deref().or(source_db) else {
        return refuse("the manifest names no source database; pass --target-db".into());
    };

    let mut admin = pg.connect(&options.maintenance_db)?;
    let exists = database_exists(&mut admin, target)?;
    match (exists, options.create, options.clean) {
        (true, _, false) => {
            return refuse(format!(
                "database {target} exists; pass --clean to restore over it (the objects in the \
                 dump are dropped and recreated), or choose another --target-db"
            ))
        }
        (false, false, _) => {
            return refuse(format!(
                "database {target} does not exist; pass --create to create it"
            ))
        }
        _ => {}
    }
    let created = !exists;
    if !created {
        if let Err(e) = toolkit::restorable::check_file(artifact) {
            return refuse(e.to_string());
        }
    }
    let started_at = Timestamp::now();
    let clock = Instant::now();
    if created {
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE template0",
                quote_ident(target)
            ))
            .map_err(Error::query(format!("cannot create database {target}")))?;
    }

    // Parallel jobs cannot share one transaction. Into a database made for this restore
    // that costs nothing: a failure drops the whole database. Over an existing one, a
    // failure must change nothing, so it is one transaction and one job.
    let jobs = if created { options.jobs.max(1) } else { 1 };
    let drop_created = |admin: &mut postgres::Client| {
        // A database created for this restore that is empty, half-restored or restored
        // from a damaged file would only mislead, so it goes. (Over an existing database
        // --single-transaction rolled everything back.)
        if created {
            let _ = admin.batch_execute(&format!("DROP DATABASE {}", quote_ident(target)));
        }
    };
    let (ran, checked) = std::thread::scope(|scope| {
        let checking = created.then(|| scope.spawn(|| toolkit::restorable::check_file(artifact)));
        let ran = if jobs > 1 {
            crate::sections::restore(pg, target, &artifact.path, jobs, options.no_owner)
        } else {
            let mut cmd = crate::sections::pg_restore(pg, target, options.no_owner);
            cmd.arg("--single-transaction");
            if options.clean {
                cmd.args(["--clean", "--if-exists"]);
            }
            toolkit::child::run(cmd.arg(&artifact.path))
                .map(crate::sections::warnings_of)
                .map_err(Error::from)
        };
        let checked = checking.map_or(Ok(()), |h| h.join().expect("the hash does not panic"));
        (ran, checked)
    });
    // A damaged file is the cause of whatever pg_restore made of it.
    if let Err(e) = checked {
        drop_created(&mut admin);
        return refuse(e.to_string());
    }
    let warnings = match ran {
        Ok(warnings) => warnings,
        Err(e) => {
            drop_created(&mut admin);
            return Err(e);
        }
    };

    let mut restored_client = pg.connect(target)?;
    let restored = Fingerprint::Postgres(collect(&mut restored_client)?);
    let proof = Proof::new(manifest.fingerprint(), &restored);
    let mut extra = serde_json::Map::new();
    extra.insert("created".into(), json!(created));
    extra.insert("jobs".into(), json!(jobs));
    let section = Restore::proven(
        pg.to_json(target),
        started_at,
        clock,
        proof,
        warnings,
        extra,
    );
    Ok(Restored {
        target: target.to_owned(),
        section,
    })
}
