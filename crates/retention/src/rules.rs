//! The retention rules and what each keeps.

use std::fmt;
use std::time::{Duration, SystemTime};

use manifest::time::human_age;

/// Which backups to keep (see the [crate docs](crate)). Empty keeps nothing by rule: only
/// the safety rules keep anything then, so callers refuse empty rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Keep every backup younger than this (`--older-than`: older ones are deleted).
    pub within: Option<Duration>,
    /// Keep the newest N.
    pub last: Option<usize>,
    /// Keep the newest backup of each of the N newest days.
    pub daily: Option<usize>,
    /// … weeks (Monday to Sunday, UTC).
    pub weekly: Option<usize>,
    /// … months.
    pub monthly: Option<usize>,
}

/// Why a backup is kept or deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The newest good backup of its kind and source: never deleted.
    NewestGood,
    /// Named by `--protect`.
    Protected,
    /// Its sidecar carries the `protected` tag.
    Tagged,
    /// Stored with S3 Object Lock (`vault.lock`) until this date: the server would refuse
    /// to delete it, so no plan counts on deleting it before then.
    Locked(manifest::time::Timestamp),
    /// Younger than `--older-than`.
    Within(Duration),
    /// One of the newest N (`--keep-last`).
    Last(usize),
    /// The newest of one of the N newest days.
    Daily(usize),
    /// The newest of one of the N newest weeks.
    Weekly(usize),
    /// The newest of one of the N newest months.
    Monthly(usize),
    /// Deleted: not a good backup (its status), so no rule keeps it.
    NotGood(String),
    /// Deleted: no rule keeps it.
    Expired,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NewestGood => f.write_str("newest good backup of its kind and source"),
            Reason::Protected => f.write_str("protected (--protect)"),
            Reason::Tagged => f.write_str("protected (tag in its sidecar)"),
            Reason::Locked(until) => write!(f, "locked (S3 Object Lock) until {until}"),
            Reason::Within(d) => write!(f, "newer than {}", human_age(*d)),
            Reason::Last(n) => write!(f, "keep-last {n}"),
            Reason::Daily(n) => write!(f, "keep-daily {n}"),
            Reason::Weekly(n) => write!(f, "keep-weekly {n}"),
            Reason::Monthly(n) => write!(f, "keep-monthly {n}"),
            Reason::NotGood(status) => write!(f, "status {status}: never kept by a rule"),
            Reason::Expired => f.write_str("kept by no rule"),
        }
    }
}

const DAY: u64 = 86_400;

fn days_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => (d.as_secs() / DAY) as i64,
        Err(e) => -(e.duration().as_secs().div_ceil(DAY) as i64),
    }
}

/// Year * 12 + month of a day number (Howard Hinnant's civil-from-days).
fn month_of(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    year * 12 + month - 1
}

/// The Monday-to-Sunday week of a day number (1970-01-01 was a Thursday).
fn week_of(days: i64) -> i64 {
    (days + 3).div_euclid(7)
}

impl Rules {
    /// Whether no rule is set.
    pub fn is_empty(&self) -> bool {
        *self == Rules::default()
    }

    /// For the backups of one kind and source, newest first, given as (time, good): the
    /// rules that keep each (empty: none does). Backups that are not good are skipped by
    /// every rule and take no slot.
    pub fn keep(&self, backups: &[(SystemTime, bool)], now: SystemTime) -> Vec<Vec<Reason>> {
        let mut reasons = vec![Vec::new(); backups.len()];
        let mut last = 0;
        type Bucket = (Option<usize>, fn(i64) -> i64, fn(usize) -> Reason);
        let buckets: [Bucket; 3] = [
            (self.daily, |d| d, Reason::Daily),
            (self.weekly, week_of, Reason::Weekly),
            (self.monthly, month_of, Reason::Monthly),
        ];
        let mut seen: [(usize, Option<i64>); 3] = [(0, None); 3];
        for (i, (time, good)) in backups.iter().enumerate() {
            if !good {
                continue;
            }
            if let Some(within) = self.within {
                if now.duration_since(*time).unwrap_or_default() < within {
                    reasons[i].push(Reason::Within(within));
                }
            }
            if let Some(n) = self.last {
                if last < n {
                    last += 1;
                    reasons[i].push(Reason::Last(n));
                }
            }
            let day = days_since_epoch(*time);
            for ((limit, bucket_of, reason), (count, previous)) in buckets.iter().zip(&mut seen) {
                let Some(n) = *limit else { continue };
                let bucket = bucket_of(day);
                if *count < n && *previous != Some(bucket) {
                    *count += 1;
                    *previous = Some(bucket);
                    reasons[i].push(reason(n));
                }
            }
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-03-31T12:00:00Z, a Monday.
    const NOW: u64 = 1_743_422_400;

    fn at(days_ago: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
            - Duration::from_secs_f64(days_ago * DAY as f64)
    }

    /// `pattern`: one letter per backup, newest first, `k` good-and-kept, `d` good-and-
    /// deleted, `F` failed (never kept): what the rules say, without the safety rules.
    fn run(rules: Rules, days_ago: &[f64], failed: &[usize]) -> String {
        let backups: Vec<_> = days_ago
            .iter()
            .enumerate()
            .map(|(i, d)| (at(*d), !failed.contains(&i)))
            .collect();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW);
        rules
            .keep(&backups, now)
            .iter()
            .zip(&backups)
            .map(|(r, (_, good))| match (good, r.is_empty()) {
                (false, _) => 'F',
                (true, false) => 'k',
                (true, true) => 'd',
            })
            .collect()
    }

    fn r(
        within: Option<u64>,
        last: Option<usize>,
        d: Option<usize>,
        w: Option<usize>,
        m: Option<usize>,
    ) -> Rules {
        Rules {
            within: within.map(|days| Duration::from_secs(days * DAY)),
            last,
            daily: d,
            weekly: w,
            monthly: m,
        }
    }

    #[test]
    fn table_of_rules() {
        // One backup a day at noon, newest 0 days ago.
        let daily: Vec<f64> = (0..10).map(f64::from).collect();
        // Two a day (noon and 06:00) for 4 days.
        let twice: Vec<f64> = (0..8)
            .map(|i| f64::from(i / 2) + if i % 2 == 1 { 0.25 } else { 0.0 })
            .collect();
        // Weekly spread: every 3 days for 60 days.
        let spread: Vec<f64> = (0..20).map(|i| f64::from(i * 3)).collect();
        #[rustfmt::skip]
        type Case<'a> = (&'a str, Rules, &'a [f64], &'a [usize], &'a str);
        let cases: &[Case] = &[
            (
                "no rule keeps nothing",
                Rules::default(),
                &daily,
                &[],
                "dddddddddd",
            ),
            (
                "older-than 3d",
                r(Some(3), None, None, None, None),
                &daily,
                &[],
                "kkkddddddd",
            ),
            (
                "keep-last 4",
                r(None, Some(4), None, None, None),
                &daily,
                &[],
                "kkkkdddddd",
            ),
            (
                "keep-last counts only good",
                r(None, Some(2), None, None, None),
                &daily,
                &[0, 1],
                "FFkkdddddd",
            ),
            (
                "keep-last more than there are",
                r(None, Some(50), None, None, None),
                &daily,
                &[],
                "kkkkkkkkkk",
            ),
            (
                "keep-daily 2 of two a day",
                r(None, None, Some(2), None, None),
                &twice,
                &[],
                "kdkddddd",
            ),
            (
                "keep-daily skips a failed day-newest",
                r(None, None, Some(1), None, None),
                &twice,
                &[0],
                "Fkdddddd",
            ),
            // 2025-03-31 is a Monday: days 0 | 1-7 | 8-14 | … are separate weeks.
            (
                "keep-weekly 2",
                r(None, None, None, Some(2), None),
                &daily,
                &[],
                "kkdddddddd",
            ),
            (
                "keep-monthly 2 over 60 days",
                r(None, None, None, None, Some(2)),
                &spread,
                &[],
                "kddddddddddkdddddddd",
            ),
            (
                "keep-monthly 3, two months",
                r(None, None, None, None, Some(3)),
                &spread,
                &[],
                "kddddddddddkdddddddd",
            ),
            (
                "union: last 2 or daily 4",
                r(None, Some(2), Some(4), None, None),
                &daily,
                &[],
                "kkkkdddddd",
            ),
            (
                "union: within 2d or last 4",
                r(Some(2), Some(4), None, None, None),
                &daily,
                &[],
                "kkkkdddddd",
            ),
            (
                "union: within 1d or weekly 2",
                r(Some(1), None, None, Some(2), None),
                &daily,
                &[],
                "kkdddddddd",
            ),
            (
                "all failed: nothing kept",
                r(Some(30), Some(3), None, None, None),
                &daily[..3],
                &[0, 1, 2],
                "FFF",
            ),
        ];
        for (what, rules, days, failed, want) in cases {
            assert_eq!(run(rules.clone(), days, failed), *want, "{what}");
        }
    }

    #[test]
    fn table_of_buckets() {
        // Day numbers and the month/week they fall in.
        let cases = [
            (0, 1970 * 12, 0),             // Thu 1970-01-01
            (3, 1970 * 12, 0),             // Sun 1970-01-04
            (4, 1970 * 12, 1),             // Mon 1970-01-05
            (31, 1970 * 12 + 1, 4),        // 1970-02-01
            (20_178, 2025 * 12 + 2, 2883), // Mon 2025-03-31
            (20_179, 2025 * 12 + 3, 2883), // Tue 2025-04-01
            (-1, 1969 * 12 + 11, 0),       // Wed 1969-12-31
        ];
        for (day, month, week) in cases {
            assert_eq!((month_of(day), week_of(day)), (month, week), "day {day}");
        }
    }
}
