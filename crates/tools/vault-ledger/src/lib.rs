//! `vault-ledger`: records every manifest that passes through in the ledger (the seed's
//! `backup_history` in PostgreSQL) and passes it on unchanged; `init`, `list`, `show`,
//! `check` (the seed's alerts), `metrics` (Prometheus) and `resync` (from the vault).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use ledger::alerts::Thresholds;
use ledger::pending::Pending;
use ledger::query::{Backup, Filter};
use ledger::Ledger;
use manifest::time::{human_age, parse_duration, Timestamp};
use manifest::{Kind, Name, Status};
use toolkit::cli::{self, quote};
use toolkit::http::{Body, ClientOptions, HttpClient, RequestTimeout};
use toolkit::progress::format_bytes;
use vault::args::VaultArgs;

const CONNECTION_HELP: &str = "\
The ledger is the PostgreSQL database named by LEDGER_URL, a libpq URI or connection string
(postgresql://stackvault@ledger.internal/backups?sslmode=verify-full), over libpq's
environment (PGHOST, PGPORT, PGUSER, PGDATABASE, PGSSLMODE, PGSSLROOTCERT, PGPASSWORD, the
password file ~/.pgpass); without LEDGER_URL, the environment alone. It may live in another
PostgreSQL than the one backed up. LEDGER_URL is read from the environment only, never a
flag: it may hold a password, and no password ever reaches a message, --help or the ledger.";

const AFTER_HELP: &str = "\
Without a subcommand, vault-ledger reads manifests on stdin, records each in the ledger and
writes it on to stdout unchanged. Recording is idempotent: the same manifest twice is one
row. A later status of the same id updates its row (failed < success < pruned: a rerun that
succeeded replaces a failure, vault-prune's pruned marks a success, nothing moves back); a
manifest with a restore section adds a restore, one with a checks section an integrity
check. Kinds and statuses this version does not know are recorded as they are.

An unreachable or failing ledger never swallows a backup: every manifest still goes to
stdout, one line on stderr says why it was not recorded, the tool exits 1, and each
unrecorded manifest is kept in the --spool-dir directory. The next vault-ledger that reaches
the ledger (any run, or vault-ledger resync) records those first.

The table is the seed's backup_history, exactly, so the seed's SQL runs unchanged: status
is success, failed or pruned, backup_type the kind, timestamp the backup time (UTC),
checksum the SHA-256, backup_id the manifest id. Side tables hold the rest: backup_manifest
(run, source, vault URL, stats, the whole manifest as jsonb), backup_restore, backup_check_run
and backup_check, and backup_copy (copies in other vaults: a vault-copy manifest adds one and
leaves the backup's own record as it is). Create them with vault-ledger init.";

const RECORD_EXIT: &str = "\
Exit status:
  0  every manifest was recorded and passed on
  1  at least one manifest was not recorded (it was passed on, and kept in the spool directory)
  2  fatal: bad usage, a malformed input line, or SIGINT/SIGTERM (lines already written
     stay valid)";

/// Record manifests in the backup ledger (PostgreSQL) and pass them on.
///
/// Reads manifests on stdin, records each in the ledger's backup_history table and writes
/// it on to stdout unchanged; subcommands query the ledger, check the seed's alerts, write
/// Prometheus metrics, and rebuild the ledger from the vault.
#[derive(Debug, Parser)]
#[command(name = "vault-ledger", version, args_conflicts_with_subcommands = true,
          after_long_help = format!("{AFTER_HELP}\n\n{CONNECTION_HELP}\n\n{RECORD_EXIT}\n\n{EXAMPLES}"))]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,

    #[command(flatten)]
    spool: SpoolArgs,
}

const EXAMPLES: &str = "\
Examples:
  vault-ledger init
  dump-pg --all | vault-put | vault-ledger > run.ndjson
  vault-prune --older-than 30d | vault-ledger
  vault-get --latest --kind postgres | dump-pg restore --target-db check --create | vault-ledger
  vault-ledger list --status failed --since 7d
  vault-ledger check --webhook \"$SLACK_WEBHOOK\"
  vault-ledger metrics --textfile /var/lib/node_exporter/textfile/stackvault.prom";

#[derive(Debug, Clone, Args)]
struct SpoolArgs {
    /// Where manifests the ledger could not record are kept until a later run records them [default: ledger-pending in the spool, $STACKVAULT_SPOOL or /var/lib/stackvault/spool or ~/.cache/stackvault/spool].
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
}

impl SpoolArgs {
    fn dir(&self) -> PathBuf {
        self.spool_dir.clone().unwrap_or_else(|| {
            let spool = std::env::var_os("STACKVAULT_SPOOL")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(toolkit::spool::default_dir);
            ledger::pending::default_dir(&spool)
        })
    }
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Create the ledger's tables, or migrate them to this version (idempotent).
    #[command(after_long_help = format!("{INIT_HELP}\n\n{CONNECTION_HELP}"))]
    Init,
    /// List the latest backups in the ledger, newest first.
    #[command(after_long_help = LIST_HELP)]
    List(ListArgs),
    /// Show one backup with its restores and integrity checks.
    #[command(after_long_help = SHOW_HELP)]
    Show(ShowArgs),
    /// Check the seed's five alerts; one line per alert on stdout, exit 1 if any.
    #[command(after_long_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Write Prometheus metrics (text format) for node_exporter's textfile collector.
    #[command(after_long_help = METRICS_HELP)]
    Metrics(MetricsArgs),
    /// Rebuild or complete the ledger from the vault's sidecar manifests alone.
    #[command(after_long_help = RESYNC_HELP)]
    Resync(ResyncArgs),
}

const INIT_HELP: &str = "\
Creates the seed's backup_history table with its three indexes (an existing one, from the
seed's scripts, is adopted with its rows) and stackvault's side tables, or applies the
migrations a newer release added. Each migration runs in one transaction; the versions
applied are recorded in stackvault_schema. Running it again changes nothing.

Exit status:
  0  the schema is current (created, migrated, or already so)
  1  not used
  2  the ledger cannot be reached, holds a newer schema, or a migration failed (rolled back)

Examples:
  LEDGER_URL=postgresql://stackvault@ledger/backups vault-ledger init";

const LIST_HELP: &str = "\
A table for people (ID, KIND, STATUS, SIZE, TIME, RUN), or with --json the manifest last
recorded for each backup, one per line (rows the seed's scripts wrote, without a manifest,
are skipped with a note).

Exit status:
  0  at least one backup matched
  1  no backup matched
  2  the ledger cannot be reached or has no schema

Examples:
  vault-ledger list
  vault-ledger list --kind postgres --status failed --since 7d
  vault-ledger list --run run_20250130_020000 --json | vault-get";

const SHOW_HELP: &str = "\
Exit status:
  0  the backup is in the ledger
  1  it is not
  2  the ledger cannot be reached or has no schema

Examples:
  vault-ledger show postgres_app_20250130_020000
  vault-ledger show postgres_app_20250130_020000 --json | vault-get";

const CHECK_HELP: &str = "\
Each alert is one line on stdout, ALERT NAME SUBJECT: MESSAGE, by name then time.

Alerts:
  backup_failed      a backup failed within the window (--failed-days)
  backup_missing     a kind has no successful backup within --max-age (every kind the
                     ledger has seen, and each --kind)
  size_changed       the newest good backup of a kind and source (database, collection),
                     made within the window, differs from the previous good one by more than
                     --size-change percent
  restore_slow       a restore that ended within the window took longer than --max-restore
  validation_failed  an integrity check failed, or a restore did not prove itself
                     (mismatch, failed), within the window

--webhook also posts them, when there are any, as {\"text\": …} (Slack and Mattermost
incoming webhooks). A webhook URL is a secret: prefer STACKVAULT_WEBHOOK_URL to the flag;
messages name only its host.

Exit status:
  0  no alert
  1  at least one alert (printed on stdout)
  2  the ledger cannot be reached, or the webhook did not accept the alerts

Examples:
  vault-ledger check
  vault-ledger check --max-age 49h --kind postgres --kind qdrant --kind neo4j
  STACKVAULT_WEBHOOK_URL=https://hooks.slack.com/services/… vault-ledger check";

const METRICS_HELP: &str = "\
Every series is labelled with kind and source (the name in the ids: the database, the
collection). The counters count rows of the ledger, so increase() over a range gives the
backups and failures in it.

Metrics:
  stackvault_backup_last_success_timestamp_seconds  stackvault_backup_last_size_bytes
  stackvault_backup_last_duration_seconds           stackvault_backup_success_total
  stackvault_backup_failures_total                  stackvault_backup_recent_failures
  stackvault_vault_backups                          stackvault_vault_size_bytes
  stackvault_restore_last_timestamp_seconds         stackvault_restore_last_duration_seconds
  stackvault_restore_last_success                   stackvault_check_failures_total

compose/grafana-stackvault.json is a Grafana dashboard of them. With --textfile the file is
written whole and renamed into place, so node_exporter never reads half of it.

Exit status:
  0  the metrics were written
  1  not used
  2  the ledger cannot be reached, or the file cannot be written

Examples:
  vault-ledger metrics
  vault-ledger metrics --textfile /var/lib/node_exporter/textfile/stackvault.prom";

const RESYNC_HELP: &str = "\
Reads every sidecar manifest in the vault and records it, as if it passed through: a
ledger whose database was lost comes back with vault-ledger resync alone (it creates the
schema when missing). Idempotent; a backup the ledger already knows with a later status
(pruned) keeps it. Manifests kept in the spool directory by an earlier run are recorded
first.

Exit status:
  0  every sidecar was recorded
  1  some sidecars are unreadable (named on stderr, not recorded)
  2  the vault cannot be listed or the ledger cannot be reached

Examples:
  vault-ledger resync --vault s3://backups/stack";

#[derive(Debug, Args)]
struct ListArgs {
    /// At most this many backups.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20)]
    limit: i64,
    /// Only backups of this kind.
    #[arg(long, value_name = "KIND")]
    kind: Option<Kind>,
    /// Only backups with this status: success, failed, pruned (the seed's words).
    #[arg(long, value_name = "STATUS")]
    status: Option<String>,
    /// Only backups of this run.
    #[arg(long, value_name = "RUN")]
    run: Option<Name>,
    /// Only backups made since then: a duration back from now (7d, 12h) or a time (2025-01-30T00:00:00Z).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    since: Option<SystemTime>,
    /// Print the recorded manifests as NDJSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ShowArgs {
    /// The backup id.
    #[arg(value_name = "ID")]
    id: manifest::Id,
    /// Print the recorded manifest instead.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Alert on backups that failed within the last N days (and size changes, slow restores, failed checks in that window).
    #[arg(long, value_name = "N", default_value_t = 1)]
    failed_days: u64,
    /// Alert when a kind's newest successful backup is older than this.
    #[arg(long, value_name = "DURATION", default_value = "25h", value_parser = parse_duration)]
    max_age: Duration,
    /// Alert when a backup's size differs from the previous good one of its kind and source by more than this many percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 50.0)]
    size_change: f64,
    /// Alert when a restore took longer than this.
    #[arg(long, value_name = "DURATION", default_value = "60m", value_parser = parse_duration)]
    max_restore: Duration,
    /// A kind that must have backups even if the ledger never saw one; repeatable.
    #[arg(long, value_name = "KIND")]
    kind: Vec<Kind>,
    /// Also post the alerts to this Slack or Mattermost incoming webhook (a secret: prefer the environment variable).
    #[arg(
        long,
        env = "STACKVAULT_WEBHOOK_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    webhook: Option<String>,
}

#[derive(Debug, Args)]
struct MetricsArgs {
    /// Write to this file, atomically (a .prom file in node_exporter's --collector.textfile.directory), instead of stdout.
    #[arg(long, value_name = "PATH")]
    textfile: Option<PathBuf>,
    /// Failures within this long count for stackvault_backup_recent_failures.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    window: Duration,
}

#[derive(Debug, Args)]
struct ResyncArgs {
    #[command(flatten)]
    vault: VaultArgs,
}

fn parse_since(text: &str) -> Result<SystemTime, String> {
    if let Ok(t) = Timestamp::parse(text) {
        return Ok(t.system_time());
    }
    let back = parse_duration(text).map_err(|_| {
        format!("invalid time {text:?}: expected a duration (7d) or a time (2025-01-30T00:00:00Z)")
    })?;
    Ok(SystemTime::now()
        .checked_sub(back)
        .unwrap_or(SystemTime::UNIX_EPOCH))
}

/// The command line, for `--help`, man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the tool.
pub fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let cli = Cli::from_arg_matches(matches)?;
    match cli.command {
        None => record(&cli.spool),
        Some(Sub::Init) => init(),
        Some(Sub::List(args)) => quiet_pipe(list(&args)),
        Some(Sub::Show(args)) => quiet_pipe(show(&args)),
        Some(Sub::Check(args)) => check(&args),
        Some(Sub::Metrics(args)) => metrics(&args),
        Some(Sub::Resync(args)) => resync(&cli.spool, &args),
    }
}

/// A listing piped into `head` is not an error.
fn quiet_pipe(result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(e) if cli::is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn connect() -> ledger::Result<Ledger> {
    let url = std::env::var(ledger::LEDGER_URL).ok();
    let settings = ledger::settings(url.as_deref())?;
    Ledger::connect(&settings)
}

/// Connected, with the schema this version writes.
fn open() -> ledger::Result<Ledger> {
    let mut ledger = connect()?;
    ledger.require_schema()?;
    Ok(ledger)
}

fn init() -> anyhow::Result<()> {
    let mut ledger = connect()?;
    let applied = ledger.init()?;
    if applied.is_empty() {
        cli::info(format!(
            "the ledger {} is at schema version {} already",
            ledger.target(),
            ledger::schema::VERSION
        ));
    } else {
        let list: Vec<String> = applied.iter().map(ToString::to_string).collect();
        cli::info(format!(
            "the ledger {} is at schema version {} (applied {})",
            ledger.target(),
            ledger::schema::VERSION,
            list.join(", ")
        ));
    }
    Ok(())
}

/// Records what an earlier run kept; reports unreadable files. A ledger error is returned.
fn flush_pending(ledger: &mut Ledger, pending: &Pending) -> ledger::Result<()> {
    let flushed = ledger.record_pending(pending)?;
    if flushed.recorded > 0 {
        cli::info(format!(
            "recorded {} manifest(s) kept by an earlier run in {}",
            flushed.recorded,
            pending.path().display()
        ));
    }
    for bad in flushed.unreadable {
        cli::info(format!(
            "warning: {} is not a manifest ({}); left where it is",
            quote(&bad.path),
            bad.message
        ));
    }
    Ok(())
}

/// Whether the ledger can still be written to; once down, it stays down for this run.
enum State {
    Up(Box<Ledger>),
    Down,
}

fn record(spool: &SpoolArgs) -> anyhow::Result<()> {
    let dir = spool.dir();
    let pending = Pending::open(&dir);
    let mut state = match open() {
        Ok(ledger) => State::Up(Box::new(ledger)),
        Err(e) => {
            say_down(&e, &dir, pending.as_ref().err());
            State::Down
        }
    };
    if let (State::Up(ledger), Ok(pending)) = (&mut state, &pending) {
        if let Err(e) = flush_pending(ledger, pending) {
            say_down(&e, &dir, None);
            state = State::Down;
        }
    }
    let mut out = cli::manifests_out();
    let mut unrecorded = 0usize;
    for manifest in cli::manifests_in() {
        let manifest = manifest?;
        if manifest.status == Status::Writing {
            // A notice that work has started: its outcome follows as a record of its own.
            cli::emit(&mut out, &manifest)?;
            continue;
        }
        let recorded = match &mut state {
            State::Up(ledger) => match ledger.record(&manifest) {
                Ok(_) => true,
                Err(e) if e.is_connection_lost() => {
                    say_down(&e, &dir, pending.as_ref().err());
                    state = State::Down;
                    false
                }
                Err(e) => {
                    cli::info(format!(
                        "error: cannot record {}: {}; passed on, kept in {}",
                        manifest.id,
                        cli::chain(&e),
                        dir.display()
                    ));
                    false
                }
            },
            State::Down => false,
        };
        if !recorded {
            unrecorded += 1;
            if let Ok(pending) = &pending {
                if let Err(e) = pending.keep(&manifest) {
                    cli::info(format!(
                        "error: cannot keep {} for a later run: {e}; it was passed on, record \
                         it with vault-ledger resync",
                        manifest.id
                    ));
                }
            }
        }
        cli::emit(&mut out, &manifest)?;
        cli::stop_if_interrupted()?;
    }
    if unrecorded > 0 {
        cli::mark_failed();
    }
    Ok(())
}

/// The one line that says the ledger is out of reach and where the manifests go.
fn say_down(e: &ledger::Error, dir: &Path, spool_error: Option<&std::io::Error>) {
    let kept = match spool_error {
        None => format!(
            "manifests are passed on unrecorded and kept in {} for the next run or vault-ledger \
             resync",
            dir.display()
        ),
        Some(io) => format!(
            "manifests are passed on unrecorded, and CANNOT be kept ({io}): record them later \
             from the pipeline's output or with vault-ledger resync"
        ),
    };
    cli::info(format!(
        "error: cannot record in the ledger: {}; {kept}",
        cli::chain(e)
    ));
}

fn table(out: &mut impl Write, rows: &[Backup]) -> std::io::Result<()> {
    let width = rows.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    writeln!(
        out,
        "{:<width$}  {:<8}  {:<8}  {:>10}  {:<20}  RUN",
        "ID", "KIND", "STATUS", "SIZE", "TIME"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<width$}  {:<8}  {:<8}  {:>10}  {:<20}  {}",
            r.id,
            r.kind,
            r.status.as_deref().unwrap_or("-"),
            r.size_bytes
                .map(|b| format_bytes(b.max(0) as u64))
                .unwrap_or_default(),
            Timestamp::from_system_time(r.timestamp),
            r.run.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

fn print_manifests(rows: &[Backup]) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for r in rows {
        match &r.manifest {
            Some(m) => writeln!(out, "{}", serde_json::to_string(m)?)?,
            None => cli::info(format!(
                "note: {} has no recorded manifest (a row written by the seed's scripts)",
                r.id
            )),
        }
    }
    out.flush()?;
    Ok(())
}

fn list(args: &ListArgs) -> anyhow::Result<()> {
    let mut ledger = open()?;
    let rows = ledger.list(&Filter {
        kind: args.kind.as_ref().map(|k| k.to_string()),
        status: args.status.clone(),
        run: args.run.as_ref().map(|r| r.to_string()),
        since: args.since,
        limit: args.limit.max(0),
    })?;
    if rows.is_empty() {
        cli::info("no backup in the ledger matches");
        cli::mark_failed();
        return Ok(());
    }
    if args.json {
        return print_manifests(&rows);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    table(&mut out, &rows)?;
    Ok(())
}

fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let mut ledger = open()?;
    let Some(details) = ledger.show(&args.id)? else {
        cli::info(format!(
            "{} is not in the ledger {}",
            args.id,
            ledger.target()
        ));
        cli::mark_failed();
        return Ok(());
    };
    if args.json {
        return print_manifests(std::slice::from_ref(&details.backup));
    }
    let b = &details.backup;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let field = |name: &str, value: Option<String>| {
        format!("{name:<14}{}", value.unwrap_or_else(|| "-".into()))
    };
    for line in [
        field("id", Some(b.id.clone())),
        field("kind", Some(b.kind.clone())),
        field("source", b.source.clone()),
        field("status", b.status.clone()),
        field(
            "time",
            Some(Timestamp::from_system_time(b.timestamp).to_string()),
        ),
        field(
            "size",
            b.size_bytes
                .map(|s| format!("{} ({s} bytes)", format_bytes(s.max(0) as u64))),
        ),
        field("sha256", b.checksum.clone()),
        field("run", b.run.clone()),
        field("vault", b.vault_url.clone()),
        field("error", b.error.clone()),
    ] {
        writeln!(out, "{line}")?;
    }
    for r in &details.restores {
        writeln!(
            out,
            "restore       {} {} in {}{}{}",
            r.finished_at
                .map(|t| Timestamp::from_system_time(t).to_string())
                .unwrap_or_else(|| "-".into()),
            r.result,
            r.duration_ms
                .map(|ms| human_age(Duration::from_millis(ms.max(0) as u64)))
                .unwrap_or_else(|| "?".into()),
            r.target
                .as_ref()
                .map(|t| format!(" to {t}"))
                .unwrap_or_default(),
            r.note
                .as_ref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        )?;
    }
    for c in &details.checks {
        let items = c
            .items
            .as_ref()
            .and_then(|i| i.as_array())
            .map_or(0, Vec::len);
        writeln!(
            out,
            "check         {} {} ({items} checks)",
            c.checked_at
                .map(|t| Timestamp::from_system_time(t).to_string())
                .unwrap_or_else(|| "-".into()),
            c.result
        )?;
    }
    Ok(())
}

/// `scheme://host` of a URL: all a message may say of a webhook (its path is the secret).
fn host_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}")
        }
        None => "the webhook".to_owned(),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<()> {
    let mut ledger = open()?;
    let thresholds = Thresholds {
        window: Duration::from_secs(args.failed_days.saturating_mul(86_400)),
        max_age: args.max_age,
        size_change_percent: args.size_change,
        max_restore: args.max_restore,
        kinds: args.kind.iter().map(ToString::to_string).collect(),
    };
    let alerts = ledger.check(&thresholds, SystemTime::now())?;
    {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for alert in &alerts {
            writeln!(out, "{alert}")?;
        }
        out.flush()?;
    }
    if alerts.is_empty() {
        return Ok(());
    }
    cli::mark_failed();
    if let Some(url) = args.webhook.as_deref().filter(|u| !u.is_empty()) {
        let host = host_of(url);
        let client = HttpClient::new(&ClientOptions::default())
            .map_err(|e| anyhow::anyhow!("cannot set up the webhook client: {}", e.problem))?;
        let body = serde_json::to_vec(&ledger::alerts::webhook_body(&alerts))?;
        let response = client
            .send(
                "POST",
                url,
                &[("Content-Type", "application/json")],
                Body::Bytes(&body),
                RequestTimeout::Total(Duration::from_secs(30)),
            )
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot post the alerts to the webhook at {host}: {}",
                    e.problem
                )
            })?;
        anyhow::ensure!(
            (200..300).contains(&response.status),
            "the webhook at {host} refused the alerts: HTTP {}",
            response.status
        );
        cli::info(format!(
            "posted {} alert(s) to the webhook at {host}",
            alerts.len()
        ));
    }
    Ok(())
}

fn metrics(args: &MetricsArgs) -> anyhow::Result<()> {
    let mut ledger = open()?;
    let text = ledger.metrics(args.window, SystemTime::now())?;
    match &args.textfile {
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        Some(path) => write_atomically(path, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", quote(path)))?,
    }
    Ok(())
}

/// Writes `data` beside `path` under a name node_exporter ignores (not `*.prom`), fsyncs,
/// and renames it into place.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?
        .to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn resync(spool: &SpoolArgs, args: &ResyncArgs) -> anyhow::Result<()> {
    let backend = args.vault.open()?;
    let mut ledger = connect()?;
    ledger.init()?;
    if let Ok(pending) = Pending::open(&spool.dir()) {
        flush_pending(&mut ledger, &pending)?;
    }
    let done = ledger.resync(&*backend)?;
    for problem in &done.problems {
        cli::record_failed(format!(
            "unreadable sidecar {}: {}; not recorded",
            problem.key, problem.message
        ));
    }
    cli::info(format!(
        "resync of {} into {}: {} backup(s) in the vault, {} new in the ledger, {} updated",
        backend.location(),
        ledger.target(),
        done.seen,
        done.inserted,
        done.updated
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_webhook_hosts() {
        let cases = [
            (
                "https://hooks.slack.com/services/T0/B0/secret",
                "https://hooks.slack.com",
            ),
            (
                "http://user:pw@127.0.0.1:9/hook?token=x",
                "http://127.0.0.1:9",
            ),
            ("not a url", "the webhook"),
        ];
        for (url, want) in cases {
            assert_eq!(host_of(url), want, "{url}");
        }
    }
}
