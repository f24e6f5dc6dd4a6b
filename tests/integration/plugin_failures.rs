//! Plugins that fail: handshake errors, digest mismatches, swapped files.
//! The core must refuse them with a clear error and keep serving.

use crate::common::{TestServer, pid_alive, sha256_file, write_script};
use serde_json::json;

async fn register(s: &TestServer, name: &str, sha: &str) {
    let r = s
        .root(
            "PUT",
            &format!("sys/plugins/catalog/secret/{name}"),
            Some(json!({"sha256": sha, "command": name})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
}

async fn enable_fails(s: &TestServer, name: &str) -> String {
    let r = s
        .root(
            "POST",
            &format!("sys/mounts/{name}"),
            Some(json!({"type": name})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    // The core keeps serving everything else.
    assert_eq!(
        s.root("PUT", "secret/still", Some(json!({"ok": "yes"})))
            .await
            .status,
        204
    );
    let mounts = s.root("GET", "sys/mounts", None).await;
    assert!(
        mounts.body["data"].get(format!("{name}/")).is_none(),
        "failed mount was kept"
    );
    r.error_text()
}

#[tokio::test(flavor = "multi_thread")]
async fn handshake_failures_are_reported_with_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    // Each script reports its pid on stderr (the sandbox lets a plugin
    // write nowhere but its own socket directory), and stderr lines are
    // part of the error, so the pid comes back with it.
    let pid = "echo \"pid $$\" >&2";
    let cases = [
        (
            "garbage",
            format!("{pid}\necho 'hello, I am not a plugin'\nsleep 30"),
            "malformed handshake line",
        ),
        (
            "early-exit",
            format!("{pid}\necho 'fatal: missing config' >&2\nexit 3"),
            "exited before the handshake",
        ),
        (
            "silent",
            format!("{pid}\necho 'starting...' >&2\nsleep 30"),
            "no handshake line within",
        ),
        (
            "wrong-version",
            format!(
                "{pid}\necho \"1|9|unix|$LOCKBOX_PLUGIN_SOCKET_DIR/plugin.sock|grpc|\"\nsleep 30"
            ),
            "unsupported app protocol version 9",
        ),
        (
            "escape",
            format!("{pid}\necho '1|1|unix|/tmp/elsewhere.sock|grpc|'\nsleep 30"),
            "outside the plugin's socket directory",
        ),
        (
            "tcp",
            format!("{pid}\necho '1|1|tcp|127.0.0.1:9|grpc|'\nsleep 30"),
            "unix socket",
        ),
        (
            "long-line",
            format!("{pid}\nhead -c 100000 /dev/zero | tr '\\0' x\necho\nsleep 30"),
            "longer than 16384 bytes",
        ),
    ];
    let mut pids = Vec::new();
    for (name, body, needle) in &cases {
        let path = write_script(dir.path(), name, body);
        register(&s, name, &sha256_file(&path)).await;
        let err = enable_fails(&s, name).await;
        assert!(err.contains(needle), "{name}: {err}");
        assert!(err.contains(name), "error should name the plugin: {err}");
        // Every handshake failure here reports stderr (the pid line) too.
        let pid: u32 = err
            .split("pid ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no pid in the error: {err}"));
        pids.push(pid);
    }
    let early = enable_fails(&s, "early-exit").await;
    assert!(
        early.contains("fatal: missing config"),
        "stderr lines belong in the error: {early}"
    );
    // No plugin process is left behind.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for pid in pids {
        assert!(!pid_alive(pid), "plugin process {pid} still running");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_started_by_hand_explains_itself() {
    // The magic cookie is what tells a plugin it was started by lockbox;
    // the SDK refuses to run without it (checked with the mock plugin).
    let bin = crate::common::example_plugins().join("lockbox-plugin-mock");
    let out = std::process::Command::new(bin).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("lockbox"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_mismatch_never_executes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let marker = dir.path().join("ran");
    let path = write_script(
        dir.path(),
        "evil",
        &format!("touch {}\nsleep 30", marker.display()),
    );
    let wrong = "0".repeat(64);
    let r = s
        .root(
            "PUT",
            "sys/plugins/catalog/secret/evil",
            Some(json!({"sha256": wrong, "command": "evil"})),
        )
        .await;
    // Registration warns that the file does not match.
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(
        r.body["warnings"][0]
            .as_str()
            .unwrap()
            .contains("currently has sha256"),
        "{:?}",
        r.body
    );
    let err = enable_fails(&s, "evil").await;
    let actual = sha256_file(&path);
    assert!(err.contains("sha256 mismatch for plugin evil"), "{err}");
    assert!(
        err.contains(&wrong) && err.contains(&actual),
        "both digests named: {err}"
    );
    assert!(
        !marker.exists(),
        "a plugin with the wrong digest was executed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_swapped_after_registration_does_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let good = write_script(dir.path(), "tool", "sleep 30");
    register(&s, "tool", &sha256_file(&good)).await;
    let marker = dir.path().join("swapped-ran");
    write_script(
        dir.path(),
        "tool",
        &format!("touch {}\nsleep 30", marker.display()),
    );
    let err = enable_fails(&s, "tool").await;
    assert!(err.contains("sha256 mismatch"), "{err}");
    assert!(!marker.exists(), "the swapped binary ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_api_validates_input() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let path = write_script(dir.path(), "ok", "sleep 1");
    let sha = sha256_file(&path);
    let cases = [
        (json!({"command": "ok"}), "missing sha256"),
        (json!({"sha256": "xyz", "command": "ok"}), "64 hex"),
        (
            json!({"sha256": sha, "command": "/bin/sh"}),
            "not an absolute path",
        ),
        (json!({"sha256": sha, "command": "../ok"}), "`..`"),
        (
            json!({"sha256": sha, "command": "missing"}),
            "not found in plugin_directory",
        ),
        (
            json!({"sha256": sha, "command": "ok", "env": ["NOEQUALS"]}),
            "KEY=value",
        ),
    ];
    for (body, needle) in cases {
        let r = s
            .root("PUT", "sys/plugins/catalog/secret/ok", Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert!(r.error_text().contains(needle), "{body}: {:?}", r.body);
    }
    let r = s
        .root(
            "PUT",
            "sys/plugins/catalog/database/ok",
            Some(json!({"sha256": sha})),
        )
        .await;
    assert_eq!(r.status, 400);
    // The seed's field name `sha_256` works, and command defaults to the name.
    let r = s
        .root(
            "PUT",
            "sys/plugins/catalog/secret/ok",
            Some(json!({"sha_256": sha})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let got = s.root("GET", "sys/plugins/catalog/secret/ok", None).await;
    assert_eq!(got.body["data"]["sha256"], sha.as_str());
    assert_eq!(got.body["data"]["command"], "ok");
    let all = s.root("GET", "sys/plugins/catalog", None).await;
    assert_eq!(all.body["data"]["secret"], json!(["ok"]));
    let listed = s.root("LIST", "sys/plugins/catalog/secret", None).await;
    assert_eq!(listed.body["data"]["keys"], json!(["ok"]));
    // Catalog writes need sudo.
    s.root(
        "PUT",
        "sys/policies/acl/ops",
        Some(json!({"policy": "path \"sys/*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }"})),
    )
    .await;
    let t = s.token_with(&["ops"]).await;
    let r = s
        .call(
            "PUT",
            "sys/plugins/catalog/secret/ok",
            Some(&t),
            Some(json!({"sha256": sha})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        s.root("DELETE", "sys/plugins/catalog/secret/ok", None)
            .await
            .status,
        204
    );
    assert_eq!(
        s.root("GET", "sys/plugins/catalog/secret/ok", None)
            .await
            .status,
        404
    );
    // Unknown plugin type in sys/mounts.
    let r = s
        .root(
            "POST",
            "sys/mounts/nothing",
            Some(json!({"type": "not-registered"})),
        )
        .await;
    assert!(
        r.error_text().contains("plugin not found in the catalog"),
        "{:?}",
        r.body
    );
}
