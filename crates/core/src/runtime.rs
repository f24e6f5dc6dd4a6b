//! What the core needs from the layers above it, as traits: the plugin
//! runtime (processes that serve plugin mounts) and the plugin image store
//! (OCI pulls into the binary cache). The core defines them; the plugin
//! host (`lockbox-plugin-host`) implements them, and the server assembly
//! hands the implementations to [`crate::core::Core::with_plugins`]. So the
//! core never names gRPC, processes or registries, and its dependency tree
//! has none of them (checked by `crates/core/tests/layering.rs`).
//!
//! ```text
//!   Core ──PluginRuntime──▶ PluginHost   (lockbox-plugin-host)
//!        ──ImageStore─────▶ PluginImages (lockbox-plugin-host, over lockbox-oci)
//! ```
//!
//! Errors cross these traits as the messages the API shows: the core adds
//! its context (`plugin NAME: ...`, `reload failed, ...`) around them.

use crate::barrier::{Barrier, View};
use crate::catalog::{CatalogEntry, OciSource};
use crate::logical::Backend;
use async_trait::async_trait;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

/// Puts an image-sourced plugin's binary back into the plugin cache (pull
/// the pinned digest again) when it is missing. The core sets one while
/// unsealed (it needs the barrier's image index); the runtime's supervisor
/// calls it before restarting a process.
pub type BinaryRestorer = Arc<
    dyn Fn(CatalogEntry) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync,
>;

/// What a plugin needs to know about the mount it serves (the plugin
/// protocol's `SetupRequest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The mount's UUID.
    pub mount_id: String,
    /// The mount path (`mock/`, `auth/userpass/`).
    pub mount_path: String,
    /// The mount's accessor.
    pub mount_accessor: String,
    /// The mount's type (the plugin name).
    pub mount_type: String,
    /// The mount's options.
    pub options: HashMap<String, String>,
    /// Effective default lease TTL, seconds.
    pub default_lease_ttl: u64,
    /// Effective max lease TTL, seconds.
    pub max_lease_ttl: u64,
}

/// Runs plugin processes and serves plugin mounts.
#[async_trait]
pub trait PluginRuntime: Send + Sync {
    /// Starts (or joins) the process for `entry` and sets one mount up on
    /// it; the result is the mount's engine. The error is the message the
    /// mount shows as unavailable.
    async fn mount(
        &self,
        entry: &CatalogEntry,
        mount: MountSpec,
        view: View,
    ) -> Result<Arc<dyn Backend>, String>;

    /// Whether `backend` is a mount this runtime serves (one [`mount`]
    /// returned), so it can be reloaded.
    ///
    /// [`mount`]: PluginRuntime::mount
    fn serves(&self, backend: &dyn Backend) -> bool;

    /// Moves mounts (each one this runtime [`serves`]) onto fresh processes
    /// running `entry`, without failing a request; on error the mounts not
    /// yet moved keep their running process.
    ///
    /// [`serves`]: PluginRuntime::serves
    async fn reload(&self, mounts: &[Arc<dyn Backend>], entry: &CatalogEntry)
    -> Result<(), String>;

    /// The directory plugin binaries must live in, as configured now
    /// (`None`: only image-sourced plugins can run).
    fn plugin_directory(&self) -> Option<PathBuf>;

    /// The sha256 of every binary running now (kept when the cache is
    /// pruned).
    fn running_sha256s(&self) -> Vec<String>;

    /// The catalog entry each running process (group) was started from:
    /// the admin API compares them with the registrations to tell whether
    /// a reload is due.
    fn running_entries(&self) -> Vec<CatalogEntry>;

    /// Sets (or clears) how a missing image-sourced binary is restored.
    fn set_restorer(&self, restorer: Option<BinaryRestorer>);
}

/// An image reference and where the binary is inside it, as a user gave
/// them (`oci_image`, `command`, `sha256`); the image store parses them.
#[derive(Debug, Clone, Copy)]
pub struct ImageSpec<'a> {
    /// The image reference.
    pub image: &'a str,
    /// Path of the binary inside the image (`None`: the default).
    pub path: Option<&'a str>,
    /// The binary's sha256, when pinned.
    pub sha256: Option<&'a str>,
}

/// A plugin binary verified and ready in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedImage {
    /// Path of the binary inside the image (the entry's `command`).
    pub path: String,
    /// Hex sha256 of the binary.
    pub sha256: String,
    /// Where it came from (stored in the catalog entry).
    pub source: OciSource,
}

/// Why an image could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The reference, path or sha256 the user gave is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Pulling or verifying the image failed.
    #[error("{0}")]
    Fetch(String),
}

/// Plugin images: pulls into the content-addressed binary cache, and the
/// barrier-stored index of what was pulled.
#[async_trait]
pub trait ImageStore: Send + Sync {
    /// Makes an image's plugin binary available in the cache, pulling only
    /// when the cache cannot answer.
    async fn fetch(
        &self,
        barrier: &Barrier,
        image: ImageSpec<'_>,
    ) -> Result<FetchedImage, ImageError>;

    /// Before an image-sourced entry starts: re-pulls its pinned digest if
    /// the cached binary is gone. Entries without an image need nothing.
    async fn ensure(&self, barrier: &Barrier, entry: &CatalogEntry) -> Result<(), String>;

    /// Prunes the cache, keeping what the catalog references and `running`.
    async fn prune(&self, barrier: &Barrier, running: Vec<String>);
}

/// The runtime of a core without plugins (tests, embedding): plugin
/// mounts cannot start and nothing is pulled.
pub struct NoPlugins;

#[async_trait]
impl PluginRuntime for NoPlugins {
    async fn mount(
        &self,
        _entry: &CatalogEntry,
        _mount: MountSpec,
        _view: View,
    ) -> Result<Arc<dyn Backend>, String> {
        Err(crate::catalog::NO_PLUGIN_DIRECTORY.to_string())
    }

    fn serves(&self, _backend: &dyn Backend) -> bool {
        false
    }

    async fn reload(
        &self,
        _mounts: &[Arc<dyn Backend>],
        _entry: &CatalogEntry,
    ) -> Result<(), String> {
        Ok(())
    }

    fn plugin_directory(&self) -> Option<PathBuf> {
        None
    }

    fn running_sha256s(&self) -> Vec<String> {
        Vec::new()
    }

    fn running_entries(&self) -> Vec<CatalogEntry> {
        Vec::new()
    }

    fn set_restorer(&self, _restorer: Option<BinaryRestorer>) {}
}

#[async_trait]
impl ImageStore for NoPlugins {
    async fn fetch(
        &self,
        _barrier: &Barrier,
        image: ImageSpec<'_>,
    ) -> Result<FetchedImage, ImageError> {
        Err(ImageError::Fetch(format!(
            "{}: this server has no plugin image store",
            image.image
        )))
    }

    async fn ensure(&self, _barrier: &Barrier, entry: &CatalogEntry) -> Result<(), String> {
        match entry.oci {
            None => Ok(()),
            Some(_) => Err("this server has no plugin image store".into()),
        }
    }

    async fn prune(&self, _barrier: &Barrier, _running: Vec<String>) {}
}

/// The active node of an HA cluster, as the shared storage records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// Whether this node is the active one.
    pub is_self: bool,
    /// The active node's `api_addr` (where clients are redirected).
    pub api_addr: String,
    /// The active node's `cluster_addr` (where standbys forward requests).
    pub cluster_addr: String,
    /// When it became active.
    pub active_since: std::time::SystemTime,
    /// Its leadership term (each new active node increments it).
    pub term: u64,
    /// Its node id.
    pub node_id: String,
}

/// A node of an HA cluster, as its last echo recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Its node id (Vault's `hostname` in `sys/ha-status`).
    pub node_id: String,
    /// Its `api_addr`.
    pub api_addr: String,
    /// Its `cluster_addr`.
    pub cluster_addr: String,
    /// When it last said it was up.
    pub last_echo: std::time::SystemTime,
}

/// The HA cluster a core is a node of: its leadership lives in the
/// storage (the server implements it over PostgreSQL's lock; the core
/// never names the database). Set with
/// [`crate::core::Core::enable_ha`] before unseal; a core without one is a
/// single node, active once unsealed.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// The active node, `None` while there is none.
    async fn leader(&self) -> Result<Option<LeaderInfo>, String>;
    /// The nodes up now (unsealed, standby or active).
    async fn members(&self) -> Result<Vec<MemberInfo>, String>;
    /// Asks this node to give up leadership (`sys/step-down` on the
    /// active); it stays a standby for a while, so another node takes over.
    fn step_down(&self);
    /// Takes leadership for `sys/init` (only the leader writes to the
    /// storage); leadership is given back when the guard is dropped.
    async fn lead_for_init(&self) -> Result<Box<dyn std::any::Any + Send>, String>;
}
