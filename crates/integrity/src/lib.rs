//! The checks of `integrity-check`: is a restored (or a live) stack whole — each database
//! on its own, across databases, and as one backup set?
//!
//! - [`run`]: what is checked where. In a pipeline ([`run::pipeline`]) each manifest's
//!   `restore.target` names the database, collection or graph it was restored into, and
//!   its `stats` what it must hold; live ([`run::live`]) the configured servers are
//!   checked as they are. Every check ends as a [`manifest::sections::Check`]: `pass`,
//!   `fail`, or `skip` with the reason (never counted as a pass).
//! - [`postgres`], [`qdrant`], [`neo4j`]: health (the server answers, with timeouts), the
//!   fingerprint, content and schema against the backup's through the one shared
//!   comparison ([`manifest::fingerprint::compare_only`]), computed by the producers' own
//!   code, and the rules that stay within one database.
//! - [`rules`]: the rules file (TOML): NOT NULL on critical columns, orphans, duplicate
//!   relationships, payload fields, cross-database id rules, the backup set.
//! - [`keys`]: cross-database rules as a sorted merge of paged id streams (keyset pages in
//!   SQL and Cypher, Qdrant's scroll): memory and round trips grow with the page size and
//!   the number of pages, never with one id each.
//! - [`set`]: the backup set of a run: every expected kind present, how far apart, which
//!   are missing or failed.
//! - [`report`]: sections per database, the summary, human and JSON renderings, and the
//!   outcome that becomes the exit code.
#![deny(missing_docs)]

mod error;
pub mod keys;
pub mod neo4j;
pub mod postgres;
pub mod qdrant;
pub mod report;
pub mod rules;
pub mod run;
pub mod set;

pub use error::Error;
pub use report::{Outcome, Report, Section};
pub use rules::Rules;

use manifest::sections::{Check, CheckStatus};
use serde_json::{Map, Value};

/// A check named `name` with `status`, `detail` and `figures`.
pub fn check(
    name: impl Into<String>,
    status: CheckStatus,
    detail: impl Into<String>,
    figures: Map<String, Value>,
) -> Check {
    Check {
        name: name.into(),
        status,
        detail: detail.into(),
        figures,
    }
}

/// `pass` when `ok`, else `fail`.
pub fn pass_if(ok: bool) -> CheckStatus {
    if ok {
        CheckStatus::Pass
    } else {
        CheckStatus::Fail
    }
}

/// A skipped check: `why` says why (a skip is never a pass).
pub fn skip(name: impl Into<String>, why: impl Into<String>) -> Check {
    check(name, CheckStatus::Skip, why, Map::new())
}

/// `figures!{"rows" => 3, "table" => "public.a"}`: a JSON object of figures.
#[macro_export]
macro_rules! figures {
    ($($k:expr => $v:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut m = serde_json::Map::new();
        $( m.insert($k.to_string(), serde_json::json!($v)); )*
        m
    }};
}
