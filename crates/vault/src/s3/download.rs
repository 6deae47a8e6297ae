//! Reading an object: ranged GETs on parallel workers, written to the destination in order.
//!
//! Each range is one request with its own timeout and retries (a multi-GiB object in one
//! request would need an unbounded timeout). Workers stay within a window of ranges ahead
//! of the writer, so memory is bounded even when the destination is slower than the
//! network.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

use toolkit::progress::Progress;

use crate::error::{Error, ErrorKind, Result};

use super::config::MIB;
use super::request::{S3Client, S3Request};

impl S3Client {
    /// Writes bytes `0..len` of `path` to `dst`.
    pub fn get_ranges(
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
        let (tx, rx) = mpsc::channel::<(u64, Result<Vec<u8>>)>();
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
                    let data = self.get_range(path, start, end);
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
                    if toolkit::interrupt::is_interrupted() {
                        return Err(Error::new(
                            ErrorKind::Interrupted,
                            "download stopped by a signal",
                        ));
                    }
                    while let Some(data) = pending.remove(&want) {
                        dst.write_all(&data)
                            .map_err(|e| Error::io("cannot write the download", e))?;
                        progress.inc(data.len() as u64);
                        want += 1;
                        *written.lock().unwrap() = want;
                        advanced.notify_all();
                    }
                }
                dst.flush()
                    .map_err(|e| Error::io("cannot write the download", e))
            })();
            if result.is_err() {
                stop.store(true, Ordering::SeqCst);
                advanced.notify_all();
            }
            drop(rx);
            result
        })
    }

    fn get_range(&self, path: &str, start: u64, end: u64) -> Result<Vec<u8>> {
        let mut req = S3Request::new("GET", Some(path));
        req.headers = vec![("range", format!("bytes={start}-{end}"))];
        let answer = self.call(&req, &format!("download bytes {start}-{end}"))?;
        if answer.body.len() as u64 != end - start + 1 {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "asked for bytes {start}-{end}, got {} bytes",
                    answer.body.len()
                ),
            ));
        }
        Ok(answer.body)
    }
}
