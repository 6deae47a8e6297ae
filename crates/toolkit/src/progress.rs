//! Progress of long transfers, shown on stderr only when someone is watching.
//!
//! Library code reports bytes — or items: points, nodes, rows — through `&dyn Progress`;
//! [`for_stderr`] picks how they are shown: a redrawing counter when stderr is a terminal,
//! a log line every 10 seconds when it is not (systemd journal, CI logs), or nothing with
//! `--no-progress`.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Receives counts (bytes, or items of a [`Unit`]) from long work. Cheap to call often.
pub trait Progress: Send + Sync {
    /// The total, when it is known.
    fn set_length(&self, total: u64);
    /// `n` more are done.
    fn inc(&self, n: u64);
    /// The work is over (successfully or not).
    fn finish(&self);
}

/// Shows nothing.
pub struct Hidden;

impl Progress for Hidden {
    fn set_length(&self, _: u64) {}
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Not at all.
    Hidden,
    /// A counter redrawn in place (stderr is a terminal).
    Terminal,
    /// A line every `interval` (stderr is a file or the journal).
    Log,
}

/// The style for this process: hidden when asked, a counter on a terminal, else log lines.
pub fn style(no_progress: bool) -> Style {
    if no_progress {
        Style::Hidden
    } else if std::io::stderr().is_terminal() {
        Style::Terminal
    } else {
        Style::Log
    }
}

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Bytes, shown as `1.5 GiB`.
    Bytes,
    /// Items, shown as `1200 points`.
    Items(&'static str),
}

impl Unit {
    fn show(self, n: u64) -> String {
        match self {
            Unit::Bytes => format_bytes(n),
            Unit::Items(name) => format!("{n} {name}"),
        }
    }
}

/// A progress reporter for one transfer, labelled `label` (e.g. `upload postgres_app_…`),
/// counting bytes.
pub fn for_stderr(style: Style, label: &str) -> Box<dyn Progress> {
    for_stderr_counting(style, label, Unit::Bytes)
}

/// A progress reporter counting `unit`.
pub fn for_stderr_counting(style: Style, label: &str, unit: Unit) -> Box<dyn Progress> {
    match style {
        Style::Hidden => Box::new(Hidden),
        Style::Terminal => Box::new(Reporter::new(label, unit, true, Duration::from_millis(250))),
        Style::Log => Box::new(Reporter::new(label, unit, false, Duration::from_secs(10))),
    }
}

struct State {
    done: u64,
    length: Option<u64>,
    last_shown: Instant,
    shown_any: bool,
    finished: bool,
}

struct Reporter {
    label: String,
    unit: Unit,
    redraw: bool,
    interval: Duration,
    started: Instant,
    state: Mutex<State>,
}

impl Reporter {
    fn new(label: &str, unit: Unit, redraw: bool, interval: Duration) -> Self {
        let now = Instant::now();
        Reporter {
            label: label.to_owned(),
            unit,
            redraw,
            interval,
            started: now,
            state: Mutex::new(State {
                done: 0,
                length: None,
                last_shown: now,
                shown_any: false,
                finished: false,
            }),
        }
    }

    fn line(&self, state: &State) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.unit.show((state.done as f64 / secs) as u64);
        let done = self.unit.show(state.done);
        match state.length {
            Some(total) if total > 0 => format!(
                "{}: {done} / {} ({:.0}%), {rate}/s",
                self.label,
                self.unit.show(total),
                state.done as f64 * 100.0 / total as f64
            ),
            _ => format!("{}: {done}, {rate}/s", self.label),
        }
    }

    fn show(&self, state: &mut State) {
        let line = self.line(state);
        let mut err = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not fail the transfer.
        let _ = if self.redraw {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        state.last_shown = Instant::now();
        state.shown_any = true;
    }
}

impl Progress for Reporter {
    fn set_length(&self, total: u64) {
        self.state.lock().unwrap().length = Some(total);
    }

    fn inc(&self, n: u64) {
        let mut state = self.state.lock().unwrap();
        state.done += n;
        if !state.finished && state.last_shown.elapsed() >= self.interval {
            self.show(&mut state);
        }
    }

    fn finish(&self) {
        let mut state = self.state.lock().unwrap();
        if std::mem::replace(&mut state.finished, true) {
            return; // finishing twice (library, then caller) draws once
        }
        if self.redraw && state.shown_any {
            self.show(&mut state);
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// `1.5 GiB`, `12.0 MiB`, `512 B`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_formatted_in_binary_units() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (5 << 30, "5.0 GiB"),
        ];
        for (n, want) in cases {
            assert_eq!(format_bytes(n), want);
        }
    }

    #[test]
    fn items_are_counted_by_name() {
        let r = Reporter::new(
            "export neo4j",
            Unit::Items("nodes"),
            false,
            Duration::from_secs(10),
        );
        r.set_length(2000);
        r.inc(500);
        let line = r.line(&r.state.lock().unwrap());
        assert!(
            line.starts_with("export neo4j: 500 nodes / 2000 nodes (25%)"),
            "{line}"
        );
    }
}
