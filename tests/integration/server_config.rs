//! `lockbox server --config FILE` as a process: TLS from the file, request
//! size limits, Vault's log level names, SIGHUP reloads (certificates, new
//! certificate paths, log level precedence, keys that need a restart, a
//! broken file).

use crate::common::{ConfigServer, inmem_config, lockbox_bin};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Writes `config` (with `{dir}` replaced by the test directory) and starts
/// `lockbox server -config FILE EXTRA`; its log is collected.
fn start(config: &str, extra: &[&str]) -> ConfigServer {
    extra
        .iter()
        .fold(ConfigServer::builder(config), |b, arg| b.arg(arg))
        .start()
}

/// A JSON body of at least `size` bytes for `sys/init`.
fn init_body(size: usize) -> String {
    format!(
        "{{\"secret_shares\": 1, \"secret_threshold\": 1, \"pad\": \"{}\"}}",
        "x".repeat(size)
    )
}

fn der(pem_file: &Path) -> Vec<u8> {
    let pem = std::fs::read(pem_file).unwrap();
    rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .expect("a certificate")
        .unwrap()
        .to_vec()
}

/// The certificate the server presents to a new connection, verified
/// against any of `cas`.
async fn peer_cert(addr: &str, cas: &[&Path]) -> Vec<u8> {
    lockbox_http::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots.add(der(ca).into()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let host = addr.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    tls.get_ref()
        .1
        .peer_certificates()
        .expect("peer certificate")[0]
        .to_vec()
}

/// Waits until new connections get `want`.
async fn wait_for_cert(addr: &str, cas: &[&Path], want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while peer_cert(addr, cas).await != want {
        assert!(Instant::now() < deadline, "certificate not swapped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A CA and a leaf for 127.0.0.1 (CA:FALSE) in `dir`: ca.pem, cert.pem, key.pem.
fn certs(dir: &Path) -> lockbox_http::tls::DevCerts {
    lockbox_http::tls::generate_dev(dir).unwrap()
}

/// TLS from `cert` and `key`, requests up to 1 KiB.
fn tls_config(cert: &Path, key: &Path) -> String {
    crate::common::tls_config(cert, key) + "max_request_size = 1024\n"
}

fn https_client(cas: &[&Path]) -> reqwest::Client {
    lockbox_http::tls::install_crypto_provider();
    let certs = cas
        .iter()
        .map(|ca| reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
    reqwest::Client::builder()
        .tls_certs_only(certs)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn config_file_tls_with_a_request_size_limit() {
    let certs_dir = tempfile::tempdir().unwrap();
    let a = certs(certs_dir.path());
    let server = start(&tls_config(&a.cert, &a.key), &[]);
    assert!(
        server.addr.starts_with("https://127.0.0.1:"),
        "{}",
        server.addr
    );
    server.process.assert_banner(|l| {
        l.contains("max_request_size: \"1024\"") && l.contains("tls: \"enabled\"")
    });
    assert_eq!(peer_cert(&server.addr, &[&a.ca]).await, der(&a.cert));
    let https = https_client(&[&a.ca]);
    let put = |body: String| {
        https
            .put(format!("{}/v1/sys/init", server.addr))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    // 2 KB is over the limit: 413 with Vault's error envelope.
    let r = put(init_body(2048)).await.unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["errors"][0].as_str().unwrap().contains("1024"),
        "{body}"
    );
    // A small body is served.
    let r = put(init_body(10)).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_swaps_the_certificate_and_follows_a_new_path() {
    let certs_dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        certs(&certs_dir.path().join("a")),
        certs(&certs_dir.path().join("b")),
        certs(&certs_dir.path().join("c")),
    );
    let cas = [a.ca.as_path(), b.ca.as_path(), c.ca.as_path()];
    // The server reads live/cert.pem and live/key.pem.
    let live = certs_dir.path().join("live");
    std::fs::create_dir(&live).unwrap();
    let (live_cert, live_key) = (live.join("cert.pem"), live.join("key.pem"));
    std::fs::copy(&a.cert, &live_cert).unwrap();
    std::fs::copy(&a.key, &live_key).unwrap();
    let server = start(&tls_config(&live_cert, &live_key), &[]);
    assert_eq!(peer_cert(&server.addr, &cas).await, der(&a.cert));

    // The files are replaced in place (as cert-manager or certbot do).
    std::fs::copy(&b.cert, &live_cert).unwrap();
    std::fs::copy(&b.key, &live_key).unwrap();
    server.process.sighup("TLS certificate reloaded");
    wait_for_cert(&server.addr, &cas, &der(&b.cert)).await;

    // The config now names other files: they are served.
    server.write_config(&tls_config(&c.cert, &c.key));
    let from = server.process.sighup("TLS certificate reloaded");
    let line = server.process.wait_log(from, "TLS certificate reloaded");
    assert!(line.contains(c.cert.to_str().unwrap()), "{line}");
    wait_for_cert(&server.addr, &cas, &der(&c.cert)).await;

    // A path that does not exist: the error is logged, C stays.
    let missing = certs_dir.path().join("missing.pem");
    server.write_config(&tls_config(&missing, &c.key));
    server
        .process
        .sighup("TLS reload failed, keeping the old certificate");
    assert_eq!(peer_cert(&server.addr, &cas).await, der(&c.cert));

    // A file that does not parse: the running configuration stays.
    server.write_config("listener \"tcp\" {");
    server
        .process
        .sighup("reload failed, keeping the running configuration");
    assert_eq!(peer_cert(&server.addr, &cas).await, der(&c.cert));
    let r = https_client(&cas)
        .get(format!("{}/v1/sys/seal-status", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_names_the_keys_that_need_a_restart() {
    let server = start(&inmem_config("plugin_directory = \"{dir}\"\n"), &[]);
    let health = format!("{}/v1/sys/seal-status", server.addr);
    server.write_config(&format!(
        "storage \"file\" {{ path = \"{dir}/data\" }}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:1\"\n  tls_disable = true\n}}\nplugin_directory = \"{dir}/other\"\nmax_request_size = 4096\n",
        dir = server.dir.display()
    ));
    let from = server
        .process
        .sighup("listener address changed; restart required");
    server
        .process
        .wait_log(from, "storage changed; restart required");
    server.process.wait_log(from, "max_request_size reloaded");
    // Still serving where it was; the new limit applies at once.
    let r = crate::common::client()
        .put(format!("{}/v1/sys/init", server.addr))
        .body(init_body(8192))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = crate::common::client().get(&health).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The keys that need a restart are reported again on the next reload;
    // the applied ones are not.
    let from = server
        .process
        .sighup("listener address changed; restart required");
    let log = server.process.log();
    assert!(
        log.iter()
            .skip(from)
            .all(|l| !l.contains("max_request_size") && !l.contains("plugin_directory")),
        "{log:?}"
    );
}

/// The seed walkthrough: set `plugin_directory` in the file of a running
/// server and send SIGHUP; plugins in the new directory can then be
/// registered and mounted, without a restart (and so without unsealing).
#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_new_plugin_directory() {
    use serde_json::json;
    let mut server = start(&inmem_config("plugin_directory = \"{dir}/empty\"\n"), &[]);
    let dir = server.dir.clone();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    let sha = crate::common::install_plugin(&dir.join("plugins"), "mock", "my-mock");
    let (root, _) = server.init_unseal(1, 1).await;
    let register = json!({"sha256": sha, "command": "my-mock"});
    let r = server
        .call(
            "PUT",
            "sys/plugins/catalog/secret/my-mock",
            Some(&root),
            Some(register.clone()),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("not found in plugin_directory"),
        "{:?}",
        r.body
    );

    server.write_config(&inmem_config(&format!(
        "plugin_directory = \"{}\"\n",
        dir.join("plugins").display()
    )));
    let from = server.process.sighup("plugin_directory reloaded");
    let log = server.process.log();
    assert!(
        log.iter()
            .skip(from)
            .all(|l| !l.contains("restart required")),
        "{log:?}"
    );
    let r = server
        .call(
            "PUT",
            "sys/plugins/catalog/secret/my-mock",
            Some(&root),
            Some(register),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = server
        .call(
            "POST",
            "sys/mounts/my-mock",
            Some(&root),
            Some(json!({"type": "my-mock"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let w = server
        .call("PUT", "my-mock/k", Some(&root), Some(json!({"v": "1"})))
        .await;
    assert_eq!(w.status, 204, "{:?}", w.body);
    let r = server.call("GET", "my-mock/k", Some(&root), None).await;
    assert_eq!(r.body["data"]["v"], "1", "{:?}", r.body);
}

/// A reloaded level takes Vault's names as startup does: `notice` is INFO
/// (not a target name that would silence everything else).
#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_vault_level_name() {
    let server = start(&inmem_config("log_level = \"error\"\n"), &[]);
    server.write_config(&inmem_config("log_level = \"notice\"\n"));
    // Logged at INFO once the new level is in place.
    let from = server.process.sighup("log level reloaded");
    let line = server.process.wait_log(from, "log level reloaded");
    assert!(line.contains("INFO"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_keeps_a_log_level_chosen_by_the_flag() {
    let server = start(
        &inmem_config("log_level = \"error\"\n"),
        &["-log-level=debug"],
    );
    server
        .process
        .assert_banner(|l| l.trim() == "Log Level: debug");
    server.write_config(&inmem_config("log_level = \"warn\"\n"));
    let from = server
        .process
        .sighup("log_level of the config file not applied");
    // Debug lines still appear after the reload: a refused request.
    let _ = crate::common::client()
        .get(format!("{}/v1/secret/after-reload", server.addr))
        .send()
        .await
        .unwrap();
    let line = server.process.wait_log(from, "request refused");
    assert!(line.contains("DEBUG"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_request_size_zero_is_the_default_and_negative_is_unlimited() {
    // 0 (with Vault's "warning" level name): the default 32 MiB limit.
    let server = start(
        &inmem_config("max_request_size = 0\nlog_level = \"warning\"\n"),
        &[],
    );
    server
        .process
        .assert_banner(|l| l.trim() == "Log Level: warn");
    let url = format!("{}/v1/sys/init", server.addr);
    let c = crate::common::client();
    server.process.assert_banner(|l| {
        l.contains(&format!(
            "max_request_size: \"{}\"",
            lockbox_http::DEFAULT_MAX_REQUEST_SIZE
        ))
    });
    let r = c.put(&url).body(init_body(2048)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    drop(server);

    // Negative (and "err"): no limit at all.
    let server = start(
        &inmem_config("max_request_size = -1\nlog_level = \"err\"\n"),
        &[],
    );
    server
        .process
        .assert_banner(|l| l.contains("max_request_size: \"unlimited\""));
    let url = format!("{}/v1/sys/init", server.addr);
    let r = c
        .put(&url)
        .body(init_body(lockbox_http::DEFAULT_MAX_REQUEST_SIZE + 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // An unknown level in the file names the accepted ones.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.hcl");
    std::fs::write(&file, inmem_config("log_level = \"bogus\"\n")).unwrap();
    let out = Command::new(lockbox_bin())
        .args(["server", "-config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("log_level") && stderr.contains("\"bogus\"") && stderr.contains("warn"),
        "{stderr}"
    );
}
