//! The logical layer: what a request to a mount looks like, what a secrets
//! engine returns, and the [`Backend`] trait every engine implements.
//!
//! The built-in `kv` engine implements [`Backend`] directly; plugin-backed
//! mounts implement the same trait by forwarding over gRPC. A backend gets its
//! storage per request (`&dyn Storage`, already encrypted and scoped to the
//! mount), so one backend instance can serve many mounts.
//!
//! [`RequestError`] is the error of the whole request path (core, system
//! backend, token store, engines); [`RequestError::status`] maps it to the
//! HTTP status Vault would answer.

pub mod duration;

use crate::barrier::{BarrierError, Storage};
use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

/// The operation of a request, after `POST`/`PUT` is resolved into create
/// or update by the backend's existence check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// GET.
    Read,
    /// POST/PUT to a path that does not exist yet.
    Create,
    /// POST/PUT to an existing path (or to a backend without existence checks).
    Update,
    /// DELETE.
    Delete,
    /// LIST, or GET with `?list=true`.
    List,
    /// PATCH (JSON merge patch of an existing entry; Vault's
    /// `PatchOperation`, used by kv version 2).
    Patch,
}

impl Operation {
    /// The ACL capability this operation needs.
    pub fn capability(self) -> crate::policy::Capability {
        use crate::policy::Capability;
        match self {
            Operation::Read => Capability::Read,
            Operation::Create => Capability::Create,
            Operation::Update => Capability::Update,
            Operation::Delete => Capability::Delete,
            Operation::List => Capability::List,
            Operation::Patch => Capability::Patch,
        }
    }
}

/// A request as a backend sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Unique ID, echoed as `request_id`.
    pub id: String,
    /// What to do.
    pub operation: Operation,
    /// The path relative to the mount (`test` for `mock/test`).
    pub path: String,
    /// The JSON body (or query parameters for reads and lists).
    pub data: Map<String, Value>,
    /// The mount the request was routed to, e.g. `secret/`.
    pub mount_point: String,
    /// The mount's type.
    pub mount_type: String,
    /// The mount's accessor.
    pub mount_accessor: String,
    /// The effective default lease TTL of the mount, in seconds.
    pub mount_default_ttl: u64,
    /// The effective max lease TTL of the mount, in seconds.
    pub mount_max_ttl: u64,
    /// The mount's `force_no_cache`: no answer of this mount may be served
    /// from a cache.
    pub mount_force_no_cache: bool,
    /// The calling token's accessor, when authenticated.
    pub client_token_accessor: Option<String>,
    /// The calling token's display name, when authenticated.
    pub display_name: Option<String>,
    /// The client's address (Vault's `remote_address`/`remote_port`,
    /// `Connection.remote_addr` for plugins), when the request came over
    /// the network.
    pub remote: Option<std::net::SocketAddr>,
}

/// Authentication data returned by a login (auth backends, token store).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Auth {
    /// The token.
    pub client_token: String,
    /// The token's accessor.
    pub accessor: String,
    /// All policies of the token.
    pub policies: Vec<String>,
    /// Policies attached to the token itself.
    pub token_policies: Vec<String>,
    /// Policies from identity (always empty for now).
    pub identity_policies: Option<Vec<String>>,
    /// Token metadata.
    pub metadata: Option<serde_json::Map<String, Value>>,
    /// TTL in seconds.
    pub lease_duration: u64,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// Identity entity (empty).
    pub entity_id: String,
    /// `service`.
    pub token_type: String,
    /// Whether the token has no parent.
    pub orphan: bool,
    /// Always null.
    pub mfa_requirement: Option<Value>,
    /// Remaining uses, 0 for unlimited.
    pub num_uses: i64,
}

/// What a credential backend's login asks the core to issue as a token.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoginAuth {
    /// Policies of the new token.
    pub policies: Vec<String>,
    /// Token metadata.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Display name.
    pub display_name: String,
    /// TTL in seconds (0: the mount's default).
    pub ttl: u64,
    /// Max TTL in seconds (0: the mount's max).
    pub max_ttl: u64,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// Use limit (0: unlimited).
    pub num_uses: i64,
    /// The auth method's own data about the login (Vault's
    /// `Auth.InternalData`): kept with the token, encrypted, never shown,
    /// and given back to the method when the token is renewed.
    pub internal_data: Map<String, Value>,
}

/// A token renewal the core asks of the auth method that issued the token
/// (Vault's `RenewAuthRequest`).
#[derive(Debug, Clone, Default)]
pub struct AuthRenewal {
    /// The login path relative to the mount (`login`).
    pub path: String,
    /// The token's policies.
    pub policies: Vec<String>,
    /// The token's metadata.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// What the method kept at login.
    pub internal_data: Map<String, Value>,
    /// Display name.
    pub display_name: String,
    /// The token's TTL at creation, seconds.
    pub ttl: u64,
    /// The token's hard cap, seconds (0: none).
    pub max_ttl: u64,
    /// The increment the client asked for, seconds (0: none).
    pub increment: u64,
    /// Unix seconds of issue.
    pub issue_time: i64,
    /// The token's accessor.
    pub accessor: String,
}

/// A secret with a lease, as an engine hands it out: the core records the
/// lease (`core::leases`) and later asks the engine to renew or revoke it
/// with the same internal data (Vault's `logical.Secret`).
#[derive(Debug, Clone, Default)]
pub struct SecretLease {
    /// The engine's own data about the secret (e.g. the user to drop).
    pub internal_data: Map<String, Value>,
    /// TTL in seconds (0: the mount's default).
    pub ttl: u64,
    /// Max TTL in seconds (0: the mount's max).
    pub max_ttl: u64,
    /// Whether it can be renewed.
    pub renewable: bool,
}

/// A lease's secret handed back to its engine for renewal or revocation
/// (Vault's `RenewRequest` / `RevokeRequest`).
#[derive(Debug, Clone, Default)]
pub struct SecretCall {
    /// The request path that created it, relative to the mount.
    pub path: String,
    /// The lease id.
    pub lease_id: String,
    /// The engine's internal data.
    pub internal_data: Map<String, Value>,
    /// The response data it was handed out with.
    pub data: Map<String, Value>,
    /// Its TTL at issue, seconds.
    pub ttl: u64,
    /// Its max TTL from issue, seconds (0: none).
    pub max_ttl: u64,
    /// The renewal increment asked, seconds (0: none).
    pub increment: u64,
    /// Unix seconds of issue.
    pub issue_time: i64,
    /// Whether it is renewable.
    pub renewable: bool,
}

/// What a backend returns for a successful request.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// The `data` object.
    pub data: Option<Map<String, Value>>,
    /// The `auth` object, for logins and token creation.
    pub auth: Option<Auth>,
    /// A login result from a credential backend; the core turns it into a
    /// token and fills `auth`.
    pub login: Option<LoginAuth>,
    /// A secret with a lease (dynamic secrets); the core registers it and
    /// fills `lease_id`, `lease_duration` and `renewable`.
    pub secret: Option<SecretLease>,
    /// The lease id (set by the core).
    pub lease_id: String,
    /// Lease duration in seconds (kv's refresh interval).
    pub lease_duration: u64,
    /// Whether the lease is renewable.
    pub renewable: bool,
    /// Human-readable warnings.
    pub warnings: Vec<String>,
}

impl Response {
    /// A response carrying `data`.
    pub fn data(data: Map<String, Value>) -> Self {
        Self {
            data: Some(data),
            ..Default::default()
        }
    }

    /// A response carrying `{"keys": [...]}`.
    pub fn list(keys: Vec<String>) -> Self {
        let mut data = Map::new();
        data.insert("keys".into(), Value::from(keys));
        Self::data(data)
    }
}

/// Errors anywhere on the request path.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The request is malformed or asks for something invalid (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// Missing or bad token, or the policy does not allow it (403).
    #[error("permission denied")]
    PermissionDenied,
    /// Refused with a reason, e.g. a failed login (403).
    #[error("{0}")]
    Denied(String),
    /// No mount or handler for the path (404).
    #[error("no handler for route {path:?}. route entry not found.")]
    NoHandler {
        /// The full request path.
        path: String,
    },
    /// The path exists but not for this operation (405).
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// The body is larger than `max_request_size` (413).
    #[error(
        "http: request body too large (limit is {limit} bytes; raise max_request_size to accept more)"
    )]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The server is sealed (503).
    #[error("lockbox is sealed")]
    Sealed,
    /// This node is an HA standby and the request is not one a standby
    /// answers (503 where the listener did not forward it).
    #[error(
        "this node is a standby and cannot serve this request: send it to the active node (sys/leader names it)"
    )]
    Standby,
    /// The server is not initialized (400 for most paths).
    #[error("lockbox is not initialized")]
    NotInitialized,
    /// A backend is temporarily unavailable (503).
    #[error("{0}")]
    Unavailable(String),
    /// Storage failed (500).
    #[error("internal error: {0}")]
    Storage(#[from] BarrierError),
    /// Anything else that is our fault (500).
    #[error("internal error: {0}")]
    Internal(String),
    /// An error a plugin gave with the HTTP status of its choice (a 4xx or
    /// 5xx; Vault's `logical.CodedError`), answered with that status.
    #[error("{message}")]
    Coded {
        /// The status, 400 to 599.
        status: u16,
        /// The plugin's message.
        message: String,
    },
}

impl RequestError {
    /// The HTTP status code Vault uses for this error.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::InvalidRequest(_) | RequestError::NotInitialized => 400,
            RequestError::PermissionDenied | RequestError::Denied(_) => 403,
            RequestError::NoHandler { .. } => 404,
            RequestError::UnsupportedOperation => 405,
            RequestError::TooLarge { .. } => 413,
            RequestError::Sealed | RequestError::Standby | RequestError::Unavailable(_) => 503,
            RequestError::Storage(_) | RequestError::Internal(_) => 500,
            RequestError::Coded { status, .. } => *status,
        }
    }

    /// Shorthand for a 400 with a message.
    pub fn invalid(msg: impl Into<String>) -> Self {
        RequestError::InvalidRequest(msg.into())
    }
}

/// Special paths a backend declares, relative to its mount.
#[derive(Debug, Clone, Default)]
pub struct SpecialPaths {
    /// Paths that need `sudo` in addition to the operation's capability.
    pub root: Vec<String>,
    /// Paths that need no token (logins).
    pub unauthenticated: Vec<String>,
}

impl SpecialPaths {
    /// Whether `path` matches one of `patterns` (`*` suffix globs allowed).
    pub fn matches(patterns: &[String], path: &str) -> bool {
        patterns.iter().any(|p| crate::policy::matches(p, path))
    }
}

/// Whether a mount is a secrets engine or an auth method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Mounted under `sys/mounts`.
    Secret,
    /// Mounted under `sys/auth`.
    Credential,
}

/// A secrets engine or auth method.
#[async_trait]
pub trait Backend: std::any::Any + Send + Sync {
    /// Secret engine or auth method.
    fn kind(&self) -> BackendKind;

    /// Paths needing sudo or no token.
    fn special_paths(&self) -> SpecialPaths {
        SpecialPaths::default()
    }

    /// Renews a token this auth method issued: `Ok(Some(ttl))` is the new
    /// TTL in seconds the method grants (0: the token's own), an error
    /// refuses the renewal; `Ok(None)` (the default) means the method has
    /// no say and the core renews by its own rules.
    async fn renew_auth(
        &self,
        _req: &AuthRenewal,
        _storage: &dyn Storage,
    ) -> Result<Option<u64>, RequestError> {
        Ok(None)
    }

    /// Renews a leased secret: the TTL the engine grants in seconds (0: as
    /// asked). The default refuses (an engine without leases).
    async fn renew_secret(
        &self,
        _req: &SecretCall,
        _storage: &dyn Storage,
    ) -> Result<u64, RequestError> {
        Err(RequestError::invalid("lease is not renewable"))
    }

    /// Revokes a leased secret. The default has nothing to revoke.
    async fn revoke_secret(
        &self,
        _req: &SecretCall,
        _storage: &dyn Storage,
    ) -> Result<(), RequestError> {
        Ok(())
    }

    /// Called once when a mount is set up (enable or unseal).
    async fn initialize(&self, _storage: &crate::barrier::View) -> Result<(), RequestError> {
        Ok(())
    }

    /// Whether the target of a create/update exists. `None` means the
    /// backend has no existence check, and the request is an update.
    async fn exists(
        &self,
        _req: &Request,
        _storage: &dyn Storage,
    ) -> Result<Option<bool>, RequestError> {
        Ok(None)
    }

    /// Whether this backend's reads and lists change nothing (no storage
    /// write, no call out, no lease): then the audit devices may record
    /// such a request's entry together with its response's, both before
    /// the reply leaves (one write instead of two). The default is `false`:
    /// plugins' reads may create credentials.
    fn reads_change_nothing(&self) -> bool {
        false
    }

    /// Handles a request. `Ok(None)` is "nothing to return": 404 for reads
    /// and lists, 204 for everything else.
    async fn handle(
        &self,
        req: &Request,
        storage: &dyn Storage,
    ) -> Result<Option<Response>, RequestError>;

    /// Called when the mount is disabled or the server seals.
    async fn cleanup(&self) {}

    /// The version this backend reports (`running_plugin_version`).
    fn version(&self) -> String {
        String::new()
    }

    /// The sha256 of the running plugin binary (`running_sha256`).
    fn running_sha256(&self) -> String {
        String::new()
    }
}
