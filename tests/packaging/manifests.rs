//! `deploy/` against the chart, and the chart's objects against a real
//! kube-apiserver (the shared one of this test binary, the current release
//! of `install-kube-current.sh` with the CRDs applied for real by the
//! harness).
//!
//! The ServiceMonitor of the non-default values needs the Prometheus
//! Operator's CRD, which is not installed here: it is left out of the dry
//! run (its fields are checked in `chart`).

use crate::harness::{Cluster, cluster};
use crate::{ci_values, docs, helm, render, repo, run};
use serde_json::Value;
use std::process::Command;

/// The documents as a kubectl-ready JSON list, without the ServiceMonitor.
fn as_list(docs: &[Value]) -> String {
    let items: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] != "ServiceMonitor")
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

fn kubectl_stdin(c: &Cluster, args: &[&str], input: &str) -> (bool, String) {
    let (ok, out, err) = c.kubectl_stdin(args, Some(input));
    (ok, format!("{out}{err}"))
}

#[test]
fn deploy_is_fresh_against_the_chart_and_chart_crds_match_crds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(Command::new("bash")
        .arg(repo().join("scripts/render-deploy.sh"))
        .arg(tmp.path())
        .env("HELM", crate::bin_dir().join("helm"))
        .current_dir(repo()));
    assert!(out.ok, "scripts/render-deploy.sh failed:\n{}", out.all());
    for file in ["lockbox.yaml", "rbac/operator-clusterrole.yaml"] {
        let fresh = std::fs::read_to_string(tmp.path().join(file)).expect("rendered");
        let committed =
            std::fs::read_to_string(repo().join("deploy").join(file)).unwrap_or_default();
        assert!(
            fresh == committed,
            "deploy/{file} is stale: run scripts/render-deploy.sh (first difference at line {})",
            fresh
                .lines()
                .zip(committed.lines())
                .position(|(a, b)| a != b)
                .map(|i| i + 1)
                .unwrap_or(fresh.lines().count().min(committed.lines().count()) + 1)
        );
    }
    // The chart ships the generated CRDs, byte for byte, and nothing else.
    let list = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(repo().join(dir))
            .expect("crd dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        v.sort();
        v
    };
    let top = list("crds");
    assert!(!top.is_empty());
    assert_eq!(
        list("charts/lockbox/crds"),
        top,
        "charts/lockbox/crds/ files"
    );
    for f in &top {
        let a = std::fs::read(repo().join("crds").join(f)).expect("crd");
        let b = std::fs::read(repo().join("charts/lockbox/crds").join(f)).expect("chart crd");
        assert!(
            a == b,
            "charts/lockbox/crds/{f} differs from crds/{f}: cp crds/*.yaml charts/lockbox/crds/"
        );
    }
    // And the script refuses to render from stale chart CRDs.
    let stale = tempfile::tempdir().expect("tempdir");
    let copy = stale.path().join("repo");
    std::fs::create_dir_all(copy.join("deploy")).expect("mkdir");
    for d in ["charts", "crds", "scripts"] {
        let out = run(Command::new("cp").arg("-r").arg(repo().join(d)).arg(&copy));
        assert!(out.ok, "{}", out.all());
    }
    let crd = copy.join("charts/lockbox/crds").join(&top[0]);
    let text = std::fs::read_to_string(&crd).expect("crd");
    std::fs::write(&crd, text.replace("description:", "description: stale")).expect("write");
    let out = run(Command::new("bash")
        .arg(copy.join("scripts/render-deploy.sh"))
        .env("HELM", crate::bin_dir().join("helm")));
    assert!(
        !out.ok && out.stderr.contains("differs from crds/"),
        "{}",
        out.all()
    );
}

#[test]
fn rendered_manifests_pass_a_server_side_dry_run() {
    let c = cluster();
    let mut renders: Vec<(String, String)> = vec![(
        "deploy/lockbox.yaml".into(),
        std::fs::read_to_string(repo().join("deploy/lockbox.yaml")).expect("deploy/lockbox.yaml"),
    )];
    for f in ci_values() {
        let ns = format!(
            "pkg-dry-{}",
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .trim_end_matches("-values.yaml")
        );
        let text = render(
            "lockbox",
            &ns,
            &["-f", &f.to_string_lossy(), "--include-crds"],
        );
        renders.push((ns, text));
    }
    for (what, text) in renders {
        let all = docs(&text);
        // Namespaces and CRDs for real (the CRDs are the same as crds/,
        // already applied by the harness: this is a no-op for them).
        let ns = all
            .iter()
            .find_map(|d| d["metadata"]["namespace"].as_str())
            .expect("a namespaced object")
            .to_string();
        c.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
        ));
        // What the ServiceAccount controller would create (the API server
        // refuses pods without it).
        c.apply(&format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: {ns}\n"
        ));
        let (first, rest): (Vec<Value>, Vec<Value>) = all
            .into_iter()
            .partition(|d| d["kind"] == "CustomResourceDefinition" || d["kind"] == "Namespace");
        assert_eq!(
            first
                .iter()
                .filter(|d| d["kind"] == "CustomResourceDefinition")
                .count(),
            5,
            "{what}: all five CRDs are rendered"
        );
        let (ok, out) = kubectl_stdin(c, &["apply", "--server-side", "-f", "-"], &as_list(&first));
        assert!(ok, "{what}: applying the CRDs and namespace: {out}");
        let kinds: Vec<String> = rest
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or("").to_string())
            .collect();
        for want in ["StatefulSet", "Service", "Pod"] {
            assert!(
                kinds.iter().any(|k| k == want) || (want == "Pod" && what.starts_with("deploy/")),
                "{what}: no {want} in {kinds:?}"
            );
        }
        assert!(
            !(what.starts_with("deploy/") && kinds.iter().any(|k| k == "Pod")),
            "deploy/ must not contain the helm test pod"
        );
        let (ok, out) = kubectl_stdin(
            c,
            &["apply", "--dry-run=server", "-f", "-"],
            &as_list(&rest),
        );
        assert!(
            ok,
            "{what}: kubectl apply --dry-run=server refused it:\n{out}"
        );
        let accepted = out
            .lines()
            .filter(|l| l.contains("(server dry run)"))
            .count();
        assert_eq!(
            accepted,
            rest.iter()
                .filter(|d| d["kind"] != "ServiceMonitor")
                .count(),
            "{what}: every object accepted:\n{out}"
        );
    }
    // The dry run can fail: an unknown field is refused.
    let broken = serde_json::json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "x", "namespace": "default"},
        "spec": {"ports": [{"port": 80, "targetPortt": "api"}]}});
    let (ok, out) = kubectl_stdin(
        c,
        &["apply", "--dry-run=server", "-f", "-"],
        &broken.to_string(),
    );
    assert!(!ok && out.contains("targetPortt"), "{out}");
}

#[test]
fn plain_manifests_apply_for_real() {
    // README: `kubectl apply --server-side -f deploy/`.
    let c = cluster();
    let text =
        std::fs::read_to_string(repo().join("deploy/lockbox.yaml")).expect("deploy/lockbox.yaml");
    let list = as_list(&docs(&text));
    for round in 0..2 {
        let (ok, out) = kubectl_stdin(c, &["apply", "--server-side", "-f", "-"], &list);
        assert!(ok, "round {round}: {out}");
    }
    let ns = c.get(&["namespace", "lockbox-system"], "{.metadata.labels}");
    assert!(
        ns.contains("\"pod-security.kubernetes.io/enforce\":\"restricted\""),
        "{ns}"
    );
    let sc = c.get(
        &["statefulset", "lockbox", "-n", "lockbox-system"],
        "{.spec.template.spec.containers[0].securityContext}",
    );
    let sc: Value = serde_json::from_str(&sc).expect("securityContext");
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    for (kind, name) in [
        ("serviceaccount", "lockbox"),
        ("role", "lockbox"),
        ("rolebinding", "lockbox"),
        ("service", "lockbox"),
        ("service", "lockbox-metrics"),
        ("poddisruptionbudget", "lockbox"),
    ] {
        assert_eq!(
            c.get(&[kind, name, "-n", "lockbox-system"], "{.metadata.name}"),
            name,
            "{kind}"
        );
    }
    assert_eq!(
        c.get(
            &["clusterrolebinding", "lockbox"],
            "{.subjects[0].namespace}"
        ),
        "lockbox-system"
    );
}

fn kube_get(kubeconfig: &std::path::Path, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = run(Command::new(crate::bin_dir().join("kubectl"))
        .args(&all)
        .env("KUBECONFIG", kubeconfig));
    out.ok
        .then(|| serde_json::from_str(&out.stdout).expect("kubectl JSON"))
}

#[test]
fn helm_install_upgrade_and_uninstall_on_the_api_server() {
    let c = cluster();
    let kc = c.dir.join("kubeconfig");
    let kc = Some(kc.as_path());
    let ns = "pkg-helm";
    let rel = "lockbox-it";
    // A typo fails the install before anything is created.
    let out = helm(
        &[
            "install",
            "bad-lockbox",
            "charts/lockbox",
            "-n",
            ns,
            "--create-namespace",
            "--set",
            "tls.secretNme=x",
        ],
        kc,
    );
    assert!(
        !out.ok && out.stderr.contains("'secretNme' not allowed"),
        "{}",
        out.all()
    );
    assert!(
        !helm(&["status", "bad-lockbox", "-n", ns], kc).ok,
        "no release after a schema error"
    );

    let out = helm(
        &[
            "install",
            rel,
            "charts/lockbox",
            "-n",
            ns,
            "--create-namespace",
        ],
        kc,
    );
    assert!(out.ok, "helm install: {}", out.all());
    let kcp = c.dir.join("kubeconfig");
    let sts = kube_get(&kcp, &["statefulset", rel, "-n", ns]).expect("StatefulSet");
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["securityContext"]["fsGroup"], 65532);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["serviceAccountName"], rel);
    let c0 = &pod["containers"][0];
    assert_eq!(c0["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c0["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c0["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(c0["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c0["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "1Gi"
    );
    let pdb = kube_get(&kcp, &["poddisruptionbudget", rel, "-n", ns]).expect("PDB");
    assert_eq!(
        pdb["apiVersion"], "policy/v1",
        "the chart picks the version the cluster serves"
    );
    for (kind, name) in [
        ("serviceaccount", rel.to_string()),
        ("role", rel.to_string()),
        ("rolebinding", rel.to_string()),
        ("service", rel.to_string()),
        ("service", format!("{rel}-metrics")),
    ] {
        assert!(
            kube_get(&kcp, &[kind, &name, "-n", ns]).is_some(),
            "{kind} {name}"
        );
    }
    let cr = kube_get(&kcp, &["clusterrole", rel]).expect("ClusterRole");
    assert_eq!(cr["rules"].as_array().map(Vec::len), Some(3));
    // `helm test` pods are hooks: not created by the install.
    assert!(kube_get(&kcp, &["pod", &format!("{rel}-test"), "-n", ns]).is_none());

    // Upgrade to the development values: no TLS, RBAC and ServiceAccount
    // managed outside the chart, no PDB; Helm removes what is gone.
    let dev = repo().join("charts/lockbox/ci/dev-values.yaml");
    let out = helm(
        &[
            "upgrade",
            rel,
            "charts/lockbox",
            "-n",
            ns,
            "-f",
            &dev.to_string_lossy(),
        ],
        kc,
    );
    assert!(out.ok, "helm upgrade: {}", out.all());
    for (kind, name) in [
        ("serviceaccount", rel),
        ("role", rel),
        ("poddisruptionbudget", rel),
    ] {
        assert!(
            kube_get(&kcp, &[kind, name, "-n", ns]).is_none(),
            "{kind} {name} removed"
        );
    }
    assert!(
        kube_get(&kcp, &["clusterrole", rel]).is_none(),
        "ClusterRole removed"
    );
    let sts = kube_get(&kcp, &["statefulset", rel, "-n", ns]).expect("StatefulSet");
    assert_eq!(sts["spec"]["replicas"], 0);
    assert!(
        !sts["spec"]["template"]["spec"]["containers"][0]["args"]
            .to_string()
            .contains("tls")
    );

    // And to every optional object (but the ServiceMonitor: no CRD here).
    // The persistence values stay: a StatefulSet's volumeClaimTemplates
    // cannot change after install, and the API server says so.
    let all = repo().join("charts/lockbox/ci/all-features-values.yaml");
    let all = all.to_string_lossy();
    let base = [
        "upgrade",
        rel,
        "charts/lockbox",
        "-n",
        ns,
        "-f",
        &all,
        "--set",
        "metrics.serviceMonitor.enabled=false",
        "--set",
        "fullnameOverride=lockbox-it",
    ];
    let out = helm(&base, kc);
    // Older releases refuse the whole spec ("updates to statefulset spec for
    // fields other than ..."); current ones (1.37) name the field.
    let all = out.all();
    assert!(
        !out.ok
            && (all.contains("updates to statefulset spec for fields other than")
                || (all.contains("spec.volumeClaimTemplates")
                    && all.contains("field is immutable"))),
        "changing persistence.* after install: {all}"
    );
    let mut keep = base.to_vec();
    keep.extend_from_slice(&[
        "--set",
        "persistence.size=1Gi",
        "--set",
        "persistence.storageClassName=",
        "--set-json",
        "persistence.annotations={}",
    ]);
    let out = helm(&keep, kc);
    assert!(out.ok, "helm upgrade: {}", out.all());
    let np = kube_get(&kcp, &["networkpolicy", rel, "-n", ns]).expect("NetworkPolicy");
    assert_eq!(np["spec"]["ingress"][0]["ports"][0]["port"], "api");
    assert_eq!(
        kube_get(&kcp, &["service", rel, "-n", ns]).expect("Service")["spec"]["ports"][0]["port"],
        8443
    );

    // Uninstall: the objects go, the CRDs stay (Helm never deletes crds/).
    let out = helm(&["uninstall", rel, "-n", ns], kc);
    assert!(out.ok, "helm uninstall: {}", out.all());
    for (kind, name) in [
        ("statefulset", rel),
        ("service", rel),
        ("serviceaccount", "lockbox-operator"),
        ("networkpolicy", rel),
    ] {
        assert!(
            kube_get(&kcp, &[kind, name, "-n", ns]).is_none(),
            "{kind} {name} left behind"
        );
    }
    assert!(kube_get(&kcp, &["clusterrole", rel]).is_none());
    for crd in [
        "plugincatalogentries.lockbox.dev",
        "secretsmounts.lockbox.dev",
    ] {
        assert!(
            kube_get(&kcp, &["crd", crd]).is_some(),
            "{crd} must survive helm uninstall"
        );
    }
}
