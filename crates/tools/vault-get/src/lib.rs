//! `vault-get`: lists the vault from its sidecars, and downloads artifacts into the spool,
//! verified, emitting manifests whose `artifact.path` is the local copy.

use std::io::Write;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use manifest::time::human_age;
use manifest::{Kind, Manifest};
use toolkit::cli::{self, CommonArgs, EXIT_CODES_HELP};
use toolkit::progress::{self, format_bytes, Style};
use vault::args::VaultArgs;
use vault::ops::{self, Entry};
use vault::Backend;

const AFTER_HELP: &str = "\
Without a selector, vault-get reads manifests on stdin (e.g. a run.ndjson saved from
vault-put) and fetches each. Downloads stream into the spool, are hashed as they arrive and
compared with the SHA-256 recorded at upload; a mismatch deletes the partial file, prints an
error and passes the manifest on with \"status\":\"failed\", so no restore will use it. A
file already in the spool with the right SHA-256 is reused.

Examples:
  vault-get --list
  vault-get --list --kind postgres --json
  vault-get --latest --kind postgres | dump-pg restore --target-db app_restored --create
  vault-get --id postgres_app_20250130_020000
  vault-get < run.ndjson";

/// List the backups in a vault, or download them into the spool, verified.
///
/// Downloads print each manifest again with artifact.path set to the local copy, ready
/// for a restore tool.
#[derive(Debug, Parser)]
#[command(name = "vault-get", version, after_long_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Cli {
    /// List the backups in the vault, newest first (from the sidecar manifests alone).
    #[arg(long, conflicts_with_all = ["id", "latest", "run"])]
    list: bool,

    /// With --list: print the sidecar manifests as NDJSON instead of a table.
    #[arg(long, requires = "list")]
    json: bool,

    /// Only backups of this kind (postgres, qdrant, neo4j).
    #[arg(long, value_name = "KIND")]
    kind: Option<Kind>,

    /// Fetch the backup with this id.
    #[arg(long, value_name = "ID", conflicts_with_all = ["latest", "run"])]
    id: Option<String>,

    /// Fetch the newest good backup of --kind.
    #[arg(long, requires = "kind", conflicts_with = "run")]
    latest: bool,

    /// Fetch every backup of this run (a backup set), optionally only of --kind.
    #[arg(long, value_name = "RUN")]
    run: Option<String>,

    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    vault: VaultArgs,
}

/// The command line, for `--help`, man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the tool.
pub fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let cli = Cli::from_arg_matches(matches)?;
    let backend = cli.vault.open()?;
    if cli.list {
        return match list(&*backend, cli.kind, cli.json) {
            // A listing piped into `head` is not an error (ripgrep does the same).
            Err(e) if cli::is_broken_pipe(&e) => Ok(()),
            other => other,
        };
    }
    let selected: Vec<Manifest> = if let Some(id) = &cli.id {
        vec![ops::find_id(&*backend, id)?.manifest]
    } else if cli.latest {
        vec![ops::latest(&*backend, cli.kind.expect("clap requires --kind"))?.manifest]
    } else if let Some(run) = &cli.run {
        let (entries, _) = ops::catalogue(&*backend, cli.kind)?;
        let mut of_run: Vec<Manifest> = entries
            .into_iter()
            .map(|e| e.manifest)
            .filter(|m| m.run.as_deref() == Some(run.as_str()))
            .collect();
        anyhow::ensure!(
            !of_run.is_empty(),
            "no backup of run {run} in {}",
            backend.location()
        );
        of_run.reverse(); // oldest first: the order they were made in
        of_run
    } else {
        return fetch_all(
            &*backend,
            &cli,
            cli::manifests_in().map(|m| m.map_err(anyhow::Error::from)),
        );
    };
    fetch_all(&*backend, &cli, selected.into_iter().map(Ok))
}

fn fetch_all(
    backend: &dyn Backend,
    cli: &Cli,
    manifests: impl Iterator<Item = anyhow::Result<Manifest>>,
) -> anyhow::Result<()> {
    let spool = cli.common.spool_dir();
    let style: Style = cli.common.progress_style();
    let mut out = cli::manifests_out();
    for manifest in manifests {
        let manifest = manifest?;
        if !manifest.is_ok() {
            cli::emit(&mut out, &manifest)?;
            continue;
        }
        let progress = progress::for_stderr(style, &format!("download {}", manifest.id));
        let fetched = ops::fetch(backend, &manifest, &spool, &*progress);
        progress.finish();
        match fetched {
            Ok(local) => cli::emit(&mut out, &local)?,
            Err(e) => {
                let message = format!("cannot fetch {}: {}", manifest.id, cli::chain(&e));
                cli::emit_failed(&mut out, manifest, message)?;
            }
        }
        cli::stop_if_interrupted()?;
    }
    Ok(())
}

fn list(backend: &dyn Backend, kind: Option<Kind>, json: bool) -> anyhow::Result<()> {
    let (entries, problems) = ops::catalogue(backend, kind)?;
    for problem in &problems {
        cli::record_failed(format!(
            "unreadable sidecar {}: {}",
            problem.key, problem.message
        ));
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        let mut writer = manifest::ndjson::NdjsonWriter::new(out);
        for entry in &entries {
            writer.write(&entry.manifest)?;
        }
        return Ok(());
    }
    if entries.is_empty() {
        cli::info(format!("no backups in {}", backend.location()));
        return Ok(());
    }
    let width = entries
        .iter()
        .map(|e| e.manifest.id.len())
        .max()
        .unwrap_or(2)
        .max(2);
    writeln!(
        out,
        "{:<width$}  {:<8}  {:<6}  {:>10}  {:>8}  CREATED",
        "ID", "KIND", "STATUS", "SIZE", "AGE"
    )?;
    for Entry { manifest, .. } in &entries {
        let size = manifest
            .vault
            .as_ref()
            .map(|v| format_bytes(v.bytes))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<width$}  {:<8}  {:<6}  {:>10}  {:>8}  {}",
            manifest.id,
            manifest.kind.as_str(),
            manifest.status.as_str(),
            size,
            human_age(manifest.created_at.age()),
            manifest.created_at
        )?;
    }
    Ok(())
}
