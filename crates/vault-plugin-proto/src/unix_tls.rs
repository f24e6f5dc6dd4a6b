//! Mutual TLS over Unix sockets, the transport of Vault's plugin protocol
//! on both ends (feature `tls`): dialing a socket into a tonic channel, and
//! the accepted stream type a tonic server takes. The certificates and
//! rustls configurations come from [`crate::tls`]; this module owns the
//! sockets.
//!
//! ```text
//!  host ──dial(plugin.sock)──────────▶ plugin's gRPC server (TlsConn)
//!  plugin ──dial(broker socket)──────▶ host's broker server (TlsConn)
//! ```

use crate::handshake::TLS_SERVER_NAME;
use rustls::pki_types::ServerName;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::{Channel, Endpoint};

/// Connects to the gRPC server on the Unix socket `path` with mutual TLS
/// (`tls`: the pinned client configuration); the error says what failed
/// and where. Reconnects, if tonic needs to, go to the same socket.
pub async fn dial(path: &Path, tls: Arc<rustls::ClientConfig>) -> Result<Channel, String> {
    let connector = tokio_rustls::TlsConnector::from(tls);
    let target: PathBuf = path.to_path_buf();
    Endpoint::try_from("http://localhost")
        .map_err(|e| e.to_string())?
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let (path, tls) = (target.clone(), connector.clone());
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                let name = ServerName::try_from(TLS_SERVER_NAME).map_err(std::io::Error::other)?;
                let stream = tls.connect(name, stream).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|e| {
            let source = std::error::Error::source(&e).map(|s| format!(": {s}"));
            format!(
                "cannot connect to {} with mutual TLS: {e}{}",
                path.display(),
                source.unwrap_or_default()
            )
        })
}

/// An accepted TLS stream over a Unix socket, as tonic's server wants it.
pub struct TlsConn(pub tokio_rustls::server::TlsStream<tokio::net::UnixStream>);

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
