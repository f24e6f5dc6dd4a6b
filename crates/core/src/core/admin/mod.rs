//! The typed admin API: mounts (secrets engines and auth methods), the
//! plugin catalog and reloads, as typed inputs and outputs, with every
//! validation rule in one place. Two kinds of callers share it:
//!
//! ```text
//!   HTTP ─▶ Core::handle ─▶ pipeline (token, ACL) ─▶ sys/ adapters ─┐  JSON ⇄ types
//!                                                                   ├─▶ admin::{mounts, catalog}
//!   operator ─▶ Core::admin(token) ─▶ Admin (token, the same ACL) ──┘
//! ```
//!
//! An [`Admin`] call is authorized exactly as the HTTP request for the same
//! operation would be: the `sys/` path the route uses is canonicalized by
//! the system backend's own rules, then the pipeline's ACL decision
//! (`core::authorize`: capability of the operation,
//! `sudo` on the system backend's root paths, the token's use counted)
//! runs on it. There is no second ACL check with rules of its own.

pub(crate) mod catalog;
pub(crate) mod mounts;
mod policies;
mod types;

pub use types::{EnableMount, MountInfo, MountTune, RegisterPlugin, ReloadTarget, TuneMount};

use super::authorize::authorize;
use super::mounts::Table;
use super::sys::paths::{canonical_path, special_paths};
use super::tokens::Resolved;
use super::{Active, Core};
use crate::catalog::{CatalogEntry, PluginType};
use crate::logical::{Operation, RequestError};
use std::sync::Arc;

/// Who asks, as far as the operations care (the ACL is checked before).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller {
    /// The token has the `root` policy (only root may set mount owners).
    pub root: bool,
}

impl Caller {
    /// The caller of a request with `token` (none: not root).
    pub(crate) fn of(token: Option<&Resolved>) -> Self {
        Caller {
            root: token.is_some_and(|t| t.entry.policies.iter().any(|p| p == "root")),
        }
    }
}

/// The admin API for one token. Each call checks the token against the ACL
/// as the matching `sys/` route would, then runs the operation. Errors are
/// [`RequestError`]s with the status and message the HTTP API answers.
pub struct Admin<'a> {
    core: &'a Core,
    token: &'a str,
}

/// The `sys/` path (relative to `sys/`) of a mount table operation.
fn table_route(table: Table, path: &str) -> String {
    let prefix = match table {
        Table::Mounts => "mounts",
        Table::Auth => "auth",
    };
    format!("{prefix}/{}", path.trim_matches('/'))
}

impl Core {
    /// The typed admin API, acting as `token` (see [`Admin`]).
    pub fn admin<'a>(&'a self, token: &'a str) -> Admin<'a> {
        Admin { core: self, token }
    }
}

impl Admin<'_> {
    /// Authorizes `operation` on `sys/<route>` as the HTTP request would
    /// be; returns the active state (the canonical route is checked, the
    /// same the handler would see) and the caller.
    async fn authorize(
        &self,
        route: &str,
        operation: Operation,
    ) -> Result<(Arc<Active>, Caller), RequestError> {
        let active = self.core.serving()?;
        let token = match self.token {
            "" => None,
            id => active.tokens.lookup(id).await?,
        }
        .ok_or(RequestError::PermissionDenied)?;
        let relative = canonical_path(route)?;
        authorize(
            &active,
            &token,
            &format!("sys/{relative}"),
            &relative,
            &special_paths(),
            operation,
        )
        .await?;
        Ok((active, Caller::of(Some(&token))))
    }

    /// Every mount of `table` with what runs it (`GET sys/mounts`, `GET
    /// sys/auth`).
    pub async fn mounts(&self, table: Table) -> Result<Vec<MountInfo>, RequestError> {
        let route = match table {
            Table::Mounts => "mounts",
            Table::Auth => "auth",
        };
        let (active, _) = self.authorize(route, Operation::Read).await?;
        Ok(mounts::list(&active, table))
    }

    /// One secrets engine (`GET sys/mounts/:path`; auth methods have no
    /// such read in Vault's API).
    pub async fn mount(&self, path: &str) -> Result<Option<MountInfo>, RequestError> {
        let (active, _) = self
            .authorize(&table_route(Table::Mounts, path), Operation::Read)
            .await?;
        mounts::read(&active, Table::Mounts, path)
    }

    /// Enables a mount (`POST sys/mounts/:path`, `POST sys/auth/:path`).
    pub async fn enable_mount(
        &self,
        table: Table,
        path: &str,
        input: EnableMount,
    ) -> Result<(), RequestError> {
        let (active, caller) = self
            .authorize(&table_route(table, path), Operation::Update)
            .await?;
        mounts::enable(self.core, &active, &caller, table, path, input).await
    }

    /// Disables a mount and removes its data (`DELETE sys/mounts/:path`,
    /// `DELETE sys/auth/:path`); a missing mount is success.
    pub async fn disable_mount(&self, table: Table, path: &str) -> Result<(), RequestError> {
        let (active, _) = self
            .authorize(&table_route(table, path), Operation::Delete)
            .await?;
        mounts::disable(&active, table, path).await
    }

    /// A mount's tunable settings (`GET sys/mounts/:path/tune`).
    pub async fn mount_tune(&self, table: Table, path: &str) -> Result<MountTune, RequestError> {
        let route = format!("{}/tune", table_route(table, path));
        let (active, _) = self.authorize(&route, Operation::Read).await?;
        mounts::read_tune(self.core, &active, table, path)
    }

    /// Tunes a mount (`POST sys/mounts/:path/tune`).
    pub async fn tune_mount(
        &self,
        table: Table,
        path: &str,
        input: TuneMount,
    ) -> Result<(), RequestError> {
        let route = format!("{}/tune", table_route(table, path));
        let (active, caller) = self.authorize(&route, Operation::Update).await?;
        mounts::tune(self.core, &active, &caller, table, path, input).await
    }

    /// Moves a mount with its data (`POST sys/remount`; auth methods with
    /// `auth/`); returns the migration ID.
    pub async fn remount(&self, from: &str, to: &str) -> Result<String, RequestError> {
        let (active, _) = self.authorize("remount", Operation::Update).await?;
        mounts::remount(&active, from, to).await
    }

    /// Registers a plugin (`POST sys/plugins/catalog/:type/:name`); returns
    /// the warnings the API would show.
    pub async fn register_plugin(
        &self,
        input: RegisterPlugin,
    ) -> Result<Vec<String>, RequestError> {
        let route = format!("plugins/catalog/{}/{}", input.kind.as_str(), input.name);
        let (active, _) = self.authorize(&route, Operation::Update).await?;
        catalog::register(self.core, &active, input).await
    }

    /// Removes a registration (`DELETE sys/plugins/catalog/:type/:name`);
    /// a missing one is success.
    pub async fn deregister_plugin(
        &self,
        kind: PluginType,
        name: &str,
        version: &str,
    ) -> Result<(), RequestError> {
        let route = format!("plugins/catalog/{}/{name}", kind.as_str());
        let (active, _) = self.authorize(&route, Operation::Delete).await?;
        catalog::deregister(&active, kind, name, version).await
    }

    /// One registration (`GET sys/plugins/catalog/:type/:name`).
    pub async fn plugin(
        &self,
        kind: PluginType,
        name: &str,
        version: &str,
    ) -> Result<Option<CatalogEntry>, RequestError> {
        let route = format!("plugins/catalog/{}/{name}", kind.as_str());
        let (active, _) = self.authorize(&route, Operation::Read).await?;
        catalog::read(&active, kind, name, version).await
    }

    /// Every registration (`GET sys/plugins/catalog`), or those of one type
    /// (`LIST sys/plugins/catalog/:type`).
    pub async fn plugins(
        &self,
        kind: Option<PluginType>,
    ) -> Result<Vec<CatalogEntry>, RequestError> {
        let (route, op) = match kind {
            None => ("plugins/catalog".to_string(), Operation::Read),
            Some(k) => (format!("plugins/catalog/{}", k.as_str()), Operation::List),
        };
        let (active, _) = self.authorize(&route, op).await?;
        catalog::list(&active, kind).await
    }

    /// Reloads mounts onto their registered plugin (`POST
    /// sys/plugins/reload/backend`); returns the reload ID.
    pub async fn reload(&self, target: &ReloadTarget) -> Result<String, RequestError> {
        let (active, _) = self
            .authorize("plugins/reload/backend", Operation::Update)
            .await?;
        catalog::reload(self.core, &active, target).await
    }

    /// The catalog entries the running processes of plugin (kind, name)
    /// were started from, one per process group; a process whose entry
    /// differs from the registration is due a reload. Authorized as a read
    /// of the registration (`GET sys/plugins/catalog/:type/:name`): it
    /// tells as much.
    pub async fn running_plugins(
        &self,
        kind: PluginType,
        name: &str,
    ) -> Result<Vec<CatalogEntry>, RequestError> {
        let route = format!("plugins/catalog/{}/{name}", kind.as_str());
        self.authorize(&route, Operation::Read).await?;
        Ok(catalog::running(self.core, kind, name))
    }

    /// The enabled audit devices (`GET sys/audit`).
    pub async fn audit_devices(
        &self,
    ) -> Result<Vec<crate::core::audit::DeviceConfig>, RequestError> {
        let (active, _) = self.authorize("audit", Operation::Read).await?;
        Ok(active.audit.list())
    }

    /// Makes the audit device at `config.path` exactly `config`: enabled
    /// when missing, re-enabled when its settings differ (`PUT` /
    /// `DELETE sys/audit/:path`). Returns whether anything changed.
    pub async fn ensure_audit_device(
        &self,
        config: crate::core::audit::DeviceConfig,
    ) -> Result<bool, RequestError> {
        let path = crate::core::audit::device_path(&config.path)?;
        let (active, _) = self
            .authorize(&format!("audit/{path}"), Operation::Update)
            .await?;
        let mut wanted = config;
        wanted.path = path.clone();
        match active.audit.list().into_iter().find(|d| d.path == path) {
            Some(current) if current == wanted => return Ok(false),
            Some(_) => active.audit.disable(&path).await?,
            None => {}
        }
        active.audit.enable(wanted).await?;
        Ok(true)
    }
}
