//! The flags of `lockbox server` and the errors that stop it.

use crate::config::ConfigError;
use lockbox_http::tls;
use lockbox_storage::StorageError;
use std::path::PathBuf;

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
    /// HA settings are missing or wrong, or leadership could not be set up.
    #[error("HA: {0}")]
    Ha(String),
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
    Core(#[from] lockbox_core::core::CoreError),
    /// A request-level failure during setup.
    #[error(transparent)]
    Request(#[from] lockbox_core::logical::RequestError),
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
