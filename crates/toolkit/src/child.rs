//! Running database tools (`pg_dump`, `pg_restore`, `neo4j-admin`) as child processes.
//!
//! Data streams through, never collected whole: a child's stdout is copied into a sink
//! ([`stream_stdout`]), or a file is copied into its stdin ([`feed_stdin`]). What is not the
//! data stream is drained on threads (a child blocked on a full pipe would never finish)
//! and kept, a bounded head and tail of it, for the error message. When stdout *is* the
//! data stream it can be kept too (`keep_stdout`): `neo4j-admin` writes its error lines to
//! stdout, into what would have been the dump.
//!
//! The exit status is the truth: a child that exits non-zero failed, whatever it wrote.
//! Secrets reach the child through its environment, which the caller sets on the
//! `Command`; they never appear in argv. Children are registered with [`crate::interrupt`]
//! so that a signal stops them even while this process is blocked reading their output.

use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;

use crate::batched_pipe::BatchedPipe;
use crate::copy::{copy, CopyError, CopyOptions};
use crate::progress::Progress;

/// Keep this much of the start and of the end of a captured stream: enough for any real
/// error message, bounded whatever the child writes.
const KEEP: usize = 32 * 1024;

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
    #[error("{program} failed ({status}): {}", .message.as_deref().unwrap_or("it printed no message"))]
    Failed {
        /// The program.
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it said: its stderr, and its stdout when that was kept (joined on one line).
        message: Option<String>,
    },
    /// Copying its output into the sink, or the source into its input, failed on our side
    /// (e.g. the spool disk is full); the child was stopped.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the file.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// A termination signal arrived; the child was stopped.
    #[error("{program} stopped: interrupted by a signal")]
    Interrupted {
        /// The program.
        program: String,
    },
}

impl ChildError {
    /// The I/O error on our side, if that is what this is.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            ChildError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn program_name(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

/// What the child wrote on one stream: the first and the last [`KEEP`] bytes.
#[derive(Default)]
struct Kept {
    head: Vec<u8>,
    tail: Vec<u8>,
    dropped: bool,
}

impl Kept {
    fn push(&mut self, data: &[u8]) {
        let room = KEEP.saturating_sub(self.head.len());
        let (to_head, rest) = data.split_at(room.min(data.len()));
        self.head.extend_from_slice(to_head);
        self.tail.extend_from_slice(rest);
        if self.tail.len() > 2 * KEEP {
            self.tail.drain(..self.tail.len() - KEEP);
            self.dropped = true;
        }
    }

    /// The kept text on one line (`; ` between lines), `…` where bytes were dropped.
    fn text(&self) -> String {
        let mut tail = &self.tail[..];
        if tail.len() > KEEP {
            tail = &tail[tail.len() - KEEP..];
        }
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped || self.tail.len() > KEEP {
            text.push_str("\n…\n");
        }
        text.push_str(&String::from_utf8_lossy(tail));
        one_line(&text)
    }
}

/// Lines joined by `; `, blank ones dropped, so a message fits on one log line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A `Write` that keeps what passes (bounded) and forwards it.
struct Tee<'a> {
    inner: &'a mut dyn Write,
    kept: &'a mut Kept,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.kept.push(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn drain(mut from: impl Read + Send + 'static) -> thread::JoinHandle<Kept> {
    thread::spawn(move || {
        let mut kept = Kept::default();
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            kept.push(&buf[..n]);
        }
        kept
    })
}

fn spawn(cmd: &mut Command, program: &str) -> Result<Child, ChildError> {
    let child = cmd.spawn().map_err(|source| ChildError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    crate::interrupt::register_child(child.id());
    Ok(child)
}

fn reap(mut child: Child, program: &str) -> Result<ExitStatus, ChildError> {
    let status = child.wait();
    crate::interrupt::forget_child(child.id());
    status.map_err(|source| ChildError::Spawn {
        program: program.to_owned(),
        source,
    })
}

/// What the caller of [`stream_stdout`] wants besides the data.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamOptions {
    /// Keep a bounded head and tail of stdout for the error message (for tools that
    /// write their errors to stdout).
    pub keep_stdout: bool,
}

/// Runs `cmd`, copying its stdout into `sink` (named `sink_name` in messages) as it comes
/// and counting bytes on `progress`. Returns the number of bytes copied.
///
/// Which failure is reported, in this order: a signal (the child is stopped); our side of
/// the copy failing, e.g. a full spool disk (the child is killed: its death is a
/// consequence, not the cause); the child's own non-zero exit, with its message.
pub fn stream_stdout(
    cmd: &mut Command,
    sink: &mut dyn Write,
    sink_name: &str,
    options: StreamOptions,
    progress: &dyn Progress,
) -> Result<u64, ChildError> {
    let program = program_name(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(cmd, &program)?;
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    let mut stdout = BatchedPipe::new(child.stdout.take().expect("stdout piped"));
    let mut kept = Kept::default();
    let copied = if options.keep_stdout {
        let mut tee = Tee {
            inner: sink,
            kept: &mut kept,
        };
        copy(&mut stdout, &mut tee, CopyOptions::to_end(), progress)
    } else {
        copy(&mut stdout, sink, CopyOptions::to_end(), progress)
    };
    if copied.is_err() {
        let _ = child.kill();
    }
    drop(stdout);
    let status = reap(child, &program)?;
    let stderr = stderr.join().unwrap_or_default();
    match copied {
        Err(CopyError::Interrupted) => Err(ChildError::Interrupted { program }),
        Err(e @ CopyError::Write(_)) => Err(ChildError::Io {
            what: format!("cannot write the output of {program} to {sink_name}"),
            source: e.into_io(),
        }),
        _ if !status.success() => Err(ChildError::Failed {
            program,
            status,
            message: message(&stderr, options.keep_stdout.then_some(&kept)),
        }),
        Err(e) => Err(ChildError::Io {
            what: format!("cannot read the output of {program}"),
            source: e.into_io(),
        }),
        Ok(copied) => Ok(copied.bytes),
    }
}

/// stderr, then stdout when it was kept, as one line; `None` when both are empty.
fn message(stderr: &Kept, stdout: Option<&Kept>) -> Option<String> {
    let parts: Vec<String> = [Some(stderr), stdout]
        .into_iter()
        .flatten()
        .map(Kept::text)
        .filter(|t| !t.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What a child said while it ran successfully.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Said {
    /// Its stdout (bounded head and tail), on one line.
    pub stdout: String,
    /// Its stderr (bounded head and tail), on one line: warnings.
    pub stderr: String,
}

/// Runs `cmd` with `len` bytes of `src` (named `src_name` in messages) streamed into its
/// stdin, counting them on `progress`; stdout and stderr are kept for the message.
///
/// Which failure is reported, in this order: a signal; our side of the copy failing (the
/// source cannot be read, or is shorter than `len`: the child is stopped); the child's own
/// non-zero exit (a child that dies stops reading, so a broken pipe on our side is its
/// consequence, and its message is the one to show).
pub fn feed_stdin(
    cmd: &mut Command,
    src: &mut dyn Read,
    src_name: &str,
    len: Option<u64>,
    progress: &dyn Progress,
) -> Result<Said, ChildError> {
    let program = program_name(cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn(cmd, &program)?;
    let stdout = drain(child.stdout.take().expect("stdout piped"));
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    let mut stdin = child.stdin.take().expect("stdin piped");
    let options = CopyOptions { len, hash: false };
    let copied = copy(src, &mut stdin, options, progress);
    drop(stdin); // EOF: the child finishes reading
                 // Our own failures (not a broken pipe, which is the child's) stop the child.
    let ours = matches!(
        copied,
        Err(CopyError::Interrupted | CopyError::Read(_) | CopyError::Short { .. })
    );
    if ours {
        let _ = child.kill();
    }
    let status = reap(child, &program)?;
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    match copied {
        Err(CopyError::Interrupted) => Err(ChildError::Interrupted { program }),
        _ if !ours && !status.success() => Err(ChildError::Failed {
            program,
            status,
            message: message(&stderr, Some(&stdout)),
        }),
        Err(e) => Err(ChildError::Io {
            what: format!("cannot feed {src_name} to {program}"),
            source: e.into_io(),
        }),
        Ok(_) => Ok(Said {
            stdout: stdout.text(),
            stderr: stderr.text(),
        }),
    }
}

/// Runs `cmd` to completion with stdout and stderr captured (for tools whose output is
/// small, such as `pg_restore`). Returns what it said on success.
pub fn run(cmd: &mut Command) -> Result<Said, ChildError> {
    feed_stdin(
        cmd,
        &mut io::empty(),
        "nothing",
        None,
        &crate::progress::Hidden,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::tests::FullDisk;
    use crate::progress::Hidden;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn streams_stdout_and_reports_stderr_on_failure() {
        let mut out = Vec::new();
        let n = stream_stdout(
            &mut sh("printf hello"),
            &mut out,
            "out",
            StreamOptions::default(),
            &Hidden,
        )
        .unwrap();
        assert_eq!((n, out.as_slice()), (5, &b"hello"[..]));

        let err = stream_stdout(
            &mut sh("echo one >&2; echo two >&2; exit 3"),
            &mut Vec::new(),
            "out",
            StreamOptions::default(),
            &Hidden,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("exit status: 3") && err.ends_with("one; two"),
            "{err}"
        );
    }

    #[test]
    fn errors_written_to_stdout_are_kept_when_asked() {
        // As neo4j-admin does: the ERROR lines go to stdout, i.e. into the would-be dump.
        let mut out = Vec::new();
        let err = stream_stdout(
            &mut sh("echo 'ERROR: database is in use'; exit 1"),
            &mut out,
            "dump",
            StreamOptions { keep_stdout: true },
            &Hidden,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ERROR: database is in use"), "{err}");
        assert_eq!(
            out, b"ERROR: database is in use\n",
            "the stream still went to the sink"
        );
    }

    #[test]
    fn kept_output_is_bounded_head_and_tail() {
        let mut kept = Kept::default();
        kept.push(b"first line\n");
        for _ in 0..10_000 {
            kept.push(&[b'x'; 100]);
        }
        kept.push(b"\nlast line\n");
        let text = kept.text();
        assert!(
            text.starts_with("first line") && text.ends_with("last line"),
            "{}",
            &text[..50]
        );
        assert!(text.len() < 3 * KEEP, "{}", text.len());
    }

    #[test]
    fn a_full_sink_is_reported_as_such_not_as_the_childs_death() {
        // `yes` never ends on its own: only the kill stops it, and its SIGKILL is not the cause.
        let err = stream_stdout(
            &mut Command::new("yes"),
            &mut FullDisk,
            "/spool/x.partial",
            StreamOptions::default(),
            &Hidden,
        )
        .unwrap_err();
        assert_eq!(err.io_error().unwrap().kind(), io::ErrorKind::StorageFull);
        let text = err.to_string();
        assert!(
            text.contains("/spool/x.partial") && text.contains("No space left"),
            "{text}"
        );
        assert!(
            !text.contains("SIGKILL") && !text.contains("signal"),
            "{text}"
        );
    }

    #[test]
    fn feeds_a_stream_into_stdin() {
        let data = vec![b'a'; 3_000_000];
        let said = feed_stdin(
            &mut sh("wc -c"),
            &mut &data[..],
            "input",
            Some(data.len() as u64),
            &Hidden,
        )
        .unwrap();
        assert_eq!(said.stdout, "3000000");
        // A child that fails while reading reports its own message, not our broken pipe.
        let err = feed_stdin(
            &mut sh("head -c 10 >/dev/null; echo 'bad dump' >&2; exit 4"),
            &mut &data[..],
            "input",
            None,
            &Hidden,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("exit status: 4") && err.contains("bad dump"),
            "{err}"
        );
        // A source shorter than promised is our error.
        let err = feed_stdin(
            &mut sh("cat >/dev/null"),
            &mut &b"abc"[..],
            "dump file",
            Some(10),
            &Hidden,
        )
        .unwrap_err();
        assert!(matches!(err, ChildError::Io { .. }), "{err}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = run(&mut Command::new("/nonexistent/pg_dump")).unwrap_err();
        assert!(matches!(err, ChildError::Spawn { .. }));
    }
}
