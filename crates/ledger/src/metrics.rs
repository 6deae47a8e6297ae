//! Prometheus text exposition (format 0.0.4) of what the ledger knows, for node_exporter's
//! textfile collector or any scraper of a file.
//!
//! Every series has the labels `kind` and `source` (the name in the backup ids: the
//! database, the collection; empty for the seed's short ids). [`METRICS`] lists each
//! metric; the Grafana dashboard in `compose/` uses exactly these names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::{cutoff, epoch_secs, q, Ledger, Result};

/// A metric: name, Prometheus type, help.
pub type Metric = (&'static str, &'static str, &'static str);

/// Every metric written, in order.
pub const METRICS: &[Metric] = &[
    (
        "stackvault_backup_last_success_timestamp_seconds",
        "gauge",
        "When the newest successful backup was made (Unix time).",
    ),
    (
        "stackvault_backup_last_size_bytes",
        "gauge",
        "Size of the newest successful backup.",
    ),
    (
        "stackvault_backup_last_duration_seconds",
        "gauge",
        "Time from the start of the newest successful backup to its verified upload.",
    ),
    (
        "stackvault_backup_success_total",
        "counter",
        "Successful backups recorded in the ledger (pruned ones included).",
    ),
    (
        "stackvault_backup_failures_total",
        "counter",
        "Failed backups recorded in the ledger.",
    ),
    (
        "stackvault_backup_recent_failures",
        "gauge",
        "Failed backups made within the window (vault-ledger metrics --window).",
    ),
    (
        "stackvault_vault_backups",
        "gauge",
        "Backups in the vault: successful and not pruned.",
    ),
    (
        "stackvault_vault_size_bytes",
        "gauge",
        "Storage used in the vault by those backups.",
    ),
    (
        "stackvault_restore_last_timestamp_seconds",
        "gauge",
        "When the newest restore ended (Unix time).",
    ),
    (
        "stackvault_restore_last_duration_seconds",
        "gauge",
        "How long the newest restore took.",
    ),
    (
        "stackvault_restore_last_success",
        "gauge",
        "1 if the newest restore was proven (result ok), else 0.",
    ),
    (
        "stackvault_check_failures_total",
        "counter",
        "Integrity-check runs that failed.",
    ),
];

/// Label values: `kind`, `source`.
type Key = (String, String);

/// The exposition at `now`: failures within `window` of it count as recent.
impl Ledger {
    /// The metrics text (see the [module docs](self)).
    pub fn metrics(&mut self, window: Duration, now: SystemTime) -> Result<String> {
        let mut values: BTreeMap<&'static str, BTreeMap<Key, f64>> = BTreeMap::new();
        let mut put = |name: &'static str, key: &Key, v: f64| {
            values.entry(name).or_default().insert(key.clone(), v);
        };
        let key = |row: &postgres::Row| -> Key { (row.get(0), row.get(1)) };

        for row in self
            .client
            .query(
                "SELECT h.backup_type, coalesce(m.source, ''),
                        count(*) FILTER (WHERE h.status IN ('success', 'pruned')),
                        count(*) FILTER (WHERE coalesce(h.status, '') NOT IN ('success', 'pruned')),
                        count(*) FILTER (WHERE coalesce(h.status, '') NOT IN ('success', 'pruned')
                                           AND h.timestamp >= $1),
                        count(*) FILTER (WHERE h.status = 'success'),
                        coalesce(sum(h.size_bytes) FILTER (WHERE h.status = 'success'), 0)::float8
                 FROM backup_history h LEFT JOIN backup_manifest m USING (backup_id)
                 GROUP BY 1, 2",
                &[&cutoff(now, window)],
            )
            .map_err(q("cannot count backups"))?
        {
            let k = key(&row);
            put(
                "stackvault_backup_success_total",
                &k,
                row.get::<_, i64>(2) as f64,
            );
            put(
                "stackvault_backup_failures_total",
                &k,
                row.get::<_, i64>(3) as f64,
            );
            put(
                "stackvault_backup_recent_failures",
                &k,
                row.get::<_, i64>(4) as f64,
            );
            put("stackvault_vault_backups", &k, row.get::<_, i64>(5) as f64);
            put("stackvault_vault_size_bytes", &k, row.get::<_, f64>(6));
        }

        for row in self
            .client
            .query(
                "SELECT DISTINCT ON (h.backup_type, coalesce(m.source, ''))
                        h.backup_type, coalesce(m.source, ''), h.timestamp, h.size_bytes,
                        extract(epoch FROM m.stored_at - h.timestamp)::float8
                 FROM backup_history h LEFT JOIN backup_manifest m USING (backup_id)
                 WHERE h.status IN ('success', 'pruned')
                 ORDER BY h.backup_type, coalesce(m.source, ''), h.timestamp DESC, h.id DESC",
                &[],
            )
            .map_err(q("cannot read the last backups"))?
        {
            let k = key(&row);
            put(
                "stackvault_backup_last_success_timestamp_seconds",
                &k,
                epoch_secs(row.get(2)),
            );
            if let Some(size) = row.get::<_, Option<i64>>(3) {
                put("stackvault_backup_last_size_bytes", &k, size as f64);
            }
            if let Some(secs) = row.get::<_, Option<f64>>(4).filter(|s| *s >= 0.0) {
                put("stackvault_backup_last_duration_seconds", &k, secs);
            }
        }

        for row in self
            .client
            .query(
                "SELECT DISTINCT ON (h.backup_type, coalesce(m.source, ''))
                        h.backup_type, coalesce(m.source, ''),
                        coalesce(r.finished_at, r.recorded_at), r.duration_ms, r.result
                 FROM backup_restore r
                 JOIN backup_history h USING (backup_id)
                 LEFT JOIN backup_manifest m USING (backup_id)
                 ORDER BY h.backup_type, coalesce(m.source, ''),
                          coalesce(r.finished_at, r.recorded_at) DESC, r.id DESC",
                &[],
            )
            .map_err(q("cannot read the last restores"))?
        {
            let k = key(&row);
            put(
                "stackvault_restore_last_timestamp_seconds",
                &k,
                epoch_secs(row.get(2)),
            );
            if let Some(ms) = row.get::<_, Option<i64>>(3) {
                put(
                    "stackvault_restore_last_duration_seconds",
                    &k,
                    ms as f64 / 1000.0,
                );
            }
            let ok = row.get::<_, String>(4) == "ok";
            put(
                "stackvault_restore_last_success",
                &k,
                if ok { 1.0 } else { 0.0 },
            );
        }

        for row in self
            .client
            .query(
                "SELECT h.backup_type, coalesce(m.source, ''),
                        count(*) FILTER (WHERE c.result = 'fail')
                 FROM backup_check_run c
                 JOIN backup_history h USING (backup_id)
                 LEFT JOIN backup_manifest m USING (backup_id)
                 GROUP BY 1, 2",
                &[],
            )
            .map_err(q("cannot count integrity checks"))?
        {
            put(
                "stackvault_check_failures_total",
                &key(&row),
                row.get::<_, i64>(2) as f64,
            );
        }

        Ok(render(&values))
    }
}

fn render(values: &BTreeMap<&'static str, BTreeMap<Key, f64>>) -> String {
    let mut out = String::new();
    for (name, kind, help) in METRICS {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for ((k, s), v) in values.get(name).into_iter().flatten() {
            let _ = writeln!(
                out,
                "{name}{{kind=\"{}\",source=\"{}\"}} {}",
                escape(k),
                escape(s),
                number(*v)
            );
        }
    }
    out
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Integers without a fraction, others as Rust prints them (both valid Go floats).
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.is_finite() {
        format!("{v}")
    } else {
        "NaN".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_samples() {
        let mut values = BTreeMap::new();
        let mut one = BTreeMap::new();
        one.insert(("postgres".to_owned(), "a\"b\\c\nd".to_owned()), 3.0);
        one.insert(("qdrant".to_owned(), String::new()), 1.5);
        values.insert("stackvault_vault_backups", one);
        let text = render(&values);
        let cases = [
            "# TYPE stackvault_vault_backups gauge",
            "stackvault_vault_backups{kind=\"postgres\",source=\"a\\\"b\\\\c\\nd\"} 3",
            "stackvault_vault_backups{kind=\"qdrant\",source=\"\"} 1.5",
            "# TYPE stackvault_backup_failures_total counter",
        ];
        for want in cases {
            assert!(text.lines().any(|l| l == want), "{want}\n{text}");
        }
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        for (name, kind, _) in METRICS {
            assert!(name.starts_with("stackvault_"), "{name}");
            assert_eq!(*kind == "counter", name.ends_with("_total"), "{name}");
            assert!(
                !name.contains("seconds") || name.ends_with("_seconds"),
                "{name}: unit last"
            );
        }
    }
}
