//! What a `put` expects its source to turn out to be, checked before the object becomes
//! visible.

use manifest::Sha256;

use crate::error::{Error, ErrorKind, Result};
use crate::key::ObjectKey;

/// The answer of [`Expect::AtEnd`]: the size and digest the source must have had, or why
/// what was read must not be stored.
pub type AtEndAnswer = std::result::Result<(u64, Sha256), String>;

/// What a source must be.
#[derive(Clone, Copy)]
pub enum Expect<'a> {
    /// Exactly `bytes` bytes — a source that ends early is refused — hashing to `sha256`
    /// when one is given.
    Exact {
        /// The length, known before the first byte (it sizes S3 parts).
        bytes: u64,
        /// The digest the bytes must have, if known.
        sha256: Option<&'a Sha256>,
    },
    /// A source whose length is known only at its end: a spool file still being written,
    /// uploaded while its producer writes it. It is read to its end; then this says the
    /// size and digest it must have had (the producer's final record), or why nothing
    /// may be stored (the producer failed).
    AtEnd(&'a (dyn Fn() -> AtEndAnswer + Sync)),
}

impl<'a> Expect<'a> {
    /// Exactly `bytes` bytes, with `sha256` if given.
    pub fn exact(bytes: u64, sha256: Option<&'a Sha256>) -> Self {
        Expect::Exact { bytes, sha256 }
    }

    /// The length, when it is known before reading.
    pub fn known_len(&self) -> Option<u64> {
        match self {
            Expect::Exact { bytes, .. } => Some(*bytes),
            Expect::AtEnd(_) => None,
        }
    }

    /// Checks what was read (`bytes`, hashing to `sha256`) against what was expected.
    pub(crate) fn check(&self, key: &ObjectKey, bytes: u64, sha256: &Sha256) -> Result<()> {
        let (want_bytes, want_sha) = match self {
            Expect::Exact { bytes, sha256 } => (*bytes, sha256.copied()),
            Expect::AtEnd(at_end) => match at_end() {
                Ok((bytes, sha256)) => (bytes, Some(sha256)),
                Err(why) => {
                    return Err(Error::new(
                        ErrorKind::Integrity,
                        format!("{why}; nothing was stored"),
                    )
                    .with_key(key))
                }
            },
        };
        if bytes != want_bytes {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "the source ended after {bytes} bytes, but {want_bytes} were expected; \
                     nothing was stored"
                ),
            )
            .with_key(key));
        }
        match want_sha {
            Some(want) if &want != sha256 => Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "the source changed while it was read: its SHA-256 is {sha256}, expected \
                     {want}; nothing was stored"
                ),
            )
            .with_key(key)),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for Expect<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Exact { bytes, sha256 } => f
                .debug_struct("Exact")
                .field("bytes", bytes)
                .field("sha256", sha256)
                .finish(),
            Expect::AtEnd(_) => f.write_str("AtEnd"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_size_and_digest_exact_or_at_the_end() {
        let key = ObjectKey::new("postgres/2025/01/30/a.dump").unwrap();
        let sha = Sha256::of(b"abc");
        let other = Sha256::of(b"abd");
        let final_ok = || Ok((3, Sha256::of(b"abc")));
        let final_failed = || Err("the producer failed".to_owned());
        // (what was expected, bytes read, their digest, accepted)
        let cases: [(Expect, u64, &Sha256, bool); 8] = [
            (Expect::exact(3, Some(&sha)), 3, &sha, true),
            (Expect::exact(3, None), 3, &other, true),
            (Expect::exact(3, Some(&sha)), 3, &other, false),
            (Expect::exact(4, None), 3, &sha, false),
            (Expect::AtEnd(&final_ok), 3, &sha, true),
            (Expect::AtEnd(&final_ok), 3, &other, false),
            (Expect::AtEnd(&final_ok), 2, &sha, false),
            (Expect::AtEnd(&final_failed), 3, &sha, false),
        ];
        for (expect, bytes, digest, accepted) in cases {
            let got = expect.check(&key, bytes, digest);
            assert_eq!(
                got.is_ok(),
                accepted,
                "{expect:?} {bytes} {digest}: {got:?}"
            );
            if let Err(e) = got {
                assert_eq!(e.kind(), ErrorKind::Integrity);
            }
        }
    }
}
