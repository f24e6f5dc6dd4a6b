//! `lockbox-bench`: load benchmarks for lockbox.
//!
//! `lockbox-bench plugins` measures what a plugin-backed engine costs against the
//! built-in kv engine (reads, cold start, memory, reloads under load); see
//! `plugins.rs`.
//!
//! `lockbox-bench vault-plugins` runs the same upstream Vault plugin binary
//! (Vault's kv, as kv version 2) under lockbox and under OpenBao and compares
//! uncached reads, cold starts and memory; see `vault_plugins.rs`.
//!
//! `lockbox-bench audit` measures what a file audit device costs kv reads and
//! writes (two dev servers, one with the device); see `audit.rs`.
//!
//! `lockbox-bench leases` measures dynamic PostgreSQL credentials issued and
//! revoked per second, and the drain of 10,000 leases falling due at once
//! (with kv read latency meanwhile); see `leases.rs`.
//!
//! `lockbox-bench ha` measures kv throughput on the file backend, PostgreSQL,
//! an HA active node and a standby forwarding to it, and the failover time
//! after `kill -9` of the active node; see `ha.rs`.
//!
//! `lockbox-bench operator` measures the Kubernetes operator: apply-to-serving
//! latency of `SecretsMount`s, hundreds of mounts to Ready, plugin processes and
//! operator memory; see `operator.rs`.
//!
//! `lockbox-bench kv` measures lockbox kv reads and writes over HTTPS at several
//! concurrency levels and, in the same run, reads of same-sized Kubernetes Secrets
//! from a real kube-apiserver (the baseline a user would otherwise pick):
//!
//! ```text
//!   lockbox-bench ──HTTPS/1.1 keep-alive, 1 conn per worker──► lockbox server --dev --dev-tls
//!        │                                                       (child process)
//!        └────────────HTTPS/1.1, bearer token─────────────────► kube-apiserver ─► etcd
//!                                                               (tests/harness/kube-up.sh)
//! ```
//!
//! Exit codes: 0 all good; 1 the benchmark could not run; 2 it ran but some
//! requests failed (their rows are flagged); 130 interrupted.

mod audit;
mod cpu;
mod error;
mod ha;
mod http;
mod kube;
mod leases;
mod load;
mod lockbox;
mod operator;
mod pg;
mod plugins;
mod procfs;
mod report;
mod vault_plugins;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};

use crate::error::{Error, Result};
use crate::http::Endpoint;
use crate::load::{LoadArgs, Timing, Workload};
use crate::report::Row;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[derive(Parser)]
#[command(name = "lockbox-bench", version, about = "Load benchmarks for lockbox")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// kv read/write throughput and latency over HTTPS, against Kubernetes Secret reads.
    Kv(KvArgs),
    /// Plugin-backed engine vs built-in kv: reads, cold start, memory, reload under load.
    Plugins(plugins::PluginsArgs),
    /// The same upstream Vault plugin under lockbox and OpenBao: reads, cold start, memory.
    VaultPlugins(vault_plugins::VaultPluginsArgs),
    /// Kubernetes operator: apply-to-serving latency, mounts to Ready at scale, processes, memory.
    Operator(operator::OperatorArgs),
    /// kv reads and writes with a file audit device vs none.
    Audit(audit::AuditArgs),
    /// Dynamic PostgreSQL credentials issued and revoked per second; 10,000 expired leases drained.
    Leases(leases::LeasesArgs),
    /// High availability on PostgreSQL: kv throughput file vs PostgreSQL vs HA active/standby; failover time.
    Ha(ha::HaArgs),
}

#[derive(Args)]
#[command(mut_arg("duration", |a| a.help("Measured seconds per run")))]
#[command(mut_arg("warmup", |a| a.help("Unmeasured warm-up seconds before each run")))]
#[command(mut_arg("keys", |a| a.help("Number of keys / Secrets; reads and writes cycle through them")))]
#[command(mut_arg("value_size", |a| a.help("Size in bytes of each value (the Secret's decoded `data.value` has the same size)")))]
struct KvArgs {
    /// The lockbox binary to start as `server --dev --dev-tls`
    /// [default: <workspace>/target/release/lockbox].
    #[arg(long)]
    lockbox_bin: Option<PathBuf>,
    /// Benchmark an already running lockbox at this https:// URL instead of starting one.
    #[arg(long, requires = "lockbox_ca")]
    lockbox_url: Option<String>,
    /// CA file for --lockbox-url.
    #[arg(long)]
    lockbox_ca: Option<PathBuf>,
    /// Root token (passed as --dev-root-token-id when starting the dev server).
    #[arg(long, default_value = "root")]
    lockbox_token: String,
    /// Seconds to wait for the dev server to print its address.
    #[arg(long, default_value_t = 60)]
    lockbox_start_timeout: u64,

    /// kube-apiserver URL (with --kube-token and --kube-ca) instead of starting the harness.
    #[arg(long, requires_all = ["kube_token", "kube_ca"], conflicts_with_all = ["kubeconfig", "kube_env"])]
    kube_url: Option<String>,
    /// Bearer token for --kube-url; needs to create namespaces and Secrets.
    #[arg(long)]
    kube_token: Option<String>,
    /// CA file for --kube-url.
    #[arg(long)]
    kube_ca: Option<PathBuf>,
    /// Use the current context of this kubeconfig (token auth) instead of starting the harness.
    #[arg(long, conflicts_with = "kube_env")]
    kubeconfig: Option<PathBuf>,
    /// Use a running harness: the `env` file written by `tests/harness/kube-up.sh DIR`.
    #[arg(long)]
    kube_env: Option<PathBuf>,
    /// The harness start script [default: <workspace>/tests/harness/kube-up.sh].
    #[arg(long)]
    kube_up_script: Option<PathBuf>,
    /// kubectl, used only to read --kubeconfig [default: ~/.cache/lockbox/bin/kubectl, else PATH].
    #[arg(long)]
    kubectl: Option<PathBuf>,
    /// Namespace for the benchmark Secrets [default: lockbox-bench-<pid>].
    #[arg(long)]
    kube_namespace: Option<String>,

    /// Skip the lockbox side.
    #[arg(long, conflicts_with = "skip_kube")]
    skip_lockbox: bool,
    /// Skip the kube-apiserver baseline.
    #[arg(long)]
    skip_kube: bool,
    /// Skip lockbox writes.
    #[arg(long)]
    skip_writes: bool,

    #[command(flatten)]
    load: LoadArgs,
    /// Required lockbox/kube-apiserver read throughput ratio at concurrency 16.
    #[arg(long, default_value_t = 5.0)]
    target_ratio: f64,
    /// Rewrite the kv-http section of this markdown file (e.g. BENCHMARKS.md).
    #[arg(long)]
    write_markdown: Option<PathBuf>,
    /// Keep the temporary directory (server logs, harness state) after the run.
    #[arg(long)]
    keep_work_dir: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let client_threads = match &cli.command {
        Cmd::Kv(a) => a.load.client_threads,
        Cmd::Plugins(a) => a.load.client_threads,
        Cmd::VaultPlugins(a) => a.load.client_threads,
        Cmd::Operator(_) => None,
        Cmd::Audit(a) => a.load.client_threads,
        Cmd::Leases(a) => a.client_threads,
        Cmd::Ha(a) => a.load.client_threads,
    };
    let threads = client_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(async {
        tokio::select! {
            r = async {
                match cli.command {
                    Cmd::Kv(args) => kv(args, threads).await,
                    Cmd::Plugins(args) => plugins::run(args, threads).await,
                    Cmd::VaultPlugins(args) => vault_plugins::run(args, threads).await,
                    Cmd::Operator(args) => operator::run(args).await,
                    Cmd::Audit(args) => audit::run(args, threads).await,
                    Cmd::Leases(args) => leases::run(args, threads).await,
                    Cmd::Ha(args) => ha::run(args, threads).await,
                }
            } => r,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
        }
    });
    match result {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => {
            eprintln!("error: some requests failed; see the errors column");
            ExitCode::from(2)
        }
        Err(Error::Interrupted) => {
            eprintln!("interrupted");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A temporary directory removed on drop unless kept.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn new(keep: bool) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("lockbox-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| Error::file("creating", &path, e))?;
        Ok(WorkDir { path, keep })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept work directory {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A deterministic printable value of `size` bytes (JSON-safe, no escaping).
fn make_value(size: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn paths(n: usize, f: impl Fn(usize) -> String) -> Result<Vec<Uri>> {
    (0..n)
        .map(|i| {
            let p = f(i);
            p.parse::<Uri>()
                .map_err(|_| Error::InvalidArgument(format!("bad path {p}")))
        })
        .collect()
}

fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue)> {
    let v = HeaderValue::from_str(value)
        .map_err(|_| Error::InvalidArgument(format!("{name} is not a valid header value")))?;
    Ok((HeaderName::from_static(name), v))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::file("reading", path, e))
}

/// A server under test: its name in the table, how to reach it, its processes (for CPU use).
struct Side {
    target: &'static str,
    ep: Endpoint,
    pids: Vec<u32>,
}

async fn measure(
    rows: &mut Vec<Row>,
    side: &Side,
    op: &'static str,
    workload: &Arc<Workload>,
    concurrency: usize,
    timing: Timing,
) -> Result<()> {
    let target = side.target;
    eprint!("  {target:<14} {op:<5} c={concurrency:<3} ... ");
    let before = cpu::Sample::take(&side.pids);
    let outcome = load::run(&side.ep, workload.clone(), concurrency, timing).await?;
    let (client_cores, server_cores) = before.cores_until(&cpu::Sample::take(&side.pids));
    eprintln!(
        "{:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
        outcome.throughput(),
        outcome.quantile_ms(0.5),
        outcome.quantile_ms(0.99),
        outcome.errors
    );
    rows.push(Row {
        target,
        op,
        concurrency,
        outcome,
        client_cores,
        server_cores,
    });
    Ok(())
}

fn default_kube_bin(name: &str) -> PathBuf {
    let cache = std::env::var_os("LOCKBOX_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/lockbox")));
    match cache.map(|c| c.join("bin").join(name)) {
        Some(p) if p.exists() => p,
        _ => PathBuf::from(name),
    }
}

/// Runs the kv benchmark; returns whether any request failed.
async fn kv(args: KvArgs, threads: usize) -> Result<bool> {
    if args.load.concurrency.is_empty() || args.load.concurrency.contains(&0) {
        return Err(Error::InvalidArgument(
            "--concurrency needs positive values".into(),
        ));
    }
    if args.load.keys == 0 {
        return Err(Error::InvalidArgument("--keys must be positive".into()));
    }
    if !(args.load.duration > 0.0 && args.load.warmup >= 0.0) {
        return Err(Error::InvalidArgument(
            "--duration must be > 0 and --warmup >= 0".into(),
        ));
    }
    let timing = Timing {
        warmup: Duration::from_secs_f64(args.load.warmup),
        duration: Duration::from_secs_f64(args.load.duration),
    };
    let workspace = Path::new(WORKSPACE)
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(WORKSPACE));
    let (nproc, cpu_model, memory, loadavg, commit) = report::machine(&workspace);
    let work = WorkDir::new(args.keep_work_dir)?;
    let value = make_value(args.load.value_size);

    // lockbox
    let mut dev_server = None;
    let mut lockbox_pids = Vec::new();
    let mut lockbox = None;
    let mut lockbox_version = "not measured".to_string();
    if !args.skip_lockbox {
        let (url, ca_path) = match &args.lockbox_url {
            Some(url) => (
                url.clone(),
                args.lockbox_ca.clone().ok_or_else(|| {
                    Error::InvalidArgument("--lockbox-url needs --lockbox-ca".into())
                })?,
            ),
            None => {
                let bin = args
                    .lockbox_bin
                    .clone()
                    .unwrap_or_else(|| workspace.join("target/release/lockbox"));
                eprintln!("starting {} server --dev --dev-tls", bin.display());
                let server = lockbox::DevServer::start(
                    &bin,
                    &args.lockbox_token,
                    &[],
                    &work.path,
                    Duration::from_secs(args.lockbox_start_timeout),
                )
                .await?;
                eprintln!(
                    "  lockbox at {} (CA {}, log {})",
                    server.api_addr,
                    server.ca_path.display(),
                    server.log_path.display()
                );
                let r = (server.api_addr.clone(), server.ca_path.clone());
                lockbox_pids.extend(server.pid());
                dev_server = Some(server);
                r
            }
        };
        let tls = http::tls_config(&read_file(&ca_path)?, &ca_path.display().to_string())?;
        let ep =
            Endpoint::from_url(&url, tls, header("x-vault-token", &args.lockbox_token)?).await?;
        eprintln!(
            "  seeding {} keys of {} bytes",
            args.load.keys, args.load.value_size
        );
        lockbox::seed(&ep, args.load.keys, &value).await?;
        let tls = http::tls_info(&ep).await?;
        lockbox_version = match lockbox::version(&ep).await {
            Some(v) => format!("version {v}, {tls}"),
            None => tls,
        };
        lockbox = Some(Side {
            target: "lockbox",
            ep,
            pids: lockbox_pids,
        });
    }

    // kube-apiserver
    let mut harness = None;
    let mut kube = None;
    let mut kube_version = "not measured".to_string();
    let mut kube_source = String::from("-");
    let namespace = args
        .kube_namespace
        .clone()
        .unwrap_or_else(|| format!("lockbox-bench-{}", std::process::id()));
    if !args.skip_kube {
        let target = if let Some(url) = &args.kube_url {
            let (Some(token), Some(ca)) = (&args.kube_token, &args.kube_ca) else {
                return Err(Error::InvalidArgument(
                    "--kube-url needs --kube-token and --kube-ca".into(),
                ));
            };
            kube::KubeTarget {
                url: url.clone(),
                token: token.clone(),
                ca_pem: read_file(ca)?,
                source: format!("{url} (given)"),
                pids: Vec::new(),
            }
        } else if let Some(kc) = &args.kubeconfig {
            let kubectl = args
                .kubectl
                .clone()
                .unwrap_or_else(|| default_kube_bin("kubectl"));
            kube::KubeTarget::from_kubeconfig(kc, &kubectl)?
        } else if let Some(env) = &args.kube_env {
            kube::KubeTarget::from_env_file(env)?
        } else {
            let script = args
                .kube_up_script
                .clone()
                .unwrap_or_else(|| workspace.join("tests/harness/kube-up.sh"));
            eprintln!("starting etcd + kube-apiserver with {}", script.display());
            let (h, t) = kube::Harness::start(&script, &work.path.join("kube"))?;
            harness = Some(h);
            t
        };
        eprintln!("  kube-apiserver at {}", target.url);
        let tls = http::tls_config(&target.ca_pem, &target.source)?;
        let ep = Endpoint::from_url(
            &target.url,
            tls,
            header("authorization", &format!("Bearer {}", target.token))?,
        )
        .await?;
        eprintln!(
            "  seeding {} Secrets of {} bytes in namespace {namespace}",
            args.load.keys, args.load.value_size
        );
        kube::seed(&ep, &namespace, args.load.keys, &value).await?;
        let tls = http::tls_info(&ep).await?;
        kube_version = match kube::version(&ep).await {
            Some(v) => format!("{v} ({tls})"),
            None => tls,
        };
        kube_source = target.source;
        kube = Some(Side {
            target: "kube-apiserver",
            ep,
            pids: target.pids,
        });
    }

    let lockbox_reads = Arc::new(Workload {
        method: Method::GET,
        paths: paths(args.load.keys, lockbox::key_path)?,
        body: Bytes::new(),
    });
    let lockbox_writes = Arc::new(Workload {
        method: Method::PUT,
        paths: paths(args.load.keys, lockbox::key_path)?,
        body: lockbox::write_body(&value),
    });
    let kube_reads = Arc::new(Workload {
        method: Method::GET,
        paths: paths(args.load.keys, |i| kube::secret_path(&namespace, i))?,
        body: Bytes::new(),
    });

    eprintln!(
        "running: {:.0}s warm-up + {:.0}s measured per row, {threads} load-generator threads",
        args.load.warmup, args.load.duration
    );
    let mut rows = Vec::new();
    // Interleave targets per concurrency level, so slow drift on a shared machine
    // (other builds, thermal) hits both sides alike.
    for &c in &args.load.concurrency {
        if let Some(side) = &lockbox {
            measure(&mut rows, side, "read", &lockbox_reads, c, timing).await?;
        }
        if let Some(side) = &kube {
            measure(&mut rows, side, "read", &kube_reads, c, timing).await?;
        }
        if let (Some(side), false) = (&lockbox, args.skip_writes) {
            measure(&mut rows, side, "write", &lockbox_writes, c, timing).await?;
        }
    }
    let target_order = |t: &str| if t == "lockbox" { 0 } else { 1 };
    rows.sort_by_key(|r| (target_order(r.target), r.op != "read", r.concurrency));

    if let Some(Side { ep, .. }) = &kube
        && harness.is_none()
        && let Err(e) = kube::cleanup(ep, &namespace).await
    {
        eprintln!("warning: deleting the benchmark Secrets: {}", chain(&e));
    }
    if let Some(s) = dev_server {
        s.stop().await;
    }
    drop(harness);

    let ctx = report::Context {
        date: report::utc_now(),
        nproc,
        cpu_model,
        memory,
        loadavg,
        commit,
        lockbox_version,
        kube_version,
        kube_source,
        settings: format!(
            "{} keys × {} B values, {:.0} s warm-up + {:.0} s measured per row, closed loop, one HTTP/1.1 \
             keep-alive connection per worker, {threads} load-generator threads on the same machine",
            args.load.keys, args.load.value_size, args.load.warmup, args.load.duration
        ),
        command: std::iter::once("lockbox-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let section = report::section(&ctx, &rows, args.target_ratio);
    println!("{section}");
    if let Some(path) = &args.write_markdown {
        report::write_section(path, report::KV_MARKERS, &section, None)?;
        eprintln!("updated {}", path.display());
    }
    Ok(rows.iter().any(|r| r.outcome.errors > 0))
}
