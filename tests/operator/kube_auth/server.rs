//! A real `lockbox server -dev` process for the Kubernetes auth tests, and
//! a Vault-API client for it (curl, like the rest of this test binary).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `lockbox server -dev` with root token `root` and a plugin directory;
/// killed (with its plugins, through their parent-death signal) on drop.
pub struct DevServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    log: PathBuf,
}

/// An API answer: status and JSON body (`Null` when the body is empty or
/// not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: serde_json::Value,
}

impl DevServer {
    /// Starts the dev server on a free loopback port with `plugin_dir` as
    /// `-dev-plugin-dir`; its log goes to `work/lockbox.log`. Returns once
    /// it prints Vault's "server started" line.
    pub fn start(plugin_dir: &Path, work: &Path) -> DevServer {
        let log = work.join("lockbox.log");
        let log_file = std::fs::File::create(&log).expect("create the server log file");
        let home = work.join("home");
        std::fs::create_dir_all(&home).expect("create HOME for the server");
        let mut child = Command::new(env!("CARGO_BIN_EXE_lockbox"))
            .args([
                "server",
                "-dev",
                "-dev-root-token-id=root",
                "-dev-listen-address=127.0.0.1:0",
                "-dev-no-store-token",
                "-log-level=debug",
            ])
            .arg(format!("-dev-plugin-dir={}", plugin_dir.display()))
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start lockbox server -dev");
        let stdout = child.stdout.take().expect("the server's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut addr = None;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(a) = line.trim().strip_prefix("Api Address: ") {
                        addr = Some(a.to_string());
                    }
                    if line.contains("server started") {
                        break;
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "lockbox server -dev did not start ({e}):\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        let addr = addr.unwrap_or_else(|| panic!("no Api Address in the dev server's banner"));
        DevServer { child, addr, log }
    }

    /// The server's log so far (plugin output included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A Vault-API call with `token` (none when empty).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> Resp {
        let url = format!("{}/v1/{path}", self.addr);
        let header = format!("X-Vault-Token: {token}");
        let mut args = vec![
            "-s",
            "--max-time",
            "30",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ];
        if !token.is_empty() {
            args.extend_from_slice(&["-H", &header]);
        }
        let data = body.map(|b| b.to_string());
        if let Some(d) = &data {
            args.extend_from_slice(&["-H", "Content-Type: application/json", "-d", d]);
        }
        args.push(&url);
        let out = Command::new("curl").args(&args).output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        Resp {
            status: code.trim().parse().unwrap_or(0),
            body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        }
    }

    /// A call with the root token that must succeed (200 or 204).
    pub fn root_ok(&self, method: &str, path: &str, body: serde_json::Value) -> Resp {
        let r = self.call(method, path, "root", Some(&body));
        assert!(
            r.status == 200 || r.status == 204,
            "{method} {path} with the root token: {} {}\n--- server log\n{}",
            r.status,
            r.body,
            self.log()
        );
        r
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
