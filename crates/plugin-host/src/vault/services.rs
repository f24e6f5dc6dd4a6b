//! What the host serves a Vault plugin on a mount's broker connection:
//! `pb.Storage` (the mount's own view, nothing else), `pb.SystemView` (the
//! mount's facts), and `pb.Events` / `pb.Observations` (accepted and
//! dropped, as Vault does with events off).

use crate::cache::MountGeneration;
use lockbox_core::barrier::{Storage as _, View};
use lockbox_vault_plugin_proto::{logical as vlogical, pb};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Vault's system default for a mount's lease TTLs when the mount sets
/// none (768h).
const SYSTEM_DEFAULT_TTL_SECS: u64 = 768 * 3600;

/// One mount's host services; one instance per broker connection.
pub struct MountServices {
    /// The mount's storage view.
    pub view: View,
    /// Bumped after every write (see `crate::cache`).
    pub generation: Arc<MountGeneration>,
    /// Mount default lease TTL, seconds (0: system default).
    pub default_ttl: u64,
    /// Mount max lease TTL, seconds (0: system default).
    pub max_ttl: u64,
    /// The server's version, reported as the Vault version.
    pub server_version: String,
}

/// Refuses keys that could leave the view's prefix.
pub fn check_key(key: &str) -> Result<(), Status> {
    if key.starts_with('/') || key.split('/').any(|s| s == "..") {
        return Err(Status::invalid_argument(format!(
            "invalid storage key {key:?}"
        )));
    }
    Ok(())
}

fn ns(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX)
}

#[tonic::async_trait]
impl pb::storage_server::Storage for MountServices {
    async fn list(
        &self,
        req: Request<pb::StorageListArgs>,
    ) -> Result<Response<pb::StorageListReply>, Status> {
        let a = req.into_inner();
        check_key(&a.prefix)?;
        Ok(Response::new(match self.view.list(&a.prefix).await {
            Ok(keys) => pb::StorageListReply {
                keys,
                err: String::new(),
            },
            Err(e) => pb::StorageListReply {
                keys: vec![],
                err: e.to_string(),
            },
        }))
    }

    async fn list_page(
        &self,
        _req: Request<pb::StorageListPageArgs>,
    ) -> Result<Response<pb::StorageListReply>, Status> {
        // OpenBao's SDK falls back to List.
        Err(Status::unimplemented("lockbox does not page storage lists"))
    }

    async fn get(
        &self,
        req: Request<pb::StorageGetArgs>,
    ) -> Result<Response<pb::StorageGetReply>, Status> {
        let a = req.into_inner();
        check_key(&a.key)?;
        Ok(Response::new(match self.view.get(&a.key).await {
            Ok(value) => pb::StorageGetReply {
                entry: value.map(|value| pb::StorageEntry {
                    key: a.key,
                    value,
                    seal_wrap: false,
                }),
                err: String::new(),
            },
            Err(e) => pb::StorageGetReply {
                entry: None,
                err: e.to_string(),
            },
        }))
    }

    async fn put(
        &self,
        req: Request<pb::StoragePutArgs>,
    ) -> Result<Response<pb::StoragePutReply>, Status> {
        let entry = req
            .into_inner()
            .entry
            .ok_or_else(|| Status::invalid_argument("Put without an entry"))?;
        check_key(&entry.key)?;
        if entry.key.is_empty() {
            return Err(Status::invalid_argument("storage key is empty"));
        }
        let result = self.view.put(&entry.key, &entry.value).await;
        self.generation.bump();
        Ok(Response::new(pb::StoragePutReply {
            err: result.err().map(|e| e.to_string()).unwrap_or_default(),
            wal_index: None,
        }))
    }

    async fn delete(
        &self,
        req: Request<pb::StorageDeleteArgs>,
    ) -> Result<Response<pb::StorageDeleteReply>, Status> {
        let a = req.into_inner();
        check_key(&a.key)?;
        let result = self.view.delete(&a.key).await;
        self.generation.bump();
        Ok(Response::new(pb::StorageDeleteReply {
            err: result.err().map(|e| e.to_string()).unwrap_or_default(),
            wal_index: None,
        }))
    }

    async fn is_transactional(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::StorageIsTransactionalReply>, Status> {
        Ok(Response::new(pb::StorageIsTransactionalReply {
            transactional: false,
        }))
    }

    async fn begin_read_only_tx(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::StorageBeginTxReply>, Status> {
        Err(Status::unimplemented(
            "lockbox storage is not transactional",
        ))
    }

    async fn begin_tx(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::StorageBeginTxReply>, Status> {
        Err(Status::unimplemented(
            "lockbox storage is not transactional",
        ))
    }

    async fn commit(
        &self,
        _req: Request<pb::StorageCommitTxArgs>,
    ) -> Result<Response<pb::StorageCommitTxReply>, Status> {
        Err(Status::unimplemented(
            "lockbox storage is not transactional",
        ))
    }

    async fn rollback(
        &self,
        _req: Request<pb::StorageRollbackTxArgs>,
    ) -> Result<Response<pb::StorageRollbackTxReply>, Status> {
        Err(Status::unimplemented(
            "lockbox storage is not transactional",
        ))
    }
}

#[tonic::async_trait]
impl pb::system_view_server::SystemView for MountServices {
    async fn default_lease_ttl(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::TtlReply>, Status> {
        let ttl = match self.default_ttl {
            0 => SYSTEM_DEFAULT_TTL_SECS,
            t => t,
        };
        Ok(Response::new(pb::TtlReply { ttl: ns(ttl) }))
    }

    async fn max_lease_ttl(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::TtlReply>, Status> {
        let ttl = match self.max_ttl {
            0 => SYSTEM_DEFAULT_TTL_SECS,
            t => t,
        };
        Ok(Response::new(pb::TtlReply { ttl: ns(ttl) }))
    }

    async fn tainted(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::TaintedReply>, Status> {
        Ok(Response::new(pb::TaintedReply { tainted: false }))
    }

    async fn caching_disabled(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::CachingDisabledReply>, Status> {
        Ok(Response::new(pb::CachingDisabledReply { disabled: false }))
    }

    async fn replication_state(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::ReplicationStateReply>, Status> {
        // No replication: no state bit set (neither primary, secondary nor
        // standby), so plugins act as on a standalone server.
        Ok(Response::new(pb::ReplicationStateReply { state: 0 }))
    }

    async fn response_wrap_data(
        &self,
        _req: Request<pb::ResponseWrapDataArgs>,
    ) -> Result<Response<pb::ResponseWrapDataReply>, Status> {
        Ok(Response::new(pb::ResponseWrapDataReply {
            wrap_info: None,
            err: "response wrapping is not supported by lockbox".into(),
        }))
    }

    async fn mlock_enabled(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::MlockEnabledReply>, Status> {
        Ok(Response::new(pb::MlockEnabledReply { enabled: false }))
    }

    async fn local_mount(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::LocalMountReply>, Status> {
        // lockbox has no replication, so no mount is marked local.
        Ok(Response::new(pb::LocalMountReply { local: false }))
    }

    async fn entity_info(
        &self,
        _req: Request<pb::EntityInfoArgs>,
    ) -> Result<Response<pb::EntityInfoReply>, Status> {
        // No identity store: as Vault for a token without an entity.
        Ok(Response::new(pb::EntityInfoReply {
            entity: None,
            err: String::new(),
        }))
    }

    async fn plugin_env(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::PluginEnvReply>, Status> {
        Ok(Response::new(pb::PluginEnvReply {
            plugin_environment: Some(vlogical::PluginEnvironment {
                vault_version: self.server_version.clone(),
                ..Default::default()
            }),
            err: String::new(),
        }))
    }

    async fn groups_for_entity(
        &self,
        _req: Request<pb::EntityInfoArgs>,
    ) -> Result<Response<pb::GroupsForEntityReply>, Status> {
        Ok(Response::new(pb::GroupsForEntityReply {
            groups: vec![],
            err: String::new(),
        }))
    }

    async fn generate_password_from_policy(
        &self,
        req: Request<pb::GeneratePasswordFromPolicyRequest>,
    ) -> Result<Response<pb::GeneratePasswordFromPolicyReply>, Status> {
        Err(Status::unimplemented(format!(
            "password policy {:?}: lockbox does not support password policies (sys/policies/password)",
            req.into_inner().policy_name
        )))
    }

    async fn cluster_info(
        &self,
        _req: Request<pb::Empty>,
    ) -> Result<Response<pb::ClusterInfoReply>, Status> {
        Ok(Response::new(pb::ClusterInfoReply {
            cluster_name: "lockbox".into(),
            cluster_id: String::new(),
            err: String::new(),
        }))
    }

    async fn generate_identity_token(
        &self,
        _req: Request<pb::GenerateIdentityTokenRequest>,
    ) -> Result<Response<pb::GenerateIdentityTokenResponse>, Status> {
        Err(Status::unimplemented(
            "lockbox does not issue plugin identity tokens",
        ))
    }

    async fn get_rotation_information(
        &self,
        _req: Request<pb::RotationInfoRequest>,
    ) -> Result<Response<pb::RotationInfoReply>, Status> {
        Err(Status::unimplemented("lockbox has no rotation manager"))
    }

    async fn register_rotation_job(
        &self,
        _req: Request<pb::RegisterRotationJobRequest>,
    ) -> Result<Response<pb::RegisterRotationJobResponse>, Status> {
        Err(Status::unimplemented("lockbox has no rotation manager"))
    }

    async fn register_rotation_job_with_response(
        &self,
        _req: Request<pb::RegisterRotationJobRequest>,
    ) -> Result<Response<pb::RegisterRotationJobWithResponseReply>, Status> {
        Err(Status::unimplemented("lockbox has no rotation manager"))
    }

    async fn deregister_rotation_job(
        &self,
        _req: Request<pb::DeregisterRotationJobRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        Err(Status::unimplemented("lockbox has no rotation manager"))
    }
}

/// Accepts and drops events (lockbox has no event bus yet).
pub struct DropEvents;

#[tonic::async_trait]
impl pb::events_server::Events for DropEvents {
    async fn send_event(
        &self,
        _req: Request<pb::SendEventRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        Ok(Response::new(pb::Empty {}))
    }
}

#[tonic::async_trait]
impl pb::observations_server::Observations for DropEvents {
    async fn record_observation(
        &self,
        _req: Request<pb::RecordObservationRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        Ok(Response::new(pb::Empty {}))
    }
}
