//! `lockbox server`: wires configuration, storage, the core and the HTTP
//! listener together, prints the startup banner, handles signals.
//!
//! * `--dev`: in-memory storage, initialized with one unseal key, unsealed,
//!   a root token (`--dev-root-token-id`), and a `kv` mount at `secret/`.
//! * `--config FILE`: HCL configuration (see [`crate::config`]); the server
//!   starts sealed unless unseal keys are available from `unseal_keys_file`,
//!   `--unseal-keys-file` or `LOCKBOX_UNSEAL_KEYS` (auto-unseal).
//!
//! SIGHUP re-reads the config file and applies what can change at run time
//! (log level, TLS certificate and key). SIGTERM and SIGINT stop accepting
//! connections, let in-flight requests finish, and seal.

use crate::config::{Config, ConfigError, StorageConfig};
use crate::core::{Core, CoreConfig};
use crate::http::{self, ServerOptions, tls};
use crate::plugin::catalog::{CatalogEntry, PluginType};
use crate::storage::{FileBackend, InMemory, Physical, StorageError};
use base64::Engine;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing_subscriber::{EnvFilter, reload};

/// Flags of `lockbox server`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Path to an HCL configuration file.
    #[arg(long, conflicts_with = "dev")]
    pub config: Option<PathBuf>,
    /// Development mode: in memory, unsealed, root token printed.
    #[arg(long)]
    pub dev: bool,
    /// The root token's ID in dev mode (random if unset).
    #[arg(long, env = "LOCKBOX_DEV_ROOT_TOKEN_ID")]
    pub dev_root_token_id: Option<String>,
    /// Address the dev server listens on.
    #[arg(
        long,
        default_value = "127.0.0.1:8200",
        env = "LOCKBOX_DEV_LISTEN_ADDRESS"
    )]
    pub dev_listen_address: String,
    /// Serve the dev server over TLS with a generated CA and certificate.
    #[arg(long)]
    pub dev_tls: bool,
    /// Where `--dev-tls` writes its certificates (a temporary directory if unset).
    #[arg(long)]
    pub dev_tls_cert_dir: Option<PathBuf>,
    /// Dev mode: register every executable in DIR as a plugin (name: the
    /// file name without a `lockbox-plugin-` prefix) and use DIR as the
    /// plugin directory.
    #[arg(long, value_name = "DIR")]
    pub dev_plugin_dir: Option<PathBuf>,
    /// File holding unseal keys, one per line, for auto-unseal.
    #[arg(long, env = "LOCKBOX_UNSEAL_KEYS_FILE")]
    pub unseal_keys_file: Option<PathBuf>,
    /// Log level (overrides the config file).
    #[arg(long, env = "LOCKBOX_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log format: standard or json (overrides the config file).
    #[arg(long, env = "LOCKBOX_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Reach this registry (HOST:PORT) over plain HTTP instead of HTTPS when
    /// pulling plugin images; repeat for several. Adds to the config file's
    /// `insecure_registries`.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT",
          value_parser = lockbox_oci::reference::parse_insecure_registry)]
    pub insecure_registries: Vec<String>,
}

/// A plugin cache in a temporary directory (dev mode, in-memory storage):
/// removed when the server stops.
struct TempCacheDir(PathBuf);

impl TempCacheDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("lockbox-plugin-cache-{}", std::process::id())))
    }
}

impl Drop for TempCacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Neither `--dev` nor `--config`.
    #[error("either --dev or --config FILE is required (try `lockbox server --dev`)")]
    NoMode,
    /// Configuration problems.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Storage could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Binding the listener failed.
    #[error("failed to listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TLS material is wrong.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Initialization or unseal failed.
    #[error(transparent)]
    Core(#[from] crate::core::CoreError),
    /// A request-level failure during setup.
    #[error(transparent)]
    Request(#[from] crate::logical::RequestError),
    /// Reading the unseal keys failed.
    #[error("failed to read unseal keys from {path}: {source}")]
    UnsealKeys {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The dev plugin directory cannot be read.
    #[error("cannot read plugin directory {path}: {source}")]
    PluginDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

pub(crate) type ReloadHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// Installs the global subscriber: `level` (or `LOCKBOX_LOG`, an EnvFilter
/// directive) and `format` (`json` or `standard`), on stderr. Returns the
/// handle that reloads the level on SIGHUP (None if one was installed already).
pub(crate) fn init_logging(level: &str, format: &str) -> Option<ReloadHandle> {
    use tracing_subscriber::prelude::*;
    let filter = EnvFilter::try_from_env("LOCKBOX_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal();
    let result = if format == "json" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    result.ok().map(|_| handle)
}

fn unseal_keys(path: Option<&PathBuf>) -> Result<Vec<String>, ServerError> {
    let mut keys = Vec::new();
    if let Some(path) = path {
        let text = std::fs::read_to_string(path).map_err(|source| ServerError::UnsealKeys {
            path: path.clone(),
            source,
        })?;
        keys.extend(text.split_whitespace().map(str::to_string));
    }
    if let Ok(env) = std::env::var("LOCKBOX_UNSEAL_KEYS") {
        keys.extend(
            env.split([',', ' ', '\n'])
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    Ok(keys)
}

/// Auto-unseal with the given keys when the core is initialized and sealed.
pub async fn auto_unseal(core: &Core, keys: &[String]) -> Result<bool, ServerError> {
    if keys.is_empty() || !core.is_initialized().await? || !core.is_sealed() {
        return Ok(!core.is_sealed());
    }
    for key in keys {
        let raw = crate::core::decode_key(key)?;
        if core.submit_unseal_key(&raw).await? {
            tracing::info!("auto-unsealed with {} key(s)", keys.len());
            return Ok(true);
        }
    }
    Ok(false)
}

/// Signal streams, registered before the server announces itself so a
/// signal that arrives early is handled, not fatal.
struct Signals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> Result<Self, ServerError> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

async fn shutdown_signal(mut term: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received, shutting down"),
    }
}

fn spawn_sighup(
    mut hup: tokio::signal::unix::Signal,
    config_path: Option<PathBuf>,
    log: Option<ReloadHandle>,
    tls: Option<tls::Reloadable>,
) {
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received, reloading");
            let Some(path) = &config_path else { continue };
            let config = match Config::load(path) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("reload failed, keeping the running configuration: {e}");
                    continue;
                }
            };
            if let Some(handle) = &log {
                if let Err(e) = handle.modify(|f| *f = EnvFilter::new(&config.log_level)) {
                    tracing::error!("log level reload failed: {e}");
                } else {
                    tracing::info!(level = %config.log_level, "log level reloaded");
                }
            }
            if let Some(tls) = &tls {
                match tls.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => {
                        tracing::error!("TLS reload failed, keeping the old certificate: {e}")
                    }
                }
            }
        }
    });
}

/// Runs `lockbox server` until a shutdown signal.
pub async fn run(args: ServerArgs) -> Result<(), ServerError> {
    if args.dev {
        run_dev(args).await
    } else if let Some(path) = args.config.clone() {
        run_config(args, path).await
    } else {
        Err(ServerError::NoMode)
    }
}

async fn bind(address: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind {
            address: address.to_string(),
            source,
        })
}

fn print_banner(lines: &[(&str, String)]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "==> lockbox server configuration:\n");
    for (k, v) in lines {
        let _ = writeln!(out, "{k:>24}: {v}");
    }
    let _ = writeln!(out);
    let _ = out.flush();
}

/// Registers every executable in `dir` (dev mode). Each is started once to
/// learn whether it is a secrets engine or an auth method.
pub async fn register_dev_plugins(
    core: &Core,
    dir: &std::path::Path,
) -> Result<Vec<CatalogEntry>, ServerError> {
    use std::os::unix::fs::PermissionsExt;
    let mut registered = Vec::new();
    let dir = dir
        .canonicalize()
        .map_err(|source| ServerError::PluginDir {
            path: dir.to_path_buf(),
            source,
        })?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|source| ServerError::PluginDir {
            path: dir.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .collect();
    files.sort();
    for path in files {
        let Some(file) = path
            .file_name()
            .and_then(|f| f.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let name = file
            .strip_prefix("lockbox-plugin-")
            .unwrap_or(&file)
            .to_string();
        if crate::plugin::catalog::validate_name(&name).is_err() {
            continue;
        }
        let sha256 = match crate::plugin::process::sha256_file_async(&path).await {
            Ok(hex) => hex,
            Err(e) => {
                tracing::warn!("skipping {}: {e}", path.display());
                continue;
            }
        };
        let mut entry = CatalogEntry {
            name,
            kind: PluginType::Secret,
            version: String::new(),
            command: file,
            args: vec![],
            env: vec![],
            sha256,
            multiplexing: true,
            oci: None,
        };
        let launch = core.plugin_host().config().launch.clone();
        match crate::plugin::process::launch(&entry, &path, &launch).await {
            Ok(p) => {
                if p.info.kind == lockbox_plugin_proto::v1::BackendKind::Credential as i32 {
                    entry.kind = PluginType::Auth;
                }
                p.stop().await;
            }
            Err(e) => {
                tracing::warn!("skipping {}: not a lockbox plugin ({e})", path.display());
                continue;
            }
        }
        core.register_plugin(&entry).await?;
        registered.push(entry);
    }
    Ok(registered)
}

async fn run_dev(args: ServerArgs) -> Result<(), ServerError> {
    let log = init_logging(
        args.log_level.as_deref().unwrap_or("info"),
        args.log_format.as_deref().unwrap_or("standard"),
    );
    let physical: Arc<dyn Physical> = Arc::new(InMemory::new());
    let mut config = CoreConfig::default();
    config.plugins.plugin_directory = args.dev_plugin_dir.clone();
    let temp_cache = TempCacheDir::new();
    config.plugins.plugin_cache_directory = Some(temp_cache.0.clone());
    config.images.insecure_registries = args.insecure_registries.clone();
    let core = Arc::new(Core::new(physical, config));

    let init = core
        .initialize(1, 1, args.dev_root_token_id.clone())
        .await?;
    for key in &init.keys {
        core.submit_unseal_key(key).await?;
    }
    core.enable_mount("secret", "kv", "key/value secret storage")
        .await?;
    let dev_plugins = match &args.dev_plugin_dir {
        Some(dir) => register_dev_plugins(&core, dir).await?,
        None => vec![],
    };

    let listener = bind(&args.dev_listen_address).await?;
    let local: SocketAddr = listener.local_addr()?;
    let tls_certs = if args.dev_tls {
        let dir = match &args.dev_tls_cert_dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!("lockbox-dev-tls-{}", std::process::id())),
        };
        Some(tls::generate_dev(&dir)?)
    } else {
        None
    };
    let tls = match &tls_certs {
        Some(c) => Some(tls::Reloadable::load(&c.cert, &c.key)?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let addr = format!("{scheme}://{local}");
    let unseal_key = init
        .keys
        .first()
        .map(|k| base64::engine::general_purpose::STANDARD.encode(k.as_slice()))
        .unwrap_or_default();
    let signals = Signals::register()?;
    print_banner(&[
        ("Api Address", addr.clone()),
        (
            "Listener 1",
            format!(
                "tcp (addr: \"{local}\", max_request_size: \"{}\", tls: \"{}\")",
                http::DEFAULT_MAX_REQUEST_SIZE,
                if tls.is_some() { "enabled" } else { "disabled" }
            ),
        ),
        (
            "Log Level",
            args.log_level.clone().unwrap_or_else(|| "info".into()),
        ),
        ("Storage", "inmem".into()),
        ("Version", format!("lockbox v{}", crate::core::VERSION)),
    ]);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "WARNING! dev mode is enabled! In this mode, lockbox runs entirely in-memory\n\
         and starts unsealed with a single unseal key. The root token is already\n\
         authenticated to the CLI, so you can immediately begin using lockbox.\n\n\
         You may need to set the following environment variables:\n\n    $ export LOCKBOX_ADDR='{addr}'\n    $ export VAULT_ADDR='{addr}'"
    );
    if let Some(c) = &tls_certs {
        let _ = writeln!(out, "    $ export VAULT_CACERT='{}'", c.ca.display());
        let _ = writeln!(out, "    $ export LOCKBOX_CACERT='{}'", c.ca.display());
    }
    let _ = writeln!(
        out,
        "\nThe unseal key and root token are displayed below in case you want to\n\
         seal/unseal lockbox or re-authenticate.\n\n\
         Unseal Key: {unseal_key}\nRoot Token: {}\n\n\
         Development mode should NOT be used in production installations!\n",
        init.root_token
    );
    if !dev_plugins.is_empty() {
        let _ = writeln!(
            out,
            "The following dev plugins are registered in the catalog:"
        );
        for p in &dev_plugins {
            let _ = writeln!(
                out,
                "    - {} ({}, sha256 {})",
                p.name,
                p.kind.as_str(),
                p.sha256
            );
        }
        let _ = writeln!(out);
    }
    let _ = out.flush();
    drop(out);

    spawn_sighup(signals.hup, None, log, tls.clone());
    let options = ServerOptions {
        tls,
        ..Default::default()
    };
    http::serve(
        listener,
        core.clone(),
        options,
        shutdown_signal(signals.term),
    )
    .await?;
    core.seal().await;
    // Certificates generated into a temporary directory go with the server.
    if args.dev_tls_cert_dir.is_none()
        && let Some(dir) = tls_certs.as_ref().and_then(|c| c.ca.parent())
    {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

async fn run_config(args: ServerArgs, path: PathBuf) -> Result<(), ServerError> {
    let config = Config::load(&path)?;
    let log = init_logging(
        args.log_level.as_deref().unwrap_or(&config.log_level),
        args.log_format.as_deref().unwrap_or(&config.log_format),
    );
    let physical: Arc<dyn Physical> = match &config.storage {
        StorageConfig::InMemory => Arc::new(InMemory::new()),
        StorageConfig::File { path } => Arc::new(FileBackend::open(path)?),
    };
    // Used only with in-memory storage and no plugin_cache_directory.
    let temp_cache = TempCacheDir::new();
    let core = Arc::new(Core::new(
        physical,
        CoreConfig {
            plugins: crate::plugin::HostConfig {
                plugin_directory: config.plugin_directory.clone(),
                plugin_cache_directory: Some(
                    config
                        .plugin_cache_dir()
                        .unwrap_or_else(|| temp_cache.0.clone()),
                ),
                response_cache_size: config.plugin_response_cache_size,
                ..Default::default()
            },
            default_lease_ttl: config.default_lease_ttl,
            max_lease_ttl: config.max_lease_ttl,
            cluster_name: config.cluster_name.clone(),
            images: crate::oci::ImageSettings {
                insecure_registries: config
                    .insecure_registries
                    .iter()
                    .chain(&args.insecure_registries)
                    .cloned()
                    .collect(),
                max_size: config.plugin_image_max_size,
                cache_max_bytes: config.plugin_cache_max_size,
                registry_auth_file: config.registry_auth_file.clone(),
            },
        },
    ));
    let keys = unseal_keys(
        args.unseal_keys_file
            .as_ref()
            .or(config.unseal_keys_file.as_ref()),
    )?;
    let listener = bind(&config.listener.address).await?;
    let local = listener.local_addr()?;
    let tls = if config.listener.tls_disable {
        None
    } else {
        match (
            &config.listener.tls_cert_file,
            &config.listener.tls_key_file,
        ) {
            (Some(c), Some(k)) => Some(tls::Reloadable::load(c, k)?),
            _ => None,
        }
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let storage_desc = match &config.storage {
        StorageConfig::InMemory => "inmem".to_string(),
        StorageConfig::File { path } => format!("file (path: {})", path.display()),
    };
    let signals = Signals::register()?;
    print_banner(&[
        (
            "Api Address",
            config
                .api_addr
                .clone()
                .unwrap_or_else(|| format!("{scheme}://{local}")),
        ),
        (
            "Listener 1",
            format!(
                "tcp (addr: \"{local}\", max_request_size: \"{}\", tls: \"{}\")",
                config.request_limit(),
                if tls.is_some() { "enabled" } else { "disabled" }
            ),
        ),
        ("Log Level", config.log_level.clone()),
        ("Storage", storage_desc),
        ("Version", format!("lockbox v{}", crate::core::VERSION)),
    ]);
    match auto_unseal(&core, &keys).await {
        Ok(true) => println!("==> lockbox server started (unsealed)"),
        Ok(false) if !core.is_initialized().await? => {
            println!("==> lockbox server started; not initialized yet: run `lockbox operator init`")
        }
        Ok(false) => println!("==> lockbox server started (sealed): run `lockbox operator unseal`"),
        Err(e) => {
            tracing::error!("auto-unseal failed: {e}");
            println!("==> lockbox server started (sealed; auto-unseal failed: {e})");
        }
    }
    let _ = std::io::stdout().flush();
    spawn_sighup(signals.hup, Some(path), log, tls.clone());
    let options = ServerOptions {
        max_request_size: config.request_limit(),
        tls,
        ..Default::default()
    };
    http::serve(
        listener,
        core.clone(),
        options,
        shutdown_signal(signals.term),
    )
    .await?;
    core.seal().await;
    Ok(())
}
