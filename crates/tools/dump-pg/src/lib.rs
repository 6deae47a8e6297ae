//! `dump-pg`: PostgreSQL backups with `pg_dump` into the spool, one manifest per database;
//! `dump-pg restore`: restores from manifests with `pg_restore` and proves the row counts.

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use manifest::{Manifest, Name};
use pgdump::conn::PgArgs;
use pgdump::dump::Listed;
use pgdump::restore::RestoreOptions;
use toolkit::cli::{self, CommonArgs, EXIT_CODES_HELP};
use toolkit::progress;
use toolkit::restorable::{conclude, Conclusion, ProofArgs};

const AFTER_HELP: &str = "\
Examples:
  dump-pg --dbname app | vault-put > run.ndjson
  dump-pg --all --run nightly_20250130 | vault-put --vault s3://backups/stack
  vault-get --latest --kind postgres | dump-pg restore --target-db app_restored --create

Connections follow libpq: --dbname (or PGDATABASE) may be a URI or a connection string
(postgresql://user@host:5432/app?sslmode=verify-full, \"host=db dbname=app sslmode=require\"),
whose settings override the flags; the rest comes from PGHOST, PGPORT, PGUSER, PGSSLMODE
(disable, allow, prefer [default], require, verify-ca, verify-full), PGSSLROOTCERT [default:
~/.postgresql/root.crt], PGSSLCERT/PGSSLKEY, PGCONNECT_TIMEOUT [default: 15] and PGAPPNAME.
The password comes from PGPASSWORD, the URI, or libpq's password file (~/.pgpass,
PGPASSFILE), never from a flag. pg_dump and pg_restore get the same settings through their
environment, never their argv; manifests record only the database name, host, port and
sslmode. Manifests go to stdout, one line each; messages and progress go to stderr.";

/// Back up PostgreSQL databases with pg_dump into the spool, one manifest line each.
///
/// Each database is dumped in pg_dump's custom format into the spool directory, hashed
/// with SHA-256 as it is written, and described by one manifest line on stdout, with the
/// exact row count of every table taken from the dump's own snapshot.
#[derive(Debug, Parser)]
#[command(name = "dump-pg", version, args_conflicts_with_subcommands = true,
          after_long_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    backup: BackupArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Restore backups named by manifests on stdin and prove their row counts.
    ///
    /// Each file's SHA-256 is verified: before anything is touched when restoring over an
    /// existing database, alongside pg_restore into one it creates (a damaged file drops
    /// it again). After pg_restore the restored row counts are compared with those
    /// recorded at backup time.
    #[command(after_long_help = format!("{RESTORE_HELP}\n\n{EXIT_CODES_HELP}"))]
    Restore(RestoreArgs),
}

const RESTORE_HELP: &str = "\
No restore is left behind when a manifest is failed, of another kind, its file is missing
or its SHA-256 differs. An existing target needs --clean; a missing one needs --create.
Over an existing database the file is hashed first and pg_restore runs in one transaction:
a failed restore changes nothing. Into a database it creates, the file is hashed while the
restore runs in pg_dump's three sections: the tables, then every table's rows spread over
--jobs COPY connections (default 4; one large table loads on several server cores), then
the indexes and constraints by pg_restore --jobs. A damaged file or a failed restore drops
that database.

Each restore is proven: the row count of every table and the number of large objects are
compared with those counted in the dump's own snapshot at backup time. Each manifest is
printed again with a \"restore\" section: target, timings, items checked, and every
difference by name (then \"status\":\"failed\"). A manifest without readable stats cannot
be proven: its restore is \"unverified\" and fails (exit 1) unless --accept-unverified is
given.

Example:
  vault-get --id postgres_app_20250130_020000 | dump-pg restore --target-db app_check --create";

#[derive(Debug, Args)]
struct BackupArgs {
    /// Database to back up: a name, or a connection URI or string (its password never reaches a manifest, a message or pg_dump's argv).
    #[arg(
        long,
        short = 'd',
        env = "PGDATABASE",
        value_name = "NAME|URI",
        // The value may hold a password: never show it in --help.
        hide_env_values = true
    )]
    dbname: Option<String>,

    /// Back up every database (templates excluded), one manifest each; one this role cannot connect to is reported as a failed manifest.
    #[arg(long)]
    all: bool,

    /// With --all: skip databases whose name matches PATTERN (* and ? wildcards); repeatable.
    #[arg(long, value_name = "PATTERN", requires = "all")]
    exclude_database: Vec<String>,

    /// Database to connect to for --all's list of databases.
    #[arg(long, value_name = "NAME", default_value = "postgres")]
    maintenance_db: String,

    /// Print a "writing" notice for each dump as it starts, before its final record, so
    /// that a vault-put downstream uploads while pg_dump still writes (the spool file stays
    /// the durable copy until the upload is verified). Meant for `| vault-put`; other tools
    /// pass notices on, vault-ledger ignores them.
    #[arg(long)]
    announce: bool,

    /// pg_dump's gzip level, 0 (none) to 9. The default 1 is ~3.5x faster than pg_dump's
    /// own default (6) on float embeddings, for ~10 % more size; text-heavy data comes out
    /// the same size either way.
    #[arg(long, short = 'Z', value_name = "LEVEL", default_value_t = pgdump::dump::DEFAULT_COMPRESSION, value_parser = clap::value_parser!(u8).range(0..=9))]
    compress: u8,

    /// Also record an order-independent digest of every table's rows in the stats (md5 of
    /// each row's text, summed; computed by the server in the scan that counts, in the
    /// dump's snapshot), so that integrity-check can tell a changed row from an unchanged
    /// count. It reads and hashes every row once more, beside pg_dump: on a 166 MB database
    /// of embeddings it made the dump 20 % slower, hence a flag (see the README).
    #[arg(long)]
    content_digest: bool,

    /// Id of this backup run, shared by all its manifests [default: run_YYYYMMDD_HHMMSS].
    #[arg(long, env = "STACKVAULT_RUN", value_name = "ID")]
    run: Option<Name>,

    #[command(flatten)]
    pg: PgArgs,

    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    /// Database to restore into [default: the database the backup came from].
    #[arg(long, value_name = "NAME")]
    target_db: Option<String>,

    /// Create the target database (CREATE DATABASE … TEMPLATE template0).
    #[arg(long)]
    create: bool,

    /// Restore over an existing database: objects in the dump are dropped and recreated.
    #[arg(long)]
    clean: bool,

    /// Skip ownership and privileges (when the original roles do not exist here).
    #[arg(long)]
    no_owner: bool,

    /// Database to connect to for CREATE DATABASE and existence checks.
    #[arg(long, value_name = "NAME", default_value = "postgres")]
    maintenance_db: String,

    /// Parallel COPY connections and pg_restore jobs when the restore creates its database
    /// (--create): a failure drops that database, so nothing half-restored stays. 1 restores
    /// with one pg_restore in one transaction, as a restore over an existing database
    /// (--clean) always does.
    // Why 4, not the machine's cores: the connections and jobs wait for the server part of
    // the time, and the rows stream from one pg_restore that inflates them on a core of its
    // own. Measured on 2 cores, a 248 MB AI-shaped database, interleaved: 4 connections
    // took 7.18-7.25 s, 3 took 7.20-7.22 s, 2 took 7.85-8.02 s (pg_restore -j2: 9.2 s).
    #[arg(long, short = 'j', value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,

    #[command(flatten)]
    proof: ProofArgs,

    #[command(flatten)]
    pg: PgArgs,
}

/// The command line, for `--help`, man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the tool.
pub fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let cli = Cli::from_arg_matches(matches)?;
    match cli.command {
        Some(Sub::Restore(args)) => restore(args),
        None => {
            // clap counts PGDATABASE as given, so a conflict declared to clap would refuse
            // --all wherever PGDATABASE is set; only the flag itself conflicts.
            let flag =
                matches.value_source("dbname") == Some(clap::parser::ValueSource::CommandLine);
            if cli.backup.all && flag {
                anyhow::bail!(
                    "--dbname and --all exclude each other (with --all, PGDATABASE may hold the \
                     connection settings, as a URI, and its database name is ignored)"
                );
            }
            backup(cli.backup)
        }
    }
}

fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let dbname = args.dbname.as_deref().filter(|d| !d.is_empty());
    if !args.all && dbname.is_none() {
        anyhow::bail!("no database named: pass --dbname NAME (or set PGDATABASE), or --all");
    }
    // Only the database name of a URI is used from here on (ids, manifests, messages).
    // With --all, a URI in PGDATABASE still supplies the connection settings (as
    // pg_dumpall's --dbname does), and its database name is not used.
    let pg = args.pg.resolve(dbname)?;
    let databases = if args.all {
        pgdump::dump::list_databases(&pg, &args.maintenance_db, &args.exclude_database)?
    } else {
        vec![Listed {
            name: pg.dbname().to_owned(),
            unreachable: None,
        }]
    };
    let run = args.run.clone().unwrap_or_else(|| {
        Name::new(format!(
            "run_{}",
            manifest::time::Timestamp::now().compact()
        ))
        .expect("a valid name")
    });
    let options = pgdump::dump::DumpOptions {
        run: run.clone(),
        compress: args.compress,
    };
    let spool = args.common.spool_dir()?;
    let style = args.common.progress_style();
    let mut out = cli::manifests_out();
    let all_names: Vec<String> = databases.iter().map(|d| d.name.clone()).collect();
    let names = pgdump::dump::id_names(&all_names);
    for (
        Listed {
            name: database,
            unreachable,
        },
        name,
    ) in databases.into_iter().zip(&names)
    {
        if name.as_str() != database {
            if let Some(other) = all_names
                .iter()
                .find(|d| **d != database && Name::sanitize(d) == Name::sanitize(&database))
            {
                cli::info(format!(
                    "databases {} and {} would get the same id name; {} is named {name} in ids",
                    cli::quote(&database),
                    cli::quote(other),
                    cli::quote(&database)
                ));
            }
        }
        let mut announced = false;
        let manifest = match unreachable {
            Some(why) => pgdump::dump::failed_database(&pg, &database, name, &run, &why),
            None => {
                let progress =
                    progress::for_stderr(style, &format!("pg_dump {}", cli::quote(&database)));
                let mut announce = |notice: &Manifest| {
                    if args.announce {
                        // A notice lost to a closed stdout is reported with the final record.
                        announced = cli::emit(&mut out, notice).is_ok();
                    }
                };
                pgdump::dump::dump_database_with(
                    &pg,
                    &database,
                    name,
                    &spool,
                    &options,
                    &*progress,
                    &mut announce,
                    args.content_digest,
                )
            }
        };
        // A dropped database is skipped — unless its notice went out: then a consumer is
        // waiting for its outcome.
        if args.all
            && !announced
            && !manifest.is_ok()
            && !pgdump::dump::database_exists(&pg, &args.maintenance_db, &database)?
        {
            // Dropped between the listing and its turn: nothing was lost, nothing to report.
            cli::info(format!(
                "skipped {}: it was dropped during the run",
                cli::quote(database)
            ));
            continue;
        }
        if let Some(error) = &manifest.error {
            cli::record_failed(format!(
                "backup of {} failed: {error}",
                cli::quote(database)
            ));
        }
        cli::emit(&mut out, &manifest)?;
        cli::stop_if_interrupted()?;
    }
    Ok(())
}

fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let options = RestoreOptions {
        target_db: args.target_db.clone(),
        create: args.create,
        clean: args.clean,
        no_owner: args.no_owner,
        maintenance_db: args.maintenance_db.clone(),
        jobs: args.jobs,
    };
    let pg = args.pg.resolve(None)?;
    let mut out = cli::manifests_out();
    let mut restored_into_target = false;
    for manifest in cli::manifests_in() {
        let manifest = manifest?;
        if options.target_db.is_some() && restored_into_target {
            anyhow::bail!(
                "--target-db names one database but more than one manifest came in; \
                 restore them one at a time (manifest {} was not restored)",
                manifest.id
            );
        }
        match pgdump::restore::restore(&pg, &manifest, &options) {
            Ok(restored) => {
                restored_into_target = true;
                let mut out_manifest = manifest.clone();
                let what = format!("{} into {}", manifest.id, restored.target);
                match conclude(&mut out_manifest, &restored.section, &args.proof, &what) {
                    Conclusion::Proven(message) => cli::info(message),
                    Conclusion::Accepted(message) => cli::info(format!("warning: {message}")),
                    Conclusion::Failed(message) => cli::record_failed(message),
                }
                cli::emit(&mut out, &out_manifest)?;
            }
            Err(e) => {
                cli::emit_failed(&mut out, manifest, cli::chain(&e))?;
            }
        }
        cli::stop_if_interrupted()?;
    }
    Ok(())
}
