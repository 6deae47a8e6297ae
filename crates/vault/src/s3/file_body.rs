//! The body of a PUT streamed from a file: read with positioned reads from the file's
//! start, so that every attempt of a retried request sends the whole file again, and the
//! file's own cursor (shared with whoever opened it) is never moved.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

use toolkit::progress::Progress;

/// A file and the progress of sending it, kept across attempts.
pub(crate) struct FileBody<'a> {
    pub file: &'a File,
    pub len: u64,
    pub progress: &'a dyn Progress,
    /// The furthest any attempt got: a retry reports only bytes beyond it, so the progress
    /// counter does not run past the file's size.
    reported: AtomicU64,
}

impl<'a> FileBody<'a> {
    pub fn new(file: &'a File, len: u64, progress: &'a dyn Progress) -> Self {
        FileBody {
            file,
            len,
            progress,
            reported: AtomicU64::new(0),
        }
    }

    /// A reader of the whole body, from its first byte.
    pub fn reader(&self) -> FileBodyReader<'_> {
        FileBodyReader { body: self, at: 0 }
    }
}

/// One attempt's pass over a [`FileBody`].
pub(crate) struct FileBodyReader<'a> {
    body: &'a FileBody<'a>,
    at: u64,
}

impl Read for FileBodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A signal stops the upload between reads; the transport turns the error into a
        // failed request, and the retry policy does not retry after a signal.
        toolkit::interrupt::check()?;
        let left = self.body.len - self.at;
        let want = buf.len().min(left as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.body.file.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the file ended after {} of {} bytes: it was truncated while it was sent",
                    self.at, self.body.len
                ),
            ));
        }
        self.at += n as u64;
        let before = self.body.reported.fetch_max(self.at, Ordering::Relaxed);
        if self.at > before {
            self.body.progress.inc(self.at - before);
        }
        Ok(n)
    }
}
