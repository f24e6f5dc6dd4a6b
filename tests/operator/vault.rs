//! Vault-protocol plugins through the operator's custom resources, exactly
//! as lockbox's own plugins: the upstream kv plugin
//! (`vault-plugin-secrets-kv`, unmodified, from
//! `tests/harness/install-go-plugins.sh`) registered by a
//! `PluginCatalogEntry` as secret plugin `kv` (from the plugin directory,
//! or from an OCI image pinned by digest) and mounted by a `SecretsMount`
//! with `options.version: "2"` (Ready by kstatus, serving kv v2, tuned,
//! deleted with its process); and our Go test plugin
//! (`tests/go/testplugin`) failing: crashing mid-request soon after each
//! restart gives `PluginCrashLoop` Warning events on its entry and its
//! SecretsMount; exiting before the handshake (its env-chosen startup
//! failure) leaves the SecretsMount `MountFailed` with the exit and the
//! plugin's stderr (no process ever ran, so there is no supervision and no
//! crash-loop event; the controller retries).

use crate::harness::{
    Cluster, Scenario, api, cluster, eventually, go_plugins, kstatus, pid_alive, sha256_file,
};
use std::time::Duration;

const WAIT: u32 = 60;

/// Copies Go plugin `binary` from `install-go-plugins.sh`'s output into the
/// scenario's plugin directory; returns its sha256.
fn install(s: &Scenario, binary: &str) -> String {
    let dst = s.plugin_dir.join(binary);
    std::fs::copy(go_plugins().join(binary), &dst).expect("copy the Go plugin");
    sha256_file(&dst)
}

/// Events about object `name` in namespace `ns`, one
/// `reason:type:note` line each.
fn events_of(c: &Cluster, ns: &str, name: &str) -> String {
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
}

/// The upstream kv plugin as the catalog's secret plugin `kv`, mounted by a
/// SecretsMount with options version 2: Ready (kstatus Current at its
/// generation), kv v2 reads and writes through the HTTP API, an edited
/// description tunes the same process, and deleting the SecretsMount
/// (deletionPolicy Delete) removes the mount and stops the process.
#[test]
fn upstream_kv_v2_plugin_through_catalog_entry_and_secrets_mount() {
    let s = Scenario::start("vkv", &["vkv-a"], &[]);
    let c = cluster();
    let sha = install(&s, "vault-plugin-secrets-kv");
    let op = s.operator();
    let token = s.root_token();

    c.apply(&s.entry_yaml("kv", "vault-plugin-secrets-kv", &sha, "0.25.0"));
    c.wait(&["pce/kv"], "condition=Ready", WAIT);
    c.wait(&["pce/kv"], "condition=Verified", WAIT);
    assert_eq!(c.get(&["pce/kv"], "{.status.sha256}"), sha);
    let (code, body) = api(
        &op,
        &token,
        "GET",
        "sys/plugins/catalog/secret/kv?version=0.25.0",
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["sha256"], sha.as_str(), "{body}");

    let spec = |description: &str| {
        s.mount_yaml(
            "vkv-a",
            "kv",
            "kv",
            &format!(
                "  deletionPolicy: Delete\n  description: {description}\n  options:\n    version: \"2\"\n"
            ),
        )
    };
    c.apply(&spec("first"));
    let mount = ["-n", "vkv-a", "smount/kv"];
    c.wait(&mount, "condition=Ready", WAIT);
    assert_eq!(c.get(&mount, "{.status.path}"), "vkv-a/kv/");
    assert_eq!(c.get(&mount, "{.status.runningSha256}"), sha);
    assert_eq!(
        c.get(&mount, "{.status.observedGeneration}"),
        c.get(&mount, "{.metadata.generation}")
    );
    assert_eq!(kstatus(c, &mount).0, "Current");
    let (_, mounts) = api(&op, &token, "GET", "sys/mounts", None);
    let m = &mounts["data"]["vkv-a/kv/"];
    assert_eq!(m["type"], "kv", "{mounts}");
    assert_eq!(m["options"]["version"], "2", "{mounts}");
    assert_eq!(m["running_sha256"], sha.as_str(), "{mounts}");
    assert_eq!(m["description"], "first", "{mounts}");

    // kv v2 through the upstream plugin: versions, metadata.
    for (i, v) in ["one", "two"].iter().enumerate() {
        let (code, body) = api(
            &op,
            &token,
            "POST",
            "vkv-a/kv/data/x",
            Some(&format!(r#"{{"data":{{"v":"{v}"}}}}"#)),
        );
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["data"]["version"], i + 1, "{body}");
    }
    let (code, body) = api(&op, &token, "GET", "vkv-a/kv/data/x", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["data"]["v"], "two", "{body}");
    assert_eq!(body["data"]["metadata"]["version"], 2, "{body}");
    let (code, body) = api(&op, &token, "GET", "vkv-a/kv/data/x?version=1", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["data"]["v"], "one", "{body}");
    let (code, body) = api(&op, &token, "GET", "vkv-a/kv/metadata/x", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["current_version"], 2, "{body}");
    let pids = op.children();
    assert_eq!(pids.len(), 1, "one kv plugin process: {pids:?}");

    // Edit: a new generation, tuned in place by the same process.
    c.apply(&spec("second"));
    eventually("the edit to be observed", Duration::from_secs(30), || {
        let observed = c.get(&mount, "{.status.observedGeneration}");
        (observed == "2" && c.get(&mount, "{.metadata.generation}") == "2").then_some(())
    });
    c.wait(&mount, "condition=Ready", WAIT);
    assert_eq!(kstatus(c, &mount).0, "Current");
    let (_, mounts) = api(&op, &token, "GET", "sys/mounts", None);
    assert_eq!(
        mounts["data"]["vkv-a/kv/"]["description"], "second",
        "{mounts}"
    );
    assert_eq!(
        mounts["data"]["vkv-a/kv/"]["options"]["version"], "2",
        "{mounts}"
    );
    let (code, body) = api(&op, &token, "GET", "vkv-a/kv/data/x", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["data"]["v"], "two", "{body}");
    assert_eq!(op.children(), pids, "a tune must not restart the plugin");

    // Delete: the mount and its data are gone, and so is the process.
    c.must(&["delete", "-n", "vkv-a", "smount/kv", "--timeout=60s"]);
    let (_, mounts) = api(&op, &token, "GET", "sys/mounts", None);
    assert!(mounts["data"].get("vkv-a/kv/").is_none(), "{mounts}");
    let (code, _) = api(&op, &token, "GET", "vkv-a/kv/data/x", None);
    assert_eq!(code, 404, "a deleted mount still answers");
    eventually("the kv process to stop", Duration::from_secs(30), || {
        pids.iter().all(|p| !pid_alive(*p)).then_some(())
    });
    c.must(&["delete", "pce/kv", "--timeout=60s"]);
    let (code, _) = api(
        &op,
        &token,
        "GET",
        "sys/plugins/catalog/secret/kv?version=0.25.0",
        None,
    );
    assert_eq!(code, 404, "the catalog entry is still registered");
    op.stop();
}

/// Our Go test plugin exits mid-request (`fail/exit`) three times in a row,
/// each soon after its restart: `PluginCrashLoop` Warning events on its
/// catalog entry (kube-system) and on its SecretsMount, naming the plugin,
/// the mount and the exit, as for lockbox plugins.
#[test]
fn a_crash_looping_vault_plugin_is_reported_on_its_entry_and_mount() {
    let s = Scenario::start("vcrash", &["vcrash-a"], &[]);
    let c = cluster();
    let sha = install(&s, "lockbox-testplugin");
    let op = s.operator();
    let token = s.root_token();
    c.apply(&s.entry_yaml("gotest-crash", "lockbox-testplugin", &sha, "1.0.0"));
    c.wait(&["pce/gotest-crash"], "condition=Ready", WAIT);
    c.apply(&s.mount_yaml("vcrash-a", "kv", "gotest-crash", ""));
    let mount = ["-n", "vcrash-a", "smount/kv"];
    c.wait(&mount, "condition=Ready", WAIT);
    let (code, body) = api(&op, &token, "PUT", "vcrash-a/kv/kv/k", Some(r#"{"v":"1"}"#));
    assert!(code == 200 || code == 204, "{code} {body}");
    for _ in 0..3 {
        let (code, body) = api(&op, &token, "PUT", "vcrash-a/kv/fail/exit", Some("{}"));
        assert!(code >= 500, "{code} {body}");
        eventually("the plugin to come back", Duration::from_secs(30), || {
            let (code, body) = api(&op, &token, "GET", "vcrash-a/kv/kv/k", None);
            (code == 200 && body["data"]["v"] == "1").then_some(())
        });
    }
    let on_mount = eventually(
        "PluginCrashLoop on the mount",
        Duration::from_secs(30),
        || {
            let e = events_of(c, "vcrash-a", "kv");
            e.contains("PluginCrashLoop:Warning").then_some(e)
        },
    );
    for part in [
        "plugin gotest-crash 1.0.0",
        "vcrash-a/kv/",
        "3 times in a row",
        "exit status: 7",
    ] {
        assert!(on_mount.contains(part), "{part:?} missing: {on_mount}");
    }
    eventually(
        "PluginCrashLoop on the entry",
        Duration::from_secs(30),
        || {
            events_of(c, "kube-system", "gotest-crash")
                .contains("PluginCrashLoop:Warning")
                .then_some(())
        },
    );
    op.stop();
}

/// Our Go test plugin with its env-chosen startup failure
/// (`LOCKBOX_TESTPLUGIN_FAIL=exit`: exit 3 before the handshake): the entry
/// registers, the SecretsMount is Ready=False `MountFailed` naming the
/// plugin, the exit status and the plugin's stderr, nothing is mounted and
/// no process is left; fixing the entry brings the mount up.
#[test]
fn a_vault_plugin_that_exits_at_start_fails_its_mount_clearly() {
    let s = Scenario::start("vstart", &["vstart-a"], &[]);
    let c = cluster();
    let sha = install(&s, "lockbox-testplugin");
    let op = s.operator();
    let token = s.root_token();
    let entry = s.entry_yaml("gotest-nostart", "lockbox-testplugin", &sha, "1.0.0");
    let env = "  env:\n  - name: LOCKBOX_TESTPLUGIN_FAIL\n    value: exit\n";
    c.apply(&format!("{entry}{env}"));
    c.wait(&["pce/gotest-nostart"], "condition=Ready", WAIT);
    c.apply(&s.mount_yaml("vstart-a", "kv", "gotest-nostart", ""));
    let mount = ["-n", "vstart-a", "smount/kv"];
    c.wait(&mount, "condition=Ready=false", WAIT);
    let reason = c.get(&mount, r#"{.status.conditions[?(@.type=="Ready")].reason}"#);
    assert_eq!(reason, "MountFailed");
    let msg = c.get(
        &mount,
        r#"{.status.conditions[?(@.type=="Ready")].message}"#,
    );
    for part in [
        "gotest-nostart",
        "vstart-a/kv/",
        "exited before the handshake",
        "exit status: 3",
        "exiting before the handshake as requested",
    ] {
        assert!(msg.contains(part), "{part:?} missing: {msg}");
    }
    assert_eq!(
        c.get(&mount, "{.status.observedGeneration}"),
        c.get(&mount, "{.metadata.generation}")
    );
    let (_, mounts) = api(&op, &token, "GET", "sys/mounts", None);
    assert!(mounts["data"].get("vstart-a/kv/").is_none(), "{mounts}");
    assert!(
        op.children().is_empty(),
        "left running: {:?}",
        op.children()
    );

    // The entry without the failure: the waiting mount comes up and serves.
    c.must(&[
        "patch",
        "pce/gotest-nostart",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/env"}]"#,
    ]);
    c.wait(&mount, "condition=Ready", WAIT);
    let (code, body) = api(
        &op,
        &token,
        "PUT",
        "vstart-a/kv/kv/k",
        Some(r#"{"v":"up"}"#),
    );
    assert!(code == 200 || code == 204, "{code} {body}");
    let (code, body) = api(&op, &token, "GET", "vstart-a/kv/kv/k", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["v"], "up", "{body}");
    op.stop();
}

/// The upstream kv plugin from an OCI image (`spec.image` pinned by
/// digest, pulled with a pull secret by the operator): the entry is Ready
/// with the image's binary sha256 and manifest digest, a SecretsMount with
/// options version 2 serves kv v2 from it; an entry whose digest the
/// registry does not have is refused (`ManifestNotFound`) and registers
/// nothing.
#[test]
fn a_vault_plugin_image_through_a_catalog_entry() {
    let reg = crate::registry::Registry::start(true);
    let s = Scenario::start("vimg", &["vimg-a"], &[]);
    let c = cluster();
    let sha = install(&s, "vault-plugin-secrets-kv");
    let bin = s.plugin_dir.join("vault-plugin-secrets-kv");
    let digest = crate::push_image(&reg, &bin, &reg.repo("vault/kv:v0.25.0"));
    let repo = reg.repo("vault/kv");
    c.must(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "-n",
        &s.op_ns,
        &format!("--docker-server={}", reg.host),
        &format!("--docker-username={}", crate::registry::USER),
        &format!("--docker-password={}", crate::registry::PASSWORD),
    ]);
    // Only the image may provide the binary: none in the plugin directory.
    std::fs::remove_file(&bin).expect("remove the plugin file");
    let op = s.operator_with(&["--insecure-registry", &reg.host]);
    let token = s.root_token();
    let pinned =
        |digest: &str| format!("    reference: \"{repo}@{digest}\"\n    pullSecrets: [regcred]\n");
    c.apply(&crate::image_entry_yaml(&s, "kv", &pinned(&digest)));
    c.wait(&["pce/kv"], "condition=Ready", WAIT);
    assert_eq!(c.get(&["pce/kv"], "{.status.sha256}"), sha);
    assert_eq!(c.get(&["pce/kv"], "{.status.manifestDigest}"), digest);

    c.apply(&s.mount_yaml("vimg-a", "kv", "kv", "  options:\n    version: \"2\"\n"));
    let mount = ["-n", "vimg-a", "smount/kv"];
    c.wait(&mount, "condition=Ready", WAIT);
    assert_eq!(kstatus(c, &mount).0, "Current");
    assert_eq!(c.get(&mount, "{.status.runningSha256}"), sha);
    let (code, body) = api(
        &op,
        &token,
        "POST",
        "vimg-a/kv/data/x",
        Some(r#"{"data":{"from":"image"}}"#),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = api(&op, &token, "GET", "vimg-a/kv/data/x", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["data"]["from"], "image", "{body}");

    let missing = format!("sha256:{}", "1".repeat(64));
    c.apply(&crate::image_entry_yaml(
        &s,
        "kv-missing",
        &pinned(&missing),
    ));
    eventually("kv-missing to be refused", Duration::from_secs(60), || {
        (crate::ready_reason(c, "pce/kv-missing") == "ManifestNotFound").then_some(())
    });
    let (code, _) = api(
        &op,
        &token,
        "GET",
        "sys/plugins/catalog/secret/kv-missing?version=1.0.0",
        None,
    );
    assert_eq!(code, 404, "kv-missing must not be registered");
    op.stop();
}
