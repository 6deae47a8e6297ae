//! `neo4j-admin` (Neo4j 5) and the hooks that stop and start the DBMS around it, as the
//! real tool behaves (`tests/fixtures/reference/neo4j-5.3/admin-exchanges.md`):
//!
//! - the exit code is the truth: on failure `neo4j-admin database dump --to-stdout` writes
//!   its ERROR lines to **stdout**, into what would have been the dump, so stdout is kept
//!   for the message, and a dump is accepted only with exit 0 and the `DZV1` magic first;
//! - `--verbose` is never passed: it prints text before the dump;
//! - dumps and loads stream through stdout and stdin (`--to-stdout`, `--from-stdin`), so
//!   the command may run in a container (`docker exec neo4j neo4j-admin`) whose file
//!   system this tool cannot see;
//! - `NEO4J_PASSWORD` is taken out of its environment and the hooks': they do not need
//!   it.

use std::io::{self, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use toolkit::child::{self, ChildError, Said, StreamOptions};
use toolkit::progress::Progress;

use crate::error::Error;

/// The first bytes of every Neo4j 5 dump.
pub const DUMP_MAGIC: &[u8; 4] = b"DZV1";

/// How `neo4j-admin` is run: its command line, split at whitespace (no shell), e.g.
/// `neo4j-admin`, `/opt/neo4j/bin/neo4j-admin`, `docker exec neo4j neo4j-admin`.
#[derive(Clone, Debug)]
pub struct Admin {
    argv: Vec<String>,
}

impl Admin {
    /// From the `NEO4J_ADMIN` text.
    pub fn new(command_line: &str) -> Result<Admin, Error> {
        let argv: Vec<String> = command_line.split_whitespace().map(str::to_owned).collect();
        if argv.is_empty() {
            return Err(Error::Config(
                "NEO4J_ADMIN is empty: name the neo4j-admin command".into(),
            ));
        }
        if argv.iter().any(|a| a == "--verbose") {
            return Err(Error::Config(
                "NEO4J_ADMIN contains --verbose, which makes neo4j-admin print text before the \
                 dump on stdout and so corrupts it; remove it"
                    .into(),
            ));
        }
        Ok(Admin { argv })
    }

    /// The command line, for messages (see [`shown_command`]).
    pub fn display(&self) -> String {
        shown_command(&self.argv.join(" "))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .args(args)
            .env_remove("NEO4J_PASSWORD");
        cmd
    }

    /// `neo4j-admin --version`: the version of Neo4j that makes (or would load) dumps.
    pub fn version(&self) -> Result<String, Error> {
        let said = child::run(&mut self.command(&["--version"]))
            .map_err(|e| self.failed("--version", e))?;
        let version = said.stdout.trim().trim_start_matches("neo4j ").to_owned();
        if version_key(&version).is_none() {
            return Err(Error::Admin(format!(
                "{} --version printed {:?}, not a Neo4j version",
                self.display(),
                said.stdout
            )));
        }
        Ok(version)
    }

    /// `neo4j-admin database dump DB --to-stdout` into `sink`; checks the exit code and
    /// the magic. Returns the bytes written.
    pub fn dump(
        &self,
        db: &str,
        sink: &mut dyn Write,
        sink_name: &str,
        progress: &dyn Progress,
    ) -> Result<u64, Error> {
        let mut magic = Magic {
            inner: sink,
            head: Vec::new(),
        };
        let args = ["database", "dump", db, "--to-stdout"];
        let written = child::stream_stdout(
            &mut self.command(&args),
            &mut magic,
            sink_name,
            StreamOptions { keep_stdout: true },
            progress,
        )
        .map_err(|e| self.failed(&args.join(" "), e))?;
        if magic.head.len() < DUMP_MAGIC.len() || &magic.head[..4] != DUMP_MAGIC {
            let head = String::from_utf8_lossy(&magic.head);
            return Err(Error::Admin(format!(
                "{} database dump {db} exited 0, but its output is not a Neo4j dump: it does not \
                 start with the dump magic DZV1 but with {head:?} ({written} bytes); something \
                 printed text before the dump (never --verbose)",
                self.display()
            )));
        }
        Ok(written)
    }

    /// `neo4j-admin database load DB --from-stdin [--overwrite-destination=true]` from the
    /// file `src`.
    pub fn load(
        &self,
        db: &str,
        src: &Path,
        overwrite: bool,
        progress: &dyn Progress,
    ) -> Result<Said, Error> {
        let mut file = toolkit::fs::open_regular(src)
            .map_err(Error::io(format!("cannot open {}", src.display())))?;
        let len = file
            .metadata()
            .map_err(Error::io(format!("cannot read {}", src.display())))?
            .len();
        progress.set_length(len);
        let mut args = vec!["database", "load", db, "--from-stdin"];
        if overwrite {
            args.push("--overwrite-destination=true");
        }
        child::feed_stdin(
            &mut self.command(&args),
            &mut file,
            &src.display().to_string(),
            Some(len),
            progress,
        )
        .map_err(|e| self.failed(&args.join(" "), e))
    }

    /// `neo4j-admin database check DB`.
    pub fn check(&self, db: &str) -> Result<Said, Error> {
        let args = ["database", "check", db];
        child::run(&mut self.command(&args)).map_err(|e| self.failed(&args.join(" "), e))
    }

    /// One line for a failed run, with what `neo4j-admin` said and what to do about the
    /// failures Neo4j is known for.
    fn failed(&self, args: &str, e: ChildError) -> Error {
        // A child stopped by the signal's watchdog dies of SIGTERM: the signal is the cause.
        if toolkit::interrupt::is_interrupted() {
            return Error::Interrupted;
        }
        let text = match e {
            ChildError::Failed {
                status, message, ..
            } => format!(
                "{} {args} failed ({status}): {}",
                self.display(),
                message.as_deref().unwrap_or("it printed no message")
            ),
            ChildError::Interrupted { .. } => return Error::Interrupted,
            other => format!("{} {args}: {other}", self.display()),
        };
        Error::Admin(format!("{text}{}", hint(&text)))
    }
}

/// What to do about a known failure of `neo4j-admin`.
fn hint(message: &str) -> &'static str {
    if message.contains("Active logical log detected") {
        "; the database was not shut down cleanly (a crash or a kill): start the Neo4j server \
         once so that it recovers the database, stop it, and dump again"
    } else if message.contains("The database is in use") || message.contains("is in use") {
        "; Community Edition cannot dump or load a database of a running server: stop the DBMS \
         first (--stop-cmd and --start-cmd do it around the dump)"
    } else {
        ""
    }
}

/// Passes bytes on and keeps the first 64 for the magic check.
struct Magic<'a> {
    inner: &'a mut dyn Write,
    head: Vec<u8>,
}

impl Write for Magic<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if self.head.len() < 64 {
            let take = (64 - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A command line as messages and manifests show it: the value of every `NAME=value` or
/// `--flag=value` word replaced by `***`, in case an operator put a secret there
/// (`docker exec -e NEO4J_PASSWORD=… neo4j neo4j-admin`).
pub fn shown_command(command: &str) -> String {
    command
        .split_whitespace()
        .map(|w| match w.split_once('=') {
            Some((name, _)) => format!("{name}=***"),
            None => w.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `path` starts with the dump magic.
pub fn has_dump_magic(path: &Path) -> Result<bool, Error> {
    use std::io::Read;
    let what = || format!("cannot read {}", path.display());
    let mut f = toolkit::fs::open_regular(path).map_err(Error::io(what()))?;
    let mut head = [0u8; 4];
    match f.read_exact(&mut head) {
        Ok(()) => Ok(&head == DUMP_MAGIC),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(Error::io(what())(e)),
    }
}

/// A version as numbers (`5.3.0` → [5, 3, 0], `2025.01.0` → [2025, 1, 0]) for ordering;
/// `None` when it is not one.
pub fn version_key(version: &str) -> Option<Vec<u64>> {
    let core = version.split(['-', '+']).next()?;
    let parts: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| (2..=4).contains(&p.len()))
}

/// The commands that stop and start the DBMS (shell command lines, run with `sh -c`).
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    /// Stops the DBMS (Community cannot stop one database: the whole server).
    pub stop: Option<String>,
    /// Starts it again.
    pub start: Option<String>,
}

/// Runs one hook.
pub fn run_hook(which: &str, command: &str) -> Result<Said, Error> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", command]).env_remove("NEO4J_PASSWORD");
    child::run(&mut cmd).map_err(|e| match e {
        ChildError::Interrupted { .. } => Error::Interrupted,
        ChildError::Failed {
            status, message, ..
        } => Error::Admin(format!(
            "the {which} command {:?} failed ({status}): {}",
            shown_command(command),
            message.as_deref().unwrap_or("it printed no message")
        )),
        other => Error::Admin(format!(
            "the {which} command {:?}: {other}",
            shown_command(command)
        )),
    })
}

/// Runs the start hook whatever happened before it, not cut short by a signal (a DBMS
/// left stopped is an outage), and waits until `answers` says the server is back or
/// `timeout` passes. Returns when the server answered (`None`: it was not asked, or did
/// not answer in time), and the hook's error.
pub fn start_and_wait(
    hooks: &Hooks,
    answers: Option<&dyn Fn() -> bool>,
    timeout: Duration,
) -> (Option<Instant>, Result<(), Error>) {
    let Some(start) = &hooks.start else {
        return (None, Ok(()));
    };
    let started = {
        let _hold = toolkit::interrupt::defer();
        run_hook("start", start).map(|_| ())
    };
    if started.is_err() {
        return (None, started);
    }
    let Some(answers) = answers else {
        return (Some(Instant::now()), Ok(()));
    };
    let deadline = Instant::now() + timeout;
    loop {
        if answers() {
            return (Some(Instant::now()), Ok(()));
        }
        if Instant::now() >= deadline
            || toolkit::interrupt::sleep(Duration::from_millis(250)).is_err()
        {
            return (None, Ok(()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_versions() {
        let cases = [
            ("5.3.0", Some(vec![5, 3, 0])),
            ("5.26.1", Some(vec![5, 26, 1])),
            ("2025.01.0", Some(vec![2025, 1, 0])),
            ("5.13.0-SNAPSHOT", Some(vec![5, 13, 0])),
            ("five", None),
            ("5", None),
        ];
        for (text, want) in cases {
            assert_eq!(version_key(text), want, "{text}");
        }
        assert!(
            version_key("5.26.0") > version_key("5.3.0"),
            "numbers, not text"
        );
    }

    #[test]
    fn known_failures_say_what_to_do() {
        let cases = [
            (
                "Failed to dump database 'neo4j': Active logical log detected, this might",
                "start the Neo4j server once",
            ),
            (
                "Failed to dump database 'neo4j': The database is in use. Stop database",
                "stop the DBMS first",
            ),
            ("Database does not exist: nosuch", ""),
        ];
        for (message, want) in cases {
            let h = hint(message);
            assert!(
                if want.is_empty() {
                    h.is_empty()
                } else {
                    h.contains(want)
                },
                "{message}: {h}"
            );
        }
    }

    #[test]
    fn command_lines_are_shown_without_values() {
        let cases = [
            ("neo4j-admin", "neo4j-admin"),
            (
                "docker exec -e NEO4J_PASSWORD=hunter2 neo4j neo4j-admin",
                "docker exec -e NEO4J_PASSWORD=*** neo4j neo4j-admin",
            ),
            (
                "PW=x  systemctl stop --token=y neo4j",
                "PW=*** systemctl stop --token=*** neo4j",
            ),
        ];
        for (command, want) in cases {
            assert_eq!(shown_command(command), want);
        }
    }

    #[test]
    fn a_verbose_admin_command_is_refused() {
        assert!(Admin::new("neo4j-admin --verbose").is_err());
        assert!(Admin::new("  ").is_err());
        assert_eq!(
            Admin::new("docker exec neo4j  neo4j-admin")
                .unwrap()
                .display(),
            "docker exec neo4j neo4j-admin"
        );
    }
}
