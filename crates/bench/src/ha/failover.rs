//! Failover time of an HA group under a light write load: rounds of
//! `kill -9` of the active node, the time from the kill to the first write
//! that succeeds through a surviving node, then the killed node restarted
//! until it is a standby of the new active.
//!
//! ```text
//!  light load: W writers, one PUT every --load-interval-ms each, round robin over all nodes
//!  round:  kill -9 active ─┬─ PUT probe on each survivor every --probe-ms ─► first 2xx  = failover
//!                          └─ GET sys/leader on each survivor            ─► is_self   = leader seen
//!          restart the killed node ─► standby naming the new active ─► settle ─► next round
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::deployment::Deployment;
use crate::error::{Error, Result};
use crate::http::{Conn, Endpoint};

/// Settings of the failover part.
pub(crate) struct FailoverSettings {
    pub(crate) rounds: usize,
    pub(crate) load_writers: usize,
    pub(crate) load_interval: Duration,
    pub(crate) probe: Duration,
    pub(crate) timeout: Duration,
    pub(crate) settle: Duration,
    pub(crate) start_timeout: Duration,
}

/// One kill and what followed.
pub(crate) struct Round {
    /// The node killed (the active one).
    pub(crate) killed: usize,
    /// The node that said `is_self` first after the kill.
    pub(crate) new_active: Option<usize>,
    /// From the kill to the first `sys/leader` answer with `is_self` on a survivor.
    pub(crate) leader_seen: Option<Duration>,
    /// From the kill to the first 2xx write through a survivor, and that survivor.
    pub(crate) first_write: Option<(Duration, usize)>,
    /// From the restart of the killed node to it being a standby of the new active.
    pub(crate) rejoined: Option<Duration>,
}

/// What the failover part measured.
pub(crate) struct Failover {
    /// The nodes' names, by index.
    pub(crate) names: Vec<String>,
    pub(crate) rounds: Vec<Round>,
    /// Writes of the light load answered 2xx over the whole part.
    pub(crate) load_ok: u64,
    /// Writes of the light load that failed, by kind.
    pub(crate) load_errors: BTreeMap<String, u64>,
    /// Wall time of the whole part.
    pub(crate) elapsed: Duration,
}

/// One request on a cached connection, with a timeout; the connection is
/// dropped after any failure.
async fn send(
    ep: &Endpoint,
    conn: &mut Option<Conn>,
    method: Method,
    path: &str,
    body: &Bytes,
    limit: Duration,
) -> std::result::Result<(StatusCode, Bytes), String> {
    let attempt = async {
        if conn.as_ref().is_none_or(Conn::is_closed) {
            *conn = Some(Conn::connect(ep).await.map_err(|e| crate::chain(&e))?);
        }
        let c = conn.as_mut().ok_or("no connection")?;
        c.send(ep, method, path, body.clone())
            .await
            .map_err(|e| crate::chain(&e))
    };
    let out = match tokio::time::timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
    };
    if out.is_err() {
        *conn = None;
    }
    out
}

/// The short kind of a failure, for the load's error counts.
fn kind(e: &str) -> String {
    if e.starts_with("no answer") {
        "timeout".into()
    } else if e.contains("Connection refused") {
        "connection refused".into()
    } else {
        e.chars().take(80).collect()
    }
}

/// The light write load: `writers` tasks writing through every node in turn.
fn start_load(
    eps: &[Endpoint],
    s: &FailoverSettings,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<(u64, BTreeMap<String, u64>)>> {
    (0..s.load_writers)
        .map(|w| {
            let (eps, stop, interval) = (eps.to_vec(), stop.clone(), s.load_interval);
            tokio::spawn(async move {
                let body = crate::lockbox::write_body("light load during failover");
                let mut conns: Vec<Option<Conn>> = eps.iter().map(|_| None).collect();
                let (mut ok, mut errors) = (0u64, BTreeMap::new());
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let n = i % eps.len();
                    let path = format!("/v1/secret/bench/load-{w}-{}", i % 100);
                    let limit = Duration::from_secs(2);
                    match send(&eps[n], &mut conns[n], Method::PUT, &path, &body, limit).await {
                        Ok((st, _)) if st.is_success() => ok += 1,
                        Ok((st, _)) => {
                            *errors.entry(format!("HTTP {}", st.as_u16())).or_default() += 1
                        }
                        Err(e) => *errors.entry(kind(&e)).or_default() += 1,
                    }
                    i += 1;
                    tokio::time::sleep(interval).await;
                }
                (ok, errors)
            })
        })
        .collect()
}

/// Polls node `i` until `done` accepts an answer to `method path`; sends
/// `(i, when)` then.
fn probe(
    i: usize,
    ep: Endpoint,
    (method, path, body): (Method, &'static str, Bytes),
    every: Duration,
    tx: mpsc::UnboundedSender<(usize, Instant)>,
    done: fn(StatusCode, &[u8]) -> bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut conn = None;
        loop {
            let limit = Duration::from_secs(1);
            if let Ok((st, b)) = send(&ep, &mut conn, method.clone(), path, &body, limit).await
                && done(st, &b)
            {
                let _ = tx.send((i, Instant::now()));
                return;
            }
            tokio::time::sleep(every).await;
        }
    })
}

fn wrote(st: StatusCode, _: &[u8]) -> bool {
    st.is_success()
}

fn is_self(st: StatusCode, b: &[u8]) -> bool {
    st == StatusCode::OK
        && serde_json::from_slice::<serde_json::Value>(b).is_ok_and(|v| v["is_self"] == true)
}

/// The first `(node, instant)` on `rx` before `deadline`.
async fn first(
    rx: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    deadline: Instant,
) -> Option<(usize, Instant)> {
    tokio::time::timeout_at(deadline.into(), rx.recv())
        .await
        .ok()
        .flatten()
}

/// One round: kill the active node `active`, time the takeover, restart it.
async fn round(
    d: &mut Deployment,
    eps: &[Endpoint],
    active: usize,
    binary: &Path,
    s: &FailoverSettings,
) -> Result<Round> {
    let survivors: Vec<usize> = (0..d.nodes.len()).filter(|&i| i != active).collect();
    let (wtx, mut wrx) = mpsc::unbounded_channel();
    let (ltx, mut lrx) = mpsc::unbounded_channel();
    let body = crate::lockbox::write_body("failover probe");
    let killed_at = d.nodes[active].kill().await?;
    let mut tasks = Vec::new();
    for &i in &survivors {
        let put = (Method::PUT, "/v1/secret/bench/failover-probe", body.clone());
        tasks.push(probe(i, eps[i].clone(), put, s.probe, wtx.clone(), wrote));
        let get = (Method::GET, "/v1/sys/leader", Bytes::new());
        tasks.push(probe(i, eps[i].clone(), get, s.probe, ltx.clone(), is_self));
    }
    let deadline = killed_at + s.timeout;
    let write = first(&mut wrx, deadline).await;
    let leader = first(&mut lrx, deadline).await;
    for t in &tasks {
        t.abort();
    }
    let mut r = Round {
        killed: active,
        new_active: leader.map(|(i, _)| i),
        leader_seen: leader.map(|(_, at)| at - killed_at),
        first_write: write.map(|(i, at)| (at - killed_at, i)),
        rejoined: None,
    };
    eprintln!(
        "  round: killed {}, new active {}, leader seen {}, first write {}",
        d.nodes[active].name,
        r.new_active
            .map_or("none".into(), |i| d.nodes[i].name.clone()),
        r.leader_seen.map_or("never".into(), |t| format!(
            "{:.0} ms",
            t.as_secs_f64() * 1e3
        )),
        r.first_write.map_or("never".into(), |(t, i)| format!(
            "{:.0} ms via {}",
            t.as_secs_f64() * 1e3,
            d.nodes[i].name
        )),
    );
    let Some(new_active) = r.new_active else {
        return Err(d.nodes[survivors[0]].failure(format!(
            "no survivor became active within {} s of the kill of {}",
            s.timeout.as_secs(),
            d.nodes[active].name
        )));
    };
    let restarted = Instant::now();
    d.nodes[active].start(binary, s.start_timeout).await?;
    let leader_url = d.nodes[new_active].url.clone();
    d.wait_standby(active, &leader_url, s.start_timeout).await?;
    r.rejoined = Some(restarted.elapsed());
    Ok(r)
}

/// Runs the rounds on `d` (an HA group whose node 0 is active).
pub(crate) async fn measure(
    d: &mut Deployment,
    binary: &Path,
    s: &FailoverSettings,
) -> Result<Failover> {
    let started = Instant::now();
    let mut eps = Vec::with_capacity(d.nodes.len());
    for i in 0..d.nodes.len() {
        eps.push(d.endpoint(i).await?);
    }
    let all: Vec<usize> = (0..d.nodes.len()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(&eps, s, &stop);
    // Let the load reach every node before the first kill.
    tokio::time::sleep(s.settle).await;
    let mut rounds = Vec::with_capacity(s.rounds);
    let mut outcome = Ok(());
    for _ in 0..s.rounds {
        let Some(active) = d.active_among(&all).await else {
            outcome = Err(d.nodes[0].failure("no node says it is active".into()));
            break;
        };
        match round(d, &eps, active, binary, s).await {
            Ok(r) => rounds.push(r),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
        tokio::time::sleep(s.settle).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut load_ok, mut load_errors) = (0, BTreeMap::new());
    for h in load {
        let (ok, errors) = h.await.map_err(|e| Error::Worker(e.to_string()))?;
        load_ok += ok;
        for (k, v) in errors {
            *load_errors.entry(k).or_default() += v;
        }
    }
    outcome?;
    Ok(Failover {
        names: d.nodes.iter().map(|n| n.name.clone()).collect(),
        rounds,
        load_ok,
        load_errors,
        elapsed: started.elapsed(),
    })
}

/// The median of some durations (the mean of the middle two for an even count).
pub(crate) fn median(values: &[Duration]) -> Option<Duration> {
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        assert_eq!(median(&[]), None);
        assert_eq!(
            median(&ms(&[300, 100, 200])),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            median(&ms(&[400, 100, 300, 200])),
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn leader_answers_count_only_with_is_self() {
        assert!(is_self(
            StatusCode::OK,
            br#"{"is_self":true,"ha_enabled":true}"#
        ));
        assert!(!is_self(StatusCode::OK, br#"{"is_self":false}"#));
        assert!(!is_self(
            StatusCode::SERVICE_UNAVAILABLE,
            br#"{"is_self":true}"#
        ));
        assert!(!is_self(StatusCode::OK, b"not json"));
    }
}
