//! The token store over the API.

use crate::common::{Api, ConfigServer, Resp, TestServer, call, client, file_config};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[tokio::test]
async fn create_lookup_renew_revoke() {
    let s = TestServer::dev().await;
    s.root(
        "PUT",
        "sys/policies/acl/dev",
        Some(json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"})),
    )
    .await;
    let c = s
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["dev"], "ttl": "1h", "explicit_max_ttl": "2h", "display_name": "ci", "meta": {"team": "a"}})),
        )
        .await;
    assert_eq!(c.status, 200, "{:?}", c.body);
    let auth = &c.body["auth"];
    let token = auth["client_token"].as_str().unwrap().to_string();
    assert_eq!(auth["policies"], json!(["default", "dev"]));
    assert_eq!(auth["lease_duration"], 3600);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["token_type"], "service");
    assert_eq!(auth["metadata"]["team"], "a");

    let me = s
        .call("GET", "auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(me.body["data"]["display_name"], "token-ci");
    assert_eq!(me.body["data"]["accessor"], auth["accessor"]);
    assert!(me.body["data"]["ttl"].as_u64().unwrap() <= 3600);
    let other = s
        .root("POST", "auth/token/lookup", Some(json!({ "token": token })))
        .await;
    assert_eq!(other.body["data"]["id"], token.as_str());
    assert_eq!(other.body["data"]["path"], "auth/token/create");

    let renewed = s
        .call(
            "POST",
            "auth/token/renew-self",
            Some(&token),
            Some(json!({"increment": "90m"})),
        )
        .await;
    assert_eq!(renewed.status, 200, "{:?}", renewed.body);
    assert_eq!(renewed.body["auth"]["lease_duration"], 5400);
    // Renewal is capped by explicit_max_ttl.
    let capped = s
        .call(
            "POST",
            "auth/token/renew-self",
            Some(&token),
            Some(json!({"increment": "10h"})),
        )
        .await;
    assert!(capped.body["auth"]["lease_duration"].as_u64().unwrap() <= 7200);

    assert_eq!(
        s.call("POST", "auth/token/revoke-self", Some(&token), None)
            .await
            .status,
        204
    );
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&token), None)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn revoking_a_parent_revokes_children() {
    let s = TestServer::dev().await;
    let parent = s.token_with(&["default"]).await;
    s.root(
        "PUT",
        "sys/policies/acl/maker",
        Some(json!({"policy": "path \"auth/token/create\" { capabilities = [\"update\"] }"})),
    )
    .await;
    let maker = s.token_with(&["maker"]).await;
    let child = s
        .call(
            "POST",
            "auth/token/create",
            Some(&maker),
            Some(json!({"policies": ["maker"]})),
        )
        .await;
    assert_eq!(child.status, 200, "{:?}", child.body);
    let child = child.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    // A child cannot get policies its parent lacks.
    let escalate = s
        .call(
            "POST",
            "auth/token/create",
            Some(&maker),
            Some(json!({"policies": ["root"]})),
        )
        .await;
    assert_eq!(escalate.status, 400);
    let escalate = s
        .call(
            "POST",
            "auth/token/create",
            Some(&maker),
            Some(json!({"policies": ["admin"]})),
        )
        .await;
    assert!(
        escalate.error_text().contains("subset"),
        "{:?}",
        escalate.body
    );

    assert_eq!(
        s.root("POST", "auth/token/revoke", Some(json!({ "token": maker })))
            .await
            .status,
        204
    );
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&child), None)
            .await
            .status,
        403
    );
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&parent), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn expired_and_used_up_tokens_are_refused() {
    let s = TestServer::dev().await;
    let c = s
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["default"], "ttl": "1s"})),
        )
        .await;
    let short = c.body["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&short), None)
            .await
            .status,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&short), None)
            .await
            .status,
        403
    );

    let c = s
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["default"], "num_uses": 2})),
        )
        .await;
    let limited = c.body["auth"]["client_token"].as_str().unwrap().to_string();
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&limited), None)
            .await
            .status,
        200
    );
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&limited), None)
            .await
            .status,
        200
    );
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&limited), None)
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn bad_token_requests() {
    let s = TestServer::dev().await;
    let r = s
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"ttl": "eventually"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_text().contains("invalid duration"), "{:?}", r.body);
    let r = s
        .root("POST", "auth/token/create", Some(json!({"colour": "blue"})))
        .await;
    assert!(
        r.error_text().contains("unknown field \"colour\""),
        "{:?}",
        r.body
    );
    let r = s.root("POST", "auth/token/lookup", Some(json!({}))).await;
    assert!(
        r.error_text().contains("missing required field"),
        "{:?}",
        r.body
    );
    // Vault: 403 "bad token" (the CLI shows it as permission denied).
    let r = s
        .root(
            "POST",
            "auth/token/lookup",
            Some(json!({"token": "lbs.nope"})),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    assert_eq!(r.errors(), vec!["bad token".to_string()]);
    let nr = s
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["default"], "renewable": false})),
        )
        .await;
    let nr = nr.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .call("POST", "auth/token/renew-self", Some(&nr), None)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_text().contains("not renewable"));
    assert_eq!(s.root("GET", "auth/token/nope", None).await.status, 404);
}

/// The real binary on the persistent file backend (redb), initialized with
/// one key share and unsealed: the configuration the concurrency findings
/// were observed with.
async fn file_server() -> ConfigServer {
    let mut s = ConfigServer::start(&file_config("{dir}/data"));
    s.init_unseal(1, 1).await;
    s
}

/// A client with an open connection to the server, so that concurrent
/// requests are not spread out by connection setup.
async fn warm_client(s: &Api) -> reqwest::Client {
    let c = client();
    call(&c, &s.addr, "GET", "sys/health", None, None).await;
    c
}

/// Sends `n` requests with `token` at the same instant (each on its own
/// warm connection); returns their statuses.
async fn burst(s: &Api, n: usize, method: &str, path: &str, token: &str) -> Vec<u16> {
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let c = warm_client(s).await;
        let (start, addr) = (start.clone(), s.addr.clone());
        let (method, path, token) = (method.to_string(), path.to_string(), token.to_string());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            call(&c, &addr, &method, &path, Some(&token), None)
                .await
                .status
                .as_u16()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("request task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limited_use_tokens_are_exact_under_concurrency() {
    let s = file_server().await;
    for uses in [1usize, 3] {
        for _round in 0..3 {
            let token = s
                .create_token(json!({"policies": ["default"], "num_uses": uses}))
                .await;
            let statuses = burst(&s, 32, "GET", "auth/token/lookup-self", &token).await;
            let ok = statuses.iter().filter(|s| **s == 200).count();
            let denied = statuses.iter().filter(|s| **s == 403).count();
            assert_eq!(
                (ok, denied),
                (uses, 32 - uses),
                "num_uses={uses}: {statuses:?}"
            );
            // Used up means gone, for its owner and for root.
            let r = s
                .root("POST", "auth/token/lookup", Some(json!({ "token": token })))
                .await;
            assert_eq!(r.status, 403, "{:?}", r.body);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoked_token_is_refused_at_once_while_in_use() {
    let s = file_server().await;
    let mut revoked = Vec::new();
    for trial in 0..8 {
        let token = s
            .create_token(json!({"policies": ["default"], "ttl": "1h"}))
            .await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut loops = Vec::new();
        for worker in 0..4 {
            let c = warm_client(&s).await;
            let (stop, addr, token) = (stop.clone(), s.addr.clone(), token.clone());
            loops.push(tokio::spawn(async move {
                // Lookups read the entry; renewals write it back.
                let (method, path) = if worker % 2 == 0 {
                    ("GET", "auth/token/lookup-self")
                } else {
                    ("POST", "auth/token/renew-self")
                };
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let r = call(&c, &addr, method, path, Some(&token), None).await;
                    seen.push((sent, path, r.status.as_u16()));
                }
                seen
            }));
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        let r = s
            .root("POST", "auth/token/revoke", Some(json!({ "token": token })))
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
        let revoked_at = Instant::now();
        tokio::time::sleep(Duration::from_millis(250)).await;
        stop.store(true, Ordering::Relaxed);
        for l in loops {
            for (sent, path, status) in l.await.expect("loop task") {
                if sent > revoked_at {
                    assert_eq!(status, 403, "trial {trial}: {path} after revoke");
                }
            }
        }
        let r = s
            .root("POST", "auth/token/lookup", Some(json!({ "token": token })))
            .await;
        assert_eq!(r.status, 403, "trial {trial}: {:?}", r.body);
        assert_eq!(r.errors(), vec!["bad token".to_string()]);
        revoked.push(token);
    }
    // And they stay revoked.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for token in &revoked {
        let me = s
            .call("GET", "auth/token/lookup-self", Some(token), None)
            .await;
        assert_eq!(me.status, 403);
        let r = s
            .root("POST", "auth/token/lookup", Some(json!({ "token": token })))
            .await;
        assert_eq!(r.status, 403);
    }
}

/// The client token of a create or login response.
fn client_token(r: &Resp) -> String {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["auth"]["client_token"]
        .as_str()
        .expect("client_token")
        .to_string()
}

#[tokio::test]
async fn self_endpoints_return_the_callers_token() {
    let s = TestServer::dev().await;
    let token = client_token(
        &s.root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["default"], "ttl": "1h"})),
        )
        .await,
    );
    // Vault: lookup-self shows the caller's own ID.
    let me = s
        .call("GET", "auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["data"]["id"], token.as_str());
    let issued = me.body["data"]["issue_time"].clone();
    assert!(me.body["data"].get("last_renewal").is_none());

    // Vault: renew-self returns the token in auth.client_token.
    let r = s
        .call(
            "POST",
            "auth/token/renew-self",
            Some(&token),
            Some(json!({"increment": "30m"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["auth"]["client_token"], token.as_str());
    assert_eq!(r.body["auth"]["lease_duration"], 1800);

    // After a renewal: issue_time unchanged, last_renewal(_time) added.
    let me = s
        .call("GET", "auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(me.body["data"]["issue_time"], issued);
    assert!(me.body["data"]["last_renewal"].is_string(), "{:?}", me.body);
    assert!(me.body["data"]["last_renewal_time"].is_i64());

    // A used-up or revoked token looked up by root: 403 "bad token".
    s.call("POST", "auth/token/revoke-self", Some(&token), None)
        .await;
    let r = s
        .root("POST", "auth/token/lookup", Some(json!({ "token": token })))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.errors(), vec!["bad token".to_string()]);

    // lookup-self of a limited-use token shows the uses left after this one.
    let limited = client_token(
        &s.root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["default"], "num_uses": 3})),
        )
        .await,
    );
    let mut left = Vec::new();
    for _ in 0..3 {
        let me = s
            .call("GET", "auth/token/lookup-self", Some(&limited), None)
            .await;
        left.push(me.body["data"]["num_uses"].clone());
    }
    assert_eq!(left, vec![json!(2), json!(1), json!(-1)]);
}

#[tokio::test]
async fn children_die_with_an_expired_parent() {
    let s = TestServer::dev().await;
    s.root(
        "PUT",
        "sys/policies/acl/maker",
        Some(json!({"policy": "path \"auth/token/create\" { capabilities = [\"update\"] }"})),
    )
    .await;
    let parent = client_token(
        &s.root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["maker"], "ttl": "2s"})),
        )
        .await,
    );
    let created = s
        .call(
            "POST",
            "auth/token/create",
            Some(&parent),
            Some(json!({"policies": ["default"], "ttl": "1h", "renewable": true})),
        )
        .await;
    // As in Vault, the child gets the TTL it asked for...
    assert_eq!(
        created.body["auth"]["lease_duration"], 3600,
        "{:?}",
        created.body
    );
    let child = client_token(&created);
    // A second child that creates a grandchild: the whole tree dies.
    let second = client_token(
        &s.call(
            "POST",
            "auth/token/create",
            Some(&parent),
            Some(json!({"policies": ["maker"], "ttl": "1h"})),
        )
        .await,
    );
    let grandchild = client_token(
        &s.call(
            "POST",
            "auth/token/create",
            Some(&second),
            Some(json!({"policies": ["default"], "ttl": "1h"})),
        )
        .await,
    );
    let r = s
        .call(
            "POST",
            "auth/token/renew-self",
            Some(&child),
            Some(json!({"increment": "1h"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&child), None)
            .await
            .status,
        200
    );
    // ...but dies with its parent.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    for t in [&child, &second, &grandchild] {
        assert_eq!(
            s.call("GET", "auth/token/lookup-self", Some(t), None)
                .await
                .status,
            403
        );
        let r = s
            .root("POST", "auth/token/lookup", Some(json!({ "token": t })))
            .await;
        assert_eq!(r.status, 403, "{:?}", r.body);
    }
    let r = s
        .call("POST", "auth/token/renew-self", Some(&child), None)
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn sudo_on_the_create_path_allows_custom_ids_and_orphans() {
    let s = TestServer::dev().await;
    for (name, policy) in [
        (
            "maker",
            r#"path "auth/token/create" { capabilities = ["update"] }"#,
        ),
        (
            "sudomaker",
            r#"path "auth/token/create" { capabilities = ["update", "sudo"] }"#,
        ),
        (
            "orphanmaker",
            r#"path "auth/token/create-orphan" { capabilities = ["update"] }"#,
        ),
    ] {
        let r = s
            .root(
                "PUT",
                &format!("sys/policies/acl/{name}"),
                Some(json!({ "policy": policy })),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let maker = s.token_with(&["maker"]).await;
    let sudo = s.token_with(&["sudomaker"]).await;
    let orphaner = s.token_with(&["orphanmaker"]).await;
    let create = |token: String, path: &'static str, body: Value| {
        let s = &s;
        async move { s.call("POST", path, Some(&token), Some(body)).await }
    };

    // Without sudo: Vault's refusals.
    let r = create(
        maker.clone(),
        "auth/token/create",
        json!({"id": "custom-1"}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.errors(),
        vec!["root or sudo privileges required to specify token id".to_string()]
    );
    let r = create(
        maker.clone(),
        "auth/token/create",
        json!({"no_parent": true}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.errors(),
        vec!["root or sudo privileges required to create orphan token".to_string()]
    );
    let r = create(
        maker.clone(),
        "auth/token/create",
        json!({"policies": ["orphanmaker"]}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.error_text().contains("subset"), "{:?}", r.body);

    // With sudo on auth/token/create: a custom ID, an orphan, any policy...
    let r = create(sudo.clone(), "auth/token/create", json!({"id": "custom-1"})).await;
    assert_eq!(client_token(&r), "custom-1");
    assert_eq!(r.body["auth"]["orphan"], false);
    let me = s
        .call("GET", "auth/token/lookup-self", Some("custom-1"), None)
        .await;
    assert_eq!(me.body["data"]["id"], "custom-1");
    let r = create(sudo.clone(), "auth/token/create", json!({"id": "custom-1"})).await;
    assert_eq!(
        r.errors(),
        vec!["cannot create a token with a duplicate ID".to_string()]
    );
    let r = create(sudo.clone(), "auth/token/create", json!({"id": "a.b"})).await;
    assert_eq!(r.status, 400);
    assert!(r.error_text().contains("'.'"), "{:?}", r.body);
    let r = create(
        sudo.clone(),
        "auth/token/create",
        json!({"no_parent": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["auth"]["orphan"], true);
    let r = create(
        sudo.clone(),
        "auth/token/create",
        json!({"policies": ["orphanmaker"]}),
    )
    .await;
    assert_eq!(
        r.body["auth"]["policies"],
        json!(["default", "orphanmaker"])
    );
    // ...but never root.
    let r = create(
        sudo.clone(),
        "auth/token/create",
        json!({"policies": ["root"]}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.error_text().contains("root"), "{:?}", r.body);
    // Sudo on create does not open create-orphan (no capability there).
    let r = create(sudo.clone(), "auth/token/create-orphan", json!({})).await;
    assert_eq!(r.status, 403);

    // create-orphan needs only update on its path, but a custom ID still
    // needs sudo.
    let r = create(orphaner.clone(), "auth/token/create-orphan", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["auth"]["orphan"], true);
    let r = create(
        orphaner.clone(),
        "auth/token/create-orphan",
        json!({"id": "custom-2"}),
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn renew_accessor_and_orphan_endpoints() {
    let s = TestServer::dev().await;
    let created = s
        .root(
            "POST",
            "auth/token/create",
            Some(json!({"policies": ["default"], "ttl": "1h"})),
        )
        .await;
    let token = client_token(&created);
    let accessor = created.body["auth"]["accessor"]
        .as_str()
        .expect("accessor")
        .to_string();

    // renew (another token): Vault's auth block with that token.
    let r = s
        .root(
            "POST",
            "auth/token/renew",
            Some(json!({"token": token, "increment": "20m"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let auth = &r.body["auth"];
    assert_eq!(auth["client_token"], token.as_str());
    assert_eq!(auth["accessor"], accessor.as_str());
    assert_eq!(auth["lease_duration"], 1200);
    assert_eq!(auth["renewable"], true);
    assert_eq!(auth["policies"], json!(["default"]));
    assert_eq!(auth["orphan"], false);
    let r = s
        .root(
            "POST",
            "auth/token/renew",
            Some(json!({"token": "lbs.nope"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.errors(), vec!["token not found".to_string()]);

    // lookup-accessor: the lookup data without the ID.
    let r = s
        .root(
            "POST",
            "auth/token/lookup-accessor",
            Some(json!({ "accessor": accessor })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let data = &r.body["data"];
    assert_eq!(data["id"], "");
    assert_eq!(data["accessor"], accessor.as_str());
    assert_eq!(data["path"], "auth/token/create");
    let ttl = data["ttl"].as_u64().expect("ttl");
    assert!((1195..=1200).contains(&ttl), "{data:?}");
    assert_eq!(data["creation_ttl"], 3600);
    assert!(data["last_renewal_time"].is_i64(), "{data:?}");
    let r = s
        .root(
            "POST",
            "auth/token/lookup-accessor",
            Some(json!({"accessor": "nope"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_text().contains("invalid accessor"), "{:?}", r.body);

    // revoke-accessor: 204, then the token is gone; again: 200 + warning.
    let r = s
        .root(
            "POST",
            "auth/token/revoke-accessor",
            Some(json!({ "accessor": accessor })),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&token), None)
            .await
            .status,
        403
    );
    let r = s
        .root(
            "POST",
            "auth/token/revoke-accessor",
            Some(json!({ "accessor": accessor })),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["warnings"],
        json!(["No token found with this accessor"])
    );
    let r = s
        .root(
            "POST",
            "auth/token/lookup-accessor",
            Some(json!({ "accessor": accessor })),
        )
        .await;
    assert_eq!(r.status, 400);

    // create-orphan: a token that survives its creator.
    let creator = s.token_with(&["root"]).await;
    let r = s
        .call(
            "POST",
            "auth/token/create-orphan",
            Some(&creator),
            Some(json!({"policies": ["default"], "ttl": "1h"})),
        )
        .await;
    let orphan = client_token(&r);
    assert_eq!(r.body["auth"]["orphan"], true);
    assert_eq!(r.body["auth"]["lease_duration"], 3600);
    assert_eq!(r.body["auth"]["policies"], json!(["default"]));
    let me = s
        .call("GET", "auth/token/lookup-self", Some(&orphan), None)
        .await;
    assert_eq!(me.body["data"]["orphan"], true);
    assert_eq!(me.body["data"]["path"], "auth/token/create-orphan");
    s.call("POST", "auth/token/revoke-self", Some(&creator), None)
        .await;
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&orphan), None)
            .await
            .status,
        200
    );
}
