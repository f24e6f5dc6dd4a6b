//! High availability: a core's part in a cluster of nodes over shared
//! storage. This module owns the node's role (sealed, standby, active),
//! the standby's barrier, promotion and demotion, and the HA endpoints'
//! answers (`sys/leader`, `sys/ha-status`, the standby codes of
//! `sys/health`).
//!
//! ```text
//!   unseal ──HA?──▶ Standby (barrier open, nothing loaded, requests forwarded by the listener)
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

use super::{Core, CoreError, stop_engines};
use crate::barrier::Barrier;
use crate::logical::RequestError;
use crate::runtime::{Cluster, LeaderInfo, MemberInfo};
use serde_json::{Map, Value, json};
use std::sync::{Arc, OnceLock, RwLock};
use tokio::sync::watch;

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
}

impl Default for HaState {
    fn default() -> Self {
        HaState {
            cluster: OnceLock::new(),
            standby: RwLock::new(None),
            role: watch::Sender::new(Role::Sealed),
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
        if standby {
            self.set_role(Role::Standby);
        }
        old
    }

    pub(crate) fn set_role(&self, role: Role) {
        self.role.send_replace(role);
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
}
