//! Server processes: any server binary started by a test and read up to its
//! banner ([`Spawned`]), and `lockbox server -config FILE` with a client for
//! its API ([`ConfigServer`]).

use super::{Api, lockbox_bin};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a server may take to print its banner.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A server process; killed and reaped on drop. Its stdout is read up to
/// the banner's `ready` line (later lines are drained); its stderr (the
/// log) is collected line by line.
pub struct Spawned {
    pub child: Child,
    /// The banner's `Api Address`.
    pub addr: String,
    /// Stdout up to and including the `ready` line.
    pub banner: Vec<String>,
    log: Arc<Mutex<Vec<String>>>,
    log_reader: Option<JoinHandle<()>>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Spawned {
    /// Runs `cmd` (its stdout and stderr are piped here) and returns once a
    /// stdout line contains `ready`; panics, with the output so far, if the
    /// process exits or is slow before that or prints no `Api Address`.
    pub fn start(cmd: Command, ready: &str) -> Self {
        Self::try_start(cmd, ready).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Spawned::start`], returning the failure instead (the process is
    /// gone by then).
    pub fn try_start(mut cmd: Command, ready: &str) -> Result<Self, String> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stderr, sink) = (child.stderr.take().expect("stderr"), log.clone());
        let log_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Spawned {
            child,
            addr: String::new(),
            banner: Vec::new(),
            log,
            log_reader: Some(log_reader),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let mut addr = None;
        loop {
            let line = match lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => line,
                Err(e) => return Err(server.fail(&format!("no line with {ready:?} ({e})"))),
            };
            if let Some(a) = line.trim().strip_prefix("Api Address: ") {
                addr = Some(a.to_string());
            }
            let done = line.contains(ready);
            server.banner.push(line);
            if done {
                break;
            }
        }
        match addr {
            Some(addr) => server.addr = addr,
            None => return Err(server.fail("no Api Address in the banner")),
        }
        Ok(server)
    }

    /// Stops the process; describes `what` went wrong with its output.
    fn fail(&mut self, what: &str) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        format!(
            "server did not start: {what}\n--- stdout\n{}\n--- stderr\n{}",
            self.banner.join("\n"),
            self.log().join("\n")
        )
    }

    /// The value of the first banner line starting with `prefix`.
    pub fn banner_value(&self, prefix: &str) -> Option<&str> {
        self.banner.iter().find_map(|l| l.strip_prefix(prefix))
    }

    /// Asserts that some banner line satisfies `f`.
    pub fn assert_banner(&self, f: impl Fn(&str) -> bool) {
        assert!(self.banner.iter().any(|l| f(l)), "{:#?}", self.banner);
    }

    /// The stderr lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Waits for a log line after line `from` that contains `needle`.
    pub fn wait_log(&self, from: usize, needle: &str) -> String {
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
    /// logs names the outcome; `marker` is one the test expects); returns
    /// the log position before the signal.
    pub fn sighup(&self, marker: &str) -> usize {
        let from = self.log_len();
        signal(&self.child, "HUP");
        self.wait_log(from, marker);
        from
    }

    /// Waits for the process to exit; then the log is complete.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let status = wait_exit(&mut self.child, within);
        if let Some(reader) = self.log_reader.take() {
            reader.join().expect("stderr reader");
        }
        status
    }
}

/// Sends signal `sig` (a name such as "HUP") to `child`.
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
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

/// The `lockbox` CLI with nothing from the environment but HOME and the
/// address (no token variable), as a user in a fresh shell.
pub fn lockbox_cli(addr: &str, home: &Path, args: &[&str]) -> Output {
    Command::new(lockbox_bin())
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("VAULT_ADDR", addr)
        .output()
        .unwrap()
}

/// File storage in `data` (`{dir}` may stand for the server's directory),
/// plain HTTP on 127.0.0.1, port 0.
pub fn file_config(data: &str) -> String {
    format!(
        "storage \"file\" {{ path = \"{data}\" }}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n"
    )
}

/// In-memory storage, plain HTTP on 127.0.0.1, port 0, then `extra`.
pub fn inmem_config(extra: &str) -> String {
    format!(
        "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n{extra}"
    )
}

/// In-memory storage, TLS from `cert` and `key` on 127.0.0.1, port 0.
pub fn tls_config(cert: &Path, key: &Path) -> String {
    format!(
        "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
        cert.display(),
        key.display()
    )
}

/// `lockbox server -config DIR/lockbox.hcl` with HOME = DIR and no
/// LOCKBOX_LOG / LOCKBOX_LOG_LEVEL; dereferences to a client for its API
/// (`call`, `root`, `init_unseal`, ...). Killed on drop, before its
/// temporary directory (if it made one) is removed.
pub struct ConfigServer {
    pub process: Spawned,
    api: Api,
    /// The directory of the config file, `{dir}` in its template.
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl std::ops::Deref for ConfigServer {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl std::ops::DerefMut for ConfigServer {
    fn deref_mut(&mut self) -> &mut Api {
        &mut self.api
    }
}

/// Options for [`ConfigServer`]; [`ConfigServerBuilder::start`] runs it.
pub struct ConfigServerBuilder {
    config: String,
    dir: Option<PathBuf>,
    wrapper: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    env_clear: bool,
}

impl ConfigServer {
    /// In a fresh temporary directory, with `config` (`{dir}` replaced).
    pub fn start(config: &str) -> Self {
        Self::builder(config).start()
    }

    pub fn builder(config: &str) -> ConfigServerBuilder {
        ConfigServerBuilder {
            config: config.to_string(),
            dir: None,
            wrapper: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            env_clear: false,
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("lockbox.hcl")
    }

    /// Replaces the config file (as is: no `{dir}`).
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }
}

impl ConfigServerBuilder {
    /// Uses `dir` (which the test keeps) instead of a temporary directory.
    pub fn dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Runs the server behind this command (e.g. `setpriv ...`).
    pub fn wrapper(mut self, command: &[&str]) -> Self {
        self.wrapper = command.iter().map(|s| s.to_string()).collect();
        self
    }

    /// An argument after `server -config FILE`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Starts from an empty environment (HOME is still set).
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self
    }

    /// Writes the config and starts the server; returns once its banner
    /// says it started.
    pub fn start(self) -> ConfigServer {
        let (tmp, dir) = match self.dir {
            Some(dir) => (None, dir),
            None => {
                let tmp = tempfile::tempdir().expect("tempdir");
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        let file = dir.join("lockbox.hcl");
        let config = self
            .config
            .replace("{dir}", dir.to_str().expect("utf-8 dir"));
        std::fs::write(&file, config).expect("write config");
        let mut cmd = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(lockbox_bin());
                c
            }
            None => Command::new(lockbox_bin()),
        };
        cmd.args(["server", "-config"]).arg(&file).args(&self.args);
        if self.env_clear {
            cmd.env_clear();
        }
        cmd.env("HOME", &dir)
            .env_remove("LOCKBOX_LOG")
            .env_remove("LOCKBOX_LOG_LEVEL")
            .envs(self.env);
        let process = Spawned::start(cmd, "lockbox server started");
        let api = Api::new(&process.addr);
        ConfigServer {
            process,
            api,
            dir,
            _tmp: tmp,
        }
    }
}
