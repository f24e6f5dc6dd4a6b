//! The unit tier of the tenant kinds (Policy, KubernetesAuthRole,
//! AuthMount): each reconcile against the mocked API server and a real
//! in-memory core, every request checked in order. The shared Kubernetes
//! auth mount is stood in for by the built-in kv engine mounted at
//! `auth/kubernetes/` (it stores and returns a role's fields as written);
//! the real plugin is in `tests/operator/tenants.rs`.

use super::{
    ApiHandle, condition, context, core_call, expect, expect_event, kv_entry, no_more_requests,
};
use crate::context::Context;
use crate::crd_tenant::{AuthMount, KubernetesAuthRole, Policy};
use http::StatusCode;
use kube::runtime::controller::Action;
use lockbox_core::core::Method;
use serde_json::{Value, json};
use std::time::Duration;

const TEAM_A_POLICY: &str = "path \"team-a/kv/*\" {\n  capabilities = [\"read\"]\n}\n";

fn object<K: serde::de::DeserializeOwned>(kind: &str, name: &str, finalizer: &str, spec: Value) -> K {
    serde_json::from_value(json!({
        "apiVersion": "lockbox.dev/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": format!("uid-{name}"),
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": [finalizer],
        },
        "spec": spec,
    }))
    .unwrap()
}

fn policy(name: &str, spec: Value) -> Policy {
    object("Policy", name, crate::policy::FINALIZER, spec)
}

fn role(name: &str, spec: Value) -> KubernetesAuthRole {
    object(
        "KubernetesAuthRole",
        name,
        crate::auth_role::FINALIZER,
        spec,
    )
}

fn status_path(plural: &str, name: &str) -> String {
    format!("/apis/lockbox.dev/v1alpha1/namespaces/team-a/{plural}/{name}/status")
}

/// Every policy name in the core.
async fn policy_names(ctx: &Context) -> Vec<String> {
    ctx.admin().policies().await.unwrap()
}

async fn policy_text(ctx: &Context, name: &str) -> Option<String> {
    ctx.admin().policy(name).await.unwrap()
}

/// Serves one status patch of `plural/name`; returns its `status`.
async fn serve_status(api: &mut ApiHandle, plural: &str, name: &str, reply: Value) -> Value {
    expect(api, "PATCH", &status_path(plural, name), StatusCode::OK, reply).await["status"].clone()
}

fn ready_of(status: &Value) -> (String, String, String) {
    let c = condition(status, "Ready");
    (
        c["status"].as_str().unwrap_or_default().into(),
        c["reason"].as_str().unwrap_or_default().into(),
        c["message"].as_str().unwrap_or_default().into(),
    )
}

/// A Policy whose HCL reaches `team-b/...` (and one whose structured rule
/// globs past the namespace): `InvalidSpec` naming the path, no event, and
/// the core's policy list unchanged.
#[tokio::test]
async fn a_policy_reaching_another_namespace_is_invalid_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, _) = context(dir.path()).await;
    let before = policy_names(&ctx).await;
    for (name, spec, needle) in [
        (
            "escape",
            json!({"hcl": format!("{TEAM_A_POLICY}path \"team-b/kv/*\" {{ capabilities = [\"read\"] }}\n")}),
            "\"team-b/kv/*\"",
        ),
        (
            "glob",
            json!({"rules": [{"path": "team-a*", "capabilities": ["read"]}]}),
            "\"team-a*\"",
        ),
    ] {
        let obj = policy(name, spec);
        let reply = serde_json::to_value(&obj).unwrap();
        let server = tokio::spawn(async move {
            let status = serve_status(&mut api, "policies", name, reply).await;
            (status, api)
        });
        let action = obj.reconcile(&ctx).await.expect("reconcile");
        let (status, a) = server.await.unwrap();
        api = a;
        assert_eq!(action, Action::await_change());
        let (ok, reason, msg) = ready_of(&status);
        assert_eq!((ok.as_str(), reason.as_str()), ("False", "InvalidSpec"));
        assert!(msg.contains(needle), "{msg}");
        assert_eq!(status["observedGeneration"], 1);
        assert!(status.get("lockboxName").is_none(), "{status}");
    }
    no_more_requests(&mut api, "an unexpected request").await;
    assert_eq!(policy_names(&ctx).await, before, "a policy was written");
}

/// A valid Policy is written as `team-a.<name>` (event, Ready=Written);
/// an edit through the API is written back on the next reconcile; cleanup
/// with `Retain` keeps it, with `Delete` removes it.
#[tokio::test]
async fn a_policy_is_written_drift_is_corrected_and_deletion_follows_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, root) = context(dir.path()).await;
    let obj = policy("read", json!({"hcl": TEAM_A_POLICY}));
    let reply = serde_json::to_value(&obj).unwrap();
    let server = tokio::spawn(async move {
        let note = expect_event(&mut api, "team-a", "Normal", "Written").await;
        let status = serve_status(&mut api, "policies", "read", reply).await;
        (note, status, api)
    });
    let action = obj.reconcile(&ctx).await.expect("reconcile");
    let (note, status, mut api) = server.await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    assert!(note.contains("team-a.read"), "{note}");
    assert_eq!(ready_of(&status).0, "True");
    assert_eq!(status["lockboxName"], "team-a.read");
    assert_eq!(
        policy_text(&ctx, "team-a.read").await.as_deref(),
        Some(TEAM_A_POLICY)
    );

    // Unchanged: a resync writes nothing and patches nothing.
    let mut current = obj.clone();
    current.status = Some(serde_json::from_value(status).unwrap());
    current.reconcile(&ctx).await.expect("resync");
    no_more_requests(&mut api, "a write on an unchanged resync").await;

    // Drift: someone widens the policy through the API.
    core_call(
        &ctx,
        &root,
        Method::Write,
        "sys/policies/acl/team-a.read",
        json!({"policy": "path \"team-b/*\" { capabilities = [\"read\"] }"}),
    )
    .await;
    let server = tokio::spawn(async move {
        let note = expect_event(&mut api, "team-a", "Normal", "Written").await;
        (note, api)
    });
    current.reconcile(&ctx).await.expect("resync");
    let (note, mut api) = server.await.unwrap();
    assert!(note.contains("changed in lockbox"), "{note}");
    assert_eq!(
        policy_text(&ctx, "team-a.read").await.as_deref(),
        Some(TEAM_A_POLICY)
    );
    no_more_requests(&mut api, "a status patch for drift alone").await;

    // Retain: kept.
    current.cleanup(&ctx).await.expect("cleanup");
    assert!(policy_text(&ctx, "team-a.read").await.is_some());
    // Delete: removed.
    current.spec.deletion_policy = Some(crate::crd::DeletionPolicy::Delete);
    let server = tokio::spawn(async move {
        expect_event(&mut api, "team-a", "Normal", "Deleted").await;
        api
    });
    current.cleanup(&ctx).await.expect("cleanup");
    let mut api = server.await.unwrap();
    no_more_requests(&mut api, "an unexpected request").await;
    assert!(policy_text(&ctx, "team-a.read").await.is_none());
}

/// Mounts the kv stand-in at `auth/kubernetes/`.
async fn shared_auth_mount(ctx: &Context, root: &str) {
    core_call(
        ctx,
        root,
        Method::Write,
        "sys/auth/kubernetes",
        json!({"type": "kv"}),
    )
    .await;
}

async fn live_role(ctx: &Context, root: &str, name: &str) -> Option<serde_json::Map<String, Value>> {
    let path = format!("auth/kubernetes/role/{name}");
    let reply = ctx
        .core
        .handle(lockbox_core::core::ApiRequest {
            method: Method::Read,
            path,
            data: Default::default(),
            token: Some(root.into()),
        })
        .await;
    match reply {
        Ok(lockbox_core::core::Reply::Envelope { response, .. }) => response.data,
        _ => None,
    }
}

const POLICY_PATH: &str = "/apis/lockbox.dev/v1alpha1/namespaces/team-a/policies";

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
           "code": 404, "message": "not found"})
}

/// A role binding another namespace's ServiceAccounts, or granting a
/// policy that is not a Policy of its namespace (another team's lockbox
/// name), is `InvalidSpec` and nothing is written.
#[tokio::test]
async fn a_role_reaching_another_namespace_is_invalid_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, root) = context(dir.path()).await;
    shared_auth_mount(&ctx, &root).await;
    let obj = role(
        "app",
        json!({"boundServiceAccountNames": ["app"], "boundServiceAccountNamespaces": ["team-b"]}),
    );
    let reply = serde_json::to_value(&obj).unwrap();
    let server = tokio::spawn(async move {
        let status = serve_status(&mut api, "kubernetesauthroles", "app", reply).await;
        (status, api)
    });
    obj.reconcile(&ctx).await.expect("reconcile");
    let (status, mut api) = server.await.unwrap();
    let (ok, reason, msg) = ready_of(&status);
    assert_eq!((ok.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert!(msg.contains("\"team-b\""), "{msg}");

    let obj = role(
        "grab",
        json!({"boundServiceAccountNames": ["app"], "tokenPolicies": ["team-b.read"]}),
    );
    let reply = serde_json::to_value(&obj).unwrap();
    let server = tokio::spawn(async move {
        expect(
            &mut api,
            "GET",
            &format!("{POLICY_PATH}/team-b.read"),
            StatusCode::NOT_FOUND,
            not_found(),
        )
        .await;
        let status = serve_status(&mut api, "kubernetesauthroles", "grab", reply).await;
        (status, api)
    });
    obj.reconcile(&ctx).await.expect("reconcile");
    let (status, mut api) = server.await.unwrap();
    let (ok, reason, msg) = ready_of(&status);
    assert_eq!((ok.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert!(
        msg.contains("\"team-b.read\" is not a Policy in namespace team-a"),
        "{msg}"
    );
    no_more_requests(&mut api, "an unexpected request").await;
    for name in ["team-a.app", "team-a.grab"] {
        assert!(live_role(&ctx, &root, name).await.is_none(), "{name} written");
    }
}

/// No auth method at `auth/kubernetes/`: `AuthMountMissing`, re-checked.
#[tokio::test]
async fn a_role_waits_for_the_shared_auth_mount() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, _) = context(dir.path()).await;
    let obj = role("app", json!({"boundServiceAccountNames": ["app"]}));
    let reply = serde_json::to_value(&obj).unwrap();
    let server = tokio::spawn(async move {
        let status = serve_status(&mut api, "kubernetesauthroles", "app", reply).await;
        (status, api)
    });
    let action = obj.reconcile(&ctx).await.expect("reconcile");
    let (status, mut api) = server.await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(15)));
    let (ok, reason, msg) = ready_of(&status);
    assert_eq!((ok.as_str(), reason.as_str()), ("False", "AuthMountMissing"));
    assert!(msg.contains("auth/kubernetes/"), "{msg}");
    no_more_requests(&mut api, "an unexpected request").await;
}

/// A valid role is written as `team-a.<name>` with its namespace forced
/// and its policies mapped; drift is written back; `Delete` removes it.
#[tokio::test]
async fn a_role_is_written_forced_into_its_namespace_and_drift_is_corrected() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, root) = context(dir.path()).await;
    shared_auth_mount(&ctx, &root).await;
    let obj = role(
        "app",
        json!({"boundServiceAccountNames": ["app"], "tokenPolicies": ["read"],
               "audience": "lockbox", "tokenTTL": "1h", "deletionPolicy": "Delete"}),
    );
    let reply = serde_json::to_value(&obj).unwrap();
    let read = serde_json::to_value(policy("read", json!({"hcl": TEAM_A_POLICY}))).unwrap();
    let server = tokio::spawn(async move {
        expect(
            &mut api,
            "GET",
            &format!("{POLICY_PATH}/read"),
            StatusCode::OK,
            read,
        )
        .await;
        let note = expect_event(&mut api, "team-a", "Normal", "Written").await;
        let status = serve_status(&mut api, "kubernetesauthroles", "app", reply).await;
        (note, status, api)
    });
    obj.reconcile(&ctx).await.expect("reconcile");
    let (note, status, mut api) = server.await.unwrap();
    assert!(note.contains("team-a.app"), "{note}");
    assert_eq!(ready_of(&status).0, "True");
    assert_eq!(status["role"], "team-a.app");
    assert_eq!(status["mount"], "auth/kubernetes/");
    let live = live_role(&ctx, &root, "team-a.app").await.expect("role written");
    assert_eq!(live["bound_service_account_namespaces"], json!(["team-a"]));
    assert_eq!(live["bound_service_account_names"], json!(["app"]));
    assert_eq!(live["token_policies"], json!(["team-a.read"]));
    assert_eq!(live["token_ttl"], 3600);
    assert_eq!(live["audience"], "lockbox");

    // Drift: someone binds every namespace through the API.
    let mut widened = live.clone();
    widened.insert("bound_service_account_namespaces".into(), json!(["*"]));
    core_call(
        &ctx,
        &root,
        Method::Write,
        "auth/kubernetes/role/team-a.app",
        Value::Object(widened),
    )
    .await;
    let mut current = obj.clone();
    current.status = Some(serde_json::from_value(status).unwrap());
    let read = serde_json::to_value(policy("read", json!({"hcl": TEAM_A_POLICY}))).unwrap();
    let server = tokio::spawn(async move {
        expect(
            &mut api,
            "GET",
            &format!("{POLICY_PATH}/read"),
            StatusCode::OK,
            read,
        )
        .await;
        let note = expect_event(&mut api, "team-a", "Normal", "Written").await;
        (note, api)
    });
    current.reconcile(&ctx).await.expect("resync");
    let (note, mut api) = server.await.unwrap();
    assert!(note.contains("differed"), "{note}");
    let live = live_role(&ctx, &root, "team-a.app").await.unwrap();
    assert_eq!(live["bound_service_account_namespaces"], json!(["team-a"]));
    no_more_requests(&mut api, "an unexpected request").await;

    let server = tokio::spawn(async move {
        expect_event(&mut api, "team-a", "Normal", "Deleted").await;
        api
    });
    current.cleanup(&ctx).await.expect("cleanup");
    let mut api = server.await.unwrap();
    no_more_requests(&mut api, "an unexpected request").await;
    assert!(live_role(&ctx, &root, "team-a.app").await.is_none());
}

fn auth_mount(name: &str, spec: Value) -> AuthMount {
    object("AuthMount", name, crate::auth_mount::FINALIZER, spec)
}

/// An AuthMount outside its namespace's prefix is `InvalidSpec` and no auth
/// method is enabled; a valid one is enabled below `auth/` with its UID as
/// the owner (the SecretsMount reconciler, as an AuthMount).
#[tokio::test]
async fn auth_mounts_follow_the_namespace_prefix_and_record_their_owner() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, _) = context(dir.path()).await;
    let before = ctx.admin().mounts(lockbox_core::core::mounts::Table::Auth).await.unwrap();
    let outside = auth_mount("out", json!({"plugin": "kv", "path": "team-b/oidc"}));
    let reply = serde_json::to_value(&outside).unwrap();
    let server = tokio::spawn(async move {
        let status = serve_status(&mut api, "authmounts", "out", reply).await;
        (status, api)
    });
    outside.reconcile(&ctx).await.expect("reconcile");
    let (status, mut api) = server.await.unwrap();
    let (ok, reason, msg) = ready_of(&status);
    assert_eq!((ok.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert!(msg.contains("team-b/oidc") && msg.contains("outside"), "{msg}");
    let after = ctx.admin().mounts(lockbox_core::core::mounts::Table::Auth).await.unwrap();
    assert_eq!(after, before, "an auth method was enabled");

    let good = auth_mount("oidc", json!({"plugin": "kv"}));
    let list = json!({"apiVersion": "lockbox.dev/v1alpha1", "kind": "AuthMountList",
                      "metadata": {}, "items": [serde_json::to_value(&good).unwrap()]});
    let reply = serde_json::to_value(&good).unwrap();
    let server = tokio::spawn(async move {
        expect(
            &mut api,
            "GET",
            "/apis/lockbox.dev/v1alpha1/authmounts",
            StatusCode::OK,
            list,
        )
        .await;
        expect(
            &mut api,
            "GET",
            "/apis/lockbox.dev/v1alpha1/plugincatalogentries/kv",
            StatusCode::OK,
            kv_entry(),
        )
        .await;
        let note = expect_event(&mut api, "team-a", "Normal", "Mounted").await;
        let event_status = serve_status(&mut api, "authmounts", "oidc", reply).await;
        (note, event_status, api)
    });
    good.reconcile(&ctx).await.expect("reconcile");
    let (note, status, mut api) = server.await.unwrap();
    no_more_requests(&mut api, "an unexpected request").await;
    assert!(note.contains("team-a/oidc/"), "{note}");
    assert_eq!(status["path"], "team-a/oidc/");
    let live = ctx
        .admin()
        .mounts(lockbox_core::core::mounts::Table::Auth)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.path == "auth/team-a/oidc/")
        .expect("enabled below auth/");
    assert_eq!(live.owner, "uid-oidc");
}
