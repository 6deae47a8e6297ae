//! Running database tools (`pg_dump`, `pg_restore`, later `neo4j-admin`) as child processes.
//!
//! The child's stdout is streamed, never collected whole; its stderr is drained on a
//! thread (a child blocked on a full stderr pipe would never finish its stdout) and kept,
//! its tail at most, for the error message. Secrets reach the child through its
//! environment, which the caller sets on the `Command`; they never appear in argv.

use std::io::{self, Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;

use crate::progress::Progress;

/// Keep at most this much of a child's stderr: enough for any real error message.
const STDERR_TAIL: usize = 64 * 1024;

/// A child process failed.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// It could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// It exited unsuccessfully.
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        /// The program.
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// The tail of what it wrote to stderr, trimmed.
        stderr: String,
    },
    /// Copying its stdout failed (e.g. the spool disk is full).
    #[error("while reading the output of {program}: {source}")]
    Output {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
}

fn program_name(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

/// Runs `cmd`, copying its stdout into `sink` as it comes and counting bytes on `progress`.
/// Returns the number of bytes copied. If copying fails the child is killed.
pub fn stream_stdout(
    cmd: &mut Command,
    sink: &mut dyn Write,
    progress: &dyn Progress,
) -> Result<u64, ChildError> {
    let program = program_name(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ChildError::Spawn {
            program: program.clone(),
            source,
        })?;
    let stderr = child.stderr.take().expect("stderr piped");
    let stderr_thread = thread::spawn(move || read_tail(stderr));
    let mut stdout = child.stdout.take().expect("stdout piped");
    let copied = copy_counting(&mut stdout, sink, progress);
    if copied.is_err() {
        let _ = child.kill();
    }
    drop(stdout);
    let status = child.wait().map_err(|source| ChildError::Spawn {
        program: program.clone(),
        source,
    })?;
    let stderr = stderr_thread.join().unwrap_or_default();
    if !status.success() {
        return Err(ChildError::Failed {
            program,
            status,
            stderr,
        });
    }
    copied.map_err(|source| ChildError::Output { program, source })
}

/// Runs `cmd` to completion with stdout and stderr captured (for tools whose output is
/// small, such as `pg_restore`). Returns stderr (warnings) on success.
pub fn run(cmd: &mut Command) -> Result<String, ChildError> {
    let program = program_name(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ChildError::Spawn {
            program: program.clone(),
            source,
        })?;
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    if text.trim().is_empty() {
        text = String::from_utf8_lossy(&output.stdout).into_owned();
    }
    let text = tail(text.trim());
    if !output.status.success() {
        return Err(ChildError::Failed {
            program,
            status: output.status,
            stderr: text,
        });
    }
    Ok(text)
}

fn copy_counting(
    from: &mut dyn Read,
    to: &mut dyn Write,
    progress: &dyn Progress,
) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        crate::interrupt::check()?;
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
        progress.inc(n as u64);
    }
    to.flush()?;
    Ok(total)
}

fn read_tail(mut from: impl Read) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        if all.len() > 2 * STDERR_TAIL {
            all.drain(..all.len() - STDERR_TAIL);
        }
    }
    tail(String::from_utf8_lossy(&all).trim())
}

/// The last [`STDERR_TAIL`] bytes of `text`, on a char boundary, with lines joined by `; `
/// so the whole message fits on one log line.
fn tail(text: &str) -> String {
    let mut start = text.len().saturating_sub(STDERR_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Hidden;

    #[test]
    fn streams_stdout_and_reports_stderr_on_failure() {
        let mut out = Vec::new();
        let n = stream_stdout(
            Command::new("sh").args(["-c", "printf hello"]),
            &mut out,
            &Hidden,
        )
        .unwrap();
        assert_eq!((n, out.as_slice()), (5, &b"hello"[..]));

        let err = stream_stdout(
            Command::new("sh").args(["-c", "echo one >&2; echo two >&2; exit 3"]),
            &mut Vec::new(),
            &Hidden,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("exit status: 3") && err.ends_with("one; two"),
            "{err}"
        );
    }

    /// A sink that fails like a full disk.
    struct FullDisk;
    impl Write for FullDisk {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "No space left on device",
            ))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_sink_kills_the_child_and_says_why() {
        // `yes` never ends on its own: only the kill stops it.
        let err = stream_stdout(&mut Command::new("yes"), &mut FullDisk, &Hidden).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, ChildError::Failed { .. } | ChildError::Output { .. }),
            "{text}"
        );
        assert!(text.contains("yes"), "{text}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = run(&mut Command::new("/nonexistent/pg_dump")).unwrap_err();
        assert!(matches!(err, ChildError::Spawn { .. }));
    }
}
