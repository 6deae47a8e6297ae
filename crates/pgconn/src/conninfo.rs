//! libpq's two connection-string syntaxes, parsed as libpq parses them, and redacted for
//! messages.
//!
//! - Keyword/value (`host=db port=5432 dbname='my db'`): blanks separate pairs and may
//!   surround `=`; a value is either bare (ends at a blank) or single-quoted; inside
//!   either, a backslash takes the next character literally (`\'`, `\\`).
//! - URI (`postgresql://user:pass@host1:5432,host2/db?sslmode=require`, or
//!   `postgres://`): user and password before the first `@` that comes before any `/`;
//!   hosts separated by commas, each with an optional `:port`, IPv6 addresses in
//!   brackets; the database after `/`; keyword parameters after `?`, joined by `&`.
//!   Every part is percent-decoded (`%2Fvar%2Frun%2Fpostgresql` is a socket directory);
//!   `ssl=true` means `sslmode=require`, as in libpq.
//!
//! Parsing only splits and decodes: which keywords exist and what their values mean is
//! decided where they are applied ([`crate::Builder`]). Error messages never quote a
//! value, since any value may be the password.

use std::fmt;

/// Whether libpq would expand `dbname` into a connection string rather than take it as a
/// database name: it starts with a URI scheme or contains `=`.
pub fn is_conninfo(dbname: &str) -> bool {
    uri_rest(dbname).is_some() || dbname.contains('=')
}

/// A connection string libpq would reject. The message names what is wrong, never a
/// value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(pub(crate) String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// The keyword/value pairs of a URI or keyword/value connection string, in order, decoded.
/// A keyword may repeat; the last one wins when they are applied.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, ParseError> {
    match uri_rest(text) {
        Some(rest) => parse_uri(rest),
        None => parse_keywords(text),
    }
}

fn uri_rest(text: &str) -> Option<&str> {
    text.strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
}

fn parse_keywords(text: &str) -> Result<Vec<(String, String)>, ParseError> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    let mut words = 0;
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        words += 1;
        let mut keyword = String::new();
        while let Some(c) = chars.next_if(|&c| c != '=' && !c.is_ascii_whitespace()) {
            keyword.push(c);
        }
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // Not quoting the word: it may be a password typed without its keyword.
            return Err(ParseError(format!(
                "missing \"=\" after word {words} of the connection string"
            )));
        }
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(ParseError(format!(
                            "unterminated quoted value of {keyword:?} in the connection string"
                        )))
                    }
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((keyword, value));
    }
}

fn parse_uri(rest: &str) -> Result<Vec<(String, String)>, ParseError> {
    let mut pairs = Vec::new();
    // libpq looks for the credentials' `@` up to the first `/` only (not `?`).
    let mut p = rest;
    let cred_end = rest.find(['@', '/']).unwrap_or(rest.len());
    if rest[cred_end..].starts_with('@') {
        let creds = &rest[..cred_end];
        let (user, password) = match creds.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (creds, None),
        };
        if !user.is_empty() {
            pairs.push(("user".into(), decode(user, "user name")?));
        }
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            pairs.push(("password".into(), decode(password, "password")?));
        }
        p = &rest[cred_end + 1..];
    }

    let mut hosts = String::new();
    let mut ports = String::new();
    let mut next;
    loop {
        if let Some(after) = p.strip_prefix('[') {
            let Some(close) = after.find(']') else {
                return Err(ParseError(
                    "missing \"]\" after an IPv6 host address in the URI".into(),
                ));
            };
            if close == 0 {
                return Err(ParseError(
                    "empty IPv6 host address (\"[]\") in the URI".into(),
                ));
            }
            hosts.push_str(&after[..close]);
            p = &after[close + 1..];
            if !(p.is_empty() || p.starts_with([':', '/', '?', ','])) {
                return Err(ParseError(
                    "unexpected character after an IPv6 host address in the URI (expected \":\", \"/\", \"?\" or \",\")"
                        .into(),
                ));
            }
        } else {
            let end = p.find([':', '/', '?', ',']).unwrap_or(p.len());
            hosts.push_str(&p[..end]);
            p = &p[end..];
        }
        next = p.chars().next();
        if next == Some(':') {
            let end = p[1..].find(['/', '?', ',']).map_or(p.len(), |i| i + 1);
            ports.push_str(&p[1..end]);
            p = &p[end..];
            next = p.chars().next();
        }
        if next != Some(',') {
            break;
        }
        p = &p[1..];
        hosts.push(',');
        ports.push(',');
    }
    if !hosts.is_empty() {
        pairs.push(("host".into(), decode(&hosts, "host")?));
    }
    if !ports.is_empty() {
        pairs.push(("port".into(), decode(&ports, "port")?));
    }
    if next == Some('/') {
        let end = p.find('?').unwrap_or(p.len());
        let dbname = &p[1..end];
        if !dbname.is_empty() {
            pairs.push(("dbname".into(), decode(dbname, "database name")?));
        }
        p = &p[end..];
    }
    if let Some(query) = p.strip_prefix('?') {
        for param in query.split('&').filter(|s| !s.is_empty()) {
            let mut parts = param.splitn(3, '=');
            let keyword = parts.next().unwrap_or_default();
            let (Some(value), None) = (parts.next(), parts.next()) else {
                return Err(ParseError(format!(
                    "URI query parameter {:?} needs exactly one \"=\"",
                    redact_keyword(keyword)
                )));
            };
            let keyword = decode(keyword, "query parameter name")?;
            let value = decode(value, "query parameter value")?;
            if keyword == "ssl" && value == "true" {
                pairs.push(("sslmode".into(), "require".into()));
            } else {
                pairs.push((keyword, value));
            }
        }
    }
    Ok(pairs)
}

fn redact_keyword(keyword: &str) -> &str {
    if keyword.len() > 40 {
        "…"
    } else {
        keyword
    }
}

/// Percent-decoding as libpq does it: `%` must be followed by two hex digits, `%00` is
/// forbidden, `+` stays `+`.
fn decode(text: &str, what: &str) -> Result<String, ParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(0) => return Err(ParseError(format!("forbidden %00 in the URI's {what}"))),
                Some(b) => out.push(b),
                None => {
                    return Err(ParseError(format!(
                        "invalid percent-encoding in the URI's {what}"
                    )))
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| ParseError(format!("the URI's {what} is not UTF-8 once decoded")))
}

/// `text` (a database name, URI or keyword/value string) fit for a message: the
/// password of a URI (`user:***@`, `?password=***`) or of a keyword/value string
/// (`password=***`) replaced. Malformed input is redacted generously rather than
/// precisely: where a password might be, it goes.
pub fn redact(text: &str) -> String {
    match uri_rest(text) {
        Some(rest) => {
            let scheme = &text[..text.len() - rest.len()];
            format!("{scheme}{}", redact_uri(rest))
        }
        None if text.contains('=') => redact_keywords(text),
        None => text.to_owned(),
    }
}

fn redact_uri(rest: &str) -> String {
    // Where the credentials end: libpq's rule (first `@` before any `/`), else, for
    // URIs libpq would reject, the last `@` before the query, else the last `@` at all.
    let query_start = rest.find('?').unwrap_or(rest.len());
    let at = match rest.find(['@', '/']) {
        Some(i) if rest[i..].starts_with('@') => Some(i),
        _ => rest[..query_start].rfind('@').or_else(|| rest.rfind('@')),
    };
    let (creds, after) = match at {
        Some(i) => (Some(&rest[..i]), &rest[i..]),
        None => (None, rest),
    };
    let mut out = String::new();
    if let Some(creds) = creds {
        match creds.split_once(':') {
            Some((user, _)) => {
                out.push_str(user);
                out.push_str(":***");
            }
            None => out.push_str(creds),
        }
    }
    match after.split_once('?') {
        None => out.push_str(after),
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((k, _)) if decode(k, "").is_ok_and(|k| k == "password") => {
                        format!("{k}=***")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
    }
    out
}

fn redact_keywords(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let blank = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..blank]);
        rest = &rest[blank..];
        if rest.is_empty() {
            return out;
        }
        let key_end = rest
            .find(|c: char| c == '=' || c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let keyword = &rest[..key_end];
        let after_key = rest[key_end..].trim_start();
        let Some(value_and_rest) = after_key.strip_prefix('=') else {
            // Not a pair: from a word "password" on, anything may be the secret.
            if keyword == "password" {
                out.push_str("password ***");
                return out;
            }
            out.push_str(&rest[..key_end]);
            rest = &rest[key_end..];
            continue;
        };
        let value_and_rest = value_and_rest.trim_start();
        let value_len = value_span(value_and_rest);
        let consumed =
            rest.len() - value_and_rest.len() + value_len.unwrap_or(value_and_rest.len());
        if keyword == "password" {
            out.push_str("password=***");
        } else {
            out.push_str(&rest[..consumed]);
        }
        if value_len.is_none() {
            return out;
        }
        rest = &rest[consumed..];
    }
}

/// The length of the value at the start of `text` (quoted or bare, escapes included), or
/// `None` if a quoted value never ends.
fn value_span(text: &str) -> Option<usize> {
    let mut chars = text.char_indices();
    if text.starts_with('\'') {
        chars.next();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '\'' => return Some(i + 1),
                _ => {}
            }
        }
        None
    } else {
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                c if c.is_ascii_whitespace() => return Some(i),
                _ => {}
            }
        }
        Some(text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn table_of_conninfo_detection() {
        let cases = [
            ("app", false),
            ("my db", false),
            ("postgresql://h/db", true),
            ("postgres://h", true),
            ("postgresql:/h", false),
            ("host=h", true),
            ("a=b", true),
            ("", false),
        ];
        for (text, want) in cases {
            assert_eq!(is_conninfo(text), want, "{text:?}");
        }
    }

    #[test]
    fn table_of_keyword_value_strings() {
        #[rustfmt::skip]
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("host=h dbname=d", &[("host", "h"), ("dbname", "d")]),
            ("  host = h   port=5433 ", &[("host", "h"), ("port", "5433")]),
            ("dbname='my db'", &[("dbname", "my db")]),
            (r"dbname='it\'s' password='a\\b'", &[("dbname", "it's"), ("password", r"a\b")]),
            (r"password=sp\ ace", &[("password", "sp ace")]),
            ("dbname=''", &[("dbname", "")]),
            ("host=a,b port=1,2", &[("host", "a,b"), ("port", "1,2")]),
            ("dbname=x=y", &[("dbname", "x=y")]),
            ("user=u\tpassword=p\nsslmode=require", &[("user", "u"), ("password", "p"), ("sslmode", "require")]),
            ("", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Ok(&pairs(want)), "{text:?}");
        }
    }

    #[test]
    fn table_of_uris() {
        #[rustfmt::skip]
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("postgresql://", &[]),
            ("postgresql://h", &[("host", "h")]),
            ("postgres://h:5433/db", &[("host", "h"), ("port", "5433"), ("dbname", "db")]),
            ("postgresql://u@h/db", &[("user", "u"), ("host", "h"), ("dbname", "db")]),
            ("postgresql://u:p%40ss%2Fw@h/db", &[("user", "u"), ("password", "p@ss/w"), ("host", "h"), ("dbname", "db")]),
            ("postgresql://u:pa?ss@h", &[("user", "u"), ("password", "pa?ss"), ("host", "h")]),
            ("postgresql://u:p:q@h", &[("user", "u"), ("password", "p:q"), ("host", "h")]),
            ("postgresql://:p@h", &[("password", "p"), ("host", "h")]),
            ("postgresql:///db", &[("dbname", "db")]),
            ("postgresql://%2Fvar%2Frun%2Fpostgresql/db", &[("host", "/var/run/postgresql"), ("dbname", "db")]),
            ("postgresql://[::1]:5433/db", &[("host", "::1"), ("port", "5433"), ("dbname", "db")]),
            ("postgresql://a:1,b:2/db", &[("host", "a,b"), ("port", "1,2"), ("dbname", "db")]),
            ("postgresql://a,b:2", &[("host", "a,b"), ("port", ",2")]),
            ("postgresql://h/my%20db", &[("host", "h"), ("dbname", "my db")]),
            ("postgresql://h/db?sslmode=verify-full&sslrootcert=%2Fca.crt", &[("host", "h"), ("dbname", "db"), ("sslmode", "verify-full"), ("sslrootcert", "/ca.crt")]),
            ("postgresql://h?ssl=true", &[("host", "h"), ("sslmode", "require")]),
            ("postgresql:///db?host=%2Ftmp&port=5433", &[("dbname", "db"), ("host", "/tmp"), ("port", "5433")]),
            ("postgresql://h/a+b", &[("host", "h"), ("dbname", "a+b")]),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Ok(&pairs(want)), "{text:?}");
        }
    }

    #[test]
    fn table_of_malformed_strings() {
        // (input, part of the message); no message may contain "SECRET".
        let cases = [
            ("host=h SECRET", "missing \"=\" after word 2"),
            (
                "password='SECRET",
                "unterminated quoted value of \"password\"",
            ),
            (
                "postgresql://u:SECRET%zz@h",
                "invalid percent-encoding in the URI's password",
            ),
            (
                "postgresql://u:SECRET%00@h",
                "forbidden %00 in the URI's password",
            ),
            ("postgresql://[::1/db", "missing \"]\""),
            ("postgresql://[]/db", "empty IPv6"),
            ("postgresql://[::1]x/db", "unexpected character"),
            ("postgresql://h/db?password", "needs exactly one \"=\""),
            (
                "postgresql://h/db?password=SECRET=x",
                "needs exactly one \"=\"",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains("SECRET"), "{text:?}: {err}");
        }
    }

    #[test]
    fn table_of_redactions() {
        #[rustfmt::skip]
        let cases = [
            ("app", "app"),
            ("postgresql://u:secret@h:5432/db?sslmode=require", "postgresql://u:***@h:5432/db?sslmode=require"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgresql://h/db?user=u&password=secret&sslmode=require", "postgresql://h/db?user=u&password=***&sslmode=require"),
            ("postgresql://h/db?pass%77ord=secret", "postgresql://h/db?pass%77ord=***"),
            ("postgresql://u:pa?ss@h/db", "postgresql://u:***@h/db"),
            // Malformed for libpq (a "/" in the password), still hidden.
            ("postgresql://u:se/cret@h/db", "postgresql://u:***@h/db"),
            ("postgresql://u:se/c?ret@h/db", "postgresql://u:***@h/db"),
            ("host=h password=secret dbname=d", "host=h password=*** dbname=d"),
            ("password = 'sec ret' dbname=d", "password=*** dbname=d"),
            (r"password='sec\' ret' dbname=d", "password=*** dbname=d"),
            (r"password=sec\ ret dbname=d", "password=*** dbname=d"),
            ("dbname=d password='unterminated secret", "dbname=d password=***"),
            ("dbname=d password secret", "dbname=d password ***"),
        ];
        for (text, want) in cases {
            let got = redact(text);
            assert_eq!(got, want, "{text:?}");
            assert!(
                !got.contains("secret") && !got.contains("sec"),
                "{text:?}: {got}"
            );
        }
    }
}
