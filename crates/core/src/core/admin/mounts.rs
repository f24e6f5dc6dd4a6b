//! The mount table operations of the admin API: list, read, enable,
//! disable, tune and move mounts. Every rule about a mount change is
//! checked here, whoever asks (the `sys/` adapters or a typed caller).

use super::Caller;
use super::types::{EnableMount, MountInfo, MountTune, TuneMount};
use crate::catalog::{Catalog, PluginType};
use crate::core::mounts::{self, MountEntry, Table};
use crate::core::{Active, Core, Handler, Route};
use crate::logical::{BackendKind, RequestError};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// A mount as the API shows it, with what runs it now.
pub(crate) fn mount_info(route: &Route) -> MountInfo {
    let (version, sha) = match &route.handler {
        Handler::Backend(b) => (b.version(), b.running_sha256()),
        _ => (String::new(), String::new()),
    };
    let builtin_engine = matches!(route.handler, Handler::Backend(_)) && sha.is_empty();
    let version = if version.is_empty() && sha.is_empty() {
        format!("v{}+builtin.lockbox", crate::core::VERSION)
    } else {
        version
    };
    let e = &route.entry;
    MountInfo {
        table: e.table,
        path: e.path.clone(),
        kind: e.kind.clone(),
        description: e.description.clone(),
        accessor: e.accessor.clone(),
        uuid: e.uuid.clone(),
        config: e.config.clone(),
        options: e.options.clone(),
        local: e.local,
        seal_wrap: e.seal_wrap,
        plugin_version: e.plugin_version.clone(),
        running_plugin_version: version,
        running_sha256: sha,
        owner: e.owner.clone(),
        builtin_engine,
    }
}

/// Every mount of `table`, sorted by path.
pub(crate) fn list(active: &Active, table: Table) -> Vec<MountInfo> {
    let routes = active.routes();
    let mut entries: Vec<&Arc<Route>> =
        routes.values().filter(|r| r.entry.table == table).collect();
    entries.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
    entries.into_iter().map(|r| mount_info(r)).collect()
}

/// The routing path of `raw_path` in `table` (`auth/` added for auth).
fn table_path(table: Table, raw_path: &str) -> Result<String, RequestError> {
    let normalized = mounts::normalize_path(raw_path)?;
    Ok(match table {
        Table::Mounts => normalized,
        Table::Auth => format!("auth/{normalized}"),
    })
}

/// The mount of `table` at `raw_path`, if any.
pub(crate) fn read(
    active: &Active,
    table: Table,
    raw_path: &str,
) -> Result<Option<MountInfo>, RequestError> {
    let path = table_path(table, raw_path)?;
    Ok(active
        .routes()
        .get(&path)
        .filter(|r| r.entry.table == table)
        .map(|r| mount_info(r)))
}

/// A mount's owner is a lockbox extension only a root token may set.
fn check_owner_allowed(caller: &Caller, owner: Option<&str>) -> Result<(), RequestError> {
    if owner.is_some() && !caller.root {
        return Err(RequestError::invalid(format!(
            "{}: only a root token may set a mount's owner (a lockbox extension the \
             operator uses); remove the field",
            mounts::OWNER_FIELD
        )));
    }
    Ok(())
}

/// Refuses a default TTL above the max (the mount's, or the system's).
fn check_ttls(core: &Core, config: &mounts::MountConfig) -> Result<(), RequestError> {
    let max = if config.max_lease_ttl == 0 {
        core.config().max_lease_ttl
    } else {
        config.max_lease_ttl
    };
    if config.default_lease_ttl > max {
        return Err(RequestError::invalid(
            "default_lease_ttl cannot be greater than max_lease_ttl",
        ));
    }
    Ok(())
}

/// Checks that `kind` can be mounted in `table`: a built-in engine of the
/// right kind, or a plugin in the catalog (at `version`, when pinned).
async fn check_engine(
    core: &Core,
    active: &Active,
    table: Table,
    kind: &str,
    version: &str,
) -> Result<(), RequestError> {
    let expected = match table {
        Table::Mounts => BackendKind::Secret,
        Table::Auth => BackendKind::Credential,
    };
    match core.engine_kind(kind) {
        None => {
            let ptype = match table {
                Table::Mounts => PluginType::Secret,
                Table::Auth => PluginType::Auth,
            };
            let found = Catalog::new(&active.barrier)
                .resolve(ptype, kind, version)
                .await?;
            if found.is_none() {
                let v = if version.is_empty() {
                    String::new()
                } else {
                    format!(" version {version}")
                };
                return Err(RequestError::invalid(format!(
                    "plugin not found in the catalog: {kind}{v} ({}); register it with `lockbox plugin register` or use a built-in type (kv)",
                    ptype.as_str()
                )));
            }
            Ok(())
        }
        Some(k) if k != expected => {
            let what = if expected == BackendKind::Secret {
                "secrets engine"
            } else {
                "auth method"
            };
            Err(RequestError::invalid(format!("{kind} is not a {what}")))
        }
        Some(_) => Ok(()),
    }
}

/// Enables a mount in `table` at `raw_path` (relative to `auth/` for auth).
pub(crate) async fn enable(
    core: &Core,
    active: &Active,
    caller: &Caller,
    table: Table,
    raw_path: &str,
    input: EnableMount,
) -> Result<(), RequestError> {
    check_owner_allowed(caller, input.owner.as_deref())?;
    let mut input = input;
    let kind = mounts::kv_type(&input.kind, &mut input.options)?;
    if kind.is_empty() {
        return Err(RequestError::invalid(
            "missing type: name the engine to mount, e.g. \"kv\"",
        ));
    }
    mounts::check_mountable_type(&kind)?;
    let normalized = mounts::normalize_path(raw_path)?;
    let path = match table {
        Table::Mounts => {
            mounts::check_reserved(&normalized)?;
            normalized
        }
        Table::Auth => format!("auth/{normalized}"),
    };
    check_engine(core, active, table, &kind, &input.plugin_version).await?;
    check_ttls(core, &input.config)?;
    mounts::check_options(&kind, &input.options)?;
    let owner = match input.owner.as_deref() {
        Some(o) => mounts::check_owner(o)?,
        None => String::new(),
    };
    let entry = MountEntry {
        table,
        path: path.clone(),
        kind: kind.clone(),
        description: input.description,
        uuid: crate::core::new_uuid(),
        accessor: mounts::new_accessor(&kind),
        config: input.config,
        options: input.options,
        local: input.local,
        seal_wrap: input.seal_wrap,
        plugin_version: input.plugin_version,
        builtin_fixed: false,
        owner,
    };

    let _guard = active.mount_lock.lock().await;
    let routes = active.routes();
    mounts::check_overlap(&path, routes.keys().map(String::as_str))?;
    let route = core.build_route(&active.barrier, entry).await;
    if let Handler::Unavailable(msg) = &route.handler {
        return Err(RequestError::invalid(format!(
            "cannot mount {kind} at {path}: {msg}"
        )));
    }
    let mut new_routes = (*routes).clone();
    new_routes.insert(path.clone(), Arc::new(route));
    swap_tables(active, new_routes).await?;
    tracing::info!(%path, %kind, "mount enabled");
    Ok(())
}

/// Saves both tables from `routes`, then makes `routes` the routing table
/// (callers hold the mount lock).
async fn swap_tables(
    active: &Active,
    routes: HashMap<String, Arc<Route>>,
) -> Result<(), RequestError> {
    for (table, key) in [
        (Table::Mounts, mounts::MOUNTS_PATH),
        (Table::Auth, mounts::AUTH_PATH),
    ] {
        let mut entries: Vec<MountEntry> = routes
            .values()
            .filter(|r| r.entry.table == table)
            .map(|r| r.entry.clone())
            .collect();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        crate::core::persist_table(&active.barrier, key, &entries).await?;
    }
    *active.routes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(routes);
    Ok(())
}

/// Disables the mount of `table` at `raw_path` and removes its data (and,
/// for an auth method, the tokens issued through it). A missing mount is
/// success, as in Vault.
pub(crate) async fn disable(
    active: &Active,
    table: Table,
    raw_path: &str,
) -> Result<(), RequestError> {
    let path = table_path(table, raw_path)?;
    let _guard = active.mount_lock.lock().await;
    let routes = active.routes();
    let Some(route) = routes
        .get(&path)
        .cloned()
        .filter(|r| r.entry.table == table)
    else {
        return Ok(());
    };
    if route.entry.builtin_fixed {
        return Err(RequestError::invalid(format!(
            "cannot disable {path}: it is built in"
        )));
    }
    revoke_leases(active, &path, "disable").await?;
    let mut new_routes = (*routes).clone();
    new_routes.remove(&path);
    swap_tables(active, new_routes).await?;
    if let Handler::Backend(b) = &route.handler {
        b.cleanup().await;
    }
    let removed = route.view.clear().await?;
    if route.entry.table == Table::Auth {
        // As in Vault, tokens issued through the auth method die with it,
        // whichever route disabled it. The route is gone already, so no
        // login can complete meanwhile.
        let revoked = active.tokens.revoke_by_path_prefix(&path).await?;
        tracing::info!(%path, revoked, "tokens issued by the auth method revoked");
    }
    tracing::info!(%path, removed, "mount disabled and its data removed");
    Ok(())
}

/// Revokes every lease of the mount at `path` through its engine before
/// the mount goes or moves; a lease the engine cannot revoke stops the
/// change (nothing is changed; `sys/leases/revoke-force` is the way out).
async fn revoke_leases(active: &Active, path: &str, what: &str) -> Result<(), RequestError> {
    let engines = crate::core::leases::RouteEngines { active };
    let n = active
        .leases
        .revoke_prefix(path, false, &engines)
        .await
        .map_err(|e| {
            RequestError::invalid(format!(
                "cannot {what} {path}: its leases could not all be revoked ({e}); retry, or drop them with sys/leases/revoke-force/{path}"
            ))
        })?;
    if n > 0 {
        tracing::info!(%path, revoked = n, "leases of the mount revoked");
    }
    Ok(())
}

/// The route of the mount of `table` at `raw_path`, or an error naming it.
fn existing(
    active: &Active,
    table: Table,
    raw_path: &str,
) -> Result<(String, Arc<Route>), RequestError> {
    let path = table_path(table, raw_path)?;
    let route = active
        .routes()
        .get(&path)
        .filter(|r| r.entry.table == table)
        .cloned()
        .ok_or_else(|| RequestError::invalid(format!("no mount at {path}: enable one first")))?;
    Ok((path, route))
}

/// A mount's tunable settings; each TTL is the mount's own or the
/// system's, unclamped (leases are clamped when they are issued).
pub(crate) fn read_tune(
    core: &Core,
    active: &Active,
    table: Table,
    raw_path: &str,
) -> Result<MountTune, RequestError> {
    let (_, route) = existing(active, table, raw_path)?;
    let entry = &route.entry;
    let (default, max) = core.configured_ttls(entry);
    Ok(MountTune {
        default_lease_ttl: default,
        max_lease_ttl: max,
        force_no_cache: entry.config.force_no_cache,
        description: entry.description.clone(),
        options: entry.options.clone(),
        plugin_version: entry.plugin_version.clone(),
    })
}

/// Tunes the mount of `table` at `raw_path`.
pub(crate) async fn tune(
    core: &Core,
    active: &Active,
    caller: &Caller,
    table: Table,
    raw_path: &str,
    input: TuneMount,
) -> Result<(), RequestError> {
    check_owner_allowed(caller, input.owner.as_deref())?;
    let (path, route) = existing(active, table, raw_path)?;
    let mut entry = route.entry.clone();
    if let Some(owner) = &input.owner {
        entry.owner = mounts::check_owner(owner)?;
    }
    if let Some(description) = input.description {
        entry.description = description;
    }
    if let Some(options) = input.options {
        mounts::check_options(&entry.kind, &options)?;
        let mut merged = entry.options.clone();
        merged.extend(options);
        mounts::check_options_change(&entry.kind, &entry.options, &merged)?;
        entry.options = merged;
    }
    if let Some(version) = input.plugin_version {
        entry.plugin_version = version;
    }
    mounts::ConfigChange {
        default_lease_ttl: input.default_lease_ttl,
        max_lease_ttl: input.max_lease_ttl,
        force_no_cache: input.force_no_cache,
    }
    .apply(&mut entry.config);
    check_ttls(core, &entry.config)?;
    if entry.config.max_lease_ttl > core.config().max_lease_ttl {
        return Err(RequestError::invalid(format!(
            "max_lease_ttl cannot exceed the system maximum of {}s",
            core.config().max_lease_ttl
        )));
    }
    let _guard = active.mount_lock.lock().await;
    let routes = active.routes();
    let Some(current) = routes.get(&path).filter(|r| r.entry.table == table) else {
        return Err(RequestError::invalid(format!("no mount at {path}")));
    };
    if input.owner.is_none() {
        // The owner as it is now, not as it was before the lock.
        entry.owner = current.entry.owner.clone();
    }
    let new_route = Route {
        entry,
        handler: current.handler.clone(),
        view: current.view.clone(),
    };
    let mut new_routes = (*routes).clone();
    new_routes.insert(path, Arc::new(new_route));
    swap_tables(active, new_routes).await
}

/// Moves a mount with its data (`from` and `to` are routing paths: auth
/// methods with `auth/`); returns the migration ID.
pub(crate) async fn remount(active: &Active, from: &str, to: &str) -> Result<String, RequestError> {
    let from = mounts::normalize_path(from)?;
    let to = mounts::normalize_path(to)?;
    let from_auth = from.starts_with("auth/");
    let to_auth = to.starts_with("auth/");
    if from_auth != to_auth {
        return Err(RequestError::invalid(
            "cannot move a mount between secrets engines and auth methods",
        ));
    }
    if !to_auth {
        mounts::check_reserved(&to)?;
    } else if to == "auth/" || from == "auth/token/" {
        return Err(RequestError::invalid(
            "cannot move to or from the token auth method",
        ));
    }
    let _guard = active.mount_lock.lock().await;
    let routes = active.routes();
    let route = routes
        .get(&from)
        .cloned()
        .ok_or_else(|| RequestError::invalid(format!("no mount at {from}: nothing to move")))?;
    if route.entry.builtin_fixed {
        return Err(RequestError::invalid(format!(
            "cannot move {from}: it is built in"
        )));
    }
    // The source counts too: a mount cannot move onto or into itself.
    mounts::check_overlap(&to, routes.keys().map(String::as_str))?;
    // As Vault's `secrets move`: leases of the old path are revoked.
    revoke_leases(active, &from, "move").await?;
    let mut entry = route.entry.clone();
    entry.path = to.clone();
    let moved = Route {
        entry,
        handler: route.handler.clone(),
        view: route.view.clone(),
    };
    let mut new_routes = (*routes).clone();
    new_routes.remove(&from);
    new_routes.insert(to.clone(), Arc::new(moved));
    swap_tables(active, new_routes).await?;
    if route.entry.table == Table::Auth {
        // Tokens name the path they were issued under; once the method has
        // moved, disabling it could no longer find them. As Vault did before
        // lease migration, they are revoked with the move.
        let revoked = active.tokens.revoke_by_path_prefix(&from).await?;
        tracing::info!(%from, %to, revoked, "tokens issued under the old auth path revoked");
    }
    let id = crate::core::new_uuid();
    let info = json!({
        "source_mount": from,
        "target_mount": to,
        "status": "success",
    });
    active
        .migrations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), info);
    Ok(id)
}
