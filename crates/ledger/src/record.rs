//! Recording one manifest.
//!
//! What a manifest does to the ledger depends on what it says:
//!
//! - A **backup** (no `restore`/`checks` section): its row in `backup_history` is created,
//!   or updated when the new status ranks at least as high as the recorded one —
//!   `failed` (or a status this version does not know) < `success` < `pruned`. So a rerun
//!   that succeeded replaces a failure, `vault-prune`'s `pruned` marks a success, and a
//!   failed second `vault-put` of a stored id (refused: "already in the vault") does not
//!   turn a stored backup into a failure.
//! - A **restore** (a `restore` section) adds a `backup_restore` row; an **integrity check**
//!   (a `checks` section) adds a `backup_check_run`; a failed manifest that carries a
//!   `vault` section without either (a download or a restore that failed before it could
//!   write its section) adds a `failed` restore. None of these change the backup's status:
//!   the backup was stored, a later step failed. If the ledger has no row for the backup
//!   yet, one is made from the manifest (`success`, since it was stored).
//!
//! The same manifest twice is one row: rows are keyed by `backup_id`, restores and checks
//! by the SHA-256 of their section.

use std::time::SystemTime;

use manifest::{Manifest, Sha256, Status};
use postgres::Transaction;
use serde_json::Value;

use crate::{q, Ledger, Result};

/// What recording did to the backup's row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new row.
    Inserted,
    /// The row's status or details changed.
    Updated,
    /// The ledger already had exactly this (or a later status).
    Unchanged,
}

/// What [`Ledger::record`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The backup row.
    pub backup: Outcome,
    /// A restore was added.
    pub restore: bool,
    /// An integrity-check run was added.
    pub checks: bool,
    /// A copy in another vault was added (a vault-copy manifest) or removed (its pruned
    /// manifest from vault-prune).
    pub copy: bool,
}

/// The seed's status word for a manifest status: `ok` is `success`; `failed` and `pruned`
/// are themselves; a newer tool's word is kept (cut to the column's 20 characters).
pub fn seed_status(status: &Status) -> String {
    match status {
        Status::Ok => "success".to_owned(),
        other => other.as_str().chars().take(20).collect(),
    }
}

/// How far along a status is; a row never moves back.
fn rank(seed: Option<&str>) -> u8 {
    match seed {
        Some("pruned") => 2,
        Some("success") => 1,
        _ => 0,
    }
}

/// What backups of one source share: the name in the id (database, collection), or `""`
/// for the seed's short ids.
pub fn source_of(m: &Manifest) -> String {
    m.id.name().unwrap_or("").to_owned()
}

fn is_followup(m: &Manifest) -> bool {
    m.restore.is_some()
        || m.checks.is_some()
        || (!matches!(m.status, Status::Ok | Status::Pruned) && m.vault.is_some())
}

fn section_sha(value: &Value) -> String {
    Sha256::of(&serde_json::to_vec(value).expect("JSON serializes")).to_string()
}

fn time_of(value: Option<&Value>) -> Option<SystemTime> {
    let text = value?.as_str()?;
    manifest::time::Timestamp::parse(text)
        .ok()
        .map(|t| t.system_time())
}

impl Ledger {
    /// Records `m` (see the [module docs](self) for what each kind of manifest does), in
    /// one transaction.
    ///
    /// # Errors
    ///
    /// The server's error; nothing of this manifest is recorded then.
    pub fn record(&mut self, m: &Manifest) -> Result<Recorded> {
        let mut tx = self
            .client
            .transaction()
            .map_err(q("cannot start recording"))?;
        let followup = is_followup(m);
        let status = if followup {
            "success".to_owned()
        } else {
            seed_status(&m.status)
        };
        let copied_from = m
            .vault
            .as_ref()
            .and_then(|v| v.copied_from())
            .and_then(|c| c.ok());
        // A copy's manifest names the copy's vault: it adds a copy to a backup the ledger
        // knows, and never takes the place of the backup's own record. Only a backup the
        // ledger has not seen is recorded from its copy.
        let known = copied_from.is_some() && exists(&mut tx, m)?;
        let backup = if known {
            Outcome::Unchanged
        } else {
            upsert_backup(&mut tx, m, &status, followup)?
        };
        // vault-prune of the second vault emits the copy's manifest as `pruned`: the copy
        // is gone, the backup itself is not.
        let copy = match (&copied_from, &m.vault) {
            (Some(_), Some(vault)) if m.status == Status::Pruned => remove_copy(&mut tx, m, vault)?,
            (Some(from), Some(vault)) => add_copy(&mut tx, m, vault, from)?,
            _ => false,
        };
        let mut restore = false;
        let mut checks = false;
        if let Some(section) = &m.restore {
            restore = add_restore(&mut tx, m, section)?;
        } else if followup && m.checks.is_none() {
            // A failure after the backup was stored, before any section was written.
            let section = serde_json::json!({
                "result": "failed",
                "note": m.error.clone().unwrap_or_else(|| format!("status {}", m.status)),
                "manifest": m,
            });
            restore = add_restore(&mut tx, m, &section)?;
        }
        if let Some(section) = &m.checks {
            checks = add_checks(&mut tx, m, section)?;
        }
        tx.commit().map_err(q("cannot commit the record"))?;
        Ok(Recorded {
            backup,
            restore,
            checks,
            copy,
        })
    }
}

fn exists(tx: &mut Transaction<'_>, m: &Manifest) -> Result<bool> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM backup_history WHERE backup_id = $1",
            &[&m.id.as_str()],
        )
        .map_err(q("cannot read backup_history"))?
        .is_some())
}

fn remove_copy(
    tx: &mut Transaction<'_>,
    m: &Manifest,
    vault: &manifest::VaultRecord,
) -> Result<bool> {
    let removed = tx
        .execute(
            "DELETE FROM backup_copy WHERE backup_id = $1 AND vault_url = $2",
            &[&m.id.as_str(), &vault.url.as_str()],
        )
        .map_err(q("cannot delete from backup_copy"))?;
    Ok(removed == 1)
}

fn add_copy(
    tx: &mut Transaction<'_>,
    m: &Manifest,
    vault: &manifest::VaultRecord,
    from: &manifest::sections::CopiedFrom,
) -> Result<bool> {
    let added = tx
        .execute(
            "INSERT INTO backup_copy
                 (backup_id, vault_url, copied_from, stored_at, size_bytes, checksum)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (backup_id, vault_url) DO NOTHING",
            &[
                &m.id.as_str(),
                &vault.url.as_str(),
                &from.url,
                &vault.stored_at.system_time(),
                &(vault.bytes as i64),
                &vault.sha256.to_string(),
            ],
        )
        .map_err(q("cannot insert into backup_copy"))?;
    Ok(added == 1)
}

fn upsert_backup(
    tx: &mut Transaction<'_>,
    m: &Manifest,
    status: &str,
    followup: bool,
) -> Result<Outcome> {
    let id = m.id.as_str();
    let (size, checksum) = match (&m.vault, &m.artifact) {
        (Some(v), _) => (Some(v.bytes as i64), Some(v.sha256.to_string())),
        (None, Some(a)) => (Some(a.bytes as i64), Some(a.sha256.to_string())),
        (None, None) => (None, None),
    };
    let manifest_json = serde_json::to_value(m).expect("manifests serialize");
    let error = if status == "success" || status == "pruned" {
        None
    } else {
        m.error.clone()
    };
    let inserted = tx
        .query_opt(
            "INSERT INTO backup_history
                 (backup_id, backup_type, timestamp, size_bytes, checksum, status, error_message)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (backup_id) DO NOTHING
             RETURNING id",
            &[
                &id,
                &m.kind.as_str(),
                &m.created_at.system_time(),
                &size,
                &checksum,
                &status,
                &error,
            ],
        )
        .map_err(q("cannot insert into backup_history"))?;
    if inserted.is_some() {
        write_manifest(tx, m, &manifest_json)?;
        return Ok(Outcome::Inserted);
    }
    if followup {
        return Ok(Outcome::Unchanged);
    }
    let row = tx
        .query_one(
            "SELECT h.status, h.size_bytes, h.checksum, h.error_message, m.manifest
             FROM backup_history h LEFT JOIN backup_manifest m USING (backup_id)
             WHERE h.backup_id = $1 FOR UPDATE OF h",
            &[&id],
        )
        .map_err(q("cannot read backup_history"))?;
    let old_status: Option<String> = row.get(0);
    if rank(Some(status)) < rank(old_status.as_deref()) {
        return Ok(Outcome::Unchanged);
    }
    let old_manifest: Option<Value> = row.get(4);
    let same = old_status.as_deref() == Some(status)
        && row.get::<_, Option<i64>>(1) == size.or(row.get(1))
        && row.get::<_, Option<String>>(2) == checksum.clone().or(row.get(2))
        && row.get::<_, Option<String>>(3) == error
        && old_manifest.as_ref() == Some(&manifest_json);
    if same {
        return Ok(Outcome::Unchanged);
    }
    tx.execute(
        "UPDATE backup_history
         SET status = $2, size_bytes = coalesce($3, size_bytes),
             checksum = coalesce($4, checksum), error_message = $5
         WHERE backup_id = $1",
        &[&id, &status, &size, &checksum, &error],
    )
    .map_err(q("cannot update backup_history"))?;
    write_manifest(tx, m, &manifest_json)?;
    Ok(Outcome::Updated)
}

fn write_manifest(tx: &mut Transaction<'_>, m: &Manifest, manifest_json: &Value) -> Result<()> {
    let run = m.run.as_ref().map(|r| r.as_str());
    let vault_url = m.vault.as_ref().map(|v| v.url.as_str());
    let stored_at = m.vault.as_ref().map(|v| v.stored_at.system_time());
    tx.execute(
        "INSERT INTO backup_manifest
             (backup_id, run, source, source_info, vault_url, stored_at, manifest_status,
              stats, manifest)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (backup_id) DO UPDATE SET
             run = coalesce(EXCLUDED.run, backup_manifest.run),
             source = EXCLUDED.source,
             source_info = coalesce(EXCLUDED.source_info, backup_manifest.source_info),
             vault_url = coalesce(EXCLUDED.vault_url, backup_manifest.vault_url),
             stored_at = coalesce(EXCLUDED.stored_at, backup_manifest.stored_at),
             manifest_status = EXCLUDED.manifest_status,
             stats = coalesce(EXCLUDED.stats, backup_manifest.stats),
             manifest = EXCLUDED.manifest,
             updated_at = CURRENT_TIMESTAMP",
        &[
            &m.id.as_str(),
            &run,
            &source_of(m),
            &m.source,
            &vault_url,
            &stored_at,
            &m.status.as_str(),
            &m.stats,
            manifest_json,
        ],
    )
    .map_err(q("cannot write backup_manifest"))?;
    Ok(())
}

/// Adds a restore from its section, read leniently: a section from a newer or broken tool
/// still records what can be read of it.
fn add_restore(tx: &mut Transaction<'_>, m: &Manifest, section: &Value) -> Result<bool> {
    let started = time_of(section.get("started_at"));
    let finished = time_of(section.get("finished_at"));
    let duration_ms = section
        .get("duration_ms")
        .and_then(Value::as_u64)
        .or_else(|| {
            let d = finished?.duration_since(started?).ok()?;
            Some(d.as_millis() as u64)
        })
        .map(|ms| ms.min(i64::MAX as u64) as i64);
    let result = result_word(section);
    let checked = section
        .get("checked")
        .and_then(Value::as_u64)
        .map(|n| n.min(i32::MAX as u64) as i32);
    let note = section
        .get("note")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            (m.status == Status::Failed)
                .then(|| m.error.clone())
                .flatten()
        });
    let n = tx
        .execute(
            "INSERT INTO backup_restore
                 (backup_id, target, started_at, finished_at, duration_ms, result, checked,
                  differences, note, section_sha256)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (backup_id, section_sha256) DO NOTHING",
            &[
                &m.id.as_str(),
                &section.get("target"),
                &started,
                &finished,
                &duration_ms,
                &result,
                &checked,
                &section.get("differences"),
                &note,
                &section_sha(section),
            ],
        )
        .map_err(q("cannot insert into backup_restore"))?;
    Ok(n == 1)
}

/// A section's `result`, cut to the 20 characters of the seed's `status` column width.
fn result_word(section: &Value) -> String {
    section
        .get("result")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .chars()
        .take(20)
        .collect()
}

fn add_checks(tx: &mut Transaction<'_>, m: &Manifest, section: &Value) -> Result<bool> {
    let result = result_word(section);
    let items = section.get("items");
    let run = tx
        .query_opt(
            "INSERT INTO backup_check_run (backup_id, checked_at, result, items, section_sha256)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (backup_id, section_sha256) DO NOTHING
             RETURNING id",
            &[
                &m.id.as_str(),
                &time_of(section.get("checked_at")),
                &result,
                &items,
                &section_sha(section),
            ],
        )
        .map_err(q("cannot insert into backup_check_run"))?;
    let Some(run) = run else {
        return Ok(false);
    };
    let run_id: i64 = run.get(0);
    for item in items.and_then(Value::as_array).into_iter().flatten() {
        let text = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_owned);
        let status: String = text("status")
            .unwrap_or_else(|| "unknown".into())
            .chars()
            .take(20)
            .collect();
        tx.execute(
            "INSERT INTO backup_check (run_id, name, status, detail, figures)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &run_id,
                &text("name").unwrap_or_default(),
                &status,
                &text("detail"),
                &item.get("figures"),
            ],
        )
        .map_err(q("cannot insert into backup_check"))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_statuses() {
        let cases = [
            (Status::Ok, "success", 1),
            (Status::Failed, "failed", 0),
            (Status::Pruned, "pruned", 2),
            (Status::Other("verified".into()), "verified", 0),
            (
                Status::Other("a_very_long_status_word_indeed".into()),
                "a_very_long_status_w",
                0,
            ),
        ];
        for (status, seed, r) in cases {
            assert_eq!(seed_status(&status), seed, "{status}");
            assert_eq!(rank(Some(seed)), r, "{status}");
        }
        assert_eq!(rank(None), 0);
    }
}
