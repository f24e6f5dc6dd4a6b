//! The clap definitions of the client commands.
//!
//! [`Command`] is a `Subcommand` enum meant to be flattened into the root
//! binary's own subcommand enum, next to its `server` command. Every leaf
//! command flattens [`GlobalArgs`], so `-address` and `-format` work on all of
//! them. Flags are declared in clap's `--long` form; [`crate::normalize_args`]
//! turns Vault's single-dash spelling into it before parsing.
//!
//! Boolean flags take an optional `=value` (`-renewable=false`), like Vault's.

use std::path::PathBuf;

use clap::{ArgAction, Args, Subcommand};

use crate::config::{FlagSettings, parse_bool};
use crate::duration::{GoDuration, parse_duration_arg};

/// clap value parser for Vault-style booleans (`true`, `false`, `1`, `t`, ...).
fn parse_bool_arg(s: &str) -> Result<bool, String> {
    parse_bool(s).ok_or_else(|| format!("invalid boolean value {s:?}"))
}

/// Flags every client command accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
#[command(next_help_heading = "HTTP Options")]
pub struct GlobalArgs {
    /// Address of the lockbox server. Overrides LOCKBOX_ADDR and VAULT_ADDR;
    /// the default is https://127.0.0.1:8200.
    #[arg(long, value_name = "ADDR")]
    pub address: Option<String>,

    /// PEM file of CA certificates to verify the server's certificate with,
    /// instead of the system roots. Overrides LOCKBOX_CACERT and VAULT_CACERT.
    #[arg(long = "ca-cert", value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,

    /// Do not verify the server's TLS certificate. Not recommended. Overrides
    /// LOCKBOX_SKIP_VERIFY and VAULT_SKIP_VERIFY.
    #[arg(
        long = "tls-skip-verify",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = ArgAction::Set,
        value_parser = parse_bool_arg
    )]
    pub tls_skip_verify: Option<bool>,

    /// Output format: "table", "json" or "yaml" ("yml"). Overrides
    /// LOCKBOX_FORMAT and VAULT_FORMAT; the default is table.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

impl GlobalArgs {
    /// The flag half of the settings, for [`crate::config::resolve`].
    pub fn flag_settings(&self) -> FlagSettings {
        FlagSettings {
            address: self.address.clone(),
            format: self.format.clone(),
            ca_cert: self.ca_cert.clone(),
            skip_verify: self.tls_skip_verify,
        }
    }
}

/// The client commands, mirroring the Vault CLI.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Print seal and HA status (exit code 0: unsealed, 1: error, 2: sealed)
    Status(StatusArgs),
    /// Perform operator-specific tasks: init, unseal, seal, rotate
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Authenticate locally and store the token in ~/.lockbox-token
    Login(LoginArgs),
    /// Create, look up, renew and revoke tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write, read, list and delete ACL policies
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Enable, list, tune, move and disable secrets engines
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Enable, list, tune and disable auth methods
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Register, list, inspect, reload and deregister plugins in the catalog
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Read data and retrieve secrets
    Read(ReadArgs),
    /// Write data, configuration, and secrets
    Write(WriteArgs),
    /// List data or secrets
    List(ListArgs),
    /// Delete secrets and configuration
    Delete(DeleteArgs),
    /// Print the lockbox version (also -version, --version, -v)
    Version(VersionArgs),
}

impl Command {
    /// The global flags of whichever leaf command this is.
    pub fn global(&self) -> &GlobalArgs {
        match self {
            Command::Status(a) => &a.global,
            Command::Operator(op) => match op {
                OperatorCommand::Init(a) => &a.global,
                OperatorCommand::Unseal(a) => &a.global,
                OperatorCommand::Seal(a) => &a.global,
                OperatorCommand::Rotate(a) => &a.global,
            },
            Command::Login(a) => &a.global,
            Command::Token(t) => match t {
                TokenCommand::Create(a) => &a.global,
                TokenCommand::Lookup(a) => &a.global,
                TokenCommand::Renew(a) => &a.global,
                TokenCommand::Revoke(a) => &a.global,
            },
            Command::Policy(p) => match p {
                PolicyCommand::Write(a) => &a.global,
                PolicyCommand::Read(a) => &a.global,
                PolicyCommand::List(a) => &a.global,
                PolicyCommand::Delete(a) => &a.global,
            },
            Command::Secrets(s) => match s {
                SecretsCommand::Enable(a) => &a.global,
                SecretsCommand::Disable(a) => &a.global,
                SecretsCommand::List(a) => &a.global,
                SecretsCommand::Tune(a) => &a.global,
                SecretsCommand::Move(a) => &a.global,
            },
            Command::Auth(c) => match c {
                AuthCommand::Enable(a) => &a.global,
                AuthCommand::Disable(a) => &a.global,
                AuthCommand::List(a) => &a.global,
                AuthCommand::Tune(a) => &a.global,
            },
            Command::Plugin(p) => match p {
                PluginCommand::Register(a) => &a.global,
                PluginCommand::Deregister(a) => &a.global,
                PluginCommand::List(a) => &a.global,
                PluginCommand::Info(a) => &a.global,
                PluginCommand::Reload(a) => &a.global,
                PluginCommand::Push(a) => &a.global,
                PluginCommand::Pull(a) => &a.global,
            },
            Command::Read(a) => &a.global,
            Command::Write(a) => &a.global,
            Command::List(a) => &a.global,
            Command::Delete(a) => &a.global,
            Command::Version(a) => &a.global,
        }
    }
}

/// `status`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `operator ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum OperatorCommand {
    /// Initialize a server: generate the root key, split it into unseal keys
    Init(OperatorInitArgs),
    /// Provide one unseal key share (read from stdin when KEY is omitted)
    Unseal(OperatorUnsealArgs),
    /// Seal the server
    Seal(OperatorSealArgs),
    /// Rotate the underlying encryption key
    Rotate(OperatorRotateArgs),
}

/// `operator init`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct OperatorInitArgs {
    /// Number of key shares to split the root key into [default: 5]
    #[arg(long = "key-shares", short = 'n', value_name = "N")]
    pub key_shares: Option<u32>,

    /// Number of key shares required to reconstruct the root key [default: 3]
    #[arg(long = "key-threshold", short = 't', value_name = "N")]
    pub key_threshold: Option<u32>,

    /// Only print whether the server is initialized (exit code 0: yes, 2: no)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub status: bool,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `operator unseal`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct OperatorUnsealArgs {
    /// The unseal key share; "-" reads it from one line of stdin, as does
    /// omitting it (with a prompt at a terminal)
    pub key: Option<String>,

    /// Discard previously entered key shares
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub reset: bool,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `operator seal`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct OperatorSealArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `operator rotate`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct OperatorRotateArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `login`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct LoginArgs {
    /// With the token method: the token ("-" reads it from stdin; omitted,
    /// one line is read from stdin), optionally followed by K=V options such
    /// as lookup=false. With other methods: the method's K=V login data,
    /// e.g. username=U password=P for userpass
    #[arg(value_name = "TOKEN | K=V")]
    pub args: Vec<String>,

    /// Auth method: "token", "userpass", or any other method, whose K=V data
    /// is sent to auth/PATH/login
    #[arg(long, value_name = "METHOD", default_value = "token")]
    pub method: String,

    /// Mount path of the auth method; defaults to METHOD
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// Do not store the token in ~/.lockbox-token
    #[arg(long = "no-store", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub no_store: bool,

    /// Do not print the token (it is still stored)
    #[arg(long = "no-print", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub no_print: bool,

    /// Print only the token, without verifying or storing it
    #[arg(long = "token-only", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub token_only: bool,

    /// Print only this field of the result
    #[arg(long, value_name = "FIELD")]
    pub field: Option<String>,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `token ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum TokenCommand {
    /// Create a new token as a child of the current one
    Create(TokenCreateArgs),
    /// Display information about a token (the current one by default)
    Lookup(TokenLookupArgs),
    /// Renew a token's lease (the current one by default)
    Renew(TokenRenewArgs),
    /// Revoke a token and its children
    Revoke(TokenRevokeArgs),
}

/// `token create`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TokenCreateArgs {
    /// Policy to attach; repeat for several
    #[arg(long = "policy", value_name = "NAME")]
    pub policies: Vec<String>,

    /// Initial TTL, e.g. 30m or 1h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub ttl: Option<GoDuration>,

    /// Hard limit on the token's lifetime
    #[arg(long = "explicit-max-ttl", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub explicit_max_ttl: Option<GoDuration>,

    /// Make a periodic token renewed by this period
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub period: Option<GoDuration>,

    /// Whether the token can be renewed
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "true",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub renewable: bool,

    /// Number of uses after which the token is revoked (0: unlimited)
    #[arg(long = "use-limit", value_name = "N")]
    pub use_limit: Option<u64>,

    /// Name to associate with the token
    #[arg(long = "display-name", value_name = "NAME")]
    pub display_name: Option<String>,

    /// Create the token with no parent
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub orphan: bool,

    /// Do not attach the "default" policy
    #[arg(long = "no-default-policy", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub no_default_policy: bool,

    /// Value of the token instead of a generated one (needs sudo)
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,

    /// Create the token against this token role
    #[arg(long, value_name = "NAME")]
    pub role: Option<String>,

    /// Token type: "service" or "batch"
    #[arg(long = "type", value_name = "TYPE", default_value = "service")]
    pub token_type: String,

    /// Metadata as key=value; repeat for several
    #[arg(long, value_name = "K=V")]
    pub metadata: Vec<String>,

    /// Print only this field of the result
    #[arg(long, value_name = "FIELD")]
    pub field: Option<String>,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `token lookup`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TokenLookupArgs {
    /// Token (or accessor with -accessor); the current token when omitted
    #[arg(value_name = "TOKEN | ACCESSOR")]
    pub token: Option<String>,

    /// Treat the argument as an accessor
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub accessor: bool,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `token renew`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TokenRenewArgs {
    /// Token (or accessor with -accessor); the current token when omitted
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,

    /// Requested renewal increment, e.g. 1h
    #[arg(long, short = 'i', value_name = "DURATION", value_parser = parse_duration_arg)]
    pub increment: Option<GoDuration>,

    /// Treat the argument as an accessor
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub accessor: bool,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `token revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct TokenRevokeArgs {
    /// Token (or accessor with -accessor) to revoke
    #[arg(value_name = "TOKEN | ACCESSOR")]
    pub token: Option<String>,

    /// Revoke the current token
    #[arg(long = "self", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub revoke_self: bool,

    /// Treat the argument as an accessor
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub accessor: bool,

    /// "orphan" revokes only the token and leaves its children
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `policy ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum PolicyCommand {
    /// Upload a policy from a file ("-" reads stdin)
    Write(PolicyWriteArgs),
    /// Print a policy
    Read(PolicyReadArgs),
    /// List the installed policies
    List(PolicyListArgs),
    /// Delete a policy
    Delete(PolicyDeleteArgs),
}

/// `policy write`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PolicyWriteArgs {
    /// Policy name (lowercased)
    pub name: String,
    /// HCL file with the rules, or "-" for stdin
    pub file: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `policy read`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PolicyReadArgs {
    /// Policy name
    pub name: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `policy list`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PolicyListArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `policy delete`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PolicyDeleteArgs {
    /// Policy name
    pub name: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `secrets ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum SecretsCommand {
    /// Enable a secrets engine
    Enable(SecretsEnableArgs),
    /// Disable a secrets engine
    Disable(SecretsDisableArgs),
    /// List enabled secrets engines
    List(SecretsListArgs),
    /// Tune a secrets engine's configuration
    Tune(SecretsTuneArgs),
    /// Move a secrets engine to a new path
    Move(SecretsMoveArgs),
}

/// `secrets enable`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SecretsEnableArgs {
    /// Type of the secrets engine (a plugin name)
    #[arg(value_name = "TYPE")]
    pub engine_type: String,

    /// Where to mount it; defaults to TYPE
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// Human-friendly description
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// Default lease TTL for this mount
    #[arg(long = "default-lease-ttl", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub default_lease_ttl: Option<GoDuration>,

    /// Maximum lease TTL for this mount
    #[arg(long = "max-lease-ttl", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub max_lease_ttl: Option<GoDuration>,

    /// Disable caching for this mount
    #[arg(long = "force-no-cache", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub force_no_cache: bool,

    /// Mark the mount local-only (not replicated)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub local: bool,

    /// Mount option as key=value; repeat for several
    #[arg(long = "options", value_name = "K=V")]
    pub options: Vec<String>,

    /// Shorthand for -options=version=N
    #[arg(long, value_name = "N")]
    pub version: Option<u32>,

    /// Semantic version of the plugin to run
    #[arg(long = "plugin-version", value_name = "VERSION")]
    pub plugin_version: Option<String>,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `secrets disable`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SecretsDisableArgs {
    /// Mount path
    pub path: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `secrets list`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SecretsListArgs {
    /// Print TTLs, replication, options, UUIDs and versions too
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub detailed: bool,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `secrets tune`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SecretsTuneArgs {
    /// Mount path
    pub path: String,

    /// Default lease TTL ("-1" resets it to the system default)
    #[arg(long = "default-lease-ttl", value_name = "DURATION", value_parser = parse_duration_arg,
          allow_negative_numbers = true)]
    pub default_lease_ttl: Option<GoDuration>,

    /// Maximum lease TTL ("-1" resets it to the system default)
    #[arg(long = "max-lease-ttl", value_name = "DURATION", value_parser = parse_duration_arg,
          allow_negative_numbers = true)]
    pub max_lease_ttl: Option<GoDuration>,

    /// New description
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// Mount option as key=value; repeat for several
    #[arg(long = "options", value_name = "K=V")]
    pub options: Vec<String>,

    /// Shorthand for -options=version=N
    #[arg(long, value_name = "N")]
    pub version: Option<u32>,

    /// Semantic version of the plugin to run
    #[arg(long = "plugin-version", value_name = "VERSION")]
    pub plugin_version: Option<String>,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `secrets move`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct SecretsMoveArgs {
    /// Current mount path
    pub source: String,
    /// New mount path
    pub destination: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `auth ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AuthCommand {
    /// Enable an auth method
    Enable(AuthEnableArgs),
    /// Disable an auth method
    Disable(AuthDisableArgs),
    /// List enabled auth methods
    List(AuthListArgs),
    /// Tune an auth method's configuration
    Tune(AuthTuneArgs),
}

/// `auth enable`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AuthEnableArgs {
    /// Type of the auth method (a plugin name), e.g. userpass
    #[arg(value_name = "TYPE")]
    pub method_type: String,

    /// Where to mount it, under auth/; defaults to TYPE
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// Human-friendly description
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// Default lease TTL for tokens issued by this method
    #[arg(long = "default-lease-ttl", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub default_lease_ttl: Option<GoDuration>,

    /// Maximum lease TTL for tokens issued by this method
    #[arg(long = "max-lease-ttl", value_name = "DURATION", value_parser = parse_duration_arg)]
    pub max_lease_ttl: Option<GoDuration>,

    /// Mark the mount local-only (not replicated)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub local: bool,

    /// Mount option as key=value; repeat for several
    #[arg(long = "options", value_name = "K=V")]
    pub options: Vec<String>,

    /// Semantic version of the plugin to run
    #[arg(long = "plugin-version", value_name = "VERSION")]
    pub plugin_version: Option<String>,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `auth disable`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AuthDisableArgs {
    /// Mount path, without the auth/ prefix (e.g. userpass)
    pub path: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `auth list`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AuthListArgs {
    /// Print TTLs, token type, replication, options, UUIDs and versions too
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub detailed: bool,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `auth tune`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AuthTuneArgs {
    /// Mount path, without the auth/ prefix (e.g. userpass)
    pub path: String,

    /// Default lease TTL ("-1" resets it to the system default)
    #[arg(long = "default-lease-ttl", value_name = "DURATION", value_parser = parse_duration_arg,
          allow_negative_numbers = true)]
    pub default_lease_ttl: Option<GoDuration>,

    /// Maximum lease TTL ("-1" resets it to the system default)
    #[arg(long = "max-lease-ttl", value_name = "DURATION", value_parser = parse_duration_arg,
          allow_negative_numbers = true)]
    pub max_lease_ttl: Option<GoDuration>,

    /// New description
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// Mount option as key=value; repeat for several
    #[arg(long = "options", value_name = "K=V")]
    pub options: Vec<String>,

    /// Semantic version of the plugin to run
    #[arg(long = "plugin-version", value_name = "VERSION")]
    pub plugin_version: Option<String>,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `read`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ReadArgs {
    /// Path to read
    pub path: String,
    /// Print only this field
    #[arg(long, value_name = "FIELD")]
    pub field: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `write`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct WriteArgs {
    /// Path to write
    pub path: String,
    /// Data as key=value (key=@file reads a file, key=- reads stdin), or "-"
    /// to read a JSON object from stdin
    #[arg(value_name = "K=V")]
    pub data: Vec<String>,
    /// Allow writing with no data
    #[arg(long, short = 'f', value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub force: bool,
    /// Print only this field of the response
    #[arg(long, value_name = "FIELD")]
    pub field: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `list`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ListArgs {
    /// Path to list
    pub path: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `version`. The global flags are accepted and ignored, as Vault does.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct VersionArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `delete`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DeleteArgs {
    /// Path to delete
    pub path: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

mod plugin_args;

pub use plugin_args::{
    PluginCommand, PluginDeregisterArgs, PluginInfoArgs, PluginListArgs, PluginPullArgs,
    PluginPushArgs, PluginRegisterArgs, PluginReloadArgs, RegistryArgs,
};

#[cfg(test)]
mod tests;
