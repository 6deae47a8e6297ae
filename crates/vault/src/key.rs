//! Object keys, checked once so no backend has to.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};

/// A key relative to the vault's root: `/`-separated, no empty, `.` or `..` segment, no
/// leading `/`. A key can therefore never escape a directory vault or a bucket prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Checks `key`.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        let bad = |why: &str| {
            Err(Error::new(
                ErrorKind::InvalidInput,
                format!("invalid object key {key:?}: {why}"),
            ))
        };
        if key.is_empty() {
            return bad("empty");
        }
        if key.contains('\\') || key.contains('\0') {
            return bad("backslash or NUL");
        }
        if key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return bad("empty, '.' or '..' path segment (or a leading '/')");
        }
        Ok(ObjectKey(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment (file name).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_keys() {
        let cases = [
            ("postgres/2025/01/30/a.dump", true),
            ("a", true),
            ("", false),
            ("/abs", false),
            ("a//b", false),
            ("a/../b", false),
            ("..", false),
            ("a/./b", false),
            ("trailing/", false),
            ("back\\slash", false),
            ("dots..inside/ok", true),
        ];
        for (key, ok) in cases {
            assert_eq!(ObjectKey::new(key).is_ok(), ok, "{key:?}");
        }
    }
}
