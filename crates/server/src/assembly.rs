//! The one server assembly: a [`Node`] (storage, the core, the plugin host
//! and plugin images), its API listener with TLS and request limits, SIGHUP
//! reload, and the drain-then-seal shutdown. Dev mode, config mode and
//! operator mode each build one and differ only in what they do around it
//! (initialization, banners, the operator's controllers).
//!
//! ```text
//!   mode ──▶ Node::new(physical, NodeConfig) ──▶ bind ──▶ Assembly::new(node, listener, options)
//!                                                            ├─ reload_on_sighup(hup, Reload)
//!                                                            └─ serve(shutdown): http::serve, then seal
//! ```

use crate::args::ServerError;
use crate::reload::{Reload, Reloader, spawn_sighup};
use lockbox_http::{self as http, ServerOptions};
use lockbox_plugin_host::Node;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;

/// One server, assembled: a node behind an HTTP(S) listener.
pub struct Assembly {
    node: Arc<Node>,
    listener: TcpListener,
    options: ServerOptions,
}

impl Assembly {
    /// A server of `node` on `listener`; `options.tls` and
    /// `options.max_request_size` are also what SIGHUP reloads.
    pub fn new(node: Arc<Node>, listener: TcpListener, options: ServerOptions) -> Self {
        Self {
            node,
            listener,
            options,
        }
    }

    /// The node served.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.options.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Applies SIGHUP from now on: the TLS certificate (re-read at its
    /// paths, or at new ones from the config file), and from the config
    /// file the log level, `plugin_directory` and `max_request_size`.
    pub fn reload_on_sighup(&self, hup: tokio::signal::unix::Signal, reload: Reload) {
        spawn_sighup(
            hup,
            Reloader {
                path: reload.path,
                running: reload.running,
                log: reload.log,
                level_pinned_by: reload.level_pinned_by,
                tls: self.options.tls.clone(),
                plugins: Some(self.node.plugin_host().clone()),
                request_limit: Some(self.options.max_request_size.clone()),
                core: Some(self.node.core().clone()),
            },
        );
    }

    /// Serves until `shutdown` completes, lets in-flight requests finish,
    /// then seals.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        http::serve(
            self.listener,
            self.node.core().clone(),
            self.options,
            shutdown,
        )
        .await?;
        self.node.seal().await;
        Ok(())
    }
}

/// A plugin cache in a temporary directory (dev mode, in-memory storage):
/// removed when the server stops.
pub(crate) struct TempCacheDir(pub(crate) PathBuf);

impl TempCacheDir {
    pub(crate) fn new() -> Self {
        // Unpredictable, like the plugin runtime directory (issue 10).
        Self(std::env::temp_dir().join(format!(
            "lockbox-plugin-cache-{}-{}",
            std::process::id(),
            lockbox_plugin_host::process::random_suffix()
        )))
    }
}

impl Drop for TempCacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Binds the API listener.
pub(crate) async fn bind(address: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind {
            address: address.to_string(),
            source,
        })
}
