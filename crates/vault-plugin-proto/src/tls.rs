//! AutoMTLS of Vault's plugin protocol, for both ends (feature `tls`): each
//! side has an ephemeral, self-signed ECDSA P-521 certificate for
//! `localhost`, and trusts exactly the other side's certificate (the host's
//! goes to the plugin in `PLUGIN_CLIENT_CERT`, the plugin's comes back in
//! its handshake line).
//!
//! ```text
//!  host (lockbox-plugin-host)                plugin (lockbox-sdk)
//!  AutoMtlsCert::generate                    AutoMtlsCert::generate
//!  client_config(Peer::plugin(handshake)) ─▶ server_config(Peer::host(PLUGIN_CLIENT_CERT))
//!  server_config(Peer::plugin(..))  ◀─broker─ client_config(Peer::host(..))
//! ```
//!
//! `ring`, rustls' provider elsewhere in lockbox, cannot sign or verify
//! P-521, so these connections use rustls' aws-lc-rs provider, passed
//! explicitly to every config here (the process-wide default stays
//! whatever the process chose). Trust is pinning: a peer certificate is
//! accepted only if its DER bytes equal the expected certificate, and the
//! TLS handshake signature must verify with its key. TLS 1.2 and 1.3, ALPN
//! `h2` (grpc-go requires it).
//!
//! No I/O: this module builds certificates and rustls configurations.

use crate::handshake::TLS_SERVER_NAME;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;

/// The provider of these connections: aws-lc-rs (P-521).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// One side's ephemeral certificate and key.
pub struct AutoMtlsCert {
    /// DER of the certificate.
    pub der: CertificateDer<'static>,
    /// PEM of the certificate (the host's goes in `PLUGIN_CLIENT_CERT`).
    pub pem: String,
    /// PKCS#8 DER of the key.
    key: zeroize::Zeroizing<Vec<u8>>,
}

/// The one certificate a connection trusts, and what to say when the peer
/// presents another.
#[derive(Clone, Debug)]
pub struct Peer {
    cert: CertificateDer<'static>,
    refusal: &'static str,
}

impl Peer {
    /// The host's view of a plugin: the certificate of its handshake line.
    pub fn plugin(cert: CertificateDer<'static>) -> Peer {
        Peer {
            cert,
            refusal: "the plugin presented a certificate other than the one in its handshake",
        }
    }

    /// A plugin's view of its host: the certificate of `PLUGIN_CLIENT_CERT`.
    pub fn host(cert: CertificateDer<'static>) -> Peer {
        Peer {
            cert,
            refusal: "the host presented a certificate other than the one in PLUGIN_CLIENT_CERT",
        }
    }

    /// The pinned certificate.
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }
}

/// The first certificate of a PEM text (what `PLUGIN_CLIENT_CERT` holds).
pub fn cert_from_pem(pem: &str) -> Result<CertificateDer<'static>, String> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {e}"))
}

impl AutoMtlsCert {
    /// A fresh self-signed ECDSA P-521 certificate for `localhost`, usable
    /// as client and server certificate and as its own root (what go-plugin
    /// generates on either side).
    pub fn generate() -> Result<AutoMtlsCert, String> {
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
        Ok(AutoMtlsCert {
            der: cert.der().clone(),
            pem: cert.pem(),
            key: zeroize::Zeroizing::new(key.serialize_der()),
        })
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.to_vec()))
    }

    /// Client config for dialing `peer`: presents this certificate,
    /// accepts only the peer's, server name `localhost`.
    pub fn client_config(&self, peer: Peer) -> Result<Arc<rustls::ClientConfig>, String> {
        let provider = provider();
        let verifier = Arc::new(Pinned::new(peer, &provider));
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(vec![self.der.clone()], self.key())
            .map_err(|e| format!("cannot use the certificate: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// Server config for connections from `peer`: presents this
    /// certificate, requires the peer's from the client.
    pub fn server_config(&self, peer: Peer) -> Result<Arc<rustls::ServerConfig>, String> {
        let provider = provider();
        let verifier = Arc::new(Pinned::new(peer, &provider));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.der.clone()], self.key())
            .map_err(|e| format!("cannot use the certificate: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Accepts exactly one certificate (both as server and as client
/// verifier), checking handshake signatures with aws-lc-rs.
#[derive(Debug)]
struct Pinned {
    peer: Peer,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    fn new(peer: Peer, provider: &CryptoProvider) -> Self {
        Pinned {
            peer,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn check(&self, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if presented.as_ref() == self.peer.cert.as_ref() {
            Ok(())
        } else {
            Err(rustls::Error::General(self.peer.refusal.into()))
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
        let host = AutoMtlsCert::generate().unwrap();
        let plugin = AutoMtlsCert::generate().unwrap();
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let server = tokio_rustls::TlsAcceptor::from(
            plugin.server_config(Peer::host(host.der.clone())).unwrap(),
        );
        let client = tokio_rustls::TlsConnector::from(
            host.client_config(Peer::plugin(plugin.der.clone()))
                .unwrap(),
        );
        let name = ServerName::try_from(TLS_SERVER_NAME).unwrap();
        let (s, c) = tokio::join!(server.accept(b), client.connect(name, a));
        assert!(s.is_ok() && c.is_ok(), "{:?} {:?}", s.err(), c.err());
    }

    /// A peer presenting any other certificate is refused, with the
    /// message of the side that refuses.
    #[tokio::test]
    async fn another_certificate_is_refused_by_either_side() {
        let host = AutoMtlsCert::generate().unwrap();
        let plugin = AutoMtlsCert::generate().unwrap();
        let impostor = AutoMtlsCert::generate().unwrap();
        let name = ServerName::try_from(TLS_SERVER_NAME).unwrap();

        // The host dials an impostor plugin.
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let server = tokio_rustls::TlsAcceptor::from(
            impostor
                .server_config(Peer::host(host.der.clone()))
                .unwrap(),
        );
        let client = tokio_rustls::TlsConnector::from(
            host.client_config(Peer::plugin(plugin.der.clone()))
                .unwrap(),
        );
        let (_, c) = tokio::join!(server.accept(b), client.connect(name.clone(), a));
        let err = c.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("other than the one in its handshake"), "{err}");

        // The plugin is dialed by an impostor host.
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let server = tokio_rustls::TlsAcceptor::from(
            plugin.server_config(Peer::host(host.der.clone())).unwrap(),
        );
        let client = tokio_rustls::TlsConnector::from(
            impostor
                .client_config(Peer::plugin(plugin.der.clone()))
                .unwrap(),
        );
        let (s, _) = tokio::join!(server.accept(b), client.connect(name, a));
        let err = s.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("other than the one in PLUGIN_CLIENT_CERT"),
            "{err}"
        );
    }

    /// `PLUGIN_CLIENT_CERT` round-trips through PEM; garbage is refused.
    #[test]
    fn pem_round_trips() {
        let cert = AutoMtlsCert::generate().unwrap();
        assert_eq!(cert_from_pem(&cert.pem).unwrap(), cert.der);
        assert!(cert_from_pem("not pem").is_err());
    }
}
