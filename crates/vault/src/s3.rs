//! A vault in an S3-compatible bucket (`s3://bucket/prefix`): AWS S3, MinIO, SeaweedFS,
//! Garage, Ceph.
//!
//! Built on rust-s3's blocking client, with two things it does not do for us:
//!
//! - **Timeouts per request, not per transfer.** rust-s3 applies one timeout to a whole
//!   request; a multi-GiB object in one request would need an unbounded one, and a stalled
//!   connection would then hang forever. So large objects move in parts (multipart upload,
//!   ranged GETs), each part one request with its own timeout and its own retries.
//! - **Parallel parts.** rust-s3 sends parts one at a time; here `parallel` workers send
//!   them concurrently. Memory stays bounded whatever the object size: this code holds at
//!   most `parallel + 2` parts; rust-s3 copies a part's body once more while sending it,
//!   and glibc keeps freed part buffers for reuse (see `scripts/bench` for measurements).
//!
//! Transient failures (connection errors, timeouts, HTTP 408/429/5xx) are retried with
//! exponential backoff; authentication failures are not. A multipart upload that fails is
//! aborted, so no orphan parts are left to be billed.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Condvar, Mutex};
use std::time::Duration;

use s3::creds::Credentials;
use s3::error::S3Error;
use s3::serde_types::Part;
use s3::{Bucket, Region};
use toolkit::progress::Progress;

use crate::backend::{Backend, ObjectInfo};
use crate::dir::already_exists;
use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;

const CONTENT_TYPE: &str = "application/octet-stream";
/// S3 allows at most 10 000 parts per upload; part size grows to stay under it.
const MAX_PARTS: u64 = 10_000;
const MIB: u64 = 1024 * 1024;
/// S3 refuses multipart parts below 5 MiB (all but the last): EntityTooSmall.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3 refuses parts above 5 GiB.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything needed to reach a bucket.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// Endpoint URL for S3-compatible servers (`http://minio:9000`); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when the server does not care).
    pub region: String,
    /// Access key id.
    pub access_key: Option<String>,
    /// Secret access key.
    pub secret_key: Option<Secret>,
    /// Session token for temporary credentials.
    pub session_token: Option<Secret>,
    /// Path-style addressing (`http://host/bucket/key`), which MinIO, SeaweedFS and Garage
    /// need; virtual-host style otherwise.
    pub path_style: bool,
    /// Part size for multipart uploads and ranged downloads.
    pub part_size: u64,
    /// Parts in flight at once.
    pub parallel: usize,
    /// Retries of a failed request before giving up.
    pub retries: u32,
    /// Timeout of one request (one part).
    pub timeout: Duration,
}

/// A bucket (and prefix) as a [`Backend`].
pub struct S3Backend {
    bucket: Box<Bucket>,
    config: S3Config,
}

impl S3Backend {
    /// Connects lazily: nothing is sent until the first operation.
    pub fn new(config: S3Config) -> Result<Self> {
        // Our own retry loop (with backoff and error classification) replaces rust-s3's.
        s3::set_retries(0);
        let (Some(access_key), Some(secret_key)) = (&config.access_key, &config.secret_key) else {
            return Err(Error::new(
                ErrorKind::Auth,
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (or MINIO_ACCESS_KEY and MINIO_SECRET_KEY) in the environment",
            ));
        };
        let credentials = Credentials::new(
            Some(access_key),
            Some(&secret_key.0),
            config.session_token.as_ref().map(|t| t.0.as_str()),
            None,
            None,
        )
        .map_err(|e| Error::new(ErrorKind::Auth, "invalid S3 credentials").with_source(e))?;
        let region = match &config.endpoint {
            Some(endpoint) => Region::Custom {
                region: config.region.clone(),
                endpoint: endpoint.trim_end_matches('/').to_owned(),
            },
            None => config.region.parse().map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("invalid region {:?}", config.region),
                )
                .with_source(e)
            })?,
        };
        let bucket = Bucket::new(&config.bucket, region, credentials)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, "invalid S3 bucket").with_source(e))?;
        let bucket = if config.path_style {
            bucket.with_path_style()
        } else {
            bucket
        };
        let bucket = bucket.with_request_timeout(config.timeout).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, "invalid S3 timeout").with_source(e)
        })?;
        Ok(S3Backend { bucket, config })
    }

    /// Creates the bucket (for setup and tests); succeeds if it exists already and is ours.
    pub fn create_bucket(&self) -> Result<()> {
        let region = self.bucket.region.clone();
        let credentials = self
            .bucket
            .credentials()
            .map_err(|e| Error::new(ErrorKind::Auth, "cannot read credentials").with_source(e))?;
        let config = s3::BucketConfiguration::default();
        let created = if self.config.path_style {
            Bucket::create_with_path_style(&self.config.bucket, region, credentials, config)
        } else {
            Bucket::create(&self.config.bucket, region, credentials, config)
        };
        match created {
            Ok(_) => Ok(()),
            Err(S3Error::HttpFailWithBody(409, body))
                if body.contains("BucketAlreadyOwnedByYou") =>
            {
                Ok(())
            }
            Err(e) => Err(self.classify(e, "cannot create bucket").0),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.config.prefix.is_empty() {
            format!("/{key}")
        } else {
            format!("/{}/{key}", self.config.prefix)
        }
    }

    /// The part size for an object of `len` bytes: the configured size, grown (in whole
    /// MiB) so the object fits in [`MAX_PARTS`] parts.
    pub fn part_size_for(&self, len: u64) -> u64 {
        let needed = len.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
        self.config.part_size.max(needed).max(MIN_PART_SIZE)
    }

    /// Turns a rust-s3 error into ours; the bool says whether a retry may help.
    fn classify(&self, e: S3Error, what: &str) -> (Error, bool) {
        let place = format!("s3://{}", self.config.bucket);
        match e {
            S3Error::HttpFailWithBody(status, body) => {
                let detail = s3_error_detail(&body);
                let (kind, retry, hint) = match status {
                    404 if body.contains("NoSuchBucket") => (
                        ErrorKind::NotFound,
                        false,
                        format!(
                            "; bucket {:?} does not exist: create it first",
                            self.config.bucket
                        ),
                    ),
                    404 => (ErrorKind::NotFound, false, String::new()),
                    401 | 403 => (
                        ErrorKind::Auth,
                        false,
                        "; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, that they have not \
                         expired, and that the clock is right"
                            .to_owned(),
                    ),
                    408 | 429 | 500 | 502 | 503 | 504 => {
                        (ErrorKind::Unreachable, true, String::new())
                    }
                    _ => (ErrorKind::Protocol, false, String::new()),
                };
                (
                    Error::new(
                        kind,
                        format!("{what}: {place} answered HTTP {status}{detail}{hint}"),
                    ),
                    retry,
                )
            }
            S3Error::Atto(source) => {
                let endpoint = self
                    .config
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| "AWS S3".into());
                (
                    Error::new(
                        ErrorKind::Unreachable,
                        format!("{what}: cannot reach {endpoint}"),
                    )
                    .with_source(source),
                    true,
                )
            }
            S3Error::Io(source) => (Error::io(what.to_owned(), source), true),
            S3Error::Credentials(source) => (
                Error::new(ErrorKind::Auth, format!("{what}: bad credentials")).with_source(source),
                false,
            ),
            other => (
                Error::new(ErrorKind::Protocol, format!("{what}: {other}")),
                false,
            ),
        }
    }

    /// Runs `op` until it succeeds, fails permanently, or `retries` retries are used up,
    /// sleeping 0.25 s, 0.5 s, 1 s, … (at most 8 s) between attempts.
    fn retry<T>(
        &self,
        what: &str,
        mut op: impl FnMut() -> std::result::Result<T, S3Error>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            match op() {
                Ok(value) => return Ok(value),
                Err(e) => {
                    let (error, transient) = self.classify(e, what);
                    let interrupted = toolkit::interrupt::is_interrupted();
                    if !transient || interrupted || attempt >= self.config.retries {
                        return Err(if attempt > 0 && transient {
                            error.append(&format!(" (gave up after {} attempts)", attempt + 1))
                        } else {
                            error
                        });
                    }
                    let delay = Duration::from_millis(250u64 << attempt.min(5));
                    std::thread::sleep(delay);
                    attempt += 1;
                }
            }
        }
    }

    fn put_single(
        &self,
        path: &str,
        src: &mut dyn Read,
        len: u64,
        progress: &dyn Progress,
    ) -> Result<()> {
        let data = read_part(src, len as usize)?;
        self.retry("upload", || {
            self.bucket
                .put_object_with_content_type(path, &data, CONTENT_TYPE)
        })?;
        progress.inc(len);
        Ok(())
    }

    fn put_multipart(
        &self,
        path: &str,
        src: &mut dyn Read,
        len: u64,
        progress: &dyn Progress,
    ) -> Result<()> {
        let part_size = self.part_size_for(len);
        let upload = self.retry("start multipart upload", || {
            self.bucket.initiate_multipart_upload(path, CONTENT_TYPE)
        })?;
        let upload_id = upload.upload_id;
        let result = self.send_parts(path, &upload_id, src, len, part_size, progress);
        let result = result.and_then(|mut parts| {
            parts.sort_by_key(|p| p.part_number);
            self.retry("complete multipart upload", || {
                self.bucket
                    .complete_multipart_upload(path, &upload_id, parts.clone())
            })
            .map(|_| ())
        });
        if result.is_err() {
            // Best effort: the error that made us abort is the one to report.
            let _ = self.retry("abort multipart upload", || {
                self.bucket.abort_upload(path, &upload_id)
            });
        }
        result
    }

    /// Reads parts from `src` on this thread and sends them on `parallel` workers.
    fn send_parts(
        &self,
        path: &str,
        upload_id: &str,
        src: &mut dyn Read,
        len: u64,
        part_size: u64,
        progress: &dyn Progress,
    ) -> Result<Vec<Part>> {
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        let parts = Mutex::new(Vec::new());
        // Capacity 1: the reader is at most one part ahead of the busy workers.
        let (tx, rx) = mpsc::sync_channel::<(u32, Vec<u8>)>(1);
        let rx = Mutex::new(rx);
        std::thread::scope(|scope| {
            for _ in 0..self.config.parallel.max(1) {
                scope.spawn(|| loop {
                    let next = rx.lock().unwrap().recv();
                    let Ok((number, data)) = next else { break };
                    if stop.load(Ordering::SeqCst) {
                        continue; // drain so the reader never blocks
                    }
                    let sent = self.retry(&format!("upload part {number}"), || {
                        self.bucket.put_multipart_chunk(
                            &data,
                            path,
                            number,
                            upload_id,
                            CONTENT_TYPE,
                        )
                    });
                    match sent {
                        Ok(part) => {
                            progress.inc(data.len() as u64);
                            parts.lock().unwrap().push(part);
                        }
                        Err(e) => {
                            stop.store(true, Ordering::SeqCst);
                            failed.lock().unwrap().get_or_insert(e);
                        }
                    }
                });
            }
            let mut left = len;
            let mut number = 1u32;
            while left > 0 && !stop.load(Ordering::SeqCst) {
                let size = part_size.min(left);
                let part = toolkit::interrupt::check()
                    .map_err(|e| Error::io("upload stopped", e))
                    .and_then(|()| read_part(src, size as usize));
                match part {
                    Ok(data) => {
                        if tx.send((number, data)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        stop.store(true, Ordering::SeqCst);
                        failed.lock().unwrap().get_or_insert(e);
                        break;
                    }
                }
                left -= size;
                number += 1;
            }
            drop(tx);
        });
        match failed.into_inner().unwrap() {
            Some(e) => Err(e),
            None => Ok(parts.into_inner().unwrap()),
        }
    }

    fn head_size(&self, path: &str) -> Result<u64> {
        let (head, _) = self.retry("read object metadata", || self.bucket.head_object(path))?;
        head.content_length
            .and_then(|l| u64::try_from(l).ok())
            .ok_or_else(|| Error::new(ErrorKind::Protocol, "the server sent no Content-Length"))
    }

    /// Fetches ranges on `parallel` workers and writes them to `dst` in order. Workers stay
    /// within a window of parts ahead of the writer, so memory is bounded even when `dst`
    /// is slower than the network.
    fn get_ranges(
        &self,
        path: &str,
        len: u64,
        dst: &mut dyn Write,
        progress: &dyn Progress,
    ) -> Result<()> {
        let part_size = self.config.part_size.max(MIB);
        let count = len.div_ceil(part_size);
        let window = self.config.parallel.max(1) as u64 + 1;
        let next = AtomicU64::new(0);
        let written = Mutex::new(0u64);
        let advanced = Condvar::new();
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::channel::<(u64, Result<bytes::Bytes>)>();
        std::thread::scope(|scope| {
            for _ in 0..self.config.parallel.max(1) {
                let tx = tx.clone();
                let (next, written, advanced, stop) = (&next, &written, &advanced, &stop);
                scope.spawn(move || loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= count {
                        break;
                    }
                    {
                        let mut done = written.lock().unwrap();
                        while index >= *done + window && !stop.load(Ordering::SeqCst) {
                            done = advanced.wait(done).unwrap();
                        }
                    }
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let start = index * part_size;
                    let end = (start + part_size).min(len) - 1;
                    let data = self
                        .retry(&format!("download bytes {start}-{end}"), || {
                            self.bucket.get_object_range(path, start, Some(end))
                        })
                        .and_then(|response| {
                            let body = response.into_bytes();
                            if body.len() as u64 == end - start + 1 {
                                Ok(body)
                            } else {
                                Err(Error::new(
                                    ErrorKind::Protocol,
                                    format!(
                                        "asked for bytes {start}-{end}, got {} bytes",
                                        body.len()
                                    ),
                                ))
                            }
                        });
                    let failed = data.is_err();
                    if tx.send((index, data)).is_err() || failed {
                        break;
                    }
                });
            }
            drop(tx);
            let result = (|| {
                let mut pending = BTreeMap::new();
                let mut want = 0u64;
                while want < count {
                    let Ok((index, data)) = rx.recv() else {
                        return Err(Error::new(ErrorKind::Protocol, "download workers stopped"));
                    };
                    pending.insert(index, data?);
                    toolkit::interrupt::check().map_err(|e| Error::io("download stopped", e))?;
                    while let Some(data) = pending.remove(&want) {
                        dst.write_all(&data)
                            .map_err(|e| Error::io("cannot write the download", e))?;
                        progress.inc(data.len() as u64);
                        want += 1;
                        *written.lock().unwrap() = want;
                        advanced.notify_all();
                    }
                }
                Ok(())
            })();
            if result.is_err() {
                stop.store(true, Ordering::SeqCst);
                advanced.notify_all();
            }
            drop(rx);
            result
        })
    }
}

/// ` (Code: Message)` from an S3 XML error body, or a trimmed plain body.
fn s3_error_detail(body: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find('<')? + start;
        Some(body[start..end].trim().to_owned())
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!(" ({code}: {message})"),
        (Some(code), None) => format!(" ({code})"),
        _ if body.trim().is_empty() => String::new(),
        _ => format!(" ({})", body.trim().chars().take(200).collect::<String>()),
    }
}

/// Reads exactly `size` bytes, or fails with `Integrity` if the source ends first.
fn read_part(src: &mut dyn Read, size: usize) -> Result<Vec<u8>> {
    let mut data = vec![0u8; size];
    let mut filled = 0;
    while filled < size {
        match src.read(&mut data[filled..]) {
            Ok(0) => {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!("source ended {} bytes early", size - filled),
                ))
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("cannot read the source", e)),
        }
    }
    Ok(data)
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        if self.config.prefix.is_empty() {
            format!("s3://{}", self.config.bucket)
        } else {
            format!("s3://{}/{}", self.config.bucket, self.config.prefix)
        }
    }

    fn put(
        &self,
        key: &ObjectKey,
        src: &mut dyn Read,
        len: u64,
        progress: &dyn Progress,
    ) -> Result<()> {
        if self.exists(key)? {
            return Err(already_exists(key));
        }
        progress.set_length(len);
        let path = self.path(key.as_str());
        let result = if len <= self.part_size_for(len) {
            self.put_single(&path, src, len, progress)
        } else {
            self.put_multipart(&path, src, len, progress)
        };
        result.map_err(|e| e.with_key(key))
    }

    fn get(&self, key: &ObjectKey, dst: &mut dyn Write, progress: &dyn Progress) -> Result<u64> {
        let path = self.path(key.as_str());
        let len = self.head_size(&path).map_err(|e| e.with_key(key))?;
        progress.set_length(len);
        if len > 0 {
            self.get_ranges(&path, len, dst, progress)
                .map_err(|e| e.with_key(key))?;
        }
        Ok(len)
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let full = self.path(prefix)[1..].to_owned();
        let pages = self.retry("list objects", || self.bucket.list(full.clone(), None))?;
        let strip = if self.config.prefix.is_empty() {
            0
        } else {
            self.config.prefix.len() + 1
        };
        Ok(pages
            .into_iter()
            .flat_map(|page| page.contents)
            .filter_map(|object| {
                let key = ObjectKey::new(object.key.get(strip..)?.to_owned()).ok()?;
                Some(ObjectInfo {
                    key,
                    size: object.size,
                })
            })
            .collect())
    }

    fn exists(&self, key: &ObjectKey) -> Result<bool> {
        let path = self.path(key.as_str());
        self.retry("check object", || self.bucket.object_exists(&path))
            .map_err(|e| e.with_key(key))
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        if !self.exists(key)? {
            return Err(Error::new(ErrorKind::NotFound, "no such object").with_key(key));
        }
        let path = self.path(key.as_str());
        self.retry("delete object", || self.bucket.delete_object(&path))
            .map(|_| ())
            .map_err(|e| e.with_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(part_size: u64) -> S3Backend {
        S3Backend::new(S3Config {
            bucket: "b".into(),
            prefix: "stack".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            region: "us-east-1".into(),
            access_key: Some("k".into()),
            secret_key: Some(Secret("s".into())),
            session_token: None,
            path_style: true,
            part_size,
            parallel: 2,
            retries: 0,
            timeout: Duration::from_secs(5),
        })
        .unwrap()
    }

    #[test]
    fn part_size_never_drops_below_the_s3_minimum() {
        assert_eq!(backend(MIB).part_size_for(100 * MIB), MIN_PART_SIZE);
    }

    #[test]
    fn part_size_grows_to_stay_under_10000_parts() {
        let b = backend(8 * MIB);
        let cases = [
            (0, 8 * MIB),
            (8 * MIB, 8 * MIB),
            (80_000 * MIB, 8 * MIB),
            (80_001 * MIB, 9 * MIB),
            (1 << 40, 105 * MIB),
        ];
        for (len, want) in cases {
            assert_eq!(b.part_size_for(len), want, "len {len}");
            assert!(len.div_ceil(want) <= MAX_PARTS);
        }
    }

    #[test]
    fn error_bodies_become_one_line() {
        let cases = [
            (
                "<Error><Code>AccessDenied</Code><Message>Access Denied.</Message></Error>",
                " (AccessDenied: Access Denied.)",
            ),
            ("", ""),
            ("plain text\n", " (plain text)"),
        ];
        for (body, want) in cases {
            assert_eq!(s3_error_detail(body), want);
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let b = backend(MIB);
        let shown = format!("{:?}", b.config);
        assert!(
            shown.contains("<redacted>") && !shown.contains("Secret(\"s\")"),
            "{shown}"
        );
    }
}
