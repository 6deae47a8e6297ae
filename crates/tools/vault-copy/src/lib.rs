//! `vault-copy`: copies the backups a second vault lacks into it, each verified as
//! vault-put verifies an upload, sidecar last; or, with `--verify-only`, compares the two.

use std::collections::BTreeMap;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use manifest::time::Timestamp;
use manifest::{Id, Kind, Name};
use toolkit::cli::{self, CommonArgs, EXIT_CODES_HELP};
use toolkit::progress;
use vault::args::VaultArgs;
use vault::ops::{self, Entry, Verify};
use vault::Backend;

const AFTER_HELP: &str = "\
vault-copy reads both catalogues (the sidecars) and copies, oldest first, every backup of
--from whose id --to does not list: the stored object streams from one vault to the other as
it is — an encrypted artifact stays encrypted, no key is needed — and is checked against the
size and SHA-256 its sidecar records before it becomes visible in --to, proved as vault-put
proves an upload (--verify), then its sidecar is written, last, with --to's vault section and
vault.copied_from. Each copied backup's manifest is printed on stdout: `| vault-ledger`
records it as a copy beside the backup (backup_copy), the backup's own record unchanged.
Nothing is held in memory or on disk beyond a few MiB in flight.

Running it again copies only what is still missing: a run that was interrupted is resumed,
and an artifact it left without its sidecar is verified and finished. A backup --to holds
already is never copied again, and objects are never overwritten.

--verify-only copies nothing: it reports each backup of --from that --to lacks, or holds with
another size or SHA-256 (by the sidecars' records and the stored object's size), and exits 1
if there is any.

Both vaults share the S3 settings and credentials (--s3-*, AWS_*).

Examples:
  vault-copy --from s3://backups/stack --to file:///mnt/offsite/vault | vault-ledger
  vault-copy --from file:///srv/vault --to s3://offsite/stack --kind postgres --since 2025-01-01
  vault-copy --from s3://backups/stack --to s3://offsite/stack --verify-only";

/// Copy the backups a second vault lacks into it, verified; or compare two vaults.
#[derive(Debug, Parser)]
#[command(name = "vault-copy", version, after_long_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Cli {
    /// The vault to copy into: s3://bucket/prefix or file:///dir.
    #[arg(long, value_name = "URL")]
    to: String,

    /// Only backups of this kind (postgres, qdrant, neo4j).
    #[arg(long, value_name = "KIND")]
    kind: Option<Kind>,

    /// Only backups made at or after this time (RFC 3339, or a date YYYY-MM-DD, UTC).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    since: Option<Timestamp>,

    /// Only the backups of this run (a backup set).
    #[arg(long, value_name = "RUN")]
    run: Option<Name>,

    /// Copy nothing: report what --to lacks or holds differently, exit 1 if anything.
    #[arg(long)]
    verify_only: bool,

    /// How to prove each copied object, as vault-put --verify: checksum, read-back, size.
    #[arg(long, value_enum, default_value_t = Verify::Checksum, value_name = "HOW")]
    verify: Verify,

    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    vault: VaultArgs,
}

fn parse_since(text: &str) -> Result<Timestamp, String> {
    let full = match text.len() {
        10 => format!("{text}T00:00:00Z"),
        _ => text.to_owned(),
    };
    Timestamp::parse(&full)
        .map_err(|e| format!("{text}: {e} (expected 2025-01-30 or 2025-01-30T02:00:00Z)"))
}

/// The command line, for `--help`, man pages and completions. The shared vault flag is
/// the source here: `--from`.
pub fn command() -> clap::Command {
    Cli::command()
        .mut_arg("vault", |a| {
            a.long("from")
                .env(None::<&str>)
                .required(true)
                .help("The vault to copy from: s3://bucket/prefix or file:///dir.")
        })
        // Nothing goes through the spool: objects stream from vault to vault.
        .mut_arg("spool", |a| a.hide(true))
}

/// Runs the tool.
pub fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let cli = Cli::from_arg_matches(matches)?;
    let from = cli.vault.open()?;
    let to = vault::open(&cli.to, || cli.vault.s3_config())?;
    anyhow::ensure!(
        from.location() != to.location(),
        "--from and --to are the same vault ({})",
        from.location()
    );
    let selected = select(&*from, &cli)?;
    let (held, problems) = ops::catalogue(&*to, cli.kind.as_ref())?;
    for problem in &problems {
        cli::info(format!(
            "warning: unreadable sidecar {} in {}: {}",
            problem.key,
            to.location(),
            problem.message
        ));
    }
    let held: BTreeMap<Id, Entry> = held
        .into_iter()
        .map(|e| (e.manifest.id.clone(), e))
        .collect();
    if cli.verify_only {
        return verify_only(&*from, &*to, &selected, &held);
    }
    let style = cli.common.progress_style();
    let mut out = cli::manifests_out();
    let mut copied = 0;
    for entry in selected
        .iter()
        .filter(|e| !held.contains_key(&e.manifest.id))
    {
        let progress = progress::for_stderr(style, &format!("copy {}", entry.manifest.id));
        let result = ops::copy_backup(&*from, &*to, entry, cli.verify, &*progress);
        progress.finish();
        match result {
            Ok(stored) => {
                if stored.resumed {
                    cli::info(format!(
                        "{}: the artifact was already in {} (an earlier copy stopped before its \
                         sidecar); verified it and wrote the sidecar",
                        entry.manifest.id,
                        to.location()
                    ));
                }
                copied += 1;
                cli::emit(&mut out, &stored.manifest)?;
            }
            Err(e) => {
                let message = format!(
                    "cannot copy {} into {}: {}",
                    entry.manifest.id,
                    to.location(),
                    cli::chain(&e)
                );
                cli::emit_failed(&mut out, entry.manifest.clone(), message)?;
            }
        }
        cli::stop_if_interrupted()?;
    }
    cli::info(format!(
        "{copied} copied, {} already in {}",
        selected.len()
            - selected
                .iter()
                .filter(|e| !held.contains_key(&e.manifest.id))
                .count(),
        to.location()
    ));
    Ok(())
}

/// The backups of `from` the filters select, oldest first (the order they were made in).
fn select(from: &dyn Backend, cli: &Cli) -> anyhow::Result<Vec<Entry>> {
    let (entries, problems) = ops::catalogue(from, cli.kind.as_ref())?;
    for problem in &problems {
        cli::record_failed(format!(
            "unreadable sidecar {} in {}: {}; not copied",
            problem.key,
            from.location(),
            problem.message
        ));
    }
    let mut selected: Vec<Entry> = entries
        .into_iter()
        .filter(|e| e.manifest.vault.is_some())
        .filter(|e| {
            cli.since
                .as_ref()
                .is_none_or(|s| e.manifest.created_at >= *s)
        })
        .filter(|e| cli.run.is_none() || e.manifest.run.as_ref() == cli.run.as_ref())
        .collect();
    selected.reverse();
    Ok(selected)
}

/// Reports each selected backup `to` lacks or holds differently; exit 1 if any.
fn verify_only(
    from: &dyn Backend,
    to: &dyn Backend,
    selected: &[Entry],
    held: &BTreeMap<Id, Entry>,
) -> anyhow::Result<()> {
    let mut same = 0;
    for entry in selected {
        let id = &entry.manifest.id;
        let Some(copy) = held.get(id) else {
            cli::record_failed(format!("missing {id}: {} does not list it", to.location()));
            continue;
        };
        let want = entry.manifest.vault.as_ref().map(|v| v.stored());
        let got = copy.manifest.vault.as_ref().map(|v| v.stored());
        let size = to.stat(&copy.key)?.map(|o| o.size);
        match (want, got) {
            (Some(Ok(want)), Some(Ok(got))) if want == got && size == Some(want.0) => same += 1,
            (Some(Ok(want)), Some(Ok(got))) if want == got => cli::record_failed(format!(
                "differs {id}: {} records {} bytes but holds {}",
                to.location(),
                want.0,
                size.map_or("no object".to_owned(), |s| format!("{s} bytes"))
            )),
            (want, got) => cli::record_failed(format!(
                "differs {id}: {} records {}, {} records {}",
                from.location(),
                describe(want),
                to.location(),
                describe(got)
            )),
        }
    }
    cli::info(format!(
        "{same} of {} backups are in both vaults, the same",
        selected.len()
    ));
    Ok(())
}

fn describe(stored: Option<Result<(u64, manifest::Sha256), String>>) -> String {
    match stored {
        Some(Ok((bytes, sha))) => format!("{bytes} bytes with SHA-256 {sha}"),
        Some(Err(e)) => e,
        None => "no vault section".to_owned(),
    }
}
