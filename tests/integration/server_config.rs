//! `lockbox server --config FILE` as a process: TLS from the file, request
//! size limits, Vault's log level names, SIGHUP reloads (certificates, new
//! certificate paths, log level precedence, keys that need a restart, a
//! broken file).

use crate::common::lockbox_bin;
use crate::process::signal;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A config-file server; stderr (the log) is collected line by line.
struct Server {
    child: Child,
    addr: String,
    banner: Vec<String>,
    log: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn config_path(&self) -> PathBuf {
        self.dir.path().join("lockbox.hcl")
    }

    /// Replaces the config file.
    fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }

    fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Waits for a log line after line `from` that contains `needle`.
    fn wait_log(&self, from: usize, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let log = self.log.lock().unwrap();
                if let Some(l) = log.iter().skip(from).find(|l| l.contains(needle)) {
                    return l.clone();
                }
                assert!(
                    Instant::now() < deadline,
                    "no log line with {needle:?} after line {from}:\n{}",
                    log.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGHUP and waits until the reload has run (the last line it
    /// logs names the outcome; `marker` is one the test expects).
    fn sighup(&self, marker: &str) -> usize {
        let from = self.log_len();
        signal(&self.child, "HUP");
        self.wait_log(from, marker);
        from
    }
}

/// Writes `config` (with `{dir}` replaced by the test directory) and starts
/// `lockbox server -config FILE EXTRA`, reading stdout to the started line.
fn start(config: &str, extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lockbox.hcl");
    std::fs::write(&file, config.replace("{dir}", dir.path().to_str().unwrap())).unwrap();
    let mut child = Command::new(lockbox_bin())
        .args(["server", "-config"])
        .arg(&file)
        .args(extra)
        .env("HOME", dir.path())
        .env_remove("LOCKBOX_LOG")
        .env_remove("LOCKBOX_LOG_LEVEL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = line.trim().strip_prefix("Api Address: ") {
            addr = Some(a.to_string());
        }
        let done = line.contains("lockbox server started");
        banner.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let addr = addr.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(100));
        panic!(
            "server did not start: {banner:?}\n{}",
            log.lock().unwrap().join("\n")
        )
    });
    Server {
        child,
        addr,
        banner,
        log,
        dir,
    }
}

fn plain_config(extra: &str) -> String {
    format!(
        "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n{extra}"
    )
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
    lockbox::http::tls::install_crypto_provider();
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
fn certs(dir: &Path) -> lockbox::http::tls::DevCerts {
    lockbox::http::tls::generate_dev(dir).unwrap()
}

fn tls_config(cert: &Path, key: &Path) -> String {
    format!(
        "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\nmax_request_size = 1024\n",
        cert.display(),
        key.display()
    )
}

fn https_client(cas: &[&Path]) -> reqwest::Client {
    lockbox::http::tls::install_crypto_provider();
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
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains("max_request_size: \"1024\"") && l.contains("tls: \"enabled\"")),
        "{:#?}",
        server.banner
    );
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
    server.sighup("TLS certificate reloaded");
    wait_for_cert(&server.addr, &cas, &der(&b.cert)).await;

    // The config now names other files: they are served.
    server.write_config(&tls_config(&c.cert, &c.key));
    let from = server.sighup("TLS certificate reloaded");
    let line = server.wait_log(from, "TLS certificate reloaded");
    assert!(line.contains(c.cert.to_str().unwrap()), "{line}");
    wait_for_cert(&server.addr, &cas, &der(&c.cert)).await;

    // A path that does not exist: the error is logged, C stays.
    let missing = certs_dir.path().join("missing.pem");
    server.write_config(&tls_config(&missing, &c.key));
    server.sighup("TLS reload failed, keeping the old certificate");
    assert_eq!(peer_cert(&server.addr, &cas).await, der(&c.cert));

    // A file that does not parse: the running configuration stays.
    server.write_config("listener \"tcp\" {");
    server.sighup("reload failed, keeping the running configuration");
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
    let server = start(&plain_config("plugin_directory = \"{dir}\"\n"), &[]);
    let health = format!("{}/v1/sys/seal-status", server.addr);
    server.write_config(&format!(
        "storage \"file\" {{ path = \"{dir}/data\" }}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:1\"\n  tls_disable = true\n}}\nplugin_directory = \"{dir}/other\"\nmax_request_size = 4096\n",
        dir = server.dir.path().display()
    ));
    let from = server.sighup("max_request_size changed; restart required");
    for key in ["listener address", "storage"] {
        server.wait_log(from, &format!("{key} changed; restart required"));
    }
    // Still serving where it was, with the old (default) limit.
    let r = crate::common::client()
        .put(format!("{}/v1/sys/init", server.addr))
        .body(init_body(8192))
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 413);
    let r = crate::common::client().get(&health).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Reported again on the next reload: nothing was applied.
    server.sighup("listener address changed; restart required");
}

/// The seed walkthrough: set `plugin_directory` in the file of a running
/// server and send SIGHUP; plugins in the new directory can then be
/// registered and mounted, without a restart (and so without unsealing).
#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_new_plugin_directory() {
    use serde_json::json;
    let server = start(&plain_config("plugin_directory = \"{dir}/empty\"\n"), &[]);
    let dir = server.dir.path().to_path_buf();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    let sha = crate::common::install_plugin(&dir.join("plugins"), "mock", "my-mock");
    let client = crate::common::client();
    let call =
        async |method: &str, path: &str, token: Option<&str>, body: Option<serde_json::Value>| {
            crate::common::call(&client, &server.addr, method, path, token, body).await
        };
    let init = call(
        "PUT",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    let root = init.body["root_token"].as_str().unwrap().to_string();
    let key = init.body["keys_base64"][0].as_str().unwrap().to_string();
    let u = call("PUT", "sys/unseal", None, Some(json!({ "key": key }))).await;
    assert_eq!(u.body["sealed"], false, "{:?}", u.body);
    let register = json!({"sha256": sha, "command": "my-mock"});
    let r = call(
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

    server.write_config(&plain_config(&format!(
        "plugin_directory = \"{}\"\n",
        dir.join("plugins").display()
    )));
    let from = server.sighup("plugin_directory reloaded");
    let log = server.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .skip(from)
            .all(|l| !l.contains("restart required")),
        "{log:?}"
    );
    let r = call(
        "PUT",
        "sys/plugins/catalog/secret/my-mock",
        Some(&root),
        Some(register),
    )
    .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = call(
        "POST",
        "sys/mounts/my-mock",
        Some(&root),
        Some(json!({"type": "my-mock"})),
    )
    .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let w = call("PUT", "my-mock/k", Some(&root), Some(json!({"v": "1"}))).await;
    assert_eq!(w.status, 204, "{:?}", w.body);
    let r = call("GET", "my-mock/k", Some(&root), None).await;
    assert_eq!(r.body["data"]["v"], "1", "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_keeps_a_log_level_chosen_by_the_flag() {
    let server = start(
        &plain_config("log_level = \"error\"\n"),
        &["-log-level=debug"],
    );
    assert!(
        server.banner.iter().any(|l| l.trim() == "Log Level: debug"),
        "{:#?}",
        server.banner
    );
    server.write_config(&plain_config("log_level = \"warn\"\n"));
    let from = server.sighup("log_level of the config file not applied");
    // Debug lines still appear after the reload: a refused request.
    let _ = crate::common::client()
        .get(format!("{}/v1/secret/after-reload", server.addr))
        .send()
        .await
        .unwrap();
    let line = server.wait_log(from, "request refused");
    assert!(line.contains("DEBUG"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_request_size_zero_is_the_default_and_negative_is_unlimited() {
    // 0 (with Vault's "warning" level name): the default 32 MiB limit.
    let server = start(
        &plain_config("max_request_size = 0\nlog_level = \"warning\"\n"),
        &[],
    );
    assert!(
        server.banner.iter().any(|l| l.trim() == "Log Level: warn"),
        "{:#?}",
        server.banner
    );
    let url = format!("{}/v1/sys/init", server.addr);
    let c = crate::common::client();
    assert!(
        server.banner.iter().any(|l| l.contains(&format!(
            "max_request_size: \"{}\"",
            lockbox::http::DEFAULT_MAX_REQUEST_SIZE
        ))),
        "{:#?}",
        server.banner
    );
    let r = c.put(&url).body(init_body(2048)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    drop(server);

    // Negative (and "err"): no limit at all.
    let server = start(
        &plain_config("max_request_size = -1\nlog_level = \"err\"\n"),
        &[],
    );
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains("max_request_size: \"unlimited\"")),
        "{:#?}",
        server.banner
    );
    let url = format!("{}/v1/sys/init", server.addr);
    let r = c
        .put(&url)
        .body(init_body(lockbox::http::DEFAULT_MAX_REQUEST_SIZE + 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // An unknown level in the file names the accepted ones.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.hcl");
    std::fs::write(&file, plain_config("log_level = \"bogus\"\n")).unwrap();
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
