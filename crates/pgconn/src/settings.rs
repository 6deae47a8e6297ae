//! Connection settings: where, who, which database, and how (TLS, timeout), gathered
//! the way libpq gathers them.
//!
//! Precedence, as in `pg_dump -h H -d URI`: a connection string given as the database
//! name beats the flags (libpq: keywords of an expanded `dbname` override those before
//! it), flags beat the environment, the environment beats the defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::conninfo;
use crate::error::Error;
use crate::sslmode::SslMode;
use crate::Password;

/// Where libpq on Debian looks for the server's socket.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// libpq's default port.
pub const DEFAULT_PORT: u16 = 5432;
/// How long one connection attempt may take when `connect_timeout` is not set (libpq
/// would wait forever; a backup that hangs is worse than one that fails).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// `application_name` the server shows when none is set (`PGAPPNAME` overrides it).
pub const DEFAULT_APPLICATION_NAME: &str = "stackvault";

/// A server to connect to: a TCP host name or address, or a Unix socket directory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name or IP address.
    Tcp(String),
    /// The directory holding the server's socket (a host that starts with `/`).
    Socket(PathBuf),
}

impl Host {
    /// libpq's reading of a `host` entry: a leading `/` makes it a socket directory.
    pub fn parse(text: &str) -> Host {
        if text.starts_with('/') {
            Host::Socket(PathBuf::from(text))
        } else {
            Host::Tcp(text.to_owned())
        }
    }

    /// libpq's default: the Debian socket directory if it exists, else `localhost`.
    pub fn default_host() -> Host {
        if Path::new(DEFAULT_SOCKET_DIR).is_dir() {
            Host::Socket(DEFAULT_SOCKET_DIR.into())
        } else {
            Host::Tcp("localhost".into())
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Tcp(name) => f.write_str(name),
            Host::Socket(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// The keywords this crate understands, with the environment variable libpq reads for
/// each. `dbname`'s variable is handled apart (it may be a connection string).
const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("port", Some("PGPORT")),
    ("user", Some("PGUSER")),
    ("dbname", None),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("sslmode", Some("PGSSLMODE")),
    ("requiressl", Some("PGREQUIRESSL")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("options", Some("PGOPTIONS")),
];

/// libpq 15's other keywords: refused by name rather than ignored, because `pg_dump`
/// would honour them and stackvault's own connections would not.
const UNSUPPORTED: &[&str] = &[
    "hostaddr",
    "service",
    "channel_binding",
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslpassword",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslcertmode",
    "sslnegotiation",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "target_session_attrs",
    "load_balance_hosts",
    "require_auth",
    "replication",
];

/// Environment variables of libpq that change where or how it connects in ways this
/// crate does not implement: set, they are an error rather than a silent difference
/// between `pg_dump` and stackvault.
const UNSUPPORTED_ENV: &[&str] = &["PGHOSTADDR", "PGSERVICE"];

/// Builds [`Settings`] from typed values, keyword/value pairs, connection strings and
/// the environment. Every setter overrides what an earlier one set; [`Builder::env`]
/// only fills what is still unset. Nothing is validated until [`Builder::build`], which
/// reports the first problem.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    params: BTreeMap<&'static str, String>,
    password: Option<Password>,
    home: Option<PathBuf>,
    /// The first problem found, reported by `build` (a message: config errors have no
    /// source).
    error: Option<String>,
}

impl Builder {
    fn keyword(name: &str) -> Result<&'static str, String> {
        if let Some((kw, _)) = KEYWORDS.iter().find(|(kw, _)| *kw == name) {
            return Ok(kw);
        }
        if UNSUPPORTED.contains(&name) {
            return Err(format!(
                "connection option {name:?} is not supported by stackvault"
            ));
        }
        Err(format!("invalid connection option {name:?}"))
    }

    fn fail(&mut self, message: String) {
        self.error.get_or_insert(message);
    }

    fn put(&mut self, keyword: &'static str, value: String, overwrite: bool) {
        if keyword == "password" {
            if overwrite || self.password.is_none() {
                self.password = Some(Password::new(value));
            }
        } else if overwrite || !self.params.contains_key(keyword) {
            self.params.insert(keyword, value);
        }
    }

    /// Sets a libpq keyword (`host`, `sslmode`, ...) to `value`, as a connection string
    /// would.
    pub fn set(mut self, keyword: &str, value: impl Into<String>) -> Self {
        match Builder::keyword(keyword) {
            Ok(kw) => self.put(kw, value.into(), true),
            Err(e) => self.fail(e),
        }
        self
    }

    /// Host names or socket directories, comma-separated, tried in order.
    pub fn host(self, host: impl Into<String>) -> Self {
        self.set("host", host)
    }

    /// The port (for every host).
    pub fn port(self, port: u16) -> Self {
        self.set("port", port.to_string())
    }

    /// The user name.
    pub fn user(self, user: impl Into<String>) -> Self {
        self.set("user", user)
    }

    /// The database name, taken literally (see [`Builder::dbname_or_conninfo`]).
    pub fn dbname(self, dbname: impl Into<String>) -> Self {
        self.set("dbname", dbname)
    }

    /// The password.
    pub fn password(mut self, password: Password) -> Self {
        self.password = Some(password);
        self
    }

    /// The TLS mode.
    pub fn sslmode(self, mode: SslMode) -> Self {
        self.set("sslmode", mode.as_str())
    }

    /// The file of root certificates the server's certificate must chain to.
    pub fn sslrootcert(self, path: impl AsRef<Path>) -> Self {
        self.set("sslrootcert", path.as_ref().display().to_string())
    }

    /// A client certificate (chain) to present, and its key.
    pub fn client_cert(self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.set("sslcert", cert.as_ref().display().to_string())
            .set("sslkey", key.as_ref().display().to_string())
    }

    /// How long one connection attempt may take; `None` waits forever.
    pub fn connect_timeout(self, timeout: Option<Duration>) -> Self {
        let secs = timeout.map_or(0, |t| t.as_secs().max(1));
        self.set("connect_timeout", secs.to_string())
    }

    /// `application_name` for the server's activity view.
    pub fn application_name(self, name: impl Into<String>) -> Self {
        self.set("application_name", name)
    }

    /// Applies a URI or keyword/value connection string: its keywords override what was
    /// set before.
    pub fn conninfo(mut self, text: &str) -> Self {
        self.apply_conninfo(text, true);
        self
    }

    /// What libpq does with a `dbname`: a connection string (see
    /// [`crate::is_conninfo`]) is expanded and overrides what was set before; anything
    /// else is the database name.
    pub fn dbname_or_conninfo(self, dbname: &str) -> Self {
        if conninfo::is_conninfo(dbname) {
            self.conninfo(dbname)
        } else {
            self.dbname(dbname)
        }
    }

    fn apply_conninfo(&mut self, text: &str, overwrite: bool) {
        let pairs = match conninfo::parse(text) {
            Ok(pairs) => pairs,
            // A URI is shown, redacted (its secrets have fixed places); a keyword/value
            // string that does not parse is not: any word of it may be a password.
            Err(e) if text.contains("://") => {
                return self.fail(format!("{e} (in {})", conninfo::redact(text)))
            }
            Err(e) => return self.fail(e.to_string()),
        };
        for (keyword, value) in pairs {
            match Builder::keyword(&keyword) {
                Ok(kw) => self.put(kw, value, overwrite),
                Err(e) => return self.fail(e),
            }
        }
    }

    /// Fills what is still unset from libpq's environment variables (`PGHOST`, `PGPORT`,
    /// `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGPASSFILE`, `PGSSLMODE`, `PGSSLROOTCERT`,
    /// `PGSSLCERT`, `PGSSLKEY`, `PGCONNECT_TIMEOUT`, `PGAPPNAME`, `PGOPTIONS`) and takes
    /// `HOME` for libpq's default file locations.
    ///
    /// `PGDATABASE` may be a connection string (libpq itself would take it as a plain
    /// name; stackvault expands it as it expands `--dbname`, which falls back to it):
    /// its keywords fill what is unset before the other variables do, so they beat
    /// `PGHOST` and the like, as they do when it reaches a tool as `--dbname`.
    pub fn env(self) -> Self {
        self.env_with(|name| std::env::var(name).ok())
    }

    /// [`Builder::env`] with the variables from `lookup` instead of the process
    /// environment.
    pub fn env_with(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        for name in UNSUPPORTED_ENV {
            if lookup(name).is_some_and(|v| !v.is_empty()) {
                self.fail(format!(
                    "{name} is set, but stackvault does not support it (pg_dump would use it and \
                     stackvault would not); unset it and use PGHOST"
                ));
            }
        }
        if let Some(db) = lookup("PGDATABASE").filter(|v| !v.is_empty()) {
            if conninfo::is_conninfo(&db) {
                self.apply_conninfo(&db, false);
            } else {
                self.put("dbname", db, false);
            }
        }
        for (keyword, var) in KEYWORDS {
            if let Some(value) = var.and_then(&lookup).filter(|v| !v.is_empty()) {
                self.put(keyword, value, false);
            }
        }
        if let Some(home) = lookup("HOME").filter(|v| !v.is_empty()) {
            self.home = Some(PathBuf::from(home));
        }
        self
    }

    /// Validates everything and applies libpq's defaults.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Config`] for the first invalid or unsupported setting.
    pub fn build(self) -> Result<Settings, Error> {
        if let Some(message) = self.error {
            return Err(Error::config(message));
        }
        let p = |kw: &str| self.params.get(kw).map(String::as_str);
        let hosts: Vec<Host> = p("host")
            .unwrap_or("")
            .split(',')
            .map(|h| {
                if h.is_empty() {
                    Host::default_host()
                } else {
                    Host::parse(h)
                }
            })
            .collect();
        let ports = p("port")
            .unwrap_or("")
            .split(',')
            .map(|port| match port {
                "" => Ok(DEFAULT_PORT),
                port => port
                    .parse::<u16>()
                    .ok()
                    .filter(|&n| n != 0)
                    .ok_or_else(|| Error::config(format!("invalid port number {port:?}"))),
            })
            .collect::<Result<Vec<u16>, Error>>()?;
        if ports.len() != 1 && ports.len() != hosts.len() {
            return Err(Error::config(format!(
                "could not match {} port numbers to {} hosts",
                ports.len(),
                hosts.len()
            )));
        }
        let user = match p("user") {
            Some(user) if !user.is_empty() => user.to_owned(),
            _ => whoami::username().map_err(|e| {
                Error::config(format!(
                    "no user name given and the operating-system user is unknown: {e}"
                ))
            })?,
        };
        let dbname = p("dbname")
            .filter(|d| !d.is_empty())
            .unwrap_or(&user)
            .to_owned();
        let sslmode = match (p("sslmode"), p("requiressl")) {
            (Some(mode), _) => mode.parse().map_err(|e| Error::config(format!("{e}")))?,
            // libpq's deprecated requiressl=1 means sslmode=require.
            (None, Some("1")) => SslMode::Require,
            (None, Some("0") | None) => SslMode::Prefer,
            (None, Some(other)) => {
                return Err(Error::config(format!(
                    "invalid requiressl value {other:?} (0 or 1)"
                )))
            }
        };
        let connect_timeout = match p("connect_timeout") {
            None => Some(DEFAULT_CONNECT_TIMEOUT),
            Some(text) => match text.trim().parse::<i64>() {
                // libpq: zero or negative waits forever, and anything below 2 s is 2 s.
                Ok(n) if n <= 0 => None,
                Ok(n) => Some(Duration::from_secs(n.max(2) as u64)),
                Err(_) => {
                    return Err(Error::config(format!(
                        "invalid integer value {text:?} for connection option \"connect_timeout\""
                    )))
                }
            },
        };
        let home = self
            .home
            .clone()
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from));
        let in_home = |rel: &str| home.as_ref().map(|h| h.join(rel));
        let path_or = |kw: &str, default: &str| {
            p(kw)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| in_home(default))
        };
        Ok(Settings {
            hosts,
            ports,
            user,
            dbname,
            password: self.password.clone().filter(|p| !p.expose().is_empty()),
            passfile: path_or("passfile", ".pgpass"),
            sslmode,
            sslrootcert: path_or("sslrootcert", ".postgresql/root.crt"),
            sslcert: path_or("sslcert", ".postgresql/postgresql.crt"),
            sslkey: path_or("sslkey", ".postgresql/postgresql.key"),
            connect_timeout,
            application_name: p("application_name")
                .or(p("fallback_application_name"))
                .unwrap_or(DEFAULT_APPLICATION_NAME)
                .to_owned(),
            options: p("options").filter(|o| !o.is_empty()).map(str::to_owned),
        })
    }
}

/// Resolved connection settings: every default applied, every value valid. Cheap to
/// clone; [`Settings::for_database`] gives the same server with another database.
///
/// `Debug` shows no password ([`Password`] prints `<redacted>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub(crate) hosts: Vec<Host>,
    pub(crate) ports: Vec<u16>,
    pub(crate) user: String,
    pub(crate) dbname: String,
    pub(crate) password: Option<Password>,
    pub(crate) passfile: Option<PathBuf>,
    pub(crate) sslmode: SslMode,
    pub(crate) sslrootcert: Option<PathBuf>,
    pub(crate) sslcert: Option<PathBuf>,
    pub(crate) sslkey: Option<PathBuf>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) application_name: String,
    pub(crate) options: Option<String>,
}

impl Settings {
    /// A builder with nothing set.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// libpq's environment and defaults alone (what `psql` with no arguments uses).
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    pub fn from_env() -> Result<Settings, Error> {
        Settings::builder().env().build()
    }

    /// The same server, user and TLS settings, connecting to `database` (a plain name).
    pub fn for_database(&self, database: &str) -> Settings {
        Settings {
            dbname: database.to_owned(),
            ..self.clone()
        }
    }

    /// The hosts, tried in order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The port of each host, in order.
    pub fn endpoints(&self) -> impl Iterator<Item = (&Host, u16)> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h, *self.ports.get(i).unwrap_or(&self.ports[0])))
    }

    /// The ports as given: one for all hosts, or one per host.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The database name (only the name, even when it came from a URI).
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The password given (URI, conninfo, `PGPASSWORD` or the builder); the password
    /// file is read only when connecting.
    pub fn password(&self) -> Option<&Password> {
        self.password.as_ref()
    }

    /// The TLS mode.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// The root certificate file (given, or libpq's `~/.postgresql/root.crt`); it need
    /// not exist.
    pub fn sslrootcert(&self) -> Option<&Path> {
        self.sslrootcert.as_deref()
    }

    /// How long one connection attempt may take; `None` waits forever.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The `application_name` sent to the server.
    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// `host:port` of every endpoint, comma-separated.
    pub fn server(&self) -> String {
        self.endpoints()
            .map(|(h, port)| format!("{h}:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `host:port/database`, for messages (no user, no password).
    pub fn target(&self) -> String {
        format!("{}/{}", self.server(), self.dbname)
    }

    pub(crate) fn endpoint_target(&self, host: &Host, port: u16) -> String {
        format!("{host}:{port}/{}", self.dbname)
    }
}

/// The connection flags of a tool, each falling back to the libpq variable `psql` and
/// `pg_dump` use. The rest of libpq's settings (`PGSSLMODE`, `PGSSLROOTCERT`,
/// `PGPASSWORD`, ...) come from the environment, or from a connection string given as
/// the database name; secrets never come from a flag, so never from argv or `ps`.
#[derive(Clone, Debug, Default, clap::Args)]
// A tool may flatten these into its own `PgArgs`: a group id of our own avoids clashes.
#[group(id = "pgconn")]
pub struct PgArgs {
    /// Server host name or address, or the directory of its Unix socket; a comma-separated list is tried in order [default: /var/run/postgresql if present, else localhost].
    #[arg(long, env = "PGHOST", value_name = "HOST")]
    pub host: Option<String>,

    /// Server port, or one per host, comma-separated [default: 5432].
    #[arg(long, env = "PGPORT", value_name = "PORT")]
    pub port: Option<String>,

    /// User name [default: the operating-system user].
    #[arg(long, env = "PGUSER", value_name = "USER")]
    pub username: Option<String>,
}

impl PgArgs {
    /// The settings for these flags, with `dbname` (a name, URI or keyword/value string,
    /// from `--dbname`/`PGDATABASE`) applied over them and the rest of libpq's
    /// environment under them.
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    pub fn settings(&self, dbname: Option<&str>) -> Result<Settings, Error> {
        self.builder(dbname).env().build()
    }

    /// The builder [`PgArgs::settings`] builds, before the environment is applied.
    pub fn builder(&self, dbname: Option<&str>) -> Builder {
        let mut b = Settings::builder();
        for (keyword, value) in [
            ("host", &self.host),
            ("port", &self.port),
            ("user", &self.username),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                b = b.set(keyword, value);
            }
        }
        match dbname.filter(|d| !d.is_empty()) {
            Some(dbname) => b.dbname_or_conninfo(dbname),
            None => b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    /// A compact view of settings for one-line expectations:
    /// `hosts ports user dbname password sslmode timeout`.
    fn view(s: &Settings) -> String {
        format!(
            "{} {} {} {} {} {} {}",
            s.hosts
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .join(","),
            s.ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
            s.user,
            s.dbname,
            s.password.as_ref().map_or("-", |p| p.expose()),
            s.sslmode,
            s.connect_timeout
                .map_or("none".into(), |t| t.as_secs().to_string()),
        )
    }

    #[test]
    fn table_of_precedence() {
        let envs: &[(&str, &str)] = &[
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGPASSWORD", "envpw"),
            ("PGSSLMODE", "require"),
            ("HOME", "/home/x"),
        ];
        #[rustfmt::skip]
        let cases: &[(PgArgs, Option<&str>, &str)] = &[
            (PgArgs::default(), None, "envhost 6000 envuser envuser envpw require 15"),
            (PgArgs::default(), Some("app"), "envhost 6000 envuser app envpw require 15"),
            (PgArgs { host: Some("flaghost".into()), ..Default::default() }, Some("app"), "flaghost 6000 envuser app envpw require 15"),
            // A URI as the database name beats the flags and the environment ...
            (PgArgs { host: Some("flaghost".into()), ..Default::default() },
             Some("postgresql://u:uripw@urihost:7000/uridb?sslmode=verify-full&connect_timeout=1"),
             "urihost 7000 u uridb uripw verify-full 2"),
            // ... but only for what it says.
            (PgArgs { port: Some("5433".into()), ..Default::default() }, Some("host=h dbname=d"), "h 5433 envuser d envpw require 15"),
            (PgArgs::default(), Some("dbname=d connect_timeout=0 password=''"), "envhost 6000 envuser d - require none"),
            (PgArgs { host: Some("a,/tmp/s".into()), port: Some("1,2".into()), ..Default::default() }, Some("d"), "a,/tmp/s 1,2 envuser d envpw require 15"),
        ];
        for (args, dbname, want) in cases {
            let s = args.builder(*dbname).env_with(env(envs)).build().unwrap();
            assert_eq!(view(&s), *want, "{args:?} {dbname:?}");
        }
    }

    #[test]
    fn table_of_environments() {
        #[rustfmt::skip]
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("PGHOST", "h"), ("PGUSER", "u")], "h 5432 u u - prefer 15"),
            (&[("PGHOST", "h"), ("PGUSER", "u"), ("PGDATABASE", "app")], "h 5432 u app - prefer 15"),
            // PGDATABASE as a connection string beats PGHOST and PGSSLMODE, as --dbname does.
            (&[("PGHOST", "h"), ("PGUSER", "u"), ("PGSSLMODE", "require"), ("PGDATABASE", "postgresql://other:9/app?sslmode=disable")], "other 9 u app - disable 15"),
            (&[("PGHOST", "h"), ("PGUSER", "u"), ("PGREQUIRESSL", "1")], "h 5432 u u - require 15"),
            (&[("PGHOST", "h"), ("PGUSER", "u"), ("PGREQUIRESSL", "1"), ("PGSSLMODE", "allow")], "h 5432 u u - allow 15"),
            (&[("PGHOST", ""), ("PGPORT", ""), ("PGUSER", "u")], &format!("{} 5432 u u - prefer 15", Host::default_host())),
            (&[("PGHOST", "h,"), ("PGPORT", ",5"), ("PGUSER", "u"), ("PGCONNECT_TIMEOUT", "30")], &format!("h,{} 5432,5 u u - prefer 30", Host::default_host())),
        ];
        for (vars, want) in cases {
            let s = Settings::builder().env_with(env(vars)).build().unwrap();
            assert_eq!(view(&s), *want, "{vars:?}");
        }
    }

    #[test]
    fn table_of_default_files() {
        let home = [("HOME", "/home/x"), ("PGUSER", "u")];
        let s = Settings::builder().env_with(env(&home)).build().unwrap();
        assert_eq!(
            s.sslrootcert.as_deref(),
            Some(Path::new("/home/x/.postgresql/root.crt"))
        );
        assert_eq!(
            s.sslcert.as_deref(),
            Some(Path::new("/home/x/.postgresql/postgresql.crt"))
        );
        assert_eq!(
            s.sslkey.as_deref(),
            Some(Path::new("/home/x/.postgresql/postgresql.key"))
        );
        assert_eq!(s.passfile.as_deref(), Some(Path::new("/home/x/.pgpass")));
        let given = [
            ("HOME", "/home/x"),
            ("PGUSER", "u"),
            ("PGSSLROOTCERT", "/ca.crt"),
            ("PGPASSFILE", "/pw"),
        ];
        let s = Settings::builder().env_with(env(&given)).build().unwrap();
        assert_eq!(s.sslrootcert.as_deref(), Some(Path::new("/ca.crt")));
        assert_eq!(s.passfile.as_deref(), Some(Path::new("/pw")));
    }

    #[test]
    fn table_of_invalid_settings() {
        #[rustfmt::skip]
        let cases: &[(Builder, &str)] = &[
            (Settings::builder().set("sslmode", "required"), "invalid sslmode value \"required\""),
            (Settings::builder().set("port", "54x"), "invalid port number \"54x\""),
            (Settings::builder().set("port", "0"), "invalid port number \"0\""),
            (Settings::builder().host("a,b,c").set("port", "1,2"), "could not match 2 port numbers to 3 hosts"),
            (Settings::builder().set("connect_timeout", "soon"), "invalid integer value \"soon\""),
            (Settings::builder().set("bogus", "1"), "invalid connection option \"bogus\""),
            (Settings::builder().set("hostaddr", "127.0.0.1"), "\"hostaddr\" is not supported"),
            (Settings::builder().conninfo("postgresql://h/d?target_session_attrs=any"), "\"target_session_attrs\" is not supported"),
            (Settings::builder().conninfo("host=h secret"), "missing \"=\" after word 2"),
            (Settings::builder().conninfo("postgresql://u:secret@h:x%zz/d"), "invalid percent-encoding in the URI's port (in postgresql://u:***@h:x%zz/d)"),
            (Settings::builder().set("requiressl", "yes"), "invalid requiressl value"),
            (Settings::builder().env_with(env(&[("PGHOSTADDR", "127.0.0.1")])), "PGHOSTADDR is set"),
            (Settings::builder().env_with(env(&[("PGSERVICE", "prod")])), "PGSERVICE is set"),
        ];
        for (builder, want) in cases {
            let err = builder.clone().user("u").build().expect_err(want);
            assert_eq!(err.kind(), crate::ErrorKind::Config);
            let text = err.to_string();
            assert!(text.contains(want), "{text}");
            assert!(!text.contains("secret"), "{text}");
        }
    }

    #[test]
    fn no_secret_in_debug() {
        let s = Settings::builder()
            .conninfo("postgresql://u:hunter2@h/d")
            .build()
            .unwrap();
        assert_eq!(s.password().unwrap().expose(), "hunter2");
        let debug = format!(
            "{s:?} {:?}",
            Settings::builder().conninfo("password=hunter2")
        );
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(s.target(), "h:5432/d");
    }
}
