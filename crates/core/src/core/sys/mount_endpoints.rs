//! The mount table endpoints of `sys/`: `mounts`, `auth` (enable,
//! disable, list), their `tune` paths, and `remount`.

use crate::core::fields::{bool_field, str_field};
use crate::core::mounts::{self, MountEntry, Table};
use crate::core::{Active, Core, Route};
use crate::logical::{BackendKind, Operation, Request, RequestError, Response};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub(super) fn mount_to_api(route: &Route) -> Value {
    let (version, sha) = match &route.handler {
        crate::core::Handler::Backend(b) => (b.version(), b.running_sha256()),
        _ => (String::new(), String::new()),
    };
    let builtin_engine =
        matches!(route.handler, crate::core::Handler::Backend(_)) && sha.is_empty();
    let version = if version.is_empty() && sha.is_empty() {
        format!("v{}+builtin.lockbox", crate::core::VERSION)
    } else {
        version
    };
    let mut v = route.entry.to_api(&version, &sha);
    // Vault reports a deprecation status for its built-in engines only.
    if builtin_engine && let Some(m) = v.as_object_mut() {
        m.insert("deprecation_status".into(), json!("supported"));
    }
    v
}

pub(super) fn mounts_listing(active: &Active, table: Table) -> Response {
    let routes = active.routes();
    let mut data = Map::new();
    let mut entries: Vec<&Arc<Route>> =
        routes.values().filter(|r| r.entry.table == table).collect();
    entries.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
    for route in entries {
        data.insert(route.entry.display_path().to_string(), mount_to_api(route));
    }
    Response::data(data)
}

/// Enables a mount in `table` at `raw_path` (relative to `auth/` for auth).
pub(in crate::core) async fn enable(
    core: &Core,
    active: &Active,
    table: Table,
    raw_path: &str,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let kind = str_field(data, "type")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            RequestError::invalid("missing type: name the engine to mount, e.g. \"kv\"")
        })?
        .to_string();
    mounts::check_mountable_type(&kind)?;
    let normalized = mounts::normalize_path(raw_path)?;
    let path = match table {
        Table::Mounts => {
            mounts::check_reserved(&normalized)?;
            normalized
        }
        Table::Auth => format!("auth/{normalized}"),
    };
    let expected = match table {
        Table::Mounts => BackendKind::Secret,
        Table::Auth => BackendKind::Credential,
    };
    match core.engine_kind(&kind) {
        None => {
            let ptype = match table {
                Table::Mounts => crate::catalog::PluginType::Secret,
                Table::Auth => crate::catalog::PluginType::Auth,
            };
            let version = str_field(data, "plugin_version").unwrap_or("");
            let found = crate::catalog::Catalog::new(&active.barrier)
                .resolve(ptype, &kind, version)
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
        }
        Some(k) if k != expected => {
            let what = if expected == BackendKind::Secret {
                "secrets engine"
            } else {
                "auth method"
            };
            return Err(RequestError::invalid(format!("{kind} is not a {what}")));
        }
        Some(_) => {}
    }
    let mut config = mounts::MountConfig::default();
    match data.get("config") {
        None | Some(Value::Null) => {}
        Some(Value::Object(c)) => mounts::apply_config(&mut config, c)?,
        Some(other) => {
            return Err(RequestError::invalid(format!(
                "config: expected an object, got {other}"
            )));
        }
    }
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
    let options = mounts::parse_options(data.get("options").unwrap_or(&Value::Null))?;
    mounts::check_options(&kind, &options)?;
    let entry = MountEntry {
        table,
        path: path.clone(),
        kind: kind.clone(),
        description: str_field(data, "description").unwrap_or("").to_string(),
        uuid: crate::core::new_uuid(),
        accessor: mounts::new_accessor(&kind),
        config,
        options,
        local: bool_field(data, "local")?,
        seal_wrap: bool_field(data, "seal_wrap")?,
        plugin_version: str_field(data, "plugin_version").unwrap_or("").to_string(),
        builtin_fixed: false,
        owner: mounts::parse_owner(data.get(mounts::OWNER_FIELD))?,
    };

    let _guard = active.mount_lock.lock().await;
    let routes = active.routes();
    mounts::check_overlap(&path, routes.keys().map(String::as_str))?;
    let route = core.build_route(&active.barrier, entry).await;
    if let crate::core::Handler::Unavailable(msg) = &route.handler {
        return Err(RequestError::invalid(format!(
            "cannot mount {kind} at {path}: {msg}"
        )));
    }
    let mut new_routes = (*routes).clone();
    new_routes.insert(path.clone(), Arc::new(route));
    save_tables(active, &new_routes).await?;
    *active.routes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new_routes);
    tracing::info!(%path, %kind, "mount enabled");
    Ok(None)
}

pub(super) async fn save_tables(
    active: &Active,
    routes: &std::collections::HashMap<String, Arc<Route>>,
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
    Ok(())
}

pub(super) async fn disable(
    active: &Active,
    table: Table,
    raw_path: &str,
) -> Result<Option<Response>, RequestError> {
    let normalized = mounts::normalize_path(raw_path)?;
    let path = match table {
        Table::Mounts => normalized,
        Table::Auth => format!("auth/{normalized}"),
    };
    let _guard = active.mount_lock.lock().await;
    let routes = active.routes();
    let Some(route) = routes
        .get(&path)
        .cloned()
        .filter(|r| r.entry.table == table)
    else {
        // Vault answers success for a mount that does not exist.
        return Ok(None);
    };
    if route.entry.builtin_fixed {
        return Err(RequestError::invalid(format!(
            "cannot disable {path}: it is built in"
        )));
    }
    let mut new_routes = (*routes).clone();
    new_routes.remove(&path);
    save_tables(active, &new_routes).await?;
    *active.routes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new_routes);
    if let crate::core::Handler::Backend(b) = &route.handler {
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
    Ok(None)
}

pub(super) fn tune_data(core: &Core, entry: &MountEntry) -> Map<String, Value> {
    // As Vault reports them: each TTL is the mount's own or the system's,
    // unclamped (leases are clamped to the max when they are issued).
    let (default, max) = core.configured_ttls(entry);
    let mut m = Map::new();
    m.insert("default_lease_ttl".into(), json!(default));
    m.insert("max_lease_ttl".into(), json!(max));
    m.insert("force_no_cache".into(), json!(entry.config.force_no_cache));
    m.insert("description".into(), json!(entry.description));
    let options: Map<String, Value> = entry
        .options
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    m.insert(
        "options".into(),
        if options.is_empty() {
            Value::Null
        } else {
            Value::Object(options)
        },
    );
    if !entry.plugin_version.is_empty() {
        m.insert("plugin_version".into(), json!(entry.plugin_version));
    }
    m
}

pub(super) async fn tune(
    core: &Core,
    active: &Active,
    table: Table,
    raw_path: &str,
    req: &Request,
) -> Result<Option<Response>, RequestError> {
    // Read and write only, whatever the path names.
    if !matches!(
        req.operation,
        Operation::Read | Operation::Create | Operation::Update
    ) {
        return Err(RequestError::UnsupportedOperation);
    }
    let normalized = mounts::normalize_path(raw_path)?;
    let path = match table {
        Table::Mounts => normalized,
        Table::Auth => format!("auth/{normalized}"),
    };
    let routes = active.routes();
    let route = routes
        .get(&path)
        .filter(|r| r.entry.table == table)
        .cloned()
        .ok_or_else(|| RequestError::invalid(format!("no mount at {path}: enable one first")))?;
    if req.operation == Operation::Read {
        return Ok(Some(Response::data(tune_data(core, &route.entry))));
    }
    let mut entry = route.entry.clone();
    let mut config_input = Map::new();
    let mut owner_set = false;
    for (k, v) in &req.data {
        match k.as_str() {
            mounts::OWNER_FIELD => {
                entry.owner = mounts::parse_owner(Some(v))?;
                owner_set = true;
            }
            "description" => {
                entry.description = v
                    .as_str()
                    .ok_or_else(|| RequestError::invalid("description: expected a string"))?
                    .to_string()
            }
            "options" => {
                let options = mounts::parse_options(v)?;
                mounts::check_options(&entry.kind, &options)?;
                entry.options.extend(options);
            }
            "plugin_version" => {
                entry.plugin_version = v.as_str().unwrap_or("").to_string();
            }
            _ => {
                config_input.insert(k.clone(), v.clone());
            }
        }
    }
    mounts::apply_config(&mut entry.config, &config_input)?;
    let (default, max) = (entry.config.default_lease_ttl, entry.config.max_lease_ttl);
    let max_eff = if max == 0 {
        core.config().max_lease_ttl
    } else {
        max
    };
    if default > max_eff {
        return Err(RequestError::invalid(
            "default_lease_ttl cannot be greater than max_lease_ttl",
        ));
    }
    if max > core.config().max_lease_ttl {
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
    if !owner_set {
        // The owner as it is now, not as it was before the lock.
        entry.owner = current.entry.owner.clone();
    }
    let new_route = Route {
        entry,
        handler: current.handler.clone(),
        view: current.view.clone(),
    };
    let mut new_routes = (*routes).clone();
    new_routes.insert(path.clone(), Arc::new(new_route));
    save_tables(active, &new_routes).await?;
    *active.routes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new_routes);
    Ok(None)
}

pub(super) async fn remount(
    active: &Active,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let from = str_field(data, "from")
        .ok_or_else(|| RequestError::invalid("missing from: the mount to move"))?;
    let to =
        str_field(data, "to").ok_or_else(|| RequestError::invalid("missing to: the new path"))?;
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
    save_tables(active, &new_routes).await?;
    *active.routes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new_routes);
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
    let mut m = Map::new();
    m.insert("migration_id".into(), json!(id));
    Ok(Some(Response::data(m)))
}
