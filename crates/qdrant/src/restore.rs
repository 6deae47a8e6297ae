//! Restoring a collection: upload-restore (multipart, streamed) and recover from a
//! location the Qdrant node fetches itself. Both always ask for `priority=snapshot` (with
//! the default, `replica`, a restore can end up as an empty collection) and `wait=true`,
//! and pass the file's SHA-256 so that the server refuses bytes that are not the file.

use std::cell::RefCell;
use std::io::{self, Read};
use std::path::Path;

use manifest::Sha256;
use serde_json::json;
use toolkit::http::{Body, RequestTimeout};
use toolkit::progress::{Progress, Style};

use crate::client::{encode, read_result, Client, Req};
use crate::error::{ErrorKind, QdrantError};
use crate::waiting::Waiting;

/// The multipart framing of one `snapshot` field named `filename`, around the file's bytes.
pub fn multipart_frame(boundary: &str, filename: &str) -> (String, String) {
    // The filename is ours (letters, digits, `._-`), never quoted input.
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"snapshot\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    (head, tail)
}

/// The file between the framing, counted on the progress; at the end of the file it starts
/// saying that Qdrant is restoring (the answer comes only after that).
struct FileBody<'a> {
    file: std::fs::File,
    left: u64,
    progress: &'a dyn Progress,
    at_end: &'a dyn Fn(),
}

impl Read for FileBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        toolkit::interrupt::check()?;
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left.try_into().unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the snapshot file became shorter while it was uploaded",
            ));
        }
        self.left -= n as u64;
        self.progress.inc(n as u64);
        if self.left == 0 {
            (self.at_end)();
        }
        Ok(n)
    }
}

/// A name for a multipart boundary or an upload that no one else uses.
pub fn unique_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

impl Client {
    /// Whether collection `name` exists.
    pub fn collection_exists(&self, name: &str) -> Result<bool, QdrantError> {
        Ok(self.collection_info(name)?.is_some())
    }

    /// Restores `collection` from the snapshot file at `path` (`sha256` its verified
    /// digest) by uploading it as multipart field `snapshot` named `filename`, streamed with
    /// `Content-Length` (memory flat whatever the size). Qdrant keeps the upload among the
    /// collection's snapshots under `filename` (deleted by the caller afterwards), replaces
    /// the collection wholesale, and answers only when the restore is done.
    pub fn upload_restore(
        &self,
        collection: &str,
        path: &Path,
        sha256: &Sha256,
        filename: &str,
        progress: &dyn Progress,
        style: Style,
    ) -> Result<(), QdrantError> {
        let what = format!("restore of collection {}", toolkit::cli::quote(collection));
        let io_err = |e: io::Error| {
            QdrantError::new(
                ErrorKind::Io,
                format!("{what}: cannot read {}: {e}", path.display()),
            )
        };
        let boundary = format!("stackvault-{}", unique_token());
        let (head, tail) = multipart_frame(&boundary, filename);
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let req = Req {
            method: "POST",
            path: format!("/collections/{}/snapshots/upload", encode(collection)),
            query: vec![
                ("priority", "snapshot".into()),
                ("wait", "true".into()),
                ("checksum", sha256.to_string()),
            ],
            json: None,
            timeout: RequestTimeout::Idle,
            idempotent: false,
        };
        self.retrying(|| {
            let file = toolkit::fs::open_regular(path).map_err(io_err)?;
            let len = file.metadata().map_err(io_err)?.len();
            progress.set_length(len);
            let waiting: RefCell<Option<Waiting>> = RefCell::new(None);
            let at_end = || {
                *waiting.borrow_mut() = Some(Waiting::start(
                    style,
                    &format!("restore {collection}"),
                    "restore the uploaded snapshot",
                    self.server_timeout(),
                ));
            };
            let body = FileBody {
                file,
                left: len,
                progress,
                at_end: &at_end,
            };
            let mut reader = io::Cursor::new(head.as_bytes())
                .chain(body)
                .chain(io::Cursor::new(tail.as_bytes()));
            let total = head.len() as u64 + len + tail.len() as u64;
            let response = self.send_once(
                &req,
                &[("content-type", &content_type)],
                Body::Stream {
                    reader: &mut reader,
                    len: total,
                },
                true,
                &what,
            );
            drop(waiting.borrow_mut().take());
            if toolkit::interrupt::is_interrupted() {
                return Err(QdrantError::new(
                    ErrorKind::Interrupted,
                    format!("{what}: interrupted by a signal"),
                ));
            }
            read_result(response?, &what).map(|_| ())
        })?;
        progress.finish();
        Ok(())
    }

    /// Restores `collection` from `location`, a URL the Qdrant node can reach itself
    /// (`file://` inside its snapshots directory, or http(s)), `PUT …/snapshots/recover`.
    pub fn recover(
        &self,
        collection: &str,
        location: &str,
        sha256: &Sha256,
        style: Style,
    ) -> Result<(), QdrantError> {
        let what = format!(
            "restore of collection {} from {}",
            toolkit::cli::quote(collection),
            toolkit::secret::redact_url(location)
        );
        let req = Req {
            method: "PUT",
            path: format!("/collections/{}/snapshots/recover", encode(collection)),
            query: vec![("wait", "true".into())],
            json: Some(json!({
                "location": location,
                "priority": "snapshot",
                "checksum": sha256.to_string(),
            })),
            timeout: RequestTimeout::Total(self.server_timeout()),
            idempotent: false,
        };
        let _waiting = Waiting::start(
            style,
            &format!("restore {collection}"),
            "fetch and restore the snapshot",
            self.server_timeout(),
        );
        self.call(req, &what).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_what_qdrant_reads() {
        let (head, tail) = multipart_frame("B", "f.snapshot");
        assert!(head.starts_with(
            "--B\r\nContent-Disposition: form-data; name=\"snapshot\"; filename=\"f.snapshot\"\r\n"
        ));
        assert!(head.ends_with("\r\n\r\n"));
        assert_eq!(tail, "\r\n--B--\r\n");
        assert_ne!(unique_token(), unique_token());
    }
}
