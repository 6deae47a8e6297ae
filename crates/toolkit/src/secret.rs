//! Secrets, and URLs with their credentials taken out.
//!
//! A [`Secret`] never shows itself: `Debug` and `Display` print `<redacted>`, and the value
//! is reached only through [`Secret::expose`], at the one place it is sent (a header, a
//! child's environment). URLs operators configure often carry credentials
//! (`http://neo4j:pw@host:7474`, `postgresql://u:pw@db/app`, `?api-key=…`): [`redact_url`]
//! makes the text that may appear in messages, manifests and the ledger.

use std::fmt;

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// From an environment variable, if set and not empty.
    pub fn from_env(name: &str) -> Option<Secret> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Query parameters whose values are credentials (compared case-insensitively, with `-`
/// and `_` alike).
const SECRET_PARAMS: [&str; 10] = [
    "apikey",
    "api-key",
    "password",
    "passwd",
    "token",
    "secret",
    "sslpassword",
    "x-amz-signature",
    "x-amz-security-token",
    "x-amz-credential",
];

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('_', "-");
    SECRET_PARAMS
        .iter()
        .any(|p| name == *p || name.replace('-', "") == p.replace('-', ""))
}

/// `url` with the password of its user info replaced by `***` (the user name stays: it
/// tells which account), and the values of credential query parameters too. Text that is
/// not a URL is returned unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            let mut out = format!("{path}?{}", query.join("&"));
            if let Some(f) = fragment {
                out.push('#');
                out.push_str(f);
            }
            out
        }
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

/// A libpq conninfo string (`host=db password=x dbname=app`) with the values of
/// `password` and `sslpassword` (quoted or not) replaced by `***`.
pub fn redact_conninfo(conninfo: &str) -> String {
    let mut out = String::with_capacity(conninfo.len());
    let mut rest = conninfo;
    while let Some(pos) = find_password_key(rest) {
        let (before, after) = rest.split_at(pos);
        out.push_str(before);
        let eq = after.find('=').expect("found with '='");
        out.push_str(&after[..=eq]);
        let value = after[eq + 1..].trim_start();
        let skipped = after.len() - eq - 1 - value.len();
        out.push_str(&after[eq + 1..eq + 1 + skipped]);
        out.push_str("***");
        let end = if let Some(quoted) = value.strip_prefix('\'') {
            let mut escaped = false;
            let mut end = quoted.len();
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i + 1;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            end + 1
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        rest = &value[end.min(value.len())..];
    }
    out.push_str(rest);
    out
}

/// Where a `password` or `sslpassword` key (followed by optional spaces and `=`) starts in
/// `text`, at a word boundary.
fn find_password_key(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        let at = from + i;
        let word_start = if lower[..at].ends_with("ssl") {
            at - 3
        } else {
            at
        };
        let boundary = word_start == 0 || lower[..word_start].ends_with(char::is_whitespace);
        let after = lower[at + "password".len()..].trim_start();
        if boundary && after.starts_with('=') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn table_of_redacted_urls() {
        let cases = [
            ("http://localhost:6333", "http://localhost:6333"),
            (
                "http://neo4j:s3cret@db:7474/db/neo4j",
                "http://neo4j:***@db:7474/db/neo4j",
            ),
            (
                "postgresql://u:p%40ss@h:5432/app?sslmode=require",
                "postgresql://u:***@h:5432/app?sslmode=require",
            ),
            (
                "https://q:6333/collections?api-key=abc&x=1",
                "https://q:6333/collections?api-key=***&x=1",
            ),
            ("http://h/?api_key=abc#frag", "http://h/?api_key=***#frag"),
            ("s3://bucket/prefix", "s3://bucket/prefix"),
            ("http://user@host/", "http://user@host/"),
            (
                "http://h/p?X-Amz-Signature=deadbeef&X-Amz-Expires=60",
                "http://h/p?X-Amz-Signature=***&X-Amz-Expires=60",
            ),
            ("not a url", "not a url"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn table_of_redacted_conninfos() {
        let cases = [
            ("host=db dbname=app", "host=db dbname=app"),
            (
                "host=db password=s3cret dbname=app",
                "host=db password=*** dbname=app",
            ),
            (
                "password = 's3 cr\\'et' dbname=app",
                "password = *** dbname=app",
            ),
            ("sslpassword=x password=y", "sslpassword=*** password=***"),
        ];
        for (text, want) in cases {
            assert_eq!(redact_conninfo(text), want, "{text}");
        }
    }
}
