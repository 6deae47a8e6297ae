//! S3 Object Lock: objects stored with a retain-until date before which the server refuses
//! to delete or overwrite them — backups that ransomware holding the backup host's
//! credentials cannot destroy.
//!
//! One date per run: [`ObjectLock::for_days`] at the start, applied to every artifact and
//! sidecar the run stores and recorded in the sidecar (`vault.lock`), so what a manifest says
//! is exactly what the server holds. The bucket must have Object Lock enabled (at creation:
//! `x-amz-bucket-object-lock-enabled: true`); a bucket without it is refused before anything
//! is uploaded ([`Backend::lock`](crate::Backend::lock)), and a directory vault cannot lock.

use std::time::Duration;

use manifest::sections::Lock;
use manifest::time::Timestamp;

/// Who may still delete a locked object before its date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may (an escape hatch for operators).
    Governance,
    /// Nobody, not even the account's root user, until the date.
    Compliance,
}

impl LockMode {
    /// The value of `x-amz-object-lock-mode`.
    pub fn header(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }

    /// The name in manifests and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LockMode::Governance => "governance",
            LockMode::Compliance => "compliance",
        }
    }
}

/// The lock a run applies to everything it stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectLock {
    /// Who may delete early.
    pub mode: LockMode,
    /// Until when.
    pub retain_until: Timestamp,
}

impl ObjectLock {
    /// `days` days from `now`, to the second.
    pub fn for_days(mode: LockMode, days: u32, now: Timestamp) -> Self {
        let until = now.system_time() + Duration::from_secs(u64::from(days) * 86_400);
        ObjectLock {
            mode,
            retain_until: Timestamp::from_system_time(until),
        }
    }

    /// As the sidecar records it (`vault.lock`).
    pub fn section(&self) -> Lock {
        Lock {
            mode: self.mode.name().to_owned(),
            retain_until: self.retain_until.clone(),
            extra: Default::default(),
        }
    }

    /// The request headers that lock an object on upload.
    pub(crate) fn headers(&self) -> [(&'static str, String); 2] {
        [
            ("x-amz-object-lock-mode", self.mode.header().to_owned()),
            (
                "x-amz-object-lock-retain-until-date",
                self.retain_until.to_string(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_of_n_days_ends_n_days_later_and_is_recorded_as_sent() {
        let now = Timestamp::parse("2025-01-30T02:00:00Z").unwrap();
        // (mode, days, retain until)
        let cases = [
            (LockMode::Governance, 1, "2025-01-31T02:00:00Z"),
            (LockMode::Compliance, 30, "2025-03-01T02:00:00Z"),
        ];
        for (mode, days, until) in cases {
            let lock = ObjectLock::for_days(mode, days, now.clone());
            assert_eq!(lock.retain_until.to_string(), until);
            let section = lock.section();
            assert_eq!(
                (section.mode.as_str(), section.retain_until),
                (mode.name(), lock.retain_until.clone())
            );
            let headers = lock.headers();
            assert_eq!(headers[0].1, mode.header());
            assert_eq!(headers[1].1, until);
        }
    }
}
