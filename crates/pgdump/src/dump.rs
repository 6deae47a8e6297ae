//! `pg_dump` into the spool, with an exact fingerprint from the same snapshot.

use std::path::Path;

use manifest::child::stream_stdout;
use manifest::progress::Progress;
use manifest::spool::SpoolFile;
use manifest::time::Timestamp;
use manifest::{Artifact, Kind, Manifest};
use serde_json::Value;

use crate::conn::PgArgs;
use crate::error::Error;
use crate::stats::{collect, PgStats};

/// The `artifact.format` of a PostgreSQL dump.
pub const FORMAT: &str = "pg_dump/custom";

/// Non-template databases that accept connections, by name.
pub fn list_databases(pg: &PgArgs, maintenance_db: &str) -> Result<Vec<String>, Error> {
    let mut client = pg.connect(maintenance_db)?;
    let rows = client
        .query(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1",
            &[],
        )
        .map_err(Error::query("cannot list databases"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Dumps `database` into `spool_dir` and returns its manifest: `ok` with `artifact`,
/// `source` and `stats`, or `failed` with the reason (nothing is left in the spool then).
pub fn dump_database(
    pg: &PgArgs,
    database: &str,
    run: &str,
    spool_dir: &Path,
    progress: &dyn Progress,
) -> Manifest {
    let created_at = Timestamp::now();
    let id = Manifest::make_id(Kind::Postgres, database, &created_at);
    let mut manifest = Manifest::new(id, Kind::Postgres, created_at);
    manifest.run = Some(run.to_owned());
    manifest.source = Some(pg.to_json(database));
    if let Err(e) = dump_into(pg, database, spool_dir, progress, &mut manifest) {
        manifest.fail(e);
    }
    progress.finish();
    manifest
}

fn dump_into(
    pg: &PgArgs,
    database: &str,
    spool_dir: &Path,
    progress: &dyn Progress,
    manifest: &mut Manifest,
) -> Result<(), Error> {
    let mut client = pg.connect(database)?;
    let server_version: String = client
        .query_one("SHOW server_version", &[])
        .map_err(Error::query("cannot read the server version"))?
        .get(0);
    if let Some(Value::Object(source)) = &mut manifest.source {
        source.insert("server_version".into(), server_version.into());
    }
    // A repeatable-read transaction whose snapshot pg_dump imports: the counts below and the
    // dump then see exactly the same data, even while others write.
    let mut tx = client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(Error::query("cannot start the snapshot transaction"))?;
    let snapshot: String = tx
        .query_one("SELECT pg_export_snapshot()", &[])
        .map_err(Error::query("cannot export a snapshot"))?
        .get(0);

    let file_name = format!("{}.dump", manifest.id);
    let mut spool = SpoolFile::create(spool_dir, &file_name).map_err(|source| Error::Io {
        what: "cannot create the spool file".into(),
        source,
    })?;
    let mut cmd = pg.tool("pg_dump");
    cmd.env("PGDATABASE", database)
        .args(["--format=custom", "--no-password"])
        .arg(format!("--snapshot={snapshot}"));

    // Count rows on this connection while pg_dump streams on its own: the exporting
    // transaction stays open until both are done, as pg_dump's import requires.
    let (stats, dumped) = std::thread::scope(|scope| {
        let counter = scope.spawn(|| collect(&mut tx));
        let dumped = stream_stdout(&mut cmd, &mut spool, progress);
        (counter.join().expect("counting does not panic"), dumped)
    });
    dumped?;
    let stats: PgStats = stats?;
    tx.commit()
        .map_err(Error::query("cannot end the snapshot transaction"))?;

    let written = spool.commit().map_err(|source| Error::Io {
        what: "cannot finish the spool file".into(),
        source,
    })?;
    manifest.artifact = Some(Artifact {
        path: written.path,
        format: FORMAT.to_owned(),
        bytes: written.bytes,
        sha256: written.sha256,
        extra: Default::default(),
    });
    manifest.stats = Some(serde_json::to_value(stats).expect("stats serialize"));
    Ok(())
}
