//! The chart in HA mode (`ha.enabled`; the values of `ci/ha-values.yaml`):
//! the objects HA needs, RBAC equal to the operator's API calls in HA
//! mode, errors for bad HA values, the operator's refusal of `--ha` without
//! PostgreSQL, and a real `helm install` on the test API server. Lint, the
//! restricted Pod Security Standard, the flag check and the server-side dry
//! run cover `ci/ha-values.yaml` together with the other `ci/` files.

use crate::chart::{rules, set};
use crate::{docs, find, helm, render, repo, run};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Command;

fn ha_values() -> String {
    repo()
        .join("charts/lockbox/ci/ha-values.yaml")
        .to_string_lossy()
        .into_owned()
}

/// Renders `ci/ha-values.yaml` plus `extra` (release `lockbox` in
/// `lockbox-system`).
fn ha_docs(extra: &[&str]) -> Vec<Value> {
    let file = ha_values();
    let mut args = vec!["-f", file.as_str()];
    args.extend_from_slice(extra);
    docs(&render("lockbox", "lockbox-system", &args))
}

fn env<'a>(container: &'a Value, name: &str) -> (usize, &'a Value) {
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .enumerate()
        .find(|(_, e)| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name}"))
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn ha_values_render_the_ha_statefulset_services_and_budget() {
    let docs = ha_docs(&[]);
    let sts = find(&docs, "StatefulSet", "lockbox");
    assert_eq!(sts["spec"]["replicas"], 3);
    assert_eq!(sts["spec"]["podManagementPolicy"], "Parallel");
    assert!(
        sts["spec"]["volumeClaimTemplates"].is_null(),
        "no PersistentVolumeClaim in HA mode"
    );
    let pod = &sts["spec"]["template"]["spec"];
    let data = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "data")
        .expect("a data volume");
    assert_eq!(data["emptyDir"]["sizeLimit"], "1Gi");
    let c = &pod["containers"][0];
    let args = strings(&c["args"]);
    for want in [
        "--storage=postgresql",
        "--ha",
        "--cluster-address=0.0.0.0:8201",
    ] {
        assert!(args.contains(&want), "{want} in {args:?}");
    }
    let (_, url) = env(c, "LOCKBOX_PG_CONNECTION_URL");
    assert_eq!(
        url,
        &json!({"name": "LOCKBOX_PG_CONNECTION_URL",
            "valueFrom": {"secretKeyRef": {"name": "lockbox-db-app", "key": "uri"}}}),
        "the URL only from the Secret"
    );
    let (ip_at, ip) = env(c, "POD_IP");
    assert_eq!(ip["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP");
    let (api_at, api) = env(c, "LOCKBOX_API_ADDR");
    let (cluster_at, cluster) = env(c, "LOCKBOX_CLUSTER_ADDR");
    assert_eq!(api["value"], "https://$(POD_IP):8200");
    assert_eq!(cluster["value"], "https://$(POD_IP):8201");
    assert!(
        ip_at < api_at && ip_at < cluster_at,
        "$(POD_IP) expands only in variables after it"
    );
    assert!(
        c["ports"]
            .as_array()
            .expect("ports")
            .contains(&json!({"name": "cluster", "containerPort": 8201, "protocol": "TCP"}))
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let selector =
        json!({"app.kubernetes.io/name": "lockbox", "app.kubernetes.io/instance": "lockbox"});
    let anti =
        &pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    assert_eq!(anti[0]["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(anti[0]["labelSelector"]["matchLabels"], selector);

    assert_eq!(
        find(&docs, "Service", "lockbox")["spec"]["selector"],
        selector
    );
    let mut active = selector.clone();
    active["lockbox.dev/active"] = "true".into();
    let svc = find(&docs, "Service", "lockbox-active");
    assert_eq!(svc["spec"]["selector"], active);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "api");
    let pdb = find(&docs, "PodDisruptionBudget", "lockbox");
    assert_eq!(pdb["spec"]["minAvailable"], 2);
    assert!(pdb["spec"]["maxUnavailable"].is_null());
    let np = find(&docs, "NetworkPolicy", "lockbox");
    assert!(
        np["spec"]["ingress"]
            .as_array()
            .expect("ingress")
            .contains(&json!({
                "ports": [{"port": "cluster", "protocol": "TCP"}],
                "from": [{"podSelector": {"matchLabels": selector}}]
            })),
        "the cluster port is open to the lockbox pods: {}",
        np["spec"]["ingress"]
    );

    // The defaults of the ha block: preferred anti-affinity; plain HTTP
    // addresses without TLS.
    let docs = docs_of(&[
        "--set",
        "ha.enabled=true",
        "--set",
        "ha.postgresql.existingSecret=db",
        "--set",
        "tls.enabled=false",
    ]);
    let pod = &find(&docs, "StatefulSet", "lockbox")["spec"]["template"]["spec"];
    let preferred =
        &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
    assert_eq!(
        preferred[0]["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        env(&pod["containers"][0], "LOCKBOX_API_ADDR").1["value"],
        "http://$(POD_IP):8200"
    );

    // Without ha.enabled nothing of this is rendered.
    let plain = docs_of(&[]);
    let sts = find(&plain, "StatefulSet", "lockbox");
    assert!(sts["spec"]["podManagementPolicy"].is_null());
    assert!(sts["spec"]["volumeClaimTemplates"].is_array());
    assert!(!strings(&sts["spec"]["template"]["spec"]["containers"][0]["args"]).contains(&"--ha"));
    assert!(
        plain
            .iter()
            .all(|d| d["metadata"]["name"] != "lockbox-active")
    );
}

fn docs_of(args: &[&str]) -> Vec<Value> {
    docs(&render("lockbox", "lockbox-system", args))
}

#[test]
fn ha_rbac_is_exactly_what_the_operator_uses_in_ha_mode() {
    // HA mode makes no Lease calls (the database lock decides who leads)
    // and one more: a merge patch of its own Pod's lockbox.dev/active label
    // (crates/operator/src/active_label.rs). The cluster-wide rules are
    // those of single-pod mode.
    let single = docs_of(&[]);
    for (extra, names) in [
        (vec![], vec!["lockbox-0", "lockbox-1", "lockbox-2"]),
        (
            vec![
                "--set",
                "ha.replicas=5",
                "--set",
                "fullnameOverride=secrets",
            ],
            vec![
                "secrets-0",
                "secrets-1",
                "secrets-2",
                "secrets-3",
                "secrets-4",
            ],
        ),
    ] {
        let docs = ha_docs(&extra);
        let full = names[0].trim_end_matches("-0");
        assert_eq!(
            rules(find(&docs, "ClusterRole", full)),
            rules(find(&single, "ClusterRole", "lockbox")),
            "ClusterRole rules"
        );
        let mut want: BTreeSet<String> = set(&[
            "core secrets create *any*",
            "core secrets get *any*",
            "core secrets list *any*",
            "core secrets watch *any*",
        ]);
        want.extend(names.iter().map(|n| format!("core pods patch {n}")));
        let role = find(&docs, "Role", full);
        assert_eq!(role["metadata"]["namespace"], "lockbox-system");
        assert_eq!(rules(role), want, "Role rules with {extra:?}");
    }
}

#[test]
fn bad_ha_values_are_refused_naming_the_key() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set", "ha.enabled=true"],
            "at '/ha/postgresql/existingSecret'",
        ),
        (
            &[
                "--set",
                "ha.enabled=true",
                "--set",
                "ha.postgresql.existingSecret=db",
                "--set",
                "ha.replicas=1",
            ],
            "at '/ha/replicas'",
        ),
        (
            &["--set", "ha.antiAffinity=sometimes"],
            "at '/ha/antiAffinity'",
        ),
        (&["--set", "ha.minAvailable=0"], "at '/ha/minAvailable'"),
        (
            &["--set", "ha.postgresq.secretKey=uri"],
            "'postgresq' not allowed",
        ),
        (
            &["--set", "ha.postgresql.secretKey="],
            "at '/ha/postgresql/secretKey'",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["template", "x", "charts/lockbox"];
        all.extend_from_slice(args);
        let out = helm(&all, None);
        assert!(!out.ok, "{args:?} was accepted");
        assert!(
            out.stderr.contains(want),
            "{args:?}: expected an error containing {want:?}, got:\n{}",
            out.all()
        );
    }
    // The same keys with good values render.
    let good = helm(
        &[
            "template",
            "x",
            "charts/lockbox",
            "--set",
            "ha.enabled=true",
            "--set",
            "ha.postgresql.existingSecret=db",
            "--set",
            "ha.replicas=2",
            "--set",
            "ha.antiAffinity=required",
            "--set",
            "ha.minAvailable=1",
        ],
        None,
    );
    assert!(good.ok, "{}", good.all());
}

#[test]
fn the_operator_refuses_ha_without_postgresql() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(Command::new(crate::workspace_binary("lockbox"))
        .args([
            "operator",
            "run",
            "--data-dir=/x",
            "--plugin-directory=/y",
            "--ha",
        ])
        .env("KUBECONFIG", tmp.path().join("no-such-kubeconfig")));
    assert!(
        !out.ok && out.stderr.contains("--ha needs --storage=postgresql"),
        "{}",
        out.all()
    );
}

#[test]
fn helm_install_in_ha_mode_on_the_api_server() {
    let c = crate::harness::cluster();
    let kcp = c.dir.join("kubeconfig");
    let kc = Some(kcp.as_path());
    let (ns, rel) = ("pkg-helm-ha", "lockbox-ha");
    let values = ha_values();
    let out = helm(
        &[
            "install",
            rel,
            "charts/lockbox",
            "-n",
            ns,
            "--create-namespace",
            "-f",
            &values,
        ],
        kc,
    );
    assert!(out.ok, "helm install: {}", out.all());
    let get = |args: &[&str]| -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-n", ns, "-o", "json"]);
        let out = run(Command::new(crate::bin_dir().join("kubectl"))
            .args(&all)
            .env("KUBECONFIG", &kcp));
        assert!(out.ok, "kubectl {all:?}: {}", out.all());
        serde_json::from_str(&out.stdout).expect("kubectl JSON")
    };
    let sts = get(&["statefulset", rel]);
    assert_eq!(sts["spec"]["replicas"], 3);
    assert_eq!(sts["spec"]["podManagementPolicy"], "Parallel");
    assert!(sts["spec"]["volumeClaimTemplates"].is_null());
    let active = get(&["service", &format!("{rel}-active")]);
    assert_eq!(active["spec"]["selector"]["lockbox.dev/active"], "true");
    assert!(get(&["service", rel])["spec"]["selector"]["lockbox.dev/active"].is_null());
    let pdb = get(&["poddisruptionbudget", rel]);
    assert_eq!(pdb["spec"]["minAvailable"], 2);
    let role = get(&["role", rel]);
    let pods: Vec<&Value> = role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| r["resources"] == json!(["pods"]))
        .collect();
    assert_eq!(pods.len(), 1, "{role}");
    assert_eq!(
        pods[0]["resourceNames"],
        json!([format!("{rel}-0"), format!("{rel}-1"), format!("{rel}-2")])
    );
    assert_eq!(pods[0]["verbs"], json!(["patch"]));
    let out = helm(&["uninstall", rel, "-n", ns], kc);
    assert!(out.ok, "helm uninstall: {}", out.all());
}
