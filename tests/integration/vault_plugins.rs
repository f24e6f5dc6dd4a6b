//! Unmodified Vault plugins (go-plugin v5, AutoMTLS, the broker) as real
//! processes under the real server: our Go test plugin built with Vault's
//! SDK (`tests/go/testplugin`) and the upstream kv plugin, registered by
//! sha256 and mounted like lockbox's own plugins.

use crate::common::{Resp, TestServer, install_go_plugin};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub(crate) async fn register(s: &TestServer, kind: &str, name: &str, sha: &str, env: &[&str]) {
    let r = s
        .root(
            "PUT",
            &format!("sys/plugins/catalog/{kind}/{name}"),
            Some(json!({"sha256": sha, "command": name, "env": env})),
        )
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
}

pub(crate) async fn mount(s: &TestServer, path: &str, body: Value) -> Resp {
    s.root("POST", &format!("sys/mounts/{path}"), Some(body))
        .await
}

pub(crate) fn pids_of(s: &TestServer, name: &str) -> Vec<u32> {
    s.core
        .plugin_host()
        .groups()
        .iter()
        .filter(|g| g.entry().name == name)
        .filter_map(|g| g.pid())
        .collect()
}

/// A server with our Go test plugin registered as `gotest` and mounted at
/// `gp/`.
pub(crate) async fn test_plugin_mounted(env: &[&str]) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_go_plugin(dir.path(), "lockbox-testplugin", "gotest");
    register(&s, "secret", "gotest", &sha, env).await;
    let r = mount(&s, "gp", json!({"type": "gotest"})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    (dir, s)
}

#[tokio::test(flavor = "multi_thread")]
async fn go_test_plugin_serves_kv_paths_through_the_broker_storage() {
    let (_dir, s) = test_plugin_mounted(&[]).await;
    let w = s
        .root("PUT", "gp/kv/a", Some(json!({"foo": "bar", "n": 1})))
        .await;
    assert!(w.status == 200 || w.status == 204, "{:?}", w.body);
    let r = s.root("GET", "gp/kv/a", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["foo"], "bar", "{:?}", r.body);
    let l = s.root("LIST", "gp/kv/", None).await;
    assert_eq!(l.status, 200, "{:?}", l.body);
    assert_eq!(l.body["data"]["keys"], json!(["a"]), "{:?}", l.body);
    let d = s.root("DELETE", "gp/kv/a", None).await;
    assert!(d.status == 200 || d.status == 204, "{:?}", d.body);
    let r = s.root("GET", "gp/kv/a", None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);

    // A second mount: the same process (multiplexing), its own storage.
    let pid = pids_of(&s, "gotest");
    assert_eq!(pid.len(), 1, "{pid:?}");
    let r = mount(&s, "gp2", json!({"type": "gotest"})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(
        pids_of(&s, "gotest"),
        pid,
        "the second mount started a process"
    );
    s.root("PUT", "gp/kv/only-here", Some(json!({"x": "1"})))
        .await;
    let r = s.root("GET", "gp2/kv/only-here", None).await;
    assert_eq!(r.status, 404, "mounts share storage: {:?}", r.body);
    let w = s.root("PUT", "gp2/kv/b", Some(json!({"y": "2"}))).await;
    assert!(w.status == 200 || w.status == 204, "{:?}", w.body);
    assert_eq!(s.root("GET", "gp2/kv/b", None).await.body["data"]["y"], "2");
    assert_eq!(s.root("GET", "gp/kv/b", None).await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn existence_check_and_root_paths_are_enforced() {
    let (_dir, s) = test_plugin_mounted(&[]).await;
    let p = s
        .root(
            "PUT",
            "sys/policies/acl/creator",
            Some(json!({"policy": r#"
                path "gp/kv/*" { capabilities = ["create", "read"] }
                path "gp/root/*" { capabilities = ["create", "update", "read"] }
            "#})),
        )
        .await;
    assert!(p.status == 204 || p.status == 200, "{:?}", p.body);
    let token = s.token_with(&["creator"]).await;
    // Create is allowed; a second write is an update (the plugin's
    // existence check says the entry exists) and is refused.
    let c = s
        .call("PUT", "gp/kv/new", Some(&token), Some(json!({"v": "1"})))
        .await;
    assert!(c.status == 200 || c.status == 204, "{:?}", c.body);
    let u = s
        .call("PUT", "gp/kv/new", Some(&token), Some(json!({"v": "2"})))
        .await;
    assert_eq!(u.status, 403, "update without the capability: {:?}", u.body);
    // root/* is a root path of the plugin: sudo is needed.
    let r = s
        .call("PUT", "gp/root/x", Some(&token), Some(json!({"v": "1"})))
        .await;
    assert_eq!(r.status, 403, "root path without sudo: {:?}", r.body);
    let r = s.root("PUT", "gp/root/x", Some(json!({"v": "1"}))).await;
    assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn go_auth_plugin_login_creates_a_token_with_its_policies() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_go_plugin(dir.path(), "lockbox-testplugin-auth", "goauth");
    register(&s, "auth", "goauth", &sha, &[]).await;
    let r = s
        .root("POST", "sys/auth/ga", Some(json!({"type": "goauth"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let login = s
        .call(
            "PUT",
            "auth/ga/login",
            None,
            Some(json!({"name": "alice", "policies": "p1,p2", "ttl": 600})),
        )
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    let token = login.body["auth"]["client_token"]
        .as_str()
        .unwrap_or_default();
    assert!(!token.is_empty(), "{:?}", login.body);
    let policies = login.body["auth"]["policies"].to_string();
    assert!(
        policies.contains("p1") && policies.contains("p2"),
        "{policies}"
    );
    let me = s
        .call("GET", "auth/token/lookup-self", Some(token), None)
        .await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    // A bad login is the plugin's 400, and no token.
    let bad = s
        .call("PUT", "auth/ga/login", None, Some(json!({"name": ""})))
        .await;
    assert_eq!(bad.status, 400, "{:?}", bad.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_kv_plugin_serves_kv_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_go_plugin(dir.path(), "vault-plugin-secrets-kv", "kv-go");
    register(&s, "secret", "kv-go", &sha, &[]).await;
    let r = mount(
        &s,
        "kv2",
        json!({"type": "kv-go", "options": {"version": "2"}}),
    )
    .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // kv v2 upgrades its storage layout in the background after mount.
    let deadline = Instant::now() + Duration::from_secs(20);
    let put = loop {
        let put = s
            .root("PUT", "kv2/data/x", Some(json!({"data": {"a": "b"}})))
            .await;
        if put.status == 200 || Instant::now() > deadline {
            break put;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_eq!(put.body["data"]["version"], 1, "{:?}", put.body);
    let get = s.root("GET", "kv2/data/x", None).await;
    assert_eq!(get.status, 200, "{:?}", get.body);
    assert_eq!(get.body["data"]["data"]["a"], "b", "{:?}", get.body);
    let put2 = s
        .root("PUT", "kv2/data/x", Some(json!({"data": {"a": "c"}})))
        .await;
    assert_eq!(put2.body["data"]["version"], 2, "{:?}", put2.body);
    let meta = s.root("GET", "kv2/metadata/x", None).await;
    assert_eq!(meta.status, 200, "{:?}", meta.body);
    assert_eq!(meta.body["data"]["current_version"], 2, "{:?}", meta.body);
    let old = s.root("GET", "kv2/data/x?version=1", None).await;
    assert_eq!(old.body["data"]["data"]["a"], "b", "{:?}", old.body);
    let missing = s.root("GET", "kv2/data/nope", None).await;
    assert_eq!(missing.status, 404, "{:?}", missing.body);
}

/// A handshake that names a socket outside the private directory, and one
/// of another protocol version: the mount fails with an error naming the
/// plugin and the cause, and the mount table is unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn lying_or_wrong_version_handshakes_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let cases = [
        (
            "liar",
            "1|5|unix|/tmp/elsewhere.sock|grpc|MAA",
            "outside the plugin's socket directory",
        ),
        (
            "oldproto",
            "1|4|unix|/tmp/x.sock|grpc|MAA",
            "APP-PROTOCOL-VERSION \"4\" is not supported",
        ),
    ];
    for (name, line, expected) in cases {
        let sha = install_go_plugin(dir.path(), "lockbox-testplugin", name);
        let env = format!("LOCKBOX_TESTPLUGIN_HANDSHAKE={line}");
        register(&s, "secret", name, &sha, &[&env]).await;
        let r = mount(&s, name, json!({"type": name})).await;
        assert!(r.status.as_u16() >= 400, "{name}: {:?}", r.body);
        let text = r.error_text();
        assert!(
            text.contains(&format!("plugin {name}")) && text.contains(expected),
            "{name}: {text}"
        );
        let mounts = s.root("GET", "sys/mounts", None).await;
        assert!(
            mounts.body.get(format!("{name}/")).is_none(),
            "{:?}",
            mounts.body
        );
    }
}

/// A plugin that exits mid-request: the request fails with a 5xx naming
/// the plugin, supervision starts a new process and sets the mount up
/// again, and the data (in lockbox's storage) is still there.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_exiting_mid_request_is_restarted() {
    let (_dir, s) = test_plugin_mounted(&[]).await;
    s.root("PUT", "gp/kv/keep", Some(json!({"v": "1"}))).await;
    let old = pids_of(&s, "gotest");
    let r = s.root("PUT", "gp/fail/exit", Some(json!({}))).await;
    assert!(r.status.as_u16() >= 500, "{:?}", r.body);
    assert!(r.error_text().contains("gotest"), "{}", r.error_text());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = pids_of(&s, "gotest");
        let read = s.root("GET", "gp/kv/keep", None).await;
        if now.len() == 1 && now != old && read.status == 200 {
            assert_eq!(read.body["data"]["v"], "1");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not restarted: {now:?} {:?}",
            read.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the plugin sees of its host: the mount's TTLs through SystemView,
/// the Vault environment, and password policies refused clearly.
#[tokio::test(flavor = "multi_thread")]
async fn system_view_answers_the_mounts_facts() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_go_plugin(dir.path(), "lockbox-testplugin", "gotest");
    register(&s, "secret", "gotest", &sha, &[]).await;
    let body =
        json!({"type": "gotest", "config": {"default_lease_ttl": "1h", "max_lease_ttl": "2h"}});
    let r = mount(&s, "gp", body).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let info = s.root("GET", "gp/info", None).await;
    assert_eq!(info.status, 200, "{:?}", info.body);
    let d = &info.body["data"];
    assert_eq!(d["default_lease_ttl"], 3600, "{d}");
    assert_eq!(d["max_lease_ttl"], 7200, "{d}");
    assert_eq!(d["tainted"], false, "{d}");
    assert_eq!(d["caching_disabled"], false, "{d}");
    assert_eq!(d["local_mount"], false, "{d}");
    assert_eq!(d["unix_socket_dir_env_set"], true, "{d}");
    assert_eq!(d["mount_point"], "gp/", "{d}");
    assert_eq!(d["backend_type"], "secret", "{d}");
    assert!(
        d["vault_version"].as_str().is_some_and(|v| !v.is_empty()),
        "{d}"
    );
    assert!(d.get("plugin_env_error").is_none(), "{d}");
    let pw = s.root("GET", "gp/password/default", None).await;
    assert_eq!(pw.status, 400, "{:?}", pw.body);
    assert!(
        pw.error_text()
            .contains("does not support password policies"),
        "{}",
        pw.error_text()
    );
}

/// A plugin that does not multiplex (`plugin.Serve`) gets a process per
/// mount, each working.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_does_not_multiplex_gets_a_process_per_mount() {
    let (_dir, s) = test_plugin_mounted(&["LOCKBOX_TESTPLUGIN_MULTIPLEX=false"]).await;
    let r = mount(&s, "gp2", json!({"type": "gotest"})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let pids = pids_of(&s, "gotest");
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_ne!(pids[0], pids[1]);
    for m in ["gp", "gp2"] {
        let w = s
            .root("PUT", &format!("{m}/kv/k"), Some(json!({"m": m})))
            .await;
        assert!(w.status == 200 || w.status == 204, "{m}: {:?}", w.body);
    }
    for m in ["gp", "gp2"] {
        let r = s.root("GET", &format!("{m}/kv/k"), None).await;
        assert_eq!(r.body["data"]["m"], m, "{:?}", r.body);
    }
}

/// The environment a Vault plugin starts with: the protocol variables of
/// Vault (and OpenBao's twins) and the entry's `env`, nothing of the
/// server's own environment, no arguments.
#[tokio::test(flavor = "multi_thread")]
async fn a_vault_plugin_gets_vaults_environment_and_nothing_of_the_servers() {
    // The plugin writes the file into its working directory, the private
    // socket directory (the only place its sandbox may write).
    let (_dir, s) = test_plugin_mounted(&[
        "LOCKBOX_TESTPLUGIN_DUMP_ENV=env.txt",
        "ENTRY_VAR=from-entry",
    ])
    .await;
    let pid = pids_of(&s, "gotest")[0];
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    let dump = std::fs::read_to_string(cwd.join("env.txt")).unwrap();
    let has = |line: &str| dump.lines().any(|l| l == line);
    let cwd = cwd.display().to_string();
    for line in [
        "VAULT_BACKEND_PLUGIN=6669da05-b1c8-4f49-97d9-c8e5bed98e20",
        "PLUGIN_PROTOCOL_VERSIONS=5",
        "VAULT_PLUGIN_AUTOMTLS_ENABLED=true",
        "BAO_PLUGIN_AUTOMTLS_ENABLED=true",
        "PLUGIN_MIN_PORT=10000",
        "PLUGIN_MAX_PORT=25000",
        "ENTRY_VAR=from-entry",
        &format!("PLUGIN_UNIX_SOCKET_DIR={cwd}"),
    ] {
        assert!(has(line), "missing {line:?} in:\n{dump}");
    }
    assert!(
        dump.contains("PLUGIN_CLIENT_CERT=-----BEGIN CERTIFICATE-----"),
        "{dump}"
    );
    assert!(
        dump.lines()
            .any(|l| l.starts_with("VAULT_VERSION=") && l.len() > 14),
        "{dump}"
    );
    assert!(!dump.contains("ARG1="), "arguments were passed:\n{dump}");
    assert!(
        !dump.contains("CARGO_MANIFEST_DIR"),
        "the server's environment leaked:\n{dump}"
    );
}

/// A script that speaks go-plugin's handshake from its socket directory:
/// makes two self-signed certificates there, prints the handshake line
/// with `CERT` (`real`: the one it serves, `other`: the second one,
/// `garbage`: not a certificate) once it serves TLS (Python's `ssl`) with
/// the first one.
fn tls_liar_script(cert: &str) -> String {
    format!(
        r#"D="$PLUGIN_UNIX_SOCKET_DIR"
mk() {{ openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -days 1 -keyout "$D/$1.key" -out "$D/$1.pem" >&2; }}
mk real; mk other
b64() {{ openssl x509 -in "$D/$1.pem" -outform DER | base64 -w0 | tr -d '='; }}
case "{cert}" in garbage) C=AAAA ;; *) C="$(b64 {cert})" ;; esac
exec python3 -c '
import os, socket, ssl, sys
d = os.environ["PLUGIN_UNIX_SOCKET_DIR"]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/real.pem", d + "/real.key")
ctx.set_alpn_protocols(["h2"])
s = socket.socket(socket.AF_UNIX)
s.bind(d + "/plugin.sock")
s.listen()
print(sys.argv[1], flush=True)
while True:
    c, _ = s.accept()
    try:
        ctx.wrap_socket(c, server_side=True).recv(1)
    except Exception as e:
        print(e, file=sys.stderr)
' "1|5|unix|$D/plugin.sock|grpc|$C""#
    )
}

/// A plugin presenting a certificate other than the one of its handshake,
/// or a handshake whose certificate is not one: refused, naming the plugin
/// and the cause; the control case (the real certificate, but no gRPC
/// behind it) gets past TLS and fails later, so the refusals are TLS's.
#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_other_than_the_handshakes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let cases = [
        ("swapcert", "other", "other than the one in its handshake"),
        (
            "garbagecert",
            "garbage",
            "does not decode to a DER certificate",
        ),
    ];
    for (name, cert, expected) in cases {
        let path = crate::common::write_script(dir.path(), name, &tls_liar_script(cert));
        let sha = crate::common::sha256_file(&path);
        register(&s, "secret", name, &sha, &[]).await;
        let r = mount(&s, name, json!({"type": name})).await;
        assert!(r.status.as_u16() >= 400, "{name}: {:?}", r.body);
        let text = r.error_text();
        assert!(
            text.contains(&format!("plugin {name}")) && text.contains(expected),
            "{name}: {text}"
        );
    }
    let path = crate::common::write_script(dir.path(), "realcert", &tls_liar_script("real"));
    let sha = crate::common::sha256_file(&path);
    register(&s, "secret", "realcert", &sha, &[]).await;
    let r = mount(&s, "realcert", json!({"type": "realcert"})).await;
    let text = r.error_text();
    assert!(r.status.as_u16() >= 400, "{:?}", r.body);
    assert!(text.contains("health check failed"), "{text}");
}

/// Reload by plugin moves a Vault plugin's mounts onto a fresh process;
/// its data stays (it lives in lockbox's storage).
#[tokio::test(flavor = "multi_thread")]
async fn reload_moves_vault_plugin_mounts_to_a_new_process() {
    let (_dir, s) = test_plugin_mounted(&[]).await;
    let w = s.root("PUT", "gp/kv/k", Some(json!({"v": "1"}))).await;
    assert!(w.status == 200 || w.status == 204, "{:?}", w.body);
    let old = pids_of(&s, "gotest");
    let r = s
        .root(
            "PUT",
            "sys/plugins/reload/backend",
            Some(json!({"plugin": "gotest"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = pids_of(&s, "gotest");
        if now.len() == 1 && now != old {
            break;
        }
        assert!(Instant::now() < deadline, "not reloaded: {now:?} {old:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = s.root("GET", "gp/kv/k", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["v"], "1");
    let info = s.root("GET", "gp/info", None).await;
    assert_eq!(info.body["data"]["pid"], json!(pids_of(&s, "gotest")[0]));
}

/// A plugin's errors reach the client with Vault's statuses and the
/// plugin's message; a hanging request times out with a 503 naming the
/// plugin while the same process keeps serving other requests and mounts.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_errors_keep_vaults_statuses_and_a_hang_affects_no_one_else() {
    let (_dir, s) = test_plugin_mounted(&[]).await;
    let r = mount(&s, "gp2", json!({"type": "gotest"})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    for (status, expected) in [(0, 400), (403, 403), (404, 404), (429, 429), (503, 503)] {
        let body = json!({"message": format!("boom-{status}"), "status": status});
        let r = s.root("PUT", "gp/fail/error", Some(body)).await;
        assert_eq!(r.status, expected, "status {status}: {:?}", r.body);
        assert!(
            r.error_text().contains(&format!("boom-{status}")),
            "{}",
            r.error_text()
        );
    }
    let hang = {
        let api = crate::common::Api {
            addr: s.addr.clone(),
            root_token: s.root_token.clone(),
            client: crate::common::client(),
        };
        tokio::spawn(async move { api.root("PUT", "gp/fail/hang", Some(json!({}))).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let w = s
        .root("PUT", "gp2/kv/during", Some(json!({"v": "1"})))
        .await;
    assert!(w.status == 200 || w.status == 204, "{:?}", w.body);
    let r = s.root("GET", "gp/kv/nothing", None).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    let hung = hang.await.unwrap();
    assert_eq!(hung.status, 503, "{:?}", hung.body);
    assert!(
        hung.error_text().contains("plugin gotest did not answer"),
        "{}",
        hung.error_text()
    );
}

/// The seed walkthrough with the seed's own kind of plugin: the Go mock
/// built with Vault's SDK, in the dev server's plugin directory, driven
/// by the real binary and CLI.
#[test]
fn seed_walkthrough_with_the_go_mock() {
    use crate::walkthrough::{ok, pids_named, start_dev, wait_gone};
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let name = format!("gomock{}", std::process::id());
    install_go_plugin(&plugins, "mock", &name);
    let mut server = start_dev(
        &[
            "-dev-root-token-id=root",
            "-dev-listen-address=127.0.0.1:0",
            "-dev-plugin-dir",
            plugins.to_str().unwrap(),
        ],
        dir.path(),
    );
    let (home, addr) = (dir.path(), server.addr.clone());
    server.assert_banner(|l| l == format!("    - {name}"));
    ok(&addr, home, &["login", "root"]);
    let out = ok(&addr, home, &["secrets", "enable", &name]);
    assert!(
        out.contains(&format!("Enabled the {name} secrets engine")),
        "{out}"
    );
    let out = ok(
        &addr,
        home,
        &["write", &format!("{name}/test"), "message=Hello World"],
    );
    assert!(out.contains("Success! Data written"), "{out}");
    let out = ok(&addr, home, &["read", &format!("{name}/test")]);
    let row = out.lines().find(|l| l.starts_with("message")).expect(&out);
    assert!(row.ends_with("Hello World"), "{out}");
    assert_eq!(pids_named(&name).len(), 1);
    ok(&addr, home, &["secrets", "disable", &name]);
    wait_gone(&name);

    // The seed's next steps: register a copy by its sha256 under another
    // name, mount it; register v2 (another binary) under the same name;
    // the mount keeps v1 until a reload by plugin, then by mounts.
    let v1 = format!("{name}-v1");
    let sha1 = install_go_plugin(&plugins, "mock", &v1);
    let out = ok(
        &addr,
        home,
        &[
            "write",
            "sys/plugins/catalog/secret/my-mock-plugin",
            &format!("sha_256={sha1}"),
            &format!("command={v1}"),
        ],
    );
    assert!(
        out.contains("Success! Data written to: sys/plugins/catalog/secret/my-mock-plugin"),
        "{out}"
    );
    ok(&addr, home, &["secrets", "enable", "my-mock-plugin"]);
    ok(
        &addr,
        home,
        &["write", "my-mock-plugin/test", "message=v1 wrote this"],
    );
    let v1_pids = pids_named(&v1);
    assert_eq!(v1_pids.len(), 1, "{v1_pids:?}");
    let running = |home: &std::path::Path| -> serde_json::Value {
        let out = ok(
            &addr,
            home,
            &["read", "-format=json", "sys/mounts/my-mock-plugin"],
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect(&out);
        v["data"]["running_sha256"].clone()
    };
    assert_eq!(running(home), sha1.as_str());

    // v2: a different binary (the same program with bytes appended, so a
    // different sha256), registered under the same name.
    let v2 = format!("{name}-v2");
    install_go_plugin(&plugins, "mock", &v2);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(plugins.join(&v2))
            .unwrap();
        f.write_all(b"lockbox seed walkthrough v2").unwrap();
    }
    let sha2 = lockbox_core::catalog::sha256_file(&plugins.join(&v2)).unwrap();
    assert_ne!(sha1, sha2);
    ok(
        &addr,
        home,
        &[
            "write",
            "sys/plugins/catalog/secret/my-mock-plugin",
            &format!("sha_256={sha2}"),
            &format!("command={v2}"),
        ],
    );
    assert_eq!(
        running(home),
        sha1.as_str(),
        "the mount keeps v1 until a reload"
    );
    assert_eq!(pids_named(&v1), v1_pids);
    let out = ok(
        &addr,
        home,
        &[
            "write",
            "sys/plugins/reload/backend",
            "plugin=my-mock-plugin",
        ],
    );
    assert!(out.contains("reload_id"), "{out}");
    wait_gone(&v1);
    assert_eq!(running(home), sha2.as_str());
    let by_plugin = pids_named(&v2);
    assert_eq!(by_plugin.len(), 1, "{by_plugin:?}");
    let out = ok(&addr, home, &["read", "my-mock-plugin/test"]);
    assert!(
        out.contains("v1 wrote this"),
        "the data outlives the reload: {out}"
    );
    let out = ok(
        &addr,
        home,
        &[
            "write",
            "sys/plugins/reload/backend",
            "mounts=my-mock-plugin/",
        ],
    );
    assert!(out.contains("reload_id"), "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pids_named(&v2).contains(&by_plugin[0]) {
        assert!(
            std::time::Instant::now() < deadline,
            "reload by mounts did not restart v2"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = ok(&addr, home, &["read", "my-mock-plugin/test"]);
    assert!(out.contains("v1 wrote this"), "{out}");
    assert_eq!(pids_named(&v2).len(), 1);
    let _ = server.child.kill();
    let _ = server.child.wait();
}
