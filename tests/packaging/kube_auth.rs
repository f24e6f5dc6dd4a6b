//! Kubernetes auth out of the box (`kubernetesAuth.*`): the chart's render
//! and RBAC, the Dockerfile's build of the bundled upstream plugin, and a
//! real `helm install` whose pod (played by [`FakeNode`], with a real
//! ServiceAccount token and CA mounted at
//! `/var/run/secrets/kubernetes.io/serviceaccount` in the pod's mount
//! namespace) logs ServiceAccounts in through `auth/kubernetes/login` with
//! the upstream plugin reading that directory itself: no reviewer JWT or CA
//! is written anywhere.

use crate::dockerfile::{image_copies, stages};
use crate::harness::cluster;
use crate::kubelet::{FakeNode, Kube};
use crate::{Out, bin_dir, docs, find, helm, render, repo};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

fn args_of(docs: &[Value]) -> Vec<String> {
    let sts = docs
        .iter()
        .find(|d| d["kind"] == "StatefulSet")
        .expect("StatefulSet");
    sts["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str().map(String::from))
        .collect()
}

fn delegator_bindings(docs: &[Value]) -> Vec<&Value> {
    docs.iter()
        .filter(|d| {
            d["kind"] == "ClusterRoleBinding" && d["roleRef"]["name"] == "system:auth-delegator"
        })
        .collect()
}

/// Default values: the flags, the auth-delegator binding of exactly the
/// lockbox ServiceAccount, the token mounted; each switch turns its part
/// off; the schema refuses bad paths.
#[test]
fn the_chart_enables_kubernetes_auth_with_the_auth_delegator_binding() {
    let d = docs(&render("lockbox", "lockbox-system", &[]));
    let args = args_of(&d);
    for flag in [
        "--kubernetes-auth",
        "--kubernetes-auth-path=kubernetes",
        "--kubernetes-auth-sha256sums=/usr/lib/lockbox/SHA256SUMS",
    ] {
        assert!(args.iter().any(|a| a == flag), "{flag} in {args:?}");
    }
    let b = find(&d, "ClusterRoleBinding", "lockbox-auth-delegator");
    assert_eq!(
        b["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"})
    );
    assert_eq!(
        b["subjects"],
        json!([{"kind": "ServiceAccount", "name": "lockbox", "namespace": "lockbox-system"}]),
        "only lockbox's ServiceAccount reviews tokens"
    );
    assert_eq!(delegator_bindings(&d).len(), 1);
    let sts = d
        .iter()
        .find(|x| x["kind"] == "StatefulSet")
        .expect("StatefulSet");
    assert_eq!(
        sts["spec"]["template"]["spec"]["automountServiceAccountToken"], true,
        "the plugin reads the pod's token"
    );

    // The image records the sums where the chart points.
    let sums = image_copies()
        .into_iter()
        .find(|c| c.src == "/out/SHA256SUMS")
        .expect("the image has SHA256SUMS");
    assert_eq!(sums.dest, "/usr/lib/lockbox/SHA256SUMS");

    // Off: no flags, no binding.
    let off = docs(&render(
        "lockbox",
        "lockbox-system",
        &["--set", "kubernetesAuth.enabled=false"],
    ));
    assert!(
        args_of(&off)
            .iter()
            .all(|a| !a.starts_with("--kubernetes-auth")),
        "{:?}",
        args_of(&off)
    );
    assert!(delegator_bindings(&off).is_empty());
    // rbac.create=false: the flags, but no RBAC at all.
    let no_rbac = docs(&render(
        "lockbox",
        "lockbox-system",
        &["--set", "rbac.create=false"],
    ));
    assert!(args_of(&no_rbac).iter().any(|a| a == "--kubernetes-auth"));
    assert!(delegator_bindings(&no_rbac).is_empty());
    // Another path; fullname and namespace follow the release.
    let other = docs(&render(
        "team",
        "secrets",
        &["--set", "kubernetesAuth.path=k8s/prod"],
    ));
    assert!(
        args_of(&other)
            .iter()
            .any(|a| a == "--kubernetes-auth-path=k8s/prod")
    );
    let b = find(&other, "ClusterRoleBinding", "team-lockbox-auth-delegator");
    assert_eq!(
        b["subjects"],
        json!([{"kind": "ServiceAccount", "name": "team-lockbox", "namespace": "secrets"}])
    );

    for (set, key) in [
        ("kubernetesAuth.path=", "kubernetesAuth/path"),
        ("kubernetesAuth.path=a b", "kubernetesAuth/path"),
        ("kubernetesAuth.path=/kubernetes", "kubernetesAuth/path"),
        ("kubernetesAuth.enabled=yes", "kubernetesAuth/enabled"),
        ("kubernetesAuth.pth=x", "kubernetesAuth"),
    ] {
        let out = helm(
            &["template", "x", "charts/lockbox", "--set-string", set],
            None,
        );
        assert!(
            !out.ok && out.all().contains(key),
            "--set {set} must be refused naming {key}:\n{}",
            out.all()
        );
    }
}

/// The Dockerfile builds the plugin from our pinned module, statically,
/// with the module's go.sum enforced, and records its sha256 in SHA256SUMS
/// and `sha256/` beside the example plugins'.
#[test]
fn the_image_builds_the_pinned_upstream_plugin_and_records_its_sum() {
    let st = stages();
    let go = st
        .iter()
        .find(|s| s.name.as_deref() == Some("vault-plugins"))
        .expect("vault-plugins stage");
    let body: Vec<String> = go
        .body
        .iter()
        .map(|i| format!("{} {}", i.keyword, i.args))
        .collect();
    let text = body.join("\n");
    assert!(
        text.contains("COPY tests/go/upstream/ /src/"),
        "the pinned modules (go.mod + go.sum) are the build's input:\n{text}"
    );
    for needle in ["CGO_ENABLED=0", "-mod=readonly", "-trimpath"] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    assert!(
        text.contains(
            "cd auth-kubernetes && go build -ldflags \"-s -w\" -o /out/vault-plugin-auth-kubernetes github.com/hashicorp/vault-plugin-auth-kubernetes/cmd/vault-plugin-auth-kubernetes"
        ),
        "{text}"
    );
    let gomod = std::fs::read_to_string(repo().join("tests/go/upstream/auth-kubernetes/go.mod"))
        .expect("go.mod");
    assert!(
        gomod.contains("github.com/hashicorp/vault-plugin-auth-kubernetes v0.23.1"),
        "pinned at v0.23.1 (the version tests/operator/kube_auth.rs runs)"
    );
    assert!(
        repo()
            .join("tests/go/upstream/auth-kubernetes/go.sum")
            .is_file()
    );
    let build = st
        .iter()
        .find(|s| s.name.as_deref() == Some("build"))
        .expect("build stage");
    let run = build
        .body
        .iter()
        .find(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .expect("RUN");
    for needle in [
        "cp \"/vault-plugins/$p\" /out/plugins/",
        "> \"/out/sha256/$p\"",
        "sha256sum lockbox-plugin-* vault-plugin-*) > /out/SHA256SUMS",
    ] {
        assert!(run.args.contains(needle), "{needle} in {}", run.args);
    }
    assert!(
        run.args
            .contains("for p in vault-plugin-secrets-kv vault-plugin-auth-kubernetes"),
        "{}",
        run.args
    );
}

/// A Vault API call through the forwarder (plain HTTP: TLS off here).
fn call(port: u16, method: &str, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
    let url = format!("http://127.0.0.1:{port}/v1/{path}");
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
    let data = body.map(Value::to_string);
    if let Some(d) = &data {
        args.extend_from_slice(&["-H", "Content-Type: application/json", "-d", d]);
    }
    args.push(&url);
    let out = Command::new("curl").args(&args).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

fn eventually<T>(
    what: &str,
    limit: Duration,
    node: &FakeNode,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}\n---- events ----\n{}\n---- errors ----\n{}\n---- pod logs ----\n{}",
            node.events().join("\n"),
            node.errors().join("\n"),
            node.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The release and namespaces of [`helm_install_gives_working_kubernetes_auth`];
/// removed on drop.
struct Release {
    kube: Kube,
    kubeconfig: std::path::PathBuf,
    namespaces: Vec<String>,
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = helm(
            &["uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "60s"],
            Some(self.kubeconfig.as_path()),
        );
        for ns in &self.namespaces {
            let _ = self
                .kube
                .kubectl(&["delete", "namespace", ns, "--wait=false"], None);
        }
    }
}

const RELEASE: &str = "lockbox-ka";
const NS: &str = "lockbox-ka";
const APPS: &str = "lockbox-ka-apps";
const OTHER: &str = "lockbox-ka-other";

fn must(out: Out, what: &str) -> Out {
    assert!(out.ok, "{what}:\n{}", out.all());
    out
}

/// `helm install` with default Kubernetes auth: the plugin is registered
/// with the image's recorded sha256 and configured with the in-cluster
/// address only; a TokenRequest token of a bound ServiceAccount logs in with
/// a role made through the API, one of another namespace is refused; an
/// admin's config survives a restart; and after the pod's own token is
/// rotated (the old one made invalid), logins work again without a restart.
#[test]
fn helm_install_gives_working_kubernetes_auth() {
    let c = cluster();
    let bin = bin_dir();
    let kube = Kube::from_dir(&c.dir, &bin);
    let kubeconfig = kube.kubeconfig.clone();
    let _release = Release {
        kube: kube.clone(),
        kubeconfig: kubeconfig.clone(),
        namespaces: vec![NS.into(), APPS.into(), OTHER.into()],
    };
    for ns in [NS, APPS, OTHER] {
        let _ = kube.kubectl(&["create", "namespace", ns], None);
    }
    for ns in [APPS, OTHER] {
        let _ = kube.kubectl(&["create", "serviceaccount", "app", "-n", ns], None);
    }
    let node = FakeNode::start(kube.clone(), NS);
    let port = node.forwarder(RELEASE, 8200);
    must(
        helm(
            &[
                "install",
                RELEASE,
                "charts/lockbox",
                "-n",
                NS,
                "--set",
                "tls.enabled=false",
                "--set",
                "podDisruptionBudget.enabled=false",
            ],
            Some(kubeconfig.as_path()),
        ),
        "helm install",
    );
    let ready = |n: usize| {
        node.logs()
            .lines()
            .filter(|l| l.contains("Kubernetes auth ready"))
            .nth(n - 1)
            .map(String::from)
    };
    let first = eventually(
        "Kubernetes auth ready",
        Duration::from_secs(180),
        &node,
        || ready(1),
    );
    assert!(
        first.contains("\"configured\":true") && first.contains("\"registered\":true"),
        "{first}"
    );
    let root = eventually(
        "the root token Secret",
        Duration::from_secs(30),
        &node,
        || {
            let s = kube.get(&["secret", "lockbox-root-token", "-n", NS])?;
            let b64 = s["data"]["token"].as_str()?.to_string();
            use base64::Engine;
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).ok()?).ok()
        },
    );

    // What the operator did: the image's plugin by its recorded sum, the
    // mount, and a config with the in-cluster address only.
    let sums = std::fs::read_to_string(node.rootfs().join("usr/lib/lockbox/SHA256SUMS"))
        .expect("the image's SHA256SUMS");
    let recorded = sums
        .lines()
        .find_map(|l| l.strip_suffix("  vault-plugin-auth-kubernetes"))
        .expect("recorded sum");
    let (s, entry) = call(
        port,
        "GET",
        "sys/plugins/catalog/auth/kubernetes",
        &root,
        None,
    );
    assert_eq!(s, 200, "{entry}");
    assert_eq!(entry["data"]["sha256"], recorded, "{entry}");
    assert_eq!(
        entry["data"]["command"], "vault-plugin-auth-kubernetes",
        "{entry}"
    );
    let (s, auths) = call(port, "GET", "sys/auth", &root, None);
    assert_eq!(s, 200, "{auths}");
    assert_eq!(
        auths["data"]["kubernetes/"]["type"], "kubernetes",
        "{auths}"
    );
    let (s, config) = call(port, "GET", "auth/kubernetes/config", &root, None);
    assert_eq!(s, 200, "{config}");
    let d = &config["data"];
    assert_eq!(
        d["kubernetes_host"],
        format!("https://127.0.0.1:{}", kube.port),
        "{config}"
    );
    assert_eq!(d["disable_local_ca_jwt"], false, "{config}");
    assert_eq!(
        d["kubernetes_ca_cert"], "",
        "the CA is read from the pod: {config}"
    );
    assert_eq!(
        d["token_reviewer_jwt_set"], false,
        "the token is read from the pod: {config}"
    );

    // A role and a policy made through the API as root, a secret to read.
    for (method, path, body) in [
        ("POST", "sys/mounts/secret", json!({"type": "kv"})),
        (
            "PUT",
            "sys/policies/acl/app-read",
            json!({"policy": "path \"secret/app/*\" { capabilities = [\"read\"] }"}),
        ),
        ("PUT", "secret/app/config", json!({"db": "app-db"})),
        (
            "POST",
            "auth/kubernetes/role/app",
            json!({
                "bound_service_account_names": ["app"],
                "bound_service_account_namespaces": [APPS],
                "token_policies": ["app-read"],
                "token_ttl": "1h",
                "audience": "lockbox",
            }),
        ),
    ] {
        let (s, b) = call(port, method, path, &root, Some(&body));
        assert!(s == 200 || s == 204, "{method} {path}: {s} {b}");
    }
    let token_of = |ns: &str| {
        let out = kube.kubectl(
            &[
                "create",
                "token",
                "app",
                "-n",
                ns,
                "--audience=lockbox",
                "--duration=1h",
            ],
            None,
        );
        assert!(out.ok, "{}", out.all());
        out.stdout.trim().to_string()
    };
    let login = |jwt: &str| {
        call(
            port,
            "PUT",
            "auth/kubernetes/login",
            "",
            Some(&json!({"role": "app", "jwt": jwt})),
        )
    };
    let login_ok = |what: &str| {
        let (s, b) = login(&token_of(APPS));
        assert_eq!(s, 200, "{what}: {b}\n{}", node.logs());
        let t = b["auth"]["client_token"]
            .as_str()
            .expect("client_token")
            .to_string();
        let (s, r) = call(port, "GET", "secret/app/config", &t, None);
        assert_eq!(
            (s, &r["data"]["db"]),
            (200, &json!("app-db")),
            "{what}: {r}"
        );
        assert_eq!(b["auth"]["metadata"]["service_account_namespace"], APPS);
    };
    login_ok("first login");
    let (s, b) = login(&token_of(OTHER));
    assert_eq!(
        (s, &b["errors"]),
        (403, &json!(["namespace not authorized"])),
        "another namespace: {b}"
    );
    assert!(b["auth"].is_null(), "{b}");

    // An admin's config is never overwritten: changed, then the pod
    // restarts (helm upgrade) and sets Kubernetes auth up again.
    let admin_config = json!({
        "kubernetes_host": d["kubernetes_host"],
        // Recorded, not checked (disable_iss_validation defaults to true).
        "issuer": "https://issuer.admin.example",
    });
    let (s, b) = call(
        port,
        "POST",
        "auth/kubernetes/config",
        &root,
        Some(&admin_config),
    );
    assert!(s == 200 || s == 204, "{s} {b}");
    let pid = node.pod_pid(RELEASE).expect("pod runs");
    must(
        helm(
            &[
                "upgrade",
                RELEASE,
                "charts/lockbox",
                "-n",
                NS,
                "--reuse-values",
                "--set",
                "logging.level=debug",
            ],
            Some(kubeconfig.as_path()),
        ),
        "helm upgrade",
    );
    let second = eventually(
        "Kubernetes auth ready after the restart",
        Duration::from_secs(180),
        &node,
        || ready(2),
    );
    assert_ne!(node.pod_pid(RELEASE), Some(pid), "the pod restarted");
    assert!(
        second.contains("\"configured\":false") && second.contains("\"registered\":false"),
        "{second}"
    );
    let (s, config) = call(port, "GET", "auth/kubernetes/config", &root, None);
    assert_eq!(s, 200, "{config}");
    assert_eq!(
        config["data"]["issuer"], "https://issuer.admin.example",
        "the admin's config was overwritten: {config}"
    );
    login_ok("login after the restart");

    // Rotation: the pod's token is made invalid (its ServiceAccount is
    // deleted and made again, so every old token is dead), logins fail;
    // the fake kubelet writes a new token into the pod's file, and logins
    // work again within the plugin's re-read period, without a restart.
    let pid = node.pod_pid(RELEASE).expect("pod runs");
    let sa = kube
        .get(&["serviceaccount", RELEASE, "-n", NS])
        .expect("the chart's ServiceAccount");
    must(
        kube.kubectl(&["delete", "serviceaccount", RELEASE, "-n", NS], None),
        "delete the ServiceAccount",
    );
    eventually(
        "logins to fail with the pod's token dead",
        Duration::from_secs(60),
        &node,
        || (login(&token_of(APPS)).0 != 200).then_some(()),
    );
    let mut again = sa.clone();
    for k in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
    ] {
        if let Some(m) = again["metadata"].as_object_mut() {
            m.remove(k);
        }
    }
    if let Some(m) = again.as_object_mut() {
        m.remove("secrets");
    }
    must(
        kube.kubectl(&["create", "-f", "-"], Some(again.to_string().as_str())),
        "re-create the ServiceAccount",
    );
    node.rotate_token(RELEASE).expect("rotate the pod's token");
    eventually(
        "logins to work with the rotated token",
        Duration::from_secs(150),
        &node,
        || (login(&token_of(APPS)).0 == 200).then_some(()),
    );
    login_ok("login after the rotation");
    assert_eq!(
        node.pod_pid(RELEASE),
        Some(pid),
        "no restart for a rotation"
    );
    // Nothing secret in the logs: neither the pod's token nor a login's.
    let pod_token = std::fs::read_to_string(format!(
        "/proc/{pid}/root/run/secrets/kubernetes.io/serviceaccount/token"
    ))
    .expect("the pod's token, through its mount namespace");
    let app_jwt = token_of(APPS);
    assert_eq!(login(&app_jwt).0, 200, "a last login");
    let logs = node.logs();
    assert!(
        pod_token.len() > 100 && !logs.contains(pod_token.trim()),
        "the pod's token was logged"
    );
    assert!(!logs.contains(&app_jwt[..60]), "a login's JWT was logged");
    assert!(node.errors().is_empty(), "{:?}", node.errors());
}
