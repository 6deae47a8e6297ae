//! libpq's password file (`~/.pgpass` or `$PGPASSFILE`), so the counting connection finds
//! the same password `pg_dump` finds there: operators keep passwords in it precisely to
//! keep them out of the environment.
//!
//! Format (libpq docs): `hostname:port:database:username:password` per line, `*` matches
//! anything in the first four fields, `\:` and `\\` escape, `#` starts a comment line. The
//! first matching line wins. libpq ignores the file when it is readable by group or others,
//! and so does this.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// Where libpq would look.
pub fn location() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE") {
        Some(path) => Some(PathBuf::from(path)),
        None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pgpass")),
    }
}

/// The password for this connection from the password file, if it has one.
pub fn lookup(host: &str, port: u16, database: &str, user: &str) -> Option<String> {
    let path = location()?;
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    find(&text, host, port, database, user)
}

/// libpq matches a socket directory as `localhost`.
fn host_for_matching(host: &str) -> &str {
    if host.starts_with('/') {
        "localhost"
    } else {
        host
    }
}

fn find(text: &str, host: &str, port: u16, database: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    let wanted = [host_for_matching(host), port.as_str(), database, user];
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(split_fields)
        .find(|fields| {
            fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(field, want)| field == "*" || field == want)
        })
        .map(|mut fields| fields.remove(4))
}

fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().unwrap().push(next);
                }
            }
            ':' => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::find;

    const FILE: &str = "\
# comment
db.internal:5432:app:backup:s3cret
*:5433:*:backup:other
localhost:*:*:*:with\\:colon\\\\
";

    #[test]
    fn table_of_lookups() {
        let cases = [
            (("db.internal", 5432, "app", "backup"), Some("s3cret")),
            (("db.internal", 5432, "other", "backup"), None),
            (("anyhost", 5433, "x", "backup"), Some("other")),
            (
                ("/var/run/postgresql", 5432, "x", "y"),
                Some("with:colon\\"),
            ),
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
}
