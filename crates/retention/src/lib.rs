//! Retention: which backups of a vault to keep, which to delete, and deleting them safely.
//!
//! A crate of its own rather than a module of `vault`: the vault knows how to store and
//! remove one backup; which ones to remove is policy, with rules and safety guarantees of
//! its own, and only `vault-prune` needs it.
//!
//! # Rules ([`Rules`])
//!
//! As restic's `forget`: each rule keeps some backups, and **a backup is kept if any rule
//! keeps it**; what no rule keeps is deleted. Rules apply to each kind and source (the
//! name in the id: the database, the collection) on its own, newest first:
//!
//! - `within` (`--older-than D`): keeps every backup made less than `D` ago;
//! - `last` (`--keep-last N`): keeps the `N` newest;
//! - `daily`, `weekly`, `monthly` (`--keep-daily N` …): keeps the newest backup of each of
//!   the `N` newest days (UTC), weeks (Monday to Sunday) or months that have one.
//!
//! # Safety
//!
//! - The newest good backup of each kind and source is kept whatever its age and the rules.
//! - Only good backups (status `ok`) are counted by the rules: a failed one is never the
//!   one kept, and takes no slot of `--keep-last`.
//! - A backup named by `--protect ID`, or whose sidecar has `"tags": [..., "protected"]`,
//!   is kept.
//! - [`plan`] refuses an empty listing and a plan that would delete every backup of a kind
//!   (a kind with no good backup at all); the caller refuses when the listing fails.
//!
//! # Plan, then execute
//!
//! [`plan`] decides everything before anything is deleted ([`PrunePlan`]: each backup with
//! keep/delete and the rules that decided, each orphan with sweep/leave); [`execute`]
//! carries it out through `vault::ops::remove_backup` (sidecar first, then artifact) and
//! `vault::ops::sweep`, on any [`Backend`] — a real one, or `vault::DryRun`. The plan is a
//! function of what the vault holds, and deleting what it deletes does not change what it
//! keeps, so a run interrupted midway is finished by the next one: an artifact left
//! without its sidecar is an orphan that the next sweep removes.
#![deny(missing_docs)]

mod plan;
mod rules;

pub use plan::{execute, plan, Decision, OrphanDecision, PlanError, PrunePlan, Step, StepError};
pub use rules::{Reason, Rules};

pub use vault::Backend;
