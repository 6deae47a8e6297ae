//! Snapshots on the server: create (`wait=true`), download into the spool (HTTP Range
//! resume, the server's checksum compared), delete.

use manifest::{Name, Sha256};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use toolkit::copy::{copy, CopyError, CopyOptions};
use toolkit::http::{Body, RequestTimeout};
use toolkit::progress::Progress;
use toolkit::spool::{SpoolDir, SpoolFile, Written};

use crate::client::{encode, read_result, Client, Req};
use crate::error::{server_message, ErrorKind, QdrantError};
use crate::Target;

/// How long a create is still awaited after a termination signal (the toolkit's watchdog
/// ends the tool 10 s after the signal: this leaves time to delete the snapshot and emit
/// the failed manifest).
pub const SIGNAL_GRACE: Duration = Duration::from_secs(6);

/// A snapshot as the server describes it (`SnapshotDescription`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The file name on the server, checked ([`check_remote_name`]): it goes into URLs (one
    /// encoded segment) and manifests, never into a local path.
    pub name: String,
    /// Size in bytes.
    pub size: Option<u64>,
    /// SHA-256 of the file, as the server computed it (absent for uploads and old servers).
    pub checksum: Option<Sha256>,
    /// `YYYY-MM-DDTHH:MM:SS`, server time, no zone.
    pub creation_time: Option<String>,
}

/// Whether a name from the server can name a snapshot in a URL: not empty, not `.` or
/// `..`, no `/` or `\`, no control characters, at most 255 bytes. (It contains the
/// collection's name, which may have spaces: it is sent percent-encoded, and local files are
/// named after the manifest's id, never after it.)
pub fn check_remote_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name == "." || name == ".." {
        Err("empty or a directory name")
    } else if name.len() > 255 {
        Err("longer than 255 bytes")
    } else if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c.is_control())
    {
        Err("it contains '/', '\\' or a control character")
    } else {
        Ok(())
    }
}

impl SnapshotInfo {
    fn from_value(value: &Value, what: &str) -> Result<SnapshotInfo, QdrantError> {
        let bad = |why: String| {
            QdrantError::new(
                ErrorKind::Protocol,
                format!("{what}: the server's answer {why}"),
            )
        };
        let name = value
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("names no snapshot".into()))?;
        // Untrusted input: it is joined to URLs and written to manifests.
        check_remote_name(name)
            .map_err(|why| bad(format!("has an unusable snapshot name {name:?}: {why}")))?;
        let name = name.to_owned();
        let checksum = match value.get("checksum").and_then(Value::as_str) {
            Some(c) => Some(
                c.to_ascii_lowercase()
                    .parse::<Sha256>()
                    .map_err(|e| bad(format!("has an unusable checksum: {e}")))?,
            ),
            None => None,
        };
        Ok(SnapshotInfo {
            name,
            size: value.get("size").and_then(Value::as_u64),
            checksum,
            creation_time: value
                .get("creation_time")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

impl Client {
    /// Creates a snapshot of `target` and waits for it (`wait=true`, never `wait=false`,
    /// which answers 202 even when the snapshot fails), at most the server timeout. Never
    /// retried once the server got the request: a second create would be a second
    /// snapshot (or, in the same second, replace the first).
    ///
    /// The request runs on a thread of its own, so that a termination signal does not wait
    /// for a create of many minutes: after a signal the answer is awaited [`SIGNAL_GRACE`]
    /// more (a snapshot that arrives is deleted again); then the error says that Qdrant
    /// goes on and keeps the snapshot, and where to find it.
    pub fn create_snapshot(&self, target: &Target) -> Result<SnapshotInfo, QdrantError> {
        let what = format!("snapshot of {}", target.describe());
        let (tx, rx) = mpsc::channel();
        let (client, worker_target) = (self.clone(), target.clone());
        std::thread::spawn(move || {
            let _ = tx.send(client.create_snapshot_now(&worker_target));
        });
        let mut deadline: Option<Instant> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(result) if deadline.is_none() => return result,
                Ok(result) => {
                    let fate = match result {
                        Ok(info) => match self.delete_snapshot(target, &info.name) {
                            Ok(()) => "the snapshot it made then was deleted".to_owned(),
                            Err(e) => format!("the snapshot it made then stays on the server: {e}"),
                        },
                        Err(e) => format!("the create then failed: {e}"),
                    };
                    return Err(QdrantError::new(
                        ErrorKind::Interrupted,
                        format!("{what}: interrupted by a signal while Qdrant created it; {fate}"),
                    ));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(QdrantError::new(
                        ErrorKind::Protocol,
                        format!("{what}: the request ended without an answer"),
                    ))
                }
            }
            match deadline {
                None if toolkit::interrupt::is_interrupted() => {
                    deadline = Some(Instant::now() + SIGNAL_GRACE)
                }
                Some(at) if Instant::now() >= at => {
                    return Err(QdrantError::new(
                        ErrorKind::Interrupted,
                        format!(
                            "{what}: interrupted by a signal while Qdrant was creating it: Qdrant \
                             goes on and will keep the snapshot among the snapshots of {} (GET {} \
                             lists them): delete it there",
                            target.describe(),
                            target.snapshots_path()
                        ),
                    ))
                }
                _ => {}
            }
        }
    }

    fn create_snapshot_now(&self, target: &Target) -> Result<SnapshotInfo, QdrantError> {
        let what = format!("snapshot of {}", target.describe());
        let req = Req {
            method: "POST",
            path: target.snapshots_path(),
            query: vec![("wait", "true".into())],
            json: None,
            timeout: RequestTimeout::Total(self.server_timeout()),
            idempotent: false,
        };
        let result = self.call(req, &what).map_err(|e| {
            if e.kind == ErrorKind::Transport {
                // The server goes on: its snapshot will appear without anyone to delete it.
                e.with_note(&format!(
                    " — Qdrant may still be creating it and will keep it among the snapshots of \
                     {} (GET {} lists them); raise --server-timeout for a collection this large",
                    target.describe(),
                    target.snapshots_path()
                ))
            } else {
                e
            }
        })?;
        SnapshotInfo::from_value(&result, &what)
    }

    /// Snapshots of `target` on the server (`GET …/snapshots`).
    pub fn list_snapshots(&self, target: &Target) -> Result<Vec<SnapshotInfo>, QdrantError> {
        let what = format!("snapshots of {}", target.describe());
        let result = self.call(Req::get(target.snapshots_path()), &what)?;
        let list = result.as_array().ok_or_else(|| {
            QdrantError::new(
                ErrorKind::Protocol,
                format!("{what}: the answer is not a list"),
            )
        })?;
        list.iter()
            .map(|v| SnapshotInfo::from_value(v, &what))
            .collect()
    }

    /// Deletes snapshot `name` of `target` (`wait=true`).
    pub fn delete_snapshot(&self, target: &Target, name: &str) -> Result<(), QdrantError> {
        let what = format!(
            "delete of snapshot {} of {}",
            toolkit::cli::quote(name),
            target.describe()
        );
        let mut attempts = 0;
        self.retrying(|| {
            attempts += 1;
            let req = Req {
                method: "DELETE",
                path: format!("{}/{}", target.snapshots_path(), encode(name)),
                query: vec![("wait", "true".into())],
                json: None,
                timeout: RequestTimeout::Default,
                idempotent: true,
            };
            let response = self.send_once(&req, &[], Body::Empty, false, &what)?;
            match read_result(response, &what) {
                Ok(_) => Ok(()),
                // An earlier attempt deleted it and its answer was lost.
                Err(e) if attempts > 1 && e.is_status(404) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }

    /// Downloads `snapshot` of `target` into `spool` as `file_name`, resuming with HTTP
    /// Range where a transfer broke off (at most the retries of the policy), with no
    /// whole-transfer timeout (only the idle one) and memory flat whatever the size. The
    /// file is committed only when its size and SHA-256 are what the server said;
    /// otherwise nothing is left in the spool.
    pub fn download_snapshot(
        &self,
        target: &Target,
        snapshot: &SnapshotInfo,
        spool: &SpoolDir,
        file_name: &Name,
        progress: &dyn Progress,
    ) -> Result<Written, QdrantError> {
        let what = format!(
            "download of snapshot {} of {}",
            snapshot.name,
            target.describe()
        );
        let spool_err = |e: std::io::Error| {
            QdrantError::new(
                ErrorKind::Io,
                format!("{what}: cannot write the spool file: {e}"),
            )
        };
        let mut file = Some(SpoolFile::create(spool, file_name).map_err(spool_err)?);
        let mut etag: Option<String> = None;
        if let Some(size) = snapshot.size {
            progress.set_length(size);
        }
        let path = format!("{}/{}", target.snapshots_path(), encode(&snapshot.name));
        self.retrying(|| {
            let current = file.as_mut().expect("kept between attempts");
            let offset = current.digest().0;
            if snapshot.size == Some(offset) && offset > 0 {
                return Ok(());
            }
            let range = format!("bytes={offset}-");
            let mut extra: Vec<(&str, &str)> = vec![];
            if offset > 0 {
                extra.push(("range", &range));
                if let Some(tag) = &etag {
                    // A file replaced meanwhile (a same-second snapshot) answers 412.
                    extra.push(("if-match", tag));
                }
                toolkit::cli::info(format!(
                    "{what}: the transfer broke off after {offset} bytes; resuming from there"
                ));
            }
            let mut req = Req::get(path.clone());
            req.timeout = RequestTimeout::Idle;
            let response = self.send_once(&req, &extra, Body::Empty, false, &what)?;
            let status = response.status;
            let length = response
                .header("content-length")
                .and_then(|l| l.parse::<u64>().ok());
            match status {
                200 if offset > 0 => {
                    // The server ignored the range: start over.
                    drop(file.take());
                    file = Some(SpoolFile::create(spool, file_name).map_err(spool_err)?);
                }
                200 => {}
                206 if offset > 0 => {
                    let range = response.header("content-range").unwrap_or("");
                    if !range.starts_with(&format!("bytes {offset}-")) {
                        return Err(QdrantError::new(
                            ErrorKind::Protocol,
                            format!("{what}: asked for bytes {offset}- and got {range:?}"),
                        ));
                    }
                }
                412 => {
                    return Err(QdrantError::new(
                        ErrorKind::Mismatch,
                        format!(
                        "{what}: the snapshot changed on the server during the download (replaced \
                             by another snapshot made in the same second?); not kept"
                    ),
                    ))
                }
                _ => {
                    let content_type = response.content_type().map(str::to_owned);
                    let text = response.text(1 << 20).unwrap_or_default();
                    let mut e = QdrantError::answer(&what, status, content_type.as_deref(), &text);
                    if status == 404 {
                        let said = server_message(content_type.as_deref(), &text);
                        if said.contains("doesn't exist") {
                            e.message
                                .push_str(" (the collection was deleted during the backup?)");
                        }
                    }
                    return Err(e);
                }
            }
            if etag.is_none() {
                etag = response.header("etag").map(str::to_owned);
            }
            let current = file.as_mut().expect("kept between attempts");
            let options = match length {
                Some(len) => CopyOptions::exact(len),
                None => CopyOptions::to_end(),
            };
            let mut reader = response.into_reader();
            match copy(&mut reader, current, options, progress) {
                Ok(_) => Ok(()),
                Err(CopyError::Interrupted) => Err(QdrantError::new(
                    ErrorKind::Interrupted,
                    format!("{what}: interrupted by a signal; the partial file was removed"),
                )),
                Err(CopyError::Write(e)) => Err(spool_err(e)),
                Err(e) => {
                    let mut err = QdrantError::new(
                        ErrorKind::Transport,
                        format!("{what}: the transfer broke off: {e}"),
                    );
                    err.transient = true;
                    Err(err)
                }
            }
        })?;
        let file = file.take().expect("kept");
        let (bytes, sha256) = file.digest();
        if let Some(size) = snapshot.size.filter(|s| *s != bytes) {
            return Err(QdrantError::new(
                ErrorKind::Mismatch,
                format!("{what}: got {bytes} bytes, the server said {size}; not kept"),
            ));
        }
        if let Some(checksum) = snapshot.checksum.filter(|c| *c != sha256) {
            return Err(QdrantError::new(
                ErrorKind::Mismatch,
                format!(
                    "{what}: checksum mismatch: the file's SHA-256 is {sha256}, Qdrant's checksum \
                     says {checksum} (damaged on the way, or replaced on the server by another \
                     snapshot made in the same second); not kept"
                ),
            ));
        }
        progress.finish();
        file.commit().map_err(spool_err)
    }
}
