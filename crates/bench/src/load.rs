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
use clap::Args;
use hdrhistogram::Histogram;
use hyper::{Method, Uri};

use crate::error::{Error, Result};
use crate::http::{Conn, Endpoint};

/// The load flags the kv, plugins, vault-plugins and audit subcommands
/// share (same names and defaults). The help texts here are the most common
/// ones; a subcommand words one for itself with `#[command(mut_arg(..))]`.
#[derive(Args)]
pub struct LoadArgs {
    /// Concurrency levels (connections, each with one request in flight).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64])]
    pub concurrency: Vec<usize>,
    /// Measured seconds per read row.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Unmeasured warm-up seconds before each read row.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Number of keys; reads and writes cycle through them.
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Size in bytes of each value.
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// Load generator threads [default: number of CPUs].
    #[arg(long)]
    pub client_threads: Option<usize>,
}

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

    /// Adds `other`, another measured window of the same workload: counts
    /// and windows add up, latencies merge.
    pub fn absorb(&mut self, other: Outcome) {
        // Both histograms have the same bounds (made by `run`).
        let _ = self.latency_us.add(&other.latency_us);
        self.ok += other.ok;
        self.errors += other.errors;
        for (kind, n) in other.error_kinds {
            *self.error_kinds.entry(kind).or_default() += n;
        }
        self.body_bytes += other.body_bytes;
        self.window += other.window;
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

/// The worker's connection if it is still open, else a new one (left `None`
/// when connecting fails).
async fn open<'a>(ep: &Endpoint, conn: &'a mut Option<Conn>) -> Result<&'a mut Conn> {
    if conn.as_ref().is_none_or(Conn::is_closed) {
        *conn = None;
        *conn = Some(Conn::connect(ep).await?);
    }
    conn.as_mut()
        .ok_or_else(|| Error::Worker("no connection after connecting".into()))
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
        let c = match open(ep, &mut conn).await {
            Ok(c) => c,
            Err(e) => {
                if Instant::now() >= measure_from {
                    r.errors += 1;
                    *r.error_kinds.entry(format!("connect: {e}")).or_default() += 1;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
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

/// One request of a [`run_batch`]: built when it is sent, so a path may
/// depend on the time (e.g. a TTL that makes every lease fall due at once).
pub struct Req {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// The body (empty for reads).
    pub body: Bytes,
}

/// The outcome of a [`run_batch`].
pub struct Batch {
    /// From the first request sent to the last answer read.
    pub elapsed: Duration,
    /// Latencies of 2xx answers, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Non-2xx answers and transport failures.
    pub errors: u64,
    /// Error kinds ("HTTP 500: <body start>", "transport: ...") with their counts.
    pub error_kinds: BTreeMap<String, u64>,
    /// The body of each 2xx answer, by request index (`None` when it failed).
    pub bodies: Vec<Option<Bytes>>,
}

impl Batch {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ok as f64 / s } else { 0.0 }
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

/// A fixed number of requests (`make(0..n)`), each sent once, by `concurrency`
/// workers with one keep-alive connection each (opened before the clock
/// starts), each taking the next request as soon as its previous answer is
/// read. Unlike [`run`], which measures a time window, this measures how long
/// a given amount of work takes, and keeps the answers (e.g. lease ids).
pub async fn run_batch(
    ep: &Endpoint,
    n: usize,
    concurrency: usize,
    make: Arc<dyn Fn(usize) -> Req + Send + Sync>,
) -> Result<Batch> {
    let concurrency = concurrency.clamp(1, n.max(1));
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(Conn::connect(ep).await?);
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(concurrency);
    for conn in conns {
        let ep = ep.clone();
        let next = next.clone();
        let make = make.clone();
        handles.push(tokio::spawn(async move {
            batch_worker(&ep, conn, n, &next, &*make).await
        }));
    }
    let mut out = Batch {
        elapsed: Duration::ZERO,
        latency_us: new_histogram(),
        ok: 0,
        errors: 0,
        error_kinds: BTreeMap::new(),
        bodies: vec![None; n],
    };
    for h in handles {
        let (r, bodies) = h.await.map_err(|e| Error::Worker(e.to_string()))?;
        if out.latency_us.add(&r.hist).is_err() {
            return Err(Error::Worker("merging latency histograms".into()));
        }
        out.ok += r.ok;
        out.errors += r.errors;
        for (k, v) in r.error_kinds {
            *out.error_kinds.entry(k).or_default() += v;
        }
        for (i, b) in bodies {
            out.bodies[i] = Some(b);
        }
    }
    out.elapsed = start.elapsed();
    Ok(out)
}

async fn batch_worker(
    ep: &Endpoint,
    conn: Conn,
    n: usize,
    next: &std::sync::atomic::AtomicUsize,
    make: &(dyn Fn(usize) -> Req + Send + Sync),
) -> (WorkerResult, Vec<(usize, Bytes)>) {
    let mut r = WorkerResult {
        hist: new_histogram(),
        ok: 0,
        errors: 0,
        error_kinds: BTreeMap::new(),
        body_bytes: 0,
    };
    let mut bodies = Vec::new();
    let mut conn = Some(conn);
    loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if i >= n {
            break;
        }
        let c = match open(ep, &mut conn).await {
            Ok(c) => c,
            Err(e) => {
                r.errors += 1;
                *r.error_kinds.entry(format!("connect: {e}")).or_default() += 1;
                continue;
            }
        };
        let req = make(i);
        let t0 = Instant::now();
        match c.send(ep, req.method, &req.path, req.body).await {
            Ok((status, body)) if status.is_success() => {
                let us = t0.elapsed().as_micros().min(u64::MAX as u128) as u64;
                r.hist.saturating_record(us.max(1));
                r.ok += 1;
                r.body_bytes += body.len() as u64;
                bodies.push((i, body));
            }
            Ok((status, body)) => {
                r.errors += 1;
                let kind = format!(
                    "HTTP {}: {}",
                    status.as_u16(),
                    crate::http::snippet(&body)
                        .chars()
                        .take(120)
                        .collect::<String>()
                );
                *r.error_kinds.entry(kind).or_default() += 1;
            }
            Err(e) => {
                r.errors += 1;
                *r.error_kinds.entry(format!("transport: {e}")).or_default() += 1;
                conn = None;
            }
        }
    }
    (r, bodies)
}
