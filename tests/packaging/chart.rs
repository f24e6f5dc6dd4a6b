//! The chart on its own: lint, schema, rendered objects (no API server).

use crate::{Out, ci_values, docs, find, helm, render, repo, run};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Command;

/// Renders with the defaults (release `lockbox` in `lockbox-system`).
fn default_docs() -> Vec<Value> {
    docs(&render("lockbox", "lockbox-system", &[]))
}

/// Renders with one of the `ci/` values files.
fn ci_docs(name: &str) -> Vec<Value> {
    let file = repo().join("charts/lockbox/ci").join(name);
    docs(&render(
        "lockbox",
        "lockbox-system",
        &["-f", &file.to_string_lossy()],
    ))
}

/// Every (name, pod spec) in the rendered documents: pod templates of
/// workloads and bare Pods (the `helm test` pod).
pub fn pod_specs(docs: &[Value]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for d in docs {
        let name = format!(
            "{}/{}",
            d["kind"].as_str().unwrap_or(""),
            d["metadata"]["name"]
        );
        match d["kind"].as_str() {
            Some("Pod") => out.push((name, d["spec"].clone())),
            Some("StatefulSet" | "Deployment" | "DaemonSet" | "Job") => {
                out.push((name, d["spec"]["template"]["spec"].clone()))
            }
            _ => {}
        }
    }
    out
}

fn containers(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod[*k].as_array().into_iter().flatten())
        .collect()
}

/// The rules of the restricted Pod Security Standard (Kubernetes 1.33,
/// "latest": the baseline rules plus the restricted ones) that `pod`
/// breaks, checked here on the rendered objects (the test API server's
/// PodSecurity admission sees only the Pods the tests create).
pub fn restricted_violations(pod: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[host] == true {
            v.push(format!("{host} is true"));
        }
    }
    const VOLUME_TYPES: [&str; 8] = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for vol in pod["volumes"].as_array().into_iter().flatten() {
        for key in vol.as_object().into_iter().flat_map(|o| o.keys()) {
            if key != "name" && !VOLUME_TYPES.contains(&key.as_str()) {
                v.push(format!(
                    "volume {} has the forbidden type {key}",
                    vol["name"]
                ));
            }
        }
    }
    let psc = &pod["securityContext"];
    if psc["sysctls"].as_array().is_some_and(|s| !s.is_empty()) {
        v.push("pod sets sysctls".into());
    }
    if psc["runAsUser"] == 0 {
        v.push("pod runAsUser is 0".into());
    }
    let selinux_ok = |se: &Value| {
        se.is_null()
            || (se["user"].is_null()
                && se["role"].is_null()
                && (se["type"].is_null()
                    || [
                        "container_t",
                        "container_init_t",
                        "container_kvm_t",
                        "container_engine_t",
                    ]
                    .iter()
                    .any(|t| se["type"] == *t)))
    };
    if !selinux_ok(&psc["seLinuxOptions"]) {
        v.push("pod seLinuxOptions not allowed".into());
    }
    if psc["appArmorProfile"]["type"] == "Unconfined" {
        v.push("pod AppArmor profile is Unconfined".into());
    }
    for c in containers(pod) {
        let name = c["name"].as_str().unwrap_or("?");
        let sc = &c["securityContext"];
        if sc["privileged"] == true {
            v.push(format!("{name}: privileged"));
        }
        if sc["allowPrivilegeEscalation"] != false {
            v.push(format!("{name}: allowPrivilegeEscalation is not false"));
        }
        let non_root = if sc["runAsNonRoot"].is_boolean() {
            sc["runAsNonRoot"] == true
        } else {
            psc["runAsNonRoot"] == true
        };
        if !non_root {
            v.push(format!("{name}: runAsNonRoot is not true"));
        }
        if sc["runAsUser"] == 0 {
            v.push(format!("{name}: runAsUser is 0"));
        }
        let seccomp = if sc["seccompProfile"]["type"].is_string() {
            &sc["seccompProfile"]["type"]
        } else {
            &psc["seccompProfile"]["type"]
        };
        if seccomp != "RuntimeDefault" && seccomp != "Localhost" {
            v.push(format!(
                "{name}: seccompProfile is not RuntimeDefault or Localhost"
            ));
        }
        let drops = sc["capabilities"]["drop"].as_array();
        if !drops.is_some_and(|d| d.iter().any(|c| c == "ALL")) {
            v.push(format!("{name}: capabilities.drop does not contain ALL"));
        }
        for add in sc["capabilities"]["add"].as_array().into_iter().flatten() {
            if add != "NET_BIND_SERVICE" {
                v.push(format!("{name}: adds capability {add}"));
            }
        }
        for p in c["ports"].as_array().into_iter().flatten() {
            if p["hostPort"].as_i64().is_some_and(|h| h != 0) {
                v.push(format!("{name}: hostPort {}", p["hostPort"]));
            }
        }
        if !sc["procMount"].is_null() && sc["procMount"] != "Default" {
            v.push(format!("{name}: procMount {}", sc["procMount"]));
        }
        if !selinux_ok(&sc["seLinuxOptions"]) {
            v.push(format!("{name}: seLinuxOptions not allowed"));
        }
        if sc["appArmorProfile"]["type"] == "Unconfined" {
            v.push(format!("{name}: AppArmor profile is Unconfined"));
        }
    }
    v
}

#[test]
fn helm_lint_passes_with_default_and_non_default_values() {
    let out = helm(&["lint", "--strict", "charts/lockbox"], None);
    assert!(
        out.ok && out.stdout.contains("0 chart(s) failed"),
        "{}",
        out.all()
    );
    for file in ci_values() {
        let f = file.to_string_lossy();
        let out = helm(&["lint", "--strict", "charts/lockbox", "-f", &f], None);
        assert!(
            out.ok && out.stdout.contains("0 chart(s) failed"),
            "{f}: {}",
            out.all()
        );
    }
}

fn template_err(args: &[&str]) -> Out {
    let mut all = vec!["template", "x", "charts/lockbox"];
    all.extend_from_slice(args);
    helm(&all, None)
}

#[test]
fn schema_rejects_typos_and_bad_values_naming_the_key() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--set", "imagee.tag=1"],
            "additional properties 'imagee' not allowed",
        ),
        (
            &["--set", "tls.secretNme=x"],
            "additional properties 'secretNme' not allowed",
        ),
        (&["--set", "logging.format=xml"], "at '/logging/format'"),
        (&["--set", "logging.level=verbose"], "at '/logging/level'"),
        (&["--set", "replicas=2"], "at '/replicas'"),
        (&["--set", "tls.secretName="], "at '/tls/secretName'"),
        (
            &["--set", "plugins.volume.hostPath.path=/opt"],
            "'hostPath' not allowed",
        ),
        (
            &["--set", "operator.resyncPeriod=5minutes"],
            "at '/operator/resyncPeriod'",
        ),
        (
            &["--set", "operator.allowedPathPrefixes.team-a[0]=../up"],
            "at '/operator/allowedPathPrefixes/team-a/0'",
        ),
        (&["--set", "image.digest=sha256:abc"], "at '/image/digest'"),
        (&["--set", "api.port=70000"], "at '/api/port'"),
        (
            &["--set", "persistence.size=lots"],
            "at '/persistence/size'",
        ),
    ];
    for (args, want) in cases {
        let out = template_err(args);
        assert!(!out.ok, "{args:?} was accepted");
        assert!(
            out.stderr
                .contains("values don't meet the specifications of the schema")
                && out.stderr.contains(want),
            "{args:?}: expected a schema error containing {want:?}, got:\n{}",
            out.all()
        );
    }
    // A typo in a values file, the common case.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, "persistance:\n  size: 5Gi\n").expect("write values");
    let out = template_err(&["-f", &file.to_string_lossy()]);
    assert!(
        !out.ok && out.stderr.contains("'persistance' not allowed"),
        "{}",
        out.all()
    );
    // The same keys with good values render: the errors above are about the
    // values, not the keys.
    let good = template_err(&[
        "--set",
        "logging.level=debug",
        "--set",
        "operator.resyncPeriod=10m",
        "--set",
        "operator.allowedPathPrefixes.team-a[0]=shared",
        "--set",
        "persistence.size=20Gi",
        "--set",
        "replicas=0",
    ]);
    assert!(good.ok, "{}", good.all());
}

#[test]
fn every_pod_meets_the_restricted_pod_security_standard() {
    let mut renders = vec![("defaults".to_string(), default_docs())];
    for f in ci_values() {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        renders.push((name.clone(), ci_docs(&name)));
    }
    for (values, docs) in &renders {
        let pods = pod_specs(docs);
        assert!(
            pods.iter().any(|(n, _)| n.starts_with("StatefulSet/"))
                && pods.iter().any(|(n, _)| n.starts_with("Pod/")),
            "{values}: expected the StatefulSet and the test Pod, got {:?}",
            pods.iter().map(|p| &p.0).collect::<Vec<_>>()
        );
        for (name, pod) in &pods {
            let v = restricted_violations(pod);
            assert!(
                v.is_empty(),
                "{values}: {name} breaks the restricted PSS: {v:#?}"
            );
            for c in containers(pod) {
                assert_eq!(
                    c["securityContext"]["readOnlyRootFilesystem"], true,
                    "{values}: {name}/{} must have a read-only root filesystem",
                    c["name"]
                );
                assert!(
                    !c["resources"]["limits"]["memory"].is_null(),
                    "{name}: memory limit"
                );
            }
        }
        // Writable only: the data volume and the /tmp emptyDir.
        let sts = docs
            .iter()
            .find(|d| d["kind"] == "StatefulSet")
            .expect("StatefulSet");
        let pod = &sts["spec"]["template"]["spec"];
        let writable: BTreeSet<String> = pod["containers"][0]["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["readOnly"] != true)
            .map(|m| {
                let name = m["name"].as_str().unwrap_or("");
                let kind = pod["volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|v| v["name"] == name)
                    .and_then(|v| v.as_object())
                    .and_then(|o| o.keys().find(|k| *k != "name").cloned())
                    .unwrap_or_else(|| "volumeClaimTemplate".into());
                format!("{} {kind}", m["mountPath"].as_str().unwrap_or(""))
            })
            .collect();
        // With ha.enabled the data directory (plugin image cache only; the
        // storage is PostgreSQL) is an emptyDir.
        let data = match values.as_str() {
            "ha-values.yaml" => "/var/lib/lockbox emptyDir",
            _ => "/var/lib/lockbox volumeClaimTemplate",
        };
        assert_eq!(
            writable,
            BTreeSet::from(["/tmp emptyDir".to_string(), data.to_string()]),
            "{values}: writable mounts"
        );
        let tmp = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == "tmp")
            .expect("tmp volume");
        assert!(
            tmp["emptyDir"]["sizeLimit"].is_string(),
            "{values}: /tmp is size-limited"
        );
        let test_pod = docs.iter().find(|d| d["kind"] == "Pod").expect("test pod");
        assert_eq!(test_pod["spec"]["automountServiceAccountToken"], false);
        for c in containers(&test_pod["spec"]) {
            for m in c["volumeMounts"].as_array().into_iter().flatten() {
                assert_eq!(
                    m["readOnly"], true,
                    "{values}: test pod mounts are read-only"
                );
            }
        }
    }
    // The checker itself catches what it is for.
    let bad = json!({
        "hostNetwork": true,
        "securityContext": {"runAsUser": 0},
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}},
                        "ports": [{"containerPort": 80, "hostPort": 80}]}]
    });
    let v = restricted_violations(&bad).join("\n");
    for want in [
        "hostNetwork",
        "hostPath",
        "runAsUser is 0",
        "allowPrivilegeEscalation",
        "runAsNonRoot",
        "seccompProfile",
        "drop does not contain ALL",
        "SYS_ADMIN",
        "hostPort",
    ] {
        assert!(v.contains(want), "checker missed {want}: {v}");
    }
}

/// The rules of an RBAC object as `group resource[/sub] verb [name]`
/// lines, one per (group, resource, verb, resourceName).
pub fn rules(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in doc["rules"].as_array().into_iter().flatten() {
        let strings = |k: &str| -> Vec<String> {
            r[k].as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        };
        let names = strings("resourceNames");
        let names = if names.is_empty() {
            vec!["*any*".to_string()]
        } else {
            names
        };
        for g in strings("apiGroups") {
            for res in strings("resources") {
                for verb in strings("verbs") {
                    for n in &names {
                        let g = if g.is_empty() { "core" } else { g.as_str() };
                        out.insert(format!("{g} {res} {verb} {n}"));
                    }
                }
            }
        }
    }
    out
}

pub fn set(lines: &[&str]) -> BTreeSet<String> {
    lines.iter().map(|s| s.to_string()).collect()
}

#[test]
fn rbac_is_exactly_what_the_operator_uses() {
    // The operator's API calls (crates/operator/src/*.rs): watch/list/get + patch
    // (finalizers) of both kinds, server-side apply of their status, events
    // (cluster-wide: mounts live in any namespace; catalog entries' events
    // go to kube-system), and in its own namespace: create/get/list/watch
    // Secrets, create its Lease, get/update only that Lease. Anything more is
    // a widening that must be deliberate (change this list with a reason).
    let docs = default_docs();
    let cluster = rules(find(&docs, "ClusterRole", "lockbox"));
    let mut want_cluster = BTreeSet::new();
    // The tenant kinds (Policy, KubernetesAuthRole, AuthMount) likewise; a
    // KubernetesAuthRole's reconcile gets the Policies it names (`get`).
    for res in [
        "plugincatalogentries",
        "secretsmounts",
        "policies",
        "kubernetesauthroles",
        "authmounts",
    ] {
        for verb in ["get", "list", "watch", "patch"] {
            want_cluster.insert(format!("lockbox.dev {res} {verb} *any*"));
        }
        for verb in ["get", "patch"] {
            want_cluster.insert(format!("lockbox.dev {res}/status {verb} *any*"));
        }
    }
    want_cluster.extend(set(&[
        "events.k8s.io events create *any*",
        "events.k8s.io events patch *any*",
    ]));
    assert_eq!(cluster, want_cluster, "ClusterRole rules");
    let role = find(&docs, "Role", "lockbox");
    assert_eq!(role["metadata"]["namespace"], "lockbox-system");
    assert_eq!(
        rules(role),
        set(&[
            "core secrets create *any*",
            "core secrets get *any*",
            "core secrets list *any*",
            "core secrets watch *any*",
            "coordination.k8s.io leases create *any*",
            "coordination.k8s.io leases get lockbox-operator",
            "coordination.k8s.io leases update lockbox-operator",
        ]),
        "Role rules"
    );
    for (kind, role_kind) in [
        ("ClusterRoleBinding", "ClusterRole"),
        ("RoleBinding", "Role"),
    ] {
        let b = find(&docs, kind, "lockbox");
        assert_eq!(
            b["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": "lockbox"})
        );
        assert_eq!(
            b["subjects"],
            json!([{"kind": "ServiceAccount", "name": "lockbox", "namespace": "lockbox-system"}]),
            "{kind} binds only lockbox's ServiceAccount"
        );
    }
    // The only objects with cluster scope are the CRDs (crds/, not
    // templates), the ClusterRole and its binding.
    for d in &docs {
        let kind = d["kind"].as_str().unwrap_or("");
        if ![
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
        ]
        .contains(&kind)
        {
            assert_eq!(
                d["metadata"]["namespace"], "lockbox-system",
                "{kind} is namespaced"
            );
        }
    }
    // rbac.create=false renders none of it.
    let dev = ci_docs("dev-values.yaml");
    assert!(
        dev.iter()
            .all(|d| !d["kind"].as_str().unwrap_or("").contains("Role")
                && d["kind"] != "ServiceAccount"),
        "rbac.create=false and serviceAccount.create=false"
    );
}

/// The StatefulSet's container of a render.
fn lockbox_container(docs: &[Value]) -> Value {
    let sts = docs
        .iter()
        .find(|d| d["kind"] == "StatefulSet")
        .expect("StatefulSet");
    let cs = sts["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(cs.len(), 1, "one container");
    cs[0].clone()
}

#[test]
fn every_rendered_flag_is_accepted_by_lockbox_operator_run() {
    let mut renders = vec![("defaults".to_string(), default_docs())];
    for f in ci_values() {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        renders.push((name.clone(), ci_docs(&name)));
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    for (values, docs) in renders {
        let c = lockbox_container(&docs);
        assert_eq!(c["command"], json!(["/usr/local/bin/lockbox"]), "{values}");
        let args: Vec<String> = c["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("string arg").to_string())
            .collect();
        assert_eq!(&args[..2], ["operator", "run"], "{values}");
        // Literal env values of the container too (extraEnv may set
        // LOCKBOX_* variables that clap reads).
        let mut cmd = Command::new(crate::workspace_binary("lockbox"));
        cmd.args(&args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", tmp.path())
            .env("KUBECONFIG", tmp.path().join("no-such-kubeconfig"));
        for e in c["env"].as_array().into_iter().flatten() {
            if let (Some(n), Some(v)) = (e["name"].as_str(), e["value"].as_str()) {
                cmd.env(n, v);
            }
        }
        // Parsing succeeds, so the first thing that fails is the
        // Kubernetes client (there is no cluster configured).
        let out = run(&mut cmd);
        assert!(
            !out.ok
                && out
                    .stderr
                    .contains("cannot configure the Kubernetes client"),
            "{values}: lockbox {} did not get past argument parsing:\n{}",
            args.join(" "),
            out.all()
        );
    }
    // And a wrong flag is caught by the same check.
    let out = run(Command::new(crate::workspace_binary("lockbox"))
        .args([
            "operator",
            "run",
            "--data-dir=/x",
            "--plugin-directory=/y",
            "--log-format=xml",
        ])
        .env("KUBECONFIG", tmp.path().join("no-such-kubeconfig")));
    assert!(
        !out.ok
            && !out
                .stderr
                .contains("cannot configure the Kubernetes client"),
        "{}",
        out.all()
    );
}

#[test]
fn every_value_is_documented_by_a_comment() {
    let path = repo().join("charts/lockbox/values.yaml");
    let text = std::fs::read_to_string(&path).expect("values.yaml");
    let mut undocumented = Vec::new();
    let mut prev = "";
    for line in text.lines() {
        let t = line.trim_start();
        let is_key = !t.starts_with('#')
            && !t.starts_with('-')
            && t.split_once(':').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if is_key && !prev.trim_start().starts_with('#') {
            undocumented.push(line.to_string());
        }
        if !t.is_empty() {
            prev = line;
        }
    }
    assert!(
        undocumented.is_empty(),
        "values without a comment above them: {undocumented:#?}"
    );
    // And the schema knows every top-level key (additionalProperties:false
    // would otherwise reject the defaults themselves).
    let values: Value = serde_saphyr::from_str(&text).expect("values.yaml parses");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("charts/lockbox/values.schema.json")).expect("schema"),
    )
    .expect("schema is JSON");
    assert_eq!(schema["additionalProperties"], false);
    for key in values.as_object().expect("map").keys() {
        assert!(schema["properties"][key].is_object(), "schema lacks {key}");
    }
}

#[test]
fn non_default_values_reach_the_manifests() {
    let docs = ci_docs("all-features-values.yaml");
    let name = "vault-compatible-secrets";
    let sts = find(&docs, "StatefulSet", name);
    let pod = &sts["spec"]["template"]["spec"];
    let c = lockbox_container(&docs);
    let image = "registry.example.com:5000/platform/lockbox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_eq!(c["image"], image);
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(
        pod["imagePullSecrets"],
        json!([{"name": "registry-credentials"}])
    );
    assert_eq!(pod["serviceAccountName"], "lockbox-operator");
    assert_eq!(
        find(&docs, "ServiceAccount", "lockbox-operator")["metadata"]["annotations"]["example.com/owner"],
        "platform-team"
    );
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in [
        "--api-address=0.0.0.0:8443",
        "--health-address=0.0.0.0:9090",
        "--tls-cert-file=/etc/lockbox/tls/tls.crt",
        "--resync-period=1h30m",
        "--allowed-path-prefix=team-a=shared",
        "--allowed-path-prefix=team-a=apps/team-a",
        "--allowed-path-prefix=team-b=shared",
        "--log-level=debug",
        "--log-format=standard",
    ] {
        assert!(args.contains(&want), "missing {want} in {args:?}");
    }
    let vols = pod["volumes"].as_array().expect("volumes");
    assert!(
        vols.iter()
            .any(|v| v["secret"]["secretName"] == "lockbox-api-tls")
    );
    assert!(
        vols.iter().any(|v| v["name"] == "plugins"
            && v["persistentVolumeClaim"]["claimName"] == "lockbox-plugins")
    );
    let mounts = c["volumeMounts"].as_array().expect("mounts");
    assert!(mounts.iter().any(|m| m["name"] == "plugins"
        && m["mountPath"] == "/usr/lib/lockbox/plugins/team-plugins"
        && m["readOnly"] == true));
    let env = c["env"].as_array().expect("env");
    assert!(
        env.iter()
            .any(|e| e["name"] == "LOCKBOX_LOG" && e["value"] == "info,lockbox=debug")
    );
    assert!(env.iter().any(|e| e["name"] == "EXTRA_FROM_SECRET"
        && e["valueFrom"]["secretKeyRef"]["name"] == "lockbox-extra"));
    assert_eq!(c["resources"]["limits"]["cpu"], "1");
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(pod["tolerations"][0]["value"], "secrets");
    assert!(pod["affinity"]["nodeAffinity"].is_object());
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["terminationGracePeriodSeconds"], 60);
    assert_eq!(
        sts["spec"]["template"]["metadata"]["annotations"]["example.com/audit"],
        "true"
    );
    assert_eq!(
        sts["spec"]["template"]["metadata"]["labels"]["example.com/team"],
        "platform"
    );
    let claim = &sts["spec"]["volumeClaimTemplates"][0];
    assert_eq!(claim["spec"]["storageClassName"], "fast-ssd");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "5Gi");
    assert_eq!(
        claim["metadata"]["annotations"]["example.com/backup"],
        "daily"
    );
    // Ports line up: container, probes, Services, ServiceMonitor, NetworkPolicy.
    assert_eq!(
        c["ports"],
        json!([
        {"name": "api", "containerPort": 8443, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}])
    );
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(c[probe]["httpGet"]["port"], "metrics", "{probe}");
    }
    let api = find(&docs, "Service", name);
    assert_eq!(api["spec"]["type"], "LoadBalancer");
    assert_eq!(api["spec"]["ports"][0]["port"], 8443);
    assert_eq!(api["spec"]["ports"][0]["targetPort"], "api");
    let metrics = find(&docs, "Service", &format!("{name}-metrics"));
    assert_eq!(metrics["spec"]["ports"][0]["port"], 9090);
    assert_eq!(
        metrics["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    let sm = find(&docs, "ServiceMonitor", name);
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "15s");
    for (k, v) in sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector")
    {
        assert_eq!(
            &metrics["metadata"]["labels"][k], v,
            "ServiceMonitor selects the metrics Service ({k})"
        );
        if k != "app.kubernetes.io/component" {
            assert_ne!(&api["metadata"]["labels"]["app.kubernetes.io/component"], v);
        }
    }
    assert_ne!(
        api["metadata"]["labels"]["app.kubernetes.io/component"],
        "metrics"
    );
    let np = find(&docs, "NetworkPolicy", name);
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(np["spec"]["ingress"][0]["ports"][0]["port"], "api");
    assert_eq!(
        np["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["lockbox-client"],
        "true"
    );
    assert_eq!(np["spec"]["ingress"][1]["ports"][0]["port"], "metrics");
    assert_eq!(np["spec"]["egress"][1]["ports"][0]["port"], 53);
    assert_eq!(
        find(&docs, "PodDisruptionBudget", name)["spec"]["maxUnavailable"],
        0
    );
    let test = find(&docs, "Pod", &format!("{name}-test"));
    let env = &test["spec"]["initContainers"][0]["env"];
    assert_eq!(
        env[0],
        json!({"name": "LOCKBOX_ADDR", "value": "https://vault-compatible-secrets.lockbox-system.svc:8443"})
    );
    assert_eq!(
        test["spec"]["volumes"][0]["secret"]["items"][0]["key"],
        "ca.crt"
    );
    assert_eq!(
        test["spec"]["imagePullSecrets"],
        json!([{"name": "registry-credentials"}])
    );

    // The development values: no TLS, no PDB, an existing ServiceAccount.
    let dev = ci_docs("dev-values.yaml");
    let sts = find(&dev, "StatefulSet", "lockbox");
    assert_eq!(sts["spec"]["replicas"], 0);
    assert_eq!(
        sts["spec"]["template"]["spec"]["serviceAccountName"],
        "lockbox-dev"
    );
    let c = lockbox_container(&dev);
    assert!(!c["args"].to_string().contains("tls"), "{}", c["args"]);
    assert!(
        !sts["spec"]["template"]["spec"]["volumes"]
            .to_string()
            .contains("tls")
    );
    assert!(dev.iter().all(|d| d["kind"] != "PodDisruptionBudget"));
    let test = find(&dev, "Pod", "lockbox-test");
    assert_eq!(
        test["spec"]["initContainers"][0]["env"][0]["value"],
        "http://lockbox.lockbox-system.svc:8200"
    );
    assert!(test["spec"]["volumes"].is_null());
    // The default: TLS on, from the Secret lockbox-tls.
    let def = default_docs();
    let sts = find(&def, "StatefulSet", "lockbox");
    assert!(
        sts["spec"]["template"]["spec"]["volumes"]
            .to_string()
            .contains("\"secretName\":\"lockbox-tls\"")
    );
}
