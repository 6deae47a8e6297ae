//! Neo4j's temporal and spatial values: parsing the strings `date()`, `datetime()`,
//! `duration()`… accept, and printing them exactly as Neo4j 5.3 prints them (Java's
//! `LocalTime.toString` fractions in groups of three, `Z` for a zero offset, the zone id in
//! brackets, `P-1DT2H` durations).

use chrono::{
    Datelike, Duration as ChronoDuration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Timelike,
};
use chrono_tz::Tz;

/// A `DATETIME`: a local date-time with its offset and, when given by zone id, the zone.
#[derive(Clone, Debug, PartialEq)]
pub struct ZonedDateTime {
    /// The wall-clock date-time.
    pub local: NaiveDateTime,
    /// Offset from UTC in seconds.
    pub offset: i32,
    /// The zone id (`Europe/Berlin`), when the value carries one.
    pub zone: Option<Tz>,
}

impl ZonedDateTime {
    /// The instant as seconds and nanoseconds since the epoch.
    pub fn epoch(&self) -> (i64, u32) {
        let utc = self.local - ChronoDuration::seconds(self.offset as i64);
        (utc.and_utc().timestamp(), utc.nanosecond())
    }

    /// A UTC date-time for an instant.
    pub fn utc(seconds: i64, nanos: u32) -> Option<Self> {
        let dt = chrono::DateTime::from_timestamp(seconds, nanos)?;
        Some(ZonedDateTime {
            local: dt.naive_utc(),
            offset: 0,
            zone: None,
        })
    }

    /// The value printed as Neo4j does: `2024-02-29T12:34:56.123+01:00[Europe/Berlin]`.
    pub fn format(&self) -> String {
        let mut s = format_local_datetime(&self.local);
        s.push_str(&format_offset(self.offset));
        if let Some(z) = &self.zone {
            s.push('[');
            s.push_str(z.name());
            s.push(']');
        }
        s
    }
}

/// A `DURATION`: months, days, seconds and nanoseconds, each kept apart as Neo4j does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duration {
    /// Months (years are 12 months).
    pub months: i64,
    /// Days (weeks are 7 days).
    pub days: i64,
    /// Seconds.
    pub seconds: i64,
    /// Nanoseconds, with the sign of `seconds`.
    pub nanos: i32,
}

impl Duration {
    /// A normalised duration (nanoseconds folded into seconds, same signs).
    pub fn new(months: i64, days: i64, seconds: i64, nanos: i64) -> Self {
        let total = seconds as i128 * 1_000_000_000 + nanos as i128;
        Duration {
            months,
            days,
            seconds: (total / 1_000_000_000) as i64,
            nanos: (total % 1_000_000_000) as i32,
        }
    }

    /// The ISO-8601 form Neo4j prints (`P1Y2M3DT4H5M6.007S`, `PT0S`, `P-1DT2H`).
    pub fn format(&self) -> String {
        if self.months == 0 && self.days == 0 && self.seconds == 0 && self.nanos == 0 {
            return "PT0S".into();
        }
        let mut s = String::from("P");
        let part = |s: &mut String, v: i64, c: char| {
            if v != 0 {
                s.push_str(&v.to_string());
                s.push(c);
            }
        };
        part(&mut s, self.months / 12, 'Y');
        part(&mut s, self.months % 12, 'M');
        part(&mut s, self.days, 'D');
        if self.seconds != 0 || self.nanos != 0 {
            s.push('T');
            part(&mut s, self.seconds / 3600, 'H');
            let rest = self.seconds % 3600;
            part(&mut s, rest / 60, 'M');
            let secs = rest % 60;
            if secs != 0 {
                s.push_str(&secs.to_string());
                if self.nanos != 0 {
                    push_nanos(&mut s, self.nanos);
                }
                s.push('S');
            } else if self.nanos != 0 {
                if self.nanos < 0 {
                    s.push('-');
                }
                s.push('0');
                push_nanos(&mut s, self.nanos);
                s.push('S');
            }
        }
        s
    }

    /// Parses `P1Y2M3DT4H5M6.007S`, `P14D`, `P2W`, `PT0S`, `P-1DT2H`.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let (neg, t) = match t.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let t = t.strip_prefix(['P', 'p'])?;
        if t.is_empty() {
            return None;
        }
        let (date_part, time_part) = match t.find(['T', 't']) {
            Some(i) => (&t[..i], Some(&t[i + 1..])),
            None => (t, None),
        };
        let mut months = 0f64;
        let mut days = 0f64;
        let mut seconds = 0f64;
        let mut nanos: i64 = 0;
        let mut any = false;
        for (num, unit) in designators(date_part)? {
            any = true;
            let v: f64 = num.parse().ok()?;
            match unit {
                'Y' => months += v * 12.0,
                'M' => months += v,
                'W' => days += v * 7.0,
                'D' => days += v,
                _ => return None,
            }
        }
        if let Some(tp) = time_part {
            if tp.is_empty() {
                return None;
            }
            for (num, unit) in designators(tp)? {
                any = true;
                match unit {
                    'H' => seconds += num.parse::<f64>().ok()? * 3600.0,
                    'M' => seconds += num.parse::<f64>().ok()? * 60.0,
                    'S' => {
                        let (whole, frac) = match num.find('.') {
                            Some(i) => (&num[..i], &num[i + 1..]),
                            None => (num, ""),
                        };
                        let negs = whole.starts_with('-');
                        let w: i64 = if whole == "-" || whole.is_empty() {
                            0
                        } else {
                            whole.parse().ok()?
                        };
                        seconds += w as f64;
                        if !frac.is_empty() {
                            let mut digits: String = frac.chars().take(9).collect();
                            while digits.len() < 9 {
                                digits.push('0');
                            }
                            let n: i64 = digits.parse().ok()?;
                            nanos += if negs { -n } else { n };
                        }
                    }
                    _ => return None,
                }
            }
        }
        if !any {
            return None;
        }
        let d = from_fractional(months, days, seconds, nanos);
        Some(if neg { d.negate() } else { d })
    }

    /// The duration with every component negated.
    pub fn negate(&self) -> Self {
        Duration::new(
            -self.months,
            -self.days,
            -self.seconds,
            -(self.nanos as i64),
        )
    }
}

fn push_nanos(s: &mut String, nanos: i32) {
    s.push('.');
    let mut n = nanos.unsigned_abs();
    let mut m = 100_000_000;
    while m > 0 && n > 0 {
        s.push(char::from(b'0' + (n / m) as u8));
        n %= m;
        m /= 10;
    }
}

/// Splits `1Y2M3D` into `[("1",'Y'),("2",'M'),("3",'D')]`.
fn designators(s: &str) -> Option<Vec<(&str, char)>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii_alphabetic() {
            let num = &s[start..i];
            if num.is_empty() || num == "-" {
                return None;
            }
            out.push((num, c.to_ascii_uppercase()));
            start = i + 1;
        } else if !(c.is_ascii_digit() || c == '.' || c == '-' || c == ',') {
            return None;
        }
    }
    if start != s.len() {
        return None;
    }
    Some(out)
}

/// A duration from possibly fractional components; fractions cascade down (a fraction of
/// a month becomes days by the average month, a fraction of a day becomes seconds).
pub fn from_fractional(months: f64, days: f64, seconds: f64, nanos: i64) -> Duration {
    const AVG_MONTH_DAYS: f64 = 30.436875;
    let whole_months = months.trunc();
    let days = days + (months - whole_months) * AVG_MONTH_DAYS;
    let whole_days = days.trunc();
    let seconds = seconds + (days - whole_days) * 86400.0;
    let whole_seconds = seconds.trunc();
    let extra_nanos = ((seconds - whole_seconds) * 1e9).round() as i64;
    Duration::new(
        whole_months as i64,
        whole_days as i64,
        whole_seconds as i64,
        nanos + extra_nanos,
    )
}

/// Why a temporal string was refused, worded as Java's `java.time` words it.
#[derive(Debug)]
pub struct TemporalError(pub String);

const MONTHS: [&str; 12] = [
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
];

/// A date from year, month, day, with Java's messages for impossible ones.
pub fn make_date(y: i32, m: u32, d: u32) -> Result<NaiveDate, TemporalError> {
    if !(1..=12).contains(&m) {
        return Err(TemporalError(format!(
            "Invalid value for MonthOfYear (valid values 1 - 12): {m}"
        )));
    }
    if !(1..=31).contains(&d) {
        return Err(TemporalError(format!(
            "Invalid value for DayOfMonth (valid values 1 - 28/31): {d}"
        )));
    }
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| {
        if m == 2 && d == 29 {
            TemporalError(format!(
                "Invalid date 'February 29' as '{y}' is not a leap year"
            ))
        } else {
            TemporalError(format!("Invalid date '{} {d}'", MONTHS[m as usize - 1]))
        }
    })
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `2024-02-29`, `20240229`, `2024-02`, `2024`.
pub fn parse_date(s: &str) -> Result<NaiveDate, TemporalError> {
    let bad = || TemporalError(format!("Text '{s}' could not be parsed at index 0"));
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let parts: Vec<&str> = body.split('-').collect();
    let (y, m, d) = match parts.as_slice() {
        [y, m, d] if y.len() >= 4 && m.len() == 2 && d.len() == 2 => (
            num(y).ok_or_else(bad)?,
            num(m).ok_or_else(bad)?,
            num(d).ok_or_else(bad)?,
        ),
        [y, m] if y.len() >= 4 && m.len() == 2 => {
            (num(y).ok_or_else(bad)?, num(m).ok_or_else(bad)?, 1)
        }
        [ymd] if ymd.len() == 8 => (
            num(&ymd[..4]).ok_or_else(bad)?,
            num(&ymd[4..6]).ok_or_else(bad)?,
            num(&ymd[6..]).ok_or_else(bad)?,
        ),
        [y] if y.len() == 4 => (num(y).ok_or_else(bad)?, 1, 1),
        _ => return Err(bad()),
    };
    let y = if neg { -(y as i32) } else { y as i32 };
    make_date(y, m, d)
}

/// Parses `12:34:56.123456789`, `12:34`, `123456`, `12`.
pub fn parse_local_time(s: &str) -> Result<NaiveTime, TemporalError> {
    let bad = || TemporalError(format!("Text '{s}' could not be parsed at index 0"));
    let (main, frac) = match s.find(['.', ',']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let fields: Vec<&str> = if main.contains(':') {
        main.split(':').collect()
    } else {
        main.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect()
    };
    if fields.is_empty() || fields.len() > 3 || fields.iter().any(|f| f.len() != 2) {
        return Err(bad());
    }
    let h = num(fields[0]).ok_or_else(bad)?;
    let m = fields
        .get(1)
        .map(|f| num(f))
        .unwrap_or(Some(0))
        .ok_or_else(bad)?;
    let sec = fields
        .get(2)
        .map(|f| num(f))
        .unwrap_or(Some(0))
        .ok_or_else(bad)?;
    let nanos = match frac {
        Some(f) if fields.len() == 3 && !f.is_empty() && f.len() <= 9 => {
            let mut digits = f.to_owned();
            while digits.len() < 9 {
                digits.push('0');
            }
            num(&digits).ok_or_else(bad)?
        }
        Some(_) => return Err(bad()),
        None => 0,
    };
    if h > 23 {
        return Err(TemporalError(format!(
            "Invalid value for HourOfDay (valid values 0 - 23): {h}"
        )));
    }
    if m > 59 {
        return Err(TemporalError(format!(
            "Invalid value for MinuteOfHour (valid values 0 - 59): {m}"
        )));
    }
    if sec > 59 {
        return Err(TemporalError(format!(
            "Invalid value for SecondOfMinute (valid values 0 - 59): {sec}"
        )));
    }
    NaiveTime::from_hms_nano_opt(h, m, sec, nanos).ok_or_else(bad)
}

/// An offset (`Z`, `+02:00`, `-0530`, `+01`) in seconds.
pub fn parse_offset(s: &str) -> Option<i32> {
    if s == "Z" || s == "z" {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = &s[1..];
    let (h, m) = match body.len() {
        2 => (num(body)?, 0),
        4 => (num(&body[..2])?, num(&body[2..])?),
        5 if &body[2..3] == ":" => (num(&body[..2])?, num(&body[3..])?),
        _ => return None,
    };
    if h > 18 || m > 59 {
        return None;
    }
    Some(sign * (h as i32 * 3600 + m as i32 * 60))
}

/// A zone id (`Europe/Berlin`) or an offset written as a zone.
pub fn parse_zone(s: &str) -> Result<Tz, TemporalError> {
    s.parse::<Tz>()
        .map_err(|_| TemporalError(format!("Unknown time-zone ID: {s}")))
}

/// Splits a time string into its local part, its offset and its `[zone]`.
fn split_zone(s: &str) -> Result<(&str, Option<i32>, Option<Tz>), TemporalError> {
    let (rest, zone) = match (s.find('['), s.strip_suffix(']')) {
        (Some(i), Some(_)) => (&s[..i], Some(parse_zone(&s[i + 1..s.len() - 1])?)),
        _ => (s, None),
    };
    if let Some(r) = rest.strip_suffix(['Z', 'z']) {
        return Ok((r, Some(0), zone));
    }
    // An offset starts at the last + or - that follows the first digit.
    if let Some(i) = rest.rfind(['+', '-']) {
        if i > 0 {
            if let Some(off) = parse_offset(&rest[i..]) {
                return Ok((&rest[..i], Some(off), zone));
            }
        }
    }
    Ok((rest, None, zone))
}

/// Parses `12:34:56.123+02:00`, `12:00Z`; the default offset is UTC.
pub fn parse_time(s: &str) -> Result<(NaiveTime, i32), TemporalError> {
    let (local, off, zone) = split_zone(s)?;
    let t = parse_local_time(local)?;
    let off = match (off, zone) {
        (Some(o), _) => o,
        (None, Some(z)) => z
            .offset_from_utc_datetime(&chrono::Utc::now().naive_utc())
            .fix()
            .local_minus_utc(),
        (None, None) => 0,
    };
    Ok((t, off))
}

/// Parses `2024-02-29T12:34:56.123`.
pub fn parse_local_datetime(s: &str) -> Result<NaiveDateTime, TemporalError> {
    match s.find(['T', 't']) {
        Some(i) => {
            let d = parse_date(&s[..i])?;
            let t = parse_local_time(&s[i + 1..])?;
            Ok(d.and_time(t))
        }
        None => Ok(parse_date(s)?.and_time(NaiveTime::MIN)),
    }
}

/// Resolves a local date-time in a zone (the earlier offset in an overlap, shifted forward
/// in a gap, as `java.time` does).
pub fn in_zone(local: NaiveDateTime, zone: Tz) -> ZonedDateTime {
    use chrono::LocalResult;
    let offset = match zone.offset_from_local_datetime(&local) {
        LocalResult::Single(o) => o.fix().local_minus_utc(),
        LocalResult::Ambiguous(a, _) => a.fix().local_minus_utc(),
        LocalResult::None => {
            let shifted = local + ChronoDuration::hours(1);
            let o = zone
                .offset_from_local_datetime(&shifted)
                .earliest()
                .map(|o| o.fix().local_minus_utc())
                .unwrap_or(0);
            return ZonedDateTime {
                local: shifted,
                offset: o,
                zone: Some(zone),
            };
        }
    };
    ZonedDateTime {
        local,
        offset,
        zone: Some(zone),
    }
}

/// Parses `2024-02-29T12:34:56.123+01:00[Europe/Berlin]`, `…[Europe/Berlin]`, `…-05:30`,
/// `…Z`; without offset or zone the value is UTC.
pub fn parse_datetime(s: &str) -> Result<ZonedDateTime, TemporalError> {
    let (date_part, time_part) = match s.find(['T', 't']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let date = parse_date(date_part)?;
    let (local, off, zone) = match time_part {
        Some(tp) => {
            let (lt, off, zone) = split_zone(tp)?;
            (date.and_time(parse_local_time(lt)?), off, zone)
        }
        None => (date.and_time(NaiveTime::MIN), None, None),
    };
    Ok(match (off, zone) {
        (_, Some(z)) => {
            let resolved = in_zone(local, z);
            match off {
                // A given offset that the zone allows at that time wins (DST overlaps).
                Some(o) if o != resolved.offset => {
                    let utc = local - ChronoDuration::seconds(o as i64);
                    let o2 = z.offset_from_utc_datetime(&utc).fix().local_minus_utc();
                    ZonedDateTime {
                        local: utc + ChronoDuration::seconds(o2 as i64),
                        offset: o2,
                        zone: Some(z),
                    }
                }
                _ => resolved,
            }
        }
        (Some(o), None) => ZonedDateTime {
            local,
            offset: o,
            zone: None,
        },
        (None, None) => ZonedDateTime {
            local,
            offset: 0,
            zone: None,
        },
    })
}

/// `HH:mm`, then `:ss` and a fraction in groups of three digits only when needed.
pub fn format_local_time(t: &NaiveTime) -> String {
    let mut s = format!("{:02}:{:02}", t.hour(), t.minute());
    let nanos = t.nanosecond();
    if t.second() != 0 || nanos != 0 {
        s.push_str(&format!(":{:02}", t.second()));
        if nanos != 0 {
            if nanos.is_multiple_of(1_000_000) {
                s.push_str(&format!(".{:03}", nanos / 1_000_000));
            } else if nanos.is_multiple_of(1000) {
                s.push_str(&format!(".{:06}", nanos / 1000));
            } else {
                s.push_str(&format!(".{nanos:09}"));
            }
        }
    }
    s
}

/// `2024-02-29` (years beyond four digits get a sign, as in Java).
pub fn format_date(d: &NaiveDate) -> String {
    let y = d.year();
    if (0..=9999).contains(&y) {
        format!("{y:04}-{:02}-{:02}", d.month(), d.day())
    } else if y > 9999 {
        format!("+{y}-{:02}-{:02}", d.month(), d.day())
    } else {
        format!("-{:04}-{:02}-{:02}", -y, d.month(), d.day())
    }
}

/// `2024-02-29T12:34:56.123`.
pub fn format_local_datetime(dt: &NaiveDateTime) -> String {
    format!(
        "{}T{}",
        format_date(&dt.date()),
        format_local_time(&dt.time())
    )
}

/// `Z`, `+02:00`, `-05:30` (and seconds when the offset has them).
pub fn format_offset(secs: i32) -> String {
    if secs == 0 {
        return "Z".into();
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let mut s = format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60);
    if !a.is_multiple_of(60) {
        s.push_str(&format!(":{:02}", a % 60));
    }
    s
}

/// `12:34:56.123+02:00`.
pub fn format_time(t: &NaiveTime, offset: i32) -> String {
    format!("{}{}", format_local_time(t), format_offset(offset))
}

/// Whole months from `a` to `b` (signed, as `ChronoUnit.MONTHS.between`).
fn months_between(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    let mut months =
        (b.year() as i64 - a.year() as i64) * 12 + (b.month() as i64 - a.month() as i64);
    let shifted = add_months(a, months);
    if months > 0 && shifted > b {
        months -= 1;
    } else if months < 0 && shifted < b {
        months += 1;
    }
    months
}

/// `dt` plus whole months, the day clamped to the month's end.
pub fn add_months(dt: NaiveDateTime, months: i64) -> NaiveDateTime {
    let total = dt.year() as i64 * 12 + dt.month0() as i64 + months;
    let y = total.div_euclid(12) as i32;
    let m = total.rem_euclid(12) as u32 + 1;
    let mut d = dt.day();
    loop {
        if let Some(date) = NaiveDate::from_ymd_opt(y, m, d) {
            return date.and_time(dt.time());
        }
        d -= 1;
    }
}

/// `duration.between(a, b)` for two local date-times: months, then days, then seconds.
pub fn between(a: NaiveDateTime, b: NaiveDateTime, with_time: bool) -> Duration {
    let months = months_between(a, b);
    let after_months = add_months(a, months);
    let rest = b - after_months;
    if !with_time {
        return Duration::new(months, (b.date() - after_months.date()).num_days(), 0, 0);
    }
    let days = rest.num_days();
    let rest = rest - ChronoDuration::days(days);
    let nanos = rest.num_nanoseconds().unwrap_or(0);
    Duration::new(months, days, 0, nanos)
}

/// A coordinate reference system Neo4j knows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crs {
    /// SRID (7203, 9157, 4326, 4979).
    pub srid: u32,
    /// `cartesian`, `cartesian-3d`, `wgs-84`, `wgs-84-3d`.
    pub name: &'static str,
    /// Dimensions.
    pub dims: usize,
    /// Whether geographic (longitude/latitude).
    pub geographic: bool,
}

/// The four CRSs of Neo4j 5.
pub const CRSS: [Crs; 4] = [
    Crs {
        srid: 7203,
        name: "cartesian",
        dims: 2,
        geographic: false,
    },
    Crs {
        srid: 9157,
        name: "cartesian-3d",
        dims: 3,
        geographic: false,
    },
    Crs {
        srid: 4326,
        name: "wgs-84",
        dims: 2,
        geographic: true,
    },
    Crs {
        srid: 4979,
        name: "wgs-84-3d",
        dims: 3,
        geographic: true,
    },
];

impl Crs {
    /// By SRID.
    pub fn by_srid(srid: i64) -> Option<Crs> {
        CRSS.iter().copied().find(|c| c.srid as i64 == srid)
    }

    /// By name (case-insensitive).
    pub fn by_name(name: &str) -> Option<Crs> {
        CRSS.iter()
            .copied()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The spatialreference.org link Neo4j puts in its JSON.
    pub fn href(&self) -> String {
        if self.geographic {
            format!("http://spatialreference.org/ref/epsg/{}/ogcwkt/", self.srid)
        } else {
            format!(
                "http://spatialreference.org/ref/sr-org/{}/ogcwkt/",
                self.srid
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_round_trips_as_recorded() {
        assert_eq!(
            format_date(&parse_date("2024-02-29").unwrap()),
            "2024-02-29"
        );
        assert_eq!(
            parse_date("2024-02-30").unwrap_err().0,
            "Invalid date 'FEBRUARY 30'"
        );
        assert_eq!(
            format_local_time(&parse_local_time("12:34:56.123456789").unwrap()),
            "12:34:56.123456789"
        );
        assert_eq!(
            format_local_time(&parse_local_time("00:00").unwrap()),
            "00:00"
        );
        let (t, o) = parse_time("12:34:56.123+02:00").unwrap();
        assert_eq!(format_time(&t, o), "12:34:56.123+02:00");
        let (t, o) = parse_time("12:00:00Z").unwrap();
        assert_eq!(format_time(&t, o), "12:00Z");
        let cases = [
            (
                "2024-02-29T12:34:56.123[Europe/Berlin]",
                "2024-02-29T12:34:56.123+01:00[Europe/Berlin]",
            ),
            (
                "2024-02-29T12:34:56.123-05:30",
                "2024-02-29T12:34:56.123-05:30",
            ),
            ("2024-02-29T12:34:56Z", "2024-02-29T12:34:56Z"),
            (
                "2024-07-01T00:00:00[America/New_York]",
                "2024-07-01T00:00-04:00[America/New_York]",
            ),
            (
                "2024-02-29T12:34:56+01:00[Europe/Berlin]",
                "2024-02-29T12:34:56+01:00[Europe/Berlin]",
            ),
            ("2000-01-04T00:00Z", "2000-01-04T00:00Z"),
        ];
        for (input, out) in cases {
            assert_eq!(parse_datetime(input).unwrap().format(), out, "{input}");
        }
    }

    #[test]
    fn durations_print_as_recorded() {
        for (input, out) in [
            ("P1Y2M3DT4H5M6.007S", "P1Y2M3DT4H5M6.007S"),
            ("PT0S", "PT0S"),
            ("P14D", "P14D"),
            ("P2W", "P14D"),
            ("PT90M", "PT1H30M"),
            ("PT1.5S", "PT1.5S"),
            ("P-1DT2H", "P-1DT2H"),
        ] {
            assert_eq!(Duration::parse(input).unwrap().format(), out, "{input}");
        }
        assert_eq!(Duration::new(0, -1, 7200, 0).format(), "P-1DT2H");
        let a = parse_date("2024-01-01").unwrap().and_time(NaiveTime::MIN);
        let b = parse_date("2024-03-15").unwrap().and_time(NaiveTime::MIN);
        assert_eq!(between(a, b, false).format(), "P2M14D");
        assert_eq!(from_fractional(0.0, 0.0, 1.5, 0).format(), "PT1.5S");
    }
}
