//! libpq's password file (`~/.pgpass`, or `PGPASSFILE` / `passfile`), so stackvault's own
//! connections find the same password `pg_dump` finds there: operators keep passwords
//! in it precisely to keep them out of the environment.
//!
//! Format (libpq docs): `hostname:port:database:username:password` per line; a field of
//! exactly `*` matches anything in the first four; `\:` and `\\` escape (so `\*` is a
//! literal star); lines starting with `#` are comments. The first matching line wins.
//! libpq ignores the file when it is not a plain file or is readable by group or others,
//! and so does this. A Unix socket in libpq's default directory matches `localhost`;
//! any other socket directory matches by its path, as in libpq.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::settings::{Host, DEFAULT_SOCKET_DIR};

/// The password for this connection from the password file at `path`, if it has one.
pub fn lookup(path: &Path, host: &Host, port: u16, database: &str, user: &str) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    find(&text, &host_for_matching(host), port, database, user)
}

fn host_for_matching(host: &Host) -> String {
    match host {
        Host::Socket(dir) if dir == Path::new(DEFAULT_SOCKET_DIR) => "localhost".into(),
        Host::Socket(dir) => dir.display().to_string(),
        Host::Tcp(name) => name.clone(),
    }
}

/// The first line of `text` matching the four values.
pub(crate) fn find(
    text: &str,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<String> {
    let port = port.to_string();
    let wanted = [host, port.as_str(), database, user];
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(split_fields)
        .find(|fields| {
            // libpq takes the password up to the next unescaped ':' and ignores the rest.
            fields.len() >= 5
                && fields[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(field, want)| field.wildcard || field.text == want)
        })
        .map(|mut fields| fields.swap_remove(4).text)
}

struct Field {
    text: String,
    /// Exactly an unescaped `*`.
    wildcard: bool,
}

fn split_fields(line: &str) -> Vec<Field> {
    let mut fields = Vec::new();
    let mut text = String::new();
    let mut escaped_any = false;
    let mut chars = line.chars();
    let mut finish = |text: &mut String, escaped: bool| {
        let wildcard = text == "*" && !escaped;
        fields.push(Field {
            text: std::mem::take(text),
            wildcard,
        });
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                escaped_any = true;
                text.extend(chars.next());
            }
            ':' => {
                finish(&mut text, escaped_any);
                escaped_any = false;
            }
            c => text.push(c),
        }
    }
    finish(&mut text, escaped_any);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# comment
db.internal:5432:app:backup:s3cret
*:5433:*:backup:other
/tmp/sock:*:*:*:by-socket-path
\\*:5434:*:*:literal-star
*:5434:*:*:after-literal-star
*:5435:*:*:pass\\:with\\:colons:ignored
localhost:*:*:*:with\\:colon\\\\
";

    #[test]
    fn table_of_lookups() {
        #[rustfmt::skip]
        let cases = [
            (("db.internal", 5432, "app", "backup"), Some("s3cret")),
            (("db.internal", 5432, "other", "backup"), None),
            (("anyhost", 5433, "x", "backup"), Some("other")),
            (("/tmp/sock", 1, "x", "y"), Some("by-socket-path")),
            (("*", 5434, "x", "y"), Some("literal-star")),
            (("h", 5434, "x", "y"), Some("after-literal-star")),
            (("h", 5435, "x", "y"), Some("pass:with:colons")),
            (("localhost", 1, "x", "y"), Some("with:colon\\")),
            (("elsewhere", 5432, "app", "backup"), None),
        ];
        for ((host, port, db, user), want) in cases {
            assert_eq!(
                find(FILE, host, port, db, user).as_deref(),
                want,
                "{host} {port} {db} {user}"
            );
        }
    }

    #[test]
    fn table_of_socket_matching() {
        let cases = [
            (Host::Socket(DEFAULT_SOCKET_DIR.into()), "localhost"),
            (Host::Socket("/tmp/sock".into()), "/tmp/sock"),
            (Host::Tcp("db".into()), "db"),
        ];
        for (host, want) in cases {
            assert_eq!(host_for_matching(&host), want, "{host:?}");
        }
    }

    #[test]
    fn a_file_others_can_read_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:pw\n").unwrap();
        let host = Host::Tcp("h".into());
        for (mode, want) in [(0o600, Some("pw")), (0o644, None), (0o640, None)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                lookup(&path, &host, 5432, "d", "u").as_deref(),
                want,
                "{mode:o}"
            );
        }
    }
}
