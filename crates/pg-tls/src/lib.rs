//! TLS to PostgreSQL: libpq's `sslmode` as Vault's PostgreSQL plugin (pgx)
//! and storage backend read it, on rustls with the ring provider. Shared by
//! the database plugin (`plugins/database`) and the PostgreSQL storage
//! backend (`crates/storage-postgres`); layer 0 (no workspace dependency).
//!
//! ```text
//!  sslmode      TLS                         server certificate
//!  disable      never                       -
//!  allow        plain first, then TLS       not checked (chain checked if a CA is given)
//!  prefer       TLS first, then plain       not checked (chain checked if a CA is given)
//!  require      always                      not checked (chain checked if a CA is given, as libpq)
//!  verify-ca    always                      chain to the CA, no host name check
//!  verify-full  always                      chain to the CA and the host name
//! ```
//!
//! The CA comes from `sslrootcert` (a PEM file, read when the plan is made,
//! as libpq) and/or the connection's `tls_ca` (PEM text,
//! Vault's field); a client certificate from `sslcert` + `sslkey` (files)
//! or `tls_certificate` + `private_key` (PEM text). The default mode is
//! libpq's, `prefer`. `sslmode`, `sslrootcert`, `sslcert` and `sslkey` are
//! taken out of `connection_url` here ([`split_url`]); tokio-postgres sees
//! the rest. No channel binding is offered (SCRAM without `-PLUS`).
//! [`connect`] makes the attempts a plan's `sslmode` calls for.

mod connect;
pub use connect::{Attempt, ConnectFailure, connect, connect_listening};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// What is wrong with a connection's TLS settings. Messages never quote
/// anything but TLS parameters (a password in the URL is never shown).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `sslmode` names no libpq mode.
    #[error(
        "connection_url: sslmode {0:?} is not known; use one of disable, allow, prefer, \
         require, verify-ca, verify-full"
    )]
    UnknownSslMode(String),
    /// The connection string cannot be split into its parameters.
    #[error("connection_url: {0}")]
    Url(String),
    /// A file named by `sslrootcert`, `sslcert` or `sslkey` cannot be read.
    #[error("connection_url: {param} {path:?} cannot be read: {source}")]
    ReadFile {
        /// `sslrootcert`, `sslcert` or `sslkey`.
        param: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// PEM text (a file or a PEM field) holds no usable certificate or key.
    #[error("{what}: {problem}")]
    Pem {
        /// Where the PEM came from (`tls_ca`, `connection_url: sslcert "..."`).
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The parameters do not fit together (a certificate without its key,
    /// a verify mode without a CA, ...).
    #[error("{0}")]
    Settings(String),
    /// rustls refused to build the configuration.
    #[error("TLS setup: {0}")]
    Setup(String),
}

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's name of a mode.
    pub fn parse(s: &str) -> Result<Self, TlsError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(TlsError::UnknownSslMode(other.to_string())),
        })
    }

    /// libpq's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The TLS parameters of a `connection_url`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UrlTls {
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
}

impl UrlTls {
    fn is_tls(key: &str) -> bool {
        matches!(key, "sslmode" | "sslrootcert" | "sslcert" | "sslkey")
    }

    /// Takes `key=value` if it is a TLS parameter; `false` otherwise.
    fn take(&mut self, key: &str, value: String) -> bool {
        let slot = match key {
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            "sslcert" => &mut self.sslcert,
            "sslkey" => &mut self.sslkey,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

fn percent_decode(s: &str) -> Result<String, TlsError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).unwrap_or("");
            let b = u8::from_str_radix(hex, 16).map_err(|_| {
                TlsError::Url(format!("bad percent-encoding in parameter value {s:?}"))
            })?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| TlsError::Url(format!("parameter value {s:?} is not UTF-8")))
}

/// Splits `url` (a `postgres[ql]://` URL or libpq's `key=value` form, its
/// `{{username}}`/`{{password}}` templates not yet filled in) into the
/// connection string without the TLS parameters and those parameters.
pub fn split_url(url: &str) -> Result<(String, UrlTls), TlsError> {
    let mut tls = UrlTls::default();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_string(), tls));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            // Only TLS values are decoded (and may appear in an error): the
            // others, a password among them, pass through untouched.
            if !UrlTls::is_tls(k) {
                kept.push(pair);
            } else {
                tls.take(k, percent_decode(v)?);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, tls));
    }
    let mut kept = Vec::new();
    for (key, value, raw) in keyword_pairs(url)? {
        if !tls.take(&key, value) {
            kept.push(raw);
        }
    }
    Ok((kept.join(" "), tls))
}

/// libpq's `key = value` pairs (values single-quoted or bare, `\` escapes),
/// each with its original text.
fn keyword_pairs(s: &str) -> Result<Vec<(String, String, String)>, TlsError> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].1.is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            return Ok(out);
        }
        let start = chars[i].0;
        let mut key = String::new();
        while i < chars.len() && chars[i].1 != '=' && !chars[i].1.is_whitespace() {
            key.push(chars[i].1);
            i += 1;
        }
        skip_ws(&mut i);
        if i >= chars.len() || chars[i].1 != '=' {
            return Err(TlsError::Url(format!(
                "{key:?} has no value; use postgresql://... or key=value pairs"
            )));
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = String::new();
        let quoted = i < chars.len() && chars[i].1 == '\'';
        if quoted {
            i += 1;
        }
        loop {
            let Some(&(_, c)) = chars.get(i) else {
                if quoted {
                    return Err(TlsError::Url(format!(
                        "the value of {key:?} has no closing quote"
                    )));
                }
                break;
            };
            if (quoted && c == '\'') || (!quoted && c.is_whitespace()) {
                if quoted {
                    i += 1;
                }
                break;
            }
            if c == '\\' {
                if let Some(&(_, n)) = chars.get(i + 1) {
                    value.push(n);
                    i += 2;
                    continue;
                }
            }
            value.push(c);
            i += 1;
        }
        let end = chars.get(i).map_or(s.len(), |&(p, _)| p);
        out.push((key, value, s[start..end].trim().to_string()));
    }
}

/// PEM material stored with the connection (Vault's `tls_ca`,
/// `tls_certificate`, `private_key`); empty strings when not set.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pem<'a> {
    pub ca: &'a str,
    pub certificate: &'a str,
    pub private_key: &'a str,
}

/// How to connect: the connection string for tokio-postgres (templates
/// not filled in, TLS parameters removed), the mode, and the TLS
/// configuration when the mode may use TLS.
#[derive(Clone)]
pub struct Plan {
    pub url: String,
    pub mode: SslMode,
    pub tls: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("mode", &self.mode)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

fn pem_error(what: &str, problem: String) -> TlsError {
    TlsError::Pem {
        what: what.to_string(),
        problem,
    }
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(pem_error(
            what,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    Ok(certs)
}

fn read_file(path: &str, param: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::ReadFile {
        param,
        path: path.to_string(),
        source,
    })
}

fn key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| {
        pem_error(
            what,
            "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".to_string(),
        )
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the TLS parameters of `connection_url` and `pem` into a [`Plan`].
/// Files named by the URL are read now: a missing or bad one is an error
/// naming it.
pub fn plan(connection_url: &str, pem: Pem<'_>) -> Result<Plan, TlsError> {
    let (url, params) = split_url(connection_url)?;
    let mode = SslMode::parse(params.sslmode.as_deref().unwrap_or("prefer"))?;
    if mode == SslMode::Disable {
        return Ok(Plan {
            url,
            mode,
            tls: None,
        });
    }
    let mut roots = Vec::new();
    if let Some(path) = &params.sslrootcert {
        let what = format!("connection_url: sslrootcert {path:?}");
        roots.extend(certs(&read_file(path, "sslrootcert")?, &what)?);
    }
    if !pem.ca.trim().is_empty() {
        roots.extend(certs(pem.ca.as_bytes(), "tls_ca")?);
    }
    let client = match (&params.sslcert, &params.sslkey) {
        (Some(c), Some(k)) => Some((
            certs(
                &read_file(c, "sslcert")?,
                &format!("connection_url: sslcert {c:?}"),
            )?,
            key(
                &read_file(k, "sslkey")?,
                &format!("connection_url: sslkey {k:?}"),
            )?,
        )),
        (None, None) => None,
        _ => {
            return Err(TlsError::Settings(
                "connection_url: sslcert and sslkey go together (a client certificate and its key)"
                    .to_string(),
            ));
        }
    };
    let client = match (client, pem.certificate.trim(), pem.private_key.trim()) {
        (Some(c), "", "") => Some(c),
        (Some(_), _, _) => {
            return Err(TlsError::Settings(
                "give the client certificate once: either sslcert/sslkey in connection_url or \
                 tls_certificate/private_key"
                    .to_string(),
            ));
        }
        (None, "", "") => None,
        (None, c, k) if !c.is_empty() && !k.is_empty() => Some((
            certs(c.as_bytes(), "tls_certificate")?,
            key(k.as_bytes(), "private_key")?,
        )),
        (None, _, _) => {
            return Err(TlsError::Settings(
                "tls_certificate and private_key go together (a client certificate and its key)"
                    .to_string(),
            ));
        }
    };
    let verifier: Arc<dyn ServerCertVerifier> = if roots.is_empty() {
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
            return Err(TlsError::Settings(format!(
                "sslmode={} needs the CA that signed the server's certificate: add \
                 sslrootcert=<PEM file> to connection_url or set tls_ca",
                mode.name()
            )));
        }
        Arc::new(NoCheck(provider()))
    } else {
        let mut store = RootCertStore::empty();
        for c in roots {
            store.add(c).map_err(|e| {
                pem_error(
                    "sslrootcert/tls_ca",
                    format!("a certificate cannot be used as a CA: {e}"),
                )
            })?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider())
            .build()
            .map_err(|e| pem_error("sslrootcert/tls_ca", e.to_string()))?;
        if mode == SslMode::VerifyFull {
            webpki
        } else {
            Arc::new(ChainOnly(webpki))
        }
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
            TlsError::Settings(format!(
                "the client certificate and private key do not fit together: {e}"
            ))
        })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Plan {
        url,
        mode,
        tls: Some(Arc::new(config)),
    })
}

/// Whether `e` (a tokio-postgres error) is rustls refusing the server's
/// certificate.
pub fn is_certificate_error(e: &tokio_postgres::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let rustls_err = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if matches!(rustls_err, Some(rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// PostgreSQL's message for `e`: the server's text (severity, message,
/// detail) when it sent one, else the error with its causes (e.g. rustls'
/// reason for a failed handshake).
pub fn error_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{}: {}", db.severity(), db.message());
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            m
        }
        None => {
            let mut m = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                let text = c.to_string();
                if !m.contains(&text) {
                    m.push_str(": ");
                    m.push_str(&text);
                }
                cause = c.source();
            }
            m
        }
    }
}

/// `require` without a CA: TLS without checking the server's certificate
/// (as libpq); handshake signatures are still checked.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to the CA; the host name is not
/// checked (webpki checks the name only after the chain, so a name
/// mismatch here means the chain was good).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// tokio-postgres' TLS hook on rustls.
#[derive(Clone)]
pub struct MakeRustls(pub Arc<ClientConfig>);

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, io::Error> {
        let name = ServerName::try_from(domain.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("host {domain:?} is not a valid TLS server name: {e}"),
            )
        })?;
        Ok(RustlsConnect {
            config: self.0.clone(),
            name,
        })
    }
}

pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(|s| RustlsStream(Box::new(s)))
        })
    }
}

pub struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().0).poll_shutdown(cx)
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests;
