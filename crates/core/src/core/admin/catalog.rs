//! The plugin catalog operations of the admin API: register, deregister,
//! read and list entries, reload mounts onto their registered plugin, and
//! what plugin processes run now.

use super::types::{RegisterPlugin, ReloadTarget};
use crate::catalog::{self, Catalog, CatalogEntry, PluginType};
use crate::core::mounts::{self, Table};
use crate::core::{Active, Core, Handler, Route};
use crate::logical::RequestError;
use crate::runtime::{ImageError, ImageSpec};
use std::sync::Arc;

/// Every entry of `kind` (both kinds, auth first, for `None`).
pub(crate) async fn list(
    active: &Active,
    kind: Option<PluginType>,
) -> Result<Vec<CatalogEntry>, RequestError> {
    let cat = Catalog::new(&active.barrier);
    let mut all = Vec::new();
    for k in [PluginType::Auth, PluginType::Secret] {
        if kind.is_none_or(|want| want == k) {
            all.extend(cat.list(k).await?);
        }
    }
    Ok(all)
}

/// The entry (kind, name, version); `None` when not registered.
pub(crate) async fn read(
    active: &Active,
    kind: PluginType,
    name: &str,
    version: &str,
) -> Result<Option<CatalogEntry>, RequestError> {
    catalog::validate_name(name)?;
    Catalog::new(&active.barrier).get(kind, name, version).await
}

/// Removes the entry (kind, name, version); a missing entry is success.
pub(crate) async fn deregister(
    active: &Active,
    kind: PluginType,
    name: &str,
    version: &str,
) -> Result<(), RequestError> {
    catalog::validate_name(name)?;
    Catalog::new(&active.barrier)
        .delete(kind, name, version)
        .await
}

/// Registers a plugin: its binary is verified first (hashed in
/// `plugin_directory`, or pulled from its image), so a bad image never
/// enters the catalog. Returns warnings (a file whose sha256 differs from
/// the registration).
pub(crate) async fn register(
    core: &Core,
    active: &Active,
    input: RegisterPlugin,
) -> Result<Vec<String>, RequestError> {
    catalog::validate_name(&input.name)?;
    if let Some(bad) = input.env.iter().find(|e| !e.contains('=')) {
        return Err(RequestError::invalid(format!(
            "env entry {bad:?} must have the form KEY=value"
        )));
    }
    let command = input.command.as_deref().filter(|c| !c.is_empty());
    let sha = input.sha256.as_deref();
    let mut entry = CatalogEntry {
        name: input.name.clone(),
        kind: input.kind,
        version: input.version.clone(),
        command: String::new(),
        args: input.args.clone(),
        env: input.env.clone(),
        sha256: String::new(),
        multiplexing: input.multiplexing,
        oci: None,
    };
    let mut warnings = Vec::new();
    match input.oci_image.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(image) => {
            // The binary comes from an image: pull (or find in the cache)
            // and verify it now, so a bad image never enters the catalog.
            let spec = ImageSpec {
                image,
                path: command,
                sha256: sha,
            };
            let fetched = core
                .image_store()
                .fetch(&active.barrier, spec)
                .await
                .map_err(|e| match e {
                    ImageError::Invalid(msg) => RequestError::invalid(msg),
                    ImageError::Fetch(msg) => {
                        RequestError::invalid(format!("cannot use image {image}: {msg}"))
                    }
                })?;
            entry.command = fetched.path;
            entry.sha256 = fetched.sha256;
            entry.oci = Some(fetched.source);
        }
        None => {
            let sha = sha.ok_or_else(|| {
                RequestError::invalid(
                    "missing sha256: the hex sha256 of the plugin binary (`sha256sum FILE`), or oci_image to pull it from a registry",
                )
            })?;
            entry.sha256 = catalog::parse_sha256(sha)?;
            entry.command = command.unwrap_or(&input.name).to_string();
            let dir = core
                .plugin_runtime()
                .plugin_directory()
                .ok_or_else(|| RequestError::invalid(catalog::NO_PLUGIN_DIRECTORY))?;
            let path = catalog::resolve_command(&dir, &entry.command)?;
            let actual = catalog::sha256_file_async(&path).await.map_err(|e| {
                RequestError::invalid(format!("cannot read plugin {}: {e}", path.display()))
            })?;
            if actual != entry.sha256 {
                warnings.push(format!(
                    "the file {} currently has sha256 {actual}, not {}; mounts of this plugin will refuse to start until they match",
                    entry.command, entry.sha256
                ));
            }
        }
    }
    Catalog::new(&active.barrier).put(&entry).await?;
    tracing::info!(plugin = %entry.name, version = %entry.version, sha256 = %entry.sha256, image = ?entry.oci.as_ref().map(|o| &o.image), "plugin registered");
    if entry.oci.is_some() {
        core.prune_plugin_cache(&active.barrier).await;
    }
    Ok(warnings)
}

/// The catalog entries the running processes of plugin (kind, name) were
/// started from (one per process group; a reload is due where one differs
/// from the registration).
pub(crate) fn running(core: &Core, kind: PluginType, name: &str) -> Vec<CatalogEntry> {
    core.plugin_runtime()
        .running_entries()
        .into_iter()
        .filter(|e| e.kind == kind && e.name == name)
        .collect()
}

/// Why a reload names no mounts (or, over HTTP, both a plugin and mounts).
pub(crate) const EXACTLY_ONE_TARGET: &str = "give exactly one of plugin or mounts";

/// The mounts `target` names.
fn targets(active: &Active, target: &ReloadTarget) -> Result<Vec<Arc<Route>>, RequestError> {
    let routes = active.routes();
    let mut found = Vec::new();
    match target {
        ReloadTarget::Plugin {
            name,
            kind,
            version,
        } if !name.is_empty() => {
            for r in routes.values() {
                let kind_ok = match kind {
                    None => true,
                    Some(PluginType::Secret) => r.entry.table == Table::Mounts,
                    Some(PluginType::Auth) => r.entry.table == Table::Auth,
                };
                let version_ok = version
                    .as_ref()
                    .is_none_or(|v| *v == r.entry.plugin_version);
                // A built-in engine of the same name (kv version 1 beside
                // the kv plugin's version 2 mounts) is not the plugin's.
                let plugin_backed = !r.entry.builtin_fixed
                    && (r.entry.kind != "kv"
                        || mounts::served_by_plugin(&r.entry.kind, &r.entry.options));
                if r.entry.kind == *name && kind_ok && version_ok && plugin_backed {
                    found.push(r.clone());
                }
            }
            if found.is_empty() {
                return Err(RequestError::invalid(format!(
                    "no mounts use plugin {name}"
                )));
            }
        }
        ReloadTarget::Mounts(paths) if !paths.is_empty() => {
            for m in paths {
                let path = mounts::normalize_path(m)?;
                let r = routes
                    .get(&path)
                    .or_else(|| routes.get(&format!("auth/{path}")))
                    .ok_or_else(|| RequestError::invalid(format!("no mount at {path}")))?;
                found.push(r.clone());
            }
        }
        _ => return Err(RequestError::invalid(EXACTLY_ONE_TARGET)),
    }
    Ok(found)
}

/// Moves the mounts `target` names onto fresh processes of the catalog
/// entry each resolves to now (its pin, else the unversioned or highest
/// version); a mount whose plugin could not start is retried from scratch.
/// On error, mounts not yet moved keep their running version. Returns the
/// reload ID.
pub(crate) async fn reload(
    core: &Core,
    active: &Active,
    target: &ReloadTarget,
) -> Result<String, RequestError> {
    let cat = Catalog::new(&active.barrier);
    let mut batches: Vec<(CatalogEntry, Vec<Arc<Route>>)> = Vec::new();
    for r in targets(active, target)? {
        let ptype = match r.entry.table {
            Table::Mounts => PluginType::Secret,
            Table::Auth => PluginType::Auth,
        };
        let entry = cat
            .resolve(ptype, &r.entry.kind, &r.entry.plugin_version)
            .await?
            .ok_or_else(|| {
                RequestError::invalid(format!(
                    "plugin {} is no longer in the catalog",
                    r.entry.kind
                ))
            })?;
        match batches.iter_mut().find(|(e, _)| *e == entry) {
            Some((_, list)) => list.push(r),
            None => batches.push((entry, vec![r])),
        }
    }
    for (entry, routes) in batches {
        reload_batch(core, active, &entry, &routes).await?;
    }
    Ok(uuid::Uuid::new_v4().to_string())
}

/// Reloads `routes`, all resolving to `entry`.
async fn reload_batch(
    core: &Core,
    active: &Active,
    entry: &CatalogEntry,
    routes: &[Arc<Route>],
) -> Result<(), RequestError> {
    core.image_store()
        .ensure(&active.barrier, entry)
        .await
        .map_err(|e| {
            RequestError::invalid(format!(
                "reload failed, mounts keep their running version: plugin {}: {e}",
                entry.name,
            ))
        })?;
    let mut backends = Vec::new();
    for r in routes {
        match &r.handler {
            Handler::Backend(b) if core.plugin_runtime().serves(b.as_ref()) => {
                backends.push(b.clone())
            }
            Handler::Unavailable(_) => {
                // A mount whose plugin could not start: retry it from scratch.
                core.restart_route(active, &r.entry.path).await?;
            }
            _ => {
                return Err(RequestError::invalid(format!(
                    "{} is not a plugin mount",
                    r.entry.path
                )));
            }
        }
    }
    core.plugin_runtime()
        .reload(&backends, entry)
        .await
        .map_err(|e| {
            RequestError::invalid(format!(
                "reload failed, mounts keep their running version: {e}"
            ))
        })
}
