//! pgconn and libpq agree: for each case, the same settings given to pgconn and to
//! `psql` (libpq itself) either both connect, with TLS or without it, or both fail, and
//! `psql` run with pgconn's own child environment ([`pgconn::Settings::command`], what
//! `pg_dump` gets) does the same. Against the cluster `scripts/test` starts, whose
//! pg_hba.conf has roles that may log in only with TLS (`stackvault_ssl`), only without
//! it (`stackvault_nossl`), or only with a client certificate (`stackvault_cert`), and
//! which listens on 127.0.0.2, an address its certificate does not name
//! (scripts/lib/postgres.sh).

use std::collections::BTreeMap;
use std::process::Command;

use pgconn::{ErrorKind, Settings};

fn required(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the PostgreSQL cluster that the test command \
             provisions; run the suite with scripts/test"
        )
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Plain,
    Tls,
    Fails,
}
use Outcome::*;

/// Which root certificate file the client has.
#[derive(Clone, Copy, Debug)]
enum Root {
    /// None at all (`~/.postgresql/root.crt` does not exist either).
    Missing,
    /// The CA that signed the server's certificate.
    Good,
    /// An unrelated CA.
    Wrong,
}

struct Cluster {
    socket: String,
    port: String,
    good_ca: String,
    wrong_ca: String,
    ssl_password: String,
    not_in_cert: String,
    client_cert: String,
    client_key: String,
    home: tempfile::TempDir,
}

impl Cluster {
    fn from_env() -> Self {
        Cluster {
            socket: required("STACKVAULT_TEST_PGHOST"),
            port: required("STACKVAULT_TEST_PGPORT"),
            good_ca: required("STACKVAULT_TEST_PGSSLROOTCERT"),
            wrong_ca: required("STACKVAULT_TEST_PGSSLWRONGCA"),
            ssl_password: required("STACKVAULT_TEST_PGSSLPASSWORD"),
            not_in_cert: required("STACKVAULT_TEST_PGHOST_NOT_IN_CERT"),
            client_cert: required("STACKVAULT_TEST_PGSSLCERT"),
            client_key: required("STACKVAULT_TEST_PGSSLKEY"),
            // An empty home: no ~/.pgpass, no ~/.postgresql/root.crt to change the outcome.
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// libpq's environment for one case. `host` may be `socket` or `not-in-cert`.
    fn env(&self, host: &str, user: &str, mode: &str, root: Root) -> BTreeMap<String, String> {
        let host = match host {
            "socket" => self.socket.clone(),
            "not-in-cert" => self.not_in_cert.clone(),
            other => other.to_owned(),
        };
        let root = match root {
            Root::Missing => self
                .home
                .path()
                .join("no-such-root.crt")
                .display()
                .to_string(),
            Root::Good => self.good_ca.clone(),
            Root::Wrong => self.wrong_ca.clone(),
        };
        let mut env: BTreeMap<String, String> = [
            ("PGHOST", host),
            ("PGPORT", self.port.clone()),
            ("PGUSER", user.to_owned()),
            ("PGDATABASE", "postgres".to_owned()),
            ("PGSSLMODE", mode.to_owned()),
            ("PGSSLROOTCERT", root),
            ("PGCONNECT_TIMEOUT", "10".to_owned()),
            ("HOME", self.home.path().display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if user == "stackvault_ssl" {
            env.insert("PGPASSWORD".into(), self.ssl_password.clone());
        }
        if user == "stackvault_cert" {
            env.insert("PGSSLCERT".into(), self.client_cert.clone());
            env.insert("PGSSLKEY".into(), self.client_key.clone());
        }
        env
    }

    fn uri(&self, template: &str) -> String {
        template
            .replace("{port}", &self.port)
            .replace("{pw}", &self.ssl_password)
            .replace("{ca}", &self.good_ca.replace('/', "%2F"))
            .replace("{wrong}", &self.wrong_ca.replace('/', "%2F"))
    }
}

const QUERY: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn via_pgconn(
    env: &BTreeMap<String, String>,
    uri: Option<&str>,
) -> (Outcome, Option<ErrorKind>, String) {
    let mut builder = Settings::builder();
    if let Some(uri) = uri {
        builder = builder.dbname_or_conninfo(uri);
    }
    let settings = builder
        .env_with(|name| env.get(name).cloned())
        .build()
        .unwrap();
    match settings.connect() {
        Ok(mut client) => {
            let ssl: bool = client.query_one(QUERY, &[]).unwrap().get(0);
            (if ssl { Tls } else { Plain }, None, String::new())
        }
        Err(e) => (Fails, Some(e.kind()), e.to_string()),
    }
}

/// `psql` with `env` as its libpq environment (nothing else of ours: every inherited
/// `PG*` variable is removed first).
fn psql(mut cmd: Command, uri: Option<&str>) -> (Outcome, String) {
    cmd.args(["-X", "-At", "-c", QUERY]);
    if let Some(uri) = uri {
        cmd.arg(uri);
    }
    let out = cmd.output().expect("psql runs");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr)
        .trim()
        .replace('\n', " ");
    match (out.status.success(), stdout.as_str()) {
        (true, "t") => (Tls, stderr),
        (true, "f") => (Plain, stderr),
        (true, other) => panic!("psql printed {other:?}"),
        (false, _) => (Fails, stderr),
    }
}

fn psql_with_env(env: &BTreeMap<String, String>) -> Command {
    let mut cmd = Command::new("psql");
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("PG")) {
        cmd.env_remove(name);
    }
    cmd.envs(env);
    cmd
}

fn psql_from_settings(env: &BTreeMap<String, String>, uri: Option<&str>) -> Command {
    let mut builder = Settings::builder();
    if let Some(uri) = uri {
        builder = builder.dbname_or_conninfo(uri);
    }
    let settings = builder
        .env_with(|name| env.get(name).cloned())
        .build()
        .unwrap();
    let mut cmd = settings.command("psql");
    cmd.env("HOME", &env["HOME"]);
    cmd
}

/// (host, user, sslmode, root certificate, URI given as the database name, outcome,
/// pgconn's error kind when it fails)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Root,
    Option<&'static str>,
    Outcome,
    Option<ErrorKind>,
);

#[test]
fn pgconn_and_psql_agree_on_every_sslmode() {
    let cluster = Cluster::from_env();
    use Root::*;
    #[rustfmt::skip]
    let cases: &[Case] = &[
        // A role that may log in with or without TLS.
        ("127.0.0.1", "postgres", "disable", Missing, None, Plain, None),
        ("127.0.0.1", "postgres", "allow", Missing, None, Plain, None),
        ("127.0.0.1", "postgres", "prefer", Missing, None, Tls, None),
        ("127.0.0.1", "postgres", "require", Missing, None, Tls, None),
        ("127.0.0.1", "postgres", "verify-ca", Missing, None, Fails, Some(ErrorKind::Tls)),
        ("127.0.0.1", "postgres", "verify-full", Missing, None, Fails, Some(ErrorKind::Tls)),
        ("127.0.0.1", "postgres", "verify-ca", Good, None, Tls, None),
        ("127.0.0.1", "postgres", "verify-full", Good, None, Tls, None),
        ("localhost", "postgres", "verify-full", Good, None, Tls, None),
        // A root certificate that exists is checked in every mode ...
        ("127.0.0.1", "postgres", "require", Wrong, None, Fails, Some(ErrorKind::Tls)),
        ("127.0.0.1", "postgres", "verify-ca", Wrong, None, Fails, Some(ErrorKind::Tls)),
        // ... and prefer falls back to plain when it does not verify; allow never tried TLS.
        ("127.0.0.1", "postgres", "prefer", Wrong, None, Plain, None),
        ("127.0.0.1", "postgres", "allow", Wrong, None, Plain, None),
        // Sockets never use TLS, whatever the mode.
        ("socket", "postgres", "require", Good, None, Plain, None),
        ("socket", "postgres", "verify-full", Missing, None, Plain, None),
        // The TLS-only role.
        ("127.0.0.1", "stackvault_ssl", "disable", Missing, None, Fails, Some(ErrorKind::Authentication)),
        ("127.0.0.1", "stackvault_ssl", "allow", Missing, None, Tls, None),
        ("127.0.0.1", "stackvault_ssl", "prefer", Missing, None, Tls, None),
        ("127.0.0.1", "stackvault_ssl", "require", Missing, None, Tls, None),
        ("127.0.0.1", "stackvault_ssl", "allow", Wrong, None, Fails, Some(ErrorKind::Tls)),
        ("127.0.0.1", "stackvault_ssl", "prefer", Wrong, None, Fails, Some(ErrorKind::Authentication)),
        ("socket", "stackvault_ssl", "require", Good, None, Fails, Some(ErrorKind::Authentication)),
        // The certificate names localhost and 127.0.0.1, not 127.0.0.2.
        ("not-in-cert", "stackvault_ssl", "verify-ca", Good, None, Tls, None),
        ("not-in-cert", "stackvault_ssl", "verify-full", Good, None, Fails, Some(ErrorKind::Tls)),
        // The role refused over TLS: prefer retries plain, require cannot.
        ("127.0.0.1", "stackvault_nossl", "prefer", Good, None, Plain, None),
        ("127.0.0.1", "stackvault_nossl", "require", Missing, None, Fails, Some(ErrorKind::Authentication)),
        // Client certificates (PGSSLCERT/PGSSLKEY) for the cert-only role.
        ("127.0.0.1", "stackvault_cert", "verify-full", Good, None, Tls, None),
        ("127.0.0.1", "stackvault_cert", "disable", Good, None, Fails, Some(ErrorKind::Authentication)),
        // URIs given as the database name override the environment (user, password, TLS).
        ("socket", "postgres", "disable", Missing, Some("postgresql://stackvault_ssl:{pw}@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={ca}"), Tls, None),
        ("socket", "postgres", "disable", Missing, Some("postgresql://stackvault_ssl:{pw}@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={wrong}"), Fails, Some(ErrorKind::Tls)),
        ("socket", "postgres", "require", Missing, Some("postgresql://stackvault_ssl:{pw}@127.0.0.1:{port}/postgres?sslmode=disable"), Fails, Some(ErrorKind::Authentication)),
        ("socket", "postgres", "disable", Missing, Some("host=127.0.0.1 user=stackvault_ssl password='{pw}' sslmode=require"), Tls, None),
    ];
    let mut disagreements = Vec::new();
    for (host, user, mode, root, uri, want, want_kind) in cases {
        let env = cluster.env(host, user, mode, *root);
        let uri = uri.map(|u| cluster.uri(u));
        let (ours, kind, our_error) = via_pgconn(&env, uri.as_deref());
        let (libpq, libpq_error) = psql(psql_with_env(&env), uri.as_deref());
        let (child, child_error) = psql(psql_from_settings(&env, uri.as_deref()), None);
        let line = format!("{host} {user} {mode} {root:?} {uri:?}");
        if (ours, libpq, child, kind) != (*want, *want, *want, *want_kind) {
            disagreements.push(format!(
                "{line}: want {want:?} {want_kind:?}; pgconn {ours:?} {kind:?} ({our_error}); \
                 psql {libpq:?} ({libpq_error}); psql with pgconn's child env {child:?} ({child_error})"
            ));
        }
        assert!(
            !our_error.contains(&cluster.ssl_password),
            "{line}: the password is in pgconn's error: {our_error}"
        );
    }
    assert!(disagreements.is_empty(), "\n{}", disagreements.join("\n"));
}

#[test]
fn tls_failures_say_why_in_one_line() {
    let cluster = Cluster::from_env();
    // (host, sslmode, root certificate, part of the message)
    let cases = [
        (
            "127.0.0.1",
            "verify-full",
            Root::Wrong,
            format!(
                "the server's certificate is not signed by a CA in {}",
                cluster.wrong_ca
            ),
        ),
        (
            "127.0.0.1",
            "require",
            Root::Wrong,
            format!(
                "the server's certificate is not signed by a CA in {}",
                cluster.wrong_ca
            ),
        ),
        (
            "not-in-cert",
            "verify-full",
            Root::Good,
            "certificate not valid for name \"127.0.0.2\"".to_owned(),
        ),
        (
            "127.0.0.1",
            "verify-ca",
            Root::Missing,
            "does not exist, and sslmode verify-ca needs it".to_owned(),
        ),
    ];
    for (host, mode, root, part) in cases {
        let env = cluster.env(host, "stackvault_ssl", mode, root);
        let (outcome, kind, message) = via_pgconn(&env, None);
        assert_eq!(
            (outcome, kind),
            (Fails, Some(ErrorKind::Tls)),
            "{host} {mode}: {message}"
        );
        assert!(
            message.contains(&part) && !message.contains('\n'),
            "{host} {mode}: {message}"
        );
        assert!(message.contains(&format!("sslmode {mode}")), "{message}");
    }
}
