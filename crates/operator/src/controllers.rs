//! The controllers of operator mode and the Lease loop that runs them
//! while this replica leads. The server crate's operator mode composes
//! them with the one server assembly:
//!
//! ```text
//!  startup: CRDs installed? → open FileBackend(--data-dir) → init (1 share;
//!           key and root token into Secrets) or unseal (key from Secret)
//!           → HTTP API (--api-address) + health (--health-address)
//!           → Lease loop ──leader──▶ controllers (catalog entries, mounts)
//!                        ◀─lost──── controllers stopped
//!  --ha:    PostgreSQL storage; the core's role replaces the Lease:
//!           Active ──▶ controllers; Standby/Sealed ──▶ stopped
//!  SIGTERM: stop controllers, release the Lease, drain HTTP, seal.
//! ```
//!
//! The unseal key and root token are written once, at initialization, to
//! Secrets `lockbox-unseal-keys` (key `unseal-key`) and `lockbox-root-token`
//! (key `token`) in `--namespace` ([`crate::bootstrap`]); their values are
//! never logged.

use crate::context::Context;
use crate::crd::{PluginCatalogEntry, SecretsMount};
use crate::crd_tenant::{AuthMount, KubernetesAuthRole, Policy};
use crate::{auth_mount, auth_role, catalog, crashloop, leader, mount, policy};
use futures_util::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use lockbox_core::core::ha::Role;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Reconcile on spec changes (generation), on deletion and on finalizer
/// changes, but not on status patches (which would loop).
fn spec_or_lifecycle<K: Resource>(obj: &K) -> Option<u64> {
    let meta = obj.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    meta.finalizers.hash(&mut h);
    Some(h.finish())
}

/// At most this many reconciles of one kind run at once: bounds memory and
/// the load on the API server when many objects change together (500 new
/// mounts), while still overlapping the waits of plugin starts.
const RECONCILE_CONCURRENCY: u16 = 16;

fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY)
}

/// Runs both controllers until the future is dropped.
async fn run_controllers(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let wc = watcher::Config::default();

    let (reader, writer) = reflector::store::<PluginCatalogEntry>();
    let entries = watcher(Api::<PluginCatalogEntry>::all(client.clone()), wc.clone())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, Default::default());
    let entry_store = reader.clone();
    let catalog_ctl = Controller::for_stream(entries, reader)
        .with_config(controller_config())
        // A Secret that env values or image pull credentials come from
        // changes: re-check (env: re-register and so reload) the entries
        // that use it.
        .watches(
            Api::<Secret>::namespaced(client.clone(), &ctx.namespace),
            wc.clone(),
            move |secret: Secret| {
                let name = secret.name_any();
                entry_store
                    .state()
                    .into_iter()
                    .filter(|e| {
                        e.spec.env.iter().flatten().any(|v| {
                            v.value_from
                                .as_ref()
                                .is_some_and(|f| f.secret_key_ref.name == name)
                        }) || e
                            .spec
                            .image
                            .as_ref()
                            .and_then(|i| i.pull_secrets.as_ref())
                            .is_some_and(|s| s.contains(&name))
                    })
                    .map(|e| ObjectRef::from_obj(e.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .run(catalog::reconcile, catalog::error_policy, ctx.clone())
        .for_each(|_| std::future::ready(()));

    let (reader, writer) = reflector::store::<SecretsMount>();
    ctx.set_mount_store(reader.clone());
    let store = reader.clone();
    let mounts = watcher(Api::<SecretsMount>::all(client.clone()), wc.clone())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, Default::default());
    let mount_ctl = Controller::for_stream(mounts, reader)
        .with_config(controller_config())
        // A catalog entry that changes (registered, deleted) re-checks the
        // mounts that use it.
        .watches(
            Api::<PluginCatalogEntry>::all(client.clone()),
            wc,
            move |entry: PluginCatalogEntry| {
                let name = entry.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|m| m.spec.plugin == name)
                    .map(|m| ObjectRef::from_obj(m.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .run(mount::reconcile, mount::error_policy, ctx.clone())
        .for_each(|_| std::future::ready(()));
    let crash_loops = crashloop::run(ctx.clone(), ctx.core.plugin_host().subscribe());
    tokio::join!(
        catalog_ctl,
        mount_ctl,
        crash_loops,
        run_tenant_controllers(ctx.clone())
    );
}

/// The controllers of the tenant kinds (Policy, KubernetesAuthRole,
/// AuthMount).
async fn run_tenant_controllers(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let wc = watcher::Config::default();
    let wc_auth = wc.clone();
    let (reader, writer) = reflector::store::<Policy>();
    let stream = watcher(Api::<Policy>::all(client.clone()), wc.clone())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, Default::default());
    let policies = Controller::for_stream(stream, reader)
        .with_config(controller_config())
        .run(policy::reconcile, policy::error_policy, ctx.clone())
        .for_each(|_| std::future::ready(()));
    let (reader, writer) = reflector::store::<KubernetesAuthRole>();
    let store = reader.clone();
    let stream = watcher(Api::<KubernetesAuthRole>::all(client.clone()), wc.clone())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, Default::default());
    let roles = Controller::for_stream(stream, reader)
        .with_config(controller_config())
        // A Policy that appears (or goes) re-checks the roles of its
        // namespace that grant it.
        .watches(Api::<Policy>::all(client), wc, move |p: Policy| {
            let (ns, name) = (p.namespace(), p.name_any());
            store
                .state()
                .into_iter()
                .filter(|r| {
                    r.namespace() == ns
                        && r.spec.token_policies.iter().flatten().any(|t| *t == name)
                })
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect::<Vec<_>>()
        })
        .run(auth_role::reconcile, auth_role::error_policy, ctx.clone())
        .for_each(|_| std::future::ready(()));
    let (reader, writer) = reflector::store::<AuthMount>();
    let stream = watcher(Api::<AuthMount>::all(ctx.client.clone()), wc_auth)
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, Default::default());
    let auth_mounts = Controller::for_stream(stream, reader)
        .with_config(controller_config())
        .run(auth_mount::reconcile, auth_mount::error_policy, ctx)
        .for_each(|_| std::future::ready(()));
    tokio::join!(policies, roles, auth_mounts);
}

/// How a replica learns whether it leads.
pub enum Election {
    /// Single-replica mode: the Lease `lockbox-operator` in this namespace,
    /// held as this identity.
    Lease {
        /// The Leases of the operator's namespace.
        api: Box<Api<Lease>>,
        /// This replica's holder identity.
        identity: String,
    },
    /// HA mode: the core's role; the active node leads ([`leader::leads`]).
    CoreRole(tokio::sync::watch::Receiver<Role>),
}

/// Runs the controllers while this replica leads (stopping them when it
/// stops leading), until `shutdown` completes; then stops them and, with a
/// Lease, releases it.
pub async fn lead(ctx: Arc<Context>, election: Election, shutdown: impl Future<Output = ()>) {
    let (leader_tx, mut leader_rx) = tokio::sync::watch::channel(false);
    let (task, lease, identity) = match election {
        Election::Lease { api, identity } => (
            tokio::spawn(leader::run(*api.clone(), identity.clone(), leader_tx)),
            Some(api),
            identity,
        ),
        Election::CoreRole(role) => (
            tokio::spawn(leader::follow_role(role, leader_tx)),
            None,
            "HA active node".to_string(),
        ),
    };
    let mut controllers: Option<tokio::task::JoinHandle<()>> = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            changed = leader_rx.changed() => {
                if changed.is_err() { break; }
                let leading = *leader_rx.borrow_and_update();
                ctx.metrics.set_leader(leading);
                match (leading, controllers.is_some()) {
                    (true, false) => {
                        tracing::info!(%identity, "became leader: starting controllers");
                        controllers = Some(tokio::spawn(run_controllers(ctx.clone())));
                    }
                    (false, true) => {
                        tracing::warn!(%identity, "lost leadership: stopping controllers");
                        if let Some(h) = controllers.take() { h.abort(); }
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(h) = controllers.take() {
        h.abort();
    }
    task.abort();
    if let Some(api) = lease {
        leader::release(&api, &identity).await;
    }
}
