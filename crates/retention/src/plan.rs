//! The prune plan: computed from the vault's listing alone, then executed.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::time::{Duration, SystemTime};

use manifest::time::human_age;
use manifest::Status;
use vault::layout::sidecar_key;
use vault::ops::{self, Entry, Orphan, OrphanKind};
use vault::Backend;

use crate::rules::{Reason, Rules};

/// What happens to one backup.
#[derive(Clone, Debug)]
pub struct Decision {
    /// The backup.
    pub entry: Entry,
    /// Kept (or deleted).
    pub keep: bool,
    /// Why: every rule that keeps it, or why it is deleted.
    pub reasons: Vec<Reason>,
}

impl Decision {
    /// The reasons as one phrase.
    pub fn why(&self) -> String {
        self.reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What happens to one leftover.
#[derive(Clone, Debug)]
pub struct OrphanDecision {
    /// The leftover.
    pub orphan: Orphan,
    /// Swept (or left).
    pub sweep: bool,
    /// Why.
    pub why: String,
    /// For a sidecar whose artifact is gone: the backup it still lists.
    pub entry: Option<Entry>,
}

/// Everything a prune will do, decided before it does anything.
#[derive(Clone, Debug, Default)]
pub struct PrunePlan {
    /// Every backup, by kind and source, newest first.
    pub decisions: Vec<Decision>,
    /// Every leftover, by key.
    pub orphans: Vec<OrphanDecision>,
}

impl PrunePlan {
    /// The backups to delete, oldest first (the order they are deleted in).
    pub fn deletions(&self) -> Vec<&Decision> {
        let mut out: Vec<&Decision> = self.decisions.iter().filter(|d| !d.keep).collect();
        out.sort_by(|a, b| {
            a.entry
                .manifest
                .created_at
                .cmp(&b.entry.manifest.created_at)
                .then_with(|| a.entry.manifest.id.cmp(&b.entry.manifest.id))
        });
        out
    }

    /// The leftovers to sweep.
    pub fn sweeps(&self) -> impl Iterator<Item = &OrphanDecision> {
        self.orphans.iter().filter(|o| o.sweep)
    }
}

/// Why no plan was made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// Nothing listed: a wrong vault URL, prefix or kind is likelier than an empty vault.
    #[error(
        "the vault lists no backups{0}: refusing to prune (is it the right --vault, prefix or --kind?)"
    )]
    Empty(String),
    /// The plan would leave a kind with no backup at all.
    #[error(
        "the plan would delete all {count} {kind} backups (none of them is a good backup): \
         refusing; delete them by hand if that is what you want"
    )]
    WouldDeleteAll {
        /// The kind.
        kind: String,
        /// How many.
        count: usize,
    },
}

fn is_tagged(entry: &Entry) -> bool {
    entry
        .manifest
        .extra
        .get("tags")
        .and_then(|t| t.as_array())
        .is_some_and(|tags| tags.iter().any(|t| t == "protected"))
}

/// The retain-until date of a backup still under S3 Object Lock at `now`. A `vault.lock`
/// that cannot be read counts as locked for good: better kept than a delete the server
/// refuses halfway (sidecar gone, artifact locked).
fn locked_until(entry: &Entry, now: SystemTime) -> Option<manifest::time::Timestamp> {
    let lock = entry.manifest.vault.as_ref()?.lock()?;
    match lock {
        Ok(lock) if lock.retain_until.system_time() <= now => None,
        Ok(lock) => Some(lock.retain_until),
        Err(_) => Some(manifest::time::Timestamp::from_system_time(
            now + Duration::from_secs(100 * 365 * 86_400),
        )),
    }
}

/// Decides what to keep and delete among `entries` (the catalogue) and which `orphans` to
/// sweep (those older than `grace` and not in progress), at `now`.
///
/// # Errors
///
/// [`PlanError::Empty`] when there is no backup; [`PlanError::WouldDeleteAll`] when every
/// backup of a kind would go.
pub fn plan(
    entries: Vec<Entry>,
    orphans: Vec<Orphan>,
    rules: &Rules,
    protect: &BTreeSet<String>,
    grace: Duration,
    now: SystemTime,
) -> Result<PrunePlan, PlanError> {
    if entries.is_empty() {
        return Err(PlanError::Empty(String::new()));
    }
    // A listed backup whose artifact is gone is no backup: its sidecar is a leftover.
    let lost: BTreeSet<_> = orphans
        .iter()
        .filter(|o| o.kind == OrphanKind::SidecarWithoutArtifact)
        .map(|o| o.key.clone())
        .collect();
    let mut listing_of_lost = BTreeMap::new();
    let mut groups: BTreeMap<(String, String), Vec<Entry>> = BTreeMap::new();
    for entry in entries {
        if lost.contains(&sidecar_key(&entry.key)) {
            listing_of_lost.insert(sidecar_key(&entry.key), entry);
            continue;
        }
        let m = &entry.manifest;
        let key = (m.kind.to_string(), m.id.name().unwrap_or("").to_owned());
        groups.entry(key).or_default().push(entry);
    }

    let mut decisions = Vec::new();
    for (_, mut group) in groups {
        group.sort_by(|a, b| {
            b.manifest
                .created_at
                .cmp(&a.manifest.created_at)
                .then_with(|| b.manifest.id.cmp(&a.manifest.id))
        });
        let times: Vec<(SystemTime, bool)> = group
            .iter()
            .map(|e| {
                (
                    e.manifest.created_at.system_time(),
                    e.manifest.status == Status::Ok,
                )
            })
            .collect();
        let kept_by_rules = rules.keep(&times, now);
        let newest_good = times.iter().position(|(_, good)| *good);
        for (i, (entry, by_rules)) in group.into_iter().zip(kept_by_rules).enumerate() {
            let mut reasons = Vec::new();
            if Some(i) == newest_good {
                reasons.push(Reason::NewestGood);
            }
            if protect.contains(entry.manifest.id.as_str()) {
                reasons.push(Reason::Protected);
            }
            if is_tagged(&entry) {
                reasons.push(Reason::Tagged);
            }
            if let Some(until) = locked_until(&entry, now) {
                reasons.push(Reason::Locked(until));
            }
            reasons.extend(by_rules);
            let keep = !reasons.is_empty();
            if !keep {
                reasons.push(if entry.manifest.status == Status::Ok {
                    Reason::Expired
                } else {
                    Reason::NotGood(entry.manifest.status.to_string())
                });
            }
            decisions.push(Decision {
                entry,
                keep,
                reasons,
            });
        }
    }

    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for d in &decisions {
        let counts = per_kind
            .entry(d.entry.manifest.kind.to_string())
            .or_default();
        counts.0 += 1;
        counts.1 += usize::from(!d.keep);
    }
    if let Some((kind, (count, _))) = per_kind.into_iter().find(|(_, (n, del))| n == del) {
        return Err(PlanError::WouldDeleteAll { kind, count });
    }

    let orphans = orphans
        .into_iter()
        .map(|orphan| {
            let age = orphan.age();
            let (sweep, why) = match &orphan.kind {
                OrphanKind::Unfinished(u) if u.in_progress => {
                    (false, "still being written by a live process".to_owned())
                }
                _ if age < grace => (
                    false,
                    format!(
                        "{} old, younger than the grace period {} (a store in progress looks \
                         like this)",
                        human_age(age),
                        human_age(grace)
                    ),
                ),
                _ => (true, format!("{} old", human_age(age))),
            };
            let entry = listing_of_lost.remove(&orphan.key);
            OrphanDecision {
                orphan,
                sweep,
                why,
                entry,
            }
        })
        .collect();
    Ok(PrunePlan { decisions, orphans })
}

/// One step [`execute`] did.
#[derive(Debug)]
pub enum Step<'a> {
    /// A backup's sidecar is deleted (it is no longer listed), and its artifact too unless
    /// [`execute`] then returns an error saying it was left.
    Removed(&'a Decision),
    /// A leftover is gone.
    Swept(&'a OrphanDecision),
}

/// A step failed; the plan stopped there.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {error}")]
pub struct StepError {
    /// What was being done.
    pub what: String,
    /// The vault's error.
    #[source]
    pub error: vault::Error,
}

/// Carries out `plan` on `backend`: the deletions oldest first (each through
/// `vault::ops::remove_backup`: sidecar, then artifact), then the sweeps. `on_step` hears
/// of each step when it is done and may stop the run ([`ControlFlow::Break`]: an
/// interruption). Returns whether the whole plan was carried out.
///
/// # Errors
///
/// The first step that failed; the steps before it are done, the rest are left for the
/// next run. A removal whose sidecar went and whose artifact did not is reported as
/// [`Step::Removed`] first (the backup is no longer listed), then as the error.
pub fn execute(
    plan: &PrunePlan,
    backend: &dyn Backend,
    on_step: &mut dyn FnMut(Step<'_>) -> ControlFlow<()>,
) -> Result<bool, StepError> {
    for decision in plan.deletions() {
        let entry = &decision.entry;
        if let Err(error) = ops::remove_backup(backend, entry) {
            let sidecar_gone = matches!(backend.exists(&sidecar_key(&entry.key)), Ok(false));
            if sidecar_gone {
                let _ = on_step(Step::Removed(decision));
            }
            return Err(StepError {
                what: format!("cannot delete {}", entry.manifest.id),
                error,
            });
        }
        if on_step(Step::Removed(decision)).is_break() {
            return Ok(false);
        }
    }
    for orphan in plan.sweeps() {
        ops::sweep(backend, &orphan.orphan).map_err(|error| StepError {
            what: format!(
                "cannot sweep {} {}",
                orphan.orphan.label(),
                orphan.orphan.key
            ),
            error,
        })?;
        if on_step(Step::Swept(orphan)).is_break() {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use manifest::time::Timestamp;
    use manifest::{Artifact, Kind, Manifest, Name, Sha256};
    use toolkit::progress::Hidden;
    use vault::ops::{store, Verify};
    use vault::{DryRun, MemBackend};

    /// 2025-03-31T12:00:00Z.
    const NOW: u64 = 1_743_422_400;
    const DAY: u64 = 86_400;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
    }

    /// A backup of `kind`/`name` made `days` ago, with `status`; `t` adds the protected tag.
    fn manifest(kind: Kind, name: &str, days: u64, status: Status, tagged: bool) -> Manifest {
        let at = Timestamp::from_system_time(now() - Duration::from_secs(days * DAY));
        let mut m = Manifest::new(kind, Some(&Name::new(name).unwrap()), at);
        m.status = status;
        if tagged {
            m.extra
                .insert("tags".into(), serde_json::json!(["nightly", "protected"]));
        }
        m
    }

    fn entry(m: Manifest) -> Entry {
        let key = vault::ObjectKey::new(format!("{}{}", vault::layout::id_prefix(&m.id), "dump"))
            .unwrap();
        Entry { key, manifest: m }
    }

    /// `spec`: one token per backup, `{name}{days}{flags}`: flags `f` failed, `t` tagged,
    /// `l` locked (Object Lock) for 10 more days, `x` locked until yesterday.
    fn entries(spec: &str) -> Vec<Entry> {
        spec.split_whitespace()
            .map(|tok| {
                let name: String = tok.chars().take_while(|c| c.is_ascii_lowercase()).collect();
                let rest = &tok[name.len()..];
                let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                let flags = &rest[digits.len()..];
                let status = if flags.contains('f') {
                    Status::Failed
                } else {
                    Status::Ok
                };
                let mut m = manifest(
                    Kind::Postgres,
                    &name,
                    digits.parse().unwrap(),
                    status,
                    flags.contains('t'),
                );
                for (flag, until) in [
                    ('l', now() + Duration::from_secs(10 * DAY)),
                    ('x', now() - Duration::from_secs(DAY)),
                ] {
                    if flags.contains(flag) {
                        let mut record = manifest::VaultRecord {
                            url: format!("s3://b/{}", m.id),
                            bytes: 1,
                            sha256: manifest::Sha256::of(b"x"),
                            stored_at: m.created_at.clone(),
                            verified: None,
                            extra: Default::default(),
                        };
                        record.set_lock(Some(&manifest::sections::Lock {
                            mode: "compliance".into(),
                            retain_until: Timestamp::from_system_time(until),
                            extra: Default::default(),
                        }));
                        m.vault = Some(record);
                    }
                }
                entry(m)
            })
            .collect()
    }

    /// The plan as `name+days:k|d` tokens in the order of `spec`, or the error.
    fn outcome(spec: &str, rules: Rules, protect: &[&str]) -> String {
        let protect: BTreeSet<String> = protect.iter().map(|id| id.to_string()).collect();
        match plan(
            entries(spec),
            vec![],
            &rules,
            &protect,
            Duration::ZERO,
            now(),
        ) {
            Err(e) => format!("error: {e}"),
            Ok(p) => spec
                .split_whitespace()
                .zip(entries(spec))
                .map(|(tok, e)| {
                    let d = p
                        .decisions
                        .iter()
                        .find(|d| d.entry.manifest.id == e.manifest.id)
                        .unwrap();
                    format!("{tok}:{}", if d.keep { 'k' } else { 'd' })
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    fn within(days: u64) -> Rules {
        Rules {
            within: Some(Duration::from_secs(days * DAY)),
            ..Rules::default()
        }
    }

    fn last(n: usize) -> Rules {
        Rules {
            last: Some(n),
            ..Rules::default()
        }
    }

    #[test]
    fn table_of_safety_rules() {
        let id = |name: &str, days: u64| {
            manifest(Kind::Postgres, name, days, Status::Ok, false)
                .id
                .to_string()
        };
        let a40 = id("a", 40);
        #[rustfmt::skip]
        let cases: Vec<(&str, &str, Rules, Vec<&str>, String)> = vec![
            ("every backup old: the newest is kept", "a40 a50 a60", within(30), vec![], "a40:k a50:d a60:d".into()),
            ("per source: each keeps its newest", "a40 b45 a50 b55", within(30), vec![], "a40:k b45:k a50:d b55:d".into()),
            ("a failed newest is not the one kept", "a1f a40 a50", last(1), vec![], "a1f:d a40:k a50:d".into()),
            ("a failed backup inside the age is still not kept", "a1f a2 a3", within(30), vec![], "a1f:d a2:k a3:k".into()),
            ("--protect keeps an old one", "a1 a40 a50", within(30), vec![a40.as_str()], "a1:k a40:k a50:d".into()),
            ("a protected tag keeps an old one", "a1 a40t a50", within(30), vec![], "a1:k a40t:k a50:d".into()),
            ("protect keeps a failed one too", "a1 a2f", last(1), vec![], "a1:k a2f:d".into()),
            ("a lock keeps an expired one until its date, not after", "a1 a40l a50x", within(30), vec![], "a1:k a40l:k a50x:d".into()),
            ("a locked failed one is kept too: the server would refuse", "a1 a2fl", last(1), vec![], "a1:k a2fl:k".into()),
            ("only failed backups: refused", "a1f a2f", within(30), vec![],
             "error: the plan would delete all 2 postgres backups (none of them is a good backup): refusing; delete them by hand if that is what you want".into()),
            ("an empty listing: refused", "", within(30), vec![],
             "error: the vault lists no backups: refusing to prune (is it the right --vault, prefix or --kind?)".into()),
        ];
        for (what, spec, rules, protect, want) in cases {
            assert_eq!(outcome(spec, rules, &protect), want, "{what}");
        }
    }

    fn stored(vault: &MemBackend, dir: &std::path::Path, m: &Manifest) -> Manifest {
        let path = dir.join(format!("{}.dump", m.id));
        std::fs::write(&path, m.id.as_bytes()).unwrap();
        let mut m = m.clone();
        m.artifact = Some(Artifact {
            path,
            format: "pg_dump/custom".into(),
            bytes: m.id.len() as u64,
            sha256: Sha256::of(m.id.as_bytes()),
            extra: Default::default(),
        });
        store(vault, &m, Verify::Size, &Hidden).unwrap().manifest
    }

    #[test]
    fn a_dry_run_plans_the_deletions_an_interrupted_run_is_finished_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let vault = MemBackend::new();
        for days in [1, 40, 50, 60] {
            stored(
                &vault,
                dir.path(),
                &manifest(Kind::Postgres, "a", days, Status::Ok, false),
            );
        }
        let make = |vault: &MemBackend| {
            let (entries, _) = ops::catalogue(vault, None).unwrap();
            let orphans = ops::orphans(vault, "").unwrap();
            plan(
                entries,
                orphans,
                &within(30),
                &BTreeSet::new(),
                Duration::ZERO,
                now(),
            )
            .unwrap()
        };
        let first = make(&vault);
        assert_eq!(first.deletions().len(), 3);

        let dry = DryRun::new(&vault);
        assert!(execute(&first, &dry, &mut |_| ControlFlow::Continue(())).unwrap());
        assert_eq!(dry.planned().len(), 6, "three sidecars, three artifacts");
        assert_eq!(
            vault.list("").unwrap().len(),
            8,
            "a dry run changes nothing"
        );

        // Stopped after the first removal (a signal), then the next run.
        let mut removed = vec![];
        let done = execute(&first, &vault, &mut |step| {
            if let Step::Removed(d) = step {
                removed.push(d.entry.manifest.id.to_string());
            }
            ControlFlow::Break(())
        })
        .unwrap();
        assert!(!done);
        assert_eq!(removed.len(), 1);
        // What an interruption between sidecar and artifact leaves: an artifact alone.
        let second = make(&vault);
        let half = &second.deletions()[0].entry;
        vault.delete(&sidecar_key(&half.key)).unwrap();
        let third = make(&vault);
        assert_eq!(third.deletions().len(), 1);
        assert_eq!(
            third.sweeps().count(),
            1,
            "the artifact left alone is swept"
        );
        assert!(execute(&third, &vault, &mut |_| ControlFlow::Continue(())).unwrap());
        let (left, _) = ops::catalogue(&vault, None).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(
            vault.list("").unwrap().len(),
            2,
            "one artifact and its sidecar"
        );
        assert!(ops::orphans(&vault, "").unwrap().is_empty());
    }
}
