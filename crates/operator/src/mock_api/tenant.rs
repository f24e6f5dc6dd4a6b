//! The unit tier of the tenant kinds (Policy, KubernetesAuthRole,
//! AuthMount): each reconcile against the mocked API server and a real
//! in-memory core, every request checked in order. The unit tier has no
//! auth plugin to run (the core's built-in kv is not an auth method), so
//! written roles and enabled auth methods are covered with the real
//! Kubernetes auth plugin in `tests/operator/tenants.rs`.

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

fn object<K: serde::de::DeserializeOwned>(
    kind: &str,
    name: &str,
    finalizer: &str,
    spec: Value,
) -> K {
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
    expect(
        api,
        "PATCH",
        &status_path(plural, name),
        StatusCode::OK,
        reply,
    )
    .await["status"]
        .clone()
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
        let note = expect_event(&mut api, "team-a", "Normal", "DriftCorrected").await;
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

async fn live_role(
    ctx: &Context,
    root: &str,
    name: &str,
) -> Option<serde_json::Map<String, Value>> {
    let path = format!("auth/kubernetes/role/{name}");
    let reply = ctx
        .core
        .handle(lockbox_core::core::ApiRequest {
            method: Method::Read,
            path,
            data: Default::default(),
            token: Some(root.into()),
            remote: None,
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

/// A role binding another namespace's ServiceAccounts is `InvalidSpec`;
/// one granting a policy that is not a Policy of its namespace (another
/// team's lockbox name) waits for it (`PolicyMissing`, not stalled);
/// nothing is written either way.
#[tokio::test]
async fn a_role_reaching_another_namespace_is_invalid_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, root) = context(dir.path()).await;
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
    assert_eq!((ok.as_str(), reason.as_str()), ("False", "PolicyMissing"));
    assert!(!crate::conditions::is_stalled(&reason));
    assert!(
        msg.contains("\"team-b.read\" is not a Policy in namespace team-a"),
        "{msg}"
    );
    no_more_requests(&mut api, "an unexpected request").await;
    for name in ["team-a.app", "team-a.grab"] {
        assert!(
            live_role(&ctx, &root, name).await.is_none(),
            "{name} written"
        );
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
    assert_eq!(
        (ok.as_str(), reason.as_str()),
        ("False", "AuthMountMissing")
    );
    assert!(msg.contains("auth/kubernetes/"), "{msg}");
    no_more_requests(&mut api, "an unexpected request").await;
}

fn auth_mount(name: &str, spec: Value) -> AuthMount {
    object("AuthMount", name, crate::auth_mount::FINALIZER, spec)
}

/// An AuthMount outside its namespace's prefix is `InvalidSpec` and no auth
/// method is enabled; a valid one goes to the core's auth table below
/// `auth/` (which refuses the built-in kv there: `MountFailed`, re-checked).
#[tokio::test]
async fn auth_mounts_follow_the_namespace_prefix_and_go_to_the_auth_table() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, _) = context(dir.path()).await;
    let auth = || async {
        ctx.admin()
            .mounts(lockbox_core::core::mounts::Table::Auth)
            .await
            .unwrap()
    };
    let before = auth().await;
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
    assert!(
        msg.contains("team-b/oidc") && msg.contains("outside"),
        "{msg}"
    );
    assert_eq!(auth().await, before, "an auth method was enabled");

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
        let status = serve_status(&mut api, "authmounts", "oidc", reply).await;
        (status, api)
    });
    let action = good.reconcile(&ctx).await.expect("reconcile");
    let (status, mut api) = server.await.unwrap();
    no_more_requests(&mut api, "an unexpected request").await;
    assert_eq!(action, Action::requeue(Duration::from_secs(15)));
    let (ok, reason, msg) = ready_of(&status);
    assert_eq!((ok.as_str(), reason.as_str()), ("False", "MountFailed"));
    assert!(msg.contains("not a auth method"), "{msg}");
    assert_eq!(status["path"], "team-a/oidc/");
    assert_eq!(auth().await, before);
}
