//! The vault flags every vault tool shares, with the environment names operators already
//! use: `VAULT_URL`, AWS's `AWS_*`, and the `MINIO_*` names of the original scripts.
//! Secrets come only from the environment, never from a flag.

use std::time::Duration;

use toolkit::http::Timeouts;
use toolkit::retry::RetryPolicy;
use toolkit::secret::Secret;

use crate::s3::S3Config;

/// Vault selection and S3 tuning.
#[derive(Debug, Clone, clap::Args)]
pub struct VaultArgs {
    /// Where backups are kept: s3://bucket/prefix or file:///dir (falls back to s3://$MINIO_BUCKET).
    #[arg(long, env = "VAULT_URL", value_name = "URL")]
    pub vault: Option<String>,

    /// S3 endpoint for MinIO, SeaweedFS, Garage, Ceph… (also MINIO_ENDPOINT); unset for AWS.
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub s3_endpoint: Option<String>,

    /// S3 region (also AWS_DEFAULT_REGION).
    #[arg(long, env = "AWS_REGION", value_name = "REGION")]
    pub s3_region: Option<String>,

    /// S3 addressing: path (http://host/bucket/key) or virtual (http://bucket.host/key);
    /// default: path with a custom endpoint, virtual for AWS.
    #[arg(long, value_name = "STYLE", value_parser = ["path", "virtual"])]
    pub s3_addressing: Option<String>,

    /// Size of one multipart part, 5MiB to 5GiB (grown automatically past 10 000 parts);
    /// downloads into the spool ask for ranges of 4 parts, streamed (memory does not grow with it).
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_part_size)]
    pub s3_part_size: u64,

    /// vault-put's --s3-multipart-threshold (only vault-put stores files; the flag is its
    /// own, so the other tools' --help does not offer it).
    #[arg(skip = crate::s3::DEFAULT_MULTIPART_THRESHOLD)]
    pub s3_multipart_threshold: u64,

    /// Parts or ranges transferred at once. Memory grows with it (uploads hold parallel+1
    /// parts), not with the artifact: peak RSS measured for 1 GiB with 8MiB parts, 4 in
    /// parallel: vault-put 45 MiB, vault-get 35 MiB (24 MiB of it the chunks kept for the
    /// hash, whatever N is).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub s3_parallel: u16,

    /// Retries of one request after a transient failure (connection error, timeout, HTTP
    /// 408/429/5xx), with exponential backoff from 0.25 s up to 8 s.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub s3_retries: u32,

    /// Timeout of one S3 request — one part, one range, one listing page — from the
    /// start of the connection to the last byte of the answer, e.g. 30s, 5m.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = manifest::time::parse_duration)]
    pub s3_timeout: Duration,

    /// Timeout of connecting to the S3 endpoint (TCP).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = manifest::time::parse_duration)]
    pub s3_connect_timeout: Duration,

    /// No retry of a request starts this long after its first attempt: the most one
    /// request can cost against a server that accepts and never answers is about this
    /// plus one --s3-timeout.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = manifest::time::parse_duration)]
    pub s3_give_up_after: Duration,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl VaultArgs {
    /// The vault URL, or an error telling how to give one.
    pub fn url(&self) -> Result<String, String> {
        self.vault
            .clone()
            .or_else(|| env("MINIO_BUCKET").map(|b| format!("s3://{b}")))
            .ok_or_else(|| {
                "no vault given: pass --vault s3://bucket/prefix or file:///dir, or set VAULT_URL"
                    .to_owned()
            })
    }

    /// The S3 settings (bucket and prefix are filled in from the URL by [`crate::open`]).
    pub fn s3_config(&self) -> S3Config {
        let endpoint = self.s3_endpoint.clone().or_else(|| {
            env("MINIO_ENDPOINT").map(|e| {
                if e.contains("://") {
                    e
                } else {
                    // The seed's MINIO_ENDPOINT is host:port, with MINIO_SECURE for TLS.
                    let tls = env("MINIO_SECURE").is_some_and(|v| v == "true" || v == "1");
                    format!("{}://{e}", if tls { "https" } else { "http" })
                }
            })
        });
        let path_style = match self.s3_addressing.as_deref() {
            Some("path") => true,
            Some(_) => false,
            None => endpoint.is_some(),
        };
        S3Config {
            bucket: String::new(),
            prefix: String::new(),
            region: self
                .s3_region
                .clone()
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".to_owned()),
            endpoint,
            access_key: env("AWS_ACCESS_KEY_ID")
                .or_else(|| env("MINIO_ACCESS_KEY"))
                .or_else(|| env("MINIO_ROOT_USER")),
            secret_key: env("AWS_SECRET_ACCESS_KEY")
                .or_else(|| env("MINIO_SECRET_KEY"))
                .or_else(|| env("MINIO_ROOT_PASSWORD"))
                .map(Secret::new),
            session_token: env("AWS_SESSION_TOKEN").map(Secret::new),
            path_style,
            part_size: self.s3_part_size,
            parallel: self.s3_parallel as usize,
            multipart_threshold: self.s3_multipart_threshold,
            timeouts: Timeouts {
                connect: self.s3_connect_timeout,
                idle: self.s3_timeout,
                request: self.s3_timeout,
            },
            retry: RetryPolicy {
                retries: self.s3_retries,
                give_up_after: self.s3_give_up_after,
                ..RetryPolicy::default()
            },
            ca_file: env("AWS_CA_BUNDLE").map(Into::into),
            lock: None,
        }
    }

    /// Opens the vault these flags name.
    pub fn open(&self) -> Result<std::sync::Arc<dyn crate::Backend>, crate::Error> {
        let url = self
            .url()
            .map_err(|m| crate::Error::new(crate::ErrorKind::InvalidInput, m))?;
        crate::open(&url, || self.s3_config())
    }

    /// Creates the vault these flags name if it is missing, and opens it ([`crate::create`]).
    pub fn create(&self) -> Result<std::sync::Arc<dyn crate::Backend>, crate::Error> {
        let url = self
            .url()
            .map_err(|m| crate::Error::new(crate::ErrorKind::InvalidInput, m))?;
        crate::create(&url, || self.s3_config())
    }

    /// Opens the vault, every put locked with `lock` (S3 Object Lock). Refused for a
    /// directory vault, and — at the first put, or when [`Backend::lock`](crate::Backend::lock)
    /// is asked — for a bucket without Object Lock.
    pub fn open_locked(
        &self,
        lock: crate::lock::ObjectLock,
    ) -> Result<std::sync::Arc<dyn crate::Backend>, crate::Error> {
        let url = self
            .url()
            .map_err(|m| crate::Error::new(crate::ErrorKind::InvalidInput, m))?;
        if !url.starts_with("s3://") {
            return Err(crate::Error::new(
                crate::ErrorKind::InvalidInput,
                format!(
                    "{url} is a directory vault: Object Lock is an S3 feature (a file's \
                     immutability is the filesystem's: chattr +i, a WORM mount)"
                ),
            ));
        }
        crate::open(&url, || crate::s3::S3Config {
            lock: Some(lock),
            ..self.s3_config()
        })
    }
}

fn parse_part_size(text: &str) -> Result<u64, String> {
    let size = parse_size(text)?;
    if !(crate::s3::MIN_PART_SIZE..=crate::s3::MAX_PART_SIZE).contains(&size) {
        return Err(format!(
            "{text} is outside S3's part size limits, 5MiB to 5GiB"
        ));
    }
    Ok(size)
}

/// Parses `--s3-multipart-threshold`: a size up to S3's limit for one PUT.
pub fn parse_multipart_threshold(text: &str) -> Result<u64, String> {
    let size = parse_size(text)?;
    if size > crate::s3::MAX_SINGLE_PUT {
        return Err(format!(
            "{text} is above S3's limit for one PUT, 5GiB (larger files always go in parts)"
        ));
    }
    Ok(size)
}

/// Parses `8MiB`, `16M`, `512KiB`, `1G`, `1048576` (binary units).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected e.g. 8MiB, 512KiB, 1GiB"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        _ => {
            return Err(format!(
                "invalid size unit in {text:?}: use B, KiB, MiB or GiB"
            ))
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_sizes() {
        let cases = [
            ("8MiB", Some(8 << 20)),
            ("16M", Some(16 << 20)),
            ("512KiB", Some(512 << 10)),
            ("1G", Some(1 << 30)),
            ("1048576", Some(1 << 20)),
            ("8 MiB", Some(8 << 20)),
            ("MiB", None),
            ("8XB", None),
            ("-1", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text).ok(), want, "{text}");
        }
    }
}
