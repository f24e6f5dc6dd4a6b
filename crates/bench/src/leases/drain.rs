//! Part 2 of `leases`: 10,000 leases that fall due at the same second,
//! revoked by lockbox's expiry task (through the engine that issued them),
//! while kv reads run in a closed loop; reads are measured in short slices
//! before and through the drain, and the leases left are counted with
//! `LIST sys/leases/lookup/<prefix>` meanwhile.
//!
//! ```text
//!   baseline slices ── issue N leases (ttl = seconds to T) ── slices ... T (due) ... drained ── one more slice
//!                                                              └─ poller: LIST every --poll-ms ─┘
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;

use super::{Lockbox, lease_ids};
use crate::cpu::Usage;
use crate::error::{Error, Result};
use crate::http::{Conn, Endpoint};
use crate::load::{self, Batch, Outcome, Req, Timing, Workload};
use crate::lockbox::{get_json, post, put};

/// The catalog name (and file name in the plugin directory) of the Go test plugin.
pub(crate) const TESTPLUGIN: &str = "gotest";
/// Its mount and the creds name the leases are issued under.
const MOUNT: &str = "gp";
const NAME: &str = "drain";

/// The settings of the drain.
pub(crate) struct DrainSettings {
    pub(crate) leases: usize,
    pub(crate) issue_concurrency: usize,
    /// Seconds from the start of issuing until every lease falls due.
    pub(crate) due_after: f64,
    pub(crate) read_concurrency: usize,
    pub(crate) slice: Duration,
    pub(crate) baseline_slices: usize,
    pub(crate) poll: Duration,
    pub(crate) timeout: Duration,
}

/// One slice of reads.
pub(crate) struct Slice {
    /// Start and end of its measured window, in seconds relative to the due
    /// time (0 for a baseline slice).
    pub(crate) start_s: f64,
    pub(crate) end_s: f64,
    pub(crate) outcome: Outcome,
    /// Leases left at the end of the slice (last count seen).
    pub(crate) left: Option<usize>,
    /// lockbox, the Go plugin, the load generator, the rest of the machine.
    pub(crate) cores: [Option<f64>; 4],
}

/// Everything the drain measured.
pub(crate) struct Drain {
    pub(crate) issue: Batch,
    /// lockbox, the Go plugin, the load generator, the rest of the machine, while issuing.
    pub(crate) issue_cores: [Option<f64>; 4],
    /// Seconds from the end of issuing to the due time (negative: leases fell due while still being issued).
    pub(crate) slack_s: f64,
    pub(crate) baseline: Vec<Slice>,
    pub(crate) slices: Vec<Slice>,
    /// (seconds relative to the due time, leases left).
    pub(crate) samples: Vec<(f64, usize)>,
    /// Seconds relative to the due time of the first count below N, and of the first count of 0.
    pub(crate) first_revoked_s: Option<f64>,
    pub(crate) all_revoked_s: Option<f64>,
    /// How many of the issued secrets the plugin says it revoked.
    pub(crate) revoked_by_plugin: usize,
    pub(crate) issued: usize,
}

/// Registers the Go test plugin and mounts it at `gp/`.
pub(crate) async fn setup(lb: &Lockbox, sha: &str) -> Result<()> {
    put(
        &lb.ep,
        &format!("/v1/sys/plugins/catalog/secret/{TESTPLUGIN}"),
        serde_json::json!({ "sha256": sha, "command": TESTPLUGIN }),
    )
    .await?;
    post(
        &lb.ep,
        &format!("/v1/sys/mounts/{MOUNT}"),
        serde_json::json!({ "type": TESTPLUGIN }),
    )
    .await
}

/// Seconds from `due` to `t` (negative before it).
fn rel(t: Instant, due: Instant) -> f64 {
    if t >= due {
        (t - due).as_secs_f64()
    } else {
        -(due - t).as_secs_f64()
    }
}

/// The number of leases under `gp/creds/drain/` (404: none).
async fn count(conn: &mut Conn, ep: &Endpoint) -> Result<usize> {
    let path = format!("/v1/sys/leases/lookup/{MOUNT}/creds/{NAME}/?list=true");
    let (status, body) = conn.send(ep, Method::GET, &path, Bytes::new()).await?;
    match status.as_u16() {
        404 => Ok(0),
        200 => {
            let json: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| Error::UnexpectedBody {
                    what: format!("GET {path}"),
                    reason: format!("not JSON: {e}"),
                })?;
            json.pointer("/data/keys")
                .and_then(|k| k.as_array())
                .map(Vec::len)
                .ok_or_else(|| Error::UnexpectedBody {
                    what: format!("GET {path}"),
                    reason: "no data.keys list".into(),
                })
        }
        s => Err(Error::UnexpectedStatus {
            what: format!("GET {path}"),
            expected: 200,
            status: s,
            body: crate::http::snippet(&body),
        }),
    }
}

/// Counts the leases every `poll` from now until none is left or `until`.
async fn poll_leases(
    ep: Endpoint,
    due: Instant,
    poll: Duration,
    until: Instant,
    samples: Arc<std::sync::Mutex<Vec<(f64, usize)>>>,
    done: Arc<AtomicBool>,
) -> Result<()> {
    let mut conn = Conn::connect(&ep).await?;
    let result = loop {
        let t = Instant::now();
        let n = match count(&mut conn, &ep).await {
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        if let Ok(mut s) = samples.lock() {
            s.push((rel(t, due), n));
        }
        if n == 0 || Instant::now() >= until {
            break Ok(());
        }
        tokio::time::sleep(poll).await;
    };
    done.store(true, Ordering::SeqCst);
    result
}

async fn slice(
    lb: &Lockbox,
    reads: &Arc<Workload>,
    concurrency: usize,
    length: Duration,
    due: Option<Instant>,
    left: impl Fn() -> Option<usize>,
) -> Result<Slice> {
    let plugins = lb.plugin_pids(TESTPLUGIN);
    let before = Usage::take(&[&[lb.pid], &plugins]);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let timing = Timing {
        warmup: Duration::ZERO,
        duration: length,
    };
    let outcome = load::run_notify(&lb.ep, reads.clone(), concurrency, timing, Some(tx)).await?;
    let c = before.cores_until(&Usage::take(&[&[lb.pid], &plugins]));
    let start = rx.await.unwrap_or_else(|_| Instant::now() - length);
    // A baseline slice (no due time) is placed at 0.
    let at = |t: Instant| due.map_or(0.0, |d| rel(t, d));
    let s = Slice {
        start_s: at(start),
        end_s: at(start + length),
        outcome,
        left: left(),
        cores: [c[0], c[1], c[2], c[3]],
    };
    let when = match due {
        Some(_) => format!("{:>+7.1} s .. {:>+7.1} s", s.start_s, s.end_s),
        None => format!("{:<21}", "baseline"),
    };
    eprintln!(
        "  reads {when}  {:>7.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}  leases left {}",
        s.outcome.throughput(),
        s.outcome.quantile_ms(0.5),
        s.outcome.quantile_ms(0.99),
        s.outcome.errors,
        s.left.map_or_else(|| "?".into(), |n| n.to_string())
    );
    Ok(s)
}

/// The ids (the plugin's own) of the secrets the plugin says it revoked.
async fn revoked_by_plugin(ep: &Endpoint) -> Result<Vec<String>> {
    let json = get_json(ep, &format!("/v1/{MOUNT}/revocations")).await?;
    Ok(json
        .pointer("/data/ids")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Runs the drain: baseline slices, issue, then slices until drained.
pub(crate) async fn measure(
    lb: &Lockbox,
    reads: &Arc<Workload>,
    s: &DrainSettings,
) -> Result<Drain> {
    eprintln!(
        "  baseline: {} slices of reads, c={}",
        s.baseline_slices, s.read_concurrency
    );
    let mut baseline = Vec::new();
    for _ in 0..s.baseline_slices {
        baseline.push(slice(lb, reads, s.read_concurrency, s.slice, None, || None).await?);
    }
    // Every lease gets the TTL that ends it at `due` (to the second).
    let due = Instant::now() + Duration::from_secs_f64(s.due_after);
    eprintln!(
        "  issuing {} leases (gp/creds/{NAME}), c={}, all due in {:.0} s",
        s.leases, s.issue_concurrency, s.due_after
    );
    let issue_req: Arc<dyn Fn(usize) -> Req + Send + Sync> = Arc::new(move |_| {
        let left = due.saturating_duration_since(Instant::now()).as_secs_f64();
        Req {
            method: Method::GET,
            path: format!(
                "/v1/{MOUNT}/creds/{NAME}?ttl={}",
                (left.ceil() as u64).max(1)
            ),
            body: Bytes::new(),
        }
    });
    let plugins = lb.plugin_pids(TESTPLUGIN);
    let before = Usage::take(&[&[lb.pid], &plugins]);
    let issue = load::run_batch(&lb.ep, s.leases, s.issue_concurrency, issue_req).await?;
    let c = before.cores_until(&Usage::take(&[&[lb.pid], &plugins]));
    let issued = lease_ids(&issue, &format!("{MOUNT}/creds/{NAME}/"))?.len();
    let slack_s = -rel(Instant::now(), due);
    eprintln!(
        "  issued {issued} in {:.1} s ({:.0}/s, errors {}); {slack_s:.1} s until due",
        issue.elapsed.as_secs_f64(),
        issue.rate(),
        issue.errors
    );
    // Internal ids, to check the plugin revoked each one.
    let ours: std::collections::HashSet<String> = issue
        .bodies
        .iter()
        .flatten()
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .filter_map(|j| j.pointer("/data/id")?.as_str().map(str::to_string))
        .collect();

    // Slices start one slice before the due time; the poller with them.
    let first = due.checked_sub(s.slice).unwrap_or(due);
    tokio::time::sleep_until(first.into()).await;
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn(poll_leases(
        lb.ep.clone(),
        due,
        s.poll,
        due + s.timeout,
        samples.clone(),
        done.clone(),
    ));
    let last_left = || samples.lock().ok().and_then(|v| v.last().map(|x| x.1));
    let mut slices = Vec::new();
    while !done.load(Ordering::SeqCst) {
        slices.push(slice(lb, reads, s.read_concurrency, s.slice, Some(due), last_left).await?);
    }
    slices.push(slice(lb, reads, s.read_concurrency, s.slice, Some(due), last_left).await?);
    poller
        .await
        .map_err(|e| Error::Worker(format!("lease poller: {e}")))??;
    let samples = samples.lock().map(|v| v.clone()).unwrap_or_default();
    let first_revoked_s = samples.iter().find(|x| x.1 < issued).map(|x| x.0);
    let all_revoked_s = samples.iter().find(|x| x.1 == 0).map(|x| x.0);
    let revoked = revoked_by_plugin(&lb.ep).await?;
    let revoked_by_plugin = revoked.iter().filter(|id| ours.contains(*id)).count();
    Ok(Drain {
        issue,
        issue_cores: [c[0], c[1], c[2], c[3]],
        slack_s,
        baseline,
        slices,
        samples,
        first_revoked_s,
        all_revoked_s,
        revoked_by_plugin,
        issued,
    })
}
