//! The backup set of a run: the manifests that share a `run` id. Every kind the rules ask
//! for must be there and `ok`; how far apart in time the backups were taken is reported
//! (and checked against `max_spread`).

use std::collections::BTreeMap;

use manifest::sections::{Check, CheckStatus};
use manifest::{Manifest, Status};

use crate::rules::SetRules;
use crate::{check, figures};

/// One run's check and the indices of its manifests.
pub struct SetCheck {
    /// The run id.
    pub run: String,
    /// `backup_set RUN`.
    pub check: Check,
    /// Indices (into the input) of the run's manifests.
    pub members: Vec<usize>,
}

/// The check of every run among `manifests` (those without a `run` belong to none).
/// Notices (`writing`) are not members.
pub fn backup_sets(manifests: &[Manifest], rules: &SetRules) -> Vec<SetCheck> {
    let mut runs: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, m) in manifests.iter().enumerate() {
        if let (Some(run), false) = (&m.run, m.status == Status::Writing) {
            runs.entry(run.to_string()).or_default().push(i);
        }
    }
    runs.into_iter()
        .map(|(run, members)| {
            let check = one_set(&run, &members, manifests, rules);
            SetCheck {
                run,
                check,
                members,
            }
        })
        .collect()
}

fn one_set(run: &str, members: &[usize], manifests: &[Manifest], rules: &SetRules) -> Check {
    let of = |i: &usize| &manifests[*i];
    let mut present: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failed = vec![];
    for m in members.iter().map(of) {
        present
            .entry(m.kind.to_string())
            .or_default()
            .push(m.id.to_string());
        if !m.is_ok() {
            failed.push(format!("{} ({})", m.id, m.status));
        }
    }
    let missing: Vec<String> = rules
        .kinds
        .iter()
        .filter(|k| {
            !members
                .iter()
                .map(of)
                .any(|m| m.kind.as_str() == k.as_str() && m.is_ok())
        })
        .cloned()
        .collect();
    let times: Vec<std::time::SystemTime> = members
        .iter()
        .map(|i| of(i).created_at.system_time())
        .collect();
    let first = times.iter().min().copied();
    let last = times.iter().max().copied();
    let spread = match (first, last) {
        (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default(),
        _ => Default::default(),
    };
    let spread_text = humantime::format_duration(std::time::Duration::from_secs(spread.as_secs()));
    let too_far = rules.max_spread.is_some_and(|max| spread > max);
    let mut problems = vec![];
    if !missing.is_empty() {
        problems.push(format!("no good {} backup", missing.join(", ")));
    }
    if !failed.is_empty() {
        problems.push(format!("failed: {}", failed.join(", ")));
    }
    if too_far {
        problems.push(format!(
            "taken {spread_text} apart, more than {}",
            humantime::format_duration(rules.max_spread.unwrap_or_default())
        ));
    }
    let kinds: Vec<String> = present
        .iter()
        .map(|(k, ids)| format!("{k} {}", ids.len()))
        .collect();
    let figures = figures! {
        "run" => run,
        "kinds" => present,
        "missing" => missing,
        "failed" => failed,
        "spread_s" => spread.as_secs(),
    };
    let (status, detail) = if problems.is_empty() {
        (
            CheckStatus::Pass,
            format!("{} taken within {spread_text}", kinds.join(", ")),
        )
    } else {
        (
            CheckStatus::Fail,
            format!("{} ({})", problems.join("; "), kinds.join(", ")),
        )
    };
    check(format!("backup_set {run}"), status, detail, figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: &str, at: &str, status: &str) -> Manifest {
        let ts = manifest::time::Timestamp::parse(at).unwrap();
        let line = serde_json::json!({
            "schema": "stackvault.manifest/1", "id": format!("{kind}_x_{}", ts.compact()),
            "run": "run_1", "kind": kind, "created_at": at, "status": status,
        });
        manifest::ndjson::parse_line(&line.to_string()).unwrap()
    }

    #[test]
    fn table_of_backup_sets() {
        let rules = SetRules {
            kinds: vec!["postgres".into(), "qdrant".into(), "neo4j".into()],
            max_spread: Some(std::time::Duration::from_secs(3600)),
        };
        // (manifests, status, detail contains)
        #[rustfmt::skip]
        let cases = [
            (vec![m("postgres", "2025-01-30T02:00:00Z", "ok"), m("qdrant", "2025-01-30T02:10:00Z", "ok"), m("neo4j", "2025-01-30T02:20:00Z", "ok")], CheckStatus::Pass, "neo4j 1, postgres 1, qdrant 1 taken within 20m"),
            (vec![m("postgres", "2025-01-30T02:00:00Z", "ok"), m("qdrant", "2025-01-30T02:10:00Z", "ok")], CheckStatus::Fail, "no good neo4j backup"),
            (vec![m("postgres", "2025-01-30T02:00:00Z", "ok"), m("qdrant", "2025-01-30T02:10:00Z", "failed"), m("neo4j", "2025-01-30T02:20:00Z", "ok")], CheckStatus::Fail, "no good qdrant backup; failed: qdrant_x_20250130_021000 (failed)"),
            (vec![m("postgres", "2025-01-30T02:00:00Z", "ok"), m("qdrant", "2025-01-30T02:10:00Z", "ok"), m("neo4j", "2025-01-30T04:00:00Z", "ok")], CheckStatus::Fail, "taken 2h apart, more than 1h"),
        ];
        // Without kinds required, a set of one kind passes: failures still fail it.
        let any = SetRules::default();
        let alone = [m("postgres", "2025-01-30T02:00:00Z", "ok")];
        assert_eq!(backup_sets(&alone, &any)[0].check.status, CheckStatus::Pass);
        let failed = [m("postgres", "2025-01-30T02:00:00Z", "failed")];
        assert_eq!(
            backup_sets(&failed, &any)[0].check.status,
            CheckStatus::Fail
        );
        for (manifests, status, want) in cases {
            let sets = backup_sets(&manifests, &rules);
            assert_eq!(sets.len(), 1);
            let c = &sets[0].check;
            assert_eq!(
                (c.status, c.name.as_str()),
                (status, "backup_set run_1"),
                "{}",
                c.detail
            );
            assert!(c.detail.contains(want), "{want:?} not in {}", c.detail);
            assert_eq!(sets[0].members.len(), manifests.len());
        }
    }
}
