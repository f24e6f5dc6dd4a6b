//! Reconciling a [`Policy`] into lockbox's ACL policies.
//!
//! Apply: validate ([`validate_policy`]: exactly one of `hcl`/`rules`,
//! parsed by the core's own parser, every path within the namespace's
//! prefixes) → `InvalidSpec` naming each outside path, and nothing written;
//! otherwise read the policy `<namespace>.<name>` and write it when its text
//! differs (created, changed, or edited through the API: drift is corrected
//! on every resync) → `Ready`, reason `Written`.
//!
//! Cleanup (the finalizer): `deletionPolicy: Delete` deletes the policy
//! (a missing one is fine); `Retain` (the default) keeps it.
//!
//! Names: the policy name is derived from namespace and name, so a tenant
//! can only ever write policies named `<its namespace>.*` (see
//! [`crate::validate::tenant`]).

use super::context::{Context, Error};
use super::crd::{DeletionPolicy, REASON_INVALID_SPEC};
use super::crd_tenant::{Policy, PolicyStatus};
use super::tenant::{self, TenantKind, namespace, patch_status, ready};
use super::validate::message;
use super::validate::tenant::{tenant_name, validate_policy};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use std::sync::Arc;

/// Finalizer on Policies.
pub const FINALIZER: &str = "lockbox.dev/policy";
/// Kind label in metrics.
pub const KIND: &str = "Policy";
/// Reason (Ready=True): the policy is written as the spec says.
pub const REASON_WRITTEN: &str = "Written";
/// Event reason: lockbox's copy had been changed or removed behind the
/// operator's back and was written back.
pub const REASON_DRIFT_CORRECTED: &str = "DriftCorrected";

impl TenantKind for Policy {
    const KIND: &'static str = KIND;
    const FINALIZER: &'static str = FINALIZER;
}

impl Policy {
    /// Writes the policy when lockbox's text differs (see the module docs).
    pub async fn reconcile(&self, ctx: &Context) -> Result<Action, Error> {
        let ns = namespace(self)?;
        let name = self.name_any();
        let want = match validate_policy(
            &ns,
            &name,
            &self.spec,
            ctx.prefixes_for(&ns),
            &ctx.kubernetes_auth_path,
        ) {
            Ok(v) => v,
            Err(errs) => {
                ctx.metrics.failed(KIND, REASON_INVALID_SPEC);
                let msg = message(&errs);
                tracing::info!(policy = %format!("{ns}/{name}"), "invalid spec: {msg}");
                self.report(ctx, false, REASON_INVALID_SPEC, msg).await?;
                return Ok(Action::await_change());
            }
        };
        let live = ctx
            .admin()
            .policy(&want.name)
            .await
            .map_err(Error::core("ReadPolicy"))?;
        if live.as_deref() != Some(want.text.as_str()) {
            ctx.admin()
                .put_policy(&want.name, &want.text)
                .await
                .map_err(Error::core("WritePolicy"))?;
            let written_before = self.status.as_ref().and_then(|s| s.lockbox_name.as_ref());
            let (reason, note) = match (&live, written_before) {
                (None, None) => (REASON_WRITTEN, format!("wrote policy {}", want.name)),
                (None, Some(_)) => (
                    REASON_DRIFT_CORRECTED,
                    format!(
                        "policy {} was missing in lockbox; wrote it again",
                        want.name
                    ),
                ),
                (Some(_), _) if self.status_is_current() => (
                    REASON_DRIFT_CORRECTED,
                    format!(
                        "policy {} was changed in lockbox; wrote it back as the spec says",
                        want.name
                    ),
                ),
                (Some(_), _) => (REASON_WRITTEN, format!("updated policy {}", want.name)),
            };
            tracing::info!(policy = %want.name, "{note}");
            ctx.event(&self.object_ref(&()), EventType::Normal, reason, note)
                .await;
        }
        self.report(
            ctx,
            true,
            REASON_WRITTEN,
            format!("policy {} written", want.name),
        )
        .await?;
        Ok(Action::requeue(ctx.resync))
    }

    /// Whether the status reports this generation written (so a difference
    /// in lockbox is drift, not a spec change).
    fn status_is_current(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.observed_generation == self.metadata.generation
                && super::conditions::reason_of(s.conditions.as_deref(), "Ready")
                    == Some(REASON_WRITTEN)
        })
    }

    /// Deletes the policy with `deletionPolicy: Delete`.
    pub async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        let name = tenant_name(&namespace(self)?, &self.name_any());
        if self.spec.deletion_policy.unwrap_or_default() == DeletionPolicy::Delete {
            ctx.admin()
                .delete_policy(&name)
                .await
                .map_err(Error::core("DeletePolicy"))?;
            tracing::info!(policy = %name, "policy deleted (deletionPolicy Delete)");
            ctx.event(
                &self.object_ref(&()),
                EventType::Normal,
                "Deleted",
                format!("deleted policy {name} (deletionPolicy Delete)"),
            )
            .await;
        } else {
            tracing::info!(policy = %name, "Policy deleted; lockbox policy retained");
        }
        Ok(Action::await_change())
    }

    async fn report(
        &self,
        ctx: &Context,
        ok: bool,
        reason: &str,
        msg: String,
    ) -> Result<(), Error> {
        let ns = namespace(self)?;
        let generation = self.metadata.generation;
        let previous = self.status.as_ref();
        let status = PolicyStatus {
            observed_generation: generation,
            conditions: ready(
                previous.and_then(|s| s.conditions.as_deref()),
                ok,
                reason,
                &msg,
                generation,
            ),
            lockbox_name: if ok {
                Some(tenant_name(&ns, &self.name_any()))
            } else {
                previous.and_then(|s| s.lockbox_name.clone())
            },
            message: Some(msg),
        };
        patch_status(ctx, self, previous, &status, "PatchPolicyStatus").await
    }
}

/// Controller entry point: the finalizer around apply/cleanup.
pub async fn reconcile(obj: Arc<Policy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let c: &Context = &ctx;
    tenant::finalize(
        obj,
        c,
        move |o| async move { o.reconcile(c).await },
        move |o| async move { o.cleanup(c).await },
    )
    .await
}

/// Retry policy: transient failures back off per object.
pub fn error_policy(obj: Arc<Policy>, err: &Error, ctx: Arc<Context>) -> Action {
    tenant::error_policy(obj, err, ctx)
}
