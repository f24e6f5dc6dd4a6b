//! HA request forwarding: a standby hands the requests it does not answer
//! itself to the active node, over mutually authenticated TLS, or (with
//! `disable_request_forwarding`) redirects the client there.
//!
//! ```text
//!  client ──▶ standby listener ──standby?──▶ Forwarding::Forward
//!                                              │ leader: Core::leader (the storage's record)
//!                                              │ identity: CLUSTER_TLS_KEY in the barrier
//!                                              ▼
//!             active's cluster listener (serve, TLS: only the cluster certificate)
//!                                              ▼
//!                                           dispatch on the active, answer relayed
//! ```
//!
//! The cluster identity is one self-signed ECDSA P-256 certificate and key
//! that the first active node creates and stores in the barrier (so only
//! unsealed nodes can read it, and it never touches disk in plaintext).
//! Both ends present it and accept exactly it (DER equality, handshake
//! signature checked): holding the identity is being a node. Forwarded
//! requests travel as HTTP/2 on one connection per active node, re-dialled
//! when the leader or the identity changes.
//!
//! This module owns [`ClusterIdentity`], [`Forwarding`], [`Forwarder`] and
//! which requests a standby answers itself ([`answered_by_standby`]).

use crate::{Body, Failure, RequestBounds, failure_response, json_response, read_bytes};
use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use lockbox_core::core::Core;
use lockbox_core::logical::RequestError;
use lockbox_core::runtime::LeaderInfo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Where the active node stores the cluster identity (in the barrier).
pub const CLUSTER_TLS_KEY: &str = "core/cluster/tls";
/// The TLS server name both ends use.
const SERVER_NAME: &str = "lockbox-cluster";
/// How long dialling the active node may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong with the cluster identity or a forwarded request.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The certificate or key could not be made or read.
    #[error("cluster certificate: {0}")]
    Identity(String),
    /// The active node could not be reached or did not answer.
    #[error("cannot forward to the active node at {addr}: {reason}")]
    Forward {
        /// The active's `cluster_addr`.
        addr: String,
        /// What failed.
        reason: String,
    },
}

/// The cluster's certificate and key (see the module docs).
pub struct ClusterIdentity {
    cert: CertificateDer<'static>,
    key: zeroize::Zeroizing<Vec<u8>>,
}

impl ClusterIdentity {
    /// A fresh self-signed P-256 certificate for [`SERVER_NAME`], valid
    /// for ten years (it is trusted by pinning, not by its dates).
    pub fn generate() -> Result<Self, ClusterError> {
        use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| ClusterError::Identity(format!("cannot generate a key: {e}")))?;
        let mut params = CertificateParams::new(vec![SERVER_NAME.to_string()])
            .map_err(|e| ClusterError::Identity(e.to_string()))?;
        params
            .distinguished_name
            .push(DnType::CommonName, SERVER_NAME);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = std::time::SystemTime::now();
        params.not_before = (now - Duration::from_secs(60)).into();
        params.not_after = (now + Duration::from_secs(10 * 365 * 24 * 3600)).into();
        let cert = params
            .self_signed(&key)
            .map_err(|e| ClusterError::Identity(format!("cannot sign: {e}")))?;
        Ok(ClusterIdentity {
            cert: cert.der().clone(),
            key: zeroize::Zeroizing::new(key.serialize_der()),
        })
    }

    /// The stored form: the DER certificate's length (4 bytes, big
    /// endian), the certificate, then the PKCS#8 key. Secret: store it in
    /// the barrier only.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = Vec::with_capacity(4 + self.cert.len() + self.key.len());
        out.extend_from_slice(&(self.cert.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.cert);
        out.extend_from_slice(&self.key);
        zeroize::Zeroizing::new(out)
    }

    /// Reads [`ClusterIdentity::to_bytes`]'s form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ClusterError> {
        let corrupt = || ClusterError::Identity(format!("the stored {CLUSTER_TLS_KEY} is corrupt"));
        let len: [u8; 4] = bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(corrupt)?;
        let len = u32::from_be_bytes(len) as usize;
        let cert = bytes.get(4..4 + len).ok_or_else(corrupt)?;
        let key = bytes
            .get(4 + len..)
            .filter(|k| !k.is_empty())
            .ok_or_else(corrupt)?;
        Ok(ClusterIdentity {
            cert: CertificateDer::from(cert.to_vec()),
            key: zeroize::Zeroizing::new(key.to_vec()),
        })
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.to_vec()))
    }

    fn pinned(&self) -> Arc<Pinned> {
        let provider = rustls::crypto::ring::default_provider();
        Arc::new(Pinned {
            cert: self.cert.clone(),
            algorithms: provider.signature_verification_algorithms,
        })
    }

    /// The cluster listener's TLS: presents the identity and requires it
    /// from the client.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, ClusterError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ClusterError::Identity(e.to_string()))?
            .with_client_cert_verifier(self.pinned())
            .with_single_cert(vec![self.cert.clone()], self.key())
            .map_err(|e| ClusterError::Identity(format!("cannot use the certificate: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// A standby's TLS to the active: presents the identity and accepts
    /// only it.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, ClusterError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ClusterError::Identity(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(self.pinned())
            .with_client_auth_cert(vec![self.cert.clone()], self.key())
            .map_err(|e| ClusterError::Identity(format!("cannot use the certificate: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Accepts exactly the cluster certificate, as server and as client.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    fn check(&self, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if presented.as_ref() == self.cert.as_ref() {
            Ok(())
        } else {
            Err(rustls::Error::General(
                "the peer does not hold this cluster's certificate".into(),
            ))
        }
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
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

/// What a standby does with a request it does not answer itself.
#[derive(Clone, Default)]
pub enum Forwarding {
    /// Answer it here (the core refuses with 503 on a standby): the
    /// cluster listener, and servers without HA.
    #[default]
    Off,
    /// Forward it to the active node.
    Forward(Arc<Forwarder>),
    /// `disable_request_forwarding`: 307 to the active's `api_addr`.
    Redirect,
}

/// Paths a standby answers itself (the rest goes to the active node).
pub fn answered_by_standby(uri_path: &str) -> bool {
    matches!(
        uri_path.trim_end_matches('/'),
        "/v1/sys/health"
            | "/v1/sys/seal-status"
            | "/v1/sys/leader"
            | "/v1/sys/init"
            | "/v1/sys/unseal"
    )
}

/// One HTTP/2 connection to the active node.
struct Connection {
    addr: String,
    cert: Vec<u8>,
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
}

/// Forwards a standby's requests to the active node (see the module docs).
#[derive(Default)]
pub struct Forwarder {
    connection: tokio::sync::Mutex<Option<Connection>>,
    /// The stored identity, read once (it never changes) and forgotten
    /// when a forward fails.
    identity: std::sync::Mutex<Option<Arc<zeroize::Zeroizing<Vec<u8>>>>>,
}

fn unavailable(message: String) -> Response<Body> {
    json_response(503, &json!({ "errors": [message] }))
}

/// `host:port` of a `cluster_addr` (`https://host:port` or `host:port`).
fn authority(addr: &str) -> Result<String, String> {
    let uri: Uri = if addr.contains("://") {
        addr.parse()
    } else {
        format!("https://{addr}").parse()
    }
    .map_err(|e| format!("cluster_addr {addr:?} is not an address: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| format!("cluster_addr {addr:?} has no host"))?;
    Ok(format!("{host}:{}", uri.port_u16().unwrap_or(8201)))
}

/// Headers that belong to one connection, not to the request.
fn hop_by_hop(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "upgrade"
            | "host"
            | "trailer"
    )
}

impl Forwarder {
    /// A forwarder with no connection yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `req` to the active node and relays its answer; a 503 naming
    /// the problem when there is no active node or it cannot be reached.
    pub(crate) async fn forward(
        &self,
        core: &Core,
        req: Request<Incoming>,
        bounds: RequestBounds,
    ) -> Response<Body> {
        let leader = match active_node(core).await {
            Ok(l) => l,
            Err(response) => return *response,
        };
        let stored = match self.identity(core).await {
            Ok(b) => b,
            Err(response) => return *response,
        };
        let (parts, body) = req.into_parts();
        if let Some(len) = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > bounds.max_request_size as u64
        {
            return failure_response(&Failure::Request(RequestError::TooLarge {
                limit: bounds.max_request_size,
            }));
        }
        let bytes = match read_bytes(body, bounds.max_request_size, bounds.read_timeout).await {
            Ok(b) => Bytes::from(b),
            Err(f) => return failure_response(&f),
        };
        let sent = self.send(&leader.cluster_addr, &stored, &parts, bytes);
        let result = match bounds.max_request_duration {
            Some(limit) => tokio::time::timeout(limit, sent)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {}s", limit.as_secs()))),
            None => sent.await,
        };
        match result {
            Ok(response) => response,
            Err(reason) => {
                *self.identity.lock().unwrap_or_else(|e| e.into_inner()) = None;
                let e = ClusterError::Forward {
                    addr: leader.cluster_addr.clone(),
                    reason,
                };
                tracing::warn!("{e}");
                unavailable(e.to_string())
            }
        }
    }

    /// The stored cluster identity (cached), or the 503 to answer.
    async fn identity(
        &self,
        core: &Core,
    ) -> Result<Arc<zeroize::Zeroizing<Vec<u8>>>, Box<Response<Body>>> {
        if let Some(b) = self
            .identity
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(b);
        }
        match core.read_shared(CLUSTER_TLS_KEY).await {
            Ok(Some(b)) => {
                let b = Arc::new(zeroize::Zeroizing::new(b));
                *self.identity.lock().unwrap_or_else(|e| e.into_inner()) = Some(b.clone());
                Ok(b)
            }
            Ok(None) => Err(Box::new(unavailable(
                "the active node has not published its cluster certificate yet; retry".into(),
            ))),
            Err(e) => Err(Box::new(unavailable(format!(
                "cannot read the cluster certificate: {e}"
            )))),
        }
    }

    async fn send(
        &self,
        addr: &str,
        stored: &[u8],
        parts: &http::request::Parts,
        body: Bytes,
    ) -> Result<Response<Body>, String> {
        let mut sender = self.sender(addr, stored).await?;
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut builder = Request::builder()
            .method(parts.method.clone())
            .uri(format!("https://{SERVER_NAME}{path}"));
        for (name, value) in &parts.headers {
            if !hop_by_hop(name) && name.as_str() != crate::FORWARDED_FOR {
                builder = builder.header(name, value);
            }
        }
        if let Some(client) = parts.extensions.get::<crate::ClientAddr>() {
            builder = builder.header(crate::FORWARDED_FOR, client.0.to_string());
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("the request failed: {e}"))?;
        let (mut parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| format!("the answer was cut off: {e}"))?
            .to_bytes();
        for name in [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::TE,
            header::UPGRADE,
            header::TRAILER,
        ] {
            parts.headers.remove(name);
        }
        Ok(Response::from_parts(parts, Full::new(bytes)))
    }

    /// The connection to `addr` with the stored identity, dialled when
    /// there is none, it is for another leader or identity, or it closed.
    async fn sender(
        &self,
        addr: &str,
        stored: &[u8],
    ) -> Result<hyper::client::conn::http2::SendRequest<Full<Bytes>>, String> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_mut()
            && c.addr == addr
            && c.cert == stored
            && c.sender.ready().await.is_ok()
        {
            return Ok(c.sender.clone());
        }
        *slot = None;
        let identity = ClusterIdentity::from_bytes(stored).map_err(|e| e.to_string())?;
        let config = identity.client_config().map_err(|e| e.to_string())?;
        let target = authority(addr)?;
        let dial = async {
            let tcp = tokio::net::TcpStream::connect(&target)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from(SERVER_NAME).map_err(|e| e.to_string())?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .map_err(|e| format!("HTTP/2: {e}"))
        };
        let (sender, connection) = tokio::time::timeout(DIAL_TIMEOUT, dial)
            .await
            .map_err(|_| format!("no connection within {}s", DIAL_TIMEOUT.as_secs()))??;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("cluster connection ended: {e}");
            }
        });
        *slot = Some(Connection {
            addr: addr.to_string(),
            cert: stored.to_vec(),
            sender: sender.clone(),
        });
        Ok(sender)
    }
}

/// The active node, or the 503 to answer when there is none.
async fn active_node(core: &Core) -> Result<LeaderInfo, Box<Response<Body>>> {
    match core.leader().await {
        Ok(Some(l)) if !l.is_self => Ok(l),
        Ok(_) => Err(Box::new(unavailable(
            "no active node yet (a failover is in progress); retry".into(),
        ))),
        Err(e) => Err(Box::new(failure_response(&Failure::Request(e)))),
    }
}

/// `disable_request_forwarding`: a 307 to the same path on the active's
/// `api_addr` (clients follow it with the same method and body).
pub(crate) async fn redirect<B>(core: &Core, req: &Request<B>) -> Response<Body> {
    let leader = match active_node(core).await {
        Ok(l) => l,
        Err(response) => return *response,
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let location = format!("{}{path}", leader.api_addr.trim_end_matches('/'));
    Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header(header::LOCATION, location)
        .body(Full::new(Bytes::new()))
        .unwrap_or_else(|_| unavailable(format!("bad api_addr {:?}", leader.api_addr)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_refuses_garbage() {
        let id = ClusterIdentity::generate().unwrap();
        let back = ClusterIdentity::from_bytes(&id.to_bytes()).unwrap();
        assert_eq!(back.cert, id.cert);
        assert!(back.server_config().is_ok() && back.client_config().is_ok());
        for bad in [&b""[..], &[0, 0, 0, 9, 1][..], &[0, 0, 0, 1, 7][..]] {
            assert!(ClusterIdentity::from_bytes(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pinned_accepts_only_its_certificate() {
        let a = ClusterIdentity::generate().unwrap();
        let b = ClusterIdentity::generate().unwrap();
        let pinned = a.pinned();
        assert!(pinned.check(&a.cert).is_ok());
        let e = pinned.check(&b.cert).unwrap_err();
        assert!(e.to_string().contains("cluster's certificate"), "{e}");
    }

    #[test]
    fn cluster_addresses() {
        assert_eq!(authority("https://10.0.0.1:8201").unwrap(), "10.0.0.1:8201");
        assert_eq!(authority("127.0.0.1:9000").unwrap(), "127.0.0.1:9000");
        assert_eq!(authority("https://node-1").unwrap(), "node-1:8201");
        assert!(authority("https://").is_err());
        assert!(answered_by_standby("/v1/sys/health"));
        assert!(!answered_by_standby("/v1/secret/x"));
        assert!(!answered_by_standby("/v1/sys/step-down"));
    }
}
