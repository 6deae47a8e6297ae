//! `dump-neo4j`: Neo4j backups into the spool, one manifest per database — offline with
//! `neo4j-admin database dump` (`--method admin`) or online over the HTTP API
//! (`--method cypher`); `dump-neo4j restore`: restores from manifests, never leaving less
//! than before, and proves the counts.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use manifest::time::parse_duration;
use manifest::{Manifest, Name};
use neo4j::admin::{Admin, Hooks};
use neo4j::backup::{self, check_database_name, AdminBackup, CypherBackup};
use neo4j::client::{Client, Endpoint};
use neo4j::export::ExportOptions;
use neo4j::import::ImportOptions;
use neo4j::restore::{self, RestoreOptions};
use serde_json::Value;
use toolkit::cli::{self, CommonArgs, EXIT_CODES_HELP};
use toolkit::restorable::{conclude, Conclusion, ProofArgs};
use toolkit::retry::RetryPolicy;

const AFTER_HELP: &str = "\
Choosing the method:
  --method cypher (the default) reads the running database over the HTTP API, in pages of
  auto-commit requests: no downtime, but not one snapshot; writes during the export are
  reported (\"changed_during_export\" in the manifest's \"dump\" section, and a warning).
  Every property's type comes back (integers exact to 2^63-1, floats with NaN and
  Infinity, temporal values, durations, points), except that Neo4j 5.3's HTTP API returns
  a byte[] exactly like a long[]: such lists are restored as long[] (a warning names them).
  --method admin runs neo4j-admin database dump: an exact copy of the store, schema and
  transaction state included, loadable only into the same or a newer Neo4j. Community
  Edition cannot dump a running database, so the whole DBMS is stopped (--stop-cmd) and
  started again (--start-cmd, run even when the dump fails): bin/neo4j stop alone took 7-8 s
  on the reference machine, and the server answers 2-3 s after bin/neo4j start, so expect
  ~10 s of downtime plus the dump time; the manifest records the measured downtime_ms.
  Use cypher for frequent online backups, admin for exact ones in a maintenance window.

Configuration:
  NEO4J_URL [default: http://$NEO4J_HOST:$NEO4J_PORT, i.e. http://localhost:7474]: the HTTP
  API (Bolt URLs are refused); NEO4J_USER [default: neo4j] and NEO4J_PASSWORD, or the
  URL's user info, or NEO4J_AUTH (user/password, as the Docker image takes it). The
  password never reaches argv, a manifest or neo4j-admin. NEO4J_ADMIN [default: neo4j-admin]
  is split at spaces (docker exec neo4j neo4j-admin; docker compose run --rm neo4j
  neo4j-admin); never add --verbose to it, it corrupts the dump. Manifests go to stdout,
  one line each; messages and progress go to stderr.

Examples:
  dump-neo4j | vault-put > run.ndjson
  dump-neo4j --method admin --stop-cmd 'systemctl stop neo4j' --start-cmd 'systemctl start neo4j'
  NEO4J_ADMIN='docker compose run --rm neo4j neo4j-admin' dump-neo4j --method admin \\
      --with-system --stop-cmd 'docker compose stop neo4j' --start-cmd 'docker compose start neo4j'
  vault-get --latest --kind neo4j | dump-neo4j restore --stop-cmd '…' --start-cmd '…'";

const RESTORE_HELP: &str = "\
The target is never touched when a manifest is failed, of another kind, or its file's
SHA-256 differs, nor when an offline dump lacks the DZV1 magic or comes from a newer Neo4j
than the target's neo4j-admin (a dump does not load into an older Neo4j).

Offline dumps (neo4j/dump): neo4j-admin database load --overwrite-destination=true deletes
the database it replaces before it reads the dump, and the next start then silently
creates an empty one. So, with the DBMS stopped (--stop-cmd): 1. the current database is
dumped into the spool as a rollback copy (--no-rollback-copy skips it, for a database that
is lost anyway); 2. the backup is loaded from stdin; 3. if that fails, or a signal arrives,
the rollback copy is loaded back and the manifest says so; 4. the DBMS is started
(--start-cmd) and the counts are compared. The rollback copy is removed once the restore is
proven or undone, and kept (its path in the manifest) otherwise. --trial-load first loads
the backup into the scratch database stackvault-trial and runs neo4j-admin database check
on it, while the server still runs (Community never serves that name), then removes it from
Neo4j's data directory (--neo4j-data): a bad dump is caught without downtime.

Online exports (neo4j/cypher-jsonl+zstd): the schema, then the nodes and relationships in
batched UNWIND statements, into an empty database; --overwrite deletes what a non-empty one
holds first (there is no rollback copy: back it up before).

Each restore is proven: the node and relationship counts, per label and per type, and the
constraints and indexes are compared with the backup's. Each manifest is printed again
with a \"restore\" section (target, timings, the rollback copy, every difference by name;
then \"status\":\"failed\"). A manifest without readable stats (a system database dump, a
dump made while the server could not be counted) is \"unverified\" and fails unless
--accept-unverified is given.

Example:
  vault-get --id neo4j_neo4j_20250130_020000 | dump-neo4j restore --trial-load \\
      --neo4j-data /var/lib/neo4j/data --stop-cmd 'systemctl stop neo4j' --start-cmd 'systemctl start neo4j'";

/// Back up a Neo4j database into the spool, one manifest line each.
///
/// The database (--database, default neo4j) is exported online over the HTTP API
/// (--method cypher, the default) or dumped with neo4j-admin (--method admin), hashed with
/// SHA-256 as it is written, and described by a manifest line on stdout with its exact
/// counts (nodes per label, relationships per type) and schema.
#[derive(Debug, Parser)]
#[command(name = "dump-neo4j", version, args_conflicts_with_subcommands = true,
          after_long_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    backup: BackupArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Restore backups named by manifests on stdin, keeping a rollback copy, and prove their counts.
    ///
    /// The method comes from the manifest: neo4j-admin database load for --method admin
    /// dumps, the HTTP API for --method cypher exports.
    #[command(after_long_help = format!("{RESTORE_HELP}\n\n{EXIT_CODES_HELP}"))]
    Restore(RestoreArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    /// Online, over the HTTP API: no downtime, read-committed pages.
    Cypher,
    /// Offline, neo4j-admin database dump: exact, the DBMS stopped around it.
    Admin,
}

/// How to reach the server and its tools (backup and restore alike).
#[derive(Debug, Args)]
struct ServerArgs {
    /// The HTTP API [default: http://$NEO4J_HOST:$NEO4J_PORT, else http://localhost:7474].
    #[arg(long, env = "NEO4J_URL", value_name = "URL", hide_env_values = true)]
    url: Option<String>,

    /// The neo4j-admin command, split at spaces (e.g. "docker exec neo4j neo4j-admin").
    #[arg(
        long,
        env = "NEO4J_ADMIN",
        value_name = "COMMAND",
        default_value = "neo4j-admin"
    )]
    neo4j_admin: String,

    /// Shell command that stops the DBMS before neo4j-admin runs (Community cannot stop one database).
    #[arg(long, env = "STACKVAULT_NEO4J_STOP_CMD", value_name = "COMMAND")]
    stop_cmd: Option<String>,

    /// Shell command that starts the DBMS again; runs even when the dump or load failed.
    #[arg(long, env = "STACKVAULT_NEO4J_START_CMD", value_name = "COMMAND")]
    start_cmd: Option<String>,

    /// How long to wait for the HTTP API to answer after --start-cmd.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    start_timeout: Duration,

    /// Longest time for one HTTP request, its answer included.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    http_timeout: Duration,
}

#[derive(Debug, Args)]
struct BackupArgs {
    /// How to back up: cypher (online, HTTP API) or admin (offline, neo4j-admin).
    #[arg(long, value_enum, default_value_t = Method::Cypher)]
    method: Method,

    /// Database to back up.
    #[arg(
        long,
        env = "NEO4J_DATABASE",
        value_name = "NAME",
        default_value = "neo4j"
    )]
    database: String,

    /// With --method admin: dump the system database (users, roles) too, in the same stop; its restore cannot be proven.
    #[arg(long)]
    with_system: bool,

    /// With --method cypher: nodes or relationships per request.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    page_size: u64,

    /// Id of this backup run, shared by all its manifests [default: run_YYYYMMDD_HHMMSS].
    #[arg(long, env = "STACKVAULT_RUN", value_name = "ID")]
    run: Option<Name>,

    #[command(flatten)]
    server: ServerArgs,

    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    /// Database to restore into [default: the database the backup came from].
    #[arg(long, value_name = "NAME")]
    database: Option<String>,

    /// Online exports: delete what a non-empty target holds (nodes, relationships, schema) first.
    #[arg(long)]
    overwrite: bool,

    /// Offline dumps: load without dumping the current database first (it is lost anyway).
    #[arg(long)]
    no_rollback_copy: bool,

    /// Offline dumps: load into the scratch database stackvault-trial and check it first, while the server runs.
    #[arg(long)]
    trial_load: bool,

    /// Neo4j's data directory, holding databases/ and transactions/ (for --trial-load) [default: $NEO4J_HOME/data].
    #[arg(long, value_name = "DIR")]
    neo4j_data: Option<PathBuf>,

    /// Online exports: rows per UNWIND statement.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    batch_size: u64,

    #[command(flatten)]
    proof: ProofArgs,

    #[command(flatten)]
    server: ServerArgs,

    #[command(flatten)]
    common: CommonArgs,
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
        None => backup(cli.backup),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn client(server: &ServerArgs) -> anyhow::Result<Client> {
    let endpoint = Endpoint::resolve(server.url.as_deref(), &env)?;
    let retry = RetryPolicy {
        give_up_after: Duration::from_secs(5 * 60),
        ..RetryPolicy::default()
    };
    Ok(Client::new(endpoint, server.http_timeout, retry)?)
}

fn hooks(server: &ServerArgs) -> Hooks {
    let some = |c: &Option<String>| c.clone().filter(|c| !c.trim().is_empty());
    Hooks {
        stop: some(&server.stop_cmd),
        start: some(&server.start_cmd),
    }
}

/// Says what a backup became: failed (exit 1 at the end), or done, with its warnings.
fn report(m: &Manifest) {
    let db = m
        .source
        .as_ref()
        .and_then(|s| s.get("database"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let dump = m.extra.get("dump");
    for w in dump
        .and_then(|d| d.get("warnings"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        cli::info(format!(
            "warning: {}: {}",
            cli::quote(db),
            w.as_str().unwrap_or_default()
        ));
    }
    if let Some(error) = &m.error {
        cli::record_failed(format!("backup of {} failed: {error}", cli::quote(db)));
        return;
    }
    let mut line = format!("backed up {} as {}", cli::quote(db), m.id);
    if let Some(a) = &m.artifact {
        line.push_str(&format!(" ({})", toolkit::progress::format_bytes(a.bytes)));
    }
    if let Ok(manifest::Fingerprint::Neo4j(s)) = m.fingerprint() {
        line.push_str(&format!(
            ": {} nodes, {} relationships",
            s.nodes, s.relationships
        ));
    }
    if let Some(ms) = dump
        .and_then(|d| d.get("downtime_ms"))
        .and_then(Value::as_u64)
    {
        line.push_str(&format!("; the DBMS was down {:.1} s", ms as f64 / 1000.0));
    }
    cli::info(line);
}

fn backup(args: BackupArgs) -> anyhow::Result<()> {
    check_database_name(&args.database)?;
    let hooks = hooks(&args.server);
    if args.method == Method::Cypher {
        if args.with_system {
            anyhow::bail!(
                "--with-system needs --method admin: users and roles live in the system database, \
                 which only neo4j-admin can dump"
            );
        }
        if hooks.stop.is_some() || hooks.start.is_some() {
            anyhow::bail!(
                "--stop-cmd and --start-cmd are for --method admin; --method cypher reads the \
                 running database"
            );
        }
    }
    let run = args.run.clone().unwrap_or_else(|| {
        Name::new(format!(
            "run_{}",
            manifest::time::Timestamp::now().compact()
        ))
        .expect("a valid name")
    });
    let spool = args.common.spool_dir()?;
    let style = args.common.progress_style();
    let client = client(&args.server)?;
    let mut out = cli::manifests_out();
    match args.method {
        Method::Cypher => {
            let m = backup::cypher(&CypherBackup {
                client: &client,
                database: &args.database,
                run: &run,
                spool: &spool,
                options: ExportOptions {
                    page_size: args.page_size,
                },
                style,
            });
            report(&m);
            cli::emit(&mut out, &m)?;
        }
        Method::Admin => {
            let admin = Admin::new(&args.server.neo4j_admin)?;
            if hooks.stop.is_some() && hooks.start.is_none() {
                cli::info("warning: --stop-cmd without --start-cmd: the DBMS stays stopped after the dump");
            }
            let mut databases = vec![args.database.clone()];
            if args.with_system && args.database != "system" {
                databases.push("system".into());
            }
            let outcome = backup::admin(&AdminBackup {
                admin: &admin,
                client: Some(&client),
                databases: &databases,
                hooks: &hooks,
                run: &run,
                spool: &spool,
                style,
                start_timeout: args.server.start_timeout,
            });
            for m in &outcome.manifests {
                report(m);
                cli::emit(&mut out, m)?;
            }
            if let Some(e) = outcome.start_failed {
                cli::record_failed(format!(
                    "{e}: the DBMS may still be stopped; start it by hand"
                ));
            }
        }
    }
    cli::stop_if_interrupted()
}

fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    if let Some(db) = &args.database {
        check_database_name(db)?;
    }
    let data_dir = args
        .neo4j_data
        .clone()
        .or_else(|| env("NEO4J_HOME").map(|h| PathBuf::from(h).join("data")));
    if args.trial_load && data_dir.is_none() {
        anyhow::bail!(
            "--trial-load removes its scratch database from Neo4j's data directory afterwards: pass \
             --neo4j-data DIR (or set NEO4J_HOME)"
        );
    }
    let options = RestoreOptions {
        database: args.database.clone(),
        overwrite: args.overwrite,
        no_rollback_copy: args.no_rollback_copy,
        trial_load: args.trial_load,
        data_dir,
        import: ImportOptions {
            batch_size: args.batch_size as usize,
        },
        start_timeout: args.server.start_timeout,
    };
    let admin = Admin::new(&args.server.neo4j_admin)?;
    let client = client(&args.server)?;
    let hooks = hooks(&args.server);
    let spool = args.common.spool_dir()?;
    let env = restore::Env {
        admin: &admin,
        client: Some(&client),
        hooks: &hooks,
        spool: &spool,
        style: args.common.progress_style(),
    };
    let mut out = cli::manifests_out();
    let mut restored_one = false;
    for manifest in cli::manifests_in() {
        let manifest = manifest?;
        if args.database.is_some() && restored_one {
            anyhow::bail!(
                "--database names one database but more than one manifest came in; restore them \
                 one at a time (manifest {} was not restored)",
                manifest.id
            );
        }
        match restore::restore(&manifest, &options, &env) {
            Ok(restored) => {
                restored_one = true;
                for note in &restored.notes {
                    cli::info(note);
                }
                for w in &restored.section.warnings {
                    cli::info(format!("warning: {w}"));
                }
                let mut out_manifest = manifest.clone();
                let what = format!("{} into {}", manifest.id, restored.target);
                match conclude(&mut out_manifest, &restored.section, &args.proof, &what) {
                    Conclusion::Proven(message) => cli::info(message),
                    Conclusion::Accepted(message) => cli::info(format!("warning: {message}")),
                    Conclusion::Failed(message) => cli::record_failed(message),
                }
                cli::emit(&mut out, &out_manifest)?;
            }
            Err(e) => cli::emit_failed(&mut out, manifest, cli::chain(&e))?,
        }
        cli::stop_if_interrupted()?;
    }
    Ok(())
}
