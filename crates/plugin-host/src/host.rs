//! The plugin host: supervised process groups, multiplexing, mounts, and
//! zero-downtime reload.
//!
//! ```text
//!  PluginBackend (one per mount) ──group──▶ Group (one per name+version+sha256,
//!        │   swapped atomically on reload        or per mount without multiplexing)
//!        │                                        │ current: Option<PluginProcess>
//!        └─ requests: take current process,       │ supervisor task: restart with backoff
//!           count in-flight, call with timeout    ▼
//!                                              PluginProcess (verified exec, gRPC)
//! ```
//!
//! Invariants:
//! * a request obtains its process and marks itself in flight under the
//!   mount's group lock, so a reload that swaps the group and then waits for
//!   the old process's in-flight count to reach zero never stops a process
//!   with a request still on it;
//! * a crashed process is replaced in place (same group) after backoff, its
//!   mounts set up again; while it is down, requests fail fast with 503;
//! * a group with no mounts left is retired and its process stopped.
//!
//! Each group has a supervisor task ([`supervisor`]: waits, sleeps,
//! relaunches, publishes [`PluginEvent`]s) that takes every decision from
//! the state machine of [`crate::supervision`].

use super::PluginError;
use super::cache::{self, MountGeneration, ResponseCache};
use super::process::{self, LaunchConfig, PluginProcess};
use super::supervision::Backoff;
use lockbox_core::barrier::View;
use lockbox_core::catalog::{CatalogEntry, resolve_command};
use lockbox_core::logical::{BackendKind, SpecialPaths};
use lockbox_core::runtime::BinaryRestorer;
use lockbox_plugin_proto::v1;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

/// Host settings.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where plugin binaries must live; `None` disables external plugins.
    pub plugin_directory: Option<PathBuf>,
    /// The content-addressed cache of binaries pulled from OCI images.
    pub plugin_cache_directory: Option<PathBuf>,
    /// Process launch settings.
    pub launch: LaunchConfig,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// First restart delay after a crash.
    pub backoff_initial: Duration,
    /// Longest restart delay.
    pub backoff_max: Duration,
    /// How long a reload waits for in-flight requests on the old process.
    pub drain_timeout: Duration,
    /// Size bound of the read-response cache in bytes (0 = off); see
    /// [`super::cache`].
    pub response_cache_size: u64,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            plugin_directory: None,
            plugin_cache_directory: None,
            launch: LaunchConfig {
                // Unpredictable, created 0700 and checked at each launch
                // (`process::ensure_private_dir`).
                runtime_dir: std::env::temp_dir().join(format!(
                    "lockbox-plugins-{}-{}",
                    std::process::id(),
                    process::random_suffix()
                )),
                handshake_timeout: Duration::from_secs(10),
                stop_grace: Duration::from_secs(5),
                read_grants: Vec::new(),
            },
            request_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            response_cache_size: cache::DEFAULT_SIZE,
        }
    }
}

type GroupKey = (String, String, String, String);

pub use crate::supervision::{CRASH_LOOP_THRESHOLD, CRASH_LOOP_WINDOW, is_crash_loop_report};

/// What supervision reports to subscribers ([`PluginHost::subscribe`]), for
/// example the operator, which turns crash loops into Kubernetes events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEvent {
    /// Catalog name.
    pub name: String,
    /// Catalog version (may be empty).
    pub version: String,
    /// sha256 of the catalog entry.
    pub sha256: String,
    /// Routing paths of the mounts the process serves (e.g. `mock/`).
    pub mount_paths: Vec<String>,
    /// What happened.
    pub kind: PluginEventKind,
}

/// The kinds of [`PluginEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginEventKind {
    /// The process exited unexpectedly.
    Exited {
        /// The exit status, or why a restart failed.
        reason: String,
    },
    /// The process keeps failing: `failures` consecutive exits within
    /// [`CRASH_LOOP_WINDOW`] of starting, or failed restarts; sent when the
    /// count reaches [`CRASH_LOOP_THRESHOLD`] and every 10 failures after.
    CrashLoop {
        /// Consecutive failures so far.
        failures: u32,
        /// The last exit status or restart error.
        reason: String,
        /// Delay before the next restart attempt.
        next_restart: Duration,
    },
    /// A process is serving again after exits.
    Restarted {
        /// The new process's pid.
        pid: u32,
    },
}

#[derive(Clone)]
struct MountSetup {
    setup: v1::SetupRequest,
    view: View,
    generation: Arc<MountGeneration>,
}

/// A supervised process slot and the mounts it serves.
pub struct Group {
    key: GroupKey,
    entry: CatalogEntry,
    binary: PathBuf,
    current: RwLock<Option<Arc<PluginProcess>>>,
    last_exit: Mutex<Option<String>>,
    mounts: tokio::sync::Mutex<HashMap<String, MountSetup>>,
    retired: AtomicBool,
    restarts: AtomicU64,
}

impl Group {
    fn current(&self) -> Option<Arc<PluginProcess>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The catalog entry this group runs.
    pub fn entry(&self) -> &CatalogEntry {
        &self.entry
    }

    /// How many times the process was restarted after crashing.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// The current process ID, if running.
    pub fn pid(&self) -> Option<u32> {
        self.current().map(|p| p.pid)
    }
}

async fn setup_mount(p: &PluginProcess, m: &MountSetup) -> Result<(), PluginError> {
    let id = m.setup.mount_id.clone();
    // The plugin may derive state from the setup: earlier answers are void.
    m.generation.bump();
    let Some(client) = p.client() else {
        return setup_vault_mount(p, m).await;
    };
    p.storage.assign(&id, m.view.clone(), m.generation.clone());
    let rpc = |e: tonic::Status| PluginError::Rpc {
        name: p.name.clone(),
        message: e.message().to_string(),
    };
    let reply = client
        .clone()
        .setup(m.setup.clone())
        .await
        .map_err(rpc)?
        .into_inner();
    if !reply.error.is_empty() {
        p.storage.unassign(&id);
        return Err(PluginError::Setup {
            name: p.name.clone(),
            mount: m.setup.mount_path.clone(),
            message: reply.error,
        });
    }
    client
        .clone()
        .initialize(v1::MountRef { mount_id: id })
        .await
        .map_err(rpc)?;
    Ok(())
}

/// [`setup_mount`] for a Vault-protocol process: its broker socket for the
/// mount, `Setup`, `Initialize` and what the plugin says about the mount.
async fn setup_vault_mount(p: &PluginProcess, m: &MountSetup) -> Result<(), PluginError> {
    let Some(conn) = p.vault() else {
        return Ok(());
    };
    conn.setup(&m.setup, m.view.clone(), m.generation.clone(), &p.name)
        .await
        .map(|_| ())
        .map_err(|message| PluginError::Setup {
            name: p.name.clone(),
            mount: m.setup.mount_path.clone(),
            message,
        })
}

/// Starts processes, keeps them alive, and hands out mount backends.
pub struct PluginHost {
    /// This host, for the `PluginRuntime` methods that start groups.
    this: Weak<PluginHost>,
    cfg: HostConfig,
    restorer: RwLock<Option<BinaryRestorer>>,
    /// `plugin_directory`, apart from `cfg` because SIGHUP can change it.
    plugin_directory: std::sync::RwLock<Option<PathBuf>>,
    cache: Option<ResponseCache>,
    events: tokio::sync::broadcast::Sender<PluginEvent>,
    groups: Mutex<HashMap<GroupKey, Weak<Group>>>,
    all: Mutex<Vec<Weak<Group>>>,
    /// sha256s of Vault plugins that said they do not multiplex: each of
    /// their mounts gets a process of its own.
    single_mount: Mutex<std::collections::HashSet<String>>,
    /// Consecutive failed first starts per (name, version, sha256): a
    /// plugin that never comes up is a crash loop too (no supervisor sees
    /// it, since no process ever served).
    start_failures: Mutex<HashMap<(String, String, String), u32>>,
}

impl PluginHost {
    /// A host with no processes yet.
    pub fn new(cfg: HostConfig) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            this: this.clone(),
            cache: ResponseCache::new(cfg.response_cache_size),
            events: tokio::sync::broadcast::channel(256).0,
            plugin_directory: std::sync::RwLock::new(cfg.plugin_directory.clone()),
            restorer: RwLock::new(None),
            cfg,
            groups: Mutex::new(HashMap::new()),
            all: Mutex::new(Vec::new()),
            single_mount: Mutex::default(),
            start_failures: Mutex::default(),
        })
    }

    /// Counts a failed first start of `entry` for the mount at
    /// `mount_path`; at the crash-loop threshold (then every 10th) it is
    /// published as a [`PluginEventKind::CrashLoop`] naming that mount. A
    /// start that succeeds resets the count.
    fn start_failed(&self, entry: &CatalogEntry, mount_path: &str, reason: &str) {
        let key = (
            entry.name.clone(),
            entry.version.clone(),
            entry.sha256.clone(),
        );
        let failures = {
            let mut counts = self
                .start_failures
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let n = counts.entry(key).or_insert(0);
            *n += 1;
            *n
        };
        if crate::supervision::is_crash_loop_report(failures) {
            let _ = self.events.send(PluginEvent {
                name: entry.name.clone(),
                version: entry.version.clone(),
                sha256: entry.sha256.clone(),
                mount_paths: vec![mount_path.to_string()],
                kind: PluginEventKind::CrashLoop {
                    failures,
                    reason: reason.to_string(),
                    next_restart: Duration::ZERO,
                },
            });
        }
    }

    fn start_succeeded(&self, entry: &CatalogEntry) {
        self.start_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(
                entry.name.clone(),
                entry.version.clone(),
                entry.sha256.clone(),
            ));
    }

    /// Supervision events (exits, crash loops, restarts) from now on. A
    /// subscriber that falls more than 256 events behind loses the oldest.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<PluginEvent> {
        self.events.subscribe()
    }

    async fn emit(&self, g: &Group, kind: PluginEventKind) {
        let mut mount_paths: Vec<String> = g
            .mounts
            .lock()
            .await
            .values()
            .map(|m| m.setup.mount_path.clone())
            .collect();
        mount_paths.sort();
        // No subscriber is fine.
        let _ = self.events.send(PluginEvent {
            name: g.entry.name.clone(),
            version: g.entry.version.clone(),
            sha256: g.entry.sha256.clone(),
            mount_paths,
            kind,
        });
    }

    /// The settings.
    pub fn config(&self) -> &HostConfig {
        &self.cfg
    }

    /// Sets (or clears) how a missing image-sourced binary is restored.
    pub fn set_restorer(&self, restorer: Option<BinaryRestorer>) {
        *self.restorer.write().unwrap_or_else(|e| e.into_inner()) = restorer;
    }

    /// Restores a missing image-sourced binary before a relaunch; other
    /// entries, and binaries that are present, need nothing.
    async fn restore_binary(
        &self,
        entry: &CatalogEntry,
        binary: &std::path::Path,
    ) -> Result<(), String> {
        if entry.oci.is_none() || binary.exists() {
            return Ok(());
        }
        let restorer = self
            .restorer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match restorer {
            Some(restore) => restore(entry.clone()).await,
            None => Err(format!("plugin binary {} is missing", binary.display())),
        }
    }

    /// The directory plugin binaries must live in, as configured now.
    pub fn plugin_directory(&self) -> Option<PathBuf> {
        self.plugin_directory
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes `plugin_directory` (SIGHUP). Running processes keep running;
    /// the next exec of any plugin (start, restart, reload) reads from the
    /// new directory and verifies its sha256 as always.
    pub fn set_plugin_directory(&self, dir: Option<PathBuf>) {
        *self
            .plugin_directory
            .write()
            .unwrap_or_else(|e| e.into_inner()) = dir;
    }

    /// The file a catalog entry runs: `command` inside `plugin_directory`,
    /// or, for an image-sourced entry, `<plugin cache>/sha256/<sha256>`.
    /// Either way the process launcher hashes the bytes again before exec.
    pub fn binary_path(&self, entry: &CatalogEntry) -> Result<PathBuf, PluginError> {
        if entry.oci.is_some() {
            let cache = self.cfg.plugin_cache_directory.as_deref().ok_or_else(|| PluginError::Command {
                name: entry.name.clone(),
                message: "the plugin comes from an OCI image but no plugin cache directory is configured (plugin_cache_directory)".into(),
            })?;
            return Ok(lockbox_oci::Cache::new(cache, 0).path_for(&entry.sha256));
        }
        let dir = self
            .plugin_directory()
            .ok_or(PluginError::NoPluginDirectory)?;
        resolve_command(&dir, &entry.command).map_err(|e| PluginError::Command {
            name: entry.name.clone(),
            message: e.to_string(),
        })
    }

    /// Live groups, for status and metrics.
    pub fn groups(&self) -> Vec<Arc<Group>> {
        let mut all = self.all.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.iter()
            .filter_map(Weak::upgrade)
            .filter(|g| !g.retired.load(Ordering::SeqCst))
            .collect()
    }

    /// Starts a brand-new group (a fresh, verified process).
    async fn start_group(
        self: &Arc<Self>,
        entry: &CatalogEntry,
        mount_id: &str,
    ) -> Result<Arc<Group>, PluginError> {
        let binary = self.binary_path(entry)?;
        let proc = process::launch(entry, &binary, &self.cfg.launch).await?;
        if proc.vault().is_some_and(|v| !v.multiplexed) {
            self.single_mount
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(entry.sha256.clone());
        }
        let key = self.key_for(entry, mount_id);
        let group = Arc::new(Group {
            key: key.clone(),
            entry: entry.clone(),
            binary,
            current: RwLock::new(Some(proc)),
            last_exit: Mutex::new(None),
            mounts: tokio::sync::Mutex::new(HashMap::new()),
            retired: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
        });
        self.all
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&group));
        let backoff = Backoff {
            initial: self.cfg.backoff_initial,
            max: self.cfg.backoff_max,
        };
        tokio::spawn(supervisor::supervise(
            supervisor::GroupJob::new(self, &group),
            backoff,
        ));
        Ok(group)
    }

    /// Whether mounts of `entry` share one process: the catalog says so,
    /// and (for a Vault plugin) the plugin did not say it cannot.
    fn multiplexes(&self, entry: &CatalogEntry) -> bool {
        entry.multiplexing
            && !self
                .single_mount
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&entry.sha256)
    }

    fn key_for(&self, entry: &CatalogEntry, mount_id: &str) -> GroupKey {
        let scope = if self.multiplexes(entry) {
            String::new()
        } else {
            mount_id.to_string()
        };
        (
            entry.name.clone(),
            entry.version.clone(),
            entry.sha256.clone(),
            scope,
        )
    }

    /// The running group for `entry` (multiplexed), or a new one.
    async fn group_for(
        self: &Arc<Self>,
        entry: &CatalogEntry,
        mount_id: &str,
        fresh: bool,
    ) -> Result<Arc<Group>, PluginError> {
        let key = self.key_for(entry, mount_id);
        if !fresh {
            let existing = self
                .groups
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .and_then(Weak::upgrade)
                .filter(|g| !g.retired.load(Ordering::SeqCst));
            if let Some(g) = existing {
                return Ok(g);
            }
        }
        let group = self.start_group(entry, mount_id).await?;
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(group.key.clone(), Arc::downgrade(&group));
        Ok(group)
    }

    async fn attach(&self, group: &Arc<Group>, m: MountSetup) -> Result<(), PluginError> {
        let mut mounts = group.mounts.lock().await;
        let proc = group.current().ok_or_else(|| PluginError::Down {
            name: group.entry.name.clone(),
            reason: group
                .last_exit
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_default(),
        })?;
        setup_mount(&proc, &m).await?;
        mounts.insert(m.setup.mount_id.clone(), m);
        Ok(())
    }

    async fn detach(&self, group: &Arc<Group>, mount_id: &str) {
        let mut mounts = group.mounts.lock().await;
        if mounts.remove(mount_id).is_none() {
            return;
        }
        if let Some(p) = group.current() {
            if let Some(mut client) = p.client() {
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    client.cleanup(v1::MountRef {
                        mount_id: mount_id.to_string(),
                    }),
                )
                .await;
            }
            if let Some(conn) = p.vault() {
                conn.cleanup(mount_id).await;
            }
            p.storage.unassign(mount_id);
        }
        if mounts.is_empty() {
            group.retired.store(true, Ordering::SeqCst);
            {
                let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
                if groups
                    .get(&group.key)
                    .is_some_and(|w| w.as_ptr() == Arc::as_ptr(group))
                {
                    groups.remove(&group.key);
                }
            }
            if let Some(pid) = retire(group).await {
                tracing::info!(plugin = %group.entry.name, pid, "plugin process stopped: no mounts left");
            }
        }
    }

    /// Mounts a plugin: starts or reuses its process and sets the mount up.
    pub async fn mount(
        self: &Arc<Self>,
        entry: &CatalogEntry,
        setup: v1::SetupRequest,
        view: View,
    ) -> Result<Arc<PluginBackend>, PluginError> {
        let mount_id = setup.mount_id.clone();
        let group = match self.group_for(entry, &mount_id, false).await {
            Ok(g) => {
                self.start_succeeded(entry);
                g
            }
            Err(e) => {
                self.start_failed(entry, &setup.mount_path, &e.to_string());
                return Err(e);
            }
        };
        let info = group.current().map(|p| p.info.clone()).unwrap_or_default();
        let generation = MountGeneration::new();
        let m = MountSetup {
            setup,
            view,
            generation: generation.clone(),
        };
        if let Err(e) = self.attach(&group, m).await {
            retire_if_empty(&group).await;
            return Err(e);
        }
        // A Vault plugin says what it is per mount, at setup.
        let vault = group
            .current()
            .and_then(|p| p.vault().and_then(|v| v.mount_meta(&mount_id)));
        let (kind, special) = match vault {
            Some(meta) => (meta.kind, meta.special),
            None => (
                match v1::BackendKind::try_from(info.kind) {
                    Ok(v1::BackendKind::Credential) => BackendKind::Credential,
                    _ => BackendKind::Secret,
                },
                SpecialPaths {
                    root: info.root_paths.clone(),
                    unauthenticated: info.unauthenticated_paths.clone(),
                },
            ),
        };
        Ok(Arc::new(PluginBackend {
            mount_id,
            kind,
            special,
            group: RwLock::new(group),
            host: Arc::downgrade(self),
            generation,
        }))
    }

    /// Moves one mount onto `target`: set it up there, swap the mount's
    /// group, wait for requests still on the old process, then clean up.
    async fn move_mount(
        &self,
        backend: &PluginBackend,
        target: Arc<Group>,
    ) -> Result<(), PluginError> {
        let old = backend.group();
        let m = old
            .mounts
            .lock()
            .await
            .get(&backend.mount_id)
            .cloned()
            .ok_or_else(|| PluginError::Down {
                name: old.entry.name.clone(),
                reason: "mount is not attached".into(),
            })?;
        self.attach(&target, m).await?;
        *backend.group.write().unwrap_or_else(|e| e.into_inner()) = target;
        // Drain: every request that picked the old process is counted.
        if let Some(p) = old.current() {
            let deadline = Instant::now() + self.cfg.drain_timeout;
            while p.in_flight() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        self.detach(&old, &backend.mount_id).await;
        Ok(())
    }

    /// Moves mounts onto fresh processes running `entry` (one process for
    /// all of them when the entry multiplexes): start, set up, swap, drain
    /// the old process, clean up. No request fails; on error the mounts not
    /// yet moved keep their running process.
    pub async fn reload_many(
        self: &Arc<Self>,
        backends: &[&PluginBackend],
        entry: &CatalogEntry,
    ) -> Result<(), PluginError> {
        let mut shared: Option<Arc<Group>> = None;
        for b in backends {
            let target = match &shared {
                Some(g) => g.clone(),
                None => self.group_for(entry, &b.mount_id, true).await?,
            };
            if self.multiplexes(entry) {
                shared = Some(target.clone());
            }
            if let Err(e) = self.move_mount(b, target.clone()).await {
                // A process started for this reload must not linger.
                retire_if_empty(&target).await;
                return Err(e);
            }
            tracing::info!(plugin = %entry.name, version = %entry.version, sha256 = %entry.sha256, "mount {} reloaded", b.mount_id);
        }
        Ok(())
    }
}

/// Stops a group that ended up with no mounts (a failed mount or reload).
async fn retire_if_empty(group: &Arc<Group>) {
    if group.mounts.lock().await.is_empty() {
        retire(group).await;
    }
}

/// Marks a group retired (its supervisor stops restarting it) and stops its
/// process; returns the pid stopped.
async fn retire(group: &Group) -> Option<u32> {
    group.retired.store(true, Ordering::SeqCst);
    let proc = group
        .current
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .take()?;
    proc.stop().await;
    Some(proc.pid)
}

mod backend;
mod runtime;
mod supervisor;

pub use backend::{PluginBackend, convert_response, from_error};
pub(crate) use backend::{login_allowed, plugin_data};

#[cfg(test)]
mod tests;
