//! The `auth/token/` endpoints: [`TokenStore::handle`] and the parsing
//! of their request bodies.

use super::{AuthRenewer, CreateParams, Grant, Resolved, TokenEntry, TokenStore, now};
use crate::logical::{Operation, Request, RequestError, Response, duration};
use serde_json::{Map, Value, json};

impl TokenStore {
    /// Handles `auth/token/<path>` for an authenticated caller.
    pub async fn handle(
        &self,
        req: &Request,
        caller: &Resolved,
        caller_sudo: bool,
        renewer: &dyn AuthRenewer,
    ) -> Result<Option<Response>, RequestError> {
        let op = req.operation;
        let write = matches!(op, Operation::Create | Operation::Update);
        let now_ts = now();
        let token_arg = |field: &str| -> Result<String, RequestError> {
            req.data
                .get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| RequestError::invalid(format!("missing required field {field:?}")))
        };
        match (req.path.as_str(), op) {
            ("create" | "create-orphan", _) if write => {
                let params = create_params(&req.data, req.path == "create-orphan")?;
                if params.id.as_deref().is_some_and(|id| id.contains('.')) {
                    return Err(RequestError::invalid(
                        "custom token ID cannot have a '.' in the value",
                    ));
                }
                // Vault: root or sudo on the create path may set the ID,
                // create orphans with `no_parent`, and grant any policy but
                // root.
                let grant = Grant {
                    sudo: caller_sudo || caller.entry.is_root(),
                    display_name: None,
                };
                let (id, entry) = self.create_as(Some(caller), params, grant).await?;
                Ok(Some(Response {
                    auth: Some(entry.auth(&id, now())),
                    ..Default::default()
                }))
            }
            ("lookup-self", _) if op == Operation::Read || write => {
                let mut data = caller.entry.lookup_data(Some(caller.id()), now_ts);
                // This request took one use (the last one shows as -1).
                let uses = caller.entry.num_uses;
                if uses > 0 {
                    data.insert(
                        "num_uses".into(),
                        json!(if uses == 1 { -1 } else { uses - 1 }),
                    );
                }
                Ok(Some(Response::data(data)))
            }
            ("lookup", _) if write || op == Operation::Read => {
                let id = token_arg("token")?;
                let found = self
                    .lookup(&id)
                    .await?
                    .ok_or_else(|| RequestError::Denied("bad token".into()))?;
                Ok(Some(Response::data(
                    found.entry.lookup_data(Some(&id), now_ts),
                )))
            }
            ("lookup-accessor", _) if write => {
                let accessor = token_arg("accessor")?;
                let (_, entry) = self
                    .by_accessor(&accessor)
                    .await?
                    .ok_or_else(|| RequestError::invalid("invalid accessor"))?;
                Ok(Some(Response::data(entry.lookup_data(None, now_ts))))
            }
            ("renew-self", _) if write => {
                let inc = increment(&req.data)?;
                let granted = ask_method(renewer, &caller.entry, inc).await?;
                let entry = self
                    .renew(&caller.hash, inc, granted)
                    .await?
                    .ok_or(RequestError::PermissionDenied)?;
                Ok(Some(Response {
                    auth: Some(entry.auth(caller.id(), now())),
                    ..Default::default()
                }))
            }
            ("renew", _) if write => {
                let id = token_arg("token")?;
                let inc = increment(&req.data)?;
                let not_found = || RequestError::invalid("token not found");
                let target = self.lookup(&id).await?.ok_or_else(not_found)?;
                let granted = ask_method(renewer, &target.entry, inc).await?;
                let entry = self
                    .renew(&target.hash, inc, granted)
                    .await?
                    .ok_or_else(not_found)?;
                Ok(Some(Response {
                    auth: Some(entry.auth(&id, now())),
                    ..Default::default()
                }))
            }
            ("revoke-self", _) if write => {
                self.revoke_tree(&caller.hash).await?;
                Ok(None)
            }
            ("revoke", _) if write => {
                let id = token_arg("token")?;
                if let Some(target) = self.lookup(&id).await? {
                    self.revoke_tree(&target.hash).await?;
                }
                Ok(None)
            }
            ("revoke-accessor", _) if write => {
                let accessor = token_arg("accessor")?;
                match self.by_accessor(&accessor).await? {
                    Some((hash, _)) => {
                        self.revoke_tree(&hash).await?;
                        Ok(None)
                    }
                    None => Ok(Some(Response {
                        warnings: vec!["No token found with this accessor".into()],
                        ..Default::default()
                    })),
                }
            }
            (
                "create" | "create-orphan" | "lookup-self" | "lookup" | "lookup-accessor"
                | "renew-self" | "renew" | "revoke-self" | "revoke" | "revoke-accessor",
                _,
            ) => Err(RequestError::UnsupportedOperation),
            _ => Err(RequestError::NoHandler {
                path: format!("auth/token/{}", req.path),
            }),
        }
    }
}

pub(crate) fn increment(data: &Map<String, Value>) -> Result<u64, RequestError> {
    data.get("increment")
        .map(|v| duration::parse_seconds("increment", v).map_err(RequestError::InvalidRequest))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn string_list(field: &str, v: &Value) -> Result<Vec<String>, RequestError> {
    match v {
        Value::Null => Ok(vec![]),
        Value::String(s) => Ok(s
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    RequestError::invalid(format!("{field}: expected a list of strings"))
                })
            })
            .collect(),
        _ => Err(RequestError::invalid(format!(
            "{field}: expected a list of strings"
        ))),
    }
}

/// An empty value as Vault's CLI sends for flags left at their default:
/// null, `""`, `0`, `"0"` or a zero duration.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => matches!(s.as_str(), "" | "0" | "0s"),
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn bool_field(field: &str, v: &Value) -> Result<bool, RequestError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => s.parse().map_err(|_| {
            RequestError::invalid(format!("{field}: expected true or false, got {s:?}"))
        }),
        _ => Err(RequestError::invalid(format!(
            "{field}: expected a boolean"
        ))),
    }
}

/// Parses the body of `auth/token/create`.
pub fn create_params(
    data: &Map<String, Value>,
    orphan_path: bool,
) -> Result<CreateParams, RequestError> {
    let mut p = CreateParams {
        orphan: orphan_path,
        path: if orphan_path {
            "auth/token/create-orphan"
        } else {
            "auth/token/create"
        }
        .into(),
        ..Default::default()
    };
    for (key, v) in data {
        match key.as_str() {
            "id" => p.id = v.as_str().map(str::to_string),
            "policies" => p.policies = string_list(key, v)?,
            "meta" => {
                p.meta = match v {
                    Value::Null => None,
                    Value::Object(m) => {
                        if m.values().any(|v| !v.is_string()) {
                            return Err(RequestError::invalid("meta: values must be strings"));
                        }
                        Some(m.clone())
                    }
                    _ => return Err(RequestError::invalid("meta: expected an object of strings")),
                }
            }
            "no_parent" => p.orphan |= bool_field(key, v)?,
            "no_default_policy" => p.no_default_policy = bool_field(key, v)?,
            "renewable" => p.renewable = Some(bool_field(key, v)?),
            "ttl" | "lease" => {
                p.ttl = duration::parse_seconds(key, v).map_err(RequestError::InvalidRequest)?
            }
            "explicit_max_ttl" => {
                p.explicit_max_ttl =
                    duration::parse_seconds(key, v).map_err(RequestError::InvalidRequest)?
            }
            "display_name" => p.display_name = v.as_str().map(str::to_string),
            "num_uses" => {
                p.num_uses = match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| RequestError::invalid("num_uses: expected an integer"))?
            }
            "type" => {
                if v.as_str().is_some_and(|t| t != "service" && t != "default") {
                    return Err(RequestError::invalid(
                        "type: only service tokens are supported",
                    ));
                }
            }
            // Vault's CLI always sends these; only a real value is refused.
            "period" | "entity_alias" | "role_name" if is_unset(v) => {}
            "period" | "entity_alias" | "role_name" => {
                return Err(RequestError::invalid(format!(
                    "{key} is not supported by lockbox's token store yet; leave it out"
                )));
            }
            other => {
                return Err(RequestError::invalid(format!(
                    "unknown field {other:?}; token create accepts policies, ttl, explicit_max_ttl, renewable, num_uses, display_name, meta, no_parent, no_default_policy, id"
                )));
            }
        }
    }
    Ok(p)
}

/// The issuing auth method's say on a renewal, asked before the core
/// renews (a token that is not renewable is refused without asking).
async fn ask_method(
    renewer: &dyn AuthRenewer,
    entry: &TokenEntry,
    increment: u64,
) -> Result<Option<u64>, RequestError> {
    if !entry.renewable {
        return Err(RequestError::invalid("lease is not renewable"));
    }
    renewer.renew_auth(entry, increment).await
}
