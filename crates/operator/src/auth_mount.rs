//! Reconciling an [`AuthMount`] into lockbox's auth method table
//! (`sys/auth`): the SecretsMount reconciler of [`crate::mount`], run as
//! [`Flavor::Auth`] (see [`crate::mount_flavor`]). Everything
//! [`crate::mount`] says holds: validation with the namespace's prefix rule
//! (the path is below `auth/`: default `auth/<namespace>/<name>`),
//! `PathConflict` for an older AuthMount's path or an auth method this
//! object did not create (the owner is the object's UID), enable / tune /
//! remount / pin only what it owns, drift corrected on resync, and
//! `deletionPolicy: Delete` disabling only its own method. An AuthMount
//! also never takes the token store or the shared Kubernetes auth mount
//! ([`crate::validate::tenant::validate_auth_mount`]).

use super::context::{Context, Error};
use super::crd_tenant::AuthMount;
use super::mount_flavor::{Flavor, MountReconcile, as_secrets_mount};
use super::tenant::{self, TenantKind};
use kube::runtime::controller::Action;
use std::sync::Arc;

/// Finalizer on AuthMounts.
pub const FINALIZER: &str = "lockbox.dev/auth-mount";
/// Kind label in metrics.
pub const KIND: &str = "AuthMount";

impl TenantKind for AuthMount {
    const KIND: &'static str = KIND;
    const FINALIZER: &'static str = FINALIZER;
}

impl AuthMount {
    /// Enables, tunes or reloads the auth method (see the module docs).
    pub async fn reconcile(&self, ctx: &Context) -> Result<Action, Error> {
        let m = as_secrets_mount(self);
        MountReconcile::new(&m, Flavor::Auth).reconcile(ctx).await
    }

    /// Disables the auth method when `deletionPolicy: Delete` and this
    /// object owns it.
    pub async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        let m = as_secrets_mount(self);
        MountReconcile::new(&m, Flavor::Auth).cleanup(ctx).await
    }
}

/// Controller entry point: the finalizer around apply/cleanup.
pub async fn reconcile(obj: Arc<AuthMount>, ctx: Arc<Context>) -> Result<Action, Error> {
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
pub fn error_policy(obj: Arc<AuthMount>, err: &Error, ctx: Arc<Context>) -> Action {
    tenant::error_policy(obj, err, ctx)
}
