//! `integrity-check`: proves a restored (or a live) stack whole — each database on its own,
//! across databases, and as one backup set — and adds a `checks` section to each manifest.
//! The checks live in the `integrity` crate; this is the command line.

use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use integrity::run::{Options, Servers};
use integrity::{Outcome, Rules};
use manifest::ndjson::NdjsonReader;
use manifest::Manifest;
use toolkit::cli;
use toolkit::http::Timeouts;
use toolkit::retry::RetryPolicy;
use toolkit::secret::Secret;

const AFTER_HELP: &str = "\
Modes:
  In a pipeline (the default) integrity-check reads manifests on stdin, normally printed by
  a restore tool: each ok manifest of kind postgres, qdrant or neo4j with a restore section
  is checked where its restore.target says it was restored (the server must be the one
  integrity-check connects to), and printed again with a \"checks\" section, for
  vault-ledger to record (a failed check raises its validation_failed alert). Manifests of
  other kinds, failed ones, notices, and ones with nothing checked (every check SKIP: a
  backup that was not restored) pass through untouched. With --live nothing is read:
  the configured servers are checked as they are; a server that is not configured is SKIP,
  never PASS.

Checks, per database:
  health        PostgreSQL SELECT 1 and its version; Qdrant /readyz, its version and the
                collection green (or grey); Neo4j RETURN 1 over the HTTP API.
  fingerprint   the backup's stats against what the database holds now, by the producers'
                own code and the one shared comparison: rows per table and large objects;
                points per collection; nodes per label, relationships per type. Every
                difference named.
  content       PostgreSQL: an order-independent digest of every table's rows, against
                the one dump-pg --content-digest recorded (SKIP when the backup has none).
  schema        PostgreSQL tables, columns, indexes, constraints (the catalog); Qdrant
                vector size and distance, payload indexes; Neo4j constraints and indexes.
  not_null, orphans, payload, duplicate_relationships, cross: the rules of --rules FILE.
  backup_set RUN  manifests sharing a run id: every kind of the rules' backup_set present
                and ok, how far apart in time (at most max_spread).
  Live, fingerprint, content and schema are SKIP unless --compare-with FILE gives backup
  manifests (e.g. `vault-get --latest --json > latest.ndjson`).

Rules file:
  TOML, from --rules FILE or STACKVAULT_RULES; every key is checked (a misspelt rule is an
  error, not a rule that never fires). The full example, for the AI platform:
  
{EXAMPLE}

Cross rules page every side (keyset pages in SQL and Cypher, Qdrant's scroll, --page-size
ids a request) and merge the sorted pages: memory holds one page per side, whatever the
number of ids. Ids are integers, UUIDs or text; a rule reports the count and the first
--sample missing ids of each direction.

Connections are read as the backup tools read them: PostgreSQL as dump-pg (libpq: --dbname
or PGDATABASE for --live, PGHOST, PGPORT, PGUSER, PGPASSWORD or ~/.pgpass, PGSSLMODE, …);
Qdrant as snap-qdrant (--qdrant-url or QDRANT_URL, else QDRANT_HOST/QDRANT_PORT; the key
from QDRANT_API_KEY only); Neo4j as dump-neo4j (--neo4j-url or NEO4J_URL, else
NEO4J_HOST/NEO4J_PORT; credentials from the URL, NEO4J_USER/NEO4J_PASSWORD or NEO4J_AUTH).
Every statement and request has a timeout.

Output: the report (a section per database, PASS/FAIL/SKIP per check with its figures,
a summary line) on stderr, or in --report FILE; --json writes it as one JSON document
instead (with --live and no --report, on stdout). Manifests, each with its checks, go to
stdout.

Examples:
  vault-get --id postgres_app_20250130_020000 | dump-pg restore --target-db app_check --create \\
    | integrity-check --rules /etc/stackvault/rules.toml | vault-ledger
  integrity-check --live --rules rules.toml --report /var/log/stackvault/integrity.txt
  vault-get --latest --json > latest.ndjson && integrity-check --live --compare-with latest.ndjson

Exit status:
  0  every check passed (or was skipped, with the reason)
  1  a check failed
  2  a database did not answer, bad input (a manifest, the rules file), bad usage, or
     SIGINT/SIGTERM";

/// Prove a restored (or live) stack whole: per database, across databases, as a backup set.
///
/// Checks health, the backup's fingerprint, content digests and schema against what the
/// databases hold now, and the rules of a rules file (NOT NULL, orphans, duplicate
/// relationships, payload fields, ids across PostgreSQL, Qdrant and Neo4j); prints a report
/// and each manifest again with a "checks" section.
#[derive(Debug, Parser)]
#[command(name = "integrity-check", version, after_long_help = AFTER_HELP.replace("{EXAMPLE}", &indent(integrity::rules::EXAMPLE)))]
pub struct Cli {
    /// Check the configured servers as they are, reading no manifests.
    #[arg(long)]
    live: bool,

    /// With --live: backup manifests (one JSON line each) to compare with; for each
    /// database the newest ok one of its kind and source name.
    #[arg(long, value_name = "FILE", requires = "live")]
    compare_with: Option<PathBuf>,

    /// The rules file (TOML; see below) [default: no rules: health, fingerprint, content, schema and backup sets only].
    #[arg(long, env = "STACKVAULT_RULES", value_name = "FILE")]
    rules: Option<PathBuf>,

    /// Write the report to FILE instead of stderr.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,

    /// Write the report as one JSON document (result, summary, sections with their checks); with --live and no --report, on stdout.
    #[arg(long)]
    json: bool,

    /// Ids, points or start nodes per request of the rules that page.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    page_size: u32,

    /// Offending ids or rows named per check.
    #[arg(long, value_name = "N", default_value_t = 10)]
    sample: usize,

    /// Longest time for one PostgreSQL statement, and for one HTTP request to Qdrant or Neo4j.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = manifest::time::parse_duration)]
    timeout: Duration,

    /// Database to check with --live: a name, or a connection URI or string (as dump-pg's).
    #[arg(
        long,
        short = 'd',
        env = "PGDATABASE",
        value_name = "NAME|URI",
        hide_env_values = true
    )]
    dbname: Option<String>,

    #[command(flatten)]
    pg: pgconn::PgArgs,

    /// Qdrant REST endpoint [default: http://$QDRANT_HOST:$QDRANT_PORT, else http://localhost:6333 in a pipeline; --live: not configured].
    #[arg(long, env = "QDRANT_URL", value_name = "URL", hide_env_values = true)]
    qdrant_url: Option<String>,

    /// PEM file of CA certificates for a Qdrant behind TLS with a private CA.
    #[arg(long, env = "QDRANT_CA_FILE", value_name = "FILE")]
    qdrant_ca_file: Option<PathBuf>,

    /// Neo4j HTTP API [default: http://$NEO4J_HOST:$NEO4J_PORT, else http://localhost:7474 in a pipeline; --live: not configured].
    #[arg(long, env = "NEO4J_URL", value_name = "URL", hide_env_values = true)]
    neo4j_url: Option<String>,

    /// Neo4j database to check with --live.
    #[arg(
        long,
        env = "NEO4J_DATABASE",
        value_name = "NAME",
        default_value = "neo4j"
    )]
    neo4j_database: String,

    /// Never show progress on stderr (by default: a counter on a terminal, a line every 10 s otherwise).
    #[arg(long)]
    no_progress: bool,
}

/// The command line, for `--help`, man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// `text` indented by four spaces, as a block of the help; an empty line keeps two, so that
/// the man page keeps the block whole (stackvault-doc splits paragraphs at empty lines).
fn indent(text: &str) -> String {
    text.lines()
        .map(|l| match l {
            "" => "  ".to_owned(),
            l => format!("    {l}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Runs the tool.
pub fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let cli = Cli::from_arg_matches(matches)?;
    let rules = match &cli.rules {
        Some(path) => Rules::load(path)?,
        None => Rules::default(),
    };
    let options = Options {
        page_size: cli.page_size as usize,
        sample: cli.sample,
        timeout: cli.timeout,
        style: toolkit::progress::style(cli.no_progress),
    };
    let servers = servers(&cli);
    let (checked, bad_input) = if cli.live {
        let compare_with = match &cli.compare_with {
            Some(path) => read_manifests(path)?,
            None => vec![],
        };
        (
            integrity::run::live(&servers, &rules, &compare_with, &options),
            None,
        )
    } else {
        let mut manifests = vec![];
        let mut bad = None;
        for m in cli::manifests_in() {
            match m {
                Ok(m) => manifests.push(m),
                // What came before is still checked and passed on; the tool exits 2.
                Err(e) => {
                    bad = Some(anyhow::Error::new(e).context("bad input on stdin"));
                    break;
                }
            }
        }
        (
            integrity::run::pipeline(manifests, &servers, &rules, &options),
            bad,
        )
    };
    let mut out = cli::manifests_out();
    for m in &checked.manifests {
        cli::emit(&mut out, m)?;
    }
    write_report(&cli, &checked.report)?;
    cli::stop_if_interrupted()?;
    if let Some(e) = bad_input {
        return Err(e);
    }
    match checked.report.outcome() {
        Outcome::Pass => Ok(()),
        Outcome::Fail => {
            cli::mark_failed();
            Ok(())
        }
        Outcome::Error => anyhow::bail!(
            "{}",
            checked
                .report
                .sections
                .iter()
                .find_map(|s| s.unreachable.as_ref().or(s.bad_input.as_ref()))
                .map(|why| format!("not every database could be checked: {why}"))
                .unwrap_or_else(|| "not every database could be checked".into())
        ),
    }
}

/// The servers as the backup tools configure them. Live, a server nobody configured is
/// not checked (its checks are SKIP); in a pipeline the restore tools' defaults apply.
fn servers(cli: &Cli) -> Servers {
    let live = cli.live;
    let postgres = {
        let dbname = cli.dbname.as_deref().filter(|d| !d.is_empty());
        if live && dbname.is_none() {
            Err("no database named (--dbname or PGDATABASE)".to_owned())
        } else {
            cli.pg
                .settings(dbname)
                .map(|s| pgdump::conn::Pg::new(s, None))
                .map_err(|e| cli::chain(&e))
        }
    };
    let qdrant_named = cli.qdrant_url.as_deref().is_some_and(|u| !u.is_empty())
        || env("QDRANT_HOST").is_some()
        || env("QDRANT_PORT").is_some();
    let qdrant = if live && !qdrant_named {
        Err("no Qdrant named (--qdrant-url, QDRANT_URL or QDRANT_HOST)".to_owned())
    } else {
        let mut config = qdrant::Config::new(&qdrant::resolve_url(cli.qdrant_url.as_deref(), &env));
        config.api_key = Secret::from_env("QDRANT_API_KEY");
        config.timeouts = Timeouts {
            connect: Duration::from_secs(10),
            idle: cli.timeout,
            request: cli.timeout,
        };
        config.ca_file = cli.qdrant_ca_file.clone();
        qdrant::Client::new(&config).map_err(|e| e.message)
    };
    let neo4j_named = cli.neo4j_url.as_deref().is_some_and(|u| !u.is_empty())
        || env("NEO4J_HOST").is_some()
        || env("NEO4J_PORT").is_some();
    let neo4j = if live && !neo4j_named {
        Err("no Neo4j named (--neo4j-url, NEO4J_URL or NEO4J_HOST)".to_owned())
    } else {
        let retry = RetryPolicy {
            give_up_after: cli.timeout,
            ..RetryPolicy::default()
        };
        neo4j::client::Endpoint::resolve(cli.neo4j_url.as_deref(), &env)
            .and_then(|e| neo4j::client::Client::new(e, cli.timeout, retry))
            .map_err(|e| cli::chain(&e))
    };
    Servers {
        postgres,
        qdrant,
        neo4j,
        neo4j_database: cli.neo4j_database.clone(),
    }
}

/// Backup manifests from `path`, for --compare-with.
fn read_manifests(path: &Path) -> anyhow::Result<Vec<Manifest>> {
    let file = toolkit::fs::open_regular(path)
        .with_context(|| format!("cannot open {}", cli::quote(path)))?;
    let origin = path.display().to_string();
    NdjsonReader::new(BufReader::new(file), &origin)
        .map(|m| m.map_err(anyhow::Error::new))
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("bad manifest in {}", cli::quote(path)))
}

fn write_report(cli: &Cli, report: &integrity::Report) -> anyhow::Result<()> {
    let text = if cli.json {
        let mut t = serde_json::to_string_pretty(&report.to_json())?;
        t.push('\n');
        t
    } else {
        report.to_text()
    };
    match &cli.report {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write the report to {}", cli::quote(path))),
        // Live, stdout carries no manifests: the JSON report goes there, for `| jq`.
        None if cli.live && cli.json => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("cannot write the report to stdout")
        }
        None => {
            let mut err = std::io::stderr().lock();
            // A report is read by people: on a terminal it follows the progress lines.
            if err.is_terminal() {
                let _ = writeln!(err);
            }
            err.write_all(text.as_bytes())
                .context("cannot write the report to stderr")
        }
    }
}
