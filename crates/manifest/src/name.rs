//! Names that are safe everywhere a stackvault name goes: a file name in the spool, one
//! segment of a vault key, a part of an artifact id, a word in a log line.
//!
//! Names come from untrusted places — a database name from PostgreSQL, a collection or
//! snapshot name from a Qdrant server, an id typed into a manifest by hand — and end up
//! joined to directory paths and object keys. One type checks them once, so no caller can
//! forget: a [`Name`] has only `[A-Za-z0-9._-]`, does not start with `.`, and is at most
//! [`Name::MAX_LEN`] bytes. No `/`, no `..` as a whole, no control characters, no spaces.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A checked name: `[A-Za-z0-9._-]{1,200}`, not starting with `.`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

/// The text is not acceptable as a [`Name`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid name {text:?}: {why}")]
pub struct NameError {
    /// The text, as given (shown escaped, so control characters cannot forge output).
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// Whether `c` may appear in a name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

impl Name {
    /// Longest accepted name, in bytes: file systems allow 255 per path segment, and a
    /// name gets a kind prefix, a timestamp and an extension around it.
    pub const MAX_LEN: usize = 200;

    /// Checks `text`.
    pub fn new(text: impl Into<String>) -> Result<Name, NameError> {
        let text = text.into();
        let why = if text.is_empty() {
            Some("empty")
        } else if text.len() > Self::MAX_LEN {
            Some("longer than 200 bytes")
        } else if text.starts_with('.') {
            Some("starts with '.'")
        } else if !text.chars().all(is_name_char) {
            Some("only letters, digits, '.', '_' and '-' are allowed")
        } else {
            None
        };
        match why {
            Some(why) => Err(NameError { text, why }),
            None => Ok(Name(text)),
        }
    }

    /// A name made from any text: characters outside the allowed set become `-`, a
    /// leading `.` gets an `x` before it, an empty text becomes `x`, and a text too long is
    /// cut. Different texts can give the same name (`my db`, `my-db`); callers that make
    /// several names from texts that must stay apart check for that (see `dump-pg --all`).
    pub fn sanitize(text: &str) -> Name {
        let mut s: String = text
            .chars()
            .map(|c| if is_name_char(c) { c } else { '-' })
            .collect();
        if s.is_empty() || s.starts_with('.') {
            s.insert(0, 'x');
        }
        if s.len() > Self::MAX_LEN {
            s.truncate(Self::MAX_LEN); // ASCII only, so any byte index is a boundary
        }
        Name(s)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name each text goes by in ids, in the same order: [`Name::sanitize`] of it,
/// except where two texts would get the same one (`my db` and `my-db` both sanitize to
/// `my-db`): then those that are not already exactly the sanitized form get a short hash of
/// the real text appended (`my-db-3a7bd3`), so every database or collection keeps an id of
/// its own and no backup is refused as a duplicate of another's. Names from servers
/// (PostgreSQL databases, Qdrant collections) are untrusted input: this is how they become
/// parts of ids.
pub fn distinct_names(texts: &[String]) -> Vec<Name> {
    let plain: Vec<Name> = texts.iter().map(|d| Name::sanitize(d)).collect();
    plain
        .iter()
        .zip(texts)
        .map(|(name, text)| {
            let collides = plain.iter().filter(|n| *n == name).count() > 1;
            if !collides || name.as_str() == text {
                return name.clone();
            }
            let hash = crate::sha256::Sha256::of(text.as_bytes()).to_string();
            let mut base = name.as_str().to_owned();
            base.truncate(Name::MAX_LEN - 7);
            Name::new(format!("{base}-{}", &hash[..6])).expect("a name plus hex is a name")
        })
        .collect()
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Name::new(s)
    }
}

/// A Name reads as the text it checked (it is never changed after the check).
impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Name::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_names() {
        let long = "a".repeat(201);
        let cases = [
            ("app", true),
            ("my_app-2.1", true),
            ("postgres_app_20250130_020000.dump", true),
            ("dots..inside", true),
            ("", false),
            (".hidden", false),
            ("..", false),
            ("../etc", false),
            ("a/b", false),
            ("my db", false),
            ("evil\n\x1b[31mforged", false),
            ("tab\there", false),
            ("ünïcode", false),
            (long.as_str(), false),
        ];
        for (text, ok) in cases {
            assert_eq!(Name::new(text).is_ok(), ok, "{text:?}");
        }
    }

    #[test]
    fn table_of_sanitized_names() {
        let cases = [
            ("app", "app"),
            ("my db", "my-db"),
            ("my-db", "my-db"),
            ("../etc", "x..-etc"),
            ("", "x"),
            (".hidden", "x.hidden"),
            ("a\nb", "a-b"),
        ];
        for (text, want) in cases {
            assert_eq!(Name::sanitize(text).as_str(), want, "{text:?}");
            assert!(Name::new(Name::sanitize(text).as_str()).is_ok());
        }
        assert_eq!(Name::sanitize(&"x".repeat(500)).as_str().len(), 200);
    }

    #[test]
    fn errors_show_control_characters_escaped() {
        let err = Name::new("a\nb").unwrap_err().to_string();
        assert!(!err.contains('\n') && err.contains("\\n"), "{err}");
    }
}
