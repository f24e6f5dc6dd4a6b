//! The lockbox side: start `lockbox server --dev --dev-tls` as a child process,
//! learn its address and CA from what it prints, seed the kv keys, and the
//! one-shot Vault API calls (`put`, `post`, `get_json`) the setups make
//! (against lockbox or OpenBao).
//!
//! The child is killed when [`DevServer`] is dropped, and (Linux) also when this
//! process dies, through `PR_SET_PDEATHSIG` (strictly: when the runtime worker
//! thread that spawned it exits, which for a tokio worker is at process exit).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::error::{Error, Result};
use crate::http::{Conn, Endpoint};

/// A running lockbox dev server.
pub struct DevServer {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub api_addr: String,
    /// The CA file it printed as `VAULT_CACERT`.
    pub ca_path: PathBuf,
    /// Where its stdout and stderr go.
    pub log_path: PathBuf,
}

/// What the dev server printed that we need.
#[derive(Debug, Default, PartialEq)]
pub struct Banner {
    /// The value of the `Api Address:` line.
    pub api_addr: Option<String>,
    /// The path in the `export VAULT_CACERT='...'` line.
    pub ca_path: Option<String>,
}

impl Banner {
    /// Feeds one line of output.
    pub fn feed(&mut self, line: &str) {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Api Address:") {
            self.api_addr = Some(rest.trim().to_string());
        } else if let Some(pos) = t.find("VAULT_CACERT=") {
            let v = t[pos + "VAULT_CACERT=".len()..].trim();
            let v = v.trim_matches(|c| c == '\'' || c == '"');
            self.ca_path = Some(v.to_string());
        }
    }

    fn done(&self) -> bool {
        self.api_addr.is_some() && self.ca_path.is_some()
    }
}

/// The last 40 lines of a log file.
pub(crate) fn read_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Spawns `cmd` with stdout piped and stderr into `log_path` (killed on drop
/// and when this process dies), feeds each stdout line to `ready` until it
/// returns true (within `timeout`; `waiting_for` names what it waits for in
/// the error), then keeps copying stdout into the log. Shared by the dev
/// server and the config-mode nodes of the `ha` benchmark.
pub(crate) async fn spawn_logged(
    mut cmd: Command,
    binary: &Path,
    log_path: &Path,
    timeout: Duration,
    waiting_for: &str,
    mut ready: impl FnMut(&str) -> bool,
) -> Result<Child> {
    let log = std::fs::File::create(log_path).map_err(|e| Error::file("creating", log_path, e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error::file("opening", log_path, e))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_err))
        .kill_on_drop(true);
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|source| Error::SpawnLockbox {
        binary: binary.to_path_buf(),
        source,
    })?;
    let Some(stdout) = child.stdout.take() else {
        return Err(Error::LockboxStartup {
            reason: "no stdout pipe".into(),
            output: String::new(),
        });
    };
    let mut lines = BufReader::new(stdout).lines();
    let mut log = tokio::fs::File::from_std(log);
    let mut seen = String::new();
    let wait = async {
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => {
                    seen.push_str(&line);
                    seen.push('\n');
                    if ready(&line) {
                        return Ok(());
                    }
                }
                Ok(None) => {
                    return Err(format!(
                        "exited (stdout closed) before printing {waiting_for}"
                    ));
                }
                Err(e) => return Err(format!("reading its stdout: {e}")),
            }
        }
    };
    let outcome = tokio::time::timeout(timeout, wait).await;
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(reason)) => Some(reason),
        Err(_) => Some(format!(
            "did not print {waiting_for} within {}s",
            timeout.as_secs()
        )),
    };
    if let Some(mut reason) = failure {
        let _ = child.start_kill();
        if let Ok(Ok(Some(status))) = tokio::time::timeout(Duration::from_secs(2), async {
            child.wait().await.map(Some)
        })
        .await
        {
            reason.push_str(&format!(" (exit status: {status})"));
        }
        let stderr = read_tail(log_path);
        return Err(Error::LockboxStartup {
            reason,
            output: format!("{seen}{stderr}"),
        });
    }
    // Keep draining stdout into the log in large chunks, so the server never blocks
    // on a full pipe and per-line logging costs us little.
    let _ = log.write_all(seen.as_bytes()).await;
    let mut rest = lines.into_inner();
    tokio::spawn(async move {
        let _ = tokio::io::copy_buf(&mut rest, &mut log).await;
        let _ = log.flush().await;
    });
    Ok(child)
}

impl DevServer {
    /// Starts `binary server --dev --dev-tls --dev-root-token-id TOKEN --dev-listen-address 127.0.0.1:0`
    /// followed by `extra_args` (e.g. `--dev-plugin-dir DIR`), and waits up to `timeout`
    /// for its address and CA lines.
    pub async fn start(
        binary: &Path,
        root_token: &str,
        extra_args: &[OsString],
        work_dir: &Path,
        timeout: Duration,
    ) -> Result<Self> {
        let log_path = work_dir.join("lockbox.log");
        let mut cmd = Command::new(binary);
        cmd.args([
            "server",
            "--dev",
            "--dev-tls",
            "--dev-no-store-token",
            "--dev-root-token-id",
            root_token,
            "--dev-listen-address",
            "127.0.0.1:0",
        ])
        .args(extra_args)
        .current_dir(work_dir);
        let mut banner = Banner::default();
        let child = spawn_logged(
            cmd,
            binary,
            &log_path,
            timeout,
            "`Api Address:` and `VAULT_CACERT`",
            |line| {
                banner.feed(line);
                banner.done()
            },
        )
        .await?;
        let (Some(api_addr), Some(ca)) = (banner.api_addr, banner.ca_path) else {
            return Err(Error::LockboxStartup {
                reason: "address or CA line missing".into(),
                output: String::new(),
            });
        };
        let ca_path = work_dir.join(ca); // absolute paths stay as they are
        Ok(DevServer {
            child,
            api_addr,
            ca_path,
            log_path,
        })
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the server (SIGKILL: a dev server keeps nothing worth flushing).
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The JSON body a kv v1 write sends: `{"value": "<value>"}`.
pub fn write_body(value: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "value": value }).to_string())
}

/// The path of key `i`.
pub fn key_path(i: usize) -> String {
    format!("/v1/secret/bench/key-{i}")
}

/// Writes keys `0..n` (expects 204 or 200), a few connections at a time, then reads
/// key 0 back and checks it holds `value`.
pub async fn seed(ep: &Endpoint, n: usize, value: &str) -> Result<()> {
    seed_paths(ep, n, value, key_path).await
}

/// Like [`seed`], for keys at `key_path(i)` (any mount whose reads answer
/// what was written in `data`, e.g. the mock plugin).
pub async fn seed_paths(
    ep: &Endpoint,
    n: usize,
    value: &str,
    key_path: fn(usize) -> String,
) -> Result<()> {
    seed_with(ep, n, value, key_path, KvLayout::V1).await
}

/// Like [`seed_paths`], for a kv version 2 mount: writes
/// `{"data":{"value":...}}` and reads `data.data.value` back.
pub async fn seed_paths_v2(
    ep: &Endpoint,
    n: usize,
    value: &str,
    key_path: fn(usize) -> String,
) -> Result<()> {
    seed_with(ep, n, value, key_path, KvLayout::V2).await
}

/// Where a kv mount keeps a key's value in what is written and read.
#[derive(Clone, Copy)]
enum KvLayout {
    /// `{"value": ...}`, read back at `data.value`.
    V1,
    /// `{"data": {"value": ...}}`, read back at `data.data.value`.
    V2,
}

async fn seed_with(
    ep: &Endpoint,
    n: usize,
    value: &str,
    key_path: fn(usize) -> String,
    layout: KvLayout,
) -> Result<()> {
    let (body, pointer, field, hint) = match layout {
        KvLayout::V1 => (write_body(value), "/data/value", "data.value", ""),
        KvLayout::V2 => (
            Bytes::from(serde_json::json!({ "data": { "value": value } }).to_string()),
            "/data/data/value",
            "data.data.value",
            " (is the mount kv version 2?)",
        ),
    };
    let workers = n.clamp(1, 8);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let ep = ep.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&ep).await?;
            for i in (w..n).step_by(workers) {
                conn.expect(&ep, Method::PUT, &key_path(i), body.clone(), &[204, 200])
                    .await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| Error::Worker(e.to_string()))??;
    }
    let path = key_path(0);
    let json = get_json(ep, &path).await?;
    match json.pointer(pointer).and_then(|v| v.as_str()) {
        Some(v) if v == value => Ok(()),
        Some(v) => Err(Error::UnexpectedBody {
            what: format!("GET {path}"),
            reason: format!("{field} has {} bytes, wrote {}{hint}", v.len(), value.len()),
        }),
        None => Err(Error::UnexpectedBody {
            what: format!("GET {path}"),
            reason: format!("no string at {field}{hint}"),
        }),
    }
}

/// `PUT path` with a JSON body on a new connection; expects 200 or 204.
pub async fn put(ep: &Endpoint, path: &str, body: serde_json::Value) -> Result<()> {
    send_json(ep, Method::PUT, path, body).await
}

/// `POST path` with a JSON body on a new connection; expects 200 or 204.
pub async fn post(ep: &Endpoint, path: &str, body: serde_json::Value) -> Result<()> {
    send_json(ep, Method::POST, path, body).await
}

async fn send_json(
    ep: &Endpoint,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> Result<()> {
    Conn::connect(ep)
        .await?
        .expect(ep, method, path, Bytes::from(body.to_string()), &[200, 204])
        .await
        .map(drop)
}

/// `GET path` on a new connection: the JSON body of a 200 answer.
pub async fn get_json(ep: &Endpoint, path: &str) -> Result<serde_json::Value> {
    let body = Conn::connect(ep)
        .await?
        .expect(ep, Method::GET, path, Bytes::new(), &[200])
        .await?;
    serde_json::from_slice(&body).map_err(|e| Error::UnexpectedBody {
        what: format!("GET {path}"),
        reason: format!("not JSON: {e}"),
    })
}

/// The server's version from `GET /v1/sys/health`, if it says.
pub async fn version(ep: &Endpoint) -> Option<String> {
    let mut conn = Conn::connect(ep).await.ok()?;
    let (_, body) = conn
        .send(ep, Method::GET, "/v1/sys/health", Bytes::new())
        .await
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    json.get("version")?.as_str().map(str::to_string)
}

/// Makes the child get SIGKILL when this process dies, so a benchmark that
/// is interrupted leaves no server behind.
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    // SAFETY: prctl is async-signal-safe; the closure touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_parses_vault_style_lines() {
        let mut b = Banner::default();
        for line in [
            "==> lockbox server configuration:",
            "             Api Address: https://127.0.0.1:41234",
            "    $ export VAULT_ADDR='https://127.0.0.1:41234'",
            "    $ export VAULT_CACERT='/tmp/lockbox-dev-x/ca.pem'",
        ] {
            b.feed(line);
        }
        assert_eq!(b.api_addr.as_deref(), Some("https://127.0.0.1:41234"));
        assert_eq!(b.ca_path.as_deref(), Some("/tmp/lockbox-dev-x/ca.pem"));
        assert!(b.done());
    }
}
