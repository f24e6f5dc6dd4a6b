//! One `lockbox server -config FILE` process of the `ha` benchmark: its
//! config file (plain-HTTP listener on a free loopback port, a cluster port
//! for HA nodes, `unseal_keys_file`), its log files (one per start), its
//! start, `kill -9` and restart; and the calls the setup makes on a node
//! (`sys/init`, `sys/unseal`, `sys/leader`, `sys/seal-status`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use tokio::process::{Child, Command};

use crate::error::{Error, Result};
use crate::http::{Conn, Endpoint};
use crate::lockbox::{read_tail, spawn_logged};

/// The line config mode prints once its listeners are up.
const STARTED: &str = "lockbox server started";

/// What a node stores its data in.
pub(crate) enum Storage {
    /// `storage "file"` in the node's directory.
    File,
    /// `storage "postgresql"` at this URL, HA or not, with
    /// `max_idle_connections` when given (else lockbox's default).
    Postgres {
        url: String,
        ha: bool,
        max_idle: Option<usize>,
    },
}

/// A config-mode server the benchmark starts, kills and restarts.
pub(crate) struct Node {
    /// Its name in messages (`file`, `pg`, `ha-0`, ...).
    pub(crate) name: String,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`, its `api_addr`.
    pub(crate) url: String,
    child: Option<Child>,
    starts: usize,
    log_path: PathBuf,
}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| Error::RunCommand {
            command: "binding 127.0.0.1:0 to find a free port".into(),
            source,
        })
}

/// The config file of a node (kept short: defaults everywhere else).
fn config(storage: &Storage, dir: &Path, api: u16, cluster: Option<u16>) -> String {
    let storage = match storage {
        Storage::File => format!(
            "storage \"file\" {{\n  path = \"{}\"\n}}\n",
            dir.join("data").display()
        ),
        Storage::Postgres { url, ha, max_idle } => format!(
            "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n  ha_enabled = \"{ha}\"\n{}}}\n",
            max_idle.map_or_else(String::new, |n| format!(
                "  max_idle_connections = \"{n}\"\n"
            ))
        ),
    };
    let (cluster_listen, cluster_addr) = match cluster {
        Some(p) => (
            format!("  cluster_address = \"127.0.0.1:{p}\"\n"),
            format!("cluster_addr = \"https://127.0.0.1:{p}\"\n"),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "{storage}listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n{cluster_listen}  tls_disable = true\n}}\n\
         api_addr = \"http://127.0.0.1:{api}\"\n{cluster_addr}unseal_keys_file = \"{keys}\"\n",
        keys = dir.join("keys").display()
    )
}

impl Node {
    /// Writes the config of a new node into `work/name` (not started yet).
    /// HA nodes (PostgreSQL with `ha`) get a cluster port too.
    pub(crate) fn new(work: &Path, name: &str, storage: &Storage) -> Result<Self> {
        let dir = work.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| Error::file("creating", &dir, e))?;
        let api = free_port()?;
        let cluster = match storage {
            Storage::Postgres { ha: true, .. } => Some(free_port()?),
            _ => None,
        };
        let path = dir.join("lockbox.hcl");
        std::fs::write(&path, config(storage, &dir, api, cluster))
            .map_err(|e| Error::file("writing", &path, e))?;
        let keys = dir.join("keys");
        if !keys.exists() {
            std::fs::write(&keys, "").map_err(|e| Error::file("writing", &keys, e))?;
        }
        Ok(Node {
            name: name.to_string(),
            url: format!("http://127.0.0.1:{api}"),
            log_path: dir.join("lockbox.log"),
            dir,
            child: None,
            starts: 0,
        })
    }

    /// Starts the server and waits for its "started" line (its keys file, once
    /// written, unseals it).
    pub(crate) async fn start(&mut self, binary: &Path, timeout: Duration) -> Result<()> {
        self.starts += 1;
        self.log_path = self.dir.join(if self.starts == 1 {
            "lockbox.log".to_string()
        } else {
            format!("lockbox-start-{}.log", self.starts)
        });
        let mut cmd = Command::new(binary);
        cmd.arg("server")
            .arg("-config")
            .arg(self.dir.join("lockbox.hcl"))
            .current_dir(&self.dir)
            .env("HOME", &self.dir)
            .env_remove("LOCKBOX_LOG")
            .env_remove("LOCKBOX_LOG_LEVEL")
            .env_remove("LOCKBOX_PG_CONNECTION_URL")
            .env_remove("VAULT_PG_CONNECTION_URL");
        let child = spawn_logged(
            cmd,
            binary,
            &self.log_path,
            timeout,
            &format!("`{STARTED}`"),
            |line| line.contains(STARTED),
        )
        .await
        .map_err(|e| match e {
            Error::LockboxStartup { reason, output } => Error::LockboxStartup {
                reason: format!("node {}: {reason}", self.name),
                output,
            },
            other => other,
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// Writes the unseal key into the node's keys file (read at its next start).
    pub(crate) fn write_key(&self, key: &str) -> Result<()> {
        let path = self.dir.join("keys");
        std::fs::write(&path, key).map_err(|e| Error::file("writing", &path, e))
    }

    /// Its process id while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// `kill -9`: returns the instant just before the signal was sent, after
    /// the process is reaped.
    pub(crate) async fn kill(&mut self) -> Result<Instant> {
        let Some(child) = self.child.as_mut() else {
            return Err(Error::InvalidArgument(format!(
                "node {} is not running",
                self.name
            )));
        };
        let at = Instant::now();
        child.start_kill().map_err(|source| Error::RunCommand {
            command: format!("kill -9 of node {}", self.name),
            source,
        })?;
        let _ = child.wait().await;
        self.child = None;
        Ok(at)
    }

    /// Stops the server if it runs (SIGKILL; the benchmark keeps no data).
    pub(crate) async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// An [`Error::Node`]: `what` it did not do, with the end of its log.
    pub(crate) fn failure(&self, what: String) -> Error {
        Error::Node {
            node: self.name.clone(),
            what,
            log_tail: read_tail(&self.log_path),
        }
    }
}

/// `method path` with a JSON body on a new connection: status and parsed body
/// (`Null` when the body is empty or not JSON).
pub(crate) async fn call(
    ep: &Endpoint,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let (status, body) = Conn::connect(ep)
        .await?
        .send(ep, method, path, body)
        .await?;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Ok((status.as_u16(), json))
}

/// `GET path` until `ok` accepts the answer (connection errors are retried),
/// every 20 ms for at most `within`.
pub(crate) async fn wait_for(
    ep: &Endpoint,
    node: &Node,
    path: &str,
    within: Duration,
    what: &str,
    ok: impl Fn(u16, &serde_json::Value) -> bool,
) -> Result<serde_json::Value> {
    let deadline = Instant::now() + within;
    loop {
        let last = match call(ep, Method::GET, path, None).await {
            Ok((status, body)) if ok(status, &body) => return Ok(body),
            Ok((status, body)) => format!("HTTP {status}: {body}"),
            Err(e) => crate::chain(&e),
        };
        if Instant::now() >= deadline {
            return Err(node.failure(format!(
                "not {what} within {} s (last GET {path}: {last})",
                within.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Initializes a fresh store through `ep` (one key share); returns the root
/// token and the unseal key.
pub(crate) async fn init(ep: &Endpoint) -> Result<(String, String)> {
    let (status, body) = call(
        ep,
        Method::PUT,
        "/v1/sys/init",
        Some(serde_json::json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await?;
    let field = |p: &str| body.pointer(p).and_then(|v| v.as_str()).map(str::to_string);
    match (status, field("/root_token"), field("/keys_base64/0")) {
        (200, Some(root), Some(key)) => Ok((root, key)),
        _ => Err(Error::UnexpectedBody {
            what: "PUT /v1/sys/init".into(),
            reason: format!("HTTP {status}, expected root_token and keys_base64: {body}"),
        }),
    }
}

/// Unseals a node through `ep` with `key`.
pub(crate) async fn unseal(ep: &Endpoint, key: &str) -> Result<()> {
    let (status, body) = call(
        ep,
        Method::PUT,
        "/v1/sys/unseal",
        Some(serde_json::json!({ "key": key })),
    )
    .await?;
    if status == 200 && body["sealed"] == false {
        Ok(())
    } else {
        Err(Error::UnexpectedBody {
            what: "PUT /v1/sys/unseal".into(),
            reason: format!("HTTP {status}, still sealed: {body}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ha_config_has_the_cluster_listener_and_addresses() {
        let c = config(
            &Storage::Postgres {
                url: "postgresql://u:p@127.0.0.1:5/db?sslmode=disable".into(),
                ha: true,
                max_idle: Some(64),
            },
            Path::new("/w/ha-0"),
            8200,
            Some(8201),
        );
        for want in [
            "storage \"postgresql\" {",
            "connection_url = \"postgresql://u:p@127.0.0.1:5/db?sslmode=disable\"",
            "ha_enabled = \"true\"",
            "max_idle_connections = \"64\"",
            "address = \"127.0.0.1:8200\"",
            "cluster_address = \"127.0.0.1:8201\"",
            "tls_disable = true",
            "api_addr = \"http://127.0.0.1:8200\"",
            "cluster_addr = \"https://127.0.0.1:8201\"",
            "unseal_keys_file = \"/w/ha-0/keys\"",
        ] {
            assert!(c.contains(want), "{want} missing from:\n{c}");
        }
    }

    #[test]
    fn single_node_configs_have_no_cluster_settings() {
        let c = config(&Storage::File, Path::new("/w/file"), 8300, None);
        assert!(
            c.contains("storage \"file\" {\n  path = \"/w/file/data\""),
            "{c}"
        );
        assert!(!c.contains("cluster"), "{c}");
        let c = config(
            &Storage::Postgres {
                url: "postgresql://x".into(),
                ha: false,
                max_idle: None,
            },
            Path::new("/w/pg"),
            8400,
            None,
        );
        assert!(c.contains("ha_enabled = \"false\""), "{c}");
        assert!(!c.contains("max_idle_connections"), "{c}");
        assert!(!c.contains("cluster"), "{c}");
    }
}
