//! What every stackvault tool shares besides the manifest protocol, as coreutils' `uucore`
//! is for its utilities.
//!
//! - [`cli`]: `main()` for every tool, exit codes, messages on stderr, the shared flags;
//! - [`interrupt`]: a first SIGINT/SIGTERM stops transfers cleanly instead of mid-write;
//! - [`progress`]: progress on a terminal, periodic log lines otherwise;
//! - [`spool`]: the local spool directory and atomic spool files (`.partial`, fsync, link);
//!   [`follow`]: reading a spool file while its producer writes it;
//! - [`child`]: running a child process whose stdout is streamed into a file (or a file into
//!   its stdin), with what it said kept for the error message, its stdout read in large
//!   pieces (`batched_pipe`);
//! - [`restorable`]: the shared "can this record be restored" check, and how a restore
//!   concludes (proven, mismatch, unverified);
//! - [`copy`]: the one copy loop (hash, progress, signal check, exact length);
//! - [`retry`]: one retry policy (transient errors, backoff, attempts, a time budget) for
//!   S3 and the HTTP clients; [`http`]: the HTTP client (ureq, TLS, three timeouts);
//! - [`secret`]: values that never print, and URLs with their credentials taken out;
//! - [`fs`]: opening and creating files so that planted files (symlinks, FIFOs) cannot be
//!   turned against the tool; [`small_writes`]: writing into files in pieces the page
//!   cache takes cheaply.
#![deny(missing_docs)]

mod batched_pipe;
pub mod child;
pub mod cli;
pub mod copy;
pub mod follow;
pub mod fs;
pub mod http;
pub mod interrupt;
pub mod progress;
pub mod restorable;
pub mod retry;
pub mod secret;
pub mod small_writes;
pub mod spool;
