//! lockbox's plugin runtime: verified process launch, supervision,
//! multiplexing, reload, and plugin images. It implements the core's
//! [`lockbox_core::runtime::PluginRuntime`] ([`PluginHost`]) and
//! [`lockbox_core::runtime::ImageStore`] ([`images::PluginImages`]); a
//! [`Node`] is a core with both plugged in. The catalog (which binaries may
//! run) is the core's (`lockbox_core::catalog`); the wire contract is the
//! `lockbox-plugin-proto` crate (see `docs/plugin-protocol.md`).
//!
//! * [`process`]: one verified process: memfd exec, handshake, gRPC, host storage service.
//! * [`host`]: groups of mounts per process, restart with backoff, reload.
//! * [`supervision`]: the restart decisions (backoff, crash loops) as a state machine without I/O.
//! * [`cache`]: the read-response cache of plugin mounts (answers the plugin marks cacheable).
//! * [`sandbox`]: what a plugin process can reach (capabilities, `no_new_privs`, Landlock).
//! * [`images`]: plugin images in the server (OCI pulls into the binary cache, the barrier-stored index).
//! * [`node`]: a core assembled with this runtime (what the server and the operator run).

pub mod cache;
pub mod host;
pub mod images;
pub mod node;
pub mod process;
pub mod sandbox;
pub mod supervision;
pub mod vault;

pub use host::{HostConfig, PluginBackend, PluginEvent, PluginEventKind, PluginHost};
pub use node::{Node, NodeConfig};

use std::path::PathBuf;

/// Errors of the plugin layer. Each names the plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// No `plugin_directory` is configured.
    #[error("{}", lockbox_core::catalog::NO_PLUGIN_DIRECTORY)]
    NoPluginDirectory,
    /// The command does not resolve inside the plugin directory.
    #[error("plugin {name}: {message}")]
    Command {
        /// Plugin name.
        name: String,
        /// Why.
        message: String,
    },
    /// Reading the binary failed.
    #[error("cannot read plugin binary {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The binary's digest differs from the catalog.
    #[error(
        "sha256 mismatch for plugin {name}: the catalog expects {expected} but the file on disk is {actual}; the plugin was not executed (re-register it with the new sha256 if the change is intended)"
    )]
    DigestMismatch {
        /// Plugin name.
        name: String,
        /// From the catalog.
        expected: String,
        /// Of the file.
        actual: String,
    },
    /// Starting the process failed.
    #[error("cannot start plugin {name}: {source}")]
    Exec {
        /// Plugin name.
        name: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime directory of plugin sockets is not private to us.
    #[error("plugin runtime directory {path} is not safe to use: {reason}")]
    RuntimeDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The handshake failed.
    #[error("plugin {name} failed the handshake: {reason}{}", if stderr.is_empty() { String::new() } else { format!("; last stderr lines: {}", stderr.join(" | ")) })]
    Handshake {
        /// Plugin name.
        name: String,
        /// What went wrong.
        reason: String,
        /// The plugin's last stderr lines.
        stderr: Vec<String>,
    },
    /// An RPC failed during setup.
    #[error("plugin {name}: {message}")]
    Rpc {
        /// Plugin name.
        name: String,
        /// The gRPC message.
        message: String,
    },
    /// The plugin refused to set up a mount.
    #[error("plugin {name} refused to serve {mount}: {message}")]
    Setup {
        /// Plugin name.
        name: String,
        /// Mount path.
        mount: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin's process is down.
    #[error("plugin {name} is not running: {reason}")]
    Down {
        /// Plugin name.
        name: String,
        /// Last exit reason.
        reason: String,
    },
}
