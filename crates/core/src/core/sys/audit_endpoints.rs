//! `sys/audit` (list), `sys/audit/:path` (enable, disable; sudo) and
//! `sys/audit-hash/:path`: JSON ⇄ the audit broker (`core::audit`).

use crate::core::Active;
use crate::core::audit::{DeviceConfig, device_path};
use crate::core::fields::{bool_field, str_field};
use crate::logical::{RequestError, Response};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// `GET sys/audit`: `{"<path>": {type, description, options, local, path}}`.
pub(super) fn list(active: &Active) -> Response {
    let mut m = Map::new();
    for d in active.audit.list() {
        m.insert(
            d.path.clone(),
            json!({
                "type": d.kind,
                "description": d.description,
                "options": d.options,
                "local": d.local,
                "path": d.path,
            }),
        );
    }
    Response::data(m)
}

/// `PUT sys/audit/:path {type, description, options, local}`.
pub(super) async fn enable(
    active: &Active,
    path: &str,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let kind = str_field(data, "type")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RequestError::invalid("missing type: the audit device type, \"file\""))?;
    let mut options = BTreeMap::new();
    match data.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    other => {
                        return Err(RequestError::invalid(format!(
                            "options.{k}: expected a string, got {other}"
                        )));
                    }
                };
                options.insert(k.clone(), s);
            }
        }
        Some(other) => {
            return Err(RequestError::invalid(format!(
                "options: expected an object, got {other}"
            )));
        }
    }
    active
        .audit
        .enable(DeviceConfig {
            path: device_path(path)?,
            kind: kind.to_string(),
            description: str_field(data, "description")
                .unwrap_or_default()
                .to_string(),
            options,
            local: bool_field(data, "local")?,
        })
        .await?;
    Ok(None)
}

/// `DELETE sys/audit/:path`.
pub(super) async fn disable(active: &Active, path: &str) -> Result<Option<Response>, RequestError> {
    active.audit.disable(path).await?;
    Ok(None)
}

/// `PUT sys/audit-hash/:path {input}` → `{hash}`.
pub(super) fn hash(
    active: &Active,
    path: &str,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let input = str_field(data, "input")
        .ok_or_else(|| RequestError::invalid("missing input: the string to hash"))?;
    let mut m = Map::new();
    m.insert("hash".into(), json!(active.audit.hash(path, input)?));
    Ok(Some(Response::data(m)))
}
