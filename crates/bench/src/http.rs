//! A minimal HTTP/1.1 client: one keep-alive connection per [`Conn`], TLS
//! verified against an explicit CA (rustls + ring) or, for servers whose
//! listener has `tls_disable` (the `ha` benchmark's config-mode nodes), plain
//! TCP; requests sent one after the other. This is all the load generator
//! needs, and it avoids a pool in the hot path.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use crate::error::{Error, Result};

/// A TLS client config trusting only the certificates in `ca_pem`, offering HTTP/1.1 via ALPN.
pub fn tls_config(ca_pem: &[u8], what: &str) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let mut added = 0usize;
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| Error::LoadCa {
            what: what.to_string(),
            reason: format!("bad PEM: {e}"),
        })?;
        roots.add(cert).map_err(|e| Error::LoadCa {
            what: what.to_string(),
            reason: format!("certificate rejected: {e}"),
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(Error::LoadCa {
            what: what.to_string(),
            reason: "no CERTIFICATE block found".to_string(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::TlsConfig)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Where and how to send requests: address, TLS identity to verify, and the auth header.
#[derive(Clone)]
pub struct Endpoint {
    /// The socket address to connect to.
    pub addr: SocketAddr,
    /// The `Host` header value (`host:port`).
    pub host: HeaderValue,
    /// The name the server certificate must be valid for.
    pub server_name: ServerName<'static>,
    /// TLS settings (trusted CA, ALPN); `None` for plain `http://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The authentication header sent with every request.
    pub auth: (HeaderName, HeaderValue),
}

impl Endpoint {
    /// Builds an endpoint from an `https://host:port` URL (a trailing `/` is allowed).
    pub async fn from_url(
        url: &str,
        tls: Arc<rustls::ClientConfig>,
        auth: (HeaderName, HeaderValue),
    ) -> Result<Self> {
        Self::parse(url, Some(tls), auth).await
    }

    /// Builds a plain-TCP endpoint from an `http://host:port` URL.
    pub async fn plain(url: &str, auth: (HeaderName, HeaderValue)) -> Result<Self> {
        Self::parse(url, None, auth).await
    }

    async fn parse(
        url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        auth: (HeaderName, HeaderValue),
    ) -> Result<Self> {
        let bad = |reason: &str| Error::ServerUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let scheme = if tls.is_some() { "https://" } else { "http://" };
        let authority = url
            .strip_prefix(scheme)
            .ok_or_else(|| bad(&format!("must start with {scheme}")))?
            .trim_end_matches('/');
        if authority.contains('/') {
            return Err(bad("must not have a path"));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(rest) => {
                let (h, p) = rest
                    .split_once("]:")
                    .ok_or_else(|| bad("expected [ip]:port"))?;
                (h, p)
            }
            None => authority
                .rsplit_once(':')
                .ok_or_else(|| bad("expected host:port"))?,
        };
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        let server_name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.to_string()).map_err(|_| bad("bad host name"))?,
        };
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| bad(&format!("cannot resolve: {e}")))?
            .next()
            .ok_or_else(|| bad("resolves to no address"))?;
        let host = HeaderValue::from_str(authority).map_err(|_| bad("not a valid Host header"))?;
        Ok(Endpoint {
            addr,
            host,
            server_name,
            tls,
            auth,
        })
    }
}

/// The TLS version and cipher suite the server picks, e.g. `TLSv1_3 TLS13_AES_128_GCM_SHA256`
/// (`plain HTTP` for an endpoint without TLS).
pub async fn tls_info(ep: &Endpoint) -> Result<String> {
    let Some(config) = &ep.tls else {
        return Ok("plain HTTP".to_string());
    };
    let tcp = TcpStream::connect(ep.addr)
        .await
        .map_err(|source| Error::Connect {
            addr: ep.addr,
            source,
        })?;
    let tls = tokio_rustls::TlsConnector::from(config.clone())
        .connect(ep.server_name.clone(), tcp)
        .await
        .map_err(|source| Error::TlsHandshake {
            addr: ep.addr,
            source,
        })?;
    let (_, session) = tls.get_ref();
    let version = session
        .protocol_version()
        .map_or_else(|| "?".to_string(), |v| format!("{v:?}"));
    let suite = session
        .negotiated_cipher_suite()
        .map_or_else(|| "?".to_string(), |s| format!("{:?}", s.suite()));
    Ok(format!("{version} {suite}"))
}

/// One keep-alive HTTP/1.1 connection over TLS.
pub struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
}

/// What came back from one request whose body was read and dropped.
pub struct Drained {
    /// The status.
    pub status: StatusCode,
    /// The number of body bytes read.
    pub body_len: usize,
}

impl Conn {
    /// Opens a TCP connection (`TCP_NODELAY`), completes the TLS handshake (unless
    /// the endpoint is plain) and the HTTP/1.1 setup. The connection is driven
    /// by a task on the current runtime.
    pub async fn connect(ep: &Endpoint) -> Result<Self> {
        let tcp = TcpStream::connect(ep.addr)
            .await
            .map_err(|source| Error::Connect {
                addr: ep.addr,
                source,
            })?;
        tcp.set_nodelay(true).map_err(|source| Error::Connect {
            addr: ep.addr,
            source,
        })?;
        let Some(config) = &ep.tls else {
            return Self::handshake(ep, tcp).await;
        };
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(ep.server_name.clone(), tcp)
            .await
            .map_err(|source| Error::TlsHandshake {
                addr: ep.addr,
                source,
            })?;
        Self::handshake(ep, tls).await
    }

    /// The HTTP/1.1 setup over an open stream; a task drives the connection.
    async fn handshake<S>(ep: &Endpoint, stream: S) -> Result<Self>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|source| Error::Http {
                what: format!("handshake with {}", ep.addr),
                source,
            })?;
        tokio::spawn(async move {
            // Errors surface on the next send; nothing to do here.
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    /// Whether the connection can still carry requests.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    fn request(ep: &Endpoint, method: &Method, path: &Uri, body: &Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = method.clone();
        *req.uri_mut() = path.clone();
        let headers = req.headers_mut();
        headers.insert(HOST, ep.host.clone());
        headers.insert(ep.auth.0.clone(), ep.auth.1.clone());
        if !body.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        req
    }

    /// Sends one request and reads the whole body, dropping it as it arrives.
    pub async fn send_drain(
        &mut self,
        ep: &Endpoint,
        method: &Method,
        path: &Uri,
        body: &Bytes,
    ) -> Result<Drained, hyper::Error> {
        self.sender.ready().await?;
        let req = Self::request(ep, method, path, body);
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut body_len = 0;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                body_len += data.len();
            }
        }
        Ok(Drained { status, body_len })
    }

    /// Sends one request and returns status and body (for setup and checks, not for load).
    pub async fn send(
        &mut self,
        ep: &Endpoint,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let what = format!("{method} {path}");
        let uri: Uri = path
            .parse()
            .map_err(|_| Error::BuildRequest(what.clone()))?;
        let req = Self::request(ep, &method, &uri, &body);
        let http = |source| Error::Http {
            what: what.clone(),
            source,
        };
        self.sender.ready().await.map_err(http)?;
        let resp = self.sender.send_request(req).await.map_err(http)?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map_err(http)?.to_bytes();
        Ok((status, body))
    }

    /// Like [`Conn::send`], but fails unless the status is `expected`.
    pub async fn expect(
        &mut self,
        ep: &Endpoint,
        method: Method,
        path: &str,
        body: Bytes,
        expected: &[u16],
    ) -> Result<Bytes> {
        let what = format!("{method} {path}");
        let (status, body) = self.send(ep, method, path, body).await?;
        if expected.contains(&status.as_u16()) {
            Ok(body)
        } else {
            Err(Error::UnexpectedStatus {
                what,
                expected: expected.first().copied().unwrap_or(200),
                status: status.as_u16(),
                body: snippet(&body),
            })
        }
    }
}

/// The start of a body, as text, for error messages.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(400).collect();
    if text.chars().count() > 400 {
        s.push('…');
    }
    s
}
