//! `lockbox-bench ha`: high availability on PostgreSQL (issue 15), in one
//! run on one machine:
//!
//! ```text
//!   lockbox-bench ──HTTP──► file      (lockbox server -config, storage "file")
//!        ├───────HTTP──► pg        (storage "postgresql", ha_enabled = "false") ─┐
//!        ├───────HTTP──► ha-0  active   ◀─ forwarded (mTLS) ─ ha-1, ha-2 standbys ├─► PostgreSQL
//!        └───────HTTP──► ha-1  standby  ─────────────────────────────────────────┘   (pg-up.sh)
//! ```
//!
//! 1. kv (version 1) read and write throughput and latency at each
//!    concurrency, rows in turn per concurrency and operation across the
//!    four targets (file, PostgreSQL single node, HA active, HA standby:
//!    reads served by the standby from the database, writes forwarded to the
//!    active), so drift on a shared machine hits them all;
//! 2. failover: `kill -9` of the active under a light write load, the time to
//!    the first write a survivor takes, the killed node restarted as a
//!    standby; see `ha/failover.rs`.
//!
//! It prints a Markdown section and asserts nothing: the exit status is 2
//! only when requests of the throughput rows failed or a round found no new
//! active node.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use hyper::Method;

use crate::cpu::Usage;
use crate::error::{Error, Result};
use crate::http::Endpoint;
use crate::load::{self, LoadArgs, Outcome, Timing, Workload};
use crate::report::{self, Markers};
use crate::{WORKSPACE, WorkDir, lockbox, make_value, paths};

mod deployment;
mod failover;
mod node;
mod render;

use deployment::Deployment;
use node::Storage;

/// The section of BENCHMARKS.md this benchmark owns.
pub const MARKERS: Markers = Markers {
    begin: "<!-- ha:begin -->",
    end: "<!-- ha:end -->",
};

const REPRODUCE: &str = "cargo build --release -p lockbox -p lockbox-bench && target/release/lockbox-bench ha --write-markdown BENCHMARKS.md";

/// The role and password the nodes log in with.
const PG_USER: &str = "lockbox";
const PG_PASSWORD: &str = "bench-ha-7d41";

/// `max_connections` of the benchmark's PostgreSQL.
const PG_MAX_CONNECTIONS: u32 = 400;

const FILE: &str = "file, single node";
const SINGLE: &str = "PostgreSQL, single node";
const ACTIVE: &str = "PostgreSQL HA, active";
const STANDBY: &str = "PostgreSQL HA, standby (reads itself, writes forwarded)";

#[derive(Args)]
#[command(mut_arg("duration", |a| a.default_value("5").help("Measured seconds per row")))]
#[command(mut_arg("warmup", |a| a.default_value("1").help("Unmeasured warm-up seconds before each row")))]
pub struct HaArgs {
    /// The lockbox binary [default: <workspace>/target/release/lockbox].
    #[arg(long)]
    lockbox_bin: Option<PathBuf>,
    /// Seconds to wait for a node to start, unseal or rejoin.
    #[arg(long, default_value_t = 60)]
    start_timeout: u64,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Skip part 1 (throughput of the four targets).
    #[arg(long, conflicts_with = "skip_failover")]
    skip_throughput: bool,
    /// Skip part 2 (failover).
    #[arg(long)]
    skip_failover: bool,
    /// `max_idle_connections` of the PostgreSQL nodes [default: lockbox's, 32].
    #[arg(long)]
    pg_max_idle: Option<usize>,
    /// HA nodes in the group (the active and its standbys).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Failover rounds (kill -9 of the active, restart).
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Writers of the light write load during the failover part.
    #[arg(long, default_value_t = 2)]
    load_writers: usize,
    /// Milliseconds each light-load writer waits between two writes.
    #[arg(long, default_value_t = 20)]
    load_interval_ms: u64,
    /// Milliseconds between two probes of a survivor after a kill.
    #[arg(long, default_value_t = 5)]
    probe_ms: u64,
    /// Seconds after a kill to give up waiting for a new active node.
    #[arg(long, default_value_t = 30.0)]
    failover_timeout: f64,
    /// Seconds between a rejoin and the next kill.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
    /// The goal for the median failover time, in seconds.
    #[arg(long, default_value_t = 1.0)]
    goal_median: f64,
    /// The goal for the longest failover time, in seconds.
    #[arg(long, default_value_t = 3.0)]
    goal_max: f64,
    /// Rewrite the ha section of this markdown file (e.g. BENCHMARKS.md);
    /// a missing section is inserted after the leases one.
    #[arg(long)]
    write_markdown: Option<PathBuf>,
    /// Keep the temporary directory (node configs and logs, the PostgreSQL cluster).
    #[arg(long)]
    keep_work_dir: bool,
}

/// One row of part 1.
pub(crate) struct HaRow {
    pub(crate) target: &'static str,
    pub(crate) op: &'static str,
    pub(crate) concurrency: usize,
    pub(crate) outcome: Outcome,
    /// Average cores over the row (warm-up included): lockbox processes of
    /// the target, PostgreSQL (the postmaster's tree), the load generator,
    /// the rest of the machine.
    pub(crate) cores: Vec<Option<f64>>,
}

/// A target of part 1: where its requests go and which processes serve it.
struct Target {
    name: &'static str,
    ep: Endpoint,
    pids: Vec<u32>,
}

/// What the run measured.
pub(crate) struct Measured {
    pub(crate) rows: Vec<HaRow>,
    pub(crate) failover: Option<failover::Failover>,
    pub(crate) pg_version: String,
}

fn seconds(v: f64, flag: &str) -> Result<Duration> {
    if v > 0.0 && v.is_finite() {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(Error::InvalidArgument(format!("{flag} must be > 0")))
    }
}

/// Runs the benchmark; returns whether anything failed.
pub async fn run(args: HaArgs, threads: usize) -> Result<bool> {
    if args.load.concurrency.is_empty()
        || args.load.concurrency.contains(&0)
        || args.load.keys == 0
        || args.nodes < 2
        || args.load_writers == 0
    {
        return Err(Error::InvalidArgument(
            "--concurrency and --keys need positive values, --nodes at least 2, \
             --load-writers at least 1"
                .into(),
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
    let start_timeout = Duration::from_secs(args.start_timeout);
    let fo = failover::FailoverSettings {
        rounds: args.rounds,
        load_writers: args.load_writers,
        load_interval: Duration::from_millis(args.load_interval_ms.max(1)),
        probe: Duration::from_millis(args.probe_ms.max(1)),
        timeout: seconds(args.failover_timeout, "--failover-timeout")?,
        settle: seconds(args.settle, "--settle")?,
        start_timeout,
    };
    let workspace = Path::new(WORKSPACE)
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(WORKSPACE));
    let (nproc, cpu_model, mem_total, loadavg, commit) = report::machine(&workspace);
    let work = WorkDir::new(args.keep_work_dir)?;
    let bin = args
        .lockbox_bin
        .clone()
        .unwrap_or_else(|| workspace.join("target/release/lockbox"));
    let bin = bin.canonicalize().map_err(|e| {
        Error::InvalidArgument(format!(
            "lockbox binary {}: {e} (build it or pass --lockbox-bin)",
            bin.display()
        ))
    })?;

    eprintln!("starting PostgreSQL with tests/harness/pg-up.sh");
    // Four nodes with their own pools (up to `max_parallel` 128 each under
    // load, `max_idle_connections` kept after): more than PostgreSQL's
    // default 100 connections at concurrency 64.
    let pg = crate::pg::Postgres::start_with(
        &workspace,
        &work.path.join("pg"),
        Some(PG_MAX_CONNECTIONS),
    )?;
    eprintln!("  {} on 127.0.0.1:{}", pg.version, pg.port);
    pg.admin(&format!(
        "CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PASSWORD}'"
    ))?;
    for db in ["lockbox_single", "lockbox_ha"] {
        pg.admin(&format!("CREATE DATABASE {db} OWNER {PG_USER}"))?;
    }
    let url = |db: &str| {
        format!(
            "postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable",
            pg.port
        )
    };
    let mut deployments = Vec::new();
    let result = async {
        if !args.skip_throughput {
            eprintln!("starting the single nodes (file, PostgreSQL)");
            deployments.push(
                Deployment::start(&bin, &work.path, "file", &Storage::File, 1, start_timeout)
                    .await?,
            );
            let single = Storage::Postgres {
                url: url("lockbox_single"),
                ha: false,
                max_idle: args.pg_max_idle,
            };
            deployments
                .push(Deployment::start(&bin, &work.path, "pg", &single, 1, start_timeout).await?);
        }
        eprintln!("starting {} HA nodes on one database", args.nodes);
        let ha = Storage::Postgres {
            url: url("lockbox_ha"),
            ha: true,
            max_idle: args.pg_max_idle,
        };
        deployments
            .push(Deployment::start(&bin, &work.path, "ha", &ha, args.nodes, start_timeout).await?);
        let value = make_value(args.load.value_size);
        for d in &deployments {
            d.seed(args.load.keys, &value).await?;
        }
        let version = lockbox::version(&deployments[0].endpoint(0).await?)
            .await
            .map_or_else(|| "version unknown".into(), |v| format!("version {v}"));
        let mut rows = Vec::new();
        if !args.skip_throughput {
            rows = throughput(&args, &deployments, &pg, timing, &value).await?;
            // Only the HA group stays for part 2.
            for d in deployments.iter_mut().take(2) {
                d.stop().await;
            }
        }
        let mut fo_result = None;
        if !args.skip_failover {
            eprintln!(
                "2. failover: {} rounds of kill -9 of the active",
                args.rounds
            );
            let Some(ha) = deployments.last_mut() else {
                return Err(Error::InvalidArgument("no HA group started".into()));
            };
            fo_result = Some(failover::measure(ha, &bin, &fo).await?);
        }
        Ok::<_, Error>((rows, fo_result, version))
    }
    .await;
    for d in &mut deployments {
        d.stop().await;
    }
    let pg_version = pg.version.clone();
    drop(pg);
    let (rows, failover, version) = result?;
    let m = Measured {
        rows,
        failover,
        pg_version,
    };
    let loadavg_after = report::machine(&workspace).3;
    let facts = render::Facts {
        date: report::utc_now(),
        machine: format!(
            "{nproc} CPUs ({cpu_model}), {mem_total} RAM, shared with other work; load average \
             before the run {loadavg}, after it {loadavg_after} (this run's own load included)"
        ),
        lockbox: format!("commit {commit} ({version}, plain HTTP)"),
        threads,
        command: std::iter::once("lockbox-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let section = render::section(&facts, &args, &m);
    println!("{section}");
    if let Some(path) = &args.write_markdown {
        report::write_section(path, MARKERS, &section, Some(crate::leases::MARKERS))?;
        eprintln!("updated {}", path.display());
    }
    let failed = m.rows.iter().any(|r| r.outcome.errors > 0)
        || m.failover
            .as_ref()
            .is_some_and(|f| f.rounds.iter().any(|r| r.first_write.is_none()));
    Ok(failed)
}

/// Part 1: every target, operation and concurrency.
async fn throughput(
    args: &HaArgs,
    deployments: &[Deployment],
    pg: &crate::pg::Postgres,
    timing: Timing,
    value: &str,
) -> Result<Vec<HaRow>> {
    let [file, single, ha] = deployments else {
        return Err(Error::InvalidArgument(
            "part 1 needs the file node, the PostgreSQL node and the HA group".into(),
        ));
    };
    let targets = [
        Target {
            name: FILE,
            ep: file.endpoint(0).await?,
            pids: file.pids(),
        },
        Target {
            name: SINGLE,
            ep: single.endpoint(0).await?,
            pids: single.pids(),
        },
        Target {
            name: ACTIVE,
            ep: ha.endpoint(0).await?,
            pids: ha.pids(),
        },
        Target {
            name: STANDBY,
            ep: ha.endpoint(1).await?,
            pids: ha.pids(),
        },
    ];
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
        "1. throughput: {} s warm-up + {} s measured per row",
        args.load.warmup, args.load.duration
    );
    let postmaster = [pg.postmaster_pid()];
    let mut rows = Vec::new();
    for &c in &args.load.concurrency {
        for (op, workload) in [("read", &reads), ("write", &writes)] {
            for t in &targets {
                eprint!("  {:<36} {op:<5} c={c:<3} ... ", t.name);
                let before = Usage::with_trees(&[&t.pids], &postmaster);
                let outcome = load::run(&t.ep, workload.clone(), c, timing).await?;
                let cores = before.cores_until(&Usage::with_trees(&[&t.pids], &postmaster));
                eprintln!(
                    "{:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
                    outcome.throughput(),
                    outcome.quantile_ms(0.5),
                    outcome.quantile_ms(0.99),
                    outcome.errors
                );
                rows.push(HaRow {
                    target: t.name,
                    op,
                    concurrency: c,
                    outcome,
                    cores,
                });
            }
        }
    }
    Ok(rows)
}
