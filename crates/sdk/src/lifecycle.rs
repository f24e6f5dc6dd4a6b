//! What both protocols' servers do the same way at the edges of their
//! life: listening on a fresh socket, and stopping (drain in-flight
//! requests after the stop signal, at most [`DRAIN_TIMEOUT`]). Used by
//! `serve.rs` (lockbox's protocol) and `vault/` (Vault's).

use crate::error::ServeError;
use std::path::Path;
use std::time::Duration;
use tokio::net::UnixListener;

/// How long in-flight requests may run after SIGTERM (or the host's
/// shutdown call) before the process exits anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Removes a stale socket at `path` (from a crashed predecessor; the
/// directory is the plugin's) and listens there.
pub(crate) fn bind_fresh(path: &Path) -> Result<UnixListener, ServeError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ServeError::Bind {
                path: path.to_path_buf(),
                source,
            });
        }
    }
    UnixListener::bind(path).map_err(|source| ServeError::Bind {
        path: path.to_path_buf(),
        source,
    })
}

/// Waits for the server to end or for the stop signal; after the signal,
/// lets in-flight requests finish (at most [`DRAIN_TIMEOUT`]).
pub(crate) async fn until_stopped(
    mut server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    mut stop_rx: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let outcome = tokio::select! {
        res = &mut server => Some(res),
        _ = stop_rx.wait_for(|stop| *stop) => None,
    };
    let outcome = match outcome {
        Some(res) => res,
        None => match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
            Ok(res) => res,
            Err(_) => {
                tracing::warn!(
                    "in-flight requests did not finish within {DRAIN_TIMEOUT:?}; exiting anyway"
                );
                server.abort();
                Ok(Ok(()))
            }
        },
    };
    match outcome {
        Ok(Ok(())) => {
            tracing::info!("plugin stopped");
            Ok(())
        }
        Ok(Err(e)) => Err(ServeError::Serve(e)),
        Err(e) => Err(ServeError::Task(e)),
    }
}
