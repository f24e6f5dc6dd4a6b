//! lockbox's server runtime: the HCL config ([`config`]), the process's
//! own hardening ([`hardening`]), logging, and the one server assembly
//! ([`assembly`]: storage, the core with the plugin host, TLS, the listener,
//! signals) that `lockbox server` and `lockbox operator run` both run.
//!
//! * `lockbox server --dev`: in-memory storage, initialized with one unseal key, unsealed,
//!   a root token (`--dev-root-token-id`), and a `kv` mount at `secret/`.
//!   Like Vault, the root token is stored in the CLI's token file
//!   (`$HOME/.lockbox-token`) unless `--dev-no-store-token`.
//! * `lockbox server --config FILE`: HCL configuration (see [`crate::config`]); the server
//!   starts sealed unless unseal keys are available from `unseal_keys_file`,
//!   `--unseal-keys-file` or `LOCKBOX_UNSEAL_KEYS` (auto-unseal).
//! * `lockbox operator run` ([`run_operator`]): file storage in `--data-dir`,
//!   initialized or unsealed through Secrets, plus the operator crate's
//!   health server, Lease loop and controllers.
//!
//! All three build the same [`assembly::Assembly`], so they share the
//! signal handling. SIGHUP re-reads the config file and applies what can change at run time:
//! the log level (unless `--log-level`, `LOCKBOX_LOG_LEVEL` or `LOCKBOX_LOG`
//! set it, as at startup), the TLS certificate and key (including new
//! paths), `plugin_directory` and `max_request_size`. Every other changed
//! key (the listener's timeouts and `max_connections` too, as in Vault) is
//! named in a warning ("listener address
//! changed; restart required"); a file that fails to parse keeps the running
//! configuration. Without a config file (dev and operator mode) SIGHUP
//! re-reads the TLS certificate and key at their paths. SIGTERM and SIGINT
//! stop accepting connections, let in-flight requests finish, and seal.

pub mod args;
pub mod assembly;
mod banner;
pub mod config;
mod config_mode;
mod dev;
mod ha;
pub mod hardening;
pub mod logging;
mod operator_mode;
pub mod reload;
mod unseal;

pub use args::{ServerArgs, ServerError};
pub use dev::{DevPlugins, register_dev_plugins};
pub use operator_mode::run_operator;
pub use unseal::auto_unseal;

/// Runs `lockbox server` until a shutdown signal.
pub async fn run(args: ServerArgs) -> Result<(), ServerError> {
    if args.dev {
        dev::run_dev(args).await
    } else if let Some(path) = args.config.clone() {
        config_mode::run_config(args, path).await
    } else {
        Err(ServerError::NoMode)
    }
}
