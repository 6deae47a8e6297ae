//! `pg_restore` from a verified spool file, then proof: restored row counts against the
//! fingerprint taken at backup time.

use std::collections::BTreeMap;
use std::time::Instant;

use manifest::time::Timestamp;
use manifest::{Kind, Manifest, Status};
use serde_json::{json, Value};

use crate::conn::{database_exists, dbname_conninfo, quote_ident, Pg};
use crate::error::Error;
use crate::stats::{collect, PgStats};

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
}

/// Restores the artifact of `manifest` and returns the manifest with a `restore` section.
/// Returns `Err` (and touches nothing) when the manifest is not restorable: failed, not
/// PostgreSQL, file missing or checksum wrong, target exists without `clean`, target
/// missing without `create`. A restore that ran but whose counts differ returns `Ok` with
/// `status: failed` and the differing tables in `restore`.
pub fn restore(pg: &Pg, manifest: &Manifest, options: &RestoreOptions) -> Result<Manifest, Error> {
    let refuse = |why: String| {
        Err(Error::Refused(format!(
            "refusing to restore {}: {why}",
            manifest.id
        )))
    };
    if manifest.status != Status::Ok {
        let why = manifest.error.as_deref().unwrap_or("no reason given");
        return refuse(format!("the backup is {:?} ({why})", manifest.status).to_lowercase());
    }
    if manifest.kind != Kind::Postgres {
        return refuse(format!(
            "it is a {} backup; use the {} tool",
            manifest.kind, manifest.kind
        ));
    }
    let artifact = manifest.require_artifact().map_err(Error::Refused)?;
    match manifest::sha256::hash_file(&artifact.path) {
        Err(e) => return refuse(format!("cannot read {}: {e}", artifact.path.display())),
        Ok((bytes, sha)) if (bytes, sha) != (artifact.bytes, artifact.sha256) => {
            return refuse(format!(
                "checksum mismatch: {} is {bytes} bytes with SHA-256 {sha}, the manifest says {} \
                 bytes with {}; the file is damaged, fetch it again with vault-get",
                artifact.path.display(),
                artifact.bytes,
                artifact.sha256
            ))
        }
        Ok(_) => {}
    }
    let source_db = manifest
        .source
        .as_ref()
        .and_then(|s| s.get("database"))
        .and_then(Value::as_str);
    let Some(target) = options.target_db.as_deref().or(source_db) else {
        return refuse("the manifest names no source database; pass --target-db".into());
    };
    let expected: Option<PgStats> = manifest
        .stats
        .clone()
        .and_then(|s| serde_json::from_value(s).ok());

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
    let started_at = Timestamp::now();
    let clock = Instant::now();
    let created = !exists;
    if created {
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE template0",
                quote_ident(target)
            ))
            .map_err(Error::query(format!("cannot create database {target}")))?;
    }

    let mut cmd = pg.tool("pg_restore");
    cmd.args(["--exit-on-error", "--single-transaction", "--no-password"])
        .arg(format!("--dbname={}", dbname_conninfo(target)));
    if options.clean {
        cmd.args(["--clean", "--if-exists"]);
    }
    if options.no_owner {
        cmd.args(["--no-owner", "--no-privileges"]);
    }
    cmd.arg(&artifact.path);
    let warnings = match toolkit::child::run(&mut cmd) {
        Ok(warnings) => warnings,
        Err(e) => {
            // --single-transaction rolled everything back; a database we created for this
            // restore is now empty and would only mislead, so it goes too.
            if created {
                let _ = admin.batch_execute(&format!("DROP DATABASE {}", quote_ident(target)));
            }
            return Err(e.into());
        }
    };

    let mut restored_client = pg.connect(target)?;
    let restored = collect(&mut restored_client)?;
    let mut out = manifest.clone();
    let comparison = compare(expected.as_ref(), &restored);
    let mut section = json!({
        "target": pg.to_json(target),
        "created": created,
        "started_at": started_at,
        "finished_at": Timestamp::now(),
        "duration_ms": clock.elapsed().as_millis() as u64,
        "tables_checked": comparison.checked,
        "result": if comparison.differing.is_empty() { "ok" } else { "mismatch" },
    });
    if !comparison.differing.is_empty() {
        section["differing"] = json!(comparison.differing);
        out.fail(format!(
            "restored data differs from the backup in {} table(s): {}",
            comparison.differing.len(),
            comparison
                .differing
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if expected.is_none() {
        section["result"] = json!("unverified");
        section["note"] = json!("the manifest has no stats to compare with");
    }
    if !warnings.is_empty() {
        section["warnings"] = json!(warnings);
    }
    out.restore = Some(section);
    Ok(out)
}

struct Comparison {
    checked: usize,
    differing: BTreeMap<String, Value>,
}

/// Tables of the fingerprint whose restored count differs (or that are missing), and the
/// large-object count. Extra tables in the target are not a difference: `--clean` keeps
/// objects that are not in the dump.
fn compare(expected: Option<&PgStats>, restored: &PgStats) -> Comparison {
    let mut differing = BTreeMap::new();
    let Some(expected) = expected else {
        return Comparison {
            checked: 0,
            differing,
        };
    };
    for (table, &want) in &expected.tables {
        match restored.tables.get(table) {
            Some(&got) if got == want => {}
            Some(&got) => {
                differing.insert(table.clone(), json!({"expected": want, "actual": got}));
            }
            None => {
                differing.insert(table.clone(), json!({"expected": want, "actual": null}));
            }
        }
    }
    if expected.large_objects != restored.large_objects {
        differing.insert(
            "(large objects)".into(),
            json!({"expected": expected.large_objects, "actual": restored.large_objects}),
        );
    }
    Comparison {
        checked: expected.tables.len(),
        differing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(tables: &[(&str, u64)], lo: u64) -> PgStats {
        PgStats {
            tables: tables.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            large_objects: lo,
        }
    }

    #[test]
    fn table_of_comparisons() {
        // (expected, restored, differing tables)
        let cases: [(PgStats, PgStats, &[&str]); 5] = [
            (
                stats(&[("public.a", 3)], 0),
                stats(&[("public.a", 3)], 0),
                &[],
            ),
            (
                stats(&[("public.a", 3)], 0),
                stats(&[("public.a", 2)], 0),
                &["public.a"],
            ),
            (stats(&[("public.a", 3)], 0), stats(&[], 0), &["public.a"]),
            (
                stats(&[("public.a", 3)], 0),
                stats(&[("public.a", 3), ("x.extra", 9)], 0),
                &[],
            ),
            (stats(&[], 1), stats(&[], 0), &["(large objects)"]),
        ];
        for (expected, restored, want) in cases {
            let got = compare(Some(&expected), &restored);
            let keys: Vec<_> = got.differing.keys().map(String::as_str).collect();
            assert_eq!(keys, want);
        }
    }
}
