//! A test harness: drive a backend in-process, exactly as the host would
//! over gRPC, but without sockets.
//!
//! The harness sets up one mount on the plugin's real `Backend` service
//! (the same code that serves the host), with in-memory storage, and sends
//! wire messages to it. Writes are resolved into create or update with the
//! existence check, like the host does. Replies are decoded back into
//! [`Response`] / [`Error`], so a test sees what the host sees.
//!
//! ```
//! # async fn demo() -> Result<(), lockbox_sdk::Error> {
//! use lockbox_sdk::harness::Harness;
//! # let backend = lockbox_sdk::framework::PathBackend::new(lockbox_sdk::Kind::Secret, "v1");
//! let h = Harness::new(backend).await?;
//! h.write("roles/web", serde_json::json!({"length": 12})).await?;
//! let role = h.read("roles/web").await?;
//! # let _ = role; Ok(()) }
//! ```

use crate::error::Error;
use crate::logical::{Auth, Backend, Factory, Info, Mount, Operation, Response, Shared};
use crate::service::{PluginService, decode_response, operation_to_wire};
use crate::storage::{MemoryTransport, Storage};
use lockbox_plugin_proto::v1 as pb;
use pb::backend_server::Backend as _;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One mount of a backend, in memory.
pub struct Harness {
    service: PluginService,
    storage: Storage,
    mount: Mount,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("mount", &self.mount)
            .finish_non_exhaustive()
    }
}

fn status_error(what: &str, s: tonic::Status) -> Error {
    Error::internal(format!(
        "{what} failed with gRPC status {:?}: {}",
        s.code(),
        s.message()
    ))
}

impl Harness {
    /// Sets up and initializes `backend` on [`Mount::for_tests`].
    pub async fn new(backend: impl Backend) -> Result<Self, Error> {
        Self::with_factory(Shared::new(backend), Mount::for_tests()).await
    }

    /// Sets up and initializes a mount of `factory` with `mount`'s
    /// configuration. A refused setup is an [`Error::Internal`] with the
    /// factory's message.
    pub async fn with_factory(factory: impl Factory, mount: Mount) -> Result<Self, Error> {
        let transport = Arc::new(MemoryTransport::default());
        let service = PluginService::new(Arc::new(factory), transport.clone());
        let reply = service
            .setup(tonic::Request::new(pb::SetupRequest {
                mount_id: mount.id.clone(),
                mount_path: mount.path.clone(),
                mount_accessor: mount.accessor.clone(),
                mount_type: mount.plugin_type.clone(),
                options: mount.options.clone().into_iter().collect(),
                default_lease_ttl_seconds: mount.default_lease_ttl.as_secs(),
                max_lease_ttl_seconds: mount.max_lease_ttl.as_secs(),
            }))
            .await
            .map_err(|s| status_error("Setup", s))?
            .into_inner();
        if !reply.error.is_empty() {
            return Err(Error::internal(reply.error));
        }
        service
            .initialize(tonic::Request::new(pb::MountRef {
                mount_id: mount.id.clone(),
            }))
            .await
            .map_err(|s| status_error("Initialize", s))?;
        Ok(Harness {
            service,
            storage: Storage::new(transport, &mount.id),
            mount,
            next_id: AtomicU64::new(1),
        })
    }

    /// What the plugin's `Info` reports.
    pub async fn info(&self) -> Result<Info, Error> {
        let reply = self
            .service
            .info(tonic::Request::new(pb::InfoRequest {}))
            .await
            .map_err(|s| status_error("Info", s))?
            .into_inner();
        let kind = match pb::BackendKind::try_from(reply.kind) {
            Ok(pb::BackendKind::Credential) => crate::Kind::Credential,
            _ => crate::Kind::Secret,
        };
        Ok(Info {
            kind,
            version: reply.version,
            root_paths: reply.root_paths,
            unauthenticated_paths: reply.unauthenticated_paths,
        })
    }

    /// The mount's storage, to inspect or seed what the plugin stored.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The mount the harness serves.
    pub fn mount(&self) -> &Mount {
        &self.mount
    }

    fn args(
        &self,
        op: Operation,
        path: &str,
        data: &Value,
    ) -> Result<pb::HandleRequestArgs, Error> {
        let data_json = match data {
            Value::Null => Vec::new(),
            Value::Object(map) => serde_json::to_vec(map)
                .map_err(|e| Error::internal(format!("cannot encode test data: {e}")))?,
            other => {
                return Err(Error::invalid(format!(
                    "harness: request data must be a JSON object, got {other}"
                )));
            }
        };
        Ok(pb::HandleRequestArgs {
            mount_id: self.mount.id.clone(),
            request: Some(pb::Request {
                id: format!("harness-{}", self.next_id.fetch_add(1, Ordering::Relaxed)),
                operation: operation_to_wire(op) as i32,
                path: path.to_string(),
                data_json,
                client_token_accessor: String::new(),
                display_name: String::new(),
            }),
        })
    }

    /// Sends one request with an explicit operation (no create/update
    /// resolution). `data` is a JSON object or `null`.
    pub async fn request(
        &self,
        op: Operation,
        path: &str,
        data: Value,
    ) -> Result<Option<Response>, Error> {
        let args = self.args(op, path, &data)?;
        let reply = self
            .service
            .handle_request(tonic::Request::new(args))
            .await
            .map_err(|s| status_error("HandleRequest", s))?
            .into_inner();
        if let Some(e) = reply.error {
            return Err(Error::from_wire(&e));
        }
        reply.response.map(decode_response).transpose()
    }

    /// The existence check for a write to `path`: `Some(exists)` or `None`
    /// when the path has none.
    pub async fn exists(&self, path: &str, data: Value) -> Result<Option<bool>, Error> {
        let args = self.args(Operation::Update, path, &data)?;
        let reply = self
            .service
            .existence_check(tonic::Request::new(args))
            .await
            .map_err(|s| status_error("ExistenceCheck", s))?
            .into_inner();
        if let Some(e) = reply.error {
            return Err(Error::from_wire(&e));
        }
        Ok(reply.check_found.then_some(reply.exists))
    }

    /// Which operation the host would send for a write to `path`.
    pub async fn write_operation(&self, path: &str, data: &Value) -> Result<Operation, Error> {
        Ok(match self.exists(path, data.clone()).await? {
            Some(false) => Operation::Create,
            Some(true) | None => Operation::Update,
        })
    }

    /// A write, resolved into create or update like the host does.
    pub async fn write(&self, path: &str, data: Value) -> Result<Option<Response>, Error> {
        let op = self.write_operation(path, &data).await?;
        self.request(op, path, data).await
    }

    /// A read.
    pub async fn read(&self, path: &str) -> Result<Option<Response>, Error> {
        self.request(Operation::Read, path, Value::Null).await
    }

    /// A read with query parameters.
    pub async fn read_with(&self, path: &str, query: Value) -> Result<Option<Response>, Error> {
        self.request(Operation::Read, path, query).await
    }

    /// The `data` of a read, or `None` (404).
    pub async fn read_data(&self, path: &str) -> Result<Option<Map<String, Value>>, Error> {
        Ok(self.read(path).await?.and_then(|r| r.data))
    }

    /// A list: the `keys` of the response (empty when there is none).
    pub async fn list(&self, path: &str) -> Result<Vec<String>, Error> {
        let resp = self.request(Operation::List, path, Value::Null).await?;
        let keys = resp
            .and_then(|r| r.data)
            .and_then(|mut d| d.remove("keys"))
            .unwrap_or(Value::Array(Vec::new()));
        serde_json::from_value(keys)
            .map_err(|e| Error::internal(format!("list response keys are not strings: {e}")))
    }

    /// A delete.
    pub async fn delete(&self, path: &str) -> Result<Option<Response>, Error> {
        self.request(Operation::Delete, path, Value::Null).await
    }

    /// A login: a write that must return `auth`.
    pub async fn login(&self, path: &str, data: Value) -> Result<Auth, Error> {
        self.write(path, data)
            .await?
            .and_then(|r| r.auth)
            .ok_or_else(|| Error::internal(format!("login at {path:?} returned no auth")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;
    use crate::framework::{Path, PathBackend};
    use serde_json::json;

    #[tokio::test]
    async fn drives_a_backend_like_the_host() {
        let backend = PathBackend::new(Kind::Credential, "v2")
            .unauthenticated_paths(["login"])
            .path(
                Path::new("k/{name}")
                    .existence_check(
                        |req, _, s| async move { Ok(s.get(&req.path).await?.is_some()) },
                    )
                    .create(|req, _, s| async move {
                        s.put_json(&req.path, &req.data).await?;
                        Ok(Some(Response::json(json!({"op": "create"}))))
                    })
                    .update(|_, _, _| async { Ok(Some(Response::json(json!({"op": "update"})))) })
                    .read(|req, _, s| async move {
                        Ok(s.get_json::<Map<String, Value>>(&req.path)
                            .await?
                            .map(Response::data))
                    }),
            )
            .path(
                Path::new("k/")
                    .list(|_, _, s| async move { Ok(Some(Response::list(s.list("k/").await?))) }),
            );
        let h = Harness::new(backend).await.unwrap();
        let info = h.info().await.unwrap();
        assert_eq!(info.kind, Kind::Credential);
        assert_eq!(info.unauthenticated_paths, vec!["login"]);

        let r = h.write("k/a", json!({"x": 1})).await.unwrap().unwrap();
        assert_eq!(r.data.unwrap()["op"], "create");
        let r = h.write("k/a", json!({"x": 2})).await.unwrap().unwrap();
        assert_eq!(r.data.unwrap()["op"], "update");
        assert_eq!(h.read_data("k/a").await.unwrap().unwrap()["x"], 1);
        assert_eq!(h.read_data("k/b").await.unwrap(), None);
        assert_eq!(h.list("k/").await.unwrap(), vec!["a"]);
        assert!(matches!(
            h.read("zzz").await,
            Err(Error::UnsupportedPath(_))
        ));
        assert!(matches!(
            h.delete("k/a").await,
            Err(Error::UnsupportedOperation(_))
        ));
        assert!(matches!(
            h.write("k/a", json!([1])).await,
            Err(Error::InvalidRequest(_))
        ));
        assert!(h.login("k/a", json!({})).await.is_err());
        assert_eq!(h.storage().list("k/").await.unwrap(), vec!["a"]);
    }
}
