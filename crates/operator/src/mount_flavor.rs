//! The SecretsMount reconciler ([`crate::mount`]) serves two kinds: a
//! [`SecretsMount`] (secrets engines, `sys/mounts`) and an [`AuthMount`]
//! (auth methods, `sys/auth`), reconciled as a SecretsMount of the same
//! metadata, spec fields and status. What differs is here: the mount table,
//! the kind's name in messages and events, its validation (an AuthMount
//! also stays off the shared auth mounts), where its status is written and
//! where the other objects of the kind (path conflicts) come from.

use super::context::{Context, Error, apply_status};
use super::crd::{SecretsMount, SecretsMountSpec, SecretsMountStatus};
use super::crd_tenant::AuthMount;
use super::validate::tenant::validate_auth_mount_spec;
use super::validate::{SpecError, ValidMount, validate_mount};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ListParams};
use kube::{Resource, ResourceExt};
use lockbox_core::core::admin::MountInfo;
use lockbox_core::core::mounts::Table;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Which kind a mount reconcile serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// A SecretsMount: a secrets engine.
    Secrets,
    /// An AuthMount: an auth method below `auth/`.
    Auth,
}

impl Flavor {
    /// The core's mount table.
    pub fn table(self) -> Table {
        match self {
            Flavor::Secrets => Table::Mounts,
            Flavor::Auth => Table::Auth,
        }
    }

    /// The kind's name.
    pub fn kind(self) -> &'static str {
        match self {
            Flavor::Secrets => "SecretsMount",
            Flavor::Auth => "AuthMount",
        }
    }

    /// The routing path of mount `path` (`auth/` added for auth methods).
    pub fn routing(self, path: &str) -> String {
        match self {
            Flavor::Secrets => path.to_string(),
            Flavor::Auth => format!("auth/{path}"),
        }
    }

    /// The admin path of mount `path` (`sys/mounts/PATH`, `sys/auth/PATH`),
    /// for hand-over hints.
    pub fn admin_path(self, path: &str) -> String {
        let table = match self {
            Flavor::Secrets => "mounts",
            Flavor::Auth => "auth",
        };
        format!("sys/{table}/{}", path.trim_end_matches('/'))
    }

    /// The spec validated by the kind's rules.
    pub fn validate(
        self,
        ctx: &Context,
        namespace: &str,
        name: &str,
        spec: &SecretsMountSpec,
    ) -> Result<ValidMount, Vec<SpecError>> {
        let prefixes = ctx.prefixes_for(namespace);
        match self {
            Flavor::Secrets => validate_mount(namespace, name, spec, prefixes),
            Flavor::Auth => {
                validate_auth_mount_spec(namespace, name, spec, prefixes, &ctx.kubernetes_auth_path)
            }
        }
    }

    /// Server-side applies `status` to the object of the kind.
    pub async fn patch_status(
        self,
        ctx: &Context,
        obj: &SecretsMount,
        status: &SecretsMountStatus,
    ) -> Result<(), Error> {
        let ns = obj
            .namespace()
            .ok_or(Error::MissingField("metadata.namespace"))?;
        let name = obj.name_any();
        match self {
            Flavor::Secrets => {
                let api: Api<SecretsMount> = Api::namespaced(ctx.client.clone(), &ns);
                apply_status(&api, &name, status, "PatchSecretsMountStatus").await
            }
            Flavor::Auth => {
                let api: Api<AuthMount> = Api::namespaced(ctx.client.clone(), &ns);
                apply_status(&api, &name, status, "PatchAuthMountStatus").await
            }
        }
    }
}

/// An AuthMount as the SecretsMount reconciler holds it: the same
/// metadata, spec fields and status.
pub fn as_secrets_mount(auth: &AuthMount) -> SecretsMount {
    let mut m = SecretsMount::new(&auth.name_any(), (&auth.spec).into());
    m.metadata = auth.metadata.clone();
    m.status = auth.status.clone();
    m
}

/// One reconcile of a mount object of either kind; derefs to the object
/// (as a SecretsMount).
pub struct MountReconcile<'a> {
    obj: &'a SecretsMount,
    /// The kind.
    pub flavor: Flavor,
}

impl std::ops::Deref for MountReconcile<'_> {
    type Target = SecretsMount;
    fn deref(&self) -> &SecretsMount {
        self.obj
    }
}

impl<'a> MountReconcile<'a> {
    /// A reconcile of `obj` as a `flavor`.
    pub fn new(obj: &'a SecretsMount, flavor: Flavor) -> Self {
        Self { obj, flavor }
    }

    pub(crate) fn namespace_or_err(&self) -> Result<String, Error> {
        self.obj
            .namespace()
            .ok_or(Error::MissingField("metadata.namespace"))
    }

    /// The object reference of events (with the real kind).
    pub(crate) fn reference(&self) -> ObjectReference {
        ObjectReference {
            kind: Some(self.flavor.kind().into()),
            ..self.obj.object_ref(&())
        }
    }

    /// The core's mounts of the kind's table, keyed by path relative to the
    /// table (`team-a/kv/`; `team-a/oidc/` for `auth/team-a/oidc/`).
    pub(crate) async fn mounts(&self, ctx: &Context) -> Result<BTreeMap<String, MountInfo>, Error> {
        match self.flavor {
            Flavor::Secrets => ctx.mounts().await,
            Flavor::Auth => {
                let mounts = ctx
                    .admin()
                    .mounts(Table::Auth)
                    .await
                    .map_err(Error::core("ListAuthMounts"))?;
                Ok(mounts
                    .into_iter()
                    .map(|m| (m.display_path().to_string(), m))
                    .collect())
            }
        }
    }

    /// Every object of the kind (for path conflicts and owner names).
    pub(crate) async fn holders(&self, ctx: &Context) -> Result<Vec<Arc<SecretsMount>>, Error> {
        match self.flavor {
            Flavor::Secrets => ctx.all_mounts().await,
            Flavor::Auth => {
                let api: Api<AuthMount> = Api::all(ctx.client.clone());
                let list = api
                    .list(&ListParams::default())
                    .await
                    .map_err(Error::kube("ListAuthMounts"))?;
                Ok(list
                    .items
                    .iter()
                    .map(|a| Arc::new(as_secrets_mount(a)))
                    .collect())
            }
        }
    }
}
