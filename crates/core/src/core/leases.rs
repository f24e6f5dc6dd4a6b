//! The lease manager (Vault's expiration manager): every secret an engine
//! hands out with a lease is recorded here, in the barrier, until it is
//! revoked, and revoked by its engine when it expires, when its token is
//! revoked, when its mount is disabled or moved, or when an operator asks.
//!
//! Storage (all in the barrier, so encrypted and authenticated):
//! `sys/expire/id/<lease id>` holds the [`LeaseEntry`] (lease ids are
//! `<mount path><request path>/<random>`, so a prefix of an id is a prefix
//! of keys); `sys/expire/token/<token hash>/<sha256 of lease id>` indexes a
//! token's leases. Timers live in memory ([`Leases::schedule`]) and are
//! re-armed from storage on unseal ([`Leases::load`]).
//!
//! Revocation calls the engine through [`Engines`] (the core implements it
//! over its routing table). A failed revocation is retried with backoff
//! ([`retry_delay`]) and, after [`MAX_REVOKE_ATTEMPTS`], the lease is
//! marked irrevocable with the error kept for `lookup`; `revoke-force`
//! removes it without the engine.

use crate::barrier::{Barrier, BarrierOp};
use crate::logical::{RequestError, SecretCall};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

const ID_PREFIX: &str = "sys/expire/id/";
const TOKEN_PREFIX: &str = "sys/expire/token/";

/// Tries before a lease whose engine keeps failing to revoke it is marked
/// irrevocable (Vault's number).
pub const MAX_REVOKE_ATTEMPTS: u32 = 6;

/// How many revocations the expiry worker runs at once.
const REVOKE_CONCURRENCY: usize = 16;

/// One lease, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseEntry {
    /// `<mount path><request path>/<random>`.
    pub lease_id: String,
    /// The full request path that created it (`database/creds/app`).
    pub path: String,
    /// The response data the secret was handed out with (engines read it
    /// at revocation; encrypted by the barrier, never shown by `lookup`).
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
    /// The engine's own data about the secret (Vault's `InternalData`).
    #[serde(default)]
    pub internal_data: Map<String, Value>,
    /// HMAC of the token that read it (`None`: no token).
    #[serde(default)]
    pub token_hash: Option<String>,
    /// Unix seconds.
    pub issue_time: i64,
    /// Unix seconds.
    pub expire_time: i64,
    /// Unix seconds of the last renewal.
    #[serde(default)]
    pub last_renewal: Option<i64>,
    /// The TTL the secret was issued with (seconds; renewals without an
    /// increment extend by it).
    pub ttl: u64,
    /// Latest allowed expiry, unix seconds (0: none beyond the system's).
    pub max_expire_time: i64,
    /// Whether renewals are allowed.
    pub renewable: bool,
    /// Failed revocations so far.
    #[serde(default)]
    pub revoke_attempts: u32,
    /// The last revocation error.
    #[serde(default)]
    pub revoke_error: Option<String>,
    /// Gave up revoking (until `revoke-force` or a successful `revoke`).
    #[serde(default)]
    pub irrevocable: bool,
}

impl LeaseEntry {
    /// The engine call for this lease (`increment` in seconds, for renew).
    pub fn call(&self, mount_path: &str, increment: u64) -> SecretCall {
        SecretCall {
            path: self
                .path
                .strip_prefix(mount_path)
                .unwrap_or(&self.path)
                .to_string(),
            lease_id: self.lease_id.clone(),
            internal_data: self.internal_data.clone(),
            data: self.data.clone().unwrap_or_default(),
            ttl: self.ttl,
            max_ttl: u64::try_from(self.max_expire_time - self.issue_time).unwrap_or(0),
            increment,
            issue_time: self.issue_time,
            renewable: self.renewable,
        }
    }

    /// What `sys/leases/lookup` shows (Vault's fields, RFC 3339 times).
    pub fn lookup_data(&self, now: i64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), Value::String(self.lease_id.clone()));
        m.insert("issue_time".into(), Value::String(rfc3339(self.issue_time)));
        m.insert(
            "expire_time".into(),
            Value::String(rfc3339(self.expire_time)),
        );
        m.insert(
            "last_renewal".into(),
            self.last_renewal
                .map(|t| Value::String(rfc3339(t)))
                .unwrap_or(Value::Null),
        );
        m.insert(
            "renewable".into(),
            Value::Bool(self.renewable && !self.irrevocable),
        );
        m.insert("ttl".into(), Value::from((self.expire_time - now).max(0)));
        if self.irrevocable || self.revoke_error.is_some() {
            m.insert("irrevocable".into(), Value::Bool(self.irrevocable));
            m.insert(
                "revoke_error".into(),
                self.revoke_error
                    .clone()
                    .map(Value::String)
                    .unwrap_or(Value::Null),
            );
            m.insert("revoke_attempts".into(), Value::from(self.revoke_attempts));
        }
        m
    }
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub(crate) fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The delay before the next revocation try after `attempts` failures:
/// 1, 2, 4 ... seconds, at most a minute.
pub fn retry_delay(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// The TTL a new lease gets: the engine's, else the mount's default, else
/// the system's; never past the engine's max, the mount's max or the
/// system's max. All in seconds, 0 = unset.
pub fn lease_ttl(engine_ttl: u64, engine_max: u64, mount_default: u64, mount_max: u64) -> u64 {
    let ttl = if engine_ttl > 0 {
        engine_ttl
    } else {
        mount_default
    };
    [engine_max, mount_max]
        .into_iter()
        .filter(|m| *m > 0)
        .fold(ttl, u64::min)
}

/// What the lease manager needs from the engines: renew and revoke a
/// lease's secret on the engine of the mount its path names.
#[async_trait::async_trait]
pub trait Engines: Send + Sync {
    /// The engine grants a renewal: the new TTL in seconds (0: as asked).
    async fn renew(&self, lease: &LeaseEntry, increment: u64) -> Result<u64, RequestError>;
    /// The engine revokes the secret.
    async fn revoke(&self, lease: &LeaseEntry) -> Result<(), RequestError>;
}

/// What tidying asks the token store (implemented by `tokens::TokenStore`).
#[async_trait::async_trait]
pub trait TokenIndex: Send + Sync {
    /// Whether the token with this hash still exists.
    async fn token_exists(&self, hash: &str) -> Result<bool, RequestError>;
}

/// The lease manager of an unsealed core.
pub struct Leases {
    barrier: Arc<Barrier>,
    /// (due unix seconds, lease id): leases to revoke (expiry or retry).
    schedule: Mutex<BTreeSet<(i64, String)>>,
    /// One lease's renew and revoke run one at a time (striped by id): a
    /// revocation that fails while `revoke-force` deletes the lease, or a
    /// renewal racing a revocation, cannot write the lease back.
    stripes: Vec<tokio::sync::Mutex<()>>,
}

/// How many lease locks ([`Leases::stripes`]).
const LEASE_STRIPES: usize = 256;

fn token_key(token_hash: &str, lease_id: &str) -> String {
    let digest = hex::encode(sha2::Sha256::digest(lease_id.as_bytes()));
    format!("{TOKEN_PREFIX}{token_hash}/{digest}")
}

fn internal(e: impl std::fmt::Display) -> RequestError {
    RequestError::Internal(e.to_string())
}

impl Leases {
    /// An empty manager over `barrier` (call [`Leases::load`] to re-arm).
    pub fn new(barrier: Arc<Barrier>) -> Self {
        Self {
            barrier,
            schedule: Mutex::new(BTreeSet::new()),
            stripes: (0..LEASE_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// The lock of lease `id` (held across its engine call).
    async fn lock(&self, id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let h = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        self.stripes[(h % LEASE_STRIPES as u64) as usize]
            .lock()
            .await
    }

    fn schedule_at(&self, due: i64, id: &str) {
        self.schedule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((due, id.to_string()));
    }

    fn unschedule(&self, id: &str) {
        self.schedule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, l)| l != id);
    }

    /// Records a new lease for a secret read at `path` (full request path)
    /// and arms its timer; returns the entry.
    #[allow(clippy::too_many_arguments)]
    pub async fn register(
        &self,
        path: &str,
        token_hash: Option<&str>,
        data: Option<Map<String, Value>>,
        internal_data: Map<String, Value>,
        ttl: u64,
        max_ttl: u64,
        renewable: bool,
    ) -> Result<LeaseEntry, RequestError> {
        let now = now();
        let suffix: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        let entry = LeaseEntry {
            lease_id: format!("{}/{suffix}", path.trim_end_matches('/')),
            path: path.to_string(),
            data,
            internal_data,
            token_hash: token_hash.map(str::to_string),
            issue_time: now,
            expire_time: now + ttl as i64,
            last_renewal: None,
            ttl,
            max_expire_time: if max_ttl > 0 { now + max_ttl as i64 } else { 0 },
            renewable: renewable && ttl > 0,
            revoke_attempts: 0,
            revoke_error: None,
            irrevocable: false,
        };
        // The lease and its token index in one transaction.
        let raw = serde_json::to_vec(&entry).map_err(internal)?;
        let id_key = format!("{ID_PREFIX}{}", entry.lease_id);
        let index_key = entry
            .token_hash
            .as_ref()
            .map(|t| token_key(t, &entry.lease_id));
        let mut ops = vec![BarrierOp::Put(&id_key, &raw)];
        if let Some(k) = &index_key {
            ops.push(BarrierOp::Put(k, entry.lease_id.as_bytes()));
        }
        self.barrier.transaction(&ops).await?;
        self.schedule_at(entry.expire_time, &entry.lease_id);
        Ok(entry)
    }

    async fn put(&self, entry: &LeaseEntry) -> Result<(), RequestError> {
        let raw = serde_json::to_vec(entry).map_err(internal)?;
        self.barrier
            .put(&format!("{ID_PREFIX}{}", entry.lease_id), &raw)
            .await?;
        Ok(())
    }

    /// The lease with this id.
    pub async fn get(&self, id: &str) -> Result<Option<LeaseEntry>, RequestError> {
        let Some(raw) = self.barrier.get(&format!("{ID_PREFIX}{id}")).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&raw).map(Some).map_err(internal)
    }

    /// The children of `prefix` (Vault's list semantics: folders end in `/`).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, RequestError> {
        Ok(self.barrier.list(&format!("{ID_PREFIX}{prefix}")).await?)
    }

    /// Every lease id under `prefix` (a lease id itself included).
    pub async fn ids_under(&self, prefix: &str) -> Result<Vec<String>, RequestError> {
        let mut out = Vec::new();
        if self.get(prefix).await?.is_some() {
            out.push(prefix.to_string());
        }
        let mut folders = vec![if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        }];
        while let Some(folder) = folders.pop() {
            for child in self.list(&folder).await? {
                let full = format!("{folder}{child}");
                if child.ends_with('/') {
                    folders.push(full);
                } else {
                    out.push(full);
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn delete(&self, entry: &LeaseEntry) -> Result<(), RequestError> {
        let id_key = format!("{ID_PREFIX}{}", entry.lease_id);
        let index_key = entry
            .token_hash
            .as_ref()
            .map(|t| token_key(t, &entry.lease_id));
        let mut ops = vec![BarrierOp::Delete(&id_key)];
        if let Some(k) = &index_key {
            ops.push(BarrierOp::Delete(k));
        }
        self.barrier.transaction(&ops).await?;
        self.unschedule(&entry.lease_id);
        Ok(())
    }

    /// Renews a lease by `increment` seconds (0: its own TTL), asking the
    /// engine first; the new TTL never passes the lease's max.
    pub async fn renew(
        &self,
        id: &str,
        increment: u64,
        engines: &dyn Engines,
    ) -> Result<LeaseEntry, RequestError> {
        let _lease = self.lock(id).await;
        let mut entry = self
            .get(id)
            .await?
            .ok_or_else(|| RequestError::invalid("lease not found"))?;
        let now = now();
        if entry.irrevocable || entry.expire_time <= now {
            return Err(RequestError::invalid("lease expired"));
        }
        if !entry.renewable {
            return Err(RequestError::invalid("lease is not renewable"));
        }
        let granted = engines.renew(&entry, increment).await?;
        let mut ttl = if granted > 0 {
            granted
        } else if increment > 0 {
            increment
        } else {
            entry.ttl
        };
        if entry.max_expire_time > 0 {
            ttl = ttl.min(u64::try_from(entry.max_expire_time - now).unwrap_or(0));
        }
        entry.expire_time = now + ttl as i64;
        entry.last_renewal = Some(now);
        self.put(&entry).await?;
        self.unschedule(&entry.lease_id);
        self.schedule_at(entry.expire_time, &entry.lease_id);
        Ok(entry)
    }

    /// Revokes one lease through its engine now. With `force`, a failing
    /// engine does not keep the lease (`revoke-force`). `Ok(false)`: no
    /// such lease.
    pub async fn revoke(
        &self,
        id: &str,
        force: bool,
        engines: &dyn Engines,
    ) -> Result<bool, RequestError> {
        let _lease = self.lock(id).await;
        let Some(entry) = self.get(id).await? else {
            return Ok(false);
        };
        match engines.revoke(&entry).await {
            Ok(()) => {}
            Err(e) if force => {
                tracing::warn!(lease_id = %id, "revoke-force: dropping the lease the engine failed to revoke: {e}");
            }
            Err(e) => {
                self.failed(entry, &e).await?;
                return Err(RequestError::invalid(format!(
                    "failed to revoke lease {id}: {e}"
                )));
            }
        }
        self.delete(&entry).await?;
        Ok(true)
    }

    /// Records a failed revocation: retried later, or irrevocable after
    /// [`MAX_REVOKE_ATTEMPTS`].
    async fn failed(&self, mut entry: LeaseEntry, e: &RequestError) -> Result<(), RequestError> {
        entry.revoke_attempts += 1;
        entry.revoke_error = Some(e.to_string());
        self.unschedule(&entry.lease_id);
        if entry.revoke_attempts >= MAX_REVOKE_ATTEMPTS {
            entry.irrevocable = true;
            tracing::error!(lease_id = %entry.lease_id, "lease is irrevocable after {} attempts: {e}", entry.revoke_attempts);
        } else {
            let due = now() + retry_delay(entry.revoke_attempts).as_secs() as i64;
            self.schedule_at(due, &entry.lease_id);
        }
        self.put(&entry).await
    }

    /// Revokes every lease under `prefix`; returns how many.
    pub async fn revoke_prefix(
        &self,
        prefix: &str,
        force: bool,
        engines: &dyn Engines,
    ) -> Result<usize, RequestError> {
        let mut n = 0;
        for id in self.ids_under(prefix).await? {
            if self.revoke(&id, force, engines).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// A token was revoked: its leases are due now (the worker revokes them).
    pub async fn token_revoked(&self, token_hash: &str) -> Result<usize, RequestError> {
        let keys = self
            .barrier
            .list(&format!("{TOKEN_PREFIX}{token_hash}/"))
            .await?;
        let now = now();
        let mut n = 0;
        for k in keys {
            let key = format!("{TOKEN_PREFIX}{token_hash}/{k}");
            if let Some(raw) = self.barrier.get(&key).await? {
                let id = String::from_utf8_lossy(&raw).into_owned();
                self.unschedule(&id);
                self.schedule_at(now, &id);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Re-arms every stored lease's timer (on unseal); overdue leases are
    /// due now, irrevocable ones stay as they are. Returns how many.
    pub async fn load(&self) -> Result<usize, RequestError> {
        let mut n = 0;
        for id in self.ids_under("").await? {
            if let Some(e) = self.get(&id).await?
                && !e.irrevocable
            {
                self.schedule_at(e.expire_time, &id);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Removes token-index entries whose lease is gone and schedules now
    /// the leases of tokens that no longer exist in `tokens`.
    pub(crate) async fn tidy(&self, tokens: &dyn TokenIndex) -> Result<usize, RequestError> {
        let mut fixed = 0;
        for folder in self.barrier.list(TOKEN_PREFIX).await? {
            let token = folder.trim_end_matches('/');
            let alive = tokens.token_exists(token).await?;
            for k in self
                .barrier
                .list(&format!("{TOKEN_PREFIX}{folder}"))
                .await?
            {
                let key = format!("{TOKEN_PREFIX}{folder}{k}");
                let Some(raw) = self.barrier.get(&key).await? else {
                    continue;
                };
                let id = String::from_utf8_lossy(&raw).into_owned();
                match self.get(&id).await? {
                    None => {
                        self.barrier.delete(&key).await?;
                        fixed += 1;
                    }
                    // Irrevocable leases wait for revoke-force; the others
                    // of a gone token are due now (once).
                    Some(e) if !alive && !e.irrevocable => {
                        self.unschedule(&id);
                        self.schedule_at(now(), &id);
                        fixed += 1;
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(fixed)
    }

    /// The leases due by `now`, taken off the schedule.
    fn take_due(&self, now: i64, max: usize) -> Vec<String> {
        let mut s = self.schedule.lock().unwrap_or_else(|e| e.into_inner());
        let due: Vec<(i64, String)> = s
            .iter()
            .take_while(|(t, _)| *t <= now)
            .take(max)
            .cloned()
            .collect();
        for d in &due {
            s.remove(d);
        }
        due.into_iter().map(|(_, id)| id).collect()
    }

    fn next_due(&self) -> Option<i64> {
        self.schedule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .map(|(t, _)| *t)
    }

    /// Revokes what is due, at most [`REVOKE_CONCURRENCY`] at a time;
    /// failures are rescheduled by [`Leases::failed`].
    pub async fn revoke_due(&self, engines: &dyn Engines) -> usize {
        let mut done = 0;
        loop {
            let due = self.take_due(now(), REVOKE_CONCURRENCY);
            if due.is_empty() {
                return done;
            }
            let runs = due.iter().map(|id| async move {
                match self.revoke(id, false, engines).await {
                    Ok(_) => 1,
                    Err(e) => {
                        tracing::warn!(lease_id = %id, "revocation failed (will retry): {e}");
                        0
                    }
                }
            });
            done += futures_util::future::join_all(runs)
                .await
                .into_iter()
                .sum::<usize>();
        }
    }

    /// How long until the next lease is due (zero when one is).
    pub fn until_next_due(&self) -> Duration {
        match self.next_due() {
            Some(t) => Duration::from_secs(u64::try_from(t - now()).unwrap_or(0)),
            None => Duration::from_secs(3600),
        }
    }
}

mod engines;
pub(crate) use engines::{RouteEngines, spawn_expiry};

#[cfg(test)]
mod tests;
