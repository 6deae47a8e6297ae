//! A vault in an S3-compatible bucket (`s3://bucket/prefix`): AWS S3, MinIO, SeaweedFS,
//! Garage, Ceph.
//!
//! - [`config`]: endpoint, credentials, part size, parallelism, timeouts, retries;
//! - `request`: one signed request (rust-s3's SigV4 over the shared HTTP client), retried
//!   by the shared policy, error answers classified;
//! - `upload` / `download`: parallel multipart uploads and ranged downloads, each part one
//!   request with its own timeout, memory bounded by `parallel` parts whatever the size;
//! - `listing`: ListObjectsV2 and ListMultipartUploads, read from the XML field by field.
//!
//! Never overwriting is a create-only write (`If-None-Match: *`) where the server honours
//! it — [`S3Backend::create_only`] finds out once per process with a probe object under
//! `{prefix}/.stackvault/` — and a check before each write everywhere. Transient failures
//! (connection errors, timeouts, HTTP 408/429/5xx) are retried with backoff;
//! authentication failures are not. A multipart upload that fails is aborted — this run's
//! own, by its upload id — so no orphan parts are left to be billed.

mod config;
mod download;
mod file_body;
mod listing;
mod request;
mod upload;
mod written;

use std::io::{Read, Write};
use std::sync::OnceLock;

use manifest::Sha256;
use toolkit::progress::Progress;

pub use config::{
    S3Config, DEFAULT_MULTIPART_THRESHOLD, MAX_PARTS, MAX_PART_SIZE, MAX_SINGLE_PUT, MIN_PART_SIZE,
};

use crate::backend::{Backend, CreateOnly, Incomplete, ObjectInfo, PutReceipt};
use crate::dir::already_exists;
use crate::error::{Error, ErrorKind, Result};
use crate::expect::Expect;
use crate::key::ObjectKey;
use request::{S3Client, S3Request};

/// Where the create-only probe object lives, under the vault's prefix. Listings skip it.
const INTERNAL_DIR: &str = ".stackvault/";

/// A bucket (and prefix) as a [`Backend`].
pub struct S3Backend {
    client: S3Client,
    create_only: OnceLock<std::result::Result<CreateOnly, (ErrorKind, String)>>,
    lock_checked: OnceLock<std::result::Result<(), (ErrorKind, String)>>,
    verifies_sha256: OnceLock<std::result::Result<bool, (ErrorKind, String)>>,
}

impl S3Backend {
    /// Connects lazily: nothing is sent until the first operation.
    pub fn new(config: S3Config) -> Result<Self> {
        Ok(S3Backend {
            client: S3Client::new(config)?,
            create_only: OnceLock::new(),
            lock_checked: OnceLock::new(),
            verifies_sha256: OnceLock::new(),
        })
    }

    fn config(&self) -> &S3Config {
        &self.client.config
    }

    /// The object's path in the bucket: `prefix/key`.
    fn path(&self, key: &str) -> String {
        match self.config().prefix.as_str() {
            "" => key.to_owned(),
            prefix => format!("{prefix}/{key}"),
        }
    }

    /// A bucket path as a key of this vault (`None` outside the prefix, or internal).
    fn key_of_path(&self, path: &str) -> Option<ObjectKey> {
        let key = match self.config().prefix.as_str() {
            "" => path,
            prefix => path.strip_prefix(prefix)?.strip_prefix('/')?,
        };
        if key.starts_with(INTERNAL_DIR) {
            return None;
        }
        ObjectKey::new(key).ok()
    }

    /// Creates the bucket (for setup and tests); succeeds if it exists already and is ours.
    pub fn create_bucket(&self) -> Result<()> {
        self.create_bucket_with(Vec::new())
    }

    /// Creates the bucket with Object Lock enabled (`x-amz-bucket-object-lock-enabled`,
    /// which also turns versioning on): the only moment S3 lets a bucket get it.
    pub fn create_bucket_with_lock(&self) -> Result<()> {
        self.create_bucket_with(vec![(
            "x-amz-bucket-object-lock-enabled",
            "true".to_owned(),
        )])
    }

    fn create_bucket_with(&self, headers: Vec<(&'static str, String)>) -> Result<()> {
        let mut req = S3Request::new("PUT", None);
        req.headers = headers;
        req.accept = &[409];
        let answer = self.client.call(&req, "create bucket")?;
        if answer.status == 409 && !answer.text().contains("BucketAlreadyOwnedByYou") {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "bucket {} exists and belongs to someone else",
                    self.config().bucket
                ),
            ));
        }
        Ok(())
    }

    /// Finds out whether the server honours `If-None-Match: *`: two create-only PUTs of the
    /// probe object; the second must be refused with 412.
    fn probe_create_only(&self) -> Result<CreateOnly> {
        let path = self.path(&format!("{INTERNAL_DIR}create-only-probe"));
        let body = b"stackvault: checks that this server refuses to overwrite with If-None-Match\n";
        let sha = Sha256::of(body).to_string();
        let mut statuses = Vec::new();
        for _ in 0..2 {
            let mut req = S3Request::new("PUT", Some(&path));
            req.headers = vec![("if-none-match", "*".to_owned())];
            req.payload = request::Payload::Bytes(body, sha.clone());
            req.accept = &[400, 412, 501];
            statuses.push(self.client.call(&req, "check create-only writes")?.status);
        }
        Ok(match statuses[1] {
            412 => CreateOnly::Atomic,
            _ => CreateOnly::CheckThenPut,
        })
    }

    /// Before an object is sent: it must not exist (the check gives a clear answer before
    /// gigabytes are sent; the create-only write is what makes it race-free), and a lock
    /// asked for must be possible (refused before a byte is sent). Returns how writes are
    /// made create-only.
    fn ready_to_put(&self, key: &ObjectKey) -> Result<CreateOnly> {
        if self.exists(key)? {
            return Err(already_exists(key));
        }
        let mode = self.create_only()?;
        self.lock()?;
        Ok(mode)
    }

    /// Whether the server checks a PUT's `x-amz-checksum-sha256` (probed once per process,
    /// with a probe object it must refuse).
    fn verifies_sha256(&self) -> Result<bool> {
        self.verifies_sha256
            .get_or_init(|| {
                let path = self.path(&format!("{INTERNAL_DIR}checksum-probe"));
                self.client
                    .verifies_sha256(&path)
                    .map_err(|e| (e.kind(), e.to_string()))
            })
            .clone()
            .map_err(|(kind, message)| Error::new(kind, message))
    }

    /// Whether the bucket has Object Lock enabled (`GET ?object-lock`): a bucket without it
    /// answers 404 `ObjectLockConfigurationNotFoundError`, and a put with lock headers would
    /// be refused (400) — or, on a server that ignores them, stored unlocked.
    fn check_lock_enabled(&self) -> Result<()> {
        let mut req = S3Request::new("GET", None);
        req.query = vec![("object-lock", String::new())];
        req.accept = &[404];
        let answer = self.client.call(&req, "check the bucket's Object Lock")?;
        let enabled = answer.status == 200
            && request::xml_tag(&answer.text(), "ObjectLockEnabled").as_deref() == Some("Enabled");
        if enabled {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "bucket {} has no Object Lock enabled, so nothing stored there can be locked: \
                 Object Lock is enabled when a bucket is created (aws s3api create-bucket \
                 --object-lock-enabled-for-bucket; mc mb --with-lock; SeaweedFS: \
                 s3.bucket.create -withLock or s3.bucket.lock -enable); nothing was stored",
                self.config().bucket
            ),
        ))
    }

    /// The Object Lock the server holds for `key` (`HEAD`: mode and retain-until date as
    /// it reports them), `None` for an unlocked object: what tests and operators check
    /// behind the manifest's back.
    pub fn object_lock_of(&self, key: &ObjectKey) -> Result<Option<(String, String)>> {
        let path = self.path(key.as_str());
        let req = S3Request::new("HEAD", Some(&path));
        let answer = self.client.call(&req, "read the object's lock")?;
        let header = |name: &str| answer.header(name).map(str::to_owned);
        Ok(header("x-amz-object-lock-mode").zip(header("x-amz-object-lock-retain-until-date")))
    }

    /// The part size for an object of `len` bytes.
    pub fn part_size_for(&self, len: u64) -> u64 {
        self.config().part_size_for(len)
    }

    /// Unfinished multipart uploads anywhere in the bucket under the prefix, with their
    /// bucket paths (for tests that look behind the vault's back).
    pub fn incomplete_paths(&self) -> Result<Vec<String>> {
        Ok(self
            .client
            .list_uploads(&self.path(""))?
            .into_iter()
            .map(|u| u.key)
            .collect())
    }
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        match self.config().prefix.as_str() {
            "" => format!("s3://{}", self.config().bucket),
            prefix => format!("s3://{}/{prefix}", self.config().bucket),
        }
    }

    fn put(
        &self,
        key: &ObjectKey,
        src: &mut dyn Read,
        expect: Expect<'_>,
        progress: &dyn Progress,
    ) -> Result<PutReceipt> {
        let mode = self.ready_to_put(key)?;
        let path = self.path(key.as_str());
        let result = match expect.known_len() {
            Some(len) if len <= self.part_size_for(len) => {
                progress.set_length(len);
                self.client
                    .read_single(src, len)
                    .and_then(|data| self.client.put_single(key, &path, &data, expect, mode))
                    .inspect(|_| progress.inc(len))
            }
            len => {
                if let Some(len) = len {
                    progress.set_length(len);
                }
                self.client
                    .put_multipart(key, &path, src, expect, mode, progress)
            }
        };
        result.map_err(|e| keyed(e, key))
    }

    /// A file larger than a part and up to `--s3-multipart-threshold`, whose SHA-256 is
    /// known, on a server that verifies SHA-256: one streamed PUT the server checks against
    /// it. Anything else: [`put`](Backend::put).
    fn put_file(
        &self,
        key: &ObjectKey,
        file: &std::fs::File,
        expect: Expect<'_>,
        progress: &dyn Progress,
    ) -> Result<PutReceipt> {
        let streamed = match expect {
            Expect::Exact {
                bytes,
                sha256: Some(sha256),
            } if bytes > self.part_size_for(bytes)
                && bytes <= self.config().multipart_threshold =>
            {
                Some((bytes, sha256))
            }
            _ => None,
        };
        let streamed = match streamed {
            Some(s) if self.verifies_sha256().map_err(|e| keyed(e, key))? => Some(s),
            _ => None,
        };
        let Some((len, sha256)) = streamed else {
            let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
            return self.put(key, &mut reader, expect, progress);
        };
        let mode = self.ready_to_put(key)?;
        progress.set_length(len);
        let body = file_body::FileBody::new(file, len, progress);
        self.client
            .put_streamed(key, &self.path(key.as_str()), &body, sha256, mode)
            .map_err(|e| keyed(e, key))
    }

    fn get(&self, key: &ObjectKey, dst: &mut dyn Write, progress: &dyn Progress) -> Result<u64> {
        let info = self
            .stat(key)?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "no such object").with_key(key))?;
        progress.set_length(info.size);
        if info.size > 0 {
            self.client
                .get_ranges(&self.path(key.as_str()), info.size, dst, progress)
                .map_err(|e| e.with_key(key))?;
        }
        Ok(info.size)
    }

    fn get_to_file(
        &self,
        key: &ObjectKey,
        file: &std::fs::File,
        progress: &dyn Progress,
    ) -> Result<(u64, Sha256)> {
        let info = self
            .stat(key)?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "no such object").with_key(key))?;
        progress.set_length(info.size);
        if info.size == 0 {
            return Ok((0, Sha256::of(b"")));
        }
        let sha256 = self
            .client
            .get_to_file(&self.path(key.as_str()), info.size, file, progress)
            .map_err(|e| e.with_key(key))?;
        Ok((info.size, sha256))
    }

    fn stat(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>> {
        let path = self.path(key.as_str());
        let mut req = S3Request::new("HEAD", Some(&path));
        req.accept = &[404];
        let answer = self
            .client
            .call(&req, "read object metadata")
            .map_err(|e| e.with_key(key))?;
        if answer.status == 404 {
            return Ok(None);
        }
        let size = answer
            .header("content-length")
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| {
                Error::new(ErrorKind::Protocol, "the server sent no Content-Length").with_key(key)
            })?;
        Ok(Some(ObjectInfo {
            key: key.clone(),
            size,
            modified: answer
                .header("last-modified")
                .and_then(listing::parse_http_date),
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        Ok(self
            .client
            .list_objects(&self.path(prefix))?
            .into_iter()
            .filter_map(|o| {
                Some(ObjectInfo {
                    key: self.key_of_path(&o.key)?,
                    size: o.size,
                    modified: o.modified,
                })
            })
            .collect())
    }

    fn delete(&self, key: &ObjectKey) -> Result<()> {
        if !self.exists(key)? {
            return Err(Error::new(ErrorKind::NotFound, "no such object").with_key(key));
        }
        let path = self.path(key.as_str());
        let req = S3Request::new("DELETE", Some(&path));
        self.client
            .call(&req, "delete object")
            .map(|_| ())
            .map_err(|e| e.with_key(key))
    }

    fn incomplete(&self, prefix: &str) -> Result<Vec<Incomplete>> {
        Ok(self
            .client
            .list_uploads(&self.path(prefix))?
            .into_iter()
            .filter_map(|u| {
                Some(Incomplete {
                    key: self.key_of_path(&u.key)?,
                    upload_id: u.upload_id,
                    started: u.initiated,
                    in_progress: false, // S3 cannot tell; callers use the age
                })
            })
            .collect())
    }

    fn abort(&self, upload: &Incomplete) -> Result<()> {
        let path = self.path(upload.key.as_str());
        let mut req = S3Request::new("DELETE", Some(&path));
        req.query = vec![("uploadId", upload.upload_id.clone())];
        self.client
            .call(&req, "abort multipart upload")
            .map(|_| ())
            .map_err(|e| e.with_key(&upload.key))
    }

    fn create_only(&self) -> Result<CreateOnly> {
        self.create_only
            .get_or_init(|| {
                self.probe_create_only()
                    .map_err(|e| (e.kind(), e.to_string()))
            })
            .clone()
            .map_err(|(kind, message)| Error::new(kind, message))
    }

    fn lock(&self) -> Result<Option<crate::lock::ObjectLock>> {
        let Some(lock) = &self.config().lock else {
            return Ok(None);
        };
        self.lock_checked
            .get_or_init(|| {
                self.check_lock_enabled()
                    .map_err(|e| (e.kind(), e.to_string()))
            })
            .clone()
            .map_err(|(kind, message)| Error::new(kind, message))?;
        Ok(Some(lock.clone()))
    }
}

/// `e`, naming `key` unless it names one already.
fn keyed(e: Error, key: &ObjectKey) -> Error {
    if e.key().is_some() {
        e
    } else {
        e.with_key(key)
    }
}
