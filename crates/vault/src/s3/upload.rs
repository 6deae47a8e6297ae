//! Storing an object: one PUT up to a part's size (read into memory); a file up to
//! `--s3-multipart-threshold` whose SHA-256 is known, one PUT streamed from the file
//! ([`S3Client::put_streamed`]); anything else, a parallel multipart upload.
//!
//! **The streamed PUT** carries the SHA-256 the manifest gives (`x-amz-checksum-sha256`):
//! the server hashes what it receives and creates nothing if it differs, so the client
//! hashes nothing, and a file that is not what its manifest says is never stored. It is
//! used only where a probe showed that the server refuses a wrong one. For 1 GiB on
//! SeaweedFS sharing two cores it cost 0.5 client CPU-seconds and 6 MiB (multipart: 1.5 s
//! and 46 MiB); the wall time was the multipart upload's in the benchmark (the server's
//! SHA-256 costs about what the client's did) and 0.85x of it in pairs outside it.
//!
//! Both are create-only where the server honours `If-None-Match: *` (on PutObject and on
//! CompleteMultipartUpload): of two uploads of one key exactly one is stored, the other gets
//! 412 and aborts **its own** multipart upload — a run only ever removes what it wrote.
//!
//! **What is proven, and how cheaply** (multipart, and the in-memory PUT). Every part (and
//! the single PUT) carries its CRC32 in
//! `x-amz-checksum-crc32`: the server recomputes it, refuses the part on a mismatch
//! (`BadDigest`), and echoes it back, which is checked; CompleteMultipartUpload lists each
//! part's CRC32, and the stored object's checksum (`HEAD` with checksum mode) is compared
//! with the one computed here. That proves the server received exactly these bytes, at a
//! fraction of the cost of hashing for SigV4 (bodies go `UNSIGNED-PAYLOAD`) or reading the
//! object back. A server that echoes no checksum is reported (`ServerProof::None`), and the
//! caller falls back to a read-back. The whole source is also hashed with SHA-256 as it is
//! read and compared with the expected digest *before* the object is created (before the
//! PUT, before Complete), so a source that changed is never stored and never needs deleting.
//!
//! **Memory.** Parts are read into a fixed pool of `parallel + 1` buffers, reused: peak
//! memory is that pool, whatever the object size, and no part is copied.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use base64::Engine;
use manifest::sha256::Hasher;
use manifest::Sha256;
use toolkit::progress::Progress;

use super::config::{MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use crate::backend::{CreateOnly, PutReceipt, StoreProof};
use crate::dir::already_exists;
use crate::error::{Error, ErrorKind, Result};
use crate::expect::Expect;
use crate::key::ObjectKey;

use super::file_body::FileBody;
use super::request::{refuses_digest, xml_tag, Payload, S3Client, S3Request};

const CONTENT_TYPE: &str = "application/octet-stream";

/// A CRC32 as S3 writes it: base64 of the 4 big-endian bytes.
fn crc_text(crc: u32) -> String {
    checksum_text(&crc.to_be_bytes())
}

/// The checksum a whole-object PUT carries, as [`checksum_text`] writes it.
enum ObjectChecksum<'a> {
    Crc32(&'a str),
    Sha256(&'a str),
}

/// A checksum as S3's `x-amz-checksum-*` headers write it: base64 of its bytes.
fn checksum_text(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The checksum S3 reports for a multipart object built from parts with these CRC32s:
/// the CRC32 of the concatenated part checksums, `-` the number of parts.
fn composite(part_crcs: &[u32]) -> String {
    let mut h = crc32fast::Hasher::new();
    for crc in part_crcs {
        h.update(&crc.to_be_bytes());
    }
    format!("{}-{}", crc_text(h.finalize()), part_crcs.len())
}

/// Fills `buf` (its current length) from `src` and returns how much it filled: all of it
/// unless the source ended. A source of known length (`exact`) that ends first is an
/// `Integrity` error.
fn fill(src: &mut dyn std::io::Read, buf: &mut [u8], exact: bool) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        toolkit::interrupt::check()
            .map_err(|_| Error::new(ErrorKind::Interrupted, "upload stopped by a signal"))?;
        match src.read(&mut buf[filled..]) {
            Ok(0) if exact => {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    format!("source ended {} bytes early", buf.len() - filled),
                ))
            }
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("cannot read the source", e)),
        }
    }
    Ok(filled)
}

/// The size of part `number` of a source whose length is unknown: `base`, doubled every
/// 1000 parts (S3 allows parts of different sizes), so 10 000 parts hold any artifact while
/// the first gigabytes use the small parts that keep memory low.
fn growing_part_size(base: u64, number: u32) -> u64 {
    let doublings = ((number.saturating_sub(1)) / 1000).min(20);
    (base << doublings).min(MAX_PART_SIZE)
}

/// Compares the checksum the server echoed for a part or object with ours. `None`: the
/// server echoed nothing (it does not do checksums).
fn echo_matches(echoed: Option<&str>, ours: &str, what: &str) -> Result<bool> {
    echo_of("CRC32", echoed, ours, what)
}

/// Whether the server echoed the `algorithm` checksum sent (`false`: it echoed none); a
/// different one is an `Integrity` error.
fn echo_of(algorithm: &str, echoed: Option<&str>, ours: &str, what: &str) -> Result<bool> {
    match echoed {
        None => Ok(false),
        Some(theirs) if theirs == ours => Ok(true),
        Some(theirs) => Err(Error::new(
            ErrorKind::Integrity,
            format!("{what}: the server stored {algorithm} {theirs}, this side sent {ours}: the bytes changed in transit"),
        )),
    }
}

impl S3Client {
    fn create_only_headers(&self, mode: CreateOnly) -> Vec<(&'static str, String)> {
        match mode {
            CreateOnly::Atomic => vec![("if-none-match", "*".to_owned())],
            CreateOnly::CheckThenPut => Vec::new(),
        }
    }

    /// The Object Lock headers, when the vault locks what it stores. AWS wants a
    /// locked upload's checksum named (Content-MD5 or x-amz-sdk-checksum-algorithm): the
    /// one the PUT or its parts carry (`algorithm`).
    fn push_lock_headers(&self, headers: &mut Vec<(&'static str, String)>, algorithm: &str) {
        if let Some(lock) = &self.config.lock {
            headers.extend(lock.headers());
            if !headers
                .iter()
                .any(|(name, _)| *name == "x-amz-checksum-algorithm")
            {
                headers.push(("x-amz-sdk-checksum-algorithm", algorithm.to_owned()));
            }
        }
    }

    /// One PUT of `data` (already read, so hashed before it is sent).
    pub fn put_single(
        &self,
        key: &ObjectKey,
        path: &str,
        data: &[u8],
        expect: Expect<'_>,
        mode: CreateOnly,
    ) -> Result<PutReceipt> {
        let sha256 = Sha256::of(data);
        expect.check(key, data.len() as u64, &sha256)?;
        let crc = crc_text(crc32fast::hash(data));
        let req = self.object_put(
            path,
            mode,
            ObjectChecksum::Crc32(&crc),
            Payload::Unsigned(data),
        );
        let answer = self
            .call(&req, "upload")
            .map_err(|e| created_elsewhere(e, key))?;
        let proof = if echo_matches(answer.header("x-amz-checksum-crc32"), &crc, "upload")? {
            StoreProof::ServerChecksums
        } else {
            StoreProof::None
        };
        Ok(PutReceipt {
            bytes: data.len() as u64,
            sha256,
            proof,
        })
    }

    /// The PUT of a whole object: create-only as `mode` says, with its checksum and the
    /// lock headers.
    fn object_put<'a>(
        &self,
        path: &'a str,
        mode: CreateOnly,
        checksum: ObjectChecksum<'_>,
        payload: Payload<'a>,
    ) -> S3Request<'a> {
        let (header, algorithm, checksum) = match checksum {
            ObjectChecksum::Crc32(text) => ("x-amz-checksum-crc32", "CRC32", text),
            ObjectChecksum::Sha256(text) => ("x-amz-checksum-sha256", "SHA256", text),
        };
        let mut req = S3Request::new("PUT", Some(path));
        req.headers = self.create_only_headers(mode);
        req.headers.push(("content-type", CONTENT_TYPE.to_owned()));
        req.headers.push((header, checksum.to_owned()));
        self.push_lock_headers(&mut req.headers, algorithm);
        req.payload = payload;
        req
    }

    /// One PUT of the whole of `body`, streamed from the file, carrying the SHA-256 the
    /// source must have (`x-amz-checksum-sha256`): the server hashes what it receives and
    /// refuses to create the object if it differs (`BadDigest`), so nothing is hashed here
    /// and a source that is not what the manifest says is never stored. Only for a server
    /// [`verifies_sha256`](Self::verifies_sha256) says checks it.
    pub fn put_streamed(
        &self,
        key: &ObjectKey,
        path: &str,
        body: &FileBody<'_>,
        sha256: &Sha256,
        mode: CreateOnly,
    ) -> Result<PutReceipt> {
        let sha_b64 = checksum_text(sha256.as_bytes());
        let req = self.object_put(
            path,
            mode,
            ObjectChecksum::Sha256(&sha_b64),
            Payload::File(body),
        );
        let answer = self.call(&req, "upload").map_err(|e| {
            if e.kind() == ErrorKind::Integrity {
                return Error::new(
                    ErrorKind::Integrity,
                    format!(
                        "the server received bytes whose SHA-256 is not the manifest's {sha256} \
                         and refused them ({e}): the spool file changed after it was written, \
                         or the bytes were damaged on the way; nothing was stored"
                    ),
                )
                .with_key(key);
            }
            created_elsewhere(e, key)
        })?;
        let echoed = echo_of(
            "SHA-256",
            answer.header("x-amz-checksum-sha256"),
            &sha_b64,
            "upload",
        )?;
        Ok(PutReceipt {
            bytes: body.len,
            sha256: *sha256,
            proof: if echoed {
                StoreProof::ServerChecksums
            } else {
                StoreProof::None
            },
        })
    }

    /// Whether the server refuses a PUT whose body does not have the SHA-256 its
    /// `x-amz-checksum-sha256` names: a tiny probe object is sent with a wrong one, and
    /// must be refused with `BadDigest` (nothing is stored then). A server that stores it
    /// anyway does not check, and [`put_streamed`](Self::put_streamed) must not be used.
    pub fn verifies_sha256(&self, probe_path: &str) -> Result<bool> {
        let body = b"stackvault: checks that this server verifies x-amz-checksum-sha256\n";
        let wrong = checksum_text(Sha256::of(b"").as_bytes());
        let mut req = S3Request::new("PUT", Some(probe_path));
        req.headers = vec![("x-amz-checksum-sha256", wrong)];
        req.payload = Payload::Bytes(body, Sha256::of(body).to_string());
        req.accept = &[400];
        let answer = self.call(&req, "check that the server verifies checksums")?;
        Ok(answer.status == 400
            && xml_tag(&answer.text(), "Code").is_some_and(|code| refuses_digest(&code)))
    }

    /// A multipart upload of what `src` gives, `parallel` parts at a time.
    pub fn put_multipart(
        &self,
        key: &ObjectKey,
        path: &str,
        src: &mut dyn std::io::Read,
        expect: Expect<'_>,
        mode: CreateOnly,
        progress: &dyn Progress,
    ) -> Result<PutReceipt> {
        let len = expect.known_len();
        let part_size = match len {
            Some(len) => self.config.part_size_for(len),
            None => self.config.part_size.max(MIN_PART_SIZE),
        };
        let mut req = S3Request::new("POST", Some(path));
        req.query = vec![("uploads", String::new())];
        req.headers = vec![
            ("content-type", CONTENT_TYPE.to_owned()),
            // Parts carry CRC32s; AWS wants the algorithm named when the upload starts.
            ("x-amz-checksum-algorithm", "CRC32".to_owned()),
        ];
        self.push_lock_headers(&mut req.headers, "CRC32");
        let answer = self.call(&req, "start multipart upload")?;
        let upload_id = xml_tag(&answer.text(), "UploadId").ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                "the S3 server started an upload without an UploadId",
            )
        })?;
        let result = self
            .send_parts(path, &upload_id, src, len, part_size, progress)
            .and_then(|sent| {
                let (bytes, sha256) = sent.hasher.finish();
                expect.check(key, bytes, &sha256)?;
                self.complete(key, path, &upload_id, &sent.parts, mode)?;
                let parts_echoed = sent.parts.iter().all(|p| p.echoed);
                let crcs: Vec<u32> = sent.parts.iter().map(|p| p.crc).collect();
                let object_checked = self.check_object_checksum(path, &crcs, sent.full_crc)?;
                let proof = if parts_echoed && object_checked {
                    StoreProof::ServerChecksums
                } else {
                    StoreProof::None
                };
                Ok(PutReceipt {
                    bytes,
                    sha256,
                    proof,
                })
            });
        match result {
            Ok(receipt) => Ok(receipt),
            Err(e) => Err(self.abort_own(path, &upload_id, e, key)),
        }
    }

    /// The stored object's checksum, as the server reports it, against the one computed
    /// here: the composite of the part CRC32s (AWS, SeaweedFS), or a full-object CRC32 (a
    /// server that reports that instead). `false`: the server reports none.
    fn check_object_checksum(&self, path: &str, part_crcs: &[u32], full_crc: u32) -> Result<bool> {
        let mut req = S3Request::new("HEAD", Some(path));
        req.headers = vec![("x-amz-checksum-mode", "ENABLED".to_owned())];
        let answer = self.call(&req, "read the stored object's checksum")?;
        let Some(reported) = answer.header("x-amz-checksum-crc32") else {
            return Ok(false);
        };
        let (composite, full) = (composite(part_crcs), crc_text(full_crc));
        if reported == composite || reported == full {
            return Ok(true);
        }
        Err(Error::new(
            ErrorKind::Integrity,
            format!(
                "the stored object's CRC32 is {reported}, but the parts sent make {composite} \
                 ({full} over the whole object): the object is not what was sent"
            ),
        ))
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
        parts: &[SentPart],
        mode: CreateOnly,
    ) -> Result<()> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for part in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag><ChecksumCRC32>{}</ChecksumCRC32></Part>",
                part.number,
                part.etag,
                crc_text(part.crc)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let mut req = S3Request::new("POST", Some(path));
        req.query = vec![("uploadId", upload_id.to_owned())];
        req.headers = self.create_only_headers(mode);
        req.headers
            .push(("content-type", "application/xml".to_owned()));
        let sha = Sha256::of(xml.as_bytes()).to_string();
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

    /// Reads parts on this thread into pooled buffers (hashing the whole source in order,
    /// and each part's CRC32) and sends them on `parallel` workers: `len` bytes, or to the
    /// source's end if `len` is not known (parts then grow, see [`growing_part_size`]).
    fn send_parts(
        &self,
        path: &str,
        upload_id: &str,
        src: &mut dyn std::io::Read,
        len: Option<u64>,
        part_size: u64,
        progress: &dyn Progress,
    ) -> Result<Sent> {
        let workers = self.config.parallel.max(1);
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        let stop = AtomicBool::new(false);
        let parts = Mutex::new(Vec::new());
        let mut hasher = Hasher::new();
        let mut full = crc32fast::Hasher::new();
        // The pool: one buffer per worker and one being filled. A buffer goes back to the
        // pool when its part is sent, so the reader waits for a free one instead of
        // allocating: memory stays at the pool's size whatever the object's.
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        for _ in 0..=workers {
            free_tx.send(Vec::new()).expect("receiver alive");
        }
        let (work_tx, work_rx) = mpsc::sync_channel::<(u32, u32, Vec<u8>)>(0);
        let work_rx = Mutex::new(work_rx);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let free_tx = free_tx.clone();
                let (work_rx, stop, failed, parts) = (&work_rx, &stop, &failed, &parts);
                scope.spawn(move || loop {
                    let next = work_rx.lock().unwrap().recv();
                    let Ok((number, crc, data)) = next else { break };
                    if !stop.load(Ordering::SeqCst) {
                        match self.send_part(path, upload_id, number, crc, &data) {
                            Ok(part) => {
                                progress.inc(data.len() as u64);
                                parts.lock().unwrap().push(part);
                            }
                            Err(e) => {
                                stop.store(true, Ordering::SeqCst);
                                failed.lock().unwrap().get_or_insert(e);
                            }
                        }
                    }
                    let _ = free_tx.send(data);
                });
            }
            let mut read = 0u64;
            let mut number = 1u32;
            while !stop.load(Ordering::SeqCst) {
                let size = match len {
                    Some(len) if read == len => break,
                    Some(len) => part_size.min(len - read),
                    None => growing_part_size(part_size, number),
                };
                if u64::from(number) > MAX_PARTS {
                    stop.store(true, Ordering::SeqCst);
                    failed.lock().unwrap().get_or_insert(Error::new(
                        ErrorKind::InvalidInput,
                        format!("the source needs more than {MAX_PARTS} parts"),
                    ));
                    break;
                }
                let Ok(mut buf) = free_rx.recv() else { break };
                // Grows once per buffer to the part size; later resizes stay in capacity.
                buf.resize(size as usize, 0);
                let filled = match fill(src, &mut buf, len.is_some()) {
                    Ok(filled) => filled,
                    Err(e) => {
                        stop.store(true, Ordering::SeqCst);
                        failed.lock().unwrap().get_or_insert(e);
                        break;
                    }
                };
                let at_end = filled < buf.len();
                buf.truncate(filled);
                // A source that ended on a part boundary: no empty part after it (but an
                // empty source is one empty part: an upload needs at least one).
                if filled == 0 && number > 1 {
                    break;
                }
                hasher.update(&buf);
                let mut part_crc = crc32fast::Hasher::new();
                part_crc.update(&buf);
                full.combine(&part_crc);
                if work_tx.send((number, part_crc.finalize(), buf)).is_err() {
                    break;
                }
                read += filled as u64;
                number += 1;
                if at_end {
                    break;
                }
            }
            drop(work_tx);
        });
        if let Some(e) = failed.into_inner().unwrap() {
            return Err(e);
        }
        let mut parts = parts.into_inner().unwrap();
        parts.sort_by_key(|p: &SentPart| p.number);
        Ok(Sent {
            parts,
            hasher,
            full_crc: full.finalize(),
        })
    }

    fn send_part(
        &self,
        path: &str,
        upload_id: &str,
        number: u32,
        crc: u32,
        data: &[u8],
    ) -> Result<SentPart> {
        let what = format!("upload part {number}");
        let crc_b64 = crc_text(crc);
        let mut req = S3Request::new("PUT", Some(path));
        req.query = vec![
            ("partNumber", number.to_string()),
            ("uploadId", upload_id.to_owned()),
        ];
        req.headers = vec![("x-amz-checksum-crc32", crc_b64.clone())];
        req.payload = Payload::Unsigned(data);
        let answer = self.call(&req, &what)?;
        let etag = answer.header("etag").map(str::to_owned).ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("part {number} was stored without an ETag"),
            )
        })?;
        let echoed = echo_matches(answer.header("x-amz-checksum-crc32"), &crc_b64, &what)?;
        Ok(SentPart {
            number,
            etag,
            crc,
            echoed,
        })
    }

    /// Reads a source of up to one part fully.
    pub fn read_single(&self, src: &mut dyn std::io::Read, len: u64) -> Result<Vec<u8>> {
        let mut data = vec![0u8; len as usize];
        fill(src, &mut data, true)?;
        Ok(data)
    }
}

/// A part the server took.
struct SentPart {
    number: u32,
    etag: String,
    crc: u32,
    /// The server echoed our CRC32 (it verified the part).
    echoed: bool,
}

/// What [`S3Client::send_parts`] sent.
struct Sent {
    parts: Vec<SentPart>,
    hasher: Hasher,
    full_crc: u32,
}

/// A 412 from a create-only write: the key was created by someone else meanwhile.
fn created_elsewhere(e: Error, key: &ObjectKey) -> Error {
    if e.kind() == ErrorKind::AlreadyExists {
        already_exists(key).append(" (another upload created it first)")
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_written_as_s3_writes_them() {
        // Known values: CRC32 of "hello" is 0x3610a686.
        assert_eq!(crc_text(crc32fast::hash(b"hello")), "NhCmhg==");
        let parts = [crc32fast::hash(b"hello"), crc32fast::hash(b"world")];
        let mut concatenated = Vec::new();
        for p in parts {
            concatenated.extend_from_slice(&p.to_be_bytes());
        }
        assert_eq!(
            composite(&parts),
            format!("{}-2", crc_text(crc32fast::hash(&concatenated)))
        );
        let mut full = crc32fast::Hasher::new();
        for chunk in [&b"hello"[..], &b"world"[..]] {
            let mut h = crc32fast::Hasher::new();
            h.update(chunk);
            full.combine(&h);
        }
        assert_eq!(
            full.finalize(),
            crc32fast::hash(b"helloworld"),
            "combined part CRCs are the whole's"
        );
    }

    #[test]
    fn a_different_echo_is_an_integrity_error_and_none_is_unproven() {
        assert!(echo_matches(Some("abc="), "abc=", "p").unwrap());
        assert!(!echo_matches(None, "abc=", "p").unwrap());
        let err = echo_matches(Some("xyz="), "abc=", "part 3").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
    }
}
