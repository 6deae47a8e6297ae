//! A SeaweedFS server of a test's own, to kill and restart in the middle of a transfer
//! (the shared one serves every other test). Started with the same script `scripts/test`
//! uses, `scripts/lib/seaweedfs.sh`, whose weed the suite has installed already.

use std::path::PathBuf;
use std::process::Command;

use vault::s3::{S3Backend, S3Config};

/// A running (or killed) SeaweedFS of one test; stopped when dropped.
pub struct OwnS3 {
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

fn lib() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lib/seaweedfs.sh")
}

fn sh(script: &str, dir: &std::path::Path) -> String {
    let out = Command::new("bash")
        .args(["-c", &format!(". '{}'; {script}", lib().display()), "bash"])
        .arg(dir)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

impl OwnS3 {
    /// Starts a server with a bucket `bucket`.
    pub fn start(bucket: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stackvault-own-s3-")
            .tempdir()
            .unwrap();
        let out = sh(
            r#"s3_start "$1" >&2 && printf '%s\n%s\n%s\n' "$STACKVAULT_TEST_S3_ENDPOINT" "$STACKVAULT_TEST_S3_ACCESS_KEY" "$STACKVAULT_TEST_S3_SECRET_KEY""#,
            dir.path(),
        );
        let mut lines = out.lines().map(str::to_owned);
        let s3 = OwnS3 {
            endpoint: lines.next().unwrap(),
            access_key: lines.next().unwrap(),
            secret_key: lines.next().unwrap(),
            dir,
        };
        s3.backend(bucket, "").create_bucket().unwrap();
        s3
    }

    /// Kills the server at once (SIGKILL): no goodbye to any client.
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.path().join("weed.pid")).unwrap();
        let ok = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill weed");
        // Wait until it is gone, so that the port is free for the restart.
        let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
        for _ in 0..100 {
            let zombie_or_gone = std::fs::read_to_string(proc_dir.join("stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true);
            if zombie_or_gone {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Starts it again: same ports, keys and data.
    pub fn restart(&self) {
        sh(r#"s3_restart "$1" >&2"#, self.dir.path());
    }

    /// A backend on `bucket` of this server.
    pub fn backend(&self, bucket: &str, prefix: &str) -> S3Backend {
        let mut config = S3Config::new(bucket, Some(&self.endpoint));
        config.prefix = prefix.into();
        config.access_key = Some(self.access_key.clone());
        config.secret_key = Some(toolkit::secret::Secret::new(self.secret_key.clone()));
        config.retry.retries = 2;
        S3Backend::new(config).expect("valid test S3 config")
    }
}

impl Drop for OwnS3 {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .args([
                "-c",
                &format!(". '{}'; s3_stop \"$1\"", lib().display()),
                "bash",
            ])
            .arg(self.dir.path())
            .output();
    }
}
