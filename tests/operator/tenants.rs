//! Tenants serve themselves, and only themselves: two namespaces
//! (`team-a`, `team-b`) and two users (`alice`, `bob`) bound by namespaced
//! RoleBindings to a namespaced Role on the lockbox.dev kinds, driven with
//! `kubectl --as=USER` against the real API server and the real operator.
//!
//! The shared `auth/kubernetes` is the upstream `vault-plugin-auth-kubernetes`
//! (as in `kube_auth.rs`), registered and configured here through the HTTP
//! API as root; the tenants' kv mounts are SecretsMounts of the mock plugin.
//! Every kind's verdict is checked with the real kstatus library: `Failed`
//! for `InvalidSpec`, `Current` once Ready.

use crate::harness::{
    Scenario, api, cluster, eventually, go_plugins, kstatus_observed, sha256_file,
};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: u32 = 60;
const AUDIENCE: &str = "lockbox";
const KUBE_PLUGIN: &str = "vault-plugin-auth-kubernetes";
const KINDS: [&str; 3] = [
    "policies.lockbox.dev",
    "kubernetesauthroles.lockbox.dev",
    "authmounts.lockbox.dev",
];

/// Removes the tenant objects (finalizers stripped) and the cluster-wide
/// binding when the test ends, pass or fail; dropped before the Scenario.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let c = cluster();
        for ns in ["team-a", "team-b"] {
            for kind in KINDS.iter().chain(&["secretsmounts.lockbox.dev"]) {
                let (_, names, _) = c.kubectl(&["get", kind, "-n", ns, "-o", "name"]);
                for name in names.lines().filter(|l| !l.is_empty()) {
                    let _ = c.kubectl(&[
                        "patch",
                        name,
                        "-n",
                        ns,
                        "--type=merge",
                        "-p",
                        r#"{"metadata":{"finalizers":null}}"#,
                    ]);
                    let _ = c.kubectl(&["delete", name, "-n", ns, "--wait=false"]);
                }
            }
        }
        let _ = c.kubectl(&[
            "delete",
            "clusterrolebinding",
            "tenants-reviewer",
            "--ignore-not-found",
        ]);
    }
}

/// `kubectl apply` of `yaml` as `user`: (ok, stderr).
fn apply_as(user: &str, yaml: &str) -> (bool, String) {
    let who = format!("--as={user}");
    let (ok, out, err) = cluster().kubectl_stdin(&["apply", &who, "-f", "-"], Some(yaml));
    (ok, format!("{err}{out}"))
}

fn must_apply_as(user: &str, yaml: &str) {
    let (ok, out) = apply_as(user, yaml);
    assert!(ok, "{user} could not apply:\n{yaml}\n{out}");
}

fn manifest(kind: &str, ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: lockbox.dev/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    lockbox-test: tenants\nspec:\n{spec}"
    )
}

/// The Ready condition's (status, reason, message) of `what` in `ns`.
fn ready(ns: &str, what: &str) -> (String, String, String) {
    let c = cluster();
    let get = |field: &str| {
        c.get(
            &["-n", ns, what],
            &format!(r#"{{.status.conditions[?(@.type=="Ready")].{field}}}"#),
        )
    };
    (get("status"), get("reason"), get("message"))
}

/// Waits for `InvalidSpec` on `what`; returns its message.
fn invalid(ns: &str, what: &str) -> String {
    not_ready(ns, what, "InvalidSpec")
}

/// Waits for `Ready=False` with `reason` on `what`; returns its message.
fn not_ready(ns: &str, what: &str, reason: &str) -> String {
    eventually(
        &format!("{reason} on {ns}/{what}"),
        Duration::from_secs(60),
        || {
            let (status, r, msg) = ready(ns, what);
            (status == "False" && r == reason).then_some(msg)
        },
    )
}

/// Asserts the kstatus verdict (sigs.k8s.io/cli-utils, as Flux and Argo CD
/// read it) of `what` in namespace `ns` once the operator observed it.
fn assert_kstatus(ns: &str, what: &str, want: &str) {
    let (status, msg) = kstatus_observed(cluster(), &["-n", ns, what]);
    assert_eq!(status, want, "kstatus of {ns}/{what}: {msg}");
}

/// The names of lockbox's ACL policies.
fn policy_names(op: &crate::harness::Operator, token: &str) -> Value {
    let (code, body) = api(op, token, "GET", "sys/policies/acl?list=true", None);
    assert_eq!(code, 200, "{body}");
    body["data"]["keys"].clone()
}

/// RoleBinding-only users, namespaces, ServiceAccounts, the mock plugin's
/// kv mounts and the shared Kubernetes auth method.
fn tenants_setup(s: &Scenario, op: &crate::harness::Operator, token: &str) {
    let c = cluster();
    for crd in KINDS {
        c.must(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{crd}"),
            "--timeout=60s",
        ]);
    }
    let mut yaml = String::new();
    for (ns, user) in [("team-a", "alice"), ("team-b", "bob")] {
        yaml.push_str(&format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: lockbox-tenant\n  namespace: {ns}\nrules:\n- apiGroups: [\"lockbox.dev\"]\n  resources: [\"policies\", \"kubernetesauthroles\", \"authmounts\", \"secretsmounts\"]\n  verbs: [\"get\", \"list\", \"watch\", \"create\", \"update\", \"patch\", \"delete\"]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: lockbox-tenant-{user}\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: lockbox-tenant\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {user}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: app\n  namespace: {ns}\n---\n"
        ));
    }
    yaml.push_str(&format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: reviewer\n  namespace: {op_ns}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: tenants-reviewer\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: system:auth-delegator\nsubjects:\n- kind: ServiceAccount\n  name: reviewer\n  namespace: {op_ns}\n",
        op_ns = s.op_ns
    ));
    c.apply(&yaml);
    for (user, ns) in [
        ("alice", "team-a"),
        ("bob", "team-b"),
        (
            &format!("system:serviceaccount:{}:reviewer", s.op_ns),
            "default",
        ),
    ] {
        let (verb, res) = if ns == "default" {
            ("create", "tokenreviews.authentication.k8s.io")
        } else {
            ("create", "policies.lockbox.dev")
        };
        eventually(&format!("RBAC for {user}"), Duration::from_secs(30), || {
            let (_, out, _) = c.kubectl(&[
                "auth",
                "can-i",
                verb,
                res,
                "-n",
                ns,
                &format!("--as={user}"),
            ]);
            (out.trim() == "yes").then_some(())
        });
    }

    // The tenants' kv mounts (the mock engine), made by the tenants.
    c.apply(&s.entry_yaml("mock-tenants", "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    c.wait(&["pce/mock-tenants"], "condition=Ready", WAIT);
    for (ns, user) in [("team-a", "alice"), ("team-b", "bob")] {
        must_apply_as(user, &s.mount_yaml(ns, "kv", "mock-tenants", ""));
        c.wait(&["-n", ns, "smount/kv"], "condition=Ready", WAIT);
        let (code, body) = api(
            op,
            token,
            "POST",
            &format!("{ns}/kv/config"),
            Some(&json!({"db": format!("{ns}-db")}).to_string()),
        );
        assert!(code == 200 || code == 204, "{code} {body}");
    }

    // The shared Kubernetes auth method, as a lockbox administrator sets it
    // up: the upstream plugin registered by sha256, enabled at
    // auth/kubernetes, configured against the test API server.
    let binary = s.plugin_dir.join(KUBE_PLUGIN);
    std::fs::copy(go_plugins().join(KUBE_PLUGIN), &binary).expect("copy the plugin");
    let sha = sha256_file(&binary);
    let root_ok = |method: &str, path: &str, body: Value| {
        let (code, resp) = api(op, token, method, path, Some(&body.to_string()));
        assert!(code == 200 || code == 204, "{method} {path}: {code} {resp}");
    };
    root_ok(
        "PUT",
        "sys/plugins/catalog/auth/kubernetes",
        json!({"sha256": sha, "command": KUBE_PLUGIN}),
    );
    root_ok("POST", "sys/auth/kubernetes", json!({"type": "kubernetes"}));
    let env = std::fs::read_to_string(c.dir.join("env")).expect("kube-up.sh's env file");
    let host = env
        .lines()
        .find_map(|l| l.strip_prefix("export KUBE_APISERVER_URL="))
        .map(|v| v.trim_matches('\'').to_string())
        .expect("KUBE_APISERVER_URL");
    let ca = std::fs::read_to_string(c.dir.join("certs/apiserver.crt")).expect("CA");
    let reviewer = c
        .must(&[
            "create",
            "token",
            "reviewer",
            "-n",
            &s.op_ns,
            "--duration=1h",
        ])
        .trim()
        .to_string();
    root_ok(
        "POST",
        "auth/kubernetes/config",
        json!({"kubernetes_host": host, "kubernetes_ca_cert": ca,
               "token_reviewer_jwt": reviewer, "disable_local_ca_jwt": true}),
    );
    // A catalog entry for the same plugin, for the tenants' AuthMounts.
    c.apply(&format!(
        "apiVersion: lockbox.dev/v1alpha1\nkind: PluginCatalogEntry\nmetadata:\n  name: kubernetes-tenants\n  labels:\n    lockbox-test: tenants\nspec:\n  type: auth\n  version: \"0.23.1\"\n  binary:\n    path: {KUBE_PLUGIN}\n    sha256: \"{sha}\"\n"
    ));
    c.wait(&["pce/kubernetes-tenants"], "condition=Ready", WAIT);
}

fn login(op: &crate::harness::Operator, role: &str, jwt: &str) -> (u16, Value) {
    api(
        op,
        "",
        "PUT",
        "auth/kubernetes/login",
        Some(&json!({"role": role, "jwt": jwt}).to_string()),
    )
}

fn sa_token(ns: &str) -> String {
    cluster()
        .must(&[
            "create",
            "token",
            "app",
            "-n",
            ns,
            &format!("--audience={AUDIENCE}"),
            "--duration=1h",
        ])
        .trim()
        .to_string()
}

/// See the module docs: RBAC keeps alice out of team-b; inside team-a the
/// operator refuses (InvalidSpec, nothing written) whatever reaches
/// team-b; valid objects are Ready and in lockbox as declared, drift is
/// corrected, and a team-a token reads exactly team-a's secrets while a
/// team-b token cannot use team-a's role; deletion follows deletionPolicy.
#[test]
fn tenants_serve_themselves_and_reach_nothing_of_another_team() {
    let s = Scenario::start("tenants", &["team-a", "team-b"], &[]);
    let _cleanup = Cleanup;
    let c = cluster();
    let op = s.operator();
    let token = s.root_token();
    tenants_setup(&s, &op, &token);
    let policies_before = policy_names(&op, &token);

    // 1. RBAC: alice cannot create (or read) anything in team-b.
    let (ok, err) = apply_as(
        "alice",
        &manifest(
            "Policy",
            "team-b",
            "mine",
            "  hcl: 'path \"team-b/*\" { capabilities = [\"read\"] }'\n",
        ),
    );
    assert!(!ok && err.contains("forbidden"), "{err}");
    let (ok, _, err) = c.kubectl(&["get", "policies.lockbox.dev", "-n", "team-b", "--as=alice"]);
    assert!(!ok && err.contains("forbidden"), "{err}");
    let (ok, err) = apply_as(
        "bob",
        &manifest(
            "KubernetesAuthRole",
            "team-a",
            "x",
            "  boundServiceAccountNames: [app]\n",
        ),
    );
    assert!(!ok && err.contains("forbidden"), "{err}");

    // 2. In team-a, a Policy reaching team-b: InvalidSpec naming the path.
    must_apply_as(
        "alice",
        &manifest(
            "Policy",
            "team-a",
            "escape",
            "  hcl: |\n    path \"team-a/kv/*\" { capabilities = [\"read\"] }\n    path \"team-b/kv/*\" { capabilities = [\"read\"] }\n",
        ),
    );
    let msg = invalid("team-a", "policy.lockbox.dev/escape");
    assert_kstatus("team-a", "policy.lockbox.dev/escape", "Failed");
    assert!(msg.contains("\"team-b/kv/*\""), "{msg}");
    must_apply_as(
        "alice",
        &manifest(
            "Policy",
            "team-a",
            "glob",
            "  rules:\n  - path: \"team-*\"\n    capabilities: [read]\n",
        ),
    );
    let msg = invalid("team-a", "policy.lockbox.dev/glob");
    assert!(msg.contains("\"team-*\""), "{msg}");
    assert_eq!(
        policy_names(&op, &token),
        policies_before,
        "a policy was written"
    );

    // 3. Roles binding team-b's ServiceAccounts (InvalidSpec) or policy.
    must_apply_as(
        "alice",
        &manifest(
            "KubernetesAuthRole",
            "team-a",
            "steal-sa",
            "  boundServiceAccountNames: [app]\n  boundServiceAccountNamespaces: [team-b]\n",
        ),
    );
    let msg = invalid("team-a", "kubernetesauthrole/steal-sa");
    assert_kstatus("team-a", "kubernetesauthrole/steal-sa", "Failed");
    assert!(msg.contains("\"team-b\""), "{msg}");
    must_apply_as(
        "alice",
        &manifest(
            "KubernetesAuthRole",
            "team-a",
            "steal-policy",
            "  boundServiceAccountNames: [app]\n  tokenPolicies: [team-b.read]\n",
        ),
    );
    // A Policy that may still appear: waiting (kstatus InProgress), not
    // failed; team-a's own "team-b.read" would be team-a.team-b.read.
    let msg = not_ready("team-a", "kubernetesauthrole/steal-policy", "PolicyMissing");
    assert!(msg.contains("team-b.read"), "{msg}");
    assert_kstatus("team-a", "kubernetesauthrole/steal-policy", "InProgress");
    for role in ["team-a.steal-sa", "team-a.steal-policy"] {
        let (code, body) = api(
            &op,
            &token,
            "GET",
            &format!("auth/kubernetes/role/{role}"),
            None,
        );
        assert_eq!(code, 404, "{role} was written: {body}");
    }

    // 4. An AuthMount outside team-a's prefix: InvalidSpec, nothing enabled.
    let (_, auth_before) = api(&op, &token, "GET", "sys/auth", None);
    must_apply_as(
        "alice",
        &manifest(
            "AuthMount",
            "team-a",
            "outside",
            "  plugin: kubernetes-tenants\n  path: team-b/k8s\n",
        ),
    );
    let msg = invalid("team-a", "authmount/outside");
    assert_kstatus("team-a", "authmount/outside", "Failed");
    assert!(msg.contains("team-b/k8s"), "{msg}");
    let (_, auth_after) = api(&op, &token, "GET", "sys/auth", None);
    assert_eq!(auth_after["data"], auth_before["data"]);

    // 5. Valid objects: Ready and in lockbox as declared.
    must_apply_as(
        "alice",
        &manifest(
            "Policy",
            "team-a",
            "read",
            "  deletionPolicy: Delete\n  rules:\n  - path: \"team-a/kv/*\"\n    capabilities: [read]\n",
        ),
    );
    must_apply_as(
        "alice",
        &manifest(
            "Policy",
            "team-a",
            "keep",
            "  hcl: 'path \"auth/team-a/*\" { capabilities = [\"read\"] }'\n",
        ),
    );
    must_apply_as(
        "alice",
        &manifest(
            "KubernetesAuthRole",
            "team-a",
            "app",
            &format!(
                "  deletionPolicy: Delete\n  boundServiceAccountNames: [app]\n  audience: {AUDIENCE}\n  tokenPolicies: [read]\n  tokenTTL: 1h\n"
            ),
        ),
    );
    must_apply_as(
        "alice",
        &manifest(
            "AuthMount",
            "team-a",
            "k8s",
            "  deletionPolicy: Delete\n  plugin: kubernetes-tenants\n",
        ),
    );
    for what in [
        "policy.lockbox.dev/read",
        "policy.lockbox.dev/keep",
        "kubernetesauthrole/app",
        "authmount/k8s",
    ] {
        c.wait(&["-n", "team-a", what], "condition=Ready", WAIT);
        assert_kstatus("team-a", what, "Current");
    }
    assert_eq!(
        c.get(
            &["-n", "team-a", "policy.lockbox.dev/read"],
            "{.status.lockboxName}"
        ),
        "team-a.read"
    );
    let (code, body) = api(&op, &token, "GET", "sys/policies/acl/team-a.read", None);
    assert_eq!(code, 200, "{body}");
    let text = body["data"]["policy"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        text.contains("\"team-a/kv/*\"") && text.contains("\"read\""),
        "{text}"
    );
    let (code, body) = api(&op, &token, "GET", "auth/kubernetes/role/team-a.app", None);
    assert_eq!(code, 200, "{body}");
    let role = &body["data"];
    assert_eq!(
        role["bound_service_account_namespaces"],
        json!(["team-a"]),
        "{role}"
    );
    assert_eq!(
        role["bound_service_account_names"],
        json!(["app"]),
        "{role}"
    );
    assert_eq!(role["token_policies"], json!(["team-a.read"]), "{role}");
    assert_eq!(role["token_ttl"], 3600, "{role}");
    let uid = c.get(&["-n", "team-a", "authmount/k8s"], "{.metadata.uid}");
    let (_, auth) = api(&op, &token, "GET", "sys/auth", None);
    assert_eq!(
        auth["data"]["team-a/k8s/"]["type"], "kubernetes-tenants",
        "{auth}"
    );
    assert_eq!(auth["data"]["team-a/k8s/"]["owner"], uid.as_str(), "{auth}");

    // 6. The login path: team-a's token reads exactly team-a's secrets.
    let (code, body) = login(&op, "team-a.app", &sa_token("team-a"));
    assert_eq!(code, 200, "{body}\n{}", s.logs());
    assert_eq!(
        body["auth"]["policies"],
        json!(["default", "team-a.read"]),
        "{body}"
    );
    let app = body["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_string();
    let (code, body) = api(&op, &app, "GET", "team-a/kv/config", None);
    assert_eq!(
        (code, &body["data"]["db"]),
        (200, &json!("team-a-db")),
        "{body}"
    );
    for path in ["team-b/kv/config", "sys/policies/acl/team-b.read"] {
        let (code, body) = api(&op, &app, "GET", path, None);
        assert_eq!(code, 403, "{path}: {body}");
    }
    let (code, body) = api(&op, &app, "POST", "team-a/kv/config", Some(r#"{"db":"x"}"#));
    assert_eq!(code, 403, "the policy grants read only: {body}");
    // A team-b token with team-a's role is refused.
    let (code, body) = login(&op, "team-a.app", &sa_token("team-b"));
    assert_eq!(code, 403, "{body}");
    assert!(body["auth"].is_null(), "{body}");

    // 7. Drift: the policy and the role edited through the API are
    // written back on resync (3 s in the tests).
    let (code, _) = api(
        &op,
        &token,
        "PUT",
        "sys/policies/acl/team-a.read",
        Some(&json!({"policy": "path \"team-b/*\" { capabilities = [\"read\"] }"}).to_string()),
    );
    assert_eq!(code, 204);
    let (code, _) = api(
        &op,
        &token,
        "POST",
        "auth/kubernetes/role/team-a.app",
        Some(r#"{"bound_service_account_namespaces":["*"]}"#),
    );
    assert!(code == 200 || code == 204, "{code}");
    eventually(
        "the policy to be written back",
        Duration::from_secs(30),
        || {
            let (_, body) = api(&op, &token, "GET", "sys/policies/acl/team-a.read", None);
            (body["data"]["policy"] == text.as_str()).then_some(())
        },
    );
    eventually(
        "the role to be written back",
        Duration::from_secs(30),
        || {
            let (_, body) = api(&op, &token, "GET", "auth/kubernetes/role/team-a.app", None);
            (body["data"]["bound_service_account_namespaces"] == json!(["team-a"])).then_some(())
        },
    );

    // 8. Deletion: Delete removes from lockbox, Retain keeps.
    for what in [
        "policy.lockbox.dev/read",
        "policy.lockbox.dev/keep",
        "kubernetesauthrole/app",
        "authmount/k8s",
    ] {
        let (ok, out, err) = c.kubectl(&[
            "delete",
            "-n",
            "team-a",
            what,
            "--as=alice",
            "--timeout=60s",
        ]);
        assert!(ok, "delete {what}: {out}{err}");
    }
    let (code, _) = api(&op, &token, "GET", "sys/policies/acl/team-a.read", None);
    assert_eq!(code, 404, "Delete: the policy stays");
    let (code, _) = api(&op, &token, "GET", "sys/policies/acl/team-a.keep", None);
    assert_eq!(code, 200, "Retain: the policy is gone");
    let (code, _) = api(&op, &token, "GET", "auth/kubernetes/role/team-a.app", None);
    assert_eq!(code, 404, "Delete: the role stays");
    let (_, auth) = api(&op, &token, "GET", "sys/auth", None);
    assert!(auth["data"].get("team-a/k8s/").is_none(), "{auth}");
    assert!(auth["data"].get("kubernetes/").is_some(), "{auth}");
    op.stop();
}
