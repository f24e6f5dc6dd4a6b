//! `sys/plugins/*`: the plugin catalog API and reloads, following Vault's
//! request and response shapes.

use super::fields::{bool_field, str_field, string_list};
use super::{Active, Core, Handler};
use crate::catalog::{self, Catalog, CatalogEntry, PluginType};
use crate::logical::{Operation, Request, RequestError, Response};
use crate::runtime::{ImageError, ImageSpec};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// `GET sys/plugins/catalog`.
pub(super) async fn catalog_listing(active: &Active) -> Result<Option<Response>, RequestError> {
    let cat = Catalog::new(&active.barrier);
    let mut data = Map::new();
    let mut detailed = Vec::new();
    for kind in [PluginType::Auth, PluginType::Secret] {
        let entries = cat.list(kind).await?;
        let names: BTreeSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        data.insert(kind.as_str().into(), json!(names));
        detailed.extend(entries.iter().map(|e| Value::Object(e.to_api())));
    }
    data.insert("database".into(), json!([]));
    data.insert("detailed".into(), Value::Array(detailed));
    Ok(Some(Response::data(data)))
}

/// `sys/plugins/catalog/:type[/:name]`.
pub(super) async fn catalog_endpoint(
    core: &Core,
    active: &Active,
    rest: &str,
    req: &Request,
) -> Result<Option<Response>, RequestError> {
    let rest = rest.trim_end_matches('/');
    let cat = Catalog::new(&active.barrier);
    let (kind, name) = match rest.split_once('/') {
        Some((k, n)) => (PluginType::parse(k)?, n),
        None => {
            // `LIST sys/plugins/catalog/:type`.
            let kind = PluginType::parse(rest).map_err(|_| {
                RequestError::invalid(format!(
                    "use sys/plugins/catalog/<type>/<name> with type secret or auth (got {rest:?})"
                ))
            })?;
            if req.operation != Operation::List && req.operation != Operation::Read {
                return Err(RequestError::UnsupportedOperation);
            }
            let names: BTreeSet<String> =
                cat.list(kind).await?.into_iter().map(|e| e.name).collect();
            return Ok(Some(Response::list(names.into_iter().collect())));
        }
    };
    catalog::validate_name(name)?;
    let version = str_field(&req.data, "version").unwrap_or("").to_string();
    match req.operation {
        Operation::Read => Ok(cat
            .get(kind, name, &version)
            .await?
            .map(|e| Response::data(e.to_api()))),
        Operation::Delete => {
            cat.delete(kind, name, &version).await?;
            Ok(None)
        }
        Operation::Create | Operation::Update => {
            if str_field(&req.data, "runtime").is_some_and(|s| !s.is_empty()) {
                return Err(RequestError::invalid(
                    "runtime is not supported: lockbox runs plugins as verified processes",
                ));
            }
            let sha = str_field(&req.data, "sha256").or_else(|| str_field(&req.data, "sha_256"));
            let oci_image = str_field(&req.data, "oci_image").filter(|s| !s.trim().is_empty());
            let env = string_list("env", req.data.get("env"))?;
            if let Some(bad) = env.iter().find(|e| !e.contains('=')) {
                return Err(RequestError::invalid(format!(
                    "env entry {bad:?} must have the form KEY=value"
                )));
            }
            let mut entry = CatalogEntry {
                name: name.to_string(),
                kind,
                version,
                command: String::new(),
                args: string_list("args", req.data.get("args"))?,
                env,
                sha256: String::new(),
                multiplexing: match req.data.get("multiplexing") {
                    None | Some(Value::Null) => true,
                    Some(_) => bool_field(&req.data, "multiplexing")?,
                },
                oci: None,
            };
            let command = str_field(&req.data, "command").filter(|c| !c.is_empty());
            let mut warnings = Vec::new();
            if let Some(image) = oci_image {
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
            } else {
                let sha = sha.ok_or_else(|| {
                    RequestError::invalid(
                        "missing sha256: the hex sha256 of the plugin binary (`sha256sum FILE`), or oci_image to pull it from a registry",
                    )
                })?;
                entry.sha256 = catalog::parse_sha256(sha)?;
                entry.command = command.unwrap_or(name).to_string();
                let dir = core
                    .plugin_runtime()
                    .plugin_directory()
                    .ok_or_else(|| RequestError::invalid(catalog::NO_PLUGIN_DIRECTORY))?;
                let path = catalog::resolve_command(&dir, &entry.command)?;
                match catalog::sha256_file_async(&path).await {
                    Ok(actual) => {
                        if actual != entry.sha256 {
                            warnings.push(format!(
                                "the file {} currently has sha256 {actual}, not {}; mounts of this plugin will refuse to start until they match",
                                entry.command, entry.sha256
                            ));
                        }
                    }
                    Err(e) => {
                        return Err(RequestError::invalid(format!(
                            "cannot read plugin {}: {e}",
                            path.display()
                        )));
                    }
                }
            }
            cat.put(&entry).await?;
            tracing::info!(plugin = %entry.name, version = %entry.version, sha256 = %entry.sha256, image = ?entry.oci.as_ref().map(|o| &o.image), "plugin registered");
            if entry.oci.is_some() {
                core.prune_plugin_cache(&active.barrier).await;
            }
            if warnings.is_empty() {
                Ok(None)
            } else {
                Ok(Some(Response {
                    warnings,
                    ..Default::default()
                }))
            }
        }
        Operation::List => Err(RequestError::UnsupportedOperation),
    }
}

/// `sys/plugins/reload/backend` (`plugin` or `mounts`) and
/// `sys/plugins/reload/:type/:name`.
pub(super) async fn reload_backend(
    core: &Core,
    active: &Active,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let plugin = str_field(data, "plugin")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let mounts = string_list("mounts", data.get("mounts"))?;
    let only_type = str_field(data, "type").map(PluginType::parse).transpose()?;
    if plugin.is_some() != mounts.is_empty() {
        return Err(RequestError::invalid(
            "give exactly one of plugin or mounts",
        ));
    }
    let routes = active.routes();
    let mut targets = Vec::new();
    if let Some(name) = &plugin {
        for r in routes.values() {
            let kind_ok = match only_type {
                None => true,
                Some(PluginType::Secret) => r.entry.table == super::mounts::Table::Mounts,
                Some(PluginType::Auth) => r.entry.table == super::mounts::Table::Auth,
            };
            if r.entry.kind == *name && kind_ok {
                targets.push(r.clone());
            }
        }
        if targets.is_empty() {
            return Err(RequestError::invalid(format!(
                "no mounts use plugin {name}"
            )));
        }
    } else {
        for m in &mounts {
            let path = super::mounts::normalize_path(m)?;
            let r = routes
                .get(&path)
                .or_else(|| routes.get(&format!("auth/{path}")))
                .ok_or_else(|| RequestError::invalid(format!("no mount at {path}")))?;
            targets.push(r.clone());
        }
    }
    let cat = Catalog::new(&active.barrier);
    let mut batches: Vec<(CatalogEntry, Vec<Arc<super::Route>>)> = Vec::new();
    for r in targets {
        let ptype = match r.entry.table {
            super::mounts::Table::Mounts => PluginType::Secret,
            super::mounts::Table::Auth => PluginType::Auth,
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
        core.image_store()
            .ensure(&active.barrier, &entry)
            .await
            .map_err(|e| {
                RequestError::invalid(format!(
                    "reload failed, mounts keep their running version: plugin {}: {e}",
                    entry.name,
                ))
            })?;
        let mut backends = Vec::new();
        for r in &routes {
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
            .reload(&backends, &entry)
            .await
            .map_err(|e| {
                RequestError::invalid(format!(
                    "reload failed, mounts keep their running version: {e}"
                ))
            })?;
    }
    let mut m = Map::new();
    m.insert("reload_id".into(), json!(uuid::Uuid::new_v4().to_string()));
    Ok(Some(Response::data(m)))
}
