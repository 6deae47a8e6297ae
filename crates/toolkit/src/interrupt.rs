//! Stopping cleanly on SIGINT, SIGTERM and SIGHUP.
//!
//! Dying mid-transfer would leave an incomplete S3 multipart upload (billed, invisible) or a
//! `.partial` file behind, and lose the manifest of the record in progress. So the first
//! signal only sets a flag; the transfer loops check it with [`check`], fail the record
//! the ordinary way (abort the upload, remove the `.partial`, emit a `failed` manifest), and
//! the tool exits 2. A second signal terminates at once, for when cleaning up hangs.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the handlers. Called once by [`crate::cli::main`].
pub fn install() {
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        // Order matters: the shutdown is armed by the flag the second handler sets.
        let _ =
            signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, &INTERRUPTED);
        let _ = signal_hook::flag::register(signal, &INTERRUPTED);
    }
}

/// Whether a termination signal arrived.
pub fn is_interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// An error if a termination signal arrived: long loops call this between chunks.
pub fn check() -> io::Result<()> {
    if is_interrupted() {
        Err(io::Error::other("interrupted by a signal; stopping"))
    } else {
        Ok(())
    }
}
