//! [`HostStorage`]: the host's `Storage` gRPC service for one plugin
//! process, answering only that process (its per-launch token and its pid)
//! and only for the mounts assigned to it.

use crate::cache::MountGeneration;
use lockbox_core::barrier::{Storage as _, View};
use lockbox_plugin_proto as proto;
use proto::v1;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use subtle::ConstantTimeEq;
use tonic::{Request, Response, Status};

/// The host's `Storage` service for one process: only that process may
/// call it (see [`HostStorage::authorize`]), and only the mounts assigned
/// to it are reachable.
pub struct HostStorage {
    mounts: RwLock<HashMap<String, (View, Arc<MountGeneration>)>>,
    /// The per-launch secret the caller must present.
    token: zeroize::Zeroizing<String>,
    /// The plugin's process ID, once spawned; nothing is answered before.
    pid: OnceLock<u32>,
}

impl HostStorage {
    /// A service for one launch, answering callers that present `token`.
    pub fn new(token: String) -> Self {
        HostStorage {
            mounts: RwLock::default(),
            token: zeroize::Zeroizing::new(token),
            pid: OnceLock::new(),
        }
    }

    /// Records the process ID of the launched plugin: the only peer whose
    /// calls are answered.
    pub fn set_pid(&self, pid: u32) {
        let _ = self.pid.set(pid);
    }

    /// Checks the caller of a storage call: the host token in the
    /// `lockbox-host-token` metadata (constant-time comparison) and the
    /// connection's peer process (`SO_PEERCRED`), which must be the plugin
    /// process itself. Anything else is `permission_denied`.
    pub fn authorize<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let peer = req
            .extensions()
            .get::<tonic::transport::server::UdsConnectInfo>()
            .and_then(|info| info.peer_cred)
            .and_then(|cred| cred.pid());
        self.check_caller(
            req.metadata()
                .get(proto::HOST_TOKEN_METADATA)
                .map(|v| v.as_bytes()),
            peer,
        )
    }

    pub(super) fn check_caller(
        &self,
        token: Option<&[u8]>,
        peer_pid: Option<i32>,
    ) -> Result<(), Status> {
        let token_ok = token.is_some_and(|t| bool::from(t.ct_eq(self.token.as_bytes())));
        if !token_ok {
            return Err(Status::permission_denied(format!(
                "missing or wrong {} metadata: this storage service answers only the plugin process lockbox started with it",
                proto::HOST_TOKEN_METADATA
            )));
        }
        let expected = self.pid.get().copied();
        match (peer_pid, expected) {
            (Some(peer), Some(pid)) if u32::try_from(peer) == Ok(pid) => Ok(()),
            (peer, _) => Err(Status::permission_denied(format!(
                "the caller (pid {}) is not the plugin process this storage service belongs to; only the plugin process itself may call it, not its children or other processes",
                peer.map_or_else(|| "unknown".to_string(), |p| p.to_string())
            ))),
        }
    }

    /// Grants the process access to a mount's view; its writes bump the
    /// mount's cache generation.
    pub fn assign(&self, mount_id: &str, view: View, generation: Arc<MountGeneration>) {
        self.mounts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(mount_id.to_string(), (view, generation));
    }

    /// Revokes access.
    pub fn unassign(&self, mount_id: &str) {
        self.mounts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(mount_id);
    }

    fn view(&self, mount_id: &str, key: &str) -> Result<(View, Arc<MountGeneration>), Status> {
        if key.starts_with('/') || key.split('/').any(|s| s == "..") {
            return Err(Status::invalid_argument(format!(
                "invalid storage key {key:?}"
            )));
        }
        self.mounts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(mount_id)
            .cloned()
            .ok_or_else(|| {
                Status::permission_denied(format!(
                    "mount {mount_id:?} is not served by this plugin process"
                ))
            })
    }
}

fn storage_status(e: lockbox_core::barrier::BarrierError) -> Status {
    Status::internal(format!("storage error: {e}"))
}

#[tonic::async_trait]
impl v1::storage_server::Storage for HostStorage {
    async fn get(
        &self,
        req: Request<v1::StorageGetArgs>,
    ) -> Result<Response<v1::StorageGetReply>, Status> {
        self.authorize(&req)?;
        let a = req.into_inner();
        let value = self
            .view(&a.mount_id, &a.key)?
            .0
            .get(&a.key)
            .await
            .map_err(storage_status)?;
        Ok(Response::new(v1::StorageGetReply {
            found: value.is_some(),
            value: value.unwrap_or_default(),
        }))
    }

    async fn put(&self, req: Request<v1::StoragePutArgs>) -> Result<Response<v1::Empty>, Status> {
        self.authorize(&req)?;
        let a = req.into_inner();
        if a.key.is_empty() {
            return Err(Status::invalid_argument("storage key is empty"));
        }
        let (view, generation) = self.view(&a.mount_id, &a.key)?;
        let result = view.put(&a.key, &a.value).await;
        // After the write (even a failed one): see plugin::cache.
        generation.bump();
        result.map_err(storage_status)?;
        Ok(Response::new(v1::Empty {}))
    }

    async fn delete(
        &self,
        req: Request<v1::StorageDeleteArgs>,
    ) -> Result<Response<v1::Empty>, Status> {
        self.authorize(&req)?;
        let a = req.into_inner();
        let (view, generation) = self.view(&a.mount_id, &a.key)?;
        let result = view.delete(&a.key).await;
        generation.bump();
        result.map_err(storage_status)?;
        Ok(Response::new(v1::Empty {}))
    }

    async fn list(
        &self,
        req: Request<v1::StorageListArgs>,
    ) -> Result<Response<v1::StorageListReply>, Status> {
        self.authorize(&req)?;
        let a = req.into_inner();
        let keys = self
            .view(&a.mount_id, &a.prefix)?
            .0
            .list(&a.prefix)
            .await
            .map_err(storage_status)?;
        Ok(Response::new(v1::StorageListReply { keys }))
    }
}
