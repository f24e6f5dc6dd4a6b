//! HTTP request → core request → routing → ACL → handler, end to end
//! through `lockbox_http::dispatch` on an unsealed in-memory core.
//!
//! The caller holds a token whose policy grants `team-a/`, a few policy
//! names and the `team-a` mounts, and denies `team-b/` and the
//! `fuzz-admin*` policies. Properties, checked after every request:
//! * a request that succeeded on a guarded path is one the policy grants
//!   on the path the core acted on (the normalized path: percent-decoded,
//!   policy names lower-cased), for the capability its method needs;
//! * nothing outside the grant changed: the `team-b/` secret, its mount,
//!   the `admin` policy, and no `fuzz-admin*` policy exists;
//! * no request ends in a 500.

#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use lockbox_core::core::{Core, Method, canonical_request_path};
use lockbox_core::policy::{self, Acl, Capability};
use lockbox_fuzz::{call, data, runtime, unsealed_core};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock};

const LIMITED: &str = r#"
path "team-a/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "team-b/*" { capabilities = ["deny"] }
path "sys/policies/acl/fuzz-*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policies/acl/fuzz-admin*" { capabilities = ["deny"] }
path "sys/mounts/team-a*" { capabilities = ["create", "read", "update", "delete", "sudo"] }
path "sys/mounts/team-b*" { capabilities = ["deny"] }
path "sys/mounts" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["create", "update"] }
"#;
const ADMIN: &str = r#"path "*" { capabilities = ["sudo", "read"] }"#;

struct World {
    core: Arc<Core>,
    root: String,
    limited: Mutex<String>,
    acl: Acl,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let (core, root) = unsealed_core();
        let limited = runtime().block_on(async {
            for m in ["team-a", "team-b"] {
                call(
                    &core,
                    &root,
                    Method::Write,
                    &format!("sys/mounts/{m}"),
                    json!({"type": "kv"}),
                )
                .await;
            }
            call(
                &core,
                &root,
                Method::Write,
                "team-b/marker",
                json!({"v": "keep"}),
            )
            .await;
            call(
                &core,
                &root,
                Method::Write,
                "sys/policies/acl/limited",
                json!({"policy": LIMITED}),
            )
            .await;
            call(
                &core,
                &root,
                Method::Write,
                "sys/policies/acl/admin",
                json!({"policy": ADMIN}),
            )
            .await;
            new_limited_token(&core, &root).await
        });
        let parsed = policy::parse("limited", LIMITED).expect("the limited policy parses");
        World {
            core,
            root,
            limited: Mutex::new(limited),
            acl: Acl::new([&parsed]),
        }
    })
}

async fn new_limited_token(core: &Core, root: &str) -> String {
    let reply = call(
        core,
        root,
        Method::Write,
        "auth/token/create",
        json!({"policies": ["limited"], "no_parent": true}),
    )
    .await;
    match reply {
        lockbox_core::core::Reply::Envelope { response, .. } => {
            response.auth.map(|a| a.client_token).expect("a token")
        }
        other => panic!("token create: {other:?}"),
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: u8,
    path: String,
    query: String,
    token: u8,
    body: Vec<u8>,
}

/// Paths whose every success must be granted by the limited policy.
const GUARDED: &[&str] = &[
    "team-a/",
    "team-b/",
    "sys/policies/",
    "sys/policy/",
    "sys/mounts",
    "sys/auth",
    "sys/remount",
    "sys/plugins",
    "sys/raw",
    "auth/token/create",
];

/// The path the ACL must have allowed: percent-decoded and canonical as
/// the core says, system object names without a trailing slash, policy
/// names case-insensitive (Vault's rule).
fn acted_on(decoded: &str) -> Option<String> {
    let p = canonical_request_path(decoded).ok()?;
    // A trailing slash names the same system object (`sys/mounts/` is
    // `sys/mounts`), as in the core.
    let p = match p.strip_prefix("sys/") {
        Some(_) => p.strip_suffix('/').unwrap_or(&p).to_string(),
        None => p,
    };
    for prefix in ["sys/policies/acl/", "sys/policy/"] {
        if let Some(name) = p.strip_prefix(prefix) {
            return Some(format!("{prefix}{}", name.to_lowercase()));
        }
    }
    Some(p)
}

fuzz_target!(|input: Input| {
    let w = world();
    let method = [
        "GET", "PUT", "POST", "DELETE", "LIST", "HEAD", "PATCH", "OPTIONS",
    ][usize::from(input.method) % 8];
    let uri = if input.query.is_empty() {
        format!("/v1/{}", input.path)
    } else {
        format!("/v1/{}?{}", input.path, input.query)
    };
    let Ok(uri) = uri.parse::<http::Uri>() else {
        return; // hyper refuses it before lockbox sees it
    };
    let limited = w.limited.lock().expect("lock").clone();
    let mut req = http::Request::builder().method(method).uri(uri.clone());
    req = match input.token % 4 {
        0 => req,
        1 => req.header("x-vault-token", limited.as_str()),
        2 => req.header("authorization", format!("Bearer {limited}")),
        _ => req.header("x-vault-token", "hvs.not-a-token"),
    };
    let Ok(req) = req.body(Full::new(Bytes::from(input.body))) else {
        return;
    };
    let bounds = lockbox_http::RequestBounds {
        max_request_size: 1 << 16,
        read_timeout: None,
        max_request_duration: None,
    };
    runtime().block_on(async {
        let resp = lockbox_http::dispatch(&w.core, req, bounds).await;
        let status = resp.status().as_u16();
        assert_ne!(status, 500, "{method} {uri}: internal error");

        // Property 1: successes on guarded paths are granted.
        let decoded =
            lockbox_http::percent_decode(uri.path().strip_prefix("/v1/").unwrap_or(""), false);
        // Vault's rule, stated again here: the first `list` parameter
        // decides (a non-boolean one is a 400, never a success).
        let list = uri
            .query()
            .and_then(|q| {
                q.split('&').find_map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (lockbox_http::percent_decode(k, true) == "list")
                        .then(|| lockbox_http::percent_decode(v, true))
                })
            })
            .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"));
        if (200..300).contains(&status)
            && let Some(path) = acted_on(&decoded)
            && GUARDED.iter().any(|g| path.starts_with(g))
        {
            let granted = |cap| w.acl.allows(&path, cap, false);
            let ok = match method {
                "GET" | "HEAD" if list => granted(Capability::List),
                "GET" | "HEAD" => granted(Capability::Read),
                "LIST" => granted(Capability::List),
                "DELETE" => granted(Capability::Delete),
                _ => granted(Capability::Create) || granted(Capability::Update),
            };
            assert!(
                ok,
                "{method} {uri} succeeded ({status}) on {path:?}, which the policy does not grant"
            );
        }

        // Property 2: nothing outside the grant changed.
        let marker = data(call(&w.core, &w.root, Method::Read, "team-b/marker", Value::Null).await);
        assert_eq!(
            marker.get("v"),
            Some(&json!("keep")),
            "{method} {uri} changed team-b/marker"
        );
        let admin = data(
            call(
                &w.core,
                &w.root,
                Method::Read,
                "sys/policies/acl/admin",
                Value::Null,
            )
            .await,
        );
        assert_eq!(
            admin.get("policy"),
            Some(&json!(ADMIN)),
            "{method} {uri} changed the admin policy"
        );
        let names = data(
            call(
                &w.core,
                &w.root,
                Method::List,
                "sys/policies/acl",
                Value::Null,
            )
            .await,
        );
        if let Some(Value::Array(keys)) = names.get("keys") {
            assert!(
                !keys
                    .iter()
                    .any(|k| k.as_str().is_some_and(|k| k.starts_with("fuzz-admin"))),
                "{method} {uri} created a fuzz-admin policy: {keys:?}"
            );
        }
        let mounts = data(call(&w.core, &w.root, Method::Read, "sys/mounts", Value::Null).await);
        assert!(
            mounts.contains_key("team-b/"),
            "{method} {uri} removed the team-b mount"
        );

        // Keep the caller usable: the input may have revoked its token.
        let alive = w
            .core
            .handle(lockbox_core::core::ApiRequest {
                method: Method::Read,
                path: "auth/token/lookup-self".into(),
                data: Default::default(),
                token: Some(limited.clone()),
                remote: None,
            })
            .await;
        if alive.is_err() {
            let fresh = new_limited_token(&w.core, &w.root).await;
            *w.limited.lock().expect("lock") = fresh;
        }
    });
});
