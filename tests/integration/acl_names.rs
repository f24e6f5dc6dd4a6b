//! The ACL and the handler always concern the same object (issue 10,
//! findings 1, 2 and 5): every `sys/` endpoint that takes a name is tried
//! with spellings that a handler could have normalized to a protected name
//! (case, surrounding whitespace, a trailing slash, percent-encoding,
//! Unicode look-alikes, control characters, dot segments). Each attempt must
//! be refused (400 or 403) or act on exactly the object the ACL was checked
//! against, which the tests verify by reading the protected object back.

use crate::common::{Resp, TestServer, install_plugin, raw_request};
use serde_json::json;

/// A token whose only policy is `rules`.
async fn token_for(s: &TestServer, name: &str, rules: &str) -> String {
    let r = s
        .root(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": rules })),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    s.create_token(json!({ "policies": [name], "no_default_policy": true }))
        .await
}

fn refused(r: &Resp) -> bool {
    r.status == 400 || r.status == 403
}

/// Spellings of `name` that some normalization could turn into `name`.
fn variants(name: &str) -> Vec<String> {
    let upper = name.to_ascii_uppercase();
    let mut first_upper = name.to_string();
    first_upper[..1].make_ascii_uppercase();
    // Cyrillic 'а' (U+0430) for a Latin 'a', fullwidth letters.
    let cyrillic = name.replacen('a', "\u{430}", 1);
    let fullwidth: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                char::from_u32(c as u32 - 'a' as u32 + 0xFF41).unwrap_or(c)
            } else {
                c
            }
        })
        .collect();
    vec![
        upper,
        first_upper,
        format!("%20{name}"),
        format!("{name}%20"),
        format!("%09{name}"),
        format!("{name}%0A"),
        format!("{name}/"),
        format!("%2F{name}"),
        format!("{name}%2F"),
        format!("{}%{:02X}{}", &name[..1], name.as_bytes()[1], &name[2..]),
        cyrillic,
        fullwidth,
        format!("{name}%00"),
    ]
}

#[tokio::test]
async fn policy_names_cannot_escape_a_deny_rule() {
    let s = TestServer::dev().await;
    for name in ["poladmin", "admin"] {
        let r = s
            .root(
                "PUT",
                &format!("sys/policies/acl/{name}"),
                Some(json!({"policy": "path \"secret/harmless\" { capabilities = [\"read\"] }"})),
            )
            .await;
        assert_eq!(r.status, 204);
    }
    let original =
        s.root("GET", "sys/policies/acl/poladmin", None).await.body["data"]["policy"].clone();
    let token = token_for(
        &s,
        "limited",
        r#"
path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policy/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policies/acl/poladmin*" { capabilities = ["deny"] }
path "sys/policy/poladmin*" { capabilities = ["deny"] }
path "sys/policies/acl/admin" { capabilities = ["deny"] }
path "sys/policy/admin" { capabilities = ["deny"] }
"#,
    )
    .await;
    let escalation = json!({"policy": "path \"*\" { capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\", \"sudo\"] }"});
    // The canonical names are denied.
    for path in [
        "sys/policies/acl/poladmin",
        "sys/policy/poladmin",
        "sys/policies/acl/admin",
    ] {
        let r = s
            .call("PUT", path, Some(&token), Some(escalation.clone()))
            .await;
        assert_eq!(r.status, 403, "{path}: {:?}", r.body);
    }
    // The attack of the review: POLADMIN and %20admin (204 before the fix).
    for prefix in ["sys/policies/acl", "sys/policy"] {
        for name in ["poladmin", "admin"] {
            for variant in variants(name) {
                let path = format!("{prefix}/{variant}");
                for method in ["PUT", "DELETE"] {
                    let body = (method == "PUT").then(|| escalation.clone());
                    let r = s.call(method, &path, Some(&token), body).await;
                    if r.status.is_success() {
                        // Only a different object may be touched: the
                        // protected one is checked below.
                        continue;
                    }
                    assert!(refused(&r), "{method} {path}: {:?}", r.body);
                }
            }
        }
    }
    for name in ["poladmin", "admin"] {
        let r = s
            .root("GET", &format!("sys/policies/acl/{name}"), None)
            .await;
        assert_eq!(r.status, 200, "{name} was deleted");
        assert_eq!(r.body["data"]["policy"], original, "{name} was overwritten");
    }
    // Whatever the variants created, none of them is the escalation under
    // a name the token holds, and the token still cannot read secrets.
    let r = s.call("GET", "secret/anything", Some(&token), None).await;
    assert_eq!(r.status, 403);
    let r = s
        .call(
            "PUT",
            "sys/mounts/x",
            Some(&token),
            Some(json!({"type": "kv"})),
        )
        .await;
    assert_eq!(r.status, 403);
    // Vault's case-insensitive names still work for callers the ACL allows.
    let r = s
        .root(
            "PUT",
            "sys/policies/acl/MixedCase",
            Some(escalation.clone()),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s.root("GET", "sys/policies/acl/mixedcase", None).await;
    assert_eq!(r.body["data"]["name"], "mixedcase");
}

/// Writes a value into a kv mount (as root) so its survival can be checked.
async fn seed_kv(s: &TestServer, mount: &str) {
    let r = s
        .root(
            "POST",
            &format!("sys/mounts/{mount}"),
            Some(json!({"type": "kv", "description": "protected"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .root("PUT", &format!("{mount}/k"), Some(json!({"v": "kept"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
}

async fn assert_kv_intact(s: &TestServer, mount: &str) {
    let r = s.root("GET", &format!("{mount}/k"), None).await;
    assert_eq!(r.status, 200, "{mount}/ or its data is gone: {:?}", r.body);
    assert_eq!(r.body["data"]["v"], "kept");
    let r = s
        .root("GET", &format!("sys/mounts/{mount}/tune"), None)
        .await;
    assert_eq!(
        r.body["data"]["description"], "protected",
        "{mount}/ was tuned"
    );
    assert_eq!(
        r.body["data"]["max_lease_ttl"],
        768 * 3600,
        "{mount}/ was tuned"
    );
}

#[tokio::test]
async fn mount_paths_cannot_escape_a_deny_rule() {
    let s = TestServer::dev().await;
    seed_kv(&s, "team").await;
    let token = token_for(
        &s,
        "mounter",
        r#"
path "sys/mounts/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/mounts/team*" { capabilities = ["deny"] }
"#,
    )
    .await;
    // The review's attack: DELETE sys/mounts/%20team was 204 and the mount
    // and its data were gone.
    let r = s
        .call("DELETE", "sys/mounts/team", Some(&token), None)
        .await;
    assert_eq!(r.status, 403);
    for variant in variants("team") {
        for (method, path, body) in [
            ("DELETE", format!("sys/mounts/{variant}"), None),
            (
                "POST",
                format!("sys/mounts/{variant}/tune"),
                Some(json!({"description": "hijacked", "max_lease_ttl": "1h"})),
            ),
            (
                "POST",
                format!("sys/mounts/{variant}"),
                Some(json!({"type": "kv"})),
            ),
        ] {
            let r = s.call(method, &path, Some(&token), body).await;
            if !r.status.is_success() {
                assert!(refused(&r), "{method} {path}: {:?}", r.body);
            }
            assert_kv_intact(&s, "team").await;
        }
    }
    // Dot segments and empty segments never reach a handler.
    for path in [
        "sys/mounts/x/../team",
        "sys/mounts/x/%2e%2e/team",
        "sys/mounts/./team",
        "sys/mounts//team",
        "sys/mounts/x/..%2Fteam",
    ] {
        let (status, _) = raw_request(&s.addr, "DELETE", path, &token, "").await;
        assert!(status == 400 || status == 403, "{path}: {status}");
        assert_kv_intact(&s, "team").await;
    }
    // Remount names are canonical too (sudo on sys/remount, as Vault).
    for (from, to) in [
        (" team", "elsewhere"),
        ("team", " elsewhere"),
        ("team\t", "x"),
    ] {
        let r = s
            .root("POST", "sys/remount", Some(json!({"from": from, "to": to})))
            .await;
        assert_eq!(r.status, 400, "{from:?} -> {to:?}: {:?}", r.body);
    }
    assert_kv_intact(&s, "team").await;
}

/// A token with `sys/mounts/*` cannot reach auth methods through
/// `sys/mounts/auth/...` (which `sys/auth/*` guards with sudo); the review
/// disabled userpass that way and its tokens stayed valid.
#[tokio::test]
async fn auth_methods_are_not_reachable_through_sys_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_plugin(dir.path(), "userpass", "userpass");
    let r = s
        .root(
            "PUT",
            "sys/plugins/catalog/auth/userpass",
            Some(json!({"sha256": sha, "command": "userpass"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .root(
            "POST",
            "sys/auth/userpass",
            Some(json!({"type": "userpass"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .root(
            "PUT",
            "auth/userpass/users/alice",
            Some(json!({"password": "pw-alice", "policies": "default"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .call(
            "POST",
            "auth/userpass/login/alice",
            None,
            Some(json!({"password": "pw-alice"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let alice = r.body["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();

    let token = token_for(
        &s,
        "mounts-only",
        r#"path "sys/mounts/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#,
    )
    .await;
    let r = s
        .call("DELETE", "sys/auth/userpass", Some(&token), None)
        .await;
    assert_eq!(r.status, 403);
    for (method, path, body) in [
        ("DELETE", "sys/mounts/auth/userpass", None),
        ("DELETE", "sys/mounts/auth/userpass/", None),
        (
            "POST",
            "sys/mounts/auth/userpass/tune",
            Some(json!({"description": "x"})),
        ),
        ("GET", "sys/mounts/auth/userpass", None),
        ("POST", "sys/mounts/auth/other", Some(json!({"type": "kv"}))),
        ("DELETE", "sys/mounts/auth/token", None),
        (
            "POST",
            "sys/mounts/cubbyhole/x",
            Some(json!({"type": "kv"})),
        ),
        ("POST", "sys/mounts/identity", Some(json!({"type": "kv"}))),
    ] {
        let r = s.call(method, path, Some(&token), body).await;
        assert_eq!(r.status, 400, "{method} {path}: {:?}", r.body);
        assert!(
            r.error_text().contains("sys/auth/"),
            "{method} {path}: {:?}",
            r.body
        );
    }
    // The method, its users and its tokens are all still there.
    let r = s.root("GET", "sys/auth", None).await;
    assert!(r.body["data"]["userpass/"].is_object(), "{:?}", r.body);
    let r = s
        .call("GET", "auth/token/lookup-self", Some(&alice), None)
        .await;
    assert_eq!(r.status, 200);

    // Moving the method revokes the tokens issued under its old path, so a
    // later disable cannot miss them.
    let r = s
        .root(
            "POST",
            "sys/remount",
            Some(json!({"from": "auth/userpass", "to": "auth/people"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s
        .call("GET", "auth/token/lookup-self", Some(&alice), None)
        .await;
    assert_eq!(r.status, 403, "a token of the moved method is still valid");
    let r = s
        .call(
            "POST",
            "auth/people/login/alice",
            None,
            Some(json!({"password": "pw-alice"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let alice = r.body["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    // Disabling it (the only route left) revokes the new tokens.
    let r = s.root("DELETE", "sys/auth/people", None).await;
    assert_eq!(r.status, 204);
    let r = s
        .call("GET", "auth/token/lookup-self", Some(&alice), None)
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn auth_and_plugin_names_cannot_escape_a_deny_rule() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::dev_with_plugins(dir.path()).await;
    let sha = install_plugin(dir.path(), "mock", "mock");
    let upsha = install_plugin(dir.path(), "userpass", "userpass");
    for (kind, name, sha) in [("secret", "mock", &sha), ("auth", "userpass", &upsha)] {
        let r = s
            .root(
                "PUT",
                &format!("sys/plugins/catalog/{kind}/{name}"),
                Some(json!({"sha256": sha, "command": name})),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let r = s
        .root(
            "POST",
            "sys/auth/team",
            Some(json!({"type": "userpass", "description": "protected"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let token = token_for(
        &s,
        "pluginadmin",
        r#"
path "sys/auth/*" { capabilities = ["create", "read", "update", "delete", "sudo"] }
path "sys/auth/team*" { capabilities = ["deny"] }
path "sys/plugins/catalog/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
path "sys/plugins/catalog/secret/mock*" { capabilities = ["deny"] }
path "sys/plugins/reload/*" { capabilities = ["create", "update"] }
path "sys/plugins/reload/secret/mock*" { capabilities = ["deny"] }
"#,
    )
    .await;
    let catalog_before = s
        .root("GET", "sys/plugins/catalog/secret/mock", None)
        .await
        .body["data"]
        .clone();
    let auth_intact = |r: &Resp| r.body["data"]["team/"]["description"] == json!("protected");
    for variant in variants("team") {
        for (method, path, body) in [
            ("DELETE", format!("sys/auth/{variant}"), None),
            (
                "POST",
                format!("sys/auth/{variant}/tune"),
                Some(json!({"description": "hijacked"})),
            ),
        ] {
            let r = s.call(method, &path, Some(&token), body).await;
            if !r.status.is_success() {
                assert!(refused(&r), "{method} {path}: {:?}", r.body);
            }
            let auths = s.root("GET", "sys/auth", None).await;
            assert!(
                auth_intact(&auths),
                "{method} {path} changed auth/team/: {:?}",
                auths.body
            );
        }
    }
    for variant in variants("mock") {
        for (method, path, body) in [
            (
                "DELETE",
                format!("sys/plugins/catalog/secret/{variant}"),
                None,
            ),
            (
                "PUT",
                format!("sys/plugins/catalog/secret/{variant}"),
                Some(json!({"sha256": upsha, "command": "userpass"})),
            ),
            (
                "PUT",
                format!("sys/plugins/reload/secret/{variant}"),
                Some(json!({})),
            ),
        ] {
            let r = s.call(method, &path, Some(&token), body).await;
            if !r.status.is_success() {
                assert!(refused(&r), "{method} {path}: {:?}", r.body);
            }
            let now = s.root("GET", "sys/plugins/catalog/secret/mock", None).await;
            assert_eq!(
                now.body["data"], catalog_before,
                "{method} {path} changed the catalog entry"
            );
        }
        // The type segment is exact as well.
        let r = s
            .call(
                "DELETE",
                &format!("sys/plugins/catalog/SECRET/{variant}"),
                Some(&token),
                None,
            )
            .await;
        assert!(refused(&r), "{:?}", r.body);
    }
}

/// A limited-use token cannot mint children (Vault and OpenBao refuse it
/// with this message; checked against `bao server -dev`). Before the fix a
/// `num_uses=2` token created a child with `num_uses: 0` that served 100
/// reads.
#[tokio::test]
async fn limited_use_tokens_cannot_create_children() {
    let s = TestServer::dev().await;
    let r = s.root("PUT", "secret/x", Some(json!({"v": 1}))).await;
    assert_eq!(r.status, 204);
    for (path, parent) in [
        (
            "auth/token/create",
            json!({"num_uses": 2, "policies": ["root"]}),
        ),
        ("auth/token/create", json!({"num_uses": 3})),
        (
            "auth/token/create-orphan",
            json!({"num_uses": 2, "policies": ["root"]}),
        ),
    ] {
        let limited = s.create_token(parent).await;
        for child in [json!({"num_uses": 0}), json!({"num_uses": 1}), json!({})] {
            let r = s
                .call("POST", path, Some(&limited), Some(child.clone()))
                .await;
            if r.status == 403 {
                // The parent's uses ran out on earlier attempts.
                continue;
            }
            assert_eq!(r.status, 400, "{path} {child}: {:?}", r.body);
            assert!(
                r.error_text()
                    .contains("restricted use token cannot generate child tokens"),
                "{:?}",
                r.body
            );
            assert!(r.body["auth"].is_null());
        }
    }
    // An unlimited token still can.
    let unlimited = s.create_token(json!({"policies": ["root"]})).await;
    let r = s
        .call(
            "POST",
            "auth/token/create",
            Some(&unlimited),
            Some(json!({"num_uses": 1})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}
