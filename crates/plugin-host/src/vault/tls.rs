//! The host's end of AutoMTLS: [`HostCert`], its ephemeral certificate for
//! one plugin process, whose client and server configurations pin the
//! certificate of the plugin's handshake. The certificates, the pinning
//! verifier and the aws-lc-rs provider (P-521) live in
//! `lockbox_vault_plugin_proto::tls`, shared with the SDK's plugin end.

use lockbox_vault_plugin_proto::tls::{AutoMtlsCert, Peer};
use rustls::pki_types::CertificateDer;
use std::sync::Arc;

/// The TLS server name both sides use.
pub use lockbox_vault_plugin_proto::handshake::TLS_SERVER_NAME;

/// The host's ephemeral certificate and key for one plugin process
/// (`der`, `pem` through [`AutoMtlsCert`]).
pub struct HostCert(AutoMtlsCert);

impl std::ops::Deref for HostCert {
    type Target = AutoMtlsCert;
    fn deref(&self) -> &AutoMtlsCert {
        &self.0
    }
}

impl HostCert {
    /// A fresh self-signed ECDSA P-521 certificate for `localhost`.
    pub fn generate() -> Result<HostCert, String> {
        AutoMtlsCert::generate().map(HostCert)
    }

    /// Client config for dialing the plugin: presents this certificate,
    /// accepts only `plugin_cert`.
    pub fn client_config(
        &self,
        plugin_cert: CertificateDer<'static>,
    ) -> Result<Arc<rustls::ClientConfig>, String> {
        self.0.client_config(Peer::plugin(plugin_cert))
    }

    /// Server config for the broker connections the plugin dials: presents
    /// this certificate, requires `plugin_cert` from the client.
    pub fn server_config(
        &self,
        plugin_cert: CertificateDer<'static>,
    ) -> Result<Arc<rustls::ServerConfig>, String> {
        self.0.server_config(Peer::plugin(plugin_cert))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;

    /// A plugin presenting a certificate other than its handshake's is
    /// refused with the host's message.
    #[tokio::test]
    async fn another_certificate_is_refused() {
        let host = HostCert::generate().unwrap();
        let plugin = HostCert::generate().unwrap();
        let impostor = HostCert::generate().unwrap();
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let server = tokio_rustls::TlsAcceptor::from(
            impostor
                .0
                .server_config(Peer::host(host.der.clone()))
                .unwrap(),
        );
        let client =
            tokio_rustls::TlsConnector::from(host.client_config(plugin.der.clone()).unwrap());
        let name = ServerName::try_from(TLS_SERVER_NAME).unwrap();
        let (_, c) = tokio::join!(server.accept(b), client.connect(name, a));
        let err = c.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("other than the one in its handshake"), "{err}");
    }
}
