//! Shared test harness: an in-process server bound to port 0, a tiny Vault
//! API client, and helpers to run the `lockbox` binary (servers in
//! [`server`]).

#![allow(dead_code)]

pub mod postgres;
mod server;

pub use server::{
    ConfigServer, Spawned, file_config, inmem_config, lockbox_cli, signal, tls_config,
};

use lockbox_http::{self as http, ServerOptions};
use lockbox_plugin_host::{Node, NodeConfig};
use lockbox_storage::{InMemory, Physical};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A client for one server's API: its address, the root token (once
/// known) and a connection pool.
pub struct Api {
    pub addr: String,
    pub root_token: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(addr: &str) -> Self {
        Api {
            addr: addr.to_string(),
            root_token: String::new(),
            client: client(),
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        call(&self.client, &self.addr, method, path, token, body).await
    }

    /// Calls as root.
    pub async fn root(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call(method, path, Some(&self.root_token.clone()), body)
            .await
    }

    /// Creates a token as root from `body`; returns its ID.
    pub async fn create_token(&self, body: Value) -> String {
        let r = self.root("POST", "auth/token/create", Some(body)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["auth"]["client_token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// Creates a token with the given policies, returns its ID.
    pub async fn token_with(&self, policies: &[&str]) -> String {
        self.create_token(serde_json::json!({ "policies": policies }))
            .await
    }

    /// `sys/init` with `shares` and `threshold`, which must succeed; keeps
    /// the root token and returns it with the keys (base64).
    pub async fn init(&mut self, shares: u8, threshold: u8) -> (String, Vec<String>) {
        let init = self
            .call(
                "PUT",
                "sys/init",
                None,
                Some(serde_json::json!({"secret_shares": shares, "secret_threshold": threshold})),
            )
            .await;
        assert_eq!(init.status, 200, "{:?}", init.body);
        let keys = init.body["keys_base64"]
            .as_array()
            .expect("keys_base64")
            .iter()
            .map(|k| k.as_str().expect("key").to_string())
            .collect();
        self.root_token = init.body["root_token"]
            .as_str()
            .expect("root_token")
            .to_string();
        (self.root_token.clone(), keys)
    }

    /// Submits `keys` to `sys/unseal`; the server must then be unsealed.
    pub async fn unseal(&self, keys: &[String]) {
        let mut last = None;
        for key in keys {
            let body = serde_json::json!({ "key": key });
            last = Some(self.call("PUT", "sys/unseal", None, Some(body)).await);
        }
        let last = last.expect("at least one key");
        assert_eq!(last.body["sealed"], false, "{:?}", last.body);
    }

    /// [`Api::init`], then unseals with the first `threshold` keys.
    pub async fn init_unseal(&mut self, shares: u8, threshold: u8) -> (String, Vec<String>) {
        let (root, keys) = self.init(shares, threshold).await;
        self.unseal(&keys[..usize::from(threshold)]).await;
        (root, keys)
    }
}

/// A running in-process server; dereferences to its [`Api`].
pub struct TestServer {
    pub api: Api,
    /// The core with its plugin runtime (dereferences to the `Core`).
    pub core: Arc<Node>,
    pub unseal_keys: Vec<Vec<u8>>,
    pub physical: Arc<InMemory>,
    stop: Option<oneshot::Sender<()>>,
}

impl std::ops::Deref for TestServer {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl std::ops::DerefMut for TestServer {
    fn deref_mut(&mut self) -> &mut Api {
        &mut self.api
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response: status and parsed JSON (Null for empty bodies).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
}

impl Resp {
    /// Reads a response: JSON, or the text as a string.
    pub async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp { status, body }
    }

    pub fn errors(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn error_text(&self) -> String {
        self.errors().join("; ")
    }
}

impl TestServer {
    /// Initialized with one key, unsealed, `secret/` kv mounted, like dev mode.
    pub async fn dev() -> Self {
        Self::dev_with(ServerOptions::default()).await
    }

    pub async fn dev_with(options: ServerOptions) -> Self {
        Self::uninitialized_with(options).await.into_dev().await
    }

    /// Initializes with one key, unseals and mounts `secret/`.
    async fn into_dev(mut self) -> Self {
        let init = self.core.initialize(1, 1, None).await.expect("init");
        for k in &init.keys {
            self.core.submit_unseal_key(k).await.expect("unseal");
        }
        self.core
            .enable_mount("secret", "kv", "kv")
            .await
            .expect("mount");
        self.root_token = init.root_token;
        self.unseal_keys = init.keys.iter().map(|k| k.to_vec()).collect();
        self
    }

    /// A fresh, uninitialized server.
    pub async fn uninitialized() -> Self {
        Self::uninitialized_with(ServerOptions::default()).await
    }

    pub async fn uninitialized_with(options: ServerOptions) -> Self {
        Self::uninitialized_with_config(options, NodeConfig::default()).await
    }

    /// Dev-like server whose plugin directory is `dir`, with short timeouts.
    pub async fn dev_with_plugins(dir: &std::path::Path) -> Self {
        let config = NodeConfig {
            plugins: plugin_config(dir),
            ..NodeConfig::default()
        };
        Self::uninitialized_with_config(ServerOptions::default(), config)
            .await
            .into_dev()
            .await
    }

    pub async fn uninitialized_with_config(options: ServerOptions, config: NodeConfig) -> Self {
        let physical = Arc::new(InMemory::new());
        let core = Arc::new(Node::new(physical.clone() as Arc<dyn Physical>, config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = oneshot::channel();
        tokio::spawn(http::serve(listener, core.core().clone(), options, async {
            let _ = rx.await;
        }));
        TestServer {
            api: Api::new(&addr),
            core,
            unseal_keys: vec![],
            physical,
            stop: Some(tx),
        }
    }
}

/// A reqwest client (rustls with ring, installed once).
pub fn client() -> reqwest::Client {
    lockbox_http::tls::install_crypto_provider();
    reqwest::Client::new()
}

/// One API call.
pub async fn call(
    client: &reqwest::Client,
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method, format!("{addr}/v1/{path}"));
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    Resp::read(req.send().await.expect("send")).await
}

/// Sends a request with a Content-Length over a raw socket (no URL
/// normalization on the way) and returns the status and body.
pub async fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    let header = format!("Content-Length: {}\r\n", body.len());
    raw(addr, method, path, token, &header, body).await
}

pub async fn raw(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = addr.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "{method} /v1/{path} HTTP/1.1\r\nHost: {host}\r\nX-Vault-Token: {token}\r\n{headers}Connection: close\r\n\r\n{body}"
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = sock.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Path of the built `lockbox` binary.
pub fn lockbox_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lockbox")
}

/// Plugin host settings for tests: the given plugin directory, a private
/// runtime directory, and short timeouts so failure paths are quick.
pub fn plugin_config(dir: &std::path::Path) -> lockbox_plugin_host::HostConfig {
    use std::time::Duration;
    let defaults = lockbox_plugin_host::HostConfig::default();
    lockbox_plugin_host::HostConfig {
        plugin_directory: Some(dir.to_path_buf()),
        launch: lockbox_plugin_host::process::LaunchConfig {
            runtime_dir: dir.join(".run"),
            handshake_timeout: Duration::from_secs(3),
            stop_grace: Duration::from_secs(2),
            read_grants: Vec::new(),
        },
        request_timeout: Duration::from_secs(5),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..defaults
    }
}

/// Hex sha256 of a file.
pub fn sha256_file(path: &std::path::Path) -> String {
    lockbox_core::catalog::sha256_hex(&std::fs::read(path).expect("read plugin"))
}

/// Writes an executable script into `dir`.
pub fn write_script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Builds the example plugins (and the hostile test plugin of
/// `plugin_isolation`) once per test run and returns the directory
/// holding the binaries (`target/<profile>`).
pub fn example_plugins() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = std::process::Command::new(env!("CARGO"))
                .args([
                    "build",
                    "-q",
                    "-p",
                    "lockbox-plugin-mock",
                    "-p",
                    "lockbox-plugin-passgen",
                    "-p",
                    "lockbox-plugin-userpass",
                    "-p",
                    "lockbox-hostile-plugin",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build for the example plugins");
            assert!(status.success(), "building the example plugins failed");
            std::path::Path::new(lockbox_bin())
                .parent()
                .expect("target dir")
                .to_path_buf()
        })
        .clone()
}

/// Copies an example plugin into `dir` under `name`; returns its sha256.
pub fn install_plugin(dir: &std::path::Path, plugin: &str, name: &str) -> String {
    let src = example_plugins().join(format!("lockbox-plugin-{plugin}"));
    let dst = dir.join(name);
    std::fs::copy(&src, &dst).expect("copy plugin");
    sha256_file(&dst)
}

/// Process IDs whose parent is `pid` (from `/proc/*/status`, readable by
/// anyone even for non-dumpable processes).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{child}/status")) else {
            continue;
        };
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|p| p.trim().parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.split_whitespace().nth(2).is_none_or(|s| s != "Z"),
        Err(_) => false,
    }
}

/// Files below `dir` (recursively) whose bytes contain `needle`. `dir`
/// itself must be readable; entries that vanish while it is read (sockets,
/// temporary files of a running server) are skipped.
pub fn grep_dir(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    fn walk(dir: &std::path::Path, needle: &[u8], hits: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, needle, hits);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                hits.push(path.display().to_string());
            }
        }
    }
    if let Err(e) = std::fs::read_dir(dir) {
        panic!("cannot read {}: {e}", dir.display());
    }
    let mut hits = Vec::new();
    walk(dir, needle, &mut hits);
    hits
}

/// Builds (or finds cached) the Go plugins of `tests/go/` once per test
/// run with `tests/harness/install-go-plugins.sh` and returns the directory
/// holding them. Fails, never skips, when Go is missing.
pub fn go_plugins() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/harness/install-go-plugins.sh");
            let out = std::process::Command::new("bash")
                .arg(script)
                .output()
                .expect("run tests/harness/install-go-plugins.sh");
            assert!(
                out.status.success(),
                "building the Go test plugins failed (these tests need Go 1.26+ and the Go module proxy; \
                 run tests/harness/install-go-plugins.sh to see why): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            std::path::PathBuf::from(dir)
        })
        .clone()
}

/// Copies Go plugin `binary` (from [`go_plugins`]) into `dir` as `name`;
/// returns its sha256.
pub fn install_go_plugin(dir: &std::path::Path, binary: &str, name: &str) -> String {
    let dst = dir.join(name);
    std::fs::copy(go_plugins().join(binary), &dst).expect("copy Go plugin");
    sha256_file(&dst)
}
