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

use super::PluginError;
use super::sandbox::Sandbox;
use lockbox_core::catalog::CatalogEntry;
use lockbox_plugin_proto as proto;
use proto::v1::{self, backend_client::BackendClient};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::BufReader;
use tokio::sync::{oneshot, watch};
use tonic::transport::{Channel, Endpoint};

const STDERR_TAIL: usize = 20;
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
    /// What the plugin said about itself.
    pub info: v1::InfoReply,
    /// Storage access granted to this process.
    pub storage: Arc<HostStorage>,
    client: BackendClient<Channel>,
    in_flight: AtomicUsize,
    exited: watch::Receiver<Option<String>>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    socket_dir: PathBuf,
    _host_server: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

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
    /// A gRPC client for the plugin's Backend service.
    pub fn client(&self) -> BackendClient<Channel> {
        self.client.clone()
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

/// A fresh per-launch secret for the host storage service (256 bits, hex).
fn random_token() -> zeroize::Zeroizing<String> {
    use rand::RngCore;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    zeroize::Zeroizing::new(hex::encode(bytes.as_ref()))
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

/// Copies `binary` into a sealed memfd, hashing exactly the bytes written,
/// in 64 KiB steps (a plugin binary is never held in memory whole). Returns
/// the memfd and the sha256 of its content; what later executes is that
/// memfd, so a file swapped after the check never runs.
fn verified_copy(binary: &Path, name: &str) -> Result<(std::fs::File, String), PluginError> {
    use rustix::fs::{MemfdFlags, SealFlags, fcntl_add_seals, memfd_create};
    use std::io::{Read, Write};
    let read_err = |source: std::io::Error| PluginError::Read {
        path: binary.to_path_buf(),
        source,
    };
    let exec_err = |source: std::io::Error| PluginError::Exec {
        name: name.to_string(),
        source,
    };
    let mut src = std::fs::File::open(binary).map_err(read_err)?;
    let fd = memfd_create(
        format!("lockbox-plugin-{name}"),
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| exec_err(e.into()))?;
    let mut memfd = std::fs::File::from(fd);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        hasher.update(&buf[..n]);
        memfd.write_all(&buf[..n]).map_err(exec_err)?;
    }
    fcntl_add_seals(
        &memfd,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )
    .map_err(|e| exec_err(e.into()))?;
    Ok((memfd, hex::encode(hasher.finalize())))
}

/// Starts a plugin from a resolved binary path: verify, exec, handshake,
/// connect, health check, Info.
pub async fn launch(
    entry: &CatalogEntry,
    binary: &Path,
    cfg: &LaunchConfig,
) -> Result<Arc<PluginProcess>, PluginError> {
    let exec_err = |source: std::io::Error| PluginError::Exec {
        name: entry.name.clone(),
        source,
    };
    let (memfd, actual) = {
        let (binary, name) = (binary.to_path_buf(), entry.name.clone());
        tokio::task::spawn_blocking(move || verified_copy(&binary, &name))
            .await
            .map_err(|e| exec_err(std::io::Error::other(e.to_string())))??
    };
    if actual != entry.sha256 {
        return Err(PluginError::DigestMismatch {
            name: entry.name.clone(),
            expected: entry.sha256.clone(),
            actual,
        });
    }

    ensure_private_dir(&cfg.runtime_dir).map_err(|reason| PluginError::RuntimeDir {
        path: cfg.runtime_dir.clone(),
        reason,
    })?;
    let socket_dir = cfg.runtime_dir.join(format!("p-{}", random_suffix()));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&socket_dir)
            .map_err(exec_err)?;
    }
    let socket_dir = socket_dir.canonicalize().map_err(exec_err)?;
    let cleanup_dir = scopeguard(socket_dir.clone());

    // The host's Storage service for this process.
    let token = random_token();
    let storage = Arc::new(HostStorage::new(token.to_string()));
    let host_sock = socket_dir.join("host.sock");
    let listener = tokio::net::UnixListener::bind(&host_sock).map_err(exec_err)?;
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    let storage_service = v1::storage_server::StorageServer::from_arc(storage.clone())
        .max_decoding_message_size(proto::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(proto::MAX_MESSAGE_SIZE);
    let host_server = AbortOnDrop(tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(storage_service)
            .serve_with_incoming(incoming)
            .await;
    }));

    let fd = memfd.as_raw_fd();
    let mut cmd = tokio::process::Command::new(format!("/proc/self/fd/{fd}"));
    cmd.arg0(&entry.command)
        .args(&entry.args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .current_dir(&socket_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for kv in &entry.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.env(proto::MAGIC_COOKIE_KEY, proto::MAGIC_COOKIE_VALUE)
        .env(
            proto::PROTOCOL_VERSIONS_KEY,
            proto::APP_PROTOCOL_VERSION.to_string(),
        )
        .env(proto::SOCKET_DIR_KEY, &socket_dir)
        .env(proto::HOST_SOCKET_KEY, &host_sock)
        .env(proto::HOST_TOKEN_KEY, token.as_str())
        .env(proto::NAME_KEY, &entry.name)
        .env(proto::VERSION_KEY, &entry.version);
    let sandbox = Sandbox::for_plugin(&socket_dir).map_err(|e| {
        exec_err(std::io::Error::other(format!(
            "cannot build the plugin sandbox for {}: {e}",
            socket_dir.display()
        )))
    })?;
    let mut enter_sandbox = sandbox.child_hook();
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (fcntl, prctl, capset,
    // landlock_restrict_self); see `sandbox::enter`.
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            enter_sandbox()
        });
    }
    let mut child = cmd.spawn().map_err(exec_err)?;
    drop(memfd);
    drop(sandbox);
    let pid = child.id().unwrap_or(0);
    storage.set_pid(pid);

    // Output forwarding: the first stdout line is the handshake.
    let tail: Arc<Mutex<VecDeque<String>>> = Arc::new(Mutex::new(VecDeque::new()));
    let (line_tx, line_rx) = oneshot::channel::<OutputLine>();
    if let Some(stdout) = child.stdout.take() {
        let (n, v) = (entry.name.clone(), entry.version.clone());
        tokio::spawn(async move {
            let mut lines = CappedLines::new(BufReader::new(stdout), MAX_LINE);
            let mut first = Some(line_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                match first.take() {
                    Some(tx) => {
                        let _ = tx.send(line);
                    }
                    None => tracing::info!(plugin = %n, version = %v, pid, "{}", line.for_log()),
                }
            }
        });
    }
    let (stderr_done_tx, stderr_done) = watch::channel(false);
    if let Some(stderr) = child.stderr.take() {
        let (n, v, tail) = (entry.name.clone(), entry.version.clone(), tail.clone());
        tokio::spawn(async move {
            let _done = DoneOnDrop(stderr_done_tx);
            let mut lines = CappedLines::new(BufReader::new(stderr), MAX_LINE);
            while let Ok(Some(line)) = lines.next_line().await {
                let line = line.for_log();
                tracing::info!(plugin = %n, version = %v, pid, stream = "stderr", "{line}");
                let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
    }

    // The monitor owns the child: it reports the exit and performs stops.
    let (exit_tx, exit_rx) = watch::channel::<Option<String>>(None);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let grace = cfg.stop_grace;
    tokio::spawn(async move {
        let status = tokio::select! {
            status = child.wait() => status,
            _ = stop_rx => {
                if let Some(pid) = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                }
                match tokio::time::timeout(grace, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        let _ = child.start_kill();
                        child.wait().await
                    }
                }
            }
        };
        let reason = match status {
            Ok(s) => s.to_string(),
            Err(e) => format!("wait failed: {e}"),
        };
        let _ = exit_tx.send(Some(reason));
    });

    let stderr_tail = |tail: &Arc<Mutex<VecDeque<String>>>| {
        tail.lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect::<Vec<_>>()
    };
    let fail = |reason: String, tail: &Arc<Mutex<VecDeque<String>>>| PluginError::Handshake {
        name: entry.name.clone(),
        reason,
        stderr: stderr_tail(tail),
    };
    let mut exit_watch = exit_rx.clone();
    let process_exit = async {
        let _ = exit_watch.wait_for(|e| e.is_some()).await;
    };
    let line = tokio::select! {
        line = tokio::time::timeout(cfg.handshake_timeout, line_rx) => match line {
            Ok(Ok(line)) => line,
            Ok(Err(_)) => {
                let _ = stop_tx.send(());
                settle(&exit_rx, &stderr_done, grace).await;
                let why = exit_rx.borrow().clone().unwrap_or_else(|| "closed stdout".into());
                return Err(fail(format!("plugin exited before the handshake ({why})"), &tail));
            }
            Err(_) => {
                let _ = stop_tx.send(());
                settle(&exit_rx, &stderr_done, grace).await;
                return Err(fail(format!("no handshake line within {:?}", cfg.handshake_timeout), &tail));
            }
        },
        () = process_exit => {
            settle(&exit_rx, &stderr_done, grace).await;
            let why = exit_rx.borrow().clone().unwrap_or_default();
            return Err(fail(format!("plugin exited before the handshake ({why})"), &tail));
        }
    };
    if line.truncated {
        let _ = stop_tx.send(());
        settle(&exit_rx, &stderr_done, grace).await;
        return Err(fail(
            format!(
                "the handshake line is longer than {MAX_LINE} bytes (expected CORE-PROTOCOL|APP-PROTOCOL|unix|SOCKET-PATH|grpc|)"
            ),
            &tail,
        ));
    }
    let socket = match parse_handshake(&line.text, &[proto::APP_PROTOCOL_VERSION], &socket_dir) {
        Ok(s) => s,
        Err(reason) => {
            let _ = stop_tx.send(());
            settle(&exit_rx, &stderr_done, grace).await;
            return Err(fail(reason, &tail));
        }
    };

    let connect = async {
        let path = socket.clone();
        let channel = Endpoint::try_from("http://plugin.local")
            .map_err(|e| e.to_string())?
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|e| format!("health check failed: {}", e.message()))?
            .into_inner()
            .status;
        if status != tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
            return Err(format!("health check says not serving (status {status})"));
        }
        let mut client = BackendClient::new(channel)
            .max_decoding_message_size(proto::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(proto::MAX_MESSAGE_SIZE);
        let info = client
            .info(v1::InfoRequest {})
            .await
            .map_err(|e| format!("Info failed: {}", e.message()))?
            .into_inner();
        Ok::<_, String>((client, info))
    };
    let (client, info) = match tokio::time::timeout(cfg.handshake_timeout, connect).await {
        Ok(Ok(x)) => x,
        Ok(Err(reason)) => {
            let _ = stop_tx.send(());
            settle(&exit_rx, &stderr_done, grace).await;
            return Err(fail(reason, &tail));
        }
        Err(_) => {
            let _ = stop_tx.send(());
            settle(&exit_rx, &stderr_done, grace).await;
            return Err(fail(
                "connecting and health checking timed out".into(),
                &tail,
            ));
        }
    };
    cleanup_dir.defuse();
    tracing::info!(plugin = %entry.name, version = %entry.version, pid, sha256 = %actual, "plugin process started");
    Ok(Arc::new(PluginProcess {
        name: entry.name.clone(),
        version: entry.version.clone(),
        sha256: actual,
        pid,
        serial: super::cache::next_serial(),
        info,
        storage,
        client,
        in_flight: AtomicUsize::new(0),
        exited: exit_rx,
        stop: Mutex::new(Some(stop_tx)),
        socket_dir,
        _host_server: host_server,
    }))
}

/// Sets a flag when dropped (the end of an output reader task).
struct DoneOnDrop(watch::Sender<bool>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// After a failed handshake: waits for the stopped process to exit (at most
/// its stop grace and a second), then briefly for its stderr to end, so the
/// report holds every line the plugin wrote before it failed. (A child the
/// plugin left running may hold stderr open; that wait is bounded.)
async fn settle(
    exit: &watch::Receiver<Option<String>>,
    stderr_done: &watch::Receiver<bool>,
    grace: Duration,
) {
    let mut exit = exit.clone();
    let _ = tokio::time::timeout(
        grace + Duration::from_secs(1),
        exit.wait_for(|e| e.is_some()),
    )
    .await;
    let mut done = stderr_done.clone();
    let _ = tokio::time::timeout(Duration::from_millis(200), done.wait_for(|d| *d)).await;
}

/// Removes a directory on drop unless defused.
struct DirGuard(Option<PathBuf>);

fn scopeguard(dir: PathBuf) -> DirGuard {
    DirGuard(Some(dir))
}

impl DirGuard {
    fn defuse(mut self) {
        self.0 = None;
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

mod host_storage;
mod output;

pub use host_storage::HostStorage;
pub use output::{CappedLines, OutputLine};

#[cfg(test)]
mod tests;
