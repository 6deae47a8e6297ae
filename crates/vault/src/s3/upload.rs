//! Storing an object: one PUT up to a part's size, a parallel multipart upload above it.
//!
//! Both are create-only where the server honours `If-None-Match: *` (on PutObject and on
//! CompleteMultipartUpload): of two uploads of one key exactly one is stored, the other gets
//! 412 and aborts **its own** multipart upload — a run only ever removes what it wrote.
//! The whole source is hashed as it is read and compared with the expected SHA-256
//! *before* the object is created (before the PUT, before Complete), so a source that
//! changed is never stored and never needs deleting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use manifest::sha256::Hasher;
use manifest::Sha256;
use toolkit::progress::Progress;

use crate::backend::{check_expected, CreateOnly, PutReceipt};
use crate::dir::already_exists;
use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;

use super::request::{xml_tag, Payload, S3Client, S3Request};

const CONTENT_TYPE: &str = "application/octet-stream";

/// Reads exactly `size` bytes, or fails with `Integrity` if the source ends first.
fn read_part(src: &mut dyn std::io::Read, size: usize) -> Result<Vec<u8>> {
    let mut data = vec![0u8; size];
    let mut filled = 0;
    while filled < size {
        toolkit::interrupt::check()
            .map_err(|_| Error::new(ErrorKind::Interrupted, "upload stopped by a signal"))?;
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

fn hex_sha256(data: &[u8]) -> String {
    Sha256::of(data).to_string()
}

impl S3Client {
    fn create_only_headers(&self, mode: CreateOnly) -> Vec<(&'static str, String)> {
        match mode {
            CreateOnly::Atomic => vec![("if-none-match", "*".to_owned())],
            CreateOnly::CheckThenPut => Vec::new(),
        }
    }

    /// One PUT of `data` (already read, so hashed before it is sent).
    pub fn put_single(
        &self,
        key: &ObjectKey,
        path: &str,
        data: &[u8],
        expected: Option<&Sha256>,
        mode: CreateOnly,
    ) -> Result<PutReceipt> {
        let sha256 = Sha256::of(data);
        check_expected(key, &sha256, expected)?;
        let mut req = S3Request::new("PUT", Some(path));
        req.headers = self.create_only_headers(mode);
        req.headers.push(("content-type", CONTENT_TYPE.to_owned()));
        req.payload = Payload::Bytes(data, sha256.to_string());
        self.call(&req, "upload")
            .map_err(|e| created_elsewhere(e, key))?;
        Ok(PutReceipt {
            bytes: data.len() as u64,
            sha256,
        })
    }

    /// A multipart upload of `len` bytes from `src`, `parallel` parts at a time.
    #[allow(clippy::too_many_arguments)]
    pub fn put_multipart(
        &self,
        key: &ObjectKey,
        path: &str,
        src: &mut dyn std::io::Read,
        len: u64,
        expected: Option<&Sha256>,
        mode: CreateOnly,
        progress: &dyn Progress,
    ) -> Result<PutReceipt> {
        let part_size = self.config.part_size_for(len);
        let mut req = S3Request::new("POST", Some(path));
        req.query = vec![("uploads", String::new())];
        req.headers = vec![("content-type", CONTENT_TYPE.to_owned())];
        let answer = self.call(&req, "start multipart upload")?;
        let upload_id = xml_tag(&answer.text(), "UploadId").ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                "the S3 server started an upload without an UploadId",
            )
        })?;
        let result = self
            .send_parts(path, &upload_id, src, len, part_size, progress)
            .and_then(|(parts, hasher)| {
                let (bytes, sha256) = hasher.finish();
                check_expected(key, &sha256, expected)?;
                self.complete(key, path, &upload_id, &parts, mode)?;
                Ok(PutReceipt { bytes, sha256 })
            });
        match result {
            Ok(receipt) => Ok(receipt),
            Err(e) => Err(self.abort_own(path, &upload_id, e, key)),
        }
    }

    /// Aborts the upload this run started; a failed abort is said, with the upload id, so
    /// the orphan sweep (or the operator) can finish it.
    fn abort_own(&self, path: &str, upload_id: &str, cause: Error, key: &ObjectKey) -> Error {
        let mut req = S3Request::new("DELETE", Some(path));
        req.query = vec![("uploadId", upload_id.to_owned())];
        req.accept = &[404]; // already gone
        match self.call(&req, "abort multipart upload") {
            Ok(_) => cause,
            Err(abort) => cause
                .append(&format!(
                    "; the unfinished multipart upload {upload_id} could not be aborted ({abort}): \
                     it is left in the bucket, `vault-get --orphans` lists it"
                ))
                .with_incomplete(key.clone(), upload_id.to_owned()),
        }
    }

    fn complete(
        &self,
        key: &ObjectKey,
        path: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        mode: CreateOnly,
    ) -> Result<()> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (number, etag) in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let mut req = S3Request::new("POST", Some(path));
        req.query = vec![("uploadId", upload_id.to_owned())];
        req.headers = self.create_only_headers(mode);
        req.headers
            .push(("content-type", "application/xml".to_owned()));
        let sha = hex_sha256(xml.as_bytes());
        req.payload = Payload::Bytes(xml.as_bytes(), sha);
        let answer = self
            .call(&req, "complete multipart upload")
            .map_err(|e| created_elsewhere(e, key))?;
        // S3 may answer 200 and put the error in the body (documented for Complete).
        let text = answer.text();
        if text.contains("<Error>") {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "complete multipart upload: {} answered an error{}",
                    self.place(),
                    super::request::s3_error_detail(&text)
                ),
            ));
        }
        Ok(())
    }

    /// Reads parts on this thread (hashing the whole source in order) and sends them on
    /// `parallel` workers. Returns the parts' numbers and ETags, in order.
    fn send_parts(
        &self,
        path: &str,
        upload_id: &str,
        src: &mut dyn std::io::Read,
        len: u64,
        part_size: u64,
        progress: &dyn Progress,
    ) -> Result<(Vec<(u32, String)>, Hasher)> {
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        let parts = Mutex::new(Vec::new());
        let mut hasher = Hasher::new();
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
                    let mut req = S3Request::new("PUT", Some(path));
                    req.query = vec![
                        ("partNumber", number.to_string()),
                        ("uploadId", upload_id.to_owned()),
                    ];
                    req.payload = Payload::Bytes(&data, hex_sha256(&data));
                    let sent =
                        self.call(&req, &format!("upload part {number}"))
                            .and_then(|answer| {
                                answer.header("etag").map(str::to_owned).ok_or_else(|| {
                                    Error::new(
                                        ErrorKind::Protocol,
                                        format!("part {number} was stored without an ETag"),
                                    )
                                })
                            });
                    match sent {
                        Ok(etag) => {
                            progress.inc(data.len() as u64);
                            parts.lock().unwrap().push((number, etag));
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
                match read_part(src, size as usize) {
                    Ok(data) => {
                        hasher.update(&data);
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
        if let Some(e) = failed.into_inner().unwrap() {
            return Err(e);
        }
        let mut parts = parts.into_inner().unwrap();
        parts.sort_by_key(|(n, _)| *n);
        Ok((parts, hasher))
    }

    /// Reads a source of up to one part fully.
    pub fn read_single(&self, src: &mut dyn std::io::Read, len: u64) -> Result<Vec<u8>> {
        read_part(src, len as usize)
    }
}

/// A 412 from a create-only write: the key was created by someone else meanwhile.
fn created_elsewhere(e: Error, key: &ObjectKey) -> Error {
    if e.kind() == ErrorKind::AlreadyExists {
        already_exists(key).append(" (another upload created it first)")
    } else {
        e
    }
}
