//! `lockbox server`: wires configuration, storage, the core and the HTTP
//! listener together, prints the startup banner, handles signals.
//!
//! * `--dev`: in-memory storage, initialized with one unseal key, unsealed,
//!   a root token (`--dev-root-token-id`), and a `kv` mount at `secret/`.
//!   Like Vault, the root token is stored in the CLI's token file
//!   (`$HOME/.lockbox-token`) unless `--dev-no-store-token`.
//! * `--config FILE`: HCL configuration (see [`crate::config`]); the server
//!   starts sealed unless unseal keys are available from `unseal_keys_file`,
//!   `--unseal-keys-file` or `LOCKBOX_UNSEAL_KEYS` (auto-unseal).
//!
//! SIGHUP re-reads the config file and applies what can change at run time:
//! the log level (unless `--log-level`, `LOCKBOX_LOG_LEVEL` or `LOCKBOX_LOG`
//! set it, as at startup), the TLS certificate and key (including new
//! paths), `plugin_directory` and `max_request_size`. Every other changed
//! key (the listener's timeouts and `max_connections` too, as in Vault) is
//! named in a warning ("listener address
//! changed; restart required"); a file that fails to parse keeps the running
//! configuration. SIGTERM and SIGINT stop accepting connections, let
//! in-flight requests finish, and seal.

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
    /// The root token's ID in dev mode (random if unset). Also read from
    /// `LOCKBOX_DEV_ROOT_TOKEN_ID` or `VAULT_DEV_ROOT_TOKEN_ID`.
    #[arg(long)]
    pub dev_root_token_id: Option<String>,
    /// Address the dev server listens on (default 127.0.0.1:8200). Also read
    /// from `LOCKBOX_DEV_LISTEN_ADDRESS` or `VAULT_DEV_LISTEN_ADDRESS`.
    #[arg(long)]
    pub dev_listen_address: Option<String>,
    /// Dev mode: do not store the root token in the CLI's token file
    /// (`$HOME/.lockbox-token`); it is only printed.
    #[arg(long)]
    pub dev_no_store_token: bool,
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
    /// Log level: trace, debug, info, warn or error (Vault's notice,
    /// warning and err also work). Overrides the config file, also on SIGHUP.
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
        // Unpredictable, like the plugin runtime directory (issue 10).
        Self(std::env::temp_dir().join(format!(
            "lockbox-plugin-cache-{}-{}",
            std::process::id(),
            crate::plugin::process::random_suffix()
        )))
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
    /// A flag (or its environment variable) has a value lockbox does not accept.
    #[error("invalid {flag}: {message}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong, with the accepted values.
        message: String,
    },
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
/// Vault's level names (`warning`, `err`, `notice`) are understood; the
/// server validates its levels before calling this (see [`LogSettings`]).
pub(crate) fn init_logging(level: &str, format: &str) -> Option<ReloadHandle> {
    use tracing_subscriber::prelude::*;
    let level = crate::config::parse_log_level(level).unwrap_or(level);
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

/// The log level and format in effect, and what chose the level: the
/// precedence is `LOCKBOX_LOG` (a filter directive), then `--log-level` /
/// `LOCKBOX_LOG_LEVEL`, then the config file, then `info`. A SIGHUP applies
/// the file's level only when nothing above the file chose it.
struct LogSettings {
    level: &'static str,
    format: &'static str,
    /// What set the level if not the config file (or the default).
    pinned_by: Option<&'static str>,
}

impl LogSettings {
    /// Validates the flags and combines them with the file's settings.
    fn resolve(args: &ServerArgs, file: Option<&Config>) -> Result<Self, ServerError> {
        let flag = |flag: &'static str| move |message: String| ServerError::Flag { flag, message };
        let flag_level = args
            .log_level
            .as_deref()
            .map(crate::config::parse_log_level)
            .transpose()
            .map_err(flag("--log-level (LOCKBOX_LOG_LEVEL)"))?;
        let flag_format = args
            .log_format
            .as_deref()
            .map(crate::config::parse_log_format)
            .transpose()
            .map_err(flag("--log-format (LOCKBOX_LOG_FORMAT)"))?;
        let file_level = file
            .and_then(|c| crate::config::parse_log_level(&c.log_level).ok())
            .unwrap_or("info");
        let file_format = file
            .and_then(|c| crate::config::parse_log_format(&c.log_format).ok())
            .unwrap_or("standard");
        let pinned_by = if EnvFilter::try_from_env("LOCKBOX_LOG").is_ok() {
            Some("LOCKBOX_LOG")
        } else if flag_level.is_some() {
            Some("--log-level (or LOCKBOX_LOG_LEVEL)")
        } else {
            None
        };
        Ok(Self {
            level: flag_level.unwrap_or(file_level),
            format: flag_format.unwrap_or(file_format),
            pinned_by,
        })
    }
}

/// A non-empty environment variable, the first of `names` that is set
/// (empty counts as unset, as in Vault).
fn env_var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| crate::hardening::secret_env(n).filter(|v| !v.trim().is_empty()))
}

/// Stores the dev root token in the CLI's token file, as Vault's dev mode
/// does with its token helper, so `lockbox token lookup` works right away.
/// Returns the file written.
fn store_dev_token(token: &str) -> Result<PathBuf, String> {
    let path = lockbox_cli::token_file_path(&|name| std::env::var(name).ok())
        .ok_or_else(|| "HOME is not set, so there is no token file to store it in".to_string())?;
    lockbox_cli::write_token_file(&path, token).map_err(|e| e.to_string())?;
    Ok(path)
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
    if let Some(env) = crate::hardening::secret_env("LOCKBOX_UNSEAL_KEYS") {
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

/// What SIGHUP re-reads and applies.
struct Reloader {
    /// The config file; `None` in dev mode (only the TLS files are re-read).
    path: Option<PathBuf>,
    /// The configuration as running: the startup file, updated with what
    /// each reload applied (so a key that needs a restart is reported on
    /// every reload until the process restarts).
    running: Option<Config>,
    log: Option<ReloadHandle>,
    /// Set when a flag or environment variable chose the log level.
    level_pinned_by: Option<&'static str>,
    tls: Option<tls::Reloadable>,
    /// Where a changed `plugin_directory` is applied.
    plugins: Option<Arc<crate::plugin::PluginHost>>,
    /// Where a changed `max_request_size` is applied.
    request_limit: Option<http::RequestLimit>,
}

impl Reloader {
    fn reload(&mut self) {
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

fn spawn_sighup(mut hup: tokio::signal::unix::Signal, mut reloader: Reloader) {
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received, reloading");
            reloader.reload();
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

/// Vault's configuration banner: the header, right-aligned keys, a blank line.
fn print_banner(lines: &[(&str, String)]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "==> lockbox server configuration:\n");
    for (k, v) in lines {
        let _ = writeln!(out, "{k:>24}: {v}");
    }
    let _ = writeln!(out);
    let _ = out.flush();
}

/// Vault's line after the banner; tools wait for it.
fn print_started() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "==> lockbox server started! Log data will stream in below:\n"
    );
    let _ = out.flush();
}

/// Vault's listener line: `tcp (addr: "...", max_request_duration: "1m30s",
/// max_request_size: "...", tls: "...")`.
fn listener_line(
    local: SocketAddr,
    limit: Option<usize>,
    max_request_duration: Option<std::time::Duration>,
    tls: bool,
) -> String {
    format!(
        "tcp (addr: \"{local}\", max_request_duration: \"{}\", max_request_size: \"{}\", tls: \"{}\")",
        max_request_duration.map_or_else(
            || "none".to_string(),
            |d| crate::logical::duration::format(d.as_secs())
        ),
        limit.map_or_else(|| "unlimited".to_string(), |n| n.to_string()),
        if tls { "enabled" } else { "disabled" }
    )
}

/// What [`register_dev_plugins`] did.
#[derive(Debug, Default)]
pub struct DevPlugins {
    /// Registered entries, in file-name order.
    pub registered: Vec<CatalogEntry>,
    /// Executables that are not lockbox plugins (file names).
    pub failed: Vec<String>,
}

/// Registers every executable in `dir` (dev mode). Each is started once to
/// learn whether it is a secrets engine or an auth method; one that does not
/// start as a plugin is listed in [`DevPlugins::failed`].
pub async fn register_dev_plugins(
    core: &Core,
    dir: &std::path::Path,
) -> Result<DevPlugins, ServerError> {
    use std::os::unix::fs::PermissionsExt;
    let mut result = DevPlugins::default();
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
                result.failed.push(file);
                continue;
            }
        };
        let mut entry = CatalogEntry {
            name,
            kind: PluginType::Secret,
            version: String::new(),
            command: file.clone(),
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
                result.failed.push(file);
                continue;
            }
        }
        core.register_plugin(&entry).await?;
        tracing::info!(
            name = %entry.name,
            kind = entry.kind.as_str(),
            sha256 = %entry.sha256,
            "registered dev plugin"
        );
        result.registered.push(entry);
    }
    Ok(result)
}

async fn run_dev(args: ServerArgs) -> Result<(), ServerError> {
    let logging = LogSettings::resolve(&args, None)?;
    let log = init_logging(logging.level, logging.format);
    let root_token_id = args
        .dev_root_token_id
        .clone()
        .or_else(|| env_var(&["LOCKBOX_DEV_ROOT_TOKEN_ID", "VAULT_DEV_ROOT_TOKEN_ID"]));
    let listen_address = args
        .dev_listen_address
        .clone()
        .or_else(|| env_var(&["LOCKBOX_DEV_LISTEN_ADDRESS", "VAULT_DEV_LISTEN_ADDRESS"]))
        .unwrap_or_else(|| "127.0.0.1:8200".to_string());
    let physical: Arc<dyn Physical> = Arc::new(InMemory::new());
    let mut config = CoreConfig::default();
    config.plugins.plugin_directory = args.dev_plugin_dir.clone();
    let temp_cache = TempCacheDir::new();
    config.plugins.plugin_cache_directory = Some(temp_cache.0.clone());
    config.images.insecure_registries = args.insecure_registries.clone();
    let core = Arc::new(Core::new(physical, config));

    let init = core.initialize(1, 1, root_token_id).await?;
    for key in &init.keys {
        core.submit_unseal_key(key).await?;
    }
    core.enable_mount("secret", "kv", "key/value secret storage")
        .await?;
    let dev_plugins = match &args.dev_plugin_dir {
        Some(dir) => register_dev_plugins(&core, dir).await?,
        None => DevPlugins::default(),
    };

    let listener = bind(&listen_address).await?;
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
    let stored = if args.dev_no_store_token {
        false
    } else {
        match store_dev_token(&init.root_token) {
            Ok(path) => {
                tracing::info!(path = %path.display(), "root token stored for the CLI");
                true
            }
            Err(e) => {
                tracing::warn!("could not store the root token for the CLI: {e}");
                false
            }
        }
    };
    let signals = Signals::register()?;
    print_banner(&[
        ("Api Address", addr.clone()),
        (
            "Listener 1",
            listener_line(
                local,
                Some(http::DEFAULT_MAX_REQUEST_SIZE),
                http::Timeouts::default().max_request_duration,
                tls.is_some(),
            ),
        ),
        ("Log Level", logging.level.to_string()),
        ("Storage", "inmem".into()),
        ("Version", format!("lockbox v{}", crate::core::VERSION)),
    ]);
    print_started();
    print_dev_warning(&DevBanner {
        addr: &addr,
        ca: tls_certs.as_ref().map(|c| c.ca.as_path()),
        unseal_key: &unseal_key,
        root_token: &init.root_token,
        token_stored: stored,
        plugins: &dev_plugins,
    });

    spawn_sighup(
        signals.hup,
        Reloader {
            path: None,
            running: None,
            log,
            level_pinned_by: logging.pinned_by,
            tls: tls.clone(),
            plugins: None,
            request_limit: None,
        },
    );
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

/// What the dev-mode warning shows.
struct DevBanner<'a> {
    addr: &'a str,
    ca: Option<&'a std::path::Path>,
    unseal_key: &'a str,
    root_token: &'a str,
    token_stored: bool,
    plugins: &'a DevPlugins,
}

/// Vault's dev-mode block, in Vault's order: the warning, the environment,
/// the unseal key and root token, the dev plugins, then "Development mode
/// should NOT be used in production installations!" as the last line, so
/// a reader that waits for it has seen everything.
fn print_dev_warning(b: &DevBanner<'_>) {
    let mut text = String::from(
        "WARNING! dev mode is enabled! In this mode, lockbox runs entirely in-memory\n\
         and starts unsealed with a single unseal key. ",
    );
    if b.token_stored {
        text.push_str(
            "The root token is already\n\
             authenticated to the CLI, so you can immediately begin using lockbox.\n",
        );
    } else {
        text.push_str(
            "The root token is NOT\n\
             stored for the CLI: set LOCKBOX_TOKEN or run `lockbox login` to use it.\n",
        );
    }
    text.push_str(&format!(
        "\nYou may need to set the following environment variables:\n\n    \
         $ export LOCKBOX_ADDR='{addr}'\n    $ export VAULT_ADDR='{addr}'\n",
        addr = b.addr
    ));
    if let Some(ca) = b.ca {
        text.push_str(&format!(
            "    $ export VAULT_CACERT='{ca}'\n    $ export LOCKBOX_CACERT='{ca}'\n",
            ca = ca.display()
        ));
    }
    text.push_str(&format!(
        "\nThe unseal key and root token are displayed below in case you want to\n\
         seal/unseal lockbox or re-authenticate.\n\n\
         Unseal Key: {}\nRoot Token: {}\n",
        b.unseal_key, b.root_token
    ));
    if !b.plugins.registered.is_empty() {
        text.push_str("\nThe following dev plugins are registered in the catalog:\n");
        for p in &b.plugins.registered {
            text.push_str(&format!("    - {}\n", p.name));
        }
    }
    if !b.plugins.failed.is_empty() {
        text.push_str(
            "\nThe following dev plugins FAILED to be registered in the catalog due to unknown type:\n",
        );
        for f in &b.plugins.failed {
            text.push_str(&format!("    - {f}\n"));
        }
    }
    text.push_str("\nDevelopment mode should NOT be used in production installations!\n\n");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

async fn run_config(args: ServerArgs, path: PathBuf) -> Result<(), ServerError> {
    let config = Config::load(&path)?;
    let logging = LogSettings::resolve(&args, Some(&config))?;
    let log = init_logging(logging.level, logging.format);
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
    let limit = config.request_limit();
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
            listener_line(
                local,
                limit,
                config.listener_timeouts().max_request_duration,
                tls.is_some(),
            ),
        ),
        ("Log Level", logging.level.to_string()),
        ("Storage", storage_desc),
        ("Version", format!("lockbox v{}", crate::core::VERSION)),
    ]);
    match auto_unseal(&core, &keys).await {
        Ok(true) => tracing::info!("lockbox is unsealed"),
        Ok(false) if !core.is_initialized().await? => {
            tracing::info!("lockbox is not initialized yet: run `lockbox operator init`")
        }
        Ok(false) => tracing::info!("lockbox is sealed: run `lockbox operator unseal`"),
        Err(e) => tracing::error!("auto-unseal failed, lockbox stays sealed: {e}"),
    }
    print_started();
    let request_limit = http::RequestLimit::new(limit.unwrap_or(usize::MAX));
    let (listener_timeouts, max_connections) =
        (config.listener_timeouts(), config.max_connections());
    spawn_sighup(
        signals.hup,
        Reloader {
            path: Some(path),
            running: Some(config),
            log,
            level_pinned_by: logging.pinned_by,
            tls: tls.clone(),
            plugins: Some(core.plugin_host().clone()),
            request_limit: Some(request_limit.clone()),
        },
    );
    let options = ServerOptions {
        max_request_size: request_limit,
        tls,
        timeouts: listener_timeouts,
        max_connections,
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
