//! The unit tier of the operator: reconcilers against a mocked Kubernetes
//! API (`tower_test::mock::pair`) and a real in-memory core, no cluster.
//! Each test serves the requests a reconcile must make, in order, checks
//! each one (method, path, what the body says) and fails on any other
//! request; the cluster tier (`tests/operator`) covers the rest.

use super::catalog::{FINALIZER, REASON_DIGEST_MISMATCH};
use super::context::Context;
use super::crd::{BinarySource, PluginCatalogEntry, PluginCatalogEntrySpec, PluginType};
use super::metrics::Metrics;
use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use lockbox_core::core::{ApiRequest, Method};
use lockbox_plugin_host::{Node, NodeConfig};
use lockbox_storage::InMemory;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower_test::mock::{self, Handle};
use zeroize::Zeroizing;

type ApiHandle = Handle<Request<Body>, Response<Body>>;

/// A context over a mocked API and an unsealed in-memory core whose plugin
/// directory holds `lockbox-plugin-mock` (a few bytes: it is never run).
async fn context(dir: &std::path::Path) -> (Arc<Context>, ApiHandle, String) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    std::fs::write(dir.join("lockbox-plugin-mock"), b"#!/bin/false\n").unwrap();
    let core = Arc::new(Node::new(
        Arc::new(InMemory::new()),
        NodeConfig {
            plugins: lockbox_plugin_host::HostConfig {
                plugin_directory: Some(dir.to_path_buf()),
                ..Default::default()
            },
            ..Default::default()
        },
    ));
    let init = core.initialize(1, 1, None).await.unwrap();
    core.submit_unseal_key(&init.keys[0]).await.unwrap();
    let ctx = Context::new(
        client,
        core,
        Zeroizing::new(init.root_token.clone()),
        "lockbox-system".into(),
        dir.to_path_buf(),
        Default::default(),
        Arc::new(Metrics::default()),
        Duration::from_secs(300),
    );
    (Arc::new(ctx), handle, init.root_token)
}

/// A catalog entry (generation 1, finalizer present) for the mock binary
/// pinned to `sha256`.
fn entry(sha256: &str) -> PluginCatalogEntry {
    let mut e = PluginCatalogEntry::new(
        "mock",
        PluginCatalogEntrySpec {
            plugin_type: PluginType::Secret,
            version: "1.0.0".into(),
            binary: Some(BinarySource {
                path: "lockbox-plugin-mock".into(),
                sha256: sha256.into(),
            }),
            image: None,
            args: None,
            env: None,
            multiplexing: None,
        },
    );
    e.metadata.generation = Some(1);
    e.metadata.finalizers = Some(vec![FINALIZER.into()]);
    e.metadata.uid = Some("uid-1".into());
    e
}

/// Takes the next request; checks method and path; answers `status` with
/// `reply`; returns the request body as JSON.
async fn expect(
    handle: &mut ApiHandle,
    method: &str,
    path: &str,
    status: StatusCode,
    reply: Value,
) -> Value {
    let (request, respond) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no request; expected {method} {path}"))
        .expect("the client is gone");
    assert_eq!(request.method().as_str(), method, "{}", request.uri());
    assert_eq!(request.uri().path(), path);
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    respond.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    body
}

/// Takes the next request: an event in `namespace` of `type_` and
/// `reason`; returns its note.
async fn expect_event(
    handle: &mut ApiHandle,
    namespace: &str,
    type_: &str,
    reason: &str,
) -> String {
    let event = expect(
        handle,
        "POST",
        &format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events"),
        StatusCode::CREATED,
        json!({}),
    )
    .await;
    assert_eq!(
        (event["type"].as_str(), event["reason"].as_str()),
        (Some(type_), Some(reason)),
        "{event}"
    );
    event["note"].as_str().unwrap_or_default().to_string()
}

/// Fails if the API server receives any further request (within 200 ms).
async fn no_more_requests(handle: &mut ApiHandle, what: &str) {
    let next = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    assert!(next.is_err(), "{what}");
}

/// The (type, status, reason) of every condition of `status`, in order.
fn shape(status: &Value) -> Vec<(String, String, String)> {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let f = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (f("type"), f("status"), f("reason"))
        })
        .collect()
}

fn triple(t: &str, s: &str, r: &str) -> (String, String, String) {
    (t.into(), s.into(), r.into())
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

/// A wrong sha256: a Warning event naming both digests, then status
/// Ready=False and Verified=False (DigestMismatch) for generation 1; the
/// core's catalog stays empty and no process is started. Nothing else is
/// asked of the API server.
#[tokio::test]
async fn digest_mismatch_event_then_status_and_nothing_registered() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, root) = context(dir.path()).await;
    let wrong = "0".repeat(64);
    let actual = lockbox_core::catalog::sha256_hex(b"#!/bin/false\n");
    let obj = entry(&wrong);
    let object = serde_json::to_value(&obj).unwrap();
    let server = tokio::spawn(async move {
        let event = expect(
            &mut api,
            "POST",
            "/apis/events.k8s.io/v1/namespaces/kube-system/events",
            StatusCode::CREATED,
            json!({}),
        )
        .await;
        assert_eq!(event["reason"], REASON_DIGEST_MISMATCH);
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["regarding"]["name"], "mock");
        let note = event["note"].as_str().unwrap_or_default().to_string();
        let status = expect(
            &mut api,
            "PATCH",
            "/apis/lockbox.dev/v1alpha1/plugincatalogentries/mock/status",
            StatusCode::OK,
            object,
        )
        .await;
        (note, status, api)
    });
    let action = obj.reconcile(&ctx).await.expect("reconcile");
    let (note, patch, mut api) = server.await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    assert!(note.contains(&wrong) && note.contains(&actual), "{note}");
    let status = &patch["status"];
    assert_eq!(status["observedGeneration"], 1);
    for type_ in ["Ready", "Verified"] {
        let c = condition(status, type_);
        assert_eq!(c["status"], "False", "{c}");
        assert_eq!(c["reason"], REASON_DIGEST_MISMATCH, "{c}");
        assert_eq!(c["observedGeneration"], 1, "{c}");
    }
    // kstatus Failed: Stalled=True beside Ready=False, no Reconciling.
    assert_eq!(
        shape(status),
        [
            triple("Ready", "False", REASON_DIGEST_MISMATCH),
            triple("Stalled", "True", REASON_DIGEST_MISMATCH),
            triple("Verified", "False", REASON_DIGEST_MISMATCH),
        ]
    );
    assert_eq!(condition(status, "Stalled")["message"], status["message"]);
    // Nothing else was asked of the API server.
    no_more_requests(&mut api, "an unexpected request").await;
    let read = ctx
        .core
        .handle(ApiRequest {
            method: Method::Read,
            path: "sys/plugins/catalog/secret/mock".into(),
            data: Default::default(),
            token: Some(root),
            remote: None,
        })
        .await;
    assert!(
        matches!(read, Ok(lockbox_core::core::Reply::NotFound) | Err(_)),
        "registered anyway: {read:?}"
    );
    assert!(ctx.core.plugin_host().groups().is_empty(), "a process ran");
}

/// The same mismatch reported again for the same generation: the status is
/// patched, but no second event is published.
#[tokio::test]
async fn a_repeated_digest_mismatch_is_not_a_new_event() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, _) = context(dir.path()).await;
    let mut obj = entry(&"0".repeat(64));
    let mut status = json!({
        "observedGeneration": 1,
        "conditions": [
            {"type": "Ready", "status": "False", "reason": REASON_DIGEST_MISMATCH,
             "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
            {"type": "Verified", "status": "False", "reason": REASON_DIGEST_MISMATCH,
             "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1},
        ],
    });
    obj.status = Some(serde_json::from_value(status.take()).unwrap());
    let object = serde_json::to_value(&obj).unwrap();
    let server = tokio::spawn(async move {
        expect(
            &mut api,
            "PATCH",
            "/apis/lockbox.dev/v1alpha1/plugincatalogentries/mock/status",
            StatusCode::OK,
            object,
        )
        .await;
        api
    });
    obj.reconcile(&ctx).await.expect("reconcile");
    let mut api = server.await.unwrap();
    no_more_requests(
        &mut api,
        "a second event (or another request) for the same mismatch",
    )
    .await;
}

/// A SecretsMount in namespace `team-a` named `name`, with `spec.path`
/// `team-a/kv`, created at `created`.
fn mount(name: &str, created: &str) -> super::crd::SecretsMount {
    let mut m: super::crd::SecretsMount = serde_json::from_value(json!({
        "apiVersion": "lockbox.dev/v1alpha1",
        "kind": "SecretsMount",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": format!("uid-{name}"),
            "generation": 1,
            "creationTimestamp": created,
            "finalizers": [super::mount::FINALIZER],
        },
        "spec": {"plugin": "mock", "path": "team-a/kv"},
    }))
    .unwrap();
    m.status = None;
    m
}

/// Two SecretsMounts want `team-a/kv`: the newer one is `PathConflict`,
/// naming the older one, and stops there (no catalog lookup, no mount).
/// Without the controllers' cache the reconcile lists the mounts once; with
/// the cache (what the running operator has) it asks the API server for
/// nothing but the status patch.
#[tokio::test]
async fn the_older_mount_keeps_a_path_and_the_cache_spares_the_list() {
    use kube::runtime::{reflector, watcher};
    let older = mount("a", "2026-01-01T00:00:00Z");
    let newer = mount("b", "2026-01-02T00:00:00Z");
    let list = json!({
        "apiVersion": "lockbox.dev/v1alpha1",
        "kind": "SecretsMountList",
        "metadata": {"resourceVersion": "1"},
        "items": [serde_json::to_value(&older).unwrap(), serde_json::to_value(&newer).unwrap()],
    });
    let status_path = "/apis/lockbox.dev/v1alpha1/namespaces/team-a/secretsmounts/b/status";
    let check = |patch: &Value| {
        let c = condition(&patch["status"], "Ready");
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("False"), Some("PathConflict"))
        );
        // kstatus Failed: a retry cannot take the path from the older one.
        assert_eq!(
            shape(&patch["status"]),
            [
                triple("Ready", "False", "PathConflict"),
                triple("Stalled", "True", "PathConflict"),
            ]
        );
        let msg = c["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("team-a/a") && msg.contains("team-a/kv"),
            "{msg}"
        );
    };

    // No cache: one LIST, then a Warning event and the status.
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, _) = context(dir.path()).await;
    let (obj, reply) = (newer.clone(), serde_json::to_value(&newer).unwrap());
    let server = tokio::spawn(async move {
        expect(
            &mut api,
            "GET",
            "/apis/lockbox.dev/v1alpha1/secretsmounts",
            StatusCode::OK,
            list,
        )
        .await;
        expect_event(&mut api, "team-a", "Warning", "PathConflict").await;
        let patch = expect(&mut api, "PATCH", status_path, StatusCode::OK, reply).await;
        (patch, api)
    });
    obj.reconcile(&ctx).await.expect("reconcile");
    let (patch, mut api) = server.await.unwrap();
    check(&patch);
    no_more_requests(&mut api, "an unexpected request").await;

    // With the cache: the event and the status patch only.
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, _) = context(dir.path()).await;
    let (reader, mut writer) = reflector::store::<super::crd::SecretsMount>();
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitApply(older));
    writer.apply_watcher_event(&watcher::Event::InitApply(newer.clone()));
    writer.apply_watcher_event(&watcher::Event::InitDone);
    ctx.set_mount_store(reader);
    let reply = serde_json::to_value(&newer).unwrap();
    let server = tokio::spawn(async move {
        expect_event(&mut api, "team-a", "Warning", "PathConflict").await;
        let patch = expect(&mut api, "PATCH", status_path, StatusCode::OK, reply).await;
        (patch, api)
    });
    newer.reconcile(&ctx).await.expect("reconcile");
    let (patch, mut api) = server.await.unwrap();
    check(&patch);
    no_more_requests(&mut api, "an unexpected request").await;
}

/// A root call into the core; panics on failure.
async fn core_call(
    ctx: &Context,
    root: &str,
    method: Method,
    path: &str,
    data: Value,
) -> Option<serde_json::Map<String, Value>> {
    let reply = ctx
        .core
        .handle(ApiRequest {
            method,
            path: path.into(),
            data: data.as_object().cloned().unwrap_or_default(),
            token: Some(root.into()),
            remote: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    match reply {
        lockbox_core::core::Reply::Envelope { response, .. } => response.data,
        _ => None,
    }
}

/// The core's `sys/mounts` entry at `path` (with its trailing `/`), as the
/// HTTP API shows it.
async fn live_mount(ctx: &Context, path: &str) -> Option<Value> {
    let root = ctx.root_token().to_string();
    let mounts = core_call(ctx, &root, Method::Read, "sys/mounts", Value::Null).await;
    mounts.unwrap_or_default().get(path).cloned()
}

/// A SecretsMount `team-a/<name>` of the built-in `kv` engine (so the
/// unit tier can enable it without a plugin process) at `spec.path` `path`.
fn kv_mount(name: &str, path: &str, extra: Value) -> super::crd::SecretsMount {
    let mut spec = json!({"plugin": "kv", "path": path});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "lockbox.dev/v1alpha1",
        "kind": "SecretsMount",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": format!("uid-{name}"),
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": [super::mount::FINALIZER],
        },
        "spec": spec,
    }))
    .unwrap()
}

/// The registered catalog entry `kv` the mount controller asks for.
fn kv_entry() -> Value {
    let mut e = entry(&"0".repeat(64));
    e.metadata.name = Some("kv".into());
    e.status = Some(super::crd::PluginCatalogEntryStatus {
        version: Some("1.0.0".into()),
        ..Default::default()
    });
    serde_json::to_value(&e).unwrap()
}

/// A context whose SecretsMount cache holds exactly `mounts`.
fn with_store(ctx: &Context, mounts: &[&super::crd::SecretsMount]) {
    use kube::runtime::{reflector, watcher};
    let (reader, mut writer) = reflector::store::<super::crd::SecretsMount>();
    writer.apply_watcher_event(&watcher::Event::Init);
    for m in mounts {
        writer.apply_watcher_event(&watcher::Event::InitApply((*m).clone()));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    ctx.set_mount_store(reader);
}

const ENTRY_PATH: &str = "/apis/lockbox.dev/v1alpha1/plugincatalogentries/kv";

fn status_path(name: &str) -> String {
    format!("/apis/lockbox.dev/v1alpha1/namespaces/team-a/secretsmounts/{name}/status")
}

/// kstatus on the mount controller's status writes: a missing catalog
/// entry is `Ready=False` + `Reconciling=True` (InProgress, retried in
/// 15 s); a path outside the namespace is `Ready=False` + `Stalled=True`
/// (Failed, waits for a spec change); both for generation 1.
#[tokio::test]
async fn a_missing_entry_is_reconciling_and_an_invalid_spec_is_stalled() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, _) = context(dir.path()).await;
    let waiting = kv_mount("waiting", "team-a/kv", json!({}));
    let invalid = kv_mount("invalid", "team-b/kv", json!({}));
    with_store(&ctx, &[&waiting, &invalid]);
    let (w, i) = (
        serde_json::to_value(&waiting).unwrap(),
        serde_json::to_value(&invalid).unwrap(),
    );
    let server = tokio::spawn(async move {
        let missing = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": "NotFound", "code": 404, "message": "not found"});
        expect(&mut api, "GET", ENTRY_PATH, StatusCode::NOT_FOUND, missing).await;
        let first = expect(
            &mut api,
            "PATCH",
            &status_path("waiting"),
            StatusCode::OK,
            w,
        )
        .await;
        let second = expect(
            &mut api,
            "PATCH",
            &status_path("invalid"),
            StatusCode::OK,
            i,
        )
        .await;
        (first, second, api)
    });
    let retry = waiting.reconcile(&ctx).await.expect("reconcile waiting");
    let refused = invalid.reconcile(&ctx).await.expect("reconcile invalid");
    let (first, second, mut api) = server.await.unwrap();
    no_more_requests(&mut api, "an unexpected request").await;
    assert_eq!(retry, Action::requeue(Duration::from_secs(15)));
    assert_eq!(refused, Action::await_change());
    assert_eq!(first["status"]["observedGeneration"], 1);
    assert_eq!(
        shape(&first["status"]),
        [
            triple("Ready", "False", "PluginMissing"),
            triple("Reconciling", "True", "PluginMissing"),
        ]
    );
    assert!(
        condition(&first["status"], "Reconciling")["message"]
            .as_str()
            .is_some_and(|m| m.contains("PluginCatalogEntry kv does not exist")),
        "{first}"
    );
    assert_eq!(second["status"]["observedGeneration"], 1);
    assert_eq!(
        shape(&second["status"]),
        [
            triple("Ready", "False", "InvalidSpec"),
            triple("Stalled", "True", "InvalidSpec"),
        ]
    );
    for c in second["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert_eq!(c["observedGeneration"], 1, "{c}");
    }
}

/// The attack: a SecretsMount points `spec.path` at a mount made through
/// the API (no owner). It is `PathConflict` with a Warning event, the mount
/// is not tuned, and deleting the object with `deletionPolicy: Delete`
/// leaves the mount and its data in place.
#[tokio::test]
async fn a_mount_made_through_the_api_is_a_conflict_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, root) = context(dir.path()).await;
    core_call(
        &ctx,
        &root,
        Method::Write,
        "sys/mounts/team-a/kv",
        json!({"type": "kv", "description": "made through the API"}),
    )
    .await;
    core_call(
        &ctx,
        &root,
        Method::Write,
        "team-a/kv/db",
        json!({"password": "p"}),
    )
    .await;
    let before = live_mount(&ctx, "team-a/kv/").await.unwrap();

    let obj = kv_mount(
        "intruder",
        "team-a/kv",
        json!({"description": "taken over", "deletionPolicy": "Delete",
               "config": {"defaultLeaseTTL": "1m"}}),
    );
    with_store(&ctx, &[&obj]);
    let reply = serde_json::to_value(&obj).unwrap();
    let server = tokio::spawn(async move {
        expect(&mut api, "GET", ENTRY_PATH, StatusCode::OK, kv_entry()).await;
        let note = expect_event(&mut api, "team-a", "Warning", "PathConflict").await;
        let patch = expect(
            &mut api,
            "PATCH",
            &status_path("intruder"),
            StatusCode::OK,
            reply,
        )
        .await;
        (note, patch, api)
    });
    obj.reconcile(&ctx).await.expect("reconcile");
    let (note, patch, mut api) = server.await.unwrap();
    no_more_requests(&mut api, "an unexpected request").await;
    let c = condition(&patch["status"], "Ready");
    assert_eq!(
        (c["status"].as_str(), c["reason"].as_str()),
        (Some("False"), Some("PathConflict")),
        "{c}"
    );
    let msg = c["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("team-a/kv/")
            && msg.contains("enabled through the API")
            && msg.contains("lockbox write sys/mounts/team-a/kv/tune owner=uid-intruder"),
        "{msg}"
    );
    assert_eq!(note, msg);
    assert_eq!(
        live_mount(&ctx, "team-a/kv/").await.as_ref(),
        Some(&before),
        "the mount was changed"
    );

    // Deleted with deletionPolicy Delete: the mount stays, with its data.
    let mut deleted = obj.clone();
    deleted.status = Some(serde_json::from_value(patch["status"].clone()).unwrap());
    let server = tokio::spawn(async move {
        expect_event(&mut api, "team-a", "Normal", "MountKept").await;
        api
    });
    deleted.cleanup(&ctx).await.expect("cleanup");
    let mut api = server.await.unwrap();
    no_more_requests(&mut api, "an unexpected request").await;
    assert_eq!(live_mount(&ctx, "team-a/kv/").await.as_ref(), Some(&before));
    let data = core_call(&ctx, &root, Method::Read, "team-a/kv/db", Value::Null).await;
    assert_eq!(data.unwrap()["password"], "p");
}

/// Cleanup decides by the live owner, not by what status claims: a status
/// saying `Mounted` at a path (stale, or written by someone else) does not
/// let `deletionPolicy: Delete` disable a mount this object does not own,
/// whether the mount has no owner or another object's.
#[tokio::test]
async fn cleanup_never_disables_a_mount_it_does_not_own() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, root) = context(dir.path()).await;
    for (path, owner) in [
        ("team-a/api", None),
        ("team-a/other", Some("uid-someone-else")),
    ] {
        let mut body = json!({"type": "kv"});
        if let Some(o) = owner {
            body["owner"] = json!(o);
        }
        core_call(
            &ctx,
            &root,
            Method::Write,
            &format!("sys/mounts/{path}"),
            body,
        )
        .await;
        let name = path.replace('/', "-");
        let mut obj = kv_mount(&name, path, json!({"deletionPolicy": "Delete"}));
        obj.status = Some(
            serde_json::from_value(json!({
                "observedGeneration": 1,
                "path": format!("{path}/"),
                "accessor": "kv_00000000",
                "conditions": [{"type": "Ready", "status": "True", "reason": "Mounted",
                    "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 1}],
            }))
            .unwrap(),
        );
        let server = tokio::spawn(async move {
            expect_event(&mut api, "team-a", "Normal", "MountKept").await;
            api
        });
        obj.cleanup(&ctx).await.expect("cleanup");
        api = server.await.unwrap();
        let live = live_mount(&ctx, &format!("{path}/")).await;
        assert!(live.is_some(), "{path} was disabled");
    }
    no_more_requests(&mut api, "an unexpected request").await;
}

/// A mount kept by `deletionPolicy: Retain` keeps its deleted owner's UID:
/// a new SecretsMount at that path (a new UID) is `PathConflict`, told how
/// an administrator hands the mount over; after the hand-over (root tunes
/// the owner) the same object reconciles it as its own.
#[tokio::test]
async fn a_retained_mount_is_not_adopted_without_a_hand_over() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, root) = context(dir.path()).await;
    core_call(
        &ctx,
        &root,
        Method::Write,
        "sys/mounts/team-a/kept",
        json!({"type": "kv", "description": "old", "owner": "uid-deleted"}),
    )
    .await;
    let obj = kv_mount("newcomer", "team-a/kept", json!({"description": "new"}));
    with_store(&ctx, &[&obj]);
    let reply = serde_json::to_value(&obj).unwrap();
    let server = tokio::spawn(async move {
        expect(&mut api, "GET", ENTRY_PATH, StatusCode::OK, kv_entry()).await;
        expect_event(&mut api, "team-a", "Warning", "PathConflict").await;
        let patch = expect(
            &mut api,
            "PATCH",
            &status_path("newcomer"),
            StatusCode::OK,
            reply,
        )
        .await;
        (patch, api)
    });
    obj.reconcile(&ctx).await.expect("reconcile");
    let (patch, mut api) = server.await.unwrap();
    let msg = condition(&patch["status"], "Ready")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("a deleted SecretsMount (uid uid-deleted)")
            && msg.contains("owner=uid-newcomer"),
        "{msg}"
    );
    let live = live_mount(&ctx, "team-a/kept/").await.unwrap();
    assert_eq!(
        (live["owner"].as_str(), live["description"].as_str()),
        (Some("uid-deleted"), Some("old"))
    );

    // The hand-over: root records the new owner; the next reconcile tunes it.
    core_call(
        &ctx,
        &root,
        Method::Write,
        "sys/mounts/team-a/kept/tune",
        json!({"owner": "uid-newcomer"}),
    )
    .await;
    let reply = serde_json::to_value(&obj).unwrap();
    let server = tokio::spawn(async move {
        expect(&mut api, "GET", ENTRY_PATH, StatusCode::OK, kv_entry()).await;
        expect_event(&mut api, "team-a", "Normal", "Tuned").await;
        expect(
            &mut api,
            "PATCH",
            &status_path("newcomer"),
            StatusCode::OK,
            reply,
        )
        .await;
        api
    });
    obj.reconcile(&ctx).await.expect("reconcile");
    let mut api = server.await.unwrap();
    no_more_requests(&mut api, "an unexpected request").await;
    let live = live_mount(&ctx, "team-a/kept/").await.unwrap();
    assert_eq!(
        (live["owner"].as_str(), live["description"].as_str()),
        (Some("uid-newcomer"), Some("new"))
    );
}

/// A new mount is enabled with this object's UID as its owner; a mount an
/// older operator enabled for this object (no owner, but the object's
/// status records its path and accessor) is adopted; an ownerless mount
/// whose accessor the status does not record is not.
#[tokio::test]
async fn enable_records_the_owner_and_pre_owner_mounts_are_adopted_by_their_object_only() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, mut api, root) = context(dir.path()).await;
    let fresh = kv_mount("fresh", "team-a/fresh", json!({}));
    with_store(&ctx, &[&fresh]);
    let reply = serde_json::to_value(&fresh).unwrap();
    let server = tokio::spawn(async move {
        expect(&mut api, "GET", ENTRY_PATH, StatusCode::OK, kv_entry()).await;
        expect_event(&mut api, "team-a", "Normal", "Mounted").await;
        expect(
            &mut api,
            "PATCH",
            &status_path("fresh"),
            StatusCode::OK,
            reply,
        )
        .await;
        api
    });
    fresh.reconcile(&ctx).await.expect("reconcile");
    let mut api = server.await.unwrap();
    let live = live_mount(&ctx, "team-a/fresh/").await.unwrap();
    assert_eq!(live["owner"], "uid-fresh", "{live}");

    // Enabled by an older operator: no owner recorded.
    core_call(
        &ctx,
        &root,
        Method::Write,
        "sys/mounts/team-a/legacy",
        json!({"type": "kv"}),
    )
    .await;
    let accessor = live_mount(&ctx, "team-a/legacy/").await.unwrap()["accessor"]
        .as_str()
        .unwrap()
        .to_string();
    let with_status = |name: &str, accessor: &str| {
        let mut m = kv_mount(name, "team-a/legacy", json!({}));
        m.status = Some(
            serde_json::from_value(json!({
                "observedGeneration": 1,
                "path": "team-a/legacy/",
                "accessor": accessor,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Mounted",
                    "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 1}],
            }))
            .unwrap(),
        );
        m
    };
    // Another object whose status names a different accessor: a conflict.
    let stranger = with_status("stranger", "kv_12345678");
    with_store(&ctx, &[&stranger]);
    let reply = serde_json::to_value(&stranger).unwrap();
    let server = tokio::spawn(async move {
        expect(&mut api, "GET", ENTRY_PATH, StatusCode::OK, kv_entry()).await;
        expect_event(&mut api, "team-a", "Warning", "PathConflict").await;
        expect(
            &mut api,
            "PATCH",
            &status_path("stranger"),
            StatusCode::OK,
            reply,
        )
        .await;
        api
    });
    stranger.reconcile(&ctx).await.expect("reconcile");
    let mut api = server.await.unwrap();
    assert!(
        live_mount(&ctx, "team-a/legacy/")
            .await
            .unwrap()
            .get("owner")
            .is_none()
    );

    // Its own object: adopted.
    let own = with_status("legacy", &accessor);
    with_store(&ctx, &[&own]);
    let reply = serde_json::to_value(&own).unwrap();
    let server = tokio::spawn(async move {
        expect(&mut api, "GET", ENTRY_PATH, StatusCode::OK, kv_entry()).await;
        expect_event(&mut api, "team-a", "Normal", "Adopted").await;
        expect(
            &mut api,
            "PATCH",
            &status_path("legacy"),
            StatusCode::OK,
            reply,
        )
        .await;
        api
    });
    own.reconcile(&ctx).await.expect("reconcile");
    let mut api = server.await.unwrap();
    no_more_requests(&mut api, "an unexpected request").await;
    let live = live_mount(&ctx, "team-a/legacy/").await.unwrap();
    assert_eq!(live["owner"], "uid-legacy", "{live}");
    assert_eq!(live["accessor"], accessor.as_str());
}

mod tenant;
