//! ACL policies over the API: CRUD, deny by default, globs, deny rules, sudo.

use crate::common::TestServer;
use serde_json::json;

const DEV: &str = r#"
path "secret/app/*" { capabilities = ["read", "list", "create", "update"] }
path "secret/app/admin" { capabilities = ["deny"] }
path "secret/+/shared" { capabilities = ["read"] }
"#;

#[tokio::test]
async fn policy_crud_and_listing() {
    let s = TestServer::dev().await;
    assert_eq!(
        s.root(
            "PUT",
            "sys/policies/acl/dev",
            Some(json!({ "policy": DEV }))
        )
        .await
        .status,
        204
    );
    let r = s.root("GET", "sys/policies/acl/dev", None).await;
    assert_eq!(r.body["data"]["name"], "dev");
    assert_eq!(r.body["data"]["policy"], DEV);
    let l = s.root("LIST", "sys/policies/acl", None).await;
    assert_eq!(l.body["data"]["keys"], json!(["default", "dev", "root"]));
    let legacy = s.root("GET", "sys/policy", None).await;
    assert_eq!(legacy.body["policies"], json!(["default", "dev", "root"]));
    assert_eq!(
        s.root("DELETE", "sys/policies/acl/dev", None).await.status,
        204
    );
    assert_eq!(
        s.root("GET", "sys/policies/acl/dev", None).await.status,
        404
    );
    // Built-ins are protected.
    assert_eq!(
        s.root("DELETE", "sys/policies/acl/default", None)
            .await
            .status,
        400
    );
    assert_eq!(
        s.root("DELETE", "sys/policies/acl/root", None).await.status,
        400
    );
    assert_eq!(
        s.root("PUT", "sys/policies/acl/root", Some(json!({"policy": DEV})))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn invalid_policies_are_refused_with_the_reason() {
    let s = TestServer::dev().await;
    let r = s
        .root(
            "PUT",
            "sys/policies/acl/bad",
            Some(json!({"policy": "path \"a\" { capabilities = [\"fly\"] }"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_text().contains("unknown capability \"fly\""),
        "{:?}",
        r.body
    );
    let r = s
        .root(
            "PUT",
            "sys/policies/acl/bad",
            Some(json!({"policy": "path {"})),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = s.root("PUT", "sys/policies/acl/bad", Some(json!({}))).await;
    assert!(r.error_text().contains("missing policy"));
    let r = s
        .root(
            "PUT",
            "sys/policies/acl/a%20b",
            Some(json!({"policy": DEV})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        s.root("GET", "sys/policies/acl/bad", None).await.status,
        404
    );
}

#[tokio::test]
async fn deny_by_default_and_most_specific_rule() {
    let s = TestServer::dev().await;
    s.root(
        "PUT",
        "sys/policies/acl/dev",
        Some(json!({ "policy": DEV })),
    )
    .await;
    s.root("PUT", "secret/app/admin", Some(json!({"k": "root-only"})))
        .await;
    s.root("PUT", "secret/team/shared", Some(json!({"k": "shared"})))
        .await;
    s.root("PUT", "secret/other", Some(json!({"k": "other"})))
        .await;
    let t = s.token_with(&["dev"]).await;

    assert_eq!(
        s.call("PUT", "secret/app/db", Some(&t), Some(json!({"p": "1"})))
            .await
            .status,
        204
    );
    assert_eq!(
        s.call("GET", "secret/app/db", Some(&t), None).await.status,
        200
    );
    assert_eq!(
        s.call("LIST", "secret/app", Some(&t), None).await.status,
        200
    );
    let denied = s.call("GET", "secret/app/admin", Some(&t), None).await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.errors(), vec!["permission denied"]);
    assert_eq!(
        s.call("GET", "secret/team/shared", Some(&t), None)
            .await
            .status,
        200
    );
    assert_eq!(
        s.call(
            "PUT",
            "secret/team/shared",
            Some(&t),
            Some(json!({"x": "y"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        s.call("GET", "secret/other", Some(&t), None).await.status,
        403
    );
    assert_eq!(
        s.call("DELETE", "secret/app/db", Some(&t), None)
            .await
            .status,
        403
    );
    assert_eq!(
        s.call("GET", "sys/mounts", Some(&t), None).await.status,
        403
    );
    assert_eq!(
        s.call("GET", "sys/policies/acl/dev", Some(&t), None)
            .await
            .status,
        403
    );
    // The denied write changed nothing.
    assert_eq!(
        s.root("GET", "secret/team/shared", None).await.body["data"]["k"],
        "shared"
    );
    // The default policy lets a token look itself up.
    assert_eq!(
        s.call("GET", "auth/token/lookup-self", Some(&t), None)
            .await
            .status,
        200
    );
    // Capabilities report.
    let caps = s
        .call(
            "POST",
            "sys/capabilities-self",
            Some(&t),
            Some(json!({"paths": ["secret/app/x"]})),
        )
        .await;
    assert_eq!(
        caps.body["data"]["capabilities"],
        json!(["create", "read", "update", "list"])
    );
}

#[tokio::test]
async fn create_and_update_are_distinct_capabilities() {
    let s = TestServer::dev().await;
    s.root(
        "PUT",
        "sys/policies/acl/creator",
        Some(json!({"policy": "path \"secret/*\" { capabilities = [\"create\"] }"})),
    )
    .await;
    let t = s.token_with(&["creator"]).await;
    assert_eq!(
        s.call("PUT", "secret/new", Some(&t), Some(json!({"a": "1"})))
            .await
            .status,
        204
    );
    // Overwriting an existing key needs update.
    assert_eq!(
        s.call("PUT", "secret/new", Some(&t), Some(json!({"a": "2"})))
            .await
            .status,
        403
    );
    assert_eq!(
        s.root("GET", "secret/new", None).await.body["data"]["a"],
        "1"
    );
}

#[tokio::test]
async fn sudo_is_required_where_vault_requires_it() {
    let s = TestServer::dev().await;
    let ops = r#"
path "sys/*" { capabilities = ["create", "read", "update", "delete", "list"] }
"#;
    s.root(
        "PUT",
        "sys/policies/acl/ops",
        Some(json!({ "policy": ops })),
    )
    .await;
    let sudo = r#"
path "sys/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
"#;
    s.root(
        "PUT",
        "sys/policies/acl/ops-sudo",
        Some(json!({ "policy": sudo })),
    )
    .await;
    let t = s.token_with(&["ops"]).await;
    let ts = s.token_with(&["ops-sudo"]).await;
    // Mounting a secrets engine does not need sudo in Vault; auth mounts, remount, rotate and seal do.
    assert_eq!(
        s.call(
            "POST",
            "sys/mounts/kv2",
            Some(&t),
            Some(json!({"type": "kv"}))
        )
        .await
        .status,
        204
    );
    assert_eq!(
        s.call("POST", "sys/auth/x", Some(&t), Some(json!({"type": "kv"})))
            .await
            .status,
        403
    );
    assert_eq!(
        s.call(
            "POST",
            "sys/remount",
            Some(&t),
            Some(json!({"from": "kv2", "to": "kv3"}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        s.call("PUT", "sys/rotate", Some(&t), None).await.status,
        403
    );
    assert_eq!(s.call("PUT", "sys/seal", Some(&t), None).await.status, 403);
    assert!(!s.core.is_sealed());
    assert_eq!(
        s.call(
            "POST",
            "sys/remount",
            Some(&ts),
            Some(json!({"from": "kv2", "to": "kv3"}))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        s.call("PUT", "sys/rotate", Some(&ts), None).await.status,
        204
    );
    assert_eq!(s.call("PUT", "sys/seal", Some(&ts), None).await.status, 204);
    assert!(s.core.is_sealed());
}
