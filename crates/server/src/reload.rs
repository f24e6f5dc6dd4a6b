//! Signals: SIGTERM/SIGINT end the server, SIGHUP re-reads what can change
//! while it runs ([`Reloader`]).

use crate::config::Config;
use crate::logging::ReloadHandle;
use lockbox_http::{self as http, tls};
use lockbox_plugin_host::PluginHost;
use std::path::PathBuf;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// Signal streams, registered before the server announces itself so a
/// signal that arrives early is handled, not fatal.
pub struct Signals {
    /// SIGTERM.
    pub term: tokio::signal::unix::Signal,
    /// SIGHUP.
    pub hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers SIGTERM and SIGHUP.
    pub fn register() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Completes at SIGTERM or SIGINT.
pub async fn shutdown_signal(mut term: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received, shutting down"),
    }
}

/// What SIGHUP re-reads: the config file (config mode) or nothing but the
/// TLS files at their paths (dev and operator mode); and the log level
/// unless a flag or environment variable chose it.
#[derive(Default)]
pub struct Reload {
    /// The config file; `None`: only the TLS files are re-read.
    pub path: Option<PathBuf>,
    /// The configuration as running (config mode).
    pub running: Option<Config>,
    /// The log filter's reload handle.
    pub log: Option<ReloadHandle>,
    /// Set when a flag or environment variable chose the log level.
    pub level_pinned_by: Option<&'static str>,
}

/// What SIGHUP re-reads and applies.
pub(crate) struct Reloader {
    /// The config file; `None` in dev mode (only the TLS files are re-read).
    pub(crate) path: Option<PathBuf>,
    /// The configuration as running: the startup file, updated with what
    /// each reload applied (so a key that needs a restart is reported on
    /// every reload until the process restarts).
    pub(crate) running: Option<Config>,
    pub(crate) log: Option<ReloadHandle>,
    /// Set when a flag or environment variable chose the log level.
    pub(crate) level_pinned_by: Option<&'static str>,
    pub(crate) tls: Option<tls::Reloadable>,
    /// Where a changed `plugin_directory` is applied.
    pub(crate) plugins: Option<Arc<PluginHost>>,
    /// Where a changed `max_request_size` is applied.
    pub(crate) request_limit: Option<http::RequestLimit>,
    /// Whose audit files are reopened (logrotate).
    pub(crate) core: Option<Arc<lockbox_core::core::Core>>,
}

impl Reloader {
    fn reload(&mut self) {
        if let Some(core) = &self.core {
            core.reopen_audit();
        }
        let (Some(path), Some(running)) = (&self.path, &mut self.running) else {
            if let Some(tls) = &self.tls {
                match tls.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => {
                        tracing::error!("TLS reload failed, keeping the old certificate: {e}")
                    }
                }
            }
            return;
        };
        let new = match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reload failed, keeping the running configuration: {e}");
                return;
            }
        };
        match (self.level_pinned_by, &self.log) {
            (Some(source), _) => {
                if new.log_level != running.log_level {
                    tracing::info!(
                        file_level = %new.log_level,
                        "log_level of the config file not applied: the log level is set by {source}"
                    );
                }
            }
            (None, Some(handle)) => match handle.modify(|f| *f = EnvFilter::new(&new.log_level)) {
                Ok(()) => {
                    running.log_level = new.log_level.clone();
                    tracing::info!(level = %new.log_level, "log level reloaded");
                }
                Err(e) => tracing::error!("log level reload failed: {e}"),
            },
            (None, None) => {}
        }
        if let (Some(tls), false, Some(cert), Some(key)) = (
            &self.tls,
            new.listener.tls_disable,
            &new.listener.tls_cert_file,
            &new.listener.tls_key_file,
        ) {
            match tls.reload_from(cert, key) {
                Ok(()) => {
                    running.listener.tls_cert_file = Some(cert.clone());
                    running.listener.tls_key_file = Some(key.clone());
                    tracing::info!(
                        cert = %cert.display(),
                        key = %key.display(),
                        "TLS certificate reloaded"
                    );
                }
                Err(e) => {
                    tracing::error!("TLS reload failed, keeping the old certificate: {e}")
                }
            }
        }
        if new.plugin_directory != running.plugin_directory
            && let Some(host) = &self.plugins
        {
            host.set_plugin_directory(new.plugin_directory.clone());
            running.plugin_directory = new.plugin_directory.clone();
            match &new.plugin_directory {
                Some(dir) => tracing::info!(dir = %dir.display(), "plugin_directory reloaded"),
                None => {
                    tracing::info!("plugin_directory unset: external plugins can no longer start")
                }
            }
        }
        if new.request_limit() != running.request_limit()
            && let Some(limit) = &self.request_limit
        {
            limit.set(new.request_limit().unwrap_or(usize::MAX));
            running.max_request_size = new.max_request_size;
            running.listener.max_request_size = new.listener.max_request_size;
            match new.request_limit() {
                Some(bytes) => tracing::info!(bytes, "max_request_size reloaded"),
                None => tracing::info!("max_request_size reloaded: unlimited"),
            }
        }
        for key in running.changes_needing_restart(&new) {
            tracing::warn!("{key} changed; restart required");
        }
    }
}

pub(crate) fn spawn_sighup(mut hup: tokio::signal::unix::Signal, mut reloader: Reloader) {
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received, reloading");
            reloader.reload();
        }
    });
}
