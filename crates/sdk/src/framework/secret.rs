//! Secret types, like Vault's `framework.Secret`: a named kind of leased
//! secret with a default TTL and the handlers that renew and revoke it.
//!
//! ```text
//!  handler: creds.response(data, internal) ──▶ Response { secret: internal + {"secret_type": "creds"} }
//!  host RenewSecret(internal) ──▶ PathBackend ── internal["secret_type"] ──▶ creds.renew(req, storage)
//!  host RevokeSecret(internal) ─▶ PathBackend ── internal["secret_type"] ──▶ creds.revoke(req, storage)
//! ```
//!
//! A [`PathBackend`](super::PathBackend) declares its types with
//! [`PathBackend::secret`](super::PathBackend::secret); the host's renewals
//! and revocations are routed by the `secret_type` key of the internal
//! data (the name Vault uses), so one backend can hand out several kinds.
//! Under Vault or OpenBao the same happens through Vault's plugin protocol
//! (`Response.secret`, then `renew`/`revoke` requests carrying it; see
//! `vault/convert.rs`).

use crate::error::Error;
use crate::lease::{SecretLease, SecretRequest};
use crate::logical::Response;
use crate::storage::Storage;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The internal-data key naming a secret's type (as Vault's).
pub const SECRET_TYPE_KEY: &str = "secret_type";

type RenewFn = Arc<
    dyn Fn(SecretRequest, Storage) -> BoxFuture<'static, Result<Duration, Error>> + Send + Sync,
>;
type RevokeFn =
    Arc<dyn Fn(SecretRequest, Storage) -> BoxFuture<'static, Result<(), Error>> + Send + Sync>;

/// A kind of leased secret a backend hands out.
///
/// ```
/// use lockbox_sdk::framework::Secret;
/// use std::time::Duration;
///
/// let creds = Secret::new("creds")
///     .default_ttl(Duration::from_secs(3600))
///     .renew(|req, _storage| async move { Ok(req.asked_ttl()) })
///     .revoke(|req, _storage| async move {
///         let _user = req.internal_data.get("username");
///         Ok(())
///     });
/// let resp = creds.response(Default::default(), Default::default());
/// assert_eq!(resp.secret.unwrap().internal_data["secret_type"], "creds");
/// ```
#[derive(Clone)]
pub struct Secret {
    name: String,
    default_ttl: Duration,
    max_ttl: Duration,
    renew: Option<RenewFn>,
    revoke: Option<RevokeFn>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("default_ttl", &self.default_ttl)
            .field("max_ttl", &self.max_ttl)
            .field("renewable", &self.renew.is_some())
            .field("revocable", &self.revoke.is_some())
            .finish()
    }
}

impl Secret {
    /// A secret type named `name` (stored as `secret_type` in every
    /// secret's internal data). Without [`Secret::renew`] its leases are not
    /// renewable; without [`Secret::revoke`] revoking them does nothing.
    pub fn new(name: impl Into<String>) -> Self {
        Secret {
            name: name.into(),
            default_ttl: Duration::ZERO,
            max_ttl: Duration::ZERO,
            renew: None,
            revoke: None,
        }
    }

    /// The type's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The TTL of a secret whose response sets none (zero: the mount's).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The max TTL of a secret whose response sets none (zero: the mount's).
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// The renew handler: the TTL granted (zero: as asked). The host caps
    /// it at the lease's max TTL.
    pub fn renew<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(SecretRequest, Storage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Duration, Error>> + Send + 'static,
    {
        self.renew = Some(Arc::new(move |r, s| Box::pin(f(r, s))));
        self
    }

    /// The revoke handler. An error makes the host retry with backoff, so
    /// it must be safe to run again (a secret already gone is success).
    pub fn revoke<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(SecretRequest, Storage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.revoke = Some(Arc::new(move |r, s| Box::pin(f(r, s))));
        self
    }

    /// A response carrying `data` and a secret of this type with
    /// `internal` (plus `secret_type`), the type's default TTLs and
    /// renewable when the type has a renew handler. Adjust the TTLs with
    /// [`Secret::response_with_ttl`].
    pub fn response(&self, data: Map<String, Value>, internal: Map<String, Value>) -> Response {
        self.response_with_ttl(data, internal, self.default_ttl, self.max_ttl)
    }

    /// Like [`Secret::response`] with explicit TTLs (zero: the mount's).
    pub fn response_with_ttl(
        &self,
        data: Map<String, Value>,
        mut internal: Map<String, Value>,
        ttl: Duration,
        max_ttl: Duration,
    ) -> Response {
        internal.insert(SECRET_TYPE_KEY.into(), Value::from(self.name.clone()));
        Response {
            data: Some(data),
            secret: Some(SecretLease {
                internal_data: internal,
                ttl,
                max_ttl,
                renewable: self.renew.is_some(),
            }),
            ..Default::default()
        }
    }

    pub(super) async fn handle_renew(
        &self,
        req: SecretRequest,
        storage: Storage,
    ) -> Result<Duration, Error> {
        match &self.renew {
            Some(f) => f(req, storage).await,
            None => Err(Error::invalid(format!(
                "lease is not renewable: secrets of type {:?} cannot be renewed",
                self.name
            ))),
        }
    }

    pub(super) async fn handle_revoke(
        &self,
        req: SecretRequest,
        storage: Storage,
    ) -> Result<(), Error> {
        match &self.revoke {
            Some(f) => f(req, storage).await,
            None => Ok(()),
        }
    }
}

/// The type name in a secret's internal data, or why it has none.
pub(super) fn secret_type(req: &SecretRequest) -> Result<&str, Error> {
    match req.internal_data.get(SECRET_TYPE_KEY) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(Error::invalid(format!(
            "the secret of lease {:?} has no {SECRET_TYPE_KEY:?} in its internal data; \
             this plugin cannot renew or revoke it",
            req.lease_id
        ))),
    }
}
