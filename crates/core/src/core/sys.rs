//! The system backend (`sys/`): init and seal lifecycle, health, mounts,
//! the plugin catalog, policies, key rotation and capabilities. Its routes
//! are declared once, in [`routes`], its path rules in [`paths`]; the
//! mount and plugin endpoints are
//! JSON adapters over the typed admin API (`core::admin`).
//!
//! Request and response shapes follow Vault's API documentation for each
//! endpoint. Endpoints that must work while sealed (`init`, `seal-status`,
//! `unseal`, `health`, `leader`) are answered by [`handle_unsealed_exempt`]
//! before the sealed check.

use super::admin;
use super::fields::{bool_field, str_field, u32_field};
use super::mounts::{self, Table};
use super::tokens::Resolved;
use super::{Active, ApiRequest, Core, CoreError, Method, Reply};
use crate::barrier;
use crate::logical::{Operation, Request, RequestError, Response};
use base64::Engine;
use mount_endpoints::mount_json;
use serde_json::{Map, Value, json};

mod audit_endpoints;
mod lease_endpoints;
mod mount_endpoints;
pub(super) mod paths;
mod plugin_endpoints;
pub(super) mod routes;

fn core_err(e: CoreError) -> RequestError {
    match e {
        CoreError::Request(r) => r,
        CoreError::AlreadyInitialized => RequestError::invalid("lockbox is already initialized"),
        CoreError::KeyEncoding(m) => RequestError::invalid(format!("invalid unseal key: {m}")),
        CoreError::Barrier(barrier::BarrierError::WrongUnsealKey) => RequestError::invalid(
            "unseal failed: the unseal keys do not match this server's root key; check you are using the keys from this server's `operator init` (progress was reset)",
        ),
        CoreError::Barrier(barrier::BarrierError::Shamir(e)) => {
            RequestError::invalid(format!("unseal failed: {e} (progress was reset)"))
        }
        CoreError::Barrier(barrier::BarrierError::NotInitialized) => RequestError::NotInitialized,
        CoreError::Barrier(e) => RequestError::Storage(e),
    }
}

async fn seal_status(core: &Core) -> Result<Value, RequestError> {
    let config = barrier::seal_config(core.physical_ref()).await?;
    let (progress, nonce) = core.unseal_progress().await;
    let sealed = core.is_sealed();
    Ok(json!({
        "type": "shamir",
        "initialized": config.is_some(),
        "sealed": sealed,
        "t": config.as_ref().map(|c| c.secret_threshold).unwrap_or(0),
        "n": config.as_ref().map(|c| c.secret_shares).unwrap_or(0),
        "progress": if sealed { progress } else { 0 },
        "nonce": if sealed { nonce } else { String::new() },
        "version": super::VERSION,
        "build_date": "",
        "migration": false,
        "cluster_name": core.config().cluster_name,
        "cluster_id": "",
        "recovery_seal": false,
        "storage_type": core.physical_ref().kind(),
    }))
}

/// Answers the endpoints that work while sealed. `None`: not one of them.
pub(super) async fn handle_unsealed_exempt(
    core: &Core,
    req: &ApiRequest,
    path: &str,
) -> Result<Option<Reply>, RequestError> {
    let raw = |body: Value| Ok(Some(Reply::Raw { status: 200, body }));
    match (path, req.method) {
        ("sys/seal-status", Method::Read) => raw(seal_status(core).await?),
        ("sys/init", Method::Read) => raw(
            json!({ "initialized": barrier::seal_config(core.physical_ref()).await?.is_some() }),
        ),
        ("sys/init", Method::Write) => {
            let shares = u32_field(&req.data, "secret_shares")?.ok_or_else(|| {
                RequestError::invalid("missing secret_shares: how many unseal key shares to create")
            })?;
            let threshold = u32_field(&req.data, "secret_threshold")?.ok_or_else(|| {
                RequestError::invalid(
                    "missing secret_threshold: how many shares are needed to unseal",
                )
            })?;
            for unsupported in [
                "pgp_keys",
                "root_token_pgp_key",
                "recovery_shares",
                "stored_shares",
            ] {
                let set = match req.data.get(unsupported) {
                    None | Some(Value::Null) => false,
                    Some(Value::Array(a)) => !a.is_empty(),
                    Some(Value::String(s)) => !s.is_empty(),
                    Some(Value::Number(n)) => n.as_u64() != Some(0),
                    Some(_) => true,
                };
                if set {
                    return Err(RequestError::invalid(format!(
                        "{unsupported} is not supported by lockbox"
                    )));
                }
            }
            let init = core
                .initialize(shares, threshold, None)
                .await
                .map_err(|e| match e {
                    CoreError::Barrier(barrier::BarrierError::Shamir(s)) => {
                        RequestError::invalid(s.to_string())
                    }
                    other => core_err(other),
                })?;
            let hex_keys: Vec<String> = init
                .keys
                .iter()
                .map(|k| hex::encode(k.as_slice()))
                .collect();
            let b64_keys: Vec<String> = init
                .keys
                .iter()
                .map(|k| base64::engine::general_purpose::STANDARD.encode(k.as_slice()))
                .collect();
            raw(json!({"keys": hex_keys, "keys_base64": b64_keys, "root_token": init.root_token}))
        }
        ("sys/unseal", Method::Write) => {
            if !core.is_initialized().await.map_err(core_err)? {
                return Err(RequestError::NotInitialized);
            }
            if bool_field(&req.data, "reset")? {
                core.reset_unseal().await;
                return raw(seal_status(core).await?);
            }
            let key = str_field(&req.data, "key")
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    RequestError::invalid("missing key: give one unseal key, or reset=true")
                })?;
            let key = super::decode_key(key).map_err(core_err)?;
            if let Err(e) = core.submit_unseal_key(&key).await {
                core.reset_unseal().await;
                return Err(core_err(e));
            }
            raw(seal_status(core).await?)
        }
        ("sys/health", Method::Read) => {
            let initialized = core.is_initialized().await.map_err(core_err)?;
            let sealed = core.is_sealed();
            let code = |key: &str, default: u16| -> Result<u16, RequestError> {
                match req.data.get(key) {
                    None => Ok(default),
                    Some(v) => {
                        let s = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        s.parse::<u16>()
                            .ok()
                            .filter(|c| (100..600).contains(c))
                            .ok_or_else(|| {
                                RequestError::invalid(format!("{key}: invalid status code {s:?}"))
                            })
                    }
                }
            };
            let standby = core.is_standby();
            let ok = |key: &str| bool_field(&req.data, key);
            let status = if !initialized {
                code("uninitcode", 501)?
            } else if sealed {
                code("sealedcode", 503)?
            } else if standby && !ok("standbyok")? && !ok("perfstandbyok")? {
                code("standbycode", 429)?
            } else {
                code("activecode", 200)?
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            Ok(Some(Reply::Raw {
                status,
                body: json!({
                    "initialized": initialized,
                    "sealed": sealed,
                    "standby": standby,
                    "performance_standby": false,
                    "replication_performance_mode": "disabled",
                    "replication_dr_mode": "disabled",
                    "server_time_utc": now,
                    "version": super::VERSION,
                    "cluster_name": core.config().cluster_name,
                    "cluster_id": "",
                }),
            }))
        }
        // Answered sealed too (`vault status` asks it on a sealed server).
        ("sys/leader", Method::Read) => raw(super::ha::leader_body(core).await?),
        ("sys/seal-status" | "sys/init" | "sys/unseal" | "sys/health" | "sys/leader", _) => {
            Err(RequestError::UnsupportedOperation)
        }
        _ => Ok(None),
    }
}

pub(super) async fn policy_endpoint(
    active: &Active,
    name: &str,
    req: &Request,
    legacy: bool,
) -> Result<Option<Response>, RequestError> {
    match req.operation {
        Operation::Read => {
            // `name` is canonical: the pipeline rewrote it before the ACL.
            let Some(p) = active.policies.get(name).await? else {
                return Ok(None);
            };
            let mut m = Map::new();
            m.insert("name".into(), json!(name));
            if legacy {
                m.insert("rules".into(), json!(p.0));
            }
            m.insert("policy".into(), json!(p.0));
            Ok(Some(Response::data(m)))
        }
        Operation::Create | Operation::Update => {
            let text = str_field(&req.data, "policy")
                .or_else(|| str_field(&req.data, "rules"))
                .ok_or_else(|| RequestError::invalid("missing policy: the policy text in HCL"))?;
            // Vault accepts the policy base64-encoded too.
            let decoded;
            let text = match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                Ok(bytes) if !text.contains('"') => {
                    decoded = String::from_utf8(bytes)
                        .map_err(|_| RequestError::invalid("policy is not UTF-8"))?;
                    decoded.as_str()
                }
                _ => text,
            };
            active.policies.put(name, text).await?;
            Ok(None)
        }
        Operation::Delete => {
            active.policies.delete(name).await?;
            Ok(None)
        }
        Operation::List | Operation::Patch => Err(RequestError::UnsupportedOperation),
    }
}

pub(super) async fn capabilities(
    active: &Active,
    token: &Resolved,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let mut paths: Vec<String> = Vec::new();
    match data.get("paths").or_else(|| data.get("path")) {
        Some(Value::String(s)) => paths.extend(s.split(',').map(|s| s.trim().to_string())),
        Some(Value::Array(a)) => {
            for v in a {
                paths.push(
                    v.as_str()
                        .ok_or_else(|| RequestError::invalid("paths: expected strings"))?
                        .to_string(),
                );
            }
        }
        _ => return Err(RequestError::invalid("missing paths")),
    }
    let acl = active.policies.acl(&token.entry.policies).await?;
    let mut m = Map::new();
    let mut all = Vec::new();
    for p in &paths {
        let caps = acl.capabilities(p.trim_start_matches('/'));
        let mut names: Vec<&str> = if acl.is_root() {
            vec!["root"]
        } else {
            caps.names()
        };
        if names.is_empty() {
            names.push("deny");
        }
        m.insert(p.clone(), json!(names));
        all.extend(names.iter().map(|s| s.to_string()));
    }
    if paths.len() == 1 {
        m.insert("capabilities".into(), json!(all));
    }
    Ok(Some(Response::data(m)))
}

/// `GET sys/key-status`.
pub(super) fn key_status(active: &Active) -> Response {
    let s = active.barrier.key_status();
    let mut m = Map::new();
    m.insert("term".into(), json!(s.term));
    m.insert(
        "install_time".into(),
        json!(
            s.install_time
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        ),
    );
    m.insert("encryptions".into(), json!(s.encryptions));
    Response::data(m)
}

/// `GET sys/internal/ui/mounts`: the mounts visible to the caller: without
/// a token none (lockbox has no `listing_visibility = "unauth"`), with one
/// those it may use.
pub(super) async fn internal_ui_mounts(
    active: &Active,
    token: Option<&Resolved>,
) -> Result<Option<Response>, RequestError> {
    let acl = match token {
        Some(t) => Some(active.policies.acl(&t.entry.policies).await?),
        None => None,
    };
    let mut secret = Map::new();
    let mut auth = Map::new();
    for table in [Table::Mounts, Table::Auth] {
        for m in admin::mounts::list(active, table) {
            if !acl.as_ref().is_some_and(|a| a.has_access_under(&m.path)) {
                continue;
            }
            let target = match table {
                Table::Mounts => &mut secret,
                Table::Auth => &mut auth,
            };
            target.insert(m.display_path().to_string(), mount_json(&m));
        }
    }
    let mut m = Map::new();
    m.insert("secret".into(), Value::Object(secret));
    m.insert("auth".into(), Value::Object(auth));
    Ok(Some(Response::data(m)))
}

/// `GET sys/internal/ui/mounts/:path`: authenticated, but by the caller's
/// access to the mount itself rather than to this path (Vault's
/// `hasMountAccess`).
pub(super) async fn internal_ui_mount(
    active: &Active,
    token: Option<&Resolved>,
    rest: &str,
) -> Result<Option<Response>, RequestError> {
    let token = token.ok_or(RequestError::PermissionDenied)?;
    let routes = active.routes();
    let found = mounts::longest_prefix(rest, |p| routes.get(p).cloned());
    let acl = active.policies.acl(&token.entry.policies).await?;
    let Some((p, r)) = found.filter(|(p, _)| acl.has_access_under(p)) else {
        // Vault answers the same for "no such mount" and "no access".
        let mut shown = rest.trim_end_matches('/').to_string();
        shown.push('/');
        return Err(RequestError::Denied(format!(
            "preflight capability check returned 403, please ensure client's policies grant access to path {shown:?}"
        )));
    };
    let mut m = mount_json(&admin::mounts::mount_info(&r))
        .as_object()
        .cloned()
        .unwrap_or_default();
    m.insert("path".into(), json!(p));
    if r.entry.kind == "kv" {
        // Vault's CLI picks the kv protocol from options.version.
        let options = m.entry("options").or_insert(Value::Null);
        if !options.is_object() {
            *options = json!({});
        }
        if let Some(o) = options.as_object_mut() {
            o.entry("version").or_insert(json!("1"));
        }
    }
    Ok(Some(Response::data(m)))
}
