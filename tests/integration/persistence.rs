//! The real binary with a config file and the file backend: persistence
//! across restarts, `kill -9` durability, and no plaintext on disk.

use crate::common::{ConfigServer, file_config, grep_dir, lockbox_bin};
use serde_json::json;
use std::path::Path;
use std::process::Command;

/// `lockbox server` with file storage in `dir/data`, its config in `dir`.
fn start(dir: &Path, extra_env: &[(&str, &str)]) -> ConfigServer {
    let mut server = ConfigServer::builder(&file_config("{dir}/data")).dir(dir);
    for (k, v) in extra_env {
        server = server.env(k, v);
    }
    server.start()
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_kill9_and_no_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = start(dir.path(), &[]);
    let st = p.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(st.body["initialized"], false);
    let (root, keys) = p.init_unseal(3, 2).await;
    let mount = p
        .call(
            "POST",
            "sys/mounts/secret",
            Some(&root),
            Some(json!({"type": "kv"})),
        )
        .await;
    assert_eq!(mount.status, 204, "{:?}", mount.body);
    let secret = "correct-horse-battery-staple-7f3a";
    let w = p
        .call(
            "PUT",
            "secret/prod/db",
            Some(&root),
            Some(json!({ "password": secret })),
        )
        .await;
    assert_eq!(w.status, 204);
    p.call(
        "PUT",
        "sys/policies/acl/dev",
        Some(&root),
        Some(json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"})),
    )
    .await;

    // kill -9 right after the acknowledged write.
    p.process.child.kill().unwrap();
    p.process.child.wait().unwrap();
    drop(p);

    // Nothing secret on disk: the value, the root token, the unseal keys.
    let data = dir.path().join("data");
    assert!(
        grep_dir(&data, secret.as_bytes()).is_empty(),
        "secret value found on disk"
    );
    assert!(
        grep_dir(&data, root.as_bytes()).is_empty(),
        "root token found on disk"
    );
    for k in &keys {
        assert!(
            grep_dir(&data, k.as_bytes()).is_empty(),
            "unseal key found on disk"
        );
    }
    // Sanity check that the grep works: the plaintext seal config is there.
    assert!(!grep_dir(&data, b"secret_threshold").is_empty());

    // Restart: sealed, a wrong key is refused, the right ones unseal, data intact.
    let p = start(dir.path(), &[]);
    let st = p.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(
        (
            st.body["initialized"].as_bool(),
            st.body["sealed"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(
        p.call("GET", "secret/prod/db", Some(&root), None)
            .await
            .status,
        503
    );
    let other = lockbox_core::barrier::shamir::split(&[9u8; 32], 3, 2).unwrap();
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    p.call(
        "PUT",
        "sys/unseal",
        None,
        Some(json!({ "key": b64(&other[0]) })),
    )
    .await;
    let wrong = p
        .call(
            "PUT",
            "sys/unseal",
            None,
            Some(json!({ "key": b64(&other[1]) })),
        )
        .await;
    assert_eq!(wrong.status, 400, "{:?}", wrong.body);
    assert!(
        wrong.error_text().contains("do not match"),
        "{:?}",
        wrong.body
    );
    for k in &keys[1..] {
        p.call("PUT", "sys/unseal", None, Some(json!({ "key": k })))
            .await;
    }
    let r = p.call("GET", "secret/prod/db", Some(&root), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["password"], secret);
    let pol = p
        .call("GET", "sys/policies/acl/dev", Some(&root), None)
        .await;
    assert_eq!(pol.status, 200);
    drop(p);

    // Auto-unseal from the environment.
    let env_keys = format!("{},{}", keys[0], keys[2]);
    let p = start(dir.path(), &[("LOCKBOX_UNSEAL_KEYS", &env_keys)]);
    let r = p.call("GET", "secret/prod/db", Some(&root), None).await;
    assert_eq!(r.body["data"]["password"], secret);
    drop(p);

    // Auto-unseal from a file of keys (one per line).
    let key_file = dir.path().join("unseal-keys");
    std::fs::write(&key_file, format!("{}\n{}\n", keys[1], keys[2])).unwrap();
    let p = start(
        dir.path(),
        &[("LOCKBOX_UNSEAL_KEYS_FILE", key_file.to_str().unwrap())],
    );
    let r = p.call("GET", "secret/prod/db", Some(&root), None).await;
    assert_eq!(r.body["data"]["password"], secret);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_config_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.hcl");
    std::fs::write(&config, "storage \"file\" {}\n").unwrap();
    let out = Command::new(lockbox_bin())
        .args(["server", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs path"), "{stderr}");
    let out = Command::new(lockbox_bin()).arg("server").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dev or --config"));
}

/// A data directory the server may write to but does not own (a volume
/// root owned by root, as on a fresh PersistentVolume) is used as it is:
/// the server, running as another user, starts, initializes, and keeps its
/// database file private (0600) without trying to chmod the directory.
#[tokio::test(flavor = "multi_thread")]
async fn a_writable_data_directory_owned_by_another_user_is_used_as_is() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipped: needs root to run the server as another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.join("volume");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Fails unless the server, as uid 65532, starts.
    let mut p = ConfigServer::builder(&file_config(data.to_str().unwrap()))
        .dir(dir)
        .wrapper(&[
            "setpriv",
            "--reuid=65532",
            "--regid=65532",
            "--clear-groups",
        ])
        .start();
    p.init(1, 1).await;
    let meta = std::fs::metadata(&data).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o777), (0, 0o777));
    let db = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .next()
        .expect("a database file");
    let meta = db.metadata().unwrap();
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (65532, 0o600)
    );
}
