//! High availability: a core's part in a cluster of nodes over shared
//! storage. This module owns the node's role (sealed, standby, active),
//! the standby's barrier, promotion and demotion, and the HA endpoints'
//! answers (`sys/leader`, `sys/ha-status`, the standby codes of
//! `sys/health`).
//!
//! ```text
//!   unseal ──HA?──▶ Standby (barrier open; reads of engines whose reads change nothing
//!                     │      served from storage, everything else forwarded by the listener)
//!                     │ promote (the server's leadership loop holds the lock)
//!                     ▼
//!                   Active (mount table, plugins, leases, audit: `Core::activate`)
//!                     │ demote (lock lost, write fenced, step-down)
//!                     ▼
//!                   Standby
//! ```
//!
//! Who leads is decided outside the core: the server runs the loop over
//! the storage's lock ([`Cluster`]) and calls [`Core::promote`] and
//! [`Core::demote`]. The core only refuses to serve as a standby
//! ([`RequestError::Standby`]) and reports what the cluster says.
//!
//! # Reads on a standby
//!
//! A standby answers a read itself ([`Core::handle_on_standby`]) when the
//! request can be served without writing anything: a read or list of an
//! engine whose reads change nothing (kv version 1), with a token without
//! a use limit. It runs the active node's pipeline (token, ACL, audit) on a
//! *read view*: the mount tables, policies and audit devices read from
//! storage, kept until the storage announces a change under
//! [`CACHED_PREFIXES`] ([`Core::storage_changed`]: PostgreSQL's
//! `LISTEN/NOTIFY`, fed by the server), and only while the server trusts
//! that feed ([`Core::set_change_feed`]: it hears the active's heartbeats
//! on it). Values and tokens are read from
//! storage on every request, never cached, so a value or a revocation the
//! active node acknowledged is seen at once; a mount, policy or audit
//! change is seen once its notification arrives (milliseconds). Anything
//! else, and any path the view does not know, is `RequestError::Standby`:
//! forwarded.

use super::{Active, ApiRequest, Method, Reply};
use super::{Core, CoreError, stop_engines};
use crate::barrier::Barrier;
use crate::logical::RequestError;
use crate::runtime::{Cluster, LeaderInfo, MemberInfo};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use tokio::sync::watch;

/// The storage keys a standby's read view is built from (mount and audit
/// tables, keyring and catalog under `core/`, the policies, the token
/// salt): a change under one of them must be announced to the standbys
/// (the PostgreSQL storage publishes writes under these prefixes).
pub const CACHED_PREFIXES: &[&str] = &["core/", "sys/policy/", "sys/token/salt"];

/// What a node is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sealed: no key in memory.
    Sealed,
    /// Unsealed, not active: answers health and leader, forwards the rest.
    Standby,
    /// Unsealed and serving.
    Active,
}

/// The HA part of a core's state.
pub(crate) struct HaState {
    cluster: OnceLock<Arc<dyn Cluster>>,
    standby: RwLock<Option<Arc<Barrier>>>,
    role: watch::Sender<Role>,
    /// A standby's read view, while no change under [`CACHED_PREFIXES`]
    /// has been announced since it was built.
    view: RwLock<Option<Arc<Active>>>,
    /// Bumped by every announced change: a view built across a change is
    /// used for no request.
    generation: AtomicU64,
    /// Whether the storage's change feed is connected.
    feed: AtomicBool,
    /// One view build at a time (the requests that find none wait for it
    /// instead of each building their own); holds the generation and time
    /// of the last failed build, not retried within [`BUILD_RETRY`].
    building: tokio::sync::Mutex<Option<(u64, std::time::Instant)>>,
}

/// How long a standby forwards reads after its read view failed to build
/// before it tries again (at the same generation).
const BUILD_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl Default for HaState {
    fn default() -> Self {
        HaState {
            cluster: OnceLock::new(),
            standby: RwLock::new(None),
            role: watch::Sender::new(Role::Sealed),
            view: RwLock::new(None),
            generation: AtomicU64::new(0),
            feed: AtomicBool::new(false),
            building: tokio::sync::Mutex::new(None),
        }
    }
}

impl HaState {
    pub(crate) fn enabled(&self) -> bool {
        self.cluster.get().is_some()
    }

    /// Sets (or clears) the standby barrier; returns the previous one. A
    /// barrier set makes the role `Standby`.
    pub(crate) fn set_standby(&self, barrier: Option<Arc<Barrier>>) -> Option<Arc<Barrier>> {
        let standby = barrier.is_some();
        let old = std::mem::replace(
            &mut *self.standby.write().unwrap_or_else(|e| e.into_inner()),
            barrier,
        );
        self.forget_view();
        if standby {
            self.set_role(Role::Standby);
        }
        old
    }

    pub(crate) fn set_role(&self, role: Role) {
        self.role.send_replace(role);
    }

    /// Drops the read view; a view being built now is not kept.
    pub(crate) fn forget_view(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn standby_barrier(&self) -> Option<Arc<Barrier>> {
        self.standby
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// `0001-01-01T00:00:00Z`: Vault's zero time, for "never".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn rfc3339(t: std::time::SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ZERO_TIME.to_string())
}

impl Core {
    /// Makes this core a node of `cluster`: unseal then leaves it a
    /// standby until [`Core::promote`]. Call before the first unseal; a
    /// second call is refused.
    pub fn enable_ha(&self, cluster: Arc<dyn Cluster>) -> Result<(), CoreError> {
        self.ha
            .cluster
            .set(cluster)
            .map_err(|_| CoreError::Request(RequestError::Internal("HA is already enabled".into())))
    }

    /// Whether HA is enabled.
    pub fn ha_enabled(&self) -> bool {
        self.ha.enabled()
    }

    /// The node's role now.
    pub fn role(&self) -> Role {
        *self.ha.role.borrow()
    }

    /// Follows the node's role (the leadership loop waits for `Standby`).
    pub fn watch_role(&self) -> watch::Receiver<Role> {
        self.ha.role.subscribe()
    }

    /// Whether this node is an unsealed standby.
    pub fn is_standby(&self) -> bool {
        self.ha.standby_barrier().is_some()
    }

    /// The active node as the cluster records it (`None` without HA or
    /// while there is none).
    pub async fn leader(&self) -> Result<Option<LeaderInfo>, RequestError> {
        match self.ha.cluster.get() {
            None => Ok(None),
            Some(c) => c.leader().await.map_err(|e| {
                RequestError::Unavailable(format!("cannot read the HA leader from storage: {e}"))
            }),
        }
    }

    /// Reads a value of the barrier while unsealed, standby or active (the
    /// cluster's forwarding certificate, which the active stores and
    /// standbys read).
    pub async fn read_shared(&self, key: &str) -> Result<Option<Vec<u8>>, CoreError> {
        let barrier = match (self.active(), self.ha.standby_barrier()) {
            (Some(a), _) => a.barrier.clone(),
            (None, Some(b)) => b,
            (None, None) => return Err(CoreError::Request(RequestError::Sealed)),
        };
        Ok(barrier.get(key).await?)
    }

    /// Standby → active: reloads the keyring (another node may have
    /// rotated it), then loads everything an active node serves from
    /// (`activate`). On failure the node stays a standby.
    pub async fn promote(&self) -> Result<(), CoreError> {
        let _guard = self.lifecycle.lock().await;
        let Some(barrier) = self.ha.standby_barrier() else {
            return Err(CoreError::Request(if self.active().is_some() {
                RequestError::invalid("this node is already active")
            } else {
                RequestError::Sealed
            }));
        };
        barrier.reload_keyring().await?;
        let active = self.activate(barrier).await?;
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Some(active);
        self.ha.set_standby(None);
        self.ha.set_role(Role::Active);
        tracing::info!("this node is now the active node");
        Ok(())
    }

    /// Active → standby: stops the mounts' engines (plugin processes) and
    /// drops everything loaded, keeping the barrier open. A no-op unless
    /// active.
    pub async fn demote(&self) {
        let _guard = self.lifecycle.lock().await;
        let active = self.state.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(active) = active {
            stop_engines(&active).await;
            self.ha.set_standby(Some(active.barrier.clone()));
            tracing::info!("this node is now a standby");
        }
    }

    /// Serves a read on an HA standby from storage (see the module docs);
    /// [`RequestError::Standby`] when this node cannot answer it without
    /// writing (the listener then forwards it). On the active node it is
    /// [`Core::handle`].
    pub async fn handle_on_standby(&self, req: ApiRequest) -> Result<Reply, RequestError> {
        if !matches!(req.method, Method::Read | Method::List) {
            return Err(RequestError::Standby);
        }
        if self.active().is_some() {
            return self.handle(req).await;
        }
        match self.read_view().await {
            Some(view) => self.handle_with(req, Some(view)).await,
            None => Err(RequestError::Standby),
        }
    }

    /// The standby's read view: the kept one, or a new one (kept unless a
    /// change was announced while it was built; then none: forward).
    async fn read_view(&self) -> Option<Arc<Active>> {
        if !self.ha.feed.load(Ordering::SeqCst) {
            return None;
        }
        let kept = || {
            self.ha
                .view
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        };
        if let Some(view) = kept() {
            return Some(view);
        }
        let mut failed = self.ha.building.lock().await;
        if let Some(view) = kept() {
            // Built while this request waited.
            return Some(view);
        }
        // The generation first: a seal or promotion after it bumps it, so
        // a view of a barrier being dropped is never kept.
        let generation = self.ha.generation.load(Ordering::SeqCst);
        if failed.is_some_and(|(g, at)| g == generation && at.elapsed() < BUILD_RETRY) {
            return None;
        }
        let barrier = self.ha.standby_barrier()?;
        let view = match self.build_read_view(barrier).await {
            Ok(v) => Arc::new(v),
            Err(e) => {
                *failed = Some((generation, std::time::Instant::now()));
                // At most once a minute: every read would say it again.
                static LAST: std::sync::Mutex<Option<std::time::Instant>> =
                    std::sync::Mutex::new(None);
                let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60)) {
                    *last = Some(std::time::Instant::now());
                    tracing::warn!(
                        "this standby cannot serve reads itself, so it forwards them: {e}"
                    );
                }
                return None;
            }
        };
        let mut slot = self.ha.view.write().unwrap_or_else(|e| e.into_inner());
        if self.ha.generation.load(Ordering::SeqCst) != generation
            || !self.ha.feed.load(Ordering::SeqCst)
        {
            return None;
        }
        *slot = Some(view.clone());
        Some(view)
    }

    /// Another node changed the storage key `key` (`None`: anything may
    /// have changed, e.g. announcements were missed): a standby drops its
    /// read view when the key is under [`CACHED_PREFIXES`].
    pub fn storage_changed(&self, key: Option<&str>) {
        if key.is_none_or(|k| CACHED_PREFIXES.iter().any(|p| k.starts_with(p))) {
            self.ha.forget_view();
        }
    }

    /// Whether this node hears of other nodes' changes now (the storage's
    /// change feed is connected). A standby serves reads itself only while
    /// it does; connecting again means announcements may have been
    /// missed, so the view is dropped either way.
    pub fn set_change_feed(&self, connected: bool) {
        self.ha.feed.store(connected, Ordering::SeqCst);
        self.ha.forget_view();
    }

    /// `sys/step-down` on the active node.
    pub(crate) fn step_down(&self) {
        if let Some(c) = self.ha.cluster.get() {
            c.step_down();
        }
    }

    /// Takes the cluster's lock for `sys/init` (the storage takes writes
    /// only from the node holding it); `None` without HA.
    pub(crate) async fn lead_for_init(
        &self,
    ) -> Result<Option<Box<dyn std::any::Any + Send>>, CoreError> {
        match self.ha.cluster.get() {
            None => Ok(None),
            Some(c) => c
                .lead_for_init()
                .await
                .map(Some)
                .map_err(|e| CoreError::Request(RequestError::Unavailable(e))),
        }
    }
}

/// `sys/leader`: answered by every node, sealed or not.
pub(crate) async fn leader_body(core: &Core) -> Result<Value, RequestError> {
    if !core.ha_enabled() {
        return Ok(json!({
            "ha_enabled": false,
            "is_self": !core.is_sealed(),
            "active_time": ZERO_TIME,
            "leader_address": "",
            "leader_cluster_address": "",
            "performance_standby": false,
            "performance_standby_last_remote_wal": 0,
        }));
    }
    let leader = if core.is_sealed() {
        None
    } else {
        core.leader().await?
    };
    let is_self = core.role() == Role::Active;
    Ok(json!({
        "ha_enabled": true,
        "is_self": is_self,
        "active_time": leader.as_ref().filter(|_| is_self).map(|l| rfc3339(l.active_since)).unwrap_or_else(|| ZERO_TIME.to_string()),
        "leader_address": leader.as_ref().map(|l| l.api_addr.as_str()).unwrap_or(""),
        "leader_cluster_address": leader.as_ref().map(|l| l.cluster_addr.as_str()).unwrap_or(""),
        "performance_standby": false,
        "performance_standby_last_remote_wal": 0,
    }))
}

/// `sys/ha-status`: the nodes up now (each echoes a record in the
/// storage), the active one marked; the active node is listed even before
/// its first echo.
pub(crate) async fn ha_status_data(core: &Core) -> Result<Map<String, Value>, RequestError> {
    let Some(cluster) = core.ha.cluster.get() else {
        return Err(RequestError::invalid(
            "HA is not enabled: this server's storage has no ha_enabled = \"true\"",
        ));
    };
    let leader = core.leader().await?;
    let mut members = cluster.members().await.map_err(|e| {
        RequestError::Unavailable(format!("cannot read the HA members from storage: {e}"))
    })?;
    if let Some(l) = &leader
        && !members.iter().any(|m| m.node_id == l.node_id)
    {
        members.push(MemberInfo {
            node_id: l.node_id.clone(),
            api_addr: l.api_addr.clone(),
            cluster_addr: l.cluster_addr.clone(),
            last_echo: l.active_since,
        });
    }
    let nodes: Vec<Value> = members
        .into_iter()
        .map(|m| {
            let active = leader.as_ref().is_some_and(|l| l.node_id == m.node_id);
            json!({
                "hostname": m.node_id,
                "api_address": m.api_addr,
                "cluster_address": m.cluster_addr,
                "active_node": active,
                "last_echo": if active { Value::Null } else { json!(rfc3339(m.last_echo)) },
                "version": super::VERSION,
                "upgrade_version": super::VERSION,
                "redundancy_zone": "",
            })
        })
        .collect();
    let mut data = Map::new();
    data.insert("nodes".into(), Value::Array(nodes));
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ApiRequest, CoreConfig, Method, Reply};
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A cluster whose leader is whatever the test says.
    #[derive(Default)]
    struct FakeCluster {
        leader: std::sync::Mutex<Option<LeaderInfo>>,
        step_downs: AtomicUsize,
        inits: AtomicUsize,
    }

    #[async_trait]
    impl Cluster for FakeCluster {
        async fn leader(&self) -> Result<Option<LeaderInfo>, String> {
            Ok(self.leader.lock().unwrap().clone())
        }
        async fn members(&self) -> Result<Vec<MemberInfo>, String> {
            Ok(Vec::new())
        }
        fn step_down(&self) {
            self.step_downs.fetch_add(1, Ordering::SeqCst);
        }
        async fn lead_for_init(&self) -> Result<Box<dyn std::any::Any + Send>, String> {
            self.inits.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(()))
        }
    }

    async fn call(
        core: &Core,
        token: &str,
        method: Method,
        path: &str,
    ) -> Result<Reply, RequestError> {
        core.handle(ApiRequest {
            method,
            path: path.into(),
            data: Default::default(),
            token: Some(token.into()),
            remote: None,
        })
        .await
    }

    fn status(reply: &Result<Reply, RequestError>) -> u16 {
        match reply {
            Ok(Reply::Raw { status, .. } | Reply::Http { status, .. }) => *status,
            Ok(Reply::Envelope { .. }) => 200,
            Ok(Reply::NotFound) => 404,
            Ok(_) => 204,
            Err(e) => e.status(),
        }
    }

    #[tokio::test]
    async fn an_ha_node_unseals_as_standby_and_serves_only_once_promoted() {
        let core = Core::new(
            Arc::new(lockbox_storage::InMemory::new()),
            CoreConfig::default(),
        );
        let cluster = Arc::new(FakeCluster::default());
        core.enable_ha(cluster.clone()).unwrap();
        assert!(core.enable_ha(cluster.clone()).is_err(), "enabled twice");
        let init = core.initialize(1, 1, None).await.unwrap();
        assert_eq!(
            cluster.inits.load(Ordering::SeqCst),
            1,
            "init took the lock"
        );
        let root = init.root_token;
        assert!(core.submit_unseal_key(&init.keys[0]).await.unwrap());

        // Standby: unsealed, not serving; health says so.
        assert_eq!(core.role(), Role::Standby);
        assert!(!core.is_sealed() && core.is_standby());
        let r = call(&core, &root, Method::Read, "sys/mounts").await;
        assert!(matches!(r, Err(RequestError::Standby)), "{:?}", r.err());
        assert_eq!(
            status(&call(&core, &root, Method::Read, "sys/health").await),
            429
        );
        let leader = leader_body(&core).await.unwrap();
        assert_eq!(
            (leader["ha_enabled"].clone(), leader["is_self"].clone()),
            (json!(true), json!(false))
        );
        assert_eq!(leader["leader_address"], "");

        // Another node is active: sys/leader names it.
        *cluster.leader.lock().unwrap() = Some(LeaderInfo {
            is_self: false,
            api_addr: "http://other:8200".into(),
            cluster_addr: "https://other:8201".into(),
            active_since: std::time::SystemTime::now(),
            term: 4,
            node_id: "other".into(),
        });
        let leader = leader_body(&core).await.unwrap();
        assert_eq!(leader["leader_address"], "http://other:8200");
        assert_eq!(
            leader["active_time"], ZERO_TIME,
            "only the active reports its time"
        );

        // Promoted: serves; step-down reaches the cluster.
        core.promote().await.unwrap();
        assert_eq!(core.role(), Role::Active);
        assert!(core.promote().await.is_err(), "promoted twice");
        assert_eq!(
            status(&call(&core, &root, Method::Read, "sys/mounts").await),
            200
        );
        assert_eq!(
            status(&call(&core, &root, Method::Read, "sys/health").await),
            200
        );
        assert_eq!(
            status(&call(&core, &root, Method::Write, "sys/step-down").await),
            204
        );
        assert_eq!(cluster.step_downs.load(Ordering::SeqCst), 1);
        let ha = call(&core, &root, Method::Read, "sys/ha-status").await;
        assert_eq!(status(&ha), 200, "{:?}", ha.err());

        // Demoted: a standby again, the barrier still open; promoted again.
        core.demote().await;
        assert_eq!(core.role(), Role::Standby);
        assert!(matches!(
            call(&core, &root, Method::Read, "sys/mounts").await,
            Err(RequestError::Standby)
        ));
        assert!(core.read_shared("core/mounts").await.unwrap().is_some());
        core.promote().await.unwrap();
        assert_eq!(
            status(&call(&core, &root, Method::Read, "sys/mounts").await),
            200
        );

        // Sealed from any state.
        core.demote().await;
        core.seal().await;
        assert_eq!(core.role(), Role::Sealed);
        assert!(core.is_sealed() && !core.is_standby());
        assert!(matches!(
            call(&core, &root, Method::Read, "sys/mounts").await,
            Err(RequestError::Sealed)
        ));
        assert!(core.promote().await.is_err());
    }

    #[tokio::test]
    async fn a_single_node_core_is_active_once_unsealed() {
        let core = Core::new(
            Arc::new(lockbox_storage::InMemory::new()),
            CoreConfig::default(),
        );
        assert_eq!(core.role(), Role::Sealed);
        let init = core.initialize(1, 1, None).await.unwrap();
        core.submit_unseal_key(&init.keys[0]).await.unwrap();
        assert_eq!(core.role(), Role::Active);
        let leader = leader_body(&core).await.unwrap();
        assert_eq!(
            (leader["ha_enabled"].clone(), leader["is_self"].clone()),
            (json!(false), json!(true))
        );
        let r = call(&core, &init.root_token, Method::Read, "sys/ha-status").await;
        assert_eq!(status(&r), 400);
    }

    /// A node's view of shared storage that refuses every write, as the
    /// PostgreSQL storage refuses a standby's (fenced).
    struct NoWrites(Arc<dyn lockbox_storage::Physical>);

    #[async_trait]
    impl lockbox_storage::Physical for NoWrites {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, lockbox_storage::StorageError> {
            self.0.get(key).await
        }
        async fn put(&self, key: &str, _: Vec<u8>) -> Result<(), lockbox_storage::StorageError> {
            panic!("a standby wrote {key}")
        }
        async fn delete(&self, key: &str) -> Result<(), lockbox_storage::StorageError> {
            panic!("a standby deleted {key}")
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, lockbox_storage::StorageError> {
            self.0.list(prefix).await
        }
        async fn delete_prefix(
            &self,
            prefix: &str,
        ) -> Result<usize, lockbox_storage::StorageError> {
            panic!("a standby deleted under {prefix}")
        }
        fn kind(&self) -> &'static str {
            "no-writes"
        }
    }

    async fn send(
        core: &Core,
        token: &str,
        method: Method,
        path: &str,
        data: Value,
    ) -> Result<Reply, RequestError> {
        core.handle(ApiRequest {
            method,
            path: path.into(),
            data: data.as_object().cloned().unwrap_or_default(),
            token: Some(token.into()),
            remote: None,
        })
        .await
    }

    async fn on_standby(
        core: &Core,
        token: &str,
        method: Method,
        path: &str,
    ) -> Result<Reply, RequestError> {
        core.handle_on_standby(ApiRequest {
            method,
            path: path.into(),
            data: Default::default(),
            token: Some(token.into()),
            remote: None,
        })
        .await
    }

    fn data(reply: Result<Reply, RequestError>) -> Map<String, Value> {
        match reply {
            Ok(Reply::Envelope { response, .. }) => response.data.unwrap_or_default(),
            other => panic!("not data: {:?}", other.err()),
        }
    }

    fn token_of(reply: Result<Reply, RequestError>) -> String {
        match reply {
            Ok(Reply::Envelope { response, .. }) => response.auth.expect("auth").client_token,
            other => panic!("no token: {:?}", other.err()),
        }
    }

    #[tokio::test]
    async fn a_standby_serves_reads_that_change_nothing_from_storage_and_forwards_the_rest() {
        let shared: Arc<dyn lockbox_storage::Physical> = Arc::new(lockbox_storage::InMemory::new());
        // The active node.
        let active = Core::new(shared.clone(), CoreConfig::default());
        active.enable_ha(Arc::new(FakeCluster::default())).unwrap();
        let init = active.initialize(1, 1, None).await.unwrap();
        let root = init.root_token.clone();
        active.submit_unseal_key(&init.keys[0]).await.unwrap();
        active.promote().await.unwrap();
        let w = |m, p: &'static str, d| send(&active, &root, m, p, d);
        assert_eq!(
            status(&w(Method::Write, "sys/mounts/secret", json!({"type": "kv"})).await),
            204
        );
        assert_eq!(
            status(&w(Method::Write, "secret/a", json!({"v": "1"})).await),
            204
        );
        let policy = json!({"policy": "path \"secret/a\" { capabilities = [\"read\"] }"});
        assert_eq!(
            status(&w(Method::Write, "sys/policies/acl/reader", policy).await),
            204
        );
        let reader = token_of(
            w(
                Method::Write,
                "auth/token/create",
                json!({"policies": ["reader"]}),
            )
            .await,
        );
        let limited = token_of(w(Method::Write, "auth/token/create", json!({"num_uses": 5})).await);

        // The standby: same storage, never writes.
        let standby = Core::new(Arc::new(NoWrites(shared.clone())), CoreConfig::default());
        standby.enable_ha(Arc::new(FakeCluster::default())).unwrap();
        assert!(standby.submit_unseal_key(&init.keys[0]).await.unwrap());
        assert_eq!(standby.role(), Role::Standby);
        let r = on_standby(&standby, &root, Method::Read, "secret/a").await;
        assert!(
            matches!(r, Err(RequestError::Standby)),
            "no change feed yet: {:?}",
            r.err()
        );
        standby.set_change_feed(true);

        let r = on_standby(&standby, &root, Method::Read, "secret/a").await;
        assert_eq!(data(r)["v"], "1");
        let r = on_standby(&standby, &root, Method::List, "secret").await;
        assert_eq!(data(r)["keys"], json!(["a"]));
        assert_eq!(
            data(on_standby(&standby, &reader, Method::Read, "secret/a").await)["v"],
            "1"
        );
        // Refusals are the active node's answers.
        for (token, path, want) in [
            (reader.as_str(), "secret/b", 403),
            ("lbs.not-a-token", "secret/a", 403),
            (root.as_str(), "secret/none", 404),
        ] {
            let r = on_standby(&standby, token, Method::Read, path).await;
            assert_eq!(status(&r), want, "{path}: {:?}", r.err());
        }
        // Everything that writes or needs the active node: forwarded.
        for (token, method, path) in [
            (root.as_str(), Method::Write, "secret/a"),
            (root.as_str(), Method::Delete, "secret/a"),
            (limited.as_str(), Method::Read, "secret/a"),
            (root.as_str(), Method::Read, "sys/mounts"),
            (root.as_str(), Method::Read, "auth/token/lookup-self"),
            (root.as_str(), Method::Read, "other/x"),
        ] {
            let r = on_standby(&standby, token, method, path).await;
            assert!(
                matches!(r, Err(RequestError::Standby)),
                "{method:?} {path}: {:?}",
                r.as_ref().err()
            );
        }

        // The active changes things: values and tokens are seen at once,
        // policies and mounts once the change is announced.
        assert_eq!(
            status(&w(Method::Write, "secret/a", json!({"v": "2"})).await),
            204
        );
        assert_eq!(
            data(on_standby(&standby, &root, Method::Read, "secret/a").await)["v"],
            "2"
        );
        let policy = json!({"policy": "path \"secret/*\" { capabilities = [\"read\"] }"});
        assert_eq!(
            status(&w(Method::Write, "sys/policies/acl/reader", policy).await),
            204
        );
        assert_eq!(
            status(&w(Method::Write, "secret/b", json!({"v": "b"})).await),
            204
        );
        assert_eq!(
            status(&w(Method::Write, "sys/mounts/more", json!({"type": "kv"})).await),
            204
        );
        assert_eq!(
            status(&on_standby(&standby, &reader, Method::Read, "secret/b").await),
            403,
            "not announced yet"
        );
        standby.storage_changed(Some("secret/b"));
        standby.storage_changed(Some("logical/x"));
        assert_eq!(
            status(&on_standby(&standby, &reader, Method::Read, "secret/b").await),
            403,
            "not a cached key"
        );
        assert!(matches!(
            on_standby(&standby, &root, Method::Read, "more/x").await,
            Err(RequestError::Standby)
        ));
        standby.storage_changed(Some("sys/policy/reader"));
        assert_eq!(
            data(on_standby(&standby, &reader, Method::Read, "secret/b").await)["v"],
            "b"
        );
        assert_eq!(
            status(&on_standby(&standby, &root, Method::Read, "more/x").await),
            404,
            "the new mount"
        );
        assert_eq!(
            status(&w(Method::Write, "auth/token/revoke", json!({"token": reader})).await),
            204
        );
        assert_eq!(
            status(&on_standby(&standby, &reader, Method::Read, "secret/b").await),
            403,
            "revoked"
        );

        // Audit devices the active enables record the standby's reads too.
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let device = json!({"type": "file", "options": {"file_path": log.to_str().unwrap()}});
        assert_eq!(
            status(&w(Method::Write, "sys/audit/file", device).await),
            204
        );
        standby.storage_changed(Some("core/audit/devices"));
        assert_eq!(
            data(on_standby(&standby, &root, Method::Read, "secret/b").await)["v"],
            "b"
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.lines()
                .any(|l| l.contains("\"type\":\"response\"") && l.contains("secret/b")),
            "{text}"
        );
        assert!(
            !text.contains("\"b\"}") && !text.contains(&root),
            "plaintext in the audit log: {text}"
        );

        // Without the change feed, nothing is served locally; sealed,
        // nothing at all.
        standby.set_change_feed(false);
        assert!(matches!(
            on_standby(&standby, &root, Method::Read, "secret/a").await,
            Err(RequestError::Standby)
        ));
        standby.set_change_feed(true);
        assert_eq!(
            data(on_standby(&standby, &root, Method::Read, "secret/a").await)["v"],
            "2"
        );
        standby.seal().await;
        assert!(matches!(
            on_standby(&standby, &root, Method::Read, "secret/a").await,
            Err(RequestError::Standby)
        ));
    }
}
