//! From a vault URL to a backend.

use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::Backend;
use crate::dir::DirBackend;
use crate::error::{Error, ErrorKind, Result};
use crate::s3::{S3Backend, S3Config};

/// Where a vault is, as parsed from `--vault` / `VAULT_URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultUrl {
    /// `file:///dir` (or a plain path): a local or mounted directory.
    Dir(PathBuf),
    /// `s3://bucket/prefix`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix, without leading or trailing `/`; may be empty.
        prefix: String,
    },
}

impl VaultUrl {
    /// Parses `s3://bucket[/prefix]`, `file:///absolute/dir`, or a plain directory path.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| {
            Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "invalid vault URL {url:?}: {why} (expected s3://bucket/prefix or file:///dir)"
                ),
            ))
        };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return bad("no bucket name");
            }
            let prefix = prefix.trim_matches('/').to_owned();
            if prefix.split('/').any(|s| s == "." || s == "..") || prefix.contains("//") {
                return bad("'.', '..' or empty segment in the prefix");
            }
            return Ok(VaultUrl::S3 {
                bucket: bucket.to_owned(),
                prefix,
            });
        }
        let path = match url.strip_prefix("file://") {
            Some(path) if path.starts_with('/') => PathBuf::from(path),
            Some(_) => return bad("a file URL needs an absolute path, file:///dir"),
            None if url.contains("://") => return bad("unsupported scheme"),
            None if url.is_empty() => return bad("empty"),
            None => std::path::absolute(url)
                .map_err(|e| Error::io(format!("invalid vault path {url:?}"), e))?,
        };
        Ok(VaultUrl::Dir(path))
    }
}

/// Opens the vault at `url`. `s3` supplies endpoint, credentials and tuning for `s3://`
/// URLs; its `bucket` and `prefix` are taken from the URL.
pub fn open(url: &str, s3: impl FnOnce() -> S3Config) -> Result<Arc<dyn Backend>> {
    open_or_create(url, s3, false)
}

/// Creates the vault at `url` if it is missing — the S3 bucket (one that exists must be
/// ours), or the directory — then opens it (for set-up; idempotent).
pub fn create(url: &str, s3: impl FnOnce() -> S3Config) -> Result<Arc<dyn Backend>> {
    open_or_create(url, s3, true)
}

fn open_or_create(
    url: &str,
    s3: impl FnOnce() -> S3Config,
    create: bool,
) -> Result<Arc<dyn Backend>> {
    Ok(match VaultUrl::parse(url)? {
        // A directory vault is created on opening anyway.
        VaultUrl::Dir(path) => Arc::new(DirBackend::new(path)?),
        VaultUrl::S3 { bucket, prefix } => {
            let config = S3Config {
                bucket,
                prefix,
                ..s3()
            };
            let backend = S3Backend::new(config)?;
            if create {
                backend.create_bucket()?;
            }
            Arc::new(backend)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_urls() {
        let s3 = |b: &str, p: &str| VaultUrl::S3 {
            bucket: b.into(),
            prefix: p.into(),
        };
        let cases = [
            ("s3://backups", Some(s3("backups", ""))),
            ("s3://backups/", Some(s3("backups", ""))),
            (
                "s3://backups/stack/prod/",
                Some(s3("backups", "stack/prod")),
            ),
            (
                "file:///srv/vault",
                Some(VaultUrl::Dir("/srv/vault".into())),
            ),
            ("/srv/vault", Some(VaultUrl::Dir("/srv/vault".into()))),
            ("s3:///x", None),
            ("s3://b/../x", None),
            ("file://relative", None),
            ("gs://bucket", None),
            ("", None),
        ];
        for (url, want) in cases {
            assert_eq!(VaultUrl::parse(url).ok(), want, "{url}");
        }
    }
}
