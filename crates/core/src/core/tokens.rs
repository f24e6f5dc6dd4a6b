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
//! # Consistency
//!
//! Entries are cached in memory (decrypted JSON is not re-parsed on every
//! request); this process is the only writer. As with Vault's token locks,
//! every change to a token happens under that token's lock (a sharded set of
//! async mutexes keyed by the token's hash):
//!
//! - writers (`use_once`, renewal, revocation) re-read the entry under the
//!   lock, so they never write back a stale snapshot, and a token revoked
//!   meanwhile stays revoked (the re-read finds nothing to update);
//! - the cache is filled only under the lock, and revocation deletes the
//!   stored entry before evicting the cached one, so a concurrent reader
//!   cannot put a revoked entry back;
//! - the last use of a limited-use token marks it used up (`num_uses = -1`,
//!   persisted) under the lock before its tree is revoked, so exactly
//!   `num_uses` requests get through.
//!
//! At most one token lock is held at a time: shards are shared between
//! tokens and the mutexes are not reentrant.
//!
//! A token is valid only while its whole parent chain is: lookup walks the
//! chain (cache hits) and revokes the tree of an expired ancestor, so a child
//! never outlives its parent whatever its own TTL, as in Vault, where the
//! parent's expiry revokes its tree.

use crate::barrier::{Barrier, BarrierError, BarrierOp};
use crate::logical::{Auth, RequestError};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Map, Value};
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
/// Number of token lock shards.
const LOCK_SHARDS: usize = 256;
/// Longest parent chain followed on lookup; deeper chains are refused.
const MAX_CHAIN: usize = 256;
const CREATE_ORPHAN_PATH: &str = "auth/token/create-orphan";

/// What the creator may do beyond a plain child token.
struct Grant {
    /// Root or `sudo` on the create path: custom IDs, `no_parent`, policies
    /// outside the parent's.
    sudo: bool,
    /// The display name as is (logins), instead of `token-<name>`.
    display_name: Option<String>,
}

/// The store.
pub struct TokenStore {
    barrier: Arc<Barrier>,
    salt: Zeroizing<Vec<u8>>,
    cache: RwLock<HashMap<String, Arc<TokenEntry>>>,
    /// Per-token locks, sharded by hash.
    locks: Box<[tokio::sync::Mutex<()>]>,
    /// System default TTL in seconds for tokens created without one.
    default_ttl: u64,
    /// System max TTL in seconds.
    max_ttl: u64,
    /// The lease manager, told when a token is revoked (its leases go).
    leases: std::sync::OnceLock<Arc<crate::core::leases::Leases>>,
    /// An HA standby's store (`ha::standby`): every lookup reads storage
    /// (no cache: another node revokes), nothing is ever written (an
    /// expired token is simply not valid here), and a limited-use token is
    /// [`RequestError::Standby`] (only the active node counts uses).
    read_only: bool,
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

/// Trimmed, lower-cased, non-empty policy names.
fn normalize_policies(policies: &[String]) -> Vec<String> {
    policies
        .iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The requested policies a parent does not have (`default` is always
/// allowed).
fn beyond_parent<'a>(parent: &TokenEntry, policies: &'a [String]) -> Vec<&'a str> {
    policies
        .iter()
        .filter(|p| *p != "default" && !parent.policies.contains(p))
        .map(String::as_str)
        .collect()
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
            locks: (0..LOCK_SHARDS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            default_ttl,
            max_ttl,
            leases: std::sync::OnceLock::new(),
            read_only: false,
        })
    }

    /// The store of an HA standby's local reads: reads storage on every
    /// lookup and never writes (see the `read_only` field). The salt must
    /// exist (the active node created it at init).
    pub(crate) async fn open_read_only(barrier: Arc<Barrier>) -> Result<Self, RequestError> {
        let salt = barrier
            .get(SALT_PATH)
            .await?
            .ok_or_else(|| RequestError::Internal("the token store has no salt yet".into()))?;
        Ok(Self {
            barrier,
            salt: Zeroizing::new(salt),
            cache: RwLock::new(HashMap::new()),
            locks: (0..1).map(|_| tokio::sync::Mutex::new(())).collect(),
            default_ttl: 0,
            max_ttl: 0,
            leases: std::sync::OnceLock::new(),
            read_only: true,
        })
    }

    /// Connects the lease manager: a revoked token's leases are revoked.
    pub(crate) fn attach_leases(&self, leases: Arc<crate::core::leases::Leases>) {
        let _ = self.leases.set(leases);
    }

    fn hash(&self, value: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.salt)
            .expect("HMAC accepts keys of any length");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The lock of the token with this hash (shared with the other tokens
    /// of its shard: never hold two).
    fn lock_for(&self, hash: &str) -> &tokio::sync::Mutex<()> {
        let i = hash.bytes().fold(0usize, |acc, b| {
            acc.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        &self.locks[i % self.locks.len()]
    }

    fn cached(&self, hash: &str) -> Option<Arc<TokenEntry>> {
        self.cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
    }

    /// Inserts into the cache. Only under the token's lock.
    fn cache_insert(&self, hash: &str, entry: Arc<TokenEntry>) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_LIMIT && !cache.contains_key(hash) {
            cache.clear();
        }
        cache.insert(hash.to_string(), entry);
    }

    fn evict(&self, hash: &str) {
        self.cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(hash);
    }

    /// The stored entry, bypassing (and not filling) the cache.
    async fn read_stored(&self, hash: &str) -> Result<Option<Arc<TokenEntry>>, RequestError> {
        let Some(raw) = self.barrier.get(&format!("{ID_PREFIX}{hash}")).await? else {
            return Ok(None);
        };
        let entry: TokenEntry = serde_json::from_slice(&raw).map_err(|e| bad_json("token", e))?;
        Ok(Some(Arc::new(entry)))
    }

    /// Whether a token with this hash exists (lease tidy).
    pub(crate) async fn exists_hash(&self, hash: &str) -> Result<bool, RequestError> {
        Ok(self.peek(hash).await?.is_some())
    }

    /// The current entry without filling the cache (scans and revocation).
    async fn peek(&self, hash: &str) -> Result<Option<Arc<TokenEntry>>, RequestError> {
        match self.cached(hash) {
            Some(e) => Ok(Some(e)),
            None => self.read_stored(hash).await,
        }
    }

    /// The current entry; the caller holds the token's lock.
    async fn load_locked(&self, hash: &str) -> Result<Option<Arc<TokenEntry>>, RequestError> {
        if let Some(e) = self.cached(hash) {
            return Ok(Some(e));
        }
        let entry = self.read_stored(hash).await?;
        if let Some(e) = &entry {
            self.cache_insert(hash, e.clone());
        }
        Ok(entry)
    }

    /// The current entry: from the cache, or read under the token's lock so
    /// that a concurrent revocation cannot be undone by the cache fill.
    async fn load(&self, hash: &str) -> Result<Option<Arc<TokenEntry>>, RequestError> {
        if self.read_only {
            return self.read_stored(hash).await;
        }
        if let Some(e) = self.cached(hash) {
            return Ok(Some(e));
        }
        let _guard = self.lock_for(hash).lock().await;
        self.load_locked(hash).await
    }

    /// Writes an entry, then the cache; the caller holds the token's lock.
    async fn put_locked(
        &self,
        hash: &str,
        entry: TokenEntry,
    ) -> Result<Arc<TokenEntry>, RequestError> {
        let raw = serde_json::to_vec(&entry).map_err(|e| RequestError::Internal(e.to_string()))?;
        self.barrier
            .put(&format!("{ID_PREFIX}{hash}"), &raw)
            .await?;
        let entry = Arc::new(entry);
        self.cache_insert(hash, entry.clone());
        Ok(entry)
    }

    /// The entry of a valid token: present, not expired, not used up, and
    /// its parent chain likewise. An expired token, or the tree of an
    /// expired ancestor, is revoked on the way; a token whose parent is gone
    /// is revoked too.
    async fn resolve(&self, hash: &str) -> Result<Option<Arc<TokenEntry>>, RequestError> {
        let Some(entry) = self.load(hash).await? else {
            return Ok(None);
        };
        if entry.used_up() {
            // Its last request is revoking it.
            return Ok(None);
        }
        let now = now();
        if entry.expired(now) {
            self.revoke_tree_unless_read_only(hash).await?;
            return Ok(None);
        }
        let mut next = entry.parent.clone();
        let mut depth = 0;
        while let Some(parent) = next {
            depth += 1;
            if depth > MAX_CHAIN {
                return Ok(None);
            }
            match self.load(&parent).await? {
                None => {
                    // The parent was revoked (its tree was listed before this
                    // token was indexed, or a revocation was interrupted).
                    self.revoke_tree_unless_read_only(hash).await?;
                    return Ok(None);
                }
                Some(p) if p.used_up() => return Ok(None),
                Some(p) if p.expired(now) => {
                    self.revoke_tree_unless_read_only(&parent).await?;
                    return Ok(None);
                }
                Some(p) => next = p.parent.clone(),
            }
        }
        Ok(Some(entry))
    }

    /// Resolves a client token. Expired tokens (and tokens with an expired
    /// or revoked ancestor) are revoked and refused; unknown tokens are
    /// refused. Does not consume a use.
    pub async fn lookup(&self, id: &str) -> Result<Option<Resolved>, RequestError> {
        let hash = self.hash(id);
        Ok(self.resolve(&hash).await?.map(|entry| Resolved {
            hash,
            entry,
            id: Zeroizing::new(id.to_string()),
        }))
    }

    /// Revokes the tree of `hash` (an expired or orphaned token met by a
    /// lookup), except in a standby's read-only store, where the lookup
    /// only finds it invalid and the active node revokes it.
    async fn revoke_tree_unless_read_only(&self, hash: &str) -> Result<(), RequestError> {
        if self.read_only {
            return Ok(());
        }
        self.revoke_tree(hash).await
    }

    /// Consumes one use of a limited-use token, revoking it after the last;
    /// refuses a token revoked or used up since its lookup.
    pub async fn use_once(&self, token: &Resolved) -> Result<(), RequestError> {
        if self.read_only {
            // Uses are counted where they are written: on the active node.
            // An unlimited token was just read from storage (no cache here
            // to be stale): nothing to check again.
            return match token.entry.num_uses {
                0 => Ok(()),
                _ => Err(RequestError::Standby),
            };
        }
        if token.entry.num_uses == 0 {
            // Unlimited: only check it was not revoked since lookup.
            return match self.load(&token.hash).await? {
                Some(e) if !e.used_up() => Ok(()),
                _ => Err(RequestError::PermissionDenied),
            };
        }
        let guard = self.lock_for(&token.hash).lock().await;
        let Some(current) = self.load_locked(&token.hash).await? else {
            return Err(RequestError::PermissionDenied);
        };
        if current.used_up() || current.expired(now()) {
            return Err(RequestError::PermissionDenied);
        }
        if current.num_uses == 0 {
            return Ok(());
        }
        let mut entry = (*current).clone();
        entry.num_uses -= 1;
        let last = entry.num_uses == 0;
        if last {
            // Used up: every other lookup and use fails from here on.
            entry.num_uses = -1;
        }
        self.put_locked(&token.hash, entry).await?;
        drop(guard);
        if last {
            self.revoke_tree(&token.hash).await?;
        }
        Ok(())
    }

    /// Creates a token under `parent` (or as a root token when `parent` is
    /// `None`, used by init and dev mode). Custom IDs, orphans and policies
    /// outside the parent's need a root parent (or no parent).
    pub async fn create(
        &self,
        parent: Option<&Resolved>,
        p: CreateParams,
    ) -> Result<(String, Arc<TokenEntry>), RequestError> {
        let grant = Grant {
            sudo: parent.is_none_or(|t| t.entry.is_root()),
            display_name: None,
        };
        self.create_as(parent, p, grant).await
    }

    async fn create_as(
        &self,
        parent: Option<&Resolved>,
        p: CreateParams,
        grant: Grant,
    ) -> Result<(String, Arc<TokenEntry>), RequestError> {
        if parent.is_some_and(|t| t.entry.num_uses != 0) {
            // As Vault and OpenBao: a limited-use token cannot create tokens
            // at all, whatever it asks for (a child could otherwise outlive
            // the parent's use limit, or have none).
            return Err(RequestError::invalid(
                "restricted use token cannot generate child tokens",
            ));
        }
        let parent_is_root = parent.is_none_or(|t| t.entry.is_root());
        if p.id.is_some() && !grant.sudo {
            return Err(RequestError::invalid(
                "root or sudo privileges required to specify token id",
            ));
        }
        if p.orphan && p.path != CREATE_ORPHAN_PATH && !grant.sudo {
            return Err(RequestError::invalid(
                "root or sudo privileges required to create orphan token",
            ));
        }
        let mut policies = normalize_policies(&p.policies);
        if policies.is_empty() {
            policies = match parent {
                Some(t) => t.entry.policies.clone(),
                None => vec!["root".into()],
            };
        } else if let Some(t) = parent
            && !grant.sudo
        {
            let extra = beyond_parent(&t.entry, &policies);
            if !extra.is_empty() {
                return Err(RequestError::invalid(format!(
                    "child policies must be subset of parent: the parent token does not have {}",
                    extra.join(", ")
                )));
            }
        }
        if policies.iter().any(|p| p == "root") && !parent_is_root {
            return Err(RequestError::invalid(
                "root tokens may not be created without parent token being root",
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
        // A child may get a longer TTL than its parent has left (as in
        // Vault); it still dies with the parent (see `resolve`).
        let now = now();

        let id = match p.id {
            Some(id) if id.is_empty() => {
                return Err(RequestError::invalid("token id cannot be empty"));
            }
            Some(id) => id,
            None => format!("{TOKEN_PREFIX}{}", random_string(24)),
        };
        let hash = self.hash(&id);
        let accessor = random_string(24);
        let display_name = match (grant.display_name, &p.display_name) {
            (Some(n), _) => n,
            (None, _) if is_root && parent.is_none() => "root".to_string(),
            (None, Some(n)) if !n.is_empty() => format!("token-{n}"),
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
            last_renewal: None,
            internal_data: p.internal_data,
        };
        let _guard = self.lock_for(&hash).lock().await;
        if self.load_locked(&hash).await?.is_some() {
            return Err(RequestError::invalid(
                "cannot create a token with a duplicate ID",
            ));
        }
        // The entry and its indexes (parent, accessor) in one transaction:
        // no crash leaves an accessor without its token or the reverse.
        let raw = serde_json::to_vec(&entry).map_err(|e| RequestError::Internal(e.to_string()))?;
        let parent_key = entry
            .parent
            .as_ref()
            .map(|parent_hash| format!("{PARENT_PREFIX}{parent_hash}/{hash}"));
        let accessor_key = format!("{ACCESSOR_PREFIX}{}", self.hash(&accessor));
        let id_key = format!("{ID_PREFIX}{hash}");
        let mut ops = Vec::with_capacity(3);
        if let Some(k) = &parent_key {
            ops.push(BarrierOp::Put(k, b""));
        }
        ops.push(BarrierOp::Put(&accessor_key, hash.as_bytes()));
        ops.push(BarrierOp::Put(&id_key, &raw));
        self.barrier.transaction(&ops).await?;
        let entry = Arc::new(entry);
        self.cache_insert(&hash, entry.clone());
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
            internal_data: (!login.internal_data.is_empty()).then_some(login.internal_data),
            ..Default::default()
        };
        let grant = Grant {
            sudo: true,
            display_name: Some(display),
        };
        let (id, entry) = self.create_as(None, params, grant).await?;
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
        // Children first, so a crash midway never leaves a child whose
        // parent is gone (and such a child is refused anyway, see `resolve`).
        for h in order.into_iter().rev() {
            self.revoke_one(&h).await?;
        }
        Ok(())
    }

    async fn revoke_one(&self, hash: &str) -> Result<(), RequestError> {
        let _guard = self.lock_for(hash).lock().await;
        let entry = self.peek(hash).await?;
        if let Some(entry) = entry {
            // Storage first (the entry and its indexes in one transaction),
            // then the cache: a reader that misses the cache takes this lock
            // and then finds nothing to put back.
            let id_key = format!("{ID_PREFIX}{hash}");
            let accessor_key = format!("{ACCESSOR_PREFIX}{}", self.hash(&entry.accessor));
            let parent_key = entry
                .parent
                .as_ref()
                .map(|parent| format!("{PARENT_PREFIX}{parent}/{hash}"));
            let mut ops = vec![BarrierOp::Delete(&id_key), BarrierOp::Delete(&accessor_key)];
            if let Some(k) = &parent_key {
                ops.push(BarrierOp::Delete(k));
            }
            self.barrier.transaction(&ops).await?;
            self.evict(hash);
        }
        self.barrier
            .delete_prefix(&format!("{PARENT_PREFIX}{hash}/"))
            .await?;
        if let Some(leases) = self.leases.get() {
            leases.token_revoked(hash).await?;
        }
        Ok(())
    }

    /// Revokes, each with its children, every token whose creation `path`
    /// starts with `prefix` (e.g. `auth/userpass/` when that auth mount is
    /// disabled). Mount paths end with `/`, so `auth/user/` does not match
    /// `auth/userpass/login/x`. Returns how many matching tokens were
    /// revoked (children not counted). An empty prefix is refused.
    ///
    /// Tokens have no index by path, so this scans every stored entry
    /// (without filling the cache): O(tokens) reads, acceptable for a rare
    /// administrative operation. A login that completes during the scan may
    /// be missed: remove the route first.
    pub async fn revoke_by_path_prefix(&self, prefix: &str) -> Result<usize, RequestError> {
        if prefix.is_empty() {
            return Err(RequestError::invalid(
                "refusing to revoke by an empty path prefix (that is every token)",
            ));
        }
        self.revoke_where(|e| e.path.starts_with(prefix)).await
    }

    /// Revokes every expired token with its children, as Vault's expiration
    /// manager does in the background; returns how many had expired.
    /// Requests refuse expired tokens anyway: this keeps storage from
    /// filling up with them.
    pub async fn revoke_expired(&self) -> Result<usize, RequestError> {
        let now = now();
        self.revoke_where(|e| e.expired(now)).await
    }

    /// Revokes (with children) every stored token `matches` selects; a scan
    /// of all token entries that does not fill the cache.
    async fn revoke_where(
        &self,
        matches: impl Fn(&TokenEntry) -> bool,
    ) -> Result<usize, RequestError> {
        let mut revoked = 0;
        for key in self.barrier.list(ID_PREFIX).await? {
            let hash = key.trim_end_matches('/');
            // Gone already (e.g. a child of an earlier match): skipped.
            let entry = self.peek(hash).await?;
            if entry.is_some_and(|e| matches(&e)) {
                self.revoke_tree(hash).await?;
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// The valid token behind an accessor: (hash, entry).
    async fn by_accessor(
        &self,
        accessor: &str,
    ) -> Result<Option<(String, Arc<TokenEntry>)>, RequestError> {
        let Some(raw) = self
            .barrier
            .get(&format!("{ACCESSOR_PREFIX}{}", self.hash(accessor)))
            .await?
        else {
            return Ok(None);
        };
        let hash = String::from_utf8(raw).map_err(|e| RequestError::Internal(e.to_string()))?;
        Ok(self.resolve(&hash).await?.map(|entry| (hash, entry)))
    }

    /// Renews the token with this hash, re-read under its lock; `None` when
    /// it is gone, expired or used up by now.
    /// `granted`: the TTL the issuing auth method granted (see
    /// [`AuthRenewer`]), used instead of the increment when not 0.
    async fn renew(
        &self,
        hash: &str,
        increment: u64,
        granted: Option<u64>,
    ) -> Result<Option<Arc<TokenEntry>>, RequestError> {
        let _guard = self.lock_for(hash).lock().await;
        let now = now();
        let Some(current) = self.load_locked(hash).await? else {
            return Ok(None);
        };
        if current.used_up() || current.expired(now) {
            return Ok(None);
        }
        if !current.renewable {
            return Err(RequestError::invalid("lease is not renewable"));
        }
        let mut entry = (*current).clone();
        let mut ttl = match granted {
            Some(t) if t > 0 => t,
            _ if increment == 0 => entry.creation_ttl,
            _ => increment,
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
        entry.last_renewal = Some(now);
        self.put_locked(hash, entry).await.map(Some)
    }
}

/// Asks the auth method that issued a token about its renewal (Vault
/// routes a token renewal to the token's auth method). The pipeline
/// implements it over the routing table.
#[async_trait::async_trait]
pub trait AuthRenewer: Send + Sync {
    /// `Ok(Some(ttl))`: the method grants `ttl` seconds (0: the token's
    /// own rules); `Ok(None)`: the method has no say; an error refuses.
    async fn renew_auth(
        &self,
        entry: &TokenEntry,
        increment: u64,
    ) -> Result<Option<u64>, RequestError>;
}

mod endpoints;
mod entry;

pub use endpoints::create_params;
pub(crate) use endpoints::increment;
pub use entry::{CreateParams, Resolved, TokenEntry};

#[async_trait::async_trait]
impl crate::core::leases::TokenIndex for TokenStore {
    async fn token_exists(&self, hash: &str) -> Result<bool, RequestError> {
        self.exists_hash(hash).await
    }
}

#[cfg(test)]
mod tests;
