//! The token store over the API.

use crate::common::TestServer;
use serde_json::json;

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
    let r = s
        .root(
            "POST",
            "auth/token/lookup",
            Some(json!({"token": "lbs.nope"})),
        )
        .await;
    assert_eq!(r.status, 400);
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
