//! Chaos: the real server (config mode, file storage, a plugin mount and
//! the built-in kv) under a bounded write load, while plugin processes and
//! the server itself are killed with SIGKILL at random points, and the
//! server is restarted (auto-unseal) each time it was killed.
//!
//! Invariants checked:
//! * no acknowledged write is lost: every write answered 2xx, to the kv
//!   mount or to the plugin mount, reads back with its value at the end;
//! * no request hangs: every request gets an answer or a connection error
//!   within its timeout (a timeout while the server was up is a failure);
//! * no orphan plugin process: when the server dies, its plugin processes
//!   die with it (checked for each one by pid);
//! * mounts and catalog are as configured after every restart.
//!
//! Rounds alternate: a plugin process killed mid-load (supervision
//! restarts it), then the server killed mid-load (restarted with its
//! unseal keys); the timings and the victim are random.
//!
//! The seed of the random schedule is printed; `LOCKBOX_CHAOS_SEED=N`
//! replays a schedule, `LOCKBOX_CHAOS_ROUNDS=N` runs longer.

use crate::common::{ConfigServer, children_of, file_config, install_plugin, pid_alive};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest any single request may take before it counts as hung.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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
}

fn start(dir: &Path, keys: Option<&str>) -> ConfigServer {
    let config = format!(
        "{}plugin_directory = \"{{dir}}/plugins\"\n",
        file_config("{dir}/data")
    );
    let mut b = ConfigServer::builder(&config).dir(dir);
    if let Some(k) = keys {
        b = b.env("LOCKBOX_UNSEAL_KEYS", k);
    }
    b.start()
}

/// What the load saw.
#[derive(Default)]
struct Ledger {
    /// path → value, for every write answered 2xx.
    acked: BTreeMap<String, String>,
    /// Requests that got no answer within REQUEST_TIMEOUT.
    hung: Vec<String>,
    /// Requests answered (any status) and refused connections.
    answered: u64,
    refused: u64,
}

/// Writers that keep writing unique keys until `stop`; each write is
/// recorded as acknowledged only on a 2xx answer.
fn load(
    addr: Arc<Mutex<String>>,
    token: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    round: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap();
    (0..4)
        .map(|w| {
            let (client, addr, token, ledger, stop) = (
                client.clone(),
                addr.clone(),
                token.clone(),
                ledger.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let mount = if w % 2 == 0 { "secret" } else { "mock" };
                    let path = format!("{mount}/r{round}/w{w}/k{i}");
                    let value = format!("v-{round}-{w}-{i}");
                    let base = addr.lock().unwrap().clone();
                    let res = client
                        .put(format!("{base}/v1/{path}"))
                        .header("X-Vault-Token", &token)
                        .json(&json!({ "value": value }))
                        .send()
                        .await;
                    let refused = {
                        let mut l = ledger.lock().unwrap();
                        match res {
                            Ok(r) if r.status().is_success() => {
                                l.answered += 1;
                                l.acked.insert(path, value);
                                false
                            }
                            Ok(_) => {
                                l.answered += 1;
                                false
                            }
                            Err(e) if e.is_timeout() => {
                                l.hung.push(format!("PUT {path}: {e}"));
                                false
                            }
                            Err(_) => {
                                l.refused += 1;
                                true
                            }
                        }
                    };
                    if refused {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kills_of_plugins_and_server_lose_no_acknowledged_write() {
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
    eprintln!("chaos: seed {seed}, {rounds} rounds (LOCKBOX_CHAOS_SEED={seed} replays)");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    let sha = install_plugin(&dir.path().join("plugins"), "mock", "lockbox-plugin-mock");
    let mut server = start(dir.path(), None);
    let (root, keys) = server.init_unseal(1, 1).await;
    let r = server
        .root(
            "PUT",
            "sys/plugins/catalog/secret/mock",
            Some(json!({"sha256": sha, "command": "lockbox-plugin-mock"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    for (path, kind) in [("secret", "kv"), ("mock", "mock")] {
        let r = server
            .root(
                "POST",
                &format!("sys/mounts/{path}"),
                Some(json!({"type": kind})),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let keys = keys.join(",");

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let addr = Arc::new(Mutex::new(server.addr.clone()));
    let (mut plugin_kills, mut server_kills) = (0, 0);
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let writers = load(
            addr.clone(),
            root.clone(),
            ledger.clone(),
            stop.clone(),
            round,
        );
        tokio::time::sleep(Duration::from_millis(200 + rng.below(600))).await;
        let server_pid = server.process.child.id();
        let plugins: Vec<u32> = children_of(server_pid);
        if round % 2 == 0 && !plugins.is_empty() {
            // Kill a plugin process mid-load; supervision restarts it.
            let victim = plugins[rng.below(plugins.len() as u64) as usize];
            if let Some(pid) = rustix::process::Pid::from_raw(victim as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            plugin_kills += 1;
            tokio::time::sleep(Duration::from_millis(300 + rng.below(700))).await;
        } else {
            // Kill the server mid-load; its plugins must die with it.
            server.process.child.kill().unwrap();
            server.process.child.wait().unwrap();
            server_kills += 1;
            let deadline = Instant::now() + Duration::from_secs(5);
            while plugins.iter().any(|p| pid_alive(*p)) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let orphans: Vec<u32> = plugins.iter().copied().filter(|p| pid_alive(*p)).collect();
            assert!(
                orphans.is_empty(),
                "round {round}: plugin processes {orphans:?} outlived the killed server (seed {seed})"
            );
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
            server = start(dir.path(), Some(&keys));
            server.root_token = root.clone();
            *addr.lock().unwrap() = server.addr.clone();
            tokio::time::sleep(Duration::from_millis(200 + rng.below(500))).await;
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        // Mounts and catalog as configured.
        let mounts = server.root("GET", "sys/mounts", None).await;
        assert_eq!(mounts.status, 200, "round {round}: {:?}", mounts.body);
        for m in ["secret/", "mock/"] {
            assert!(
                mounts.body["data"].get(m).is_some(),
                "round {round}: mount {m} gone (seed {seed})"
            );
        }
        let cat = server
            .root("GET", "sys/plugins/catalog/secret/mock", None)
            .await;
        assert_eq!(
            cat.status, 200,
            "round {round}: catalog entry gone (seed {seed}): {:?}",
            cat.body
        );
    }

    // One last clean restart, then every acknowledged write must be there.
    server.process.child.kill().unwrap();
    server.process.child.wait().unwrap();
    let mut server = start(dir.path(), Some(&keys));
    server.root_token = root.clone();
    let ledger = std::mem::take(&mut *ledger.lock().unwrap());
    eprintln!(
        "chaos: {plugin_kills} plugin kills, {server_kills} server kills, {} writes acknowledged, {} answered, {} refused connections",
        ledger.acked.len(),
        ledger.answered,
        ledger.refused
    );
    assert!(
        ledger.hung.is_empty(),
        "requests hung past {REQUEST_TIMEOUT:?} (seed {seed}): {:?}",
        ledger.hung
    );
    assert!(
        ledger.acked.len() > 20,
        "the load did too little to mean anything: {}",
        ledger.acked.len()
    );
    let mut lost = Vec::new();
    for (path, value) in &ledger.acked {
        let r = server.root("GET", path, None).await;
        let got = r.body["data"]["value"].clone();
        if r.status != 200 || got != Value::String(value.clone()) {
            lost.push(format!("{path}: {} {got}", r.status));
        }
    }
    assert!(
        lost.is_empty(),
        "acknowledged writes lost (seed {seed}): {lost:?}"
    );
}
