//! Closed-loop load: `concurrency` workers, each with its own keep-alive
//! connection, each sending its next request as soon as the previous response
//! body has been read. Every request that starts after the warm-up and ends
//! before the deadline is measured; latencies go into one HDR histogram per
//! worker (merged at the end), so the hot path shares nothing between workers.
//!
//! ```text
//!   connect all ──► warm-up (not measured) ──► measured window ──► stop
//!                    t0 .. t0+warmup            .. t0+warmup+duration
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Method, Uri};

use crate::error::{Error, Result};
use crate::http::{Conn, Endpoint};

/// What to send: one method, a rotating list of paths, one body for all.
pub struct Workload {
    /// GET or PUT.
    pub method: Method,
    /// Request paths; worker `w` starts at a different offset and walks the list.
    pub paths: Vec<Uri>,
    /// The request body (empty for reads).
    pub body: Bytes,
}

/// Timing of one load run.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Unmeasured time at the start, to fill caches and settle the servers.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// The outcome of one load run.
pub struct Outcome {
    /// Latencies of successful (2xx) requests, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Requests answered 2xx in the window.
    pub ok: u64,
    /// Non-2xx answers and transport failures in the window.
    pub errors: u64,
    /// Error kinds seen ("HTTP 500", "transport: ...") with their counts.
    pub error_kinds: BTreeMap<String, u64>,
    /// Total response body bytes read in the window.
    pub body_bytes: u64,
    /// The measured window.
    pub window: Duration,
}

impl Outcome {
    /// Successful requests per second over the measured window.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    /// A latency quantile in milliseconds (0 when nothing succeeded).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latency_us.is_empty() {
            0.0
        } else {
            self.latency_us.value_at_quantile(q) as f64 / 1000.0
        }
    }
}

struct WorkerResult {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    error_kinds: BTreeMap<String, u64>,
    body_bytes: u64,
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds are valid")
}

/// Runs `workload` against `ep` with `concurrency` connections for `timing`.
///
/// All connections are opened before the clock starts; failing to open one
/// fails the run (a server that refuses connections should not look fast).
/// A connection that breaks during the run is counted as an error and reopened.
pub async fn run(
    ep: &Endpoint,
    workload: Arc<Workload>,
    concurrency: usize,
    timing: Timing,
) -> Result<Outcome> {
    run_notify(ep, workload, concurrency, timing, None).await
}

/// Like [`run`], and sends the instant the measured window starts (after the
/// connections are open and the warm-up is scheduled) to `window`, so other
/// work (e.g. plugin reloads) can be placed inside the window.
pub async fn run_notify(
    ep: &Endpoint,
    workload: Arc<Workload>,
    concurrency: usize,
    timing: Timing,
    window: Option<tokio::sync::oneshot::Sender<Instant>>,
) -> Result<Outcome> {
    if workload.paths.is_empty() {
        return Err(Error::InvalidArgument("workload has no paths".into()));
    }
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(Conn::connect(ep).await?);
    }
    // The clock starts once every connection is open; the short lead lets every
    // task get scheduled first (the warm-up absorbs any stragglers).
    let start = Instant::now() + Duration::from_millis(20);
    if let Some(tx) = window {
        let _ = tx.send(start + timing.warmup);
    }
    let mut handles = Vec::with_capacity(concurrency);
    let n = workload.paths.len();
    for (w, conn) in conns.into_iter().enumerate() {
        let ep = ep.clone();
        let workload = workload.clone();
        let first = w * n / concurrency.max(1);
        handles.push(tokio::spawn(async move {
            worker(&ep, &workload, conn, first, start, timing).await
        }));
    }

    let mut out = Outcome {
        latency_us: new_histogram(),
        ok: 0,
        errors: 0,
        error_kinds: BTreeMap::new(),
        body_bytes: 0,
        window: timing.duration,
    };
    for h in handles {
        let r = h.await.map_err(|e| Error::Worker(e.to_string()))?;
        // Both histograms have the same bounds; `add` fails only on a bounds mismatch.
        if out.latency_us.add(&r.hist).is_err() {
            return Err(Error::Worker("merging latency histograms".into()));
        }
        out.ok += r.ok;
        out.errors += r.errors;
        out.body_bytes += r.body_bytes;
        for (k, v) in r.error_kinds {
            *out.error_kinds.entry(k).or_default() += v;
        }
    }
    Ok(out)
}

async fn worker(
    ep: &Endpoint,
    workload: &Workload,
    conn: Conn,
    first: usize,
    start: Instant,
    timing: Timing,
) -> WorkerResult {
    let measure_from = start + timing.warmup;
    let end = measure_from + timing.duration;
    let mut r = WorkerResult {
        hist: new_histogram(),
        ok: 0,
        errors: 0,
        error_kinds: BTreeMap::new(),
        body_bytes: 0,
    };
    let mut conn = Some(conn);
    let n = workload.paths.len();
    let mut i = first % n;
    tokio::time::sleep_until(start.into()).await;
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let c = match conn.as_mut() {
            Some(c) if !c.is_closed() => c,
            _ => match Conn::connect(ep).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    if Instant::now() >= measure_from {
                        r.errors += 1;
                        *r.error_kinds.entry(format!("connect: {e}")).or_default() += 1;
                    }
                    conn = None;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let res = c
            .send_drain(ep, &workload.method, &workload.paths[i], &workload.body)
            .await;
        let t1 = Instant::now();
        i += 1;
        if i == n {
            i = 0;
        }
        let measured = t0 >= measure_from && t1 <= end;
        match res {
            Ok(d) if d.status.is_success() => {
                if measured {
                    let us = (t1 - t0).as_micros().min(u64::MAX as u128) as u64;
                    r.hist.saturating_record(us.max(1));
                    r.ok += 1;
                    r.body_bytes += d.body_len as u64;
                }
            }
            Ok(d) => {
                if measured {
                    r.errors += 1;
                    *r.error_kinds
                        .entry(format!("HTTP {}", d.status.as_u16()))
                        .or_default() += 1;
                }
            }
            Err(e) => {
                if measured {
                    r.errors += 1;
                    *r.error_kinds.entry(format!("transport: {e}")).or_default() += 1;
                }
                conn = None;
            }
        }
    }
    r
}
