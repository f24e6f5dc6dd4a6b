//! The typed inputs and outputs of the admin API. Plain data: the
//! operations in [`super`] validate them (path rules, types, TTLs,
//! options, owners, catalog rules), the `sys/` HTTP adapters build them from
//! JSON and render them back in Vault's shapes.

use crate::catalog::PluginType;
use crate::core::mounts::{MountConfig, Table};
use std::collections::BTreeMap;

/// One mount as `sys/mounts` and `sys/auth` list it, with what runs it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Which table (secrets engines or auth methods).
    pub table: Table,
    /// The routing path with a trailing `/` (`team-a/kv/`, `auth/userpass/`).
    pub path: String,
    /// Engine type (`kv`, `system`, `token` or a plugin name).
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Non-secret identifier (`kv_1a2b3c4d`).
    pub accessor: String,
    /// Unique ID (names the storage prefix).
    pub uuid: String,
    /// Lease settings as stored (0: the system's).
    pub config: MountConfig,
    /// Engine options.
    pub options: BTreeMap<String, String>,
    /// Not replicated (kept for API compatibility).
    pub local: bool,
    /// Seal wrapping (kept for API compatibility).
    pub seal_wrap: bool,
    /// The plugin version pinned at enable or tune (empty: not pinned).
    pub plugin_version: String,
    /// The version running now: the plugin's, or `v<lockbox>+builtin.lockbox`
    /// for built-in engines and mounts.
    pub running_plugin_version: String,
    /// The sha256 of the running plugin binary (empty: built in, or the
    /// plugin does not run).
    pub running_sha256: String,
    /// The object that owns the mount (the operator's SecretsMount UID);
    /// empty for none.
    pub owner: String,
    /// A built-in engine (Vault reports a deprecation status for those).
    pub builtin_engine: bool,
}

impl MountInfo {
    /// The path as `sys/auth` shows it (without `auth/`); the routing path
    /// for secrets engines.
    pub fn display_path(&self) -> &str {
        match self.table {
            Table::Auth => self.path.strip_prefix("auth/").unwrap_or(&self.path),
            Table::Mounts => &self.path,
        }
    }
}

/// Enable a mount (`POST sys/mounts/:path`, `POST sys/auth/:path`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnableMount {
    /// The engine or plugin type to mount (required).
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Lease settings (0: the system's).
    pub config: MountConfig,
    /// Engine options.
    pub options: BTreeMap<String, String>,
    /// Kept for API compatibility.
    pub local: bool,
    /// Kept for API compatibility.
    pub seal_wrap: bool,
    /// Pin a plugin version (empty: not pinned).
    pub plugin_version: String,
    /// The owner to record; only a root token may set one.
    pub owner: Option<String>,
}

/// Tune a mount (`POST sys/mounts/:path/tune`): `None` keeps the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TuneMount {
    /// New description.
    pub description: Option<String>,
    /// New default lease TTL, seconds (0: the system's).
    pub default_lease_ttl: Option<u64>,
    /// New max lease TTL, seconds (0: the system's).
    pub max_lease_ttl: Option<u64>,
    /// New `force_no_cache`.
    pub force_no_cache: Option<bool>,
    /// Options to add or replace (others are kept).
    pub options: Option<BTreeMap<String, String>>,
    /// New plugin version pin (empty: unpin); takes effect at the next
    /// reload.
    pub plugin_version: Option<String>,
    /// New owner (empty: none); only a root token may set one.
    pub owner: Option<String>,
}

/// A mount's tunable settings as `GET sys/mounts/:path/tune` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountTune {
    /// The mount's default lease TTL, or the system's.
    pub default_lease_ttl: u64,
    /// The mount's max lease TTL, or the system's.
    pub max_lease_ttl: u64,
    /// Caching disabled.
    pub force_no_cache: bool,
    /// Free text.
    pub description: String,
    /// Engine options.
    pub options: BTreeMap<String, String>,
    /// The pinned plugin version (empty: not pinned).
    pub plugin_version: String,
}

/// Register a plugin (`POST sys/plugins/catalog/:type/:name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterPlugin {
    /// Secret or auth.
    pub kind: PluginType,
    /// Catalog name.
    pub name: String,
    /// Version (empty: an unversioned registration).
    pub version: String,
    /// File name in `plugin_directory` (default: the name), or the path of
    /// the binary inside `oci_image`.
    pub command: Option<String>,
    /// Hex sha256 of the binary: required without `oci_image`, optional
    /// (a pin) with it.
    pub sha256: Option<String>,
    /// Take the binary from this OCI image (pulled and verified before
    /// anything is stored).
    pub oci_image: Option<String>,
    /// Arguments passed to the plugin.
    pub args: Vec<String>,
    /// `KEY=value` environment entries.
    pub env: Vec<String>,
    /// One process for all mounts (Vault's default) or one per mount.
    pub multiplexing: bool,
}

/// What to reload (`POST sys/plugins/reload/backend`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadTarget {
    /// Every mount of a plugin, of one type or both.
    Plugin {
        /// The plugin's catalog name.
        name: String,
        /// Only mounts of this type (`None`: secrets engines and auth
        /// methods).
        kind: Option<PluginType>,
        /// Only mounts pinned to this version (`Some("")`: the unpinned
        /// ones; `None`: every mount of the plugin).
        version: Option<String>,
    },
    /// These mounts (paths as in `sys/mounts`, or auth paths without
    /// `auth/`).
    Mounts(Vec<String>),
}
