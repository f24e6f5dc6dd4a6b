//! The clap definitions of `lockbox plugin ...` (catalog commands, reload,
//! and `push`/`pull` of OCI plugin images).

use super::{GlobalArgs, parse_bool_arg};
use clap::{ArgAction, Args, Subcommand};
use std::path::PathBuf;

/// `plugin ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum PluginCommand {
    /// Register a plugin binary in the catalog
    Register(PluginRegisterArgs),
    /// Remove a plugin from the catalog
    Deregister(PluginDeregisterArgs),
    /// List the plugins in the catalog
    List(PluginListArgs),
    /// Show a plugin's catalog entry
    Info(PluginInfoArgs),
    /// Restart the running instances of a plugin, or the plugins behind
    /// some mounts
    Reload(PluginReloadArgs),
    /// Publish a plugin binary to an OCI registry as an artifact and print
    /// the manifest digest to pin
    Push(PluginPushArgs),
    /// Download a plugin image's binary, verified, to inspect it locally
    Pull(PluginPullArgs),
}

/// Registry access flags of `plugin push` and `plugin pull`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
#[command(next_help_heading = "Registry Options")]
pub struct RegistryArgs {
    /// Reach this registry (HOST:PORT) over plain HTTP instead of HTTPS;
    /// repeat for several
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,

    /// User name for basic authentication (or LOCKBOX_REGISTRY_USERNAME);
    /// the password comes from -password-stdin or LOCKBOX_REGISTRY_PASSWORD
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,

    /// Read the registry password (or token, with -username) from stdin
    #[arg(long = "password-stdin", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub password_stdin: bool,

    /// Docker config JSON with credentials ({"auths": {"HOST": {"auth": ...}}}),
    /// e.g. ~/.docker/config.json
    #[arg(long = "auth-file", value_name = "PATH")]
    pub auth_file: Option<PathBuf>,
}

/// `plugin push FILE REGISTRY/REPO:TAG`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PluginPushArgs {
    /// The plugin binary
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Where to publish it: REGISTRY/REPO:TAG
    #[arg(value_name = "REGISTRY/REPO:TAG")]
    pub reference: String,

    #[command(flatten)]
    pub registry: RegistryArgs,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `plugin pull REF`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PluginPullArgs {
    /// The image: REGISTRY/REPO@sha256:DIGEST (or :TAG with -sha256)
    #[arg(value_name = "REFERENCE")]
    pub reference: String,

    /// Path of the binary inside a container image [default: /plugin]
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// Expected hex SHA-256 of the binary (required with a tag-only reference)
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,

    /// Where to write the binary [default: the file name of -path in the
    /// current directory]
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Refuse images and binaries larger than this many bytes
    #[arg(long = "max-size", value_name = "BYTES")]
    pub max_size: Option<u64>,

    #[command(flatten)]
    pub registry: RegistryArgs,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `plugin register`.
///
/// Takes `TYPE NAME`. Older Vault versions took a bare `NAME`; given one
/// argument, clap puts it in [`PluginRegisterArgs::plugin_type`] and the
/// command asks for the type.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PluginRegisterArgs {
    /// Plugin type: "secret" or "auth"
    #[arg(value_name = "TYPE")]
    pub plugin_type: String,

    /// Plugin name, as mounts will refer to it
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Hex SHA-256 of the plugin binary (required, except with -oci-image
    /// pinned by digest)
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,

    /// Binary to run, relative to the server's plugin directory; defaults to
    /// NAME. With -oci-image: the binary's path inside the image (default
    /// /plugin)
    #[arg(long, value_name = "FILE")]
    pub command: Option<String>,

    /// Pull the plugin from this OCI image, REGISTRY/REPO@sha256:DIGEST (a
    /// tag-only reference needs -sha256)
    #[arg(long = "oci-image", alias = "oci_image", value_name = "REF")]
    pub oci_image: Option<String>,

    /// Argument to pass to the plugin; repeat for several
    #[arg(long = "args", value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<String>,

    /// Environment variable for the plugin as KEY=value; repeat for several
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,

    /// Semantic version of the plugin, e.g. v1.0.0
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `plugin deregister`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PluginDeregisterArgs {
    /// Plugin type: "secret" or "auth"
    #[arg(value_name = "TYPE")]
    pub plugin_type: String,

    /// Plugin name
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Deregister this version of the plugin (default: the unversioned one)
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `plugin list`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PluginListArgs {
    /// Only list plugins of this type: "secret" or "auth"
    #[arg(value_name = "TYPE")]
    pub plugin_type: Option<String>,

    /// Print deprecation status, SHA-256 and command too
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false",
          action = ArgAction::Set, value_parser = parse_bool_arg)]
    pub detailed: bool,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `plugin info`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PluginInfoArgs {
    /// Plugin type: "secret" or "auth"
    #[arg(value_name = "TYPE")]
    pub plugin_type: String,

    /// Plugin name
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Show this version of the plugin (default: the unversioned one)
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,

    /// Print only this field of the entry
    #[arg(long, value_name = "FIELD")]
    pub field: Option<String>,

    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `plugin reload`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct PluginReloadArgs {
    /// Reload every mount of the plugin with this name
    #[arg(long, value_name = "NAME")]
    pub plugin: Option<String>,

    /// Reload the plugins behind these mount paths (auth mounts as
    /// auth/PATH); repeat or separate with commas
    #[arg(long, value_name = "PATH", value_delimiter = ',')]
    pub mounts: Vec<String>,

    /// With -plugin: only reload mounts of this plugin type ("secret" or
    /// "auth")
    #[arg(long = "type", value_name = "TYPE")]
    pub plugin_type: Option<String>,

    #[command(flatten)]
    pub global: GlobalArgs,
}
