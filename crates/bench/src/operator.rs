//! `lockbox-bench operator`: what the Kubernetes operator costs, measured
//! against a fresh kube-apiserver + etcd and the real `lockbox operator run`:
//!
//! ```text
//!   lockbox-bench ──HTTPS POST/GET (bearer)──► kube-apiserver ─► etcd
//!        │                                          ▲ watch, status patches
//!        │                                          │
//!        └──HTTPS /v1/... (root token)──► lockbox operator run ──gRPC/UDS──► lockbox-plugin-mock ×N
//! ```
//!
//! 1. apply to serving: one `SecretsMount` at a time, from the POST until a
//!    write + read through the new mount succeeds;
//! 2. scale: many `SecretsMount`s at once, until all are `Ready=True`; then
//!    the number of plugin processes, the operator's memory, its reconcile
//!    counters, and a write + read through every mount.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::error::{Error, Result};
use crate::http::{self, Conn, Endpoint, snippet};
use crate::report::{self, Markers, ms};
use crate::{WORKSPACE, WorkDir, cpu, header, kube, lockbox, plugins, procfs, read_file};

/// The section of BENCHMARKS.md this benchmark owns.
pub const MARKERS: Markers = Markers {
    begin: "<!-- operator:begin -->",
    end: "<!-- operator:end -->",
};

/// The plugin's file name in the plugin directory; the host starts it with this argv[0].
const PLUGIN_FILE: &str = "lockbox-plugin-mock";
/// Version of every catalog entry.
const PLUGIN_VERSION: &str = "1.0.0";
/// The custom resources' API.
const API: &str = "/apis/lockbox.dev/v1alpha1";
/// Label on every object the benchmark creates (value: the phase).
const LABEL: &str = "lockbox-bench";
/// The operator's namespace (its Secrets and Lease).
const OPERATOR_NS: &str = "lockbox-bench-operator";
/// Namespace of the apply-to-serving mounts.
const LATENCY_NS: &str = "lbbench-latency";
/// Prefix of the scale namespaces.
const SCALE_NS: &str = "lbbench-scale-";
/// Root token Secret and key written by the operator.
const ROOT_TOKEN_SECRET: &str = "lockbox-root-token";
const ROOT_TOKEN_KEY: &str = "token";

const REPRODUCE: &str = "cargo build --release -p lockbox -p lockbox-bench -p lockbox-plugin-mock && target/release/lockbox-bench operator --write-markdown BENCHMARKS.md";

#[derive(Args)]
pub struct OperatorArgs {
    /// The lockbox binary to start as `operator run`
    /// [default: <workspace>/target/release/lockbox].
    #[arg(long)]
    lockbox_bin: Option<PathBuf>,
    /// The mock plugin binary, copied into the plugin directory as `lockbox-plugin-mock`
    /// [default: <workspace>/target/release/lockbox-plugin-mock].
    #[arg(long)]
    plugin_bin: Option<PathBuf>,
    /// The harness start script [default: <workspace>/tests/harness/kube-up.sh].
    #[arg(long)]
    kube_up_script: Option<PathBuf>,
    /// kubectl, used to apply the CRDs [default: ~/.cache/lockbox/bin/kubectl, else PATH].
    #[arg(long)]
    kubectl: Option<PathBuf>,

    /// Distinct plugins (catalog entries `mock-0`.. of the same binary).
    #[arg(long, default_value_t = 5)]
    plugins: usize,
    /// SecretsMounts created one at a time for the apply-to-serving latency.
    #[arg(long, default_value_t = 50)]
    mounts_latency: usize,
    /// SecretsMounts created at once for the scale run.
    #[arg(long, default_value_t = 500)]
    mounts_scale: usize,
    /// Namespaces the scale mounts are spread over.
    #[arg(long, default_value_t = 5)]
    scale_namespaces: usize,
    /// Concurrent connections creating the scale mounts.
    #[arg(long, default_value_t = 8)]
    create_concurrency: usize,
    /// Milliseconds between write+read attempts while waiting for a new mount to serve.
    #[arg(long, default_value_t = 10)]
    serve_poll_ms: u64,
    /// Milliseconds between lists of the scale mounts while waiting for Ready.
    #[arg(long, default_value_t = 500)]
    list_interval_ms: u64,
    /// Seconds one new mount may take to serve before the run fails.
    #[arg(long, default_value_t = 60.0)]
    serve_timeout: f64,
    /// Seconds the scale run may take to become Ready before it is reported as not done.
    #[arg(long, default_value_t = 300.0)]
    scale_timeout: f64,
    /// The operator's --resync-period (longer than the run, so resyncs do not mix in).
    #[arg(long, default_value = "5m")]
    resync_period: String,
    /// Seconds to wait for the operator to print its addresses and become leader.
    #[arg(long, default_value_t = 120)]
    operator_start_timeout: u64,

    /// Required apply-to-serving p50, in milliseconds.
    #[arg(long, default_value_t = 1000.0)]
    target_p50_ms: f64,
    /// Required time until all scale mounts are Ready, in seconds.
    #[arg(long, default_value_t = 60.0)]
    target_scale_s: f64,
    /// Required operator resident memory, in MB (10^6 bytes).
    #[arg(long, default_value_t = 150.0)]
    target_rss_mb: f64,

    /// Rewrite the operator section of this markdown file (e.g. BENCHMARKS.md);
    /// a missing section is inserted after the plugins one.
    #[arg(long)]
    write_markdown: Option<PathBuf>,
    /// Keep the temporary directory (operator log, harness state) after the run.
    #[arg(long)]
    keep_work_dir: bool,
}

// ---------------------------------------------------------------- pure helpers

/// Nearest-rank quantile of `v` (unsorted), `None` when empty.
fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    Some(s[rank - 1])
}

/// The time at which `frac` of `n` objects were Ready, from the sorted
/// first-seen-Ready times; `None` if fewer were.
fn time_to_fraction(ready_at_sorted: &[f64], n: usize, frac: f64) -> Option<f64> {
    let k = ((frac * n as f64).ceil() as usize).max(1);
    ready_at_sorted.get(k - 1).copied()
}

/// What `lockbox operator run` prints on stdout once it serves.
#[derive(Debug, Default, PartialEq)]
struct Banner {
    /// `api address: https://127.0.0.1:PORT`.
    api: Option<String>,
    /// `health address: 127.0.0.1:PORT`.
    health: Option<String>,
}

impl Banner {
    fn feed(&mut self, line: &str) {
        let t = line.trim();
        if let Some(a) = t.strip_prefix("api address:") {
            self.api = Some(a.trim().to_string());
        } else if let Some(h) = t.strip_prefix("health address:") {
            self.health = Some(h.trim().to_string());
        }
    }

    fn done(&self) -> bool {
        self.api.is_some() && self.health.is_some()
    }
}

/// Whether a custom resource has condition `Ready=True`.
fn is_ready(obj: &Value) -> bool {
    condition(obj, "Ready").is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

/// `namespace/name` (or `name`) of a listed object.
fn object_key(obj: &Value) -> String {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// The items of a list answer.
fn items(list: &Value) -> &[Value] {
    list.get("items")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// How many listed objects are not Ready, by their Ready reason (`(none)` without status).
fn not_ready_reasons(list: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for o in items(list).iter().filter(|o| !is_ready(o)) {
        let reason = condition(o, "Ready")
            .and_then(|c| c.get("reason"))
            .and_then(Value::as_str)
            .unwrap_or("(no status yet)");
        *out.entry(reason.to_string()).or_default() += 1;
    }
    out
}

/// One sample of a Prometheus text exposition: labels and value.
type MetricSample = (BTreeMap<String, String>, f64);

/// Every sample of metric `name` in a Prometheus text exposition.
fn metric_samples(text: &str, name: &str) -> Vec<MetricSample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
            let Some((l, v)) = r.rsplit_once('}') else {
                continue;
            };
            (parse_labels(l), v)
        } else if rest.starts_with(' ') {
            (BTreeMap::new(), rest)
        } else {
            continue; // a longer name with the same start
        };
        if let Ok(v) = value.trim().parse::<f64>() {
            out.push((labels, v));
        }
    }
    out
}

/// `a="x",b="y\"z"` → {a: x, b: y"z}.
fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, o)) => value.push(o),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                o => value.push(o),
            }
        }
        out.insert(key.trim_start_matches(',').trim().to_string(), value);
        rest = &after[end..];
    }
    out
}

/// Sum of the samples of `name` whose labels include all of `filter`.
fn metric_sum(text: &str, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = metric_samples(text, name)
        .into_iter()
        .filter(|(l, _)| {
            filter
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn catalog_entry(name: &str, sha: &str) -> Value {
    json!({
        "apiVersion": "lockbox.dev/v1alpha1",
        "kind": "PluginCatalogEntry",
        "metadata": { "name": name, "labels": { LABEL: "catalog" } },
        "spec": {
            "type": "secret",
            "version": PLUGIN_VERSION,
            "binary": { "path": PLUGIN_FILE, "sha256": sha },
        },
    })
}

fn secrets_mount(ns: &str, name: &str, plugin: &str, phase: &str) -> Value {
    json!({
        "apiVersion": "lockbox.dev/v1alpha1",
        "kind": "SecretsMount",
        "metadata": { "name": name, "namespace": ns, "labels": { LABEL: phase } },
        "spec": { "plugin": plugin },
    })
}

fn plugin_name(i: usize) -> String {
    format!("mock-{i}")
}

fn parse_json(body: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| Error::UnexpectedBody {
        what: what.to_string(),
        reason: format!("not JSON: {e}"),
    })
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------- the operator process

/// A running `lockbox operator run`, killed on drop.
struct OperatorProc {
    child: Child,
    pid: u32,
    /// `https://127.0.0.1:PORT`.
    api: String,
    /// The health server (/metrics), plain HTTP.
    health: SocketAddr,
    log_path: PathBuf,
}

struct OperatorCmd<'a> {
    bin: &'a Path,
    kubeconfig: &'a Path,
    data_dir: &'a Path,
    plugin_dir: &'a Path,
    cert: &'a Path,
    key: &'a Path,
    resync: &'a str,
    log_path: PathBuf,
    timeout: Duration,
}

impl OperatorProc {
    async fn start(c: OperatorCmd<'_>) -> Result<Self> {
        let log = std::fs::File::create(&c.log_path)
            .map_err(|e| Error::file("creating", &c.log_path, e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::file("opening", &c.log_path, e))?;
        let mut cmd = Command::new(c.bin);
        cmd.args(["operator", "run", "--data-dir"])
            .arg(c.data_dir)
            .arg("--plugin-directory")
            .arg(c.plugin_dir)
            .args([
                "--api-address",
                "127.0.0.1:0",
                "--health-address",
                "127.0.0.1:0",
                "--namespace",
                OPERATOR_NS,
                "--resync-period",
                c.resync,
                "--log-format",
                "standard",
                "--tls-cert-file",
            ])
            .arg(c.cert)
            .arg("--tls-key-file")
            .arg(c.key)
            .env("KUBECONFIG", c.kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true);
        crate::lockbox::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| Error::SpawnLockbox {
            binary: c.bin.to_path_buf(),
            source,
        })?;
        let fail = |what: String, seen: &str| Error::Operator {
            what,
            log_path: c.log_path.display().to_string(),
            log_tail: format!("{seen}{}", tail(&c.log_path, 40)),
        };
        let (Some(pid), Some(stdout)) = (child.id(), child.stdout.take()) else {
            return Err(fail("exited at once (no pid or stdout)".into(), ""));
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Banner::default();
        let mut seen = String::new();
        let waited = tokio::time::timeout(c.timeout, async {
            while !banner.done() {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        seen.push_str(&line);
                        seen.push('\n');
                        banner.feed(&line);
                    }
                    Ok(None) => return Err("exited before printing its addresses".to_string()),
                    Err(e) => return Err(format!("reading its stdout: {e}")),
                }
            }
            Ok(())
        })
        .await;
        let problem = match waited {
            Ok(Ok(())) => None,
            Ok(Err(reason)) => Some(reason),
            Err(_) => Some(format!(
                "did not print `api address:` and `health address:` within {} s",
                c.timeout.as_secs()
            )),
        };
        if let Some(mut reason) = problem {
            let _ = child.start_kill();
            if let Ok(Ok(status)) = tokio::time::timeout(Duration::from_secs(2), child.wait()).await
            {
                let _ = write!(reason, " (exit status: {status})");
            }
            return Err(fail(reason, &seen));
        }
        // The rest of stdout goes to the log, so the operator never blocks on a full pipe.
        let mut log = tokio::fs::File::from_std(log);
        let _ = log.write_all(seen.as_bytes()).await;
        let mut rest = lines.into_inner();
        tokio::spawn(async move {
            let _ = tokio::io::copy_buf(&mut rest, &mut log).await;
        });
        let api = banner.api.unwrap_or_default();
        let health_text = banner.health.unwrap_or_default();
        let health: SocketAddr = health_text.parse().map_err(|_| {
            fail(
                format!("health address {health_text:?} is not host:port"),
                "",
            )
        })?;
        if !api.starts_with("https://") {
            return Err(fail(
                format!("api address {api:?} is not https:// (TLS flags ignored?)"),
                "",
            ));
        }
        Ok(OperatorProc {
            child,
            pid,
            api,
            health,
            log_path: c.log_path,
        })
    }

    /// An [`Error::Operator`] with the end of the log.
    fn error(&self, what: String) -> Error {
        Error::Operator {
            what,
            log_path: self.log_path.display().to_string(),
            log_tail: tail(&self.log_path, 40),
        }
    }

    /// Fails if the operator has exited.
    fn alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.error(format!("exited during the run ({status})"))),
            Err(e) => Err(self.error(format!("cannot check the process: {e}"))),
        }
    }

    /// The plugin processes it runs.
    fn plugin_pids(&self) -> Vec<u32> {
        procfs::children_named(self.pid, PLUGIN_FILE)
    }

    /// SIGTERM (graceful: controllers, Lease, HTTP, seal), SIGKILL after 20 s.
    async fn stop(mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) has no memory-safety preconditions; the pid is our
            // child, which has not been reaped (try_wait just said it runs).
            unsafe {
                libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
            }
            if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
                .await
                .is_err()
            {
                eprintln!("warning: the operator did not stop within 20 s of SIGTERM; killing it");
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
            }
        }
    }
}

/// `GET path` over plain HTTP/1.1 (the operator's health server): status and body.
async fn plain_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    use http_body_util::{BodyExt, Empty};
    let what = format!("GET http://{addr}{path}");
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| Error::Connect { addr, source })?;
    let http = |source| Error::Http {
        what: what.clone(),
        source,
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(http)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::new())
        .map_err(|_| Error::BuildRequest(what.clone()))?;
    let resp = sender.send_request(req).await.map_err(http)?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(http)?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn metrics(op: &OperatorProc) -> Option<String> {
    match plain_get(op.health, "/metrics").await {
        Ok((200, body)) => Some(body),
        _ => None,
    }
}

// ---------------------------------------------------------------- memory, CPU and machine load

/// Resident memory of a process from `/proc/PID/status`, KiB.
#[derive(Default, Clone, Copy)]
struct Mem {
    rss: Option<u64>,
    /// Heap, stacks and other private memory (`RssAnon`).
    anon: Option<u64>,
    /// Pages of mapped files, mostly the executable's code (`RssFile`).
    file: Option<u64>,
    /// Peak RSS over the process's life (`VmHWM`).
    hwm: Option<u64>,
}

impl Mem {
    fn of(pid: u32) -> Self {
        Mem {
            rss: procfs::status_kib(pid, "VmRSS"),
            anon: procfs::status_kib(pid, "RssAnon"),
            file: procfs::status_kib(pid, "RssFile"),
            hwm: procfs::status_kib(pid, "VmHWM"),
        }
    }

    /// `147.5 MB (anonymous 30.1, file-backed 117.4)`.
    fn split(&self) -> String {
        format!(
            "{} MB (anonymous {}, file-backed {})",
            mb(self.rss),
            mb(self.anon),
            mb(self.file)
        )
    }
}

/// CPU seconds so far of the operator (with its plugin processes), kube-apiserver +
/// etcd, this process, and the whole machine.
struct CpuSnap {
    at: Instant,
    operator: HashMap<u32, f64>,
    kube: Option<f64>,
    bench: Option<f64>,
    busy: Option<f64>,
}

/// Average cores used over a phase.
#[derive(Default, Clone, Copy)]
struct CpuUse {
    /// Length of the phase.
    wall_s: f64,
    operator: Option<f64>,
    kube: Option<f64>,
    bench: Option<f64>,
    /// Busy time of everything else (other programs, kernel work not charged to these).
    other: Option<f64>,
}

impl CpuSnap {
    fn take(op: &OperatorProc, kube_pids: &[u32]) -> Self {
        let operator = std::iter::once(op.pid)
            .chain(op.plugin_pids())
            .filter_map(|p| Some((p, cpu::process_seconds(p)?)))
            .collect();
        CpuSnap {
            at: Instant::now(),
            operator,
            kube: (!kube_pids.is_empty())
                .then(|| cpu::total_seconds(kube_pids))
                .flatten(),
            bench: cpu::process_seconds(std::process::id()),
            busy: procfs::machine_busy_seconds(),
        }
    }

    /// Cores used from `self` to `later`; a process started in between counts from its start.
    fn until(&self, later: &CpuSnap) -> CpuUse {
        let wall = (later.at - self.at).as_secs_f64();
        if wall <= 0.0 {
            return CpuUse::default();
        }
        let per = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / wall);
        let operator = (!later.operator.is_empty()).then(|| {
            later
                .operator
                .iter()
                .map(|(pid, s)| s - self.operator.get(pid).copied().unwrap_or(0.0))
                .sum::<f64>()
                / wall
        });
        let kube = per(self.kube, later.kube);
        let bench = per(self.bench, later.bench);
        let other = per(self.busy, later.busy).map(|all| {
            (all - operator.unwrap_or(0.0) - kube.unwrap_or(0.0) - bench.unwrap_or(0.0)).max(0.0)
        });
        CpuUse {
            wall_s: wall,
            operator,
            kube,
            bench,
            other,
        }
    }
}

// ---------------------------------------------------------------- setup

/// Everything the phases need.
struct World {
    kube: Endpoint,
    kube_pids: Vec<u32>,
    lockbox: Endpoint,
    op: OperatorProc,
}

impl World {
    async fn kube_conn(&self) -> Result<Conn> {
        Conn::connect(&self.kube).await
    }

    /// A list of objects at `path` (a collection URL with query).
    async fn list(&self, conn: &mut Conn, path: &str) -> Result<Value> {
        let body = conn
            .expect(&self.kube, Method::GET, path, Bytes::new(), &[200])
            .await?;
        parse_json(&body, &format!("GET {path}"))
    }

    /// Waits until the `n` objects listed at `path` are all Ready; returns the seconds waited.
    async fn wait_all_ready(
        &mut self,
        path: &str,
        n: usize,
        timeout: Duration,
        what: &str,
    ) -> Result<f64> {
        let start = Instant::now();
        let mut conn = self.kube_conn().await?;
        loop {
            self.op.alive()?;
            let list = self.list(&mut conn, path).await?;
            let ready = items(&list).iter().filter(|o| is_ready(o)).count();
            if ready >= n {
                return Ok(start.elapsed().as_secs_f64());
            }
            if start.elapsed() > timeout {
                return Err(self.op.error(format!(
                    "{what}: {ready} of {n} Ready after {} s; not Ready by reason: {:?}",
                    timeout.as_secs(),
                    not_ready_reasons(&list)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn kubectl(kubectl: &Path, kubeconfig: &Path, args: &[&str]) -> Result<()> {
    let command = format!("{} {}", kubectl.display(), args.join(" "));
    let out = std::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::RunCommand {
            command: command.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::CommandFailed {
            command,
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ),
        })
    }
}

async fn root_token(ep: &Endpoint, conn: &mut Conn) -> Result<String> {
    let path = format!("/api/v1/namespaces/{OPERATOR_NS}/secrets/{ROOT_TOKEN_SECRET}");
    let body = conn
        .expect(ep, Method::GET, &path, Bytes::new(), &[200])
        .await?;
    let json = parse_json(&body, &format!("GET {path}"))?;
    let bad = |reason: &str| Error::UnexpectedBody {
        what: format!("GET {path}"),
        reason: reason.to_string(),
    };
    let b64 = json
        .pointer(&format!("/data/{ROOT_TOKEN_KEY}"))
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no data.token"))?;
    let raw = B64
        .decode(b64)
        .map_err(|_| bad("data.token is not base64"))?;
    String::from_utf8(raw).map_err(|_| bad("data.token is not UTF-8"))
}

// ---------------------------------------------------------------- 1. apply to serving

struct ServeSample {
    /// POST of the object until the first successful write + read, ms.
    total_ms: f64,
    /// The POST round trip alone, ms.
    post_ms: f64,
    /// Whether a plugin process started for this mount (first mount of its plugin).
    new_process: bool,
}

/// One write + read through the mount; true when both succeed and the read answers
/// what was written. A broken connection is dropped and reopened on the next try.
async fn write_read(conn: &mut Option<Conn>, ep: &Endpoint, path: &str, value: &str) -> bool {
    if conn.as_ref().is_none_or(Conn::is_closed) {
        *conn = Conn::connect(ep).await.ok();
    }
    let Some(c) = conn.as_mut() else {
        return false;
    };
    let body = Bytes::from(json!({ "v": value }).to_string());
    match c.send(ep, Method::PUT, path, body).await {
        Ok((s, _)) if s.is_success() => {}
        Ok(_) => return false,
        Err(_) => {
            *conn = None;
            return false;
        }
    }
    match c.send(ep, Method::GET, path, Bytes::new()).await {
        Ok((s, body)) if s.as_u16() == 200 => serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|j| {
                j.pointer("/data/v")
                    .and_then(Value::as_str)
                    .map(|v| v == value)
            })
            .unwrap_or(false),
        Ok(_) => false,
        Err(_) => {
            *conn = None;
            false
        }
    }
}

async fn apply_to_serving(w: &mut World, args: &OperatorArgs) -> Result<Vec<ServeSample>> {
    let mut kconn = w.kube_conn().await?;
    let mut lconn = Conn::connect(&w.lockbox).await.ok();
    let poll = Duration::from_millis(args.serve_poll_ms);
    let timeout = Duration::from_secs_f64(args.serve_timeout);
    let collection = format!("{API}/namespaces/{LATENCY_NS}/secretsmounts");
    let mut out = Vec::with_capacity(args.mounts_latency);
    for i in 0..args.mounts_latency {
        let name = format!("lat-{i}");
        let plugin = plugin_name(i % args.plugins);
        let body = Bytes::from(secrets_mount(LATENCY_NS, &name, &plugin, "latency").to_string());
        let probe = format!("/v1/{LATENCY_NS}/{name}/probe");
        let value = format!("v{i}");
        let processes_before = w.op.plugin_pids().len();
        let start = Instant::now();
        kconn
            .expect(&w.kube, Method::POST, &collection, body, &[201])
            .await?;
        let post_ms = start.elapsed().as_secs_f64() * 1000.0;
        loop {
            if write_read(&mut lconn, &w.lockbox, &probe, &value).await {
                break;
            }
            w.op.alive()?;
            if start.elapsed() > timeout {
                let status = kconn
                    .send(
                        &w.kube,
                        Method::GET,
                        &format!("{collection}/{name}"),
                        Bytes::new(),
                    )
                    .await
                    .map(|(_, b)| snippet(&b))
                    .unwrap_or_default();
                return Err(w.op.error(format!(
                    "SecretsMount {LATENCY_NS}/{name} did not serve a write + read within {} s; \
                     the object: {status}",
                    args.serve_timeout
                )));
            }
            tokio::time::sleep(poll).await;
        }
        let total_ms = start.elapsed().as_secs_f64() * 1000.0;
        let new_process = w.op.plugin_pids().len() > processes_before;
        eprintln!(
            "  {name} ({plugin}): serving after {} ms (POST {} ms){}",
            ms(total_ms),
            ms(post_ms),
            if new_process {
                ", started its plugin process"
            } else {
                ""
            }
        );
        out.push(ServeSample {
            total_ms,
            post_ms,
            new_process,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- 2. scale

struct ScaleRun {
    n: usize,
    /// Seconds until every POST was answered 201.
    created_s: f64,
    /// Seconds until every mount was seen Ready, if it happened before the timeout.
    all_ready_s: Option<f64>,
    /// First-seen-Ready seconds of each mount, sorted.
    ready_at: Vec<f64>,
    /// Not Ready at the end, by Ready reason (empty when all were Ready).
    not_ready: BTreeMap<String, usize>,
    /// Lists made while waiting.
    lists: usize,
    /// Mean seconds one list took.
    list_s: f64,
    /// Plugin processes (children with argv[0] `lockbox-plugin-mock`) once all were Ready.
    processes: usize,
    /// The operator's `lockbox_plugin_processes` gauge, summed.
    metric_processes: Option<f64>,
    /// Operator VmRSS before the run (KiB), and its memory at the end.
    rss_before_kib: Option<u64>,
    mem: Mem,
    /// Highest operator VmRSS sampled during the run (KiB).
    rss_peak_sampled_kib: Option<u64>,
    /// Sum of the plugin processes' VmRSS (KiB).
    plugin_rss_kib: Option<u64>,
    /// SecretsMount reconciles during the run, their total seconds, errors by reason.
    reconciles: Option<f64>,
    reconcile_s: Option<f64>,
    errors: Vec<(String, f64)>,
    /// Mounts that answered a write + read afterwards, and the first failures.
    served: usize,
    serve_failures: Vec<String>,
    /// kube-apiserver requests for lockbox.dev objects and events during the phase.
    kube_requests: Option<Vec<RequestRow>>,
    cpu: CpuUse,
}

/// One line of the API server request table: verb, resource (`/subresource`),
/// requests, mean duration in seconds.
type RequestRow = (String, String, f64, Option<f64>);

/// kube-apiserver requests for `lockbox.dev` objects and events (WATCH excluded:
/// its duration is the watch's life), from the server's `/metrics`:
/// (verb, resource[/subresource]) → (requests, duration sum, duration count).
fn apiserver_requests(text: &str) -> BTreeMap<(String, String), [f64; 3]> {
    let key = |l: &BTreeMap<String, String>| -> Option<(String, String)> {
        let (group, resource, verb) = (l.get("group")?, l.get("resource")?, l.get("verb")?);
        if !(group == "lockbox.dev" || resource == "events") || verb == "WATCH" {
            return None;
        }
        let sub = l.get("subresource").map_or("", String::as_str);
        let resource = if sub.is_empty() {
            resource.clone()
        } else {
            format!("{resource}/{sub}")
        };
        Some((verb.clone(), resource))
    };
    let mut out: BTreeMap<(String, String), [f64; 3]> = BTreeMap::new();
    for (i, name) in [
        "apiserver_request_total",
        "apiserver_request_duration_seconds_sum",
        "apiserver_request_duration_seconds_count",
    ]
    .into_iter()
    .enumerate()
    {
        for (l, v) in metric_samples(text, name) {
            if let Some(k) = key(&l) {
                out.entry(k).or_default()[i] += v;
            }
        }
    }
    out
}

/// The requests made between two `/metrics` texts, most frequent first.
fn request_rows(before: &str, after: &str) -> Vec<RequestRow> {
    let before = apiserver_requests(before);
    let mut rows: Vec<RequestRow> = apiserver_requests(after)
        .into_iter()
        .filter_map(|(k, a)| {
            let b = before.get(&k).copied().unwrap_or_default();
            let (n, sum, count) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
            (n > 0.0).then(|| (k.0, k.1, n, (count > 0.0).then(|| sum / count)))
        })
        .collect();
    rows.sort_by(|x, y| {
        y.2.total_cmp(&x.2)
            .then_with(|| (&x.0, &x.1).cmp(&(&y.0, &y.1)))
    });
    rows
}

async fn kube_metrics(ep: &Endpoint, conn: &mut Conn) -> Option<String> {
    let body = conn
        .expect(ep, Method::GET, "/metrics", Bytes::new(), &[200])
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

fn reconcile_errors(text: &str) -> BTreeMap<String, f64> {
    metric_samples(text, "lockbox_operator_reconcile_errors_total")
        .into_iter()
        .filter(|(l, _)| l.get("kind").map(String::as_str) == Some("SecretsMount"))
        .map(|(l, v)| (l.get("reason").cloned().unwrap_or_default(), v))
        .collect()
}

async fn scale(w: &mut World, args: &OperatorArgs) -> Result<ScaleRun> {
    let n = args.mounts_scale;
    let metrics_before = metrics(&w.op).await.unwrap_or_default();
    let kube_before = {
        let mut c = w.kube_conn().await?;
        kube_metrics(&w.kube, &mut c).await
    };
    let rss_before_kib = procfs::status_kib(w.op.pid, "VmRSS");
    let cpu_before = CpuSnap::take(&w.op, &w.kube_pids);
    let start = Instant::now();

    // Creators: `create_concurrency` connections, each POSTing its share.
    let workers = args.create_concurrency.clamp(1, n.max(1));
    let mut creators = Vec::new();
    for k in 0..workers {
        let ep = w.kube.clone();
        let (plugins, namespaces) = (args.plugins, args.scale_namespaces);
        creators.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&ep).await?;
            for i in (k..n).step_by(workers) {
                let ns = format!("{SCALE_NS}{}", i % namespaces);
                let body = secrets_mount(
                    &ns,
                    &format!("scale-{i}"),
                    &plugin_name(i % plugins),
                    "scale",
                );
                conn.expect(
                    &ep,
                    Method::POST,
                    &format!("{API}/namespaces/{ns}/secretsmounts"),
                    Bytes::from(body.to_string()),
                    &[201],
                )
                .await?;
            }
            Ok::<_, Error>(start.elapsed().as_secs_f64())
        }));
    }

    let list_path = format!("{API}/secretsmounts?labelSelector={LABEL}%3Dscale");
    let interval = Duration::from_millis(args.list_interval_ms);
    let timeout = Duration::from_secs_f64(args.scale_timeout);
    let mut conn = w.kube_conn().await?;
    let mut first_ready: HashMap<String, f64> = HashMap::new();
    let mut created_s = None;
    let (mut lists, mut list_total) = (0usize, 0.0f64);
    let mut rss_peak = rss_before_kib;
    let mut not_ready = BTreeMap::new();
    let mut all_ready_s = None;
    loop {
        w.op.alive()?;
        if created_s.is_none() && creators.iter().all(|c| c.is_finished()) {
            let mut last = 0.0f64;
            for c in creators.drain(..) {
                let t = c.await.map_err(|e| Error::Worker(e.to_string()))??;
                last = last.max(t);
            }
            created_s = Some(last);
            eprintln!("  all {n} SecretsMounts created after {last:.2} s");
        }
        let t_list = Instant::now();
        let list = w.list(&mut conn, &list_path).await?;
        let now = start.elapsed().as_secs_f64();
        lists += 1;
        list_total += t_list.elapsed().as_secs_f64();
        for o in items(&list).iter().filter(|o| is_ready(o)) {
            first_ready.entry(object_key(o)).or_insert(now);
        }
        if let Some(r) = procfs::status_kib(w.op.pid, "VmRSS") {
            rss_peak = Some(rss_peak.map_or(r, |p| p.max(r)));
        }
        if created_s.is_some() && first_ready.len() >= n {
            all_ready_s = Some(now);
            break;
        }
        if start.elapsed() > timeout {
            not_ready = not_ready_reasons(&list);
            let missing = n.saturating_sub(items(&list).len());
            if missing > 0 {
                not_ready.insert("(not created)".into(), missing);
            }
            eprintln!(
                "  timeout: {} of {n} Ready after {:.0} s; not Ready: {not_ready:?}",
                first_ready.len(),
                timeout.as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(interval).await;
    }
    let cpu_after = CpuSnap::take(&w.op, &w.kube_pids);
    let processes = w.op.plugin_pids();
    let mem = Mem::of(w.op.pid);
    let plugin_rss_kib: Option<u64> = processes
        .iter()
        .map(|&p| procfs::status_kib(p, "VmRSS"))
        .sum();
    let metrics_after = metrics(&w.op).await.unwrap_or_default();
    let kube_requests = match (&kube_before, kube_metrics(&w.kube, &mut conn).await) {
        (Some(b), Some(a)) => Some(request_rows(b, &a)),
        _ => None,
    };
    let delta = |name: &str| {
        let f = [("kind", "SecretsMount")];
        Some(
            metric_sum(&metrics_after, name, &f)?
                - metric_sum(&metrics_before, name, &f).unwrap_or(0.0),
        )
    };
    let reconciles = delta("lockbox_operator_reconciles_total");
    let reconcile_s = delta("lockbox_operator_reconcile_duration_seconds_sum");
    let errors_before = reconcile_errors(&metrics_before);
    let errors: Vec<(String, f64)> = reconcile_errors(&metrics_after)
        .into_iter()
        .map(|(r, v)| {
            let d = v - errors_before.get(&r).copied().unwrap_or(0.0);
            (r, d)
        })
        .filter(|(_, d)| *d > 0.0)
        .collect();
    let metric_processes = metric_sum(&metrics_after, "lockbox_plugin_processes", &[]);
    if created_s.is_none() {
        // Timed out while still creating: wait for the creators so errors surface.
        let mut last = 0.0f64;
        for c in creators.drain(..) {
            let t = c.await.map_err(|e| Error::Worker(e.to_string()))??;
            last = last.max(t);
        }
        created_s = Some(last);
    }

    // Every Ready mount must serve.
    eprintln!("  checking a write + read through every mount");
    let (served, serve_failures) = check_all_serve(w, args).await;
    let mut ready_at: Vec<f64> = first_ready.into_values().collect();
    ready_at.sort_by(f64::total_cmp);
    Ok(ScaleRun {
        n,
        created_s: created_s.unwrap_or_default(),
        all_ready_s,
        ready_at,
        not_ready,
        lists,
        list_s: if lists > 0 {
            list_total / lists as f64
        } else {
            0.0
        },
        processes: processes.len(),
        metric_processes,
        rss_before_kib,
        mem,
        rss_peak_sampled_kib: rss_peak,
        plugin_rss_kib,
        reconciles,
        reconcile_s,
        errors,
        served,
        serve_failures,
        cpu: cpu_before.until(&cpu_after),
        kube_requests,
    })
}

/// A write + read through every scale mount (8 connections); (successes, first failures).
async fn check_all_serve(w: &World, args: &OperatorArgs) -> (usize, Vec<String>) {
    let n = args.mounts_scale;
    let workers = n.clamp(1, 8);
    let mut tasks = Vec::new();
    for k in 0..workers {
        let ep = w.lockbox.clone();
        let namespaces = args.scale_namespaces;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(&ep).await.ok();
            let (mut ok, mut failed) = (0usize, Vec::new());
            for i in (k..n).step_by(workers) {
                let path = format!("/v1/{SCALE_NS}{}/scale-{i}/probe", i % namespaces);
                let mut served = false;
                for _ in 0..3 {
                    if write_read(&mut conn, &ep, &path, &format!("s{i}")).await {
                        served = true;
                        break;
                    }
                }
                if served {
                    ok += 1;
                } else {
                    failed.push(path);
                }
            }
            (ok, failed)
        }));
    }
    let (mut ok, mut failed) = (0, Vec::new());
    for t in tasks {
        if let Ok((o, f)) = t.await {
            ok += o;
            failed.extend(f);
        }
    }
    failed.sort();
    failed.truncate(5);
    (ok, failed)
}

// ---------------------------------------------------------------- run

struct Facts {
    date: String,
    machine: String,
    lockbox: String,
    kube: String,
    plugin: String,
    settings: String,
    command: String,
}

struct Setup {
    /// Seconds from creating the catalog entries until all were Ready.
    catalog_ready_s: f64,
    /// Seconds from spawning the operator until it was leader.
    leader_s: f64,
    /// Operator VmRSS right after the catalog entries were Ready (KiB).
    idle: Mem,
    /// Plugin processes then (expected: none, nothing mounted yet).
    idle_processes: usize,
}

struct LatencyPhase {
    samples: Vec<ServeSample>,
    cpu: CpuUse,
}

/// Runs the operator benchmark; returns whether anything failed (some mount did not
/// serve afterwards, or the scale run timed out).
pub async fn run(args: OperatorArgs) -> Result<bool> {
    if args.plugins == 0 || args.mounts_scale == 0 || args.scale_namespaces == 0 {
        return Err(Error::InvalidArgument(
            "--plugins, --mounts-scale and --scale-namespaces must be positive".into(),
        ));
    }
    if args.create_concurrency == 0 || args.serve_poll_ms == 0 || args.list_interval_ms == 0 {
        return Err(Error::InvalidArgument(
            "--create-concurrency, --serve-poll-ms and --list-interval-ms must be positive".into(),
        ));
    }
    if !(args.serve_timeout > 0.0 && args.scale_timeout > 0.0) {
        return Err(Error::InvalidArgument(
            "--serve-timeout and --scale-timeout must be > 0".into(),
        ));
    }
    let workspace = Path::new(WORKSPACE)
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(WORKSPACE));
    let (nproc, cpu_model, mem_total, loadavg, commit) = report::machine(&workspace);
    let work = WorkDir::new(args.keep_work_dir)?;

    // Plugin directory: a copy of the mock plugin.
    let plugin_src = args
        .plugin_bin
        .clone()
        .unwrap_or_else(|| workspace.join("target/release").join(PLUGIN_FILE));
    let plugin_dir = work.path.join("plugins");
    std::fs::create_dir_all(&plugin_dir).map_err(|e| Error::file("creating", &plugin_dir, e))?;
    let plugin_bin = plugin_dir.join(PLUGIN_FILE);
    std::fs::copy(&plugin_src, &plugin_bin).map_err(|e| Error::file("copying", &plugin_src, e))?;
    let plugin_bytes = read_file(&plugin_bin)?;
    let plugin_sha = sha256_hex(&plugin_bytes);
    let lockbox_bin = args
        .lockbox_bin
        .clone()
        .unwrap_or_else(|| workspace.join("target/release/lockbox"));
    if !lockbox_bin.is_file() {
        return Err(Error::InvalidArgument(format!(
            "{} does not exist; build it with `cargo build --release -p lockbox`",
            lockbox_bin.display()
        )));
    }

    // The API server and the CRDs.
    let script = args
        .kube_up_script
        .clone()
        .unwrap_or_else(|| workspace.join("tests/harness/kube-up.sh"));
    eprintln!("starting etcd + kube-apiserver with {}", script.display());
    let (harness, target) = kube::Harness::start(&script, &work.path.join("kube"))?;
    let kubeconfig = harness.dir.join("kubeconfig");
    let kubectl_bin = args
        .kubectl
        .clone()
        .unwrap_or_else(|| crate::default_kube_bin("kubectl"));
    let crds = workspace.join("crds");
    eprintln!(
        "  kube-apiserver at {}; applying {}",
        target.url,
        crds.display()
    );
    kubectl(
        &kubectl_bin,
        &kubeconfig,
        &["apply", "--server-side", "-f", &crds.to_string_lossy()],
    )?;
    kubectl(
        &kubectl_bin,
        &kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "crd/plugincatalogentries.lockbox.dev",
            "crd/secretsmounts.lockbox.dev",
            "--timeout=60s",
        ],
    )?;
    let kube_tls = http::tls_config(&target.ca_pem, &target.source)?;
    let kube_ep = Endpoint::from_url(
        &target.url,
        kube_tls.clone(),
        header("authorization", &format!("Bearer {}", target.token))?,
    )
    .await?;
    let kube_version = kube::version(&kube_ep)
        .await
        .unwrap_or_else(|| "unknown version".into());
    let mut kconn = Conn::connect(&kube_ep).await?;
    for ns in [OPERATOR_NS.to_string(), LATENCY_NS.to_string()]
        .into_iter()
        .chain((0..args.scale_namespaces).map(|j| format!("{SCALE_NS}{j}")))
    {
        crate::kube::create_namespace(&kube_ep, &mut kconn, &ns).await?;
    }

    // The operator, serving its API with the harness's serving pair (valid for 127.0.0.1).
    let certs = harness.dir.join("certs");
    eprintln!("starting {} operator run", lockbox_bin.display());
    let spawned = Instant::now();
    let op = OperatorProc::start(OperatorCmd {
        bin: &lockbox_bin,
        kubeconfig: &kubeconfig,
        data_dir: &work.path.join("data"),
        plugin_dir: &plugin_dir,
        cert: &certs.join("apiserver.crt"),
        key: &certs.join("apiserver.key"),
        resync: &args.resync_period,
        log_path: work.path.join("operator.log"),
        timeout: Duration::from_secs(args.operator_start_timeout),
    })
    .await?;
    eprintln!(
        "  operator pid {} at {} (health {}, log {})",
        op.pid,
        op.api,
        op.health,
        op.log_path.display()
    );
    let lockbox_ep = async {
        let token = root_token(&kube_ep, &mut kconn).await?;
        Endpoint::from_url(&op.api, kube_tls.clone(), header("x-vault-token", &token)?).await
    }
    .await;
    let lockbox_ep = match lockbox_ep {
        Ok(ep) => ep,
        Err(e) => {
            op.stop().await;
            return Err(e);
        }
    };
    let mut world = World {
        kube: kube_ep.clone(),
        kube_pids: target.pids.clone(),
        lockbox: lockbox_ep,
        op,
    };
    let result = measure_all(&mut world, &args, &plugin_sha, spawned).await;
    let lockbox_version = lockbox::version(&world.lockbox).await;
    // Stop the operator (gracefully) before looking at the result.
    world.op.stop().await;
    let (setup, latency, scale_run) = result?;
    drop(harness);
    let loadavg_after = report::machine(&workspace).3;

    let facts = Facts {
        date: report::utc_now(),
        machine: format!(
            "{nproc} CPUs ({cpu_model}), {mem_total} RAM, load average before the run \
             {loadavg} (after it {loadavg_after}, this run's own load included)"
        ),
        lockbox: format!(
            "commit {commit} (version {})",
            lockbox_version.as_deref().unwrap_or("unknown")
        ),
        kube: format!("{kube_version} from {}", target.source),
        plugin: format!(
            "`{PLUGIN_FILE}` from {}, {:.1} MB, sha256 {}…, registered {} times as `mock-0`…`mock-{}` (version {PLUGIN_VERSION})",
            plugin_src
                .strip_prefix(&workspace)
                .unwrap_or(&plugin_src)
                .display(),
            plugin_bytes.len() as f64 / 1e6,
            &plugin_sha[..12],
            args.plugins,
            args.plugins - 1
        ),
        settings: format!(
            "{} apply-to-serving mounts (write + read retried every {} ms); {} scale mounts over \
             {} namespaces and {} plugins, created on {} connections, listed every {} ms; \
             operator --resync-period {}",
            args.mounts_latency,
            args.serve_poll_ms,
            args.mounts_scale,
            args.scale_namespaces,
            args.plugins,
            args.create_concurrency.min(args.mounts_scale),
            args.list_interval_ms,
            args.resync_period
        ),
        command: std::iter::once("lockbox-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let section = section(&Results {
        facts: &facts,
        args: &args,
        setup: &setup,
        latency: &latency,
        scale: &scale_run,
        nproc,
    });
    println!("{section}");
    if let Some(path) = &args.write_markdown {
        report::write_section(path, MARKERS, &section, Some(plugins::MARKERS))?;
        eprintln!("updated {}", path.display());
    }
    Ok(scale_run.all_ready_s.is_none() || scale_run.served < scale_run.n)
}

type Measured = (Setup, LatencyPhase, ScaleRun);

async fn measure_all(
    w: &mut World,
    args: &OperatorArgs,
    sha: &str,
    spawned: Instant,
) -> Result<Measured> {
    // Leader (controllers running).
    let deadline = spawned + Duration::from_secs(args.operator_start_timeout);
    loop {
        w.op.alive()?;
        if metrics(&w.op)
            .await
            .is_some_and(|m| metric_sum(&m, "lockbox_operator_leader", &[]) == Some(1.0))
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(w.op.error(format!(
                "not leader within {} s",
                args.operator_start_timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leader_s = spawned.elapsed().as_secs_f64();
    eprintln!(
        "  leader after {leader_s:.2} s; registering {} plugins",
        args.plugins
    );

    let mut conn = w.kube_conn().await?;
    for p in 0..args.plugins {
        let body = catalog_entry(&plugin_name(p), sha);
        conn.expect(
            &w.kube,
            Method::POST,
            &format!("{API}/plugincatalogentries"),
            Bytes::from(body.to_string()),
            &[201],
        )
        .await?;
    }
    let catalog_ready_s = w
        .wait_all_ready(
            &format!("{API}/plugincatalogentries?labelSelector={LABEL}%3Dcatalog"),
            args.plugins,
            Duration::from_secs(120),
            "PluginCatalogEntries",
        )
        .await?;
    let setup = Setup {
        catalog_ready_s,
        leader_s,
        idle: Mem::of(w.op.pid),
        idle_processes: w.op.plugin_pids().len(),
    };
    eprintln!("  catalog entries Ready after {catalog_ready_s:.2} s");

    eprintln!(
        "1. apply to serving: {} SecretsMounts, one at a time",
        args.mounts_latency
    );
    let before = CpuSnap::take(&w.op, &w.kube_pids);
    let samples = apply_to_serving(w, args).await?;
    let latency = LatencyPhase {
        samples,
        cpu: before.until(&CpuSnap::take(&w.op, &w.kube_pids)),
    };

    eprintln!(
        "2. scale: {} SecretsMounts over {} namespaces and {} plugins",
        args.mounts_scale, args.scale_namespaces, args.plugins
    );
    let scale_run = scale(w, args).await?;
    eprintln!(
        "  all Ready: {}; plugin processes {}; operator VmRSS {} MB (VmHWM {} MB); served {}/{}",
        scale_run
            .all_ready_s
            .map_or_else(|| "no".into(), |s| format!("{s:.2} s")),
        scale_run.processes,
        mb(scale_run.mem.rss),
        mb(scale_run.mem.hwm),
        scale_run.served,
        scale_run.n
    );
    Ok((setup, latency, scale_run))
}

// ---------------------------------------------------------------- the report

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}

/// KiB → MB (10^6 bytes), one decimal.
fn mb(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".into(), |k| format!("{:.1}", k as f64 * 1024.0 / 1e6))
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), ms)
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |s| format!("{s:.2}"))
}

fn cores(c: Option<f64>) -> String {
    c.map_or_else(|| "-".into(), |c| format!("{c:.2}"))
}

struct Results<'a> {
    facts: &'a Facts,
    args: &'a OperatorArgs,
    setup: &'a Setup,
    latency: &'a LatencyPhase,
    scale: &'a ScaleRun,
    nproc: usize,
}

fn section(r: &Results<'_>) -> String {
    let a = r.args;
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "{}", MARKERS.begin);
    let _ = writeln!(
        w,
        "<!-- Generated by `lockbox-bench operator`; edits here are overwritten. -->"
    );
    let _ = writeln!(w, "## Kubernetes operator (`operator`)\n");
    let _ = writeln!(
        w,
        "**Question:** once a `SecretsMount` is applied, how soon does its mount serve \
         requests; how long do hundreds of mounts across several plugins take to become \
         Ready; does the operator still run one plugin process per plugin version; and how \
         much memory does it take?\n"
    );
    let _ = writeln!(
        w,
        "**What it measures.** `lockbox-bench operator` (crate `crates/bench/`) starts a fresh etcd + \
         kube-apiserver on loopback (`tests/harness/kube-up.sh`), applies `crds/` with \
         `kubectl apply --server-side` and waits until they are Established, and starts \
         `target/release/lockbox operator run --data-dir D --plugin-directory P --namespace \
         {OPERATOR_NS} --resync-period {} --api-address 127.0.0.1:0 --health-address \
         127.0.0.1:0` with the harness's admin kubeconfig, serving its API over TLS with the \
         harness's self-signed serving pair (`certs/apiserver.{{crt,key}}`, valid for \
         127.0.0.1). P holds a copy of `target/release/lockbox-plugin-mock`; once the operator \
         is leader, {} `PluginCatalogEntry`s `mock-0`… are created (version {PLUGIN_VERSION}, \
         all the same file and sha256: distinct plugins, so one process each) and awaited \
         Ready. The root token is read from the Secret `{ROOT_TOKEN_SECRET}` the operator \
         writes when it initializes. Every Kubernetes object is created by the benchmark \
         process itself with an HTTPS POST (no kubectl process in any measured path); lockbox \
         is reached over HTTPS with the root token. Then:\n\n\
         1. **Apply to serving**: {} `SecretsMount`s in namespace `{LATENCY_NS}`, one after the \
         other, mount *i* using plugin `mock-(i mod {})`. The clock starts before the POST of \
         the object and stops when a write (`PUT /v1/{LATENCY_NS}/lat-<i>/probe`) followed by \
         a read of the same key through the new mount answers 200 with the written value; \
         write + read is retried every {} ms. This covers the API server accepting the object, \
         the watch event reaching the operator, the finalizer round trip, the reconcile \
         (`sys/mounts` enable) and the plugin setting up the mount. The first mount of each \
         plugin also starts that plugin's process (reported separately); later mounts join the \
         running process.\n\
         2. **Scale**: {} `SecretsMount`s `scale-<i>` spread round-robin over {} namespaces \
         `{SCALE_NS}<j>` and the {} plugins, created as fast as the API server accepts them \
         ({} concurrent connections), while the benchmark lists them \
         (`GET {API}/secretsmounts?labelSelector={LABEL}=scale`, every {} ms) and records when \
         each is first seen with condition `Ready=True`. The clock starts before the first \
         POST. When all are Ready: the operator's child processes whose argv[0] is \
         `{PLUGIN_FILE}` are counted (`/proc/*/status` PPid + `/proc/*/cmdline`), `VmRSS` and \
         `VmHWM` of the operator and `VmRSS` of the plugin processes are read from \
         `/proc/PID/status`, the reconcile counters of the operator's `/metrics` are compared \
         with their values before the phase, and then every mount gets a write + read.\n\
         3. **CPU**, per phase: average cores of the operator with its plugin processes, of \
         kube-apiserver + etcd, of the benchmark process, and *other load*: the rest of the \
         machine's busy time (`/proc/stat`), i.e. other programs.\n",
        a.resync_period,
        a.plugins,
        a.mounts_latency,
        a.plugins,
        a.serve_poll_ms,
        a.mounts_scale,
        a.scale_namespaces,
        a.plugins,
        a.create_concurrency.min(a.mounts_scale),
        a.list_interval_ms
    );
    let _ = writeln!(
        w,
        "**Targets** (issue 4): apply-to-serving p50 < {} s (p99 reported); 500 `SecretsMount`s \
         across 5 plugins all Ready in < {} s; at that point one plugin process per plugin \
         version; operator RSS < {} MB (MB = 10^6 bytes).\n",
        a.target_p50_ms / 1000.0,
        a.target_scale_s,
        a.target_rss_mb
    );
    let _ = writeln!(
        w,
        "**Caveat: one machine.** The API server, etcd, the operator, its plugin processes and \
         the benchmark share the same {} CPUs, and the machine is shared with other work (see \
         the load average and the *other load* column); the scale phase is CPU-bound on all of \
         them at once, so its time depends on how busy the machine is. The apply-to-serving \
         times have a resolution of the {} ms retry interval, the Ready times of the list \
         interval plus one list's duration. With {} samples, nearest-rank p99 is the slowest \
         sample or close to it.\n",
        r.nproc, a.serve_poll_ms, a.mounts_latency
    );
    let _ = writeln!(w, "### How to reproduce\n\nFrom the repository root:\n");
    let _ = writeln!(w, "```sh\n{REPRODUCE}\n```\n");
    let _ = writeln!(
        w,
        "Flags (`lockbox-bench operator --help`): `--plugins 5 --mounts-latency 50 \
         --mounts-scale 500 --scale-namespaces 5 --create-concurrency 8`, `--serve-poll-ms 10 \
         --list-interval-ms 500`, `--serve-timeout 60 --scale-timeout 300`, `--resync-period \
         5m`, `--keep-work-dir` (keep the operator log and the harness state). A quick run: \
         `--mounts-latency 5 --mounts-scale 20`. Needs `tests/harness/install-kube.sh` once.\n"
    );
    let f = r.facts;
    let _ = writeln!(w, "### Results\n");
    let _ = writeln!(w, "- date: {}", f.date);
    let _ = writeln!(w, "- machine: {}", f.machine);
    let _ = writeln!(w, "- lockbox: {}", f.lockbox);
    let _ = writeln!(w, "- kube-apiserver: {}", f.kube);
    let _ = writeln!(w, "- plugin: {}", f.plugin);
    let _ = writeln!(w, "- settings: {}", f.settings);
    let _ = writeln!(w, "- command: `{}`", f.command);
    let su = r.setup;
    let _ = writeln!(
        w,
        "- setup: operator leader {:.2} s after it was started; the {} catalog entries Ready \
         {:.2} s after they were created; operator VmRSS then {} with {} plugin processes\n",
        su.leader_s,
        a.plugins,
        su.catalog_ready_s,
        su.idle.split(),
        su.idle_processes
    );
    latency_part(w, r);
    scale_part(w, r);
    requests_part(w, r);
    cpu_part(w, r);
    verdicts(w, r);
    let _ = writeln!(w, "{}", MARKERS.end);
    s
}

fn latency_part(w: &mut String, r: &Results<'_>) {
    let _ = writeln!(w, "#### 1. Apply to serving\n");
    let _ = writeln!(
        w,
        "| mounts | count | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | mean (ms) | POST p50 (ms) |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let samples = &r.latency.samples;
    // (label, which samples: all, or those that did / did not start a process)
    for (label, new_process) in [
        ("all", None),
        ("first mount of a plugin (starts its process)", Some(true)),
        ("later mounts (process running)", Some(false)),
    ] {
        let sel: Vec<&ServeSample> = samples
            .iter()
            .filter(|s| new_process.is_none_or(|p| s.new_process == p))
            .collect();
        if sel.is_empty() {
            continue;
        }
        let total: Vec<f64> = sel.iter().map(|s| s.total_ms).collect();
        let post: Vec<f64> = sel.iter().map(|s| s.post_ms).collect();
        let mean = total.iter().sum::<f64>() / total.len() as f64;
        let _ = writeln!(
            w,
            "| {label} | {} | {} | {} | {} | {} | {} | {} |",
            total.len(),
            opt_ms(quantile(&total, 0.5)),
            opt_ms(quantile(&total, 0.9)),
            opt_ms(quantile(&total, 0.99)),
            opt_ms(quantile(&total, 1.0)),
            ms(mean),
            opt_ms(quantile(&post, 0.5)),
        );
    }
    let _ = writeln!(w);
}

fn scale_part(w: &mut String, r: &Results<'_>) {
    let sc = r.scale;
    let a = r.args;
    let _ = writeln!(
        w,
        "#### 2. Scale: {} SecretsMounts, {} plugins\n",
        sc.n, a.plugins
    );
    let _ = writeln!(w, "| measure | value |");
    let _ = writeln!(w, "|---|---:|");
    let row = |w: &mut String, k: &str, v: String| {
        let _ = writeln!(w, "| {k} | {v} |");
    };
    row(
        w,
        "all POSTs answered 201 after (s)",
        format!("{:.2}", sc.created_s),
    );
    row(
        w,
        "50% Ready after (s)",
        opt_s(time_to_fraction(&sc.ready_at, sc.n, 0.5)),
    );
    row(
        w,
        "90% Ready after (s)",
        opt_s(time_to_fraction(&sc.ready_at, sc.n, 0.9)),
    );
    row(
        w,
        "**all Ready after (s)**",
        sc.all_ready_s.map_or_else(
            || format!("**not within {} s**", a.scale_timeout),
            |s| format!("**{s:.2}**"),
        ),
    );
    row(
        w,
        &format!("Ready within the target's {} s", a.target_scale_s),
        format!(
            "{} of {}",
            sc.ready_at
                .iter()
                .filter(|&&t| t <= a.target_scale_s)
                .count(),
            sc.n
        ),
    );
    if !sc.not_ready.is_empty() {
        let reasons: Vec<String> = sc
            .not_ready
            .iter()
            .map(|(k, v)| format!("{v}× {k}"))
            .collect();
        row(w, "not Ready at the end, by reason", reasons.join(", "));
    }
    row(
        w,
        "lists while waiting (mean duration)",
        format!("{} ({} ms)", sc.lists, ms(sc.list_s * 1000.0)),
    );
    row(
        w,
        &format!("**plugin processes** (children with argv[0] `{PLUGIN_FILE}`)"),
        format!("**{}** (expected {})", sc.processes, a.plugins),
    );
    row(
        w,
        "`lockbox_plugin_processes` (operator metric, summed)",
        sc.metric_processes
            .map_or_else(|| "-".into(), |v| format!("{v:.0}")),
    );
    row(
        w,
        "**operator VmRSS** at the end (MB)",
        format!("**{}**", sc.mem.split()),
    );
    row(
        w,
        "operator VmHWM (peak RSS of its life, MB)",
        mb(sc.mem.hwm),
    );
    row(
        w,
        "operator VmRSS before the phase / highest sampled during it (MB)",
        format!(
            "{} / {}",
            mb(sc.rss_before_kib),
            mb(sc.rss_peak_sampled_kib)
        ),
    );
    row(
        w,
        "plugin processes' VmRSS, summed (MB)",
        mb(sc.plugin_rss_kib),
    );
    row(
        w,
        "SecretsMount reconciles during the phase (per mount)",
        sc.reconciles.map_or_else(
            || "-".into(),
            |n| format!("{n:.0} ({:.2})", n / sc.n as f64),
        ),
    );
    row(
        w,
        "mean reconcile duration (ms)",
        match (sc.reconcile_s, sc.reconciles) {
            (Some(t), Some(n)) if n > 0.0 => ms(t * 1000.0 / n),
            _ => "-".into(),
        },
    );
    row(
        w,
        "reconcile errors / not-ready reports, by reason",
        if sc.errors.is_empty() {
            "0".into()
        } else {
            sc.errors
                .iter()
                .map(|(r, n)| format!("{n:.0}× {r}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    row(
        w,
        "mounts that served a write + read afterwards",
        if sc.serve_failures.is_empty() {
            format!("{} of {}", sc.served, sc.n)
        } else {
            format!(
                "**{} of {}** (failed: {})",
                sc.served,
                sc.n,
                sc.serve_failures.join(", ")
            )
        },
    );
    let _ = writeln!(w);
}

fn requests_part(w: &mut String, r: &Results<'_>) {
    let sc = r.scale;
    let Some(rows) = &sc.kube_requests else {
        return;
    };
    let _ = writeln!(
        w,
        "kube-apiserver requests for `lockbox.dev` objects and events during the scale phase, \
         from the API server's `/metrics` (`apiserver_request_total`, \
         `apiserver_request_duration_seconds`; WATCH excluded). The benchmark's own {} POSTs \
         and {} LISTs of `secretsmounts` are included; everything else is the operator.\n",
        sc.n, sc.lists
    );
    let _ = writeln!(
        w,
        "| verb | resource | requests | per mount | mean duration (ms) |"
    );
    let _ = writeln!(w, "|---|---|---:|---:|---:|");
    for (verb, resource, n, mean) in rows {
        let _ = writeln!(
            w,
            "| {verb} | {resource} | {n:.0} | {:.2} | {} |",
            n / sc.n as f64,
            opt_ms(mean.map(|m| m * 1000.0))
        );
    }
    let _ = writeln!(w);
}

fn cpu_part(w: &mut String, r: &Results<'_>) {
    let _ = writeln!(w, "#### 3. CPU during the phases (average cores)\n");
    let _ = writeln!(
        w,
        "| phase | wall (s) | operator + plugins | kube-apiserver + etcd | benchmark | other load |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|");
    for (label, c) in [
        ("1. apply to serving", r.latency.cpu),
        ("2. scale (until all Ready)", r.scale.cpu),
    ] {
        let _ = writeln!(
            w,
            "| {label} | {:.1} | {} | {} | {} | {} |",
            c.wall_s,
            cores(c.operator),
            cores(c.kube),
            cores(c.bench),
            cores(c.other)
        );
    }
    let _ = writeln!(w);
}

fn verdicts(w: &mut String, r: &Results<'_>) {
    let a = r.args;
    let sc = r.scale;
    let total: Vec<f64> = r.latency.samples.iter().map(|s| s.total_ms).collect();
    let _ = writeln!(w, "#### Verdicts\n");
    match (quantile(&total, 0.5), quantile(&total, 0.99)) {
        (Some(p50), Some(p99)) => {
            let _ = writeln!(
                w,
                "- apply to serving over {} mounts: p50 **{} ms**, p99 {} ms (target p50 < {} ms: {})",
                total.len(),
                ms(p50),
                ms(p99),
                a.target_p50_ms,
                verdict(p50 < a.target_p50_ms)
            );
        }
        _ => {
            let _ = writeln!(w, "- apply to serving: not measured (`--mounts-latency 0`)");
        }
    }
    let full = sc.n >= 500 && a.plugins >= 5;
    let scale_note = if full {
        String::new()
    } else {
        format!(
            " — a reduced run ({} mounts, {} plugins): the target is for 500 and 5",
            sc.n, a.plugins
        )
    };
    let _ = writeln!(
        w,
        "- {} mounts across {} plugins all Ready: {} (target < {} s: {}){scale_note}",
        sc.n,
        a.plugins,
        sc.all_ready_s.map_or_else(
            || format!("**not within {} s**", a.scale_timeout),
            |s| format!("**{s:.1} s**")
        ),
        a.target_scale_s,
        verdict(sc.all_ready_s.is_some_and(|s| s < a.target_scale_s))
    );
    let _ = writeln!(
        w,
        "- plugin processes then: **{}** for {} plugins of one version each (target one per \
         plugin version: {})",
        sc.processes,
        a.plugins,
        verdict(sc.processes == a.plugins)
    );
    let rss_mb = sc.mem.rss.map(|k| k as f64 * 1024.0 / 1e6);
    let _ = writeln!(
        w,
        "- operator RSS then: **{} MB** (anonymous {} MB, file-backed {} MB; peak {} MB; \
         target < {} MB: {})",
        mb(sc.mem.rss),
        mb(sc.mem.anon),
        mb(sc.mem.file),
        mb(sc.mem.hwm),
        a.target_rss_mb,
        verdict(rss_mb.is_some_and(|m| m < a.target_rss_mb))
    );
    if sc.served < sc.n {
        let _ = writeln!(
            w,
            "\n**Warning:** {} of {} mounts did not serve a write + read after the scale run.",
            sc.n - sc.served,
            sc.n
        );
    }
    let _ = writeln!(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=50).map(f64::from).rev().collect();
        assert_eq!(quantile(&v, 0.5), Some(25.0));
        assert_eq!(quantile(&v, 0.99), Some(50.0));
        assert_eq!(quantile(&v, 1.0), Some(50.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
    }

    #[test]
    fn fractions_of_ready_times() {
        let ready = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(time_to_fraction(&ready, 4, 0.5), Some(2.0));
        assert_eq!(time_to_fraction(&ready, 4, 1.0), Some(4.0));
        // Only 4 of 5 were Ready: no time for all of them.
        assert_eq!(time_to_fraction(&ready, 5, 1.0), None);
        assert_eq!(time_to_fraction(&ready, 5, 0.9), None);
        assert_eq!(time_to_fraction(&ready, 5, 0.8), Some(4.0));
        assert_eq!(time_to_fraction(&[], 3, 0.5), None);
    }

    #[test]
    fn banner_lines() {
        let mut b = Banner::default();
        for line in [
            "==> lockbox operator started",
            "api address: https://127.0.0.1:40123",
            "health address: 127.0.0.1:40124",
        ] {
            b.feed(line);
        }
        assert!(b.done());
        assert_eq!(b.api.as_deref(), Some("https://127.0.0.1:40123"));
        assert_eq!(b.health.as_deref(), Some("127.0.0.1:40124"));
        assert!(!Banner::default().done());
    }

    #[test]
    fn ready_conditions_and_reasons() {
        let list = json!({ "items": [
            { "metadata": { "name": "a", "namespace": "n" },
              "status": { "conditions": [ { "type": "Ready", "status": "True", "reason": "Mounted" } ] } },
            { "metadata": { "name": "b", "namespace": "n" },
              "status": { "conditions": [ { "type": "Ready", "status": "False", "reason": "PluginMissing" } ] } },
            { "metadata": { "name": "c", "namespace": "n" } },
            { "metadata": { "name": "d" },
              "status": { "conditions": [
                  { "type": "Verified", "status": "True" },
                  { "type": "Ready", "status": "True" } ] } },
        ] });
        let it = items(&list);
        assert_eq!(it.iter().filter(|o| is_ready(o)).count(), 2);
        assert_eq!(object_key(&it[0]), "n/a");
        assert_eq!(object_key(&it[3]), "d");
        let reasons = not_ready_reasons(&list);
        assert_eq!(reasons.get("PluginMissing"), Some(&1));
        assert_eq!(reasons.get("(no status yet)"), Some(&1));
        assert_eq!(reasons.len(), 2);
        assert!(items(&json!({})).is_empty());
    }

    #[test]
    fn prometheus_text() {
        let text = "# HELP lockbox_operator_reconciles_total Reconciles run, by kind.\n\
            # TYPE lockbox_operator_reconciles_total counter\n\
            lockbox_operator_reconciles_total{kind=\"PluginCatalogEntry\"} 7\n\
            lockbox_operator_reconciles_total{kind=\"SecretsMount\"} 1012\n\
            lockbox_operator_reconcile_errors_total{kind=\"SecretsMount\",reason=\"KubeApi\"} 3\n\
            lockbox_operator_reconcile_duration_seconds_sum{kind=\"SecretsMount\"} 12.5\n\
            lockbox_operator_leader 1\n\
            lockbox_plugin_processes{type=\"secret\",plugin=\"mock-0\",version=\"1.0.0\"} 1\n\
            lockbox_plugin_processes{type=\"secret\",plugin=\"we\\\"ird\",version=\"1.0.0\"} 1\n";
        let sm = [("kind", "SecretsMount")];
        assert_eq!(
            metric_sum(text, "lockbox_operator_reconciles_total", &sm),
            Some(1012.0)
        );
        assert_eq!(
            metric_sum(text, "lockbox_operator_reconciles_total", &[]),
            Some(1019.0)
        );
        assert_eq!(
            metric_sum(text, "lockbox_operator_reconcile_duration_seconds_sum", &sm),
            Some(12.5)
        );
        assert_eq!(metric_sum(text, "lockbox_operator_leader", &[]), Some(1.0));
        assert_eq!(metric_sum(text, "lockbox_plugin_processes", &[]), Some(2.0));
        assert_eq!(
            metric_sum(text, "lockbox_plugin_processes", &[("plugin", "we\"ird")]),
            Some(1.0)
        );
        // A name that is only a prefix of the metric's does not match.
        assert_eq!(metric_sum(text, "lockbox_operator_reconciles", &[]), None);
        assert_eq!(reconcile_errors(text).get("KubeApi").copied(), Some(3.0));
    }

    #[test]
    fn apiserver_request_deltas() {
        let before = "apiserver_request_total{code=\"200\",group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 2\n\
            apiserver_request_duration_seconds_sum{group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 0.5\n\
            apiserver_request_duration_seconds_count{group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 2\n";
        let after = "apiserver_request_total{code=\"200\",group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 10\n\
            apiserver_request_total{code=\"409\",group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"namespace\",subresource=\"\",verb=\"LIST\"} 2\n\
            apiserver_request_duration_seconds_sum{group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 10.5\n\
            apiserver_request_duration_seconds_count{group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"LIST\"} 12\n\
            apiserver_request_total{code=\"200\",group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"namespace\",subresource=\"status\",verb=\"PATCH\"} 20\n\
            apiserver_request_total{code=\"200\",group=\"lockbox.dev\",resource=\"secretsmounts\",scope=\"cluster\",subresource=\"\",verb=\"WATCH\"} 3\n\
            apiserver_request_total{code=\"200\",group=\"\",resource=\"secrets\",scope=\"namespace\",subresource=\"\",verb=\"GET\"} 9\n\
            apiserver_request_total{code=\"201\",group=\"events.k8s.io\",resource=\"events\",scope=\"namespace\",subresource=\"\",verb=\"POST\"} 20\n";
        let rows = request_rows(before, after);
        assert_eq!(
            rows,
            vec![
                ("PATCH".into(), "secretsmounts/status".into(), 20.0, None),
                ("POST".into(), "events".into(), 20.0, None),
                ("LIST".into(), "secretsmounts".into(), 10.0, Some(1.0)),
            ]
        );
    }

    #[test]
    fn labels_with_escapes() {
        let l = parse_labels(r#"a="x",b="y\"z",c="1\n2""#);
        assert_eq!(l["a"], "x");
        assert_eq!(l["b"], "y\"z");
        assert_eq!(l["c"], "1\n2");
        assert!(parse_labels("").is_empty());
    }

    #[test]
    fn manifests_have_the_label_and_plugin() {
        let m = secrets_mount("ns", "m", "mock-3", "scale");
        assert_eq!(m["metadata"]["labels"][LABEL], "scale");
        assert_eq!(m["spec"]["plugin"], "mock-3");
        let e = catalog_entry("mock-0", &"a".repeat(64));
        assert_eq!(e["spec"]["binary"]["path"], PLUGIN_FILE);
        assert_eq!(e["spec"]["version"], PLUGIN_VERSION);
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
