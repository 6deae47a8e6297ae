//! Writing into local files a piece of at most [`WRITE_SIZE`] at a time.
//!
//! Large writes into the page cache were the dearest part of a download here (ext4 on
//! Linux 6.18, in a VM that hands freed memory back to its host). vault-get's four workers
//! wrote 1 GiB in 1 MiB `pwrite`s with 2.6 s of system time, against 0.8 s in 64 KiB
//! pieces, and 32 KiB ones took 0.87x the time of 64 KiB: a profile of the 1 MiB writes
//! showed the copy into the page cache at 35 % of the samples and the other workers
//! spinning on the file's lock at 12 % while one copied (17 % and 3 % at 32 KiB). One writer
//! shows it too: `dd` of 1 GiB in 1 MiB blocks took 0.31–1.62 s (median 0.75), in 32 KiB
//! blocks 0.43–0.74 s (median 0.46). 16 KiB pieces were no faster than 32 KiB; s5cmd
//! writes 32 KiB too. The system calls this adds (32 per MiB) cost far less than that.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// The most one write into a local file carries.
pub const WRITE_SIZE: usize = 32 * 1024;

/// `file.write_all_at(data, offset)`, a piece of at most [`WRITE_SIZE`] at a time.
pub fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    let mut at = offset;
    for piece in data.chunks(WRITE_SIZE) {
        file.write_all_at(piece, at)?;
        at += piece.len() as u64;
    }
    Ok(())
}

/// A writer that hands `W` at most [`WRITE_SIZE`] bytes per write. Put it under a
/// `BufWriter` of the same size: the buffer gathers small writes, and a large one (which a
/// `BufWriter` passes through whole) is cut here.
#[derive(Debug)]
pub struct SmallWrites<W>(W);

impl<W: Write> SmallWrites<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> SmallWrites<W> {
        SmallWrites(inner)
    }

    /// The writer inside.
    pub fn into_inner(self) -> W {
        self.0
    }
}

impl<W: Write> Write for SmallWrites<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(&buf[..buf.len().min(WRITE_SIZE)])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A buffered writer into `file` whose writes are at most [`WRITE_SIZE`].
pub fn buffered<W: Write>(file: W) -> io::BufWriter<SmallWrites<W>> {
    io::BufWriter::with_capacity(WRITE_SIZE, SmallWrites::new(file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    /// Records the size of every write it is given.
    #[derive(Debug)]
    struct Sizes(Vec<usize>);

    impl Write for Sizes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.push(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn a_large_write_through_a_buffer_reaches_the_writer_in_pieces() {
        let mut out = io::BufWriter::with_capacity(WRITE_SIZE, SmallWrites::new(Sizes(vec![])));
        out.write_all(&[7; 3 * WRITE_SIZE + 5]).unwrap();
        out.write_all(&[1; 10]).unwrap();
        let sizes = out.into_inner().unwrap().into_inner().0;
        assert!(sizes.iter().all(|&n| n <= WRITE_SIZE), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 3 * WRITE_SIZE + 15);
    }

    #[test]
    fn buffered_writes_every_byte_in_order() {
        let data = sample(5 * WRITE_SIZE + 123);
        let mut file = tempfile::tempfile().unwrap();
        let mut out = buffered(file.try_clone().unwrap());
        out.write_all(&data[..100]).unwrap();
        out.write_all(&data[100..]).unwrap();
        out.into_inner().unwrap();
        let mut back = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn write_all_at_places_every_piece_at_its_offset() {
        let data = sample(2 * WRITE_SIZE + 7);
        let file = tempfile::tempfile().unwrap();
        write_all_at(&file, &data, 11).unwrap();
        write_all_at(&file, b"head", 0).unwrap();
        let mut back = vec![0; 11 + data.len()];
        file.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(&back[..4], b"head");
        assert_eq!(&back[11..], &data[..]);
    }
}
