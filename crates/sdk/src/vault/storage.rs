//! A mount's storage under a Vault-protocol host: the host's `pb.Storage`
//! service on the broker connection of that mount's `Setup`. Keys are
//! already relative to the mount on the host's side, so the mount id the
//! SDK's [`Storage`](crate::Storage) passes is not sent.

use crate::error::StorageError;
use crate::storage::Transport;
use lockbox_vault_plugin_proto::pb;
use pb::storage_client::StorageClient;
use tonic::transport::Channel;

/// The host answered with an error in the reply (Vault's storage errors
/// travel as text, not as gRPC statuses) or the call failed.
fn failed(op: &'static str, key: &str, code: tonic::Code, message: String) -> StorageError {
    StorageError::Rpc {
        op,
        key: key.to_string(),
        code,
        message,
    }
}

fn status(op: &'static str, key: &str, s: tonic::Status) -> StorageError {
    failed(op, key, s.code(), s.message().to_string())
}

/// Checks a reply's `err` text.
fn check(op: &'static str, key: &str, err: String) -> Result<(), StorageError> {
    if err.is_empty() {
        Ok(())
    } else {
        Err(failed(op, key, tonic::Code::Unknown, err))
    }
}

/// `pb.Storage` of one mount.
#[derive(Clone)]
pub(crate) struct BrokerStorage {
    client: StorageClient<Channel>,
}

impl BrokerStorage {
    pub(crate) fn new(channel: Channel) -> Self {
        BrokerStorage {
            client: StorageClient::new(channel)
                .max_decoding_message_size(super::MAX_MESSAGE)
                .max_encoding_message_size(super::MAX_MESSAGE),
        }
    }
}

#[async_trait::async_trait]
impl Transport for BrokerStorage {
    async fn get(&self, _mount_id: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let reply = self
            .client
            .clone()
            .get(pb::StorageGetArgs {
                key: key.into(),
                txn: String::new(),
            })
            .await
            .map_err(|s| status("get", key, s))?
            .into_inner();
        check("get", key, reply.err)?;
        Ok(reply.entry.map(|e| e.value))
    }

    async fn put(&self, _mount_id: &str, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        let reply = self
            .client
            .clone()
            .put(pb::StoragePutArgs {
                entry: Some(pb::StorageEntry {
                    key: key.into(),
                    value,
                    seal_wrap: false,
                }),
                txn: String::new(),
            })
            .await
            .map_err(|s| status("put", key, s))?
            .into_inner();
        check("put", key, reply.err)
    }

    async fn delete(&self, _mount_id: &str, key: &str) -> Result<(), StorageError> {
        let reply = self
            .client
            .clone()
            .delete(pb::StorageDeleteArgs {
                key: key.into(),
                txn: String::new(),
            })
            .await
            .map_err(|s| status("delete", key, s))?
            .into_inner();
        check("delete", key, reply.err)
    }

    async fn list(&self, _mount_id: &str, prefix: &str) -> Result<Vec<String>, StorageError> {
        let reply = self
            .client
            .clone()
            .list(pb::StorageListArgs {
                prefix: prefix.into(),
                txn: String::new(),
            })
            .await
            .map_err(|s| status("list", prefix, s))?
            .into_inner();
        check("list", prefix, reply.err)?;
        Ok(reply.keys)
    }
}
