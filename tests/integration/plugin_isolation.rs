//! A hostile plugin against the real `lockbox` binary (issue 10, finding 4
//! and the plugin items of finding 7): it attacks the server's environment
//! and memory, other plugins' storage sockets and environment, and the
//! filesystem, and every attack must fail. Also: same-user processes on a
//! plugin's `host.sock`, the runtime directory, plugin output without
//! newlines, and unauthenticated login floods on userpass.
//!
//! The hostile plugin is `tests/hostile-plugin` (binary
//! `lockbox-hostile-plugin`).

use crate::common::{
    ConfigServer, TestServer, children_of, example_plugins, file_config, inmem_config,
    install_plugin, sha256_file,
};
use lockbox_plugin_host::sandbox::{self, LandlockSupport};
use lockbox_plugin_proto::v1::{StorageGetArgs, storage_client::StorageClient};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HOSTILE: &str = "lockbox-hostile-plugin";

/// Copies the hostile plugin into `dir` as `name`; returns its sha256.
fn install_hostile(dir: &Path, name: &str) -> String {
    let dst = dir.join(name);
    std::fs::copy(example_plugins().join(HOSTILE), &dst).expect("copy the hostile plugin");
    sha256_file(&dst)
}

async fn register(s: &ConfigServer, kind: &str, name: &str, sha: &str, env: &[String]) {
    let r = s
        .root(
            "PUT",
            &format!("sys/plugins/catalog/{kind}/{name}"),
            Some(json!({"sha256": sha, "command": name, "env": env})),
        )
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
}

/// Every `host.sock` below the plugin runtime directories in `tmp`.
fn host_sockets(tmp: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for runtime in std::fs::read_dir(tmp).unwrap().flatten() {
        if !runtime
            .file_name()
            .to_string_lossy()
            .starts_with("lockbox-plugins-")
        {
            continue;
        }
        for p in std::fs::read_dir(runtime.path()).unwrap().flatten() {
            let sock = p.path().join("host.sock");
            if sock.exists() {
                out.push(sock);
            }
        }
    }
    out.sort();
    out
}

/// Peak resident memory (`VmHWM`) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
}

/// One `Storage/Get` on a host socket, as any process of the same user can.
async fn storage_get(
    socket: &Path,
    token: Option<&str>,
    mount: &str,
    key: &str,
) -> Result<String, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("unix://{}", socket.display()))
        .unwrap()
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut req = tonic::Request::new(StorageGetArgs {
        mount_id: mount.into(),
        key: key.into(),
    });
    if let Some(t) = token {
        req.metadata_mut().insert(
            lockbox_plugin_proto::HOST_TOKEN_METADATA,
            t.parse().unwrap(),
        );
    }
    StorageClient::new(channel)
        .get(req)
        .await
        .map(|r| String::from_utf8_lossy(&r.into_inner().value).into_owned())
}

/// A config-file server with file storage, restarted once so that it
/// auto-unseals from `LOCKBOX_UNSEAL_KEYS` in its environment, with TMPDIR
/// (and so the plugin runtime directory) in `dir/tmp` and the plugin
/// directory `dir/plugins`. Returns the server and the unseal key.
async fn server_with_unseal_keys_in_env(dir: &Path) -> (ConfigServer, String) {
    let plugins = dir.join("plugins");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let config = format!(
        "{}plugin_directory = \"{}\"\n",
        file_config("{dir}/data"),
        plugins.display()
    );
    let (root, keys) = {
        let mut first = ConfigServer::builder(&config).dir(dir).start();
        first.init_unseal(1, 1).await
    };
    let key = keys[0].clone();
    let mut s = ConfigServer::builder(&config)
        .dir(dir)
        .env("LOCKBOX_UNSEAL_KEYS", &key)
        .env("TMPDIR", tmp.to_str().unwrap())
        .start();
    s.root_token = root;
    let status = s.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(
        status.body["sealed"], false,
        "auto-unseal: {:?}",
        status.body
    );
    (s, key)
}

fn attempt<'a>(report: &'a Value, name: &str) -> (&'a Value, String) {
    let a = &report["attempts"][name];
    assert!(a.is_object(), "no attempt {name} in {report:#}");
    (
        &a["succeeded"],
        a["detail"].as_str().unwrap_or("").to_string(),
    )
}

fn assert_failed(report: &Value, name: &str) -> String {
    let (succeeded, detail) = attempt(report, name);
    assert_eq!(succeeded, false, "{name} succeeded: {detail}\n{report:#}");
    detail
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_plugin_reaches_neither_the_server_nor_other_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let (s, unseal_key) = server_with_unseal_keys_in_env(dir.path()).await;
    let server_pid = s.process.child.id();
    let plugins = dir.path().join("plugins");

    // A victim plugin with a secret, and the hostile plugin.
    let mock_sha = install_plugin(&plugins, "mock", "mock");
    register(&s, "secret", "mock", &mock_sha, &[]).await;
    let hostile_sha = install_hostile(&plugins, "hostile");
    register(&s, "secret", "hostile", &hostile_sha, &[]).await;
    for name in ["mock", "hostile"] {
        let r = s
            .root(
                "POST",
                &format!("sys/mounts/{name}"),
                Some(json!({"type": name})),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let r = s
        .root("PUT", "mock/target", Some(json!({"password": "hunter2"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let mounts = s.root("GET", "sys/mounts", None).await;
    let victim_mount = mounts.body["data"]["mock/"]["uuid"]
        .as_str()
        .expect("mock uuid")
        .to_string();

    // (a) The environment the server started with no longer holds the key
    // (the test may be root, which can read it anyway).
    if let Ok(environ) = std::fs::read(format!("/proc/{server_pid}/environ")) {
        let text = String::from_utf8_lossy(&environ);
        assert!(
            !text.contains(&unseal_key),
            "the unseal key is still in /proc/<server>/environ"
        );
    }
    // A same-user process without capabilities (what a plugin is, minus
    // Landlock): the server is not dumpable, so /proc/<pid>/environ,
    // /proc/<pid>/mem and ptrace are refused.
    let mut probe = std::process::Command::new(example_plugins().join(HOSTILE));
    probe.args(["--probe", &server_pid.to_string()]);
    // SAFETY: drop_capabilities only makes system calls.
    unsafe {
        probe.pre_exec(sandbox::drop_capabilities);
    }
    let out = probe.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let probed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let probed = json!({"attempts": probed});
    for name in ["host_environ", "host_mem", "host_ptrace"] {
        assert_failed(&probed, name);
    }

    // The hostile plugin's attacks.
    let hostile_pid = children_of(server_pid);
    let sockets = host_sockets(&dir.path().join("tmp"));
    assert_eq!(sockets.len(), 2, "{sockets:?}");
    assert_eq!(hostile_pid.len(), 2, "plugin processes {hostile_pid:?}");
    let outside = dir.path().join("outside-secret.txt");
    std::fs::write(&outside, "not for plugins").unwrap();
    let r = s
        .root(
            "PUT",
            "hostile/attack",
            Some(json!({
                "sockets": sockets.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "pids": hostile_pid.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "mount": victim_mount,
                "key": "target",
                "outside_file": outside.display().to_string(),
                "outside_dir": dir.path().display().to_string(),
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let report = r.body["data"].clone();

    // The positive control: its own socket, token and mount work.
    let (own, detail) = attempt(&report, "own_storage");
    assert_eq!(own, true, "own storage must work: {detail}");

    for name in ["host_environ", "host_mem", "host_ptrace", "other_environ"] {
        assert_failed(&report, name);
    }
    let other = assert_failed(&report, "other_storage");
    assert!(other.contains("PermissionDenied"), "{other}");
    assert!(!other.contains("hunter2"), "{other}");
    // Its own socket and token, from a child process: refused by pid.
    let child = assert_failed(&report, "child_storage");
    assert!(child.contains("PermissionDenied"), "{child}");

    // Sandbox: no capabilities, no_new_privs, and Landlock when present.
    let privileges = &report["privileges"];
    assert_eq!(privileges["no_new_privs"], true, "{privileges}");
    assert_eq!(privileges["cap_effective"], 0, "{privileges}");
    assert_eq!(privileges["cap_permitted"], 0, "{privileges}");
    if privileges["uid"] == 0 {
        assert_eq!(privileges["cap_bounding_count"], 0, "{privileges}");
    }
    let support = sandbox::landlock_support();
    if support.restricts_filesystem() {
        for name in ["outside_read", "outside_write", "etc_shadow"] {
            assert_failed(&report, name);
        }
    } else {
        // Best effort, said out loud: the server warns that plugins are
        // not confined to their directory.
        s.process.wait_log(0, "Landlock unavailable");
    }
    if support.scopes_signals() {
        assert_failed(&report, "host_signal");
    }
    if let LandlockSupport::Full { .. } = support {
        s.process.wait_log(0, "fully enforced");
    }

    // (b) Same-user processes (this test) on the host sockets: no token, a
    // wrong token, and the hostile plugin's own token from another process.
    let token = report["own_token"].as_str().unwrap().to_string();
    let hostile_socket = PathBuf::from(report["own_socket"].as_str().unwrap());
    let hostile_mount = mounts.body["data"]["hostile/"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    for socket in &sockets {
        for (token, what) in [(None, "no token"), (Some("wrong"), "a wrong token")] {
            let e = storage_get(socket, token, &victim_mount, "target")
                .await
                .expect_err(what);
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{what}: {e:?}");
            assert!(e.message().contains("lockbox-host-token"), "{e:?}");
        }
    }
    let e = storage_get(&hostile_socket, Some(&token), &hostile_mount, "anything")
        .await
        .expect_err("the right token from the wrong process");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("not the plugin process"), "{e:?}");

    // The victim still serves its secret to lockbox itself.
    let r = s.root("GET", "mock/target", None).await;
    assert_eq!(r.body["data"]["password"], "hunter2", "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_output_without_newlines_cannot_grow_host_memory() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let config = inmem_config(&format!("plugin_directory = \"{}\"\n", plugins.display()));
    let mut s = ConfigServer::start(&config);
    s.init_unseal(1, 1).await;
    let pid = s.process.child.id();
    let sha = install_hostile(&plugins, "hostile");
    register(&s, "secret", "hostile", &sha, &[]).await;
    let r = s
        .root(
            "POST",
            "sys/mounts/hostile",
            Some(json!({"type": "hostile"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    const FLOOD: u64 = 64 * 1024 * 1024;
    let before = peak_rss_kib(pid);
    for stream in ["stderr", "stdout"] {
        let from = s.process.log_len();
        let r = s
            .root(
                "PUT",
                "hostile/flood",
                Some(json!({"bytes": FLOOD, "stream": stream})),
            )
            .await;
        assert_eq!(r.status, 204, "{stream}: {:?}", r.body);
        let line = s.process.wait_log(from, "[line truncated");
        assert!(
            line.len() < 20 * 1024,
            "{stream}: a {} byte log line",
            line.len()
        );
    }
    // A handshake line that never ends.
    let env = [format!("HOSTILE_HANDSHAKE_FLOOD={FLOOD}")];
    install_hostile(&plugins, "hostile-hs");
    register(&s, "secret", "hostile-hs", &sha, &env).await;
    let r = s
        .root(
            "POST",
            "sys/mounts/hostile-hs",
            Some(json!({"type": "hostile-hs"})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("longer than 16384 bytes"),
        "{:?}",
        r.body
    );
    let growth_kib = peak_rss_kib(pid).saturating_sub(before);
    assert!(
        growth_kib < 16 * 1024,
        "the server's peak memory grew by {growth_kib} KiB for 3 x {FLOOD} bytes of output"
    );
    assert!(
        s.process.log().iter().all(|l| l.len() < 20 * 1024),
        "a log line above the cap"
    );
}

fn entry(name: &str, sha256: String) -> lockbox_core::catalog::CatalogEntry {
    lockbox_core::catalog::CatalogEntry {
        name: name.into(),
        kind: lockbox_core::catalog::PluginType::Secret,
        version: String::new(),
        command: name.into(),
        args: vec![],
        env: vec![],
        sha256,
        multiplexing: true,
        oci: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runtime_directory_that_is_not_ours_alone_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let sha = install_plugin(dir.path(), "mock", "mock");
    let binary = dir.path().join("mock");
    let launch = |runtime_dir: PathBuf| lockbox_plugin_host::process::LaunchConfig {
        runtime_dir,
        handshake_timeout: Duration::from_secs(10),
        stop_grace: Duration::from_secs(2),
        read_grants: Vec::new(),
    };
    let e = entry("mock", sha);

    // Pre-created by someone else in a shared TMPDIR: world-writable ...
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = lockbox_plugin_host::process::launch(&e, &binary, &launch(open.clone()))
        .await
        .err()
        .expect("a 0777 runtime directory is refused");
    let msg = err.to_string();
    assert!(
        msg.contains("mode is 0777") && msg.contains("0700"),
        "{msg}"
    );
    assert!(
        std::fs::read_dir(&open).unwrap().next().is_none(),
        "used anyway"
    );

    // ... a symlink to a directory ...
    let target = dir.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = lockbox_plugin_host::process::launch(&e, &binary, &launch(link))
        .await
        .err()
        .expect("a symlinked runtime directory is refused");
    assert!(err.to_string().contains("not a directory"), "{err}");

    // ... or someone else's directory, mode 0700 (needs root to make).
    if rustix::process::geteuid().is_root() {
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let err = lockbox_plugin_host::process::launch(&e, &binary, &launch(theirs))
            .await
            .err()
            .expect("another user's runtime directory is refused");
        assert!(err.to_string().contains("owned by uid 65534"), "{err}");
    }

    // A directory that does not exist yet is created 0700 and used.
    let fresh = dir.path().join("fresh");
    let p = lockbox_plugin_host::process::launch(&e, &binary, &launch(fresh.clone()))
        .await
        .expect("a fresh runtime directory works");
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_login_floods_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_plugin(dir.path(), "userpass", "userpass");
    let r = s
        .root(
            "PUT",
            "sys/plugins/catalog/auth/userpass",
            Some(json!({
                "sha256": sha,
                "command": "userpass",
                "env": ["USERPASS_MAX_CONCURRENT_LOGINS=1", "USERPASS_MAX_QUEUED_LOGINS=1"],
            })),
        )
        .await;
    assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
    let r = s
        .root(
            "POST",
            "sys/auth/userpass",
            Some(json!({"type": "userpass"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .root(
            "PUT",
            "auth/userpass/users/alice",
            Some(json!({"password": "s3cret"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // 40 logins at once, without a token: 1 verifies, 1 waits, the rest
    // are refused at once with 503 instead of queueing argon2 work.
    let started = Instant::now();
    let logins = (0..40).map(|_| {
        s.call(
            "PUT",
            "auth/userpass/login/alice",
            None,
            Some(json!({"password": "s3cret"})),
        )
    });
    let results = futures_util::future::join_all(logins).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    let refused: Vec<_> = results.iter().filter(|r| r.status == 503).collect();
    assert_eq!(ok + refused.len(), results.len(), "other statuses: {:?}", {
        results
            .iter()
            .filter(|r| r.status != 200 && r.status != 503)
            .map(|r| (r.status, r.body.clone()))
            .collect::<Vec<_>>()
    });
    assert!(ok >= 1, "no login succeeded");
    assert!(
        !refused.is_empty(),
        "no login was refused ({ok} succeeded in {:?})",
        started.elapsed()
    );
    let text = refused[0].error_text();
    assert!(text.contains("too many logins in progress"), "{text}");
    assert!(text.contains("retry later"), "{text}");
    // Once the flood is over, logins work again.
    let r = s
        .call(
            "PUT",
            "auth/userpass/login/alice",
            None,
            Some(json!({"password": "s3cret"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Every `broker-*.sock` (a Vault plugin's per-mount host services) below
/// the plugin runtime directories in `tmp`.
fn broker_sockets(tmp: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for runtime in std::fs::read_dir(tmp).unwrap().flatten() {
        for group in std::fs::read_dir(runtime.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for f in std::fs::read_dir(group.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = f.file_name().to_string_lossy().into_owned();
                if name.starts_with("broker-") && name.ends_with(".sock") {
                    out.push(f.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// A Vault plugin's broker socket serves its mount's storage only to that
/// plugin process (SO_PEERCRED) presenting the certificate of its
/// handshake: another plugin dialing it, and a same-user process with or
/// without TLS, get nothing; the Vault plugin keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_vault_plugins_broker_answers_no_other_process() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _key) = server_with_unseal_keys_in_env(dir.path()).await;
    let plugins = dir.path().join("plugins");
    let go_sha = crate::common::install_go_plugin(&plugins, "lockbox-testplugin", "gotest");
    register(&s, "secret", "gotest", &go_sha, &[]).await;
    let hostile_sha = install_hostile(&plugins, "hostile");
    register(&s, "secret", "hostile", &hostile_sha, &[]).await;
    for (path, kind) in [("gp", "gotest"), ("hostile", "hostile")] {
        let r = s
            .root(
                "POST",
                &format!("sys/mounts/{path}"),
                Some(json!({"type": kind})),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let w = s
        .root("PUT", "gp/kv/target", Some(json!({"password": "hunter2"})))
        .await;
    assert!(w.status == 200 || w.status == 204, "{:?}", w.body);
    let mounts = s.root("GET", "sys/mounts", None).await;
    let victim_mount = mounts.body["data"]["gp/"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let brokers = broker_sockets(&dir.path().join("tmp"));
    assert_eq!(brokers.len(), 1, "{brokers:?}");

    // The hostile plugin dials the Vault plugin's broker socket.
    let r = s
        .root(
            "PUT",
            "hostile/attack",
            Some(json!({
                "sockets": brokers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "pids": [],
                "mount": victim_mount,
                "key": "kv/target",
                "outside_file": dir.path().join("none").display().to_string(),
                "outside_dir": dir.path().display().to_string(),
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let detail = assert_failed(&r.body["data"], "other_storage");
    assert!(!detail.contains("hunter2"), "{detail}");

    // This process (same user): plain gRPC, and TLS with a certificate of
    // its own, are both dropped.
    for socket in &brokers {
        let e = storage_get(socket, None, &victim_mount, "kv/target").await;
        assert!(e.is_err(), "plain gRPC on a broker socket answered: {e:?}");
        let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
        let cert = lockbox_plugin_host::vault::tls::HostCert::generate().unwrap();
        let config = cert.client_config(cert.der.clone()).unwrap();
        let tls = tokio_rustls::TlsConnector::from(config);
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let handshake =
            tokio::time::timeout(Duration::from_secs(5), tls.connect(name, stream)).await;
        assert!(
            !matches!(handshake, Ok(Ok(_))),
            "a TLS session with another process's broker"
        );
    }
    let r = s.root("GET", "gp/kv/target", None).await;
    assert_eq!(r.body["data"]["password"], "hunter2", "{:?}", r.body);
}
