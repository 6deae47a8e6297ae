//! What stderr says while the client only waits for the server: creating the snapshot of
//! a large collection, or restoring one, takes minutes, and silence then looks like a hang.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use manifest::time::human_age;
use toolkit::progress::Style;

/// How long work may take before stderr says that it is waiting.
pub const QUIET: Duration = Duration::from_secs(2);

/// A line on stderr now and then until dropped: after [`QUIET`], then every 10 s in a log
/// (every second, redrawn, on a terminal).
pub struct Waiting {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Waiting {
    /// Starts saying `label: waiting for Qdrant to {doing} …` (nothing with `Style::Hidden`).
    pub fn start(style: Style, label: &str, doing: &str, limit: Duration) -> Waiting {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        if style == Style::Hidden {
            return Waiting { stop, thread: None };
        }
        let (label, doing) = (label.to_owned(), doing.to_owned());
        let shared = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let redraw = style == Style::Terminal;
            let every = if redraw {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(10)
            };
            let (lock, wake) = &*shared;
            let mut stopped = lock.lock().unwrap();
            // Quick work says nothing: the first line comes after QUIET.
            stopped = wake
                .wait_timeout_while(stopped, QUIET, |stopped| !*stopped)
                .unwrap()
                .0;
            let mut first = true;
            while !*stopped {
                let elapsed = human_age(started.elapsed());
                let line = if first {
                    format!(
                        "{label}: waiting for Qdrant to {doing} (the server works, this side waits; \
                         up to {})",
                        human_age(limit)
                    )
                } else {
                    format!("{label}: still waiting for Qdrant to {doing}, {elapsed} so far")
                };
                let mut err = std::io::stderr().lock();
                let _ = if redraw && !first {
                    write!(err, "\r\x1b[2K{line}")
                } else if redraw {
                    write!(err, "{line}")
                } else {
                    writeln!(err, "{line}")
                };
                drop(err);
                first = false;
                stopped = wake.wait_timeout(stopped, every).unwrap().0;
            }
            if redraw && !first {
                let _ = writeln!(std::io::stderr());
            }
        });
        Waiting {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap() = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
