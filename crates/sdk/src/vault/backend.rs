//! `pb.Backend` and `logical.PluginVersion` served to a Vault-protocol host:
//! one backend instance per mount, keyed by the `multiplex_id` metadata of
//! each call (none: the host does not multiplex; the key is then empty).
//!
//! ```text
//! Setup(id, broker_id, config) → Broker::dial(broker_id) → Storage + SystemView TTLs
//!                                → Factory::create → mounts[id]
//! Initialize(id)               → backend.initialize(mount, storage)
//! HandleRequest(id, r)         → rollback: nothing; unknown operation: ErrUnsupportedOperation
//!                                → backend.handle_request(convert::request(r), storage)
//!                                → renew + secret:  backend.renew_secret  → Response.secret (new TTL)
//!                                → revoke + secret: backend.revoke_secret → no response
//!                                  (a PathBackend routes both by the secret's "secret_type")
//! Cleanup(id)                  → remove (the broker connection closes), backend.cleanup
//! ```
//!
//! Invariants (as the lockbox side, `service.rs`): input from the host never
//! panics the process; a panicking handler (setup, initialize, request,
//! existence check, cleanup, invalidate) is caught: a 500 reply where the
//! call has one; logical failures travel in the reply's `err`, never as gRPC
//! statuses.

use super::broker::Broker;
use super::convert::{self, VaultOp};
use super::storage::BrokerStorage;
use crate::error::Error;
use crate::logical::{Backend, Factory, Info, Kind, Mount};
use crate::service::isolated;
use crate::storage::Storage;
use lockbox_vault_plugin_proto::handshake::MULTIPLEX_ID_METADATA;
use lockbox_vault_plugin_proto::{logical as vlogical, pb};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// Vault's default for a mount's default and max lease TTL (32 days), used
/// when the host's SystemView does not answer.
const DEFAULT_TTL: Duration = Duration::from_secs(768 * 3600);

/// `Setup` config keys that describe the plugin, not mount options.
const PLUGIN_KEYS: [&str; 4] = [
    "plugin_name",
    "plugin_type",
    "plugin_version",
    "mount_accessor",
];

#[derive(Clone)]
struct MountEntry {
    mount: Arc<Mount>,
    backend: Arc<dyn Backend>,
    storage: Storage,
}

/// The Vault-protocol backend service of a plugin process.
pub(crate) struct VaultBackend {
    factory: Arc<dyn Factory>,
    info: Info,
    broker: Arc<Broker>,
    mounts: RwLock<HashMap<String, MountEntry>>,
}

/// The mount a call is for: exactly one `multiplex_id` value, or none.
fn mount_key<T>(request: &Request<T>) -> Result<String, Status> {
    let mut values = request.metadata().get_all(MULTIPLEX_ID_METADATA).iter();
    let key = match (values.next(), values.next()) {
        (None, _) => String::new(),
        (Some(v), None) => v
            .to_str()
            .map_err(|_| Status::invalid_argument("multiplex_id is not ASCII"))?
            .to_string(),
        (Some(_), Some(_)) => {
            return Err(Status::invalid_argument(
                "more than one multiplex_id in the call's metadata",
            ));
        }
    };
    Ok(key)
}

/// A mount's lease TTL from the host's SystemView (nanoseconds).
async fn ttl(
    client: &mut pb::system_view_client::SystemViewClient<Channel>,
    max: bool,
) -> Duration {
    let reply = if max {
        client.max_lease_ttl(pb::Empty {}).await
    } else {
        client.default_lease_ttl(pb::Empty {}).await
    };
    match reply {
        Ok(r) => u64::try_from(r.into_inner().ttl)
            .map(Duration::from_nanos)
            .unwrap_or(DEFAULT_TTL),
        Err(_) => DEFAULT_TTL,
    }
}

/// Runs one request of the SDK's (not rollback, not an unknown operation)
/// on its mount: the encoded response, if any.
async fn dispatch(
    entry: MountEntry,
    op: VaultOp,
    r: pb::Request,
) -> Result<Option<pb::Response>, Error> {
    match op {
        VaultOp::Known(operation) => {
            let req = convert::request(&entry.mount, operation, r)?;
            let resp = isolated("request", async move {
                entry.backend.handle_request(req, entry.storage).await
            })
            .await?;
            resp.map(convert::response).transpose()
        }
        VaultOp::Renew => {
            let convert::SecretCall { request, wire } = convert::secret_call(&entry.mount, r)?;
            let asked = request.asked_ttl();
            let granted = isolated("renew", async move {
                entry.backend.renew_secret(request, entry.storage).await
            })
            .await?;
            Ok(Some(convert::renewed(wire, granted, asked)))
        }
        VaultOp::Revoke => {
            let call = convert::secret_call(&entry.mount, r)?;
            isolated("revoke", async move {
                entry
                    .backend
                    .revoke_secret(call.request, entry.storage)
                    .await
            })
            .await?;
            Ok(None)
        }
        // Answered by `handle_request` before a mount is looked up.
        VaultOp::Rollback | VaultOp::Other => Ok(None),
    }
}

impl VaultBackend {
    pub(crate) fn new(factory: Arc<dyn Factory>, broker: Arc<Broker>) -> Self {
        let info = factory.info();
        VaultBackend {
            factory,
            info,
            broker,
            mounts: RwLock::new(HashMap::new()),
        }
    }

    fn entry(&self, key: &str) -> Option<MountEntry> {
        self.mounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn not_set_up(key: &str) -> Error {
        Error::internal(format!(
            "mount not set up: multiplex_id {key:?} is not a mount of this plugin process (Setup first)"
        ))
    }

    /// Setup's steps; an error is the reply's `err` text.
    async fn set_up(&self, key: String, args: pb::SetupArgs) -> Result<(), String> {
        let channel = self.broker.dial(args.broker_id).await?;
        let mut system = pb::system_view_client::SystemViewClient::new(channel.clone());
        let default_lease_ttl = ttl(&mut system, false).await;
        let max_lease_ttl = ttl(&mut system, true).await;
        let config = args.config;
        let id = if args.backend_uuid.is_empty() {
            key.clone()
        } else {
            args.backend_uuid
        };
        let mount = Arc::new(Mount {
            id: id.clone(),
            path: String::new(),
            accessor: config.get("mount_accessor").cloned().unwrap_or_default(),
            plugin_type: config.get("plugin_name").cloned().unwrap_or_default(),
            options: config
                .into_iter()
                .filter(|(k, _)| !PLUGIN_KEYS.contains(&k.as_str()))
                .collect::<BTreeMap<_, _>>(),
            default_lease_ttl,
            max_lease_ttl,
        });
        let factory = self.factory.clone();
        let for_factory = mount.clone();
        let backend = isolated("setup", async move { factory.create(&for_factory).await })
            .await
            .map_err(|e| e.to_string())?;
        let storage = Storage::new(Arc::new(BrokerStorage::new(channel)), &id);
        tracing::info!(mount_id = %id, multiplex_id = %key, "mount set up");
        self.mounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                key,
                MountEntry {
                    mount,
                    backend,
                    storage,
                },
            );
        Ok(())
    }
}

#[tonic::async_trait]
impl pb::backend_server::Backend for VaultBackend {
    async fn setup(
        &self,
        request: Request<pb::SetupArgs>,
    ) -> Result<Response<pb::SetupReply>, Status> {
        let key = mount_key(&request)?;
        let err = match self.set_up(key, request.into_inner()).await {
            Ok(()) => String::new(),
            Err(e) => {
                tracing::warn!(error = %e, "mount setup failed");
                e
            }
        };
        Ok(Response::new(pb::SetupReply { err }))
    }

    async fn initialize(
        &self,
        request: Request<pb::InitializeArgs>,
    ) -> Result<Response<pb::InitializeReply>, Status> {
        let key = mount_key(&request)?;
        let result = match self.entry(&key) {
            Some(entry) => {
                isolated("initialize", async move {
                    entry.backend.initialize(&entry.mount, &entry.storage).await
                })
                .await
            }
            None => Err(Self::not_set_up(&key)),
        };
        Ok(Response::new(pb::InitializeReply {
            err: result.err().map(|e| convert::error(&e).1),
        }))
    }

    async fn handle_request(
        &self,
        request: Request<pb::HandleRequestArgs>,
    ) -> Result<Response<pb::HandleRequestReply>, Status> {
        let key = mount_key(&request)?;
        let Some(r) = request.into_inner().request else {
            let (response, err) = convert::error(&Error::invalid("malformed call: no request"));
            return Ok(Response::new(pb::HandleRequestReply {
                response,
                err: Some(err),
                wal_index: None,
            }));
        };
        let op = convert::operation(&r.operation);
        if op == VaultOp::Rollback {
            return Ok(Response::new(pb::HandleRequestReply::default()));
        }
        // A login token's renewal (`bao token renew`) carries `auth`, not
        // `secret`: the SDK has no auth renewal over Vault's protocol.
        let token_renewal = op == VaultOp::Renew && r.secret.is_none() && r.auth.is_some();
        if op == VaultOp::Other || token_renewal {
            return Ok(Response::new(pb::HandleRequestReply {
                response: None,
                err: Some(convert::unsupported_operation()),
                wal_index: None,
            }));
        }
        let result = match self.entry(&key) {
            None => Err(Self::not_set_up(&key)),
            Some(entry) => dispatch(entry, op, r).await,
        };
        let reply = match result {
            Ok(response) => pb::HandleRequestReply {
                response,
                err: None,
                wal_index: None,
            },
            Err(e) => {
                if matches!(e, Error::Internal(_) | Error::Storage(_)) || op == VaultOp::Revoke {
                    tracing::warn!(multiplex_id = %key, operation = ?op, error = %e, "request failed");
                }
                let (response, err) = convert::error(&e);
                pb::HandleRequestReply {
                    response,
                    err: Some(err),
                    wal_index: None,
                }
            }
        };
        Ok(Response::new(reply))
    }

    async fn handle_existence_check(
        &self,
        request: Request<pb::HandleExistenceCheckArgs>,
    ) -> Result<Response<pb::HandleExistenceCheckReply>, Status> {
        let key = mount_key(&request)?;
        let Some(r) = request.into_inner().request else {
            return Ok(Response::new(pb::HandleExistenceCheckReply::default()));
        };
        let VaultOp::Known(operation) = convert::operation(&r.operation) else {
            return Ok(Response::new(pb::HandleExistenceCheckReply::default()));
        };
        let result = match self.entry(&key) {
            None => Err(Self::not_set_up(&key)),
            Some(entry) => match convert::request(&entry.mount, operation, r) {
                Err(e) => Err(e),
                Ok(req) => {
                    isolated("existence check", async move {
                        entry.backend.existence_check(req, entry.storage).await
                    })
                    .await
                }
            },
        };
        let reply = match result {
            Ok(found) => pb::HandleExistenceCheckReply {
                check_found: found.is_some(),
                exists: found.unwrap_or(false),
                err: None,
            },
            Err(e) => pb::HandleExistenceCheckReply {
                check_found: false,
                exists: false,
                err: Some(convert::error(&e).1),
            },
        };
        Ok(Response::new(reply))
    }

    async fn special_paths(
        &self,
        _request: Request<pb::Empty>,
    ) -> Result<Response<pb::SpecialPathsReply>, Status> {
        Ok(Response::new(pb::SpecialPathsReply {
            paths: Some(pb::Paths {
                root: self.info.root_paths.clone(),
                unauthenticated: self.info.unauthenticated_paths.clone(),
                ..Default::default()
            }),
        }))
    }

    async fn cleanup(&self, request: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        let key = mount_key(&request)?;
        let removed = self
            .mounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        if let Some(entry) = removed {
            let _ = isolated("cleanup", async move {
                entry.backend.cleanup(&entry.mount).await;
                Ok(())
            })
            .await;
            tracing::info!(multiplex_id = %key, "mount cleaned up");
        }
        Ok(Response::new(pb::Empty {}))
    }

    async fn invalidate_key(
        &self,
        request: Request<pb::InvalidateKeyArgs>,
    ) -> Result<Response<pb::Empty>, Status> {
        let key = mount_key(&request)?;
        if let Some(entry) = self.entry(&key) {
            let changed = request.into_inner().key;
            let _ = isolated("invalidate", async move {
                entry.backend.invalidate(&entry.mount, &changed).await;
                Ok(())
            })
            .await;
        }
        Ok(Response::new(pb::Empty {}))
    }

    async fn r#type(
        &self,
        _request: Request<pb::Empty>,
    ) -> Result<Response<pb::TypeReply>, Status> {
        let r#type = match self.info.kind {
            Kind::Secret => 1,
            Kind::Credential => 2,
        };
        Ok(Response::new(pb::TypeReply { r#type }))
    }
}

/// `logical.PluginVersion`: the version the backend's [`Info`] reports.
pub(crate) struct Version(pub(crate) String);

#[tonic::async_trait]
impl vlogical::plugin_version_server::PluginVersion for Version {
    async fn version(
        &self,
        _request: Request<vlogical::Empty>,
    ) -> Result<Response<vlogical::VersionReply>, Status> {
        Ok(Response::new(vlogical::VersionReply {
            plugin_version: self.0.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Response as SdkResponse;
    use crate::framework::{Path, PathBackend, Secret};
    use crate::logical::Shared;
    use lockbox_vault_plugin_proto::tls::{AutoMtlsCert, Peer};
    use pb::backend_server::Backend as _;

    fn service() -> VaultBackend {
        let backend = PathBackend::new(Kind::Credential, "v3").path(Path::new("echo").read(
            |req, _, _| async move {
                Ok(Some(SdkResponse::json(
                    serde_json::json!({ "mount": req.mount.path }),
                )))
            },
        ));
        service_with(backend)
    }

    fn service_with(backend: PathBackend) -> VaultBackend {
        let plugin = AutoMtlsCert::generate().unwrap();
        let host = AutoMtlsCert::generate().unwrap();
        let broker = Broker::new(plugin.client_config(Peer::host(host.der.clone())).unwrap());
        VaultBackend::new(Arc::new(Shared::new(backend)), broker)
    }

    fn with_id<T>(ids: &[&str], msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        for id in ids {
            r.metadata_mut()
                .append(MULTIPLEX_ID_METADATA, id.parse().unwrap());
        }
        r
    }

    fn call(ids: &[&str], op: &str) -> Request<pb::HandleRequestArgs> {
        with_id(
            ids,
            pb::HandleRequestArgs {
                storage_id: 0,
                request: Some(pb::Request {
                    operation: op.into(),
                    path: "echo".into(),
                    data: "null".into(),
                    ..Default::default()
                }),
            },
        )
    }

    /// A call for a mount not set up, two `multiplex_id`s, an unknown
    /// operation and `rollback` each get Vault's answer, not a panic.
    #[tokio::test]
    async fn calls_are_answered_as_vault_expects() {
        let svc = service();
        let r = svc
            .handle_request(call(&["m1"], "read"))
            .await
            .unwrap()
            .into_inner();
        let err = r.err.unwrap();
        assert_eq!(err.err_type, convert::err_type::INTERNAL);
        assert!(err.err_msg.contains("mount not set up"), "{}", err.err_msg);
        let s = svc
            .handle_request(call(&["a", "b"], "read"))
            .await
            .unwrap_err();
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        let r = svc
            .handle_request(call(&["m1"], "help"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.err.unwrap().err_type,
            convert::err_type::UNSUPPORTED_OPERATION
        );
        let r = svc
            .handle_request(call(&["m1"], "rollback"))
            .await
            .unwrap()
            .into_inner();
        assert!(r.err.is_none() && r.response.is_none());
        let t = svc
            .r#type(Request::new(pb::Empty {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(t.r#type, 2);
        // Setup with a broker id the host never announces fails in the
        // reply, naming the id (after go-plugin's wait).
        tokio::time::pause();
        let setup = svc
            .setup(with_id(
                &["m1"],
                pb::SetupArgs {
                    broker_id: 42,
                    config: HashMap::new(),
                    backend_uuid: "u1".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(setup.err.contains("broker id 42"), "{}", setup.err);
    }

    /// A mount set up directly (no host) is served per `multiplex_id`, with
    /// the mount point of each request.
    #[tokio::test]
    async fn mounts_are_keyed_by_multiplex_id() {
        let svc = service();
        let backend = svc.factory.create(&Mount::for_tests()).await.unwrap();
        svc.mounts.write().unwrap().insert(
            "m1".into(),
            MountEntry {
                mount: Arc::new(Mount::for_tests()),
                backend,
                storage: Storage::in_memory(),
            },
        );
        let mut req = call(&["m1"], "read");
        if let Some(r) = req.get_mut().request.as_mut() {
            r.mount_point = "sdk1/".into();
        }
        let r = svc.handle_request(req).await.unwrap().into_inner();
        assert!(r.err.is_none(), "{:?}", r.err);
        assert_eq!(r.response.unwrap().data, r#"{"mount":"sdk1/"}"#);
        let r = svc
            .handle_request(call(&["m2"], "read"))
            .await
            .unwrap()
            .into_inner();
        assert!(r.err.is_some());
        svc.cleanup(with_id(&["m1"], pb::Empty {})).await.unwrap();
        let r = svc
            .handle_request(call(&["m1"], "read"))
            .await
            .unwrap()
            .into_inner();
        assert!(r.err.unwrap().err_msg.contains("mount not set up"));
    }

    /// A secrets engine issuing `creds` secrets at `creds`; its handlers
    /// record what they were given in the mount's storage.
    fn leasing_service() -> VaultBackend {
        let creds = Secret::new("creds")
            .default_ttl(Duration::from_secs(60))
            .renew(|req, s| async move {
                let seen = serde_json::json!({
                    "asked": req.asked_ttl().as_secs(),
                    "issue_time": req.issue_time,
                    "max_ttl": req.max_ttl.as_secs(),
                    "path": req.path,
                    "mount": req.mount.path,
                    "data": req.data,
                });
                s.put_json("renewed", &seen).await?;
                Ok(Duration::from_secs(45))
            })
            .revoke(|req, s| async move {
                let user = req.internal_data.get("username").and_then(|u| u.as_str());
                match user {
                    Some("fail") => Err(Error::internal("database down")),
                    Some(u) => Ok(s.put(&format!("revoked/{u}"), "1").await?),
                    None => Err(Error::invalid("no username in the secret")),
                }
            });
        let issuer = creds.clone();
        let backend = PathBackend::new(Kind::Secret, "v1")
            .secret(creds)
            .secret(Secret::new("plain"))
            .path(Path::new("creds").read(move |_, _, _| {
                let issuer = issuer.clone();
                async move {
                    let mut data = serde_json::Map::new();
                    data.insert("username".into(), "v-alice".into());
                    let mut internal = serde_json::Map::new();
                    internal.insert("username".into(), "v-alice".into());
                    Ok(Some(issuer.response(data, internal)))
                }
            }));
        service_with(backend)
    }

    async fn mounted(svc: &VaultBackend, key: &str) -> Storage {
        let backend = svc.factory.create(&Mount::for_tests()).await.unwrap();
        let storage = Storage::in_memory();
        svc.mounts.write().unwrap().insert(
            key.into(),
            MountEntry {
                mount: Arc::new(Mount::for_tests()),
                backend,
                storage: storage.clone(),
            },
        );
        storage
    }

    fn lease_call(
        op: &str,
        secret: Option<pb::Secret>,
        data: &str,
    ) -> Request<pb::HandleRequestArgs> {
        with_id(
            &["m1"],
            pb::HandleRequestArgs {
                storage_id: 0,
                request: Some(pb::Request {
                    operation: op.into(),
                    path: "creds".into(),
                    data: data.into(),
                    secret,
                    mount_point: "db/".into(),
                    ..Default::default()
                }),
            },
        )
    }

    /// Issue, renew and revoke over `HandleRequest`, as OpenBao's lease
    /// manager drives them: the secret comes back to its type's handlers
    /// with the lease's options, and the renewal's answer carries the TTL
    /// granted.
    #[tokio::test]
    async fn leased_secrets_are_issued_renewed_and_revoked() {
        let svc = leasing_service();
        let storage = mounted(&svc, "m1").await;
        let r = svc
            .handle_request(lease_call("read", None, "null"))
            .await
            .unwrap()
            .into_inner();
        assert!(r.err.is_none(), "{:?}", r.err);
        let issued = r.response.unwrap();
        let secret = issued.secret.clone().expect("Response.secret");
        let internal: serde_json::Value = serde_json::from_str(&secret.internal_data).unwrap();
        assert_eq!(
            internal,
            serde_json::json!({"secret_type": "creds", "username": "v-alice"})
        );
        let opts = secret.lease_options.unwrap();
        assert_eq!((opts.ttl, opts.renewable), (60_000_000_000, true));

        // Renewal: the lease entry's secret with its issue time and the
        // increment asked.
        let mut back = secret.clone();
        back.lease_options = Some(pb::LeaseOptions {
            increment: 120_000_000_000,
            issue_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..opts
        });
        let r = svc
            .handle_request(lease_call("renew", Some(back.clone()), &issued.data))
            .await
            .unwrap()
            .into_inner();
        assert!(r.err.is_none(), "{:?}", r.err);
        let renewed = r.response.unwrap().secret.unwrap();
        assert_eq!(renewed.lease_options.unwrap().ttl, 45_000_000_000);
        assert_eq!(renewed.internal_data, secret.internal_data);
        let seen: serde_json::Value = storage.get_json("renewed").await.unwrap().unwrap();
        assert_eq!(
            seen,
            serde_json::json!({
                "asked": 120, "issue_time": 1_700_000_000, "max_ttl": 0,
                "path": "creds", "mount": "db/", "data": {"username": "v-alice"},
            })
        );

        // Revocation: the handler ran; no response.
        let r = svc
            .handle_request(lease_call("revoke", Some(back.clone()), "null"))
            .await
            .unwrap()
            .into_inner();
        assert!(r.err.is_none() && r.response.is_none(), "{r:?}");
        assert!(storage.get("revoked/v-alice").await.unwrap().is_some());

        // A failing revocation is an error the host retries.
        let mut failing = back.clone();
        failing.internal_data = r#"{"secret_type":"creds","username":"fail"}"#.into();
        let r = svc
            .handle_request(lease_call("revoke", Some(failing), "null"))
            .await
            .unwrap()
            .into_inner();
        let err = r.err.unwrap();
        assert_eq!(err.err_type, convert::err_type::INTERNAL);
        assert!(err.err_msg.contains("database down"), "{}", err.err_msg);
    }

    /// Unknown or untyped secrets, a type without a renew handler, a call
    /// without a secret and a token renewal are refused, never a silent
    /// success.
    #[tokio::test]
    async fn lease_calls_the_plugin_cannot_serve_are_refused() {
        let svc = leasing_service();
        mounted(&svc, "m1").await;
        let typed = |internal: &str| pb::Secret {
            lease_options: Some(pb::LeaseOptions {
                ttl: 1_000_000_000,
                renewable: true,
                ..Default::default()
            }),
            internal_data: internal.into(),
            lease_id: String::new(),
        };
        for (op, internal, expect) in [
            ("renew", r#"{"secret_type":"zz"}"#, "zz"),
            ("revoke", r#"{"secret_type":"zz"}"#, "not declared"),
            ("revoke", r#"{"username":"x"}"#, "secret_type"),
            ("renew", r#"{"secret_type":"plain"}"#, "cannot be renewed"),
        ] {
            let r = svc
                .handle_request(lease_call(op, Some(typed(internal)), "null"))
                .await
                .unwrap()
                .into_inner();
            let err = r.err.expect("an error");
            assert_eq!(
                err.err_type,
                convert::err_type::INVALID_REQUEST,
                "{op} {internal}"
            );
            let data = r.response.unwrap().data;
            assert!(data.contains(expect), "{op} {internal}: {data}");
        }
        let r = svc
            .handle_request(lease_call("revoke", None, "null"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.err.unwrap().err_type, convert::err_type::INVALID_REQUEST);
        assert!(r.response.unwrap().data.contains("no secret"));
        let mut token_renewal = lease_call("renew", None, "null");
        if let Some(r) = token_renewal.get_mut().request.as_mut() {
            r.auth = Some(pb::Auth::default());
        }
        let r = svc
            .handle_request(token_renewal)
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.err.unwrap().err_type,
            convert::err_type::UNSUPPORTED_OPERATION
        );
        // A mount not set up.
        let mut other = lease_call("revoke", Some(typed(r#"{"secret_type":"creds"}"#)), "null");
        other.metadata_mut().remove(MULTIPLEX_ID_METADATA);
        let r = svc.handle_request(other).await.unwrap().into_inner();
        assert!(r.err.unwrap().err_msg.contains("mount not set up"));
    }
}
