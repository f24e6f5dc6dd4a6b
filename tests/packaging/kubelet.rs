//! A stand-in for the parts of Kubernetes the test API server lacks: the
//! kubelet, the StatefulSet, ServiceAccount and PVC-protection controllers,
//! Service routing and `kubectl port-forward`.
//!
//! The API server is real; only pods cannot run (there is no kubelet). So
//! [`FakeNode`] watches one namespace and does what those components would,
//! from the objects Helm (or kubectl) created:
//!
//! - **StatefulSet**: for each one with `replicas >= 1` it creates the PVCs
//!   of the `volumeClaimTemplates` (`data-<name>-0`), runs pod `<name>-0`'s
//!   container as a local process, waits for its readiness probe, then writes
//!   the StatefulSet's status (so `kubectl rollout status` works). A new
//!   generation (`helm upgrade`) restarts the pod; a deleted StatefulSet
//!   (`helm uninstall`) or `replicas: 0` stops it (SIGTERM, as the kubelet).
//! - **Pods** with the `helm.sh/hook: test` annotation: runs their init
//!   containers, then their containers, to completion and writes
//!   `status.phase` (so `helm test` works).
//! - ServiceAccount `default` in the namespace (the API server refuses pods
//!   without it); PVCs being deleted lose their `pvc-protection` finalizer
//!   once no pod uses them.
//!
//! How a container runs, from its spec:
//! - **Image**: the Dockerfile's final stage, laid out in a directory
//!   ([`build_image`]) from the workspace's (debug) binaries by the same
//!   recipe as the build stage.
//! - **Volumes** are bind-mounted onto that directory (mount points created
//!   as a container runtime does) in the process's own mount namespace
//!   (`unshare --mount`): `emptyDir` (fresh, 0777), `persistentVolumeClaim`
//!   (a directory per claim that outlives the pod, group `fsGroup`, setgid;
//!   the claim must exist in the API), `secret` (files from the Secret with
//!   `defaultMode`, group `fsGroup`; the pod waits while the Secret is
//!   missing); read-only where the spec says so. The ServiceAccount token
//!   (a real one, from the TokenRequest API) with `ca.crt` and `namespace`
//!   is mounted at `/var/run/secrets/kubernetes.io/serviceaccount` (a tmpfs
//!   on `/run`), with `KUBERNETES_SERVICE_HOST/PORT`: lockbox uses its
//!   in-cluster configuration, as in a pod, and so does the Kubernetes auth
//!   plugin it runs. [`FakeNode::rotate_token`] replaces the token file as
//!   kubelet's rotation does.
//! - **Security context** (`setpriv`): the process runs as
//!   `runAsUser`/`runAsGroup` with `fsGroup` as supplementary group, with
//!   no-new-privileges when `allowPrivilegeEscalation: false`, no
//!   capabilities (effective and bounding) when they drop `ALL`, and the
//!   whole host filesystem read-only when `readOnlyRootFilesystem: true`, but
//!   for its writable volumes. Checked on the running process
//!   (`/proc/PID/status`, `mountinfo`). Not emulated: the seccomp profile,
//!   and the network namespace (the process shares the host's loopback).
//! - **Paths**: there is no chroot, so the command, arguments and
//!   environment values that name container paths (`/x`, `--flag=/x`,
//!   `key=@/x`) are prefixed with the image directory.
//! - **Network**: listen addresses `0.0.0.0:PORT` in arguments become
//!   `127.0.0.1:0`; the real ports are read from lockbox's `api address:` /
//!   `health address:` lines. Service names (`svc.ns.svc:PORT`) in
//!   environment values resolve through the real Service object (its port and
//!   `targetPort` name) to the pod's port. [`FakeNode::forwarder`] is
//!   `kubectl port-forward svc/...`: a local port that always reaches the
//!   current pod.
//!
//! Requires root (for `unshare` and `setpriv`), as on the CI machines.

use crate::dockerfile;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The image's environment (distroless `nonroot`).
const IMAGE_ENV: [(&str, &str); 2] = [
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("HOME", "/home/nonroot"),
];

/// An API server and how to reach it.
#[derive(Clone)]
pub struct Kube {
    /// kubectl.
    pub kubectl: PathBuf,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// CA of the API server's certificate.
    pub ca: PathBuf,
    /// Port of the API server on 127.0.0.1.
    pub port: u16,
}

impl Kube {
    /// The API server that `kube-up.sh DIR` started.
    pub fn from_dir(dir: &Path, bin: &Path) -> Self {
        let env = std::fs::read_to_string(dir.join("env")).expect("kube-up env file");
        let url = env
            .lines()
            .find_map(|l| l.strip_prefix("export KUBE_APISERVER_URL="))
            .expect("KUBE_APISERVER_URL")
            .trim_matches('\'');
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("API server port");
        Kube {
            kubectl: bin.join("kubectl"),
            kubeconfig: dir.join("kubeconfig"),
            ca: dir.join("certs/apiserver.crt"),
            port,
        }
    }

    /// Admin kubectl with optional stdin.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> crate::Out {
        let mut child = Command::new(&self.kubectl)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let Some(mut sin) = child.stdin.take() {
            let _ = sin.write_all(stdin.unwrap_or("").as_bytes());
        }
        let o = child.wait_with_output().expect("kubectl output");
        crate::Out {
            ok: o.status.success(),
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// `kubectl get ARGS -o json`, or `None` when it fails (not found).
    pub fn get(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let out = self.kubectl(&all, None);
        if !out.ok {
            return None;
        }
        serde_json::from_str(&out.stdout).ok()
    }

    fn items(&self, args: &[&str]) -> Vec<Value> {
        self.get(args)
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
    }
}

/// The upstream Vault plugins the image bundles (the Dockerfile's
/// vault-plugins stage).
pub const VAULT_PLUGINS: [&str; 2] = ["vault-plugin-secrets-kv", "vault-plugin-auth-kubernetes"];

/// Lays out the Dockerfile's final stage under `dir/rootfs`: the build
/// stage's `/out` is made from the workspace's binaries by the recipe of its
/// RUN (lockbox in `bin/`, each plugin (and [`VAULT_PLUGINS`]) in `plugins/` with `plugins/extra/`,
/// each plugin's sha256 without newline in `sha256/`, `SHA256SUMS` in
/// sha256sum format, an empty `data/`), then every `COPY --from=build` of
/// the final stage is applied. Returns the root and the SHA256SUMS text.
pub fn build_image(dir: &Path) -> (PathBuf, String) {
    let out = dir.join("out");
    for d in ["bin", "plugins/extra", "sha256", "data"] {
        std::fs::create_dir_all(out.join(d)).expect("mkdir");
    }
    link_or_copy(
        &crate::workspace_binary("lockbox"),
        &out.join("bin/lockbox"),
    );
    let mut sums = String::new();
    for (_, bin) in dockerfile::workspace_plugins() {
        let dst = out.join("plugins").join(&bin);
        link_or_copy(&crate::workspace_binary(&bin), &dst);
        let sha = crate::sha256_hex(&dst);
        std::fs::write(out.join("sha256").join(&bin), &sha).expect("write digest");
        sums.push_str(&format!("{sha}  {bin}\n"));
    }
    // Vault's plugins, built from the modules the Dockerfile's
    // vault-plugins stage builds (tests/harness/install-go-plugins.sh).
    for bin in VAULT_PLUGINS {
        let dst = out.join("plugins").join(bin);
        link_or_copy(&crate::harness::go_plugins().join(bin), &dst);
        let sha = crate::sha256_hex(&dst);
        std::fs::write(out.join("sha256").join(bin), &sha).expect("write digest");
        sums.push_str(&format!("{sha}  {bin}\n"));
    }
    std::fs::write(out.join("SHA256SUMS"), &sums).expect("write SHA256SUMS");
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("mkdir rootfs");
    for c in dockerfile::image_copies() {
        assert_eq!(c.from, "build");
        let src = out.join(c.src.trim_start_matches("/out/").trim_end_matches('/'));
        let dest = rootfs.join(c.dest.trim_start_matches('/'));
        if c.src.ends_with('/') {
            copy_tree(&src, &dest);
        } else {
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            link_or_copy(&src, &dest);
        }
        if let Some(chown) = &c.chown {
            let (u, g) = chown.split_once(':').expect("uid:gid");
            chown_tree(&dest, u.parse().expect("uid"), g.parse().expect("gid"));
        }
    }
    open_dirs(dir);
    (rootfs, sums)
}

fn link_or_copy(src: &Path, dst: &Path) {
    let _ = std::fs::remove_file(dst);
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    }
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for e in std::fs::read_dir(src).expect("read dir").flatten() {
        let to = dst.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            link_or_copy(&e.path(), &to);
        }
    }
}

fn chown_tree(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
    if p.is_dir() {
        for e in std::fs::read_dir(p).expect("read dir").flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

/// Directories traversable by the pod's user (tempdirs are 0700).
fn open_dirs(p: &Path) {
    let mut cur = Some(p);
    while let Some(d) = cur {
        if d == std::env::temp_dir() || d.parent().is_none() {
            break;
        }
        let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755));
        cur = d.parent();
    }
}

/// chmod 0755.
pub fn make_executable(p: &Path) {
    set_mode(p, 0o755);
}

fn set_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A running container process.
pub struct PodProcess {
    child: Child,
    /// Container port → host port on 127.0.0.1.
    pub ports: HashMap<u16, u16>,
    /// The StatefulSet generation it was started from.
    pub generation: i64,
    /// Claims its volumes use.
    pub claims: Vec<String>,
    /// Its stderr (lockbox's logs).
    pub log: PathBuf,
    /// Host directory behind its `/var/run/secrets/kubernetes.io/serviceaccount`.
    sa_dir: Option<PathBuf>,
    grace: Duration,
}

impl PodProcess {
    /// PID of the container's process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL after the grace period.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < self.grace {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(st.to_string()),
            _ => None,
        }
    }
}

impl Drop for PodProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Default)]
struct State {
    pods: BTreeMap<String, PodProcess>,
    tests_done: HashSet<String>,
    /// What happened, for failure messages.
    events: Vec<String>,
    /// Things a real cluster would show as errors (crashes, failed checks).
    errors: Vec<String>,
}

/// The fake node for one namespace (see the module docs).
pub struct FakeNode {
    kube: Kube,
    ns: String,
    rootfs: PathBuf,
    work: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A pod's filesystem: the image's root directory, with its volumes
/// bind-mounted onto it in the process's mount namespace.
struct Mounts {
    rootfs: PathBuf,
    /// Volume name → host directory.
    volumes: HashMap<String, PathBuf>,
}

impl Mounts {
    /// The host path of a container path.
    fn host(&self, path: &str) -> PathBuf {
        self.rootfs.join(path.trim_start_matches('/'))
    }

    /// Maps `/x`, `--flag=/x` and `key=@/x`.
    fn map(&self, s: &str) -> String {
        if let Some(i) = s.find('/') {
            let (head, path) = s.split_at(i);
            if head.is_empty() || head.ends_with('=') || head.ends_with("=@") {
                return format!("{head}{}", self.host(path).display());
            }
        }
        s.to_string()
    }
}

impl FakeNode {
    /// Starts watching `ns` on `kube`. Its directory (the image, volumes,
    /// logs) has a short path under /tmp: plugin sockets end up below it, and
    /// a Unix socket path must fit in 108 bytes (in a pod it is /tmp/...).
    pub fn start(kube: Kube, ns: &str) -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "the fake node needs root (unshare --mount, setpriv) to run pods with their security context"
        );
        let work = tempfile::Builder::new()
            .prefix("fk-")
            .tempdir_in("/tmp")
            .expect("work dir")
            .keep();
        let (rootfs, _) = build_image(&work.join("image"));
        let mut node = FakeNode {
            kube,
            ns: ns.to_string(),
            rootfs,
            work,
            state: Arc::new(Mutex::new(State::default())),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        let me = node.clone_inner();
        node.thread = Some(std::thread::spawn(move || me.run()));
        node
    }

    fn clone_inner(&self) -> FakeNode {
        FakeNode {
            kube: self.kube.clone(),
            ns: self.ns.clone(),
            rootfs: self.rootfs.clone(),
            work: self.work.clone(),
            state: self.state.clone(),
            stop: self.stop.clone(),
            thread: None,
        }
    }

    /// The directory backing PersistentVolumeClaim `claim` (created empty,
    /// group 65532: the chart's fsGroup).
    pub fn claim_dir(&self, claim: &str) -> PathBuf {
        self.claim_dir_for(claim, Some(65532))
    }

    fn claim_dir_for(&self, claim: &str, fs_group: Option<u32>) -> PathBuf {
        let d = self.work.join("claims").join(claim);
        if !d.exists() {
            std::fs::create_dir_all(&d).expect("claim dir");
        }
        // fsGroup: the volume's group, setgid, group-writable.
        if let Some(g) = fs_group {
            std::os::unix::fs::chown(&d, None, Some(g)).expect("chown claim");
            set_mode(&d, 0o2775);
        }
        open_dirs(&self.work.join("claims"));
        d
    }

    /// The image's root directory (the pods' filesystem).
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// Host port of container port `port` of StatefulSet `sts`'s pod.
    pub fn pod_port(&self, sts: &str, port: u16) -> Option<u16> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.pods.get(sts).and_then(|p| p.ports.get(&port).copied())
    }

    /// PID of StatefulSet `sts`'s pod process.
    pub fn pod_pid(&self, sts: &str) -> Option<u32> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.pods.get(sts).map(PodProcess::pid)
    }

    /// Rotates the ServiceAccount token of StatefulSet `sts`'s running pod
    /// as kubelet does: a fresh TokenRequest token replaces the `token` file
    /// atomically (the pod sees the new file; nothing restarts).
    pub fn rotate_token(&self, sts: &str) -> Result<(), String> {
        let dir = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let p = st.pods.get(sts).ok_or(format!("no pod of {sts}"))?;
            p.sa_dir
                .clone()
                .ok_or(format!("pod {sts}-0 has no token"))?
        };
        let set = self
            .kube
            .get(&["statefulset", "-n", &self.ns, sts])
            .ok_or(format!("no StatefulSet {sts}"))?;
        let sa = set["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let out = self.kube.kubectl(
            &["create", "token", &sa, "-n", &self.ns, "--duration=2h"],
            None,
        );
        if !out.ok {
            return Err(format!("TokenRequest for {sa}: {}", out.all()));
        }
        let tmp = dir.join(".token.new");
        std::fs::write(&tmp, out.stdout.trim()).map_err(|e| e.to_string())?;
        set_mode(&tmp, 0o644);
        std::fs::rename(&tmp, dir.join("token")).map_err(|e| e.to_string())?;
        self.event(format!("pod {sts}-0: ServiceAccount token rotated"));
        Ok(())
    }

    /// What happened so far (pods started/stopped, tests run).
    pub fn events(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .clone()
    }

    /// Errors a cluster would show (crashed pods, failed container checks).
    pub fn errors(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .errors
            .clone()
    }

    /// The logs of every pod process so far.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(dir) = std::fs::read_dir(self.work.join("logs")) {
            let mut files: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                out.push_str(&format!("---- {} ----\n", f.display()));
                out.push_str(&std::fs::read_to_string(&f).unwrap_or_default());
            }
        }
        out
    }

    /// `kubectl port-forward svc/SERVICE LOCAL:PORT`: a local port that
    /// forwards to the Service's target port on whichever pod runs now.
    pub fn forwarder(&self, service: &str, port: u16) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind forwarder");
        let local = listener.local_addr().expect("addr").port();
        let node = self.clone_inner();
        let service = service.to_string();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if node.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Some(dest) = node.service_target(&service, port) else {
                    continue;
                };
                let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", dest)) else {
                    continue;
                };
                let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                    continue;
                };
                std::thread::spawn(move || pipe(client, upstream));
                std::thread::spawn(move || pipe(u2, c2));
            }
        });
        local
    }

    /// The host port behind `service:port` (the real Service object: its
    /// port, `targetPort` name, and the pod's container port of that name).
    fn service_target(&self, service: &str, port: u16) -> Option<u16> {
        let svc = self.kube.get(&["service", "-n", &self.ns, service])?;
        let sp = svc["spec"]["ports"]
            .as_array()?
            .iter()
            .find(|p| p["port"] == port)?
            .clone();
        let sts = self
            .kube
            .items(&["statefulsets", "-n", &self.ns])
            .into_iter()
            .find(|s| {
                selects(
                    &svc["spec"]["selector"],
                    &s["spec"]["template"]["metadata"]["labels"],
                )
            })?;
        let container = &sts["spec"]["template"]["spec"]["containers"][0];
        let cport = match &sp["targetPort"] {
            Value::String(name) => container["ports"]
                .as_array()?
                .iter()
                .find(|p| &p["name"] == name)?["containerPort"]
                .as_u64()?,
            Value::Number(n) => n.as_u64()?,
            _ => port.into(),
        };
        self.pod_port(sts["metadata"]["name"].as_str()?, cport as u16)
    }

    /// Rewrites `NAME.NS.svc[.cluster.local]:PORT` in `s` to `127.0.0.1:HOSTPORT`.
    fn resolve_services(&self, s: &str) -> String {
        let Some(i) = s.find(".svc") else {
            return s.to_string();
        };
        let start = s[..i].rfind("//").map(|j| j + 2).unwrap_or(0);
        let host = &s[start..i];
        let after = &s[i + 4..];
        let after = after.strip_prefix(".cluster.local").unwrap_or(after);
        let Some(rest) = after.strip_prefix(':') else {
            return s.to_string();
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let (Some((name, ns)), Ok(port)) = (host.split_once('.'), digits.parse::<u16>()) else {
            return s.to_string();
        };
        if ns != self.ns {
            return s.to_string();
        }
        match self.service_target(name, port) {
            Some(p) => format!("{}127.0.0.1:{p}{}", &s[..start], &rest[digits.len()..]),
            None => s.to_string(),
        }
    }

    fn run(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step())) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => self.error(e),
                Err(p) => self.error(format!(
                    "fake node panicked: {}",
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                )),
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for (_, mut p) in std::mem::take(&mut st.pods) {
            p.stop();
        }
    }

    fn event(&self, e: String) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.events.last() != Some(&e) {
            st.events.push(e);
        }
    }

    fn error(&self, e: String) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.errors.last() != Some(&e) {
            st.errors.push(e);
        }
    }

    fn step(&self) -> Result<(), String> {
        let ns = self.ns.as_str();
        if self.kube.get(&["namespace", ns]).is_none() {
            return Ok(());
        }
        // ServiceAccount controller.
        if self
            .kube
            .get(&["serviceaccount", "-n", ns, "default"])
            .is_none()
        {
            self.kube
                .kubectl(&["create", "serviceaccount", "default", "-n", ns], None);
        }
        // StatefulSet controller + kubelet.
        let sets = self.kube.items(&["statefulsets", "-n", ns]);
        let names: HashSet<String> = sets
            .iter()
            .filter_map(|s| s["metadata"]["name"].as_str().map(String::from))
            .collect();
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let gone: Vec<String> = st
                .pods
                .keys()
                .filter(|k| !names.contains(*k))
                .cloned()
                .collect();
            for k in gone {
                if let Some(mut p) = st.pods.remove(&k) {
                    p.stop();
                    st.events
                        .push(format!("StatefulSet {k} deleted: pod {k}-0 stopped"));
                }
            }
            // A crashed pod is an error (the kubelet would restart it: so
            // does the next round).
            let crashed: Vec<String> = st
                .pods
                .iter_mut()
                .filter_map(|(k, p)| p.exited().map(|status| (k.clone(), status)))
                .map(|(k, _)| k)
                .collect();
            for k in crashed {
                if let Some(p) = st.pods.remove(&k) {
                    let log = std::fs::read_to_string(&p.log).unwrap_or_default();
                    st.errors.push(format!("pod {k}-0 exited:\n{log}"));
                }
            }
        }
        for sts in sets {
            self.statefulset(&sts)?;
        }
        // Test pods (helm test).
        for pod in self.kube.items(&["pods", "-n", ns]) {
            let hook = pod["metadata"]["annotations"]["helm.sh/hook"]
                .as_str()
                .unwrap_or("");
            let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
            if !hook.split(',').any(|h| h == "test") || pod["status"]["phase"] != "Pending" {
                continue;
            }
            if self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .tests_done
                .contains(&uid)
            {
                continue;
            }
            if self.test_pod(&pod)? {
                self.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .tests_done
                    .insert(uid);
            }
        }
        // PVC protection controller.
        let used: HashSet<String> = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.pods.values().flat_map(|p| p.claims.clone()).collect()
        };
        for pvc in self.kube.items(&["pvc", "-n", ns]) {
            let name = pvc["metadata"]["name"].as_str().unwrap_or("");
            if !pvc["metadata"]["deletionTimestamp"].is_null() && !used.contains(name) {
                self.kube.kubectl(
                    &[
                        "patch",
                        "pvc",
                        name,
                        "-n",
                        ns,
                        "--type=merge",
                        "-p",
                        r#"{"metadata":{"finalizers":null}}"#,
                    ],
                    None,
                );
            }
        }
        Ok(())
    }

    fn statefulset(&self, sts: &Value) -> Result<(), String> {
        let name = sts["metadata"]["name"]
            .as_str()
            .ok_or("nameless StatefulSet")?
            .to_string();
        let generation = sts["metadata"]["generation"].as_i64().unwrap_or(0);
        let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1);
        if replicas > 1 {
            return Err(format!(
                "StatefulSet {name}: {replicas} replicas (the fake node runs one)"
            ));
        }
        let current = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.pods.get(&name).map(|p| p.generation)
        };
        if replicas == 0 {
            let status = &sts["status"];
            if current.is_none()
                && status["observedGeneration"] == generation
                && status["readyReplicas"].as_i64().unwrap_or(0) == 0
            {
                return Ok(());
            }
            if current.is_some() {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(mut p) = st.pods.remove(&name) {
                    p.stop();
                }
                st.events.push(format!("StatefulSet {name} scaled to 0"));
            }
            return self.sts_status(&name, generation, 0);
        }
        if current == Some(generation) {
            return Ok(());
        }
        // A new spec: replace the pod (RollingUpdate with one replica).
        if current.is_some() {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(mut p) = st.pods.remove(&name) {
                p.stop();
            }
            st.events.push(format!(
                "StatefulSet {name} generation {generation}: pod {name}-0 stopped for the update"
            ));
        }
        // PVCs from the templates.
        for t in sts["spec"]["volumeClaimTemplates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let claim = format!("{}-{name}-0", t["metadata"]["name"].as_str().unwrap_or(""));
            if self.kube.get(&["pvc", "-n", &self.ns, &claim]).is_none() {
                let pvc = json!({
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim, "namespace": self.ns, "labels": t["metadata"]["labels"]},
                    "spec": t["spec"],
                });
                let out = self
                    .kube
                    .kubectl(&["create", "-f", "-"], Some(&pvc.to_string()));
                if !out.ok {
                    return Err(format!("creating PVC {claim}: {}", out.all()));
                }
            }
        }
        let pod_name = format!("{name}-0");
        let template = &sts["spec"]["template"];
        let Some(proc_) = self.start_pod(&pod_name, template, sts, generation)? else {
            return Ok(()); // waiting for a Secret or claim; retried next round
        };
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pods
            .insert(name.clone(), proc_);
        // Readiness probe, as the kubelet runs it.
        let c = &template["spec"]["containers"][0];
        let probe = &c["readinessProbe"]["httpGet"];
        let path = probe["path"]
            .as_str()
            .ok_or("no readinessProbe.httpGet.path")?;
        let cport = container_port(c, &probe["port"]).ok_or("readiness probe port")?;
        let hport = self
            .pod_port(&name, cport)
            .ok_or("probe port not listening")?;
        let url = format!("http://127.0.0.1:{hport}{path}");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if crate::harness::curl(&url).is_some() {
                break;
            }
            let exited = {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                st.pods.get_mut(&name).and_then(PodProcess::exited)
            };
            if exited.is_some() || Instant::now() > deadline {
                return Err(format!(
                    "pod {pod_name} never became ready ({exited:?}):\n{}",
                    self.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.event(format!("pod {pod_name} (generation {generation}) ready"));
        self.sts_status(&name, generation, 1)
    }

    fn sts_status(&self, name: &str, generation: i64, ready: i64) -> Result<(), String> {
        let rev = format!("{name}-{generation}");
        let status = json!({"status": {
            "observedGeneration": generation, "replicas": ready, "readyReplicas": ready,
            "currentReplicas": ready, "updatedReplicas": ready,
            "currentRevision": rev, "updateRevision": rev}});
        let out = self.kube.kubectl(
            &[
                "patch",
                "statefulset",
                name,
                "-n",
                &self.ns,
                "--subresource=status",
                "--type=merge",
                "-p",
                &status.to_string(),
            ],
            None,
        );
        if out.ok || out.all().contains("NotFound") || out.all().contains("not found") {
            Ok(())
        } else {
            Err(format!("StatefulSet {name} status: {}", out.all()))
        }
    }

    /// Runs a test pod; `false` while it must wait (a Secret is missing).
    fn test_pod(&self, pod: &Value) -> Result<bool, String> {
        let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
        let spec = &pod["spec"];
        let dir = self.pod_dir(&name);
        let Some(mounts) = self.volumes(spec, None, &dir)? else {
            return Ok(false);
        };
        let mut phase = "Succeeded";
        let all: Vec<&Value> = ["initContainers", "containers"]
            .iter()
            .flat_map(|k| spec[*k].as_array().into_iter().flatten())
            .collect();
        for c in all {
            let cname = c["name"].as_str().unwrap_or("?");
            let mut cmd = self.container_command(&name, spec, c, &mounts, &dir, None)?;
            let out = crate::run(&mut cmd);
            self.event(format!(
                "test pod {name}: container {cname}: {} (exit {})\n{}",
                if out.ok { "ok" } else { "FAILED" },
                out.code,
                out.all()
            ));
            if !out.ok {
                phase = "Failed";
                break;
            }
        }
        let status = json!({"status": {"phase": phase}});
        let out = self.kube.kubectl(
            &[
                "patch",
                "pod",
                &name,
                "-n",
                &self.ns,
                "--subresource=status",
                "--type=merge",
                "-p",
                &status.to_string(),
            ],
            None,
        );
        if !out.ok {
            return Err(format!("pod {name} status: {}", out.all()));
        }
        Ok(true)
    }

    fn pod_dir(&self, pod: &str) -> PathBuf {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let d = self.work.join("pods").join(format!("{pod}-{stamp}"));
        std::fs::create_dir_all(&d).expect("pod dir");
        open_dirs(&d);
        d
    }

    /// Sets up the pod's volumes; `None` while something it needs is missing.
    fn volumes(
        &self,
        spec: &Value,
        sts: Option<(&Value, &str)>,
        dir: &Path,
    ) -> Result<Option<(Mounts, Vec<String>)>, String> {
        let fs_group = spec["securityContext"]["fsGroup"]
            .as_u64()
            .map(|g| g as u32);
        let mut vols: HashMap<String, PathBuf> = HashMap::new();
        let mut claims = Vec::new();
        if let Some((sts, pod)) = sts {
            for t in sts["spec"]["volumeClaimTemplates"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let v = t["metadata"]["name"].as_str().unwrap_or("").to_string();
                let claim = format!("{v}-{pod}");
                vols.insert(v, self.claim_dir_for(&claim, fs_group));
                claims.push(claim);
            }
        }
        for v in spec["volumes"].as_array().into_iter().flatten() {
            let vname = v["name"].as_str().unwrap_or("").to_string();
            let host = dir.join("volumes").join(&vname);
            if v["emptyDir"].is_object() {
                std::fs::create_dir_all(&host).expect("emptyDir");
                set_mode(&host, 0o777);
            } else if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
                if self.kube.get(&["pvc", "-n", &self.ns, claim]).is_none() {
                    self.event(format!("waiting for PersistentVolumeClaim {claim}"));
                    return Ok(None);
                }
                vols.insert(vname.clone(), self.claim_dir_for(claim, fs_group));
                claims.push(claim.to_string());
                continue;
            } else if let Some(secret) = v["secret"]["secretName"].as_str() {
                let Some(s) = self.kube.get(&["secret", "-n", &self.ns, secret]) else {
                    self.event(format!("waiting for Secret {secret}"));
                    return Ok(None);
                };
                std::fs::create_dir_all(&host).expect("secret volume");
                let mode = v["secret"]["defaultMode"].as_u64().unwrap_or(0o644) as u32;
                let items: Vec<(String, String)> = match v["secret"]["items"].as_array() {
                    Some(items) => items
                        .iter()
                        .map(|i| {
                            (
                                i["key"].as_str().unwrap_or("").into(),
                                i["path"].as_str().unwrap_or("").into(),
                            )
                        })
                        .collect(),
                    None => s["data"]
                        .as_object()
                        .into_iter()
                        .flat_map(|d| d.keys())
                        .map(|k| (k.clone(), k.clone()))
                        .collect(),
                };
                for (key, path) in items {
                    let b64 = s["data"][&key]
                        .as_str()
                        .ok_or_else(|| format!("Secret {secret} has no key {key}"))?;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|e| e.to_string())?;
                    let f = host.join(&path);
                    std::fs::write(&f, bytes).expect("write secret file");
                    std::os::unix::fs::chown(&f, Some(0), fs_group).expect("chown");
                    set_mode(&f, mode);
                }
                set_mode(&host, 0o755);
            } else {
                return Err(format!(
                    "volume {vname}: type not supported by the fake node: {v}"
                ));
            }
            vols.insert(vname, host);
        }
        open_dirs(&dir.join("volumes"));
        Ok(Some((
            Mounts {
                rootfs: self.rootfs.clone(),
                volumes: vols,
            },
            claims,
        )))
    }

    /// The sandboxed command for container `c` of pod `pod`.
    fn container_command(
        &self,
        pod: &str,
        spec: &Value,
        c: &Value,
        mounts: &(Mounts, Vec<String>),
        dir: &Path,
        listen: Option<&mut Vec<u16>>,
    ) -> Result<Command, String> {
        let (mounts, _) = mounts;
        let psc = &spec["securityContext"];
        let sc = &c["securityContext"];
        let pick = |k: &str| {
            if sc[k].is_null() {
                psc[k].clone()
            } else {
                sc[k].clone()
            }
        };
        let uid = pick("runAsUser")
            .as_u64()
            .ok_or("no runAsUser (the image's user is numeric 65532; set it)")?;
        let gid = pick("runAsGroup").as_u64().unwrap_or(uid);
        let fs_group = psc["fsGroup"].as_u64();
        let ro = sc["readOnlyRootFilesystem"] == true;
        let no_new_privs = sc["allowPrivilegeEscalation"] == false;
        let drop_all = sc["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        // This container's volumes, bind-mounted onto the image's root
        // (the mount points are created as a container runtime would).
        let mut binds: Vec<(PathBuf, PathBuf, bool)> = Vec::new();
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            let vname = m["name"].as_str().unwrap_or("");
            let src = mounts
                .volumes
                .get(vname)
                .ok_or_else(|| format!("volumeMount {vname} has no volume"))?;
            let dst = mounts.host(m["mountPath"].as_str().unwrap_or("/"));
            std::fs::create_dir_all(&dst)
                .map_err(|e| format!("mount point {}: {e}", dst.display()))?;
            binds.push((src.clone(), dst, m["readOnly"] == true));
        }
        // ServiceAccount token (in-cluster configuration).
        let mut sa_dir = None;
        let mut env: Vec<(String, String)> = IMAGE_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if spec["automountServiceAccountToken"] != false {
            let sa = spec["serviceAccountName"].as_str().unwrap_or("default");
            let out = self.kube.kubectl(
                &["create", "token", sa, "-n", &self.ns, "--duration=2h"],
                None,
            );
            if !out.ok {
                return Err(format!(
                    "TokenRequest for ServiceAccount {sa}: {}",
                    out.all()
                ));
            }
            let d = dir.join("serviceaccount");
            std::fs::create_dir_all(&d).expect("sa dir");
            std::fs::write(d.join("token"), out.stdout.trim()).expect("token");
            std::fs::copy(&self.kube.ca, d.join("ca.crt")).expect("ca");
            std::fs::write(d.join("namespace"), &self.ns).expect("namespace");
            for f in ["token", "ca.crt", "namespace"] {
                set_mode(&d.join(f), 0o644);
            }
            set_mode(&d, 0o755);
            sa_dir = Some(d);
            env.push(("KUBERNETES_SERVICE_HOST".into(), "127.0.0.1".into()));
            env.push(("KUBERNETES_SERVICE_PORT".into(), self.kube.port.to_string()));
        }
        for e in c["env"].as_array().into_iter().flatten() {
            let n = e["name"].as_str().unwrap_or("").to_string();
            let v = if let Some(v) = e["value"].as_str() {
                v.to_string()
            } else if let Some(f) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                match f {
                    "metadata.namespace" => self.ns.clone(),
                    "metadata.name" => pod.to_string(),
                    other => return Err(format!("fieldRef {other} not supported")),
                }
            } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
                let secret = r["name"].as_str().unwrap_or("");
                let key = r["key"].as_str().unwrap_or("");
                let s = self
                    .kube
                    .get(&["secret", "-n", &self.ns, secret])
                    .ok_or_else(|| format!("env {n}: Secret {secret} not found"))?;
                let b64 = s["data"][key]
                    .as_str()
                    .ok_or_else(|| format!("env {n}: no key {key}"))?;
                String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map_err(|e| e.to_string())?,
                )
                .map_err(|e| e.to_string())?
            } else {
                return Err(format!("env {n}: unsupported source {e}"));
            };
            let v = self.resolve_services(&v);
            env.push((n, mounts.map(&v)));
        }
        let command: Vec<String> = c["command"]
            .as_array()
            .ok_or(
                "container without command (the fake node does not read the image's ENTRYPOINT)",
            )?
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        let mut args: Vec<String> = Vec::new();
        let mut listen_ports = Vec::new();
        for a in c["args"].as_array().into_iter().flatten() {
            let a = a.as_str().unwrap_or("");
            if let Some((flag, addr)) = a.split_once("=0.0.0.0:") {
                listen_ports.push(addr.parse::<u16>().map_err(|e| format!("{a}: {e}"))?);
                args.push(format!("{flag}=127.0.0.1:0"));
            } else {
                args.push(mounts.map(&self.resolve_services(a)));
            }
        }
        if let Some(l) = listen {
            *l = listen_ports;
        }
        let program = mounts.host(&command[0]);
        // The sandbox: a private mount namespace, then setpriv.
        let script = r#"set -eu
sa="$1"; ro="$2"; shift 2
if [ -n "$sa" ]; then
  mount -t tmpfs -o mode=0755 fake-kubelet-run /run
  mkdir -p /run/secrets/kubernetes.io/serviceaccount
  mount --bind "$sa" /run/secrets/kubernetes.io/serviceaccount
  mount -o remount,bind,ro /run/secrets/kubernetes.io/serviceaccount
fi
while [ "$1" != "--" ]; do
  mount --bind "$1" "$2"
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$2"; fi
  shift 3
done
shift
if [ "$ro" = 1 ]; then mount -o remount,bind,ro /; fi
exec "$@""#;
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            "fake-kubelet",
        ])
        .arg(sa_dir.map(|d| d.display().to_string()).unwrap_or_default())
        .arg(if ro { "1" } else { "0" });
        for (src, dst, ro) in &binds {
            cmd.arg(src).arg(dst).arg(if *ro { "ro" } else { "rw" });
        }
        cmd.arg("--")
            .arg("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"));
        match fs_group {
            Some(g) => cmd.arg(format!("--groups={g}")),
            None => cmd.arg("--clear-groups"),
        };
        if no_new_privs {
            cmd.arg("--no-new-privs");
        }
        if drop_all {
            cmd.args(["--inh-caps=-all", "--bounding-set=-all"]);
        }
        cmd.arg("--").arg(&program).args(&args);
        cmd.env_clear().envs(env).current_dir("/");
        Ok(cmd)
    }

    /// Starts pod `pod` of StatefulSet `sts`; `None` while it must wait.
    fn start_pod(
        &self,
        pod: &str,
        template: &Value,
        sts: &Value,
        generation: i64,
    ) -> Result<Option<PodProcess>, String> {
        let spec = &template["spec"];
        let cs = spec["containers"].as_array().ok_or("no containers")?;
        if cs.len() != 1 || spec["initContainers"].is_array() {
            return Err("the fake node runs StatefulSet pods with exactly one container".into());
        }
        let dir = self.pod_dir(pod);
        let Some(mounts) = self.volumes(spec, Some((sts, pod)), &dir)? else {
            return Ok(None);
        };
        let c = &cs[0];
        let mut listen = Vec::new();
        let mut cmd = self.container_command(pod, spec, c, &mounts, &dir, Some(&mut listen))?;
        std::fs::create_dir_all(self.work.join("logs")).expect("logs dir");
        let log = self.work.join("logs").join(format!(
            "{}-{}.log",
            dir.file_name().unwrap_or_default().to_string_lossy(),
            generation
        ));
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .map_err(|e| format!("cannot start pod {pod}: {e}"))?;
        // lockbox prints `api address: SCHEME://HOST:PORT` and `health
        // address: HOST:PORT` once it listens; the listen flags come in that
        // order (--api-address, then --health-address).
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut seen: Vec<(String, u16)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        while seen.len() < listen.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    for kind in ["api address: ", "health address: "] {
                        if let Some(a) = line.strip_prefix(kind) {
                            let port = a
                                .rsplit(':')
                                .next()
                                .and_then(|p| p.parse().ok())
                                .unwrap_or(0);
                            seen.push((kind.to_string(), port));
                        }
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "pod {pod} did not start listening:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    ));
                }
            }
        }
        let api_flag = c["args"]
            .as_array()
            .into_iter()
            .flatten()
            .position(|a| a.as_str().is_some_and(|s| s.starts_with("--api-address=")));
        let health_flag = c["args"].as_array().into_iter().flatten().position(|a| {
            a.as_str()
                .is_some_and(|s| s.starts_with("--health-address="))
        });
        let ordered = matches!((api_flag, health_flag), (Some(a), Some(h)) if a < h);
        if !ordered || listen.len() != 2 {
            return Err(format!(
                "expected --api-address before --health-address, both on 0.0.0.0: {}",
                c["args"]
            ));
        }
        let mut ports = HashMap::new();
        for (i, (kind, port)) in seen.iter().enumerate() {
            let want = if i == 0 {
                "api address: "
            } else {
                "health address: "
            };
            if kind != want {
                return Err(format!("unexpected order of address lines: {seen:?}"));
            }
            ports.insert(listen[i], *port);
        }
        let grace =
            Duration::from_secs(spec["terminationGracePeriodSeconds"].as_u64().unwrap_or(30));
        let proc_ = PodProcess {
            child,
            ports,
            generation,
            claims: mounts.1.clone(),
            log,
            sa_dir: Some(dir.join("serviceaccount")).filter(|d| d.is_dir()),
            grace,
        };
        // The sandbox is what the spec says.
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", proc_.pid())).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        let uid = c["securityContext"]["runAsUser"]
            .as_u64()
            .or(spec["securityContext"]["runAsUser"].as_u64())
            .unwrap_or(0);
        if field("Uid:") != format!("{uid} {uid} {uid} {uid}")
            || field("NoNewPrivs:") != "1"
            || field("CapEff:") != "0000000000000000"
            || field("CapBnd:") != "0000000000000000"
        {
            return Err(format!("pod {pod} is not sandboxed as expected:\n{status}"));
        }
        let mountinfo =
            std::fs::read_to_string(format!("/proc/{}/mountinfo", proc_.pid())).unwrap_or_default();
        let root_ro = mountinfo.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(4) == Some(&"/") && f.get(5).is_some_and(|o| o.split(',').any(|x| x == "ro"))
        });
        if !root_ro {
            return Err(format!("pod {pod}: the root filesystem is not read-only"));
        }
        self.event(format!(
            "pod {pod} started (generation {generation}, pid {}, ports {:?})",
            proc_.pid(),
            proc_.ports
        ));
        Ok(Some(proc_))
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::Relaxed);
            let _ = t.join();
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}

fn pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Write);
}

fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| &labels[k] == v))
}

fn container_port(c: &Value, port: &Value) -> Option<u16> {
    match port {
        Value::String(name) => {
            c["ports"].as_array()?.iter().find(|p| &p["name"] == name)?["containerPort"]
                .as_u64()
                .map(|p| p as u16)
        }
        Value::Number(n) => n.as_u64().map(|p| p as u16),
        _ => None,
    }
}
