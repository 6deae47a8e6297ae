//! Reading and writing JSON lines: manifests between tools (NDJSON on stdin/stdout), and
//! any other one-record-a-line stream (the online Neo4j export is JSON lines too).
//!
//! Lines are read with a cap ([`MAX_LINE`]): a line is held whole in memory, so an endless
//! or 50 MB line is refused by number instead of being read into RAM.

use std::io::{self, BufRead, Read, Write};
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::record::{Manifest, SCHEMA};

/// The longest line read, in bytes: far above any real manifest (a PostgreSQL fingerprint
/// of 100 000 tables is ~4 MiB), and the same cap the vault puts on a sidecar manifest.
pub const MAX_LINE: usize = 16 << 20;

/// A line that is not a valid record, or input that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The line is not a valid record.
    #[error("{source_name} line {line}: {message}")]
    Malformed {
        /// Where the line came from (`stdin` or a file name).
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// Reading failed.
    #[error("cannot read {source_name}: {source}")]
    Io {
        /// Where reading failed.
        source_name: String,
        /// The I/O error.
        source: io::Error,
    },
}

/// Lines of text with their numbers, each at most [`MAX_LINE`] bytes. Blank lines are
/// skipped. After an error the reader ends.
struct Lines<R> {
    input: R,
    source_name: String,
    line: usize,
    buf: String,
    done: bool,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R, source_name: String) -> Self {
        Lines {
            input,
            source_name,
            line: 0,
            buf: String::new(),
            done: false,
        }
    }

    fn malformed(&self, message: String) -> ReadError {
        ReadError::Malformed {
            source_name: self.source_name.clone(),
            line: self.line,
            message,
        }
    }

    /// The next non-blank line, trimmed.
    fn next_line(&mut self) -> Option<Result<&str, ReadError>> {
        if self.done {
            return None;
        }
        loop {
            self.buf.clear();
            self.line += 1;
            let read = (&mut self.input)
                .take(MAX_LINE as u64 + 1)
                .read_line(&mut self.buf);
            match read {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(n) if n > MAX_LINE && !self.buf.ends_with('\n') => {
                    self.done = true;
                    let message = format!("longer than {} MiB: not a record", MAX_LINE >> 20);
                    return Some(Err(self.malformed(message)));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.done = true;
                    return Some(Err(self.malformed("not UTF-8 text".into())));
                }
                Err(source) => {
                    self.done = true;
                    return Some(Err(ReadError::Io {
                        source_name: self.source_name.clone(),
                        source,
                    }));
                }
            }
            if !self.buf.trim().is_empty() {
                return Some(Ok(self.buf.trim()));
            }
        }
    }
}

/// Reads manifests line by line. Blank lines are skipped; any other line must be a
/// `stackvault.manifest/1` object, or the error names its line number.
pub struct NdjsonReader<R> {
    lines: Lines<R>,
}

impl<R: BufRead> NdjsonReader<R> {
    /// Reads from `input`; `source_name` appears in errors (`stdin`, a path).
    pub fn new(input: R, source_name: impl Into<String>) -> Self {
        NdjsonReader {
            lines: Lines::new(input, source_name.into()),
        }
    }
}

/// Parses one manifest line (without its newline).
pub fn parse_line(text: &str) -> Result<Manifest, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA) => {}
        Some(other) => {
            return Err(format!(
                "schema {other:?} is not supported (this version reads {SCHEMA:?})"
            ))
        }
        None if value.is_object() => return Err("not a manifest: no \"schema\" field".into()),
        None => return Err("not a manifest: expected a JSON object".into()),
    }
    serde_json::from_value(value).map_err(|e| format!("invalid manifest: {e}"))
}

impl<R: BufRead> Iterator for NdjsonReader<R> {
    type Item = Result<Manifest, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let parsed = match self.lines.next_line()? {
            Ok(text) => parse_line(text),
            Err(e) => return Some(Err(e)),
        };
        Some(parsed.map_err(|m| {
            self.lines.done = true;
            self.lines.malformed(m)
        }))
    }
}

/// Reads records of any type `T`, one JSON object a line, with the same line numbers and
/// cap as manifests.
pub struct JsonLinesReader<R, T> {
    lines: Lines<R>,
    record: PhantomData<fn() -> T>,
}

impl<R: BufRead, T: DeserializeOwned> JsonLinesReader<R, T> {
    /// Reads from `input`; `source_name` appears in errors.
    pub fn new(input: R, source_name: impl Into<String>) -> Self {
        JsonLinesReader {
            lines: Lines::new(input, source_name.into()),
            record: PhantomData,
        }
    }
}

impl<R: BufRead, T: DeserializeOwned> Iterator for JsonLinesReader<R, T> {
    type Item = Result<T, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let parsed = match self.lines.next_line()? {
            Ok(text) => serde_json::from_str(text).map_err(|e| e.to_string()),
            Err(e) => return Some(Err(e)),
        };
        Some(parsed.map_err(|m| {
            self.lines.done = true;
            self.lines.malformed(m)
        }))
    }
}

/// Writes records of any type, one JSON line each. Buffering is the caller's (wrap a file
/// in a `BufWriter`); [`JsonLinesWriter::flush`] at the end.
pub struct JsonLinesWriter<W> {
    output: W,
    line: Vec<u8>,
}

impl<W: Write> JsonLinesWriter<W> {
    /// Writes to `output`.
    pub fn new(output: W) -> Self {
        JsonLinesWriter {
            output,
            line: Vec::new(),
        }
    }

    /// Writes one record and its newline.
    pub fn write<T: Serialize + ?Sized>(&mut self, record: &T) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(io::Error::other)?;
        self.line.push(b'\n');
        self.output.write_all(&self.line)
    }

    /// Flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }

    /// The output, for the caller to finish (fsync, rename).
    pub fn into_inner(self) -> W {
        self.output
    }
}

/// Writes manifests, one line each, flushed at once so the next tool in a pipeline can
/// start on a record while this one works on the next.
pub struct NdjsonWriter<W> {
    lines: JsonLinesWriter<W>,
}

impl<W: Write> NdjsonWriter<W> {
    /// Writes to `output`.
    pub fn new(output: W) -> Self {
        NdjsonWriter {
            lines: JsonLinesWriter::new(output),
        }
    }

    /// Writes and flushes one record.
    pub fn write(&mut self, manifest: &Manifest) -> io::Result<()> {
        self.lines.write(manifest)?;
        self.lines.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"schema":"stackvault.manifest/1","id":"qdrant_docs_20250130_020000","kind":"qdrant","created_at":"2025-01-30T02:00:00Z","status":"ok"}"#;

    #[test]
    fn names_the_bad_line() {
        let input = format!("{OK}\n\n{{not json\n{OK}\n");
        let results: Vec<_> = NdjsonReader::new(input.as_bytes(), "stdin").collect();
        assert!(results[0].is_ok());
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(err.starts_with("stdin line 3: not JSON"), "{err}");
        assert_eq!(results.len(), 2, "reading stops at the first bad line");
    }

    #[test]
    fn table_of_rejected_lines() {
        let cases = [
            ("[1,2]", "expected a JSON object"),
            ("{\"id\":\"x\"}", "no \"schema\" field"),
            ("{\"schema\":\"stackvault.manifest/2\"}", "not supported"),
            (
                "{\"schema\":\"stackvault.manifest/1\",\"id\":\"qdrant_docs_20250130_020000\"}",
                "missing field `kind`",
            ),
            (&OK.replace("\"ok\"", "\"MAYBE\""), "invalid status"),
            (
                &OK.replace("2025-01-30T02:00:00Z", "yesterday"),
                "invalid timestamp",
            ),
            (&OK.replace("qdrant_docs", "p1"), "invalid id"),
        ];
        for (line, want) in cases {
            let err = parse_line(line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn an_overlong_line_is_refused_by_number_without_reading_it_all() {
        let mut input = format!("{OK}\n").into_bytes();
        input.extend(std::iter::repeat_n(b' ', MAX_LINE + 10));
        input.extend(b"\n");
        let results: Vec<_> = NdjsonReader::new(&input[..], "stdin").collect();
        assert!(results[0].is_ok());
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("line 2: longer than 16 MiB"), "{err}");
        assert_eq!(results.len(), 2);
    }

    #[test]
    fn writer_emits_one_line_per_record() {
        let m = parse_line(OK).unwrap();
        let mut out = Vec::new();
        let mut w = NdjsonWriter::new(&mut out);
        w.write(&m).unwrap();
        w.write(&m).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert_eq!(parse_line(text.lines().next().unwrap()).unwrap(), m);
    }

    #[test]
    fn json_lines_of_any_record_round_trip() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Node {
            id: i64,
            labels: Vec<String>,
        }
        let nodes = [
            Node {
                id: i64::MAX,
                labels: vec!["Person".into()],
            },
            Node {
                id: 2,
                labels: vec![],
            },
        ];
        let mut w = JsonLinesWriter::new(Vec::new());
        for n in &nodes {
            w.write(n).unwrap();
        }
        let text = w.into_inner();
        let back: Vec<Node> = JsonLinesReader::new(&text[..], "export")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, nodes);
        let bad: Vec<Result<Node, _>> =
            JsonLinesReader::new(&b"{\"id\":1,\"labels\":[]}\n{\"id\":\"x\"}\n"[..], "export")
                .collect();
        let err = bad[1].as_ref().unwrap_err().to_string();
        assert!(err.starts_with("export line 2:"), "{err}");
    }
}
