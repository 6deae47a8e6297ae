//! Reading an object: ranged GETs on parallel kept-alive connections.
//!
//! Each range is one request with its own timeout and retries (a multi-GiB object in one
//! request would need an unbounded timeout), and a retry after a broken answer asks only
//! for the bytes still missing.
//!
//! - **Into a file** (`get_to_file`, what `vault-get` does): each worker streams its range
//!   straight into the file at its position, a chunk at a time (in writes of 32 KiB, which
//!   the page cache takes far more cheaply than 1 MiB ones: [`small_writes`]); the SHA-256
//!   is computed on the calling thread, in order, as the file's complete prefix grows, off
//!   the writers' path: from copies of the chunks kept in a fixed pool where one was free,
//!   else read back from the page cache ([`Written`]). Memory is a chunk per worker and the
//!   pool, however large the ranges — and large ranges are what make a server like
//!   SeaweedFS fast.
//! - **Into a stream** (`get_ranges`, for read-back checks and sidecars): ranges are read
//!   into a fixed pool of reused buffers and written out in order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use manifest::Sha256;
use toolkit::http::RequestTimeout;
use toolkit::progress::Progress;
use toolkit::retry::Failure;
use toolkit::small_writes;

use crate::error::{Error, ErrorKind, Result};

use super::config::MIB;
use super::request::{S3Client, S3Request};
use super::written::Written;

/// What a streaming worker moves in one read and one positioned write.
const CHUNK: usize = MIB as usize;

/// A file download asks for ranges of up to this many part sizes...
const RANGE_PARTS: u64 = 4;

/// ...and at least this many ranges per worker, so that the last ranges do not leave
/// workers idle while one finishes (the tail of a small object).
const RANGES_PER_WORKER: u64 = 4;

/// How many chunks a file download keeps in memory for the hasher, so it need not read them
/// back from the file (see [`Written`]): 24 MiB, enough for the chunks at the hashed prefix,
/// the ones that were costly to read back; keeping more saved nothing measurable.
const KEPT_CHUNKS: usize = 24;

impl S3Client {
    /// Writes bytes `0..len` of `path` to `dst`, in order.
    pub fn get_ranges(
        &self,
        path: &str,
        len: u64,
        dst: &mut dyn Write,
        progress: &dyn Progress,
    ) -> Result<()> {
        let part_size = self.config.part_size.max(MIB);
        let count = len.div_ceil(part_size);
        let workers = (self.config.parallel.max(1) as u64).min(count.max(1)) as usize;
        let next = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        // The pool: a buffer per worker and two of slack for ranges that arrive out of
        // order. A worker takes a buffer *before* it takes a range, so the range the writer
        // waits for always has one: no deadlock, and no more memory than the pool.
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        for _ in 0..workers + 2 {
            free_tx.send(Vec::new()).expect("receiver alive");
        }
        let free_rx = Mutex::new(free_rx);
        let (done_tx, done_rx) = mpsc::channel::<(u64, Result<Vec<u8>>)>();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let done_tx = done_tx.clone();
                let (next, stop, free_rx) = (&next, &stop, &free_rx);
                scope.spawn(move || loop {
                    let Ok(mut buf) = free_rx.lock().unwrap().recv() else {
                        break;
                    };
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= count || stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let start = index * part_size;
                    // Grows once per buffer; later resizes stay within its capacity.
                    buf.resize(part_size.min(len - start) as usize, 0);
                    let fetched =
                        self.fetch_range(path, start, buf.len() as u64, &mut |at, data| {
                            buf_copy(&mut buf, at, data);
                            Ok(())
                        });
                    let failed = fetched.is_err();
                    if done_tx.send((index, fetched.map(|()| buf))).is_err() || failed {
                        break;
                    }
                });
            }
            drop(done_tx);
            let result = (|| {
                let mut pending = BTreeMap::new();
                let mut want = 0u64;
                while want < count {
                    let Ok((index, data)) = done_rx.recv() else {
                        return Err(Error::new(ErrorKind::Protocol, "download workers stopped"));
                    };
                    pending.insert(index, data?);
                    check_interrupt()?;
                    while let Some(data) = pending.remove(&want) {
                        dst.write_all(&data)
                            .map_err(|e| Error::io("cannot write the download", e))?;
                        progress.inc(data.len() as u64);
                        want += 1;
                        let _ = free_tx.send(data);
                    }
                }
                dst.flush()
                    .map_err(|e| Error::io("cannot write the download", e))
            })();
            stop.store(true, Ordering::SeqCst);
            drop(free_tx); // workers waiting for a buffer end
            result
        })
    }

    /// Writes bytes `0..len` of `path` into `file` at their positions and returns their
    /// SHA-256, computed in order from the file as its complete prefix grows.
    pub fn get_to_file(
        &self,
        path: &str,
        len: u64,
        file: &File,
        progress: &dyn Progress,
    ) -> Result<Sha256> {
        // Streamed ranges cost no memory, and a large range is far cheaper for the server
        // than several small ones (SeaweedFS: 1 GiB in 32 MiB ranges took 0.6x the time
        // of 8 MiB ranges here).
        let part = self.config.part_size.max(MIB);
        let parallel = self.config.parallel.max(1) as u64;
        let range = (len.div_ceil(parallel * RANGES_PER_WORKER).div_ceil(MIB) * MIB)
            .clamp(part, part * RANGE_PARTS);
        let count = len.div_ceil(range);
        let workers = parallel.min(count.max(1)) as usize;
        let next = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let written = Written::new(count as usize, range, CHUNK, KEPT_CHUNKS);
        let failed: Mutex<Option<Error>> = Mutex::new(None);
        let hashed = std::thread::scope(|scope| {
            for _ in 0..workers {
                let (next, stop, written, failed) = (&next, &stop, &written, &failed);
                scope.spawn(move || loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= count || stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let start = index * range;
                    let size = range.min(len - start);
                    let streamed = self.fetch_range(path, start, size, &mut |at, data| {
                        small_writes::write_all_at(file, data, start + at)
                            .map_err(|e| Error::io("cannot write the download", e))?;
                        written.wrote(start + at, data);
                        progress.inc(data.len() as u64);
                        Ok(())
                    });
                    if let Err(e) = streamed {
                        stop.store(true, Ordering::SeqCst);
                        failed.lock().unwrap().get_or_insert(e);
                        written.wake();
                        break;
                    }
                });
            }
            let hashed = written.hash(file, len, &stop, &check_interrupt);
            stop.store(true, Ordering::SeqCst);
            written.wake();
            hashed
        });
        // A worker's failure is the cause; the hasher only saw that the workers stopped.
        match failed.into_inner().unwrap() {
            Some(e) => Err(e),
            None => hashed,
        }
    }

    /// Fetches `size` bytes of `path` from `start`, handing them to `sink(offset in the
    /// range, bytes)` a chunk at a time. A retry after an answer that broke off asks only
    /// for what is still missing.
    fn fetch_range(
        &self,
        path: &str,
        start: u64,
        size: u64,
        sink: &mut dyn FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let end = start + size - 1;
        let mut got = 0u64;
        let mut chunk = vec![0u8; CHUNK.min(size as usize)];
        let what = format!("download bytes {start}-{end}");
        self.config
            .retry
            .run(|| {
                let from = start + got;
                let mut req = S3Request::new("GET", Some(path));
                req.headers = vec![("range", format!("bytes={from}-{end}"))];
                // The socket's idle timeout (--s3-timeout without a byte) is ureq's; the
                // whole-request limit is kept here, between chunks.
                let deadline = Instant::now() + self.config.timeouts.request;
                let response = self.attempt_stream(&req, &what, RequestTimeout::Idle)?;
                if response.status != 206 && !(response.status == 200 && from == 0) {
                    return Err(Failure::Permanent(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "{what}: expected 206 Partial Content, got {}",
                            response.status
                        ),
                    )));
                }
                let mut body = response.into_reader();
                while got < size {
                    // Fill the chunk before handing it on: one positioned write and one
                    // wake-up of the hasher per chunk, not per socket read.
                    let want = chunk.len().min((size - got) as usize);
                    let mut filled = 0;
                    let mut broke = None;
                    while filled < want {
                        match body.read(&mut chunk[filled..want]) {
                            Ok(0) => {
                                broke = Some(format!(
                                    "the answer ended after {} of {size} bytes",
                                    got + filled as u64
                                ));
                                break;
                            }
                            Ok(n) => filled += n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                broke = Some(format!(
                                    "the answer broke off after {} bytes: {e}",
                                    got + filled as u64
                                ));
                                break;
                            }
                        }
                    }
                    check_interrupt().map_err(Failure::Permanent)?;
                    if filled > 0 {
                        sink(got, &chunk[..filled]).map_err(Failure::Permanent)?;
                        got += filled as u64;
                    }
                    if broke.is_none() && got < size && Instant::now() > deadline {
                        broke = Some(format!(
                            "no complete answer within {} s (--s3-timeout), {got} of {size} \
                             bytes came",
                            self.config.timeouts.request.as_secs_f64()
                        ));
                    }
                    if let Some(why) = broke {
                        return Err(Failure::Transient(Error::new(
                            ErrorKind::Unreachable,
                            format!("{what}: {why}"),
                        )));
                    }
                }
                Ok(())
            })
            .map_err(|gave_up| {
                let suffix = gave_up.suffix();
                gave_up.error.append(&suffix)
            })
    }
}

/// `data` into `buf` at `at`.
fn buf_copy(buf: &mut [u8], at: u64, data: &[u8]) {
    let at = at as usize;
    buf[at..at + data.len()].copy_from_slice(data);
}

fn check_interrupt() -> Result<()> {
    if toolkit::interrupt::is_interrupted() {
        return Err(Error::new(
            ErrorKind::Interrupted,
            "download stopped by a signal",
        ));
    }
    Ok(())
}
