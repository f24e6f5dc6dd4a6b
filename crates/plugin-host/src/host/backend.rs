//! [`PluginBackend`]: the `logical::Backend` of one plugin mount. A request
//! takes the mount's current process, counts itself in flight, and calls
//! it with a timeout; answers the plugin marks cacheable are served from
//! the host's read-response cache.

use super::{Group, PluginHost};
use crate::cache::{self, MountGeneration};
use crate::process::PluginProcess;
use crate::vault;
use async_trait::async_trait;
use lockbox_core::logical::{self, BackendKind, RequestError, SpecialPaths};
use lockbox_plugin_proto::v1;
use lockbox_vault_plugin_proto::pb;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

/// A mount served by a plugin: the `logical::Backend` the core routes to.
pub struct PluginBackend {
    pub(super) mount_id: String,
    pub(super) kind: BackendKind,
    pub(super) special: SpecialPaths,
    pub(super) group: RwLock<Arc<Group>>,
    pub(super) host: Weak<PluginHost>,
    pub(super) generation: Arc<MountGeneration>,
}

fn proto_op(op: logical::Operation) -> v1::Operation {
    match op {
        logical::Operation::Read => v1::Operation::Read,
        logical::Operation::Create => v1::Operation::Create,
        logical::Operation::Update => v1::Operation::Update,
        logical::Operation::Delete => v1::Operation::Delete,
        logical::Operation::List => v1::Operation::List,
    }
}

/// A plugin's error reply as the core's error for `path`: the kinds a
/// plugin may report map to their statuses, anything else is internal.
pub fn from_error(name: &str, e: &v1::ResponseError, path: &str) -> RequestError {
    match v1::ErrorKind::try_from(e.kind) {
        Ok(v1::ErrorKind::InvalidRequest) => RequestError::InvalidRequest(e.message.clone()),
        Ok(v1::ErrorKind::PermissionDenied) => {
            if e.message.is_empty() {
                RequestError::PermissionDenied
            } else {
                RequestError::Denied(e.message.clone())
            }
        }
        Ok(v1::ErrorKind::UnsupportedPath) => RequestError::NoHandler {
            path: path.to_string(),
        },
        Ok(v1::ErrorKind::UnsupportedOperation) => RequestError::UnsupportedOperation,
        Ok(v1::ErrorKind::Unavailable) => {
            RequestError::Unavailable(format!("plugin {name}: {}", e.message))
        }
        _ => RequestError::Internal(format!("plugin {name}: {}", e.message)),
    }
}

impl PluginBackend {
    /// Whether the mount's current process speaks Vault's protocol.
    fn serves_vault(&self) -> bool {
        self.group().current().is_some_and(|p| p.vault().is_some())
    }

    /// `HandleExistenceCheck` on a Vault plugin.
    async fn vault_exists(&self, req: &logical::Request) -> Result<Option<bool>, RequestError> {
        let pbreq = vault::convert::request(req, false)?;
        let id = self.mount_id.clone();
        let (reply, group) = self
            .call(async move |p| match p.vault() {
                Some(v) => {
                    let args = pb::HandleExistenceCheckArgs {
                        storage_id: 0,
                        request: Some(pbreq),
                    };
                    v.backend()
                        .handle_existence_check(v.request(&id, args))
                        .await
                        .map(|r| r.into_inner())
                }
                None => Err(changed_protocol()),
            })
            .await?;
        if let Some(e) = reply.err.as_ref().filter(|e| !e.err_msg.is_empty()) {
            let path = format!("{}{}", req.mount_point, req.path);
            return Err(vault::convert::error(&group.entry.name, e, &path));
        }
        Ok(reply.check_found.then_some(reply.exists))
    }

    /// `HandleRequest` on a Vault plugin (its answers are not cached: the
    /// protocol has no cacheable mark).
    async fn vault_handle(
        &self,
        req: &logical::Request,
    ) -> Result<Option<logical::Response>, RequestError> {
        let unauthenticated = SpecialPaths::matches(&self.special.unauthenticated, &req.path);
        let pbreq = vault::convert::request(req, unauthenticated)?;
        let id = self.mount_id.clone();
        let (reply, group) = self
            .call(async move |p| match p.vault() {
                Some(v) => {
                    let args = pb::HandleRequestArgs {
                        storage_id: 0,
                        request: Some(pbreq),
                    };
                    v.backend()
                        .handle_request(v.request(&id, args))
                        .await
                        .map(|r| r.into_inner())
                }
                None => Err(changed_protocol()),
            })
            .await?;
        let path = format!("{}{}", req.mount_point, req.path);
        vault::convert::reply(&group.entry.name, self.kind, reply, &path)
    }

    /// The group currently serving this mount.
    pub fn group(&self) -> Arc<Group> {
        self.group.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The mount's UUID.
    pub fn mount_id(&self) -> &str {
        &self.mount_id
    }

    fn timeout(&self) -> Duration {
        self.host
            .upgrade()
            .map(|h| h.cfg.request_timeout)
            .unwrap_or(Duration::from_secs(30))
    }

    /// Picks the current process and counts the request in flight, under
    /// the group lock (see the module invariants).
    fn acquire(&self) -> Result<(Arc<PluginProcess>, Arc<Group>), RequestError> {
        let guard = self.group.read().unwrap_or_else(|e| e.into_inner());
        let group = guard.clone();
        match group.current() {
            Some(p) => {
                p.begin_request();
                Ok((p, group))
            }
            None => {
                let reason = group
                    .last_exit
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                    .unwrap_or_default();
                Err(RequestError::Unavailable(format!(
                    "plugin {} is not running ({reason}); it is being restarted, retry shortly",
                    group.entry.name
                )))
            }
        }
    }

    async fn call<T>(
        &self,
        f: impl AsyncFnOnce(Arc<PluginProcess>) -> Result<T, tonic::Status>,
    ) -> Result<(T, Arc<Group>), RequestError> {
        let (proc, group) = self.acquire()?;
        let _done = Release(proc.clone());
        let name = group.entry.name.clone();
        let timeout = self.timeout();
        match tokio::time::timeout(timeout, f(proc.clone())).await {
            Err(_) => Err(RequestError::Unavailable(format!(
                "plugin {name} did not answer within {timeout:?}"
            ))),
            Ok(Err(status)) => {
                let crashed =
                    proc.exit_reason().is_some() || status.code() == tonic::Code::Unavailable;
                Err(RequestError::Unavailable(if crashed {
                    format!(
                        "plugin {name} failed while handling the request ({}); it is being restarted",
                        status.message()
                    )
                } else {
                    format!("plugin {name} returned an error: {}", status.message())
                }))
            }
            Ok(Ok(v)) => Ok((v, group)),
        }
    }
}

/// A plugin's response as the core's, refusing what the plugin may not
/// return (invalid data, login data from a secrets engine). `kind` is the
/// kind of mount the plugin serves.
pub fn convert_response(
    name: &str,
    kind: BackendKind,
    resp: v1::Response,
) -> Result<logical::Response, RequestError> {
    let data = plugin_data(name, &resp.data_json)?;
    let login = resp.auth.map(|a| logical::LoginAuth {
        policies: a.policies,
        metadata: a.metadata.into_iter().collect(),
        display_name: a.display_name,
        ttl: a.ttl_seconds,
        max_ttl: a.max_ttl_seconds,
        renewable: a.renewable,
        num_uses: a.num_uses,
    });
    if login.is_some() {
        login_allowed(name, kind)?;
    }
    Ok(logical::Response {
        data,
        login,
        warnings: resp.warnings,
        lease_duration: resp.lease_duration_seconds,
        renewable: resp.renewable,
        ..Default::default()
    })
}

/// Only an auth method may answer with login data (a token to create):
/// a secrets engine that does is refused, whatever protocol it speaks.
pub(crate) fn login_allowed(name: &str, kind: BackendKind) -> Result<(), RequestError> {
    if kind == BackendKind::Credential {
        return Ok(());
    }
    Err(RequestError::Internal(format!(
        "plugin {name} is a secrets engine but returned login data; refusing to create a token"
    )))
}

/// A plugin's `data_json` as response data: empty or `null` is none,
/// otherwise a JSON object. A plugin is not trusted, so the shape check of
/// client bodies ([`lockbox_core::json::check_shape`]) bounds what parsing
/// its answer costs.
pub(crate) fn plugin_data(
    name: &str,
    raw: &[u8],
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, RequestError> {
    if raw.is_empty() {
        return Ok(None);
    }
    let invalid = |what: String| {
        RequestError::Internal(format!("plugin {name} returned invalid data: {what}"))
    };
    lockbox_core::json::check_shape(raw).map_err(|e| invalid(e.to_string()))?;
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(m)) => Ok(Some(m)),
        Ok(serde_json::Value::Null) => Ok(None),
        _ => Err(invalid("expected a JSON object".into())),
    }
}

/// A process of the other protocol serves the mount (a binary replaced
/// by one of the other protocol under the same sha256 cannot happen, so
/// this is a restart race); the request is retried by the client.
fn changed_protocol() -> tonic::Status {
    tonic::Status::unavailable("the plugin process changed protocol; retry")
}

/// Ends an in-flight count started by `acquire`.
struct Release(Arc<PluginProcess>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

fn to_args(mount_id: &str, req: &logical::Request) -> Result<v1::HandleRequestArgs, RequestError> {
    Ok(v1::HandleRequestArgs {
        mount_id: mount_id.to_string(),
        request: Some(v1::Request {
            id: req.id.clone(),
            operation: proto_op(req.operation) as i32,
            path: req.path.clone(),
            data_json: serde_json::to_vec(&req.data)
                .map_err(|e| RequestError::Internal(e.to_string()))?,
            client_token_accessor: req.client_token_accessor.clone().unwrap_or_default(),
            display_name: req.display_name.clone().unwrap_or_default(),
        }),
    })
}

#[async_trait]
impl logical::Backend for PluginBackend {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn special_paths(&self) -> SpecialPaths {
        self.special.clone()
    }

    async fn exists(
        &self,
        req: &logical::Request,
        _storage: &dyn lockbox_core::barrier::Storage,
    ) -> Result<Option<bool>, RequestError> {
        if self.serves_vault() {
            return self.vault_exists(req).await;
        }
        let args = to_args(&self.mount_id, req)?;
        let (reply, group) = self
            .call(async move |p| match p.client() {
                Some(mut c) => c.existence_check(args).await.map(|r| r.into_inner()),
                None => Err(changed_protocol()),
            })
            .await?;
        if let Some(e) = &reply.error {
            return Err(from_error(&group.entry.name, e, &req.path));
        }
        Ok(reply.check_found.then_some(reply.exists))
    }

    async fn handle(
        &self,
        req: &logical::Request,
        _storage: &dyn lockbox_core::barrier::Storage,
    ) -> Result<Option<logical::Response>, RequestError> {
        if self.serves_vault() {
            return self.vault_handle(req).await;
        }
        let args = to_args(&self.mount_id, req)?;
        // Reads the plugin marked cacheable are answered from memory while
        // the mount's storage, its process and its setup stay the same.
        let host = self.host.upgrade();
        let cache = host.as_ref().and_then(|h| h.cache.as_ref());
        let key = match cache {
            Some(cache)
                if req.operation == logical::Operation::Read && !req.mount_force_no_cache =>
            {
                // Only while the serving process is alive: a crashed one's
                // answers are not served, even before the supervisor notices.
                let serial = self
                    .group()
                    .current()
                    .filter(|p| p.exit_reason().is_none())
                    .map(|p| p.serial);
                let data = args.request.as_ref().map(|r| r.data_json.as_slice());
                let key = serial.map(|s| {
                    cache::Key::new(&self.generation, s, &req.path, data.unwrap_or_default())
                });
                if let Some(hit) = key.as_ref().and_then(|k| cache.get(k)) {
                    return Ok(Some(hit));
                }
                key
            }
            _ => None,
        };
        let (reply, group) = self
            .call(async move |p| match p.client() {
                Some(mut c) => c.handle_request(args).await.map(|r| r.into_inner()),
                None => Err(changed_protocol()),
            })
            .await?;
        let name = &group.entry.name;
        if let Some(e) = &reply.error {
            return Err(from_error(
                name,
                e,
                &format!("{}{}", req.mount_point, req.path),
            ));
        }
        let Some(resp) = reply.response else {
            return Ok(None);
        };
        let store = match (cache, key) {
            (Some(cache), Some(key)) if cache::may_cache(req.operation, &resp) => {
                Some((cache, key, resp.data_json.len()))
            }
            _ => None,
        };
        let out = convert_response(name, self.kind, resp)?;
        if let Some((cache, key, len)) = store {
            cache.insert(key, out.clone(), len);
        }
        Ok(Some(out))
    }

    async fn cleanup(&self) {
        if let Some(host) = self.host.upgrade() {
            let group = self.group();
            host.detach(&group, &self.mount_id).await;
            if let Some(cache) = &host.cache {
                cache.forget_mount(self.generation.serial());
            }
        }
    }

    fn version(&self) -> String {
        let g = self.group();
        if !g.entry.version.is_empty() {
            return g.entry.version.clone();
        }
        g.current()
            .map(|p| match p.vault() {
                Some(v) => v
                    .mount_meta(&self.mount_id)
                    .map(|m| m.version)
                    .unwrap_or_default(),
                None => p.info.version.clone(),
            })
            .unwrap_or_default()
    }

    fn running_sha256(&self) -> String {
        self.group().entry.sha256.clone()
    }
}
