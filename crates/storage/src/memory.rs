//! The in-memory backend used by dev mode and tests.

use super::{Physical, StorageError, children};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::RwLock;

/// Keys and values in a `BTreeMap`; lost when the process exits.
#[derive(Default)]
pub struct InMemory {
    map: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl InMemory {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-written
        // (every operation is a single map call), so poisoning is ignored.
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Every stored value, for tests that look for plaintext.
    pub fn dump(&self) -> Vec<(String, Vec<u8>)> {
        self.read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[async_trait]
impl Physical for InMemory {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.read().get(key).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.write().insert(key.to_string(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.write().remove(key);
        Ok(())
    }

    async fn transaction(&self, ops: Vec<crate::TxnOp>) -> Result<(), StorageError> {
        let mut map = self.write();
        for op in ops {
            match op {
                crate::TxnOp::Put { key, value } => {
                    map.insert(key, value);
                }
                crate::TxnOp::Delete { key } => {
                    map.remove(&key);
                }
            }
        }
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let map = self.read();
        let keys = map
            .range(prefix.to_string()..)
            .map(|(k, _)| k.as_str())
            .take_while(|k| k.starts_with(prefix));
        Ok(children(prefix, keys))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
        let mut map = self.write();
        let doomed: Vec<String> = map
            .range(prefix.to_string()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for key in &doomed {
            map.remove(key);
        }
        Ok(doomed.len())
    }

    fn kind(&self) -> &'static str {
        "inmem"
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn contract() {
        super::super::contract::check(&super::InMemory::new()).await;
    }
}
