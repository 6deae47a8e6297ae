//! The table data of a dump, as `pg_restore -f -` writes it (a script: session settings,
//! then per table a `COPY ... FROM stdin;`, its rows and `\.`), dealt out to several COPY
//! connections in batches of whole rows.
//!
//! The script is read as it streams ([`Dealer`] is the `Write` its bytes go to), so memory
//! is a few batches per connection, however large the tables. One pg_restore writes every
//! table's data: a process per table would cost more than the rows of a small one (2000
//! tables of 10 rows took 67 s that way, against 3.5 s for `pg_restore -j4`). Only what
//! pg_restore writes for table data is accepted outside the rows: comments, `SET`,
//! `set_config`, psql's `\restrict` guard and the `COPY` lines. Anything else (a dump made
//! with `--inserts`, a client encoding other than UTF-8) found before the first COPY is
//! [`NotPlainCopy`]: no row was sent, and the caller restores the data with pg_restore.
//! Found later, it is an error.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use crate::error::Error;

/// Rows go out in batches of about this size: large enough that a batch is one cheap
/// message, small enough that the batches in flight stay a few MiB.
const BATCH: usize = 256 * 1024;

/// How long a line outside the rows may be (they are short SQL statements).
const MAX_STATEMENT: usize = 64 * 1024;

/// What a connection runs before a table's rows: the script's settings so far and the
/// table's COPY.
#[derive(Debug)]
pub(crate) struct Header {
    /// The `SET` and `set_config` statements, as the script has them.
    pub settings: String,
    /// `COPY table (columns) FROM stdin`.
    pub copy: String,
    /// The table, as the COPY names it, for messages.
    pub table: String,
}

/// A batch of whole rows, with the header of the table they belong to.
pub(crate) struct Batch {
    pub header: Arc<Header>,
    pub rows: Vec<u8>,
}

/// The script is not settings and plain COPYs (the data is restored by pg_restore).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct NotPlainCopy(pub String);

enum State {
    /// Outside the rows: statements.
    Statements,
    /// A table's rows.
    Rows(Arc<Header>),
}

/// The `Write` the data script streams into.
pub(crate) struct Dealer {
    state: State,
    /// The settings seen so far: they hold for the rest of pg_restore's session, so for
    /// every table after them.
    settings: String,
    /// COPY lines seen.
    copies: usize,
    /// Bytes not yet consumed: a statement line without its end, or (in the rows) the
    /// start of a line too short to tell whether it is `\.`.
    carry: Vec<u8>,
    /// In the rows: whether the next byte starts a line.
    line_start: bool,
    batch: Vec<u8>,
    to: Vec<SyncSender<Batch>>,
    next: usize,
}

impl Dealer {
    /// A dealer sending batches to `to`, in turn.
    pub fn new(to: Vec<SyncSender<Batch>>) -> Dealer {
        Dealer {
            state: State::Statements,
            settings: String::new(),
            copies: 0,
            carry: Vec::new(),
            line_start: true,
            batch: Vec::new(),
            to,
            next: 0,
        }
    }

    /// The tables whose rows came to their end (`\.`): only theirs were all sent.
    pub fn finished(&self) -> usize {
        match self.state {
            State::Statements => self.copies,
            State::Rows(_) => self.copies - 1,
        }
    }

    fn consume(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            if let State::Rows(_) = self.state {
                buf = self.rows(buf)?;
                continue;
            }
            let Some(end) = memchr::memchr(b'\n', buf) else {
                if buf.len() > MAX_STATEMENT {
                    return Err(self.refuse("a line of more than 64 KiB outside the rows"));
                }
                self.carry.extend_from_slice(buf);
                return Ok(());
            };
            let Ok(line) = std::str::from_utf8(&buf[..end]) else {
                return Err(self.refuse("a line outside the rows that is not UTF-8"));
            };
            self.statement(line.trim_end_matches('\r'))?;
            buf = &buf[end + 1..];
        }
        Ok(())
    }

    /// What is not settings and COPYs: before the first COPY nothing was sent, so
    /// pg_restore can restore the data instead; after it, a statement would have to run
    /// among rows already sent, so it is refused, not dropped.
    fn refuse(&self, why: impl Into<String>) -> io::Error {
        let why = why.into();
        match self.copies {
            0 => io::Error::other(NotPlainCopy(why)),
            _ => io::Error::other(format!(
                "pg_restore wrote what a COPY connection cannot run, after rows were sent: {why}"
            )),
        }
    }

    /// One line outside the rows.
    fn statement(&mut self, line: &str) -> io::Result<()> {
        if line.is_empty()
            || line.starts_with("--")
            || line.starts_with("\\restrict ")
            || line.starts_with("\\unrestrict ")
        {
            return Ok(());
        }
        if line.starts_with("SET client_encoding") && line != "SET client_encoding = 'UTF8';" {
            return Err(self.refuse(format!("the dump's {}", shorten(line))));
        }
        if (line.starts_with("SET ") || line.starts_with("SELECT pg_catalog.set_config("))
            && line.ends_with(';')
        {
            self.settings.push_str(line);
            self.settings.push('\n');
            return Ok(());
        }
        if let Some(copy) = line
            .strip_prefix("COPY ")
            .and_then(|rest| rest.strip_suffix(" FROM stdin;"))
        {
            let table = copy.split(" (").next().unwrap_or(copy).to_owned();
            let header = Header {
                settings: self.settings.clone(),
                copy: format!("COPY {copy} FROM stdin"),
                table,
            };
            self.state = State::Rows(Arc::new(header));
            self.copies += 1;
            self.line_start = true;
            return Ok(());
        }
        Err(self.refuse(format!("a statement that is not COPY: {}", shorten(line))))
    }

    /// Rows from `buf` into the batch, up to `\.`; returns what follows it.
    fn rows<'b>(&mut self, buf: &'b [u8]) -> io::Result<&'b [u8]> {
        let mut at = 0;
        loop {
            if self.line_start {
                let rest = &buf[at..];
                // `\.` at the start of a line ends the rows: in COPY's text format a
                // backslash in the data is always written `\\`, so no row starts so.
                if rest.len() < 2 && rest.first().is_none_or(|&b| b == b'\\') {
                    self.batch.extend_from_slice(&buf[..at]);
                    self.carry.extend_from_slice(rest);
                    return Ok(&[]);
                }
                if rest.starts_with(b"\\.") {
                    self.batch.extend_from_slice(&buf[..at]);
                    self.send()?;
                    self.state = State::Statements;
                    // The terminator's line is a statement line of its own: `\.`.
                    let after = memchr::memchr(b'\n', rest).map_or(&[][..], |i| &rest[i + 1..]);
                    return Ok(after);
                }
            }
            match memchr::memchr(b'\n', &buf[at..]) {
                Some(i) => {
                    at += i + 1;
                    self.line_start = true;
                    if self.batch.len() + at >= BATCH {
                        self.batch.extend_from_slice(&buf[..at]);
                        self.send()?;
                        return Ok(&buf[at..]);
                    }
                }
                None => {
                    self.batch.extend_from_slice(buf);
                    self.line_start = false;
                    return Ok(&[]);
                }
            }
        }
    }

    /// The batch to the next connection in turn (it waits while that one is busy).
    fn send(&mut self) -> io::Result<()> {
        let State::Rows(header) = &self.state else {
            unreachable!("rows are sent only in the rows")
        };
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = Batch {
            header: header.clone(),
            rows: std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH + BATCH / 4)),
        };
        let to = &self.to[self.next % self.to.len()];
        self.next += 1;
        to.send(batch)
            .map_err(|_| io::Error::other("a COPY connection stopped"))
    }
}

impl Write for Dealer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.carry.is_empty() {
            self.consume(buf)?;
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(buf);
            self.consume(&joined)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The start of a line, for a message.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// One connection's share: for each run of batches of one table, the table's header, then
/// a COPY of the batches. A COPY is committed when the next batch is another table's, and
/// the last one only when `complete` is set once the senders are gone; otherwise it is
/// abandoned (the server rolls it back; the caller drops the database anyway). Returns the
/// rows it copied.
pub(crate) fn copy_batches(
    client: &mut postgres::Client,
    batches: Receiver<Batch>,
    complete: &AtomicBool,
) -> Result<u64, Error> {
    let mut batches = batches.into_iter().peekable();
    let mut copied = 0;
    while let Some(first) = batches.next() {
        let header = first.header;
        let table = &header.table;
        client
            .batch_execute(&header.settings)
            .map_err(Error::query(format!("cannot prepare the COPY of {table}")))?;
        let mut writer = client
            .copy_in(header.copy.as_str())
            .map_err(Error::query(format!("cannot start the COPY of {table}")))?;
        let sent = |e: io::Error| Error::Io {
            what: format!("cannot send the rows of {table} to PostgreSQL"),
            source: e,
        };
        writer.write_all(&first.rows).map_err(sent)?;
        while let Some(batch) = batches.next_if(|b| Arc::ptr_eq(&b.header, &header)) {
            writer.write_all(&batch.rows).map_err(sent)?;
        }
        // Waits for the next batch or the end: only then is it known which this is.
        if batches.peek().is_none() && !complete.load(Ordering::SeqCst) {
            return Ok(copied); // dropped unfinished: the COPY fails, nothing of it stays
        }
        copied += writer
            .finish()
            .map_err(Error::query(format!("cannot restore the rows of {table}")))?;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    const SCRIPT: &str = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\nSET statement_timeout = 0;\nSET client_encoding = 'UTF8';\nSELECT pg_catalog.set_config('search_path', '', false);\n\n--\n-- Data for Name: t\n--\n\nCOPY public.t (id, body) FROM stdin;\n1\tone\n2\ttwo \\\\. x\n3\t\\N\n\\.\n\n\n\\unrestrict abc\n\n";

    /// Feeds `script` in pieces of `piece` bytes to a dealer over `n` channels; returns
    /// what writing gave, the tables finished and what each channel received.
    fn deal(script: &[u8], piece: usize, n: usize) -> (io::Result<()>, usize, Vec<Vec<Batch>>) {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| sync_channel(1000)).unzip();
        let mut dealer = Dealer::new(senders);
        let written = script.chunks(piece).try_for_each(|p| dealer.write_all(p));
        let finished = dealer.finished();
        drop(dealer);
        let got = receivers
            .into_iter()
            .map(|r| r.into_iter().collect())
            .collect();
        (written, finished, got)
    }

    fn rows(got: &[Vec<Batch>]) -> Vec<u8> {
        got.iter().flatten().flat_map(|b| b.rows.clone()).collect()
    }

    #[test]
    fn the_rows_of_a_script_reach_the_connections_whole_however_the_bytes_arrive() {
        for piece in [1, 2, 3, 7, 64, 4096] {
            let (written, finished, got) = deal(SCRIPT.as_bytes(), piece, 3);
            written.unwrap();
            assert_eq!(finished, 1, "piece {piece}");
            assert_eq!(
                rows(&got),
                b"1\tone\n2\ttwo \\\\. x\n3\t\\N\n",
                "piece {piece}"
            );
            let header = &got.iter().flatten().next().unwrap().header;
            assert_eq!(header.copy, "COPY public.t (id, body) FROM stdin");
            assert_eq!(
                header.settings,
                "SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\n\
                 SELECT pg_catalog.set_config('search_path', '', false);\n"
            );
        }
    }

    #[test]
    fn large_tables_are_dealt_in_turn_in_batches_that_end_at_a_row() {
        let row = format!("{}\n", "x".repeat(999));
        let script = format!("COPY t (a) FROM stdin;\n{}\\.\n", row.repeat(1000));
        let (written, finished, got) = deal(script.as_bytes(), 65536, 2);
        written.unwrap();
        assert_eq!(finished, 1);
        assert_eq!(rows(&got), row.repeat(1000).as_bytes());
        assert!(
            got.iter().all(|batches| !batches.is_empty()),
            "both connections got rows"
        );
        for batch in got.iter().flatten() {
            assert!(batch.rows.ends_with(b"\n") && batch.rows.len() % 1000 == 0);
        }
    }

    #[test]
    fn an_empty_table_sends_nothing_and_is_complete() {
        let (written, finished, got) = deal(b"COPY t (a) FROM stdin;\n\\.\n", 1, 2);
        written.unwrap();
        assert_eq!(finished, 1);
        assert!(got.iter().all(Vec::is_empty));
    }

    #[test]
    fn a_script_cut_short_is_not_complete() {
        let (written, finished, _) = deal(b"COPY t (a) FROM stdin;\n1\n2\n", 4096, 2);
        written.unwrap();
        assert_eq!(finished, 0);
    }

    #[test]
    fn what_is_not_settings_and_a_copy_is_left_to_pg_restore_before_any_row_is_sent() {
        for script in [
            "SET x = 1;\nINSERT INTO t VALUES (1);\n",
            "SET client_encoding = 'LATIN1';\nCOPY t (a) FROM stdin;\n1\n\\.\n",
            "SET x = 1\nCOPY t (a) FROM stdin;\n1\n\\.\n",
        ] {
            let (written, finished, got) = deal(script.as_bytes(), 5, 2);
            let e = written.unwrap_err();
            assert!(
                e.get_ref().is_some_and(|e| e.is::<NotPlainCopy>()),
                "{script:?}: {e}"
            );
            assert_eq!(finished, 0);
            assert!(got.iter().all(Vec::is_empty), "{script:?}");
        }
    }

    #[test]
    fn a_statement_after_the_rows_is_an_error_not_dropped() {
        let (written, _, _) = deal(b"COPY t (a) FROM stdin;\n1\n\\.\nDROP TABLE t;\n", 4096, 1);
        let e = written.unwrap_err();
        assert!(
            e.to_string()
                .contains("after rows were sent: a statement that is not COPY: DROP TABLE t;"),
            "{e}"
        );
        assert!(!e.get_ref().is_some_and(|e| e.is::<NotPlainCopy>()));
    }

    #[test]
    fn every_table_of_one_script_gets_its_own_header_with_the_settings_so_far() {
        let script = "SET a = 1;\nCOPY public.one (x) FROM stdin;\n1\n2\n\\.\n\n--\n-- Data for Name: two\n--\n\nSET b = 2;\nCOPY \"Two\" (\"y z\") FROM stdin;\n3\n\\.\n\nCOPY three (w) FROM stdin;\n\\.\n";
        for piece in [1, 3, 4096] {
            let (written, finished, got) = deal(script.as_bytes(), piece, 2);
            written.unwrap();
            assert_eq!(finished, 3, "piece {piece}");
            let batches: Vec<_> = got.iter().flatten().collect();
            let seen: Vec<_> = batches
                .iter()
                .map(|b| {
                    (
                        b.header.table.as_str(),
                        b.header.settings.as_str(),
                        &b.rows[..],
                    )
                })
                .collect();
            assert!(
                seen.contains(&("public.one", "SET a = 1;\n", &b"1\n2\n"[..])),
                "{piece}"
            );
            assert!(seen.contains(&("\"Two\"", "SET a = 1;\nSET b = 2;\n", &b"3\n"[..])));
            assert_eq!(batches.len(), 2, "the empty table sends nothing");
        }
    }
}
