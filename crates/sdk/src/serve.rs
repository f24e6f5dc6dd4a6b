//! Launch and handshake (docs/plugin-protocol.md §1–2), serving, and
//! graceful shutdown.
//!
//! ```text
//! serve(backend) ─▶ HostProtocol::from_env()  lockbox's cookie → lockbox protocol (even when
//!                     │                        Vault's is set too: lockbox's host sets both);
//!                     │                        else Vault's cookie → Vault protocol 5 (crate::vault);
//!                     │                        neither, or a bad environment → one line on stderr, exit 1
//!                     ▼
//!                  run(factory, env, stdout, SIGTERM/SIGINT)     (vault::run for Vault's)
//!                     1. bind $LOCKBOX_PLUGIN_SOCKET_DIR/plugin.sock
//!                     2. serve Backend + grpc.health.v1.Health ("" = SERVING)
//!                     3. print `1|1|unix|<abs socket path>|grpc|` on stdout, flush
//!                     4. Storage client → $LOCKBOX_PLUGIN_HOST_SOCKET (lazy connect),
//!                        every call carrying $LOCKBOX_PLUGIN_HOST_TOKEN as
//!                        `lockbox-host-token` metadata
//!                     5. on the signal: health NOT_SERVING, stop accepting,
//!                        finish in-flight requests (≤ drain timeout), exit 0
//! ```

use crate::error::ServeError;
use crate::lifecycle;
use crate::logical::{Backend, Factory, Shared};
use crate::routes::Routes;
use crate::service::PluginService;
use crate::storage::GrpcTransport;
use lockbox_plugin_proto as proto;
use lockbox_plugin_proto::v1 as pb;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::{Endpoint, Server};
use tonic_health::ServingStatus;

/// The file name of the plugin's socket inside the socket directory.
pub const SOCKET_FILE: &str = "plugin.sock";

pub use lockbox_plugin_proto::MAX_MESSAGE_SIZE;

pub use crate::lifecycle::DRAIN_TIMEOUT;

/// What the host gives a plugin through the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEnv {
    /// The app protocol version chosen from the host's offer (always 1).
    pub app_protocol: u32,
    /// Where to create the socket (`LOCKBOX_PLUGIN_SOCKET_DIR`).
    pub socket_dir: PathBuf,
    /// The host's storage socket (`LOCKBOX_PLUGIN_HOST_SOCKET`).
    pub host_socket: PathBuf,
    /// The secret to present to the host's storage service
    /// (`LOCKBOX_PLUGIN_HOST_TOKEN`); sent as gRPC metadata on every
    /// storage call.
    pub host_token: Option<String>,
    /// The catalog name, for logs (`LOCKBOX_PLUGIN_NAME`).
    pub name: Option<String>,
    /// The catalog version, for logs (`LOCKBOX_PLUGIN_VERSION`).
    pub version: Option<String>,
}

fn program_name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "lockbox plugin".into())
}

impl PluginEnv {
    /// Reads and checks the process environment.
    pub fn from_env() -> Result<Self, ServeError> {
        Self::from_lookup(&program_name(), |k| std::env::var(k).ok())
    }

    /// Reads and checks an environment given as a lookup function (tests).
    pub fn from_lookup(
        program: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ServeError> {
        let program = program.to_string();
        if lookup(proto::MAGIC_COOKIE_KEY).as_deref() != Some(proto::MAGIC_COOKIE_VALUE) {
            return Err(ServeError::NotLaunchedByHost { program });
        }
        let required = |var: &'static str| {
            lookup(var)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ServeError::MissingEnv {
                    program: program.clone(),
                    var,
                })
        };
        let offered = required(proto::PROTOCOL_VERSIONS_KEY)?;
        let ours = proto::APP_PROTOCOL_VERSION;
        if !offered
            .split(',')
            .any(|v| v.trim().parse::<u32>() == Ok(ours))
        {
            return Err(ServeError::UnsupportedProtocol {
                program,
                offered,
                ours,
            });
        }
        let socket_dir = PathBuf::from(required(proto::SOCKET_DIR_KEY)?);
        let host_socket = PathBuf::from(required(proto::HOST_SOCKET_KEY)?);
        Ok(PluginEnv {
            app_protocol: ours,
            socket_dir,
            host_socket,
            host_token: lookup(proto::HOST_TOKEN_KEY).filter(|v| !v.is_empty()),
            name: lookup(proto::NAME_KEY).filter(|v| !v.is_empty()),
            version: lookup(proto::VERSION_KEY).filter(|v| !v.is_empty()),
        })
    }

    /// The handshake line for a socket at `socket` (without newline).
    pub fn handshake_line(&self, socket: &Path) -> String {
        format!(
            "{}|{}|unix|{}|grpc|",
            proto::CORE_PROTOCOL_VERSION,
            self.app_protocol,
            socket.display()
        )
    }
}

/// The protocol of the host that started the process, from its
/// environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostProtocol {
    /// lockbox's own protocol (`LOCKBOX_PLUGIN_MAGIC_COOKIE`).
    Lockbox(PluginEnv),
    /// Vault's plugin protocol 5 (`VAULT_BACKEND_PLUGIN`): Vault, OpenBao.
    Vault(crate::vault::VaultEnv),
}

impl HostProtocol {
    /// Reads and checks the process environment.
    pub fn from_env() -> Result<Self, ServeError> {
        Self::from_lookup(&program_name(), |k| std::env::var(k).ok())
    }

    /// Chooses the protocol from an environment given as a lookup function:
    /// lockbox's magic cookie wins (lockbox's host sets Vault's variables
    /// too, for Vault plugins), then Vault's; with neither the plugin was
    /// started by hand, and the error says how it is meant to start.
    pub fn from_lookup(
        program: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ServeError> {
        if lookup(proto::MAGIC_COOKIE_KEY).as_deref() == Some(proto::MAGIC_COOKIE_VALUE) {
            PluginEnv::from_lookup(program, lookup).map(HostProtocol::Lockbox)
        } else if crate::vault::has_vault_cookie(&lookup) {
            crate::vault::VaultEnv::from_lookup(program, lookup).map(HostProtocol::Vault)
        } else {
            Err(ServeError::NotLaunchedByHost {
                program: program.to_string(),
            })
        }
    }
}

/// Serves `backend` for every mount: the whole plugin side of the protocol.
/// Call it from `main`; it returns the process exit code.
///
/// ```no_run
/// use lockbox_sdk::{Kind, framework::PathBackend};
///
/// fn main() -> std::process::ExitCode {
///     lockbox_sdk::serve(PathBackend::new(Kind::Secret, "v0.1.0"))
/// }
/// ```
pub fn serve(backend: impl Backend) -> ExitCode {
    serve_with(Shared::new(backend))
}

/// Like [`serve`], with a [`Factory`] that makes a backend per mount.
pub fn serve_with(factory: impl Factory) -> ExitCode {
    // Same-user processes (other plugins) cannot read this process's
    // memory or environment (which holds the host token) from now on.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let env = match HostProtocol::from_env() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    init_logging();
    // One thread serves everything: a plugin's work is mostly waiting on the
    // host, and a single-threaded runtime spares every request the
    // cross-thread wake-ups of a work-stealing one (about a third less CPU
    // per request in `lockbox-bench plugins`). CPU-heavy handlers belong in
    // `tokio::task::spawn_blocking`, which has its own thread pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}", ServeError::Runtime(e));
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let shutdown = shutdown_signal().map_err(ServeError::Runtime)?;
        let mut stdout = std::io::stdout();
        match env {
            HostProtocol::Lockbox(env) => run(factory, env, &mut stdout, shutdown).await,
            HostProtocol::Vault(env) => {
                crate::vault::run(factory, env, &mut stdout, shutdown).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "plugin stopped");
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// Logs to stderr (the host forwards each line with the plugin's name,
/// version, pid and its own timestamp), plain text, level from
/// `LOCKBOX_PLUGIN_LOG` (`error`..`trace`, default `info`). Does nothing if
/// the plugin installed its own subscriber.
fn init_logging() {
    let level = std::env::var("LOCKBOX_PLUGIN_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .with_max_level(level)
        .try_init();
}

/// Resolves on SIGTERM or SIGINT.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight requests"),
            _ = int.recv() => tracing::info!("SIGINT: finishing in-flight requests"),
        }
    })
}

/// Runs the plugin until `shutdown` resolves: binds the socket, serves,
/// writes the handshake line to `handshake`, and on shutdown finishes
/// in-flight requests (at most [`DRAIN_TIMEOUT`]) and removes the socket.
///
/// [`serve`] calls this with the process environment, stdout and SIGTERM;
/// tests call it with a temporary directory and a channel.
pub async fn run(
    factory: impl Factory,
    env: PluginEnv,
    handshake: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let socket_path = std::path::absolute(env.socket_dir.join(SOCKET_FILE)).map_err(|source| {
        ServeError::Bind {
            path: env.socket_dir.join(SOCKET_FILE),
            source,
        }
    })?;
    let listener = lifecycle::bind_fresh(&socket_path)?;

    let endpoint = Endpoint::from_shared(format!("unix://{}", env.host_socket.display())).map_err(
        |source| ServeError::HostSocket {
            path: env.host_socket.clone(),
            source,
        },
    )?;
    let transport = Arc::new(GrpcTransport::new(
        endpoint.connect_lazy(),
        env.host_token.as_deref(),
    )?);
    let service = PluginService::new(Arc::new(factory), transport);

    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    let routes = Routes::new()
        .add(
            pb::backend_server::BackendServer::new(service)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
        .add(health);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal_reporter = reporter.clone();
    tokio::spawn(async move {
        shutdown.await;
        signal_reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        let _ = stop_tx.send(true);
    });
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(Server::builder().serve_with_incoming_shutdown(
        routes,
        UnixListenerStream::new(listener),
        async move {
            let _ = server_stop.wait_for(|stop| *stop).await;
        },
    ));

    // The server task is running: announce the socket.
    let line = env.handshake_line(&socket_path);
    writeln!(handshake, "{line}")
        .and_then(|()| handshake.flush())
        .map_err(ServeError::Handshake)?;
    tracing::info!(
        socket = %socket_path.display(),
        plugin = env.name.as_deref().unwrap_or(""),
        version = env.version.as_deref().unwrap_or(""),
        "plugin serving"
    );

    let outcome = lifecycle::until_stopped(server, stop_rx).await;
    let _ = std::fs::remove_file(&socket_path);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> Result<PluginEnv, ServeError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PluginEnv::from_lookup("lockbox-plugin-test", |k| map.get(k).cloned())
    }

    const COOKIE: (&str, &str) = (proto::MAGIC_COOKIE_KEY, proto::MAGIC_COOKIE_VALUE);

    #[test]
    fn cookie_is_required() {
        let e = env_of(&[]).unwrap_err();
        assert!(matches!(e, ServeError::NotLaunchedByHost { .. }));
        let msg = e.to_string();
        assert!(!msg.contains('\n'));
        assert!(
            msg.starts_with("lockbox-plugin-test: this is a lockbox plugin"),
            "{msg}"
        );
        assert!(msg.contains("lockbox plugin register") && msg.contains("--dev-plugin-dir"));
        let wrong = env_of(&[(proto::MAGIC_COOKIE_KEY, "nope")]).unwrap_err();
        assert!(matches!(wrong, ServeError::NotLaunchedByHost { .. }));
    }

    #[test]
    fn picks_version_one() {
        let base = [
            COOKIE,
            (proto::SOCKET_DIR_KEY, "/run/p"),
            (proto::HOST_SOCKET_KEY, "/run/host.sock"),
        ];
        let with = |versions: &str| {
            let mut v = base.to_vec();
            v.push((proto::PROTOCOL_VERSIONS_KEY, versions));
            env_of(&v)
        };
        let env = with("2, 1").unwrap();
        assert_eq!(env.app_protocol, 1);
        assert_eq!(
            env.handshake_line(Path::new("/run/p/plugin.sock")),
            "1|1|unix|/run/p/plugin.sock|grpc|"
        );
        let e = with("2,3").unwrap_err();
        assert!(matches!(e, ServeError::UnsupportedProtocol { .. }));
        assert!(e.to_string().contains("\"2,3\""), "{e}");
        assert!(matches!(
            with("").unwrap_err(),
            ServeError::MissingEnv { .. }
        ));
        assert!(matches!(
            env_of(&[COOKIE, (proto::PROTOCOL_VERSIONS_KEY, "1")]).unwrap_err(),
            ServeError::MissingEnv { var, .. } if var == proto::SOCKET_DIR_KEY
        ));
    }

    fn protocol_of(pairs: &[(&str, &str)]) -> Result<HostProtocol, ServeError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HostProtocol::from_lookup("lockbox-plugin-test", |k| map.get(k).cloned())
    }

    /// What lockbox's host sets on every launch: its own variables and
    /// Vault's (for Vault plugins). The SDK speaks lockbox's protocol then.
    #[test]
    fn both_cookies_choose_lockbox() {
        let cert = lockbox_vault_plugin_proto::tls::AutoMtlsCert::generate().unwrap();
        let both = [
            COOKIE,
            (proto::PROTOCOL_VERSIONS_KEY, "1"),
            (proto::SOCKET_DIR_KEY, "/run/p"),
            (proto::HOST_SOCKET_KEY, "/run/host.sock"),
            (VAULT_COOKIE.0, VAULT_COOKIE.1),
            (VAULT_VERSIONS, "5"),
            (VAULT_CERT, &cert.pem),
        ];
        assert!(matches!(protocol_of(&both), Ok(HostProtocol::Lockbox(_))));
        // Vault's only (what `bao server` sets): Vault's protocol.
        let vault_only = &both[4..];
        match protocol_of(vault_only) {
            Ok(HostProtocol::Vault(env)) => assert_eq!(env.client_cert_pem, cert.pem),
            other => panic!("expected Vault's protocol, got {other:?}"),
        }
        // A wrong Vault cookie is no cookie.
        let wrong = [(VAULT_COOKIE.0, "nope"), (VAULT_VERSIONS, "5")];
        assert!(matches!(
            protocol_of(&wrong),
            Err(ServeError::NotLaunchedByHost { .. })
        ));
    }

    /// Neither cookie: one line naming both ways the plugin is started.
    #[test]
    fn neither_cookie_names_both_hosts() {
        let msg = protocol_of(&[]).unwrap_err().to_string();
        assert!(!msg.contains('\n'));
        assert!(msg.contains("lockbox plugin register"), "{msg}");
        assert!(msg.contains("Vault or OpenBao"), "{msg}");
        assert!(msg.contains("plugin register -sha256"), "{msg}");
    }

    const VAULT_COOKIE: (&str, &str) = (
        lockbox_vault_plugin_proto::handshake::MAGIC_COOKIE_KEY,
        lockbox_vault_plugin_proto::handshake::MAGIC_COOKIE_VALUE,
    );
    const VAULT_VERSIONS: &str = lockbox_vault_plugin_proto::handshake::env::PROTOCOL_VERSIONS;
    const VAULT_CERT: &str = lockbox_vault_plugin_proto::handshake::env::CLIENT_CERT;
}
