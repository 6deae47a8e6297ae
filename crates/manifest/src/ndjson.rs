//! Reading and writing manifests as NDJSON: one record per line.

use std::io::{self, BufRead, Write};

use crate::record::{Manifest, SCHEMA};

/// A line that is not a manifest, or input that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The line is not a valid manifest.
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

/// Reads manifests line by line. Blank lines are skipped; any other line must be a
/// `stackvault.manifest/1` object, or the error names its line number.
pub struct NdjsonReader<R> {
    input: R,
    source_name: String,
    line: usize,
    buf: String,
}

impl<R: BufRead> NdjsonReader<R> {
    /// Reads from `input`; `source_name` appears in errors (`stdin`, a path).
    pub fn new(input: R, source_name: impl Into<String>) -> Self {
        NdjsonReader {
            input,
            source_name: source_name.into(),
            line: 0,
            buf: String::new(),
        }
    }

    fn malformed(&self, message: String) -> ReadError {
        ReadError::Malformed {
            source_name: self.source_name.clone(),
            line: self.line,
            message,
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
        loop {
            self.buf.clear();
            self.line += 1;
            match self.input.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    return Some(Err(ReadError::Io {
                        source_name: self.source_name.clone(),
                        source,
                    }))
                }
            }
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            return Some(parse_line(text).map_err(|m| self.malformed(m)));
        }
    }
}

/// Writes manifests, one line each, flushed at once so the next tool in a pipeline can
/// start on a record while this one works on the next.
pub struct NdjsonWriter<W> {
    output: W,
}

impl<W: Write> NdjsonWriter<W> {
    /// Writes to `output`.
    pub fn new(output: W) -> Self {
        NdjsonWriter { output }
    }

    /// Writes and flushes one record.
    pub fn write(&mut self, manifest: &Manifest) -> io::Result<()> {
        let mut line = serde_json::to_vec(manifest).map_err(io::Error::other)?;
        line.push(b'\n');
        self.output.write_all(&line)?;
        self.output.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"schema":"stackvault.manifest/1","id":"a","kind":"qdrant","created_at":"2025-01-30T02:00:00Z","status":"ok"}"#;

    #[test]
    fn names_the_bad_line() {
        let input = format!("{OK}\n\n{{not json\n{OK}\n");
        let results: Vec<_> = NdjsonReader::new(input.as_bytes(), "stdin").collect();
        assert!(results[0].is_ok());
        let err = results[1].as_ref().unwrap_err().to_string();
        assert!(err.starts_with("stdin line 3: not JSON"), "{err}");
    }

    #[test]
    fn table_of_rejected_lines() {
        let cases = [
            ("[1,2]", "expected a JSON object"),
            ("{\"id\":\"x\"}", "no \"schema\" field"),
            ("{\"schema\":\"stackvault.manifest/2\"}", "not supported"),
            (
                "{\"schema\":\"stackvault.manifest/1\",\"id\":\"x\"}",
                "missing field `kind`",
            ),
            (
                &OK.replace("\"ok\"", "\"maybe\""),
                "unknown variant `maybe`",
            ),
            (
                &OK.replace("2025-01-30T02:00:00Z", "yesterday"),
                "invalid timestamp",
            ),
        ];
        for (line, want) in cases {
            let err = parse_line(line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
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
}
