//! The token store: creating, looking up, renewing and revoking tokens, and
//! the `auth/token/*` endpoints.
//!
//! Token IDs never reach storage, not even inside the barrier: entries are
//! keyed by `HMAC-SHA256(salt, id)`, where the salt is a random value kept in
//! the barrier. Layout under the barrier:
//!
//! ```text
//! sys/token/salt                         random HMAC key
//! sys/token/id/<hash>                    TokenEntry (JSON)
//! sys/token/accessor/<hmac(accessor)>    the token's hash
//! sys/token/parent/<parent>/<child>      parent→child index, for revoking trees
//! ```
//!
//! Entries are cached in memory (decrypted JSON is not re-parsed on every
//! request); the cache is updated on every write, and this process is the
//! only writer.

use crate::barrier::{Barrier, BarrierError};
use crate::logical::{Auth, Operation, Request, RequestError, Response, duration};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;
use zeroize::Zeroizing;

const SALT_PATH: &str = "sys/token/salt";
const ID_PREFIX: &str = "sys/token/id/";
const ACCESSOR_PREFIX: &str = "sys/token/accessor/";
const PARENT_PREFIX: &str = "sys/token/parent/";
/// Prefix of service tokens, like Vault's `hvs.`.
pub const TOKEN_PREFIX: &str = "lbs.";
const CACHE_LIMIT: usize = 100_000;

/// A stored token (without its ID).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenEntry {
    /// Non-secret handle for lookup and revocation by operators.
    pub accessor: String,
    /// Sorted policy names.
    pub policies: Vec<String>,
    /// Hash of the parent token; `None` for orphans.
    pub parent: Option<String>,
    /// The path that created the token (`auth/token/create`, `auth/token/root`).
    pub path: String,
    /// Free-form metadata.
    pub meta: Option<Map<String, Value>>,
    /// Display name (`token`, `root`, or `token-<name>`).
    pub display_name: String,
    /// Remaining uses; 0 means unlimited.
    pub num_uses: i64,
    /// Unix seconds.
    pub creation_time: i64,
    /// TTL at creation, seconds; 0 means no expiry.
    pub creation_ttl: u64,
    /// Unix seconds of expiry; `None` for never.
    pub expire_time: Option<i64>,
    /// Hard cap in seconds from creation; 0 means none.
    pub explicit_max_ttl: u64,
    /// Whether `renew` is allowed.
    pub renewable: bool,
    /// Unix seconds of the last renewal.
    pub issue_time: i64,
}

impl TokenEntry {
    fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    fn expired(&self, now: i64) -> bool {
        self.expire_time.is_some_and(|t| t <= now)
    }

    fn ttl_left(&self, now: i64) -> u64 {
        self.expire_time
            .map(|t| (t - now).max(0) as u64)
            .unwrap_or(0)
    }

    fn rfc3339(secs: i64) -> Value {
        OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .map(Value::String)
            .unwrap_or(Value::Null)
    }

    /// The `data` of a lookup response.
    pub fn lookup_data(&self, id: Option<&str>, now: i64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("accessor".into(), json!(self.accessor));
        m.insert("creation_time".into(), json!(self.creation_time));
        m.insert("creation_ttl".into(), json!(self.creation_ttl));
        m.insert("display_name".into(), json!(self.display_name));
        m.insert("entity_id".into(), json!(""));
        m.insert(
            "expire_time".into(),
            self.expire_time.map(Self::rfc3339).unwrap_or(Value::Null),
        );
        m.insert("explicit_max_ttl".into(), json!(self.explicit_max_ttl));
        m.insert("id".into(), json!(id.unwrap_or("")));
        m.insert("issue_time".into(), Self::rfc3339(self.issue_time));
        m.insert(
            "meta".into(),
            self.meta.clone().map(Value::Object).unwrap_or(Value::Null),
        );
        m.insert("num_uses".into(), json!(self.num_uses));
        m.insert("orphan".into(), json!(self.parent.is_none()));
        m.insert("path".into(), json!(self.path));
        m.insert("policies".into(), json!(self.policies));
        m.insert("renewable".into(), json!(self.renewable));
        m.insert("ttl".into(), json!(self.ttl_left(now)));
        m.insert("type".into(), json!("service"));
        m
    }

    fn auth(&self, id: &str, now: i64) -> Auth {
        Auth {
            client_token: id.to_string(),
            accessor: self.accessor.clone(),
            policies: self.policies.clone(),
            token_policies: self.policies.clone(),
            identity_policies: None,
            metadata: self.meta.clone(),
            lease_duration: self.ttl_left(now),
            renewable: self.renewable,
            entity_id: String::new(),
            token_type: "service".into(),
            orphan: self.parent.is_none(),
            mfa_requirement: None,
            num_uses: self.num_uses,
        }
    }
}

/// A token that passed lookup, as the request pipeline sees it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// HMAC of the ID.
    pub hash: String,
    /// The entry.
    pub entry: Arc<TokenEntry>,
}

/// Parameters of a token creation.
#[derive(Debug, Clone, Default)]
pub struct CreateParams {
    /// An explicit ID (root only).
    pub id: Option<String>,
    /// Requested policies; empty inherits the parent's.
    pub policies: Vec<String>,
    /// Metadata.
    pub meta: Option<Map<String, Value>>,
    /// Do not attach `default`.
    pub no_default_policy: bool,
    /// Create without a parent.
    pub orphan: bool,
    /// Renewable (default true).
    pub renewable: Option<bool>,
    /// TTL seconds (0: default).
    pub ttl: u64,
    /// Hard cap seconds (0: none).
    pub explicit_max_ttl: u64,
    /// Display name suffix.
    pub display_name: Option<String>,
    /// Number of uses (0: unlimited).
    pub num_uses: i64,
    /// Path recorded on the token.
    pub path: String,
}

/// The store.
pub struct TokenStore {
    barrier: Arc<Barrier>,
    salt: Zeroizing<Vec<u8>>,
    cache: RwLock<HashMap<String, Arc<TokenEntry>>>,
    /// System default TTL in seconds for tokens created without one.
    default_ttl: u64,
    /// System max TTL in seconds.
    max_ttl: u64,
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn bad_json(what: &str, e: serde_json::Error) -> RequestError {
    RequestError::Internal(format!("stored {what} is corrupt: {e}"))
}

impl TokenStore {
    /// Opens the store, creating the salt on first use.
    pub async fn open(
        barrier: Arc<Barrier>,
        default_ttl: u64,
        max_ttl: u64,
    ) -> Result<Self, BarrierError> {
        let salt = match barrier.get(SALT_PATH).await? {
            Some(s) => s,
            None => {
                let mut s = vec![0u8; 32];
                rand::thread_rng().fill(s.as_mut_slice());
                barrier.put(SALT_PATH, &s).await?;
                s
            }
        };
        Ok(Self {
            barrier,
            salt: Zeroizing::new(salt),
            cache: RwLock::new(HashMap::new()),
            default_ttl,
            max_ttl,
        })
    }

    fn hash(&self, value: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.salt)
            .expect("HMAC accepts keys of any length");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    async fn load(&self, hash: &str) -> Result<Option<Arc<TokenEntry>>, RequestError> {
        if let Some(e) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
        {
            return Ok(Some(e.clone()));
        }
        let Some(raw) = self.barrier.get(&format!("{ID_PREFIX}{hash}")).await? else {
            return Ok(None);
        };
        let entry: TokenEntry = serde_json::from_slice(&raw).map_err(|e| bad_json("token", e))?;
        let entry = Arc::new(entry);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(hash.to_string(), entry.clone());
        Ok(Some(entry))
    }

    async fn store(&self, hash: &str, entry: TokenEntry) -> Result<Arc<TokenEntry>, RequestError> {
        let raw = serde_json::to_vec(&entry).map_err(|e| RequestError::Internal(e.to_string()))?;
        self.barrier
            .put(&format!("{ID_PREFIX}{hash}"), &raw)
            .await?;
        let entry = Arc::new(entry);
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(hash.to_string(), entry.clone());
        Ok(entry)
    }

    /// Resolves a client token. Expired tokens are revoked and refused;
    /// unknown tokens are refused. Does not consume a use.
    pub async fn lookup(&self, id: &str) -> Result<Option<Resolved>, RequestError> {
        let hash = self.hash(id);
        let Some(entry) = self.load(&hash).await? else {
            return Ok(None);
        };
        if entry.expired(now()) {
            self.revoke_tree(&hash).await?;
            return Ok(None);
        }
        Ok(Some(Resolved { hash, entry }))
    }

    /// Consumes one use of a limited-use token, revoking it after the last.
    pub async fn use_once(&self, token: &Resolved) -> Result<(), RequestError> {
        if token.entry.num_uses == 0 {
            return Ok(());
        }
        let mut entry = (*token.entry).clone();
        entry.num_uses -= 1;
        if entry.num_uses <= 0 {
            // Revoke after this request: mark with -1 so lookups fail at once.
            self.revoke_tree(&token.hash).await
        } else {
            self.store(&token.hash, entry).await.map(|_| ())
        }
    }

    /// Creates a token under `parent` (or as a root token when `parent` is
    /// `None`, used by init and dev mode).
    pub async fn create(
        &self,
        parent: Option<&Resolved>,
        p: CreateParams,
    ) -> Result<(String, Arc<TokenEntry>), RequestError> {
        let parent_is_root = parent.is_none_or(|t| t.entry.is_root());
        if p.id.is_some() && !parent_is_root {
            return Err(RequestError::invalid(
                "root or sudo privileges required to specify a token id",
            ));
        }
        if p.orphan && !parent_is_root {
            return Err(RequestError::invalid(
                "root or sudo privileges required to create an orphan token",
            ));
        }
        let mut policies: Vec<String> = p
            .policies
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if policies.is_empty() {
            policies = match parent {
                Some(t) => t.entry.policies.clone(),
                None => vec!["root".into()],
            };
        } else if let Some(t) = parent
            && !t.entry.is_root()
        {
            let extra: Vec<&String> = policies
                .iter()
                .filter(|p| *p != "default" && !t.entry.policies.contains(p))
                .collect();
            if !extra.is_empty() {
                return Err(RequestError::invalid(format!(
                    "child policies must be subset of parent: the parent token does not have {}",
                    extra
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        if policies.iter().any(|p| p == "root") && !parent_is_root {
            return Err(RequestError::invalid(
                "root policy can only be granted by a root token",
            ));
        }
        if !p.no_default_policy && !policies.iter().any(|p| p == "root" || p == "default") {
            policies.push("default".into());
        }
        if p.no_default_policy {
            policies.retain(|p| p != "default");
        }
        policies.sort();
        policies.dedup();
        if p.num_uses < 0 {
            return Err(RequestError::invalid("num_uses cannot be negative"));
        }

        let is_root = policies.iter().any(|p| p == "root");
        let mut ttl = p.ttl;
        if ttl == 0 && !is_root {
            ttl = self.default_ttl;
        }
        if p.explicit_max_ttl > 0 && (ttl == 0 || ttl > p.explicit_max_ttl) {
            ttl = p.explicit_max_ttl;
        }
        if !is_root && self.max_ttl > 0 && ttl > self.max_ttl {
            ttl = self.max_ttl;
        }
        // A child never outlives its parent.
        let now = now();
        if let Some(parent_exp) = parent.and_then(|t| t.entry.expire_time) {
            let left = (parent_exp - now).max(0) as u64;
            if ttl == 0 || ttl > left {
                ttl = left;
            }
        }

        let id = match p.id {
            Some(id) if id.is_empty() => {
                return Err(RequestError::invalid("token id cannot be empty"));
            }
            Some(id) => id,
            None => format!("{TOKEN_PREFIX}{}", random_string(24)),
        };
        let hash = self.hash(&id);
        if self.load(&hash).await?.is_some() {
            return Err(RequestError::invalid("a token with that id already exists"));
        }
        let accessor = random_string(24);
        let display_name = match (&p.display_name, is_root && parent.is_none()) {
            (_, true) => "root".to_string(),
            (Some(n), _) if !n.is_empty() => format!("token-{n}"),
            _ => "token".to_string(),
        };
        let entry = TokenEntry {
            accessor: accessor.clone(),
            policies,
            parent: if p.orphan {
                None
            } else {
                parent.map(|t| t.hash.clone())
            },
            path: p.path,
            meta: p.meta,
            display_name,
            num_uses: p.num_uses,
            creation_time: now,
            creation_ttl: ttl,
            expire_time: if ttl == 0 {
                None
            } else {
                Some(now + ttl as i64)
            },
            explicit_max_ttl: p.explicit_max_ttl,
            renewable: p.renewable.unwrap_or(true) && ttl != 0,
            issue_time: now,
        };
        if let Some(parent_hash) = &entry.parent {
            self.barrier
                .put(&format!("{PARENT_PREFIX}{parent_hash}/{hash}"), b"")
                .await?;
        }
        self.barrier
            .put(
                &format!("{ACCESSOR_PREFIX}{}", self.hash(&accessor)),
                hash.as_bytes(),
            )
            .await?;
        let entry = self.store(&hash, entry).await?;
        Ok((id, entry))
    }

    /// Issues the token for a successful login on a credential mount.
    pub async fn login(
        &self,
        mount: &crate::core::mounts::MountEntry,
        path: &str,
        login: crate::logical::LoginAuth,
        mount_default_ttl: u64,
        mount_max_ttl: u64,
    ) -> Result<Auth, RequestError> {
        let mut ttl = if login.ttl == 0 {
            mount_default_ttl
        } else {
            login.ttl
        };
        let max = if login.max_ttl == 0 {
            mount_max_ttl
        } else {
            login.max_ttl.min(mount_max_ttl)
        };
        if max > 0 {
            ttl = ttl.min(max);
        }
        if login.policies.iter().any(|p| p == "root") {
            return Err(RequestError::Internal(format!(
                "auth method {} tried to issue a root token; refused",
                mount.path
            )));
        }
        let display = if login.display_name.is_empty() {
            mount.kind.clone()
        } else {
            login.display_name.clone()
        };
        let meta: Map<String, Value> = login
            .metadata
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        // An empty list must not fall through to the parentless default
        // (root); a login with no policies gets only `default`.
        let policies = if login.policies.is_empty() {
            vec!["default".to_string()]
        } else {
            login.policies
        };
        let params = CreateParams {
            policies,
            meta: if meta.is_empty() { None } else { Some(meta) },
            orphan: true,
            renewable: Some(login.renewable),
            ttl,
            explicit_max_ttl: max,
            num_uses: login.num_uses,
            path: format!("{}{path}", mount.path),
            ..Default::default()
        };
        let (id, entry) = self.create(None, params).await?;
        let mut entry_named = (*entry).clone();
        entry_named.display_name = display;
        let hash = self.hash(&id);
        let entry = self.store(&hash, entry_named).await?;
        Ok(entry.auth(&id, now()))
    }

    /// Revokes a token and, recursively, every token it created.
    pub async fn revoke_tree(&self, hash: &str) -> Result<(), RequestError> {
        let mut stack = vec![hash.to_string()];
        let mut order = Vec::new();
        while let Some(h) = stack.pop() {
            for child in self.barrier.list(&format!("{PARENT_PREFIX}{h}/")).await? {
                stack.push(child.trim_end_matches('/').to_string());
            }
            order.push(h);
        }
        // Children first, so a crash midway never leaves an orphaned child
        // whose parent is gone but which still works.
        for h in order.into_iter().rev() {
            self.revoke_one(&h).await?;
        }
        Ok(())
    }

    async fn revoke_one(&self, hash: &str) -> Result<(), RequestError> {
        let entry = self.load(hash).await?;
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(hash);
        if let Some(entry) = entry {
            self.barrier
                .delete(&format!("{ACCESSOR_PREFIX}{}", self.hash(&entry.accessor)))
                .await?;
            if let Some(parent) = &entry.parent {
                self.barrier
                    .delete(&format!("{PARENT_PREFIX}{parent}/{hash}"))
                    .await?;
            }
        }
        self.barrier
            .delete_prefix(&format!("{PARENT_PREFIX}{hash}/"))
            .await?;
        self.barrier.delete(&format!("{ID_PREFIX}{hash}")).await?;
        Ok(())
    }

    async fn by_accessor(&self, accessor: &str) -> Result<Option<Resolved>, RequestError> {
        let Some(raw) = self
            .barrier
            .get(&format!("{ACCESSOR_PREFIX}{}", self.hash(accessor)))
            .await?
        else {
            return Ok(None);
        };
        let hash = String::from_utf8(raw).map_err(|e| RequestError::Internal(e.to_string()))?;
        Ok(self
            .load(&hash)
            .await?
            .map(|entry| Resolved { hash, entry }))
    }

    async fn renew(
        &self,
        token: &Resolved,
        increment: u64,
    ) -> Result<Arc<TokenEntry>, RequestError> {
        if !token.entry.renewable {
            return Err(RequestError::invalid("lease is not renewable"));
        }
        let now = now();
        let mut entry = (*token.entry).clone();
        let mut ttl = if increment == 0 {
            entry.creation_ttl
        } else {
            increment
        };
        if self.max_ttl > 0 {
            let cap = (entry.creation_time + self.max_ttl as i64 - now).max(0) as u64;
            ttl = ttl.min(cap);
        }
        if entry.explicit_max_ttl > 0 {
            let cap = (entry.creation_time + entry.explicit_max_ttl as i64 - now).max(0) as u64;
            ttl = ttl.min(cap);
        }
        entry.expire_time = Some(now + ttl as i64);
        entry.issue_time = now;
        self.store(&token.hash, entry).await
    }

    /// Handles `auth/token/<path>` for an authenticated caller.
    pub async fn handle(
        &self,
        req: &Request,
        caller: &Resolved,
    ) -> Result<Option<Response>, RequestError> {
        let op = req.operation;
        let write = matches!(op, Operation::Create | Operation::Update);
        let now_ts = now();
        let token_arg = |field: &str| -> Result<String, RequestError> {
            req.data
                .get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| RequestError::invalid(format!("missing required field {field:?}")))
        };
        match (req.path.as_str(), op) {
            ("create" | "create-orphan", _) if write => {
                let params = create_params(&req.data, req.path == "create-orphan")?;
                let (id, entry) = self.create(Some(caller), params).await?;
                Ok(Some(Response {
                    auth: Some(entry.auth(&id, now_ts)),
                    ..Default::default()
                }))
            }
            ("lookup-self", _) if op == Operation::Read || write => {
                Ok(Some(Response::data(caller.entry.lookup_data(None, now_ts))))
            }
            ("lookup", _) if write || op == Operation::Read => {
                let id = token_arg("token")?;
                let found = self
                    .lookup(&id)
                    .await?
                    .ok_or_else(|| RequestError::invalid("bad token"))?;
                Ok(Some(Response::data(
                    found.entry.lookup_data(Some(&id), now_ts),
                )))
            }
            ("lookup-accessor", _) if write => {
                let accessor = token_arg("accessor")?;
                let found = self
                    .by_accessor(&accessor)
                    .await?
                    .ok_or_else(|| RequestError::invalid("invalid accessor"))?;
                Ok(Some(Response::data(found.entry.lookup_data(None, now_ts))))
            }
            ("renew-self", _) if write => {
                let inc = increment(&req.data)?;
                let entry = self.renew(caller, inc).await?;
                Ok(Some(Response {
                    auth: Some(entry.auth("", now_ts)),
                    ..Default::default()
                }))
            }
            ("renew", _) if write => {
                let id = token_arg("token")?;
                let target = self
                    .lookup(&id)
                    .await?
                    .ok_or_else(|| RequestError::invalid("bad token"))?;
                let entry = self.renew(&target, increment(&req.data)?).await?;
                Ok(Some(Response {
                    auth: Some(entry.auth(&id, now_ts)),
                    ..Default::default()
                }))
            }
            ("revoke-self", _) if write => {
                self.revoke_tree(&caller.hash).await?;
                Ok(None)
            }
            ("revoke", _) if write => {
                let id = token_arg("token")?;
                if let Some(target) = self.lookup(&id).await? {
                    self.revoke_tree(&target.hash).await?;
                }
                Ok(None)
            }
            ("revoke-accessor", _) if write => {
                let accessor = token_arg("accessor")?;
                if let Some(target) = self.by_accessor(&accessor).await? {
                    self.revoke_tree(&target.hash).await?;
                }
                Ok(None)
            }
            (
                "create" | "create-orphan" | "lookup-self" | "lookup" | "lookup-accessor"
                | "renew-self" | "renew" | "revoke-self" | "revoke" | "revoke-accessor",
                _,
            ) => Err(RequestError::UnsupportedOperation),
            _ => Err(RequestError::NoHandler {
                path: format!("auth/token/{}", req.path),
            }),
        }
    }
}

fn increment(data: &Map<String, Value>) -> Result<u64, RequestError> {
    data.get("increment")
        .map(|v| duration::parse_seconds("increment", v).map_err(RequestError::InvalidRequest))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn string_list(field: &str, v: &Value) -> Result<Vec<String>, RequestError> {
    match v {
        Value::Null => Ok(vec![]),
        Value::String(s) => Ok(s
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    RequestError::invalid(format!("{field}: expected a list of strings"))
                })
            })
            .collect(),
        _ => Err(RequestError::invalid(format!(
            "{field}: expected a list of strings"
        ))),
    }
}

fn bool_field(field: &str, v: &Value) -> Result<bool, RequestError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => s.parse().map_err(|_| {
            RequestError::invalid(format!("{field}: expected true or false, got {s:?}"))
        }),
        _ => Err(RequestError::invalid(format!(
            "{field}: expected a boolean"
        ))),
    }
}

/// Parses the body of `auth/token/create`.
pub fn create_params(
    data: &Map<String, Value>,
    orphan_path: bool,
) -> Result<CreateParams, RequestError> {
    let mut p = CreateParams {
        orphan: orphan_path,
        path: if orphan_path {
            "auth/token/create-orphan"
        } else {
            "auth/token/create"
        }
        .into(),
        ..Default::default()
    };
    for (key, v) in data {
        match key.as_str() {
            "id" => p.id = v.as_str().map(str::to_string),
            "policies" => p.policies = string_list(key, v)?,
            "meta" => {
                p.meta = match v {
                    Value::Null => None,
                    Value::Object(m) => {
                        if m.values().any(|v| !v.is_string()) {
                            return Err(RequestError::invalid("meta: values must be strings"));
                        }
                        Some(m.clone())
                    }
                    _ => return Err(RequestError::invalid("meta: expected an object of strings")),
                }
            }
            "no_parent" => p.orphan |= bool_field(key, v)?,
            "no_default_policy" => p.no_default_policy = bool_field(key, v)?,
            "renewable" => p.renewable = Some(bool_field(key, v)?),
            "ttl" | "lease" => {
                p.ttl = duration::parse_seconds(key, v).map_err(RequestError::InvalidRequest)?
            }
            "explicit_max_ttl" => {
                p.explicit_max_ttl =
                    duration::parse_seconds(key, v).map_err(RequestError::InvalidRequest)?
            }
            "display_name" => p.display_name = v.as_str().map(str::to_string),
            "num_uses" => {
                p.num_uses = match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| RequestError::invalid("num_uses: expected an integer"))?
            }
            "type" => {
                if v.as_str().is_some_and(|t| t != "service" && t != "default") {
                    return Err(RequestError::invalid(
                        "type: only service tokens are supported",
                    ));
                }
            }
            "period" | "entity_alias" | "role_name" => {
                return Err(RequestError::invalid(format!(
                    "{key} is not supported by lockbox's token store yet"
                )));
            }
            other => {
                return Err(RequestError::invalid(format!(
                    "unknown field {other:?}; token create accepts policies, ttl, explicit_max_ttl, renewable, num_uses, display_name, meta, no_parent, no_default_policy, id"
                )));
            }
        }
    }
    Ok(p)
}
