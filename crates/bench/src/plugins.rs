//! `lockbox-bench plugins`: what running a secrets engine as a plugin process
//! costs, measured against one `lockbox server --dev --dev-tls --dev-plugin-dir DIR`:
//!
//! ```text
//!   lockbox-bench ──HTTPS──► lockbox ──(built-in kv)──► storage
//!                               │
//!                               └─gRPC/UDS HandleRequest─► lockbox-plugin-mock
//!                                 ◄─gRPC/UDS Storage.Get──┘ (child process)
//! ```
//!
//! 1. reads of `mock/bench/key-<i>` (the mock plugin) against reads of
//!    `secret/bench/key-<i>` (built-in kv), same closed loop as `kv`;
//! 2. cold starts: `sys/plugins/reload/backend` round trips, and enabling a
//!    mount of a non-multiplexed catalog entry (one new process per mount);
//! 3. resident memory of the plugin process(es) and of lockbox;
//! 4. requests failed while the plugin is reloaded every 500 ms under load.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use hyper::Method;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::http::{self, Conn, Endpoint};
use crate::load::{self, LoadArgs, Outcome, Timing, Workload};
use crate::procfs::{children_named, machine_busy_seconds, status_kib};
use crate::report::{self, Markers, ms};
use crate::{WORKSPACE, WorkDir, chain, cpu, header, lockbox, make_value, paths, read_file};

pub(crate) mod cold_start;
mod render;

use cold_start::*;
use render::*;

/// The section of BENCHMARKS.md this benchmark owns.
pub const MARKERS: Markers = Markers {
    begin: "<!-- plugins:begin -->",
    end: "<!-- plugins:end -->",
};

/// The plugin's file name in the plugin directory; the dev server registers it as `mock`,
/// and the host starts it with this argv[0].
const PLUGIN_FILE: &str = "lockbox-plugin-mock";
/// The catalog name the dev server gives it.
const PLUGIN_NAME: &str = "mock";
/// The mount of the multiplexed plugin.
const PLUGIN_MOUNT: &str = "mock";
/// The non-multiplexed catalog entry registered for cold starts.
const SOLO_NAME: &str = "mock-solo";
/// The same binary registered with `MOCK_PLUGIN_NO_CACHE=1`: its reads are not
/// marked cacheable, so every read crosses into the plugin process.
const UNCACHED_NAME: &str = "mock-uncached";
/// Its mount.
const UNCACHED_MOUNT: &str = "mock-uncached";
/// Row labels of table 1.
const BUILTIN: &str = "built-in kv";
const CACHED: &str = "mock plugin";
const UNCACHED: &str = "mock plugin, uncached";

const REPRODUCE: &str = "cargo build --release -p lockbox -p lockbox-bench -p lockbox-plugin-mock && target/release/lockbox-bench plugins --write-markdown BENCHMARKS.md";

#[derive(Args)]
#[command(mut_arg("concurrency", |a| a.help("Concurrency levels of the read comparison")))]
#[command(mut_arg("keys", |a| a.help("Number of keys written to each mount; reads cycle through them")))]
pub struct PluginsArgs {
    /// The lockbox binary to start as `server --dev --dev-tls --dev-plugin-dir DIR`
    /// [default: <workspace>/target/release/lockbox].
    #[arg(long)]
    lockbox_bin: Option<PathBuf>,
    /// The mock plugin binary, copied into DIR as `lockbox-plugin-mock`
    /// [default: <workspace>/target/release/lockbox-plugin-mock].
    #[arg(long)]
    plugin_bin: Option<PathBuf>,
    /// Root token (passed as --dev-root-token-id).
    #[arg(long, default_value = "root")]
    lockbox_token: String,
    /// Seconds to wait for the dev server to print its address.
    #[arg(long, default_value_t = 60)]
    lockbox_start_timeout: u64,

    #[command(flatten)]
    pub load: LoadArgs,

    /// Cold starts measured per kind (reload, new non-multiplexed mount).
    #[arg(long, default_value_t = 30)]
    cold_starts: usize,
    /// Measured seconds of the reload-under-load run.
    #[arg(long, default_value_t = 10.0)]
    reload_duration: f64,
    /// Milliseconds between reload starts during the reload-under-load run.
    #[arg(long, default_value_t = 500)]
    reload_interval_ms: u64,
    /// Concurrency of the reload-under-load run.
    #[arg(long, default_value_t = 16)]
    reload_concurrency: usize,

    /// Required plugin/built-in read throughput ratio (at every concurrency level).
    #[arg(long, default_value_t = 0.7)]
    target_ratio: f64,
    /// Required cold start p50, in milliseconds.
    #[arg(long, default_value_t = 50.0)]
    target_cold_start_ms: f64,

    /// Rewrite the plugins section of this markdown file (e.g. BENCHMARKS.md);
    /// a missing section is inserted after the kv-http one.
    #[arg(long)]
    write_markdown: Option<PathBuf>,
    /// Keep the temporary directory (server log, plugin directory) after the run.
    #[arg(long)]
    keep_work_dir: bool,
}

// ---------------------------------------------------------------- /proc

/// Voluntary + involuntary context switches of all live threads of `pid`.
fn context_switches(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for t in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(t.path().join("status")) else {
            continue; // the thread just exited
        };
        for l in status.lines() {
            if let Some(v) = l
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Some(total)
}

fn total_context_switches(pids: &[u32]) -> Option<u64> {
    pids.iter().map(|&p| context_switches(p)).sum()
}

fn plugin_pids(server: u32) -> Vec<u32> {
    children_named(server, PLUGIN_FILE)
}

// ---------------------------------------------------------------- samples

/// Durations in milliseconds with nearest-rank quantiles.
#[derive(Default)]
struct Samples(Vec<f64>);

impl Samples {
    fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }

    fn quantile(&self, q: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }
}

/// Seconds without a useless fraction: `2`, `0.5`.
fn secs(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), ms)
}

fn cores(c: Option<f64>) -> String {
    c.map_or_else(|| "-".into(), |c| format!("{c:.2}"))
}

fn errors_cell(o: &Outcome) -> String {
    if o.errors == 0 {
        return "0".into();
    }
    let kinds: Vec<String> = o
        .error_kinds
        .iter()
        .map(|(k, v)| format!("{v}× {k}"))
        .collect();
    format!("**{}** ({})", o.errors, kinds.join(", "))
}

fn quantile_us(o: &Outcome, q: f64) -> f64 {
    if o.latency_us.is_empty() {
        0.0
    } else {
        o.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

// ---------------------------------------------------------------- 1. reads

struct ReadRow {
    target: &'static str,
    concurrency: usize,
    outcome: Outcome,
    client_cores: Option<f64>,
    lockbox_cores: Option<f64>,
    plugin_cores: Option<f64>,
    /// Context switches per second of lockbox and the plugin process(es), together.
    switches_per_s: Option<f64>,
    /// Cores busy with anything else on the machine (other builds, the kernel's own work).
    other_cores: Option<f64>,
}

impl ReadRow {
    /// Context switches (lockbox + plugin) per successful read.
    fn switches_per_read(&self) -> Option<f64> {
        let t = self.outcome.throughput();
        (t > 0.0)
            .then(|| self.switches_per_s.map(|s| s / t))
            .flatten()
    }

    /// Server-side CPU time per successful read (lockbox + plugin), in µs.
    fn cpu_us_per_read(&self) -> Option<f64> {
        let t = self.outcome.throughput();
        let c = self.lockbox_cores? + self.plugin_cores.unwrap_or(0.0);
        (t > 0.0).then(|| c * 1e6 / t)
    }
}

async fn read_row(
    ep: &Endpoint,
    target: &'static str,
    workload: &Arc<Workload>,
    concurrency: usize,
    timing: Timing,
    server: u32,
) -> Result<ReadRow> {
    eprint!("  {target:<12} read c={concurrency:<3} ... ");
    let plugins = plugin_pids(server);
    let mut servers = plugins.clone();
    servers.push(server);
    let before = (
        Instant::now(),
        cpu::process_seconds(std::process::id()),
        cpu::process_seconds(server),
        cpu::total_seconds(&plugins),
        total_context_switches(&servers),
        machine_busy_seconds(),
    );
    let outcome = load::run(ep, workload.clone(), concurrency, timing).await?;
    let wall = before.0.elapsed().as_secs_f64();
    let per = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / wall);
    let client_cores = per(before.1, cpu::process_seconds(std::process::id()));
    let lockbox_cores = per(before.2, cpu::process_seconds(server));
    let plugin_cores = per(before.3, cpu::total_seconds(&plugins));
    let switches_per_s = per(
        before.4.map(|v| v as f64),
        total_context_switches(&servers).map(|v| v as f64),
    );
    let other_cores = per(before.5, machine_busy_seconds()).map(|all| {
        let ours = client_cores.unwrap_or(0.0)
            + lockbox_cores.unwrap_or(0.0)
            + plugin_cores.unwrap_or(0.0);
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
        client_cores,
        lockbox_cores,
        plugin_cores,
        switches_per_s,
        other_cores,
    })
}

// ---------------------------------------------------------------- 4. reload under load

struct ReloadRun {
    outcome: Outcome,
    concurrency: usize,
    interval: Duration,
    /// Round trips of the reloads that answered 200.
    rtt: Samples,
    /// Reloads that did not answer 200, with why.
    failed: Vec<String>,
    /// Distinct plugin process ids seen serving (before, and after each reload).
    pids: BTreeSet<u32>,
}

async fn reload_under_load(
    ep: &Endpoint,
    server: u32,
    plugin: &'static str,
    workload: &Arc<Workload>,
    concurrency: usize,
    duration: Duration,
    interval: Duration,
) -> Result<ReloadRun> {
    let (tx, rx) = tokio::sync::oneshot::channel::<Instant>();
    let mut conn = Conn::connect(ep).await?;
    let rep = ep.clone();
    let reloader = tokio::spawn(async move {
        let mut rtt = Samples::default();
        let mut failed = Vec::new();
        let mut pids: BTreeSet<u32> = plugin_pids(server).into_iter().collect();
        let Ok(window) = rx.await else {
            return (rtt, failed, pids);
        };
        let body = Bytes::from(serde_json::json!({ "plugin": plugin }).to_string());
        // Reloads start and (normally) finish inside the measured window.
        let stop = window + duration.saturating_sub(interval);
        let mut next = window + interval / 2;
        while next < stop {
            tokio::time::sleep_until(next.into()).await;
            let t0 = Instant::now();
            let res = tokio::time::timeout(
                Duration::from_secs(60),
                conn.send(
                    &rep,
                    Method::PUT,
                    "/v1/sys/plugins/reload/backend",
                    body.clone(),
                ),
            )
            .await;
            match res {
                Ok(Ok((s, _))) if s.as_u16() == 200 => rtt.push(t0.elapsed()),
                Ok(Ok((s, b))) => failed.push(format!("HTTP {s}: {}", http::snippet(&b))),
                Ok(Err(e)) => {
                    failed.push(chain(&e));
                    match Conn::connect(&rep).await {
                        Ok(c) => conn = c,
                        Err(e) => {
                            failed.push(chain(&e));
                            break;
                        }
                    }
                }
                Err(_) => {
                    failed.push("no answer within 60 s".into());
                    break;
                }
            }
            pids.extend(plugin_pids(server));
            next += interval;
            let now = Instant::now();
            if next < now {
                next = now;
            }
        }
        (rtt, failed, pids)
    });
    let timing = Timing {
        warmup: Duration::from_secs(1),
        duration,
    };
    let outcome = load::run_notify(ep, workload.clone(), concurrency, timing, Some(tx)).await?;
    let (rtt, failed, pids) = reloader
        .await
        .map_err(|e| Error::Worker(format!("reloader: {e}")))?;
    Ok(ReloadRun {
        outcome,
        concurrency,
        interval,
        rtt,
        failed,
        pids,
    })
}

// ---------------------------------------------------------------- the run

struct Memory {
    server: Option<(u32, Option<u64>, Option<u64>)>,
    plugins: Vec<(u32, Option<u64>, Option<u64>)>,
}

fn memory(server: u32) -> Memory {
    let one = |pid: u32| (pid, status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM"));
    Memory {
        server: Some(one(server)),
        plugins: plugin_pids(server).into_iter().map(one).collect(),
    }
}

struct Facts {
    date: String,
    machine: String,
    lockbox: String,
    plugin: String,
    settings: String,
    command: String,
}

fn uncached_key_path(i: usize) -> String {
    format!("/v1/{UNCACHED_MOUNT}/bench/key-{i}")
}

fn mock_key_path(i: usize) -> String {
    format!("/v1/{PLUGIN_MOUNT}/bench/key-{i}")
}

/// Runs the plugins benchmark; returns whether any request failed.
pub async fn run(args: PluginsArgs, threads: usize) -> Result<bool> {
    if args.load.concurrency.is_empty()
        || args.load.concurrency.contains(&0)
        || args.reload_concurrency == 0
    {
        return Err(Error::InvalidArgument(
            "--concurrency and --reload-concurrency need positive values".into(),
        ));
    }
    if args.load.keys == 0 || args.cold_starts == 0 || args.reload_interval_ms == 0 {
        return Err(Error::InvalidArgument(
            "--keys, --cold-starts and --reload-interval-ms must be positive".into(),
        ));
    }
    if !(args.load.duration > 0.0 && args.load.warmup >= 0.0 && args.reload_duration > 0.0) {
        return Err(Error::InvalidArgument(
            "--duration and --reload-duration must be > 0, --warmup >= 0".into(),
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

    // The plugin directory: a copy of the mock plugin under its catalog file name.
    let plugin_src = args
        .plugin_bin
        .clone()
        .unwrap_or_else(|| workspace.join("target/release").join(PLUGIN_FILE));
    let plugin_dir = work.path.join("plugins");
    std::fs::create_dir_all(&plugin_dir).map_err(|e| Error::file("creating", &plugin_dir, e))?;
    let plugin_bin = plugin_dir.join(PLUGIN_FILE);
    std::fs::copy(&plugin_src, &plugin_bin).map_err(|e| Error::file("copying", &plugin_src, e))?;
    let plugin_sha = sha256_hex(&read_file(&plugin_bin)?);

    let bin = args
        .lockbox_bin
        .clone()
        .unwrap_or_else(|| workspace.join("target/release/lockbox"));
    eprintln!(
        "starting {} server --dev --dev-tls --dev-plugin-dir {}",
        bin.display(),
        plugin_dir.display()
    );
    let server = lockbox::DevServer::start(
        &bin,
        &args.lockbox_token,
        &[
            OsString::from("--dev-plugin-dir"),
            plugin_dir.clone().into(),
        ],
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
    let result = measure_all(&args, &server, timing, &value, &plugin_bin, &plugin_sha).await;
    server.stop().await;
    let (reads, cold, mem, reload, lockbox_version) = result?;
    let loadavg_after = report::machine(&workspace).3;

    let facts = Facts {
        date: report::utc_now(),
        machine: format!(
            "{nproc} CPUs ({cpu_model}), {mem_total} RAM, load average before the run \
             {loadavg} (after it {loadavg_after}, this run's own load included)"
        ),
        lockbox: format!("commit {commit} ({lockbox_version})"),
        plugin: format!(
            "`{PLUGIN_FILE}` from {}, {:.1} MB, sha256 {}…",
            plugin_src
                .strip_prefix(&workspace)
                .unwrap_or(&plugin_src)
                .display(),
            cold.binary_bytes as f64 / 1e6,
            &plugin_sha[..12]
        ),
        settings: format!(
            "{} keys × {} B values per mount, {} s warm-up + {} s measured per read row, closed \
             loop, one HTTP/1.1 keep-alive connection per worker, {threads} load-generator threads \
             on the same machine; {} cold starts of each kind; reload run: concurrency {}, {} s, \
             a reload every {} ms",
            args.load.keys,
            args.load.value_size,
            secs(args.load.warmup),
            secs(args.load.duration),
            args.cold_starts,
            args.reload_concurrency,
            secs(args.reload_duration),
            args.reload_interval_ms
        ),
        command: std::iter::once("lockbox-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let section = section(&Results {
        facts: &facts,
        reads: &reads,
        cold: &cold,
        mem: &mem,
        reload: &reload,
        target_ratio: args.target_ratio,
        target_cold_ms: args.target_cold_start_ms,
        nproc,
    });
    println!("{section}");
    if let Some(path) = &args.write_markdown {
        report::write_section(path, MARKERS, &section, Some(report::KV_MARKERS))?;
        eprintln!("updated {}", path.display());
    }
    let failed = reads.iter().any(|r| r.outcome.errors > 0)
        || reload.outcome.errors > 0
        || !reload.failed.is_empty();
    Ok(failed)
}

type Measured = (Vec<ReadRow>, ColdStart, Memory, ReloadRun, String);

async fn measure_all(
    args: &PluginsArgs,
    server: &lockbox::DevServer,
    timing: Timing,
    value: &str,
    plugin_bin: &Path,
    plugin_sha: &str,
) -> Result<Measured> {
    // (plugin_bin is the copy in the plugin directory; the catalog runs that one.)
    let server_pid = server
        .pid()
        .ok_or_else(|| Error::InvalidArgument("the dev server exited".into()))?;
    let tls = http::tls_config(
        &read_file(&server.ca_path)?,
        &server.ca_path.display().to_string(),
    )?;
    let ep = Endpoint::from_url(
        &server.api_addr,
        tls,
        header("x-vault-token", &args.lockbox_token)?,
    )
    .await?;

    // The catalog entry the dev server registered must be our copy.
    let mut conn = Conn::connect(&ep).await?;
    let entry = conn
        .expect(
            &ep,
            Method::GET,
            &format!("/v1/sys/plugins/catalog/secret/{PLUGIN_NAME}"),
            Bytes::new(),
            &[200],
        )
        .await?;
    let registered: serde_json::Value =
        serde_json::from_slice(&entry).map_err(|e| Error::UnexpectedBody {
            what: "GET sys/plugins/catalog/secret/mock".into(),
            reason: format!("not JSON: {e}"),
        })?;
    if registered.pointer("/data/sha256").and_then(|v| v.as_str()) != Some(plugin_sha) {
        return Err(Error::UnexpectedBody {
            what: "GET sys/plugins/catalog/secret/mock".into(),
            reason: format!("sha256 is not {plugin_sha} (the copied plugin): {registered}"),
        });
    }
    conn.expect(
        &ep,
        Method::POST,
        &format!("/v1/sys/mounts/{PLUGIN_MOUNT}"),
        Bytes::from(serde_json::json!({ "type": PLUGIN_NAME }).to_string()),
        &[204, 200],
    )
    .await?;
    conn.expect(
        &ep,
        Method::PUT,
        &format!("/v1/sys/plugins/catalog/secret/{UNCACHED_NAME}"),
        Bytes::from(
            serde_json::json!({
                "sha256": plugin_sha,
                "command": PLUGIN_FILE,
                "env": ["MOCK_PLUGIN_NO_CACHE=1"],
            })
            .to_string(),
        ),
        &[204, 200],
    )
    .await?;
    conn.expect(
        &ep,
        Method::POST,
        &format!("/v1/sys/mounts/{UNCACHED_MOUNT}"),
        Bytes::from(serde_json::json!({ "type": UNCACHED_NAME }).to_string()),
        &[204, 200],
    )
    .await?;
    drop(conn);
    eprintln!(
        "  enabled {PLUGIN_MOUNT}/ (plugin pid {:?}); seeding {} keys of {} bytes in secret/ and {PLUGIN_MOUNT}/",
        plugin_pids(server_pid),
        args.load.keys,
        args.load.value_size
    );
    lockbox::seed(&ep, args.load.keys, value).await?;
    lockbox::seed_paths(&ep, args.load.keys, value, mock_key_path).await?;
    lockbox::seed_paths(&ep, args.load.keys, value, uncached_key_path).await?;
    let tls_info = http::tls_info(&ep).await?;
    let lockbox_version = match lockbox::version(&ep).await {
        Some(v) => format!("version {v}, {tls_info}"),
        None => tls_info,
    };

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
    let uncached = Arc::new(Workload {
        method: Method::GET,
        paths: paths(args.load.keys, uncached_key_path)?,
        body: Bytes::new(),
    });

    eprintln!(
        "1. reads: {} s warm-up + {} s measured per row",
        secs(args.load.warmup),
        secs(args.load.duration)
    );
    let mut reads = Vec::new();
    for &c in &args.load.concurrency {
        reads.push(read_row(&ep, BUILTIN, &builtin, c, timing, server_pid).await?);
        reads.push(read_row(&ep, CACHED, &mock, c, timing, server_pid).await?);
        reads.push(read_row(&ep, UNCACHED, &uncached, c, timing, server_pid).await?);
    }

    eprintln!("3. memory after the read load");
    let mem = memory(server_pid);

    eprintln!("2. cold starts");
    let mut cold = ColdStart::default();
    reload_starts(&ep, args.cold_starts, &mut cold).await?;
    cold.solo = solo_starts(&ep, server_pid, args.cold_starts, SOLO_NAME, plugin_bin).await?;
    match strip_debug(plugin_bin) {
        Ok(stripped) => {
            cold.stripped = Some(
                solo_starts(
                    &ep,
                    server_pid,
                    args.cold_starts,
                    &format!("{SOLO_NAME}-stripped"),
                    &stripped,
                )
                .await?,
            );
        }
        Err(e) => eprintln!("  skipping the stripped-binary comparison: {e}"),
    }
    eprintln!("  host launch steps, timed in this process");
    launch_steps(plugin_bin, 10, &mut cold)?;

    eprintln!(
        "4. reload every {} ms under load, c={}, {} s",
        args.reload_interval_ms,
        args.reload_concurrency,
        secs(args.reload_duration)
    );
    let reload = reload_under_load(
        &ep,
        server_pid,
        UNCACHED_NAME,
        &uncached,
        args.reload_concurrency,
        Duration::from_secs_f64(args.reload_duration),
        Duration::from_millis(args.reload_interval_ms),
    )
    .await?;
    eprintln!(
        "  {} requests, {} failed, {} reloads ({} failed), p99 {:.2} ms",
        reload.outcome.ok + reload.outcome.errors,
        reload.outcome.errors,
        reload.rtt.0.len() + reload.failed.len(),
        reload.failed.len(),
        reload.outcome.quantile_ms(0.99)
    );
    Ok((reads, cold, mem, reload, lockbox_version))
}

#[cfg(test)]
mod tests;
