//! Physical storage: the bytes-on-disk layer below the encryption barrier.
//!
//! This module owns the [`Physical`] trait (get, put, delete, list by prefix,
//! delete a whole prefix) and its two backends:
//!
//! * [`InMemory`]: a `BTreeMap` behind a lock, for dev mode and unit tests.
//! * [`FileBackend`]: an embedded [redb](https://docs.rs/redb) database in a
//!   data directory. Every write is one redb transaction committed with
//!   `Durability::Immediate` (fsync before the call returns), so a write that
//!   was acknowledged to a client survives `kill -9` or power loss.
//!
//! Nothing here knows about encryption: everything stored through this layer
//! by the rest of lockbox has already passed through the core's barrier (`lockbox_core::barrier`), so
//! these backends only ever see ciphertext (plus the non-secret seal
//! configuration).
//!
//! Keys are `/`-separated strings. [`Physical::list`] follows Vault's
//! semantics: it returns the immediate children of a prefix, with nested
//! "folders" reported once with a trailing `/`.

mod file;
mod memory;

pub use file::FileBackend;
pub use memory::InMemory;

use async_trait::async_trait;

/// Errors of the physical storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Opening or creating the database file failed.
    #[error("failed to open storage at {path}: {source}")]
    Open {
        /// The database file.
        path: String,
        /// What redb reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A read, write or commit failed inside the storage engine.
    #[error("storage {operation} failed for key {key:?}: {source}")]
    Engine {
        /// Which operation failed (`get`, `put`, ...).
        operation: &'static str,
        /// The key or prefix involved.
        key: String,
        /// What the engine reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A write was refused because this node does not hold the high
    /// availability leadership (it is a standby, or another node took the
    /// leadership over): nothing was written.
    #[error("storage {operation} refused for key {key:?}: {reason}")]
    Fenced {
        /// Which operation was refused (`put`, `delete`, `delete_prefix`).
        operation: &'static str,
        /// The key or prefix involved.
        key: String,
        /// Why, and what to do (send writes to the active node).
        reason: String,
    },
    /// A blocking storage task panicked or was cancelled.
    #[error("storage task for {operation} did not complete: {message}")]
    Task {
        /// Which operation was running.
        operation: &'static str,
        /// The join error.
        message: String,
    },
}

/// A key/value store that persists opaque bytes.
///
/// Implementations must be safe to call concurrently. `put` must be durable
/// when it returns for backends that claim persistence.
#[async_trait]
pub trait Physical: Send + Sync + 'static {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Writes one key, replacing any previous value.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError>;
    /// Deletes one key; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Lists the immediate children of `prefix` (which is empty or ends in `/`).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// Deletes every key that starts with `prefix`, atomically where the
    /// backend can. Returns how many keys were removed.
    async fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError>;
    /// A short name of the backend for `sys/seal-status` (`inmem`, `file`).
    fn kind(&self) -> &'static str;
}

/// Reduces a sorted run of keys under `prefix` to Vault-style list entries:
/// direct children as-is, deeper keys as `folder/` once.
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
        if entry.is_empty() {
            continue;
        }
        if out.last().map(String::as_str) != Some(entry) {
            out.push(entry.to_string());
        }
    }
    out
}

#[cfg(any(test, feature = "contract"))]
pub mod contract {
    //! A behavioural contract every backend must pass (also for backends in
    //! other crates, with the `contract` feature). Panics on a violation.
    use super::Physical;

    /// Runs the contract on an empty `backend`.
    pub async fn check(backend: &dyn Physical) {
        assert_eq!(backend.get("a").await.unwrap(), None);
        backend.put("a", b"1".to_vec()).await.unwrap();
        backend.put("b/c", b"2".to_vec()).await.unwrap();
        backend.put("b/d/e", b"3".to_vec()).await.unwrap();
        backend.put("b/d/f", b"4".to_vec()).await.unwrap();
        backend.put("bz", b"5".to_vec()).await.unwrap();
        assert_eq!(backend.get("a").await.unwrap(), Some(b"1".to_vec()));
        backend.put("a", b"9".to_vec()).await.unwrap();
        assert_eq!(backend.get("a").await.unwrap(), Some(b"9".to_vec()));
        assert_eq!(backend.list("").await.unwrap(), vec!["a", "b/", "bz"]);
        assert_eq!(backend.list("b/").await.unwrap(), vec!["c", "d/"]);
        assert_eq!(backend.list("b/d/").await.unwrap(), vec!["e", "f"]);
        assert!(backend.list("nope/").await.unwrap().is_empty());
        backend.delete("a").await.unwrap();
        backend.delete("a").await.unwrap();
        assert_eq!(backend.get("a").await.unwrap(), None);
        assert_eq!(backend.delete_prefix("b/").await.unwrap(), 3);
        assert_eq!(backend.list("").await.unwrap(), vec!["bz"]);
        assert_eq!(backend.get("bz").await.unwrap(), Some(b"5".to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::children;

    #[test]
    fn children_collapses_folders() {
        let keys = ["p/a", "p/b/c", "p/b/d", "p/e/", "q"];
        assert_eq!(children("p/", keys.iter().copied()), vec!["a", "b/", "e/"]);
    }
}
