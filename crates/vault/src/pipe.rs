//! A bounded in-memory pipe between a thread that writes a stream and one that reads it:
//! how a download (`Backend::get`, which pushes bytes into a writer) feeds a consumer that
//! pulls them (`age`'s decryptor, another vault's `put`). Memory is a fixed number of
//! chunks in flight, however long the stream.
//!
//! A writer dropped without [`PipeWriter::finish`] (its producer failed) makes the reader
//! fail instead of seeing a clean end, so a cut stream is never mistaken for a short one.
//! A reader dropped early makes the writer fail, so the producer stops.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

/// What one message carries: enough to amortise the channel's cost, small enough that a
/// few in flight cost little memory.
const CHUNK: usize = 1 << 20;

/// Chunks in flight between the two ends (besides the one each end holds).
const IN_FLIGHT: usize = 4;

enum Message {
    Data(Vec<u8>),
    End,
}

/// The writing end.
pub struct PipeWriter {
    tx: Option<SyncSender<Message>>,
    free: Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

/// The reading end.
pub struct PipeReader {
    rx: Receiver<Message>,
    free: Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    ended: bool,
}

/// A new pipe.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = mpsc::sync_channel(IN_FLIGHT);
    let (free_tx, free_rx) = mpsc::channel();
    (
        PipeWriter {
            tx: Some(tx),
            free: free_rx,
            buf: Vec::with_capacity(CHUNK),
        },
        PipeReader {
            rx,
            free: free_tx,
            current: Vec::new(),
            pos: 0,
            ended: false,
        },
    )
}

fn reader_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the reading side stopped")
}

impl PipeWriter {
    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        // A buffer the reader is done with, or a new one while the pool fills.
        let mut next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        next.clear(); // a returned buffer still holds what the reader consumed
        let full = std::mem::replace(&mut self.buf, next);
        let tx = self.tx.as_ref().ok_or_else(reader_gone)?;
        tx.send(Message::Data(full)).map_err(|_| reader_gone())
    }

    /// Ends the stream cleanly: the reader sees its end after the last byte.
    pub fn finish(mut self) -> io::Result<()> {
        self.send_buf()?;
        let tx = self.tx.take().ok_or_else(reader_gone)?;
        tx.send(Message::End).map_err(|_| reader_gone())
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.ended || out.is_empty() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Message::Data(data)) => {
                    let done = std::mem::replace(&mut self.current, data);
                    let _ = self.free.send(done);
                    self.pos = 0;
                }
                Ok(Message::End) => self.ended = true,
                Err(_) => {
                    return Err(io::Error::new(
                        // Not UnexpectedEof: a consumer such as age reads that as a
                        // truncated stream, while this is the producer's failure.
                        io::ErrorKind::ConnectionAborted,
                        "the writing side stopped before the end of the stream",
                    ));
                }
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_a_stream_and_tells_a_cut_from_an_end() {
        // Many times the buffers in flight, so returned buffers are reused.
        let data: Vec<u8> = (0..20_000_000u32).map(|i| (i % 253) as u8).collect();
        // (writer finishes, the reader's outcome)
        for finish in [true, false] {
            let (mut w, mut r) = pipe();
            let got = std::thread::scope(|s| {
                let reader = s.spawn(move || {
                    let mut got = Vec::new();
                    r.read_to_end(&mut got).map(|_| got)
                });
                w.write_all(&data).unwrap();
                if finish {
                    w.finish().unwrap();
                } else {
                    drop(w);
                }
                reader.join().unwrap()
            });
            match got {
                Ok(got) => assert!(finish && got == data, "finish {finish}"),
                Err(e) => assert!(!finish && e.kind() == io::ErrorKind::ConnectionAborted),
            }
        }
    }

    #[test]
    fn a_reader_that_stops_stops_the_writer() {
        let (mut w, r) = pipe();
        drop(r);
        let err = w.write_all(&vec![0; 3 * CHUNK]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
