//! Reconciling a [`KubernetesAuthRole`] into a role of lockbox's shared
//! Kubernetes auth mount (`auth/<--kubernetes-auth-path>/role/<ns>.<name>`).
//!
//! Apply: validate ([`validate_auth_role`]: ServiceAccounts of its own
//! namespace only, `bound_service_account_namespaces` forced to it) →
//! every `tokenPolicies` entry must be a Policy object of the namespace
//! (mapped to `<namespace>.<name>`) → `PolicyMissing` otherwise, nothing
//! written, re-checked when a Policy changes (a reference to an object that
//! may still appear, as in one GitOps sync: kstatus `InProgress`, not
//! `Failed`) → the auth mount must exist (`AuthMountMissing`, re-checked) →
//! read the role and write it when a managed field differs (drift is
//! corrected on every resync) → `Ready`, reason `Written`.
//!
//! The role's fields are the upstream plugin's (Vault's
//! `auth/kubernetes/role/:name`); the write goes through the core's request
//! pipeline with the root token (`Admin::write_mount_path`), the plugin's
//! own API being JSON.
//!
//! Cleanup (the finalizer): `deletionPolicy: Delete` deletes the role;
//! `Retain` (the default) keeps it.

use super::context::{Context, Error};
use super::crd::{DeletionPolicy, REASON_INVALID_SPEC};
use super::crd_tenant::{KubernetesAuthRole, KubernetesAuthRoleStatus, Policy};
use super::policy::REASON_DRIFT_CORRECTED;
use super::tenant::{self, TenantKind, namespace, patch_status, ready};
use super::validate::tenant::{ValidRole, tenant_name, validate_auth_role};
use super::validate::{SpecError, message};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use lockbox_core::core::mounts::Table;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Finalizer on KubernetesAuthRoles.
pub const FINALIZER: &str = "lockbox.dev/kubernetes-auth-role";
/// Kind label in metrics.
pub const KIND: &str = "KubernetesAuthRole";
/// Reason (Ready=True): the role is written as the spec says.
pub const REASON_WRITTEN: &str = "Written";
/// Reason: lockbox has no auth method at the Kubernetes auth path.
pub const REASON_AUTH_MOUNT_MISSING: &str = "AuthMountMissing";
/// Reason: a `tokenPolicies` entry names no Policy of the namespace (yet).
pub const REASON_POLICY_MISSING: &str = "PolicyMissing";

const RECHECK: Duration = Duration::from_secs(15);

impl TenantKind for KubernetesAuthRole {
    const KIND: &'static str = KIND;
    const FINALIZER: &'static str = FINALIZER;
}

/// `auth/<path>/` of the shared Kubernetes auth mount.
fn mount_of(ctx: &Context) -> String {
    format!("auth/{}/", ctx.kubernetes_auth_path.trim_matches('/'))
}

/// Whether the live role `live` has every field of `want` (lists compared
/// as sets: the plugin may reorder them).
fn role_matches(live: &Map<String, Value>, want: &Map<String, Value>) -> bool {
    let sorted = |v: &Value| -> Value {
        match v {
            Value::Array(a) => {
                let mut items: Vec<String> = a.iter().map(Value::to_string).collect();
                items.sort();
                items.dedup();
                Value::from(items)
            }
            other => other.clone(),
        }
    };
    want.iter().all(|(k, v)| {
        let l = live.get(k).cloned().unwrap_or(Value::Null);
        // An empty string and an empty list are how the plugin reports
        // "unset" for list and string fields.
        let l = match (&l, v) {
            (Value::Null, Value::Array(_)) => Value::Array(vec![]),
            (Value::Null, Value::String(_)) => Value::String(String::new()),
            _ => l,
        };
        sorted(&l) == sorted(v)
    })
}

impl KubernetesAuthRole {
    /// Writes the role when lockbox's differs (see the module docs).
    pub async fn reconcile(&self, ctx: &Context) -> Result<Action, Error> {
        let ns = namespace(self)?;
        let name = self.name_any();
        let mount = mount_of(ctx);
        let want = match validate_auth_role(&ns, &name, &self.spec) {
            Ok(v) => v,
            Err(errs) => return self.invalid(ctx, &mount, &errs).await,
        };
        let missing = self.missing_policies(ctx, &ns, &want).await?;
        if !missing.is_empty() {
            let msg = message(&missing);
            ctx.metrics.failed(KIND, REASON_POLICY_MISSING);
            tracing::info!(role = %tenant::key(self), "waiting for policies: {msg}");
            self.report(ctx, &mount, false, REASON_POLICY_MISSING, msg)
                .await?;
            // The controller also watches Policies: one created later makes
            // the role valid at once; this is the fallback.
            return Ok(Action::requeue(RECHECK * 4));
        }
        let auth = ctx
            .admin()
            .mounts(Table::Auth)
            .await
            .map_err(Error::core("ListAuthMounts"))?;
        if !auth.iter().any(|m| m.path == mount) {
            let msg = format!(
                "lockbox has no auth method at {mount}: a lockbox administrator enables the \
                 Kubernetes auth method there (or the operator is configured with another \
                 --kubernetes-auth-path)"
            );
            ctx.metrics.failed(KIND, REASON_AUTH_MOUNT_MISSING);
            self.report(ctx, &mount, false, REASON_AUTH_MOUNT_MISSING, msg)
                .await?;
            return Ok(Action::requeue(RECHECK));
        }
        let path = format!("{mount}role/{}", want.role);
        let live = ctx
            .admin()
            .read_mount_path(&path)
            .await
            .map_err(Error::core("ReadRole"))?;
        if !live.as_ref().is_some_and(|l| role_matches(l, &want.data)) {
            ctx.admin()
                .write_mount_path(&path, want.data.clone())
                .await
                .map_err(Error::core("WriteRole"))?;
            let (reason, note) = match (&live, self.status.as_ref().and_then(|s| s.role.as_ref())) {
                (None, None) => (
                    REASON_WRITTEN,
                    format!("wrote role {} of {mount}", want.role),
                ),
                (None, Some(_)) => (
                    REASON_DRIFT_CORRECTED,
                    format!("role {path} was missing in lockbox; wrote it again"),
                ),
                (Some(_), _) => (
                    REASON_DRIFT_CORRECTED,
                    format!("role {path} differed from the spec; wrote it"),
                ),
            };
            tracing::info!(role = %path, "{note}");
            ctx.event(&self.object_ref(&()), EventType::Normal, reason, note)
                .await;
        }
        let msg = format!("role {} written to {mount}", want.role);
        self.report(ctx, &mount, true, REASON_WRITTEN, msg).await?;
        Ok(Action::requeue(ctx.resync))
    }

    /// The `tokenPolicies` entries that are not Policy objects of `ns`.
    async fn missing_policies(
        &self,
        ctx: &Context,
        ns: &str,
        want: &ValidRole,
    ) -> Result<Vec<SpecError>, Error> {
        let api: Api<Policy> = Api::namespaced(ctx.client.clone(), ns);
        let mut errs = Vec::new();
        for (i, p) in want.policy_refs.iter().enumerate() {
            let found = api.get_opt(p).await.map_err(Error::kube("GetPolicy"))?;
            if found.is_none() {
                errs.push(SpecError {
                    field: format!("spec.tokenPolicies[{i}]"),
                    message: format!(
                        "{p:?} is not a Policy in namespace {ns}: a role may grant only the \
                         Policies of its own namespace (create Policy {p} in {ns}, or remove \
                         the entry)"
                    ),
                });
            }
        }
        Ok(errs)
    }

    async fn invalid(
        &self,
        ctx: &Context,
        mount: &str,
        errs: &[SpecError],
    ) -> Result<Action, Error> {
        ctx.metrics.failed(KIND, REASON_INVALID_SPEC);
        let msg = message(errs);
        tracing::info!(role = %tenant::key(self), "invalid spec: {msg}");
        self.report(ctx, mount, false, REASON_INVALID_SPEC, msg)
            .await?;
        Ok(Action::await_change())
    }

    /// Deletes the role with `deletionPolicy: Delete`.
    pub async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        let role = tenant_name(&namespace(self)?, &self.name_any());
        let mount = self
            .status
            .as_ref()
            .and_then(|s| s.mount.clone())
            .unwrap_or_else(|| mount_of(ctx));
        if self.spec.deletion_policy.unwrap_or_default() == DeletionPolicy::Delete {
            let path = format!("{mount}role/{role}");
            ctx.admin()
                .delete_mount_path(&path)
                .await
                .map_err(Error::core("DeleteRole"))?;
            tracing::info!(role = %path, "role deleted (deletionPolicy Delete)");
            ctx.event(
                &self.object_ref(&()),
                EventType::Normal,
                "Deleted",
                format!("deleted role {path} (deletionPolicy Delete)"),
            )
            .await;
        } else {
            tracing::info!(role = %role, "KubernetesAuthRole deleted; lockbox role retained");
        }
        Ok(Action::await_change())
    }

    async fn report(
        &self,
        ctx: &Context,
        mount: &str,
        ok: bool,
        reason: &str,
        msg: String,
    ) -> Result<(), Error> {
        let ns = namespace(self)?;
        let generation = self.metadata.generation;
        let previous = self.status.as_ref();
        let status = KubernetesAuthRoleStatus {
            observed_generation: generation,
            conditions: ready(
                previous.and_then(|s| s.conditions.as_deref()),
                ok,
                reason,
                &msg,
                generation,
            ),
            role: Some(tenant_name(&ns, &self.name_any())),
            mount: Some(mount.to_string()),
            message: Some(msg),
        };
        patch_status(
            ctx,
            self,
            previous,
            &status,
            "PatchKubernetesAuthRoleStatus",
        )
        .await
    }
}

/// Controller entry point: the finalizer around apply/cleanup.
pub async fn reconcile(obj: Arc<KubernetesAuthRole>, ctx: Arc<Context>) -> Result<Action, Error> {
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
pub fn error_policy(obj: Arc<KubernetesAuthRole>, err: &Error, ctx: Arc<Context>) -> Action {
    tenant::error_policy(obj, err, ctx)
}

#[cfg(test)]
mod tests {
    use super::role_matches;
    use serde_json::json;

    #[test]
    fn roles_match_field_by_field_with_lists_as_sets() {
        let want = json!({"a": ["x", "y"], "b": "", "c": 0});
        let want = want.as_object().unwrap();
        let live = json!({"a": ["y", "x"], "c": 0, "extra": true});
        assert!(role_matches(live.as_object().unwrap(), want));
        let live = json!({"a": ["x"], "b": "", "c": 0});
        assert!(!role_matches(live.as_object().unwrap(), want));
        let live = json!({"a": ["x", "y"], "b": "aud", "c": 0});
        assert!(!role_matches(live.as_object().unwrap(), want));
        let live = json!({"a": ["x", "y"], "b": "", "c": 60});
        assert!(!role_matches(live.as_object().unwrap(), want));
    }
}
