//! Listing objects (ListObjectsV2) and unfinished multipart uploads (ListMultipartUploads),
//! page by page, from the XML the server sends.
//!
//! The answers are read field by field rather than into a fixed schema: servers differ in
//! what they include (SeaweedFS 4.48 sends uploads without `StorageClass`, which rust-s3's
//! schema requires), and only `Key`, `Size`, `LastModified`, `UploadId` and `Initiated`
//! matter here.

use std::time::SystemTime;

use crate::error::{Error, ErrorKind, Result};

use super::request::{xml_tag, S3Client, S3Request};

/// One listed object, its key as the bucket has it (prefix included).
pub(crate) struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// One unfinished multipart upload.
pub(crate) struct Unfinished {
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<SystemTime>,
}

/// The `<tag>…</tag>` blocks of `xml`, in order.
fn blocks<'x>(xml: &'x str, tag: &str) -> Vec<&'x str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(&close) else { break };
        out.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    out
}

/// RFC 3339 with fractions (`2025-01-30T02:00:00.000Z`), as S3 listings write times.
pub(crate) fn parse_time(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).ok()
}

/// `Thu, 30 Jan 2025 02:00:00 GMT`, as `Last-Modified` headers write times.
pub(crate) fn parse_http_date(text: &str) -> Option<SystemTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let rfc3339 = format!("{year}-{month:02}-{:0>2}T{time}Z", day);
    humantime::parse_rfc3339(&rfc3339).ok()
}

fn truncated(xml: &str) -> bool {
    xml_tag(xml, "IsTruncated").as_deref() == Some("true")
}

impl S3Client {
    /// Every object whose key starts with `full_prefix`.
    pub fn list_objects(&self, full_prefix: &str) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = S3Request::new("GET", None);
            req.query = vec![
                ("list-type", "2".into()),
                ("prefix", full_prefix.to_owned()),
            ];
            if let Some(t) = &token {
                req.query.push(("continuation-token", t.clone()));
            }
            let xml = self.call(&req, "list objects")?.text();
            for block in blocks(&xml, "Contents") {
                let (Some(key), Some(size)) = (xml_tag(block, "Key"), xml_tag(block, "Size"))
                else {
                    return Err(protocol("a listing entry without Key or Size"));
                };
                out.push(Listed {
                    key,
                    size: size
                        .parse()
                        .map_err(|_| protocol("a listing entry with a bad Size"))?,
                    modified: xml_tag(block, "LastModified").and_then(|t| parse_time(&t)),
                });
            }
            if !truncated(&xml) {
                return Ok(out);
            }
            token =
                Some(xml_tag(&xml, "NextContinuationToken").ok_or_else(|| {
                    protocol("a truncated listing without NextContinuationToken")
                })?);
        }
    }

    /// Every multipart upload under `full_prefix` that was neither completed nor aborted.
    pub fn list_uploads(&self, full_prefix: &str) -> Result<Vec<Unfinished>> {
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut req = S3Request::new("GET", None);
            req.query = vec![
                ("uploads", String::new()),
                ("prefix", full_prefix.to_owned()),
            ];
            if let Some((key, id)) = &markers {
                req.query.push(("key-marker", key.clone()));
                req.query.push(("upload-id-marker", id.clone()));
            }
            let xml = self.call(&req, "list unfinished multipart uploads")?.text();
            for block in blocks(&xml, "Upload") {
                let (Some(key), Some(upload_id)) =
                    (xml_tag(block, "Key"), xml_tag(block, "UploadId"))
                else {
                    return Err(protocol("an upload entry without Key or UploadId"));
                };
                out.push(Unfinished {
                    key,
                    upload_id,
                    initiated: xml_tag(block, "Initiated").and_then(|t| parse_time(&t)),
                });
            }
            if !truncated(&xml) {
                return Ok(out);
            }
            match (
                xml_tag(&xml, "NextKeyMarker"),
                xml_tag(&xml, "NextUploadIdMarker"),
            ) {
                (Some(k), Some(u)) if Some((&k, &u)) != markers.as_ref().map(|(a, b)| (a, b)) => {
                    markers = Some((k, u))
                }
                _ => return Err(protocol("a truncated upload listing without new markers")),
            }
        }
    }
}

fn protocol(what: &str) -> Error {
    Error::new(ErrorKind::Protocol, format!("the S3 server sent {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_in_order() {
        let xml = "<R><Upload><Key>a</Key></Upload><Upload><Key>b&amp;c</Key></Upload></R>";
        let keys: Vec<_> = blocks(xml, "Upload")
            .into_iter()
            .map(|b| xml_tag(b, "Key").unwrap())
            .collect();
        assert_eq!(keys, ["a", "b&c"]);
    }

    #[test]
    fn table_of_times() {
        let t = humantime::parse_rfc3339("2025-01-30T02:00:00Z").unwrap();
        assert_eq!(parse_time("2025-01-30T02:00:00.000Z"), Some(t));
        assert_eq!(parse_time("2025-01-30T02:00:00Z"), Some(t));
        assert_eq!(parse_http_date("Thu, 30 Jan 2025 02:00:00 GMT"), Some(t));
        assert_eq!(
            parse_http_date("Thu, 3 Jan 2025 02:00:00 GMT"),
            humantime::parse_rfc3339("2025-01-03T02:00:00Z").ok()
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
