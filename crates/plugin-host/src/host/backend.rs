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

/// The operation in lockbox's protocol, which has no patch (a PATCH to a
/// lockbox plugin is a 405, as to any engine without patch in Vault).
fn proto_op(op: logical::Operation) -> Result<v1::Operation, RequestError> {
    Ok(match op {
        logical::Operation::Read => v1::Operation::Read,
        logical::Operation::Create => v1::Operation::Create,
        logical::Operation::Update => v1::Operation::Update,
        logical::Operation::Delete => v1::Operation::Delete,
        logical::Operation::List => v1::Operation::List,
        logical::Operation::Patch => return Err(RequestError::UnsupportedOperation),
    })
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
        let path = format!("{}{}", req.mount_point, req.path);
        vault::convert::existence(&group.entry.name, &reply, &path)
    }

    /// `HandleRequest` on a Vault plugin with `request`: its reply and the
    /// group that answered (every Vault operation but the existence check).
    async fn vault_request(
        &self,
        request: pb::Request,
    ) -> Result<(pb::HandleRequestReply, Arc<Group>), RequestError> {
        let id = self.mount_id.clone();
        self.call(async move |p| match p.vault() {
            Some(v) => {
                let args = pb::HandleRequestArgs {
                    storage_id: 0,
                    request: Some(request),
                };
                v.backend()
                    .handle_request(v.request(&id, args))
                    .await
                    .map(|r| r.into_inner())
            }
            None => Err(changed_protocol()),
        })
        .await
    }

    /// A request on a Vault plugin (its answers are not cached: the
    /// protocol has no cacheable mark).
    async fn vault_handle(
        &self,
        req: &logical::Request,
    ) -> Result<Option<logical::Response>, RequestError> {
        let unauthenticated = SpecialPaths::matches(&self.special.unauthenticated, &req.path);
        let pbreq = vault::convert::request(req, unauthenticated)?;
        let (reply, group) = self.vault_request(pbreq).await?;
        let path = format!("{}{}", req.mount_point, req.path);
        vault::convert::reply(&group.entry.name, self.kind, reply, &path)
    }

    /// A leased secret's `renew` / `revoke` on a Vault plugin.
    async fn vault_secret_call(
        &self,
        op: &str,
        c: &logical::SecretCall,
    ) -> Result<(pb::HandleRequestReply, Arc<Group>), RequestError> {
        self.vault_request(vault::convert::secret_request(op, c)?)
            .await
    }

    /// A token renewal on a Vault auth plugin (operation `renew` with the
    /// token's `Auth`): the TTL it grants, or its refusal.
    async fn vault_renew(&self, r: &logical::AuthRenewal) -> Result<u64, RequestError> {
        let (reply, group) = self
            .vault_request(vault::convert::renew_request(r)?)
            .await?;
        vault::convert::renew_reply(&group.entry.name, reply, &r.path)
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
        let started = proc.call_started();
        match tokio::time::timeout(timeout, f(proc.clone())).await {
            Err(_) => Err(RequestError::Unavailable(format!(
                "plugin {name} did not answer within {timeout:?}"
            ))),
            Ok(Err(status)) => {
                let broke = connection_broke(&status);
                if broke {
                    proc.lose_connection();
                }
                let crashed = broke || proc.exit_reason().is_some();
                Err(RequestError::Unavailable(if crashed {
                    format!(
                        "plugin {name} failed while handling the request ({}); it is being restarted",
                        status.message()
                    )
                } else {
                    format!("plugin {name} returned an error: {}", status.message())
                }))
            }
            Ok(Ok(v)) => {
                proc.call_succeeded(started);
                Ok((v, group))
            }
        }
    }
}

/// Whether a call failed because its connection to the process broke (the
/// transport's own error, not a status the plugin answered with).
/// A status decoded from the plugin's own trailers carries no source, so a
/// plugin answering `Unavailable` (or the host's own refusals) never counts.
fn connection_broke(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::Internal
            | tonic::Code::Cancelled
    ) && std::error::Error::source(status).is_some()
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
        internal_data: Default::default(),
    });
    if login.is_some() {
        login_allowed(name, kind)?;
    }
    let secret = match resp.secret {
        Some(s) => Some(logical::SecretLease {
            internal_data: plugin_data(name, &s.internal_data_json)?.unwrap_or_default(),
            ttl: s.ttl_seconds,
            max_ttl: s.max_ttl_seconds,
            renewable: s.renewable,
        }),
        None => None,
    };
    Ok(logical::Response {
        data,
        login,
        secret,
        warnings: resp.warnings,
        lease_duration: resp.lease_duration_seconds,
        renewable: resp.renewable,
        ..Default::default()
    })
}

/// A leased secret handed back to a lockbox-protocol plugin.
fn secret_args(
    mount_id: &str,
    c: &logical::SecretCall,
) -> Result<v1::SecretCallArgs, RequestError> {
    let json = |v: &serde_json::Map<String, serde_json::Value>| {
        serde_json::to_vec(v).map_err(|e| RequestError::Internal(e.to_string()))
    };
    Ok(v1::SecretCallArgs {
        mount_id: mount_id.to_string(),
        secret: Some(v1::SecretCall {
            path: c.path.clone(),
            lease_id: c.lease_id.clone(),
            internal_data_json: json(&c.internal_data)?,
            data_json: json(&c.data)?,
            ttl_seconds: c.ttl,
            max_ttl_seconds: c.max_ttl,
            increment_seconds: c.increment,
            issue_time_unix: c.issue_time,
            renewable: c.renewable,
        }),
    })
}

/// A gRPC answer, with `Unimplemented` as `None`: a plugin built before
/// leases (its SDK has no `RenewSecret` / `RevokeSecret`) never handed out
/// a secret.
fn unless_unimplemented<T>(
    r: Result<tonic::Response<T>, tonic::Status>,
) -> Result<Option<T>, tonic::Status> {
    match r {
        Ok(r) => Ok(Some(r.into_inner())),
        Err(s) if s.code() == tonic::Code::Unimplemented => Ok(None),
        Err(s) => Err(s),
    }
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
            operation: proto_op(req.operation)? as i32,
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

    /// The plugin renews its leased secrets (its secret type's renew):
    /// `HandleRequest` with operation `renew` for a Vault plugin,
    /// `RenewSecret` for a lockbox one.
    async fn renew_secret(
        &self,
        c: &logical::SecretCall,
        _storage: &dyn lockbox_core::barrier::Storage,
    ) -> Result<u64, RequestError> {
        if !self.serves_vault() {
            let args = secret_args(&self.mount_id, c)?;
            let (reply, group) = self
                .call(async move |p| match p.client() {
                    Some(mut cl) => unless_unimplemented(cl.renew_secret(args).await),
                    None => Err(changed_protocol()),
                })
                .await?;
            let Some(reply) = reply else {
                return Err(RequestError::invalid("lease is not renewable"));
            };
            if let Some(e) = &reply.error {
                return Err(from_error(&group.entry.name, e, &c.path));
            }
            return Ok(reply.ttl_seconds);
        }
        let (reply, group) = self.vault_secret_call("renew", c).await?;
        vault::convert::secret_renew_reply(&group.entry.name, reply, &c.path)
    }

    /// The plugin revokes its leased secrets (its secret type's revoke):
    /// `HandleRequest` with operation `revoke` for a Vault plugin,
    /// `RevokeSecret` for a lockbox one. An error keeps the lease, retried.
    async fn revoke_secret(
        &self,
        c: &logical::SecretCall,
        _storage: &dyn lockbox_core::barrier::Storage,
    ) -> Result<(), RequestError> {
        if !self.serves_vault() {
            let args = secret_args(&self.mount_id, c)?;
            let (reply, group) = self
                .call(async move |p| match p.client() {
                    Some(mut cl) => unless_unimplemented(cl.revoke_secret(args).await),
                    None => Err(changed_protocol()),
                })
                .await?;
            let Some(reply) = reply else {
                return Ok(());
            };
            if let Some(e) = &reply.error {
                return Err(from_error(&group.entry.name, e, &c.path));
            }
            return Ok(());
        }
        let (reply, group) = self.vault_secret_call("revoke", c).await?;
        vault::convert::secret_revoke_reply(&group.entry.name, reply, &c.path)
    }

    /// A Vault auth plugin decides its tokens' renewals (its renew
    /// operation); lockbox's protocol has none, so the core renews alone.
    async fn renew_auth(
        &self,
        req: &logical::AuthRenewal,
        _storage: &dyn lockbox_core::barrier::Storage,
    ) -> Result<Option<u64>, RequestError> {
        if self.kind == BackendKind::Credential && self.serves_vault() {
            return self.vault_renew(req).await.map(Some);
        }
        Ok(None)
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
                    .filter(|p| p.serving())
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
            // A leased secret is never a cacheable read, whatever the plugin says.
            (Some(cache), Some(key))
                if resp.secret.is_none() && cache::may_cache(req.operation, &resp) =>
            {
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

#[cfg(test)]
mod lease_tests {
    use super::*;

    #[test]
    fn a_lockbox_plugins_secret_becomes_the_cores_and_bad_internal_data_is_refused() {
        let resp = v1::Response {
            data_json: br#"{"username":"u"}"#.to_vec(),
            secret: Some(v1::Secret {
                internal_data_json: br#"{"secret_type":"creds","username":"u"}"#.to_vec(),
                ttl_seconds: 3,
                max_ttl_seconds: 9,
                renewable: true,
            }),
            ..Default::default()
        };
        let out = convert_response("db", BackendKind::Secret, resp.clone()).unwrap();
        let s = out.secret.unwrap();
        assert_eq!((s.ttl, s.max_ttl, s.renewable), (3, 9, true));
        assert_eq!(s.internal_data["username"], "u");

        let mut bad = resp;
        if let Some(s) = bad.secret.as_mut() {
            s.internal_data_json = b"[1]".to_vec();
        }
        let e = convert_response("db", BackendKind::Secret, bad).unwrap_err();
        assert!(
            e.to_string().contains("plugin db returned invalid data"),
            "{e}"
        );
    }

    #[test]
    fn secret_calls_carry_the_lease() {
        let mut internal = serde_json::Map::new();
        internal.insert("secret_type".into(), "creds".into());
        let c = logical::SecretCall {
            path: "creds/r".into(),
            lease_id: "db/creds/r/x".into(),
            internal_data: internal,
            ttl: 3,
            max_ttl: 9,
            increment: 5,
            issue_time: 7,
            renewable: true,
            ..Default::default()
        };
        let a = secret_args("m", &c).unwrap();
        let s = a.secret.unwrap();
        assert_eq!(a.mount_id, "m");
        assert_eq!(s.internal_data_json, br#"{"secret_type":"creds"}"#);
        assert_eq!(
            (
                s.ttl_seconds,
                s.max_ttl_seconds,
                s.increment_seconds,
                s.issue_time_unix
            ),
            (3, 9, 5, 7)
        );
        assert_eq!(s.lease_id, "db/creds/r/x");
    }
}

#[cfg(test)]
mod connection_tests {
    use super::connection_broke;

    #[test]
    fn only_the_transports_own_failures_count_as_a_broken_connection() {
        let broken = tonic::Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        )));
        assert!(connection_broke(&broken), "{broken:?}");
        // What a plugin answers with, even with the same code, is not.
        assert!(!connection_broke(&tonic::Status::unknown(
            "transport error"
        )));
        assert!(!connection_broke(&tonic::Status::internal("bad")));
        assert!(!connection_broke(&tonic::Status::invalid_argument("no")));
    }
}
