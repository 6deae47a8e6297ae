//! The rustls client configuration for a connection, checking the server's certificate
//! as libpq's OpenSSL code does for the `sslmode`.
//!
//! libpq (`fe-secure-openssl.c`, `initialize_SSL`) loads the root certificate file
//! whenever it exists and then has OpenSSL verify the chain, in every mode that uses
//! TLS: that is why `require` with a root certificate behaves like `verify-ca`, and why
//! `prefer` with a root certificate that does not verify falls back to plain. Without
//! the file, only `verify-ca`/`verify-full` fail; the other modes accept any
//! certificate. `verify-full` also checks the host name against the certificate's
//! subject alternative names (DNS names, or IP addresses for a host given as one).
//!
//! Differences from libpq's OpenSSL, on purpose or forced by rustls's webpki: no CRLs
//! (`sslcrl`), no host-name fallback to the certificate's CN when it has no SAN, and a
//! self-signed server certificate that is also its own root (CA:TRUE) is not accepted
//! as an end-entity certificate: give the server a certificate signed by a CA.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, ErrorKind};
use crate::settings::Settings;

fn tls_error(message: String) -> Error {
    Error::new(ErrorKind::Tls, message)
}

/// The client configuration for `settings`: its verifier, and its client certificate
/// if the certificate file exists.
///
/// The crypto provider is aws-lc-rs, chosen explicitly: rust-s3's rustls in this
/// workspace uses it, and with both of rustls's providers compiled in (ureq in the test
/// harness brings *ring*) rustls cannot pick a default by itself.
pub(crate) fn client_config(settings: &Settings) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(PgVerifier {
        roots: load_roots(settings)?,
        check_name: settings.sslmode.verifies_host_name(),
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match load_client_cert(settings)? {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| tls_error(format!("cannot use the client certificate: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The trusted roots, or `None` when there is no root certificate file (then, as in
/// libpq, any server certificate is accepted, unless the mode requires one).
fn load_roots(settings: &Settings) -> Result<Option<RootCertStore>, Error> {
    let mode = settings.sslmode;
    let Some(path) = settings.sslrootcert.as_deref() else {
        if mode.requires_root_cert() {
            return Err(tls_error(format!(
                "sslmode {mode} needs a root certificate file, and there is no home directory \
                 to find ~/.postgresql/root.crt in; set PGSSLROOTCERT"
            )));
        }
        return Ok(None);
    };
    if fs::metadata(path).is_err() {
        if mode.requires_root_cert() {
            return Err(tls_error(format!(
                "root certificate file {} does not exist, and sslmode {mode} needs it; provide \
                 it (PGSSLROOTCERT or sslrootcert) or use sslmode require, which does not \
                 verify the server",
                path.display()
            )));
        }
        return Ok(None);
    }
    let certs = read_certs(path, "root certificate")?;
    let mut store = RootCertStore::empty();
    for cert in certs {
        store.add(cert).map_err(|e| {
            tls_error(format!(
                "invalid root certificate in {}: {e}",
                path.display()
            ))
        })?;
    }
    Ok(Some(store))
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let cannot = |e: &dyn std::fmt::Display| {
        tls_error(format!("cannot read {what} file {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| cannot(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cannot(&e))?;
    if certs.is_empty() {
        return Err(cannot(&"no PEM certificate in it"));
    }
    Ok(certs)
}

/// The client certificate chain and key, when the certificate file exists (libpq goes
/// on without one otherwise). The key must not be readable by others, as libpq requires:
/// mode 0600 or less, or 0640 or less when owned by root.
type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn load_client_cert(settings: &Settings) -> Result<Option<ClientCert>, Error> {
    let Some(cert_path) = settings.sslcert.as_deref() else {
        return Ok(None);
    };
    if !cert_path.exists() {
        return Ok(None);
    }
    let certs = read_certs(cert_path, "client certificate")?;
    let Some(key_path) = settings.sslkey.as_deref() else {
        return Err(tls_error(format!(
            "client certificate {} present, but no private key file (PGSSLKEY)",
            cert_path.display()
        )));
    };
    let meta = fs::metadata(key_path).map_err(|e| {
        tls_error(format!(
            "client certificate {} present, but not its private key file {}: {e}",
            cert_path.display(),
            key_path.display()
        ))
    })?;
    let too_open = if meta.uid() == 0 {
        meta.mode() & 0o037 != 0
    } else {
        meta.mode() & 0o077 != 0
    };
    if !meta.is_file() || too_open {
        return Err(tls_error(format!(
            "private key file {} must be a plain file with permissions u=rw (0600) or less \
             (u=rw,g=r (0640) if owned by root)",
            key_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        tls_error(format!(
            "cannot read private key file {}: {e}",
            key_path.display()
        ))
    })?;
    Ok(Some((certs, key)))
}

/// libpq's certificate checks (see the module docs).
#[derive(Debug)]
struct PgVerifier {
    /// `None`: no root certificate file, accept any certificate.
    roots: Option<RootCertStore>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PgVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if self.check_name {
            verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    // The handshake signatures are checked in every mode: even when the certificate is
    // not, the server must hold the key of the certificate it presented.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SslMode;

    #[test]
    fn table_of_root_certificate_requirements() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.crt");
        let garbage = dir.path().join("garbage.crt");
        std::fs::write(&garbage, "not a certificate").unwrap();
        // (mode, root certificate file, Ok(whether roots are loaded) or part of the error)
        let cases: [(SslMode, &Path, Result<bool, &str>); 6] = [
            (SslMode::Prefer, &missing, Ok(false)),
            (SslMode::Require, &missing, Ok(false)),
            (SslMode::VerifyCa, &missing, Err("does not exist")),
            (SslMode::VerifyFull, &missing, Err("does not exist")),
            (SslMode::Require, &garbage, Err("no PEM certificate")),
            (SslMode::Allow, &garbage, Err("no PEM certificate")),
        ];
        for (mode, path, want) in cases {
            let settings = Settings::builder()
                .user("u")
                .sslmode(mode)
                .sslrootcert(path)
                .build()
                .unwrap();
            match (load_roots(&settings), want) {
                (Ok(roots), Ok(loaded)) => assert_eq!(roots.is_some(), loaded, "{mode}"),
                (Err(e), Err(part)) => {
                    assert_eq!(e.kind(), ErrorKind::Tls);
                    assert!(e.to_string().contains(part), "{mode}: {e}");
                }
                (got, want) => panic!("{mode} {}: got {got:?}, want {want:?}", path.display()),
            }
        }
    }
}
