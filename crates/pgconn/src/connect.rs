//! Connecting: each host in turn, each with libpq's `sslmode` attempts.
//!
//! tokio-postgres knows only disable/prefer/require and never retries, so the attempts
//! libpq makes are made here, one connection each, as `PQconnectPoll` makes them:
//!
//! - Unix socket: plain, whatever the mode (libpq never asks for TLS there).
//! - `disable`: plain.
//! - `allow`: plain; if the server rejects that login (an error response, such as a
//!   `hostssl`-only `pg_hba.conf` line), again with TLS.
//! - `prefer`: TLS; if the server refuses TLS, the handshake fails (a root certificate
//!   that does not verify) or the server rejects the login over TLS, again plain.
//! - `require`, `verify-ca`, `verify-full`: TLS or nothing.
//!
//! When a retry fails too, the error is the retry's, and it says what the first attempt
//! got. A failure that is not the server's answer (timeout, refused connection, no
//! password to send) is not retried, as in libpq.

use std::sync::OnceLock;

use postgres::config::SslMode as DriverSslMode;
use rustls::ClientConfig;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, ErrorKind};
use crate::settings::{Host, Settings};
use crate::sslmode::SslMode;

/// One attempt's transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Plain,
    Tls,
}

impl Settings {
    /// Connects to the first host that accepts, as libpq would (see the crate docs for
    /// what each `sslmode` tries).
    ///
    /// # Errors
    ///
    /// The last host's failure: [`ErrorKind::Tls`], [`ErrorKind::Authentication`],
    /// [`ErrorKind::Connect`], with `host:port/database` as its target and the server's
    /// own message; or [`ErrorKind::Config`]/[`ErrorKind::Tls`] when a certificate file
    /// cannot be used.
    pub fn connect(&self) -> Result<postgres::Client, Error> {
        // Built on first use: a socket-only connection needs no certificates at all.
        let tls = OnceLock::new();
        let mut last = None;
        for (host, port) in self.endpoints() {
            match self.connect_endpoint(host, port, &tls) {
                Ok(client) => return Ok(client),
                Err(e) if e.kind() == ErrorKind::Config => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("settings have at least one host"))
    }

    fn connect_endpoint(
        &self,
        host: &Host,
        port: u16,
        tls: &OnceLock<Result<ClientConfig, String>>,
    ) -> Result<postgres::Client, Error> {
        let attempt = |transport| self.attempt(host, port, transport, tls);
        if matches!(host, Host::Socket(_)) {
            return attempt(Transport::Plain);
        }
        match self.sslmode {
            SslMode::Disable => attempt(Transport::Plain),
            SslMode::Allow => match attempt(Transport::Plain) {
                Err(first) if first.server().is_some() => attempt(Transport::Tls)
                    .map_err(|second| second.with_earlier("without TLS", &first)),
                other => other,
            },
            SslMode::Prefer => match attempt(Transport::Tls) {
                Err(first) if first.server().is_some() || first.kind() == ErrorKind::Tls => {
                    attempt(Transport::Plain)
                        .map_err(|second| second.with_earlier("with TLS", &first))
                }
                other => other,
            },
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => attempt(Transport::Tls),
        }
    }

    fn attempt(
        &self,
        host: &Host,
        port: u16,
        transport: Transport,
        tls: &OnceLock<Result<ClientConfig, String>>,
    ) -> Result<postgres::Client, Error> {
        let target = self.endpoint_target(host, port);
        let mut config = postgres::Config::new();
        match host {
            Host::Tcp(name) => config.host(name),
            Host::Socket(dir) => config.host_path(dir),
        };
        config
            .port(port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(&self.application_name);
        if let Some(timeout) = self.connect_timeout {
            config.connect_timeout(timeout);
        }
        if let Some(options) = &self.options {
            config.options(options);
        }
        let password = self
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .or_else(|| {
                let passfile = self.passfile.as_deref()?;
                crate::pgpass::lookup(passfile, host, port, &self.dbname, &self.user)
            });
        if let Some(password) = password {
            config.password(password);
        }
        let connector = match transport {
            Transport::Plain => {
                config.ssl_mode(DriverSslMode::Disable);
                // Never used with sslmode=disable; the driver wants a connector anyway.
                MakeRustlsConnect::new(empty_config())
            }
            Transport::Tls => {
                config.ssl_mode(DriverSslMode::Require);
                let client_config = tls
                    .get_or_init(|| {
                        crate::tls::client_config(self).map_err(|e| e.message().to_owned())
                    })
                    .clone()
                    .map_err(|message| Error::new(ErrorKind::Tls, message).with_target(&target))?;
                MakeRustlsConnect::new(client_config)
            }
        };
        config.connect(connector).map_err(|e| {
            let error = Error::connect(&target, e);
            if error.kind() == ErrorKind::Tls {
                self.explain_tls(error)
            } else {
                error
            }
        })
    }

    /// Adds what was checked to a TLS failure, so "UnknownIssuer" comes with the file
    /// the issuer was looked for in.
    fn explain_tls(&self, error: Error) -> Error {
        let root = match self.sslrootcert.as_deref() {
            Some(path) if path.exists() => path.display().to_string(),
            _ => {
                return error.append_message(&format!(
                    " (sslmode {}, no root certificate file)",
                    self.sslmode
                ))
            }
        };
        let why = match rustls_error(&error) {
            Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => {
                format!("the server's certificate is not signed by a CA in {root}")
            }
            _ => format!("root certificate {root}"),
        };
        error.append_message(&format!(" (sslmode {}, {why})", self.sslmode))
    }
}

/// The rustls error under a driver error (tokio-postgres wraps it in an `io::Error`).
fn rustls_error(error: &Error) -> Option<&rustls::Error> {
    let mut cause = std::error::Error::source(error);
    while let Some(e) = cause {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(found) = inner.downcast_ref::<rustls::Error>() {
                return Some(found);
            }
        }
        cause = e.source();
    }
    None
}

fn empty_config() -> ClientConfig {
    ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("aws-lc-rs supports the default protocol versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A fake server on loopback that answers the SSLRequest with `reply` and then sends
    /// `then` (or closes), for as many connections as `connections`.
    fn fake_server(reply: &'static [u8], then: &'static [u8], connections: usize) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(connections) {
                let mut stream = stream.unwrap();
                let mut request = [0u8; 8];
                if stream.read_exact(&mut request).is_ok() {
                    let _ = stream.write_all(reply);
                    let _ = stream.write_all(then);
                }
            }
        });
        port
    }

    fn connect_err(settings: &Settings) -> Error {
        match settings.connect() {
            Ok(_) => panic!("connected to {}", settings.target()),
            Err(e) => e,
        }
    }

    fn settings(port: u16, mode: SslMode) -> Settings {
        Settings::builder()
            .host("127.0.0.1")
            .port(port)
            .user("u")
            .dbname("d")
            .sslmode(mode)
            .sslrootcert("/nonexistent/root.crt")
            .connect_timeout(Some(std::time::Duration::from_secs(5)))
            .build()
            .unwrap()
    }

    #[test]
    fn table_of_failures_before_the_server_speaks() {
        // (SSLRequest reply, what follows, mode, kind, part of the message)
        let cases = [
            (
                &b"N"[..],
                &b""[..],
                SslMode::Require,
                ErrorKind::Tls,
                "server does not support TLS",
            ),
            (
                b"S",
                b"this is no TLS server hello",
                SslMode::Require,
                ErrorKind::Tls,
                "error performing TLS handshake",
            ),
            (
                b"S",
                b"",
                SslMode::VerifyCa,
                ErrorKind::Tls,
                "root certificate file /nonexistent/root.crt does not exist",
            ),
        ];
        for (reply, then, mode, kind, part) in cases {
            let port = fake_server(reply, then, 1);
            let err = connect_err(&settings(port, mode));
            assert_eq!(err.kind(), kind, "{err}");
            let text = err.to_string();
            assert!(
                text.contains(part) && text.contains(&format!("127.0.0.1:{port}/d")),
                "{text}"
            );
            assert!(text.contains(&format!("sslmode {mode}")), "{text}");
        }
    }

    #[test]
    fn nothing_listening_is_a_connect_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = connect_err(&settings(port, SslMode::Disable));
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
        assert!(
            err.to_string().contains("error connecting to server"),
            "{err}"
        );
    }

    #[test]
    fn prefer_retries_plain_when_the_handshake_fails() {
        // First connection: "S" then garbage (handshake fails); second: plain startup,
        // answered by closing, so the retry's error is a plain connection failure.
        let port = fake_server(b"S", b"garbage", 2);
        let err = connect_err(&settings(port, SslMode::Prefer));
        let text = err.to_string();
        assert!(
            text.contains("after a first attempt with TLS: error performing TLS handshake"),
            "{text}"
        );
    }
}
