//! Vault plugins at the edges: token renewal through an auth plugin's renew
//! operation, and plugins that panic or answer too much. Each failure names
//! the plugin, affects no other mount, and leaves the catalog and mount
//! table as they were.

use crate::common::{TestServer, install_go_plugin};
use crate::vault_plugins::{mount, register, test_plugin_mounted};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn auth_plugin() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_go_plugin(dir.path(), "lockbox-testplugin-auth", "goauth");
    register(&s, "auth", "goauth", &sha, &[]).await;
    let r = s
        .root("POST", "sys/auth/ga", Some(json!({"type": "goauth"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    (dir, s)
}

async fn login(s: &TestServer, body: Value) -> String {
    let r = s.call("PUT", "auth/ga/login", None, Some(body)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_string()
}

async fn renewals(s: &TestServer, name: &str) -> u64 {
    let r = s
        .root("GET", &format!("auth/ga/renewals/{name}"), None)
        .await;
    match r.status.as_u16() {
        404 => 0,
        200 => r.body["data"]["count"].as_u64().unwrap_or_default(),
        _ => panic!("renewals/{name}: {:?}", r.body),
    }
}

/// Vault routes a token renewal to the auth method that issued the token:
/// the plugin's renew callback sees the login's internal data, decides, and
/// its TTL (capped by the token's max) is what the token gets.
#[tokio::test(flavor = "multi_thread")]
async fn token_renewal_goes_through_the_auth_plugins_renew() {
    let (_dir, s) = auth_plugin().await;
    let alice = login(
        &s,
        json!({"name": "alice", "policies": "p1", "ttl": 60, "max_ttl": 90}),
    )
    .await;
    assert_eq!(renewals(&s, "alice").await, 0);
    let r = s
        .call(
            "PUT",
            "auth/token/renew-self",
            Some(&alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(renewals(&s, "alice").await, 1, "the plugin's renew ran");
    let ttl = r.body["auth"]["lease_duration"].as_u64().unwrap();
    assert!((55..=60).contains(&ttl), "the plugin's ttl: {:?}", r.body);
    // An increment beyond the max is capped by the token's max TTL.
    let r = s
        .call(
            "PUT",
            "auth/token/renew",
            None,
            Some(json!({"token": alice, "increment": "1h"})),
        )
        .await;
    assert_eq!(
        r.status, 403,
        "renew of another token needs a token: {:?}",
        r.body
    );
    let r = s
        .root(
            "PUT",
            "auth/token/renew",
            Some(json!({"token": alice, "increment": "1h"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(renewals(&s, "alice").await, 2);
    let ttl = r.body["auth"]["lease_duration"].as_u64().unwrap();
    assert!(ttl <= 90, "capped by max_ttl: {:?}", r.body);

    // The plugin refuses: the renewal fails with its error, and the token
    // keeps its old expiry.
    let bob = login(&s, json!({"name": "bob", "ttl": 60, "deny_renew": true})).await;
    let before = s
        .call("GET", "auth/token/lookup-self", Some(&bob), None)
        .await;
    let r = s
        .call("PUT", "auth/token/renew-self", Some(&bob), Some(json!({})))
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert!(
        r.error_text()
            .contains("renewal of \"bob\" denied by the plugin"),
        "{}",
        r.error_text()
    );
    let after = s
        .call("GET", "auth/token/lookup-self", Some(&bob), None)
        .await;
    assert_eq!(
        before.body["data"]["expire_time"], after.body["data"]["expire_time"],
        "a refused renewal changes nothing"
    );

    // A token the plugin made non-renewable is refused by the core, and
    // the plugin is not asked.
    let carol = login(&s, json!({"name": "carol", "ttl": 60, "renewable": false})).await;
    let r = s
        .call(
            "PUT",
            "auth/token/renew-self",
            Some(&carol),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("not renewable"),
        "{}",
        r.error_text()
    );
    assert_eq!(renewals(&s, "carol").await, 0);

    // The internal data is never shown to the token's holder.
    let me = s
        .call("GET", "auth/token/lookup-self", Some(&alice), None)
        .await;
    assert!(!me.body.to_string().contains("deny_renew"), "{}", me.body);
}

/// A mount's catalog entry and mount table, to compare before and after a
/// failure.
async fn state(s: &TestServer) -> (Value, Value) {
    let mounts = s.root("GET", "sys/mounts", None).await.body["data"].clone();
    let catalog = s.root("GET", "sys/plugins/catalog", None).await.body["data"].clone();
    (mounts, catalog)
}

fn strip_running(mut mounts: Value) -> Value {
    // The running process's facts legitimately change on a restart.
    if let Some(m) = mounts.as_object_mut() {
        for v in m.values_mut() {
            if let Some(o) = v.as_object_mut() {
                o.remove("running_plugin_version");
                o.remove("running_sha256");
            }
        }
    }
    mounts
}

/// A Go plugin that panics mid-request dies; the request fails naming the
/// plugin, another mount of another plugin keeps serving, the supervisor
/// starts it again, and nothing of the catalog or mount table changes.
#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_plugin_fails_its_request_and_is_restarted() {
    let (dir, s) = test_plugin_mounted(&[]).await;
    let sha = install_go_plugin(dir.path(), "lockbox-testplugin", "gotest-other");
    register(&s, "secret", "gotest-other", &sha, &[]).await;
    let r = mount(&s, "other", json!({"type": "gotest-other"})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let w = s.root("PUT", "gp/kv/kept", Some(json!({"v": "1"}))).await;
    assert!(w.status == 200 || w.status == 204, "{:?}", w.body);
    let (mounts, catalog) = state(&s).await;

    let r = s.root("GET", "gp/fail/panic", None).await;
    assert!(r.status.as_u16() >= 500, "{:?}", r.body);
    assert!(
        r.error_text().contains("gotest"),
        "names the plugin: {}",
        r.error_text()
    );
    let o = s.root("PUT", "other/kv/x", Some(json!({"v": "2"}))).await;
    assert!(o.status == 200 || o.status == 204, "{:?}", o.body);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = s.root("GET", "gp/kv/kept", None).await;
        if r.status == 200 {
            assert_eq!(r.body["data"]["v"], "1", "{:?}", r.body);
            break;
        }
        assert!(Instant::now() < deadline, "not restarted: {:?}", r.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mounts2, catalog2) = state(&s).await;
    assert_eq!(strip_running(mounts), strip_running(mounts2));
    assert_eq!(catalog, catalog2);
}

/// An answer larger than the host accepts (64 MiB) is refused with an
/// error naming the plugin; a large answer within the bound is served; the
/// plugin keeps serving afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_answer_is_refused_and_the_plugin_keeps_serving() {
    let (_dir, s) = test_plugin_mounted(&[]).await;
    let ok = s.root("GET", "gp/fail/big?bytes=1048576", None).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body.to_string().len());
    let big = s.root("GET", "gp/fail/big?bytes=100000000", None).await;
    assert!(big.status.as_u16() >= 500, "status {}", big.status);
    let text = big.error_text();
    assert!(text.contains("gotest"), "names the plugin: {text}");
    assert!(
        text.len() < 4096,
        "the error is not the answer: {} bytes",
        text.len()
    );
    let w = s.root("PUT", "gp/kv/after", Some(json!({"v": "1"}))).await;
    assert!(w.status == 200 || w.status == 204, "{:?}", w.body);
    let r = s.root("GET", "gp/kv/after", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// A plugin that never comes up (it exits before its handshake) is a crash
/// loop too: the third failed start in a row is reported, naming the mount,
/// though no process ever served (no supervisor sees it).
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_never_starts_is_reported_as_a_crash_loop() {
    use lockbox_plugin_host::PluginEventKind;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_go_plugin(dir.path(), "lockbox-testplugin", "gofail");
    register(
        &s,
        "secret",
        "gofail",
        &sha,
        &["LOCKBOX_TESTPLUGIN_FAIL=exit"],
    )
    .await;
    let mut events = s.core.plugin_host().subscribe();
    for _ in 0..3 {
        let r = mount(&s, "never", json!({"type": "gofail"})).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert!(r.error_text().contains("gofail"), "{}", r.error_text());
    }
    let mut loops = vec![];
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
        if let PluginEventKind::CrashLoop {
            failures, reason, ..
        } = e.kind
        {
            assert_eq!(e.name, "gofail");
            assert_eq!(e.mount_paths, vec!["never/".to_string()]);
            loops.push((failures, reason));
        }
    }
    assert_eq!(loops.len(), 1, "{loops:?}");
    assert_eq!(loops[0].0, 3);
    assert!(loops[0].1.contains("exit"), "{:?}", loops[0]);
    let mounts = s.root("GET", "sys/mounts", None).await;
    assert!(mounts.body["data"]["never/"].is_null(), "nothing mounted");
}
