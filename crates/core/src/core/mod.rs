//! The secrets core: seal state, the request pipeline, the mount table and
//! router, and the system backend.
//!
//! ```text
//!   HTTP ──▶ Core::handle ──▶ sealed? ──▶ route (longest prefix) ──▶ token ──▶ ACL ──▶ handler
//!                                                                               │
//!                         sys/ (system) · auth/token/ (token store) · kv / plugins (Backend)
//! ```
//!
//! [`Core`] owns the physical storage and, while unsealed, an [`Active`]
//! state: the barrier, token store, policy store and the routing table.
//! Sealing drops the active state and with it every key. [`admin`] is the
//! typed admin API (mounts, catalog, reloads) that the `sys/` endpoints and
//! the operator share.

pub mod admin;
mod api;
mod authorize;
mod fields;
pub mod mounts;
mod pipeline;
pub mod policies;
mod sys;
pub mod tokens;
pub use api::{ApiRequest, Method, Reply};
pub mod audit;
pub mod ha;
pub mod leases;

pub use pipeline::canonical_request_path;

use crate::barrier::{self, Barrier, BarrierError, View};
use crate::builtin;
use crate::logical::{Backend, BackendKind, RequestError, SpecialPaths};
use crate::runtime::{ImageStore, MountSpec, NoPlugins, PluginRuntime};
use lockbox_storage::Physical;
use mounts::{MountEntry, Table};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokens::TokenStore;
use zeroize::Zeroizing;

/// lockbox's version, reported in `sys/seal-status` and `sys/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// 768h, Vault's system default and max lease TTL.
pub const SYSTEM_TTL: u64 = 768 * 3600;

/// Static settings of a core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// System default lease TTL, seconds.
    pub default_lease_ttl: u64,
    /// System max lease TTL, seconds.
    pub max_lease_ttl: u64,
    /// Name shown as `cluster_name`.
    pub cluster_name: String,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            default_lease_ttl: SYSTEM_TTL,
            max_lease_ttl: SYSTEM_TTL,
            cluster_name: "lockbox".into(),
        }
    }
}

/// Which code serves a mount.
#[derive(Clone)]
pub(crate) enum Handler {
    /// `sys/`.
    System,
    /// `auth/token/`.
    Token,
    /// A built-in engine or (later) a plugin.
    Backend(Arc<dyn Backend>),
    /// The mount exists but its engine could not be started.
    Unavailable(String),
}

impl Handler {
    /// The paths of this handler that need no token, and those that need
    /// `sudo`.
    fn special_paths(&self) -> SpecialPaths {
        match self {
            Handler::System => sys::paths::special_paths(),
            Handler::Backend(b) => b.special_paths(),
            Handler::Token | Handler::Unavailable(_) => SpecialPaths::default(),
        }
    }

    /// Whether an HA standby may serve this handler's reads from storage:
    /// an engine whose reads change nothing (`Backend::reads_change_nothing`).
    pub(crate) fn reads_locally(&self) -> bool {
        matches!(self, Handler::Backend(b) if b.reads_change_nothing())
    }
}

/// A routing table entry.
pub(crate) struct Route {
    pub entry: MountEntry,
    pub handler: Handler,
    pub view: View,
}

/// State that exists only while unsealed.
pub(crate) struct Active {
    pub barrier: Arc<Barrier>,
    pub tokens: TokenStore,
    pub policies: policies::PolicyStore,
    pub routes: RwLock<Arc<HashMap<String, Arc<Route>>>>,
    /// Serializes changes to the mount tables.
    pub mount_lock: tokio::sync::Mutex<()>,
    pub migrations: std::sync::Mutex<HashMap<String, Value>>,
    /// The lease manager.
    pub leases: Arc<leases::Leases>,
    /// The audit devices.
    pub audit: Arc<audit::AuditBroker>,
}

impl Active {
    /// The state over `barrier` with these stores, routes, audit devices
    /// and lease manager (nothing started: `activate` starts the tasks).
    fn new(
        barrier: Arc<Barrier>,
        tokens: TokenStore,
        policies: policies::PolicyStore,
        routes: HashMap<String, Arc<Route>>,
        audit: Arc<audit::AuditBroker>,
        leases: Arc<leases::Leases>,
    ) -> Self {
        Active {
            audit,
            leases,
            barrier,
            tokens,
            policies,
            routes: RwLock::new(Arc::new(routes)),
            mount_lock: tokio::sync::Mutex::new(()),
            migrations: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn routes(&self) -> Arc<HashMap<String, Arc<Route>>> {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn route(&self, path: &str) -> Option<(String, Arc<Route>)> {
        let routes = self.routes();
        mounts::longest_prefix(path, |p| routes.get(p).cloned())
    }
}

#[derive(Default)]
struct UnsealProgress {
    parts: Vec<Zeroizing<Vec<u8>>>,
    nonce: String,
}

/// Stops every mount's engine (seal, demotion).
async fn stop_engines(active: &Active) {
    for route in active.routes().values() {
        if let Handler::Backend(b) = &route.handler {
            b.cleanup().await;
        }
    }
}

/// Builds the engine for a mount type.
pub type EngineFactory = Arc<dyn Fn(&MountEntry) -> Result<Arc<dyn Backend>, String> + Send + Sync>;

/// The secrets core.
pub struct Core {
    physical: Arc<dyn Physical>,
    config: CoreConfig,
    state: RwLock<Option<Arc<Active>>>,
    unseal: tokio::sync::Mutex<UnsealProgress>,
    /// Serializes init, unseal and seal.
    lifecycle: tokio::sync::Mutex<()>,
    engines: HashMap<String, EngineFactory>,
    /// Serves plugin mounts (the plugin host, injected by the server).
    plugins: Arc<dyn PluginRuntime>,
    /// Plugin images (injected by the server).
    images: Arc<dyn ImageStore>,
    /// HA: the node's cluster and standby state (`ha`).
    ha: ha::HaState,
}

/// Errors of seal lifecycle operations used outside HTTP (server startup).
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A barrier operation failed.
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    /// A request-path operation failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The server is already initialized.
    #[error("lockbox is already initialized")]
    AlreadyInitialized,
    /// An unseal key is not hex or base64.
    #[error("unseal key is neither base64 nor hex: {0}")]
    KeyEncoding(String),
}

/// The result of `sys/init`.
pub struct InitResult {
    /// Unseal key shares.
    pub keys: Vec<Zeroizing<Vec<u8>>>,
    /// The initial root token.
    pub root_token: String,
}

/// Decodes an unseal key given as base64 or hex.
pub fn decode_key(key: &str) -> Result<Vec<u8>, CoreError> {
    use base64::Engine;
    let key = key.trim();
    if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(key)
        && (b.len() == barrier::KEY_LEN || b.len() == barrier::KEY_LEN + 1)
    {
        return Ok(b);
    }
    if let Ok(b) = hex::decode(key) {
        return Ok(b);
    }
    Err(CoreError::KeyEncoding(
        "give the key exactly as `operator init` printed it (base64 or hex)".into(),
    ))
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Core {
    /// A sealed core over `physical`, with the built-in engines registered
    /// and no plugin runtime (plugin mounts cannot start).
    pub fn new(physical: Arc<dyn Physical>, config: CoreConfig) -> Self {
        let none = Arc::new(NoPlugins);
        Self::with_plugins(physical, config, none.clone(), none)
    }

    /// A sealed core whose plugin mounts run on `plugins` and whose plugin
    /// images come from `images` (the server assembly passes the plugin
    /// host's implementations).
    pub fn with_plugins(
        physical: Arc<dyn Physical>,
        config: CoreConfig,
        plugins: Arc<dyn PluginRuntime>,
        images: Arc<dyn ImageStore>,
    ) -> Self {
        let mut engines: HashMap<String, EngineFactory> = HashMap::new();
        engines.insert(
            "kv".into(),
            Arc::new(|_| Ok(Arc::new(builtin::kv::Kv) as Arc<dyn Backend>)),
        );
        Self {
            physical,
            config,
            plugins,
            images,
            state: RwLock::new(None),
            unseal: tokio::sync::Mutex::new(UnsealProgress::default()),
            lifecycle: tokio::sync::Mutex::new(()),
            engines,
            ha: ha::HaState::default(),
        }
    }

    /// Registers an engine type (used by the plugin layer and tests).
    pub fn register_engine(&mut self, kind: &str, factory: EngineFactory) {
        self.engines.insert(kind.to_string(), factory);
    }

    pub(crate) fn active(&self) -> Option<Arc<Active>> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The active state, or why there is none: sealed, or an HA standby.
    pub(crate) fn serving(&self) -> Result<Arc<Active>, RequestError> {
        self.active().ok_or_else(|| {
            if self.is_standby() {
                RequestError::Standby
            } else {
                RequestError::Sealed
            }
        })
    }

    /// The barrier while unsealed (`None` when sealed): for the layers
    /// above that keep their own records in it (the plugin image index).
    pub fn barrier(&self) -> Option<Arc<Barrier>> {
        self.active().map(|a| a.barrier.clone())
    }

    /// Reopens the audit devices' files (SIGHUP, after logrotate).
    pub fn reopen_audit(&self) {
        if let Some(a) = self.active() {
            a.audit.reopen();
        }
        // A standby's read view opens its devices again when rebuilt.
        self.ha.forget_view();
    }

    /// Whether the core is sealed (an HA standby is unsealed).
    pub fn is_sealed(&self) -> bool {
        self.active().is_none() && !self.is_standby()
    }

    /// Whether the storage has been initialized.
    pub async fn is_initialized(&self) -> Result<bool, CoreError> {
        Ok(barrier::seal_config(self.physical.as_ref())
            .await?
            .is_some())
    }

    /// The physical backend (for tests that inspect the bytes on disk).
    pub fn physical(&self) -> Arc<dyn Physical> {
        self.physical.clone()
    }

    /// Initializes storage: creates keys and the root token. The core stays
    /// sealed afterwards, as in Vault.
    pub async fn initialize(
        &self,
        shares: u32,
        threshold: u32,
        root_token_id: Option<String>,
    ) -> Result<InitResult, CoreError> {
        let _guard = self.lifecycle.lock().await;
        let _leader = self.lead_for_init().await?;
        if self.is_initialized().await? {
            return Err(CoreError::AlreadyInitialized);
        }
        let init = Barrier::initialize(self.physical.clone(), shares, threshold).await?;
        let barrier = Arc::new(init.barrier);
        let tokens = TokenStore::open(
            barrier.clone(),
            self.config.default_lease_ttl,
            self.config.max_lease_ttl,
        )
        .await?;
        policies::PolicyStore::open(barrier.clone()).await?;
        let (root_token, _) = tokens
            .create(
                None,
                tokens::CreateParams {
                    id: root_token_id,
                    path: "auth/token/root".into(),
                    ..Default::default()
                },
            )
            .await?;
        self.load_mount_tables(&barrier).await?;
        Ok(InitResult {
            keys: init.shares,
            root_token,
        })
    }

    /// Submits one unseal key. Returns `true` once unsealed.
    pub async fn submit_unseal_key(&self, key: &[u8]) -> Result<bool, CoreError> {
        let _guard = self.lifecycle.lock().await;
        if !self.is_sealed() {
            return Ok(true);
        }
        let config = barrier::seal_config(self.physical.as_ref())
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        let mut progress = self.unseal.lock().await;
        if !progress.parts.iter().any(|p| p.as_slice() == key) {
            progress.parts.push(Zeroizing::new(key.to_vec()));
        }
        if progress.nonce.is_empty() {
            progress.nonce = new_uuid();
        }
        if (progress.parts.len() as u32) < config.secret_threshold {
            return Ok(false);
        }
        let parts: Vec<Vec<u8>> = progress.parts.iter().map(|p| p.to_vec()).collect();
        *progress = UnsealProgress::default();
        drop(progress);
        let barrier = Arc::new(Barrier::unseal(self.physical.clone(), &parts).await?);
        if self.ha.enabled() {
            // HA: unsealed as a standby; the server's leadership loop
            // promotes it once it holds the lock.
            self.ha.set_standby(Some(barrier));
            tracing::info!("lockbox unsealed as a standby");
            return Ok(true);
        }
        let active = self.activate(barrier).await?;
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Some(active);
        self.ha.set_role(ha::Role::Active);
        tracing::info!("lockbox unsealed");
        Ok(true)
    }

    /// Clears submitted unseal keys.
    pub async fn reset_unseal(&self) {
        *self.unseal.lock().await = UnsealProgress::default();
    }

    /// Seals: drops every key and stops every mount's engine.
    pub async fn seal(&self) {
        let _guard = self.lifecycle.lock().await;
        let standby = self.ha.set_standby(None).is_some();
        self.ha.set_role(ha::Role::Sealed);
        let active = self.state.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(active) = active {
            stop_engines(&active).await;
            tracing::info!("lockbox sealed");
        } else if standby {
            tracing::info!("lockbox sealed (was a standby)");
        }
    }

    async fn load_table(
        barrier: &Barrier,
        path: &str,
    ) -> Result<Option<Vec<MountEntry>>, CoreError> {
        match barrier.get(path).await? {
            None => Ok(None),
            Some(raw) => serde_json::from_slice(&raw).map(Some).map_err(|e| {
                CoreError::Request(RequestError::Internal(format!(
                    "mount table {path} is corrupt: {e}"
                )))
            }),
        }
    }

    /// Loads the mount tables, writing the defaults on first use.
    async fn load_mount_tables(&self, barrier: &Barrier) -> Result<Vec<MountEntry>, CoreError> {
        let mounts = match Self::load_table(barrier, mounts::MOUNTS_PATH).await? {
            Some(t) => t,
            None => {
                let t = vec![self.fixed_entry(
                    Table::Mounts,
                    "sys/",
                    "system",
                    "system endpoints used for control, policy and debugging",
                )];
                persist_table(barrier, mounts::MOUNTS_PATH, &t).await?;
                t
            }
        };
        let auth = match Self::load_table(barrier, mounts::AUTH_PATH).await? {
            Some(t) => t,
            None => {
                let t = vec![self.fixed_entry(
                    Table::Auth,
                    "auth/token/",
                    "token",
                    "token based credentials",
                )];
                persist_table(barrier, mounts::AUTH_PATH, &t).await?;
                t
            }
        };
        Ok(mounts.into_iter().chain(auth).collect())
    }

    fn fixed_entry(&self, table: Table, path: &str, kind: &str, description: &str) -> MountEntry {
        MountEntry {
            table,
            path: path.into(),
            kind: kind.into(),
            description: description.into(),
            uuid: new_uuid(),
            accessor: mounts::new_accessor(kind),
            config: Default::default(),
            options: Default::default(),
            local: false,
            seal_wrap: false,
            plugin_version: String::new(),
            builtin_fixed: true,
            owner: String::new(),
        }
    }

    /// Builds the routing entry for a mount, starting its engine.
    pub(crate) async fn build_route(&self, barrier: &Arc<Barrier>, entry: MountEntry) -> Route {
        let view = View::new(barrier.clone(), entry.storage_prefix());
        let handler = match entry.kind.as_str() {
            "system" if entry.builtin_fixed => Handler::System,
            "token" if entry.builtin_fixed => Handler::Token,
            kind => match self
                .engines
                .get(kind)
                .filter(|_| !mounts::served_by_plugin(kind, &entry.options))
            {
                None => match self.plugin_backend(barrier, &entry, &view).await {
                    Ok(b) => Handler::Backend(b),
                    Err(msg) => Handler::Unavailable(msg),
                },
                Some(factory) => match factory(&entry) {
                    Err(e) => Handler::Unavailable(e),
                    Ok(backend) => match backend.initialize(&view).await {
                        Ok(()) => Handler::Backend(backend),
                        Err(e) => Handler::Unavailable(format!("engine failed to initialize: {e}")),
                    },
                },
            },
        };
        if let Handler::Unavailable(msg) = &handler {
            tracing::error!(path = %entry.path, kind = %entry.kind, "mount unavailable: {msg}");
        }
        Route {
            entry,
            handler,
            view,
        }
    }

    /// Starts (or joins) the plugin process for a plugin-backed mount.
    async fn plugin_backend(
        &self,
        barrier: &Arc<Barrier>,
        entry: &MountEntry,
        view: &View,
    ) -> Result<Arc<dyn Backend>, String> {
        use crate::catalog::{Catalog, PluginType};
        let ptype = match entry.table {
            Table::Mounts => PluginType::Secret,
            Table::Auth => PluginType::Auth,
        };
        let cat = Catalog::new(barrier)
            .resolve(ptype, &entry.kind, &entry.plugin_version)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                if mounts::served_by_plugin(&entry.kind, &entry.options) {
                    return format!(
                        "kv version 2 is served by the kv plugin (Vault's vault-plugin-secrets-kv, run unmodified), which is not in the catalog: register its binary as secret plugin \"kv\" (lockbox plugin register -sha256=SHA256 -command=vault-plugin-secrets-kv secret kv); kv version 1 is built in{}",
                        if entry.plugin_version.is_empty() {
                            String::new()
                        } else {
                            format!(" (plugin version {} asked)", entry.plugin_version)
                        }
                    );
                }
                let v = if entry.plugin_version.is_empty() {
                    String::new()
                } else {
                    format!(" version {}", entry.plugin_version)
                };
                format!(
                    "plugin not found in the catalog: {} ({}){v}",
                    entry.kind,
                    ptype.as_str()
                )
            })?;
        self.images
            .ensure(barrier, &cat)
            .await
            .map_err(|e| format!("plugin {}: {e}", cat.name))?;
        let (default_ttl, max_ttl) = self.effective_ttls(entry);
        let spec = MountSpec {
            mount_id: entry.uuid.clone(),
            mount_path: entry.path.clone(),
            mount_accessor: entry.accessor.clone(),
            mount_type: entry.kind.clone(),
            options: entry.options.clone().into_iter().collect(),
            default_lease_ttl: default_ttl,
            max_lease_ttl: max_ttl,
        };
        let backend = self.plugins.mount(&cat, spec, view.clone()).await?;
        let expected = match entry.table {
            Table::Mounts => BackendKind::Secret,
            Table::Auth => BackendKind::Credential,
        };
        if backend.kind() != expected {
            backend.cleanup().await;
            return Err(format!(
                "plugin {} reports itself as {}, but the catalog registers it as {}",
                cat.name,
                if backend.kind() == BackendKind::Secret {
                    "a secrets engine"
                } else {
                    "an auth method"
                },
                ptype.as_str()
            ));
        }
        Ok(backend)
    }

    /// Rebuilds one mount's route from its table entry (restarting its
    /// engine), e.g. after a plugin that failed to start was fixed.
    pub(crate) async fn restart_route(
        &self,
        active: &Active,
        path: &str,
    ) -> Result<(), RequestError> {
        let _guard = active.mount_lock.lock().await;
        let routes = active.routes();
        let Some(old) = routes.get(path).cloned() else {
            return Err(RequestError::invalid(format!("no mount at {path}")));
        };
        if let Handler::Backend(b) = &old.handler {
            b.cleanup().await;
        }
        let route = self.build_route(&active.barrier, old.entry.clone()).await;
        if let Handler::Unavailable(msg) = &route.handler {
            let msg = msg.clone();
            let mut new_routes = (*routes).clone();
            new_routes.insert(path.to_string(), Arc::new(route));
            *active.routes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new_routes);
            return Err(RequestError::invalid(format!(
                "{path} is still unavailable: {msg}"
            )));
        }
        let mut new_routes = (*routes).clone();
        new_routes.insert(path.to_string(), Arc::new(route));
        *active.routes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new_routes);
        Ok(())
    }

    /// Registers a plugin in the catalog directly (dev mode, operator).
    pub async fn register_plugin(
        &self,
        entry: &crate::catalog::CatalogEntry,
    ) -> Result<(), RequestError> {
        let active = self.serving()?;
        crate::catalog::Catalog::new(&active.barrier)
            .put(entry)
            .await
    }

    /// The plugin runtime serving plugin mounts.
    pub(crate) fn plugin_runtime(&self) -> &Arc<dyn PluginRuntime> {
        &self.plugins
    }

    /// The plugin image store.
    pub(crate) fn image_store(&self) -> &Arc<dyn ImageStore> {
        &self.images
    }

    /// Prunes the plugin cache, keeping what the catalog references and
    /// what runs.
    pub(crate) async fn prune_plugin_cache(&self, barrier: &Barrier) {
        let running = self.plugins.running_sha256s();
        self.images.prune(barrier, running).await;
    }

    async fn activate(&self, barrier: Arc<Barrier>) -> Result<Arc<Active>, CoreError> {
        let tokens = TokenStore::open(
            barrier.clone(),
            self.config.default_lease_ttl,
            self.config.max_lease_ttl,
        )
        .await?;
        let policies = policies::PolicyStore::open(barrier.clone()).await?;
        let entries = self.load_mount_tables(&barrier).await?;
        sweep_orphaned_mount_data(&barrier, &entries).await?;
        let mut routes = HashMap::new();
        for entry in entries {
            let route = self.build_route(&barrier, entry).await;
            routes.insert(route.entry.path.clone(), Arc::new(route));
        }
        let leases = Arc::new(leases::Leases::new(barrier.clone()));
        let audit = Arc::new(audit::AuditBroker::open(barrier.clone()).await?);
        tokens.attach_leases(leases.clone());
        let active = Arc::new(Active::new(
            barrier, tokens, policies, routes, audit, leases,
        ));
        spawn_token_expiry(Arc::downgrade(&active));
        leases::spawn_expiry(Arc::downgrade(&active));
        // While unsealed, the plugin supervisor can pull a deleted
        // image-sourced binary again (the catalog index is in the barrier).
        let images = self.images.clone();
        let weak = Arc::downgrade(&active);
        self.plugins.set_restorer(Some(Arc::new(move |entry| {
            let images = images.clone();
            let weak = weak.clone();
            Box::pin(async move {
                let active = weak
                    .upgrade()
                    .ok_or_else(|| "lockbox is sealed".to_string())?;
                images.ensure(&active.barrier, &entry).await
            })
        })));
        Ok(active)
    }

    /// What an HA standby serves reads from (`ha`): the state an active
    /// node has, read from storage and never written: the mount tables
    /// (engines whose reads change nothing built, every other mount
    /// `Unavailable` here: plugin processes run only on the active node),
    /// the policies, a read-only token store, the audit devices. No
    /// expiry task runs and no lease is kept.
    pub(crate) async fn build_read_view(&self, barrier: Arc<Barrier>) -> Result<Active, CoreError> {
        let tokens = TokenStore::open_read_only(barrier.clone()).await?;
        let policies = policies::PolicyStore::open(barrier.clone()).await?;
        let mut routes = HashMap::new();
        for table in [mounts::MOUNTS_PATH, mounts::AUTH_PATH] {
            let entries = Self::load_table(&barrier, table).await?.ok_or_else(|| {
                CoreError::Request(RequestError::Internal(format!(
                    "mount table {table} is not written yet"
                )))
            })?;
            for entry in entries {
                let view = View::new(barrier.clone(), entry.storage_prefix());
                let backend = self
                    .engines
                    .get(&entry.kind)
                    .filter(|_| {
                        !entry.builtin_fixed
                            && !mounts::served_by_plugin(&entry.kind, &entry.options)
                    })
                    .and_then(|factory| factory(&entry).ok())
                    .filter(|b| b.reads_change_nothing());
                let handler = match backend {
                    Some(b) => Handler::Backend(b),
                    None => Handler::Unavailable("served by the active node".into()),
                };
                routes.insert(
                    entry.path.clone(),
                    Arc::new(Route {
                        entry,
                        handler,
                        view,
                    }),
                );
            }
        }
        let audit = Arc::new(audit::AuditBroker::open(barrier.clone()).await?);
        let leases = Arc::new(leases::Leases::new(barrier.clone()));
        Ok(Active::new(
            barrier, tokens, policies, routes, audit, leases,
        ))
    }

    /// Whether an engine type can be mounted.
    pub(crate) fn engine_kind(&self, kind: &str) -> Option<BackendKind> {
        let factory = self.engines.get(kind)?;
        let probe = MountEntry {
            table: Table::Mounts,
            path: String::new(),
            kind: kind.into(),
            description: String::new(),
            uuid: String::new(),
            accessor: String::new(),
            config: Default::default(),
            options: Default::default(),
            local: false,
            seal_wrap: false,
            plugin_version: String::new(),
            builtin_fixed: false,
            owner: String::new(),
        };
        factory(&probe).ok().map(|b| b.kind())
    }

    /// A mount's (default, max) TTLs: its own, or the system's where it
    /// sets none; not clamped to each other (what tune reads report).
    pub(crate) fn configured_ttls(&self, entry: &MountEntry) -> (u64, u64) {
        let own_or_system = |own: u64, system: u64| if own == 0 { system } else { own };
        (
            own_or_system(
                entry.config.default_lease_ttl,
                self.config.default_lease_ttl,
            ),
            own_or_system(entry.config.max_lease_ttl, self.config.max_lease_ttl),
        )
    }

    /// The effective TTLs of a mount: the default clamped to the max.
    pub(crate) fn effective_ttls(&self, entry: &MountEntry) -> (u64, u64) {
        let (default, max) = self.configured_ttls(entry);
        (default.min(max), max)
    }

    /// Convenience for embedding and tests: mount an engine directly.
    pub async fn enable_mount(
        &self,
        path: &str,
        kind: &str,
        description: &str,
    ) -> Result<(), RequestError> {
        let active = self.serving()?;
        let input = admin::EnableMount {
            kind: kind.into(),
            description: description.into(),
            ..Default::default()
        };
        let caller = admin::Caller::of(None);
        admin::mounts::enable(self, &active, &caller, Table::Mounts, path, input).await
    }

    pub(crate) fn config(&self) -> &CoreConfig {
        &self.config
    }

    pub(crate) fn physical_ref(&self) -> &dyn Physical {
        self.physical.as_ref()
    }

    pub(crate) async fn unseal_progress(&self) -> (u32, String) {
        let p = self.unseal.lock().await;
        (p.parts.len() as u32, p.nonce.clone())
    }
}

pub(crate) async fn persist_table(
    barrier: &Barrier,
    path: &str,
    table: &[MountEntry],
) -> Result<(), RequestError> {
    let raw = serde_json::to_vec(table).map_err(|e| RequestError::Internal(e.to_string()))?;
    barrier.put(path, &raw).await?;
    Ok(())
}

/// Creates a token directly (dev mode root token and tests).
pub async fn create_root_token(core: &Core, id: Option<String>) -> Result<String, RequestError> {
    let active = core.serving()?;
    let (id, _) = active
        .tokens
        .create(
            None,
            tokens::CreateParams {
                id,
                path: "auth/token/root".into(),
                ..Default::default()
            },
        )
        .await?;
    Ok(id)
}

/// How often expired tokens are removed from storage.
const TOKEN_EXPIRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Revokes expired tokens in the background while this unsealed state
/// lives; the task ends when the core seals (the state is dropped).
fn spawn_token_expiry(active: std::sync::Weak<Active>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TOKEN_EXPIRY_INTERVAL).await;
            let Some(active) = active.upgrade() else {
                return;
            };
            match active.tokens.revoke_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(revoked = n, "expired tokens revoked"),
                Err(e) => tracing::warn!("revoking expired tokens failed: {e}"),
            }
        }
    });
}

/// Removes the data of mounts that are no longer in the mount table. Disable
/// saves the table first and then clears the mount's data, so a crash in
/// between leaves data no mount can reach; it is removed at the next unseal.
async fn sweep_orphaned_mount_data(
    barrier: &Barrier,
    entries: &[MountEntry],
) -> Result<(), CoreError> {
    let live: std::collections::HashSet<String> =
        entries.iter().map(MountEntry::storage_prefix).collect();
    for root in ["logical/", "auth/"] {
        for child in barrier.list(root).await? {
            let prefix = format!("{root}{child}");
            if !child.ends_with('/') || live.contains(&prefix) {
                continue;
            }
            let removed = barrier.delete_prefix(&prefix).await?;
            tracing::warn!(%prefix, removed, "removed data of a mount no longer in the mount table");
        }
    }
    Ok(())
}
