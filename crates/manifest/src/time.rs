//! RFC 3339 UTC timestamps as manifests carry them.
//!
//! A [`Timestamp`] keeps the text it was read from, so a tool that passes a manifest on
//! writes the producer's timestamp back byte for byte, whatever precision it had.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, written as RFC 3339 in UTC (`2025-01-30T02:00:00Z`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp {
    time: SystemTime,
    text: String,
}

/// The text was not an RFC 3339 UTC timestamp.
#[derive(Debug, thiserror::Error)]
#[error("invalid timestamp {text:?}: expected RFC 3339 UTC such as 2025-01-30T02:00:00Z")]
pub struct TimestampError {
    text: String,
}

impl Timestamp {
    /// The current time, to the second.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// `time` truncated to the second.
    pub fn from_system_time(time: SystemTime) -> Self {
        let text = humantime::format_rfc3339_seconds(time).to_string();
        // Re-parse so `time` is exactly what `text` says (sub-second part dropped).
        let time = humantime::parse_rfc3339(&text).expect("humantime formats what it parses");
        Timestamp { time, text }
    }

    /// Parses RFC 3339 in UTC; `+00:00` is accepted as a spelling of `Z`.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let normalized = match text.strip_suffix("+00:00") {
            Some(head) => format!("{head}Z"),
            None => text.to_owned(),
        };
        let time = humantime::parse_rfc3339(&normalized).map_err(|_| TimestampError {
            text: text.to_owned(),
        })?;
        Ok(Timestamp {
            time,
            text: text.to_owned(),
        })
    }

    /// The instant.
    pub fn system_time(&self) -> SystemTime {
        self.time
    }

    /// `YYYYMMDD_HHMMSS`, the time part of artifact ids.
    pub fn compact(&self) -> String {
        let s = self.canonical();
        format!(
            "{}{}{}_{}{}{}",
            &s[0..4],
            &s[5..7],
            &s[8..10],
            &s[11..13],
            &s[14..16],
            &s[17..19]
        )
    }

    /// `YYYY/MM/DD`, the date part of vault keys.
    pub fn date_path(&self) -> String {
        let s = self.canonical();
        format!("{}/{}/{}", &s[0..4], &s[5..7], &s[8..10])
    }

    /// How long ago this was, zero if it is in the future.
    pub fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.time)
            .unwrap_or_default()
    }

    fn canonical(&self) -> String {
        humantime::format_rfc3339_seconds(self.time).to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.time.cmp(&other.time).then(self.text.cmp(&other.text))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Formats an age or duration for people: `3h 12m`, `2d 4h`, `45s`.
pub fn human_age(age: Duration) -> String {
    let secs = age.as_secs();
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Parses a duration for people: `30s`, `5m`, `1h 30m`, `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid duration {text:?} ({e}): expected e.g. 30s, 5m, 7d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_date_path_come_from_utc_fields() {
        let t = Timestamp::parse("2025-01-30T02:00:09Z").unwrap();
        assert_eq!(t.compact(), "20250130_020009");
        assert_eq!(t.date_path(), "2025/01/30");
    }

    #[test]
    fn text_is_kept_verbatim() {
        let t = Timestamp::parse("2025-01-30T02:00:09.123+00:00").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2025-01-30T02:00:09.123+00:00\""
        );
        assert_eq!(t.compact(), "20250130_020009");
    }

    #[test]
    fn rejects_non_utc_and_garbage() {
        for bad in ["yesterday", "2025-01-30", "2025-01-30T02:00:00+02:00", ""] {
            assert!(Timestamp::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn human_age_picks_two_units() {
        let cases = [
            (5, "5s"),
            (65, "1m 5s"),
            (3 * 3600 + 120, "3h 2m"),
            (2 * 86400 + 3600, "2d 1h"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_age(Duration::from_secs(secs)), want);
        }
    }
}
