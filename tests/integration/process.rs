//! The `lockbox server` process: dev mode banner and token file, TLS,
//! signals. Config-file servers are in `server_config`.

use crate::common::{
    ConfigServer, Spawned, call, client, inmem_config, lockbox_bin, lockbox_cli, signal,
};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A dev server; dereferences to the process (`addr`, `banner`, `child`).
struct Dev {
    server: Spawned,
    ca: Option<String>,
    root: String,
    unseal_key: String,
    /// HOME of the server (where it stores the CLI's token file).
    home: tempfile::TempDir,
}

impl std::ops::Deref for Dev {
    type Target = Spawned;
    fn deref(&self) -> &Spawned {
        &self.server
    }
}

impl std::ops::DerefMut for Dev {
    fn deref_mut(&mut self) -> &mut Spawned {
        &mut self.server
    }
}

fn start_dev(extra: &[&str]) -> Dev {
    let mut args = vec!["--dev-listen-address", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    spawn_dev(&args, &[])
}

/// `lockbox server --dev ARGS` with HOME in a fresh temporary directory,
/// none of the dev environment variables but `env`; reads the banner up to
/// "Development mode should NOT ...".
fn spawn_dev(args: &[&str], env: &[(&str, &str)]) -> Dev {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(lockbox_bin());
    cmd.args(["server", "--dev"])
        .args(args)
        .env("HOME", home.path());
    for var in [
        "LOCKBOX_DEV_ROOT_TOKEN_ID",
        "VAULT_DEV_ROOT_TOKEN_ID",
        "LOCKBOX_DEV_LISTEN_ADDRESS",
        "VAULT_DEV_LISTEN_ADDRESS",
        "LOCKBOX_LOG",
        "LOCKBOX_LOG_LEVEL",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let server = Spawned::start(cmd, "Development mode should NOT");
    let value = |prefix: &str| {
        server
            .banner_value(prefix)
            .unwrap_or_else(|| panic!("banner has {prefix:?}: {:?}", server.banner))
            .to_string()
    };
    let (root, unseal_key) = (value("Root Token: "), value("Unseal Key: "));
    let ca = server.banner.iter().find_map(|l| {
        l.trim()
            .strip_prefix("$ export VAULT_CACERT='")
            .map(|c| c.trim_end_matches('\'').to_string())
    });
    Dev {
        server,
        ca,
        root,
        unseal_key,
        home,
    }
}

/// Position of the first banner line for which `f` holds.
fn line_index(banner: &[String], f: impl Fn(&str) -> bool) -> usize {
    banner
        .iter()
        .position(|l| f(l))
        .unwrap_or_else(|| panic!("line not found in banner:\n{}", banner.join("\n")))
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_banner_follows_vault_and_its_unseal_key_unseals() {
    // Vault's environment variables choose the root token and the address.
    let dev = spawn_dev(
        &[],
        &[
            ("VAULT_DEV_ROOT_TOKEN_ID", "vault-root"),
            ("VAULT_DEV_LISTEN_ADDRESS", "127.0.0.1:0"),
        ],
    );
    assert_eq!(dev.root, "vault-root");
    assert!(dev.addr.starts_with("http://127.0.0.1:"), "{}", dev.addr);
    // Vault's order: configuration, "started", the dev warning, key and
    // token, the production warning last.
    let b = &dev.banner;
    let order = [
        line_index(b, |l| l == "==> lockbox server configuration:"),
        line_index(b, |l| l.trim() == "Storage: inmem"),
        line_index(b, |l| {
            l == "==> lockbox server started! Log data will stream in below:"
        }),
        line_index(b, |l| l.starts_with("WARNING! dev mode is enabled!")),
        line_index(b, |l| l.starts_with("Unseal Key: ")),
        line_index(b, |l| l.starts_with("Root Token: ")),
        line_index(b, |l| l.starts_with("Development mode should NOT")),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}\n{b:#?}");
    assert!(
        b.iter().any(|l| l.contains("already"))
            && b.iter().any(|l| l.contains("authenticated to the CLI")),
        "{b:#?}"
    );

    // The `secret/` kv mount exists and works.
    let c = client();
    let root = Some(dev.root.as_str());
    let mounts = call(&c, &dev.addr, "GET", "sys/mounts", root, None).await;
    assert_eq!(mounts.body["secret/"]["type"], "kv", "{:?}", mounts.body);
    let r = call(
        &c,
        &dev.addr,
        "PUT",
        "secret/kept",
        root,
        Some(json!({"v": "across a seal"})),
    )
    .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    // Seal over HTTP, then unseal with the printed key.
    let r = call(&c, &dev.addr, "PUT", "sys/seal", root, None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = call(&c, &dev.addr, "GET", "sys/seal-status", None, None).await;
    assert_eq!(r.body["sealed"], true, "{:?}", r.body);
    let r = call(&c, &dev.addr, "GET", "secret/kept", root, None).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    let r = call(
        &c,
        &dev.addr,
        "PUT",
        "sys/unseal",
        None,
        Some(json!({"key": dev.unseal_key})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["sealed"], false, "{:?}", r.body);
    let r = call(&c, &dev.addr, "GET", "secret/kept", root, None).await;
    assert_eq!(r.body["data"]["v"], "across a seal", "{:?}", r.body);
}

#[test]
fn dev_stores_the_root_token_for_the_cli() {
    let dev = start_dev(&["--dev-root-token-id", "stored-root"]);
    let file = dev.home.path().join(".lockbox-token");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "stored-root");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "token file readable by others: {mode:o}");
    // No token variable: the CLI uses the stored token.
    let out = lockbox_cli(&dev.addr, dev.home.path(), &["token", "lookup"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("id") && l.trim_end().ends_with("stored-root")),
        "{stdout}"
    );

    // Vault's single-dash form of --dev-no-store-token: nothing is written,
    // the banner does not claim the CLI is authenticated, the CLI has no token.
    let dev = start_dev(&["-dev-no-store-token", "-dev-root-token-id=unstored"]);
    assert!(!dev.home.path().join(".lockbox-token").exists());
    assert!(
        std::fs::read_dir(dev.home.path()).unwrap().next().is_none(),
        "HOME is not empty"
    );
    assert!(
        !dev.banner
            .iter()
            .any(|l| l.contains("authenticated to the CLI")),
        "{:#?}",
        dev.banner
    );
    let out = lockbox_cli(&dev.addr, dev.home.path(), &["token", "lookup"]);
    assert!(!out.status.success());
}

#[test]
fn log_level_flag_is_validated_and_accepts_vault_names() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(lockbox_bin())
        .args([
            "server",
            "-dev",
            "-dev-listen-address=127.0.0.1:0",
            "-log-level=bogus",
        ])
        .env("HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Refused at once, not served with silent logging.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started with --log-level bogus");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"bogus\"")
            && ["trace", "debug", "info", "warn", "error"]
                .iter()
                .all(|l| stderr.contains(l)),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("server started"));
    // Vault's (hclog's) names work, shown as lockbox's level.
    for (given, shown) in [("warning", "warn"), ("err", "error"), ("notice", "info")] {
        let dev = start_dev(&["--dev-no-store-token", "--log-level", given]);
        assert!(
            dev.banner
                .iter()
                .any(|l| l.trim() == format!("Log Level: {shown}")),
            "{given}: {:#?}",
            dev.banner
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_tls_serves_https_with_a_verifiable_ca() {
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev(&[
        "--dev-tls",
        "--dev-tls-cert-dir",
        dir.path().to_str().unwrap(),
        "--dev-root-token-id",
        "root",
    ]);
    assert!(dev.addr.starts_with("https://127.0.0.1:"), "{}", dev.addr);
    assert_eq!(dev.root, "root");
    let ca = std::fs::read(dev.ca.as_ref().expect("CA path printed")).unwrap();
    lockbox_http::tls::install_crypto_provider();
    let cert = reqwest::Certificate::from_pem(&ca).unwrap();
    let https = reqwest::Client::builder()
        .tls_certs_only([cert])
        .build()
        .unwrap();
    let r = https
        .get(format!("{}/v1/sys/mounts", dev.addr))
        .header("X-Vault-Token", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Without the CA the certificate is not trusted.
    assert!(
        client()
            .get(format!("{}/v1/sys/health", dev.addr))
            .send()
            .await
            .is_err()
    );
    // Plain HTTP to the TLS port does not work.
    let plain = dev.addr.replace("https://", "http://");
    let r = client().get(format!("{plain}/v1/sys/health")).send().await;
    assert!(r.is_err() || r.unwrap().status() != 200);
    // The key file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "key.pem is readable by others: {mode:o}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_in_flight_request_finish_and_refuses_new_ones() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut dev = start_dev(&["--dev-no-store-token", "--dev-root-token-id", "root"]);
    let host = dev.addr.trim_start_matches("http://").to_string();
    // A write whose chunked body arrives slowly: half now, half after SIGTERM.
    let mut slow = tokio::net::TcpStream::connect(&host).await.unwrap();
    slow.write_all(
        b"PUT /v1/secret/slow HTTP/1.1\r\nHost: lockbox\r\nX-Vault-Token: root\r\n\
          Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
          6\r\n{\"v\": \r\n",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&dev.child, "TERM");
    // The listener closes at once: new connections are refused while the
    // in-flight request drains.
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(&host).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        dev.child.try_wait().unwrap().is_none(),
        "exited before the in-flight request finished"
    );
    slow.write_all(b"6\r\n\"done\"\r\n1\r\n}\r\n0\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 204"), "{response}");
    let status = dev.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
    assert!(
        client()
            .get(format!("{}/v1/sys/health", dev.addr))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_log_level() {
    let mut server = ConfigServer::start(&inmem_config("log_level = \"info\"\n"));
    server.write_config(&inmem_config("log_level = \"debug\"\n"));
    signal(&server.process.child, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    // A debug-level line appears only after the reload: a refused request.
    let _ = client()
        .get(format!("{}/v1/nope", server.addr))
        .send()
        .await;
    std::thread::sleep(Duration::from_millis(300));
    signal(&server.process.child, "TERM");
    server.process.wait_exit(Duration::from_secs(15));
    let stderr = server.process.log().join("\n");
    assert!(stderr.contains("log level reloaded"), "{stderr}");
    assert!(stderr.contains("DEBUG"), "{stderr}");
}
