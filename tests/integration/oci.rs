//! Plugin images against a real registry on loopback (Debian's
//! `docker-registry`, with and without basic auth): `lockbox plugin push`
//! and `skopeo` (an image built as an OCI layout, no Docker), registration
//! by digest through the API and the CLI, mounts served from the cache, and
//! the refusals: altered blobs, tag-only references, oversize images, wrong
//! or missing credentials, plain HTTP without `--insecure-registry`; and a
//! registry with token auth (basic credentials exchanged for a bearer token,
//! or a bearer token from the auth file).

mod registry;
mod vault;

use crate::common::{
    self, ConfigServer, Resp, TestServer, example_plugins, file_config, grep_dir, lockbox_bin,
    sha256_file,
};
use lockbox_http::ServerOptions;
use lockbox_plugin_host::NodeConfig;
use lockbox_plugin_host::images::ImageSettings;
use registry::{Entry, PASSWORD, Registry, TokenServer, USER, image_layout, layer};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn plugin_bin(name: &str) -> PathBuf {
    example_plugins().join(format!("lockbox-plugin-{name}"))
}

/// `lockbox plugin push -format=json FILE REF` with the real binary;
/// returns (manifest digest, binary sha256).
fn cli_push(reg: &Registry, file: &Path, reference: &str) -> (String, String) {
    let mut cmd = Command::new(lockbox_bin());
    cmd.args(["plugin", "push", "-format=json"])
        .arg(format!("-insecure-registry={}", reg.host))
        .env_clear()
        .env("HOME", std::env::temp_dir());
    if reg.auth {
        cmd.arg(format!("-username={USER}"))
            .env("LOCKBOX_REGISTRY_PASSWORD", PASSWORD);
    }
    let out = cmd.arg(file).arg(reference).output().expect("run lockbox");
    assert!(
        out.status.success(),
        "plugin push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("push prints JSON");
    (
        v["digest"].as_str().unwrap().to_string(),
        v["sha256"].as_str().unwrap().to_string(),
    )
}

/// An unsealed in-process server whose plugin cache is `<dir>/cache`.
async fn image_server(dir: &Path, images: ImageSettings) -> TestServer {
    let plugin_dir = dir.join("plugins");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    let mut plugins = common::plugin_config(&plugin_dir);
    plugins.plugin_cache_directory = Some(dir.join("cache"));
    let config = NodeConfig {
        plugins,
        images,
        ..NodeConfig::default()
    };
    let mut s = TestServer::uninitialized_with_config(ServerOptions::default(), config).await;
    let init = s.core.initialize(1, 1, None).await.expect("init");
    for k in &init.keys {
        s.core.submit_unseal_key(k).await.expect("unseal");
    }
    s.root_token = init.root_token;
    s
}

fn insecure(reg: &Registry) -> ImageSettings {
    ImageSettings {
        insecure_registries: vec![reg.host.clone()],
        ..ImageSettings::default()
    }
}

/// [`insecure`] with credentials from the Docker config JSON at `auth`.
fn insecure_with_auth(reg: &Registry, auth: PathBuf) -> ImageSettings {
    ImageSettings {
        registry_auth_file: Some(auth),
        ..insecure(reg)
    }
}

/// A registration refused with 400 for `reason` (an `OciError` reason).
fn assert_refused(r: &Resp, reason: &str) {
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_text().contains(reason), "{}", r.error_text());
}

async fn register_image(s: &TestServer, name: &str, body: Value) -> Resp {
    s.root(
        "PUT",
        &format!("sys/plugins/catalog/secret/{name}"),
        Some(body),
    )
    .await
}

/// Mounts `plugin` at `path` and proves the mock engine answers there.
async fn mount_and_serve(s: &TestServer, plugin: &str, path: &str) {
    let r = s
        .root(
            "POST",
            &format!("sys/mounts/{path}"),
            Some(json!({"type": plugin})),
        )
        .await;
    assert_eq!(r.status, 204, "mount: {:?}", r.body);
    let w = s
        .root(
            "PUT",
            &format!("{path}/greeting"),
            Some(json!({"message": "Hello from an image"})),
        )
        .await;
    assert_eq!(w.status, 204, "{:?}", w.body);
    let read = s.root("GET", &format!("{path}/greeting"), None).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["data"]["message"], "Hello from an image");
}

fn files_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect(),
        Err(_) => vec![],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn push_register_by_digest_mount_and_serve_from_the_cache() {
    let mut reg = Registry::start(false);
    let mock = plugin_bin("mock");
    let (digest, sha) = cli_push(&reg, &mock, &reg.repo("plugins/mock:v1"));
    assert_eq!(sha, sha256_file(&mock), "push reports the binary's sha256");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let reference = format!("{}@{digest}", reg.repo("plugins/mock"));

    let dir = tempfile::tempdir().unwrap();
    let s = image_server(dir.path(), insecure(&reg)).await;
    let r = register_image(&s, "mock", json!({ "oci_image": reference })).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let info = s.root("GET", "sys/plugins/catalog/secret/mock", None).await;
    assert_eq!(info.status, 200, "{:?}", info.body);
    let d = &info.body["data"];
    assert_eq!(d["oci_image"], reference.as_str());
    assert_eq!(d["oci_manifest_digest"], digest.as_str());
    assert_eq!(d["sha256"], sha.as_str());
    assert_eq!(d["command"], "/plugin");
    let cached = dir.path().join("cache/sha256").join(&sha);
    assert_eq!(
        sha256_file(&cached),
        sha,
        "the cache holds the verified binary"
    );
    mount_and_serve(&s, "mock", "img").await;
    let mounts = s.root("GET", "sys/mounts", None).await;
    assert_eq!(mounts.body["data"]["img/"]["running_sha256"], sha.as_str());

    // Fetched once per digest: with the registry gone, the same image
    // registers again under another name, and mounts, from the cache.
    reg.stop();
    let r = register_image(&s, "mock-again", json!({ "oci_image": reference })).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    mount_and_serve(&s, "mock-again", "img2").await;

    // `lockbox plugin pull` fetches and verifies it for inspection.
    reg.resume();
    let out_file = dir.path().join("pulled");
    let out = Command::new(lockbox_bin())
        .args(["plugin", "pull"])
        .arg(format!("-insecure-registry={}", reg.host))
        .arg(format!("-output={}", out_file.display()))
        .arg(&reference)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("Binary SHA256: {sha}")),
        "{stdout}"
    );
    assert_eq!(sha256_file(&out_file), sha);
}

/// A cached binary deleted while its plugin runs does not stop the
/// supervisor: the next restart pulls the pinned digest again (same
/// sha256) and serves.
#[tokio::test(flavor = "multi_thread")]
async fn a_cached_binary_deleted_while_running_is_pulled_again_on_restart() {
    let reg = Registry::start(false);
    let mock = plugin_bin("mock");
    let (digest, sha) = cli_push(&reg, &mock, &reg.repo("plugins/mock:v1"));
    let reference = format!("{}@{digest}", reg.repo("plugins/mock"));
    let dir = tempfile::tempdir().unwrap();
    let s = image_server(dir.path(), insecure(&reg)).await;
    let r = register_image(
        &s,
        "mock",
        json!({ "oci_image": reference, "env": ["MOCK_PLUGIN_TEST_HOOKS=1"] }),
    )
    .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    mount_and_serve(&s, "mock", "img").await;
    let cached = dir.path().join("cache/sha256").join(&sha);
    std::fs::remove_file(&cached).unwrap();

    let crashed = s.root("GET", "img/__crash", None).await;
    assert_eq!(crashed.status, 503, "{:?}", crashed.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // A write always reaches a process (reads may come from the cache).
    loop {
        let w = s
            .root("PUT", "img/after", Some(json!({"v": "restarted"})))
            .await;
        if w.status == 204 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not serving after the crash: {:?}",
            w.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let read = s.root("GET", "img/greeting", None).await;
    assert_eq!(read.body["data"]["message"], "Hello from an image");
    assert!(
        cached.is_file(),
        "not pulled again into the cache: {:?}",
        files_in(&dir.path().join("cache/sha256"))
    );
    assert_eq!(sha256_file(&cached), sha, "pulled again into the cache");
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_image_with_layers_whiteouts_and_basic_auth() {
    let reg = Registry::start(true);
    let mock = std::fs::read(plugin_bin("mock")).unwrap();
    let passgen = std::fs::read(plugin_bin("passgen")).unwrap();
    let mock_sha = lockbox_core::catalog::sha256_hex(&mock);
    // Layer 0 has a decoy at /plugin and /decoy; layer 1 turns /plugin into
    // a symlink to the real binary and deletes /decoy with a whiteout.
    let layers = [
        layer(&[
            Entry::Dir("usr"),
            Entry::Dir("usr/local"),
            Entry::Dir("usr/local/bin"),
            Entry::File("usr/local/bin/lockbox-plugin-mock", &mock),
            Entry::File("plugin", &passgen),
            Entry::File("decoy", &passgen),
        ]),
        layer(&[
            Entry::Symlink("plugin", "/usr/local/bin/lockbox-plugin-mock"),
            Entry::File(".wh.decoy", b""),
        ]),
    ];
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    image_layout(&layout, "v1", &layers);
    let digest = reg.skopeo_copy(&layout, "v1", "images/mock");
    let reference = format!("{}@{digest}", reg.repo("images/mock"));

    // No credentials, then a wrong password: Unauthorized, nothing registered.
    let dir = tempfile::tempdir().unwrap();
    let anon = image_server(dir.path(), insecure(&reg)).await;
    let r = register_image(&anon, "mock", json!({ "oci_image": reference })).await;
    assert_refused(&r, "Unauthorized");
    let wrong = work.path().join("wrong.json");
    std::fs::write(&wrong, reg.docker_config("not-the-password")).unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let s_wrong = image_server(dir2.path(), insecure_with_auth(&reg, wrong)).await;
    let r = register_image(&s_wrong, "mock", json!({ "oci_image": reference })).await;
    assert_refused(&r, "Unauthorized");

    // The right credentials, registered with the CLI's -oci-image.
    let auth = work.path().join("auth.json");
    std::fs::write(&auth, reg.docker_config(PASSWORD)).unwrap();
    let dir3 = tempfile::tempdir().unwrap();
    let s = image_server(dir3.path(), insecure_with_auth(&reg, auth)).await;
    let out = tokio::process::Command::new(lockbox_bin())
        .args(["plugin", "register"])
        .arg(format!("-oci-image={reference}"))
        .args(["secret", "mock"])
        .env_clear()
        .env("HOME", work.path())
        .env("LOCKBOX_ADDR", &s.addr)
        .env("LOCKBOX_TOKEN", &s.root_token)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Success! Registered plugin: mock"));
    let info = s.root("GET", "sys/plugins/catalog/secret/mock", None).await;
    assert_eq!(
        info.body["data"]["sha256"],
        mock_sha.as_str(),
        "the symlink in the upper layer wins over the lower layer's decoy"
    );
    mount_and_serve(&s, "mock", "img").await;

    // Paths: whited-out, a directory, traversal.
    for (path, reason) in [
        ("/decoy", "BinaryNotFound"),
        ("/usr/local/bin", "NotRegularFile"),
        ("/../etc/passwd", "UnsafePath"),
        ("/nothing/here", "BinaryNotFound"),
    ] {
        let r = register_image(
            &s,
            "other",
            json!({ "oci_image": reference, "command": path }),
        )
        .await;
        assert_eq!(r.status, 400, "{path}: {:?}", r.body);
        assert!(
            r.error_text().contains(reason),
            "{path}: {}",
            r.error_text()
        );
    }
    assert_eq!(
        s.root("GET", "sys/plugins/catalog/secret/other", None)
            .await
            .status,
        404
    );

    // The CLI pushes to the auth registry with credentials, and is refused
    // without them.
    let (_, sha) = cli_push(&reg, &plugin_bin("mock"), &reg.repo("cli/mock:v1"));
    assert_eq!(sha, mock_sha);
    let out = Command::new(lockbox_bin())
        .args(["plugin", "push"])
        .arg(format!("-insecure-registry={}", reg.host))
        .arg(plugin_bin("mock"))
        .arg(reg.repo("cli/mock:v2"))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unauthorized"));

    // Registry credentials never reach lockbox's files.
    for d in [dir.path(), dir2.path(), dir3.path()] {
        assert!(grep_dir(d, PASSWORD.as_bytes()).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_altered_in_the_registry_is_refused_and_nothing_runs() {
    let reg = Registry::start(false);
    let (digest, sha) = cli_push(&reg, &plugin_bin("mock"), &reg.repo("plugins/mock:v1"));
    // Flip one byte of the binary's blob in the registry's storage; the
    // registry keeps serving it under the old digest.
    let blob = reg.blob_file(&format!("sha256:{sha}"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    let reference = format!("{}@{digest}", reg.repo("plugins/mock"));
    let dir = tempfile::tempdir().unwrap();
    let s = image_server(dir.path(), insecure(&reg)).await;
    let r = register_image(&s, "mock", json!({ "oci_image": reference })).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("DigestMismatch"),
        "{}",
        r.error_text()
    );
    assert_eq!(
        s.root("GET", "sys/plugins/catalog/secret/mock", None)
            .await
            .status,
        404,
        "nothing is registered"
    );
    assert!(files_in(&dir.path().join("cache/sha256")).is_empty());
    assert!(files_in(&dir.path().join("cache/tmp")).is_empty());
    let r = s
        .root("POST", "sys/mounts/mock", Some(json!({"type": "mock"})))
        .await;
    assert_ne!(r.status, 204, "{:?}", r.body);
    assert!(
        s.core.plugin_host().groups().is_empty(),
        "no process started"
    );

    let out = Command::new(lockbox_bin())
        .args(["plugin", "pull"])
        .arg(format!("-insecure-registry={}", reg.host))
        .arg(format!("-output={}", dir.path().join("out").display()))
        .arg(&reference)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DigestMismatch"));
    assert!(!dir.path().join("out").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_only_references_need_the_binary_sha256() {
    let reg = Registry::start(false);
    let (digest, sha) = cli_push(&reg, &plugin_bin("mock"), &reg.repo("plugins/mock:v1"));
    let tag = reg.repo("plugins/mock:v1");
    let dir = tempfile::tempdir().unwrap();
    let s = image_server(dir.path(), insecure(&reg)).await;

    let r = register_image(&s, "mock", json!({ "oci_image": tag })).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("UnpinnedReference"),
        "{}",
        r.error_text()
    );
    let r = register_image(
        &s,
        "mock",
        json!({ "oci_image": tag, "sha256": "ab".repeat(32) }),
    )
    .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("DigestMismatch"),
        "{}",
        r.error_text()
    );

    let r = register_image(&s, "mock", json!({ "oci_image": tag, "sha256": sha })).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let info = s.root("GET", "sys/plugins/catalog/secret/mock", None).await;
    assert_eq!(info.body["data"]["oci_image"], tag.as_str());
    assert_eq!(
        info.body["data"]["oci_manifest_digest"],
        digest.as_str(),
        "the resolved manifest digest is recorded"
    );
    mount_and_serve(&s, "mock", "img").await;

    // The tag moves to another binary: the pinned sha256 refuses it.
    let (moved, _) = cli_push(&reg, &plugin_bin("passgen"), &tag);
    assert_ne!(moved, digest);
    let r = register_image(&s, "mock2", json!({ "oci_image": tag, "sha256": sha })).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("DigestMismatch"),
        "{}",
        r.error_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversize_images_plain_http_and_missing_manifests_are_refused() {
    let reg = Registry::start(false);
    let (digest, _) = cli_push(&reg, &plugin_bin("mock"), &reg.repo("plugins/mock:v1"));
    let reference = format!("{}@{digest}", reg.repo("plugins/mock"));

    let dir = tempfile::tempdir().unwrap();
    let small = image_server(
        dir.path(),
        ImageSettings {
            max_size: 1024 * 1024,
            ..insecure(&reg)
        },
    )
    .await;
    let r = register_image(&small, "mock", json!({ "oci_image": reference })).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_text().contains("TooLarge"), "{}", r.error_text());
    assert!(files_in(&dir.path().join("cache/tmp")).is_empty());

    // HTTPS unless the registry is named insecure.
    let dir2 = tempfile::tempdir().unwrap();
    let https = image_server(dir2.path(), ImageSettings::default()).await;
    let r = register_image(&https, "mock", json!({ "oci_image": reference })).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let text = r.error_text();
    assert!(
        text.contains("RegistryUnavailable") && text.contains("--insecure-registry"),
        "{text}"
    );

    let dir3 = tempfile::tempdir().unwrap();
    let s = image_server(dir3.path(), insecure(&reg)).await;
    let missing = format!("{}@sha256:{}", reg.repo("plugins/mock"), "0".repeat(64));
    let r = register_image(&s, "mock", json!({ "oci_image": missing })).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("ManifestNotFound"),
        "{}",
        r.error_text()
    );
    let r = register_image(&s, "mock", json!({ "oci_image": "https://x/y" })).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("InvalidReference"),
        "{}",
        r.error_text()
    );
}

/// The real `lockbox server` with file storage in `dir/data`, unsealed
/// from `dir/unseal-keys` if that exists, and nothing from the environment.
fn start_server(dir: &Path, insecure: &str) -> ConfigServer {
    let keys = dir.join("unseal-keys");
    let mut config = file_config("{dir}/data");
    if keys.exists() {
        config.push_str(&format!("unseal_keys_file = \"{}\"\n", keys.display()));
    }
    ConfigServer::builder(&config)
        .dir(dir)
        .arg(&format!("--insecure-registry={insecure}"))
        .env_clear()
        .start()
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_server_cache_survives_a_restart_with_the_registry_stopped() {
    let mut reg = Registry::start(false);
    let (digest, sha) = cli_push(&reg, &plugin_bin("mock"), &reg.repo("plugins/mock:v1"));
    let reference = format!("{}@{digest}", reg.repo("plugins/mock"));
    let dir = tempfile::tempdir().unwrap();
    let mut p = start_server(dir.path(), &reg.host);
    let (root, keys) = p.init_unseal(1, 1).await;
    let r = p
        .root(
            "PUT",
            "sys/plugins/catalog/secret/mock",
            Some(json!({ "oci_image": reference })),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = p
        .root("POST", "sys/mounts/img", Some(json!({"type": "mock"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = p
        .root("PUT", "img/kept", Some(json!({"message": "still here"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // The cache lives in the storage directory by default.
    let cached = dir.path().join("data/plugin-cache/sha256").join(&sha);
    assert!(cached.is_file());
    drop(p);

    // Restart with the registry stopped: the mount comes back from the cache.
    reg.stop();
    std::fs::write(dir.path().join("unseal-keys"), &keys[0]).unwrap();
    let mut p = start_server(dir.path(), &reg.host);
    p.root_token = root;
    let read = p.root("GET", "img/kept", None).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["data"]["message"], "still here");
    let r = p
        .root(
            "PUT",
            "sys/plugins/catalog/secret/mock-copy",
            Some(json!({ "oci_image": reference })),
        )
        .await;
    assert_eq!(
        r.status, 204,
        "registering a known digest needs no registry: {:?}",
        r.body
    );

    // The cached binary disappears while the registry is down: a reload is
    // refused with the reason, and the running version keeps serving.
    std::fs::remove_file(&cached).unwrap();
    let reload = || {
        p.root(
            "PUT",
            "sys/plugins/reload/backend",
            Some(json!({"plugin": "mock"})),
        )
    };
    let r = reload().await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("RegistryUnavailable"),
        "{}",
        r.error_text()
    );
    assert_eq!(p.root("GET", "img/kept", None).await.status, 200);
    // With the registry back, the reload pulls the pinned digest again.
    reg.resume();
    let r = reload().await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(sha256_file(&cached), sha);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(p.root("GET", "img/kept", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn unused_binaries_are_pruned_beyond_the_cache_limit() {
    let reg = Registry::start(false);
    let (d1, sha1) = cli_push(&reg, &plugin_bin("mock"), &reg.repo("plugins/p:v1"));
    let (d2, sha2) = cli_push(&reg, &plugin_bin("passgen"), &reg.repo("plugins/p:v2"));
    let dir = tempfile::tempdir().unwrap();
    // A limit below one binary: only referenced binaries may stay.
    let s = image_server(
        dir.path(),
        ImageSettings {
            cache_max_bytes: 1,
            ..insecure(&reg)
        },
    )
    .await;
    let cached = |sha: &str| dir.path().join("cache/sha256").join(sha).is_file();
    let v1 = format!("{}@{d1}", reg.repo("plugins/p"));
    let v2 = format!("{}@{d2}", reg.repo("plugins/p"));
    let r = register_image(&s, "p", json!({ "oci_image": v1 })).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(cached(&sha1), "a referenced binary stays over the limit");
    // Re-registering the name with v2: v1 is referenced by nothing now.
    let r = register_image(&s, "p", json!({ "oci_image": v2 })).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(cached(&sha2));
    assert!(!cached(&sha1), "the unused binary is pruned");
    // Registering v1 again pulls it again (the index alone is not enough).
    let r = register_image(&s, "p-old", json!({ "oci_image": v1 })).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(cached(&sha1) && cached(&sha2));
    mount_and_serve(&s, "p-old", "old").await;
}

/// A registry with token auth (the Docker registry token protocol, as Docker
/// Hub, GHCR and most cloud registries use; a real `docker-registry` trusting
/// the test's token service): `plugin push` and the server exchange basic
/// credentials for a bearer token at the realm; a `registrytoken` (a bearer
/// token) in the auth file is sent as it is; no or wrong credentials are
/// Unauthorized and nothing is registered.
#[tokio::test(flavor = "multi_thread")]
async fn token_auth_registries_basic_exchanged_for_bearer_and_registrytoken() {
    let tokens = TokenServer::start();
    let reg = Registry::start_with_tokens(&tokens);
    let (digest, sha) = cli_push(&reg, &plugin_bin("mock"), &reg.repo("plugins/mock:v1"));
    let reference = format!("{}@{digest}", reg.repo("plugins/mock"));
    let auth_server = |config: String| {
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth.json");
        std::fs::write(&auth, config).unwrap();
        let settings = insecure_with_auth(&reg, auth);
        async move {
            let s = image_server(dir.path(), settings).await;
            (dir, s)
        }
    };

    // No credentials, and a wrong password: the token service refuses.
    let anon_dir = tempfile::tempdir().unwrap();
    let anon = image_server(anon_dir.path(), insecure(&reg)).await;
    let r = register_image(&anon, "mock", json!({ "oci_image": reference })).await;
    assert_refused(&r, "Unauthorized");
    let (_d, wrong) = auth_server(reg.docker_config("not-the-password")).await;
    let r = register_image(&wrong, "mock", json!({ "oci_image": reference })).await;
    assert_refused(&r, "Unauthorized");
    let r = wrong
        .root("GET", "sys/plugins/catalog/secret/mock", None)
        .await;
    assert_eq!(r.status, 404, "nothing registered: {:?}", r.body);

    // Basic credentials, exchanged for a bearer token at the realm.
    let (_d, basic) = auth_server(reg.docker_config(PASSWORD)).await;
    let r = register_image(&basic, "mock", json!({ "oci_image": reference })).await;
    assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    mount_and_serve(&basic, "mock", "mock").await;

    // A bearer token from the auth file, used as it is.
    let token = tokens.token("plugins/mock", &["pull"]);
    let config = format!(
        r#"{{"auths": {{"{}": {{"registrytoken": "{token}"}}}}}}"#,
        reg.host
    );
    let (_d, bearer) = auth_server(config).await;
    let r = register_image(&bearer, "mock", json!({ "oci_image": reference })).await;
    assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    let info = bearer
        .root("GET", "sys/plugins/catalog/secret/mock", None)
        .await;
    assert_eq!(info.body["data"]["sha256"], sha, "{:?}", info.body);
    mount_and_serve(&bearer, "mock", "mock").await;
    // A token for another repository is refused by the registry.
    let other = tokens.token("plugins/other", &["pull"]);
    let config = format!(
        r#"{{"auths": {{"{}": {{"registrytoken": "{other}"}}}}}}"#,
        reg.host
    );
    let (_d, scoped) = auth_server(config).await;
    let r = register_image(&scoped, "mock", json!({ "oci_image": reference })).await;
    assert_refused(&r, "Unauthorized");
}
