//! README.md, "Install on Kubernetes": every command, in order, against a
//! real kube-apiserver of its own, with [`crate::kubelet::FakeNode`] as the
//! kubelet and StatefulSet controller.
//!
//! The section's ```sh blocks run in one bash session (exported variables
//! carry over; `set -euo pipefail`), in a directory where `charts/`,
//! `deploy/` and `crds/` are the repository's, with kubectl, helm and the
//! `lockbox` CLI on PATH and KUBECONFIG pointing at the test's API server.
//! Changes to the text are deliberate and few:
//! - a line marked `# tests: ...` is not run; [`MARKED`] lists every such
//!   line and what the test does instead (an unknown mark fails the test);
//! - `127.0.0.1:8200` (the port-forward's local port) becomes the port of
//!   the test's forwarder.
//!
//! Between blocks the test checks what the README promises, and does what
//! the README leaves to the reader (copying the new plugin build into the
//! plugin volume).

use crate::harness::{EmptyCluster, cluster};
use crate::kubelet::{FakeNode, Kube, build_image};
use crate::{Out, bin_dir, repo, workspace_binary};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Marked commands (their text before the mark) and what the test does
/// instead of running them.
const MARKED: [(&str, &str); 5] = [
    (
        "docker build -t registry.example.com/lockbox:0.1.0 .",
        "lays the image out from the Dockerfile (kubelet::build_image)",
    ),
    (
        "docker push registry.example.com/lockbox:0.1.0",
        "nothing: the fake node uses that layout",
    ),
    (
        "docker build --target plugin-digests --output type=local,dest=. .",
        "writes SHA256SUMS from the same binaries",
    ),
    (
        "kubectl apply --server-side -f deploy/",
        "manifests::plain_manifests_apply_for_real",
    ),
    (
        "kubectl port-forward -n lockbox-system svc/lockbox 8200:8200 &",
        "FakeNode::forwarder",
    ),
];

/// The ```sh blocks of the README's "Install on Kubernetes" section.
pub fn section_blocks() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let start = text
        .find("\n## Install on Kubernetes\n")
        .expect("README.md has a section \"Install on Kubernetes\"");
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map(|i| i + 4).unwrap_or(rest.len());
    let section = &rest[..end];
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in section.lines() {
        match (&mut cur, line.trim_end()) {
            (None, "```sh") => cur = Some(String::new()),
            (Some(_), "```") => blocks.push(cur.take().unwrap_or_default()),
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            (None, l) => assert!(
                !l.starts_with("```"),
                "only ```sh blocks in the section: {l}"
            ),
        }
    }
    assert!(cur.is_none(), "unterminated block");
    blocks
}

/// Replaces marked lines with a no-op, checking each mark is known.
fn unmark(block: &str) -> String {
    let mut out = String::new();
    for line in block.lines() {
        if let Some((cmd, _)) = line.split_once("# tests:") {
            let cmd = cmd.trim();
            assert!(
                MARKED.iter().any(|(m, _)| *m == cmd),
                "README marks {cmd:?} as not run by the tests, but tests/packaging/readme.rs does not know it"
            );
            assert!(
                !line.trim_end().ends_with('\\'),
                "a marked command must be one line"
            );
            out.push_str(": not run here\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A bash session: each block runs in a fresh bash that first loads the
/// variables the previous block exported.
struct Shell {
    cwd: PathBuf,
    state: PathBuf,
    env: Vec<(String, String)>,
    transcript: String,
}

impl Shell {
    /// Runs `script`; stops it early (its whole process group) when the
    /// fake node reports an error, which a real cluster would show as a
    /// failing pod while the README's command waits.
    fn run(&mut self, node: &FakeNode, what: &str, script: &str) -> Out {
        use std::os::unix::process::CommandExt;
        let full = format!(
            "set -euo pipefail\n[ -f '{state}' ] && source '{state}'\nset -x\n{script}\nset +x\nexport -p > '{state}'\n",
            state = self.state.display()
        );
        let log = tempfile::tempfile().expect("stdout file");
        let errlog = tempfile::tempfile().expect("stderr file");
        let mut child = Command::new("bash")
            .args(["-c", &full])
            .current_dir(&self.cwd)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("clone"))
            .stderr(errlog.try_clone().expect("clone"))
            .process_group(0)
            .spawn()
            .expect("run bash");
        let errors_before = node.errors().len();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(900);
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break Some(st);
            }
            if node.errors().len() > errors_before || std::time::Instant::now() > deadline {
                let _ = Command::new("kill")
                    .args(["-TERM", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        };
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
            let mut s = String::new();
            let _ = f.seek(std::io::SeekFrom::Start(0));
            let _ = f.read_to_string(&mut s);
            s
        };
        let out = Out {
            ok: status.is_some_and(|s| s.success()),
            code: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout: read(log),
            stderr: read(errlog),
        };
        self.transcript.push_str(&format!(
            "==== {what} (exit {}) ====\n{}{}\n",
            out.code, out.stdout, out.stderr
        ));
        out
    }
}

fn must(node: &FakeNode, shell: &Shell, what: &str, out: &Out) {
    assert!(
        out.ok,
        "README block {what} failed (exit {}):\n{}\n---- fake node events ----\n{}\n---- errors ----\n{}\n---- pod logs ----\n{}",
        out.code,
        shell.transcript,
        node.events().join("\n"),
        node.errors().join("\n"),
        node.logs()
    );
}

fn symlink(src: &Path, dst: &Path) {
    std::os::unix::fs::symlink(src, dst)
        .unwrap_or_else(|e| panic!("symlink {}: {e}", dst.display()));
}

#[test]
fn readme_install_on_kubernetes_runs_end_to_end() {
    let blocks = section_blocks();
    assert_eq!(
        blocks.len(),
        10,
        "the test walks through 10 blocks (image, install, plain manifests, entry+mount, read/write, \
         upgrade, plugin upgrade, uninstall, finalizer, destroy); update it with the README"
    );
    assert!(
        MARKED
            .iter()
            .all(|(m, _)| blocks.iter().any(|b| b.contains(m))),
        "every known mark is still in the README"
    );
    let _ = cluster();
    let empty = EmptyCluster::start();
    let bin = bin_dir();
    let kube = Kube::from_dir(&empty.dir, &bin);
    let tmp = tempfile::Builder::new()
        .prefix("lockbox-readme-")
        .tempdir()
        .expect("tempdir");
    let cwd = tmp.path().join("work");
    let tools = tmp.path().join("bin");
    for d in [&cwd, &tools, &tmp.path().join("home")] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    for d in ["charts", "deploy", "crds"] {
        symlink(&repo().join(d), &cwd.join(d));
    }
    symlink(&bin.join("kubectl"), &tools.join("kubectl"));
    symlink(&bin.join("helm"), &tools.join("helm"));
    symlink(&workspace_binary("lockbox"), &tools.join("lockbox"));

    let node = FakeNode::start(kube.clone(), "lockbox-system");
    let forward = node.forwarder("lockbox", 8200);
    let helm_home = tmp.path().join("helm");
    let mut shell = Shell {
        cwd: cwd.clone(),
        state: tmp.path().join("state.sh"),
        env: vec![
            (
                "PATH".into(),
                format!("{}:/usr/local/bin:/usr/bin:/bin", tools.display()),
            ),
            ("HOME".into(), tmp.path().join("home").display().to_string()),
            ("KUBECONFIG".into(), kube.kubeconfig.display().to_string()),
            (
                "HELM_CACHE_HOME".into(),
                helm_home.join("cache").display().to_string(),
            ),
            (
                "HELM_CONFIG_HOME".into(),
                helm_home.join("config").display().to_string(),
            ),
            (
                "HELM_DATA_HOME".into(),
                helm_home.join("data").display().to_string(),
            ),
        ],
        transcript: String::new(),
    };
    let blocks: Vec<String> = blocks
        .iter()
        .map(|b| unmark(b).replace("127.0.0.1:8200", &format!("127.0.0.1:{forward}")))
        .collect();

    // 1. The image: all marked. The digests the build would write.
    assert!(
        blocks[0].lines().all(|l| l.starts_with(": not run here")),
        "{}",
        blocks[0]
    );
    let (_, sums) = build_image(&tmp.path().join("image-build"));
    std::fs::write(cwd.join("SHA256SUMS"), &sums).expect("SHA256SUMS");
    let out = shell.run(&node, "1 image", &blocks[0]);
    must(&node, &shell, "1", &out);

    // 2. Namespace, TLS, install, rollout, helm test.
    let out = shell.run(&node, "2 install", &blocks[1]);
    must(&node, &shell, "2", &out);
    assert!(
        out.stdout.contains("STATUS: deployed"),
        "{}",
        shell.transcript
    );
    assert!(
        out.stdout
            .contains("statefulset rolling update complete 1 pods"),
        "rollout status: {}",
        shell.transcript
    );
    assert!(
        out.stdout.contains("Phase:          Succeeded"),
        "helm test: {}",
        shell.transcript
    );
    let events = node.events().join("\n");
    for step in [
        "api-answers",
        "register-mock-plugin",
        "mount",
        "write",
        "read",
        "unmount",
        "deregister-mock-plugin",
    ] {
        assert!(
            events.contains(&format!("container {step}: ok")),
            "helm test step {step} did not run: {events}"
        );
    }
    // The operator ran as the chart's ServiceAccount and created its Secrets.
    for secret in ["lockbox-unseal-keys", "lockbox-root-token"] {
        assert!(
            kube.get(&["secret", secret, "-n", "lockbox-system"])
                .is_some(),
            "{secret}"
        );
    }
    let pid = node.pod_pid("lockbox").expect("pod lockbox-0 runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("65532")),
        "{status}"
    );

    // 3. Plain manifests: marked (see manifests.rs).
    assert!(
        blocks[2].lines().all(|l| l.starts_with(": not run here")),
        "{}",
        blocks[2]
    );

    // 4. First catalog entry and mount.
    let out = shell.run(&node, "4 catalog entry and mount", &blocks[3]);
    must(&node, &shell, "4", &out);
    let mount = kube
        .get(&["secretsmount", "kv", "-n", "team-a"])
        .expect("mount");
    assert_eq!(mount["status"]["path"], "team-a/kv/");

    // 5. Read and write.
    let out = shell.run(&node, "5 read and write", &blocks[4]);
    must(&node, &shell, "5", &out);
    assert!(
        out.stdout.contains("s3cret"),
        "lockbox read: {}",
        shell.transcript
    );

    // The other examples in deploy/examples/, with the commands their
    // comments give.
    let examples = r#"
for p in passgen userpass; do
  sha=$(awk -v b="lockbox-plugin-$p" '$2 == b {print $1}' SHA256SUMS)
  sed "s/0\{64\}/$sha/" deploy/examples/plugincatalogentry-$p.yaml | kubectl apply -f -
  kubectl wait --for=condition=Ready plugincatalogentry/$p --timeout=60s
done
kubectl apply -f deploy/examples/secretsmount-passwords.yaml
kubectl wait --for=condition=Ready secretsmount/passwords -n team-a --timeout=60s
lockbox write team-a/passwords/roles/db length=32 charset=alphanumeric
lockbox read team-a/passwords/generate/db
lockbox auth enable userpass
lockbox write auth/userpass/users/alice password=wonderland policies=dev
lockbox login -method=userpass username=alice password=wonderland
kubectl delete secretsmount passwords -n team-a
kubectl delete plugincatalogentry passgen userpass
"#;
    let out = shell.run(&node, "examples passgen, userpass", examples);
    must(&node, &shell, "examples", &out);
    assert!(out.stdout.contains("password"), "{}", shell.transcript);

    // 6. Upgrade with a plugin volume. The new plugin build: the mock
    // plugin with different bytes (trailing data changes the digest).
    let mut v2 = std::fs::read(workspace_binary("lockbox-plugin-mock")).expect("mock plugin");
    v2.extend_from_slice(b"\nlockbox readme test: v2\n");
    std::fs::write(cwd.join("lockbox-plugin-mock-v2"), &v2).expect("write v2");
    let out = shell.run(&node, "6 upgrade", &blocks[5]);
    must(&node, &shell, "6", &out);
    assert!(
        out.stdout.contains("s3cret"),
        "data after the upgrade: {}",
        shell.transcript
    );
    assert!(
        node.events()
            .iter()
            .any(|e| e.contains("generation 2) ready")),
        "the pod was replaced: {:?}",
        node.events()
    );

    // 7. Plugin upgrade: the new build is in the volume (what the reader does).
    let vol = node.claim_dir("lockbox-plugins");
    let dst = vol.join("lockbox-plugin-mock-v2");
    std::fs::write(&dst, &v2).expect("copy v2 into the volume");
    crate::kubelet::make_executable(&dst);
    let out = shell.run(&node, "7 plugin upgrade", &blocks[6]);
    must(&node, &shell, "7", &out);
    assert!(
        out.stdout.contains("s3cret"),
        "data after the plugin upgrade: {}",
        shell.transcript
    );
    let mount = kube
        .get(&["secretsmount", "kv", "-n", "team-a"])
        .expect("mount");
    assert_eq!(mount["status"]["runningSha256"], crate::sha256_hex(&dst));

    // 8. Uninstall: what stays.
    let out = shell.run(&node, "8 uninstall", &blocks[7]);
    must(&node, &shell, "8", &out);
    for kept in [
        "data-lockbox-0",
        "lockbox-unseal-keys",
        "lockbox-root-token",
        "lockbox-tls",
    ] {
        assert!(
            out.stdout.contains(kept),
            "{kept} is kept: {}",
            shell.transcript
        );
    }
    assert!(
        kube.get(&["statefulset", "lockbox", "-n", "lockbox-system"])
            .is_none()
    );
    // The fake node notices the deletion on its next round (as a kubelet
    // does, a moment after the API server).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while node.pod_pid("lockbox").is_some() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        node.pod_pid("lockbox").is_none(),
        "the pod stops with its StatefulSet"
    );
    for crd in [
        "plugincatalogentries.lockbox.dev",
        "secretsmounts.lockbox.dev",
    ] {
        assert!(
            kube.get(&["crd", crd]).is_some(),
            "{crd} survives helm uninstall"
        );
    }

    // 9. A mount deleted after lockbox is gone waits on its finalizer.
    let stuck = "apiVersion: lockbox.dev/v1alpha1\nkind: SecretsMount\nmetadata:\n  name: kv\n  namespace: team-a\n  finalizers: [lockbox.dev/secrets-mount]\nspec:\n  plugin: mock\n";
    let o = kube.kubectl(&["apply", "-f", "-"], Some(stuck));
    assert!(o.ok, "{}", o.all());
    let o = kube.kubectl(
        &[
            "delete",
            "secretsmount",
            "kv",
            "-n",
            "team-a",
            "--wait=false",
        ],
        None,
    );
    assert!(o.ok, "{}", o.all());
    let o = kube
        .get(&["secretsmount", "kv", "-n", "team-a"])
        .expect("stuck mount");
    assert!(
        !o["metadata"]["deletionTimestamp"].is_null(),
        "the mount waits on its finalizer"
    );
    let out = shell.run(&node, "9 finalizer", &blocks[8]);
    must(&node, &shell, "9", &out);
    crate::harness::eventually(
        "the stuck mount to go",
        std::time::Duration::from_secs(30),
        || {
            kube.get(&["secretsmount", "kv", "-n", "team-a"])
                .is_none()
                .then_some(())
        },
    );

    // 10. Destroy.
    let out = shell.run(&node, "10 destroy", &blocks[9]);
    must(&node, &shell, "10", &out);
    assert!(
        kube.get(&["pvc", "data-lockbox-0", "-n", "lockbox-system"])
            .is_none()
    );
    assert!(
        kube.get(&["secret", "lockbox-root-token", "-n", "lockbox-system"])
            .is_none()
    );
    assert!(kube.get(&["crd", "secretsmounts.lockbox.dev"]).is_none());

    let errors = node.errors();
    assert!(
        errors.is_empty(),
        "the fake node saw errors: {errors:#?}\n{}",
        shell.transcript
    );
    drop(node);
    drop(empty);
}

#[test]
fn unknown_marks_are_refused() {
    let r = std::panic::catch_unwind(|| unmark("rm -rf /   # tests: trust me\n"));
    assert!(r.is_err(), "an unknown mark must fail the test");
    assert_eq!(unmark("kubectl get pods\n"), "kubectl get pods\n");
}
