//! What operators ask the ledger: the latest backups, and one backup in full.

use std::time::SystemTime;

use postgres::Row as PgRow;
use serde_json::Value;

use crate::{q, Ledger, Result};

/// Which rows [`Ledger::list`] returns.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only this kind (`backup_type`).
    pub kind: Option<String>,
    /// Only this status (`success`, `failed`, `pruned`, …).
    pub status: Option<String>,
    /// Only this run.
    pub run: Option<String>,
    /// Only backups made at or after this time.
    pub since: Option<SystemTime>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// One backup as the ledger has it.
#[derive(Clone, Debug, PartialEq)]
pub struct Backup {
    /// `backup_id`.
    pub id: String,
    /// `backup_type`: the kind.
    pub kind: String,
    /// When the backup was made (UTC).
    pub timestamp: SystemTime,
    /// `size_bytes`.
    pub size_bytes: Option<i64>,
    /// `checksum`: SHA-256 hex.
    pub checksum: Option<String>,
    /// `status`: `success`, `failed`, `pruned`, …
    pub status: Option<String>,
    /// `error_message`.
    pub error: Option<String>,
    /// The run, if the manifest had one.
    pub run: Option<String>,
    /// The source (the name in the id).
    pub source: Option<String>,
    /// Where the artifact is stored.
    pub vault_url: Option<String>,
    /// The manifest last recorded for it (none for rows the seed's scripts wrote).
    pub manifest: Option<Value>,
}

/// A restore of a backup.
#[derive(Clone, Debug, PartialEq)]
pub struct RestoreRow {
    /// Where it went.
    pub target: Option<Value>,
    /// When it ended.
    pub finished_at: Option<SystemTime>,
    /// How long it took.
    pub duration_ms: Option<i64>,
    /// `ok`, `mismatch`, `unverified`, `failed`.
    pub result: String,
    /// Why, when the result says little.
    pub note: Option<String>,
}

/// An integrity-check run on a backup.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckRow {
    /// When it ran.
    pub checked_at: Option<SystemTime>,
    /// `pass`, `fail`, `skip`.
    pub result: String,
    /// The checks: `name`, `status`, `detail`, `figures`.
    pub items: Option<Value>,
}

/// One backup with everything recorded about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Details {
    /// The backup.
    pub backup: Backup,
    /// Its restores, oldest first.
    pub restores: Vec<RestoreRow>,
    /// Its integrity checks, oldest first.
    pub checks: Vec<CheckRow>,
}

const SELECT: &str = "SELECT h.backup_id, h.backup_type, h.timestamp, h.size_bytes, h.checksum,
        h.status, h.error_message, m.run, m.source, m.vault_url, m.manifest
    FROM backup_history h LEFT JOIN backup_manifest m USING (backup_id)";

fn backup(row: &PgRow) -> Backup {
    Backup {
        id: row.get(0),
        kind: row.get(1),
        timestamp: row.get(2),
        size_bytes: row.get(3),
        checksum: row.get(4),
        status: row.get(5),
        error: row.get(6),
        run: row.get(7),
        source: row.get(8),
        vault_url: row.get(9),
        manifest: row.get(10),
    }
}

impl Ledger {
    /// The newest backups that pass `filter`, newest first.
    pub fn list(&mut self, filter: &Filter) -> Result<Vec<Backup>> {
        let sql = format!(
            "{SELECT}
             WHERE ($1::text IS NULL OR h.backup_type = $1)
               AND ($2::text IS NULL OR h.status = $2)
               AND ($3::text IS NULL OR m.run = $3)
               AND ($4::timestamp IS NULL OR h.timestamp >= $4)
             ORDER BY h.timestamp DESC, h.id DESC
             LIMIT $5"
        );
        let rows = self
            .client
            .query(
                sql.as_str(),
                &[
                    &filter.kind,
                    &filter.status,
                    &filter.run,
                    &filter.since,
                    &filter.limit,
                ],
            )
            .map_err(q("cannot list backup_history"))?;
        Ok(rows.iter().map(backup).collect())
    }

    /// The backup `id` with its restores and checks, `None` if the ledger does not have it.
    pub fn show(&mut self, id: &str) -> Result<Option<Details>> {
        let sql = format!("{SELECT} WHERE h.backup_id = $1");
        let Some(row) = self
            .client
            .query_opt(sql.as_str(), &[&id])
            .map_err(q("cannot read backup_history"))?
        else {
            return Ok(None);
        };
        let restores = self
            .client
            .query(
                "SELECT target, finished_at, duration_ms, result, note FROM backup_restore
                 WHERE backup_id = $1 ORDER BY coalesce(finished_at, recorded_at), id",
                &[&id],
            )
            .map_err(q("cannot read backup_restore"))?
            .iter()
            .map(|r| RestoreRow {
                target: r.get(0),
                finished_at: r.get(1),
                duration_ms: r.get(2),
                result: r.get(3),
                note: r.get(4),
            })
            .collect();
        let checks = self
            .client
            .query(
                "SELECT checked_at, result, items FROM backup_check_run
                 WHERE backup_id = $1 ORDER BY coalesce(checked_at, recorded_at), id",
                &[&id],
            )
            .map_err(q("cannot read backup_check_run"))?
            .iter()
            .map(|r| CheckRow {
                checked_at: r.get(0),
                result: r.get(1),
                items: r.get(2),
            })
            .collect();
        Ok(Some(Details {
            backup: backup(&row),
            restores,
            checks,
        }))
    }
}
