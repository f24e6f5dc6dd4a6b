//! go-plugin's own services, plugin side: the connection broker (the host
//! announces where it serves each mount's `Storage`/`SystemView`; the
//! plugin dials there with the same mutual TLS), the controller (clean
//! shutdown), stdio (nothing to relay: logs go to stderr, which the host
//! reads) and the multiplexing probe.
//!
//! ```text
//!  host ──StartStream──▶ ConnInfo{id N, unix, /path}  (kept in `announced`)
//!  host ──Setup(broker_id N)──▶ Broker::dial(N): wait ≤ 5 s for N, dial /path (mTLS)
//! ```

use lockbox_vault_plugin_proto::plugin as gp;
use lockbox_vault_plugin_proto::pluginutil::multiplexing as mux;
use lockbox_vault_plugin_proto::unix_tls;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_stream::Stream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

/// How long a `Setup` waits for the host to announce its broker id (what
/// go-plugin waits).
pub(crate) const DIAL_WAIT: Duration = Duration::from_secs(5);

/// A stream that never yields and never ends: what the plugin sends on the
/// broker and stdio streams (it announces no listeners and relays no
/// output). Ending them would tell the host the plugin is going away.
type Silent<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn silent<T: Send + 'static>() -> Silent<T> {
    Box::pin(futures_util::stream::pending())
}

/// The plugin side of `plugin.GRPCBroker`.
pub(crate) struct Broker {
    announced: Mutex<HashMap<u32, gp::ConnInfo>>,
    changed: Notify,
    tls: Arc<rustls::ClientConfig>,
}

impl Broker {
    /// `tls` presents the plugin's certificate and pins the host's.
    pub(crate) fn new(tls: Arc<rustls::ClientConfig>) -> Arc<Self> {
        Arc::new(Broker {
            announced: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            tls,
        })
    }

    fn announce(&self, info: gp::ConnInfo) {
        self.announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(info.service_id, info);
        self.changed.notify_waiters();
    }

    /// Takes the announcement of `id` (each is used by one `Setup`).
    fn take(&self, id: u32) -> Option<gp::ConnInfo> {
        self.announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
    }

    /// Waits (at most [`DIAL_WAIT`]) for the host to announce `id`, then
    /// dials it with mutual TLS.
    pub(crate) async fn dial(&self, id: u32) -> Result<Channel, String> {
        let deadline = tokio::time::Instant::now() + DIAL_WAIT;
        let info = loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(info) = self.take(id) {
                break info;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(format!(
                    "the host did not announce broker id {id} within {DIAL_WAIT:?}"
                ));
            }
        };
        if info.network != "unix" {
            return Err(format!(
                "the host announced broker id {id} on network {:?}; this plugin dials only unix sockets",
                info.network
            ));
        }
        let path = std::path::PathBuf::from(&info.address);
        unix_tls::dial(&path, self.tls.clone())
            .await
            .map_err(|e| format!("the host's broker socket: {e}"))
    }
}

/// `plugin.GRPCBroker` served by the plugin.
pub(crate) struct BrokerService(pub(crate) Arc<Broker>);

#[tonic::async_trait]
impl gp::grpc_broker_server::GrpcBroker for BrokerService {
    type StartStreamStream = Silent<gp::ConnInfo>;

    async fn start_stream(
        &self,
        request: Request<Streaming<gp::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut incoming = request.into_inner();
        let broker = self.0.clone();
        tokio::spawn(async move {
            while let Ok(Some(info)) = incoming.message().await {
                broker.announce(info);
            }
        });
        Ok(Response::new(silent()))
    }
}

/// `plugin.GRPCController`: `Shutdown` stops the plugin gracefully.
pub(crate) struct Controller(pub(crate) watch::Sender<bool>);

#[tonic::async_trait]
impl gp::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _request: Request<gp::Empty>) -> Result<Response<gp::Empty>, Status> {
        tracing::info!("the host asked the plugin to shut down");
        let _ = self.0.send(true);
        Ok(Response::new(gp::Empty {}))
    }
}

/// `plugin.GRPCStdio`: nothing is relayed (stderr reaches the host as is).
pub(crate) struct Stdio;

#[tonic::async_trait]
impl gp::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = Silent<gp::StdioData>;

    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(silent()))
    }
}

/// The multiplexing probe: one process serves every mount.
pub(crate) struct Multiplexing;

#[tonic::async_trait]
impl mux::plugin_multiplexing_server::PluginMultiplexing for Multiplexing {
    async fn multiplexing_support(
        &self,
        _request: Request<mux::MultiplexingSupportRequest>,
    ) -> Result<Response<mux::MultiplexingSupportResponse>, Status> {
        Ok(Response::new(mux::MultiplexingSupportResponse {
            supported: true,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockbox_vault_plugin_proto::tls::{AutoMtlsCert, Peer};

    fn broker() -> Arc<Broker> {
        let plugin = AutoMtlsCert::generate().unwrap();
        let host = AutoMtlsCert::generate().unwrap();
        Broker::new(plugin.client_config(Peer::host(host.der.clone())).unwrap())
    }

    /// An id the host never announces fails after the wait, naming it; an
    /// announcement on another network is refused by name.
    #[tokio::test(start_paused = true)]
    async fn dial_waits_for_the_announcement_then_names_what_failed() {
        let b = broker();
        let e = b.dial(7).await.unwrap_err();
        assert!(e.contains("did not announce broker id 7"), "{e}");
        b.announce(gp::ConnInfo {
            service_id: 8,
            network: "tcp".into(),
            address: "127.0.0.1:1".into(),
            knock: None,
        });
        let e = b.dial(8).await.unwrap_err();
        assert!(e.contains("only unix sockets"), "{e}");
        // Announced while waiting: the dial proceeds (and fails to connect
        // to a socket that does not exist, naming it).
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.dial(9).await })
        };
        tokio::task::yield_now().await;
        b.announce(gp::ConnInfo {
            service_id: 9,
            network: "unix".into(),
            address: "/nonexistent/broker.sock".into(),
            knock: None,
        });
        let e = waiter.await.unwrap().unwrap_err();
        assert!(e.contains("/nonexistent/broker.sock"), "{e}");
    }

    #[tokio::test]
    async fn multiplexing_is_supported() {
        use mux::plugin_multiplexing_server::PluginMultiplexing as _;
        let r = Multiplexing
            .multiplexing_support(Request::new(mux::MultiplexingSupportRequest {}))
            .await
            .unwrap();
        assert!(r.into_inner().supported);
    }
}
