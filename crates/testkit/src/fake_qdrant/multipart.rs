//! `multipart/form-data` as actix-multipart 0.7 reads it for Qdrant's upload route, with
//! its errors — plain text, 400 or 415 — and its quirks (a body that is only the closing
//! delimiter is "incomplete", not empty).

use super::errors::QError;

/// The `snapshot` field of an upload.
#[derive(Debug)]
pub(crate) struct SnapshotField {
    /// The `filename` of its Content-Disposition, if any.
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

fn bad(message: &str) -> QError {
    QError::new(400, message)
}

/// The boundary, or the error actix answers before reading the body.
pub(crate) fn boundary(content_type: Option<&str>) -> Result<String, QError> {
    let content_type = content_type.ok_or_else(|| bad("Could not find Content-Type header"))?;
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return Err(bad("Could not parse Content-Type header"));
    };
    if kind.is_empty() || subtype.is_empty() {
        return Err(bad("Could not parse Content-Type header"));
    }
    if kind != "multipart" {
        return Err(QError::new(415, "ContentTypeIncompatible"));
    }
    let boundary = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    });
    let boundary = boundary
        .filter(|b| !b.is_empty())
        .ok_or_else(|| bad("Multipart boundary is not found"))?;
    if subtype != "form-data" {
        return Err(QError::new(415, "ContentTypeIncompatible"));
    }
    Ok(boundary)
}

/// A reader over the body with actix's line semantics.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// The next line including its `\n`; `None` when no full line is left.
    fn readline(&mut self) -> Option<&'a [u8]> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n')? + 1;
        self.pos += end;
        Some(&rest[..end])
    }
}

fn incomplete() -> QError {
    bad("Multipart stream is incomplete")
}

/// actix's `skip_until_boundary`: preamble lines are skipped; a line `--{boundary}\r\n`
/// starts the first field. (Its end-of-stream test looks for the boundary without the
/// leading dashes, so a body that is only `--{boundary}--` runs out: "incomplete".)
fn skip_until_boundary(cursor: &mut Cursor, boundary: &[u8]) -> Result<bool, QError> {
    loop {
        let Some(line) = cursor.readline() else {
            return Err(incomplete());
        };
        if line.len() < boundary.len() {
            continue;
        }
        if line.len() >= 4 && &line[..2] == b"--" && &line[2..line.len() - 2] == boundary {
            return Ok(false);
        }
        if line.len() >= boundary.len() + 2
            && &line[..boundary.len()] == boundary
            && &line[boundary.len()..boundary.len() + 2] == b"--"
        {
            return Ok(true);
        }
    }
}

/// Parameters of a Content-Disposition value (`form-data; name="x"; filename="y"`).
fn disposition_params(value: &str) -> Option<(String, Vec<(String, String)>)> {
    let mut params = Vec::new();
    let mut rest = value.trim();
    let kind_end = rest.find(';').unwrap_or(rest.len());
    let kind = rest[..kind_end].trim().to_ascii_lowercase();
    rest = &rest[kind_end..];
    while let Some(r) = rest.strip_prefix(';') {
        let r = r.trim_start();
        let eq = r.find('=')?;
        let key = r[..eq].trim().to_ascii_lowercase();
        let after = &r[eq + 1..];
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &quoted[end?..])
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        params.push((key, val));
        rest = remaining.trim_start();
    }
    Some((kind, params))
}

/// `filename*=UTF-8''…` decoded.
fn extended_value(v: &str) -> Option<String> {
    let (charset, rest) = v.split_once('\'')?;
    let (_lang, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    Some(super::util::percent_decode(encoded))
}

/// Reads every field and returns the first `snapshot` one (later duplicates are ignored,
/// other fields too, as `MultipartForm` does by default).
pub(crate) fn snapshot_field(body: Vec<u8>, boundary: &str) -> Result<SnapshotField, QError> {
    let (filename, range) = locate_snapshot(&body, boundary)?;
    let mut data = body;
    data.truncate(range.end);
    data.drain(..range.start);
    Ok(SnapshotField { filename, data })
}

/// The filename and byte range of the first `snapshot` field.
fn locate_snapshot(
    body: &[u8],
    boundary: &str,
) -> Result<(Option<String>, std::ops::Range<usize>), QError> {
    let b = boundary.as_bytes();
    let mut cursor = Cursor { data: body, pos: 0 };
    let mut snapshot: Option<(Option<String>, std::ops::Range<usize>)> = None;
    if !skip_until_boundary(&mut cursor, b)? {
        loop {
            // Headers up to the blank line.
            let rest = &body[cursor.pos..];
            let end = find(rest, b"\r\n\r\n").ok_or_else(incomplete)?;
            let head = String::from_utf8_lossy(&rest[..end]).into_owned();
            cursor.pos += end + 4;
            let mut name = None;
            let mut filename = None;
            let mut has_disposition = false;
            let mut nested = false;
            for line in head.split("\r\n").filter(|l| !l.is_empty()) {
                let (key, value) = line
                    .split_once(':')
                    .ok_or_else(|| bad("Failed to parse header: invalid header"))?;
                let key = key.trim().to_ascii_lowercase();
                if key == "content-disposition" {
                    let (kind, params) = disposition_params(value)
                        .ok_or_else(|| bad("Could not find Content-Disposition header"))?;
                    if kind != "form-data" {
                        continue;
                    }
                    has_disposition = true;
                    for (k, v) in params {
                        match k.as_str() {
                            "name" => name = Some(v),
                            "filename" => filename = Some(v),
                            "filename*" => {
                                if let Some(v) = extended_value(&v) {
                                    filename = Some(v);
                                }
                            }
                            _ => {}
                        }
                    }
                } else if key == "content-type" {
                    nested = value.trim().to_ascii_lowercase().starts_with("multipart/");
                }
            }
            if !has_disposition {
                return Err(bad("Could not find Content-Disposition header"));
            }
            let name = name.ok_or_else(|| bad("Content-Disposition header has no name"))?;
            if nested {
                return Err(bad("Nested multipart is not supported"));
            }
            // Data up to CRLF--boundary.
            let mut delimiter = b"\r\n--".to_vec();
            delimiter.extend_from_slice(b);
            let rest = &body[cursor.pos..];
            let end = find(rest, &delimiter).ok_or_else(incomplete)?;
            let range = cursor.pos..cursor.pos + end;
            cursor.pos += end + delimiter.len();
            if name == "snapshot" && snapshot.is_none() {
                snapshot = Some((filename, range));
            }
            // What follows the boundary: CRLF (another field) or `--` (the end).
            let after = &body[cursor.pos..];
            if after.starts_with(b"--") {
                break;
            }
            let line_end = find(after, b"\r\n").ok_or_else(incomplete)?;
            if after[..line_end].iter().any(|c| !c.is_ascii_whitespace()) {
                return Err(bad("Multipart boundary is not found"));
            }
            cursor.pos += line_end + 2;
        }
    }
    snapshot.ok_or_else(|| bad("Required field is missing: snapshot"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let last_start = haystack.len().checked_sub(needle.len())?;
    let mut i = 0;
    // Jump between occurrences of the first byte: uploads are tens of MiB.
    while i <= last_start {
        i += haystack[i..=last_start].iter().position(|&b| b == first)?;
        if &haystack[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "----qdrantRefBoundary7MA4YWxkTrZu0gW";

    fn form(field: &str, filename: Option<&str>, data: &[u8]) -> Vec<u8> {
        let mut body = format!("--{B}\r\nContent-Disposition: form-data; name=\"{field}\"");
        if let Some(f) = filename {
            body.push_str(&format!("; filename=\"{f}\""));
        }
        body.push_str("\r\nContent-Type: application/octet-stream\r\n\r\n");
        let mut body = body.into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{B}--\r\n").as_bytes());
        body
    }

    #[test]
    fn the_recorded_bodies() {
        // The overhead of the recorded uploads: 84685 - 84480 bytes.
        assert_eq!(form("snapshot", Some("test_col.snapshot"), b"").len(), 205);
        let field = snapshot_field(form("snapshot", Some("a.snapshot"), b"tar\r\n--x"), B).unwrap();
        assert_eq!(field.filename.as_deref(), Some("a.snapshot"));
        assert_eq!(field.data, b"tar\r\n--x");
        let field = snapshot_field(form("snapshot", None, b"x"), B).unwrap();
        assert_eq!(field.filename, None);
        let closing_only = format!("--{B}--\r\n");
        assert_eq!(closing_only.len(), 42);
        assert_eq!(
            snapshot_field(closing_only.into_bytes(), B)
                .unwrap_err()
                .message,
            "Multipart stream is incomplete"
        );
        assert_eq!(
            snapshot_field(form("file", Some("a"), b"x"), B)
                .unwrap_err()
                .message,
            "Required field is missing: snapshot"
        );
        let mut cut = form("snapshot", Some("a"), b"xyz");
        cut.truncate(cut.len() - 10);
        assert_eq!(
            snapshot_field(cut, B).unwrap_err().message,
            "Multipart stream is incomplete"
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            boundary(None).unwrap_err().message,
            "Could not find Content-Type header"
        );
        let e = boundary(Some("application/octet-stream")).unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (415, "ContentTypeIncompatible")
        );
        assert_eq!(
            boundary(Some("multipart/form-data")).unwrap_err().message,
            "Multipart boundary is not found"
        );
        assert_eq!(
            boundary(Some(&format!("multipart/form-data; boundary={B}"))).unwrap(),
            B
        );
        assert_eq!(boundary(Some("garbage")).unwrap_err().status, 400);
    }
}
