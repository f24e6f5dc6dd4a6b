//! Operator tests against a real kube-apiserver (tests/harness), with the
//! real `lockbox operator run` binary under a least-privilege user, driven
//! with kubectl and checked through kubectl and the lockbox HTTP API.
//!
//! Needs kubectl from `tests/harness/install-kube.sh` and the current
//! kube-apiserver + etcd of `tests/harness/install-kube-current.sh` (or
//! `LOCKBOX_KUBE_BIN`); both are idempotent and run first. A harness that
//! cannot start fails the tests with the reason.

mod chaos;
mod consumer;
mod ha;
mod harness;
mod kube_auth;
mod status;
mod tenants;
mod vault;
// The throwaway PostgreSQL of the integration tests (pg-up.sh).
#[path = "../integration/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;
// The loopback registry of the integration tests (docker-registry, skopeo).
#[path = "../integration/oci/registry.rs"]
#[allow(dead_code)]
mod registry;

use harness::{Scenario, api, cluster, curl, eventually, pid_alive, sha256_file};
use std::time::Duration;

const WAIT: u32 = 60;

/// Catalog entry + mounts → Ready → write/read through the API → delete:
/// Retain keeps the lockbox mount, Delete removes it. Also: the Secrets,
/// status fields, events and metrics.
#[test]
fn catalog_entry_and_mount_lifecycle() {
    let s = Scenario::start("life", &["life-a"], &[]);
    let c = cluster();
    let op = s.operator();
    // An env value from a Secret in the operator's namespace: it must reach
    // the plugin (the mock echoes MOCK_PLUGIN_MARKER as `served_by`) and
    // nothing else.
    let marker = "marker-value-7f3a9c";
    c.must(&[
        "create",
        "secret",
        "generic",
        "mock-env",
        "-n",
        &s.op_ns,
        &format!("--from-literal=marker={marker}"),
    ]);
    c.must(&[
        "label",
        "secret",
        "mock-env",
        "-n",
        &s.op_ns,
        "lockbox.dev/plugin-env=true",
    ]);
    let env = "  env:\n  - name: MOCK_PLUGIN_MARKER\n    valueFrom:\n      secretKeyRef:\n        name: mock-env\n        key: marker\n";
    c.apply(&format!(
        "{}{env}",
        s.entry_yaml("mock-life", "lockbox-plugin-mock", &s.mock_sha, "1.0.0")
    ));
    c.wait(&["pce/mock-life"], "condition=Ready", WAIT);
    c.wait(&["pce/mock-life"], "condition=Verified", WAIT);
    assert_eq!(c.get(&["pce/mock-life"], "{.status.sha256}"), s.mock_sha);
    assert_eq!(
        c.get(&["pce/mock-life"], "{.status.sha256Prefix}"),
        s.mock_sha[..12]
    );
    assert_eq!(c.get(&["pce/mock-life"], "{.status.version}"), "1.0.0");

    c.apply(&s.mount_yaml("life-a", "keep", "mock-life", "  deletionPolicy: Retain\n"));
    c.apply(&s.mount_yaml(
        "life-a",
        "drop",
        "mock-life",
        "  deletionPolicy: Delete\n  description: dropped on delete\n",
    ));
    for m in ["smount/keep", "smount/drop"] {
        c.wait(&["-n", "life-a", m], "condition=Ready", WAIT);
    }
    let mount = ["-n", "life-a", "smount/keep"];
    assert_eq!(c.get(&mount, "{.status.path}"), "life-a/keep/");
    assert_eq!(c.get(&mount, "{.status.runningSha256}"), s.mock_sha);
    assert!(!c.get(&mount, "{.status.accessor}").is_empty());
    assert_eq!(
        c.get(&mount, "{.status.observedGeneration}"),
        c.get(&mount, "{.metadata.generation}")
    );

    // The Secrets exist; the root token works against the API.
    let unseal = c.get(
        &["secret", "-n", &s.op_ns, "lockbox-unseal-keys"],
        "{.data.unseal-key}",
    );
    assert!(!unseal.is_empty(), "the unseal key Secret is missing");
    let token = s.root_token();
    let (code, _) = api(
        &op,
        &token,
        "POST",
        "life-a/keep/hello",
        Some(r#"{"v":"1"}"#),
    );
    assert!(code == 200 || code == 204, "write failed: {code}");
    let (code, body) = api(&op, &token, "GET", "life-a/keep/hello", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["v"], "1", "{body}");
    assert_eq!(body["data"]["served_by"], marker, "{body}");
    // Changing the Secret reloads the plugin with the new value.
    let marker2 = "marker-value-second-81b2";
    c.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: mock-env\n  namespace: {}\n  labels:\n    lockbox.dev/plugin-env: \"true\"\nstringData:\n  marker: {marker2}\n",
        s.op_ns
    ));
    eventually(
        "the plugin to see the new Secret value",
        Duration::from_secs(30),
        || {
            let (_, b) = api(&op, &token, "GET", "life-a/keep/hello", None);
            (b["data"]["served_by"] == marker2).then_some(())
        },
    );
    let (_, pce, _) = c.kubectl(&["get", "pce/mock-life", "-o", "yaml"]);
    assert!(
        !pce.contains(marker),
        "the env value leaked into the object:\n{pce}"
    );
    let (_, mounts) = api(&op, &token, "GET", "sys/mounts", None);
    assert_eq!(
        mounts["data"]["life-a/drop/"]["description"],
        "dropped on delete"
    );

    // Events and metrics.
    let (_, events, _) = c.kubectl(&[
        "get",
        "events.events.k8s.io",
        "-n",
        "life-a",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(events.contains("Mounted"), "events: {events}");
    let (_, events, _) = c.kubectl(&[
        "get",
        "events.events.k8s.io",
        "-n",
        "kube-system",
        "-o",
        r#"jsonpath={range .items[?(@.regarding.name=="mock-life")]}{.reason}{"\n"}{end}"#,
    ]);
    assert!(events.contains("Registered"), "events: {events}");
    let metrics = curl(&format!("{}/metrics", op.health)).expect("metrics");
    assert!(
        metrics.contains("lockbox_operator_reconciles_total{kind=\"SecretsMount\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lockbox_plugin_processes{type=\"secret\",plugin=\"mock-life\""),
        "{metrics}"
    );
    assert_eq!(
        curl(&format!("{}/readyz", op.health)).as_deref(),
        Some("ok\n")
    );

    // Changing spec.path moves the mount with its data.
    c.apply(&s.mount_yaml(
        "life-a",
        "keep",
        "mock-life",
        "  deletionPolicy: Retain\n  path: life-a/moved\n",
    ));
    eventually("the mount to move", Duration::from_secs(30), || {
        (c.get(&mount, "{.status.path}") == "life-a/moved/").then_some(())
    });
    c.wait(&mount, "condition=Ready", WAIT);
    let (_, mounts) = api(&op, &token, "GET", "sys/mounts", None);
    assert!(mounts["data"].get("life-a/keep/").is_none(), "{mounts}");
    let (code, body) = api(&op, &token, "GET", "life-a/moved/hello", None);
    assert_eq!(code, 200, "{body}");

    // Delete: Retain keeps the mount and its data; Delete removes it.
    c.must(&["delete", "-n", "life-a", "smount/keep", "--timeout=60s"]);
    c.must(&["delete", "-n", "life-a", "smount/drop", "--timeout=60s"]);
    let (_, mounts) = api(&op, &token, "GET", "sys/mounts", None);
    assert!(mounts["data"].get("life-a/moved/").is_some(), "{mounts}");
    assert!(mounts["data"].get("life-a/drop/").is_none(), "{mounts}");
    let (code, body) = api(&op, &token, "GET", "life-a/moved/hello", None);
    assert_eq!(code, 200, "{body}");

    // Deleting the catalog entry deregisters it from the core.
    c.must(&["delete", "pce/mock-life", "--timeout=60s"]);
    let (code, _) = api(
        &op,
        &token,
        "GET",
        "sys/plugins/catalog/secret/mock-life?version=1.0.0",
        None,
    );
    assert_eq!(code, 404);
    op.stop();
    let logs = s.logs();
    let (_, ev, _) = c.kubectl(&["get", "events.events.k8s.io", "-A", "-o", "yaml"]);
    for m in [marker, marker2] {
        assert!(!logs.contains(m), "the env value leaked into the logs");
        assert!(!ev.contains(m), "the env value leaked into events");
    }
}

/// A wrong sha256: Ready=False and Verified=False (DigestMismatch, both
/// digests named), a Warning event, nothing registered, the plugin never
/// executed; a mount of it reports PluginMissing.
#[test]
fn digest_mismatch_is_reported_and_never_runs() {
    let s = Scenario::start("digest", &["digest-a"], &[]);
    let c = cluster();
    let op = s.operator();
    let wrong = "0".repeat(64);
    c.apply(&s.entry_yaml("mock-digest", "lockbox-plugin-mock", &wrong, "1.0.0"));
    c.wait(&["pce/mock-digest"], "condition=Verified=false", WAIT);
    c.wait(&["pce/mock-digest"], "condition=Ready=false", WAIT);
    let reason = c.get(
        &["pce/mock-digest"],
        r#"{.status.conditions[?(@.type=="Verified")].reason}"#,
    );
    assert_eq!(reason, "DigestMismatch");
    let msg = c.get(
        &["pce/mock-digest"],
        r#"{.status.conditions[?(@.type=="Ready")].message}"#,
    );
    assert!(msg.contains(&wrong) && msg.contains(&s.mock_sha), "{msg}");
    assert!(c.get(&["pce/mock-digest"], "{.status.sha256}").is_empty());

    c.apply(&s.mount_yaml("digest-a", "kv", "mock-digest", ""));
    c.wait(
        &["-n", "digest-a", "smount/kv"],
        "condition=Ready=false",
        WAIT,
    );
    eventually(
        "PluginMissing on the mount",
        Duration::from_secs(30),
        || {
            (c.get(
                &["-n", "digest-a", "smount/kv"],
                r#"{.status.conditions[?(@.type=="Ready")].reason}"#,
            ) == "PluginMissing")
                .then_some(())
        },
    );

    let events = eventually("the DigestMismatch event", Duration::from_secs(30), || {
        let (_, ev, _) = c.kubectl(&[
            "get",
            "events.events.k8s.io",
            "-A",
            "-o",
            r#"jsonpath={range .items[?(@.reason=="DigestMismatch")]}{.type} {.regarding.name}{"\n"}{end}"#,
        ]);
        ev.contains("mock-digest").then_some(ev)
    });
    assert!(events.contains("Warning mock-digest"), "{events}");

    let token = s.root_token();
    let (code, _) = api(
        &op,
        &token,
        "GET",
        "sys/plugins/catalog/secret/mock-digest",
        None,
    );
    assert_eq!(code, 404, "a mismatched plugin must not be registered");
    let (_, mounts) = api(&op, &token, "GET", "sys/mounts", None);
    assert!(mounts["data"].get("digest-a/kv/").is_none(), "{mounts}");
    assert!(
        op.children().is_empty(),
        "the plugin was executed: {:?}",
        op.children()
    );

    let metrics = curl(&format!("{}/metrics", op.health)).expect("metrics");
    assert!(
        metrics.contains(
            "lockbox_operator_reconcile_errors_total{kind=\"PluginCatalogEntry\",reason=\"DigestMismatch\"}"
        ),
        "{metrics}"
    );

    // An env value from a Secret that does not exist: SecretMissing.
    let env = "  env:\n  - name: TOKEN\n    valueFrom:\n      secretKeyRef:\n        name: absent\n        key: token\n";
    c.apply(&format!(
        "{}{env}",
        s.entry_yaml("mock-nosecret", "lockbox-plugin-mock", &s.mock_sha, "1.0.0")
    ));
    c.wait(&["pce/mock-nosecret"], "condition=Ready=false", WAIT);
    assert_eq!(
        c.get(
            &["pce/mock-nosecret"],
            r#"{.status.conditions[?(@.type=="Ready")].reason}"#
        ),
        "SecretMissing"
    );

    // Fixing the digest registers it and the waiting mount comes up.
    c.apply(&s.entry_yaml("mock-digest", "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    c.wait(&["pce/mock-digest"], "condition=Ready", WAIT);
    c.wait(&["-n", "digest-a", "smount/kv"], "condition=Ready", WAIT);
    op.stop();
}

/// Two namespaces claim the same explicit path (both allowed the prefix):
/// the older SecretsMount gets it, the later one is PathConflict.
#[test]
fn path_conflict_between_namespaces() {
    let s = Scenario::start(
        "conflict",
        &["conflict-a", "conflict-b"],
        &["conflict-a=shared", "conflict-b=shared"],
    );
    let c = cluster();
    let op = s.operator();
    c.apply(&s.entry_yaml("mock-conflict", "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    c.wait(&["pce/mock-conflict"], "condition=Ready", WAIT);
    c.apply(&s.mount_yaml(
        "conflict-a",
        "first",
        "mock-conflict",
        "  path: shared/kv\n",
    ));
    c.wait(
        &["-n", "conflict-a", "smount/first"],
        "condition=Ready",
        WAIT,
    );
    // creationTimestamp has one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));
    c.apply(&s.mount_yaml(
        "conflict-b",
        "second",
        "mock-conflict",
        "  path: shared/kv\n",
    ));
    c.wait(
        &["-n", "conflict-b", "smount/second"],
        "condition=Ready=false",
        WAIT,
    );
    let reason = c.get(
        &["-n", "conflict-b", "smount/second"],
        r#"{.status.conditions[?(@.type=="Ready")].reason}"#,
    );
    assert_eq!(reason, "PathConflict");
    let msg = c.get(&["-n", "conflict-b", "smount/second"], "{.status.message}");
    assert!(msg.contains("conflict-a/first"), "{msg}");
    // The first one is untouched.
    c.wait(&["-n", "conflict-a", "smount/first"], "condition=Ready", 5);
    // A path outside the namespace and its allowed prefixes is InvalidSpec.
    c.apply(&s.mount_yaml(
        "conflict-b",
        "outside",
        "mock-conflict",
        "  path: elsewhere/kv\n",
    ));
    c.wait(
        &["-n", "conflict-b", "smount/outside"],
        "condition=Ready=false",
        WAIT,
    );
    assert_eq!(
        c.get(
            &["-n", "conflict-b", "smount/outside"],
            r#"{.status.conditions[?(@.type=="Ready")].reason}"#,
        ),
        "InvalidSpec"
    );
    // Deleting the conflicting (Delete-policy) loser leaves the winner's mount.
    let token = s.root_token();
    c.must(&[
        "patch",
        "-n",
        "conflict-b",
        "smount/second",
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Delete"}}"#,
    ]);
    c.must(&[
        "delete",
        "-n",
        "conflict-b",
        "smount/second",
        "--timeout=60s",
    ]);
    let (_, mounts) = api(&op, &token, "GET", "sys/mounts", None);
    assert!(mounts["data"].get("shared/kv/").is_some(), "{mounts}");
    op.stop();
}

/// Drift through the HTTP API is corrected; a restart keeps data and does
/// not duplicate or re-create mounts.
#[test]
fn drift_is_corrected_and_restart_keeps_state() {
    let s = Scenario::start("drift", &["drift-a"], &[]);
    let c = cluster();
    let op = s.operator();
    c.apply(&s.entry_yaml("mock-drift", "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    c.apply(&s.mount_yaml(
        "drift-a",
        "kv",
        "mock-drift",
        "  description: as declared\n",
    ));
    c.wait(&["-n", "drift-a", "smount/kv"], "condition=Ready", WAIT);
    let token = s.root_token();

    // Disabled behind the operator's back: enabled again.
    let (code, _) = api(&op, &token, "DELETE", "sys/mounts/drift-a/kv", None);
    assert_eq!(code, 204);
    eventually(
        "the mount to be enabled again",
        Duration::from_secs(30),
        || {
            let (_, m) = api(&op, &token, "GET", "sys/mounts", None);
            m["data"].get("drift-a/kv/").is_some().then_some(())
        },
    );
    // Tuned behind its back: tuned back.
    let (code, _) = api(
        &op,
        &token,
        "POST",
        "sys/mounts/drift-a/kv/tune",
        Some(r#"{"description":"changed by hand","max_lease_ttl":"1h"}"#),
    );
    assert_eq!(code, 204);
    eventually("the tune to be reverted", Duration::from_secs(30), || {
        let (_, m) = api(&op, &token, "GET", "sys/mounts", None);
        let e = &m["data"]["drift-a/kv/"];
        (e["description"] == "as declared" && e["config"]["max_lease_ttl"] == 0).then_some(())
    });

    let (code, _) = api(
        &op,
        &token,
        "POST",
        "drift-a/kv/keep",
        Some(r#"{"v":"kept"}"#),
    );
    assert!(code == 200 || code == 204);
    let accessor = c.get(&["-n", "drift-a", "smount/kv"], "{.status.accessor}");
    eventually(
        "status to catch up with the re-enabled mount",
        Duration::from_secs(30),
        || {
            let (_, m) = api(&op, &token, "GET", "sys/mounts", None);
            (m["data"]["drift-a/kv/"]["accessor"] == accessor.as_str()).then_some(())
        },
    );

    // Restart: same data, same mount (accessor), nothing duplicated.
    op.stop();
    let op = s.operator();
    assert_eq!(s.root_token(), token);
    let (code, body) = api(&op, &token, "GET", "drift-a/kv/keep", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["v"], "kept");
    c.wait(&["-n", "drift-a", "smount/kv"], "condition=Ready", WAIT);
    std::thread::sleep(Duration::from_secs(4)); // one resync
    let (_, m) = api(&op, &token, "GET", "sys/mounts", None);
    let ours: Vec<_> = m["data"]
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| k.starts_with("drift-a/"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ours, vec!["drift-a/kv/".to_string()]);
    assert_eq!(m["data"]["drift-a/kv/"]["accessor"], accessor.as_str());
    op.stop();
}

/// Editing the catalog entry (new binary path + sha256) reloads its mounts:
/// the running sha changes and the old process is gone; data stays.
#[test]
fn upgrade_by_editing_the_catalog_entry() {
    let s = Scenario::start("upgrade", &["upgrade-a"], &[]);
    let c = cluster();
    let op = s.operator();
    c.apply(&s.entry_yaml("mock-upgrade", "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    c.apply(&s.mount_yaml("upgrade-a", "kv", "mock-upgrade", ""));
    c.wait(&["-n", "upgrade-a", "smount/kv"], "condition=Ready", WAIT);
    let token = s.root_token();
    let (code, _) = api(
        &op,
        &token,
        "POST",
        "upgrade-a/kv/k",
        Some(r#"{"v":"before"}"#),
    );
    assert!(code == 200 || code == 204);
    let old_pids = op.children();
    assert!(!old_pids.is_empty(), "no plugin process is running");

    // A different binary: the same plugin with trailing bytes.
    let v2 = s.plugin_dir.join("mock-v2");
    let mut bytes = std::fs::read(s.plugin_dir.join("lockbox-plugin-mock")).expect("read");
    bytes.extend_from_slice(b"\0lockbox-upgrade-test");
    std::fs::write(&v2, &bytes).expect("write v2");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&v2, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let v2_sha = sha256_file(&v2);
    c.apply(&s.entry_yaml("mock-upgrade", "mock-v2", &v2_sha, "1.1.0"));
    eventually(
        "the mount to run the new sha256",
        Duration::from_secs(60),
        || {
            (c.get(&["-n", "upgrade-a", "smount/kv"], "{.status.runningSha256}") == v2_sha)
                .then_some(())
        },
    );
    c.wait(&["pce/mock-upgrade"], "condition=Ready", WAIT);
    assert_eq!(c.get(&["pce/mock-upgrade"], "{.status.version}"), "1.1.0");
    eventually(
        "the old plugin process to exit",
        Duration::from_secs(30),
        || old_pids.iter().all(|p| !pid_alive(*p)).then_some(()),
    );
    let (_, m) = api(&op, &token, "GET", "sys/mounts", None);
    assert_eq!(
        m["data"]["upgrade-a/kv/"]["running_sha256"],
        v2_sha.as_str()
    );
    let (code, body) = api(&op, &token, "GET", "upgrade-a/kv/k", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["v"], "before");
    let (_, events, _) = c.kubectl(&[
        "get",
        "events.events.k8s.io",
        "-n",
        "upgrade-a",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(events.contains("Reloaded"), "events: {events}");
    op.stop();
}

/// Credentials the API server refuses stop the operator at the CRD check
/// with the failing operation named.
#[test]
fn startup_fails_clearly_with_bad_credentials() {
    let _c = cluster();
    let tmp = tempfile::tempdir().expect("tempdir");
    // A kubeconfig for a user the API server does not know.
    let kc =
        std::fs::read_to_string(cluster().dir.join("kubeconfig-operator")).expect("kubeconfig");
    let bad = regex_replace_token(&kc);
    let kc_path = tmp.path().join("kubeconfig");
    std::fs::write(&kc_path, bad).expect("write kubeconfig");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lockbox"))
        .args(["operator", "run", "--data-dir"])
        .arg(tmp.path().join("data"))
        .arg("--plugin-directory")
        .arg(tmp.path())
        .args([
            "--api-address",
            "127.0.0.1:0",
            "--health-address",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kc_path)
        .output()
        .expect("run operator");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ListPluginCatalogEntries failed"), "{err}");
}

fn regex_replace_token(kubeconfig: &str) -> String {
    kubeconfig
        .lines()
        .map(|l| match l.split_once("token:") {
            Some((indent, _)) => format!("{indent}token: not-a-valid-token"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A replica that does not hold the Lease runs no controllers; it takes
/// over once the Lease is free, steps down when another replica holds it,
/// and releases it on shutdown.
#[test]
fn standby_until_the_lease_is_free() {
    let s = Scenario::start("lease", &[], &[]);
    let c = cluster();
    let now = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.000000Z"])
        .output()
        .expect("date");
    let now = String::from_utf8_lossy(&now.stdout).trim().to_string();
    c.apply(&format!(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: lockbox-operator\n  namespace: {}\nspec:\n  holderIdentity: another-replica\n  leaseDurationSeconds: 3600\n  renewTime: \"{now}\"\n  acquireTime: \"{now}\"\n",
        s.op_ns
    ));
    let op = s.operator_standby();
    c.apply(&s.entry_yaml("mock-lease", "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    std::thread::sleep(Duration::from_secs(7));
    assert!(
        c.get(&["pce/mock-lease"], "{.status}").is_empty(),
        "a standby replica reconciled"
    );
    let metrics = curl(&format!("{}/metrics", op.health)).expect("metrics");
    assert!(metrics.contains("lockbox_operator_leader 0"), "{metrics}");

    c.must(&["delete", "lease", "-n", &s.op_ns, "lockbox-operator"]);
    c.wait(&["pce/mock-lease"], "condition=Ready", WAIT);
    let holder = c.get(
        &["lease", "-n", &s.op_ns, "lockbox-operator"],
        "{.spec.holderIdentity}",
    );
    assert!(
        !holder.is_empty() && holder != "another-replica",
        "{holder}"
    );

    // Another replica takes the lease over: this one stops its controllers.
    c.must(&[
        "patch", "lease", "-n", &s.op_ns, "lockbox-operator", "--type=merge", "-p",
        &format!(r#"{{"spec":{{"holderIdentity":"another-replica","leaseDurationSeconds":3600,"renewTime":"{now}"}}}}"#),
    ]);
    let metrics_url = format!("{}/metrics", op.health);
    eventually("the replica to step down", Duration::from_secs(20), || {
        curl(&metrics_url)
            .filter(|m| m.contains("lockbox_operator_leader 0"))
            .map(|_| ())
    });
    c.apply(&s.entry_yaml("mock-lease2", "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        c.get(&["pce/mock-lease2"], "{.status}").is_empty(),
        "a replica that lost the lease still reconciles"
    );
    // Free again: it takes over, and releases the lease on shutdown.
    c.must(&["delete", "lease", "-n", &s.op_ns, "lockbox-operator"]);
    c.wait(&["pce/mock-lease2"], "condition=Ready", WAIT);
    op.stop();
    let holder = c.get(
        &["lease", "-n", &s.op_ns, "lockbox-operator"],
        "{.spec.holderIdentity}",
    );
    assert!(holder.is_empty(), "the lease was not released: {holder}");
}

/// Without the CRDs the operator stops at once and says how to install
/// them; with only the platform kinds' CRDs it names the first tenant kind
/// missing.
#[test]
fn startup_fails_clearly_without_crds() {
    let empty = harness::EmptyCluster::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lockbox"))
            .args(["operator", "run", "--data-dir"])
            .arg(tmp.path().join("data"))
            .arg("--plugin-directory")
            .arg(tmp.path())
            .args([
                "--api-address",
                "127.0.0.1:0",
                "--health-address",
                "127.0.0.1:0",
            ])
            .env("KUBECONFIG", empty.dir.join("kubeconfig"))
            .output()
            .expect("run operator");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run();
    assert!(
        err.contains("plugincatalogentries.lockbox.dev")
            && err.contains("kubectl apply --server-side -f crds/"),
        "{err}"
    );
    for kind in ["plugincatalogentries", "secretsmounts"] {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("crds/lockbox.dev_{kind}.yaml"));
        empty.must(&["apply", "--server-side", "-f", &file.to_string_lossy()]);
        empty.must(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{kind}.lockbox.dev"),
            "--timeout=60s",
        ]);
    }
    let err = run();
    assert!(
        err.contains("the policies.lockbox.dev CustomResourceDefinition is not installed")
            && err.contains("kubectl apply --server-side -f crds/"),
        "{err}"
    );
    assert!(
        !tmp.path().join("data").exists(),
        "storage was created before the check"
    );
}

/// `lockbox plugin push` to the test registry (basic auth); returns the
/// manifest digest.
fn push_image(reg: &registry::Registry, file: &std::path::Path, reference: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lockbox"))
        .args(["plugin", "push", "-format=json"])
        .arg(format!("-insecure-registry={}", reg.host))
        .arg(format!("-username={}", registry::USER))
        .arg(file)
        .arg(reference)
        .env_clear()
        .env("LOCKBOX_REGISTRY_PASSWORD", registry::PASSWORD)
        .output()
        .expect("run lockbox plugin push");
    assert!(
        out.status.success(),
        "push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("push prints JSON");
    v["digest"].as_str().expect("digest").to_string()
}

/// A PluginCatalogEntry whose binary comes from an image.
fn image_entry_yaml(s: &Scenario, name: &str, image: &str) -> String {
    format!(
        "apiVersion: lockbox.dev/v1alpha1\nkind: PluginCatalogEntry\nmetadata:\n  name: {name}\n  labels:\n    lockbox-test: {}\nspec:\n  type: secret\n  version: \"1.0.0\"\n  image:\n{image}",
        s.name
    )
}

fn ready_reason(c: &harness::Cluster, what: &str) -> String {
    c.get(
        &[what],
        r#"{.status.conditions[?(@.type=="Ready")].reason}"#,
    )
}

/// Plugin images through kubectl, against a basic-auth registry on
/// loopback: an image-based catalog entry with a dockerconfigjson pull
/// secret becomes Ready and serves a mount; a wrong pull secret, an altered
/// blob and a missing manifest are refused with their
/// reasons (events too) and never run, a tag without sha256 at apply time
/// (CEL); upgrading by changing the digest
/// reloads the mount; after an operator restart with the registry stopped,
/// entries stay Ready from the cache and the mount serves.
#[test]
fn image_catalog_entries_pull_verify_upgrade_and_survive_restart() {
    let mut reg = registry::Registry::start(true);
    let s = Scenario::start("oci", &["oci-a"], &[]);
    let c = cluster();
    let mock = s.plugin_dir.join("lockbox-plugin-mock");
    let digest1 = push_image(&reg, &mock, &reg.repo("plugins/mock:v1"));
    let v2 = s.plugin_dir.join("mock-v2");
    let mut bytes = std::fs::read(&mock).expect("read mock");
    bytes.extend_from_slice(b"\0lockbox-image-v2");
    std::fs::write(&v2, &bytes).expect("write v2");
    let v2_sha = sha256_file(&v2);
    let digest2 = push_image(&reg, &v2, &reg.repo("plugins/mock:v2"));
    let repo = reg.repo("plugins/mock");

    for (name, password) in [("regcred", registry::PASSWORD), ("regcred-wrong", "nope")] {
        c.must(&[
            "create",
            "secret",
            "docker-registry",
            name,
            "-n",
            &s.op_ns,
            &format!("--docker-server={}", reg.host),
            &format!("--docker-username={}", registry::USER),
            &format!("--docker-password={password}"),
        ]);
    }
    let op = s.operator_with(&["--insecure-registry", &reg.host]);
    let pinned = |digest: &str, secret: &str| {
        format!("    reference: \"{repo}@{digest}\"\n    pullSecrets: [{secret}]\n")
    };

    // Pinned by digest, with the pull secret: Ready, serving a mount.
    c.apply(&image_entry_yaml(
        &s,
        "mock-oci",
        &pinned(&digest1, "regcred"),
    ));
    c.wait(&["pce/mock-oci"], "condition=Ready", WAIT);
    assert_eq!(c.get(&["pce/mock-oci"], "{.status.sha256}"), s.mock_sha);
    assert_eq!(
        c.get(&["pce/mock-oci"], "{.status.manifestDigest}"),
        digest1
    );
    c.apply(&s.mount_yaml("oci-a", "kv", "mock-oci", ""));
    c.wait(&["-n", "oci-a", "smount/kv"], "condition=Ready", WAIT);
    let token = s.root_token();
    let (code, _) = api(
        &op,
        &token,
        "POST",
        "oci-a/kv/k",
        Some(r#"{"v":"from-image"}"#),
    );
    assert!(code == 200 || code == 204, "write failed: {code}");
    let (_, info) = api(
        &op,
        &token,
        "GET",
        "sys/plugins/catalog/secret/mock-oci?version=1.0.0",
        None,
    );
    assert_eq!(
        info["data"]["oci_manifest_digest"],
        digest1.as_str(),
        "{info}"
    );

    // Refusals: each Ready=False with its reason, nothing registered.
    let tampered_digest = {
        let v3 = s.plugin_dir.join("mock-v3");
        let mut b = bytes.clone();
        b.extend_from_slice(b"-v3");
        std::fs::write(&v3, &b).expect("write v3");
        let d = push_image(&reg, &v3, &reg.repo("plugins/mock:v3"));
        let blob = reg.blob_file(&format!("sha256:{}", sha256_file(&v3)));
        let mut data = std::fs::read(&blob).expect("blob");
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        std::fs::write(&blob, &data).expect("alter blob");
        d
    };
    // Credentials matter for the first pull of a digest (a cached binary
    // is not fetched again, like imagePullPolicy IfNotPresent): an image
    // nobody pulled yet.
    let uncached_digest = {
        let v4 = s.plugin_dir.join("mock-v4");
        let mut b = bytes.clone();
        b.extend_from_slice(b"-v4");
        std::fs::write(&v4, &b).expect("write v4");
        push_image(&reg, &v4, &reg.repo("plugins/mock:v4"))
    };
    let missing = format!("sha256:{}", "1".repeat(64));
    for (name, image, reason) in [
        (
            "mock-oci-wrongsecret",
            pinned(&uncached_digest, "regcred-wrong"),
            "Unauthorized",
        ),
        (
            "mock-oci-nosecret",
            pinned(&digest1, "absent"),
            "PullSecretMissing",
        ),
        (
            "mock-oci-tampered",
            pinned(&tampered_digest, "regcred"),
            "DigestMismatch",
        ),
        (
            "mock-oci-missing",
            pinned(&missing, "regcred"),
            "ManifestNotFound",
        ),
    ] {
        c.apply(&image_entry_yaml(&s, name, &image));
        let what = format!("pce/{name}");
        eventually(
            &format!("{name} to be refused"),
            Duration::from_secs(60),
            || (ready_reason(c, &what) == reason).then_some(()),
        );
        let (code, _) = api(
            &op,
            &token,
            "GET",
            &format!("sys/plugins/catalog/secret/{name}?version=1.0.0"),
            None,
        );
        assert_eq!(code, 404, "{name} must not be registered");
    }
    let events = eventually("the image Warning events", Duration::from_secs(30), || {
        let (_, ev, _) = c.kubectl(&[
            "get",
            "events.events.k8s.io",
            "-A",
            "-o",
            r#"jsonpath={range .items[?(@.type=="Warning")]}{.reason} {.regarding.name}{"\n"}{end}"#,
        ]);
        (ev.contains("DigestMismatch mock-oci-tampered")
            && ev.contains("Unauthorized mock-oci-wrongsecret"))
        .then_some(ev)
    });
    assert!(
        events.contains("ManifestNotFound mock-oci-missing"),
        "{events}"
    );

    // A tag without sha256 is refused at apply time by the CRD's CEL rule
    // (an object stored without the rule would be InvalidSpec, see
    // `validate`).
    let (ok, out, err) = c.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        Some(&image_entry_yaml(
            &s,
            "mock-oci-tag",
            &format!("    reference: \"{repo}:v1\"\n    pullSecrets: [regcred]\n"),
        )),
    );
    assert!(
        !ok && err.contains("pin it by digest or set spec.image.sha256"),
        "{out}{err}"
    );
    // A tag with the binary's sha256 is accepted; the digest is recorded.
    c.apply(&image_entry_yaml(
        &s,
        "mock-oci-tag",
        &format!(
            "    reference: \"{repo}:v1\"\n    sha256: \"{}\"\n    pullSecrets: [regcred]\n",
            s.mock_sha
        ),
    ));
    c.wait(&["pce/mock-oci-tag"], "condition=Ready", WAIT);
    assert_eq!(
        c.get(&["pce/mock-oci-tag"], "{.status.manifestDigest}"),
        digest1
    );

    // Upgrade by changing the digest: the mount moves to v2, data stays.
    let old_pids = op.children();
    c.apply(&image_entry_yaml(
        &s,
        "mock-oci",
        &pinned(&digest2, "regcred"),
    ));
    eventually("the mount to run v2", Duration::from_secs(60), || {
        (c.get(&["-n", "oci-a", "smount/kv"], "{.status.runningSha256}") == v2_sha).then_some(())
    });
    assert_eq!(
        c.get(&["pce/mock-oci"], "{.status.manifestDigest}"),
        digest2
    );
    eventually("the v1 process to exit", Duration::from_secs(30), || {
        old_pids.iter().all(|p| !pid_alive(*p)).then_some(())
    });
    let (code, body) = api(&op, &token, "GET", "oci-a/kv/k", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["v"], "from-image");
    op.stop();

    // Restart with the registry stopped: the cache in the data directory
    // carries the entries (several resyncs pass) and the mount serves.
    reg.stop();
    let op = s.operator_with(&["--insecure-registry", &reg.host]);
    std::thread::sleep(Duration::from_secs(8));
    for e in ["pce/mock-oci", "pce/mock-oci-tag"] {
        assert_eq!(
            c.get(&[e], r#"{.status.conditions[?(@.type=="Ready")].status}"#),
            "True",
            "{e}: {}",
            c.get(&[e], r#"{.status.conditions[?(@.type=="Ready")].message}"#)
        );
    }
    c.wait(&["-n", "oci-a", "smount/kv"], "condition=Ready", WAIT);
    let (code, body) = api(&op, &token, "GET", "oci-a/kv/k", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["v"], "from-image");
    let (_, mounts) = api(&op, &token, "GET", "sys/mounts", None);
    assert_eq!(
        mounts["data"]["oci-a/kv/"]["running_sha256"],
        v2_sha.as_str()
    );
    assert!(
        s.data_dir
            .join("plugin-cache/sha256")
            .join(&v2_sha)
            .is_file(),
        "the cache lives in the data directory"
    );
    op.stop();
}

/// A plugin process that keeps crashing soon after each restart: Warning
/// events `PluginCrashLoop` on its catalog entry (kube-system, where events
/// of cluster-scoped objects go) and on the SecretsMount in its own
/// namespace, naming the plugin, the mount and the exit.
#[test]
fn a_crash_looping_plugin_is_reported_on_its_entry_and_mounts() {
    let s = Scenario::start("crashloop", &["crash-a"], &[]);
    let c = cluster();
    let op = s.operator();
    let token = s.root_token();
    let env = "  env:\n  - name: MOCK_PLUGIN_TEST_HOOKS\n    value: \"1\"\n";
    c.apply(&format!(
        "{}{env}",
        s.entry_yaml("mock-crash", "lockbox-plugin-mock", &s.mock_sha, "1.0.0")
    ));
    c.wait(&["pce/mock-crash"], "condition=Ready", WAIT);
    c.apply(&s.mount_yaml("crash-a", "kv", "mock-crash", ""));
    c.wait(&["-n", "crash-a", "smount/kv"], "condition=Ready", WAIT);
    let (code, body) = api(&op, &token, "PUT", "crash-a/kv/k", Some(r#"{"v":"1"}"#));
    assert_eq!(code, 204, "{body}");
    // Three crashes in a row, each soon after the restart.
    for _ in 0..3 {
        let (code, body) = api(&op, &token, "GET", "crash-a/kv/__crash", None);
        assert_eq!(code, 503, "{body}");
        eventually("the plugin to come back", Duration::from_secs(30), || {
            (api(&op, &token, "GET", "crash-a/kv/k", None).0 == 200).then_some(())
        });
    }
    let events = |ns: &str, name: &str| {
        c.kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            ns,
            "-o",
            &format!(
                r#"jsonpath={{range .items[?(@.regarding.name=="{name}")]}}{{.reason}}:{{.type}}:{{.note}}{{"\n"}}{{end}}"#
            ),
        ])
        .1
    };
    let on_mount = eventually(
        "PluginCrashLoop on the mount",
        Duration::from_secs(30),
        || {
            let e = events("crash-a", "kv");
            e.contains("PluginCrashLoop:Warning").then_some(e)
        },
    );
    assert!(
        on_mount.contains("plugin mock-crash 1.0.0") && on_mount.contains("crash-a/kv/"),
        "{on_mount}"
    );
    assert!(on_mount.contains("3 times in a row"), "{on_mount}");
    eventually(
        "PluginCrashLoop on the entry",
        Duration::from_secs(30),
        || {
            events("kube-system", "mock-crash")
                .contains("PluginCrashLoop:Warning")
                .then_some(())
        },
    );
    op.stop();
}

/// `--tls-cert-file`/`--tls-key-file`: the secrets API speaks only HTTPS
/// with that certificate (verified by curl against it as the CA); plain
/// HTTP on the same port gets no API answer.
#[test]
fn the_api_serves_tls_with_the_given_certificate() {
    let s = Scenario::start("tls", &["tls-a"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (cert_s, key_s) = (cert.to_string_lossy(), key.to_string_lossy());
    let op = s.operator_with(&["--tls-cert-file", &cert_s, "--tls-key-file", &key_s]);
    assert!(op.api.starts_with("https://127.0.0.1:"), "{}", op.api);
    let curl = |url: &str, extra: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
            .args(extra)
            .arg(url)
            .output()
            .expect("curl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (ok, body) = curl(&format!("{}/v1/sys/health", op.api), &["--cacert", &cert_s]);
    assert!(ok, "{body}");
    assert!(body.ends_with("\n200"), "{body}");
    assert!(body.contains("\"sealed\":false"), "{body}");
    // Without the CA, verification fails; plain HTTP gets no API answer.
    let (ok, _) = curl(&format!("{}/v1/sys/health", op.api), &[]);
    assert!(!ok, "curl must not trust an unknown CA");
    let plain = op.api.replacen("https://", "http://", 1);
    let (_, body) = curl(&format!("{plain}/v1/sys/health"), &[]);
    assert!(!body.contains("\"sealed\""), "plain HTTP answered: {body}");
    op.stop();
}

/// The Argo CD install command of the README (server-side apply of two keys
/// into `argocd-cm`, keeping its other keys).
const ARGOCD_INSTALL: &str = "kubectl -n argocd create configmap argocd-cm --dry-run=client -o yaml \\
  --from-file=resource.customizations.health.lockbox.dev_SecretsMount=deploy/argocd/health.lua \\
  --from-file=resource.customizations.health.lockbox.dev_PluginCatalogEntry=deploy/argocd/health.lua \\
  | kubectl apply --server-side --field-manager=lockbox-health -f -";

/// A JSON value as a Lua table constructor (what Argo CD hands its Lua
/// health checks as `obj`).
fn lua(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!("{{{}}}", a.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("[{k:?}] = {}", lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs deploy/argocd/health.lua on `obj`: (status, message).
fn argocd_health(obj: &serde_json::Value) -> (String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/argocd/health.lua");
    let chunk = format!(
        "obj = {}\nlocal hs = dofile({script:?})\nio.write(hs.status, \"\\n\", hs.message)",
        lua(obj)
    );
    let out = std::process::Command::new("lua5.4")
        .args(["-e", &chunk])
        .output()
        .expect("lua5.4 runs (tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_string(), message.to_string())
}

/// The Argo CD health check on real objects in each state the operator
/// reports: Healthy when Ready, Progressing while the catalog entry is
/// missing or before the operator has seen the spec, Degraded on a path
/// conflict; and the README's install command against a real API server.
#[test]
fn argo_cd_health_check_reads_the_real_status() {
    let s = Scenario::start("argo", &["argo-a"], &[]);
    let c = cluster();
    let get = |what: &[&str]| -> serde_json::Value {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&c.must(&args)).expect("kubectl JSON")
    };
    // Applied before any operator runs: no status yet.
    c.apply(&s.entry_yaml("mock-argo", "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    c.apply(&s.mount_yaml("argo-a", "kv", "mock-argo", ""));
    let (status, _) = argocd_health(&get(&["-n", "argo-a", "smount/kv"]));
    assert_eq!(status, "Progressing");
    let op = s.operator();
    c.wait(&["pce/mock-argo"], "condition=Ready", WAIT);
    c.wait(&["-n", "argo-a", "smount/kv"], "condition=Ready", WAIT);
    assert_eq!(argocd_health(&get(&["pce/mock-argo"])).0, "Healthy");
    assert_eq!(
        argocd_health(&get(&["-n", "argo-a", "smount/kv"])).0,
        "Healthy"
    );

    c.apply(&s.mount_yaml("argo-a", "waiting", "not-registered-yet", ""));
    c.apply(&s.mount_yaml("argo-a", "clash", "mock-argo", "  path: argo-a/kv\n"));
    let reason = |name: &str| {
        c.get(
            &["-n", "argo-a", &format!("smount/{name}")],
            r#"{.status.conditions[?(@.type=="Ready")].reason}"#,
        )
    };
    eventually("both to be reconciled", Duration::from_secs(60), || {
        (reason("waiting") == "PluginMissing" && reason("clash") == "PathConflict").then_some(())
    });
    let (status, message) = argocd_health(&get(&["-n", "argo-a", "smount/waiting"]));
    assert_eq!(status, "Progressing", "{message}");
    let (status, message) = argocd_health(&get(&["-n", "argo-a", "smount/clash"]));
    assert_eq!(status, "Degraded");
    assert!(message.starts_with("PathConflict: "), "{message}");
    // A spec change the operator has not seen yet (stopped) is Progressing.
    op.stop();
    c.apply(&s.mount_yaml("argo-a", "kv", "mock-argo", "  description: changed\n"));
    assert_eq!(
        argocd_health(&get(&["-n", "argo-a", "smount/kv"])).0,
        "Progressing"
    );

    // The README's install command keeps argocd-cm's other keys.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    assert!(
        readme.contains(ARGOCD_INSTALL),
        "README must show the tested command"
    );
    let _ = c.kubectl(&["create", "namespace", "argocd"]);
    let _ = c.kubectl(&["-n", "argocd", "delete", "configmap", "argocd-cm"]);
    c.must(&[
        "-n",
        "argocd",
        "create",
        "configmap",
        "argocd-cm",
        "--from-literal=url=https://argo.example",
    ]);
    let path = format!(
        "{}:{}",
        c.bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", ARGOCD_INSTALL])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", path)
        .env("KUBECONFIG", c.dir.join("kubeconfig"))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cm = get(&["-n", "argocd", "configmap/argocd-cm"]);
    let lua_text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/argocd/health.lua"
    ))
    .expect("health.lua");
    for kind in ["SecretsMount", "PluginCatalogEntry"] {
        let key = format!("resource.customizations.health.lockbox.dev_{kind}");
        assert_eq!(cm["data"][&key], lua_text, "{cm}");
    }
    assert_eq!(cm["data"]["url"], "https://argo.example");
    c.must(&["-n", "argocd", "delete", "configmap", "argocd-cm"]);
}

/// An image larger than the operator's `--plugin-image-max-size`: refused
/// with `Ready=False` reason `TooLarge` and a Warning event, nothing
/// registered or run; the same entry under a limit that fits turns Ready.
#[test]
fn an_oversize_plugin_image_is_refused() {
    let reg = registry::Registry::start(false);
    let s = Scenario::start("ocisize", &["ocisize-a"], &[]);
    let c = cluster();
    let mock = s.plugin_dir.join("lockbox-plugin-mock");
    let size = std::fs::metadata(&mock).expect("mock plugin").len();
    let digest = push_image(&reg, &mock, &reg.repo("plugins/big:v1"));
    let image = format!("    reference: \"{}@{digest}\"\n", reg.repo("plugins/big"));
    let limit = (size / 2).to_string();
    let op = s.operator_with(&[
        "--insecure-registry",
        &reg.host,
        "--plugin-image-max-size",
        &limit,
    ]);
    c.apply(&image_entry_yaml(&s, "mock-big", &image));
    eventually("TooLarge", Duration::from_secs(60), || {
        (ready_reason(c, "pce/mock-big") == "TooLarge").then_some(())
    });
    let message = c.get(
        &["pce/mock-big"],
        r#"{.status.conditions[?(@.type=="Ready")].message}"#,
    );
    assert!(
        message.contains(&limit),
        "the message names the limit: {message}"
    );
    let (code, _) = api(
        &op,
        &s.root_token(),
        "GET",
        "sys/plugins/catalog/secret/mock-big?version=1.0.0",
        None,
    );
    assert_eq!(code, 404, "nothing registered");
    assert!(op.children().is_empty(), "nothing ran");
    let (_, events, _) = c.kubectl(&[
        "get",
        "events.events.k8s.io",
        "-n",
        "kube-system",
        "-o",
        r#"jsonpath={range .items[?(@.regarding.name=="mock-big")]}{.reason}:{.type}{"\n"}{end}"#,
    ]);
    assert!(events.contains("TooLarge:Warning"), "events: {events}");
    op.stop();
    // With room for it, the same entry is pulled and Ready.
    let op = s.operator_with(&["--insecure-registry", &reg.host]);
    c.wait(&["pce/mock-big"], "condition=Ready", WAIT);
    op.stop();
}

/// The Ready reason and message of a SecretsMount.
fn mount_reason(c: &harness::Cluster, ns: &str, name: &str) -> (String, String) {
    let obj = format!("smount/{name}");
    let what = ["-n", ns, obj.as_str()];
    (
        c.get(&what, r#"{.status.conditions[?(@.type=="Ready")].reason}"#),
        c.get(&what, r#"{.status.conditions[?(@.type=="Ready")].message}"#),
    )
}

/// Finding 6 (issue 10), env: a catalog entry cannot make the operator
/// hand its own Secrets, or any Secret not marked for plugin use, to a
/// plugin. `valueFrom` naming `lockbox-unseal-keys` or `lockbox-root-token`
/// (even labelled) or an unlabelled Secret is `InvalidSpec` naming the
/// Secret and the label, and nothing is registered or run; labelling the
/// Secret makes the same entry Ready and the value reaches the plugin.
#[test]
fn env_secrets_must_be_marked_for_plugins_and_never_the_operators_own() {
    let s = Scenario::start("envsec", &["envsec-a"], &[]);
    let c = cluster();
    let op = s.operator();
    let token = s.root_token();
    let env = |secret: &str, key: &str| {
        format!(
            "  env:\n  - name: MOCK_PLUGIN_MARKER\n    valueFrom:\n      secretKeyRef:\n        name: {secret}\n        key: {key}\n"
        )
    };
    let entry = |name: &str, secret: &str, key: &str| {
        format!(
            "{}{}",
            s.entry_yaml(name, "lockbox-plugin-mock", &s.mock_sha, "1.0.0"),
            env(secret, key)
        )
    };
    let refused = |name: &str, needles: &[&str]| {
        let what = format!("pce/{name}");
        c.wait(&[&what], "condition=Ready=false", WAIT);
        assert_eq!(ready_reason(c, &what), "InvalidSpec");
        let msg = c.get(
            &[&what],
            r#"{.status.conditions[?(@.type=="Ready")].message}"#,
        );
        for n in needles {
            assert!(msg.contains(n), "{name}: {n:?} missing from {msg}");
        }
        let (code, _) = api(
            &op,
            &token,
            "GET",
            &format!("sys/plugins/catalog/secret/{name}?version=1.0.0"),
            None,
        );
        assert_eq!(code, 404, "{name} was registered");
    };

    // The operator's own Secrets, even when someone labels them.
    c.must(&[
        "label",
        "secret",
        "lockbox-root-token",
        "-n",
        &s.op_ns,
        "lockbox.dev/plugin-env=true",
    ]);
    c.apply(&entry("mock-roottoken", "lockbox-root-token", "token"));
    refused(
        "mock-roottoken",
        &["lockbox-root-token", "lockbox.dev/plugin-env=true"],
    );
    c.apply(&entry(
        "mock-unsealkey",
        "lockbox-unseal-keys",
        "unseal-key",
    ));
    refused(
        "mock-unsealkey",
        &["lockbox-unseal-keys", "lockbox.dev/plugin-env=true"],
    );

    // A Secret that is not marked for plugin use.
    let marker = "unlabelled-value-0c4e1d";
    c.must(&[
        "create",
        "secret",
        "generic",
        "plain",
        "-n",
        &s.op_ns,
        &format!("--from-literal=marker={marker}"),
    ]);
    c.apply(&entry("mock-plain", "plain", "marker"));
    refused(
        "mock-plain",
        &[
            &format!("Secret {}/plain", s.op_ns),
            &format!(
                "kubectl label secret -n {} plain lockbox.dev/plugin-env=true",
                s.op_ns
            ),
        ],
    );
    assert!(
        op.children().is_empty(),
        "a plugin ran: {:?}",
        op.children()
    );

    // Marked for plugin use: the same entry turns Ready and the value
    // reaches the plugin (the mock echoes it as served_by).
    c.must(&[
        "label",
        "secret",
        "plain",
        "-n",
        &s.op_ns,
        "lockbox.dev/plugin-env=true",
    ]);
    c.wait(&["pce/mock-plain"], "condition=Ready", WAIT);
    c.apply(&s.mount_yaml("envsec-a", "kv", "mock-plain", ""));
    c.wait(&["-n", "envsec-a", "smount/kv"], "condition=Ready", WAIT);
    let (code, _) = api(&op, &token, "POST", "envsec-a/kv/x", Some(r#"{"v":"1"}"#));
    assert!(code == 200 || code == 204, "write: {code}");
    let (_, body) = api(&op, &token, "GET", "envsec-a/kv/x", None);
    assert_eq!(body["data"]["served_by"], marker, "{body}");
    // The refused entries still registered nothing.
    for name in ["mock-roottoken", "mock-unsealkey"] {
        assert_eq!(ready_reason(c, &format!("pce/{name}")), "InvalidSpec");
    }
    op.stop();
    let logs = s.logs();
    assert!(
        !logs.contains(&token),
        "the root token leaked into the logs"
    );
}

/// Finding 6 (issue 10), mounts: the operator only changes or deletes a
/// mount it enabled for the same object (its UID is the mount's owner).
/// A mount made through the API, or kept by a deleted object's
/// `deletionPolicy: Retain`, is `PathConflict` (Warning event) for a new
/// SecretsMount, in the same namespace or another, and stays untouched:
/// not tuned, not deleted with `deletionPolicy: Delete`. A root-token
/// hand-over (`owner=<uid>`) lets the new object adopt it with its data;
/// create, adopt-own and delete still work.
#[test]
fn mounts_belong_to_the_object_that_created_them() {
    let s = Scenario::start(
        "owner",
        &["owner-a", "owner-b"],
        &["owner-a=shared", "owner-b=shared"],
    );
    let c = cluster();
    let op = s.operator();
    let token = s.root_token();
    c.apply(&s.entry_yaml("mock-owner", "lockbox-plugin-mock", &s.mock_sha, "1.0.0"));
    c.wait(&["pce/mock-owner"], "condition=Ready", WAIT);
    let live = |path: &str| {
        let (_, m) = api(&op, &token, "GET", "sys/mounts", None);
        m["data"][path].clone()
    };
    let conflict = |ns: &str, name: &str| -> String {
        eventually(
            &format!("PathConflict on {ns}/{name}"),
            Duration::from_secs(60),
            || {
                let (reason, msg) = mount_reason(c, ns, name);
                (reason == "PathConflict").then_some(msg)
            },
        )
    };

    // 1. A mount made through the API.
    let (code, body) = api(
        &op,
        &token,
        "POST",
        "sys/mounts/owner-a/api",
        Some(r#"{"type":"mock-owner","description":"made through the API"}"#),
    );
    assert_eq!(code, 204, "{body}");
    let (code, _) = api(&op, &token, "POST", "owner-a/api/x", Some(r#"{"v":"api"}"#));
    assert!(code == 200 || code == 204, "write: {code}");
    let before = live("owner-a/api/");
    c.apply(&s.mount_yaml(
        "owner-a",
        "intruder",
        "mock-owner",
        "  path: owner-a/api\n  description: taken over\n  deletionPolicy: Delete\n  config:\n    maxLeaseTTL: 1h\n",
    ));
    let msg = conflict("owner-a", "intruder");
    assert!(msg.contains("enabled through the API"), "{msg}");
    let events = eventually("the PathConflict event", Duration::from_secs(30), || {
        let (_, ev, _) = c.kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            "owner-a",
            "-o",
            r#"jsonpath={range .items[?(@.regarding.name=="intruder")]}{.reason}:{.type}{"\n"}{end}"#,
        ]);
        ev.contains("PathConflict").then_some(ev)
    });
    assert!(events.contains("PathConflict:Warning"), "{events}");
    // Several resyncs later it is still untouched.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(live("owner-a/api/"), before, "the API mount was tuned");
    c.must(&[
        "delete",
        "-n",
        "owner-a",
        "smount/intruder",
        "--timeout=60s",
    ]);
    assert_eq!(live("owner-a/api/"), before, "the API mount was deleted");
    let (code, body) = api(&op, &token, "GET", "owner-a/api/x", None);
    assert_eq!(
        (code, body["data"]["v"].clone()),
        (200, "api".into()),
        "{body}"
    );

    // 2. A mount kept by Retain: owned by the deleted object's UID.
    c.apply(&s.mount_yaml(
        "owner-a",
        "first",
        "mock-owner",
        "  path: shared/kv\n  deletionPolicy: Retain\n",
    ));
    c.wait(&["-n", "owner-a", "smount/first"], "condition=Ready", WAIT);
    let first_uid = c.get(&["-n", "owner-a", "smount/first"], "{.metadata.uid}");
    assert_eq!(live("shared/kv/")["owner"], first_uid.as_str());
    let (code, _) = api(&op, &token, "POST", "shared/kv/x", Some(r#"{"v":"kept"}"#));
    assert!(code == 200 || code == 204, "write: {code}");
    c.must(&["delete", "-n", "owner-a", "smount/first", "--timeout=60s"]);
    let kept = live("shared/kv/");
    assert_eq!(kept["owner"], first_uid.as_str(), "{kept}");

    // Another namespace's SecretsMount at that path: a conflict, untouched,
    // and its deletion with Delete leaves the mount.
    c.apply(&s.mount_yaml(
        "owner-b",
        "second",
        "mock-owner",
        "  path: shared/kv\n  description: mine now\n  deletionPolicy: Delete\n",
    ));
    let second_uid = c.get(&["-n", "owner-b", "smount/second"], "{.metadata.uid}");
    let msg = conflict("owner-b", "second");
    assert!(
        msg.contains(&format!("a deleted SecretsMount (uid {first_uid})"))
            && msg.contains(&format!("owner={second_uid}")),
        "{msg}"
    );
    c.must(&["delete", "-n", "owner-b", "smount/second", "--timeout=60s"]);
    assert_eq!(
        live("shared/kv/"),
        kept,
        "another namespace changed the mount"
    );

    // The same name again in the same namespace is a new object (new UID):
    // still a conflict until an administrator hands the mount over.
    c.apply(&s.mount_yaml(
        "owner-a",
        "first",
        "mock-owner",
        "  path: shared/kv\n  description: adopted\n  deletionPolicy: Delete\n",
    ));
    let new_uid = c.get(&["-n", "owner-a", "smount/first"], "{.metadata.uid}");
    assert_ne!(new_uid, first_uid);
    conflict("owner-a", "first");
    assert_eq!(live("shared/kv/"), kept);
    let (code, body) = api(
        &op,
        &token,
        "POST",
        "sys/mounts/shared/kv/tune",
        Some(&format!(r#"{{"owner":"{new_uid}"}}"#)),
    );
    assert_eq!(code, 204, "{body}");
    c.wait(&["-n", "owner-a", "smount/first"], "condition=Ready", WAIT);
    eventually(
        "the adopted mount to be tuned",
        Duration::from_secs(30),
        || (live("shared/kv/")["description"] == "adopted").then_some(()),
    );
    assert_eq!(live("shared/kv/")["accessor"], kept["accessor"]);
    let (code, body) = api(&op, &token, "GET", "shared/kv/x", None);
    assert_eq!(
        (code, body["data"]["v"].clone()),
        (200, "kept".into()),
        "{body}"
    );

    // Its own mount, deletionPolicy Delete: removed with its data.
    c.must(&["delete", "-n", "owner-a", "smount/first", "--timeout=60s"]);
    assert!(live("shared/kv/").is_null(), "{}", live("shared/kv/"));
    // The API-made mount survived all of it.
    assert_eq!(live("owner-a/api/"), before);
    op.stop();
}
