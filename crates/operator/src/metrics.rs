//! Operator metrics in the Prometheus text exposition format (0.0.4), and
//! the health server (`/healthz`, `/readyz`, `/metrics`).
//!
//! Hand-written on purpose: a handful of counters and one histogram family
//! do not justify a metrics framework. Label values are escaped as the
//! format requires (`\\`, `\"`, `\n`).

use lockbox_plugin_host::Node;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds (seconds) of the reconcile duration histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters of both controllers.
#[derive(Default)]
pub struct Metrics {
    reconciles: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<BTreeMap<(String, String), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    leader: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one reconcile of `kind` that took `elapsed`.
    pub fn reconciled(&self, kind: &str, elapsed: Duration) {
        *lock(&self.reconciles).entry(kind.into()).or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut d = lock(&self.durations);
        let h = d.entry(kind.into()).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts one failure of `kind` with a stable `reason` label.
    pub fn failed(&self, kind: &str, reason: &str) {
        *lock(&self.errors)
            .entry((kind.into(), reason.into()))
            .or_default() += 1;
    }

    /// Records whether this replica holds the leader lease.
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }

    /// Whether this replica holds the leader lease.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// The exposition text, including the plugin host's processes.
    pub fn render(&self, core: &Node) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP lockbox_operator_reconciles_total Reconciles run, by kind.\n\
             # TYPE lockbox_operator_reconciles_total counter"
        );
        for (kind, n) in lock(&self.reconciles).iter() {
            let _ = writeln!(
                out,
                "lockbox_operator_reconciles_total{{kind=\"{}\"}} {n}",
                escape(kind)
            );
        }
        let _ = writeln!(
            out,
            "# HELP lockbox_operator_reconcile_errors_total Failed or not-ready reconciles, by kind and reason.\n\
             # TYPE lockbox_operator_reconcile_errors_total counter"
        );
        for ((kind, reason), n) in lock(&self.errors).iter() {
            let _ = writeln!(
                out,
                "lockbox_operator_reconcile_errors_total{{kind=\"{}\",reason=\"{}\"}} {n}",
                escape(kind),
                escape(reason)
            );
        }
        let _ = writeln!(
            out,
            "# HELP lockbox_operator_reconcile_duration_seconds Reconcile duration, by kind.\n\
             # TYPE lockbox_operator_reconcile_duration_seconds histogram"
        );
        for (kind, h) in lock(&self.durations).iter() {
            let k = escape(kind);
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "lockbox_operator_reconcile_duration_seconds_bucket{{kind=\"{k}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "lockbox_operator_reconcile_duration_seconds_bucket{{kind=\"{k}\",le=\"+Inf\"}} {}\n\
                 lockbox_operator_reconcile_duration_seconds_sum{{kind=\"{k}\"}} {}\n\
                 lockbox_operator_reconcile_duration_seconds_count{{kind=\"{k}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP lockbox_operator_leader 1 if this replica holds the leader lease.\n\
             # TYPE lockbox_operator_leader gauge\nlockbox_operator_leader {}",
            u8::from(self.is_leader())
        );
        let _ = writeln!(
            out,
            "# HELP lockbox_sealed 1 if the core is sealed.\n# TYPE lockbox_sealed gauge\nlockbox_sealed {}",
            u8::from(core.is_sealed())
        );
        // Plugin processes, aggregated per plugin and version.
        let mut procs: BTreeMap<(String, String, String), (u64, u64)> = BTreeMap::new();
        for g in core.plugin_host().groups() {
            let e = g.entry();
            let slot = procs
                .entry((
                    e.kind.as_str().to_string(),
                    e.name.clone(),
                    e.version.clone(),
                ))
                .or_default();
            slot.0 += u64::from(g.pid().is_some());
            slot.1 += g.restarts();
        }
        let _ = writeln!(
            out,
            "# HELP lockbox_plugin_processes Running plugin processes.\n\
             # TYPE lockbox_plugin_processes gauge"
        );
        for ((t, name, version), (n, _)) in &procs {
            let _ = writeln!(
                out,
                "lockbox_plugin_processes{{type=\"{t}\",plugin=\"{}\",version=\"{}\"}} {n}",
                escape(name),
                escape(version)
            );
        }
        let _ = writeln!(
            out,
            "# HELP lockbox_plugin_restarts_total Plugin process restarts after a crash.\n\
             # TYPE lockbox_plugin_restarts_total counter"
        );
        for ((t, name, version), (_, r)) in &procs {
            let _ = writeln!(
                out,
                "lockbox_plugin_restarts_total{{type=\"{t}\",plugin=\"{}\",version=\"{}\"}} {r}",
                escape(name),
                escape(version)
            );
        }
        out
    }
}

/// The most connections the health server serves at once (kubelet probes
/// and a scraper need a few); more are closed as soon as they are accepted.
const MAX_HEALTH_CONNECTIONS: usize = 64;

/// Serves `/healthz` (process alive), `/readyz` (core unsealed) and
/// `/metrics` on `listener` until `shutdown` resolves. Like the API
/// listener, its connections have Vault's default header and idle timeouts
/// (see [`lockbox_http::conn`]) and their number is capped, so clients that
/// reach the port cannot hold the process's connections (it shares the file
/// descriptor limit with the API).
pub async fn serve_health(
    listener: tokio::net::TcpListener,
    core: Arc<Node>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    serve_health_with(
        listener,
        core,
        metrics,
        shutdown,
        lockbox_http::Timeouts::default(),
        MAX_HEALTH_CONNECTIONS,
    )
    .await
}

async fn serve_health_with(
    listener: tokio::net::TcpListener,
    core: Arc<Node>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
    timeouts: lockbox_http::Timeouts,
    max_connections: usize,
) {
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use lockbox_http::conn::{Activity, Monitored, Tracked};
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("health listener accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(
                "health server full ({max_connections} connections): closing a new one"
            );
            continue;
        };
        let core = core.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let activity = Activity::new(timeouts);
            let requests = activity.clone();
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let guard = requests.request_started(req.version());
                let (status, ctype, body) = match req.uri().path() {
                    "/healthz" => (200, "text/plain", "ok\n".to_string()),
                    "/readyz" if !core.is_sealed() => (200, "text/plain", "ok\n".to_string()),
                    "/readyz" => (503, "text/plain", "sealed\n".to_string()),
                    "/metrics" => (
                        200,
                        "text/plain; version=0.0.4; charset=utf-8",
                        metrics.render(&core),
                    ),
                    _ => (404, "text/plain", "not found\n".to_string()),
                };
                let resp = hyper::Response::builder()
                    .status(status)
                    .header("content-type", ctype)
                    .body(Tracked::new(Full::new(bytes::Bytes::from(body)), guard));
                std::future::ready(resp)
            });
            let io = TokioIo::new(Monitored::new(stream, activity.clone()));
            let connection = hyper::server::conn::http1::Builder::new()
                .header_read_timeout(None)
                .serve_connection(io, svc);
            tokio::select! {
                _ = connection => {}
                why = activity.expired() => tracing::debug!("health connection closed: {why}"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_health_server_cuts_slow_heads_and_caps_connections() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let core = Arc::new(Node::new(
            Arc::new(lockbox_storage::InMemory::new()),
            lockbox_plugin_host::NodeConfig::default(),
        ));
        let timeouts = lockbox_http::Timeouts {
            read_header: Some(Duration::from_millis(300)),
            ..Default::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_health_with(
            listener,
            core,
            Arc::new(Metrics::default()),
            async {
                let _ = stopped.await;
            },
            timeouts,
            2,
        ));
        let read_all = |mut s: tokio::net::TcpStream| async move {
            let mut out = Vec::new();
            tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
                .await
                .expect("the server must close the connection")
                .map(|_| String::from_utf8_lossy(&out).into_owned())
                .unwrap_or_default()
        };
        // Two unfinished heads hold both slots ...
        let mut slow = Vec::new();
        for _ in 0..2 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
            slow.push(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // ... so a third connection is closed unanswered,
        let third = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert_eq!(read_all(third).await, "");
        // the slow ones are cut by the header timeout,
        for s in slow {
            assert_eq!(read_all(s).await, "");
        }
        // and then the server answers again.
        let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let reply = read_all(ok).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        let _ = stop.send(());
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.reconciled("SecretsMount", Duration::from_millis(30));
        m.failed("SecretsMount", "CoreApi");
        let core = Node::new(
            Arc::new(lockbox_storage::InMemory::new()),
            lockbox_plugin_host::NodeConfig::default(),
        );
        let text = m.render(&core);
        assert!(text.contains("lockbox_operator_reconciles_total{kind=\"SecretsMount\"} 1"));
        assert!(text.contains(
            "lockbox_operator_reconcile_duration_seconds_bucket{kind=\"SecretsMount\",le=\"0.025\"} 0"
        ));
        assert!(text.contains(
            "lockbox_operator_reconcile_duration_seconds_bucket{kind=\"SecretsMount\",le=\"0.05\"} 1"
        ));
        assert!(text.contains(
            "lockbox_operator_reconcile_errors_total{kind=\"SecretsMount\",reason=\"CoreApi\"} 1"
        ));
    }
}
