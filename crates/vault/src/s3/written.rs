//! The SHA-256 of a file that parallel workers write out of order, computed in order as the
//! written prefix grows.
//!
//! Each worker writes its chunk into the file (the file is the copy that counts) and then
//! hands it to [`Written::wrote`], which keeps a copy in one of a few reused buffers when one
//! is free. The hasher takes those copies while they are still in memory and reads back
//! from the file only what was not kept. Reading back the pages at the hashed prefix while
//! the workers were still writing beside them cost nearly what hashing did (for 1 GiB on
//! SeaweedFS sharing two cores, 0.5-0.8 of vault-get's 2.5-2.9 client CPU-seconds); copying
//! a chunk the worker has just received costs a small part of that. What is still read back
//! was mostly written a range earlier and is cheap to read: making the workers wait for the
//! hash so that nothing is read back gained no time, so they do not wait.
//!
//! When every buffer is taken, a chunk nearer the hashed prefix takes the buffer of the one
//! farthest from it (which is then read back): the chunks needed next are the ones kept.
//! Memory is the buffers, whatever the file's size.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use manifest::sha256::Hasher;
use manifest::Sha256;

use crate::error::{Error, ErrorKind, Result};

/// How far each range of a download has been written, and copies of written chunks not yet
/// hashed; shared by the workers (who advance it) and the hasher (who waits on it).
pub(super) struct Written {
    /// Every range is this long, but the last.
    range: u64,
    /// The largest chunk a worker hands over (what a kept copy's buffer holds).
    chunk: usize,
    state: Mutex<State>,
    advanced: Condvar,
}

struct State {
    /// Bytes written from the start of each range.
    done: Vec<u64>,
    /// Copies of written chunks, by their offset in the file.
    kept: BTreeMap<u64, Vec<u8>>,
    /// Buffers free for the next copy.
    spare: Vec<Vec<u8>>,
    /// Buffers that may still be allocated (they are allocated when first needed, so a
    /// small file does not cost the whole pool).
    unallocated: usize,
    /// Bytes the hasher read back from the file (what the tests check).
    read_back: u64,
}

impl Written {
    /// A download of `count` ranges of `range` bytes, in chunks of up to `chunk` bytes, that
    /// keeps copies in up to `buffers` buffers.
    pub(super) fn new(count: usize, range: u64, chunk: usize, buffers: usize) -> Written {
        Written {
            range,
            chunk,
            state: Mutex::new(State {
                done: vec![0; count],
                kept: BTreeMap::new(),
                spare: Vec::new(),
                unallocated: buffers,
                read_back: 0,
            }),
            advanced: Condvar::new(),
        }
    }

    /// Says that `data` has been written into the file at `offset` (within one range, right
    /// after what that range had written so far).
    pub(super) fn wrote(&self, offset: u64, data: &[u8]) {
        let index = (offset / self.range) as usize;
        let mut state = self.state.lock().unwrap();
        if data.len() <= self.chunk {
            if let Some(mut buffer) = state.buffer_for(offset, self.chunk) {
                buffer.clear();
                buffer.extend_from_slice(data);
                state.kept.insert(offset, buffer);
            }
        }
        state.done[index] = offset + data.len() as u64 - index as u64 * self.range;
        drop(state);
        self.advanced.notify_all();
    }

    /// Wakes the hasher (a worker stopped).
    pub(super) fn wake(&self) {
        self.advanced.notify_all();
    }

    /// Hashes bytes `0..len` of `file` in order, from the kept copies or read back, waiting
    /// for the workers to write them, until all are hashed or `stop` is set.
    /// `check_interrupt` is called while waiting.
    pub(super) fn hash(
        &self,
        file: &File,
        len: u64,
        stop: &AtomicBool,
        check_interrupt: &dyn Fn() -> Result<()>,
    ) -> Result<Sha256> {
        let mut hasher = Hasher::new();
        // Allocated at the first read-back: a download that needs none does not pay for it.
        let mut buf = Vec::new();
        let mut hashed = 0u64;
        while hashed < len {
            match self.next(hashed, stop, check_interrupt)? {
                Next::Kept(copy) => {
                    hasher.update(&copy);
                    hashed += copy.len() as u64;
                    self.state.lock().unwrap().spare.push(copy);
                }
                Next::ReadBack(end) => {
                    if buf.is_empty() {
                        buf = vec![0; self.chunk];
                    }
                    let mut at = hashed;
                    while at < end {
                        let n = ((end - at) as usize).min(buf.len());
                        file.read_exact_at(&mut buf[..n], at).map_err(|e| {
                            Error::io("cannot read the download back to hash it", e)
                        })?;
                        hasher.update(&buf[..n]);
                        at += n as u64;
                    }
                    self.state.lock().unwrap().read_back += end - hashed;
                    hashed = end;
                }
            }
        }
        Ok(hasher.finish().1)
    }

    /// Bytes the hasher has read back from the file so far.
    #[cfg(test)]
    fn read_back(&self) -> u64 {
        self.state.lock().unwrap().read_back
    }

    /// What to hash from `hashed` on: a kept copy that starts there, or the written bytes
    /// up to the next kept copy; waits until there is one or the other.
    fn next(
        &self,
        hashed: u64,
        stop: &AtomicBool,
        check_interrupt: &dyn Fn() -> Result<()>,
    ) -> Result<Next> {
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(copy) = state.kept.remove(&hashed) {
                return Ok(Next::Kept(copy));
            }
            let index = (hashed / self.range) as usize;
            let written_to = index as u64 * self.range + state.done[index];
            if written_to > hashed {
                let next_kept = state.kept.range(hashed..).next().map(|(&at, _)| at);
                return Ok(Next::ReadBack(
                    next_kept.map_or(written_to, |at| at.min(written_to)),
                ));
            }
            if stop.load(Ordering::SeqCst) {
                // A worker failed; its error is the one reported.
                return Err(Error::new(ErrorKind::Interrupted, "download stopped"));
            }
            check_interrupt()?;
            state = self
                .advanced
                .wait_timeout(state, Duration::from_millis(200))
                .unwrap()
                .0;
        }
    }
}

enum Next {
    Kept(Vec<u8>),
    ReadBack(u64),
}

impl State {
    /// A buffer for a copy of the chunk at `offset`: a spare one, a new one while the pool
    /// allows, or the one of the kept chunk farthest ahead if that is farther than this.
    fn buffer_for(&mut self, offset: u64, chunk: usize) -> Option<Vec<u8>> {
        if let Some(buffer) = self.spare.pop() {
            return Some(buffer);
        }
        if self.unallocated > 0 {
            self.unallocated -= 1;
            return Some(Vec::with_capacity(chunk));
        }
        let (&farthest, _) = self.kept.last_key_value()?;
        (farthest > offset).then(|| self.kept.remove(&farthest).expect("just seen"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Writes `data` into a file in `range`s, by `workers` threads that take ranges in turn
    /// and write each in `chunk`s, while `written` hashes it; returns the SHA-256 and the
    /// bytes read back.
    fn download(
        data: &[u8],
        range: usize,
        chunk: usize,
        workers: usize,
        buffers: usize,
    ) -> (Sha256, u64) {
        let file = tempfile::tempfile().unwrap();
        let count = data.len().div_ceil(range);
        let written = Written::new(count, range as u64, chunk, buffers);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let sha = std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let index = next.fetch_add(1, Ordering::SeqCst);
                    if index >= count {
                        break;
                    }
                    let start = index * range;
                    let end = (start + range).min(data.len());
                    for at in (start..end).step_by(chunk) {
                        let piece = &data[at..(at + chunk).min(end)];
                        file.write_all_at(piece, at as u64).unwrap();
                        written.wrote(at as u64, piece);
                        std::thread::yield_now();
                    }
                });
            }
            written
                .hash(&file, data.len() as u64, &stop, &|| Ok(()))
                .unwrap()
        });
        (sha, written.read_back())
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7919 % 251) as u8).collect()
    }

    #[test]
    fn hashes_in_order_whatever_is_kept() {
        // (length, range, chunk, workers, buffers): one case a line.
        let cases = [
            (0, 64, 16, 2, 4),
            (1, 64, 16, 2, 4),
            (1000, 64, 16, 1, 0),
            (1000, 64, 16, 4, 0),
            (1000, 64, 16, 4, 1),
            (1000, 64, 16, 4, 3),
            (1000, 64, 16, 3, 100),
            (4096, 1024, 100, 4, 8),
            (100_000, 4096, 1000, 4, 6),
        ];
        for (len, range, chunk, workers, buffers) in cases {
            let data = sample(len);
            let (sha, _) = download(&data, range, chunk, workers, buffers);
            assert_eq!(
                sha,
                Sha256::of(&data),
                "case {:?}",
                (len, range, chunk, workers, buffers)
            );
        }
    }

    #[test]
    fn enough_buffers_mean_nothing_is_read_back() {
        let data = sample(10_000);
        let (_, read_back) = download(&data, 1000, 100, 4, 100);
        assert_eq!(read_back, 0);
    }

    #[test]
    fn without_buffers_everything_is_read_back() {
        let data = sample(10_000);
        let (sha, read_back) = download(&data, 1000, 100, 4, 0);
        assert_eq!(sha, Sha256::of(&data));
        assert_eq!(read_back, 10_000);
    }

    #[test]
    fn the_chunk_nearest_the_hashed_prefix_takes_a_full_pool_buffer() {
        let mut state = State {
            done: vec![0; 4],
            kept: BTreeMap::from([(300, vec![3]), (100, vec![1])]),
            spare: Vec::new(),
            unallocated: 0,
            read_back: 0,
        };
        // Nearer than the farthest kept (300): it takes that one's buffer.
        assert_eq!(state.buffer_for(200, 10), Some(vec![3]));
        assert!(!state.kept.contains_key(&300));
        // Farther than every kept chunk: nothing to take, it will be read back.
        assert_eq!(state.buffer_for(400, 10), None);
        assert_eq!(state.kept.len(), 1);
    }

    #[test]
    fn a_stop_ends_the_wait_with_an_error() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"abc").unwrap();
        let written = Written::new(1, 10, 10, 2);
        written.wrote(0, b"abc");
        let stop = AtomicBool::new(true);
        let err = written.hash(&file, 10, &stop, &|| Ok(())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Interrupted);
    }
}
