//! The baseline: Kubernetes Secrets read from a real kube-apiserver.
//!
//! Connection settings come from one of: explicit URL/token/CA flags, a kubeconfig
//! (via `kubectl config view --raw --flatten -o json`, so no YAML parser here), a
//! `kube-up.sh` env file, or a fresh harness started with `tests/harness/kube-up.sh`
//! into a temporary directory and stopped with `kube-down.sh` when [`Harness`] drops.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use hyper::Method;

use crate::error::{Error, Result};
use crate::http::{Conn, Endpoint};

/// How to reach a kube-apiserver as an admin.
pub struct KubeTarget {
    /// `https://host:port`.
    pub url: String,
    /// A bearer token allowed to create namespaces and Secrets.
    pub token: String,
    /// PEM of the CA that signed the serving certificate.
    pub ca_pem: Vec<u8>,
    /// Where these settings came from, for the report.
    pub source: String,
    /// kube-apiserver and etcd process ids when known (local harness), for CPU accounting.
    pub pids: Vec<u32>,
}

impl KubeTarget {
    /// Reads the variables `kube-up.sh` writes to `DIR/env`.
    pub fn from_env_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file("reading", path, e))?;
        let vars = parse_env(&text);
        let from = path.display().to_string();
        let get = |k: &str| {
            vars.get(k).cloned().ok_or_else(|| Error::KubeSettings {
                from: from.clone(),
                reason: format!("{k} is not set"),
            })
        };
        let ca_path = PathBuf::from(get("KUBE_CA")?);
        let ca_pem = std::fs::read(&ca_path).map_err(|e| Error::file("reading", &ca_path, e))?;
        Ok(KubeTarget {
            url: get("KUBE_APISERVER_URL")?,
            token: get("KUBE_ADMIN_TOKEN")?,
            ca_pem,
            source: format!("env file {from}"),
            pids: ["KUBE_APISERVER_PID", "ETCD_PID"]
                .iter()
                .filter_map(|k| vars.get(*k)?.parse().ok())
                .collect(),
        })
    }

    /// Reads the current context of a kubeconfig through `kubectl` (token auth only).
    pub fn from_kubeconfig(path: &Path, kubectl: &Path) -> Result<Self> {
        let from = format!("kubeconfig {}", path.display());
        let out = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(path)
            .args([
                "config",
                "view",
                "--raw",
                "--minify",
                "--flatten",
                "-o",
                "json",
            ])
            .output()
            .map_err(|source| Error::RunCommand {
                command: format!("{} config view", kubectl.display()),
                source,
            })?;
        if !out.status.success() {
            return Err(Error::KubeSettings {
                from,
                reason: format!(
                    "kubectl config view failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        let bad = |reason: &str| Error::KubeSettings {
            from: from.clone(),
            reason: reason.to_string(),
        };
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| bad(&format!("kubectl printed no JSON: {e}")))?;
        let cluster = json
            .pointer("/clusters/0/cluster")
            .ok_or_else(|| bad("no cluster in the current context"))?;
        let url = cluster
            .get("server")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("cluster has no server"))?
            .to_string();
        let ca_b64 = cluster
            .get("certificate-authority-data")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("cluster has no CA (insecure clusters are not benchmarked)"))?;
        let ca_pem = B64
            .decode(ca_b64)
            .map_err(|e| bad(&format!("certificate-authority-data is not base64: {e}")))?;
        let token = json
            .pointer("/users/0/user/token")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                bad("the current user has no bearer token (only token auth is supported)")
            })?
            .to_string();
        Ok(KubeTarget {
            url,
            token,
            ca_pem,
            source: from,
            pids: Vec::new(),
        })
    }
}

/// Parses `export K='V'` / `K=V` lines.
pub fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// A kube-apiserver + etcd started by `kube-up.sh`; stopped by `kube-down.sh` on drop.
pub struct Harness {
    down_script: PathBuf,
    /// The harness state directory.
    pub dir: PathBuf,
}

impl Harness {
    /// Runs `up_script DIR` (its watchdog owner is this process) and reads `DIR/env`.
    pub fn start(up_script: &Path, dir: &Path) -> Result<(Self, KubeTarget)> {
        let down_script = up_script.with_file_name("kube-down.sh");
        let out = Command::new("bash")
            .arg(up_script)
            .arg(dir)
            .env("KUBE_UP_OWNER_PID", std::process::id().to_string())
            .output()
            .map_err(|source| Error::RunCommand {
                command: format!("bash {}", up_script.display()),
                source,
            })?;
        let harness = Harness {
            down_script,
            dir: dir.to_path_buf(),
        };
        if !out.status.success() {
            return Err(Error::Harness {
                script: up_script.to_path_buf(),
                status: out.status.to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&out.stdout)
                ),
            });
        }
        let target = KubeTarget::from_env_file(&dir.join("env"))?;
        Ok((
            harness,
            KubeTarget {
                source: "tests/harness/kube-up.sh (fresh etcd + kube-apiserver on loopback)".into(),
                ..target
            },
        ))
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        match Command::new("bash")
            .arg(&self.down_script)
            .arg(&self.dir)
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "warning: {} {} failed: {}",
                self.down_script.display(),
                self.dir.display(),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("warning: running {}: {e}", self.down_script.display()),
        }
    }
}

/// The path of Secret `i` in `ns`.
pub fn secret_path(ns: &str, i: usize) -> String {
    format!("/api/v1/namespaces/{ns}/secrets/bench-{i}")
}

/// Creates namespace `ns` (an existing one is fine).
pub async fn create_namespace(ep: &Endpoint, conn: &mut Conn, ns: &str) -> Result<()> {
    let body =
        serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
    conn.expect(
        ep,
        Method::POST,
        "/api/v1/namespaces",
        Bytes::from(body.to_string()),
        &[201, 409],
    )
    .await?;
    Ok(())
}

/// Creates namespace `ns` and Secrets `bench-0..n` whose `data.value` is `value`,
/// then reads `bench-0` back and checks it.
pub async fn seed(ep: &Endpoint, ns: &str, n: usize, value: &str) -> Result<()> {
    let mut conn = Conn::connect(ep).await?;
    create_namespace(ep, &mut conn, ns).await?;
    let encoded = B64.encode(value);
    let workers = n.clamp(1, 8);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let ep = ep.clone();
        let ns = ns.to_string();
        let encoded = encoded.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&ep).await?;
            let path = format!("/api/v1/namespaces/{ns}/secrets");
            for i in (w..n).step_by(workers) {
                let body = serde_json::json!({
                    "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": { "name": format!("bench-{i}"), "namespace": ns },
                    "data": { "value": encoded },
                });
                conn.expect(
                    &ep,
                    Method::POST,
                    &path,
                    Bytes::from(body.to_string()),
                    &[201],
                )
                .await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| Error::Worker(e.to_string()))??;
    }
    let path = secret_path(ns, 0);
    let got = conn
        .expect(ep, Method::GET, &path, Bytes::new(), &[200])
        .await?;
    let bad = |reason: String| Error::UnexpectedBody {
        what: format!("GET {path}"),
        reason,
    };
    let json: serde_json::Value =
        serde_json::from_slice(&got).map_err(|e| bad(format!("not JSON: {e}")))?;
    let data = json
        .pointer("/data/value")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad("no string at data.value".into()))?;
    let decoded = B64
        .decode(data)
        .map_err(|e| bad(format!("data.value is not base64: {e}")))?;
    if decoded != value.as_bytes() {
        return Err(bad(format!(
            "data.value has {} bytes, wrote {}",
            decoded.len(),
            value.len()
        )));
    }
    Ok(())
}

/// Deletes the Secrets and the namespace (best effort: without a controller-manager
/// the namespace stays `Terminating`, which is why the Secrets go first).
pub async fn cleanup(ep: &Endpoint, ns: &str) -> Result<()> {
    let mut conn = Conn::connect(ep).await?;
    conn.expect(
        ep,
        Method::DELETE,
        &format!("/api/v1/namespaces/{ns}/secrets"),
        Bytes::new(),
        &[200, 404],
    )
    .await?;
    conn.expect(
        ep,
        Method::DELETE,
        &format!("/api/v1/namespaces/{ns}"),
        Bytes::new(),
        &[200, 202, 404],
    )
    .await?;
    Ok(())
}

/// The server's `gitVersion` from `GET /version`, if it answers.
pub async fn version(ep: &Endpoint) -> Option<String> {
    let mut conn = Conn::connect(ep).await.ok()?;
    let body = conn
        .expect(ep, Method::GET, "/version", Bytes::new(), &[200])
        .await
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&body).ok()?;
    json.get("gitVersion")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines() {
        let vars =
            parse_env("export KUBE_CA='/x/ca.crt'\nexport KUBE_ADMIN_TOKEN='abc'\nFOO=\"bar\"\n");
        assert_eq!(vars["KUBE_CA"], "/x/ca.crt");
        assert_eq!(vars["KUBE_ADMIN_TOKEN"], "abc");
        assert_eq!(vars["FOO"], "bar");
    }
}
