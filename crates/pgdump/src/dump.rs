//! `pg_dump` into the spool, with an exact fingerprint from the same snapshot.

use manifest::fingerprint::Fingerprint;
use manifest::sections::Writing;
use manifest::time::Timestamp;
use manifest::{Artifact, Kind, Manifest, Name};
use serde_json::Value;
use toolkit::child::{stream_stdout, ChildError, StreamOptions};
use toolkit::progress::Progress;
use toolkit::spool::{SpoolDir, SpoolFile};

use crate::conn::Pg;
use crate::error::Error;
use crate::stats::{collect_with, Collect, PgStats};

/// The `artifact.format` of a PostgreSQL dump.
pub const FORMAT: &str = "pg_dump/custom";

/// pg_dump's gzip level unless told otherwise. Level 1, not pg_dump's default 6: on the
/// float embeddings an AI platform stores, level 6 took 3.5x the time of level 1 for 10 %
/// less size (127 MB database: 23 s and 110 MB against 6.6 s and 121 MB); on text-heavy
/// data (pgbench) both give the same size in the same time.
pub const DEFAULT_COMPRESSION: u8 = 1;

/// How the dumps of one run are made.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    /// The run id every manifest carries.
    pub run: Name,
    /// pg_dump's gzip level, 0 (none) to 9.
    pub compress: u8,
}

/// A database `--all` is to back up, and why it cannot be when it cannot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The database name.
    pub name: String,
    /// Why this role cannot connect to it, if it cannot: it is reported as a failed
    /// backup, never left out silently.
    pub unreachable: Option<String>,
}

/// Every non-template database whose name matches none of the `exclude` patterns (`*`
/// any run of characters, `?` one), in name order, each with the reason this role cannot
/// connect to it, if any (no CONNECT privilege; the database does not allow
/// connections). A backup of "everything" that skipped a database without a word would
/// look complete and not be.
pub fn list_databases(
    pg: &Pg,
    maintenance_db: &str,
    exclude: &[String],
) -> Result<Vec<Listed>, Error> {
    let mut client = pg.connect(maintenance_db)?;
    let patterns: Vec<String> = exclude.iter().map(|p| glob_to_like(p)).collect();
    let rows = client
        .query(
            "SELECT datname, datallowconn, has_database_privilege(datname, 'CONNECT'),
                    current_user::text
             FROM pg_database
             WHERE NOT datistemplate AND NOT datname LIKE ANY($1)
             ORDER BY 1",
            &[&patterns],
        )
        .map_err(Error::query("cannot list databases"))?;
    Ok(rows
        .iter()
        .map(|row| {
            let (name, allows, may): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
            let role: String = row.get(3);
            let unreachable = match (allows, may) {
                (false, _) => Some(format!(
                    "database {name} does not allow connections (datallowconn is false), so it \
                     cannot be dumped; exclude it with --exclude-database, or ALTER DATABASE … \
                     ALLOW_CONNECTIONS true"
                )),
                (true, false) => Some(format!(
                    "role {role} has no CONNECT privilege on database {name}, so it cannot be \
                     dumped; GRANT CONNECT ON DATABASE … TO {role}, or exclude it with \
                     --exclude-database"
                )),
                (true, true) => None,
            };
            Listed { name, unreachable }
        })
        .collect())
}

/// Whether `database` exists (still: `--all` runs take a while, databases come and go).
pub fn database_exists(pg: &Pg, maintenance_db: &str, database: &str) -> Result<bool, Error> {
    crate::conn::database_exists(&mut pg.connect(maintenance_db)?, database)
}

/// The failed manifest of a database that could not be backed up at all (see
/// [`list_databases`]): the same id, run and source a backup would have had.
pub fn failed_database(pg: &Pg, database: &str, name: &Name, run: &Name, why: &str) -> Manifest {
    let mut manifest = new_manifest(pg, database, name, run);
    manifest.fail(why);
    manifest
}

fn new_manifest(pg: &Pg, database: &str, name: &Name, run: &Name) -> Manifest {
    let mut manifest = Manifest::new(Kind::Postgres, Some(name), Timestamp::now());
    manifest.run = Some(run.clone());
    manifest.source = Some(pg.to_json(database));
    manifest
}

/// The name each database goes by in ids, in the same order (see
/// [`manifest::name::distinct_names`], shared with the other producers).
pub fn id_names(databases: &[String]) -> Vec<Name> {
    manifest::name::distinct_names(databases)
}

/// A shell-style pattern as a LIKE pattern (`\` escapes LIKE's own `%` and `_`).
fn glob_to_like(glob: &str) -> String {
    let mut like = String::new();
    for c in glob.chars() {
        match c {
            '*' => like.push('%'),
            '?' => like.push('_'),
            '%' | '_' | '\\' => {
                like.push('\\');
                like.push(c);
            }
            c => like.push(c),
        }
    }
    like
}

/// Dumps `database` into `spool` and returns its manifest: `ok` with `artifact`, `source`
/// and `stats`, or `failed` with the reason (nothing is left in the spool then). `name` is
/// the database's name as it goes into the id (see [`Name::sanitize`]; `dump-pg --all`
/// keeps names that sanitize alike apart).
///
/// `announce` is given the `writing` notice of the dump (see
/// [`Manifest::writing_notice`]) once its spool file exists and before pg_dump writes to
/// it; it is not called when the dump fails before that.
///
/// The `stats` hold the exact counts and the catalog schema ([`dump_database_with`] adds
/// the content digests).
pub fn dump_database(
    pg: &Pg,
    database: &str,
    name: &Name,
    spool: &SpoolDir,
    options: &DumpOptions,
    progress: &dyn Progress,
    announce: &mut dyn FnMut(&Manifest),
) -> Manifest {
    dump_database_with(
        pg, database, name, spool, options, progress, announce, false,
    )
}

/// [`dump_database`]; with `content`, the stats also hold the per-table content digests
/// ([`crate::stats`]), taken in the same snapshot as the counts.
#[allow(clippy::too_many_arguments)]
pub fn dump_database_with(
    pg: &Pg,
    database: &str,
    name: &Name,
    spool: &SpoolDir,
    options: &DumpOptions,
    progress: &dyn Progress,
    announce: &mut dyn FnMut(&Manifest),
    content: bool,
) -> Manifest {
    let mut manifest = new_manifest(pg, database, name, &options.run);
    let what = Collect {
        content,
        schema: true,
    };
    let dumped = dump_into(
        pg,
        database,
        spool,
        options,
        progress,
        &mut manifest,
        announce,
        what,
    );
    if let Err(e) = dumped {
        manifest.fail(e);
    }
    progress.finish();
    manifest
}

#[allow(clippy::too_many_arguments)]
fn dump_into(
    pg: &Pg,
    database: &str,
    spool: &SpoolDir,
    options: &DumpOptions,
    progress: &dyn Progress,
    manifest: &mut Manifest,
    announce: &mut dyn FnMut(&Manifest),
    what: Collect,
) -> Result<(), Error> {
    let mut client = pg.connect(database)?;
    let server_version: String = client
        .query_one("SHOW server_version", &[])
        .map_err(Error::query("cannot read the server version"))?
        .get(0);
    if let Some(Value::Object(source)) = &mut manifest.source {
        source.insert("server_version".into(), server_version.into());
    }
    // A repeatable-read transaction whose snapshot pg_dump imports (`--snapshot`), and so
    // does the counting connection below: the counts and the dump see exactly the same
    // data, even while others write. This transaction only exports and waits: an error in
    // it would abort it and invalidate the snapshot before pg_dump could import it.
    let mut tx = snapshot_transaction(&mut client)?;
    let snapshot: String = tx
        .query_one("SELECT pg_export_snapshot()", &[])
        .map_err(Error::query("cannot export a snapshot"))?
        .get(0);

    let file_name =
        Name::new(format!("{}.dump", manifest.id)).expect("an id and an extension make a name");
    let mut file = SpoolFile::create(spool, &file_name).map_err(|source| Error::Io {
        what: "cannot create the spool file".into(),
        source,
    })?;
    announce(&manifest.writing_notice(&Writing {
        partial: file.partial_path().to_owned(),
        path: spool.file(&file_name),
        format: FORMAT.to_owned(),
        extra: Default::default(),
    }));
    let mut cmd = pg.tool("pg_dump");
    cmd.env("PGDATABASE", database)
        .args(["--format=custom", "--no-password"])
        .arg(format!("--compress={}", options.compress))
        .arg(format!("--snapshot={snapshot}"));

    // Count on a second connection while pg_dump streams: exact counts of big tables take
    // as long as reading them, so they run beside the dump, not before it.
    let (stats, dumped) = std::thread::scope(|scope| {
        let counter = scope.spawn(|| count_in_snapshot(pg, database, &snapshot, what));
        let sink_name = file.partial_path().display().to_string();
        let dumped = stream_stdout(
            &mut cmd,
            &mut file,
            &sink_name,
            StreamOptions::default(),
            progress,
        );
        (counter.join().expect("counting does not panic"), dumped)
    });
    dumped.map_err(|e| spool_full(e, spool))?;
    let stats: PgStats = stats?;
    tx.commit()
        .map_err(Error::query("cannot end the snapshot transaction"))?;

    let written = file.commit().map_err(|source| Error::Io {
        what: "cannot finish the spool file".into(),
        source,
    })?;
    let mut extra = serde_json::Map::new();
    extra.insert(
        "compression".into(),
        format!("gzip:{}", options.compress).into(),
    );
    manifest.artifact = Some(Artifact {
        path: written.path,
        format: FORMAT.to_owned(),
        bytes: written.bytes,
        sha256: written.sha256,
        extra,
    });
    manifest.set_fingerprint(&Fingerprint::Postgres(stats));
    Ok(())
}

/// A full disk while pg_dump writes is the spool's problem, not pg_dump's: say so, and
/// where (pg_dump itself dies of the kill that follows, which is not the cause).
fn spool_full(e: ChildError, spool: &SpoolDir) -> Error {
    match e.io_error() {
        Some(io) if io.kind() == std::io::ErrorKind::StorageFull => Error::Io {
            what: format!(
                "the spool {} ran out of space while pg_dump was writing the dump (free space \
                 there, or point STACKVAULT_SPOOL at a larger disk); the partial dump was removed",
                spool.path().display()
            ),
            source: std::io::Error::new(io.kind(), io.to_string()),
        },
        _ => e.into(),
    }
}

/// Exact row counts (and what `what` adds) in the exported `snapshot`, on a connection of
/// their own.
fn count_in_snapshot(
    pg: &Pg,
    database: &str,
    snapshot: &str,
    what: Collect,
) -> Result<PgStats, Error> {
    let mut client = pg.connect(database)?;
    let mut tx = snapshot_transaction(&mut client)?;
    // Snapshot ids are generated by the server (hex and dashes), safe to inline.
    tx.batch_execute(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'"))
        .map_err(Error::query("cannot import the dump's snapshot"))?;
    let stats = collect_with(&mut tx, what)?;
    tx.commit()
        .map_err(Error::query("cannot end the counting transaction"))?;
    Ok(stats)
}

/// A read-only repeatable-read transaction: one snapshot for all its statements, as the
/// export and the import of a snapshot need.
fn snapshot_transaction(client: &mut postgres::Client) -> Result<postgres::Transaction<'_>, Error> {
    client
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(Error::query("cannot start a repeatable-read transaction"))
}

#[cfg(test)]
mod tests {
    use super::{glob_to_like, id_names};

    #[test]
    fn table_of_id_names() {
        // (database names, their names in ids): a hash of the real name only where two
        // names would otherwise collide.
        let cases: [(&[&str], &[&str]); 5] = [
            (&["app", "crm"], &["app", "crm"]),
            (&["my db", "my-db"], &["my-db-7db90c", "my-db"]),
            (&["a/b", "a b"], &["a-b-c14cdd", "a-b-c8687a"]),
            (&["über"], &["-ber"]),
            (&["my db"], &["my-db"]),
        ];
        for (databases, want) in cases {
            let databases: Vec<String> = databases.iter().map(|d| d.to_string()).collect();
            let got: Vec<String> = id_names(&databases).iter().map(|n| n.to_string()).collect();
            assert_eq!(got, want, "{databases:?}");
        }
    }

    #[test]
    fn table_of_globs() {
        let cases = [
            ("sv_*", "sv\\_%"),
            ("app?", "app_"),
            ("100%", "100\\%"),
            ("plain", "plain"),
        ];
        for (glob, like) in cases {
            assert_eq!(glob_to_like(glob), like, "{glob}");
        }
    }
}
