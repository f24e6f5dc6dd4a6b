//! The HTTP API: envelope shapes, methods, errors and status codes.

use crate::common::{TestServer, raw, raw_request};
use lockbox_http::ServerOptions;
use serde_json::json;

#[tokio::test]
async fn kv_write_read_list_delete() {
    let s = TestServer::dev().await;
    let w = s
        .root(
            "PUT",
            "secret/app/db",
            Some(json!({"password": "hunter2", "user": "app"})),
        )
        .await;
    assert_eq!(w.status, 204);
    let r = s.root("GET", "secret/app/db", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["data"],
        json!({"password": "hunter2", "user": "app"})
    );
    for key in [
        "request_id",
        "lease_id",
        "renewable",
        "lease_duration",
        "wrap_info",
        "warnings",
        "auth",
    ] {
        assert!(
            r.body.get(key).is_some(),
            "envelope lacks {key}: {}",
            r.body
        );
    }
    assert_eq!(r.body["lease_duration"], 768 * 3600);

    // POST also writes; LIST and GET ?list=true both list.
    assert_eq!(
        s.root("POST", "secret/app/api", Some(json!({"k": "v"})))
            .await
            .status,
        204
    );
    let l = s.root("LIST", "secret/app", None).await;
    assert_eq!(l.body["data"]["keys"], json!(["api", "db"]));
    let l2 = s.root("GET", "secret/?list=true", None).await;
    assert_eq!(l2.body["data"]["keys"], json!(["app/"]));

    assert_eq!(s.root("DELETE", "secret/app/db", None).await.status, 204);
    let gone = s.root("GET", "secret/app/db", None).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body, json!({"errors": []}));
    assert_eq!(s.root("LIST", "secret/empty/", None).await.status, 404);
}

#[tokio::test]
async fn bearer_token_is_accepted() {
    let s = TestServer::dev().await;
    let r = s
        .client
        .get(format!("{}/v1/auth/token/lookup-self", s.addr))
        .bearer_auth(&s.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn malformed_requests_are_400_with_a_message() {
    let s = TestServer::dev().await;
    let r = s
        .client
        .put(format!("{}/v1/secret/x", s.addr))
        .header("X-Vault-Token", &s.root_token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("failed to parse JSON input"),
        "{body}"
    );

    let arr = s
        .client
        .put(format!("{}/v1/secret/x", s.addr))
        .header("X-Vault-Token", &s.root_token)
        .body("[1,2]")
        .send()
        .await
        .unwrap();
    assert_eq!(arr.status(), 400);

    let empty = s.root("PUT", "secret/x", Some(json!({}))).await;
    assert_eq!(empty.status, 400);
    assert!(
        empty.error_text().contains("missing data fields"),
        "{:?}",
        empty.body
    );
    // Nothing was written by the failed attempts.
    assert_eq!(s.root("GET", "secret/x", None).await.status, 404);
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let s = TestServer::dev().await;
    let r = s.root("GET", "nothing/here", None).await;
    assert_eq!(r.status, 404);
    assert!(
        r.error_text().contains("no handler for route"),
        "{:?}",
        r.body
    );
    let r = s.root("GET", "sys/nonexistent", None).await;
    assert_eq!(r.status, 404);
    // Vault's rule: a PATCH is a JSON merge patch (a 415 otherwise); the
    // merge-patch PATCH to kv version 1 (405) is in `kv_v2`.
    let r = s.root("PATCH", "secret/x", Some(json!({"a": "b"}))).await;
    assert_eq!(r.status, 415, "{:?}", r.body);
    let r = s.root("DELETE", "sys/mounts", None).await;
    assert_eq!(r.status, 405);
    let r = s
        .client
        .get(format!("{}/v2/secret/x", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn missing_or_wrong_token_is_403() {
    let s = TestServer::dev().await;
    let none = s.call("GET", "secret/x", None, None).await;
    assert_eq!(none.status, 403);
    assert_eq!(none.errors(), vec!["permission denied"]);
    let wrong = s
        .call("GET", "secret/x", Some("lbs.not-a-real-token"), None)
        .await;
    assert_eq!(wrong.status, 403);
    let sys = s.call("GET", "sys/mounts", Some("nope"), None).await;
    assert_eq!(sys.status, 403);
}

#[tokio::test]
async fn oversized_body_is_413_and_writes_nothing() {
    let s = TestServer::dev_with(ServerOptions {
        max_request_size: 1024.into(),
        ..Default::default()
    })
    .await;
    let big = "x".repeat(4096);
    let r = s.root("PUT", "secret/big", Some(json!({ "v": big }))).await;
    assert_eq!(r.status, 413);
    assert!(r.error_text().contains("too large"), "{:?}", r.body);
    assert_eq!(s.root("GET", "secret/big", None).await.status, 404);
    // Chunked bodies without Content-Length are limited too.
    let status = raw_chunked_put(&s.addr, "secret/big", &s.root_token, 4096).await;
    assert_eq!(status, 413);
    let ok = s
        .root("PUT", "secret/small", Some(json!({ "v": "fits" })))
        .await;
    assert_eq!(ok.status, 204);
}

/// Sends a chunked PUT over a raw socket and returns the status code.
async fn raw_chunked_put(addr: &str, path: &str, token: &str, size: usize) -> u16 {
    let body = format!("{{\"v\":\"{}\"}}", "a".repeat(size));
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    raw(
        addr,
        "PUT",
        path,
        token,
        "Transfer-Encoding: chunked\r\n",
        &chunked,
    )
    .await
    .0
}

#[tokio::test]
async fn mounts_enable_list_tune_move_disable() {
    let s = TestServer::dev().await;
    let e = s
        .root(
            "POST",
            "sys/mounts/team-a/kv",
            Some(json!({"type": "kv", "description": "team A", "config": {"default_lease_ttl": "1h", "max_lease_ttl": "2h"}})),
        )
        .await;
    assert_eq!(e.status, 204, "{:?}", e.body);
    let list = s.root("GET", "sys/mounts", None).await;
    let m = &list.body["data"]["team-a/kv/"];
    assert_eq!(m["type"], "kv");
    assert_eq!(m["description"], "team A");
    assert_eq!(m["config"]["default_lease_ttl"], 3600);
    assert!(m["accessor"].as_str().unwrap().starts_with("kv_"));
    assert!(m["uuid"].as_str().unwrap().len() >= 32);
    for key in [
        "local",
        "options",
        "seal_wrap",
        "plugin_version",
        "running_plugin_version",
        "running_sha256",
    ] {
        assert!(m.get(key).is_some(), "mount lacks {key}: {m}");
    }
    // Old clients read mounts at the top level too.
    assert_eq!(list.body["team-a/kv/"]["type"], "kv");
    assert!(list.body["data"]["sys/"].is_object());

    s.root("PUT", "team-a/kv/one", Some(json!({"a": "1"})))
        .await;
    let tune = s.root("GET", "sys/mounts/team-a/kv/tune", None).await;
    assert_eq!(tune.body["data"]["default_lease_ttl"], 3600);
    assert_eq!(tune.body["data"]["max_lease_ttl"], 7200);
    let t = s
        .root(
            "POST",
            "sys/mounts/team-a/kv/tune",
            Some(json!({"default_lease_ttl": "30m", "description": "tuned"})),
        )
        .await;
    assert_eq!(t.status, 204, "{:?}", t.body);
    let tune = s.root("GET", "sys/mounts/team-a/kv/tune", None).await;
    assert_eq!(tune.body["data"]["default_lease_ttl"], 1800);
    assert_eq!(tune.body["data"]["description"], "tuned");
    let bad = s
        .root(
            "POST",
            "sys/mounts/team-a/kv/tune",
            Some(json!({"default_lease_ttl": "3h"})),
        )
        .await;
    assert_eq!(bad.status, 400, "default above max must be refused");

    // Move keeps the data.
    let mv = s
        .root(
            "POST",
            "sys/remount",
            Some(json!({"from": "team-a/kv", "to": "team-b/kv"})),
        )
        .await;
    assert_eq!(mv.status, 200, "{:?}", mv.body);
    let id = mv.body["data"]["migration_id"]
        .as_str()
        .unwrap()
        .to_string();
    let st = s
        .root("GET", &format!("sys/remount/status/{id}"), None)
        .await;
    assert_eq!(st.body["data"]["migration_info"]["status"], "success");
    assert_eq!(
        s.root("GET", "team-b/kv/one", None).await.body["data"]["a"],
        "1"
    );
    assert_eq!(s.root("GET", "team-a/kv/one", None).await.status, 404);

    // Disable removes the data: a new mount at the same path is empty.
    assert_eq!(
        s.root("DELETE", "sys/mounts/team-b/kv", None).await.status,
        204
    );
    assert_eq!(s.root("GET", "team-b/kv/one", None).await.status, 404);
    s.root("POST", "sys/mounts/team-b/kv", Some(json!({"type": "kv"})))
        .await;
    assert_eq!(s.root("GET", "team-b/kv/one", None).await.status, 404);
    let leftovers: Vec<String> = s
        .physical
        .dump()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("logical/"))
        .collect();
    assert!(
        leftovers.iter().all(|k| !k.ends_with("/one")),
        "data left behind: {leftovers:?}"
    );
}

#[tokio::test]
async fn bad_mount_paths_are_400_naming_the_problem() {
    let s = TestServer::dev().await;
    let cases = [
        ("sys/mounts/a//b", "empty path segment"),
        ("sys/mounts/secret/nested", "already in use at secret/"),
        ("sys/mounts/sys/x", "reserved"),
        ("sys/mounts/auth/x", "reserved"),
    ];
    for (path, needle) in cases {
        let r = s.root("POST", path, Some(json!({"type": "kv"}))).await;
        assert_eq!(r.status, 400, "{path}: {:?}", r.body);
        assert!(r.error_text().contains(needle), "{path}: {:?}", r.body);
    }
    // `..` must reach the server unnormalized, so bypass the URL parser.
    let (status, body) = raw_request(
        &s.addr,
        "POST",
        "sys/mounts/a/../b",
        &s.root_token,
        r#"{"type":"kv"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("`..`"), "{body}");
    // A parent of an existing mount overlaps too.
    s.root("POST", "sys/mounts/deep/one", Some(json!({"type": "kv"})))
        .await;
    let r = s
        .root("POST", "sys/mounts/deep", Some(json!({"type": "kv"})))
        .await;
    assert!(
        r.error_text().contains("already in use at deep/one/"),
        "{:?}",
        r.body
    );
    let r = s
        .root(
            "POST",
            "sys/mounts/x",
            Some(json!({"type": "no-such-engine"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_text().contains("no-such-engine"), "{:?}", r.body);
    let r = s.root("POST", "sys/mounts/x", Some(json!({}))).await;
    assert!(r.error_text().contains("missing type"), "{:?}", r.body);
    let r = s
        .root(
            "POST",
            "sys/mounts/x",
            Some(json!({"type": "kv", "config": {"default_lease_ttl": "soon"}})),
        )
        .await;
    assert!(r.error_text().contains("invalid duration"), "{:?}", r.body);
    assert_eq!(s.root("DELETE", "sys/mounts/sys", None).await.status, 400);
    // None of the refused mounts exist.
    let list = s.root("GET", "sys/mounts", None).await;
    let paths: Vec<&String> = list.body["data"].as_object().unwrap().keys().collect();
    assert_eq!(paths, vec!["deep/one/", "secret/", "sys/"]);
}

#[tokio::test]
async fn seal_unseal_and_503_while_sealed() {
    let s = TestServer::dev().await;
    s.root("PUT", "secret/a", Some(json!({"v": "1"}))).await;
    assert_eq!(s.root("PUT", "sys/seal", None).await.status, 204);
    let r = s.root("GET", "secret/a", None).await;
    assert_eq!(r.status, 503);
    assert!(r.error_text().contains("sealed"));
    let st = s.call("GET", "sys/seal-status", None, None).await;
    assert_eq!(st.body["sealed"], true);
    assert_eq!(st.body["t"], 1);
    let h = s.call("GET", "sys/health", None, None).await;
    assert_eq!(h.status, 503);
    assert_eq!(h.body["sealed"], true);
    let h = s.call("GET", "sys/health?sealedcode=200", None, None).await;
    assert_eq!(h.status, 200);

    // A wrong key (right length, wrong value) is refused and loses nothing.
    use base64::Engine;
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let r = s
        .call("PUT", "sys/unseal", None, Some(json!({ "key": wrong })))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_text().contains("do not match"), "{:?}", r.body);
    let r = s
        .call(
            "PUT",
            "sys/unseal",
            None,
            Some(json!({ "key": "not base64 !!" })),
        )
        .await;
    assert_eq!(r.status, 400);

    let key = base64::engine::general_purpose::STANDARD.encode(&s.unseal_keys[0]);
    let r = s
        .call("PUT", "sys/unseal", None, Some(json!({ "key": key })))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["sealed"], false);
    assert_eq!(s.root("GET", "secret/a", None).await.body["data"]["v"], "1");
}

#[tokio::test]
async fn init_with_shamir_threshold() {
    let s = TestServer::uninitialized().await;
    let st = s.call("GET", "sys/init", None, None).await;
    assert_eq!(st.body["initialized"], false);
    let h = s.call("GET", "sys/health", None, None).await;
    assert_eq!(h.status, 501);
    assert_eq!(s.call("GET", "secret/x", Some("t"), None).await.status, 503);
    let bad = s
        .call(
            "PUT",
            "sys/init",
            None,
            Some(json!({"secret_shares": 3, "secret_threshold": 5})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.error_text().contains("secret_threshold"),
        "{:?}",
        bad.body
    );

    let init = s
        .call(
            "PUT",
            "sys/init",
            None,
            Some(json!({"secret_shares": 5, "secret_threshold": 3})),
        )
        .await;
    assert_eq!(init.status, 200, "{:?}", init.body);
    let keys: Vec<String> = init.body["keys_base64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let hex_keys: Vec<String> = init.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 5);
    let root = init.body["root_token"].as_str().unwrap().to_string();
    let again = s
        .call(
            "PUT",
            "sys/init",
            None,
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await;
    assert_eq!(again.status, 400);

    // Sealed after init; progress counts distinct keys; hex works too.
    let r = s
        .call("PUT", "sys/unseal", None, Some(json!({ "key": keys[4] })))
        .await;
    assert_eq!(
        (r.body["sealed"].as_bool(), r.body["progress"].as_u64()),
        (Some(true), Some(1))
    );
    let r = s
        .call("PUT", "sys/unseal", None, Some(json!({ "key": keys[4] })))
        .await;
    assert_eq!(r.body["progress"], 1, "a repeated key must not count twice");
    let r = s
        .call("PUT", "sys/unseal", None, Some(json!({ "reset": true })))
        .await;
    assert_eq!(r.body["progress"], 0);
    s.call("PUT", "sys/unseal", None, Some(json!({ "key": keys[0] })))
        .await;
    s.call(
        "PUT",
        "sys/unseal",
        None,
        Some(json!({ "key": hex_keys[2] })),
    )
    .await;
    let r = s
        .call("PUT", "sys/unseal", None, Some(json!({ "key": keys[3] })))
        .await;
    assert_eq!(r.body["sealed"], false, "{:?}", r.body);
    let lookup = s
        .call("GET", "auth/token/lookup-self", Some(&root), None)
        .await;
    assert_eq!(lookup.body["data"]["policies"], json!(["root"]));
    // A fresh server has no secret/ mount; sys/ and the token store exist.
    let mounts = s.call("GET", "sys/mounts", Some(&root), None).await;
    assert!(mounts.body["data"]["sys/"].is_object());
    let auth = s.call("GET", "sys/auth", Some(&root), None).await;
    assert_eq!(auth.body["data"]["token/"]["type"], "token");
}

#[tokio::test]
async fn rotate_and_key_status() {
    let s = TestServer::dev().await;
    s.root("PUT", "secret/before", Some(json!({"v": "1"})))
        .await;
    let ks = s.root("GET", "sys/key-status", None).await;
    assert_eq!(ks.body["data"]["term"], 1);
    assert_eq!(s.root("PUT", "sys/rotate", None).await.status, 204);
    let ks = s.root("GET", "sys/key-status", None).await;
    assert_eq!(ks.body["data"]["term"], 2);
    s.root("PUT", "secret/after", Some(json!({"v": "2"}))).await;
    assert_eq!(
        s.root("GET", "secret/before", None).await.body["data"]["v"],
        "1"
    );
    assert_eq!(
        s.root("GET", "secret/after", None).await.body["data"]["v"],
        "2"
    );
    // The keyring is persisted: after sealing, both terms still decrypt.
    assert_eq!(s.root("PUT", "sys/seal", None).await.status, 204);
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(&s.unseal_keys[0]);
    let r = s
        .call("PUT", "sys/unseal", None, Some(json!({ "key": key })))
        .await;
    assert_eq!(r.body["sealed"], false, "{:?}", r.body);
    let ks = s.root("GET", "sys/key-status", None).await;
    assert_eq!(ks.body["data"]["term"], 2);
    for (k, v) in [("before", "1"), ("after", "2")] {
        let r = s.root("GET", &format!("secret/{k}"), None).await;
        assert_eq!(r.body["data"]["v"], v, "{k}: {:?}", r.body);
    }
}

/// The default limit (Vault's 32 MiB) applies without any configuration.
#[tokio::test]
async fn the_default_body_limit_is_32_mib() {
    let s = TestServer::dev().await;
    let big = "x".repeat(lockbox_http::DEFAULT_MAX_REQUEST_SIZE + 1);
    let r = s.root("PUT", "secret/big", Some(json!({ "v": big }))).await;
    assert_eq!(r.status, 413, "{:?}", r.body);
    let fits = "x".repeat(1024 * 1024);
    let r = s
        .root("PUT", "secret/fits", Some(json!({ "v": fits })))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
}

/// A value storage cannot decrypt is a 500 with Vault's error body, and the
/// server goes on serving everything else.
#[tokio::test]
async fn undecryptable_storage_is_a_500_with_an_error_body() {
    use lockbox_storage::Physical;
    let s = TestServer::dev().await;
    s.root("PUT", "secret/good", Some(json!({"v": "1"}))).await;
    s.root("PUT", "secret/bad", Some(json!({"v": "2"}))).await;
    let key = s
        .physical
        .dump()
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.starts_with("logical/") && k.ends_with("/bad"))
        .expect("stored key of secret/bad");
    s.physical
        .put(&key, b"\x01not a ciphertext".to_vec())
        .await
        .unwrap();
    let r = s.root("GET", "secret/bad", None).await;
    assert_eq!(r.status, 500, "{:?}", r.body);
    assert!(!r.errors().is_empty(), "{:?}", r.body);
    assert_eq!(
        s.root("GET", "secret/good", None).await.body["data"]["v"],
        "1"
    );
}

/// Tune reads report TTLs as Vault does: the mount's own or the system's,
/// not clamped to each other.
#[tokio::test]
async fn tune_reads_report_unclamped_ttls() {
    let s = TestServer::dev().await;
    let t = s
        .root(
            "POST",
            "sys/mounts/secret/tune",
            Some(json!({"max_lease_ttl": "10h"})),
        )
        .await;
    assert_eq!(t.status, 204, "{:?}", t.body);
    let r = s.root("GET", "sys/mounts/secret/tune", None).await;
    assert_eq!(r.body["data"]["max_lease_ttl"], 36000);
    assert_eq!(r.body["data"]["default_lease_ttl"], 768 * 3600);
    // A lease is still clamped to the max.
    s.root("PUT", "secret/x", Some(json!({"v": "1"}))).await;
    let read = s.root("GET", "secret/x", None).await;
    assert_eq!(read.body["lease_duration"], 36000);
}

#[tokio::test]
async fn internal_ui_mounts_reports_kv_version_1() {
    let s = TestServer::dev().await;
    let r = s
        .root("GET", "sys/internal/ui/mounts/secret/foo", None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["path"], "secret/");
    assert_eq!(r.body["data"]["options"]["version"], "1");
}

/// As in Vault, a path no mount serves is 404 only to a token that may use
/// it; without a valid token it is 403, so mounts cannot be probed.
#[tokio::test]
async fn unknown_mounts_are_403_to_callers_without_access() {
    let s = TestServer::dev().await;
    let none = s.call("GET", "nomount/x", None, None).await;
    assert_eq!(none.status, 403, "{:?}", none.body);
    let wrong = s.call("GET", "nomount/x", Some("lbs.wrong"), None).await;
    assert_eq!(wrong.status, 403, "{:?}", wrong.body);
    let default = s.token_with(&["default"]).await;
    let r = s.call("GET", "nomount/x", Some(&default), None).await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let root = s.root("GET", "nomount/x", None).await;
    assert_eq!(root.status, 404, "{:?}", root.body);
    assert!(root.error_text().contains("no handler for route"));
}

/// kv version 2 is the kv plugin's (not in this server's catalog): enabling
/// it says what to register; version 3 and a tune between versions are
/// refused; nothing is mounted by a refused request.
#[tokio::test]
async fn kv_version_2_without_the_kv_plugin_is_refused_with_what_to_do() {
    let s = TestServer::dev().await;
    for body in [
        json!({"type": "kv", "options": {"version": "2"}}),
        json!({"type": "kv-v2"}),
    ] {
        let r = s.root("POST", "sys/mounts/v2", Some(body)).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert!(
            r.error_text()
                .contains("register its binary as secret plugin \"kv\""),
            "{:?}",
            r.body
        );
    }
    let r = s
        .root(
            "POST",
            "sys/mounts/v3",
            Some(json!({"type": "kv", "options": {"version": "3"}})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.error_text().contains("options.version \"3\""),
        "{:?}",
        r.body
    );
    let r = s
        .root(
            "POST",
            "sys/mounts/v2",
            Some(json!({"type": "kv-v2", "options": {"version": "1"}})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_text().contains("disagree"), "{:?}", r.body);
    let r = s
        .root("POST", "sys/mounts/v1", Some(json!({"type": "kv-v1"})))
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .root(
            "POST",
            "sys/mounts/v1/tune",
            Some(json!({"options": {"version": "2"}})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_text().contains("does not upgrade"), "{:?}", r.body);
    let list = s.root("GET", "sys/mounts", None).await;
    assert!(list.body["data"]["v2/"].is_null(), "{}", list.body);
    assert!(list.body["data"]["v3/"].is_null(), "{}", list.body);
    assert_eq!(list.body["data"]["v1/"]["type"], "kv");
    assert_eq!(list.body["data"]["v1/"]["options"]["version"], "1");
}

/// The built-in singletons (`sys/`, `auth/token/`) keep their storage to
/// themselves: no mount and no plugin may take their type names.
#[tokio::test]
async fn built_in_types_cannot_be_mounted_or_registered() {
    let s = TestServer::dev().await;
    for (path, ty) in [
        ("sys/mounts/fake", "token"),
        ("sys/mounts/fake", "system"),
        ("sys/auth/fake", "token"),
        ("sys/auth/fake", "cubbyhole"),
    ] {
        let r = s.root("POST", path, Some(json!({ "type": ty }))).await;
        assert_eq!(r.status, 400, "{path} {ty}: {:?}", r.body);
        assert!(r.error_text().contains("built in"), "{:?}", r.body);
    }
    let r = s
        .root(
            "PUT",
            "sys/plugins/catalog/secret/token",
            Some(json!({"command": "x", "sha256": "0".repeat(64)})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_text().contains("reserved"), "{:?}", r.body);
    // Tokens and policies are untouched.
    assert_eq!(
        s.root("GET", "auth/token/lookup-self", None).await.status,
        200
    );
}

/// `sys/internal/ui/mounts/:path` describes a mount to tokens that may use
/// it (Vault's CLI asks it before `kv` commands); others get 403. The
/// listing shows a token the mounts it may use.
#[tokio::test]
async fn ui_mounts_answers_by_access_to_the_mount() {
    let s = TestServer::dev().await;
    let none = s
        .call("GET", "sys/internal/ui/mounts/secret/x", None, None)
        .await;
    assert_eq!(none.status, 403, "{:?}", none.body);
    let default = s.token_with(&["default"]).await;
    let r = s
        .call(
            "GET",
            "sys/internal/ui/mounts/secret/x",
            Some(&default),
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    s.root(
        "PUT",
        "sys/policies/acl/reader",
        Some(json!({"policy": "path \"secret/app/*\" { capabilities = [\"read\"] }"})),
    )
    .await;
    let reader = s.token_with(&["reader"]).await;
    let r = s
        .call(
            "GET",
            "sys/internal/ui/mounts/secret/x",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["data"]["path"], "secret/");
    assert_eq!(r.body["data"]["type"], "kv");

    let list = s.call("GET", "sys/internal/ui/mounts", None, None).await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    assert_eq!(list.body["data"], json!({"secret": {}, "auth": {}}));
    s.root("POST", "sys/mounts/private", Some(json!({"type": "kv"})))
        .await;
    let list = s
        .call("GET", "sys/internal/ui/mounts", Some(&reader), None)
        .await;
    let secret = &list.body["data"]["secret"];
    assert!(secret["secret/"].is_object(), "{}", list.body);
    assert!(secret["private/"].is_null(), "{}", list.body);
    let r = s
        .call("GET", "sys/internal/ui/mounts/private", Some(&reader), None)
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    let list = s.root("GET", "sys/internal/ui/mounts", None).await;
    assert!(
        list.body["data"]["secret"]["sys/"].is_object(),
        "{}",
        list.body
    );
    assert!(
        list.body["data"]["auth"]["token/"].is_object(),
        "{}",
        list.body
    );
}

#[tokio::test]
async fn tune_endpoints_refuse_other_methods() {
    let s = TestServer::dev().await;
    for path in ["sys/auth/token/tune", "sys/mounts/secret/tune"] {
        let r = s.root("DELETE", path, None).await;
        assert_eq!(r.status, 405, "{path}: {:?}", r.body);
        let r = s.root("LIST", path, None).await;
        assert_eq!(r.status, 405, "{path}: {:?}", r.body);
    }
}

/// The whole mount entry (description, config, options, local, seal_wrap,
/// UUID, accessor) comes back unchanged when the table is read from storage
/// again (seal, unseal).
#[tokio::test]
async fn the_mount_table_round_trips_through_storage() {
    let s = TestServer::dev().await;
    let e = s
        .root(
            "POST",
            "sys/mounts/team/kv",
            Some(json!({
                "type": "kv",
                "description": "team kv",
                "config": {"default_lease_ttl": "1h", "max_lease_ttl": "3h", "force_no_cache": true},
                "options": {"version": "1", "color": "blue"},
                "local": true,
                "seal_wrap": true,
            })),
        )
        .await;
    assert_eq!(e.status, 204, "{:?}", e.body);
    let before = s.root("GET", "sys/mounts", None).await.body["data"].clone();
    let m = &before["team/kv/"];
    assert_eq!(m["config"]["force_no_cache"], true, "{m}");
    assert_eq!(m["config"]["max_lease_ttl"], 3 * 3600, "{m}");
    assert_eq!(m["options"]["color"], "blue", "{m}");
    assert_eq!(
        (m["local"].clone(), m["seal_wrap"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(s.root("PUT", "sys/seal", None).await.status, 204);
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(&s.unseal_keys[0]);
    let r = s
        .call("PUT", "sys/unseal", None, Some(json!({ "key": key })))
        .await;
    assert_eq!(r.body["sealed"], false, "{:?}", r.body);
    let after = s.root("GET", "sys/mounts", None).await.body["data"].clone();
    assert_eq!(before, after);
}

#[tokio::test]
async fn bad_remounts_are_400_naming_the_problem() {
    let s = TestServer::dev().await;
    s.root("POST", "sys/mounts/src", Some(json!({"type": "kv"})))
        .await;
    s.root("POST", "sys/mounts/other/deep", Some(json!({"type": "kv"})))
        .await;
    let cases = [
        (json!({"from": "src", "to": "sys/x"}), "reserved"),
        (json!({"from": "src", "to": "other"}), "already in use"),
        (json!({"from": "src", "to": "secret"}), "already in use"),
        (json!({"from": "src", "to": "a//b"}), "empty path segment"),
        (json!({"from": "src", "to": "auth/src"}), "auth"),
        (json!({"from": "missing", "to": "dst"}), "missing"),
        (json!({"from": "sys", "to": "dst"}), "sys/"),
        (json!({"from": "src"}), "to"),
        (json!({"from": "src", "to": "src"}), "already in use"),
        (json!({"from": "src", "to": "src/inner"}), "already in use"),
    ];
    for (body, needle) in cases {
        let r = s.root("POST", "sys/remount", Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert!(r.error_text().contains(needle), "{body}: {:?}", r.body);
    }
    let list = s.root("GET", "sys/mounts", None).await;
    assert!(list.body["data"]["src/"].is_object(), "{}", list.body);
}

#[tokio::test]
async fn health_status_codes_and_overrides() {
    let s = TestServer::dev().await;
    let h = s.call("GET", "sys/health", None, None).await;
    assert_eq!(h.status, 200);
    for key in [
        "initialized",
        "sealed",
        "standby",
        "server_time_utc",
        "version",
    ] {
        assert!(h.body.get(key).is_some(), "health lacks {key}: {}", h.body);
    }
    let h = s.call("GET", "sys/health?activecode=299", None, None).await;
    assert_eq!(h.status, 299);
    let head = s
        .client
        .head(format!("{}/v1/sys/health", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.text().await.unwrap(), "");
    let u = TestServer::uninitialized().await;
    let h = u.call("GET", "sys/health", None, None).await;
    assert_eq!(h.status, 501, "{:?}", h.body);
    assert_eq!(h.body["initialized"], false);
    let h = u.call("GET", "sys/health?uninitcode=200", None, None).await;
    assert_eq!(h.status, 200);
}

/// A crash between saving the mount table and clearing a disabled mount's
/// data leaves data no mount can reach: the next unseal removes it, and
/// touches nothing that a mount owns.
#[tokio::test]
async fn unseal_removes_data_of_mounts_not_in_the_table() {
    use lockbox_storage::Physical;
    let s = TestServer::dev().await;
    s.root("PUT", "secret/keep", Some(json!({"v": "1"}))).await;
    assert_eq!(s.root("PUT", "sys/seal", None).await.status, 204);
    for key in ["logical/0rphan-uuid/k", "auth/0rphan-uuid/k"] {
        s.physical.put(key, b"ciphertext".to_vec()).await.unwrap();
    }
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(&s.unseal_keys[0]);
    let r = s
        .call("PUT", "sys/unseal", None, Some(json!({ "key": key })))
        .await;
    assert_eq!(r.body["sealed"], false, "{:?}", r.body);
    let keys: Vec<String> = s.physical.dump().into_iter().map(|(k, _)| k).collect();
    assert!(
        keys.iter().all(|k| !k.contains("0rphan")),
        "orphaned data left: {keys:?}"
    );
    assert_eq!(
        s.root("GET", "secret/keep", None).await.body["data"]["v"],
        "1"
    );
}

/// A mount's `owner` (lockbox's extension for the operator): only a root
/// token may set it, at enable or tune; a token with every capability on
/// `sys/mounts/*` but not root gets a 400 naming the field and changes
/// nothing. `sys/mounts` shows it only when set; tune and remount keep it,
/// and it survives a seal/unseal (it is in the stored table).
#[tokio::test]
async fn only_root_sets_a_mount_owner_and_remount_and_tune_keep_it() {
    let s = TestServer::dev().await;
    let r = s
        .root(
            "PUT",
            "sys/policies/acl/mount-admin",
            Some(json!({"policy": r#"path "sys/mounts/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }
path "sys/mounts" { capabilities = ["read"] }
path "sys/remount" { capabilities = ["update", "sudo"] }"#})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let admin = s.token_with(&["mount-admin"]).await;

    // Not root: refused, nothing enabled.
    let r = s
        .call(
            "POST",
            "sys/mounts/team-a/kv",
            Some(&admin),
            Some(json!({"type": "kv", "owner": "uid-forged"})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.error_text().contains("owner"), "{:?}", r.body);
    let list = s.call("GET", "sys/mounts", Some(&admin), None).await;
    assert!(
        list.body["data"].get("team-a/kv/").is_none(),
        "{}",
        list.body
    );

    // Without owner the same token enables as before; no owner key shown.
    let r = s
        .call(
            "POST",
            "sys/mounts/team-a/kv",
            Some(&admin),
            Some(json!({"type": "kv"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let list = s.root("GET", "sys/mounts", None).await;
    assert!(
        list.body["data"]["team-a/kv/"].get("owner").is_none(),
        "{}",
        list.body
    );
    // ... and cannot claim it by tune either.
    let r = s
        .call(
            "POST",
            "sys/mounts/team-a/kv/tune",
            Some(&admin),
            Some(json!({"owner": "uid-forged", "description": "x"})),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let m = s.root("GET", "sys/mounts/team-a/kv", None).await;
    assert!(m.body["data"].get("owner").is_none(), "{}", m.body);
    assert_eq!(m.body["data"]["description"], "", "{}", m.body);

    // Root sets it at enable; it shows in sys/mounts and sys/mounts/PATH.
    let r = s
        .root(
            "POST",
            "sys/mounts/team-b/kv",
            Some(json!({"type": "kv", "owner": "5f1e-uid"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let list = s.root("GET", "sys/mounts", None).await;
    assert_eq!(list.body["data"]["team-b/kv/"]["owner"], "5f1e-uid");
    // A non-root tune and a remount keep it.
    let r = s
        .call(
            "POST",
            "sys/mounts/team-b/kv/tune",
            Some(&admin),
            Some(json!({"description": "tuned"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = s
        .call(
            "POST",
            "sys/remount",
            Some(&admin),
            Some(json!({"from": "team-b/kv", "to": "team-b/moved"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = s.root("GET", "sys/mounts/team-b/moved", None).await;
    assert_eq!(
        (
            m.body["data"]["owner"].clone(),
            m.body["data"]["description"].clone()
        ),
        (json!("5f1e-uid"), json!("tuned")),
        "{}",
        m.body
    );
    // Root hands it over by tune; bad owners are refused.
    let r = s
        .root(
            "POST",
            "sys/mounts/team-b/moved/tune",
            Some(json!({"owner": "new-uid"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    for bad in [json!("has space"), json!(7), json!("x".repeat(254))] {
        let r = s
            .root(
                "POST",
                "sys/mounts/team-c/kv",
                Some(json!({"type": "kv", "owner": bad})),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
        assert!(r.error_text().contains("owner"), "{:?}", r.body);
    }

    // Stored with the table: unchanged after seal and unseal.
    assert_eq!(s.root("PUT", "sys/seal", None).await.status, 204);
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode(&s.unseal_keys[0]);
    let r = s
        .call("PUT", "sys/unseal", None, Some(json!({ "key": key })))
        .await;
    assert_eq!(r.body["sealed"], false, "{:?}", r.body);
    let list = s.root("GET", "sys/mounts", None).await;
    assert_eq!(list.body["data"]["team-b/moved/"]["owner"], "new-uid");
    assert!(list.body["data"]["team-a/kv/"].get("owner").is_none());
}
