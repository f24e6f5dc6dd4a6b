//! `lockbox-bench leases`: the lease manager and a dynamic secrets engine
//! under load, in one run on one machine:
//!
//! ```text
//!   lockbox-bench ──HTTPS──► lockbox server --dev ──gRPC/UDS──► lockbox-plugin-database ──► PostgreSQL
//!                               │  (lease manager,            (database/, Vault's API)      (tests/harness/pg-up.sh)
//!                               │   expiry task)
//!                               └──gRPC/UDS, AutoMTLS──► Go test plugin (gp/creds/<name>?ttl=N)
//! ```
//!
//! 1. dynamic PostgreSQL credentials issued (`GET database/creds/bench`) and
//!    revoked (`PUT sys/leases/revoke`) per second, at each concurrency; see
//!    `leases/creds.rs`;
//! 2. 10,000 leases that fall due at the same second, drained by the expiry
//!    task, with kv read latency before and during the drain; see
//!    `leases/drain.rs`.
//!
//! It prints a Markdown section and asserts nothing: the exit status is 2 only
//! when requests failed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use hyper::Method;

use crate::error::{Error, Result};
use crate::load::{Batch, Workload};
use crate::procfs::children_running;
use crate::report::{self, Markers};
use crate::vault_plugins::{bao, setup::copy_into};
use crate::{WORKSPACE, WorkDir, lockbox, make_value, paths};

mod creds;
mod drain;
mod render;

/// The section of BENCHMARKS.md this benchmark owns.
pub const MARKERS: Markers = Markers {
    begin: "<!-- leases:begin -->",
    end: "<!-- leases:end -->",
};

const REPRODUCE: &str = "cargo build --release -p lockbox -p lockbox-bench -p lockbox-plugin-database && target/release/lockbox-bench leases --write-markdown BENCHMARKS.md";

#[derive(Args)]
pub struct LeasesArgs {
    /// The lockbox binary [default: <workspace>/target/release/lockbox].
    #[arg(long)]
    lockbox_bin: Option<PathBuf>,
    /// The database plugin [default: <workspace>/target/release/lockbox-plugin-database].
    #[arg(long)]
    database_plugin: Option<PathBuf>,
    /// The Go test plugin [default: lockbox-testplugin built by tests/harness/install-go-plugins.sh].
    #[arg(long)]
    test_plugin: Option<PathBuf>,
    /// Root token of the dev server.
    #[arg(long, default_value = "root")]
    token: String,
    /// Seconds to wait for the server to come up.
    #[arg(long, default_value_t = 60)]
    start_timeout: u64,

    /// Skip part 1 (PostgreSQL credentials).
    #[arg(long, conflicts_with = "skip_drain")]
    skip_database: bool,
    /// Credentials issued (then revoked) per concurrency level in part 1.
    #[arg(long, default_value_t = 500)]
    creds: usize,
    /// Concurrency levels of part 1.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16])]
    creds_concurrency: Vec<usize>,

    /// Skip part 2 (the drain of expired leases).
    #[arg(long)]
    skip_drain: bool,
    /// Leases that fall due together in part 2.
    #[arg(long, default_value_t = 10_000)]
    leases: usize,
    /// Connections issuing them.
    #[arg(long, default_value_t = 16)]
    issue_concurrency: usize,
    /// Seconds from the start of issuing until they all fall due (must exceed the issuing time).
    #[arg(long, default_value_t = 60.0)]
    due_after: f64,
    /// Concurrency of the kv reads measured before and during the drain.
    #[arg(long, default_value_t = 16)]
    read_concurrency: usize,
    /// Seconds per slice of reads.
    #[arg(long, default_value_t = 2.0)]
    slice: f64,
    /// Slices of reads before any lease exists (the baseline).
    #[arg(long, default_value_t = 3)]
    baseline_slices: usize,
    /// Milliseconds between two counts of the leases left.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
    /// Seconds after the due time to give up waiting for the drain.
    #[arg(long, default_value_t = 300.0)]
    drain_timeout: f64,
    /// kv keys the reads cycle through.
    #[arg(long, default_value_t = 1000)]
    keys: usize,
    /// Size in bytes of each kv value.
    #[arg(long, default_value_t = 1024)]
    value_size: usize,

    /// Load generator threads [default: number of CPUs].
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// Rewrite the leases section of this markdown file (e.g. BENCHMARKS.md);
    /// a missing section is inserted after the audit one.
    #[arg(long)]
    write_markdown: Option<PathBuf>,
    /// Keep the temporary directory (server log, PostgreSQL cluster) after the run.
    #[arg(long)]
    keep_work_dir: bool,
}

/// The server under test.
pub(crate) struct Lockbox {
    pub(crate) ep: crate::http::Endpoint,
    pub(crate) pid: u32,
}

impl Lockbox {
    /// Its plugin processes running `file` (the catalog's command).
    pub(crate) fn plugin_pids(&self, file: &str) -> Vec<u32> {
        children_running(self.pid, file)
    }
}

/// The `lease_id`s of a batch's answers; each must start with `prefix`.
pub(crate) fn lease_ids(batch: &Batch, prefix: &str) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for body in batch.bodies.iter().flatten() {
        let json: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| Error::UnexpectedBody {
                what: format!("GET {prefix}…"),
                reason: format!("not JSON: {e}"),
            })?;
        match json.get("lease_id").and_then(|v| v.as_str()) {
            Some(id) if id.starts_with(prefix) => ids.push(id.to_string()),
            other => {
                return Err(Error::UnexpectedBody {
                    what: format!("GET {prefix}…"),
                    reason: format!("lease_id is {other:?}, expected one under {prefix}"),
                });
            }
        }
    }
    Ok(ids)
}

/// What the run measured.
pub(crate) struct Measured {
    pub(crate) creds: Vec<creds::CredsRow>,
    pub(crate) drain: Option<drain::Drain>,
    pub(crate) version: String,
    pub(crate) pg_version: Option<String>,
}

fn seconds(v: f64, flag: &str) -> Result<Duration> {
    if v > 0.0 && v.is_finite() {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(Error::InvalidArgument(format!("{flag} must be > 0")))
    }
}

/// Runs the benchmark; returns whether any request failed.
pub async fn run(args: LeasesArgs, threads: usize) -> Result<bool> {
    if args.creds == 0
        || args.creds_concurrency.is_empty()
        || args.creds_concurrency.contains(&0)
        || args.leases == 0
        || args.issue_concurrency == 0
        || args.read_concurrency == 0
        || args.keys == 0
    {
        return Err(Error::InvalidArgument(
            "--creds, --creds-concurrency, --leases, --issue-concurrency, --read-concurrency and --keys need positive values".into(),
        ));
    }
    let settings = drain::DrainSettings {
        leases: args.leases,
        issue_concurrency: args.issue_concurrency,
        due_after: seconds(args.due_after, "--due-after")?.as_secs_f64(),
        read_concurrency: args.read_concurrency,
        slice: seconds(args.slice, "--slice")?,
        baseline_slices: args.baseline_slices,
        poll: Duration::from_millis(args.poll_ms.max(10)),
        timeout: seconds(args.drain_timeout, "--drain-timeout")?,
    };
    let workspace = Path::new(WORKSPACE)
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(WORKSPACE));
    let (nproc, cpu_model, mem_total, loadavg, commit) = report::machine(&workspace);
    let work = WorkDir::new(args.keep_work_dir)?;
    let absolute = |p: PathBuf, what: &str| {
        p.canonicalize().map_err(|e| {
            Error::InvalidArgument(format!(
                "{what} {}: {e} (build it or pass its path)",
                p.display()
            ))
        })
    };
    let lockbox_bin = absolute(
        args.lockbox_bin
            .clone()
            .unwrap_or_else(|| workspace.join("target/release/lockbox")),
        "lockbox binary",
    )?;
    let plugin_dir = work.path.join("plugins");
    let mut shas = (String::new(), String::new());
    if !args.skip_database {
        let src = absolute(
            args.database_plugin
                .clone()
                .unwrap_or_else(|| workspace.join("target/release/lockbox-plugin-database")),
            "database plugin",
        )?;
        shas.0 = copy_into(&src, &plugin_dir, creds::DATABASE)?.1;
    }
    if !args.skip_drain {
        let src = match &args.test_plugin {
            Some(p) => p.clone(),
            None => bao::go_plugins_dir(&workspace)?.join("lockbox-testplugin"),
        };
        let src = absolute(src, "Go test plugin")?;
        shas.1 = copy_into(&src, &plugin_dir, drain::TESTPLUGIN)?.1;
    }
    std::fs::create_dir_all(&plugin_dir).map_err(|e| Error::file("creating", &plugin_dir, e))?;

    let pg = if args.skip_database {
        None
    } else {
        eprintln!("starting PostgreSQL with tests/harness/pg-up.sh");
        let pg = crate::pg::Postgres::start(&workspace, &work.path.join("pg"))?;
        eprintln!("  {} on 127.0.0.1:{}", pg.version, pg.port);
        Some(pg)
    };
    eprintln!("starting {} server --dev --dev-tls", lockbox_bin.display());
    let server = lockbox::DevServer::start(
        &lockbox_bin,
        &args.token,
        &[OsString::from("--dev-plugin-dir"), plugin_dir.into()],
        &work.path,
        Duration::from_secs(args.start_timeout),
    )
    .await?;
    eprintln!(
        "  lockbox at {} (log {})",
        server.api_addr,
        server.log_path.display()
    );
    let result = measure_all(&args, &server, pg.as_ref(), &shas, &settings).await;
    server.stop().await;
    let pg_version = pg.as_ref().map(|p| p.version.clone());
    drop(pg);
    let mut m = result?;
    m.pg_version = pg_version;
    let loadavg_after = report::machine(&workspace).3;
    let facts = render::Facts {
        date: report::utc_now(),
        machine: format!(
            "{nproc} CPUs ({cpu_model}), {mem_total} RAM, shared with other work; load average \
             before the run {loadavg}, after it {loadavg_after} (this run's own load included)"
        ),
        lockbox: format!("commit {commit} ({})", m.version),
        threads,
        command: std::iter::once("lockbox-bench".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let section = render::section(&facts, &args, &m);
    println!("{section}");
    if let Some(path) = &args.write_markdown {
        report::write_section(path, MARKERS, &section, Some(crate::audit::MARKERS))?;
        eprintln!("updated {}", path.display());
    }
    let failed = m.creds.iter().any(|r| r.batch.errors > 0)
        || m.drain.as_ref().is_some_and(|d| {
            d.issue.errors > 0
                || d.baseline
                    .iter()
                    .chain(&d.slices)
                    .any(|s| s.outcome.errors > 0)
        });
    Ok(failed)
}

async fn measure_all(
    args: &LeasesArgs,
    server: &lockbox::DevServer,
    pg: Option<&crate::pg::Postgres>,
    shas: &(String, String),
    settings: &drain::DrainSettings,
) -> Result<Measured> {
    let ep = bao::endpoint(&server.api_addr, &server.ca_path, &args.token).await?;
    let pid = server
        .pid()
        .ok_or_else(|| Error::InvalidArgument("the lockbox server exited".into()))?;
    let tls = crate::http::tls_info(&ep).await?;
    let version = match lockbox::version(&ep).await {
        Some(v) => format!("version {v}, {tls}"),
        None => tls,
    };
    let lb = Lockbox { ep, pid };
    let mut creds_rows = Vec::new();
    if let Some(pg) = pg {
        eprintln!("1. PostgreSQL credentials");
        creds::setup(&lb, pg, &shas.0).await?;
        creds_rows = creds::measure(&lb, pg, args.creds, &args.creds_concurrency).await?;
    }
    let mut drained = None;
    if !args.skip_drain {
        eprintln!("2. {} leases falling due at once", args.leases);
        drain::setup(&lb, &shas.1).await?;
        let value = make_value(args.value_size);
        lockbox::seed(&lb.ep, args.keys, &value).await?;
        let reads = Arc::new(Workload {
            method: Method::GET,
            paths: paths(args.keys, lockbox::key_path)?,
            body: Bytes::new(),
        });
        drained = Some(drain::measure(&lb, &reads, settings).await?);
    }
    Ok(Measured {
        creds: creds_rows,
        drain: drained,
        version,
        pg_version: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(bodies: &[&str]) -> Batch {
        Batch {
            elapsed: Duration::from_secs(1),
            latency_us: hdrhistogram::Histogram::new(3).expect("valid histogram"),
            ok: bodies.len() as u64,
            errors: 0,
            error_kinds: Default::default(),
            bodies: bodies
                .iter()
                .map(|b| Some(Bytes::from(b.to_string())))
                .chain([None])
                .collect(),
        }
    }

    #[test]
    fn lease_ids_are_taken_from_answers_under_the_prefix() {
        let b = batch(&[
            r#"{"lease_id":"gp/creds/drain/a1","data":{}}"#,
            r#"{"lease_id":"gp/creds/drain/b2"}"#,
        ]);
        assert_eq!(
            lease_ids(&b, "gp/creds/drain/").expect("both under the prefix"),
            vec!["gp/creds/drain/a1", "gp/creds/drain/b2"]
        );
        assert!(lease_ids(&b, "database/creds/bench/").is_err());
        assert!(lease_ids(&batch(&[r#"{"data":{}}"#]), "gp/").is_err());
        assert!(lease_ids(&batch(&["not json"]), "gp/").is_err());
    }
}
