//! `sys/leases/*` (and Vault's legacy `sys/renew`, `sys/revoke`,
//! `sys/revoke-prefix`, `sys/revoke-force`): JSON ⇄ the lease manager
//! (`core::leases`). Lease ids and prefixes come canonical from the
//! pipeline (no `.`/`..`/empty segments), the same step as every path.

use crate::core::Active;
use crate::core::fields::str_field;
use crate::core::leases::{RouteEngines, now};
use crate::logical::{RequestError, Response};
use serde_json::{Map, Value};

/// The lease id of a request: the path's (`sys/leases/renew/:id`) or the
/// body's `lease_id`.
fn lease_id<'a>(
    from_path: Option<&'a str>,
    data: &'a Map<String, Value>,
) -> Result<&'a str, RequestError> {
    from_path
        .filter(|s| !s.is_empty())
        .or_else(|| str_field(data, "lease_id").filter(|s| !s.is_empty()))
        .ok_or_else(|| {
            RequestError::invalid("missing lease_id: name the lease, e.g. database/creds/app/<id>")
        })
}

/// `PUT sys/leases/lookup {lease_id}`.
pub(super) async fn lookup(
    active: &Active,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let id = lease_id(None, data)?;
    let entry = active
        .leases
        .get(id)
        .await?
        .ok_or_else(|| RequestError::invalid("invalid lease"))?;
    Ok(Some(Response::data(entry.lookup_data(now()))))
}

/// `LIST sys/leases/lookup/:prefix` (sudo).
pub(super) async fn list(active: &Active, prefix: &str) -> Result<Option<Response>, RequestError> {
    let keys = active.leases.list(prefix).await?;
    if keys.is_empty() {
        return Ok(None);
    }
    Ok(Some(Response::list(keys)))
}

/// `PUT sys/leases/renew[/:id] {lease_id, increment}`.
pub(super) async fn renew(
    active: &Active,
    from_path: Option<&str>,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let id = lease_id(from_path, data)?;
    let increment = crate::core::tokens::increment(data)?;
    let entry = active
        .leases
        .renew(id, increment, &RouteEngines { active })
        .await?;
    Ok(Some(Response {
        lease_id: entry.lease_id.clone(),
        lease_duration: u64::try_from(entry.expire_time - now()).unwrap_or(0),
        renewable: entry.renewable,
        ..Default::default()
    }))
}

/// `PUT sys/leases/revoke[/:id] {lease_id}`: revoked through its engine
/// before the answer; an unknown lease is a success, as in Vault.
pub(super) async fn revoke(
    active: &Active,
    from_path: Option<&str>,
    data: &Map<String, Value>,
) -> Result<Option<Response>, RequestError> {
    let id = lease_id(from_path, data)?;
    active
        .leases
        .revoke(id, false, &RouteEngines { active })
        .await?;
    Ok(None)
}

/// `PUT sys/leases/revoke-prefix/:prefix` and `revoke-force/:prefix` (sudo).
pub(super) async fn revoke_prefix(
    active: &Active,
    prefix: &str,
    force: bool,
) -> Result<Option<Response>, RequestError> {
    if prefix.is_empty() {
        return Err(RequestError::invalid(
            "missing prefix: name the leases to revoke, e.g. sys/leases/revoke-prefix/database/creds/",
        ));
    }
    active
        .leases
        .revoke_prefix(prefix, force, &RouteEngines { active })
        .await?;
    Ok(None)
}

/// `PUT sys/leases/tidy`: index entries of gone leases removed; leases of
/// tokens that no longer exist revoked.
pub(super) async fn tidy(active: &Active) -> Result<Option<Response>, RequestError> {
    let fixed = active.leases.tidy(&active.tokens).await?;
    Ok(Some(Response {
        warnings: vec![format!(
            "Tidy operation finished: {fixed} lease index entries fixed"
        )],
        ..Default::default()
    }))
}
