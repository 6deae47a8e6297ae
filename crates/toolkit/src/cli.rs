//! What every stackvault tool does the same way: `main()`, exit codes, messages on stderr,
//! manifests on stdin/stdout, and the flags they share.
//!
//! # Exit codes (documented in every man page)
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | every record succeeded |
//! | 1 | the tool finished, but at least one record failed (it was emitted with `status: failed`) |
//! | 2 | fatal: bad usage, malformed input, bad configuration, or a signal; the tool stopped |
//!
//! Stdout carries manifests and nothing else; every message goes to stderr, prefixed with
//! the tool's name, one line each.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use clap::{ArgMatches, Command};

use manifest::ndjson::{NdjsonReader, NdjsonWriter};

/// Exit status when every record succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit status when the tool finished but some records failed.
pub const EXIT_SOME_FAILED: u8 = 1;
/// Exit status for fatal errors and bad usage (clap uses 2 for usage errors too).
pub const EXIT_FATAL: u8 = 2;

static TOOL: OnceLock<String> = OnceLock::new();
static SOME_FAILED: AtomicBool = AtomicBool::new(false);

/// The running tool's name, for message prefixes.
pub fn tool_name() -> &'static str {
    TOOL.get().map(String::as_str).unwrap_or("stackvault")
}

/// Prints `tool: message` on stderr.
pub fn info(message: impl std::fmt::Display) {
    eprintln!("{}: {message}", tool_name());
}

/// Prints `tool: error: message` on stderr and makes the tool exit 1 at the end: a record
/// failed, the others go on.
pub fn record_failed(message: impl std::fmt::Display) {
    eprintln!("{}: error: {message}", tool_name());
    SOME_FAILED.store(true, Ordering::SeqCst);
}

/// Makes the tool exit 1 at the end without printing anything: for tools whose exit 1 is an
/// outcome reported on stdout (`vault-ledger check`: alerts), not a failed record.
pub fn mark_failed() {
    SOME_FAILED.store(true, Ordering::SeqCst);
}

/// The entry point of every tool binary: parses arguments with `command`, runs `run`, prints
/// a fatal error once as `tool: error: cause: cause…` and turns the outcome into an exit
/// code.
pub fn main(command: fn() -> Command, run: fn(&ArgMatches) -> anyhow::Result<()>) -> ExitCode {
    // Environment values never show in --help: a URL there may carry a password.
    let command = hide_env_values(command());
    let _ = TOOL.set(command.get_name().to_owned());
    let matches = command.get_matches();
    crate::interrupt::install();
    match run(&matches) {
        Ok(()) if SOME_FAILED.load(Ordering::SeqCst) => ExitCode::from(EXIT_SOME_FAILED),
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(err) => {
            eprintln!("{}: error: {err:#}", tool_name());
            ExitCode::from(EXIT_FATAL)
        }
    }
}

/// `cmd` with `hide_env_values` on every argument of it and its subcommands.
pub fn hide_env_values(cmd: Command) -> Command {
    cmd.mut_args(|arg| arg.hide_env_values(true))
        .mut_subcommands(hide_env_values)
}

/// True when `err` (or its cause) is a broken pipe: the reader of stdout went away.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Fails when a termination signal arrived: tools call it between records, after the
/// record in progress was emitted (as `failed`, if the signal cut it short).
pub fn stop_if_interrupted() -> anyhow::Result<()> {
    Ok(crate::interrupt::check()?)
}

/// Manifests from stdin. On a terminal, says first that it is waiting for them.
pub fn manifests_in() -> NdjsonReader<io::StdinLock<'static>> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        info("reading manifests from stdin (one JSON object a line; Ctrl-D ends)");
    }
    NdjsonReader::new(stdin.lock(), "stdin")
}

/// Manifests to stdout, one flushed line each.
pub fn manifests_out() -> NdjsonWriter<io::StdoutLock<'static>> {
    NdjsonWriter::new(io::stdout().lock())
}

/// Writes one record to stdout; a failure (the next tool went away) is fatal, because the
/// record of completed work would be lost.
pub fn emit(
    out: &mut NdjsonWriter<io::StdoutLock<'static>>,
    manifest: &manifest::Manifest,
) -> anyhow::Result<()> {
    out.write(manifest).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "cannot write the manifest of {} to stdout (the record of this work is lost; \
             re-run with stdout to a file)",
            manifest.id
        ))
    })
}

/// The record in progress failed: says so on stderr (exit 1 at the end), marks the
/// manifest `failed` with `message`, and passes it on, so the failure travels as data.
pub fn emit_failed(
    out: &mut NdjsonWriter<io::StdoutLock<'static>>,
    mut manifest: manifest::Manifest,
    message: String,
) -> anyhow::Result<()> {
    record_failed(&message);
    manifest.fail(message);
    emit(out, &manifest)
}

/// A path or other text from input, quoted for a message: control characters are escaped,
/// so a file name with a newline or terminal escapes cannot forge a second line of output.
pub fn quote(text: impl AsRef<std::ffi::OsStr>) -> String {
    let text = text.as_ref().to_string_lossy();
    if text.chars().all(|c| !c.is_control()) && !text.contains(' ') && !text.is_empty() {
        text.into_owned()
    } else {
        format!("{text:?}")
    }
}

/// Flags shared by every tool that moves artifacts.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Never show progress on stderr (by default: a counter on a terminal, a line every 10 s otherwise).
    #[arg(long)]
    pub no_progress: bool,

    /// Local directory for dumps before upload and downloads before restore
    /// [default: /var/lib/stackvault/spool, or ~/.cache/stackvault/spool when that is not writable].
    #[arg(long, env = "STACKVAULT_SPOOL", value_name = "DIR")]
    pub spool: Option<PathBuf>,
}

impl CommonArgs {
    /// The spool directory to use, created (0700) and checked: refused when world-writable
    /// or owned by another user.
    pub fn spool_dir(&self) -> anyhow::Result<crate::spool::SpoolDir> {
        let path = self.spool.clone().unwrap_or_else(crate::spool::default_dir);
        Ok(crate::spool::SpoolDir::open(&path)?)
    }

    /// How progress is shown.
    pub fn progress_style(&self) -> crate::progress::Style {
        crate::progress::style(self.no_progress)
    }
}

/// The exit-code section every man page carries, from one source.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  every record succeeded
  1  finished, but at least one record failed (emitted with \"status\":\"failed\")
  2  fatal error, bad usage, or SIGINT/SIGTERM; the tool stopped (records already written stay
     valid; on a signal the transfer in progress is cleaned up and its record emitted as failed)";

/// `error: cause: cause…` on one line. A cause whose text the message already contains is
/// skipped, so errors that embed their source are not repeated.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = e.source();
    }
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_quoted_texts() {
        let cases = [
            (
                "/var/lib/stackvault/spool/a.dump",
                "/var/lib/stackvault/spool/a.dump",
            ),
            (
                "/spool/evil\n\x1b[31mforged",
                "\"/spool/evil\\n\\u{1b}[31mforged\"",
            ),
            ("with space", "\"with space\""),
            ("", "\"\""),
        ];
        for (text, want) in cases {
            assert_eq!(quote(text), want, "{text:?}");
        }
    }
}
