//! What every stackvault tool shares besides the manifest protocol, as coreutils' `uucore`
//! is for its utilities.
//!
//! - [`cli`]: `main()` for every tool, exit codes, messages on stderr, the shared flags;
//! - [`interrupt`]: a first SIGINT/SIGTERM stops transfers cleanly instead of mid-write;
//! - [`progress`]: progress on a terminal, periodic log lines otherwise;
//! - [`spool`]: the local spool directory and atomic spool files (`.partial`, fsync, link);
//! - [`child`]: running a child process whose stdout is streamed and whose stderr is kept
//!   for the error message.
#![deny(missing_docs)]

pub mod child;
pub mod cli;
pub mod interrupt;
pub mod progress;
pub mod spool;
