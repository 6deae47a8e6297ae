//! Running a tool binary and asserting on what it did.

use std::io::Write;
use std::process::{Command, Stdio};

use manifest::Manifest;

/// A tool invocation being prepared.
pub struct TestCommand {
    cmd: Command,
    stdin: Vec<u8>,
}

impl TestCommand {
    pub(crate) fn new(cmd: Command) -> Self {
        TestCommand {
            cmd,
            stdin: Vec::new(),
        }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Feeds `data` on stdin.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = data.into();
        self
    }

    /// Feeds these manifests on stdin, one line each.
    pub fn manifests_in(self, manifests: &[Manifest]) -> Self {
        let mut text = String::new();
        for m in manifests {
            text.push_str(&serde_json::to_string(m).unwrap());
            text.push('\n');
        }
        self.stdin(text)
    }

    /// Starts the tool with `input` on stdin and returns at once, for tests that signal it.
    pub fn spawn_with_stdin(mut self, input: impl Into<Vec<u8>>) -> Running {
        let describe = format!("{:?}", self.cmd);
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {describe}: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let data = input.into();
        // Written from a thread and kept open until the child is done, so it sees no EOF
        // earlier than a pipeline would give it.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
            stdin
        });
        Running {
            child,
            describe,
            writer,
        }
    }

    /// Starts the tool with its stdin kept open, for tests that feed it a line at a time
    /// (as a producer upstream in a pipeline would).
    pub fn spawn_feeding(mut self) -> Feeding {
        let describe = format!("{:?}", self.cmd);
        let mut child = self
            .cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {describe}: {e}"));
        let stdin = child.stdin.take();
        Feeding {
            child,
            describe,
            stdin,
        }
    }

    /// Runs to completion.
    pub fn run(mut self) -> Outcome {
        let input = std::mem::take(&mut self.stdin);
        self.spawn_with_stdin(input).wait()
    }
}

/// A tool that is still running.
pub struct Running {
    child: std::process::Child,
    describe: String,
    writer: std::thread::JoinHandle<std::process::ChildStdin>,
}

impl Running {
    /// Sends signal `name` (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the tool to exit.
    pub fn wait(self) -> Outcome {
        let stdin = self.writer.join().unwrap();
        drop(stdin);
        let output = self.child.wait_with_output().unwrap();
        Outcome {
            describe: self.describe,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// A tool being fed its stdin a line at a time.
pub struct Feeding {
    child: std::process::Child,
    describe: String,
    stdin: Option<std::process::ChildStdin>,
}

impl Feeding {
    /// Writes `manifest` as one line.
    pub fn send(&mut self, manifest: &Manifest) {
        let mut line = serde_json::to_string(manifest).unwrap();
        line.push('\n');
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Whether the tool is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Closes stdin (EOF) and waits for the tool to exit.
    pub fn finish(mut self) -> Outcome {
        drop(self.stdin.take());
        let output = self.child.wait_with_output().unwrap();
        Outcome {
            describe: self.describe,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// What a tool did.
#[derive(Debug)]
pub struct Outcome {
    describe: String,
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl Outcome {
    fn report(&self) -> String {
        format!(
            "command: {}\nexit: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.describe, self.code, self.stdout, self.stderr
        )
    }

    /// Asserts exit 0.
    pub fn succeeds(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success\n{}", self.report());
        self
    }

    /// Asserts exit `code`.
    pub fn fails_with(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}\n{}",
            self.report()
        );
        self
    }

    /// Asserts stderr contains `text`.
    pub fn stderr_contains(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}\n{}",
            self.report()
        );
        self
    }

    /// Asserts stderr has exactly `n` lines.
    pub fn stderr_lines(&self, n: usize) -> &Self {
        assert_eq!(
            self.stderr.lines().count(),
            n,
            "stderr line count\n{}",
            self.report()
        );
        self
    }

    /// Stdout parsed as manifests (every line must be one).
    pub fn manifests(&self) -> Vec<Manifest> {
        self.stdout
            .lines()
            .enumerate()
            .map(|(i, line)| {
                manifest::ndjson::parse_line(line).unwrap_or_else(|e| {
                    panic!(
                        "stdout line {} is not a manifest: {e}\n{}",
                        i + 1,
                        self.report()
                    )
                })
            })
            .collect()
    }

    /// The one manifest on stdout.
    pub fn manifest(&self) -> Manifest {
        let mut all = self.manifests();
        assert_eq!(all.len(), 1, "expected one manifest\n{}", self.report());
        all.remove(0)
    }
}
