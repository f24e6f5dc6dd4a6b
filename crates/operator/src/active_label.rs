//! The active-pod label of HA mode, like Vault's Kubernetes service
//! registration: each replica keeps the label [`ACTIVE_LABEL`] on its own
//! Pod (`POD_NAME` in `POD_NAMESPACE`) equal to whether it is the active
//! node: `"false"` at start, `"true"` on promotion, `"false"` again on
//! demotion or seal. The chart's `<release>-active` Service selects
//! `lockbox.dev/active: "true"`, so it reaches only the active node.
//!
//! The only call is a JSON merge patch of `metadata.labels` on that one Pod
//! (RBAC: `patch` on `pods`, limited by `resourceNames` to the
//! StatefulSet's pod names). A failed patch is retried every [`RETRY`]
//! until it lands or the role changes again.

use crate::leader::leads;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use lockbox_core::core::ha::Role;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::watch;

/// The label on the active replica's Pod.
pub const ACTIVE_LABEL: &str = "lockbox.dev/active";
/// Delay before a failed patch is tried again.
pub const RETRY: Duration = Duration::from_secs(2);

/// The merge patch that sets [`ACTIVE_LABEL`] to `"true"` or `"false"`.
pub fn label_patch(active: bool) -> Value {
    json!({"metadata": {"labels": {ACTIVE_LABEL: if active { "true" } else { "false" }}}})
}

/// Sets the label on Pod `name` once.
pub async fn set(pods: &Api<Pod>, name: &str, active: bool) -> Result<(), kube::Error> {
    pods.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(label_patch(active)),
    )
    .await
    .map(|_| ())
}

/// Keeps the label of Pod `name` equal to [`leads`] of the core's role
/// until the core is gone.
pub async fn run(pods: Api<Pod>, name: String, mut role: watch::Receiver<Role>) {
    let mut applied: Option<bool> = None;
    loop {
        let want = leads(*role.borrow_and_update());
        if applied != Some(want) {
            match set(&pods, &name, want).await {
                Ok(()) => {
                    tracing::info!(pod = %name, active = want, "set label {ACTIVE_LABEL}");
                    applied = Some(want);
                }
                Err(e) => {
                    tracing::warn!(
                        pod = %name,
                        "cannot set label {ACTIVE_LABEL}={want} on this pod: {e}; the \
                         active Service may point at the wrong pod until it succeeds (retrying \
                         in {}s)",
                        RETRY.as_secs()
                    );
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => continue,
                        changed = role.changed() => {
                            if changed.is_err() { return; }
                            continue;
                        }
                    }
                }
            }
        }
        if role.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::Client;
    use kube::client::Body;
    use tower_test::mock;

    #[test]
    fn the_patch_sets_only_the_label() {
        assert_eq!(
            label_patch(true),
            json!({"metadata": {"labels": {"lockbox.dev/active": "true"}}})
        );
        assert_eq!(
            label_patch(false),
            json!({"metadata": {"labels": {"lockbox.dev/active": "false"}}})
        );
    }

    /// Serves one request: it must be a merge patch of the Pod setting the
    /// label to `want`; answers `status`.
    async fn serve_patch(
        handle: &mut mock::Handle<Request<Body>, Response<Body>>,
        want: bool,
        status: u16,
    ) {
        let (req, send) = tokio::time::timeout(Duration::from_secs(10), handle.next_request())
            .await
            .expect("a request in time")
            .expect("a request");
        assert_eq!(req.method(), http::Method::PATCH);
        assert_eq!(
            req.uri().path(),
            "/api/v1/namespaces/lockbox-system/pods/lockbox-1"
        );
        assert_eq!(
            req.headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/merge-patch+json")
        );
        let body = req.into_body().collect_bytes().await.expect("body");
        let body: Value = serde_json::from_slice(&body).expect("JSON body");
        assert_eq!(body, label_patch(want));
        let answer = if status == 200 {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lockbox-1",
                "namespace": "lockbox-system", "labels": {ACTIVE_LABEL: want.to_string()}}})
        } else {
            json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                "reason": "InternalError", "message": "etcd down", "code": status})
        };
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                .expect("response"),
        );
    }

    #[tokio::test]
    async fn the_label_follows_the_role_and_a_failed_patch_is_retried() {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let pods: Api<Pod> = Api::namespaced(Client::new(service, "default"), "lockbox-system");
        let (role_tx, role_rx) = watch::channel(Role::Sealed);
        let task = tokio::spawn(run(pods, "lockbox-1".into(), role_rx));
        serve_patch(&mut handle, false, 200).await;
        // Standby is not active: no request (the next one must be "true").
        role_tx.send_replace(Role::Standby);
        role_tx.send_replace(Role::Active);
        serve_patch(&mut handle, true, 500).await;
        serve_patch(&mut handle, true, 200).await;
        role_tx.send_replace(Role::Sealed);
        serve_patch(&mut handle, false, 200).await;
        drop(role_tx);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("run ends when the core is gone")
            .expect("no panic");
    }
}
