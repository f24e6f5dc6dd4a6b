//! Leased secrets (dynamic secrets): what a plugin hands out with a lease,
//! and what the host hands back to renew or revoke it.
//!
//! ```text
//!  handler ──Response { secret: Some(SecretLease) }──▶ host records a lease
//!                                                       (lease_id, TTL, internal data)
//!  host lease manager ──RenewSecret(SecretRequest)──▶ Backend::renew_secret  → granted TTL
//!                     ──RevokeSecret(SecretRequest)─▶ Backend::revoke_secret → done / error
//! ```
//!
//! The internal data is the plugin's own note about the secret (the user to
//! drop, the role it came from): the host stores it encrypted, never shows
//! it to clients, and gives it back unchanged. A plugin built on
//! [`PathBackend`](crate::framework::PathBackend) declares secret types
//! ([`framework::Secret`](crate::framework::Secret)) and never implements
//! the two calls by hand.

use crate::mount::Mount;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// A secret with a lease, as a handler returns it in
/// [`Response::secret`](crate::Response::secret) (Vault's `logical.Secret`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretLease {
    /// The plugin's own data about the secret, given back at renew/revoke.
    pub internal_data: Map<String, Value>,
    /// TTL; zero means the mount's default.
    pub ttl: Duration,
    /// Max TTL from issue; zero means the mount's max.
    pub max_ttl: Duration,
    /// Whether the lease can be renewed.
    pub renewable: bool,
}

/// A leased secret handed back to the plugin that issued it, for renewal
/// or revocation (Vault's `RenewRequest` / `RevokeRequest`).
#[derive(Debug, Clone)]
pub struct SecretRequest {
    /// The request path that created the secret, relative to the mount.
    pub path: String,
    /// The lease id the host gave it.
    pub lease_id: String,
    /// What the plugin put in [`SecretLease::internal_data`].
    pub internal_data: Map<String, Value>,
    /// The response data the secret was handed out with.
    pub data: Map<String, Value>,
    /// Its TTL at issue.
    pub ttl: Duration,
    /// Its max TTL from issue (zero: none).
    pub max_ttl: Duration,
    /// The renewal increment asked (zero: none; renewals only).
    pub increment: Duration,
    /// Unix seconds of issue.
    pub issue_time: i64,
    /// Whether the lease is renewable.
    pub renewable: bool,
    /// The mount the secret belongs to.
    pub mount: Arc<Mount>,
}

impl SecretRequest {
    /// A request for tests, on [`Mount::for_tests`].
    pub fn new(path: impl Into<String>, internal_data: Map<String, Value>) -> Self {
        SecretRequest {
            path: path.into(),
            lease_id: String::new(),
            internal_data,
            data: Map::new(),
            ttl: Duration::ZERO,
            max_ttl: Duration::ZERO,
            increment: Duration::ZERO,
            issue_time: 0,
            renewable: true,
            mount: Arc::new(Mount::for_tests()),
        }
    }

    /// The TTL a renewal asks for: the increment, else the TTL at issue.
    pub fn asked_ttl(&self) -> Duration {
        if self.increment.is_zero() {
            self.ttl
        } else {
            self.increment
        }
    }
}
