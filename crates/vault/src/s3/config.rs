//! What it takes to reach a bucket: endpoint, addressing, region, credentials, and the
//! transfer settings (part size, parallelism, timeouts, retries).

use std::time::Duration;

use toolkit::http::Timeouts;
use toolkit::retry::RetryPolicy;
use toolkit::secret::Secret;

/// S3 allows at most 10 000 parts per upload; part size grows to stay under it.
pub const MAX_PARTS: u64 = 10_000;
pub(crate) const MIB: u64 = 1024 * 1024;
/// S3 refuses multipart parts below 5 MiB (all but the last): EntityTooSmall.
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3 refuses parts above 5 GiB.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// S3 refuses a single PUT above 5 GiB too.
pub const MAX_SINGLE_PUT: u64 = 5 * 1024 * MIB;
/// One streamed PUT up to 2 GiB: a third of the client CPU of a multipart upload and no
/// part buffers, the server checking the manifest's SHA-256 (one curl PUT took 0.77x the
/// time of s5cmd's multipart upload of 4 GiB on SeaweedFS here, so a single stream is not
/// what limits a local server). The bound keeps what a retry sends again (the whole
/// object) at most this.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 2 * 1024 * MIB;

/// Everything needed to reach a bucket.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// Endpoint URL for S3-compatible servers (`http://minio:9000`); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region (`us-east-1` when the server does not care).
    pub region: String,
    /// Access key id.
    pub access_key: Option<String>,
    /// Secret access key.
    pub secret_key: Option<Secret>,
    /// Session token for temporary credentials.
    pub session_token: Option<Secret>,
    /// Path-style addressing (`http://host/bucket/key`), which MinIO, SeaweedFS and Garage
    /// need; virtual-host style otherwise.
    pub path_style: bool,
    /// Part size for multipart uploads and ranged downloads.
    pub part_size: u64,
    /// Parts in flight at once.
    pub parallel: usize,
    /// Files up to this size whose SHA-256 is known go up in one streamed PUT the server
    /// verifies against it; larger ones, and streams, go in parts.
    pub multipart_threshold: u64,
    /// Connect timeout and the timeout of one request (one part, one range).
    pub timeouts: Timeouts,
    /// Retries of one request, and the time after which they stop.
    pub retry: RetryPolicy,
    /// A PEM file of CA certificates for an endpoint with a private CA (`AWS_CA_BUNDLE`).
    pub ca_file: Option<std::path::PathBuf>,
    /// The Object Lock every put applies (`vault-put --lock-days`); `None`: no lock.
    pub lock: Option<crate::lock::ObjectLock>,
}

impl S3Config {
    /// A configuration with stackvault's defaults, for `bucket` at `endpoint`.
    pub fn new(bucket: &str, endpoint: Option<&str>) -> Self {
        S3Config {
            bucket: bucket.to_owned(),
            prefix: String::new(),
            endpoint: endpoint.map(str::to_owned),
            region: "us-east-1".to_owned(),
            access_key: None,
            secret_key: None,
            session_token: None,
            path_style: endpoint.is_some(),
            part_size: 8 * MIB,
            parallel: 4,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            timeouts: Timeouts {
                connect: Duration::from_secs(10),
                idle: Duration::from_secs(60),
                request: Duration::from_secs(300),
            },
            retry: RetryPolicy::default(),
            ca_file: None,
            lock: None,
        }
    }

    /// The part size for an object of `len` bytes: the configured size, grown (in whole
    /// MiB) so the object fits in [`MAX_PARTS`] parts.
    pub fn part_size_for(&self, len: u64) -> u64 {
        let needed = len.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
        self.part_size.max(needed).max(MIN_PART_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_never_drops_below_the_s3_minimum() {
        let mut c = S3Config::new("b", Some("http://h"));
        c.part_size = MIB;
        assert_eq!(c.part_size_for(100 * MIB), MIN_PART_SIZE);
    }

    #[test]
    fn part_size_grows_to_stay_under_10000_parts() {
        let c = S3Config::new("b", Some("http://h"));
        let cases = [
            (0, 8 * MIB),
            (8 * MIB, 8 * MIB),
            (80_000 * MIB, 8 * MIB),
            (80_001 * MIB, 9 * MIB),
            (1 << 40, 105 * MIB),
        ];
        for (len, want) in cases {
            assert_eq!(c.part_size_for(len), want, "len {len}");
            assert!(len.div_ceil(want) <= MAX_PARTS);
        }
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let mut c = S3Config::new("b", None);
        c.secret_key = Some(Secret::new("s3cret"));
        let shown = format!("{c:?}");
        assert!(
            shown.contains("<redacted>") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
