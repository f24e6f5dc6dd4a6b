//! One plugin process: verified exec, handshake, gRPC connection, the
//! host-side `Storage` service for its mounts, log forwarding, and stop.
//!
//! Verify-before-exec works on the exact bytes that run: the binary is read
//! once, hashed, written into a sealed memfd (no further writes possible),
//! and the child executes `/proc/self/fd/N`. Swapping the file on disk
//! after the check changes nothing about what runs.
//!
//! The child gets a clean environment (the catalog entry's `env` plus the
//! protocol variables and `PATH`), so host secrets such as unseal keys in
//! the server's environment never reach plugins. It is killed if the host
//! dies (`PR_SET_PDEATHSIG`) and on drop, and it runs in the sandbox of
//! [`super::sandbox`] (no capabilities, `no_new_privs`, Landlock).
//!
//! The host's `Storage` service of a process answers only that process:
//! every call must carry the per-launch secret handed to the child in
//! `LOCKBOX_PLUGIN_HOST_TOKEN` (gRPC metadata `lockbox-host-token`,
//! compared in constant time) and come from a connection whose peer
//! (`SO_PEERCRED`) is the plugin's own process ID. Threads of the plugin
//! share its process ID; its child processes do not and are refused, so a
//! plugin that forks helpers must call storage from the plugin process.
//!
//! Plugin output is read in lines of at most [`MAX_LINE`] bytes (the rest
//! of a longer line is discarded), so a plugin printing without newlines
//! cannot grow the host's memory; the handshake line is read the same way.
//!
//! [`launch`] starts a process in named stages (`process/launch.rs`:
//! verify, socket directory, host storage service, command, spawn, output
//! forwarding, exit monitor, handshake, connect); this file holds the
//! process handle and the checks the stages use (handshake line, private
//! directory).

use health::ConnectionHealth;
use lockbox_plugin_proto as proto;
use proto::v1::{self, backend_client::BackendClient};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tonic::transport::Channel;

/// Longest line of plugin output (stdout, stderr, the handshake line) the
/// host keeps; the rest of a longer line is discarded.
pub const MAX_LINE: usize = 16 * 1024;

/// Settings for launching processes.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// Parent of the per-process private socket directories.
    pub runtime_dir: PathBuf,
    /// How long a plugin has to print its handshake line and become healthy.
    pub handshake_timeout: Duration,
    /// How long a stopping plugin gets after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// Extra read-only directories for binaries of a given sha256 (see
    /// [`crate::sandbox::ReadGrant`]); empty by default.
    pub read_grants: Vec<crate::sandbox::ReadGrant>,
}

/// A running, handshaken, healthy plugin process.
pub struct PluginProcess {
    /// Catalog name.
    pub name: String,
    /// Catalog version (may be empty).
    pub version: String,
    /// The verified sha256 of what runs.
    pub sha256: String,
    /// OS process ID.
    pub pid: u32,
    /// Unique for the host's life (unlike pids): keys cached answers.
    pub serial: u64,
    /// What the plugin said about itself (lockbox's protocol; the default
    /// for a Vault plugin, which says it per mount in `Setup`).
    pub info: v1::InfoReply,
    /// Storage access granted to this process (lockbox's protocol).
    pub storage: Arc<HostStorage>,
    conn: Conn,
    in_flight: AtomicUsize,
    /// Whether a request's connection broke: the process is presumed dead
    /// before its exit is reaped (its cached answers are no longer served)
    /// until a call started after the break succeeds.
    health: ConnectionHealth,
    exited: watch::Receiver<Option<String>>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    socket_dir: PathBuf,
    _host_server: AbortOnDrop,
}

/// The protocol a process answered with at its handshake, and its client.
pub enum Conn {
    /// lockbox's own protocol (`lockbox.plugin.v1`).
    Lockbox(BackendClient<Channel>),
    /// Vault's plugin protocol v5 (go-plugin, AutoMTLS).
    Vault(Box<crate::vault::VaultConn>),
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.socket_dir);
    }
}

impl PluginProcess {
    /// A gRPC client for the plugin's Backend service, if it speaks
    /// lockbox's protocol.
    pub fn client(&self) -> Option<BackendClient<Channel>> {
        match &self.conn {
            Conn::Lockbox(c) => Some(c.clone()),
            Conn::Vault(_) => None,
        }
    }

    /// The connection, if the plugin speaks Vault's protocol.
    pub fn vault(&self) -> Option<&crate::vault::VaultConn> {
        match &self.conn {
            Conn::Vault(v) => Some(v),
            Conn::Lockbox(_) => None,
        }
    }

    /// Which protocol the process speaks: `lockbox` or `vault`.
    pub fn protocol(&self) -> &'static str {
        match &self.conn {
            Conn::Lockbox(_) => "lockbox",
            Conn::Vault(_) => "vault",
        }
    }

    /// Counts a request in flight; pair with [`PluginProcess::end_request`].
    pub fn begin_request(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// Ends a request counted by [`PluginProcess::begin_request`].
    pub fn end_request(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// Requests currently in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Records that a request's connection to the process broke (the
    /// process crashed or is going away; its exit may not be reaped yet).
    pub fn lose_connection(&self) {
        self.health.lose();
    }

    /// What a call notes when it starts, for [`PluginProcess::call_succeeded`].
    pub fn call_started(&self) -> u64 {
        self.health.call_started()
    }

    /// A call that started at `started` succeeded: if no connection broke
    /// since it started, the process is serving again (a transient break).
    /// Check and update are one atomic step: a break during it is kept.
    pub fn call_succeeded(&self, started: u64) {
        self.health.call_succeeded(started);
    }

    /// Whether the process may still be serving: not exited, and no
    /// request's connection to it broke.
    pub fn serving(&self) -> bool {
        !self.health.lost() && self.exited.borrow().is_none()
    }

    /// `Some(reason)` once the process has exited.
    pub fn exit_reason(&self) -> Option<String> {
        self.exited.borrow().clone()
    }

    /// A receiver that changes when the process exits.
    pub fn exit_watch(&self) -> watch::Receiver<Option<String>> {
        self.exited.clone()
    }

    /// Asks the process to stop (SIGTERM, then SIGKILL after the grace
    /// period) and waits until it has exited.
    pub async fn stop(&self) {
        if let Some(v) = self.vault()
            && self.exit_reason().is_none()
        {
            v.shutdown().await;
        }
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = stop.send(());
        }
        let mut w = self.exited.clone();
        let _ = w.wait_for(|e| e.is_some()).await;
    }
}

/// Creates `dir` with mode 0700 if it does not exist, then refuses it
/// unless it is a real directory (not a symlink) owned by this process's
/// user with no access for group or others. A directory someone else made
/// in a shared `$TMPDIR` is never used.
pub fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create its parent {}: {e}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            // The umask may have taken bits away; set exactly 0700.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot set its mode to 0700: {e}"))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create it: {e}")),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot inspect it: {e}"))?;
    let me = rustix::process::geteuid().as_raw();
    let fix = "remove it or set TMPDIR to a private directory";
    if !meta.file_type().is_dir() {
        return Err(format!(
            "it exists and is not a directory (a symlink or file); {fix}"
        ));
    }
    if meta.uid() != me {
        return Err(format!(
            "it is owned by uid {}, not by this server's uid {me}; {fix}",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "its mode is {:04o}, but it must be 0700 (no access for group or others); {fix}",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// 64 random bits in hex: unpredictable directory names.
pub fn random_suffix() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().r#gen();
    format!("{n:016x}")
}

/// Parses and checks the handshake line.
pub fn parse_handshake(line: &str, accepted: &[u32], socket_dir: &Path) -> Result<PathBuf, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let parts: Vec<&str> = line.split('|').collect();
    if parts.len() < 5 {
        return Err(format!(
            "malformed handshake line {line:?}: expected CORE-PROTOCOL|APP-PROTOCOL|unix|SOCKET-PATH|grpc|"
        ));
    }
    let core: u32 = parts[0].parse().map_err(|_| {
        format!(
            "malformed handshake line {line:?}: core protocol {:?} is not a number",
            parts[0]
        )
    })?;
    if core != proto::CORE_PROTOCOL_VERSION {
        return Err(format!(
            "unsupported core protocol version {core} (lockbox speaks {})",
            proto::CORE_PROTOCOL_VERSION
        ));
    }
    let app: u32 = parts[1].parse().map_err(|_| {
        format!(
            "malformed handshake line {line:?}: app protocol {:?} is not a number",
            parts[1]
        )
    })?;
    if !accepted.contains(&app) {
        return Err(format!(
            "unsupported app protocol version {app} (lockbox accepts {accepted:?})"
        ));
    }
    if parts[2] != "unix" {
        return Err(format!(
            "unsupported network {:?}: plugins must listen on a unix socket",
            parts[2]
        ));
    }
    if parts[4] != "grpc" {
        return Err(format!(
            "unsupported protocol {:?}: plugins must speak grpc",
            parts[4]
        ));
    }
    let path = PathBuf::from(parts[3]);
    if !path.is_absolute()
        || path.parent() != Some(socket_dir)
        || path.components().any(|c| c.as_os_str() == "..")
    {
        return Err(format!(
            "socket {} is outside the plugin's socket directory {}",
            path.display(),
            socket_dir.display()
        ));
    }
    Ok(path)
}

mod health;
mod host_storage;
mod launch;
mod output;

pub use host_storage::HostStorage;
pub use launch::{launch, parse_vault_handshake};
pub use output::{CappedLines, OutputLine};

#[cfg(test)]
mod tests;
