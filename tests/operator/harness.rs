//! Real components for the operator tests: one kube-apiserver + etcd per
//! test binary (started by `tests/harness/kube-up.sh`, stopped by its
//! watchdog when this process exits; the current release from
//! `tests/harness/install-kube-current.sh`, or the directory in
//! `LOCKBOX_KUBE_BIN`), kubectl (`tests/harness/install-kube.sh`), the
//! kstatus verdicts of `sigs.k8s.io/cli-utils` ([`kstatus`]), and
//! `lockbox operator run`
//! as a local process authenticated as the plain user
//! `lockbox-operator-test`, bound to the Helm chart's ClusterRole and Role as
//! rendered in `deploy/lockbox.yaml` (so the chart's RBAC is exercised).
//!
//! Scenarios run one at a time ([`Scenario::start`] takes a global lock):
//! catalog entries are cluster-scoped and every operator reconciles every
//! entry, so two operators at once would fight. Each scenario has its own
//! namespaces, data directory and plugin directory; its objects carry the
//! label `lockbox-test=<scenario>` and are removed (finalizers stripped) when
//! the scenario ends, even if it failed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The shared API server.
pub struct Cluster {
    /// kube-up.sh's directory (kubeconfig, kubeconfig-operator, env).
    pub dir: PathBuf,
    /// Directory with kubectl and helm.
    pub bin: PathBuf,
    /// Directory with the kube-apiserver and etcd that kube-up.sh runs.
    pub kube_bin: PathBuf,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run_script(script: &str, args: &[&str]) -> Result<String, String> {
    run_script_env(script, args, &[])
}

/// `kube-up.sh DIR` with the binaries in `kube_bin`.
fn kube_up(dir: &Path, kube_bin: &Path) -> Result<String, String> {
    run_script_env(
        "kube-up.sh",
        &[&dir.to_string_lossy()],
        &[("LOCKBOX_KUBE_BIN", kube_bin)],
    )
}

fn run_script_env(script: &str, args: &[&str], env: &[(&str, &Path)]) -> Result<String, String> {
    let out = Command::new("bash")
        .arg(repo().join("tests/harness").join(script))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {script}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{script} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The one `kind` (ClusterRole or Role) in the chart's rendered manifests
/// (`deploy/lockbox.yaml`, from `scripts/render-deploy.sh`): its name, and
/// the object as JSON without `metadata.namespace` (so it can be applied
/// into any namespace).
pub fn chart_rbac(kind: &str) -> (String, String) {
    let path = repo().join("deploy/lockbox.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    let mut found: Vec<serde_json::Value> = docs
        .into_iter()
        .filter(|d| d["kind"] == kind && d["apiVersion"] == "rbac.authorization.k8s.io/v1")
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{} must hold exactly one {kind}",
        path.display()
    );
    let mut doc = found.remove(0);
    if let Some(meta) = doc["metadata"].as_object_mut() {
        meta.remove("namespace");
    }
    let name = doc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (name, doc.to_string())
}

/// Removes the state directories of earlier runs whose API server is gone
/// (the shared cluster's directory outlives its test process).
fn remove_stale_clusters() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in dir.flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .starts_with("lockbox-operator-kube-")
        {
            continue;
        }
        let running = std::fs::read_to_string(e.path().join("kube-apiserver.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_some_and(pid_alive);
        if !running {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The cluster, started on first use. Panics with the reason if the harness
/// cannot start: nothing is skipped silently.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    let c = CLUSTER.get_or_init(|| {
        remove_stale_clusters();
        let bin = run_script("install-kube.sh", &[])?;
        let bin = PathBuf::from(bin.lines().last().unwrap_or_default());
        // kube-up.sh finds the build itself; resolved once here so every
        // API server of this process runs the same binaries.
        let kube_bin = match std::env::var_os("LOCKBOX_KUBE_BIN") {
            Some(d) => PathBuf::from(d),
            None => {
                let d = run_script("install-kube-current.sh", &[])?;
                PathBuf::from(d.lines().last().unwrap_or_default())
            }
        };

        let dir = tempfile::Builder::new()
            .prefix("lockbox-operator-kube-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?
            .keep();
        // The watchdog's owner is this test process: the servers stop when it exits.
        kube_up(&dir, &kube_bin)?;
        let c = Cluster { dir, bin, kube_bin };
        c.kubectl_ok(&[
            "apply",
            "--server-side",
            "-f",
            &repo().join("crds").to_string_lossy(),
        ])?;
        // All five: the operator refuses to start while one is missing.
        for kind in [
            "crd/plugincatalogentries.lockbox.dev",
            "crd/secretsmounts.lockbox.dev",
            "crd/policies.lockbox.dev",
            "crd/kubernetesauthroles.lockbox.dev",
            "crd/authmounts.lockbox.dev",
        ] {
            c.kubectl_ok(&["wait", "--for=condition=Established", kind, "--timeout=60s"])?;
        }
        let (cluster_role, doc) = chart_rbac("ClusterRole");
        let (ok, out, err) = c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(&doc));
        if !ok {
            return Err(format!("applying the chart's ClusterRole: {err}{out}"));
        }
        c.kubectl_ok(&[
            "create",
            "clusterrolebinding",
            "lockbox-operator-test",
            &format!("--clusterrole={cluster_role}"),
            "--user=lockbox-operator-test",
        ])?;
        Ok(c)
    });
    match c {
        Ok(c) => c,
        Err(e) => panic!("the Kubernetes test harness did not start: {e}"),
    }
}

/// A second, empty API server (no CRDs); stopped on drop.
pub struct EmptyCluster {
    /// kube-up.sh's directory.
    pub dir: PathBuf,
}

impl EmptyCluster {
    /// Starts it (after the shared one, so the binaries are installed).
    pub fn start() -> Self {
        let c = cluster();
        let dir = tempfile::Builder::new()
            .prefix("lockbox-operator-empty-kube-")
            .tempdir()
            .expect("tempdir")
            .keep();
        if let Err(e) = kube_up(&dir, &c.kube_bin) {
            panic!("the second API server did not start: {e}");
        }
        EmptyCluster { dir }
    }
}

impl EmptyCluster {
    /// Admin kubectl on this API server that must succeed.
    pub fn must(&self, args: &[&str]) -> String {
        let c = cluster();
        let this = Cluster {
            dir: self.dir.clone(),
            bin: c.bin.clone(),
            kube_bin: c.kube_bin.clone(),
        };
        this.must(args)
    }
}

impl Drop for EmptyCluster {
    fn drop(&mut self) {
        let _ = run_script("kube-down.sh", &[&self.dir.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Cluster {
    /// Admin kubectl; returns (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        self.kubectl_stdin(args, None)
    }

    /// Admin kubectl with `stdin`.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        use std::io::Write;
        let mut child = match Command::new(self.bin.join("kubectl"))
            .args(args)
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return (false, String::new(), format!("cannot run kubectl: {e}")),
        };
        if let Some(mut sin) = child.stdin.take() {
            let _ = sin.write_all(stdin.unwrap_or("").as_bytes());
        }
        match child.wait_with_output() {
            Ok(o) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).to_string(),
                String::from_utf8_lossy(&o.stderr).to_string(),
            ),
            Err(e) => (false, String::new(), e.to_string()),
        }
    }

    /// Sends `signal` to the kube-apiserver, keeps it down for `down`, and
    /// starts it again with the same command line (same etcd, port, flags
    /// and certificate); returns once `/readyz` answers 200
    /// (`tests/harness/kube-restart-apiserver.sh`).
    pub fn restart_apiserver(&self, signal: &str, down: Duration) -> Result<(), String> {
        run_script(
            "kube-restart-apiserver.sh",
            &[
                &self.dir.to_string_lossy(),
                signal,
                &format!("{:.3}", down.as_secs_f64()),
            ],
        )
        .map(|_| ())
    }

    fn kubectl_ok(&self, args: &[&str]) -> Result<String, String> {
        let (ok, out, err) = self.kubectl(args);
        if ok {
            Ok(out)
        } else {
            Err(format!("kubectl {}: {err}{out}", args.join(" ")))
        }
    }

    /// Admin kubectl that must succeed.
    pub fn must(&self, args: &[&str]) -> String {
        self.kubectl_ok(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `kubectl apply --server-side -f -` of `yaml`.
    pub fn apply(&self, yaml: &str) {
        let (ok, out, err) = self.kubectl_stdin(
            &["apply", "--server-side", "--field-manager=test", "-f", "-"],
            Some(yaml),
        );
        assert!(ok, "kubectl apply failed: {err}{out}\n{yaml}");
    }

    /// `jsonpath` of an object (empty when absent).
    pub fn get(&self, what: &[&str], jsonpath: &str) -> String {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        let jp = format!("jsonpath={jsonpath}");
        args.extend_from_slice(&["-o", &jp]);
        self.kubectl(&args).1
    }

    /// Waits up to `secs` for `kubectl wait --for=COND`.
    pub fn wait(&self, what: &[&str], cond: &str, secs: u32) {
        let mut args = vec!["wait"];
        args.extend_from_slice(what);
        let f = format!("--for={cond}");
        let t = format!("--timeout={secs}s");
        args.extend_from_slice(&[&f, &t]);
        let (ok, out, err) = self.kubectl(&args);
        if !ok {
            let mut dump = vec!["get", "-o", "yaml"];
            dump.extend_from_slice(what);
            let (_, yaml, _) = self.kubectl(&dump);
            panic!("kubectl {}: {err}{out}\n{yaml}", args.join(" "));
        }
    }
}

/// Polls `f` until it returns `Some`, up to `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The mock plugin binary, built once.
pub fn mock_plugin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-q", "-p", "lockbox-plugin-mock"])
                .current_dir(repo())
                .status()
                .expect("run cargo build -p lockbox-plugin-mock");
            assert!(status.success(), "building the mock plugin failed");
            Path::new(env!("CARGO_BIN_EXE_lockbox"))
                .parent()
                .expect("target dir")
                .join("lockbox-plugin-mock")
        })
        .clone()
}

/// The verdict of `sigs.k8s.io/cli-utils`' kstatus (what Flux and kpt
/// compute; `tests/go/kstatus` from `install-go-plugins.sh`) for the object
/// `what` (kubectl get arguments): (`Current`, `InProgress`, `Failed`, ...,
/// its message).
pub fn kstatus(c: &Cluster, what: &[&str]) -> (String, String) {
    let mut args = vec!["get", "-o", "json"];
    args.extend_from_slice(what);
    let (ok, json, err) = c.kubectl(&args);
    assert!(ok, "kubectl get {what:?}: {err}");
    let mut child = Command::new(go_plugins().join("kstatus"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kstatus");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("kstatus stdin");
        stdin.write_all(json.as_bytes()).expect("write to kstatus");
    }
    let out = child.wait_with_output().expect("kstatus output");
    assert!(
        out.status.success(),
        "kstatus: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kstatus prints JSON");
    (
        v["status"].as_str().unwrap_or_default().to_string(),
        v["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// Waits until the operator has written a status for the object's current
/// generation (before that kstatus reads a status-less object as
/// `Current`), then returns its kstatus verdict.
pub fn kstatus_observed(c: &Cluster, what: &[&str]) -> (String, String) {
    eventually(
        &format!("status.observedGeneration of {what:?}"),
        Duration::from_secs(60),
        || {
            let gen_ = c.get(what, "{.metadata.generation}");
            (!gen_.is_empty() && c.get(what, "{.status.observedGeneration}") == gen_).then_some(())
        },
    );
    kstatus(c, what)
}

/// The directory `install-go-plugins.sh` prints (built once per test
/// binary; a missing Go fails the tests with the script's reason).
pub fn go_plugins() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/harness/install-go-plugins.sh"
        );
        let out = std::process::Command::new("bash")
            .arg(script)
            .output()
            .map_err(|e| format!("cannot run {script}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{script} failed (it needs Go 1.26+ and the Go module proxy):\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    match dir {
        Ok(d) => d.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).expect("read file");
    hex::encode(sha2::Sha256::digest(&bytes))
}

/// A running `lockbox operator run`.
pub struct Operator {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub api: String,
    /// `http://127.0.0.1:PORT` of /healthz, /readyz, /metrics.
    pub health: String,
}

impl Operator {
    /// SIGTERM, then wait (SIGKILL after 20 s).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The operator's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (no shutdown, no Lease release), then reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// PIDs of the operator's child processes (its plugins).
    pub fn children(&self) -> Vec<u32> {
        let me = self.child.id();
        let mut out = Vec::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return out;
        };
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the `(comm)`: state, ppid, ...
            let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
                continue;
            };
            let mut f = rest.split_whitespace();
            let state = f.next().unwrap_or("");
            let ppid: u32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            if ppid == me && state != "Z" {
                out.push(pid);
            }
        }
        out
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Whether a process exists (and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_none_or(|s| s != "Z"),
        Err(_) => false,
    }
}

static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs one scenario at a time on the shared API server: held by every
/// [`Scenario`] and by the dev-server worlds of `kube_auth` and `consumer`,
/// so that `chaos` (which kills and restarts the API server) never runs
/// beside another test.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// One test's world: namespaces, directories, an operator.
pub struct Scenario {
    /// Label value and name prefix.
    pub name: String,
    /// The operator's namespace.
    pub op_ns: String,
    /// Plugin directory (holds `lockbox-plugin-mock`).
    pub plugin_dir: PathBuf,
    /// Data directory.
    pub data_dir: PathBuf,
    /// sha256 of `lockbox-plugin-mock` in the plugin directory.
    pub mock_sha: String,
    prefixes: Vec<String>,
    _tmp: tempfile::TempDir,
    _guard: std::sync::MutexGuard<'static, ()>,
}

impl Scenario {
    /// Creates namespaces `op_ns` and each of `namespaces`, binds the Role
    /// in `op_ns`, and prepares the directories.
    pub fn start(name: &str, namespaces: &[&str], prefixes: &[&str]) -> Self {
        let guard = exclusive();
        let c = cluster();
        let op_ns = format!("{name}-op");
        for ns in std::iter::once(op_ns.as_str()).chain(namespaces.iter().copied()) {
            c.apply(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
            ));
        }
        let (role, doc) = chart_rbac("Role");
        let (ok, out, err) = c.kubectl_stdin(
            &["apply", "--server-side", "-n", &op_ns, "-f", "-"],
            Some(&doc),
        );
        assert!(ok, "applying the chart's Role: {err}{out}");
        c.apply(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: lockbox-operator\n  namespace: {op_ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {role}\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: lockbox-operator-test\n"
        ));
        let tmp = tempfile::Builder::new()
            .prefix(&format!("lockbox-op-{name}-"))
            .tempdir()
            .expect("tempdir");
        let plugin_dir = tmp.path().join("plugins");
        std::fs::create_dir_all(&plugin_dir).expect("plugin dir");
        let dst = plugin_dir.join("lockbox-plugin-mock");
        std::fs::copy(mock_plugin(), &dst).expect("copy mock plugin");
        let mock_sha = sha256_file(&dst);
        Scenario {
            name: name.into(),
            op_ns,
            data_dir: tmp.path().join("data"),
            plugin_dir,
            mock_sha,
            prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
            _tmp: tmp,
            _guard: guard,
        }
    }

    /// Starts `lockbox operator run` as the plain user; waits until it
    /// prints its addresses and is leader (controllers running).
    pub fn operator(&self) -> Operator {
        self.operator_with(&[])
    }

    /// [`Scenario::operator`] with extra flags (`--insecure-registry ...`).
    pub fn operator_with(&self, extra: &[&str]) -> Operator {
        let op = self.operator_standby_with(extra);
        let metrics_url = format!("{}/metrics", op.health);
        eventually(
            "the operator to become leader",
            Duration::from_secs(30),
            || {
                curl(&metrics_url)
                    .filter(|m| m.contains("lockbox_operator_leader 1"))
                    .map(|_| ())
            },
        );
        op
    }

    /// Starts `lockbox operator run`; returns once it serves, leader or not.
    pub fn operator_standby(&self) -> Operator {
        self.operator_standby_with(&[])
    }

    fn operator_standby_with(&self, extra: &[&str]) -> Operator {
        self.operator_process(extra, &[])
    }

    /// Starts `lockbox operator run` with extra flags and environment
    /// variables (flags `--api-address`/`--health-address` in `extra`
    /// replace the loopback defaults); returns once it serves.
    pub fn operator_process(&self, extra: &[&str], env: &[(&str, &str)]) -> Operator {
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let c = cluster();
        let log = std::fs::File::create(self._tmp.path().join(format!(
            "operator-{}-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )))
        .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockbox"));
        cmd.args(["operator", "run", "--data-dir"])
            .arg(&self.data_dir)
            .arg("--plugin-directory")
            .arg(&self.plugin_dir)
            .args(["--namespace", &self.op_ns, "--resync-period", "3s"]);
        for flag in ["--api-address", "--health-address"] {
            if !extra.iter().any(|e| e.starts_with(flag)) {
                cmd.args([flag, "127.0.0.1:0"]);
            }
        }
        cmd.envs(env.iter().copied());
        for p in &self.prefixes {
            cmd.args(["--allowed-path-prefix", p]);
        }
        cmd.args(extra);
        let mut child = cmd
            .env("KUBECONFIG", c.dir.join("kubeconfig-operator"))
            .env("LOCKBOX_LOG", "info,lockbox=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start lockbox operator");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut api, mut health) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while api.is_none() || health.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("api address: ") {
                        api = Some(a.to_string());
                    }
                    if let Some(h) = line.strip_prefix("health address: ") {
                        health = Some(format!("http://{h}"));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let logs = self.logs();
                    panic!("the operator did not start:\n{logs}");
                }
            }
        }
        Operator {
            child,
            api: api.unwrap_or_default(),
            health: health.unwrap_or_default(),
        }
    }

    /// Everything the operators of this scenario logged.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(dir) = std::fs::read_dir(self._tmp.path()) {
            for e in dir.flatten() {
                if e.file_name().to_string_lossy().starts_with("operator-") {
                    out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    /// The root token from the Secret the operator created.
    pub fn root_token(&self) -> String {
        use base64::Engine;
        let b64 = cluster().get(
            &["secret", "-n", &self.op_ns, "lockbox-root-token"],
            "{.data.token}",
        );
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .expect("root token Secret holds base64");
        String::from_utf8(raw).expect("utf-8 token")
    }

    /// A PluginCatalogEntry manifest for the mock plugin.
    pub fn entry_yaml(&self, name: &str, path: &str, sha: &str, version: &str) -> String {
        format!(
            "apiVersion: lockbox.dev/v1alpha1\nkind: PluginCatalogEntry\nmetadata:\n  name: {name}\n  labels:\n    lockbox-test: {}\nspec:\n  type: secret\n  version: \"{version}\"\n  binary:\n    path: {path}\n    sha256: \"{sha}\"\n",
            self.name
        )
    }

    /// A SecretsMount manifest.
    pub fn mount_yaml(&self, ns: &str, name: &str, plugin: &str, extra: &str) -> String {
        format!(
            "apiVersion: lockbox.dev/v1alpha1\nkind: SecretsMount\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    lockbox-test: {}\nspec:\n  plugin: {plugin}\n{extra}",
            self.name
        )
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- operator logs of scenario {} ----\n{}",
                self.name,
                self.logs()
            );
        }
        // Remove this scenario's objects whatever state the operator is in.
        let c = cluster();
        let sel = format!("lockbox-test={}", self.name);
        for kind in [
            "secretsmounts.lockbox.dev",
            "plugincatalogentries.lockbox.dev",
        ] {
            let (_, names, _) = c.kubectl(&[
                "get",
                kind,
                "-A",
                "-l",
                &sel,
                "-o",
                "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}",
            ]);
            for line in names.lines().filter(|l| !l.is_empty()) {
                let (ns, name) = line.split_once('/').unwrap_or(("", line));
                let mut args = vec![
                    "patch",
                    kind,
                    name,
                    "--type=merge",
                    "-p",
                    r#"{"metadata":{"finalizers":null}}"#,
                ];
                if !ns.is_empty() {
                    args.extend_from_slice(&["-n", ns]);
                }
                let _ = c.kubectl(&args);
                let mut del = vec!["delete", kind, name, "--wait=false", "--ignore-not-found"];
                if !ns.is_empty() {
                    del.extend_from_slice(&["-n", ns]);
                }
                let _ = c.kubectl(&del);
            }
        }
    }
}

/// GET with curl (for the health server, outside async code).
pub fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// A Vault-API call with curl: (status, body).
pub fn api(
    op: &Operator,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let url = format!("{}/v1/{path}", op.api);
    let header = format!("X-Vault-Token: {token}");
    let mut args = vec![
        "-s",
        "--max-time",
        "20",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        "-H",
        &header,
        &url,
    ];
    if let Some(b) = body {
        args.extend_from_slice(&["-H", "Content-Type: application/json", "-d", b]);
    }
    let out = Command::new("curl").args(&args).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
    (code.trim().parse().unwrap_or(0), json)
}
