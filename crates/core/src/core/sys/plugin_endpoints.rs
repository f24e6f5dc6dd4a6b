//! `sys/plugins/*` as JSON adapters over the admin API
//! (`core::admin::catalog`): the plugin catalog and reloads, in Vault's
//! request and response shapes.

use crate::catalog::{PluginType, validate_name};
use crate::core::admin::catalog as ops;
use crate::core::admin::{RegisterPlugin, ReloadTarget};
use crate::core::fields::{bool_field, str_field, string_list};
use crate::core::{Active, Core};
use crate::logical::{RequestError, Response};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// `GET sys/plugins/catalog`.
pub(super) async fn listing(active: &Active) -> Result<Option<Response>, RequestError> {
    let entries = ops::list(active, None).await?;
    let mut data = Map::new();
    for kind in [PluginType::Auth, PluginType::Secret] {
        let names: BTreeSet<&str> = entries
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.name.as_str())
            .collect();
        data.insert(kind.as_str().into(), json!(names));
    }
    data.insert("database".into(), json!([]));
    let detailed = entries.iter().map(|e| Value::Object(e.to_api())).collect();
    data.insert("detailed".into(), Value::Array(detailed));
    Ok(Some(Response::data(data)))
}

/// `LIST sys/plugins/catalog/:type`.
pub(super) async fn names(active: &Active, kind: &str) -> Result<Option<Response>, RequestError> {
    let kind = PluginType::parse(kind).map_err(|_| {
        RequestError::invalid(format!(
            "use sys/plugins/catalog/<type>/<name> with type secret or auth (got {kind:?})"
        ))
    })?;
    let names: BTreeSet<String> = ops::list(active, Some(kind))
        .await?
        .into_iter()
        .map(|e| e.name)
        .collect();
    Ok(Some(Response::list(names.into_iter().collect())))
}

/// `GET sys/plugins/catalog/:type/:name`.
pub(super) async fn read(
    active: &Active,
    kind: &str,
    name: &str,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let version = str_field(data, "version").unwrap_or("");
    Ok(ops::read(active, PluginType::parse(kind)?, name, version)
        .await?
        .map(|e| Response::data(e.to_api())))
}

/// `DELETE sys/plugins/catalog/:type/:name`.
pub(super) async fn deregister(
    active: &Active,
    kind: &str,
    name: &str,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let version = str_field(data, "version").unwrap_or("");
    ops::deregister(active, PluginType::parse(kind)?, name, version).await?;
    Ok(None)
}

/// The typed input of `POST sys/plugins/catalog/:type/:name`.
fn register_input(
    kind: &str,
    name: &str,
    data: &Map<String, Value>,
) -> Result<RegisterPlugin, RequestError> {
    let kind = PluginType::parse(kind)?;
    validate_name(name)?;
    if str_field(data, "runtime").is_some_and(|s| !s.is_empty()) {
        return Err(RequestError::invalid(
            "runtime is not supported: lockbox runs plugins as verified processes",
        ));
    }
    let sha256 = str_field(data, "sha256").or_else(|| str_field(data, "sha_256"));
    Ok(RegisterPlugin {
        kind,
        name: name.to_string(),
        version: str_field(data, "version").unwrap_or("").to_string(),
        env: string_list("env", data.get("env"))?,
        args: string_list("args", data.get("args"))?,
        multiplexing: match data.get("multiplexing") {
            None | Some(Value::Null) => true,
            Some(_) => bool_field(data, "multiplexing")?,
        },
        command: str_field(data, "command").map(str::to_string),
        sha256: sha256.map(str::to_string),
        oci_image: str_field(data, "oci_image").map(str::to_string),
    })
}

/// `POST sys/plugins/catalog/:type/:name`.
pub(super) async fn register(
    core: &Core,
    active: &Active,
    kind: &str,
    name: &str,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let warnings = ops::register(core, active, register_input(kind, name, data)?).await?;
    if warnings.is_empty() {
        Ok(None)
    } else {
        Ok(Some(Response {
            warnings,
            ..Default::default()
        }))
    }
}

/// `POST sys/plugins/reload/backend` (`plugin` or `mounts`, optional
/// `type`) and `POST sys/plugins/reload/:type/:name` (`kind_name`).
pub(super) async fn reload(
    core: &Core,
    active: &Active,
    kind_name: Option<(&str, &str)>,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let (plugin, kind) = match kind_name {
        Some((kind, name)) => (Some(name.to_string()), Some(kind)),
        None => (
            str_field(data, "plugin")
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            str_field(data, "type"),
        ),
    };
    let mounts = string_list("mounts", data.get("mounts"))?;
    let kind = kind.map(PluginType::parse).transpose()?;
    let target = match plugin {
        Some(name) if mounts.is_empty() => ReloadTarget::Plugin {
            name,
            kind,
            version: None,
        },
        Some(_) => return Err(RequestError::invalid(ops::EXACTLY_ONE_TARGET)),
        None => ReloadTarget::Mounts(mounts),
    };
    let id = ops::reload(core, active, &target).await?;
    let mut m = Map::new();
    m.insert("reload_id".into(), json!(id));
    Ok(Some(Response::data(m)))
}
