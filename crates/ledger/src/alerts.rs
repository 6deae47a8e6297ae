//! The seed's five alerts, from the ledger's rows.
//!
//! | alert | fires when | default |
//! | --- | --- | --- |
//! | `backup_failed` | a backup failed (status `failed`, or a word this version does not know) in the window | last 1 day |
//! | `backup_missing` | a kind has no successful backup within the maximum age | 25 h |
//! | `size_changed` | the newest good backup of a kind and source, made in the window, differs in size from the previous good one by more than the threshold | 50 % |
//! | `restore_slow` | a restore that ended in the window took longer than the threshold | 60 min |
//! | `validation_failed` | an integrity check failed, or a restore did not prove itself (`mismatch`, `failed`), in the window | — |
//!
//! Sizes are compared per kind **and source** (the database, the collection): one kind
//! holds databases of very different sizes, so comparing across them would fire nightly.
//! A `pruned` backup was a good one: it counts as a success for the age and size alerts.

use std::fmt;
use std::time::{Duration, SystemTime};

use manifest::time::{human_age, Timestamp};

use crate::{cutoff, q, Ledger, Result};

/// The thresholds, each a flag of `vault-ledger check`.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// How far back failures, size changes, slow restores and failed checks are looked for.
    pub window: Duration,
    /// How old the newest successful backup of a kind may be.
    pub max_age: Duration,
    /// How much (percent) a backup's size may differ from the previous good one's.
    pub size_change_percent: f64,
    /// How long a restore may take.
    pub max_restore: Duration,
    /// Kinds that must have backups even if the ledger has never seen one.
    pub kinds: Vec<String>,
}

impl Default for Thresholds {
    /// The seed's: failures in the last day, a success within 25 h, 50 % size change, 60 min
    /// restores.
    fn default() -> Self {
        Thresholds {
            window: Duration::from_secs(86_400),
            max_age: Duration::from_secs(25 * 3600),
            size_change_percent: 50.0,
            max_restore: Duration::from_secs(3600),
            kinds: Vec::new(),
        }
    }
}

/// Which alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertKind {
    /// A backup failed.
    BackupFailed,
    /// No successful backup of a kind recently.
    BackupMissing,
    /// A backup's size jumped.
    SizeChanged,
    /// A restore took too long.
    RestoreSlow,
    /// An integrity check or a restore's proof failed.
    ValidationFailed,
}

impl AlertKind {
    /// The alert's name, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::BackupFailed => "backup_failed",
            AlertKind::BackupMissing => "backup_missing",
            AlertKind::SizeChanged => "size_changed",
            AlertKind::RestoreSlow => "restore_slow",
            AlertKind::ValidationFailed => "validation_failed",
        }
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Which.
    pub kind: AlertKind,
    /// What it is about: a backup id, or a kind.
    pub subject: String,
    /// For people.
    pub message: String,
}

impl fmt::Display for Alert {
    /// `ALERT name subject: message`, one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ALERT {} {}: {}",
            self.kind.as_str(),
            self.subject,
            self.message.replace('\n', " ")
        )
    }
}

fn ts(t: SystemTime) -> String {
    Timestamp::from_system_time(t).to_string()
}

impl Ledger {
    /// Every alert that fires at `now`, by kind then subject.
    pub fn check(&mut self, t: &Thresholds, now: SystemTime) -> Result<Vec<Alert>> {
        let since = cutoff(now, t.window);
        let window = human_age(t.window);
        let mut alerts = Vec::new();

        for row in self
            .client
            .query(
                "SELECT backup_id, backup_type, timestamp, status, error_message
                 FROM backup_history
                 WHERE coalesce(status, '') NOT IN ('success', 'pruned') AND timestamp >= $1
                 ORDER BY timestamp, backup_id",
                &[&since],
            )
            .map_err(q("cannot look for failed backups"))?
        {
            let status: Option<String> = row.get(3);
            let error: Option<String> = row.get(4);
            alerts.push(Alert {
                kind: AlertKind::BackupFailed,
                subject: row.get(0),
                message: format!(
                    "{} backup {} at {} (within {window}): {}",
                    row.get::<_, String>(1),
                    status.as_deref().unwrap_or("without status"),
                    ts(row.get(2)),
                    error.as_deref().unwrap_or("no error message")
                ),
            });
        }

        let mut seen = Vec::new();
        for row in self
            .client
            .query(
                "SELECT backup_type,
                        max(timestamp) FILTER (WHERE status IN ('success', 'pruned'))
                 FROM backup_history GROUP BY backup_type ORDER BY backup_type",
                &[],
            )
            .map_err(q("cannot look for missing backups"))?
        {
            let kind: String = row.get(0);
            let last: Option<SystemTime> = row.get(1);
            seen.push(kind.clone());
            let message = match last {
                Some(last) if now.duration_since(last).unwrap_or_default() <= t.max_age => continue,
                Some(last) => format!(
                    "no successful {kind} backup within {}: the last one was at {} ({} ago)",
                    human_age(t.max_age),
                    ts(last),
                    human_age(now.duration_since(last).unwrap_or_default())
                ),
                None => format!("no successful {kind} backup at all in the ledger"),
            };
            alerts.push(Alert {
                kind: AlertKind::BackupMissing,
                subject: kind,
                message,
            });
        }
        for kind in t.kinds.iter().filter(|k| !seen.contains(k)) {
            alerts.push(Alert {
                kind: AlertKind::BackupMissing,
                subject: kind.clone(),
                message: format!("no {kind} backup at all in the ledger"),
            });
        }

        for row in self
            .client
            .query(
                "SELECT backup_id, backup_type, source, size_bytes, prev_id, prev_size
                 FROM (SELECT h.backup_id, h.backup_type, coalesce(m.source, '') AS source,
                              h.timestamp, h.size_bytes,
                              lead(h.backup_id) OVER w AS prev_id,
                              lead(h.size_bytes) OVER w AS prev_size,
                              row_number() OVER w AS n
                       FROM backup_history h LEFT JOIN backup_manifest m USING (backup_id)
                       WHERE h.status IN ('success', 'pruned') AND h.size_bytes IS NOT NULL
                       WINDOW w AS (PARTITION BY h.backup_type, coalesce(m.source, '')
                                    ORDER BY h.timestamp DESC, h.id DESC)) latest
                 WHERE n = 1 AND timestamp >= $1 AND prev_size IS NOT NULL
                 ORDER BY backup_id",
                &[&since],
            )
            .map_err(q("cannot compare backup sizes"))?
        {
            let (size, prev): (i64, i64) = (row.get(3), row.get(5));
            let change = if prev == 0 {
                if size == 0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                (size - prev) as f64 * 100.0 / prev as f64
            };
            if change.abs() <= t.size_change_percent {
                continue;
            }
            alerts.push(Alert {
                kind: AlertKind::SizeChanged,
                subject: row.get(0),
                message: format!(
                    "{} backup of {:?} is {size} bytes, {:+.0} % against the previous good one \
                     ({}, {prev} bytes; threshold {} %)",
                    row.get::<_, String>(1),
                    row.get::<_, String>(2),
                    change,
                    row.get::<_, String>(4),
                    t.size_change_percent
                ),
            });
        }

        let max_ms = t.max_restore.as_millis().min(i64::MAX as u128) as i64;
        for row in self
            .client
            .query(
                "SELECT backup_id, duration_ms, target::text FROM backup_restore
                 WHERE duration_ms > $1 AND coalesce(finished_at, recorded_at) >= $2
                 ORDER BY coalesce(finished_at, recorded_at), id",
                &[&max_ms, &since],
            )
            .map_err(q("cannot look for slow restores"))?
        {
            let ms: i64 = row.get(1);
            alerts.push(Alert {
                kind: AlertKind::RestoreSlow,
                subject: row.get(0),
                message: format!(
                    "a restore took {} (threshold {}){}",
                    human_age(Duration::from_millis(ms as u64)),
                    human_age(t.max_restore),
                    row.get::<_, Option<String>>(2)
                        .map(|t| format!(", target {t}"))
                        .unwrap_or_default()
                ),
            });
        }

        for row in self
            .client
            .query(
                "SELECT backup_id, 'integrity check ' || result, coalesce(items::text, ''),
                        coalesce(checked_at, recorded_at) AS at
                 FROM backup_check_run WHERE result = 'fail' AND coalesce(checked_at, recorded_at) >= $1
                 UNION ALL
                 SELECT backup_id, 'restore ' || result, coalesce(note, ''),
                        coalesce(finished_at, recorded_at) AS at
                 FROM backup_restore WHERE result IN ('mismatch', 'failed')
                   AND coalesce(finished_at, recorded_at) >= $1
                 ORDER BY at, backup_id",
                &[&since],
            )
            .map_err(q("cannot look for failed validations"))?
        {
            let what: String = row.get(1);
            let detail: String = row.get(2);
            alerts.push(Alert {
                kind: AlertKind::ValidationFailed,
                subject: row.get(0),
                message: format!(
                    "{what} at {}{}",
                    ts(row.get(3)),
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", shorten(&detail, 400))
                    }
                ),
            });
        }
        alerts.sort_by_key(|a| a.kind);
        Ok(alerts)
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push('…');
    cut
}

/// The alerts as a Slack / Mattermost incoming-webhook body: `{"text": …}`, one line per
/// alert.
pub fn webhook_body(alerts: &[Alert]) -> serde_json::Value {
    let lines: Vec<String> = alerts.iter().map(|a| a.to_string()).collect();
    serde_json::json!({
        "text": format!("stackvault: {} alert(s)\n{}", alerts.len(), lines.join("\n"))
    })
}
