//! The policy store: ACL policies kept in the barrier under `sys/policy/`,
//! parsed once and cached, and compiled ACLs cached per policy set.

use crate::barrier::Barrier;
use crate::logical::RequestError;
use crate::policy::{self, Acl, Policy};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

const PREFIX: &str = "sys/policy/";

#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    policy: String,
}

/// Policies by name plus a cache of compiled ACLs.
pub struct PolicyStore {
    barrier: Arc<Barrier>,
    cache: RwLock<Cache>,
    /// Serializes writes (put, delete): each holds it across its storage
    /// write and its cache update, so the cache ends in storage's order.
    writes: tokio::sync::Mutex<()>,
}

/// What the store caches, with the generation that guards it.
///
/// Readers fill the cache after an await (a storage read), so a write can
/// land in between: a reader that computed from older storage must not
/// store its result. Every write bumps `generation` under the write lock
/// of this struct; a reader inserts only if the generation it saw before
/// reading storage is still current.
#[derive(Default)]
struct Cache {
    generation: u64,
    parsed: HashMap<String, Arc<(String, Policy)>>,
    acls: HashMap<Vec<String>, Arc<Acl>>,
}

/// The canonical spelling of a policy name. Policy names are
/// case-insensitive, as in Vault: the canonical form is lower case. Nothing
/// else is rewritten: surrounding whitespace and characters outside
/// letters, digits, `-`, `_`, `.` and `@` are refused.
///
/// The request pipeline applies this once, to the path of
/// `sys/policies/acl/:name` and `sys/policy/:name`, before the ACL check,
/// so the ACL decision and the store always concern the same policy.
pub fn canonical_name(name: &str) -> Result<String, RequestError> {
    if name.is_empty() {
        return Err(RequestError::invalid("policy name is empty"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')))
    {
        return Err(RequestError::invalid(format!(
            "invalid policy name {name:?}: character {c:?} is not allowed (use letters, digits, '-', '_', '.', '@')"
        )));
    }
    Ok(name.to_ascii_lowercase())
}

/// Refuses a policy name that is not already canonical: the store never
/// rewrites a name it is given (that happens once, before the ACL check).
fn check_name(name: &str) -> Result<(), RequestError> {
    let canonical = canonical_name(name)?;
    if canonical != name {
        return Err(RequestError::invalid(format!(
            "policy name {name:?} is not in canonical form: policy names are lower case, use {canonical:?}"
        )));
    }
    Ok(())
}

impl PolicyStore {
    /// Opens the store; writes the `default` policy on first use.
    pub async fn open(barrier: Arc<Barrier>) -> Result<Self, RequestError> {
        let store = Self {
            barrier,
            cache: RwLock::new(Cache::default()),
            writes: tokio::sync::Mutex::new(()),
        };
        if store.get("default").await?.is_none() {
            store.put("default", policy::DEFAULT_POLICY).await?;
        }
        Ok(store)
    }

    fn cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn cache_mut(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads a policy's source text.
    pub async fn get(&self, name: &str) -> Result<Option<Arc<(String, Policy)>>, RequestError> {
        let generation = {
            let cache = self.cache();
            if let Some(p) = cache.parsed.get(name) {
                return Ok(Some(p.clone()));
            }
            cache.generation
        };
        let Some(raw) = self.barrier.get(&format!("{PREFIX}{name}")).await? else {
            return Ok(None);
        };
        let stored: Stored = serde_json::from_slice(&raw)
            .map_err(|e| RequestError::Internal(format!("stored policy {name} is corrupt: {e}")))?;
        let parsed = policy::parse(name, &stored.policy).map_err(|e| {
            RequestError::Internal(format!("stored policy {name} no longer parses: {e}"))
        })?;
        let entry = Arc::new((stored.policy, parsed));
        let mut cache = self.cache_mut();
        if cache.generation == generation {
            cache.parsed.insert(name.to_string(), entry.clone());
        }
        Ok(Some(entry))
    }

    /// Parses and stores a policy under its canonical name.
    pub async fn put(&self, name: &str, text: &str) -> Result<(), RequestError> {
        check_name(name)?;
        if name == "root" {
            return Err(RequestError::invalid(
                "cannot update the root policy: it is built in",
            ));
        }
        let parsed = policy::parse(name, text).map_err(|e| RequestError::invalid(e.to_string()))?;
        let raw = serde_json::to_vec(&Stored {
            name: name.to_string(),
            policy: text.to_string(),
        })
        .map_err(|e| RequestError::Internal(e.to_string()))?;
        let _write = self.writes.lock().await;
        self.barrier.put(&format!("{PREFIX}{name}"), &raw).await?;
        let mut cache = self.cache_mut();
        cache.generation += 1;
        cache
            .parsed
            .insert(name.to_string(), Arc::new((text.to_string(), parsed)));
        cache.acls.clear();
        Ok(())
    }

    /// Deletes a policy (by its canonical name).
    pub async fn delete(&self, name: &str) -> Result<(), RequestError> {
        check_name(name)?;
        if name == "root" || name == "default" {
            return Err(RequestError::invalid(format!(
                "cannot delete {name} policy"
            )));
        }
        let _write = self.writes.lock().await;
        self.barrier.delete(&format!("{PREFIX}{name}")).await?;
        let mut cache = self.cache_mut();
        cache.generation += 1;
        cache.parsed.remove(name);
        cache.acls.clear();
        Ok(())
    }

    /// Names of all policies, including `root`.
    pub async fn list(&self) -> Result<Vec<String>, RequestError> {
        let mut names = self.barrier.list(PREFIX).await?;
        names.push("root".into());
        names.sort();
        Ok(names)
    }

    /// The compiled ACL for a token's policies. Unknown policy names grant
    /// nothing (a token may outlive a policy).
    pub async fn acl(&self, names: &[String]) -> Result<Arc<Acl>, RequestError> {
        let generation = {
            let cache = self.cache();
            if let Some(acl) = cache.acls.get(names) {
                return Ok(acl.clone());
            }
            cache.generation
        };
        let acl = if names.iter().any(|n| n == "root") {
            Acl::root()
        } else {
            let mut policies = Vec::new();
            for name in names {
                if let Some(p) = self.get(name).await? {
                    policies.push(p);
                }
            }
            Acl::new(policies.iter().map(|p| &p.1))
        };
        let acl = Arc::new(acl);
        let mut cache = self.cache_mut();
        if cache.generation == generation {
            cache.acls.insert(names.to_vec(), acl.clone());
        }
        Ok(acl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use lockbox_storage::{InMemory, Physical, StorageError};
    use tokio::sync::{Notify, Semaphore};

    /// In-memory storage whose next read of one key waits until released:
    /// a reader can be held between its storage read and its cache insert
    /// while a writer runs.
    struct Gated {
        inner: InMemory,
        key: std::sync::Mutex<Option<String>>,
        reached: Notify,
        release: Semaphore,
    }

    #[async_trait]
    impl Physical for Gated {
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
            // Read first, then wait: the reader holds a stale value.
            let value = self.inner.get(key).await;
            let gated = {
                let mut k = self.key.lock().unwrap_or_else(|e| e.into_inner());
                if k.as_deref().is_some_and(|g| key.ends_with(g)) {
                    *k = None;
                    true
                } else {
                    false
                }
            };
            if gated {
                self.reached.notify_one();
                let _ = self.release.acquire().await.map(|p| p.forget());
            }
            value
        }
        async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
            self.inner.put(key, value).await
        }
        async fn delete(&self, key: &str) -> Result<(), StorageError> {
            self.inner.delete(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
            self.inner.list(prefix).await
        }
        async fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
            self.inner.delete_prefix(prefix).await
        }
        fn kind(&self) -> &'static str {
            "gated"
        }
    }

    const OPEN: &str = r#"path "secret/*" { capabilities = ["read"] }"#;
    const CLOSED: &str = r#"path "secret/*" { capabilities = ["deny"] }"#;

    /// Issue 10, finding 7: an ACL computed from a policy read before a
    /// concurrent write must not be cached after that write (it would grant
    /// the old rules until the next policy change).
    #[tokio::test]
    async fn a_policy_write_during_an_acl_computation_is_not_undone_by_the_cache() {
        for change in ["update", "delete"] {
            let gated = Arc::new(Gated {
                inner: InMemory::new(),
                key: std::sync::Mutex::new(None),
                reached: Notify::new(),
                release: Semaphore::new(0),
            });
            let init = Barrier::initialize(gated.clone() as Arc<dyn Physical>, 1, 1)
                .await
                .expect("init");
            let store = Arc::new(
                PolicyStore::open(Arc::new(init.barrier))
                    .await
                    .expect("open"),
            );
            store.put("p", OPEN).await.expect("put");
            // Drop the parsed cache so the next ACL reads storage.
            store.cache_mut().parsed.clear();
            *gated.key.lock().unwrap_or_else(|e| e.into_inner()) = Some("sys/policy/p".into());
            let names = vec!["p".to_string()];
            let reader = {
                let store = store.clone();
                let names = names.clone();
                tokio::spawn(async move { store.acl(&names).await })
            };
            gated.reached.notified().await;
            // The reader holds the old policy; now the policy changes.
            match change {
                "update" => store.put("p", CLOSED).await.expect("update"),
                _ => store.delete("p").await.expect("delete"),
            }
            gated.release.add_permits(1);
            let stale = reader.await.expect("join").expect("acl");
            assert!(
                stale
                    .capabilities("secret/x")
                    .allows(crate::policy::Capability::Read),
                "the racing reader computed from the old policy"
            );
            let now = store.acl(&names).await.expect("acl");
            assert!(
                !now.capabilities("secret/x")
                    .allows(crate::policy::Capability::Read),
                "{change}: the cache kept an ACL computed before the change"
            );
            assert!(
                store
                    .get("p")
                    .await
                    .expect("get")
                    .is_none_or(|p| p.0 == CLOSED)
            );
        }
    }

    #[test]
    fn names_are_canonical_or_refused() {
        assert_eq!(canonical_name("PolAdmin").expect("valid"), "poladmin");
        for bad in [
            " admin",
            "admin ",
            "ad min",
            "",
            "a\tb",
            "p\u{43e}l",
            "a/b",
            "a%20",
        ] {
            assert!(canonical_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("poladmin").is_ok());
        let e = check_name("POLADMIN").expect_err("not canonical");
        assert!(e.to_string().contains("\"poladmin\""), "{e}");
    }
}
