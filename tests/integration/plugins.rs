//! Real plugin processes behind real mounts: the seed walkthrough over the
//! API, multiplexing, isolation, crashes, `kill -9` under load, reload under
//! load, auth plugins, seal.

use crate::common::{TestServer, install_plugin, pid_alive};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

async fn register(s: &TestServer, kind: &str, name: &str, sha: &str, command: &str, env: &[&str]) {
    let r = s
        .root(
            "PUT",
            &format!("sys/plugins/catalog/{kind}/{name}"),
            Some(json!({"sha256": sha, "command": command, "env": env})),
        )
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
}

/// A dev-like server with the mock plugin registered (with `env`) and
/// mounted at `mock/`. Returns the plugin directory, the server and the
/// plugin's sha256.
async fn mock_mounted(env: &[&str]) -> (tempfile::TempDir, TestServer, String) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_plugin(dir.path(), "mock", "mock");
    register(&s, "secret", "mock", &sha, "mock", env).await;
    let r = s
        .root("POST", "sys/mounts/mock", Some(json!({"type": "mock"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    (dir, s, sha)
}

fn pids_of(s: &TestServer, name: &str) -> Vec<u32> {
    s.core
        .plugin_host()
        .groups()
        .iter()
        .filter(|g| g.entry().name == name)
        .filter_map(|g| g.pid())
        .collect()
}

/// Waits until plugin `name` runs one process that is not in `old` (after a
/// crash or kill, the supervisor's restart); fails after `within`.
async fn wait_for_new_process(s: &TestServer, name: &str, old: &[u32], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = pids_of(s, name);
        if now.len() == 1 && !old.contains(&now[0]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "plugin {name} was not restarted: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An ELF file with bytes appended still runs but has another sha256: a
/// stand-in for "version 2" of a plugin.
fn install_variant(dir: &std::path::Path, plugin: &str, name: &str, tag: &str) -> String {
    install_plugin(dir, plugin, name);
    let path = dir.join(name);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(tag.as_bytes());
    std::fs::write(&path, bytes).unwrap();
    crate::common::sha256_file(&path)
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_walkthrough_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_plugin(dir.path(), "mock", "mock");
    register(&s, "secret", "mock", &sha, "mock", &[]).await;
    let r = s
        .root("POST", "sys/mounts/mock", Some(json!({"type": "mock"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let mounts = s.root("GET", "sys/mounts", None).await;
    let m = &mounts.body["data"]["mock/"];
    assert_eq!(m["type"], "mock");
    assert_eq!(m["running_sha256"], sha.as_str());
    assert!(m["accessor"].as_str().unwrap().starts_with("mock_"));
    assert_eq!(
        s.root("PUT", "mock/test", Some(json!({"message": "Hello World"})))
            .await
            .status,
        204
    );
    let read = s.root("GET", "mock/test", None).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["data"]["message"], "Hello World");
    let list = s.root("LIST", "mock/", None).await;
    assert_eq!(list.body["data"]["keys"], json!(["test"]));
    let pids = pids_of(&s, "mock");
    assert_eq!(pids.len(), 1);
    assert_eq!(s.root("DELETE", "sys/mounts/mock", None).await.status, 204);
    assert_eq!(s.root("GET", "mock/test", None).await.status, 404);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !pid_alive(pids[0]),
        "disabling the last mount must stop the plugin process"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn multiplexing_one_process_many_mounts_and_isolated_data() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_plugin(dir.path(), "mock", "mock");
    register(&s, "secret", "mock", &sha, "mock", &[]).await;
    for m in ["m1", "m2", "m3"] {
        let r = s
            .root(
                "POST",
                &format!("sys/mounts/{m}"),
                Some(json!({"type": "mock"})),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let pids = pids_of(&s, "mock");
    assert_eq!(pids.len(), 1, "one process serves every mount: {pids:?}");
    s.root("PUT", "m1/shared-name", Some(json!({"owner": "m1"})))
        .await;
    s.root("PUT", "m2/shared-name", Some(json!({"owner": "m2"})))
        .await;
    assert_eq!(
        s.root("GET", "m1/shared-name", None).await.body["data"]["owner"],
        "m1"
    );
    assert_eq!(
        s.root("GET", "m2/shared-name", None).await.body["data"]["owner"],
        "m2"
    );
    assert_eq!(s.root("GET", "m3/shared-name", None).await.status, 404);
    assert_eq!(s.root("LIST", "m3/", None).await.status, 404);
    // The process lives while any mount uses it.
    s.root("DELETE", "sys/mounts/m1", None).await;
    s.root("DELETE", "sys/mounts/m2", None).await;
    assert!(pid_alive(pids[0]));
    assert_eq!(s.root("GET", "m2/shared-name", None).await.status, 404);
    s.root("DELETE", "sys/mounts/m3", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pid_alive(pids[0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn opting_out_of_multiplexing_gives_a_process_per_mount() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_plugin(dir.path(), "mock", "mock");
    let r = s
        .root(
            "PUT",
            "sys/plugins/catalog/secret/mock",
            Some(json!({"sha256": sha, "multiplexing": false})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    for m in ["a", "b"] {
        assert_eq!(
            s.root(
                "POST",
                &format!("sys/mounts/{m}"),
                Some(json!({"type": "mock"}))
            )
            .await
            .status,
            204
        );
    }
    let pids = pids_of(&s, "mock");
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_ne!(pids[0], pids[1]);
}

/// Readers that hit `path` until stopped, counting failures and the slowest
/// request.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    slowest_ms: Arc<AtomicU64>,
    statuses: Arc<std::sync::Mutex<Vec<(u16, String)>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(s: &TestServer, path: &str, workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let slowest_ms = Arc::new(AtomicU64::new(0));
        let statuses = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (stop, ok, failed, slowest, statuses) = (
                stop.clone(),
                ok.clone(),
                failed.clone(),
                slowest_ms.clone(),
                statuses.clone(),
            );
            let (client, addr, token, path) = (
                s.client.clone(),
                s.addr.clone(),
                s.root_token.clone(),
                path.to_string(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let t = Instant::now();
                    let r =
                        crate::common::call(&client, &addr, "GET", &path, Some(&token), None).await;
                    slowest.fetch_max(t.elapsed().as_millis() as u64, Ordering::SeqCst);
                    if r.status == 200 {
                        ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed.fetch_add(1, Ordering::SeqCst);
                        statuses
                            .lock()
                            .unwrap()
                            .push((r.status.as_u16(), r.error_text()));
                    }
                }
            }));
        }
        Load {
            stop,
            ok,
            failed,
            slowest_ms,
            statuses,
            tasks,
        }
    }

    async fn finish(self) -> (u64, u64, u64, Vec<(u16, String)>) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        let statuses = self.statuses.lock().unwrap().clone();
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
            self.slowest_ms.load(Ordering::SeqCst),
            statuses,
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_then_reload_under_load_drops_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha1 = install_variant(dir.path(), "mock", "my-mock-v1", "v1");
    let sha2 = install_variant(dir.path(), "mock", "my-mock-v2", "v2");
    assert_ne!(sha1, sha2);
    register(
        &s,
        "secret",
        "my-mock",
        &sha1,
        "my-mock-v1",
        &["MOCK_PLUGIN_MARKER=v1", "MOCK_PLUGIN_NO_CACHE=1"],
    )
    .await;
    assert_eq!(
        s.root(
            "POST",
            "sys/mounts/custom",
            Some(json!({"type": "my-mock"}))
        )
        .await
        .status,
        204
    );
    s.root("PUT", "custom/key", Some(json!({"value": "kept"})))
        .await;
    let read = s.root("GET", "custom/key", None).await;
    assert_eq!(read.body["data"]["served_by"], "v1", "{:?}", read.body);
    let old_pid = pids_of(&s, "my-mock")[0];

    let load = Load::start(&s, "custom/key", 8);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Registering v2 under the same name changes nothing until a reload.
    register(
        &s,
        "secret",
        "my-mock",
        &sha2,
        "my-mock-v2",
        &["MOCK_PLUGIN_MARKER=v2", "MOCK_PLUGIN_NO_CACHE=1"],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        s.root("GET", "custom/key", None).await.body["data"]["served_by"],
        "v1"
    );
    let r = s
        .root(
            "PUT",
            "sys/plugins/reload/backend",
            Some(json!({"plugin": "my-mock"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["data"]["reload_id"].is_string());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, failed, _, statuses) = load.finish().await;
    assert!(ok > 50, "the load ran ({ok} reads)");
    assert_eq!(failed, 0, "requests failed during reload: {statuses:?}");

    let read = s.root("GET", "custom/key", None).await;
    assert_eq!(read.body["data"]["served_by"], "v2");
    assert_eq!(
        read.body["data"]["value"], "kept",
        "data survives the upgrade"
    );
    let m = s.root("GET", "sys/mounts", None).await;
    assert_eq!(m.body["data"]["custom/"]["running_sha256"], sha2.as_str());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !pid_alive(old_pid),
        "the v1 process must be gone after reload"
    );
    assert_eq!(pids_of(&s, "my-mock").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_restarts_and_never_hangs() {
    // Uncached, so every read of the load reaches the process.
    let (_dir, s, _) = mock_mounted(&["MOCK_PLUGIN_NO_CACHE=1"]).await;
    s.root("PUT", "mock/k", Some(json!({"v": "1"}))).await;
    let pid = pids_of(&s, "mock")[0];
    let load = Load::start(&s, "mock/k", 6);
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    // Wait for the restart.
    wait_for_new_process(&s, "mock", &[pid], Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (ok, _failed, slowest, statuses) = load.finish().await;
    assert!(ok > 10);
    assert!(slowest < 3000, "a request hung for {slowest} ms");
    for (status, msg) in &statuses {
        assert_eq!(*status, 503, "failures while down must be fast 503s: {msg}");
        assert!(msg.contains("mock"), "{msg}");
    }
    assert_eq!(s.root("GET", "mock/k", None).await.body["data"]["v"], "1");
    let restarts: u64 = s
        .core
        .plugin_host()
        .groups()
        .iter()
        .map(|g| g.restarts())
        .sum();
    assert!(restarts >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn seal_stops_plugins_and_unseal_brings_mounts_back() {
    let (_dir, s, _) = mock_mounted(&[]).await;
    s.root("PUT", "mock/k", Some(json!({"v": "persisted"})))
        .await;
    let pid = pids_of(&s, "mock")[0];
    s.root("PUT", "sys/seal", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pid_alive(pid), "sealing must stop plugin processes");
    s.core.submit_unseal_key(&s.unseal_keys[0]).await.unwrap();
    assert_eq!(
        s.root("GET", "mock/k", None).await.body["data"]["v"],
        "persisted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_plugin_login_issues_tokens_with_its_policies() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_plugin(dir.path(), "userpass", "userpass");
    register(&s, "auth", "userpass", &sha, "userpass", &[]).await;
    // An auth plugin cannot be mounted as a secrets engine.
    let wrong = s
        .root(
            "POST",
            "sys/mounts/userpass",
            Some(json!({"type": "userpass"})),
        )
        .await;
    assert_eq!(wrong.status, 400);
    let r = s
        .root(
            "POST",
            "sys/auth/userpass",
            Some(json!({"type": "userpass"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let auths = s.root("GET", "sys/auth", None).await;
    assert_eq!(auths.body["data"]["userpass/"]["type"], "userpass");
    s.root(
        "PUT",
        "sys/policies/acl/dev",
        Some(json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"})),
    )
    .await;
    let r = s
        .root(
            "PUT",
            "auth/userpass/users/alice",
            Some(json!({"password": "wonderland", "policies": ["dev"]})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let user = s.root("GET", "auth/userpass/users/alice", None).await;
    assert!(!user.body.to_string().contains("wonderland"));
    s.root("PUT", "secret/team", Some(json!({"k": "v"}))).await;

    let login = s
        .call(
            "POST",
            "auth/userpass/login/alice",
            None,
            Some(json!({"password": "wonderland"})),
        )
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let auth = &login.body["auth"];
    assert_eq!(auth["policies"], json!(["default", "dev"]));
    assert_eq!(auth["metadata"]["username"], "alice");
    let token = auth["client_token"].as_str().unwrap();
    assert_eq!(
        s.call("GET", "secret/team", Some(token), None).await.status,
        200
    );
    assert_eq!(
        s.call("PUT", "secret/team", Some(token), Some(json!({"k": "x"})))
            .await
            .status,
        403
    );
    let me = s
        .call("GET", "auth/token/lookup-self", Some(token), None)
        .await;
    assert_eq!(me.body["data"]["path"], "auth/userpass/login/alice");

    let bad = s
        .call(
            "POST",
            "auth/userpass/login/alice",
            None,
            Some(json!({"password": "nope"})),
        )
        .await;
    assert!(bad.status == 400 || bad.status == 403, "{:?}", bad.body);
    assert!(
        bad.error_text().contains("invalid username or password"),
        "{:?}",
        bad.body
    );
    assert!(bad.body["auth"].is_null());
    let nobody = s
        .call(
            "POST",
            "auth/userpass/login/bob",
            None,
            Some(json!({"password": "x"})),
        )
        .await;
    assert_eq!(nobody.error_text(), bad.error_text());
    // Managing users needs a token.
    assert_eq!(
        s.call(
            "PUT",
            "auth/userpass/users/eve",
            None,
            Some(json!({"password": "x"}))
        )
        .await
        .status,
        403
    );

    // Disabling the auth method revokes the tokens it issued (as Vault
    // does); other tokens live on.
    let other = s.token_with(&["dev"]).await;
    assert_eq!(
        s.root("DELETE", "sys/auth/userpass", None).await.status,
        204
    );
    let after = s.call("GET", "secret/team", Some(token), None).await;
    assert_eq!(after.status, 403, "{:?}", after.body);
    let lookup = s
        .root("POST", "auth/token/lookup", Some(json!({ "token": token })))
        .await;
    assert_eq!(lookup.status, 403, "{:?}", lookup.body);
    assert_eq!(
        s.call("GET", "secret/team", Some(&other), None)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn passgen_roles_and_generation() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_plugin(dir.path(), "passgen", "passgen");
    register(&s, "secret", "passgen", &sha, "passgen", &[]).await;
    assert_eq!(
        s.root(
            "POST",
            "sys/mounts/passgen",
            Some(json!({"type": "passgen"}))
        )
        .await
        .status,
        204
    );
    let r = s
        .root(
            "PUT",
            "passgen/roles/web",
            Some(json!({"length": 32, "charset": "hex"})),
        )
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    let g = s.root("GET", "passgen/generate/web", None).await;
    assert_eq!(g.status, 200, "{:?}", g.body);
    let pw = g.body["data"]["password"].as_str().unwrap();
    assert_eq!(pw.len(), 32);
    assert!(pw.chars().all(|c| c.is_ascii_hexdigit()));
    let bad = s
        .root("PUT", "passgen/roles/bad", Some(json!({"length": 2})))
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
    assert!(bad.error_text().contains("length"), "{:?}", bad.body);
    let missing = s.root("GET", "passgen/generate/nope", None).await;
    assert!(
        missing.status == 400 || missing.status == 404,
        "{:?}",
        missing.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_request_fails_that_request_fast_and_the_plugin_comes_back() {
    let (_dir, s, _) = mock_mounted(&["MOCK_PLUGIN_TEST_HOOKS=1"]).await;
    s.root("PUT", "mock/k", Some(json!({"v": "1"}))).await;
    let pid = pids_of(&s, "mock")[0];
    // A slow request in flight on the process when another request crashes it.
    let slow = {
        let (c, a, t) = (s.client.clone(), s.addr.clone(), s.root_token.clone());
        tokio::spawn(async move {
            crate::common::call(&c, &a, "GET", "mock/__sleep/2000", Some(&t), None).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let crashed = s.root("GET", "mock/__crash", None).await;
    assert_eq!(crashed.status, 503, "{:?}", crashed.body);
    assert!(crashed.error_text().contains("mock"), "{:?}", crashed.body);
    let slow = slow.await.unwrap();
    assert_eq!(
        slow.status, 503,
        "the in-flight request fails, it does not hang: {:?}",
        slow.body
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "failures must be fast"
    );
    // The supervisor restarts the plugin (a new process); data is intact,
    // read through the new process (its answers are not cached yet).
    wait_for_new_process(&s, "mock", &[pid], Duration::from_secs(10)).await;
    let r = s.root("GET", "mock/k", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["v"], "1");
    assert!(!pid_alive(pid));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_plugin_hits_the_request_timeout() {
    let (_dir, s, _) = mock_mounted(&["MOCK_PLUGIN_TEST_HOOKS=1"]).await;
    let t = Instant::now();
    // The test host's request timeout is 5 s.
    let r = s.root("GET", "mock/__sleep/60000", None).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert!(
        r.error_text().contains("did not answer within"),
        "{:?}",
        r.body
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    // Other requests are unaffected.
    assert_eq!(
        s.root("PUT", "mock/x", Some(json!({"a": "b"})))
            .await
            .status,
        204
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn large_values_pass_through_plugins() {
    let (_dir, s, _) = mock_mounted(&[]).await;
    let big = "x".repeat(6 * 1024 * 1024);
    let w = s.root("PUT", "mock/big", Some(json!({ "v": big }))).await;
    assert_eq!(w.status, 204, "{:?}", w.error_text());
    let r = s.root("GET", "mock/big", None).await;
    assert_eq!(r.body["data"]["v"].as_str().map(str::len), Some(big.len()));
}

#[tokio::test(flavor = "multi_thread")]
async fn pinned_plugin_versions() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha1 = install_variant(dir.path(), "mock", "mock-1", "1");
    let sha2 = install_variant(dir.path(), "mock", "mock-2", "2");
    for (v, sha, cmd, marker) in [
        ("v1.0.0", &sha1, "mock-1", "one"),
        ("v2.0.0", &sha2, "mock-2", "two"),
    ] {
        let r = s
            .root(
                "PUT",
                "sys/plugins/catalog/secret/pinned",
                Some(json!({"sha256": sha, "command": cmd, "version": v, "env": [format!("MOCK_PLUGIN_MARKER={marker}")]})),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let r = s
        .root(
            "POST",
            "sys/mounts/old",
            Some(json!({"type": "pinned", "plugin_version": "v1.0.0"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // Without a pin, the highest version runs.
    assert_eq!(
        s.root("POST", "sys/mounts/new", Some(json!({"type": "pinned"})))
            .await
            .status,
        204
    );
    let r = s
        .root(
            "POST",
            "sys/mounts/none",
            Some(json!({"type": "pinned", "plugin_version": "v9.9.9"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_text().contains("v9.9.9"), "{:?}", r.body);
    s.root("PUT", "old/k", Some(json!({"a": "1"}))).await;
    s.root("PUT", "new/k", Some(json!({"a": "1"}))).await;
    assert_eq!(
        s.root("GET", "old/k", None).await.body["data"]["served_by"],
        "one"
    );
    assert_eq!(
        s.root("GET", "new/k", None).await.body["data"]["served_by"],
        "two"
    );
    let mounts = s.root("GET", "sys/mounts", None).await;
    assert_eq!(mounts.body["data"]["old/"]["plugin_version"], "v1.0.0");
    assert_eq!(
        mounts.body["data"]["old/"]["running_plugin_version"],
        "v1.0.0"
    );
    assert_eq!(mounts.body["data"]["old/"]["running_sha256"], sha1.as_str());
    assert_eq!(
        mounts.body["data"]["new/"]["running_plugin_version"],
        "v2.0.0"
    );
    // Two versions: two processes.
    assert_eq!(pids_of(&s, "pinned").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_misreports_its_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_plugin(dir.path(), "userpass", "liar");
    // Registered as a secrets engine, but it is an auth method.
    register(&s, "secret", "liar", &sha, "liar", &[]).await;
    let r = s
        .root("POST", "sys/mounts/liar", Some(json!({"type": "liar"})))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_text().contains("reports itself as an auth method"),
        "{:?}",
        r.body
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        pids_of(&s, "liar").is_empty(),
        "the refused plugin's process must stop"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_to_a_bad_digest_keeps_the_running_version() {
    let (_dir, s, sha) = mock_mounted(&[]).await;
    s.root("PUT", "mock/k", Some(json!({"v": "1"}))).await;
    let pid = pids_of(&s, "mock")[0];
    // Someone registers a digest the file does not have.
    let wrong = "ab".repeat(32);
    s.root(
        "PUT",
        "sys/plugins/catalog/secret/mock",
        Some(json!({"sha256": wrong})),
    )
    .await;
    let r = s.root("PUT", "sys/plugins/reload/secret/mock", None).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_text().contains("sha256 mismatch"), "{:?}", r.body);
    assert!(
        r.error_text().contains("keep their running version"),
        "{:?}",
        r.body
    );
    // Still served by the verified process.
    assert_eq!(s.root("GET", "mock/k", None).await.body["data"]["v"], "1");
    assert_eq!(pids_of(&s, "mock"), vec![pid]);
    let m = s.root("GET", "sys/mounts", None).await;
    assert_eq!(m.body["data"]["mock/"]["running_sha256"], sha.as_str());
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Reads the mock marks cacheable are answered from the host's memory: they
/// succeed while the plugin process is frozen (SIGSTOP), a write through the
/// plugin invalidates them at once, another mount on the same process has
/// its own entries, ACLs still apply, and a plugin that does not mark its
/// reads (`MOCK_PLUGIN_NO_CACHE=1`) is asked every time.
#[tokio::test(flavor = "multi_thread")]
async fn cacheable_reads_come_from_memory_until_the_mount_storage_changes() {
    let (_dir, s, sha) = mock_mounted(&[]).await;
    register(
        &s,
        "secret",
        "mock-nocache",
        &sha,
        "mock",
        &["MOCK_PLUGIN_NO_CACHE=1"],
    )
    .await;
    for (path, ty) in [("mock2", "mock"), ("nocache", "mock-nocache")] {
        let r = s
            .root(
                "POST",
                &format!("sys/mounts/{path}"),
                Some(json!({"type": ty})),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let read = async |path: &str| {
        let r = s.root("GET", path, None).await;
        (r.status.as_u16(), r.body["data"]["v"].clone())
    };
    for (path, v) in [("mock/k", "1"), ("mock2/k", "other"), ("nocache/k", "n")] {
        let w = s.root("PUT", path, Some(json!({ "v": v }))).await;
        assert_eq!(w.status, 204, "{:?}", w.body);
    }
    assert_eq!(read("mock/k").await, (200, json!("1")));
    assert_eq!(read("nocache/k").await, (200, json!("n")));
    let denied = s.token_with(&["default"]).await;
    let (mock_pid, nocache_pid) = (pids_of(&s, "mock")[0], pids_of(&s, "mock-nocache")[0]);

    // Frozen processes: the cached read still answers, at once; an
    // uncached read (other key, or a plugin that opts out) waits for the
    // request timeout (5 s here) and fails with 503.
    signal(mock_pid, "-STOP");
    signal(nocache_pid, "-STOP");
    let t = Instant::now();
    assert_eq!(read("mock/k").await, (200, json!("1")));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let r = s.call("GET", "mock/k", Some(&denied), None).await;
    assert_eq!(
        r.status, 403,
        "the cache sits behind the ACL check: {:?}",
        r.body
    );
    let (other, nocache) = tokio::join!(read("mock/missing"), read("nocache/k"));
    assert_eq!(other.0, 503, "{other:?}");
    assert_eq!(nocache.0, 503, "{nocache:?}");
    signal(mock_pid, "-CONT");
    signal(nocache_pid, "-CONT");

    // A write through the plugin invalidates; the new value is read and
    // cached in turn; the other mount on the same process is unaffected.
    let w = s.root("PUT", "mock/k", Some(json!({"v": "2"}))).await;
    assert_eq!(w.status, 204, "{:?}", w.body);
    assert_eq!(read("mock/k").await, (200, json!("2")));
    assert_eq!(read("mock2/k").await, (200, json!("other")));
    let w = s.root("PUT", "mock2/k", Some(json!({"v": "other2"}))).await;
    assert_eq!(w.status, 204, "{:?}", w.body);
    assert_eq!(read("mock2/k").await, (200, json!("other2")));
    signal(mock_pid, "-STOP");
    assert_eq!(read("mock/k").await, (200, json!("2")));
    assert_eq!(read("mock2/k").await, (200, json!("other2")));
    signal(mock_pid, "-CONT");

    // Deletes invalidate too.
    assert_eq!(s.root("DELETE", "mock/k", None).await.status, 204);
    assert_eq!(read("mock/k").await.0, 404);

    // A mount tuned to force_no_cache is never answered from the cache.
    let t = s
        .root(
            "POST",
            "sys/mounts/mock2/tune",
            Some(json!({"force_no_cache": true})),
        )
        .await;
    assert_eq!(t.status, 204, "{:?}", t.body);
    assert_eq!(read("mock2/k").await, (200, json!("other2")));
    signal(mock_pid, "-STOP");
    let frozen = read("mock2/k").await;
    signal(mock_pid, "-CONT");
    assert_eq!(frozen.0, 503, "force_no_cache: {frozen:?}");
}

/// Supervision events: every unexpected exit is reported, a restart that
/// serves again too, and three quick exits in a row are a crash loop naming
/// the plugin, its mounts and the reason.
#[tokio::test(flavor = "multi_thread")]
async fn repeated_crashes_are_reported_as_a_crash_loop() {
    use lockbox_plugin_host::PluginEventKind;
    let (_dir, s, sha) = mock_mounted(&["MOCK_PLUGIN_TEST_HOOKS=1"]).await;
    s.root("PUT", "mock/k", Some(json!({"v": "1"}))).await;
    let mut events = s.core.plugin_host().subscribe();
    for _ in 0..3 {
        let before = pids_of(&s, "mock");
        let crashed = s.root("GET", "mock/__crash", None).await;
        assert_eq!(crashed.status, 503, "{:?}", crashed.body);
        // Wait for the new process before crashing it once more (a read of
        // mock/k could be answered from the cache).
        wait_for_new_process(&s, "mock", &before, Duration::from_secs(10)).await;
    }
    let mut seen = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        assert_eq!((e.name.as_str(), e.sha256.as_str()), ("mock", sha.as_str()));
        assert_eq!(e.mount_paths, vec!["mock/".to_string()]);
        seen.push(e.kind);
    }
    let exits = seen
        .iter()
        .filter(|k| matches!(k, PluginEventKind::Exited { reason } if reason.contains("signal")))
        .count();
    let restarts = seen
        .iter()
        .filter(|k| matches!(k, PluginEventKind::Restarted { .. }))
        .count();
    let loops: Vec<_> = seen
        .iter()
        .filter_map(|k| match k {
            PluginEventKind::CrashLoop {
                failures, reason, ..
            } => Some((*failures, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!((exits, restarts), (3, 3), "{seen:?}");
    assert_eq!(loops.len(), 1, "one report at the threshold: {seen:?}");
    assert_eq!(loops[0].0, 3);
    assert!(loops[0].1.contains("signal"), "{:?}", loops[0]);
}
