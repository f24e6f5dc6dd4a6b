//! Packaging tests: the Helm chart (`charts/lockbox`), the rendered plain
//! manifests (`deploy/`), the `Dockerfile` and the README's "Install on
//! Kubernetes" section.
//!
//! | module | checks |
//! |---|---|
//! | `chart` | `helm lint`, `helm template` with default and non-default values, schema errors, the restricted Pod Security Standard, least-privilege RBAC, every rendered flag accepted by the binary, comments on every value |
//! | `manifests` | `deploy/` fresh against the chart, chart `crds/` == `crds/`; the rendered manifests accepted by a real kube-apiserver (`kubectl apply --dry-run=server`); a real `helm install` / `upgrade` / `uninstall` |
//! | `ha` | the chart with `ha.enabled`: the HA objects (no PVC, pod-IP addresses, the URL from a Secret, the active Service, PDB minAvailable, anti-affinity), RBAC of HA mode, bad HA values, `--ha` without PostgreSQL, a real `helm install` |
//! | `dockerfile` | without Docker: stages, user, paths the chart relies on, the binaries it copies are the workspace's and link only against glibc |
//! | `kube_auth` | Kubernetes auth out of the box: the chart's flags and auth-delegator binding, the Dockerfile's build of the pinned upstream plugin and its recorded sum, a real `helm install` where a ServiceAccount token logs in (another namespace's is refused), an admin's config survives a restart, and the pod's token rotates without a restart |
//! | `kind` | `tests/e2e/kind/` without Docker: the script parses, its files exist, its `helm install` values pass the schema and render what it needs |
//! | `readme` | every command of the README section, run against a real kube-apiserver with the pod played by [`kubelet`] |
//!
//! Real components: helm and kubectl from `tests/harness/install-kube.sh`,
//! kube-apiserver + etcd from `tests/harness/kube-up.sh` (shared with the
//! operator tests through `tests/operator/harness.rs`), the real `lockbox`
//! and plugin binaries. Nothing is skipped: a missing tool fails the test
//! with the reason. Parallel-safe: every test uses its own release names,
//! namespaces and directories (the README walk-through gets its own API
//! server); helm's cache and config live in a directory of this process.

#[allow(dead_code)]
#[path = "../operator/harness.rs"]
mod harness;

mod chart;
mod dockerfile;
mod ha;
mod kind;
mod kube_auth;
mod kubelet;
mod manifests;
mod readme;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Directory with helm and kubectl (installing them if needed; this also
/// starts the shared API server, so install-kube.sh never runs twice at once).
pub fn bin_dir() -> PathBuf {
    harness::cluster().bin.clone()
}

/// Helm's cache, config and data directories for these tests (not the
/// user's; the commands used here read and write nothing shared there).
fn helm_home() -> &'static Path {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packaging-helm");
        std::fs::create_dir_all(&d).expect("helm home");
        d
    })
}

/// What a finished command did.
#[derive(Debug)]
pub struct Out {
    /// Exit status was 0.
    pub ok: bool,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Both streams, for messages.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` to completion with stdin closed.
pub fn run(cmd: &mut Command) -> Out {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Out {
        ok: out.status.success(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `helm ARGS` in the repository, against `kubeconfig` when given (else a
/// kubeconfig that does not exist: commands that need no cluster).
pub fn helm(args: &[&str], kubeconfig: Option<&Path>) -> Out {
    let home = helm_home();
    let mut cmd = Command::new(bin_dir().join("helm"));
    cmd.args(args)
        .current_dir(repo())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env(
            "KUBECONFIG",
            kubeconfig
                .map(Path::to_path_buf)
                .unwrap_or_else(|| home.join("no-kubeconfig")),
        );
    run(&mut cmd)
}

/// `helm template RELEASE charts/lockbox -n NS ARGS`; panics with helm's
/// message when it fails.
pub fn render(release: &str, namespace: &str, args: &[&str]) -> String {
    let mut all = vec!["template", release, "charts/lockbox", "-n", namespace];
    all.extend_from_slice(args);
    let out = helm(&all, None);
    assert!(out.ok, "helm {} failed:\n{}", all.join(" "), out.all());
    out.stdout
}

/// The documents of a multi-document YAML stream (empty ones dropped).
pub fn docs(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap_or_else(|e| panic!("not YAML: {e}\n{yaml}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The one document of `kind` named `name`.
pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind} {name}, found {}",
        found.len()
    );
    found[0]
}

/// The `ci/*-values.yaml` files of the chart (non-default values).
pub fn ci_values() -> Vec<PathBuf> {
    let dir = repo().join("charts/lockbox/ci");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("-values.yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "charts/lockbox/ci holds the non-default values"
    );
    files
}

/// The workspace's binaries in `target/debug`: `lockbox` (built by cargo for
/// this test) and the example plugins (built once here).
pub fn workspace_binary(name: &str) -> PathBuf {
    static PLUGINS: OnceLock<()> = OnceLock::new();
    let lockbox = PathBuf::from(env!("CARGO_BIN_EXE_lockbox"));
    if name == "lockbox" {
        return lockbox;
    }
    PLUGINS.get_or_init(|| {
        let packages: Vec<String> = dockerfile::workspace_plugins()
            .into_iter()
            .map(|(package, _)| package)
            .collect();
        let out = run(Command::new(env!("CARGO"))
            .args(["build", "-q"])
            .args(packages.iter().flat_map(|p| ["-p", p.as_str()]))
            .current_dir(repo()));
        assert!(
            out.ok,
            "building the example plugins failed:\n{}",
            out.all()
        );
    });
    let path = lockbox.parent().expect("target dir").join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// sha256 of a file, hex.
pub fn sha256_hex(path: &Path) -> String {
    harness::sha256_file(path)
}
