//! kv version 2 as Vault's users know it: Vault's own kv plugin
//! (`vault-plugin-secrets-kv`, run unmodified through Vault's plugin
//! protocol), mounted at `secret/` by the dev server when it is in the
//! plugin directory, driven by the real OpenBao CLI (`bao kv ...`) and by
//! hvac's `secrets.kv.v2`.

use crate::bao::{Bao, Run};
use crate::common::install_go_plugin;
use crate::walkthrough::start_dev;
use serde_json::{Value, json};

/// A dev server whose plugin directory holds the upstream kv plugin under
/// its own binary name.
fn dev_with_kv(home: &std::path::Path) -> crate::common::Spawned {
    let plugins = home.join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    install_go_plugin(
        &plugins,
        "vault-plugin-secrets-kv",
        "vault-plugin-secrets-kv",
    );
    start_dev(
        &[
            "-dev-root-token-id=root",
            "-dev-listen-address=127.0.0.1:0",
            "-dev-plugin-dir",
            plugins.to_str().unwrap(),
        ],
        home,
    )
}

fn ok(bao: &Bao, args: &[&str]) -> Run {
    let r = bao.run_as("root", args);
    assert_eq!(r.code, 0, "bao {args:?}: {}", r.all());
    r
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.all()))
}

#[test]
fn dev_server_mounts_secret_as_kv_v2_and_bao_kv_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = dev_with_kv(dir.path());
    server.assert_banner(|l| l == "    - kv");
    let bao = Bao::new(&server.addr);

    let mounts = json_of(&ok(&bao, &["secrets", "list", "-format=json"]));
    assert_eq!(mounts["secret/"]["type"], "kv", "{mounts}");
    assert_eq!(mounts["secret/"]["options"]["version"], "2", "{mounts}");

    ok(&bao, &["kv", "put", "secret/app", "a=1"]);
    let got = json_of(&ok(&bao, &["kv", "get", "-format=json", "secret/app"]));
    assert_eq!(got["data"]["data"], json!({"a": "1"}), "{got}");
    assert_eq!(got["data"]["metadata"]["version"], 1, "{got}");

    // `kv patch` sends an HTTP PATCH (JSON merge patch).
    ok(&bao, &["kv", "patch", "secret/app", "b=2"]);
    let got = json_of(&ok(&bao, &["kv", "get", "-format=json", "secret/app"]));
    assert_eq!(got["data"]["data"], json!({"a": "1", "b": "2"}), "{got}");
    assert_eq!(got["data"]["metadata"]["version"], 2, "{got}");

    ok(&bao, &["kv", "put", "secret/app", "a=3"]);
    let meta = json_of(&ok(
        &bao,
        &["kv", "metadata", "get", "-format=json", "secret/app"],
    ));
    assert_eq!(meta["data"]["current_version"], 3, "{meta}");

    ok(&bao, &["kv", "delete", "secret/app"]);
    let meta = json_of(&ok(
        &bao,
        &["kv", "metadata", "get", "-format=json", "secret/app"],
    ));
    assert_ne!(meta["data"]["versions"]["3"]["deletion_time"], "", "{meta}");
    ok(&bao, &["kv", "undelete", "-versions=3", "secret/app"]);
    let got = json_of(&ok(&bao, &["kv", "get", "-format=json", "secret/app"]));
    assert_eq!(got["data"]["data"], json!({"a": "3"}), "{got}");

    ok(&bao, &["kv", "destroy", "-versions=1", "secret/app"]);
    let meta = json_of(&ok(
        &bao,
        &["kv", "metadata", "get", "-format=json", "secret/app"],
    ));
    assert_eq!(meta["data"]["versions"]["1"]["destroyed"], true, "{meta}");
    // Vault's answer for a destroyed version: a raw 404 whose body has the
    // metadata and no data; the CLI shows it.
    let v1 = json_of(&ok(
        &bao,
        &["kv", "get", "-format=json", "-version=1", "secret/app"],
    ));
    assert_eq!(v1["data"]["data"], Value::Null, "{v1}");
    assert_eq!(v1["data"]["metadata"]["destroyed"], true, "{v1}");

    ok(&bao, &["kv", "rollback", "-version=2", "secret/app"]);
    let got = json_of(&ok(&bao, &["kv", "get", "-format=json", "secret/app"]));
    assert_eq!(got["data"]["data"], json!({"a": "1", "b": "2"}), "{got}");
    assert_eq!(got["data"]["metadata"]["version"], 4, "{got}");
    let rb = bao.run_as("root", &["kv", "rollback", "-version=1", "secret/app"]);
    assert_ne!(rb.code, 0, "rollback to a destroyed version: {}", rb.all());

    let list = json_of(&ok(&bao, &["kv", "list", "-format=json", "secret/"]));
    assert_eq!(list, json!(["app"]));
    ok(&bao, &["kv", "metadata", "delete", "secret/app"]);
    let gone = bao.run_as("root", &["kv", "get", "secret/app"]);
    assert_eq!(gone.code, 2, "{}", gone.all());

    // A reload of plugin `kv` moves the kv version 2 mounts only: a
    // built-in kv version 1 mount beside them is not the plugin's.
    ok(
        &bao,
        &["secrets", "enable", "-path=kv1", "-version=1", "kv"],
    );
    ok(&bao, &["kv", "put", "kv1/x", "a=1"]);
    ok(&bao, &["kv", "put", "secret/after", "b=2"]);
    let r = ok(&bao, &["write", "sys/plugins/reload/backend", "plugin=kv"]);
    assert!(r.stdout.contains("reload_id"), "{}", r.all());
    let got = json_of(&ok(&bao, &["kv", "get", "-format=json", "secret/after"]));
    assert_eq!(got["data"]["data"], json!({"b": "2"}), "{got}");
    let got = json_of(&ok(&bao, &["kv", "get", "-format=json", "kv1/x"]));
    assert_eq!(got["data"], json!({"a": "1"}), "{got}");

    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// PATCH needs the `patch` capability (Vault's), and a PATCH without the
/// merge-patch content type is a 415, as in Vault; kv version 1 answers
/// a patch with 405.
#[tokio::test(flavor = "multi_thread")]
async fn patch_needs_its_capability_and_content_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = dev_with_kv(dir.path());
    let addr = server.addr.clone();
    let http = crate::common::client();
    let call = |method: &str, path: &str, token: &str, body: Option<(&str, Value)>| {
        let mut rb = http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{addr}/v1/{path}"),
            )
            .header("X-Vault-Token", token);
        if let Some((ct, b)) = body {
            rb = rb.header("Content-Type", ct).body(b.to_string());
        }
        async move {
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };
    let merge = "application/merge-patch+json";
    let (s, b) = call(
        "POST",
        "secret/data/app",
        "root",
        Some(("application/json", json!({"data": {"a": "1"}}))),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    for (name, caps) in [
        ("no-patch", r#"["read", "update"]"#),
        ("patch", r#"["read", "patch"]"#),
    ] {
        let policy = format!("path \"secret/data/app\" {{ capabilities = {caps} }}");
        let (s, b) = call(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            "root",
            Some(("application/json", json!({"policy": policy}))),
        )
        .await;
        assert_eq!(s, 204, "{b}");
    }
    let token = |policy: &'static str| {
        let call = &call;
        async move {
            let (s, b) = call(
                "POST",
                "auth/token/create",
                "root",
                Some(("application/json", json!({"policies": [policy]}))),
            )
            .await;
            assert_eq!(s, 200, "{b}");
            b["auth"]["client_token"].as_str().unwrap().to_string()
        }
    };
    let without = token("no-patch").await;
    let with = token("patch").await;
    let patch = json!({"data": {"b": "2"}});
    let (s, b) = call(
        "PATCH",
        "secret/data/app",
        &without,
        Some((merge, patch.clone())),
    )
    .await;
    assert_eq!(s, 403, "update does not grant patch: {b}");
    let (s, b) = call(
        "PATCH",
        "secret/data/app",
        &with,
        Some(("application/json", patch.clone())),
    )
    .await;
    assert_eq!(s, 415, "{b}");
    assert!(
        b.to_string().contains("application/merge-patch+json"),
        "{b}"
    );
    let (s, b) = call("PATCH", "secret/data/app", &with, Some((merge, patch))).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = call("GET", "secret/data/app", &with, None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["data"]["data"], json!({"a": "1", "b": "2"}), "{b}");

    // kv version 1 (built in) has no patch.
    let (s, b) = call(
        "POST",
        "sys/mounts/kv1",
        "root",
        Some(("application/json", json!({"type": "kv"}))),
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = call("PATCH", "kv1/x", "root", Some((merge, json!({"a": "b"})))).await;
    assert_eq!(s, 405, "{b}");
    let _ = server.child.kill();
    let _ = server.child.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn hvac_kv_v2_works_against_the_kv_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = dev_with_kv(dir.path());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/hvac_kv2.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .env("VAULT_ADDR", &server.addr)
        .env("VAULT_TOKEN", "root")
        .output()
        .await
        .expect("run python3 (hvac is installed by tests/run.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "hvac kv v2 failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("hvac kv v2: ok"), "{stdout}");
    let _ = server.child.kill();
    let _ = server.child.wait();
}
