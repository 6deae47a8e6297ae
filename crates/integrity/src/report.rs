//! The report: one section per database (and one for the cross-database rules, one per
//! backup set), each check PASS / FAIL / SKIP with its figures, and a summary line; as text
//! for people or as JSON.

use std::fmt::Write as _;

use manifest::sections::{Check, CheckStatus};
use manifest::time::Timestamp;
use serde::Serialize;
use serde_json::Value;

/// The checks of one database (or of the cross-database rules, or of a backup set).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Section {
    /// `postgres app_check`, `qdrant docs`, `neo4j neo4j`, `cross-database`, `backup set run_…`.
    pub title: String,
    /// Where: host, port, database / URL, collection (never a secret).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub target: Value,
    /// The ids of the manifests these checks belong to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
    /// Why the database did not answer, when it did not (exit 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
    /// Why the input could not be checked, when it could not (exit 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_input: Option<String>,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Section {
    /// An empty section.
    pub fn new(title: impl Into<String>, target: Value) -> Section {
        Section {
            title: title.into(),
            target,
            manifests: vec![],
            unreachable: None,
            bad_input: None,
            checks: vec![],
        }
    }
}

/// How the whole run ended, as the exit code says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every check passed or was skipped (exit 0).
    Pass,
    /// A check failed (exit 1).
    Fail,
    /// A database was unreachable or the input bad (exit 2).
    Error,
}

impl Outcome {
    /// The exit code: 0, 1 or 2.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Pass => 0,
            Outcome::Fail => 1,
            Outcome::Error => 2,
        }
    }
}

/// Counts of the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Checks that passed.
    pub pass: usize,
    /// Checks that failed.
    pub fail: usize,
    /// Checks skipped.
    pub skip: usize,
    /// Sections whose database did not answer.
    pub unreachable: usize,
    /// Sections whose input could not be used.
    pub bad_input: usize,
}

/// Everything one run found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// When the checks started.
    pub checked_at: Timestamp,
    /// `pipeline` or `live`.
    pub mode: &'static str,
    /// The sections.
    pub sections: Vec<Section>,
}

impl Report {
    /// The counts.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for section in &self.sections {
            s.unreachable += usize::from(section.unreachable.is_some());
            s.bad_input += usize::from(section.bad_input.is_some());
            for c in &section.checks {
                match c.status {
                    CheckStatus::Pass => s.pass += 1,
                    CheckStatus::Fail => s.fail += 1,
                    CheckStatus::Skip => s.skip += 1,
                }
            }
        }
        s
    }

    /// How it ended: an unreachable database or bad input beats a failed check.
    pub fn outcome(&self) -> Outcome {
        let s = self.summary();
        if s.unreachable + s.bad_input > 0 {
            Outcome::Error
        } else if s.fail > 0 {
            Outcome::Fail
        } else {
            Outcome::Pass
        }
    }

    /// `12 checks: 9 pass, 2 fail, 1 skip; 1 database unreachable`.
    pub fn summary_line(&self) -> String {
        let s = self.summary();
        let mut line = format!(
            "{} checks: {} pass, {} fail, {} skip",
            s.pass + s.fail + s.skip,
            s.pass,
            s.fail,
            s.skip
        );
        if s.unreachable > 0 {
            let _ = write!(
                line,
                "; {} database{} unreachable",
                s.unreachable,
                if s.unreachable == 1 { "" } else { "s" }
            );
        }
        if s.bad_input > 0 {
            let _ = write!(line, "; {} with bad input", s.bad_input);
        }
        let word = match self.outcome() {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Error => "ERROR",
        };
        format!("{word}: {line}")
    }

    /// The report for people: a heading per section, one line per check, the summary.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for section in &self.sections {
            let _ = write!(out, "== {}", section.title);
            if let Some(target) = describe_target(&section.target) {
                let _ = write!(out, " ({target})");
            }
            out.push_str(" ==\n");
            if !section.manifests.is_empty() {
                let _ = writeln!(out, "   manifests: {}", section.manifests.join(", "));
            }
            if let Some(why) = &section.unreachable {
                let _ = writeln!(out, "ERROR unreachable: {}", one_line(why));
            }
            if let Some(why) = &section.bad_input {
                let _ = writeln!(out, "ERROR bad input: {}", one_line(why));
            }
            for c in &section.checks {
                let word = match c.status {
                    CheckStatus::Pass => "PASS",
                    CheckStatus::Fail => "FAIL",
                    CheckStatus::Skip => "SKIP",
                };
                let _ = writeln!(out, "{word}  {}: {}", c.name, one_line(&c.detail));
            }
            out.push('\n');
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// The report as one JSON document: `checked_at`, `mode`, `result`, `summary`,
    /// `sections` (each with its checks as in a manifest's `checks.items`).
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("reports serialize");
        v["result"] = serde_json::to_value(self.outcome()).expect("serializes");
        v["summary"] = serde_json::to_value(self.summary()).expect("serializes");
        v
    }
}

/// `host:port/database`, `url collection`, from a target object.
fn describe_target(target: &Value) -> Option<String> {
    let map = target.as_object()?;
    let parts: Vec<String> = ["url", "host", "port", "database", "collection"]
        .iter()
        .filter_map(|k| match map.get(*k)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check, skip};
    use serde_json::json;

    fn report(statuses: &[CheckStatus], unreachable: bool) -> Report {
        let mut section = Section::new(
            "postgres app",
            json!({"host": "db", "port": 5432, "database": "app"}),
        );
        section.checks = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| check(format!("c{i}"), *s, "figures", Default::default()))
            .collect();
        section.checks.push(skip("content", "no digests"));
        if unreachable {
            section.unreachable = Some("connection refused".into());
        }
        Report {
            checked_at: Timestamp::parse("2025-01-30T02:00:00Z").unwrap(),
            mode: "pipeline",
            sections: vec![section],
        }
    }

    #[test]
    fn table_of_outcomes() {
        use CheckStatus::*;
        // (statuses, unreachable, outcome, summary line)
        #[rustfmt::skip]
        let cases = [
            (vec![Pass, Pass], false, Outcome::Pass, "PASS: 3 checks: 2 pass, 0 fail, 1 skip"),
            (vec![Pass, Fail], false, Outcome::Fail, "FAIL: 3 checks: 1 pass, 1 fail, 1 skip"),
            (vec![Fail], true, Outcome::Error, "ERROR: 2 checks: 0 pass, 1 fail, 1 skip; 1 database unreachable"),
            (vec![], false, Outcome::Pass, "PASS: 1 checks: 0 pass, 0 fail, 1 skip"),
        ];
        for (statuses, unreachable, outcome, line) in cases {
            let r = report(&statuses, unreachable);
            assert_eq!(r.outcome(), outcome, "{statuses:?}");
            assert_eq!(r.summary_line(), line);
            assert_eq!(
                r.to_json()["result"],
                json!(serde_json::to_value(outcome).unwrap())
            );
        }
        assert_eq!(
            [Outcome::Pass, Outcome::Fail, Outcome::Error].map(Outcome::exit_code),
            [0, 1, 2]
        );
    }

    #[test]
    fn the_text_has_a_heading_per_section_and_a_line_per_check() {
        let text = report(&[CheckStatus::Fail], false).to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "== postgres app (db 5432 app) ==",
                "FAIL  c0: figures",
                "SKIP  content: no digests",
                "",
                "FAIL: 2 checks: 0 pass, 1 fail, 1 skip"
            ]
        );
    }
}
