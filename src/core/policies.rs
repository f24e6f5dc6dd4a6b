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
    parsed: RwLock<HashMap<String, Arc<(String, Policy)>>>,
    acls: RwLock<HashMap<Vec<String>, Arc<Acl>>>,
}

/// Validates a policy name: lower-case letters, digits, `-`, `_`, `.`, `/`.
pub fn normalize_name(name: &str) -> Result<String, RequestError> {
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(RequestError::invalid("policy name is empty"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')))
    {
        return Err(RequestError::invalid(format!(
            "invalid policy name {name:?}: character {c:?} is not allowed (use letters, digits, '-', '_', '.')"
        )));
    }
    Ok(name)
}

impl PolicyStore {
    /// Opens the store; writes the `default` policy on first use.
    pub async fn open(barrier: Arc<Barrier>) -> Result<Self, RequestError> {
        let store = Self {
            barrier,
            parsed: RwLock::new(HashMap::new()),
            acls: RwLock::new(HashMap::new()),
        };
        if store.get("default").await?.is_none() {
            store.put("default", policy::DEFAULT_POLICY).await?;
        }
        Ok(store)
    }

    /// Reads a policy's source text.
    pub async fn get(&self, name: &str) -> Result<Option<Arc<(String, Policy)>>, RequestError> {
        if let Some(p) = self
            .parsed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(Some(p.clone()));
        }
        let Some(raw) = self.barrier.get(&format!("{PREFIX}{name}")).await? else {
            return Ok(None);
        };
        let stored: Stored = serde_json::from_slice(&raw)
            .map_err(|e| RequestError::Internal(format!("stored policy {name} is corrupt: {e}")))?;
        let parsed = policy::parse(name, &stored.policy).map_err(|e| {
            RequestError::Internal(format!("stored policy {name} no longer parses: {e}"))
        })?;
        let entry = Arc::new((stored.policy, parsed));
        self.parsed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), entry.clone());
        Ok(Some(entry))
    }

    /// Parses and stores a policy.
    pub async fn put(&self, name: &str, text: &str) -> Result<(), RequestError> {
        let name = normalize_name(name)?;
        if name == "root" {
            return Err(RequestError::invalid(
                "cannot update the root policy: it is built in",
            ));
        }
        let parsed =
            policy::parse(&name, text).map_err(|e| RequestError::invalid(e.to_string()))?;
        let raw = serde_json::to_vec(&Stored {
            name: name.clone(),
            policy: text.to_string(),
        })
        .map_err(|e| RequestError::Internal(e.to_string()))?;
        self.barrier.put(&format!("{PREFIX}{name}"), &raw).await?;
        self.parsed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, Arc::new((text.to_string(), parsed)));
        self.acls.write().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(())
    }

    /// Deletes a policy.
    pub async fn delete(&self, name: &str) -> Result<(), RequestError> {
        let name = normalize_name(name)?;
        if name == "root" || name == "default" {
            return Err(RequestError::invalid(format!(
                "cannot delete {name} policy"
            )));
        }
        self.barrier.delete(&format!("{PREFIX}{name}")).await?;
        self.parsed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
        self.acls.write().unwrap_or_else(|e| e.into_inner()).clear();
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
        if let Some(acl) = self
            .acls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(names)
        {
            return Ok(acl.clone());
        }
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
        self.acls
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(names.to_vec(), acl.clone());
        Ok(acl)
    }
}
