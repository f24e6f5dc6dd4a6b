//! Chaos, the operator half: the real `lockbox operator run` with a catalog
//! entry and SecretsMounts in two namespaces, under a bounded write load
//! through its HTTP API, while each round does one random disruption:
//!
//! * SIGKILL of the operator (restarted the way the harness starts it; it
//!   unseals from its Secrets and takes the Lease over once it expires);
//! * SIGKILL of one of its plugin processes (supervision restarts it);
//! * SIGKILL of the kube-apiserver, restarted after a random pause with the
//!   same etcd and flags (`tests/harness/kube-restart-apiserver.sh`);
//!
//! and between rounds one random change of the desired state: a new
//! SecretsMount, the deletion of one (deletionPolicy Delete), or a new
//! description on one.
//!
//! Invariants checked (after the last round):
//! * every SecretsMount is Ready with `observedGeneration == generation`,
//!   and deleted ones are gone;
//! * lockbox's mount table has exactly the operator-owned mounts the
//!   custom resources say (path, owner = the object's UID, description);
//! * the catalog has the entry;
//! * no acknowledged (2xx) write to a mount that still exists is lost;
//! * no request hung: each one is answered or refused within its timeout;
//! * no orphan plugin process: the plugins of a killed operator are gone
//!   within a few seconds, and at the end every process of this scenario's
//!   plugin has the running operator as its parent.
//!
//! The seed of the random schedule is printed; `LOCKBOX_CHAOS_SEED=N`
//! replays it, `LOCKBOX_CHAOS_ROUNDS=N` runs longer (default 8; the first
//! three rounds cover the three disruptions in a random order).

use crate::harness::{Operator, Scenario, api, cluster, eventually, pid_alive};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest any single request may take before it counts as hung.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const NAMESPACES: [&str; 2] = ["opchaos-a", "opchaos-b"];
const PLUGIN: &str = "mock-opchaos";

/// A small deterministic generator (xorshift64*), so a seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

/// What the load saw.
#[derive(Default)]
struct Ledger {
    /// path → value, for every write answered 2xx.
    acked: BTreeMap<String, String>,
    /// Requests that got no answer within REQUEST_TIMEOUT.
    hung: Vec<String>,
    /// Requests answered (any status), and refused or reset connections.
    answered: u64,
    refused: u64,
    /// HTTP status → count, for the summary.
    statuses: BTreeMap<u16, u64>,
}

/// What the load writes to: the operator's API address (None while it is
/// down) and the mount paths (`ns/name/`) it may write under.
#[derive(Default)]
struct Targets {
    addr: Option<String>,
    mounts: Vec<String>,
}

/// Writers that keep writing unique keys, about 25 a second each, until
/// `stop`; a write is acknowledged only on a 2xx answer.
fn load(
    rt: &tokio::runtime::Runtime,
    targets: Arc<Mutex<Targets>>,
    token: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    lockbox_http::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client");
    (0..4)
        .map(|w| {
            let (client, targets, token, ledger, stop) = (
                client.clone(),
                targets.clone(),
                token.clone(),
                ledger.clone(),
                stop.clone(),
            );
            rt.spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let picked = {
                        let t = targets.lock().unwrap_or_else(|e| e.into_inner());
                        match (&t.addr, t.mounts.len()) {
                            (Some(a), n) if n > 0 => {
                                Some((a.clone(), t.mounts[(w + i as usize) % n].clone()))
                            }
                            _ => None,
                        }
                    };
                    let Some((base, mount)) = picked else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let path = format!("{mount}w{w}/k{i}");
                    let value = format!("v-{w}-{i}");
                    let res = client
                        .put(format!("{base}/v1/{path}"))
                        .header("X-Vault-Token", &token)
                        .json(&json!({ "value": value }))
                        .send()
                        .await;
                    {
                        let mut l = ledger.lock().unwrap_or_else(|e| e.into_inner());
                        if let Ok(r) = &res {
                            *l.statuses.entry(r.status().as_u16()).or_default() += 1;
                        }
                        match res {
                            Ok(r) if r.status().is_success() => {
                                l.answered += 1;
                                l.acked.insert(path, value);
                            }
                            Ok(_) => l.answered += 1,
                            Err(e) if e.is_timeout() => l.hung.push(format!("PUT {path}: {e}")),
                            Err(_) => l.refused += 1,
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
            })
        })
        .collect()
}

/// A SecretsMount of the model: where it lives and what it should say.
struct Mount {
    ns: String,
    name: String,
    description: String,
}

impl Mount {
    fn path(&self) -> String {
        format!("{}/{}/", self.ns, self.name)
    }
}

fn apply_mount(s: &Scenario, m: &Mount) {
    cluster().apply(&s.mount_yaml(
        &m.ns,
        &m.name,
        PLUGIN,
        &format!(
            "  deletionPolicy: Delete\n  description: \"{}\"\n",
            m.description
        ),
    ));
}

/// Waits up to 5 s for each of `pids` to be gone; returns those still alive.
fn survivors(pids: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| pid_alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    pids.iter().copied().filter(|p| pid_alive(*p)).collect()
}

/// Live processes of this scenario's plugin (its name is in their
/// environment) with their parent pid.
fn plugin_processes() -> Vec<(u32, u32)> {
    let marker = format!("{}={PLUGIN}", lockbox_plugin_proto::NAME_KEY);
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()) || !pid_alive(pid) {
            continue;
        }
        let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(") ")
                    .and_then(|(_, r)| r.split_whitespace().nth(1).map(str::to_string))
            })
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        out.push((pid, ppid));
    }
    out
}

/// Reads each `(path, value)` back; returns those not there with their
/// value (a read that times out counts too).
async fn read_back(base: &str, token: &str, writes: Vec<(String, String)>) -> Vec<String> {
    use futures_util::StreamExt;
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client");
    futures_util::stream::iter(writes)
        .map(|(path, value)| {
            let client = client.clone();
            async move {
                let res = client
                    .get(format!("{base}/v1/{path}"))
                    .header("X-Vault-Token", token)
                    .send()
                    .await;
                let (code, body) = match res {
                    Ok(r) => (
                        r.status().as_u16(),
                        r.json::<Value>().await.unwrap_or(Value::Null),
                    ),
                    Err(e) => return Some(format!("{path}: {e}")),
                };
                (code != 200 || body["data"]["value"] != Value::String(value))
                    .then(|| format!("{path}: {code} {}", body["data"]["value"]))
            }
        })
        .buffer_unordered(8)
        .filter_map(std::future::ready)
        .collect()
        .await
}

#[derive(Clone, Copy, Debug)]
enum Disruption {
    KillOperator,
    KillPlugin,
    RestartApiServer,
}

#[test]
fn operator_plugin_and_apiserver_kills_keep_mounts_and_acknowledged_writes() {
    let started = Instant::now();
    let seed = std::env::var("LOCKBOX_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    let rounds: usize = std::env::var("LOCKBOX_CHAOS_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    eprintln!("opchaos: seed {seed}, {rounds} rounds (LOCKBOX_CHAOS_SEED={seed} replays)");
    let mut rng = Rng(seed);

    let s = Scenario::start("opchaos", &NAMESPACES, &[]);
    let c = cluster();
    let mut op: Operator = s.operator();
    c.apply(&s.entry_yaml(PLUGIN, "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    c.wait(&[&format!("pce/{PLUGIN}")], "condition=Ready", 60);
    let mut mounts: Vec<Mount> = Vec::new();
    for ns in NAMESPACES {
        for name in ["m0", "m1"] {
            let m = Mount {
                ns: ns.into(),
                name: name.into(),
                description: "rev 0".into(),
            };
            apply_mount(&s, &m);
            mounts.push(m);
        }
    }
    for m in &mounts {
        c.wait(
            &["-n", &m.ns, &format!("smount/{}", m.name)],
            "condition=Ready",
            60,
        );
    }
    let token = s.root_token();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let targets = Arc::new(Mutex::new(Targets {
        addr: Some(op.api.clone()),
        mounts: mounts.iter().map(Mount::path).collect(),
    }));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers = load(
        &rt,
        targets.clone(),
        token.clone(),
        ledger.clone(),
        stop.clone(),
    );
    let set_addr = |a: Option<String>| targets.lock().unwrap_or_else(|e| e.into_inner()).addr = a;

    // The first three rounds cover every disruption, in a random order.
    let mut schedule = [
        Disruption::KillOperator,
        Disruption::KillPlugin,
        Disruption::RestartApiServer,
    ];
    for i in (1..schedule.len()).rev() {
        schedule.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut deleted: Vec<Mount> = Vec::new();
    let mut kills: BTreeMap<&str, u32> = BTreeMap::new();
    for round in 0..rounds {
        std::thread::sleep(rng.millis(300, 1200));
        let what = schedule.get(round).copied().unwrap_or_else(|| {
            [
                Disruption::KillOperator,
                Disruption::KillPlugin,
                Disruption::RestartApiServer,
            ][rng.below(3) as usize]
        });
        match what {
            Disruption::KillOperator => {
                let plugins = op.children();
                // Killed mid-load: requests in flight see the connection die.
                op.kill();
                set_addr(None);
                *kills.entry("operator").or_default() += 1;
                let orphans = survivors(&plugins);
                assert!(
                    orphans.is_empty(),
                    "round {round}: plugin processes {orphans:?} outlived the killed operator (seed {seed})"
                );
                std::thread::sleep(rng.millis(0, 500));
                op = s.operator_standby();
                set_addr(Some(op.api.clone()));
            }
            Disruption::KillPlugin => {
                let plugins = op.children();
                if plugins.is_empty() {
                    // None running (a fresh operator not yet leading
                    // starts them on first use): nothing to kill this round.
                    *kills.entry("plugin (none running)").or_default() += 1;
                } else {
                    let victim = plugins[rng.below(plugins.len() as u64) as usize];
                    if let Some(pid) = rustix::process::Pid::from_raw(victim as i32) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                    *kills.entry("plugin").or_default() += 1;
                }
                std::thread::sleep(rng.millis(300, 1000));
            }
            Disruption::RestartApiServer => {
                let down = rng.millis(0, 2000);
                if let Err(e) = c.restart_apiserver("KILL", down) {
                    panic!("round {round}: restarting the kube-apiserver: {e}");
                }
                *kills.entry("kube-apiserver").or_default() += 1;
            }
        }

        // One change of the desired state.
        match rng.below(3) {
            0 => {
                let m = Mount {
                    ns: NAMESPACES[rng.below(2) as usize].into(),
                    name: format!("n{round}"),
                    description: "rev 0".into(),
                };
                apply_mount(&s, &m);
                targets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .mounts
                    .push(m.path());
                mounts.push(m);
            }
            1 if mounts.len() > 2 => {
                let m = mounts.remove(rng.below(mounts.len() as u64) as usize);
                targets
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .mounts
                    .retain(|p| *p != m.path());
                c.must(&[
                    "delete",
                    "-n",
                    &m.ns,
                    &format!("smount/{}", m.name),
                    "--wait=false",
                ]);
                deleted.push(m);
            }
            _ => {
                let i = rng.below(mounts.len() as u64) as usize;
                mounts[i].description = format!("rev {round}");
                apply_mount(&s, &mounts[i]);
            }
        }
        eprintln!(
            "opchaos: round {round}: {what:?} (at {:.1?})",
            started.elapsed()
        );
    }

    // The load stops after the last disruption; then the system converges.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        rt.block_on(w).expect("a writer panicked");
    }
    let ledger = std::mem::take(&mut *ledger.lock().unwrap_or_else(|e| e.into_inner()));
    assert!(
        ledger.hung.is_empty(),
        "requests hung past {REQUEST_TIMEOUT:?} (seed {seed}): {:?}",
        ledger.hung
    );

    let stopped_at = started.elapsed();
    eprintln!("opchaos: load stopped at {stopped_at:.1?}");
    // Every SecretsMount Ready at its generation; deleted ones gone.
    // Generous: a reconcile that failed during an outage (including the
    // 403s a restarted 1.20 apiserver answers until its RBAC caches are
    // filled, after /readyz is already 200) waits out the operator's
    // per-object backoff (5 s doubling), seen up to ~55 s after the load.
    let converge = Duration::from_secs(120);
    let mut expected: BTreeMap<String, (String, String)> = BTreeMap::new();
    for m in &mounts {
        let what = ["-n", m.ns.as_str(), "smount", m.name.as_str()];
        let uid = eventually(
            &format!("{}/{} Ready at its generation (seed {seed})", m.ns, m.name),
            converge,
            || {
                let got = c.get(
                    &what,
                    r#"{.metadata.generation} {.status.observedGeneration} {.status.conditions[?(@.type=="Ready")].status} {.metadata.uid}"#,
                );
                let f: Vec<&str> = got.split_whitespace().collect();
                (f.len() == 4 && f[0] == f[1] && f[2] == "True").then(|| f[3].to_string())
            },
        );
        let path = c.get(&what, "{.status.path}");
        assert_eq!(path, m.path(), "{}/{}: status.path", m.ns, m.name);
        expected.insert(m.path(), (uid, m.description.clone()));
    }
    for m in &deleted {
        eventually(
            &format!("deleted {}/{} to be gone (seed {seed})", m.ns, m.name),
            converge,
            || {
                let (ok, out, _) = c.kubectl(&[
                    "get",
                    "-n",
                    &m.ns,
                    "smount",
                    &m.name,
                    "--ignore-not-found",
                    "-o",
                    "name",
                ]);
                (ok && out.trim().is_empty()).then_some(())
            },
        );
    }

    let converged = started.elapsed();
    eprintln!("opchaos: converged at {converged:.1?}");
    if converged > stopped_at + Duration::from_secs(30) {
        // Slow but within bounds: show why (the operator's last warnings).
        let logs = s.logs();
        let warnings: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(r#""level":"WARN""#) || l.contains(r#""level":"ERROR""#))
            .collect();
        eprintln!(
            "opchaos: slow convergence; the operator's last warnings:\n{}",
            warnings[warnings.len().saturating_sub(40)..].join("\n")
        );
    }
    // The mount table: exactly the operator-owned mounts the CRs say.
    let (code, table) = api(&op, &token, "GET", "sys/mounts", None);
    assert_eq!(code, 200, "sys/mounts: {table}");
    let owned: BTreeMap<String, (String, String)> = table["data"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(path, e)| {
                    let owner = e["owner"].as_str().filter(|o| !o.is_empty())?;
                    let desc = e["description"].as_str().unwrap_or_default();
                    Some((path.clone(), (owner.to_string(), desc.to_string())))
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        owned, expected,
        "operator-owned mounts (path → owner, description) differ from the SecretsMounts (seed {seed})"
    );
    c.wait(&[&format!("pce/{PLUGIN}")], "condition=Ready", 60);
    let (code, body) = api(
        &op,
        &token,
        "GET",
        &format!("sys/plugins/catalog/secret/{PLUGIN}?version=1.0.0"),
        None,
    );
    assert_eq!(code, 200, "the catalog entry is gone (seed {seed}): {body}");

    // No acknowledged write to a live mount lost (read back 8 at a time).
    let live: Vec<(String, String)> = ledger
        .acked
        .iter()
        .filter(|(path, _)| expected.keys().any(|m| path.starts_with(m.as_str())))
        .map(|(p, v)| (p.clone(), v.clone()))
        .collect();
    let checked = live.len();
    let lost = rt.block_on(read_back(&op.api, &token, live));
    assert!(
        checked > 20,
        "the load did too little to mean anything: {checked} acknowledged writes to live mounts"
    );
    assert!(
        lost.is_empty(),
        "acknowledged writes lost (seed {seed}): {lost:?}"
    );

    // No orphan plugin process: each one's parent is the running operator.
    let procs = plugin_processes();
    assert!(
        procs.iter().any(|(_, ppid)| *ppid == op.pid()),
        "no process of plugin {PLUGIN} found under the operator: the orphan check would see nothing"
    );
    let stray: Vec<(u32, u32)> = procs
        .into_iter()
        .filter(|(_, ppid)| *ppid != op.pid())
        .collect();
    assert!(
        stray.is_empty(),
        "plugin processes (pid, parent) not under the running operator {} (seed {seed}): {stray:?}",
        op.pid()
    );

    eprintln!(
        "opchaos: seed {seed}: {rounds} rounds, disruptions {kills:?}, {} mounts live, {} deleted; \
         {} writes acknowledged ({checked} to live mounts, all read back), {} answered {:?}, {} refused; {:.0?}",
        mounts.len(),
        deleted.len(),
        ledger.acked.len(),
        ledger.answered,
        ledger.statuses,
        ledger.refused,
        started.elapsed()
    );
    op.stop();
}
