//! Leases (issue 14): secrets a Vault plugin hands out with a lease (our Go
//! test plugin's `creds/<name>`, a `framework.Secret` with renew and
//! revoke) are recorded, renewed and revoked through the plugin, expire on
//! time, die with their token and their mount, survive a restart, and are
//! driven by Vault's API and the real `bao lease` commands.

use crate::common::TestServer;
use crate::vault_plugins::{mount, test_plugin_mounted};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Reads `gp/creds/<name>` as `token` (root when `None`); returns the body.
async fn creds(s: &TestServer, name: &str, ttl: Option<u64>, token: Option<&str>) -> Value {
    let path = match ttl {
        Some(t) => format!("gp/creds/{name}?ttl={t}"),
        None => format!("gp/creds/{name}"),
    };
    let r = match token {
        Some(t) => s.call("GET", &path, Some(t), None).await,
        None => s.root("GET", &path, None).await,
    };
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// What the plugin recorded about the secret with internal id `id`.
async fn plugin_record(s: &TestServer, id: &str) -> Value {
    let r = s.root("GET", &format!("gp/leases/{id}"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["data"].clone()
}

async fn wait_revoked(s: &TestServer, id: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if plugin_record(s, id).await["revoked"] == true {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "creds {id} not revoked within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugins_secret_gets_a_lease_that_renews_and_revokes_through_it() {
    let (_dir, s) = test_plugin_mounted(&[]).await;
    let body = creds(&s, "app", None, None).await;
    let lease_id = body["lease_id"].as_str().unwrap().to_string();
    let id = body["data"]["id"].as_str().unwrap().to_string();
    assert!(lease_id.starts_with("gp/creds/app/"), "{body}");
    assert_eq!(body["lease_duration"], 3600, "{body}");
    assert_eq!(body["renewable"], true, "{body}");

    let r = s
        .root(
            "PUT",
            "sys/leases/lookup",
            Some(json!({"lease_id": lease_id})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["id"], lease_id.as_str());
    let ttl = r.body["data"]["ttl"].as_i64().unwrap();
    assert!((3590..=3600).contains(&ttl), "{:?}", r.body);
    assert!(
        !r.body
            .to_string()
            .contains(body["data"]["password"].as_str().unwrap())
    );

    let r = s
        .root(
            "PUT",
            "sys/leases/renew",
            Some(json!({"lease_id": lease_id, "increment": "2m"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["lease_id"], lease_id.as_str());
    let d = r.body["lease_duration"].as_u64().unwrap();
    assert!((115..=120).contains(&d), "{:?}", r.body);
    assert_eq!(plugin_record(&s, &id).await["renewals"], 1);

    // The legacy form and a lease id in the path.
    let r = s
        .root("PUT", &format!("sys/renew/{lease_id}"), Some(json!({})))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(plugin_record(&s, &id).await["renewals"], 2);

    let r = s
        .root(
            "PUT",
            "sys/leases/revoke",
            Some(json!({"lease_id": lease_id})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(plugin_record(&s, &id).await["revoked"], true);
    let revocations = s.root("GET", "gp/revocations", None).await;
    assert!(
        revocations.body.to_string().contains(&id),
        "{:?}",
        revocations.body
    );
    let r = s
        .root(
            "PUT",
            "sys/leases/lookup",
            Some(json!({"lease_id": lease_id})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_text().contains("invalid lease"), "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_expire_die_with_their_token_their_prefix_and_their_mount() {
    let (_dir, s) = test_plugin_mounted(&[]).await;

    // Expiry: a 2 s lease is revoked by the plugin within a few seconds.
    let short = creds(&s, "short", Some(2), None).await;
    assert_eq!(short["lease_duration"], 2, "{short}");
    let short_id = short["data"]["id"].as_str().unwrap().to_string();
    wait_revoked(&s, &short_id, Duration::from_secs(10)).await;

    // A token's leases go with it.
    let t = s
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["root"]})),
        )
        .await;
    let token = t.body["auth"]["client_token"].as_str().unwrap().to_string();
    let mine = creds(&s, "mine", None, Some(&token)).await;
    let mine_id = mine["data"]["id"].as_str().unwrap().to_string();
    let r = s
        .root("PUT", "auth/token/revoke", Some(json!({"token": token})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    wait_revoked(&s, &mine_id, Duration::from_secs(10)).await;

    // revoke-prefix needs sudo, then revokes every lease under it.
    let a = creds(&s, "a", None, None).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = creds(&s, "b", None, None).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.root(
        "PUT",
        "sys/policies/acl/nosudo",
        Some(json!({"policy": "path \"sys/leases/*\" { capabilities = [\"update\", \"list\"] }"})),
    )
    .await;
    let t = s
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["nosudo"]})),
        )
        .await;
    let nosudo = t.body["auth"]["client_token"].as_str().unwrap().to_string();
    let r = s
        .call(
            "PUT",
            "sys/leases/revoke-prefix/gp/creds/",
            Some(&nosudo),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = s
        .call("LIST", "sys/leases/lookup/gp/creds/", Some(&nosudo), None)
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let r = s.root("LIST", "sys/leases/lookup/gp/creds/", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["keys"], json!(["a/", "b/"]), "{:?}", r.body);
    let r = s
        .root("PUT", "sys/leases/revoke-prefix/gp/creds/", Some(json!({})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(plugin_record(&s, &a).await["revoked"], true);
    assert_eq!(plugin_record(&s, &b).await["revoked"], true);

    // Disabling a mount revokes its leases first (the plugin's records go
    // with the mount's storage; the lease must be gone too).
    let r = mount(&s, "gp2", json!({"type": "gotest"})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s.root("GET", "gp2/creds/gone", None).await;
    let lease = r.body["lease_id"].as_str().unwrap().to_string();
    let r = s.root("DELETE", "sys/mounts/gp2", None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .root("PUT", "sys/leases/lookup", Some(json!({"lease_id": lease})))
        .await;
    assert_eq!(r.status, 400, "the mount's lease is gone: {:?}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_lease_requests_get_clear_errors() {
    let (_dir, s) = test_plugin_mounted(&[]).await;
    let body = creds(&s, "x", None, None).await;
    let lease_id = body["lease_id"].as_str().unwrap().to_string();
    for (path, data, status, text) in [
        (
            "sys/leases/lookup",
            json!({"lease_id": "gp/creds/x/nope"}),
            400,
            "invalid lease",
        ),
        ("sys/leases/lookup", json!({}), 400, "missing lease_id"),
        (
            "sys/leases/renew",
            json!({"lease_id": "gp/creds/x/nope"}),
            400,
            "lease not found",
        ),
        (
            "sys/leases/renew",
            json!({"lease_id": lease_id, "increment": "soon"}),
            400,
            "increment",
        ),
        (
            "sys/leases/revoke-prefix/",
            json!({}),
            400,
            "missing prefix",
        ),
    ] {
        let r = s.root("PUT", path, Some(data.clone())).await;
        assert_eq!(r.status, status, "{path} {data}: {:?}", r.body);
        assert!(
            r.error_text().contains(text),
            "{path} {data}: {}",
            r.error_text()
        );
    }
    // An unknown lease's revocation is a success, as in Vault.
    let r = s
        .root(
            "PUT",
            "sys/leases/revoke",
            Some(json!({"lease_id": "gp/creds/x/nope"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // The real one is untouched by all of that.
    let r = s
        .root(
            "PUT",
            "sys/leases/lookup",
            Some(json!({"lease_id": lease_id})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// A lease read before a `kill -9` is still revoked on time by the
/// restarted server (timers re-armed at unseal from the barrier).
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_in_the_middle_of_a_lease_still_revokes_it() {
    use crate::common::{ConfigServer, file_config, install_go_plugin};
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let sha = install_go_plugin(&plugins, "lockbox-testplugin", "gotest");
    let config = format!(
        "{}plugin_directory = \"{}\"\n",
        file_config("{dir}/data"),
        plugins.display()
    );
    let (root, key) = {
        let mut first = ConfigServer::builder(&config).dir(dir.path()).start();
        let (root, keys) = first.init_unseal(1, 1).await;
        first.root_token = root.clone();
        let r = first
            .root(
                "PUT",
                "sys/plugins/catalog/secret/gotest",
                Some(json!({"sha256": sha, "command": "gotest"})),
            )
            .await;
        assert!(r.status == 204 || r.status == 200, "{:?}", r.body);
        let r = first
            .root("POST", "sys/mounts/gp", Some(json!({"type": "gotest"})))
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        let r = first.root("GET", "gp/creds/app?ttl=8", None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let id = r.body["data"]["id"].as_str().unwrap().to_string();
        first.process.child.kill().unwrap();
        first.process.child.wait().unwrap();
        std::fs::write(dir.path().join("creds-id"), &id).unwrap();
        (root, keys[0].clone())
    };
    let id = std::fs::read_to_string(dir.path().join("creds-id")).unwrap();
    let mut s = ConfigServer::builder(&config)
        .dir(dir.path())
        .env("LOCKBOX_UNSEAL_KEYS", &key)
        .start();
    s.root_token = root;
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let r = s.root("GET", &format!("gp/leases/{id}"), None).await;
        if r.status == 200 && r.body["data"]["revoked"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not revoked after the restart: {:?}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let r = s
        .root("LIST", "sys/leases/lookup/gp/creds/app/", None)
        .await;
    assert_eq!(r.status, 404, "no lease left: {:?}", r.body);
}

/// The real OpenBao CLI's `lease` commands against lockbox.
#[test]
fn bao_lease_lookup_renew_revoke() {
    use crate::bao::Bao;
    use crate::common::install_go_plugin;
    use crate::walkthrough::start_dev;
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    install_go_plugin(&plugins, "lockbox-testplugin", "gotest");
    let mut server = start_dev(
        &[
            "-dev-root-token-id=root",
            "-dev-listen-address=127.0.0.1:0",
            "-dev-plugin-dir",
            plugins.to_str().unwrap(),
        ],
        dir.path(),
    );
    let bao = Bao::new(&server.addr);
    let ok = |args: &[&str]| {
        let r = bao.run_as("root", args);
        assert_eq!(r.code, 0, "bao {args:?}: {}", r.all());
        r.stdout
    };
    ok(&["secrets", "enable", "-path=gp", "gotest"]);
    let out = ok(&["read", "-format=json", "gp/creds/cli"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let lease = v["lease_id"].as_str().unwrap().to_string();
    let out = ok(&["lease", "lookup", "-format=json", &lease]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"]["id"], lease.as_str(), "{out}");
    let out = ok(&["lease", "renew", "-increment=90", "-format=json", &lease]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["lease_id"], lease.as_str(), "{out}");
    assert!(v["lease_duration"].as_u64().unwrap() <= 90, "{out}");
    let out = ok(&["lease", "revoke", &lease]);
    assert!(out.contains("successfully"), "{out}");
    let r = bao.run_as("root", &["lease", "lookup", &lease]);
    assert_ne!(r.code, 0, "{}", r.all());
    let _ = server.child.kill();
    let _ = server.child.wait();
}
