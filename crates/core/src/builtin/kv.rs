//! The built-in `kv` engine, version 1 semantics: read, write (replace),
//! list and delete JSON objects at arbitrary paths.
//!
//! Each key is one JSON object stored under the mount's view. Reads return
//! the object as `data` with a `lease_duration` equal to the object's `ttl`
//! field when set, or the mount's default TTL (a refresh hint, as in Vault).

use crate::barrier::Storage;
use crate::logical::{Backend, BackendKind, Operation, Request, RequestError, Response, duration};
use async_trait::async_trait;
use serde_json::{Map, Value};

/// The engine. Stateless: all state is in the mount's storage.
#[derive(Debug, Default)]
pub struct Kv;

fn key_of(req: &Request) -> Result<&str, RequestError> {
    let key = req.path.as_str();
    if key.is_empty() {
        return Err(RequestError::invalid(format!(
            "missing key: write to a path below the mount, e.g. {}my-secret",
            req.mount_point
        )));
    }
    if key.split('/').any(|s| s == ".." || s == ".") {
        return Err(RequestError::invalid(format!(
            "invalid key {key:?}: `.` and `..` segments are not allowed"
        )));
    }
    Ok(key)
}

#[async_trait]
impl Backend for Kv {
    fn kind(&self) -> BackendKind {
        BackendKind::Secret
    }

    /// A kv read or list only reads storage.
    fn reads_change_nothing(&self) -> bool {
        true
    }

    async fn exists(
        &self,
        req: &Request,
        storage: &dyn Storage,
    ) -> Result<Option<bool>, RequestError> {
        if req.path.is_empty() {
            return Ok(Some(false));
        }
        Ok(Some(storage.get(&req.path).await?.is_some()))
    }

    async fn handle(
        &self,
        req: &Request,
        storage: &dyn Storage,
    ) -> Result<Option<Response>, RequestError> {
        match req.operation {
            Operation::Read => {
                if req.path.is_empty() || req.path.ends_with('/') {
                    return Ok(None);
                }
                let Some(raw) = storage.get(&req.path).await? else {
                    return Ok(None);
                };
                let data: Map<String, Value> = serde_json::from_slice(&raw).map_err(|e| {
                    RequestError::Internal(format!("stored value at {} is not JSON: {e}", req.path))
                })?;
                let mut lease = req.mount_default_ttl;
                if let Some(ttl) = data.get("ttl")
                    && let Ok(secs) = duration::parse_seconds("ttl", ttl)
                    && secs > 0
                {
                    lease = secs;
                }
                Ok(Some(Response {
                    lease_duration: lease,
                    ..Response::data(data)
                }))
            }
            Operation::Create | Operation::Update => {
                let key = key_of(req)?;
                if key.ends_with('/') {
                    return Err(RequestError::invalid(format!(
                        "invalid key {key:?}: a key cannot end with `/` (that names a folder)"
                    )));
                }
                if req.data.is_empty() {
                    return Err(RequestError::invalid(
                        "missing data fields: give at least one key=value pair",
                    ));
                }
                if let Some(ttl) = req.data.get("ttl") {
                    duration::parse_seconds("ttl", ttl).map_err(RequestError::InvalidRequest)?;
                }
                let raw = serde_json::to_vec(&req.data)
                    .map_err(|e| RequestError::Internal(e.to_string()))?;
                storage.put(key, &raw).await?;
                Ok(None)
            }
            Operation::Delete => {
                let key = key_of(req)?;
                storage.delete(key).await?;
                Ok(None)
            }
            Operation::List => {
                let mut prefix = req.path.clone();
                if !prefix.is_empty() && !prefix.ends_with('/') {
                    prefix.push('/');
                }
                let keys = storage.list(&prefix).await?;
                if keys.is_empty() {
                    return Ok(None);
                }
                Ok(Some(Response::list(keys)))
            }
            // kv version 1 has no patch (Vault: 405); version 2 does.
            Operation::Patch => Err(RequestError::UnsupportedOperation),
        }
    }
}
