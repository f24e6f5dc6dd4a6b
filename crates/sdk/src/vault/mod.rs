//! The plugin side of Vault's external plugin protocol, version 5, so a
//! plugin built with this SDK also runs under Vault 1.12+ and OpenBao 2.x
//! (`serve` picks it when the host set Vault's magic cookie and not
//! lockbox's). The mirror image of `lockbox-plugin-host`'s `vault` module.
//!
//! ```text
//! VaultEnv::from_lookup   VAULT_BACKEND_PLUGIN cookie, PLUGIN_PROTOCOL_VERSIONS ∋ 5,
//!                         PLUGIN_CLIENT_CERT (PEM), PLUGIN_UNIX_SOCKET_DIR (else TMPDIR)
//! run:
//!   1. fresh P-521 certificate; TLS server pinning the host's (tls feature of
//!      lockbox-vault-plugin-proto), TLS 1.2+, ALPN h2
//!   2. listen on <dir>/lockbox-plugin-<pid>-<random>.sock; serve, over mTLS:
//!      pb.Backend + logical.PluginVersion (backend.rs), plugin.GRPCBroker /
//!      GRPCController / GRPCStdio, PluginMultiplexing (broker.rs),
//!      grpc.health.v1 ("plugin" SERVING)
//!   3. print `1|5|unix|<socket>|grpc|<base64 DER, unpadded>` on stdout
//!   4. per mount, Setup's broker id → the host's Storage/SystemView (storage.rs)
//!   5. SIGTERM or controller Shutdown: NOT_SERVING, drain, remove the socket
//! ```

mod backend;
mod broker;
mod convert;
mod storage;

use crate::error::ServeError;
use crate::logical::Factory;
use crate::routes::Routes;
use base64::Engine as _;
use lockbox_vault_plugin_proto::handshake::{
    self as hs, APP_PROTOCOL_VERSION, CORE_PROTOCOL_VERSION, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE,
};
use lockbox_vault_plugin_proto::services::HEALTH_CHECK_NAME;
use lockbox_vault_plugin_proto::tls::{AutoMtlsCert, Peer, cert_from_pem};
use lockbox_vault_plugin_proto::unix_tls;
use lockbox_vault_plugin_proto::{logical as vlogical, pb, plugin as gp, pluginutil};
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tonic::transport::Server;
use tonic_health::ServingStatus;

/// Largest message either side sends (the lockbox protocol's limit).
const MAX_MESSAGE: usize = lockbox_plugin_proto::MAX_MESSAGE_SIZE;

/// How long a host may take to finish a TLS handshake on the plugin socket.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a Vault-protocol host gives a plugin through the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultEnv {
    /// Where to create the socket (`PLUGIN_UNIX_SOCKET_DIR`, else `TMPDIR`,
    /// else `/tmp`).
    pub socket_dir: PathBuf,
    /// The host's certificate, PEM (`PLUGIN_CLIENT_CERT`): the only one the
    /// plugin trusts.
    pub client_cert_pem: String,
    /// The server's version (`VAULT_VERSION`/`BAO_VERSION`), for logs.
    pub server_version: Option<String>,
}

/// Whether the host set Vault's magic cookie (`VAULT_BACKEND_PLUGIN`; OpenBao
/// sets the same name, checked against `bao server -dev` 2.7).
pub fn has_vault_cookie(lookup: &impl Fn(&str) -> Option<String>) -> bool {
    lookup(MAGIC_COOKIE_KEY).as_deref() == Some(MAGIC_COOKIE_VALUE)
}

impl VaultEnv {
    /// Reads and checks the environment (given as a lookup function) of a
    /// process a Vault-protocol host started; the magic cookie is checked
    /// by the caller ([`has_vault_cookie`]).
    pub fn from_lookup(
        program: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ServeError> {
        let program = program.to_string();
        let offered = lookup(hs::env::PROTOCOL_VERSIONS).unwrap_or_default();
        if !offered
            .split(',')
            .any(|v| v.trim().parse::<u32>() == Ok(APP_PROTOCOL_VERSION))
        {
            return Err(ServeError::VaultProtocol { program, offered });
        }
        let client_cert_pem = lookup(hs::env::CLIENT_CERT)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ServeError::VaultEnv {
                program: program.clone(),
                var: hs::env::CLIENT_CERT,
                reason: "is not set: the host did not enable automatic mutual TLS \
                         (VAULT_PLUGIN_AUTOMTLS_ENABLED), which this plugin requires"
                    .into(),
            })?;
        if let Err(e) = cert_from_pem(&client_cert_pem) {
            return Err(ServeError::VaultEnv {
                program,
                var: hs::env::CLIENT_CERT,
                reason: e,
            });
        }
        let socket_dir = lookup(hs::env::UNIX_SOCKET_DIR)
            .or_else(|| lookup("TMPDIR"))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "/tmp".into());
        let server_version = lookup(hs::env::VERSION)
            .or_else(|| lookup(hs::env::BAO_VERSION))
            .filter(|v| !v.is_empty());
        Ok(VaultEnv {
            socket_dir: PathBuf::from(socket_dir),
            client_cert_pem,
            server_version,
        })
    }
}

/// go-plugin's handshake line (without newline) for a socket and the
/// plugin's certificate (unpadded standard base64 of the DER).
pub fn handshake_line(socket: &std::path::Path, cert_der: &[u8]) -> String {
    format!(
        "{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{}|grpc|{}",
        socket.display(),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(cert_der)
    )
}

/// A socket name no other process can predict: Vault and OpenBao leave
/// `PLUGIN_UNIX_SOCKET_DIR` unset, so the socket lands in a shared `TMPDIR`
/// where a squatter on a predictable name could stop the plugin from
/// starting (connecting gets it nothing: only the host's certificate is
/// accepted).
fn socket_name() -> String {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    format!("lockbox-plugin-{}-{random:016x}.sock", std::process::id())
}

fn tls_error(e: String) -> ServeError {
    ServeError::Tls(e)
}

/// Runs the plugin under a Vault-protocol host until `shutdown` resolves or
/// the host calls `GRPCController/Shutdown`: binds the socket, serves over
/// mutual TLS, writes the handshake line to `handshake`, then drains
/// in-flight requests and removes the socket.
pub async fn run(
    factory: impl Factory,
    env: VaultEnv,
    handshake: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let cert = AutoMtlsCert::generate().map_err(tls_error)?;
    let host = Peer::host(cert_from_pem(&env.client_cert_pem).map_err(tls_error)?);
    let acceptor =
        tokio_rustls::TlsAcceptor::from(cert.server_config(host.clone()).map_err(tls_error)?);
    let broker = broker::Broker::new(cert.client_config(host).map_err(tls_error)?);

    let socket_path =
        std::path::absolute(env.socket_dir.join(socket_name())).map_err(|source| {
            ServeError::Bind {
                path: env.socket_dir.clone(),
                source,
            }
        })?;
    let listener = crate::lifecycle::bind_fresh(&socket_path)?;

    // TLS handshakes run beside the accept loop, so a slow client delays no
    // other; only the host (holding its pinned certificate) gets through.
    let (conns, incoming) = mpsc::channel::<Result<unix_tls::TlsConn, std::io::Error>>(4);
    let accept = tokio::spawn(accept_loop(listener, acceptor, conns));

    let (stop_tx, stop_rx) = watch::channel(false);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(HEALTH_CHECK_NAME, ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let info = factory.info();
    let routes = Routes::new()
        .add(
            pb::backend_server::BackendServer::new(backend::VaultBackend::new(
                Arc::new(factory),
                broker.clone(),
            ))
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
        )
        .add(vlogical::plugin_version_server::PluginVersionServer::new(
            backend::Version(info.version),
        ))
        .add(
            pluginutil::multiplexing::plugin_multiplexing_server::PluginMultiplexingServer::new(
                broker::Multiplexing,
            ),
        )
        .add(gp::grpc_broker_server::GrpcBrokerServer::new(
            broker::BrokerService(broker),
        ))
        .add(gp::grpc_controller_server::GrpcControllerServer::new(
            broker::Controller(stop_tx.clone()),
        ))
        .add(gp::grpc_stdio_server::GrpcStdioServer::new(broker::Stdio))
        .add(health);

    let signal_stop = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = signal_stop.send(true);
    });
    let mut stopping = stop_rx.clone();
    let not_serving = reporter.clone();
    tokio::spawn(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
        not_serving
            .set_service_status(HEALTH_CHECK_NAME, ServingStatus::NotServing)
            .await;
    });
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(Server::builder().serve_with_incoming_shutdown(
        routes,
        tokio_stream::wrappers::ReceiverStream::new(incoming),
        async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        },
    ));

    let line = handshake_line(&socket_path, cert.der.as_ref());
    writeln!(handshake, "{line}")
        .and_then(|()| handshake.flush())
        .map_err(ServeError::Handshake)?;
    tracing::info!(
        socket = %socket_path.display(),
        host_version = env.server_version.as_deref().unwrap_or(""),
        "plugin serving Vault's plugin protocol 5"
    );
    let outcome = crate::lifecycle::until_stopped(server, stop_rx).await;
    accept.abort();
    let _ = std::fs::remove_file(&socket_path);
    outcome
}

async fn accept_loop(
    listener: UnixListener,
    acceptor: tokio_rustls::TlsAcceptor,
    conns: mpsc::Sender<Result<unix_tls::TlsConn, std::io::Error>>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let (acceptor, conns) = (acceptor.clone(), conns.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = conns.send(Ok(unix_tls::TlsConn(tls))).await;
                }
                Ok(Err(e)) => tracing::warn!("refused a connection to the plugin socket: {e}"),
                Err(_) => tracing::warn!("a TLS handshake on the plugin socket timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> Result<VaultEnv, ServeError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        VaultEnv::from_lookup("lockbox-plugin-test", |k| map.get(k).cloned())
    }

    #[test]
    fn reads_vaults_environment() {
        let cert = AutoMtlsCert::generate().unwrap();
        let env = env_of(&[
            (hs::env::PROTOCOL_VERSIONS, "5"),
            (hs::env::CLIENT_CERT, &cert.pem),
            ("TMPDIR", "/var/tmp"),
            (hs::env::VERSION, "2.7.2"),
        ])
        .unwrap();
        assert_eq!(env.socket_dir, PathBuf::from("/var/tmp"));
        assert_eq!(env.server_version.as_deref(), Some("2.7.2"));
        let env = env_of(&[
            (hs::env::PROTOCOL_VERSIONS, "4, 5"),
            (hs::env::CLIENT_CERT, &cert.pem),
            (hs::env::UNIX_SOCKET_DIR, "/run/p"),
            ("TMPDIR", "/var/tmp"),
        ])
        .unwrap();
        assert_eq!(env.socket_dir, PathBuf::from("/run/p"));
    }

    /// OpenBao retries an older protocol (3,4) after a v5 failure, without
    /// a certificate: refused by name.
    #[test]
    fn refuses_older_protocols_and_missing_or_bad_certificates() {
        let e = env_of(&[(hs::env::PROTOCOL_VERSIONS, "3,4")]).unwrap_err();
        assert!(matches!(e, ServeError::VaultProtocol { .. }));
        assert!(e.to_string().contains("\"3,4\""), "{e}");
        let e = env_of(&[(hs::env::PROTOCOL_VERSIONS, "5")]).unwrap_err();
        assert!(
            e.to_string().contains("PLUGIN_CLIENT_CERT is not set"),
            "{e}"
        );
        let e = env_of(&[
            (hs::env::PROTOCOL_VERSIONS, "5"),
            (hs::env::CLIENT_CERT, "garbage"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("PLUGIN_CLIENT_CERT"), "{e}");
    }

    #[test]
    fn socket_names_differ() {
        assert_ne!(socket_name(), socket_name());
        assert!(socket_name().starts_with(&format!("lockbox-plugin-{}-", std::process::id())));
    }

    /// The line the host's own parser accepts, with the same certificate.
    #[test]
    fn the_handshake_line_parses_as_go_plugins() {
        let cert = AutoMtlsCert::generate().unwrap();
        let line = handshake_line(std::path::Path::new("/run/p/x.sock"), cert.der.as_ref());
        let parsed = hs::HandshakeLine::parse(&line).unwrap();
        assert_eq!(parsed.server_cert_der, cert.der.as_ref());
        assert_eq!(
            parsed.unix_socket(),
            Some(std::path::Path::new("/run/p/x.sock"))
        );
    }
}
