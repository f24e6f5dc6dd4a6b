//! `lockbox-bench audit`: what a file audit device costs kv reads and writes,
//! in one run on one machine: two dev servers, identical but for one `file`
//! audit device enabled on the second, measured row by row in turn.
//!
//! ```text
//!   lockbox-bench ──HTTPS──► lockbox server --dev   (no audit device)
//!        └────────HTTPS──► lockbox server --dev   sys/audit/file ──► <work>/audit.log
//! ```
//!
//! It prints a Markdown section (throughput cost of the device per operation
//! and concurrency) and asserts nothing: the exit status is 2 only when
//! requests failed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use hyper::Method;

use crate::error::{Error, Result};
use crate::load::{LoadArgs, Timing, Workload};
use crate::lockbox::put;
use crate::report::{self, Markers, Row};
use crate::vault_plugins::bao;
use crate::vault_plugins::render::{secs, verdict};
use crate::{Side, WORKSPACE, WorkDir, lockbox, make_value, measure, paths};

/// The section of BENCHMARKS.md this benchmark owns.
pub const MARKERS: Markers = Markers {
    begin: "<!-- audit:begin -->",
    end: "<!-- audit:end -->",
};

const PLAIN: &str = "no audit device";
const AUDITED: &str = "file audit device";
/// The device's path under `sys/audit/`.
const DEVICE: &str = "file";

const REPRODUCE: &str = "cargo build --release -p lockbox -p lockbox-bench && target/release/lockbox-bench audit --write-markdown BENCHMARKS.md";

#[derive(Args)]
#[command(mut_arg("duration", |a| a.default_value("5").help("Measured seconds per row and round")))]
#[command(mut_arg("warmup", |a| a.default_value("1").help("Unmeasured warm-up seconds before each row and round")))]
pub struct AuditArgs {
    /// Rounds per row: each round measures both servers, alternating which
    /// goes first; a row is the sum of its rounds.
    #[arg(long, default_value_t = 4)]
    rounds: usize,
    /// The lockbox binary [default: <workspace>/target/release/lockbox].
    #[arg(long)]
    lockbox_bin: Option<PathBuf>,
    /// Root token of both dev servers.
    #[arg(long, default_value = "root")]
    token: String,
    /// Seconds to wait for each server to come up.
    #[arg(long, default_value_t = 60)]
    start_timeout: u64,
    #[command(flatten)]
    pub load: LoadArgs,
    /// The goal: the most throughput (percent) the device may cost at concurrency 16.
    #[arg(long, default_value_t = 15.0)]
    goal_percent: f64,
    /// Rewrite the audit section of this markdown file (e.g. BENCHMARKS.md);
    /// a missing section is inserted after the operator one.
    #[arg(long)]
    write_markdown: Option<PathBuf>,
    /// Keep the temporary directory (server logs, the audit log) after the run.
    #[arg(long)]
    keep_work_dir: bool,
}

/// What the audit log grew by during one row of the audited server.
struct LogGrowth {
    op: &'static str,
    concurrency: usize,
    bytes: u64,
    /// The cost (percent of throughput) in each round, in order.
    costs: Vec<f64>,
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Starts a dev server in its own directory under `work`.
async fn start(
    bin: &Path,
    args: &AuditArgs,
    work: &Path,
    name: &str,
) -> Result<lockbox::DevServer> {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::file("creating", &dir, e))?;
    let s = lockbox::DevServer::start(
        bin,
        &args.token,
        &[],
        &dir,
        Duration::from_secs(args.start_timeout),
    )
    .await?;
    eprintln!("  {name} at {} (log {})", s.api_addr, s.log_path.display());
    Ok(s)
}

/// Runs the benchmark; returns whether any request failed.
pub async fn run(args: AuditArgs, threads: usize) -> Result<bool> {
    if args.load.concurrency.is_empty() || args.load.concurrency.contains(&0) || args.load.keys == 0
    {
        return Err(Error::InvalidArgument(
            "--concurrency needs positive values and --keys must be positive".into(),
        ));
    }
    if args.rounds == 0 {
        return Err(Error::InvalidArgument("--rounds must be at least 1".into()));
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
    let bin = args
        .lockbox_bin
        .clone()
        .unwrap_or_else(|| workspace.join("target/release/lockbox"));

    eprintln!("starting two {} server --dev --dev-tls", bin.display());
    let plain_server = start(&bin, &args, &work.path, "plain").await?;
    let audited_server = match start(&bin, &args, &work.path, "audited").await {
        Ok(s) => s,
        Err(e) => {
            plain_server.stop().await;
            return Err(e);
        }
    };
    let log = work.path.join("audit.log");
    let result = measure_all(&args, &plain_server, &audited_server, &log, timing, &value).await;
    plain_server.stop().await;
    audited_server.stop().await;
    let (rows, growth, version, rotated) = result?;
    let loadavg_after = report::machine(&workspace).3;
    let (log_bytes, entries) = (rotated.bytes, rotated.entries);

    let mut s = String::new();
    intro(&mut s);
    let w = &mut s;
    let _ = writeln!(w, "### Results\n");
    let _ = writeln!(w, "- date: {}", report::utc_now());
    let _ = writeln!(
        w,
        "- machine: {nproc} CPUs ({cpu_model}), {mem_total} RAM, shared with other work; load \
         average before the run {loadavg}, after it {loadavg_after} (this run's own load included)"
    );
    let _ = writeln!(w, "- lockbox: commit {commit} ({version})");
    let _ = writeln!(
        w,
        "- settings: {} keys × {} B values, {} rounds of {} s warm-up + {} s measured per row and \
         server, closed loop, one HTTP/1.1 keep-alive TLS connection per worker, {threads} \
         load-generator threads on the same machine; audit log on {} (`{}`), emptied before each audited row, {:.1} MB written in all",
        args.load.keys,
        args.load.value_size,
        args.rounds,
        secs(args.load.warmup),
        secs(args.load.duration),
        filesystem_of(&work.path),
        work.path.display(),
        log_bytes as f64 / 1e6
    );
    let _ = writeln!(
        w,
        "- command: `{}`\n",
        std::iter::once("lockbox-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" ")
    );
    w.push_str(&report::table(&rows));
    let _ = writeln!(w);
    verdicts(w, &rows, &growth, args.goal_percent);
    let _ = writeln!(
        w,
        "- the audit log: {entries} entries, {:.1} MB, {:.0} B per entry on average (a request \
         and its response are two entries)\n",
        log_bytes as f64 / 1e6,
        log_bytes as f64 / entries.max(1) as f64
    );
    if rows.iter().any(|r| r.outcome.errors > 0) {
        let _ = writeln!(
            w,
            "**Warning:** some rows had errors (non-2xx answers or broken connections); their \
             numbers are suspect (with a device enabled, a request the device cannot record is \
             refused: fail closed).\n"
        );
    }
    let _ = writeln!(w, "{}", MARKERS.end);
    println!("{s}");
    if let Some(path) = &args.write_markdown {
        report::write_section(path, MARKERS, &s, Some(crate::operator::MARKERS))?;
        eprintln!("updated {}", path.display());
    }
    Ok(rows.iter().any(|r| r.outcome.errors > 0))
}

/// The number of lines of a file, read in chunks.
fn count_lines(path: &Path) -> Result<u64> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path).map_err(|e| Error::file("opening", path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = f
            .read(&mut buf)
            .map_err(|e| Error::file("reading", path, e))?;
        if got == 0 {
            return Ok(n);
        }
        n += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// The file system type holding `dir` (from `/proc/mounts`, longest prefix).
fn filesystem_of(dir: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let dir = dir.to_string_lossy();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (mnt, fs) = (*f.get(1)?, *f.get(2)?);
            let under = dir == mnt
                || mnt == "/"
                || dir.starts_with(&format!("{}/", mnt.trim_end_matches('/')));
            under.then_some((mnt.len(), fs.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "an unknown file system".into(), |(_, fs)| fs)
}

async fn measure_all(
    args: &AuditArgs,
    plain_server: &lockbox::DevServer,
    audited_server: &lockbox::DevServer,
    log: &Path,
    timing: Timing,
    value: &str,
) -> Result<(Vec<Row>, Vec<LogGrowth>, String, Rotated)> {
    let gone = || Error::InvalidArgument("a lockbox dev server exited".into());
    let plain_ep =
        bao::endpoint(&plain_server.api_addr, &plain_server.ca_path, &args.token).await?;
    let audited_ep = bao::endpoint(
        &audited_server.api_addr,
        &audited_server.ca_path,
        &args.token,
    )
    .await?;
    put(
        &audited_ep,
        &format!("/v1/sys/audit/{DEVICE}"),
        serde_json::json!({
            "type": "file",
            "options": { "file_path": log.to_string_lossy() },
        }),
    )
    .await?;
    eprintln!("  enabled audit device {DEVICE}/ → {}", log.display());
    eprintln!(
        "  seeding {} keys of {} B on both",
        args.load.keys, args.load.value_size
    );
    lockbox::seed(&plain_ep, args.load.keys, value).await?;
    lockbox::seed(&audited_ep, args.load.keys, value).await?;
    if file_len(log) == 0 {
        return Err(Error::UnexpectedBody {
            what: format!("the audit log {}", log.display()),
            reason: "is empty after the seeding writes: the device records nothing".into(),
        });
    }
    let tls = crate::http::tls_info(&plain_ep).await?;
    let version = match lockbox::version(&plain_ep).await {
        Some(v) => format!("version {v}, {tls}"),
        None => tls,
    };
    let plain = Side {
        target: PLAIN,
        ep: plain_ep,
        pids: vec![plain_server.pid().ok_or_else(gone)?],
    };
    let audited = Side {
        target: AUDITED,
        ep: audited_ep,
        pids: vec![audited_server.pid().ok_or_else(gone)?],
    };
    let reads = Arc::new(Workload {
        method: Method::GET,
        paths: paths(args.load.keys, lockbox::key_path)?,
        body: Bytes::new(),
    });
    let writes = Arc::new(Workload {
        method: Method::PUT,
        paths: paths(args.load.keys, lockbox::key_path)?,
        body: lockbox::write_body(value),
    });
    eprintln!(
        "running: {} s warm-up + {} s measured per row",
        secs(args.load.warmup),
        secs(args.load.duration)
    );
    let mut rows: Vec<Row> = Vec::new();
    let mut growth = Vec::new();
    let mut rotated = Rotated::default();
    // Interleaved per concurrency and operation, so drift on a shared
    // machine hits both servers alike, and in rounds that alternate which
    // server goes first, so an order effect (the second of two rows on a
    // warmed-up machine, a neighbour's burst) cancels out.
    for &c in &args.load.concurrency {
        for (op, workload) in [("read", &reads), ("write", &writes)] {
            let mut bytes = 0;
            let mut costs = Vec::new();
            for round in 0..args.rounds {
                let order = if round % 2 == 0 {
                    [&plain, &audited]
                } else {
                    [&audited, &plain]
                };
                let mut pair = Vec::new();
                for side in order {
                    if side.target == AUDITED {
                        // A rotated log before every audited row, so each
                        // row appends to a small file (see the intro).
                        rotated.absorb(log)?;
                    }
                    let before = file_len(log);
                    measure(&mut pair, side, op, workload, c, timing).await?;
                    if side.target == AUDITED {
                        bytes += file_len(log).saturating_sub(before);
                    }
                }
                let tp = |target: &str| {
                    pair.iter()
                        .find(|r| r.target == target)
                        .map_or(0.0, |r| r.outcome.throughput())
                };
                if tp(PLAIN) > 0.0 {
                    costs.push((1.0 - tp(AUDITED) / tp(PLAIN)) * 100.0);
                }
                for row in pair {
                    match rows
                        .iter_mut()
                        .find(|r| r.target == row.target && r.op == op && r.concurrency == c)
                    {
                        Some(merged) => merged.absorb(row),
                        None => rows.push(row),
                    }
                }
            }
            growth.push(LogGrowth {
                op,
                concurrency: c,
                bytes,
                costs,
            });
        }
    }
    rotated.absorb(log)?;
    rows.sort_by_key(|r| (r.op != "read", r.concurrency, r.target == AUDITED));
    Ok((rows, growth, version, rotated))
}

/// What the audit log held before each rotation, summed.
#[derive(Default)]
struct Rotated {
    bytes: u64,
    entries: u64,
}

impl Rotated {
    /// Counts the log, then empties it (the device appends, so its next
    /// line starts the file again: a log rotated in place).
    fn absorb(&mut self, log: &Path) -> Result<()> {
        self.bytes += file_len(log);
        self.entries += count_lines(log)?;
        std::fs::OpenOptions::new()
            .write(true)
            .open(log)
            .and_then(|f| f.set_len(0))
            .map_err(|e| Error::InvalidArgument(format!("cannot empty {}: {e}", log.display())))
    }
}

fn verdicts(w: &mut String, rows: &[Row], growth: &[LogGrowth], goal: f64) {
    let mut levels: Vec<usize> = rows.iter().map(|r| r.concurrency).collect();
    levels.sort_unstable();
    levels.dedup();
    for op in ["read", "write"] {
        for &c in &levels {
            let (Some(p), Some(a)) = (
                report::throughput(rows, PLAIN, op, c),
                report::throughput(rows, AUDITED, op, c),
            ) else {
                continue;
            };
            if p <= 0.0 {
                continue;
            }
            let cost = (1.0 - a / p) * 100.0;
            let goal_text = if c == 16 {
                format!(" (goal ≤ {goal:.0}%: {})", verdict(cost <= goal))
            } else {
                String::new()
            };
            let log_text = growth
                .iter()
                .find(|g| g.op == op && g.concurrency == c)
                .map(|g| {
                    let rounds: Vec<String> = g.costs.iter().map(|c| format!("{c:.1}%")).collect();
                    format!(
                        "; by round {}; the log grew {:.1} MB in the row (warm-up included)",
                        rounds.join(", "),
                        g.bytes as f64 / 1e6
                    )
                })
                .unwrap_or_default();
            let cpu_per = |target: &str, tp: f64| {
                rows.iter()
                    .find(|r| r.target == target && r.op == op && r.concurrency == c)
                    .and_then(|r| r.server_cores)
                    .filter(|_| tp > 0.0)
                    .map_or_else(|| "-".into(), |cores| format!("{:.0}", cores * 1e6 / tp))
            };
            let _ = writeln!(
                w,
                "- {op}s at concurrency {c}: with the device {a:.0} req/s vs {p:.0} without, \
                 audit costs **{cost:.1}%** of throughput{goal_text}; server CPU per request {} → \
                 {} µs{log_text}",
                cpu_per(PLAIN, p),
                cpu_per(AUDITED, a)
            );
        }
    }
    let _ = writeln!(w);
}

fn intro(w: &mut String) {
    let _ = writeln!(w, "{}", MARKERS.begin);
    let _ = writeln!(
        w,
        "<!-- Generated by `lockbox-bench audit`; edits here are overwritten. -->"
    );
    let _ = writeln!(w, "## Audit devices (`audit`)\n");
    let _ = writeln!(
        w,
        "**Question:** what does a file audit device (issue 14: every request and response \
         recorded as a JSON line, every string HMAC'd, fail closed) cost kv reads and writes?\n"
    );
    let _ = writeln!(
        w,
        "**What it measures.** `lockbox-bench audit` (crate `crates/bench/`) starts two \
         `target/release/lockbox server --dev --dev-tls --dev-root-token-id root \
         --dev-listen-address 127.0.0.1:0` (in-memory storage), identical but for one thing: on \
         the second it enables a file audit device (`PUT /v1/sys/audit/{DEVICE} \
         {{\"type\":\"file\",\"options\":{{\"file_path\":\"<work dir>/audit.log\"}}}}`, default \
         format json, HMAC'd strings, no `log_raw`). It writes the same `--keys` keys to \
         `secret/bench/key-<i>` (the built-in kv version 1) on both and checks the log is not \
         empty; then it measures **reads** (`GET`) and **writes** (overwriting `PUT`s) with the \
         closed loop of `kv-http` (one keep-alive HTTPS connection per worker, TLS verified, \
         warm-up then measured window), rows in turn per concurrency and operation so drift on \
         the shared machine hits both servers alike, in `--rounds` rounds that alternate which \
         server goes first (no device then device, device then no device, ...), so an order \
         effect cancels out; a row sums its rounds (requests over the sum of the measured \
         windows, latencies merged), and the cost of each round is listed too, to show the \
         spread. With the device, \
         every request writes two lines (request, then response; a request the device cannot \
         record is refused before its handler) to the same file, appended without fsync (the \
         page cache absorbs them, as with Vault's file device), and the log is emptied before each \
         audited row (`truncate`: a log rotated in place), so no row appends to gigabytes that \
         earlier rows left in the page cache (in runs without that, the cost grew round by round \
         with the file). CPU columns are average cores \
         over the row (warm-up included) of the server process and of the load generator.\n"
    );
    let _ = writeln!(
        w,
        "**Goal** (issue 14): the audit device costs at most 15% of throughput at concurrency 16. \
         The benchmark reports; it asserts nothing (exit status 2 only when requests failed).\n"
    );
    let _ = writeln!(
        w,
        "**Caveat: one shared machine.** Both servers and the load generator share the same CPUs \
         with whatever else runs (see the load average); only one server is under load at a \
         time. Compare rows of the same run.\n"
    );
    let _ = writeln!(w, "### How to reproduce\n");
    let _ = writeln!(w, "From the repository root:\n");
    let _ = writeln!(w, "```sh\n{REPRODUCE}\n```\n");
    let _ = writeln!(
        w,
        "Flags (`lockbox-bench audit --help`): `--concurrency 1,16,64 --rounds 4 --duration 5 \
         --warmup 1 --keys 1000 --value-size 1024`, `--goal-percent 15`, `--lockbox-bin FILE`, \
         `--keep-work-dir` (keep both server logs and the audit log).\n"
    );
}
