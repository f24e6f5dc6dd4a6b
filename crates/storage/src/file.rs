//! The persistent backend: one redb database file in the data directory.

use super::{Physical, StorageError, children};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("lockbox");
/// The database file's name inside the data directory.
pub const DB_FILE: &str = "lockbox.redb";

/// An embedded, crash-safe key/value store.
///
/// Writes run on tokio's blocking pool because a commit waits for fsync.
pub struct FileBackend {
    db: Arc<Database>,
    path: PathBuf,
}

fn engine(operation: &'static str, key: &str) -> impl FnOnce(redb::Error) -> StorageError + use<> {
    let key = key.to_string();
    move |e| StorageError::Engine {
        operation,
        key,
        source: Box::new(e),
    }
}

impl FileBackend {
    /// Opens (or creates) the database in `dir`. A new `dir` is created with
    /// mode 0700; an existing one is tightened to 0700 when this process
    /// owns it, and left as it is otherwise (a volume root owned by root,
    /// for example, which the process may write to but not chmod). The
    /// database file is always 0600.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let open_err = |e: Box<dyn std::error::Error + Send + Sync>| StorageError::Open {
            path: dir.display().to_string(),
            source: e,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            if dir.exists() {
                match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                        tracing::debug!(dir = %dir.display(), "not the owner: leaving the mode of the data directory");
                    }
                    Err(e) => return Err(open_err(Box::new(e))),
                }
            } else {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| open_err(Box::new(e)))?;
            }
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(dir).map_err(|e| open_err(Box::new(e)))?;
        let path = dir.join(DB_FILE);
        let db = Database::create(&path).map_err(|e| open_err(Box::new(e)))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| open_err(Box::new(e)))?;
        }
        // Make sure the table exists so readers never see "table not found".
        let txn = db.begin_write().map_err(|e| open_err(Box::new(e)))?;
        txn.open_table(TABLE).map_err(|e| open_err(Box::new(e)))?;
        txn.commit().map_err(|e| open_err(Box::new(e)))?;
        Ok(Self {
            db: Arc::new(db),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StorageError::Task {
                operation,
                message: e.to_string(),
            })?
    }
}

#[async_trait]
impl Physical for FileBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        // Reads are served from redb's page cache and take microseconds, so
        // they run inline instead of paying for a blocking-pool hop.
        let err = |e: redb::Error| engine("get", key)(e);
        let txn = self.db.begin_read().map_err(|e| err(e.into()))?;
        let table = txn.open_table(TABLE).map_err(|e| err(e.into()))?;
        let value = table.get(key).map_err(|e| err(e.into()))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        let key = key.to_string();
        self.blocking("put", move |db| {
            let err = |e: redb::Error| engine("put", &key)(e);
            let txn = db.begin_write().map_err(|e| err(e.into()))?;
            {
                let mut table = txn.open_table(TABLE).map_err(|e| err(e.into()))?;
                table
                    .insert(key.as_str(), value.as_slice())
                    .map_err(|e| err(e.into()))?;
            }
            txn.commit().map_err(|e| err(e.into()))
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let key = key.to_string();
        self.blocking("delete", move |db| {
            let err = |e: redb::Error| engine("delete", &key)(e);
            let txn = db.begin_write().map_err(|e| err(e.into()))?;
            {
                let mut table = txn.open_table(TABLE).map_err(|e| err(e.into()))?;
                table.remove(key.as_str()).map_err(|e| err(e.into()))?;
            }
            txn.commit().map_err(|e| err(e.into()))
        })
        .await
    }

    /// One redb write transaction: fsync'd at commit, nothing of it
    /// visible or durable before.
    async fn transaction(&self, ops: Vec<crate::TxnOp>) -> Result<(), StorageError> {
        let first = ops.first().map(|o| o.key().to_string()).unwrap_or_default();
        self.blocking("transaction", move |db| {
            let err = |e: redb::Error| engine("transaction", &first)(e);
            let txn = db.begin_write().map_err(|e| err(e.into()))?;
            {
                let mut table = txn.open_table(TABLE).map_err(|e| err(e.into()))?;
                for op in &ops {
                    match op {
                        crate::TxnOp::Put { key, value } => {
                            table
                                .insert(key.as_str(), value.as_slice())
                                .map_err(|e| err(e.into()))?;
                        }
                        crate::TxnOp::Delete { key } => {
                            table.remove(key.as_str()).map_err(|e| err(e.into()))?;
                        }
                    }
                }
            }
            txn.commit().map_err(|e| err(e.into()))
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let err = |e: redb::Error| engine("list", prefix)(e);
        let txn = self.db.begin_read().map_err(|e| err(e.into()))?;
        let table = txn.open_table(TABLE).map_err(|e| err(e.into()))?;
        let mut keys = Vec::new();
        for item in table.range(prefix..).map_err(|e| err(e.into()))? {
            let (k, _) = item.map_err(|e| err(e.into()))?;
            let k = k.value();
            if !k.starts_with(prefix) {
                break;
            }
            keys.push(k.to_string());
        }
        Ok(children(prefix, keys.iter().map(String::as_str)))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
        let prefix = prefix.to_string();
        self.blocking("delete_prefix", move |db| {
            let err = |e: redb::Error| engine("delete_prefix", &prefix)(e);
            let txn = db.begin_write().map_err(|e| err(e.into()))?;
            let removed;
            {
                let mut table = txn.open_table(TABLE).map_err(|e| err(e.into()))?;
                let mut doomed = Vec::new();
                for item in table.range(prefix.as_str()..).map_err(|e| err(e.into()))? {
                    let (k, _) = item.map_err(|e| err(e.into()))?;
                    let k = k.value();
                    if !k.starts_with(prefix.as_str()) {
                        break;
                    }
                    doomed.push(k.to_string());
                }
                for k in &doomed {
                    table.remove(k.as_str()).map_err(|e| err(e.into()))?;
                }
                removed = doomed.len();
            }
            txn.commit().map_err(|e| err(e.into()))?;
            Ok(removed)
        })
        .await
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn directory_is_private_and_the_database_file_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("a/b");
        FileBackend::open(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&fresh.join(DB_FILE)), 0o600);
        let existing = root.path().join("open");
        std::fs::create_dir(&existing).unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(FileBackend::open(&existing).unwrap());
        assert_eq!(mode(&existing), 0o700, "an owned directory is tightened");
        // Reopening keeps working and keeps the modes.
        FileBackend::open(&existing).unwrap();
        assert_eq!(mode(&existing.join(DB_FILE)), 0o600);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn contract() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::open(dir.path()).unwrap();
        super::super::contract::check(&backend).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let backend = FileBackend::open(dir.path()).unwrap();
            backend.put("k", b"v".to_vec()).await.unwrap();
        }
        let backend = FileBackend::open(dir.path()).unwrap();
        assert_eq!(backend.get("k").await.unwrap(), Some(b"v".to_vec()));
    }
}
