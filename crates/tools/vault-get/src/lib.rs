//! `vault-get`: lists the vault from its sidecars, and downloads artifacts into the spool,
//! verified, emitting manifests whose `artifact.path` is the local copy.

use std::io::Write;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use manifest::time::human_age;
use manifest::{Id, Kind, Manifest, Name};
use toolkit::cli::{self, quote, CommonArgs, EXIT_CODES_HELP};
use toolkit::progress::{self, format_bytes, Style};
use toolkit::spool::SpoolDir;
use vault::args::VaultArgs;
use vault::ops::{self, Entry, Orphan};
use vault::Backend;

const AFTER_HELP: &str = "\
Without a selector, vault-get reads manifests on stdin (e.g. a run.ndjson saved from
vault-put) and fetches each. Downloads stream into the spool, are hashed as they arrive and
compared with the SHA-256 recorded at upload; a mismatch deletes the partial file, prints an
error and passes the manifest on with \"status\":\"failed\", so no restore will use it. A
file already in the spool with the right SHA-256 is reused.

An encrypted backup (vault.encryption, stored by vault-put --encrypt-to) is decrypted with
--identity while it downloads, in order, and both the ciphertext's and the plaintext's
SHA-256 are checked. Without an identity, or with one it was not encrypted to, it fails
before downloading and names the recipients' fingerprints it needs. A truncated or changed
ciphertext fails age's authentication and the partial plaintext is deleted.

--list also warns about leftovers that are not backups: an artifact without its sidecar
(an upload interrupted before the sidecar was written: running vault-put again with the same
manifest finishes it), a sidecar without its artifact, an unfinished upload (S3 multipart
upload or directory-vault temp file left by a killed process). --orphans lists them with
their ages; vault-prune sweeps them.

Examples:
  vault-get --list
  vault-get --list --kind postgres --json
  vault-get --latest --kind postgres | dump-pg restore --target-db app_restored --create
  vault-get --id postgres_app_20250130_020000
  vault-get --id postgres_app_20250130_020000 --identity ~/keys/backup.txt
  vault-get --orphans
  vault-get < run.ndjson";

/// List the backups in a vault, or download them into the spool, verified.
///
/// Downloads print each manifest again with artifact.path set to the local copy, ready
/// for a restore tool.
#[derive(Debug, Parser)]
#[command(name = "vault-get", version, after_long_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Cli {
    /// List the backups in the vault, newest first (from the sidecar manifests alone).
    #[arg(long, conflicts_with_all = ["id", "latest", "run", "orphans"])]
    list: bool,

    /// With --list: print the sidecar manifests as NDJSON instead of a table.
    #[arg(long, requires = "list")]
    json: bool,

    /// List what the vault holds that is not a backup (orphans, unfinished uploads), with ages.
    #[arg(long, conflicts_with_all = ["id", "latest", "run"])]
    orphans: bool,

    /// Only backups of this kind (postgres, qdrant, neo4j).
    #[arg(long, value_name = "KIND")]
    kind: Option<Kind>,

    /// Fetch the backup with this id (found directly from the date in the id).
    #[arg(long, value_name = "ID", conflicts_with_all = ["latest", "run"])]
    id: Option<Id>,

    /// Fetch the newest good backup of --kind.
    #[arg(long, requires = "kind", conflicts_with = "run")]
    latest: bool,

    /// Fetch every backup of this run (a backup set), optionally only of --kind.
    #[arg(long, value_name = "RUN")]
    run: Option<Name>,

    /// With a download: also check that each artifact starts as its format does
    /// (pg_dump custom: PGDMP; Qdrant snapshot: a tar; Neo4j dump: DZV1; Neo4j export: a
    /// zstd or gzip frame); one that does not is a failed record. A format without known
    /// leading bytes is passed with a note
    #[arg(long, conflicts_with_all = ["list", "orphans"])]
    check_format: bool,
    /// Decrypt age-encrypted artifacts with the identities (secret keys,
    /// AGE-SECRET-KEY-1…, as age-keygen writes them) in FILE, while they download. Without
    /// it an encrypted backup fails, naming the recipients' fingerprints it needs.
    #[arg(long, env = "STACKVAULT_AGE_IDENTITY", value_name = "FILE")]
    identity: Option<std::path::PathBuf>,

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
    if let Some(kind) = cli.kind.as_ref().filter(|k| !k.is_known()) {
        cli::info(format!(
            "note: {kind} is not a kind this version makes backups of"
        ));
    }
    let backend = cli.vault.open()?;
    let listing = if cli.list {
        Some(list(&*backend, cli.kind.as_ref(), cli.json))
    } else if cli.orphans {
        Some(list_orphans(&*backend, cli.kind.as_ref()))
    } else {
        None
    };
    if let Some(result) = listing {
        return match result {
            // A listing piped into `head` is not an error (ripgrep does the same).
            Err(e) if cli::is_broken_pipe(&e) => Ok(()),
            other => other,
        };
    }
    let selected: Vec<Manifest> = if let Some(id) = &cli.id {
        vec![ops::find_id(&*backend, id)?.manifest]
    } else if cli.latest {
        vec![ops::latest(&*backend, cli.kind.as_ref().expect("clap requires --kind"))?.manifest]
    } else if let Some(run) = &cli.run {
        let (entries, _) = ops::catalogue(&*backend, cli.kind.as_ref())?;
        let mut of_run: Vec<Manifest> = entries
            .into_iter()
            .map(|e| e.manifest)
            .filter(|m| m.run.as_ref() == Some(run))
            .collect();
        anyhow::ensure!(
            !of_run.is_empty(),
            "no backup of run {run} in {}",
            backend.location()
        );
        of_run.reverse(); // oldest first: the order they were made in
        of_run
    } else {
        let spool = cli.common.spool_dir()?;
        return fetch_all(
            &*backend,
            &cli,
            &spool,
            cli::manifests_in().map(|m| m.map_err(anyhow::Error::from)),
        );
    };
    let spool = cli.common.spool_dir()?;
    fetch_all(&*backend, &cli, &spool, selected.into_iter().map(Ok))
}

fn fetch_all(
    backend: &dyn Backend,
    cli: &Cli,
    spool: &SpoolDir,
    manifests: impl Iterator<Item = anyhow::Result<Manifest>>,
) -> anyhow::Result<()> {
    let identities = match &cli.identity {
        Some(path) => Some(vault::crypt::Identities::from_file(path)?),
        None => None,
    };
    let identities = identities.as_ref();
    let style: Style = cli.common.progress_style();
    let mut out = cli::manifests_out();
    for manifest in manifests {
        let manifest = manifest?;
        if !manifest.is_ok() {
            cli::emit(&mut out, &manifest)?;
            continue;
        }
        let progress = progress::for_stderr(style, &format!("download {}", manifest.id));
        let fetched = ops::fetch_with(backend, &manifest, spool, identities, &*progress);
        progress.finish();
        match fetched {
            Ok(local) if cli.check_format => match check_format(&local) {
                Ok(()) => cli::emit(&mut out, &local)?,
                Err(message) => cli::emit_failed(&mut out, local, message)?,
            },
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

/// Whether the downloaded artifact starts with its format's leading bytes.
fn check_format(manifest: &Manifest) -> Result<(), String> {
    use std::io::Read;
    let artifact = manifest
        .artifact
        .as_ref()
        .expect("a fetched manifest has one");
    let Some((offset, magic)) = vault::layout::format_magic(&artifact.format) else {
        cli::info(format!(
            "{}: format {} has no known leading bytes; not checked",
            manifest.id,
            quote(&artifact.format)
        ));
        return Ok(());
    };
    let mut head = Vec::with_capacity(offset + magic.len());
    toolkit::fs::open_regular(&artifact.path)
        .and_then(|f| f.take((offset + magic.len()) as u64).read_to_end(&mut head))
        .map_err(|e| format!("cannot read {}: {e}", quote(&artifact.path)))?;
    if head.get(offset..) != Some(magic) {
        return Err(format!(
            "{} is not {}: it does not start as that format does",
            manifest.id, artifact.format
        ));
    }
    Ok(())
}

fn kind_prefix(kind: Option<&Kind>) -> String {
    kind.map(|k| format!("{k}/")).unwrap_or_default()
}

fn list(backend: &dyn Backend, kind: Option<&Kind>, json: bool) -> anyhow::Result<()> {
    let (entries, problems) = ops::catalogue(backend, kind)?;
    for problem in &problems {
        cli::record_failed(format!(
            "unreadable sidecar {}: {}",
            problem.key, problem.message
        ));
    }
    warn_about_orphans(backend, kind);
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
        .map(|e| e.manifest.id.as_str().len())
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

/// One line on stderr when the vault holds leftovers: they cost space and may hide an
/// interrupted backup. A failure to look is only a note: the listing itself succeeded.
fn warn_about_orphans(backend: &dyn Backend, kind: Option<&Kind>) {
    match ops::orphans(backend, &kind_prefix(kind)) {
        Ok(found) if !found.is_empty() => {
            let oldest = found.iter().map(Orphan::age).max().unwrap_or_default();
            cli::info(format!(
                "warning: {} leftover(s) that are not backups (oldest {}): see vault-get --orphans",
                found.len(),
                human_age(oldest)
            ));
        }
        Ok(_) => {}
        Err(e) => cli::info(format!(
            "note: cannot look for leftovers: {}",
            cli::chain(&e)
        )),
    }
}

fn list_orphans(backend: &dyn Backend, kind: Option<&Kind>) -> anyhow::Result<()> {
    let found = ops::orphans(backend, &kind_prefix(kind))?;
    if found.is_empty() {
        cli::info(format!("no leftovers in {}", backend.location()));
        return Ok(());
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "{:<25}  {:>10}  {:>8}  KEY", "WHAT", "SIZE", "AGE")?;
    for orphan in &found {
        let size = orphan.size.map(format_bytes).unwrap_or_default();
        let mut key = orphan.key.to_string();
        if let ops::OrphanKind::Unfinished(upload) = &orphan.kind {
            key.push_str(&format!(
                " (upload {}{})",
                upload.upload_id,
                if upload.in_progress {
                    ", in progress"
                } else {
                    ""
                }
            ));
        }
        writeln!(
            out,
            "{:<25}  {:>10}  {:>8}  {key}",
            orphan.label(),
            size,
            human_age(orphan.age())
        )?;
    }
    Ok(())
}
