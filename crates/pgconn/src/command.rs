//! The same settings for libpq's own client programs (`pg_dump`, `pg_restore`, `psql`),
//! through their environment.
//!
//! Everything goes through libpq's environment variables, nothing through argv: argv
//! is world-readable (`ps`, `/proc/PID/cmdline`), the environment is not. The variables
//! this crate manages are first removed from what the child inherits, so the child
//! connects with exactly these settings: a URI's host beats an inherited `PGHOST` for
//! the child as it did for us.

use std::ffi::OsStr;
use std::process::Command;

use crate::settings::Settings;

/// The libpq variables [`Settings::command`] manages: removed from the inherited
/// environment, then set from the settings.
pub const CHILD_ENV: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSSLMODE",
    "PGREQUIRESSL",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGCONNECT_TIMEOUT",
    "PGAPPNAME",
    "PGOPTIONS",
    "PGSERVICE",
];

impl Settings {
    /// A command running `program` (a libpq client such as `pg_dump`) that connects
    /// where and as these settings do: host(s), port(s), user, database (`PGDATABASE`,
    /// the plain name), password if one was given, password file, sslmode, root and
    /// client certificates, connect timeout and application name, all in its
    /// environment.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.apply_to(&mut cmd);
        cmd
    }

    /// Sets these settings in `cmd`'s environment (see [`Settings::command`]).
    pub fn apply_to(&self, cmd: &mut Command) {
        for name in CHILD_ENV {
            cmd.env_remove(name);
        }
        for (name, value) in self.child_env() {
            cmd.env(name, value);
        }
    }

    /// The variables [`Settings::apply_to`] sets, password included.
    fn child_env(&self) -> Vec<(&'static str, String)> {
        let join = |items: Vec<String>| items.join(",");
        let mut env = vec![
            (
                "PGHOST",
                join(self.hosts.iter().map(|h| h.to_string()).collect()),
            ),
            (
                "PGPORT",
                join(self.ports.iter().map(|p| p.to_string()).collect()),
            ),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", self.dbname.clone()),
            ("PGSSLMODE", self.sslmode.as_str().to_owned()),
            (
                "PGCONNECT_TIMEOUT",
                self.connect_timeout.map_or(0, |t| t.as_secs()).to_string(),
            ),
            ("PGAPPNAME", self.application_name.clone()),
        ];
        if let Some(password) = &self.password {
            env.push(("PGPASSWORD", password.expose().to_owned()));
        }
        for (name, path) in [
            ("PGPASSFILE", &self.passfile),
            ("PGSSLROOTCERT", &self.sslrootcert),
            ("PGSSLCERT", &self.sslcert),
            ("PGSSLKEY", &self.sslkey),
        ] {
            if let Some(path) = path {
                env.push((name, path.display().to_string()));
            }
        }
        if let Some(options) = &self.options {
            env.push(("PGOPTIONS", options.clone()));
        }
        env
    }
}

/// `dbname='…'`: a keyword/value string naming only `database`, quoted so that any name
/// is safe to pass where libpq expands a `dbname` (`pg_restore --dbname`): a bare name
/// containing `=` would be taken as a connection string.
pub fn dbname_conninfo(database: &str) -> String {
    format!(
        "dbname='{}'",
        database.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::Password;

    fn envs(cmd: &Command) -> BTreeMap<String, Option<String>> {
        cmd.get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn table_of_child_environments() {
        let uri = Settings::builder()
            .host("ignored")
            .conninfo("postgresql://u:s3cret@db1:5433,db2:5434/app?sslmode=verify-full&sslrootcert=/ca.crt&application_name=nightly&connect_timeout=0")
            .build()
            .unwrap();
        let plain = Settings::builder()
            .host("/run/pg")
            .user("backup")
            .dbname("x")
            .build()
            .unwrap();
        // (settings, variable, value; None: removed, not set)
        #[rustfmt::skip]
        let cases: [(&Settings, &str, Option<&str>); 17] = [
            (&uri, "PGHOST", Some("db1,db2")),
            (&uri, "PGPORT", Some("5433,5434")),
            (&uri, "PGUSER", Some("u")),
            (&uri, "PGDATABASE", Some("app")),
            (&uri, "PGPASSWORD", Some("s3cret")),
            (&uri, "PGSSLMODE", Some("verify-full")),
            (&uri, "PGSSLROOTCERT", Some("/ca.crt")),
            (&uri, "PGCONNECT_TIMEOUT", Some("0")),
            (&uri, "PGAPPNAME", Some("nightly")),
            (&uri, "PGHOSTADDR", None),
            (&uri, "PGSERVICE", None),
            (&plain, "PGHOST", Some("/run/pg")),
            (&plain, "PGPORT", Some("5432")),
            (&plain, "PGPASSWORD", None),
            (&plain, "PGSSLMODE", Some("prefer")),
            (&plain, "PGCONNECT_TIMEOUT", Some("15")),
            (&plain, "PGAPPNAME", Some("stackvault")),
        ];
        for (settings, name, want) in cases {
            let cmd = settings.command("pg_dump");
            assert_eq!(
                envs(&cmd).get(name).cloned().flatten().as_deref(),
                want,
                "{name}"
            );
            assert!(envs(&cmd).contains_key(name), "{name} is managed");
            assert_eq!(cmd.get_args().count(), 0, "nothing in argv");
        }
    }

    #[test]
    fn a_password_from_the_builder_reaches_only_the_environment() {
        let s = Settings::builder()
            .user("u")
            .password(Password::new("pw"))
            .build()
            .unwrap();
        let cmd = s.command("pg_restore");
        assert_eq!(envs(&cmd)["PGPASSWORD"].as_deref(), Some("pw"));
        assert!(!format!("{:?}", cmd.get_args().collect::<Vec<_>>()).contains("pw"));
    }

    #[test]
    fn table_of_dbname_quoting() {
        let cases = [
            ("app", "dbname='app'"),
            ("a'b\\c", "dbname='a\\'b\\\\c'"),
            ("x=y", "dbname='x=y'"),
        ];
        for (name, want) in cases {
            assert_eq!(dbname_conninfo(name), want);
            let parsed = crate::conninfo::parse(&dbname_conninfo(name)).unwrap();
            assert_eq!(
                parsed,
                [("dbname".to_owned(), name.to_owned())],
                "round trip"
            );
        }
    }
}
