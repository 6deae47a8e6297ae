//! Stopping cleanly on SIGINT, SIGTERM and SIGHUP.
//!
//! Dying mid-transfer would leave an incomplete S3 multipart upload (billed, invisible) or a
//! `.partial` file behind, and lose the manifest of the record in progress. So the first
//! signal only sets a flag; the transfer loops check it with [`check`], fail the record
//! the ordinary way (abort the upload, remove the `.partial`, emit a `failed` manifest), and
//! the tool exits 2. A second signal terminates at once, for when cleaning up hangs.
//!
//! A loop can only check the flag between blocking calls. So that a call blocked for good
//! (a read from a child that never writes again) cannot make the first signal
//! ineffective, a watchdog thread reacts to the flag: it stops the child processes that
//! [`crate::child`] registered (which ends the blocked read, and the loop then cleans up as
//! usual), and if the tool is still running [`GRACE`] later it exits with status 2.
//!
//! Some work must not be cut short by the first signal, because stopping half-way would
//! do more harm than finishing: restarting a DBMS that a dump stopped, or loading a
//! database back from its rollback copy after a failed restore destroyed it. Such work
//! runs under a [`Deferred`] guard ([`defer`]): while one is held, the signal is held back
//! — [`is_interrupted`] and [`check`] say no, the watchdog waits — and it takes effect as
//! soon as the last guard is dropped; the watchdog neither stops the children of such work
//! nor exits while a guard lives. A second signal still ends the tool at once.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Live [`Deferred`] guards.
static DEFERRED: AtomicUsize = AtomicUsize::new(0);

/// Child processes to stop when a signal arrives (pids).
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// How long cleaning up may take after the first signal before the tool exits anyway.
pub const GRACE: Duration = Duration::from_secs(10);

/// Installs the handlers and the watchdog. Called once by [`crate::cli::main`].
pub fn install() {
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        // Order matters: the shutdown is armed by the flag the second handler sets.
        let _ =
            signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, &INTERRUPTED);
        let _ = signal_hook::flag::register(signal, &INTERRUPTED);
    }
    let _ = std::thread::Builder::new()
        .name("interrupt-watchdog".into())
        .spawn(watchdog);
}

fn watchdog() {
    loop {
        while !is_interrupted() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let children = CHILDREN.lock().unwrap();
        // A guard taken since the check: its work (and its children) must not be stopped.
        // Children register under this lock, so none spawned under a guard is signalled.
        if DEFERRED.load(Ordering::SeqCst) > 0 {
            continue;
        }
        for pid in children.iter() {
            // SAFETY: kill with a pid we spawned and a signal number; no memory involved.
            unsafe {
                libc::kill(*pid as libc::pid_t, libc::SIGTERM);
            }
        }
        break;
    }
    std::thread::sleep(GRACE);
    // Work under a guard finishes first, however long it takes (a second signal still
    // ends the tool at once).
    while DEFERRED.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "{}: error: cleaning up after the signal took longer than {} s; exiting",
        crate::cli::tool_name(),
        GRACE.as_secs()
    );
    std::process::exit(crate::cli::EXIT_FATAL as i32);
}

/// Registers a running child, to be stopped on a signal; [`forget_child`] when reaped.
pub fn register_child(pid: u32) {
    CHILDREN.lock().unwrap().push(pid);
}

/// The child `pid` was reaped: never signal its (reusable) pid again.
pub fn forget_child(pid: u32) {
    CHILDREN.lock().unwrap().retain(|p| *p != pid);
}

/// Whether a termination signal arrived (and is not being held back by a [`Deferred`]).
pub fn is_interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst) && DEFERRED.load(Ordering::SeqCst) == 0
}

/// Holds back a termination signal while it lives: see the [module docs](self). Get one
/// with [`defer`] around work that must finish once started.
#[must_use = "the signal is held back only while the guard lives"]
pub struct Deferred {
    _private: (),
}

/// Holds back the first termination signal until the returned guard is dropped.
pub fn defer() -> Deferred {
    DEFERRED.fetch_add(1, Ordering::SeqCst);
    Deferred { _private: () }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        DEFERRED.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An error if a termination signal arrived: long loops call this between chunks.
pub fn check() -> io::Result<()> {
    if is_interrupted() {
        Err(io::Error::other("interrupted by a signal; stopping"))
    } else {
        Ok(())
    }
}

/// Sleeps `duration`, waking early (with an error) when a signal arrives: retry back-offs
/// must not delay a clean stop.
pub fn sleep(duration: Duration) -> io::Result<()> {
    let deadline = std::time::Instant::now() + duration;
    loop {
        check()?;
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run by [`a_deferred_signal_takes_effect_when_the_guard_goes`] in a process of its
    /// own: the flag is process-wide, and the other tests of this binary must not see it.
    #[test]
    #[ignore = "run in a child process by a_deferred_signal_takes_effect_when_the_guard_goes"]
    fn deferred_signal_in_a_child_process() {
        let guard = defer();
        INTERRUPTED.store(true, Ordering::SeqCst);
        assert!(!is_interrupted() && check().is_ok() && sleep(Duration::from_millis(1)).is_ok());
        let nested = defer();
        drop(guard);
        assert!(!is_interrupted(), "held back while any guard lives");
        drop(nested);
        assert!(is_interrupted() && check().is_err());
    }

    #[test]
    fn a_deferred_signal_takes_effect_when_the_guard_goes() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "interrupt::tests::deferred_signal_in_a_child_process",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "{text}");
    }
}
