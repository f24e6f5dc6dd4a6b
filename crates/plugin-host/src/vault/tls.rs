//! AutoMTLS of Vault's plugin protocol: each side has an ephemeral,
//! self-signed ECDSA P-521 certificate for `localhost`, and trusts exactly
//! the other side's certificate (the host's goes to the plugin in
//! `PLUGIN_CLIENT_CERT`, the plugin's comes back in its handshake line).
//!
//! `ring`, rustls' provider elsewhere in lockbox, cannot sign or verify
//! P-521, so these connections use rustls' aws-lc-rs provider, passed
//! explicitly to every config here (the process-wide default stays ring).
//! Trust is pinning: a peer certificate is accepted only if its DER bytes
//! equal the expected certificate, and the TLS handshake signature must
//! verify with its key. TLS 1.2 and 1.3, ALPN `h2` (grpc-go requires it).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;

/// The TLS server name both sides use.
pub use lockbox_vault_plugin_proto::handshake::TLS_SERVER_NAME;

/// The provider of these connections: aws-lc-rs (P-521).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The host's ephemeral certificate and key for one plugin process.
pub struct HostCert {
    /// DER of the certificate.
    pub der: CertificateDer<'static>,
    /// PEM of the certificate, for `PLUGIN_CLIENT_CERT`.
    pub pem: String,
    /// PKCS#8 DER of the key.
    key: zeroize::Zeroizing<Vec<u8>>,
}

impl HostCert {
    /// A fresh self-signed ECDSA P-521 certificate for `localhost`, usable
    /// as client and server certificate and as its own root (what go-plugin
    /// generates on its side).
    pub fn generate() -> Result<HostCert, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose, PKCS_ECDSA_P521_SHA512,
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P521_SHA512)
            .map_err(|e| format!("cannot generate a P-521 key: {e}"))?;
        let mut params = CertificateParams::new(vec![TLS_SERVER_NAME.to_string()])
            .map_err(|e| format!("cannot build the certificate: {e}"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, TLS_SERVER_NAME);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "lockbox");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = std::time::SystemTime::now();
        params.not_before = (now - std::time::Duration::from_secs(30)).into();
        params.not_after = (now + std::time::Duration::from_secs(10 * 365 * 24 * 3600)).into();
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("cannot sign the certificate: {e}"))?;
        Ok(HostCert {
            der: cert.der().clone(),
            pem: cert.pem(),
            key: zeroize::Zeroizing::new(key.serialize_der()),
        })
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.to_vec()))
    }

    /// Client config for dialing the plugin: presents this certificate,
    /// accepts only `plugin_cert`.
    pub fn client_config(
        &self,
        plugin_cert: CertificateDer<'static>,
    ) -> Result<Arc<rustls::ClientConfig>, String> {
        let provider = provider();
        let verifier = Arc::new(Pinned::new(plugin_cert, &provider));
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![self.der.clone()], self.key())
            .map_err(|e| format!("cannot use the host certificate: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// Server config for the broker connections the plugin dials: presents
    /// this certificate, requires `plugin_cert` from the client.
    pub fn server_config(
        &self,
        plugin_cert: CertificateDer<'static>,
    ) -> Result<Arc<rustls::ServerConfig>, String> {
        let provider = provider();
        let verifier = Arc::new(Pinned::new(plugin_cert, &provider));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.der.clone()], self.key())
            .map_err(|e| format!("cannot use the host certificate: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Accepts exactly one certificate (both as server and as client
/// verifier), checking handshake signatures with aws-lc-rs.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    fn new(cert: CertificateDer<'static>, provider: &CryptoProvider) -> Self {
        Pinned {
            cert,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn check(&self, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if presented.as_ref() == self.cert.as_ref() {
            Ok(())
        } else {
            Err(rustls::Error::General(
                "the plugin presented a certificate other than the one in its handshake".into(),
            ))
        }
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if server_name.to_str() != TLS_SERVER_NAME {
            return Err(rustls::Error::General(format!(
                "unexpected server name {}",
                server_name.to_str()
            )));
        }
        self.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ends of an AutoMTLS connection over a socket pair: each pins
    /// the other's P-521 certificate, and the handshake completes (ring
    /// alone could not verify these signatures).
    #[tokio::test]
    async fn p521_certificates_pinned_both_ways_complete_a_handshake() {
        let host = HostCert::generate().unwrap();
        let plugin = HostCert::generate().unwrap();
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let server =
            tokio_rustls::TlsAcceptor::from(plugin.server_config(host.der.clone()).unwrap());
        let client =
            tokio_rustls::TlsConnector::from(host.client_config(plugin.der.clone()).unwrap());
        let name = ServerName::try_from(TLS_SERVER_NAME).unwrap();
        let (s, c) = tokio::join!(server.accept(b), client.connect(name, a));
        assert!(s.is_ok() && c.is_ok(), "{:?} {:?}", s.err(), c.err());
    }

    /// A peer presenting any other certificate is refused.
    #[tokio::test]
    async fn another_certificate_is_refused() {
        let host = HostCert::generate().unwrap();
        let plugin = HostCert::generate().unwrap();
        let impostor = HostCert::generate().unwrap();
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let server =
            tokio_rustls::TlsAcceptor::from(impostor.server_config(host.der.clone()).unwrap());
        let client =
            tokio_rustls::TlsConnector::from(host.client_config(plugin.der.clone()).unwrap());
        let name = ServerName::try_from(TLS_SERVER_NAME).unwrap();
        let (_, c) = tokio::join!(server.accept(b), client.connect(name, a));
        let err = c.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("other than the one in its handshake"), "{err}");
    }
}
