//! What the controllers of the namespaced tenant kinds ([`crate::policy`],
//! [`crate::auth_role`]) share: the finalizer around apply/cleanup with
//! metrics, the retry policy, and `Ready` status reports.

use super::conditions;
use super::context::{Context, Error, apply_status};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;

/// A namespaced kind with a status of its own.
pub(crate) trait TenantKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The kind (metrics, logs).
    const KIND: &'static str;
    /// The finalizer it carries.
    const FINALIZER: &'static str;
}

/// `Kind/namespace/name`, the key of the retry backoff.
pub(crate) fn key<K: TenantKind>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::KIND,
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// The object's namespace (always set on a namespaced object).
pub(crate) fn namespace<K: TenantKind>(obj: &K) -> Result<String, Error> {
    obj.namespace()
        .ok_or(Error::MissingField("metadata.namespace"))
}

/// Runs `apply` or (on deletion) `cleanup` inside the finalizer, counting
/// the reconcile.
pub(crate) async fn finalize<K, A, C, FA, FC>(
    obj: Arc<K>,
    ctx: &Context,
    apply: A,
    cleanup: C,
) -> Result<Action, Error>
where
    K: TenantKind,
    A: FnOnce(Arc<K>) -> FA,
    C: FnOnce(Arc<K>) -> FC,
    FA: Future<Output = Result<Action, Error>>,
    FC: Future<Output = Result<Action, Error>>,
{
    let start = std::time::Instant::now();
    let ns = namespace(obj.as_ref())?;
    let key = key(obj.as_ref());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let result = kube::runtime::finalizer(&api, K::FINALIZER, obj, |event| async move {
        match event {
            kube::runtime::finalizer::Event::Apply(o) => apply(o).await,
            kube::runtime::finalizer::Event::Cleanup(o) => cleanup(o).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(K::KIND, start.elapsed());
    if result.is_ok() {
        ctx.succeeded(&key);
    }
    result
}

/// Retry policy: transient failures back off per object (5 s doubling).
pub(crate) fn error_policy<K: TenantKind>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = key(obj.as_ref());
    ctx.metrics.failed(K::KIND, err.reason());
    let delay = ctx.backoff(&key);
    tracing::warn!(object = %key, reason = err.reason(), ?delay, "reconcile failed: {err}");
    Action::requeue(delay)
}

/// The conditions for a report (kstatus, see [`super::conditions`]):
/// `Ready=True`, or `Ready=False` with `Stalled` (InvalidSpec: Failed) or
/// `Reconciling` (InProgress); `lastTransitionTime` kept from `previous`
/// when a status does not flip.
pub(crate) fn ready(
    previous: Option<&[Condition]>,
    ok: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Option<Vec<Condition>> {
    Some(if ok {
        conditions::ready(previous, reason, message, generation)
    } else {
        conditions::not_ready(previous, reason, message, generation)
    })
}

/// Server-side applies `status` unless it equals `current`.
pub(crate) async fn patch_status<K: TenantKind, S: Serialize + PartialEq>(
    ctx: &Context,
    obj: &K,
    current: Option<&S>,
    status: &S,
    op: &'static str,
) -> Result<(), Error> {
    if current == Some(status) {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace(obj)?);
    apply_status(&api, &obj.name_any(), status, op).await
}
