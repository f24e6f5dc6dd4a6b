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
use crate::load::{self, Outcome, Timing, Workload};
use crate::procfs::{children_named, machine_busy_seconds, status_kib};
use crate::report::{self, Markers, ms};
use crate::{WORKSPACE, WorkDir, chain, cpu, header, lockbox, make_value, paths, read_file};

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

    /// Concurrency levels of the read comparison.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64])]
    concurrency: Vec<usize>,
    /// Measured seconds per read row.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured warm-up seconds before each read row.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Number of keys written to each mount; reads cycle through them.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Size in bytes of each value.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,
    /// Load generator threads [default: number of CPUs].
    #[arg(long)]
    pub client_threads: Option<usize>,

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

// ---------------------------------------------------------------- 2. cold start

/// Cold starts of new mounts of one non-multiplexed catalog entry.
#[derive(Default)]
struct SoloStarts {
    /// Size of the binary the entry runs, in bytes.
    binary_bytes: u64,
    /// `POST sys/mounts/<fresh>`: returns once the process is healthy and the mount set up.
    enable: Samples,
    /// The same, through writing one key and reading it back (first 200).
    first_read: Samples,
    /// Enables after which exactly one more process with the entry's argv[0] ran.
    new_process: usize,
}

#[derive(Default)]
struct ColdStart {
    /// `PUT sys/plugins/reload/backend {"plugin":"mock"}` round trips, idle server.
    reload: Samples,
    /// New mounts of `mock-solo` (the benchmarked binary, multiplexing off).
    solo: SoloStarts,
    /// New mounts of `mock-solo-stripped` (the same binary without debug info), if
    /// `strip` was available: how much of the cold start is proportional to file size.
    stripped: Option<SoloStarts>,
    /// Binary size in bytes.
    binary_bytes: u64,
    /// Reading and hashing the binary in this process (what the host does before every exec).
    hash: Samples,
    /// Copying the bytes into a memfd (what the host does next).
    memfd: Samples,
    /// exec of the binary from a memfd until it exits (no magic cookie: it refuses at once).
    exec: Samples,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A sealed-less memfd holding `bytes` (close-on-exec).
fn memfd_with(bytes: &[u8]) -> std::io::Result<std::fs::File> {
    use std::io::Write as _;
    use std::os::fd::FromRawFd as _;
    // SAFETY: a valid NUL-terminated name; the fd is owned by the File below.
    let fd = unsafe { libc::memfd_create(c"lockbox-bench-plugin".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just created and nothing else owns it.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    f.write_all(bytes)?;
    Ok(f)
}

/// Times the host's pre-handshake work on the binary, in this process: read + sha256,
/// copy into a memfd, exec → exit (refused for lack of the magic cookie).
fn launch_steps(bin: &Path, n: usize, cs: &mut ColdStart) -> Result<()> {
    use std::os::fd::AsRawFd as _;
    for _ in 0..n {
        let t0 = Instant::now();
        let bytes = read_file(bin)?;
        let _ = sha256_hex(&bytes);
        cs.hash.push(t0.elapsed());
        cs.binary_bytes = bytes.len() as u64;

        let t0 = Instant::now();
        let memfd = memfd_with(&bytes).map_err(|e| Error::file("copying into a memfd", bin, e))?;
        cs.memfd.push(t0.elapsed());

        let exe = format!("/proc/self/fd/{}", memfd.as_raw_fd());
        let t0 = Instant::now();
        let status = std::process::Command::new(&exe)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|source| Error::RunCommand {
                command: format!("{} (from a memfd)", bin.display()),
                source,
            })?;
        // A plugin started without the cookie explains and exits 1.
        if status.code() == Some(1) {
            cs.exec.push(t0.elapsed());
        }
    }
    Ok(())
}

async fn reload_starts(ep: &Endpoint, n: usize, cs: &mut ColdStart) -> Result<()> {
    let mut conn = Conn::connect(ep).await?;
    let reload_body = Bytes::from(serde_json::json!({ "plugin": PLUGIN_NAME }).to_string());
    let check = format!("/v1/{PLUGIN_MOUNT}/bench/key-0");
    eprintln!("  {n} reloads of {PLUGIN_NAME} (idle)");
    for _ in 0..n {
        let t0 = Instant::now();
        conn.expect(
            ep,
            Method::PUT,
            "/v1/sys/plugins/reload/backend",
            reload_body.clone(),
            &[200],
        )
        .await?;
        cs.reload.push(t0.elapsed());
        conn.expect(ep, Method::GET, &check, Bytes::new(), &[200])
            .await?;
        // Let the old process's exit and the new one's output settle.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Registers `name` (`command` in the plugin directory, `multiplexing: false`) and
/// enables, uses and disables `n` fresh mounts of it, one after the other.
async fn solo_starts(
    ep: &Endpoint,
    server: u32,
    n: usize,
    name: &str,
    command: &Path,
) -> Result<SoloStarts> {
    let bytes = read_file(command)?;
    let file = command
        .file_name()
        .and_then(|f| f.to_str())
        .ok_or_else(|| Error::InvalidArgument(format!("bad plugin file {}", command.display())))?;
    let mut out = SoloStarts {
        binary_bytes: bytes.len() as u64,
        ..Default::default()
    };
    let mut conn = Conn::connect(ep).await?;
    eprintln!(
        "  {n} mounts of {name} ({:.1} MB, multiplexing off: one process each)",
        bytes.len() as f64 / 1e6
    );
    let body = serde_json::json!({
        "sha256": sha256_hex(&bytes),
        "command": file,
        "multiplexing": false,
    });
    drop(bytes);
    conn.expect(
        ep,
        Method::PUT,
        &format!("/v1/sys/plugins/catalog/secret/{name}"),
        Bytes::from(body.to_string()),
        &[204, 200],
    )
    .await?;
    let mount_body = Bytes::from(serde_json::json!({ "type": name }).to_string());
    let probe_body = lockbox::write_body("cold");
    for i in 0..n {
        let mount = format!("{name}-{i}");
        let before = children_named(server, file).len();
        let t0 = Instant::now();
        conn.expect(
            ep,
            Method::POST,
            &format!("/v1/sys/mounts/{mount}"),
            mount_body.clone(),
            &[204, 200],
        )
        .await?;
        out.enable.push(t0.elapsed());
        let probe = format!("/v1/{mount}/probe");
        conn.expect(ep, Method::PUT, &probe, probe_body.clone(), &[204, 200])
            .await?;
        let deadline = t0 + Duration::from_secs(10);
        loop {
            let (status, body) = conn.send(ep, Method::GET, &probe, Bytes::new()).await?;
            if status.as_u16() == 200 {
                out.first_read.push(t0.elapsed());
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::UnexpectedStatus {
                    what: format!("GET {probe} (first read after enabling)"),
                    expected: 200,
                    status: status.as_u16(),
                    body: http::snippet(&body),
                });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if children_named(server, file).len() == before + 1 {
            out.new_process += 1;
        }
        conn.expect(
            ep,
            Method::DELETE,
            &format!("/v1/sys/mounts/{mount}"),
            Bytes::new(),
            &[204, 200],
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(out)
}

/// A copy of `bin` without debug info (`strip --strip-debug`, like Cargo's
/// `strip = "debuginfo"`) next to it, or why not.
fn strip_debug(bin: &Path) -> std::result::Result<PathBuf, String> {
    let out = bin.with_file_name(format!("{PLUGIN_FILE}-stripped"));
    let res = std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg(bin)
        .arg("-o")
        .arg(&out)
        .output()
        .map_err(|e| format!("cannot run strip: {e}"))?;
    if !res.status.success() {
        return Err(format!(
            "strip failed ({}): {}",
            res.status,
            String::from_utf8_lossy(&res.stderr).trim()
        ));
    }
    Ok(out)
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
    if args.concurrency.is_empty() || args.concurrency.contains(&0) || args.reload_concurrency == 0
    {
        return Err(Error::InvalidArgument(
            "--concurrency and --reload-concurrency need positive values".into(),
        ));
    }
    if args.keys == 0 || args.cold_starts == 0 || args.reload_interval_ms == 0 {
        return Err(Error::InvalidArgument(
            "--keys, --cold-starts and --reload-interval-ms must be positive".into(),
        ));
    }
    if !(args.duration > 0.0 && args.warmup >= 0.0 && args.reload_duration > 0.0) {
        return Err(Error::InvalidArgument(
            "--duration and --reload-duration must be > 0, --warmup >= 0".into(),
        ));
    }
    let timing = Timing {
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
    };
    let workspace = Path::new(WORKSPACE)
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(WORKSPACE));
    let (nproc, cpu_model, mem_total, loadavg, commit) = report::machine(&workspace);
    let work = WorkDir::new(args.keep_work_dir)?;
    let value = make_value(args.value_size);

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
            args.keys,
            args.value_size,
            secs(args.warmup),
            secs(args.duration),
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
        args.keys,
        args.value_size
    );
    lockbox::seed(&ep, args.keys, value).await?;
    lockbox::seed_paths(&ep, args.keys, value, mock_key_path).await?;
    lockbox::seed_paths(&ep, args.keys, value, uncached_key_path).await?;
    let tls_info = http::tls_info(&ep).await?;
    let lockbox_version = match lockbox::version(&ep).await {
        Some(v) => format!("version {v}, {tls_info}"),
        None => tls_info,
    };

    let builtin = Arc::new(Workload {
        method: Method::GET,
        paths: paths(args.keys, lockbox::key_path)?,
        body: Bytes::new(),
    });
    let mock = Arc::new(Workload {
        method: Method::GET,
        paths: paths(args.keys, mock_key_path)?,
        body: Bytes::new(),
    });
    let uncached = Arc::new(Workload {
        method: Method::GET,
        paths: paths(args.keys, uncached_key_path)?,
        body: Bytes::new(),
    });

    eprintln!(
        "1. reads: {} s warm-up + {} s measured per row",
        secs(args.warmup),
        secs(args.duration)
    );
    let mut reads = Vec::new();
    for &c in &args.concurrency {
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

// ---------------------------------------------------------------- the report

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}

fn find<'a>(rows: &'a [ReadRow], target: &str, c: usize) -> Option<&'a ReadRow> {
    rows.iter()
        .find(|r| r.target == target && r.concurrency == c)
}

fn kib(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// What the report is made of.
struct Results<'a> {
    facts: &'a Facts,
    reads: &'a [ReadRow],
    cold: &'a ColdStart,
    mem: &'a Memory,
    reload: &'a ReloadRun,
    target_ratio: f64,
    target_cold_ms: f64,
    nproc: usize,
}

fn section(r: &Results<'_>) -> String {
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "{}", MARKERS.begin);
    let _ = writeln!(
        w,
        "<!-- Generated by `lockbox-bench plugins`; edits here are overwritten. -->"
    );
    let _ = writeln!(w, "## Plugin-backed engines (`plugins`)\n");
    let _ = writeln!(
        w,
        "**Question:** what does serving a secrets engine from a plugin process cost, \
         compared with the built-in kv engine; how fast does a plugin process start; how much \
         memory does it take; and does a reload under load fail any request?\n"
    );
    let _ = writeln!(
        w,
        "**What it measures.** `lockbox-bench plugins` (crate `crates/bench/`) starts \
         `target/release/lockbox server --dev --dev-tls --dev-root-token-id root \
         --dev-listen-address 127.0.0.1:0 --dev-plugin-dir DIR`, where DIR is a temporary \
         directory holding a copy of `target/release/lockbox-plugin-mock` (registered by the \
         dev server as `mock`), enables `mock/` (`POST /v1/sys/mounts/mock {{\"type\":\"mock\"}}`), \
         registers the same file a second time as `mock-uncached` with \
         `env: [\"MOCK_PLUGIN_NO_CACHE=1\"]` (a second process whose reads are not marked \
         cacheable) and enables it at `mock-uncached/`, and writes the same keys to \
         `secret/bench/key-<i>` (built-in kv), `mock/bench/key-<i>` and \
         `mock-uncached/bench/key-<i>`. Then it measures, in the order 1, 3, 2, 4:\n\n\
         1. **Reads**, with the closed loop of `kv-http` above (one keep-alive HTTPS connection \
         per worker, TLS verified, warm-up then measured window, rows interleaved per \
         concurrency). An uncached plugin read is HTTPS → lockbox → gRPC `HandleRequest` over a \
         Unix socket → plugin → gRPC `Storage.Get` back to lockbox (the plugin's storage is the \
         host's encrypted view) → answer; a cached one (`mock/`, after the first read of a key) \
         is answered by lockbox's read-response cache; a built-in read stays inside lockbox. CPU columns are \
         average cores over the row (warm-up included) from `/proc/PID/stat`; *server CPU per \
         read* is (lockbox + plugin cores) / throughput; *switches per read* counts the \
         context switches of all lockbox and plugin threads (`/proc/PID/task/*/status`) per \
         read; *other load* is the rest of the machine's busy time (`/proc/stat`): other \
         programs and kernel work not charged to these processes; a row with much of it ran \
         on a busy machine.\n\
         2. **Cold start**, on an otherwise idle server, one request at a time on one \
         keep-alive connection: (a) the round trip of `PUT /v1/sys/plugins/reload/backend \
         {{\"plugin\":\"mock\"}}`: read and hash the binary, exec it from a sealed memfd, \
         handshake, health check, `Info`, `Setup`/`Initialize` of the mount, swap, then drain \
         and stop the old process; (b) `POST /v1/sys/mounts/mock-solo-<i>` for the catalog \
         entry `mock-solo` (the same file, `multiplexing: false`, so every mount starts its own \
         process; the call returns once the process is healthy and the mount set up); (c) the \
         same through writing one key to the new mount and reading it back (the first 200). \
         Each new mount is disabled before the next. For orientation, the host's first launch \
         steps are timed inside the load generator on the same file, and (b) is repeated with \
         a copy of the binary without debug info (`strip --strip-debug`), registered as \
         `mock-solo-stripped`.\n\
         3. **Memory**: `VmRSS` (and the peak, `VmHWM`) from `/proc/PID/status` of lockbox and \
         of its children whose argv[0] is `lockbox-plugin-mock`, right after the read load.\n\
         4. **Reload under load**: reads of `mock-uncached/bench/key-<i>` (so every read \
         reaches a plugin process) in the same closed loop while `PUT \
         /v1/sys/plugins/reload/backend {{\"plugin\":\"mock-uncached\"}}` is triggered at a \
         fixed interval inside the measured window; every non-2xx answer or broken connection \
         in the window counts as failed.\n"
    );
    let _ = writeln!(
        w,
        "**Targets** (issue): plugin-backed reads reach ≥ {:.0}% of built-in kv throughput; \
         plugin cold start p50 < {:.0} ms; no request fails during a reload.\n",
        r.target_ratio * 100.0,
        r.target_cold_ms
    );
    let _ = writeln!(
        w,
        "**Caveat: one machine.** lockbox, the plugin process and the load generator share \
         the same {} CPUs (and whatever else runs there: see the load average); compare rows \
         of the same run. At concurrency 1 every request waits for wake-ups, so that row \
         depends on how idle the machine is (in the runs made while writing this benchmark, \
         built-in kv at concurrency 1 was about twice as fast on a busy machine as on an idle \
         one, probably because idle CPUs take longer to wake up); rows at 16 and 64, where \
         the cores are busy, are the throughput comparison.\n",
        r.nproc
    );
    let _ = writeln!(w, "### How to reproduce\n\nFrom the repository root:\n");
    let _ = writeln!(w, "```sh\n{REPRODUCE}\n```\n");
    let _ = writeln!(
        w,
        "Flags (`lockbox-bench plugins --help`): `--concurrency 1,16,64 --duration 10 \
         --warmup 2 --keys 1000 --value-size 1024`, `--cold-starts 30`, `--reload-duration 10 \
         --reload-interval-ms 500 --reload-concurrency 16`, `--plugin-bin FILE`, \
         `--keep-work-dir` (keep the server log).\n"
    );
    let f = r.facts;
    let _ = writeln!(w, "### Results\n");
    let _ = writeln!(w, "- date: {}", f.date);
    let _ = writeln!(w, "- machine: {}", f.machine);
    let _ = writeln!(w, "- lockbox: {}", f.lockbox);
    let _ = writeln!(w, "- plugin: {}", f.plugin);
    let _ = writeln!(w, "- settings: {}", f.settings);
    let _ = writeln!(w, "- command: `{}`\n", f.command);
    reads_part(w, r);
    cold_part(w, r);
    memory_part(w, r.mem);
    reload_part(w, r);
    let _ = writeln!(w, "{}", MARKERS.end);
    s
}

fn reads_part(w: &mut String, r: &Results<'_>) {
    let _ = writeln!(w, "#### 1. Reads: mock plugin vs built-in kv\n");
    let _ = writeln!(
        w,
        "| engine | concurrency | requests | throughput (req/s) | p50 (ms) | p99 (ms) | errors | lockbox CPU (cores) | plugin CPU (cores) | client CPU (cores) | other load (cores) | server CPU per read (µs) | switches per read |"
    );
    let _ = writeln!(
        w,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut ordered: Vec<&ReadRow> = r.reads.iter().collect();
    let rank = |t: &str| [BUILTIN, CACHED, UNCACHED].iter().position(|x| *x == t);
    ordered.sort_by_key(|x| (rank(x.target), x.concurrency));
    for x in ordered {
        let o = &x.outcome;
        let _ = writeln!(
            w,
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            x.target,
            x.concurrency,
            o.ok + o.errors,
            o.throughput(),
            ms(o.quantile_ms(0.5)),
            ms(o.quantile_ms(0.99)),
            errors_cell(o),
            cores(x.lockbox_cores),
            cores(x.plugin_cores),
            cores(x.client_cores),
            cores(x.other_cores),
            x.cpu_us_per_read()
                .map_or_else(|| "-".into(), |v| format!("{v:.0}")),
            x.switches_per_read()
                .map_or_else(|| "-".into(), |v| format!("{v:.1}"))
        );
    }
    let _ = writeln!(w);
    let mut levels: Vec<usize> = r.reads.iter().map(|x| x.concurrency).collect();
    levels.sort_unstable();
    levels.dedup();
    let mut missed = Vec::new();
    for &c in &levels {
        let Some(b) = find(r.reads, BUILTIN, c).filter(|b| b.outcome.throughput() > 0.0) else {
            continue;
        };
        let ratio = |p: &ReadRow| p.outcome.throughput() / b.outcome.throughput();
        let mut line = format!("- concurrency {c}:");
        if let Some(p) = find(r.reads, CACHED, c) {
            let met = ratio(p) >= r.target_ratio;
            if !met {
                missed.push(c);
            }
            line += &format!(
                " plugin / built-in throughput = **{:.0}%** (target ≥ {:.0}%: {}); p50 {} vs \
                 {} ms, p99 {} vs {} ms.",
                ratio(p) * 100.0,
                r.target_ratio * 100.0,
                verdict(met),
                ms(p.outcome.quantile_ms(0.5)),
                ms(b.outcome.quantile_ms(0.5)),
                ms(p.outcome.quantile_ms(0.99)),
                ms(b.outcome.quantile_ms(0.99)),
            );
        }
        if let Some(u) = find(r.reads, UNCACHED, c) {
            line += &format!(
                " Uncached (every read crosses into the plugin): **{:.0}%**, p50 {} ms, p99 {} ms.",
                ratio(u) * 100.0,
                ms(u.outcome.quantile_ms(0.5)),
                ms(u.outcome.quantile_ms(0.99)),
            );
        }
        let _ = writeln!(w, "{line}");
    }
    let _ = writeln!(w);
    if !missed.is_empty() {
        let _ = writeln!(
            w,
            "**Throughput target not met** at concurrency {}.\n",
            missed
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        w,
        "**How to read the rows.** `mock plugin` is the default: the mock marks its reads \
         `cacheable` (protocol field `Response.cacheable`, SDK `Response::cacheable()`), as any \
         engine whose reads are a function of its storage may, so after the first read of a key \
         lockbox answers it from its read-response cache (after the token and ACL checks) until \
         something writes to the mount's storage or the process changes; the target is checked \
         on this row. `mock plugin, uncached` is the same binary registered with \
         `MOCK_PLUGIN_NO_CACHE=1`: every read crosses the plugin boundary, which is the raw cost \
         of running an engine out of process (and what an engine pays for reads it cannot mark, \
         such as generated credentials). What an uncached read cost:\n"
    );
    let per_read = |cores: Option<f64>, x: &ReadRow| {
        let t = x.outcome.throughput();
        cores
            .filter(|_| t > 0.0)
            .map_or_else(|| "?".into(), |c| format!("{:.0}", c * 1e6 / t))
    };
    let busy = |x: &ReadRow| {
        x.lockbox_cores.unwrap_or(0.0)
            + x.plugin_cores.unwrap_or(0.0)
            + x.client_cores.unwrap_or(0.0)
    };
    let one = |v: Option<f64>| v.map_or_else(|| "?".into(), |v| format!("{v:.1}"));
    for &c in &levels {
        let (Some(b), Some(p)) = (find(r.reads, BUILTIN, c), find(r.reads, UNCACHED, c)) else {
            continue;
        };
        let (Some(bu), Some(pu)) = (b.cpu_us_per_read(), p.cpu_us_per_read()) else {
            continue;
        };
        let _ = writeln!(
            w,
            "- concurrency {c}: a built-in read costs {bu:.0} µs of server CPU, an uncached \
             plugin read {pu:.0} µs ({:.1}x: {} µs in lockbox, {} µs in the plugin process) and \
             {} instead of {} context switches; lockbox + plugin + load generator kept {:.2} of \
             {} cores busy (built-in: {:.2}).",
            pu / bu,
            per_read(p.lockbox_cores, p),
            per_read(p.plugin_cores, p),
            one(p.switches_per_read()),
            one(b.switches_per_read()),
            busy(p),
            r.nproc,
            busy(b),
        );
    }
    let _ = writeln!(
        w,
        "\n**Where an uncached read's time goes:** the per-call cost of the plugin path, not \
         the plugin's own work (the mock does one storage lookup). Every uncached plugin read \
         adds two gRPC calls over Unix sockets (`HandleRequest` to the plugin, and \
         `Storage.Get` from the plugin back to lockbox, which does the same decryption a \
         built-in read does), each with HTTP/2 framing, protobuf and JSON encoding on both \
         sides and, above all, cross-process and cross-thread wake-ups (the context switches \
         per read above). With one request in flight these wake-ups are pure latency \
         (concurrency 1); with more, they are CPU that lockbox, the plugin and the load \
         generator compete for on the same {} cores.\n",
        r.nproc
    );
}

fn cold_part(w: &mut String, r: &Results<'_>) {
    let cold = r.cold;
    let _ = writeln!(w, "#### 2. Plugin cold start\n");
    let _ = writeln!(w, "| measurement | n | p50 (ms) | p99 (ms) | max (ms) |");
    let _ = writeln!(w, "|---|---:|---:|---:|---:|");
    let row = |w: &mut String, name: &str, s: &Samples| {
        let _ = writeln!(
            w,
            "| {name} | {} | {} | {} | {} |",
            s.0.len(),
            opt_ms(s.quantile(0.5)),
            opt_ms(s.quantile(0.99)),
            opt_ms(s.quantile(1.0))
        );
    };
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    row(
        w,
        "(a) `plugin reload` of `mock/`: new process → healthy → mount moved → old process drained and stopped",
        &cold.reload,
    );
    row(
        w,
        &format!(
            "(b) enable a `multiplexing: false` mount: exec → healthy → mount set up ({})",
            mb(cold.solo.binary_bytes)
        ),
        &cold.solo.enable,
    );
    row(
        w,
        "(c) = (b) + write one key + first successful read",
        &cold.solo.first_read,
    );
    if let Some(st) = &cold.stripped {
        row(
            w,
            &format!(
                "(b) with the binary stripped of debug info ({})",
                mb(st.binary_bytes)
            ),
            &st.enable,
        );
    }
    row(
        w,
        &format!(
            "launch step, timed in the load generator: read + sha256 of the {} binary",
            mb(cold.binary_bytes)
        ),
        &cold.hash,
    );
    row(
        w,
        "launch step, timed in the load generator: copy it into a memfd",
        &cold.memfd,
    );
    row(
        w,
        "launch step, timed in the load generator: exec from the memfd → exit (refused: no magic cookie)",
        &cold.exec,
    );
    let _ = writeln!(w);
    let mut processes = format!(
        "- {} of {} mounts in (b) started exactly one new plugin process",
        cold.solo.new_process,
        cold.solo.enable.0.len()
    );
    if let Some(st) = &cold.stripped {
        let _ = write!(
            processes,
            " ({} of {} with the stripped binary)",
            st.new_process,
            st.enable.0.len()
        );
    }
    let _ = writeln!(w, "{processes}.");
    let mut missed = false;
    for (name, s) in [
        ("(b) cold start of a new plugin process", &cold.solo.enable),
        ("(a) reload", &cold.reload),
    ] {
        if let Some(p50) = s.quantile(0.5) {
            let met = p50 < r.target_cold_ms;
            missed |= !met;
            let _ = writeln!(
                w,
                "- {name}: p50 {} ms (target < {:.0} ms: {})",
                ms(p50),
                r.target_cold_ms,
                verdict(met)
            );
        }
    }
    let steps = [&cold.hash, &cold.memfd, &cold.exec]
        .iter()
        .filter_map(|s| s.quantile(0.5))
        .sum::<f64>();
    if !missed {
        let _ = write!(
            w,
            "- where the time goes: reading, hashing and copying the {} binary into a memfd and \
             exec'ing it took {} ms in the load generator (p50s of the launch steps)",
            mb(cold.binary_bytes),
            ms(steps)
        );
        if let (Some(st), Some(small)) = (
            &cold.stripped,
            cold.stripped
                .as_ref()
                .and_then(|st| st.enable.quantile(0.5)),
        ) {
            let _ = write!(
                w,
                "; without debug info the binary is {} and (b) takes {} ms",
                mb(st.binary_bytes),
                ms(small)
            );
        }
        let _ = writeln!(w, ".\n");
        return;
    }
    let _ = writeln!(w);
    let mut text = format!(
        "**Cold start target not met.** Before every exec the host reads and hashes the \
         whole {} binary and copies it into a memfd; with the exec itself that took about {} \
         ms (p50s of the launch steps above, same machine, same time). ",
        mb(cold.binary_bytes),
        ms(steps)
    );
    let mut size_bound = false;
    if let (Some(st), Some(full), Some(small)) = (
        &cold.stripped,
        cold.solo.enable.quantile(0.5),
        cold.stripped
            .as_ref()
            .and_then(|st| st.enable.quantile(0.5)),
    ) {
        size_bound = small < 0.8 * full;
        let _ = write!(
            text,
            "Most of the file is debug info (release profile `debug = \"line-tables-only\"`): \
             without it the binary is {} and (b) takes {} ms instead of {} ms{}. ",
            mb(st.binary_bytes),
            ms(small),
            ms(full),
            if small < r.target_cold_ms {
                format!(", under the {:.0} ms target", r.target_cold_ms)
            } else {
                String::new()
            }
        );
    }
    text.push_str(
        "The rest is the plugin's runtime start, the handshake line, the gRPC connection, \
         the health check, `Info`, `Setup` and `Initialize`; a reload also waits for the old \
         process to drain and exit. ",
    );
    if size_bound {
        text.push_str(
            "**Bottleneck:** work proportional to the binary's size (read, hash, copy, page \
             in). Shipping plugin binaries without debug info (Cargo `strip = \"debuginfo\"` \
             for them, debug info kept separately) is the cheap fix.\n",
        );
    } else {
        text.push_str(
            "**Bottleneck:** not the binary's size alone (the stripped copy is not much \
             faster); the process start and the handshake round trips take the time.\n",
        );
    }
    let _ = writeln!(w, "{text}");
}

fn memory_part(w: &mut String, mem: &Memory) {
    let _ = writeln!(w, "#### 3. Memory after the read load\n");
    let _ = writeln!(w, "| process | pid | VmRSS (MiB) | VmHWM, peak (MiB) |");
    let _ = writeln!(w, "|---|---:|---:|---:|");
    if let Some((pid, rss, hwm)) = mem.server {
        let _ = writeln!(
            w,
            "| lockbox server | {pid} | {} | {} |",
            kib(rss),
            kib(hwm)
        );
    }
    for (pid, rss, hwm) in &mem.plugins {
        let _ = writeln!(
            w,
            "| lockbox-plugin-mock (`mock/` or `mock-uncached/`) | {pid} | {} | {} |",
            kib(*rss),
            kib(*hwm)
        );
    }
    if mem.plugins.is_empty() {
        let _ = writeln!(w, "| lockbox-plugin-mock | - | not found | - |");
    }
    let _ = writeln!(w);
}

fn reload_part(w: &mut String, r: &Results<'_>) {
    let reload = r.reload;
    let o = &reload.outcome;
    let _ = writeln!(w, "#### 4. Reload under load\n");
    let _ = writeln!(
        w,
        "| concurrency | window (s) | requests | failed | reloads (failed) | reload every (ms) | throughput (req/s) | p50 (ms) | p99 (ms) | p99.9 (ms) | max (ms) | reload round trip p50 / p99 (ms) | plugin processes seen |"
    );
    let _ = writeln!(
        w,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let _ = writeln!(
        w,
        "| {} | {} | {} | {} | {} ({}) | {} | {:.0} | {} | {} | {} | {} | {} / {} | {} |",
        reload.concurrency,
        secs(o.window.as_secs_f64()),
        o.ok + o.errors,
        errors_cell(o),
        reload.rtt.0.len() + reload.failed.len(),
        reload.failed.len(),
        reload.interval.as_millis(),
        o.throughput(),
        ms(o.quantile_ms(0.5)),
        ms(o.quantile_ms(0.99)),
        ms(quantile_us(o, 0.999)),
        ms(o.latency_us.max() as f64 / 1000.0),
        opt_ms(reload.rtt.quantile(0.5)),
        opt_ms(reload.rtt.quantile(0.99)),
        reload.pids.len()
    );
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "- failed requests during reloads: **{}** (target 0: {})",
        o.errors,
        verdict(o.errors == 0)
    );
    if !reload.failed.is_empty() {
        let _ = writeln!(
            w,
            "- **failed reloads**: {}",
            reload.failed.join("; ").replace('|', "\\|")
        );
    }
    if let Some(steady) = find(r.reads, UNCACHED, reload.concurrency) {
        let _ = writeln!(
            w,
            "- the same load without reloads (table 1): {:.0} req/s, p99 {} ms",
            steady.outcome.throughput(),
            ms(steady.outcome.quantile_ms(0.99))
        );
    }
    let _ = writeln!(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut s = Samples::default();
        for ms in 1..=100u64 {
            s.push(Duration::from_millis(ms));
        }
        assert_eq!(s.quantile(0.5), Some(50.0));
        assert_eq!(s.quantile(0.99), Some(99.0));
        assert_eq!(s.quantile(1.0), Some(100.0));
        assert_eq!(Samples::default().quantile(0.5), None);
    }

    #[test]
    fn finds_own_status_and_children() {
        let me = std::process::id();
        assert!(status_kib(me, "VmRSS").is_some_and(|k| k > 0));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        // A vfork parent resumes before the kernel has set the child's new
        // argv (exec_mmap runs before the ELF tables are built), so the
        // child's cmdline can read empty for a moment: poll, as the bench does.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut found = children_named(me, "sleep");
        while found.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            found = children_named(me, "sleep");
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, vec![child.id()]);
    }

    #[test]
    fn seconds_are_short() {
        assert_eq!(secs(2.0), "2");
        assert_eq!(secs(0.5), "0.5");
        assert_eq!(secs(10.25), "10.25");
    }

    #[test]
    fn sha256_hex_matches_known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
