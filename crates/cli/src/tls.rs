//! Verifying the server's certificate against a CA file (`-ca-cert`,
//! `LOCKBOX_CACERT`, `VAULT_CACERT`).
//!
//! The verifier is rustls's WebPKI verifier with the file's certificates as
//! the only roots, plus one thing Vault's Go client accepts and WebPKI does
//! not: a self-signed certificate without `basicConstraints=CA:FALSE` (what
//! `openssl req -x509` makes by default) used directly as the server's
//! certificate. WebPKI refuses it with `CaUsedAsEndEntity`; Go accepts a leaf
//! that is itself in the root pool. So when WebPKI's only objection is
//! `CaUsedAsEndEntity` and the server's certificate is byte for byte one of
//! the certificates in the CA file, it is accepted if it is also valid for
//! the server name. Its validity period has already been checked by then:
//! WebPKI checks the end-entity's dates before its basic constraints (the
//! tests hold it to that with an expired certificate). The handshake
//! signatures are still verified by the WebPKI verifier with the ring
//! provider, so the server must hold the certificate's private key.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::error::Error;

/// The certificates of a PEM file. Fails when the file cannot be read, has a
/// malformed PEM section, or holds no certificate.
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = std::fs::read(path).map_err(|e| {
        Error::Config(format!(
            "error reading CA certificate {}: {e}",
            path.display()
        ))
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::Config(format!(
                "error parsing CA certificate {}: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "no PEM certificates found in {}",
            path.display()
        )));
    }
    Ok(certs)
}

/// A rustls client config that trusts exactly `cas` (see the module docs),
/// with ALPN for HTTP/2 and HTTP/1.1.
pub(crate) fn client_config(
    cas: Vec<CertificateDer<'static>>,
    path: &Path,
) -> Result<rustls::ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in &cas {
        roots.add(cert.clone()).map_err(|e| {
            Error::Config(format!(
                "error using CA certificate {}: {e}",
                path.display()
            ))
        })?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| {
            Error::Config(format!(
                "error using CA certificate {}: {e}",
                path.display()
            ))
        })?;
    let verifier = CaFileVerifier {
        inner,
        ca_file_certs: cas,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("error setting up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// WebPKI against the CA file, accepting a CA certificate from the file used
/// as the server's certificate (see the module docs).
#[derive(Debug)]
struct CaFileVerifier {
    inner: Arc<WebPkiServerVerifier>,
    ca_file_certs: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for CaFileVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e)
                if is_ca_used_as_end_entity(&e)
                    && self
                        .ca_file_certs
                        .iter()
                        .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// Whether WebPKI refused the certificate because it is a CA certificate.
fn is_ca_used_as_end_entity(err: &rustls::Error) -> bool {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn recognizes_ca_used_as_end_entity() {
        let err = rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            Arc::new(webpki::Error::CaUsedAsEndEntity),
        )));
        assert!(is_ca_used_as_end_entity(&err));
        let other = rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            Arc::new(webpki::Error::EndEntityUsedAsCa),
        )));
        assert!(!is_ca_used_as_end_entity(&other));
        assert!(!is_ca_used_as_end_entity(
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ));
    }
}
