//! lockbox's client side: a Vault-API HTTP client ([`Client`]) and the
//! commands built on it ([`Command`], [`run`]), which behave and print like
//! the `vault` CLI so that Vault's documentation and scripts work against a
//! lockbox server.
//!
//! The root binary embeds the commands beside its own `server` command:
//!
//! ```ignore
//! #[derive(clap::Subcommand)]
//! enum Cmd {
//!     Server(ServerArgs),
//!     #[command(flatten)]
//!     Client(lockbox_cli::Command),
//! }
//!
//! let args = lockbox_cli::normalize_args(std::env::args_os());
//! let cli = Cli::try_parse_from(args).unwrap_or_else(|e| {
//!     let _ = e.print();
//!     std::process::exit(lockbox_cli::clap_exit_code(&e))
//! });
//! match cli.command {
//!     Cmd::Server(a) => { /* ... */ }
//!     Cmd::Client(c) => std::process::exit(runtime.block_on(lockbox_cli::run(c))),
//! }
//! ```
//!
//! Don't set clap's `propagate_version` on the root command: `secrets enable`,
//! `secrets tune` and the `plugin` commands have Vault's own `-version` flag,
//! which would clash with a propagated `--version`.
//!
//! Code map:
//!
//! ```text
//! args      normalize_args: Vault's -flag spelling → clap's --flag
//! cli       clap definitions: Command and its argument structs
//! commands  running a Command: settings → client → request → output → exit code
//! client    Client, ClientConfig, the Secret response envelope
//! tls       the CA-file certificate verifier (WebPKI + Go's self-signed leaf)
//! config    settings from flags and LOCKBOX_*/VAULT_* variables; the token file
//! input     K=V arguments, @files and stdin into request bodies
//! output    Vault-style tables, Go-style values, JSON and YAML
//! duration  Go/Vault duration syntax in flags and TTLs in output
//! error     the Error enum and exit codes (0 ok, 1 local error, 2 remote error)
//! ```

mod args;
mod cli;
mod client;
mod commands;
mod config;
mod duration;
mod error;
mod input;
mod output;
mod tls;

pub use args::normalize_args;
pub use cli::{
    AuthCommand, AuthDisableArgs, AuthEnableArgs, AuthListArgs, AuthTuneArgs, Command, DeleteArgs,
    GlobalArgs, ListArgs, LoginArgs, OperatorCommand, OperatorInitArgs, OperatorRotateArgs,
    OperatorSealArgs, OperatorUnsealArgs, PluginCommand, PluginDeregisterArgs, PluginInfoArgs,
    PluginListArgs, PluginPullArgs, PluginPushArgs, PluginRegisterArgs, PluginReloadArgs,
    PolicyCommand, PolicyDeleteArgs, PolicyListArgs, PolicyReadArgs, PolicyWriteArgs, ReadArgs,
    RegistryArgs, SecretsCommand, SecretsDisableArgs, SecretsEnableArgs, SecretsListArgs,
    SecretsMoveArgs, SecretsTuneArgs, StatusArgs, TokenCommand, TokenCreateArgs, TokenLookupArgs,
    TokenRenewArgs, TokenRevokeArgs, VersionArgs, WriteArgs,
};
pub use client::{
    Client, ClientConfig, DEFAULT_TIMEOUT, Secret, SecretAuth, WrapInfo, list_method,
};
pub use commands::{Io, run, run_with_io, version_text};
pub use config::{
    DEFAULT_ADDRESS, FlagSettings, Format, Settings, TOKEN_FILE_NAME, TokenSource, resolve,
    token_file_path, write_token_file,
};
pub use duration::GoDuration;
pub use error::Error;

/// The exit code for a clap parse error, following Vault: 0 when clap printed
/// help or the version, 1 for any usage error (clap's own default is 2, which
/// Vault reserves for remote errors).
pub fn clap_exit_code(err: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
        _ => 1,
    }
}
