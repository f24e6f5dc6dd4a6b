//! [`launch`]: starting one plugin process, in named stages, each a
//! function below in the order they run:
//!
//! ```text
//!  verify ─▶ socket_dir ─▶ serve_host_storage ─▶ plugin_command ─▶ spawn
//!  (sha256 of   (private      (the Storage service,   (clean env,       (sandbox,
//!   the memfd)   0700 dir)     per-launch token)       protocol vars)    pre_exec)
//!     ─▶ forward_output ─▶ monitor ─▶ read_handshake ─▶ connect
//!        (capped lines,    (owns the   (first stdout     (UDS channel,
//!         stderr tail)      child)      line, checked)    health, Info)
//! ```
//!
//! One launch serves both protocols: `plugin_command` sets lockbox's
//! variables and Vault's (magic cookie, `PLUGIN_CLIENT_CERT`, ...) together,
//! each SDK reads only its own, and `read_handshake` tells them apart by the
//! line the plugin prints (go-plugin's carries app version 5 and a
//! certificate). So a catalog entry needs no protocol field, and no plugin
//! is started twice to find out.
//!
//! From `monitor` on, a failure goes through [`Starting::fail`]: the
//! process is stopped, its stderr is drained, and the error carries its
//! last stderr lines.

use super::{
    AbortOnDrop, CappedLines, Conn, HostStorage, LaunchConfig, MAX_LINE, OutputLine, PluginProcess,
    ensure_private_dir, parse_handshake, random_suffix,
};
use crate::PluginError;
use crate::sandbox::Sandbox;
use crate::vault::VaultConn;
use crate::vault::tls::HostCert;
use lockbox_core::catalog::CatalogEntry;
use lockbox_plugin_proto as proto;
use lockbox_vault_plugin_proto::handshake::{self, Endpoint, HandshakeLine, HostEnv};
use proto::v1::{self, backend_client::BackendClient};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::BufReader;
use tokio::sync::{oneshot, watch};
use tonic::transport::Channel;

/// How many of the last stderr lines a failed start reports.
const STDERR_TAIL: usize = 20;

/// Starts a plugin from a resolved binary path: verify, exec, handshake,
/// connect, health check, Info.
pub async fn launch(
    entry: &CatalogEntry,
    binary: &Path,
    cfg: &LaunchConfig,
) -> Result<Arc<PluginProcess>, PluginError> {
    let (memfd, sha256) = verify(entry, binary).await?;
    let socket_dir = socket_dir(entry, cfg)?;
    let host = serve_host_storage(entry, socket_dir.path())?;
    let cert = HostCert::generate().map_err(|e| exec_err(entry)(std::io::Error::other(e)))?;
    let cmd = plugin_command(entry, &memfd, socket_dir.path(), &host, &cert);
    let granted = crate::sandbox::granted_paths(&cfg.read_grants, &sha256);
    let mut child = spawn(entry, cmd, memfd, socket_dir.path(), &granted)?;
    let pid = child.id().unwrap_or(0);
    host.storage.set_pid(pid);
    let (handshake, output) = forward_output(&mut child, entry, pid);
    let starting = Starting {
        name: &entry.name,
        monitor: monitor(child, cfg.stop_grace),
        output,
        grace: cfg.stop_grace,
    };
    let socket =
        match read_handshake(handshake, &starting.monitor.exit, cfg, socket_dir.path()).await {
            Ok(socket) => socket,
            Err(failure) => return Err(starting.fail(failure).await),
        };
    let connected = match socket {
        Handshake::Lockbox(socket) => connect(&socket, cfg.handshake_timeout)
            .await
            .map(|(client, info)| (Conn::Lockbox(client), info)),
        Handshake::Vault {
            socket,
            cert: plugin_cert,
        } => {
            let dir = socket_dir.path();
            let version = lockbox_core::core::VERSION;
            let dial = VaultConn::connect(&socket, cert, plugin_cert, dir, pid, version);
            match tokio::time::timeout(cfg.handshake_timeout, dial).await {
                Ok(c) => c.map(|c| (Conn::Vault(Box::new(c)), v1::InfoReply::default())),
                Err(_) => Err("connecting and health checking timed out".into()),
            }
        }
    };
    let (conn, info) = match connected {
        Ok(connected) => connected,
        Err(reason) => return Err(starting.fail(Failure::Reason(reason)).await),
    };
    let socket_dir = socket_dir.keep();
    let protocol = match conn {
        Conn::Lockbox(_) => "lockbox",
        Conn::Vault(_) => "vault",
    };
    tracing::info!(plugin = %entry.name, version = %entry.version, pid, sha256 = %sha256, protocol, "plugin process started");
    Ok(Arc::new(PluginProcess {
        name: entry.name.clone(),
        version: entry.version.clone(),
        sha256,
        pid,
        serial: crate::cache::next_serial(),
        info,
        storage: host.storage,
        conn,
        in_flight: AtomicUsize::new(0),
        health: Default::default(),
        exited: starting.monitor.exit,
        stop: Mutex::new(Some(starting.monitor.stop)),
        socket_dir,
        _host_server: host.server,
    }))
}

/// `PluginError::Exec` for `entry`.
fn exec_err(entry: &CatalogEntry) -> impl Fn(std::io::Error) -> PluginError + '_ {
    |source| PluginError::Exec {
        name: entry.name.clone(),
        source,
    }
}

/// Stage 1, verify: copies the binary into a sealed memfd (off the async
/// runtime) and checks its sha256 against the catalog; what later runs is
/// that memfd.
async fn verify(
    entry: &CatalogEntry,
    binary: &Path,
) -> Result<(std::fs::File, String), PluginError> {
    let (memfd, actual) = {
        let (binary, name) = (binary.to_path_buf(), entry.name.clone());
        tokio::task::spawn_blocking(move || verified_copy(&binary, &name))
            .await
            .map_err(|e| exec_err(entry)(std::io::Error::other(e.to_string())))??
    };
    if actual != entry.sha256 {
        return Err(PluginError::DigestMismatch {
            name: entry.name.clone(),
            expected: entry.sha256.clone(),
            actual,
        });
    }
    Ok((memfd, actual))
}

/// Copies `binary` into a sealed memfd and hashes exactly the bytes
/// copied. Returns the memfd and their sha256; what later executes is that
/// memfd, so a file swapped after the check never runs.
///
/// One pass over the file, in two threads: this one reads a chunk, hashes
/// it and hands that same buffer to a writer thread that appends it to the
/// memfd, so hashing and copying overlap and a cold start costs about one
/// read and one hash of the binary, like a host that execs the file by path
/// (the benchmark's cold-start gap against OpenBao was a copy, then a hash
/// of the copy). The memfd is sealed (write, grow, shrink) once the writer
/// is done; until then it is reachable only through this process's fd
/// table, which no other process can open (the server is non-dumpable), so
/// the sealed bytes are the hashed bytes. An embedder of the plugin host
/// must likewise be non-dumpable (`lockbox server` sets it in `main`,
/// `hardening`), else a same-user process could write the memfd through
/// `/proc/PID/fd` before it is sealed.
fn verified_copy(binary: &Path, name: &str) -> Result<(std::fs::File, String), PluginError> {
    use rustix::fs::{MemfdFlags, SealFlags, fcntl_add_seals, memfd_create};
    use std::io::{Read, Write};
    const CHUNK: usize = 1 << 20;
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
    let memfd = std::fs::File::from(fd);
    let (chunks, to_write) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let (hashed, written, read) = std::thread::scope(|scope| {
        let writer = std::thread::Builder::new()
            .name("plugin-verify-copy".into())
            .spawn_scoped(scope, || -> std::io::Result<u64> {
                let mut out = &memfd;
                let mut n = 0u64;
                for chunk in to_write {
                    out.write_all(&chunk)?;
                    n += chunk.len() as u64;
                }
                Ok(n)
            });
        let writer = match writer {
            Ok(w) => w,
            Err(e) => return ((Sha256::new(), 0), Err(e), Ok(())),
        };
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        let read = loop {
            // Filled by the read itself (no zeroing of the chunk first).
            let mut buf = Vec::with_capacity(CHUNK);
            let n = match (&mut src).take(CHUNK as u64).read_to_end(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            hasher.update(&buf);
            total += n as u64;
            if chunks.send(buf).is_err() {
                // The writer stopped on an error; it is reported below.
                break Ok(());
            }
        };
        drop(chunks);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the copy thread panicked")));
        ((hasher, total), written, read)
    });
    read.map_err(read_err)?;
    let written = written.map_err(exec_err)?;
    let (hasher, total) = hashed;
    if written != total {
        return Err(exec_err(std::io::Error::other(format!(
            "copied {written} of {total} bytes into the memfd"
        ))));
    }
    fcntl_add_seals(
        &memfd,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )
    .map_err(|e| exec_err(e.into()))?;
    Ok((memfd, hex::encode(hasher.finalize())))
}

/// Stage 2, the runtime directory: checks the runtime directory is ours
/// and private, then makes this process's socket directory in it (0700,
/// unpredictable name), removed again unless the launch succeeds.
fn socket_dir(entry: &CatalogEntry, cfg: &LaunchConfig) -> Result<DirGuard, PluginError> {
    ensure_private_dir(&cfg.runtime_dir).map_err(|reason| PluginError::RuntimeDir {
        path: cfg.runtime_dir.clone(),
        reason,
    })?;
    let dir = cfg.runtime_dir.join(format!("p-{}", random_suffix()));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(exec_err(entry))?;
    }
    let dir = dir.canonicalize().map_err(exec_err(entry))?;
    Ok(DirGuard {
        path: dir,
        keep: false,
    })
}

/// The host's `Storage` service of one process, serving on its socket.
struct HostService {
    /// What the process may reach (assigned per mount).
    storage: Arc<HostStorage>,
    /// The per-launch secret every call must carry.
    token: zeroize::Zeroizing<String>,
    /// The socket the service listens on.
    socket: PathBuf,
    /// The server task (stopped when the process handle drops).
    server: AbortOnDrop,
}

/// Stage 3, the host storage service: a fresh token, and a gRPC server on
/// `host.sock` in the socket directory.
fn serve_host_storage(entry: &CatalogEntry, socket_dir: &Path) -> Result<HostService, PluginError> {
    let token = random_token();
    let storage = Arc::new(HostStorage::new(token.to_string()));
    let socket = socket_dir.join("host.sock");
    let listener = tokio::net::UnixListener::bind(&socket).map_err(exec_err(entry))?;
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    let service = v1::storage_server::StorageServer::from_arc(storage.clone())
        .max_decoding_message_size(proto::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(proto::MAX_MESSAGE_SIZE);
    let server = AbortOnDrop(tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    }));
    Ok(HostService {
        storage,
        token,
        socket,
        server,
    })
}

/// A fresh per-launch secret for the host storage service (256 bits, hex).
fn random_token() -> zeroize::Zeroizing<String> {
    use rand::RngCore;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    zeroize::Zeroizing::new(hex::encode(bytes.as_ref()))
}

/// Stage 4, the command: exec of the memfd with a clean environment (the
/// entry's `env`, `PATH`, the variables of both protocols: lockbox's, and
/// Vault's with `cert` as the host's AutoMTLS certificate), the socket
/// directory as working directory, stdout and stderr piped, killed on drop.
fn plugin_command(
    entry: &CatalogEntry,
    memfd: &std::fs::File,
    socket_dir: &Path,
    host: &HostService,
    cert: &HostCert,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(format!("/proc/self/fd/{}", memfd.as_raw_fd()));
    cmd.arg0(&entry.command)
        .args(&entry.args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .current_dir(socket_dir)
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
        .env(proto::SOCKET_DIR_KEY, socket_dir)
        .env(proto::HOST_SOCKET_KEY, &host.socket)
        .env(proto::HOST_TOKEN_KEY, host.token.as_str())
        .env(proto::NAME_KEY, &entry.name)
        .env(proto::VERSION_KEY, &entry.version);
    let vault = HostEnv {
        client_cert_pem: &cert.pem,
        server_version: lockbox_core::core::VERSION,
        socket_dir: &socket_dir.to_string_lossy(),
        min_port: handshake::DEFAULT_MIN_PORT,
        max_port: handshake::DEFAULT_MAX_PORT,
    }
    .vars();
    for (k, v) in vault {
        cmd.env(k, v);
    }
    cmd
}

/// Stage 5, spawn: builds the sandbox (in the parent, with the read-only
/// directories `granted` to this binary's digest), then forks; the
/// child makes the memfd inheritable, asks for SIGKILL when the host dies,
/// enters the sandbox and execs the memfd.
fn spawn(
    entry: &CatalogEntry,
    mut cmd: tokio::process::Command,
    memfd: std::fs::File,
    socket_dir: &Path,
    granted: &[&Path],
) -> Result<tokio::process::Child, PluginError> {
    let sandbox = Sandbox::for_plugin(socket_dir, granted).map_err(|e| {
        exec_err(entry)(std::io::Error::other(format!(
            "cannot build the plugin sandbox for {}: {e}",
            socket_dir.display()
        )))
    })?;
    let mut enter_sandbox = sandbox.child_hook();
    let fd = memfd.as_raw_fd();
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
    let child = cmd.spawn().map_err(exec_err(entry))?;
    drop(memfd);
    drop(sandbox);
    Ok(child)
}

/// What the output readers leave for a failed start.
struct Output {
    /// The last [`STDERR_TAIL`] stderr lines.
    tail: Arc<Mutex<VecDeque<String>>>,
    /// Set when the stderr reader has ended.
    stderr_done: watch::Receiver<bool>,
}

/// Stage 6, output forwarding: stdout and stderr read in capped lines and
/// logged with the plugin's name; the first stdout line is the handshake
/// (returned as a receiver), stderr's last lines are kept for errors.
fn forward_output(
    child: &mut tokio::process::Child,
    entry: &CatalogEntry,
    pid: u32,
) -> (oneshot::Receiver<OutputLine>, Output) {
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
    (line_rx, Output { tail, stderr_done })
}

/// Sets a flag when dropped (the end of an output reader task).
struct DoneOnDrop(watch::Sender<bool>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// The exit monitor's two ends.
struct Monitor {
    /// `Some(exit status)` once the process has exited.
    exit: watch::Receiver<Option<String>>,
    /// Asks the monitor to stop the process.
    stop: oneshot::Sender<()>,
}

/// Stage 7, the exit monitor: a task that owns the child, reports its
/// exit, and performs a stop (SIGTERM, SIGKILL after `grace`).
fn monitor(mut child: tokio::process::Child, grace: Duration) -> Monitor {
    let (exit_tx, exit) = watch::channel::<Option<String>>(None);
    let (stop, stop_rx) = oneshot::channel::<()>();
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
    Monitor { exit, stop }
}

/// Why a start failed after spawn.
enum Failure {
    /// This reason.
    Reason(String),
    /// The process exited before its handshake; the reason names its exit
    /// status (read after it settled), or `if_unknown`.
    ExitedEarly {
        /// What to say when no exit status is known.
        if_unknown: &'static str,
    },
}

/// Stage 8, the handshake: waits (at most the handshake timeout) for the
/// first stdout line or the process's exit, then checks the line.
async fn read_handshake(
    line: oneshot::Receiver<OutputLine>,
    exit: &watch::Receiver<Option<String>>,
    cfg: &LaunchConfig,
    socket_dir: &Path,
) -> Result<Handshake, Failure> {
    let mut exit = exit.clone();
    let process_exit = async move {
        let _ = exit.wait_for(|e| e.is_some()).await;
    };
    let line = tokio::select! {
        line = tokio::time::timeout(cfg.handshake_timeout, line) => match line {
            Ok(Ok(line)) => line,
            Ok(Err(_)) => return Err(Failure::ExitedEarly { if_unknown: "closed stdout" }),
            Err(_) => {
                return Err(Failure::Reason(format!(
                    "no handshake line within {:?}",
                    cfg.handshake_timeout
                )));
            }
        },
        () = process_exit => return Err(Failure::ExitedEarly { if_unknown: "" }),
    };
    if line.truncated {
        return Err(Failure::Reason(format!(
            "the handshake line is longer than {MAX_LINE} bytes (expected CORE-PROTOCOL|APP-PROTOCOL|unix|SOCKET-PATH|grpc|)"
        )));
    }
    if is_go_plugin(&line.text) {
        return parse_vault_handshake(&line.text, socket_dir)
            .map(|(socket, cert)| Handshake::Vault { socket, cert })
            .map_err(Failure::Reason);
    }
    parse_handshake(&line.text, &[proto::APP_PROTOCOL_VERSION], socket_dir)
        .map(Handshake::Lockbox)
        .map_err(Failure::Reason)
}

/// A checked handshake, by protocol.
enum Handshake {
    /// lockbox's protocol: the plugin's socket.
    Lockbox(PathBuf),
    /// Vault's: the socket and the plugin's certificate (DER).
    Vault { socket: PathBuf, cert: Vec<u8> },
}

/// Whether a handshake line is go-plugin's: app protocol version 5 (Vault's
/// v5), or a certificate in the sixth field (lockbox's line has none).
pub(super) fn is_go_plugin(line: &str) -> bool {
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    fields.get(1) == Some(&"5") || fields.get(5).is_some_and(|c| !c.is_empty())
}

/// Checks a go-plugin handshake line: the protocol crate's parser, then the
/// socket must lie directly in the plugin's private directory. Returns the
/// socket and the plugin's certificate (DER).
pub fn parse_vault_handshake(line: &str, socket_dir: &Path) -> Result<(PathBuf, Vec<u8>), String> {
    let parsed = HandshakeLine::parse(line)
        .map_err(|e| format!("invalid Vault plugin handshake line: {e}"))?;
    let socket = match parsed.endpoint {
        Endpoint::Unix(path) => path,
        Endpoint::Tcp(addr) => {
            return Err(format!(
                "the plugin listens on tcp {addr}; lockbox accepts only a unix socket in its private directory"
            ));
        }
    };
    if socket.parent() != Some(socket_dir) || socket.components().any(|c| c.as_os_str() == "..") {
        return Err(format!(
            "socket {} is outside the plugin's socket directory {}",
            socket.display(),
            socket_dir.display()
        ));
    }
    Ok((socket, parsed.server_cert_der))
}

/// Stage 9, connect: a gRPC channel over the plugin's socket, a health
/// check that must say serving, and `Info`, all within `timeout`.
async fn connect(
    socket: &Path,
    timeout: Duration,
) -> Result<(BackendClient<Channel>, v1::InfoReply), String> {
    match tokio::time::timeout(timeout, dial_and_check(socket)).await {
        Ok(connected) => connected,
        Err(_) => Err("connecting and health checking timed out".into()),
    }
}

/// The steps of [`connect`], without its timeout.
async fn dial_and_check(socket: &Path) -> Result<(BackendClient<Channel>, v1::InfoReply), String> {
    let path = socket.to_path_buf();
    let channel = tonic::transport::Endpoint::try_from("http://plugin.local")
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
    Ok((client, info))
}

/// A spawned process until its handshake completes: what a failed start
/// needs to stop it and report its last stderr lines.
struct Starting<'a> {
    name: &'a str,
    monitor: Monitor,
    output: Output,
    grace: Duration,
}

impl Starting<'_> {
    /// Stops the process, lets it settle, and returns the handshake error
    /// with its last stderr lines.
    async fn fail(self, failure: Failure) -> PluginError {
        let _ = self.monitor.stop.send(());
        settle(&self.monitor.exit, &self.output.stderr_done, self.grace).await;
        let reason = match failure {
            Failure::Reason(reason) => reason,
            Failure::ExitedEarly { if_unknown } => {
                let why = self
                    .monitor
                    .exit
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| if_unknown.into());
                format!("plugin exited before the handshake ({why})")
            }
        };
        let stderr = self
            .output
            .tail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        PluginError::Handshake {
            name: self.name.to_string(),
            reason,
            stderr,
        }
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

/// The socket directory of a launch: removed on drop unless kept.
struct DirGuard {
    path: PathBuf,
    keep: bool,
}

impl DirGuard {
    fn path(&self) -> &Path {
        &self.path
    }

    /// The launch succeeded: the process handle owns the directory now.
    fn keep(mut self) -> PathBuf {
        self.keep = true;
        std::mem::take(&mut self.path)
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn the_memfd_holds_exactly_the_hashed_bytes_and_is_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugin");
        // Not a multiple of the chunk size, several chunks long.
        let content: Vec<u8> = (0..(3 << 20) + 12_345u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        std::fs::write(&path, &content).unwrap();
        let (mut memfd, sha) = verified_copy(&path, "p").unwrap();
        assert_eq!(sha, hex::encode(Sha256::digest(&content)));
        let mut copied = Vec::new();
        memfd.rewind().unwrap();
        memfd.read_to_end(&mut copied).unwrap();
        assert!(copied == content, "the memfd differs from the file");
        assert!(memfd.write_all(b"x").is_err(), "the memfd must be sealed");
        assert!(memfd.set_len(1).is_err(), "the memfd must be sealed");

        let (_, empty) = {
            std::fs::write(&path, b"").unwrap();
            verified_copy(&path, "p").unwrap()
        };
        assert_eq!(empty, hex::encode(Sha256::digest(b"")));
        match verified_copy(&dir.path().join("missing"), "p") {
            Err(PluginError::Read { path, .. }) => assert!(path.ends_with("missing")),
            other => panic!("expected a read error, got {:?}", other.map(|(_, s)| s)),
        }
    }
}
