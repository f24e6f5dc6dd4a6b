//! Storage as a plugin sees it: a [`Storage`] handle bound to one mount,
//! backed by the host's `Storage` gRPC service (or by memory in tests).
//!
//! The host encrypts values and scopes keys to the mount's own view; the
//! plugin only ever names keys relative to its mount. `list` has Vault's
//! semantics: it returns the direct children of a prefix, relative to it,
//! with sub-folders ending in `/` (`list("roles/")` → `["a", "b/"]`).

use crate::error::StorageError;
use lockbox_plugin_proto::v1 as pb;
use pb::storage_client::StorageClient;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

fn rpc_error(op: &'static str, key: &str, status: tonic::Status) -> StorageError {
    StorageError::Rpc {
        op,
        key: key.to_string(),
        code: status.code(),
        message: status.message().to_string(),
    }
}

/// Where storage calls go: the host over gRPC, or memory.
#[async_trait::async_trait]
pub(crate) trait Transport: Send + Sync + 'static {
    async fn get(&self, mount_id: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    async fn put(&self, mount_id: &str, key: &str, value: Vec<u8>) -> Result<(), StorageError>;
    async fn delete(&self, mount_id: &str, key: &str) -> Result<(), StorageError>;
    async fn list(&self, mount_id: &str, prefix: &str) -> Result<Vec<String>, StorageError>;
}

/// Adds the host token to every storage call: the host answers only the
/// process it launched, and only with the token it handed over.
#[derive(Debug, Clone)]
pub(crate) struct HostToken(Option<MetadataValue<Ascii>>);

impl Interceptor for HostToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            req.metadata_mut()
                .insert(lockbox_plugin_proto::HOST_TOKEN_METADATA, token.clone());
        }
        Ok(req)
    }
}

/// The host's `Storage` service over a (lazily connected) channel.
#[derive(Debug, Clone)]
pub(crate) struct GrpcTransport {
    client: StorageClient<InterceptedService<Channel, HostToken>>,
}

impl GrpcTransport {
    pub(crate) fn new(
        channel: Channel,
        token: Option<&str>,
    ) -> Result<Self, crate::error::ServeError> {
        let token = token
            .map(|t| {
                t.parse::<MetadataValue<Ascii>>().map_err(|_| {
                    crate::error::ServeError::HostToken(lockbox_plugin_proto::HOST_TOKEN_KEY)
                })
            })
            .transpose()?;
        Ok(GrpcTransport {
            client: StorageClient::with_interceptor(channel, HostToken(token))
                .max_decoding_message_size(lockbox_plugin_proto::MAX_MESSAGE_SIZE)
                .max_encoding_message_size(lockbox_plugin_proto::MAX_MESSAGE_SIZE),
        })
    }
}

#[async_trait::async_trait]
impl Transport for GrpcTransport {
    async fn get(&self, mount_id: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let reply = self
            .client
            .clone()
            .get(pb::StorageGetArgs {
                mount_id: mount_id.into(),
                key: key.into(),
            })
            .await
            .map_err(|s| rpc_error("get", key, s))?
            .into_inner();
        Ok(reply.found.then_some(reply.value))
    }

    async fn put(&self, mount_id: &str, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.client
            .clone()
            .put(pb::StoragePutArgs {
                mount_id: mount_id.into(),
                key: key.into(),
                value,
            })
            .await
            .map_err(|s| rpc_error("put", key, s))?;
        Ok(())
    }

    async fn delete(&self, mount_id: &str, key: &str) -> Result<(), StorageError> {
        self.client
            .clone()
            .delete(pb::StorageDeleteArgs {
                mount_id: mount_id.into(),
                key: key.into(),
            })
            .await
            .map_err(|s| rpc_error("delete", key, s))?;
        Ok(())
    }

    async fn list(&self, mount_id: &str, prefix: &str) -> Result<Vec<String>, StorageError> {
        let reply = self
            .client
            .clone()
            .list(pb::StorageListArgs {
                mount_id: mount_id.into(),
                prefix: prefix.into(),
            })
            .await
            .map_err(|s| rpc_error("list", prefix, s))?
            .into_inner();
        Ok(reply.keys)
    }
}

/// In-memory storage for tests, keyed by (mount, key), with the host's list
/// semantics.
#[derive(Debug, Default)]
pub(crate) struct MemoryTransport {
    map: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl MemoryTransport {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Vec<u8>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The direct children of `prefix` among sorted `keys` (Vault's list).
pub(crate) fn children<'a>(prefix: &str, keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        let entry = match rest.find('/') {
            Some(i) => &rest[..=i],
            None => rest,
        };
        if !entry.is_empty() && out.last().map(String::as_str) != Some(entry) {
            out.push(entry.to_string());
        }
    }
    out
}

#[async_trait::async_trait]
impl Transport for MemoryTransport {
    async fn get(&self, mount_id: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .map()
            .get(&(mount_id.to_string(), key.to_string()))
            .cloned())
    }

    async fn put(&self, mount_id: &str, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.map()
            .insert((mount_id.to_string(), key.to_string()), value);
        Ok(())
    }

    async fn delete(&self, mount_id: &str, key: &str) -> Result<(), StorageError> {
        self.map().remove(&(mount_id.to_string(), key.to_string()));
        Ok(())
    }

    async fn list(&self, mount_id: &str, prefix: &str) -> Result<Vec<String>, StorageError> {
        let map = self.map();
        let start = (mount_id.to_string(), prefix.to_string());
        let keys = map
            .range(start..)
            .take_while(|((m, k), _)| m == mount_id && k.starts_with(prefix))
            .map(|((_, k), _)| k.as_str());
        Ok(children(prefix, keys))
    }
}

/// Storage of one mount. Cheap to clone; every call names the mount it was
/// made for, and the host accepts only mounts it assigned to this process.
#[derive(Clone)]
pub struct Storage {
    transport: Arc<dyn Transport>,
    mount_id: Arc<str>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("mount_id", &self.mount_id)
            .finish_non_exhaustive()
    }
}

impl Storage {
    pub(crate) fn new(transport: Arc<dyn Transport>, mount_id: &str) -> Self {
        Storage {
            transport,
            mount_id: Arc::from(mount_id),
        }
    }

    /// A fresh, empty in-memory storage (for unit tests of handlers).
    pub fn in_memory() -> Self {
        Storage::new(Arc::new(MemoryTransport::default()), "test-mount")
    }

    /// The mount this handle is bound to.
    pub fn mount_id(&self) -> &str {
        &self.mount_id
    }

    /// The value at `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.transport.get(&self.mount_id, key).await
    }

    /// Writes `value` at `key` (replacing).
    pub async fn put(&self, key: &str, value: impl Into<Vec<u8>>) -> Result<(), StorageError> {
        self.transport.put(&self.mount_id, key, value.into()).await
    }

    /// Deletes `key`; deleting a missing key succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.transport.delete(&self.mount_id, key).await
    }

    /// The direct children of `prefix` (which should be empty or end with
    /// `/`), relative to it; sub-folders end with `/`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.transport.list(&self.mount_id, prefix).await
    }

    /// Reads and decodes a JSON value.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        match self.get(key).await? {
            None => Ok(None),
            Some(raw) => {
                serde_json::from_slice(&raw)
                    .map(Some)
                    .map_err(|source| StorageError::Decode {
                        key: key.to_string(),
                        source,
                    })
            }
        }
    }

    /// Encodes `value` as JSON and writes it.
    pub async fn put_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StorageError> {
        let raw = serde_json::to_vec(value).map_err(|source| StorageError::Encode {
            key: key.to_string(),
            source,
        })?;
        self.put(key, raw).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_collapses_folders() {
        let keys = ["p/a", "p/b/c", "p/b/d", "p/e/", "q"];
        assert_eq!(children("p/", keys.iter().copied()), vec!["a", "b/", "e/"]);
        assert_eq!(children("", keys.iter().copied()), vec!["p/", "q"]);
    }

    #[tokio::test]
    async fn memory_storage_is_scoped_per_mount() {
        let transport: Arc<dyn Transport> = Arc::new(MemoryTransport::default());
        let a = Storage::new(transport.clone(), "a");
        let b = Storage::new(transport, "b");
        a.put("roles/x", b"1".to_vec()).await.unwrap();
        a.put("roles/y/z", b"2".to_vec()).await.unwrap();
        b.put("roles/other", b"3".to_vec()).await.unwrap();
        assert_eq!(a.list("roles/").await.unwrap(), vec!["x", "y/"]);
        assert_eq!(b.list("roles/").await.unwrap(), vec!["other"]);
        assert_eq!(b.get("roles/x").await.unwrap(), None);
        a.delete("roles/x").await.unwrap();
        a.delete("roles/x").await.unwrap();
        assert_eq!(a.get("roles/x").await.unwrap(), None);
    }

    #[tokio::test]
    async fn json_helpers_report_bad_values() {
        let s = Storage::in_memory();
        s.put_json("k", &serde_json::json!({"a": 1})).await.unwrap();
        let v: serde_json::Value = s.get_json("k").await.unwrap().unwrap();
        assert_eq!(v["a"], 1);
        s.put("bad", b"not json".to_vec()).await.unwrap();
        let e = s.get_json::<serde_json::Value>("bad").await.unwrap_err();
        assert!(e.to_string().contains("\"bad\" is not valid JSON"), "{e}");
    }
}
