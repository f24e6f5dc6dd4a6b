//! Vault-protocol plugins from OCI images, exactly as lockbox's own: our Go
//! test plugin (`tests/go/testplugin`, Vault's SDK) and the upstream kv
//! plugin pushed with `lockbox plugin push` to the real loopback registry,
//! registered with `oci_image` pinned by digest, mounted and serving; a
//! wrong digest (unknown manifest, altered blob, tag with another sha256)
//! is refused with nothing registered and nothing run.

use super::registry::Registry;
use super::{assert_refused, cli_push, files_in, image_server, insecure, register_image};
use crate::common::{Resp, go_plugins, sha256_file};
use serde_json::json;

fn ok(r: &Resp, what: &str) {
    assert!(r.status == 200 || r.status == 204, "{what}: {:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn go_test_plugin_image_pinned_by_digest_mounts_and_serves() {
    let reg = Registry::start(false);
    let bin = go_plugins().join("lockbox-testplugin");
    let (digest, sha) = cli_push(&reg, &bin, &reg.repo("vault/testplugin:v1"));
    assert_eq!(sha, sha256_file(&bin));
    let reference = format!("{}@{digest}", reg.repo("vault/testplugin"));
    let dir = tempfile::tempdir().unwrap();
    let s = image_server(dir.path(), insecure(&reg)).await;

    let r = register_image(&s, "gotest", json!({ "oci_image": reference })).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let info = s
        .root("GET", "sys/plugins/catalog/secret/gotest", None)
        .await;
    assert_eq!(info.status, 200, "{:?}", info.body);
    assert_eq!(info.body["data"]["sha256"], sha.as_str());
    assert_eq!(info.body["data"]["oci_manifest_digest"], digest.as_str());
    let r = s
        .root("POST", "sys/mounts/gimg", Some(json!({"type": "gotest"})))
        .await;
    assert_eq!(r.status, 204, "mount: {:?}", r.body);
    ok(
        &s.root("PUT", "gimg/kv/a", Some(json!({"v": "from an image"})))
            .await,
        "write",
    );
    let read = s.root("GET", "gimg/kv/a", None).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["data"]["v"], "from an image");
    // The plugin's root path: only a sudo token (root here) gets through.
    ok(
        &s.root("PUT", "gimg/root/x", Some(json!({"v": "1"}))).await,
        "root path",
    );
    let mounts = s.root("GET", "sys/mounts", None).await;
    assert_eq!(mounts.body["data"]["gimg/"]["running_sha256"], sha.as_str());
    // It runs from the verified cache file, as a Vault plugin.
    let groups = s.core.plugin_host().groups();
    assert_eq!(groups.len(), 1);
    let pid = groups[0].pid().expect("a running process");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:"),
        "not the sealed memfd: {}",
        exe.display()
    );
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&env).contains("VAULT_BACKEND_PLUGIN="),
        "not started as a Vault plugin"
    );
    assert_eq!(
        sha256_file(&dir.path().join("cache/sha256").join(&sha)),
        sha
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_kv_plugin_image_serves_kv_v2() {
    let reg = Registry::start(false);
    let bin = go_plugins().join("vault-plugin-secrets-kv");
    let (digest, sha) = cli_push(&reg, &bin, &reg.repo("vault/kv:v0.25.0"));
    let reference = format!("{}@{digest}", reg.repo("vault/kv"));
    let dir = tempfile::tempdir().unwrap();
    let s = image_server(dir.path(), insecure(&reg)).await;
    let r = register_image(&s, "kv", json!({ "oci_image": reference })).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .root(
            "POST",
            "sys/mounts/kv2img",
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        )
        .await;
    assert_eq!(r.status, 204, "mount: {:?}", r.body);
    let w = s
        .root("PUT", "kv2img/data/x", Some(json!({"data": {"a": "1"}})))
        .await;
    assert_eq!(w.status, 200, "{:?}", w.body);
    assert_eq!(w.body["data"]["version"], 1, "{:?}", w.body);
    let read = s.root("GET", "kv2img/data/x", None).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["data"]["data"]["a"], "1", "{:?}", read.body);
    let mounts = s.root("GET", "sys/mounts", None).await;
    let m = &mounts.body["data"]["kv2img/"];
    assert_eq!(m["running_sha256"], sha.as_str(), "{m}");
    assert_eq!(m["options"]["version"], "2", "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_digest_for_a_vault_plugin_registers_and_runs_nothing() {
    let reg = Registry::start(false);
    let bin = go_plugins().join("lockbox-testplugin");
    let tag = reg.repo("vault/testplugin:v1");
    let (digest, sha) = cli_push(&reg, &bin, &tag);
    let repo = reg.repo("vault/testplugin");
    let dir = tempfile::tempdir().unwrap();
    let s = image_server(dir.path(), insecure(&reg)).await;

    // A digest the registry does not have, a tag pinned to another
    // binary's sha256, and (last: it alters the registry) the right
    // manifest digest over a blob changed in the registry's storage.
    let unknown = format!("{repo}@sha256:{}", "1".repeat(64));
    let r = register_image(&s, "gotest", json!({ "oci_image": unknown })).await;
    assert_refused(&r, "ManifestNotFound");
    let r = register_image(
        &s,
        "gotest",
        json!({ "oci_image": tag, "sha256": "ab".repeat(32) }),
    )
    .await;
    assert_refused(&r, "DigestMismatch");
    let blob = reg.blob_file(&format!("sha256:{sha}"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let r = register_image(
        &s,
        "gotest",
        json!({ "oci_image": format!("{repo}@{digest}") }),
    )
    .await;
    assert_refused(&r, "DigestMismatch");

    let info = s
        .root("GET", "sys/plugins/catalog/secret/gotest", None)
        .await;
    assert_eq!(info.status, 404, "registered: {:?}", info.body);
    let r = s
        .root("POST", "sys/mounts/gimg", Some(json!({"type": "gotest"})))
        .await;
    assert_ne!(r.status, 204, "{:?}", r.body);
    assert!(
        s.core.plugin_host().groups().is_empty(),
        "a process started"
    );
    assert!(files_in(&dir.path().join("cache/sha256")).is_empty());
}
