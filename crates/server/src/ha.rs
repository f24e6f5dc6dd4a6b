//! High availability on PostgreSQL: this node's leadership loop, its
//! [`Cluster`] for the core, and the cluster listener that takes the
//! standbys' forwarded requests.
//!
//! ```text
//!  unsealed standby ──acquire (advisory lock, term + 1)──▶ Core::promote ──▶ active
//!        ▲                                                     │
//!        └── Core::demote ◀── lock lost | write fenced | sys/step-down | sealed
//! ```
//!
//! The database decides who leads (`lockbox-storage-postgres`: a session
//! advisory lock, a term that fences every write); this module only
//! follows it, and passes the other nodes' announced changes to the core
//! (`follow_changes`: a standby's local reads). The cluster identity (the certificate both ends of a
//! forwarded request present) is created by the first active node and kept
//! in the barrier ([`lockbox_http::cluster`]).

use crate::args::ServerError;
use async_trait::async_trait;
use lockbox_core::core::Core;
use lockbox_core::core::ha::Role;
use lockbox_core::runtime::{Cluster, LeaderInfo, MemberInfo};
use lockbox_http::cluster::{CLUSTER_TLS_KEY, ClusterIdentity, Forwarding};
use lockbox_http::{ServerOptions, tls};
use lockbox_storage_postgres::{Change, HaConfig, Leadership, PostgresBackend};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// How long a node that stepped down waits before it competes again
/// (Vault's manual step-down pause).
const STEP_DOWN_PAUSE: Duration = Duration::from_secs(10);
/// How long `sys/init` waits for the lock.
const INIT_WAIT: Duration = Duration::from_secs(15);
/// How long a leader lookup is reused (standbys look it up per forwarded
/// request).
const LEADER_CACHE: Duration = Duration::from_millis(200);

/// The addresses an HA node publishes and listens on.
#[derive(Debug, Clone)]
pub(crate) struct HaAddresses {
    /// `api_addr`: where clients reach this node.
    pub api_addr: String,
    /// `cluster_addr`: where standbys forward to it.
    pub cluster_addr: String,
    /// The cluster listener's bind address.
    pub cluster_listen: String,
}

/// The first set variable of `names`, else `value`.
fn from_env(names: [&str; 2], value: Option<&String>) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
        .or_else(|| value.cloned())
}

/// `host:port` + 1 (Vault's default cluster port next to the API's).
fn next_port(address: &str) -> Option<String> {
    let (host, port) = address.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    Some(format!("{host}:{}", port.checked_add(1)?))
}

impl HaAddresses {
    /// From the config file and `LOCKBOX_API_ADDR`/`VAULT_API_ADDR`,
    /// `LOCKBOX_CLUSTER_ADDR`/`VAULT_CLUSTER_ADDR` (the environment wins).
    pub(crate) fn resolve(
        api_addr: Option<&String>,
        cluster_addr: Option<&String>,
        listener: &str,
        cluster_listen: Option<&String>,
    ) -> Result<Self, ServerError> {
        let api_addr =
            from_env(["LOCKBOX_API_ADDR", "VAULT_API_ADDR"], api_addr).ok_or_else(|| {
                ServerError::Ha(
                    "ha_enabled needs api_addr: the address clients reach this node at (e.g. \
                 api_addr = \"https://node-1:8200\", or LOCKBOX_API_ADDR); standbys send \
                 clients there"
                        .into(),
                )
            })?;
        let cluster_listen = match cluster_listen {
            Some(a) => a.clone(),
            None => next_port(listener).ok_or_else(|| {
                ServerError::Ha(format!(
                    "cannot derive the cluster listener from {listener:?}: set cluster_address \
                     in the listener block"
                ))
            })?,
        };
        let cluster_addr =
            match from_env(["LOCKBOX_CLUSTER_ADDR", "VAULT_CLUSTER_ADDR"], cluster_addr) {
                Some(a) => a,
                None => {
                    let host = api_addr
                        .parse::<http::Uri>()
                        .ok()
                        .and_then(|u| u.host().map(str::to_string))
                        .ok_or_else(|| {
                            ServerError::Ha(format!(
                                "api_addr {api_addr:?} is not a URL; set cluster_addr too"
                            ))
                        })?;
                    let port = cluster_listen.rsplit(':').next().unwrap_or("8201");
                    format!("https://{host}:{port}")
                }
            };
        Ok(HaAddresses {
            api_addr,
            cluster_addr,
            cluster_listen,
        })
    }
}

/// A unique id for this process: the host name and a random suffix.
fn node_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "lockbox".into());
    format!("{host}-{}", lockbox_plugin_host::process::random_suffix())
}

/// This node in the cluster, as the core sees it.
pub(crate) struct ClusterNode {
    leadership: Leadership,
    node_id: String,
    step_down: Notify,
    cached: Mutex<Option<(Instant, Option<LeaderInfo>)>>,
}

#[async_trait]
impl Cluster for ClusterNode {
    async fn leader(&self) -> Result<Option<LeaderInfo>, String> {
        if let Some((at, info)) = self
            .cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            && at.elapsed() < LEADER_CACHE
        {
            return Ok(info);
        }
        let record = self.leadership.leader().await.map_err(|e| e.to_string())?;
        let info = record.filter(|r| r.lock_held).map(|r| LeaderInfo {
            is_self: r.node_id == self.node_id,
            api_addr: r.api_addr,
            cluster_addr: r.cluster_addr,
            active_since: r.active_since,
            term: r.term,
            node_id: r.node_id,
        });
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), info.clone()));
        Ok(info)
    }

    async fn members(&self) -> Result<Vec<MemberInfo>, String> {
        let members = self.leadership.members().await.map_err(|e| e.to_string())?;
        Ok(members
            .into_iter()
            .map(|m| MemberInfo {
                node_id: m.node_id,
                api_addr: m.api_addr,
                cluster_addr: m.cluster_addr,
                last_echo: m.last_echo,
            })
            .collect())
    }

    fn step_down(&self) {
        self.step_down.notify_one();
    }

    async fn lead_for_init(&self) -> Result<Box<dyn std::any::Any + Send>, String> {
        match tokio::time::timeout(INIT_WAIT, self.leadership.acquire()).await {
            Ok(held) => Ok(Box::new(held)),
            Err(_) => Err(format!(
                "another node held the HA lock for {}s: initialize through the active node",
                INIT_WAIT.as_secs()
            )),
        }
    }
}

impl ClusterNode {
    fn forget_leader(&self) {
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Turns HA on for `backend` and `core`: the storage refuses writes until
/// this node leads; the core unseals as a standby. Returns the node for
/// [`spawn`].
pub(crate) async fn enable(
    backend: &Arc<PostgresBackend>,
    table: Option<&String>,
    addresses: &HaAddresses,
    core: &Core,
) -> Result<Arc<ClusterNode>, ServerError> {
    let id = node_id();
    let mut config = HaConfig::new(
        id.clone(),
        addresses.api_addr.clone(),
        addresses.cluster_addr.clone(),
    );
    if let Some(t) = table {
        config.table = t.clone();
    }
    // What standbys cache for their local reads: its changes are announced.
    config.announce = lockbox_core::core::ha::CACHED_PREFIXES
        .iter()
        .map(|p| p.to_string())
        .collect();
    tracing::info!(
        node_id = %id,
        api_addr = %addresses.api_addr,
        cluster_addr = %addresses.cluster_addr,
        "HA enabled: this node unseals as a standby and becomes active when it holds the lock in table {}",
        config.table
    );
    let leadership = backend
        .enable_ha(config)
        .await
        .map_err(|e| ServerError::Ha(e.to_string()))?;
    let node = Arc::new(ClusterNode {
        leadership,
        node_id: id,
        step_down: Notify::new(),
        cached: Mutex::new(None),
    });
    core.enable_ha(node.clone())
        .map_err(|e| ServerError::Ha(e.to_string()))?;
    Ok(node)
}

/// The forwarding mode of the API listener.
pub(crate) fn forwarding(disable_request_forwarding: bool) -> Forwarding {
    if disable_request_forwarding {
        Forwarding::Redirect
    } else {
        Forwarding::Forward(Arc::new(lockbox_http::cluster::Forwarder::new()))
    }
}

/// When a node that lost its database seals, and where it finds the keys
/// to unseal again once the database is back.
pub(crate) struct StorageLoss {
    /// `ha_seal_after_storage_loss`; `None`: never seal.
    pub seal_after: Option<Duration>,
    /// `unseal_keys_file`, re-read to unseal again (keys given through
    /// `LOCKBOX_UNSEAL_KEYS` were taken out of the environment at start:
    /// such a node stays sealed until unsealed by hand).
    pub keys_file: Option<std::path::PathBuf>,
}

/// Starts the leadership loop, the cluster listener and the storage
/// watchdog.
pub(crate) fn spawn(
    node: Arc<ClusterNode>,
    core: Arc<Core>,
    cluster_listener: TcpListener,
    template: ServerOptions,
    loss: StorageLoss,
) {
    tokio::spawn(leadership_loop(node.clone(), core.clone()));
    tokio::spawn(follow_changes(node.clone(), core.clone()));
    tokio::spawn(echo(node.clone(), core.clone()));
    tokio::spawn(serve_cluster(cluster_listener, core.clone(), template));
    if let Some(limit) = loss.seal_after {
        tokio::spawn(storage_watchdog(node, core, limit, loss.keys_file));
    }
}

/// How long a node trusts its change feed after the active node's last
/// heartbeat on it (the heartbeat comes every 200 ms; `stale_after` is 2 s).
const FEED_STALE: Duration = Duration::from_secs(2);

/// Whether a standby may serve from what it cached: only while it hears
/// the active node's heartbeats on the change feed (so the active is one
/// that announces its writes, and the announcements arrive), and never
/// across a change of active node.
#[derive(Debug, Default)]
struct Feed {
    /// The active's term and when its heartbeat was last heard.
    heard: Option<(u64, Instant)>,
}

/// What the core is told.
#[derive(Debug, PartialEq, Eq)]
enum FeedAction {
    /// Trust the feed from now on (what was cached before is dropped).
    Trust,
    /// Do not trust it (forward instead).
    Distrust,
    /// A key changed (`None`: anything).
    Changed(Option<String>),
    Nothing,
}

impl Feed {
    fn on(&mut self, change: Change, now: Instant) -> FeedAction {
        match change {
            Change::Listening | Change::Lost(_) => {
                self.heard = None;
                FeedAction::Distrust
            }
            Change::Key(key) => FeedAction::Changed(key),
            Change::Heartbeat { term } => {
                let same = self.heard.is_some_and(|(t, _)| t == term);
                self.heard = Some((term, now));
                if same {
                    FeedAction::Nothing
                } else {
                    FeedAction::Trust
                }
            }
        }
    }

    /// When the feed goes stale without another heartbeat.
    fn deadline(&self) -> Option<Instant> {
        self.heard.map(|(_, at)| at + FEED_STALE)
    }

    /// The deadline passed.
    fn expire(&mut self) -> FeedAction {
        self.heard = None;
        FeedAction::Distrust
    }
}

/// Passes the other nodes' announced changes to the core: a standby's
/// local reads run on what it cached only while the feed is trusted
/// ([`Feed`]).
async fn follow_changes(node: Arc<ClusterNode>, core: Arc<Core>) {
    let mut changes = node.leadership.changes();
    let mut feed = Feed::default();
    loop {
        let deadline = feed.deadline();
        let stale = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let action = tokio::select! {
            change = changes.recv() => match change {
                Some(change) => feed.on(change, Instant::now()),
                None => break,
            },
            () = stale => {
                tracing::warn!(
                    "no heartbeat of the active node on the change feed for {FEED_STALE:?}: this \
                     node forwards reads until it hears one"
                );
                feed.expire()
            }
        };
        match action {
            FeedAction::Trust => core.set_change_feed(true),
            FeedAction::Distrust => core.set_change_feed(false),
            FeedAction::Changed(key) => core.storage_changed(key.as_deref()),
            FeedAction::Nothing => {}
        }
    }
    core.set_change_feed(false);
}

/// How often an unsealed node records that it is up (`sys/ha-status`).
const ECHO_PERIOD: Duration = Duration::from_secs(5);

/// Records this node as a member while it is unsealed.
async fn echo(node: Arc<ClusterNode>, core: Arc<Core>) {
    let mut failing = false;
    let mut role = core.watch_role();
    loop {
        if !core.is_sealed() {
            match node.leadership.echo().await {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!("cannot record this node as an HA member: {e}");
                }
                Err(_) => {}
            }
        }
        // At once after an unseal, else every period.
        tokio::select! {
            () = tokio::time::sleep(ECHO_PERIOD) => {}
            changed = role.changed() => if changed.is_err() { return },
        }
    }
}

/// How often the watchdog asks the database.
const WATCHDOG_PERIOD: Duration = Duration::from_secs(1);

/// Seals this node (dropping its keys) once the database has not answered
/// for `limit`, and unseals it again from `keys_file` when it answers.
async fn storage_watchdog(
    node: Arc<ClusterNode>,
    core: Arc<Core>,
    limit: Duration,
    keys_file: Option<std::path::PathBuf>,
) {
    let mut last_answer = Instant::now();
    let mut sealed_here = false;
    loop {
        tokio::time::sleep(WATCHDOG_PERIOD).await;
        let answered = matches!(
            tokio::time::timeout(2 * WATCHDOG_PERIOD, node.leadership.leader()).await,
            Ok(Ok(_))
        );
        if answered {
            last_answer = Instant::now();
            if sealed_here && core.is_sealed() {
                sealed_here = !unseal_again(&core, keys_file.as_deref()).await;
            }
            continue;
        }
        if !core.is_sealed() && last_answer.elapsed() >= limit {
            tracing::error!(
                "the database has not answered for {}s (ha_seal_after_storage_loss): sealing \
                 this node; {}",
                last_answer.elapsed().as_secs(),
                if keys_file.is_some() {
                    "it unseals again from unseal_keys_file when the database is back"
                } else {
                    "unseal it again (sys/unseal) when the database is back"
                }
            );
            core.seal().await;
            sealed_here = true;
        }
    }
}

/// Unseals from the keys file; whether the node is unsealed afterwards.
async fn unseal_again(core: &Core, keys_file: Option<&std::path::Path>) -> bool {
    let Some(path) = keys_file else {
        return false;
    };
    let keys = match crate::unseal::keys_from_file(path) {
        Ok(keys) => keys,
        Err(e) => {
            tracing::warn!("{e}");
            return false;
        }
    };
    match crate::unseal::auto_unseal(core, &keys).await {
        Ok(true) => {
            tracing::info!("the database answers again: unsealed from unseal_keys_file");
            true
        }
        Ok(false) => false,
        Err(e) => {
            tracing::warn!("unsealing again failed: {e}");
            false
        }
    }
}

/// Waits until `role` satisfies `want`; `false` when the core is gone.
async fn wait_role(mut role: watch::Receiver<Role>, want: impl Fn(Role) -> bool) -> bool {
    role.wait_for(|r| want(*r)).await.is_ok()
}

async fn leadership_loop(node: Arc<ClusterNode>, core: Arc<Core>) {
    let role = core.watch_role();
    loop {
        if !wait_role(role.clone(), |r| r == Role::Standby).await {
            return;
        }
        let held = tokio::select! {
            held = node.leadership.acquire() => held,
            alive = wait_role(role.clone(), |r| r != Role::Standby) => {
                if !alive { return; }
                continue;
            }
        };
        node.forget_leader();
        if let Err(e) = core.promote().await {
            tracing::error!(
                "this node holds the HA lock (term {}) but cannot become active: {e}; giving \
                 the lock back",
                held.term()
            );
            held.release().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        tracing::info!(term = held.term(), "this node is the active node");
        if let Err(e) = ensure_identity(&core).await {
            tracing::error!(
                "cannot store the cluster certificate: {e}; standbys cannot forward requests \
                 to this node"
            );
        }
        let mut held = held;
        tokio::select! {
            reason = held.lost() => {
                tracing::warn!("lost leadership ({reason:?}): stepping down to standby");
                core.demote().await;
                drop(held);
            }
            () = node.step_down.notified() => {
                tracing::info!("stepping down (sys/step-down); competing again in {}s", STEP_DOWN_PAUSE.as_secs());
                core.demote().await;
                held.release().await;
                node.forget_leader();
                tokio::time::sleep(STEP_DOWN_PAUSE).await;
            }
            alive = wait_role(role.clone(), |r| r != Role::Active) => {
                // Sealed (sys/seal, shutdown): give the lock back at once.
                held.release().await;
                if !alive { return; }
            }
        }
        node.forget_leader();
    }
}

/// Creates the cluster identity when the storage has none (the first
/// active node of a cluster).
async fn ensure_identity(core: &Core) -> Result<(), String> {
    if core
        .read_shared(CLUSTER_TLS_KEY)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(());
    }
    let identity = ClusterIdentity::generate().map_err(|e| e.to_string())?;
    let barrier = core.barrier().ok_or("lockbox is not active")?;
    barrier
        .put(CLUSTER_TLS_KEY, &identity.to_bytes())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("created the cluster certificate for request forwarding");
    Ok(())
}

/// Serves forwarded requests once the cluster identity is readable (this
/// node unsealed, and some node active once).
async fn serve_cluster(listener: TcpListener, core: Arc<Core>, template: ServerOptions) {
    let identity = loop {
        if let Ok(Some(bytes)) = core.read_shared(CLUSTER_TLS_KEY).await {
            match ClusterIdentity::from_bytes(&bytes) {
                Ok(i) => break i,
                Err(e) => {
                    tracing::error!("cluster listener not started: {e}");
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let config = match identity.server_config() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("cluster listener not started: {e}");
            return;
        }
    };
    let options = ServerOptions {
        tls: Some(tls::Reloadable::from_config(config)),
        forwarding: Forwarding::Off,
        // Only standbys holding the cluster identity get past its mutual
        // TLS: the client address they pass along is taken.
        trust_forwarded_for: true,
        ..template
    };
    if let Err(e) = lockbox_http::serve(listener, core, options, std::future::pending()).await {
        tracing::error!("cluster listener stopped: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_address_defaults() {
        let api = "https://node-1:8200".to_string();
        let a = HaAddresses::resolve(Some(&api), None, "0.0.0.0:8200", None).unwrap();
        assert_eq!(a.cluster_listen, "0.0.0.0:8201");
        assert_eq!(a.cluster_addr, "https://node-1:8201");
        let c = "https://10.0.0.5:9000".to_string();
        let l = "0.0.0.0:9000".to_string();
        let a = HaAddresses::resolve(Some(&api), Some(&c), "0.0.0.0:8200", Some(&l)).unwrap();
        assert_eq!(
            (a.cluster_addr.as_str(), a.cluster_listen.as_str()),
            (c.as_str(), "0.0.0.0:9000")
        );
        assert!(next_port("127.0.0.1:65535").is_none());
    }

    #[test]
    fn the_feed_is_trusted_only_while_the_active_heartbeat_is_heard() {
        let t0 = Instant::now();
        let mut f = Feed::default();
        assert_eq!(f.on(Change::Listening, t0), FeedAction::Distrust);
        assert_eq!(f.deadline(), None, "no heartbeat yet: never trusted");
        assert_eq!(f.on(Change::Heartbeat { term: 3 }, t0), FeedAction::Trust);
        let t1 = t0 + Duration::from_millis(200);
        assert_eq!(f.on(Change::Heartbeat { term: 3 }, t1), FeedAction::Nothing);
        assert_eq!(f.deadline(), Some(t1 + FEED_STALE));
        assert_eq!(
            f.on(Change::Key(Some("core/mounts".into())), t1),
            FeedAction::Changed(Some("core/mounts".into()))
        );
        // A new active: trusted again, what was cached dropped.
        assert_eq!(f.on(Change::Heartbeat { term: 4 }, t1), FeedAction::Trust);
        assert_eq!(f.expire(), FeedAction::Distrust);
        assert_eq!(f.deadline(), None);
        assert_eq!(f.on(Change::Heartbeat { term: 4 }, t1), FeedAction::Trust);
        assert_eq!(f.on(Change::Lost("gone".into()), t1), FeedAction::Distrust);
        assert_eq!(f.deadline(), None);
    }
}
