//! `vault-prune`: applies retention rules to a vault, deletes what no rule keeps (never the
//! newest good backup of a kind and source), sweeps leftovers, and emits one `pruned`
//! manifest per deleted backup, for `vault-ledger`.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use manifest::time::{human_age, parse_duration, Timestamp};
use manifest::{Id, Kind, Manifest, Status};
use retention::{OrphanDecision, PrunePlan, Rules, Step};
use serde_json::json;
use toolkit::cli::{self, EXIT_CODES_HELP};
use vault::args::VaultArgs;
use vault::dry_run::Planned;
use vault::{ops, Backend, DryRun};

const AFTER_HELP: &str = "\
Rules are applied to each kind and source (the name in the backup ids: the database, the
collection) on its own, as restic's forget applies them: a backup is kept if any rule keeps
it, and deleted if none does. --older-than keeps what is younger; --keep-last the N newest;
--keep-daily, --keep-weekly (Monday to Sunday) and --keep-monthly the newest backup of each
of the N newest days, weeks or months (UTC) that have one. With no rule at all,
BACKUP_RETENTION_DAYS (the seed's variable, a number of days) is --older-than; with neither,
vault-prune refuses to run.

Whatever the rules: the newest good backup of each kind and source is never deleted; a
failed backup is never the one kept and takes no --keep-last slot; a backup named by
--protect, or whose sidecar manifest has \"tags\":[\"protected\"] (add it before vault-put,
e.g. with jq), is never deleted; a backup stored with S3 Object Lock (vault-put
--lock-days: vault.lock in its sidecar) is kept until its retain-until date, and the plan
says until when. vault-prune refuses to act when the vault cannot be listed,
lists no backup, or when the plan would delete every backup of a kind.

The plan is made first, from the listing, and printed on stderr: each backup with keep or
delete and the rules that decided, each leftover with sweep or leave. Then it is carried
out: each backup's sidecar is deleted, then its artifact, so the vault never lists a backup
whose artifact is gone; a pruned manifest (status pruned, its vault section kept) is
written to stdout as soon as the sidecar is gone, for vault-ledger. An interrupted run
(signal, failing vault) stops between steps; the next run makes the same plan of what is
left and finishes it, sweeping an artifact whose sidecar was already deleted.

Leftovers that are not backups are swept once older than --orphans-older-than: an artifact
without its sidecar (an upload interrupted before its sidecar, or a removal after it; a
store in progress looks the same, hence the grace period), a sidecar without its artifact
(deleted behind the vault's back; its pruned manifest is emitted too), an unfinished S3
multipart upload or directory-vault temp file. Each is reported on stderr.

--dry-run runs the same plan through a wrapper that records every delete instead of doing
it, prints what a real run would delete, and changes nothing; it writes no manifest.

Examples:
  vault-prune --vault s3://backups/stack --older-than 30d | vault-ledger
  vault-prune --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
  BACKUP_RETENTION_DAYS=30 vault-prune --protect postgres_app_20250101_020000 | vault-ledger";

/// Delete expired backups from a vault, never the newest good one; sweep leftovers.
///
/// Applies retention rules per kind and source, prints the plan on stderr, deletes each
/// expired backup (sidecar first, then artifact) and writes a pruned manifest for each on
/// stdout.
#[derive(Debug, Parser)]
#[command(name = "vault-prune", version, after_long_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"))]
pub struct Cli {
    /// Keep backups younger than this (30d, 12h, 2w); older ones are deleted unless another rule keeps them [default: BACKUP_RETENTION_DAYS days].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    older_than: Option<Duration>,

    /// Keep the N newest backups of each kind and source.
    #[arg(long, value_name = "N")]
    keep_last: Option<usize>,

    /// Keep the newest backup of each of the N newest days that have one.
    #[arg(long, value_name = "N")]
    keep_daily: Option<usize>,

    /// Keep the newest backup of each of the N newest weeks (Monday to Sunday) that have one.
    #[arg(long, value_name = "N")]
    keep_weekly: Option<usize>,

    /// Keep the newest backup of each of the N newest months that have one.
    #[arg(long, value_name = "N")]
    keep_monthly: Option<usize>,

    /// Only backups (and leftovers) of this kind.
    #[arg(long, value_name = "KIND")]
    kind: Option<Kind>,

    /// Never delete this backup; repeatable.
    #[arg(long, value_name = "ID")]
    protect: Vec<Id>,

    /// Sweep leftovers (orphan artifacts and sidecars, unfinished uploads) older than this.
    #[arg(long, value_name = "DURATION", default_value = "1d", value_parser = parse_duration)]
    orphans_older_than: Duration,

    /// Print the plan and what would be deleted; change nothing.
    #[arg(long)]
    dry_run: bool,

    #[command(flatten)]
    vault: VaultArgs,
}

/// The command line, for `--help`, man pages and completions.
pub fn command() -> clap::Command {
    Cli::command()
}

fn rules(cli: &Cli) -> anyhow::Result<Rules> {
    let within = match cli.older_than {
        Some(d) => Some(d),
        None => match std::env::var("BACKUP_RETENTION_DAYS")
            .ok()
            .filter(|v| !v.is_empty())
        {
            Some(days) => {
                let days: u64 = days.trim().parse().map_err(|_| {
                    anyhow::anyhow!(
                        "BACKUP_RETENTION_DAYS is {days:?}: expected a number of days, e.g. 30"
                    )
                })?;
                Some(Duration::from_secs(days.saturating_mul(86_400)))
            }
            None => None,
        },
    };
    let rules = Rules {
        within,
        last: cli.keep_last,
        daily: cli.keep_daily,
        weekly: cli.keep_weekly,
        monthly: cli.keep_monthly,
    };
    anyhow::ensure!(
        !rules.is_empty(),
        "no retention rule: give --older-than, --keep-last, --keep-daily, --keep-weekly or \
         --keep-monthly, or set BACKUP_RETENTION_DAYS"
    );
    Ok(rules)
}

/// Runs the tool.
pub fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let cli = Cli::from_arg_matches(matches)?;
    let rules = rules(&cli)?;
    let backend = cli.vault.open()?;
    let location = backend.location();
    let refuse = |e: vault::Error| {
        anyhow::anyhow!(
            "cannot list {location}: {}; refusing to prune",
            cli::chain(&e)
        )
    };
    let (entries, problems) = ops::catalogue(&*backend, cli.kind.as_ref()).map_err(refuse)?;
    for problem in &problems {
        cli::info(format!(
            "warning: unreadable sidecar {} ({}): left alone",
            problem.key, problem.message
        ));
    }
    let prefix = cli
        .kind
        .as_ref()
        .map(|k| format!("{k}/"))
        .unwrap_or_default();
    let orphans = ops::orphans(&*backend, &prefix).map_err(refuse)?;
    let protect: BTreeSet<String> = cli.protect.iter().map(|id| id.to_string()).collect();
    let plan = retention::plan(
        entries,
        orphans,
        &rules,
        &protect,
        cli.orphans_older_than,
        SystemTime::now(),
    )
    .map_err(|e| match e {
        retention::PlanError::Empty(_) => anyhow::anyhow!(
            "{}",
            retention::PlanError::Empty(format!(
                " in {location}{}",
                cli.kind
                    .as_ref()
                    .map(|k| format!(" of kind {k}"))
                    .unwrap_or_default()
            ))
        ),
        other => anyhow::anyhow!("{other}"),
    })?;
    for id in &protect {
        if !plan
            .decisions
            .iter()
            .any(|d| d.entry.manifest.id.as_str() == id)
        {
            cli::info(format!(
                "note: --protect {id}: no such backup in {location}"
            ));
        }
    }
    print_plan(&plan);
    if cli.dry_run {
        return dry_run(&plan, &*backend);
    }
    execute(&plan, &*backend)
}

fn print_plan(plan: &PrunePlan) {
    for d in &plan.decisions {
        cli::info(format!(
            "{} {}: {}",
            if d.keep { "keep  " } else { "delete" },
            d.entry.manifest.id,
            d.why()
        ));
    }
    for o in &plan.orphans {
        cli::info(format!(
            "{} {} {}: {}",
            if o.sweep { "sweep " } else { "leave " },
            o.orphan.label(),
            o.orphan.key,
            o.why
        ));
    }
    let kept = plan.decisions.iter().filter(|d| d.keep).count();
    cli::info(format!(
        "plan: keep {kept}, delete {}, sweep {} leftover(s)",
        plan.decisions.len() - kept,
        plan.sweeps().count()
    ));
}

fn dry_run(plan: &PrunePlan, backend: &dyn Backend) -> anyhow::Result<()> {
    let dry = DryRun::new(backend);
    retention::execute(plan, &dry, &mut |_| ControlFlow::Continue(()))?;
    for step in dry.planned() {
        match step {
            Planned::Delete(key) => cli::info(format!("would delete {key}")),
            Planned::Abort(key, id) => cli::info(format!("would abort upload {id} of {key}")),
            Planned::Put(key, _) => cli::info(format!("would store {key}")),
        }
    }
    cli::info("dry run: nothing was changed");
    Ok(())
}

/// The manifest that tells the ledger a backup is gone.
fn pruned(stored: &Manifest, why: &str) -> Manifest {
    let mut m = stored.clone();
    m.status = Status::Pruned;
    m.error = None;
    m.extra
        .insert("pruned".into(), json!({"at": Timestamp::now(), "why": why}));
    m
}

fn execute(plan: &PrunePlan, backend: &dyn Backend) -> anyhow::Result<()> {
    let mut out = cli::manifests_out();
    let mut emit_error = None;
    let mut on_step = |step: Step<'_>| {
        let (manifest, line) = match step {
            Step::Removed(d) => (
                Some(pruned(&d.entry.manifest, &d.why())),
                format!("deleted {} ({})", d.entry.manifest.id, d.why()),
            ),
            Step::Swept(OrphanDecision {
                orphan, why, entry, ..
            }) => (
                entry
                    .as_ref()
                    .map(|e| pruned(&e.manifest, "its artifact was missing; sidecar swept")),
                format!("swept {} {} ({why})", orphan.label(), orphan.key),
            ),
        };
        cli::info(line);
        if let Some(m) = manifest {
            if let Err(e) = cli::emit(&mut out, &m) {
                emit_error = Some(e);
                return ControlFlow::Break(());
            }
        }
        if toolkit::interrupt::is_interrupted() {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    };
    let finished = retention::execute(plan, backend, &mut on_step).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}; stopped, the next run finishes the plan",
            e.what,
            cli::chain(&e.error)
        )
    })?;
    if let Some(e) = emit_error {
        return Err(e);
    }
    if !finished {
        cli::stop_if_interrupted()?;
    }
    let left = plan.orphans.iter().filter(|o| !o.sweep).count();
    if left > 0 {
        let youngest = plan
            .orphans
            .iter()
            .filter(|o| !o.sweep)
            .map(|o| o.orphan.age())
            .min()
            .unwrap_or_default();
        cli::info(format!(
            "{left} leftover(s) left for a later run (youngest {} old)",
            human_age(youngest)
        ));
    }
    Ok(())
}
