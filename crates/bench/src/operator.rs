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

mod operator_proc;
mod parse;
mod render;
mod scale;

use operator_proc::*;
use parse::*;
use render::*;
use scale::*;

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
            "crd/policies.lockbox.dev",
            "crd/kubernetesauthroles.lockbox.dev",
            "crd/authmounts.lockbox.dev",
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

#[cfg(test)]
mod tests;
