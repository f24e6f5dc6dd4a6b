//! The plugin side of the `Backend` gRPC service: multiplexes mounts and
//! translates between wire messages and [`Request`]/[`Response`].
//!
//! ```text
//! Setup(mount)          → Factory::create → mounts[mount_id] = (Mount, Arc<dyn Backend>)
//! Initialize(mount_id)  → backend.initialize(mount, storage(mount_id))
//! HandleRequest(id, r)  → mounts[id]? ─no→ ERROR_KIND_INTERNAL "mount not set up"
//!                         └ decode r (op, JSON) ─bad→ 400/405 reply
//!                         └ spawn backend.handle_request(req, storage(id)) ─panic→ 500 reply
//! RenewSecret / RevokeSecret(id, secret) → backend.renew_secret / revoke_secret
//!                         (the same mount lookup, decoding and panic isolation)
//! Cleanup(mount_id)     → remove, backend.cleanup (idempotent)
//! ```
//!
//! Invariants: input from the host never panics the process; logical
//! failures are replies (`ResponseError`); only `Initialize` (which has no
//! error field) answers with a gRPC status.

use crate::error::Error;
use crate::lease::{self, SecretLease};
use crate::logical::{Auth, Backend, Factory, Info, Kind, Mount, Operation, Request, Response};
use crate::storage::{Storage, Transport};
use futures_util::FutureExt;
use lockbox_plugin_proto::v1 as pb;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tonic::Status;

/// One mount served by this process.
#[derive(Clone)]
struct MountEntry {
    mount: Arc<Mount>,
    backend: Arc<dyn Backend>,
}

/// The `Backend` gRPC service of a plugin process.
pub(crate) struct PluginService {
    factory: Arc<dyn Factory>,
    info: Info,
    transport: Arc<dyn Transport>,
    mounts: RwLock<HashMap<String, MountEntry>>,
}

impl PluginService {
    pub(crate) fn new(factory: Arc<dyn Factory>, transport: Arc<dyn Transport>) -> Self {
        let info = factory.info();
        PluginService {
            factory,
            info,
            transport,
            mounts: RwLock::new(HashMap::new()),
        }
    }

    fn entry(&self, mount_id: &str) -> Option<MountEntry> {
        self.mounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(mount_id)
            .cloned()
    }

    fn storage(&self, mount_id: &str) -> Storage {
        Storage::new(self.transport.clone(), mount_id)
    }

    /// Finds the mount and decodes the request, or says why not.
    fn prepare(
        &self,
        mount_id: &str,
        request: Option<pb::Request>,
    ) -> Result<(MountEntry, Request), Error> {
        let entry = self.entry(mount_id).ok_or_else(|| {
            Error::internal(format!(
                "mount not set up: {mount_id:?} is not a mount of this plugin process (Setup first)"
            ))
        })?;
        let request = decode_request(entry.mount.clone(), request)?;
        Ok((entry, request))
    }

    /// Finds the mount and decodes a leased secret handed back by the host.
    fn prepare_secret(
        &self,
        mount_id: &str,
        call: Option<pb::SecretCall>,
    ) -> Result<(MountEntry, lease::SecretRequest), Error> {
        let entry = self.entry(mount_id).ok_or_else(|| {
            Error::internal(format!(
                "mount not set up: {mount_id:?} is not a mount of this plugin process (Setup first)"
            ))
        })?;
        let request = decode_secret_call(entry.mount.clone(), call)?;
        Ok((entry, request))
    }
}

/// Seconds for the wire, rounding sub-second remainders up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn info_to_wire(info: &Info) -> pb::InfoReply {
    let kind = match info.kind {
        Kind::Secret => pb::BackendKind::Secret,
        Kind::Credential => pb::BackendKind::Credential,
    };
    pb::InfoReply {
        kind: kind as i32,
        version: info.version.clone(),
        root_paths: info.root_paths.clone(),
        unauthenticated_paths: info.unauthenticated_paths.clone(),
    }
}

fn mount_from_wire(s: pb::SetupRequest) -> Mount {
    Mount {
        id: s.mount_id,
        path: s.mount_path,
        accessor: s.mount_accessor,
        plugin_type: s.mount_type,
        options: s.options.into_iter().collect(),
        default_lease_ttl: Duration::from_secs(s.default_lease_ttl_seconds),
        max_lease_ttl: Duration::from_secs(s.max_lease_ttl_seconds),
    }
}

pub(crate) fn operation_to_wire(op: Operation) -> pb::Operation {
    match op {
        Operation::Read => pb::Operation::Read,
        Operation::Create => pb::Operation::Create,
        Operation::Update => pb::Operation::Update,
        Operation::Delete => pb::Operation::Delete,
        Operation::List => pb::Operation::List,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Decodes a request body: empty means `{}`; otherwise a JSON object.
pub(crate) fn decode_data(raw: &[u8]) -> Result<Map<String, Value>, Error> {
    if raw.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(Error::invalid(format!(
            "request body must be a JSON object, got {}",
            json_type(&other)
        ))),
        Err(e) => Err(Error::invalid(format!(
            "request body is not valid JSON: {e}"
        ))),
    }
}

fn decode_request(mount: Arc<Mount>, request: Option<pb::Request>) -> Result<Request, Error> {
    let r = request.ok_or_else(|| Error::invalid("malformed call: no request"))?;
    let operation = match pb::Operation::try_from(r.operation) {
        Ok(pb::Operation::Read) => Operation::Read,
        Ok(pb::Operation::Create) => Operation::Create,
        Ok(pb::Operation::Update) => Operation::Update,
        Ok(pb::Operation::Delete) => Operation::Delete,
        Ok(pb::Operation::List) => Operation::List,
        Ok(pb::Operation::Unspecified) | Err(_) => {
            return Err(Error::UnsupportedOperation(format!(
                "unsupported operation (wire value {})",
                r.operation
            )));
        }
    };
    let data = decode_data(&r.data_json)?;
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Ok(Request {
        id: r.id,
        operation,
        path: r.path,
        data,
        client_token_accessor: non_empty(r.client_token_accessor),
        display_name: non_empty(r.display_name),
        mount,
    })
}

fn encode_response(resp: Response) -> Result<pb::Response, Error> {
    let data_json = match &resp.data {
        Some(map) => serde_json::to_vec(map)
            .map_err(|e| Error::internal(format!("cannot encode response data: {e}")))?,
        None => Vec::new(),
    };
    Ok(pb::Response {
        data_json,
        auth: resp.auth.map(|a| pb::Auth {
            policies: a.policies,
            metadata: a.metadata.into_iter().collect(),
            display_name: a.display_name,
            ttl_seconds: ceil_secs(a.ttl),
            max_ttl_seconds: ceil_secs(a.max_ttl),
            renewable: a.renewable,
            num_uses: a.num_uses,
        }),
        warnings: resp.warnings,
        lease_duration_seconds: ceil_secs(resp.lease_duration),
        renewable: resp.renewable,
        cacheable: resp.cacheable,
        secret: resp.secret.map(|s| encode_secret(&s)).transpose()?,
    })
}

/// Rebuilds a [`Response`] from the wire (the harness sees what the host sees).
pub(crate) fn decode_response(r: pb::Response) -> Result<Response, Error> {
    let data = if r.data_json.is_empty() {
        None
    } else {
        Some(decode_data(&r.data_json)?)
    };
    Ok(Response {
        data,
        auth: r.auth.map(|a| Auth {
            policies: a.policies,
            metadata: a.metadata.into_iter().collect(),
            display_name: a.display_name,
            ttl: Duration::from_secs(a.ttl_seconds),
            max_ttl: Duration::from_secs(a.max_ttl_seconds),
            renewable: a.renewable,
            num_uses: a.num_uses,
        }),
        warnings: r.warnings,
        lease_duration: Duration::from_secs(r.lease_duration_seconds),
        renewable: r.renewable,
        cacheable: r.cacheable,
        secret: r
            .secret
            .map(|s| {
                Ok::<_, Error>(SecretLease {
                    internal_data: decode_data(&s.internal_data_json)?,
                    ttl: Duration::from_secs(s.ttl_seconds),
                    max_ttl: Duration::from_secs(s.max_ttl_seconds),
                    renewable: s.renewable,
                })
            })
            .transpose()?,
    })
}

fn encode_secret(s: &SecretLease) -> Result<pb::Secret, Error> {
    Ok(pb::Secret {
        internal_data_json: serde_json::to_vec(&s.internal_data)
            .map_err(|e| Error::internal(format!("cannot encode secret internal data: {e}")))?,
        ttl_seconds: ceil_secs(s.ttl),
        max_ttl_seconds: ceil_secs(s.max_ttl),
        renewable: s.renewable,
    })
}

/// Decodes the host's `SecretCall` for `mount`.
pub(crate) fn decode_secret_call(
    mount: Arc<Mount>,
    call: Option<pb::SecretCall>,
) -> Result<lease::SecretRequest, Error> {
    let c = call.ok_or_else(|| Error::invalid("malformed call: no secret"))?;
    Ok(lease::SecretRequest {
        path: c.path,
        lease_id: c.lease_id,
        internal_data: decode_data(&c.internal_data_json)?,
        data: decode_data(&c.data_json)?,
        ttl: Duration::from_secs(c.ttl_seconds),
        max_ttl: Duration::from_secs(c.max_ttl_seconds),
        increment: Duration::from_secs(c.increment_seconds),
        issue_time: c.issue_time_unix,
        renewable: c.renewable,
        mount,
    })
}

/// Runs `fut`, turning a panic in a handler into an error reply.
pub(crate) async fn isolated<T: Send + 'static>(
    what: &'static str,
    fut: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    // Caught in place rather than in a task of its own: a spawn per request
    // costs a task and often a cross-thread wake-up on the hot path.
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let e = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            tracing::error!(error = %e, "plugin {what} handler panicked");
            Err(Error::internal(format!(
                "internal error: the plugin's {what} handler failed unexpectedly (see the plugin's log)"
            )))
        }
    }
}

#[tonic::async_trait]
impl pb::backend_server::Backend for PluginService {
    async fn info(
        &self,
        _request: tonic::Request<pb::InfoRequest>,
    ) -> Result<tonic::Response<pb::InfoReply>, Status> {
        Ok(tonic::Response::new(info_to_wire(&self.info)))
    }

    async fn setup(
        &self,
        request: tonic::Request<pb::SetupRequest>,
    ) -> Result<tonic::Response<pb::SetupReply>, Status> {
        let setup = request.into_inner();
        if setup.mount_id.is_empty() {
            return Ok(tonic::Response::new(pb::SetupReply {
                error: "setup: empty mount_id".into(),
            }));
        }
        let mount = Arc::new(mount_from_wire(setup));
        let factory = self.factory.clone();
        let for_factory = mount.clone();
        let created = isolated("setup", async move { factory.create(&for_factory).await }).await;
        let error = match created {
            Ok(backend) => {
                tracing::info!(mount_id = %mount.id, mount_path = %mount.path, "mount set up");
                self.mounts
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(mount.id.clone(), MountEntry { mount, backend });
                String::new()
            }
            Err(e) => e.to_string(),
        };
        Ok(tonic::Response::new(pb::SetupReply { error }))
    }

    async fn initialize(
        &self,
        request: tonic::Request<pb::MountRef>,
    ) -> Result<tonic::Response<pb::Empty>, Status> {
        let mount_id = request.into_inner().mount_id;
        let entry = self.entry(&mount_id).ok_or_else(|| {
            Status::failed_precondition(format!(
                "mount not set up: {mount_id:?} (call Setup before Initialize)"
            ))
        })?;
        let storage = self.storage(&mount_id);
        isolated("initialize", async move {
            entry.backend.initialize(&entry.mount, &storage).await
        })
        .await
        .map_err(|e| Status::internal(format!("initialize {mount_id:?}: {e}")))?;
        Ok(tonic::Response::new(pb::Empty {}))
    }

    async fn handle_request(
        &self,
        request: tonic::Request<pb::HandleRequestArgs>,
    ) -> Result<tonic::Response<pb::HandleRequestReply>, Status> {
        let args = request.into_inner();
        let result = match self.prepare(&args.mount_id, args.request) {
            Ok((entry, req)) => {
                let storage = self.storage(&args.mount_id);
                isolated("request", async move {
                    entry.backend.handle_request(req, storage).await
                })
                .await
            }
            Err(e) => Err(e),
        };
        let reply = match result.and_then(|r| r.map(encode_response).transpose()) {
            Ok(response) => pb::HandleRequestReply {
                response,
                error: None,
            },
            Err(e) => {
                if e.kind() == pb::ErrorKind::Internal {
                    tracing::warn!(mount_id = %args.mount_id, error = %e, "request failed");
                }
                pb::HandleRequestReply {
                    response: None,
                    error: Some(e.to_wire()),
                }
            }
        };
        Ok(tonic::Response::new(reply))
    }

    async fn existence_check(
        &self,
        request: tonic::Request<pb::HandleRequestArgs>,
    ) -> Result<tonic::Response<pb::ExistenceCheckReply>, Status> {
        let args = request.into_inner();
        let result = match self.prepare(&args.mount_id, args.request) {
            Ok((entry, req)) => {
                let storage = self.storage(&args.mount_id);
                isolated("existence check", async move {
                    entry.backend.existence_check(req, storage).await
                })
                .await
            }
            Err(e) => Err(e),
        };
        let reply = match result {
            Ok(found) => pb::ExistenceCheckReply {
                check_found: found.is_some(),
                exists: found.unwrap_or(false),
                error: None,
            },
            Err(e) => pb::ExistenceCheckReply {
                check_found: false,
                exists: false,
                error: Some(e.to_wire()),
            },
        };
        Ok(tonic::Response::new(reply))
    }

    async fn renew_secret(
        &self,
        request: tonic::Request<pb::SecretCallArgs>,
    ) -> Result<tonic::Response<pb::RenewSecretReply>, Status> {
        let args = request.into_inner();
        let result = match self.prepare_secret(&args.mount_id, args.secret) {
            Ok((entry, req)) => {
                let storage = self.storage(&args.mount_id);
                isolated("renew", async move {
                    entry.backend.renew_secret(req, storage).await
                })
                .await
            }
            Err(e) => Err(e),
        };
        Ok(tonic::Response::new(match result {
            Ok(ttl) => pb::RenewSecretReply {
                ttl_seconds: ceil_secs(ttl),
                error: None,
            },
            Err(e) => pb::RenewSecretReply {
                ttl_seconds: 0,
                error: Some(e.to_wire()),
            },
        }))
    }

    async fn revoke_secret(
        &self,
        request: tonic::Request<pb::SecretCallArgs>,
    ) -> Result<tonic::Response<pb::RevokeSecretReply>, Status> {
        let args = request.into_inner();
        let result = match self.prepare_secret(&args.mount_id, args.secret) {
            Ok((entry, req)) => {
                let storage = self.storage(&args.mount_id);
                isolated("revoke", async move {
                    entry.backend.revoke_secret(req, storage).await
                })
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            tracing::warn!(mount_id = %args.mount_id, error = %e, "revocation failed");
        }
        Ok(tonic::Response::new(pb::RevokeSecretReply {
            error: result.err().map(|e| e.to_wire()),
        }))
    }

    async fn invalidate_key(
        &self,
        request: tonic::Request<pb::InvalidateKeyArgs>,
    ) -> Result<tonic::Response<pb::Empty>, Status> {
        let args = request.into_inner();
        if let Some(entry) = self.entry(&args.mount_id) {
            entry.backend.invalidate(&entry.mount, &args.key).await;
        } else {
            tracing::debug!(mount_id = %args.mount_id, "invalidate for a mount not set up; ignored");
        }
        Ok(tonic::Response::new(pb::Empty {}))
    }

    async fn cleanup(
        &self,
        request: tonic::Request<pb::MountRef>,
    ) -> Result<tonic::Response<pb::Empty>, Status> {
        let mount_id = request.into_inner().mount_id;
        let removed = self
            .mounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&mount_id);
        if let Some(entry) = removed {
            entry.backend.cleanup(&entry.mount).await;
            tracing::info!(mount_id = %mount_id, "mount cleaned up");
        }
        Ok(tonic::Response::new(pb::Empty {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Path, PathBackend};
    use crate::logical::Shared;
    use crate::storage::MemoryTransport;
    use pb::backend_server::Backend as _;

    fn service() -> PluginService {
        let backend = PathBackend::new(Kind::Secret, "v9")
            .path(
                Path::new("echo")
                    .update(|req, _, _| async move { Ok(Some(Response::data(req.data))) })
                    .read(|req, _, s| async move {
                        Ok(Some(Response::json(serde_json::json!({
                            "mount": req.mount.path,
                            "storage_mount": s.mount_id(),
                        }))))
                    }),
            )
            .path(Path::new("panic").read(|_, _, _| async { panic!("handler bug") }))
            .secret(
                crate::framework::Secret::new("creds")
                    .renew(|req, _| async move { Ok(req.asked_ttl()) })
                    .revoke(|req, _| async move {
                        match req.internal_data.get("fail") {
                            Some(_) => Err(Error::internal("database down")),
                            None => Ok(()),
                        }
                    }),
            );
        PluginService::new(
            Arc::new(Shared::new(backend)),
            Arc::new(MemoryTransport::default()),
        )
    }

    fn call(
        mount_id: &str,
        op: i32,
        path: &str,
        body: &[u8],
    ) -> tonic::Request<pb::HandleRequestArgs> {
        tonic::Request::new(pb::HandleRequestArgs {
            mount_id: mount_id.into(),
            request: Some(pb::Request {
                operation: op,
                path: path.into(),
                data_json: body.to_vec(),
                ..Default::default()
            }),
        })
    }

    async fn setup(svc: &PluginService, id: &str, path: &str) {
        let reply = svc
            .setup(tonic::Request::new(pb::SetupRequest {
                mount_id: id.into(),
                mount_path: path.into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.error, "");
    }

    fn error_of(reply: pb::HandleRequestReply) -> (pb::ErrorKind, String) {
        let e = reply.error.expect("an error reply");
        (pb::ErrorKind::try_from(e.kind).unwrap(), e.message)
    }

    #[tokio::test]
    async fn unknown_mount_and_malformed_input_are_error_replies() {
        let svc = service();
        let read = pb::Operation::Read as i32;
        let r = svc
            .handle_request(call("nope", read, "echo", b""))
            .await
            .unwrap()
            .into_inner();
        let (kind, msg) = error_of(r);
        assert_eq!(kind, pb::ErrorKind::Internal);
        assert!(msg.starts_with("mount not set up"), "{msg}");

        setup(&svc, "m1", "a/").await;
        let r = svc
            .handle_request(call("m1", 42, "echo", b""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(error_of(r).0, pb::ErrorKind::UnsupportedOperation);
        let update = pb::Operation::Update as i32;
        let r = svc
            .handle_request(call("m1", update, "echo", b"{nope"))
            .await
            .unwrap()
            .into_inner();
        let (kind, msg) = error_of(r);
        assert_eq!(kind, pb::ErrorKind::InvalidRequest);
        assert!(msg.starts_with("request body is not valid JSON"), "{msg}");
        let r = svc
            .handle_request(call("m1", update, "echo", b"[1]"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            error_of(r).1,
            "request body must be a JSON object, got an array"
        );
        let missing = tonic::Request::new(pb::HandleRequestArgs {
            mount_id: "m1".into(),
            request: None,
        });
        let r = svc.handle_request(missing).await.unwrap().into_inner();
        assert_eq!(error_of(r).0, pb::ErrorKind::InvalidRequest);

        let e = svc
            .initialize(tonic::Request::new(pb::MountRef {
                mount_id: "zz".into(),
            }))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        let r = svc
            .existence_check(call("zz", update, "echo", b""))
            .await
            .unwrap()
            .into_inner();
        assert!(!r.check_found && r.error.is_some());
    }

    #[tokio::test]
    async fn multiplexes_mounts_and_survives_panics() {
        let svc = service();
        setup(&svc, "m1", "a/").await;
        setup(&svc, "m2", "b/").await;
        let read = pb::Operation::Read as i32;
        for (id, path) in [("m1", "a/"), ("m2", "b/")] {
            let r = svc
                .handle_request(call(id, read, "echo", b""))
                .await
                .unwrap()
                .into_inner();
            let data = decode_data(&r.response.unwrap().data_json).unwrap();
            assert_eq!(data["mount"], path);
            assert_eq!(data["storage_mount"], id);
        }
        let r = svc
            .handle_request(call("m1", read, "panic", b""))
            .await
            .unwrap()
            .into_inner();
        let (kind, msg) = error_of(r);
        assert_eq!(kind, pb::ErrorKind::Internal);
        assert!(msg.contains("failed unexpectedly"), "{msg}");

        svc.cleanup(tonic::Request::new(pb::MountRef {
            mount_id: "m1".into(),
        }))
        .await
        .unwrap();
        svc.cleanup(tonic::Request::new(pb::MountRef {
            mount_id: "m1".into(),
        }))
        .await
        .unwrap();
        let r = svc
            .handle_request(call("m1", read, "echo", b""))
            .await
            .unwrap()
            .into_inner();
        assert!(error_of(r).1.starts_with("mount not set up"));
        let r = svc
            .handle_request(call("m2", read, "echo", b""))
            .await
            .unwrap()
            .into_inner();
        assert!(r.error.is_none());
    }

    #[tokio::test]
    async fn leased_secrets_travel_and_come_back_to_their_type() {
        let svc = service();
        setup(&svc, "m1", "db/").await;
        let call = |internal: &str, increment: u64| {
            tonic::Request::new(pb::SecretCallArgs {
                mount_id: "m1".into(),
                secret: Some(pb::SecretCall {
                    path: "creds/x".into(),
                    internal_data_json: internal.as_bytes().to_vec(),
                    ttl_seconds: 60,
                    increment_seconds: increment,
                    ..Default::default()
                }),
            })
        };
        let r = svc
            .renew_secret(call(r#"{"secret_type":"creds"}"#, 90))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((r.ttl_seconds, r.error), (90, None));
        let r = svc
            .revoke_secret(call(r#"{"secret_type":"creds"}"#, 0))
            .await
            .unwrap()
            .into_inner();
        assert!(r.error.is_none());
        let r = svc
            .revoke_secret(call(r#"{"secret_type":"creds","fail":1}"#, 0))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.error.unwrap().message, "database down");
        for bad in ["{nope", r#"{"secret_type":"zz"}"#] {
            let r = svc.renew_secret(call(bad, 0)).await.unwrap().into_inner();
            assert_eq!(
                pb::ErrorKind::try_from(r.error.unwrap().kind).unwrap(),
                pb::ErrorKind::InvalidRequest
            );
        }
        let r = svc
            .revoke_secret(tonic::Request::new(pb::SecretCallArgs {
                mount_id: "nope".into(),
                secret: None,
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(r.error.unwrap().message.starts_with("mount not set up"));

        let mut internal = Map::new();
        internal.insert("secret_type".into(), "creds".into());
        let resp = Response {
            secret: Some(SecretLease {
                internal_data: internal,
                ttl: Duration::from_secs(3),
                max_ttl: Duration::from_secs(10),
                renewable: true,
            }),
            ..Default::default()
        };
        let wire = encode_response(resp.clone()).unwrap();
        assert_eq!(wire.secret.as_ref().unwrap().ttl_seconds, 3);
        assert_eq!(decode_response(wire).unwrap(), resp);
    }

    #[test]
    fn responses_round_trip() {
        let mut auth = Auth {
            policies: vec!["p".into()],
            display_name: "d".into(),
            ttl: Duration::from_millis(1500),
            renewable: true,
            ..Default::default()
        };
        auth.metadata.insert("username".into(), "alice".into());
        let resp = Response::auth(auth).with_warning("w");
        let wire = encode_response(resp).unwrap();
        assert_eq!(wire.auth.as_ref().unwrap().ttl_seconds, 2);
        let back = decode_response(wire).unwrap();
        assert_eq!(back.auth.unwrap().metadata["username"], "alice");
        assert_eq!(back.warnings, vec!["w"]);
        assert!(back.data.is_none());
    }
}
