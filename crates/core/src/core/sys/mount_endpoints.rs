//! The mount table endpoints of `sys/` as JSON adapters over the admin API
//! (`core::admin::mounts`): `mounts`, `auth` (enable, disable, list, read),
//! their `tune` paths and `remount`. Bodies become typed inputs here (only
//! the JSON shape is checked); the rules are the admin API's.

use crate::core::admin::mounts as ops;
use crate::core::admin::{Caller, EnableMount, MountInfo, MountTune, TuneMount};
use crate::core::fields::{bool_field, str_field};
use crate::core::mounts::{self, MountEntry, Table};
use crate::core::{Active, Core};
use crate::logical::{RequestError, Response};
use serde_json::{Map, Value, json};

/// A mount in the JSON shape of `sys/mounts` and `sys/auth`.
pub(super) fn mount_json(info: &MountInfo) -> Value {
    let entry = MountEntry {
        table: info.table,
        path: info.path.clone(),
        kind: info.kind.clone(),
        description: info.description.clone(),
        uuid: info.uuid.clone(),
        accessor: info.accessor.clone(),
        config: info.config.clone(),
        options: info.options.clone(),
        local: info.local,
        seal_wrap: info.seal_wrap,
        plugin_version: info.plugin_version.clone(),
        builtin_fixed: false,
        owner: info.owner.clone(),
    };
    let mut v = entry.to_api(&info.running_plugin_version, &info.running_sha256);
    // Vault reports a deprecation status for its built-in engines only.
    if info.builtin_engine
        && let Some(m) = v.as_object_mut()
    {
        m.insert("deprecation_status".into(), json!("supported"));
    }
    v
}

/// `GET sys/mounts`, `GET sys/auth`.
pub(super) fn listing(active: &Active, table: Table) -> Response {
    let data: Map<String, Value> = ops::list(active, table)
        .iter()
        .map(|m| (m.display_path().to_string(), mount_json(m)))
        .collect();
    Response::data(data)
}

/// `GET sys/mounts/:path`.
pub(super) fn read(active: &Active, path: &str) -> Result<Option<Response>, RequestError> {
    Ok(ops::read(active, Table::Mounts, path)?.map(|m| {
        let v = mount_json(&m);
        Response::data(v.as_object().cloned().unwrap_or_default())
    }))
}

/// The typed input of `POST sys/mounts/:path` and `POST sys/auth/:path`.
fn enable_input(data: &Map<String, Value>) -> Result<EnableMount, RequestError> {
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
    Ok(EnableMount {
        kind: str_field(data, "type").unwrap_or("").to_string(),
        description: str_field(data, "description").unwrap_or("").to_string(),
        config,
        options: mounts::parse_options(data.get("options").unwrap_or(&Value::Null))?,
        local: bool_field(data, "local")?,
        seal_wrap: bool_field(data, "seal_wrap")?,
        plugin_version: str_field(data, "plugin_version").unwrap_or("").to_string(),
        owner: owner_input(data)?,
    })
}

/// The `owner` field: `Some` whenever the body names it (so a non-root
/// caller sending it is refused, even empty).
fn owner_input(data: &Map<String, Value>) -> Result<Option<String>, RequestError> {
    match data.get(mounts::OWNER_FIELD) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(String::new())),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(RequestError::invalid(format!(
            "{}: expected a string, got {other}",
            mounts::OWNER_FIELD
        ))),
    }
}

/// `POST sys/mounts/:path`, `POST sys/auth/:path`.
pub(super) async fn enable(
    core: &Core,
    active: &Active,
    caller: &Caller,
    table: Table,
    path: &str,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let input = enable_input(data)?;
    ops::enable(core, active, caller, table, path, input).await?;
    Ok(None)
}

/// The typed input of `POST sys/mounts/:path/tune`: every field other
/// than description, options, plugin_version and owner is lease config.
fn tune_input(data: &Map<String, Value>) -> Result<TuneMount, RequestError> {
    let mut input = TuneMount {
        owner: owner_input(data)?,
        ..TuneMount::default()
    };
    let mut config_input = Map::new();
    for (k, v) in data {
        match k.as_str() {
            mounts::OWNER_FIELD => {}
            "description" => {
                input.description = Some(
                    v.as_str()
                        .ok_or_else(|| RequestError::invalid("description: expected a string"))?
                        .to_string(),
                )
            }
            "options" => input.options = Some(mounts::parse_options(v)?),
            "plugin_version" => input.plugin_version = Some(v.as_str().unwrap_or("").to_string()),
            _ => {
                config_input.insert(k.clone(), v.clone());
            }
        }
    }
    let config = mounts::parse_config(&config_input)?;
    input.default_lease_ttl = config.default_lease_ttl;
    input.max_lease_ttl = config.max_lease_ttl;
    input.force_no_cache = config.force_no_cache;
    Ok(input)
}

/// The JSON shape of `GET sys/mounts/:path/tune`.
fn tune_json(tune: MountTune) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("default_lease_ttl".into(), json!(tune.default_lease_ttl));
    m.insert("max_lease_ttl".into(), json!(tune.max_lease_ttl));
    m.insert("force_no_cache".into(), json!(tune.force_no_cache));
    m.insert("description".into(), json!(tune.description));
    let options: Map<String, Value> = tune
        .options
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    m.insert(
        "options".into(),
        if options.is_empty() {
            Value::Null
        } else {
            Value::Object(options)
        },
    );
    if !tune.plugin_version.is_empty() {
        m.insert("plugin_version".into(), json!(tune.plugin_version));
    }
    m
}

/// `GET sys/mounts/:path/tune`.
pub(super) fn read_tune(
    core: &Core,
    active: &Active,
    table: Table,
    path: &str,
) -> Result<Option<Response>, RequestError> {
    let tune = ops::read_tune(core, active, table, path)?;
    Ok(Some(Response::data(tune_json(tune))))
}

/// `POST sys/mounts/:path/tune`.
pub(super) async fn tune(
    core: &Core,
    active: &Active,
    caller: &Caller,
    table: Table,
    path: &str,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let input = tune_input(data)?;
    ops::tune(core, active, caller, table, path, input).await?;
    Ok(None)
}

/// `POST sys/remount`.
pub(super) async fn remount(
    active: &Active,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let from = str_field(data, "from")
        .ok_or_else(|| RequestError::invalid("missing from: the mount to move"))?;
    let to =
        str_field(data, "to").ok_or_else(|| RequestError::invalid("missing to: the new path"))?;
    let id = ops::remount(active, from, to).await?;
    let mut m = Map::new();
    m.insert("migration_id".into(), json!(id));
    Ok(Some(Response::data(m)))
}
