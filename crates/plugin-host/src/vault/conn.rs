//! [`VaultConn`]: the host's connection to one Vault-protocol plugin
//! process, and its side of go-plugin's broker.
//!
//! ```text
//!  connect: UDS + AutoMTLS ─▶ health ("plugin") ─▶ MultiplexingSupport
//!           ─▶ GRPCBroker/StartStream (one per process) ─▶ GRPCStdio (drained)
//!  per mount: a broker id N, a socket broker-N.sock in the private
//!           directory (AutoMTLS, the plugin's pid only) serving that mount's
//!           Storage/SystemView/Events/Observations; ConnInfo{N} on the
//!           stream; then Setup(broker_id = N), Initialize, SpecialPaths, Type
//! ```
//!
//! A broker socket serves exactly one mount: a plugin reaches another
//! mount's storage only through that mount's socket, which it learns only
//! from the `Setup` of that mount.

use super::services::{DropEvents, MountServices};
use super::tls::HostCert;
use crate::cache::MountGeneration;
use crate::process::AbortOnDrop;
use lockbox_core::barrier::View;
use lockbox_core::logical::{BackendKind, SpecialPaths};
use lockbox_plugin_proto::v1;
use lockbox_vault_plugin_proto::handshake::MULTIPLEX_ID_METADATA;
use lockbox_vault_plugin_proto::pluginutil::multiplexing as mux;
use lockbox_vault_plugin_proto::unix_tls;
use lockbox_vault_plugin_proto::{logical as vlogical, pb, plugin as gp};
use rustls::pki_types::CertificateDer;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::transport::Channel;

/// Largest message either side sends (Vault's own limit is larger; lockbox
/// keeps the one of its own protocol).
const MAX_MESSAGE: usize = lockbox_plugin_proto::MAX_MESSAGE_SIZE;

/// How long a mount's setup may take (the plugin's broker dial alone may
/// wait 5 s).
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What a mount's `Setup` learned from the plugin.
#[derive(Clone, Debug)]
pub struct MountMeta {
    /// Secrets engine or auth method (`Type`).
    pub kind: BackendKind,
    /// `SpecialPaths`.
    pub special: SpecialPaths,
    /// `PluginVersion` (empty if the plugin has none).
    pub version: String,
}

struct VaultMount {
    meta: MountMeta,
    _broker_server: AbortOnDrop,
    socket: PathBuf,
}

/// A connected, healthy Vault-protocol plugin process.
pub struct VaultConn {
    channel: Channel,
    cert: HostCert,
    plugin_cert: CertificateDer<'static>,
    /// Whether the plugin keys its mounts by `multiplex_id`.
    pub multiplexed: bool,
    broker: mpsc::Sender<gp::ConnInfo>,
    next_broker_id: AtomicU32,
    socket_dir: PathBuf,
    pid: u32,
    server_version: String,
    mounts: Mutex<HashMap<String, VaultMount>>,
    _tasks: Vec<AbortOnDrop>,
}

/// Adds `multiplex_id` when the plugin multiplexes.
fn with_id<T>(multiplexed: bool, mount_id: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if multiplexed && let Ok(v) = mount_id.parse() {
        req.metadata_mut().insert(MULTIPLEX_ID_METADATA, v);
    }
    req
}

impl VaultConn {
    /// Dials `socket` with AutoMTLS (pinning `plugin_cert`), checks health,
    /// asks about multiplexing, opens the broker stream and drains stdio.
    pub async fn connect(
        socket: &Path,
        cert: HostCert,
        plugin_cert: Vec<u8>,
        socket_dir: &Path,
        pid: u32,
        server_version: &str,
    ) -> Result<VaultConn, String> {
        let plugin_cert = CertificateDer::from(plugin_cert);
        let channel = unix_tls::dial(socket, cert.client_config(plugin_cert.clone())?).await?;
        let status = tonic_health::pb::health_client::HealthClient::new(channel.clone())
            .check(tonic_health::pb::HealthCheckRequest {
                service: lockbox_vault_plugin_proto::services::HEALTH_CHECK_NAME.into(),
            })
            .await
            .map_err(|e| format!("health check failed: {}", e.message()))?
            .into_inner()
            .status;
        if status != tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
            return Err(format!("health check says not serving (status {status})"));
        }
        let multiplexed =
            match mux::plugin_multiplexing_client::PluginMultiplexingClient::new(channel.clone())
                .multiplexing_support(mux::MultiplexingSupportRequest {})
                .await
            {
                Ok(r) => r.into_inner().supported,
                Err(s) if s.code() == tonic::Code::Unimplemented => false,
                Err(s) => return Err(format!("MultiplexingSupport failed: {}", s.message())),
            };
        let (broker, rx) = mpsc::channel::<gp::ConnInfo>(16);
        let mut tasks = Vec::new();
        // The plugin sends nothing on either stream unless it announces a
        // listener or forwards stdio, and grpc-go sends headers lazily: both
        // calls run in tasks, never awaited inline.
        let mut broker_client = gp::grpc_broker_client::GrpcBrokerClient::new(channel.clone());
        tasks.push(AbortOnDrop(tokio::spawn(async move {
            let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
            if let Ok(resp) = broker_client.start_stream(stream).await {
                let mut incoming = resp.into_inner();
                // Announcements of plugin listeners: none of the SDKs'
                // backends make any; ignored.
                while let Ok(Some(_)) = incoming.message().await {}
            }
        })));
        let mut stdio = gp::grpc_stdio_client::GrpcStdioClient::new(channel.clone());
        tasks.push(AbortOnDrop(tokio::spawn(async move {
            if let Ok(resp) = stdio.stream_stdio(()).await {
                let mut incoming = resp.into_inner();
                while let Ok(Some(_)) = incoming.message().await {}
            }
        })));
        Ok(VaultConn {
            channel,
            cert,
            plugin_cert,
            multiplexed,
            broker,
            next_broker_id: AtomicU32::new(1),
            socket_dir: socket_dir.to_path_buf(),
            pid,
            server_version: server_version.to_string(),
            mounts: Mutex::new(HashMap::new()),
            _tasks: tasks,
        })
    }

    /// The plugin's `pb.Backend` client.
    pub fn backend(&self) -> pb::backend_client::BackendClient<Channel> {
        pb::backend_client::BackendClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// A request for `mount_id` (with `multiplex_id` when multiplexing).
    pub fn request<T>(&self, mount_id: &str, msg: T) -> tonic::Request<T> {
        with_id(self.multiplexed, mount_id, msg)
    }

    /// What `Setup` learned about a mount.
    pub fn mount_meta(&self, mount_id: &str) -> Option<MountMeta> {
        self.lock().get(mount_id).map(|m| m.meta.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VaultMount>> {
        self.mounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves a mount's host services on a fresh broker socket.
    fn serve_broker(
        &self,
        id: u32,
        services: MountServices,
    ) -> Result<(PathBuf, AbortOnDrop), String> {
        let socket = self.broker_socket(id);
        let listener = tokio::net::UnixListener::bind(&socket)
            .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
        let acceptor =
            tokio_rustls::TlsAcceptor::from(self.cert.server_config(self.plugin_cert.clone())?);
        let (tx, rx) = mpsc::channel::<Result<unix_tls::TlsConn, std::io::Error>>(4);
        let pid = self.pid;
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                // Only the plugin process itself (not its children).
                let peer = stream.peer_cred().ok().and_then(|c| c.pid());
                if peer.and_then(|p| u32::try_from(p).ok()) != Some(pid) {
                    tracing::warn!(
                        pid,
                        ?peer,
                        "refused a broker connection from another process"
                    );
                    continue;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Ok(unix_tls::TlsConn(tls))).await;
                        }
                        Ok(Err(e)) => tracing::warn!(pid, "refused a broker connection: {e}"),
                        Err(_) => tracing::warn!(pid, "broker TLS handshake timed out"),
                    }
                });
            }
        });
        let services = std::sync::Arc::new(services);
        let storage = pb::storage_server::StorageServer::from_arc(services.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let system = pb::system_view_server::SystemViewServer::from_arc(services);
        let server = tokio::spawn(async move {
            let _accept = AbortOnDrop(accept);
            let _ = tonic::transport::Server::builder()
                .add_service(storage)
                .add_service(system)
                .add_service(pb::events_server::EventsServer::new(DropEvents))
                .add_service(pb::observations_server::ObservationsServer::new(DropEvents))
                .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await;
        });
        Ok((socket, AbortOnDrop(server)))
    }

    /// Sets a mount up: its broker socket, `Setup`, `Initialize`,
    /// `SpecialPaths`, `Type` and `PluginVersion`, within [`SETUP_TIMEOUT`].
    /// On failure the mount's broker socket is closed and removed.
    pub async fn setup(
        &self,
        setup: &v1::SetupRequest,
        view: View,
        generation: std::sync::Arc<MountGeneration>,
        plugin_name: &str,
    ) -> Result<MountMeta, String> {
        let id = self.next_broker_id.fetch_add(1, Ordering::Relaxed);
        let steps = self.setup_steps(id, setup, view, generation, plugin_name);
        let result = match tokio::time::timeout(SETUP_TIMEOUT, steps).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "the plugin did not finish Setup within {SETUP_TIMEOUT:?}"
            )),
        };
        if result.is_err() {
            let _ = std::fs::remove_file(self.broker_socket(id));
        }
        result
    }

    fn broker_socket(&self, id: u32) -> PathBuf {
        self.socket_dir.join(format!("broker-{id}.sock"))
    }

    /// The steps of [`VaultConn::setup`], without its timeout.
    async fn setup_steps(
        &self,
        id: u32,
        setup: &v1::SetupRequest,
        view: View,
        generation: std::sync::Arc<MountGeneration>,
        plugin_name: &str,
    ) -> Result<MountMeta, String> {
        let mount_id = setup.mount_id.as_str();
        if !self.multiplexed && self.lock().keys().any(|k| k != mount_id) {
            return Err(
                "the plugin does not multiplex and already serves a mount; register it with multiplexing off".into(),
            );
        }
        let services = MountServices {
            view,
            generation,
            default_ttl: setup.default_lease_ttl_seconds,
            max_ttl: setup.max_lease_ttl_seconds,
            server_version: self.server_version.clone(),
        };
        let (socket, server) = self.serve_broker(id, services)?;
        let announce = gp::ConnInfo {
            service_id: id,
            network: "unix".into(),
            address: socket.to_string_lossy().into_owned(),
            knock: None,
        };
        self.broker
            .send(announce)
            .await
            .map_err(|_| "the broker stream to the plugin is closed".to_string())?;
        let mut config: HashMap<String, String> = setup.options.clone();
        config.insert("plugin_name".into(), plugin_name.to_string());
        config.insert("mount_accessor".into(), setup.mount_accessor.clone());
        let rpc = |what: &str, s: tonic::Status| format!("{what} failed: {}", s.message());
        let mut backend = self.backend();
        let reply = backend
            .setup(self.request(
                mount_id,
                pb::SetupArgs {
                    broker_id: id,
                    config,
                    backend_uuid: mount_id.to_string(),
                },
            ))
            .await
            .map_err(|s| rpc("Setup", s))?
            .into_inner();
        if !reply.err.is_empty() {
            return Err(reply.err);
        }
        let init = backend
            .initialize(self.request(mount_id, pb::InitializeArgs {}))
            .await
            .map_err(|s| rpc("Initialize", s))?
            .into_inner();
        if let Some(e) = init.err.filter(|e| !e.err_msg.is_empty()) {
            return Err(format!("Initialize: {}", e.err_msg));
        }
        let paths = backend
            .special_paths(self.request(mount_id, pb::Empty {}))
            .await
            .map_err(|s| rpc("SpecialPaths", s))?
            .into_inner()
            .paths
            .unwrap_or_default();
        let kind = match backend
            .r#type(self.request(mount_id, pb::Empty {}))
            .await
            .map_err(|s| rpc("Type", s))?
            .into_inner()
            .r#type
        {
            2 => BackendKind::Credential,
            _ => BackendKind::Secret,
        };
        let version =
            vlogical::plugin_version_client::PluginVersionClient::new(self.channel.clone())
                .version(self.request(mount_id, vlogical::Empty {}))
                .await
                .map(|r| r.into_inner().plugin_version)
                .unwrap_or_default();
        let meta = MountMeta {
            kind,
            special: SpecialPaths {
                root: paths.root,
                unauthenticated: paths.unauthenticated,
            },
            version,
        };
        self.lock().insert(
            mount_id.to_string(),
            VaultMount {
                meta: meta.clone(),
                _broker_server: server,
                socket,
            },
        );
        Ok(meta)
    }

    /// `Cleanup` for a mount, then closes its broker socket.
    pub async fn cleanup(&self, mount_id: &str) {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.backend().cleanup(self.request(mount_id, pb::Empty {})),
        )
        .await;
        if let Some(m) = self.lock().remove(mount_id) {
            let _ = std::fs::remove_file(&m.socket);
        }
    }

    /// go-plugin's graceful stop (`GRPCController/Shutdown`), bounded.
    pub async fn shutdown(&self) {
        let mut c = gp::grpc_controller_client::GrpcControllerClient::new(self.channel.clone());
        let _ = tokio::time::timeout(Duration::from_secs(2), c.shutdown(gp::Empty {})).await;
    }
}
