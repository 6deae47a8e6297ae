//! `sslmode`: whether to use TLS and what to check, with libpq's meanings.

use std::fmt;
use std::str::FromStr;

/// libpq's `sslmode` (`PGSSLMODE`). What each mode does, as libpq 15 does it (and as
/// `psql`, `pg_dump` and `pg_restore` therefore do it):
///
/// | mode | TLS | falls back | certificate checked |
/// | --- | --- | --- | --- |
/// | `disable` | never | — | — |
/// | `allow` | only if the server rejects the plain login | to TLS | chain, if a root certificate file exists |
/// | `prefer` (default) | first | to plain, if the server refuses TLS, the handshake fails or the server rejects the login over TLS | chain, if a root certificate file exists |
/// | `require` | always | never | chain, if a root certificate file exists (libpq's backwards compatibility: then it is `verify-ca`) |
/// | `verify-ca` | always | never | chain; a missing root certificate file is an error |
/// | `verify-full` | always | never | chain and host name; a missing root certificate file is an error |
///
/// Unix-domain sockets never use TLS, whatever the mode (the server does not offer it
/// there, and libpq does not ask).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// Plain first; TLS only if the server rejects the plain login.
    Allow,
    /// TLS first; plain if TLS is refused or fails (libpq's default).
    #[default]
    Prefer,
    /// TLS or nothing.
    Require,
    /// TLS, with the server's certificate chained to a trusted root.
    VerifyCa,
    /// TLS, with the chain checked and the certificate naming the host.
    VerifyFull,
}

impl SslMode {
    /// Every mode, weakest first.
    pub const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The libpq spelling (`verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the connection may go without TLS.
    pub fn allows_plain(self) -> bool {
        matches!(self, SslMode::Disable | SslMode::Allow | SslMode::Prefer)
    }

    /// Whether a root certificate file must exist (libpq fails without one).
    pub fn requires_root_cert(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// Whether the certificate must name the host.
    pub fn verifies_host_name(self) -> bool {
        self == SslMode::VerifyFull
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `sslmode` value libpq would reject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSslMode(pub String);

impl fmt::Display for InvalidSslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid sslmode value {:?} (one of disable, allow, prefer, require, verify-ca, verify-full)",
            self.0
        )
    }
}

impl std::error::Error for InvalidSslMode {}

impl FromStr for SslMode {
    type Err = InvalidSslMode;

    /// Exactly libpq's spellings: it compares case-sensitively, and so does this.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SslMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| InvalidSslMode(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::SslMode::{self, *};

    #[test]
    fn table_of_spellings() {
        let cases: [(&str, Option<SslMode>); 9] = [
            ("disable", Some(Disable)),
            ("allow", Some(Allow)),
            ("prefer", Some(Prefer)),
            ("require", Some(Require)),
            ("verify-ca", Some(VerifyCa)),
            ("verify-full", Some(VerifyFull)),
            ("REQUIRE", None),
            ("verify_full", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<SslMode>().ok(), want, "{text:?}");
            if let Some(mode) = want {
                assert_eq!(mode.to_string(), text);
            }
        }
    }

    #[test]
    fn table_of_semantics() {
        // (mode, may go plain, root certificate required, host name checked)
        let cases = [
            (Disable, true, false, false),
            (Allow, true, false, false),
            (Prefer, true, false, false),
            (Require, false, false, false),
            (VerifyCa, false, true, false),
            (VerifyFull, false, true, true),
        ];
        for (mode, plain, root, name) in cases {
            assert_eq!(
                (
                    mode.allows_plain(),
                    mode.requires_root_cert(),
                    mode.verifies_host_name()
                ),
                (plain, root, name),
                "{mode}"
            );
        }
        assert_eq!(SslMode::default(), Prefer, "libpq's default");
    }
}
