//! The `lockbox server` process: dev mode banner, TLS, signals.

use crate::common::{client, lockbox_bin};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Dev {
    child: Child,
    addr: String,
    ca: Option<String>,
    root: String,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dev(extra: &[&str]) -> Dev {
    let mut child = Command::new(lockbox_bin())
        .args(["server", "--dev", "--dev-listen-address", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut ca, mut root) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = line.trim().strip_prefix("Api Address: ") {
            addr = Some(a.to_string());
        }
        if let Some(c) = line.trim().strip_prefix("$ export VAULT_CACERT='") {
            ca = Some(c.trim_end_matches('\'').to_string());
        }
        if let Some(r) = line.strip_prefix("Root Token: ") {
            root = Some(r.to_string());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Dev {
        child,
        addr: addr.expect("banner has Api Address"),
        ca,
        root: root.expect("banner has Root Token"),
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not exit in {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
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
    lockbox::http::tls::install_crypto_provider();
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
async fn sigterm_shuts_down_gracefully() {
    let mut dev = start_dev(&[]);
    let r = client()
        .get(format!("{}/v1/sys/health", dev.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    signal(&dev.child, "TERM");
    let status = wait_exit(&mut dev.child, Duration::from_secs(15));
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
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("c.hcl");
    let write = |level: &str| {
        std::fs::write(
            &config,
            format!(
                "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n address = \"127.0.0.1:{port}\"\n tls_disable = true\n}}\nlog_level = \"{level}\"\n"
            ),
        )
        .unwrap()
    };
    write("info");
    let mut child = Command::new(lockbox_bin())
        .args(["server", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in out.by_ref() {
        if line.unwrap().contains("lockbox server started") {
            break;
        }
    }
    write("debug");
    signal(&child, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    // A debug-level line appears only after the reload: a refused request.
    let _ = client()
        .get(format!("http://127.0.0.1:{port}/v1/nope"))
        .send()
        .await;
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    wait_exit(&mut child, Duration::from_secs(15));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("log level reloaded"), "{stderr}");
    assert!(stderr.contains("DEBUG"), "{stderr}");
}
