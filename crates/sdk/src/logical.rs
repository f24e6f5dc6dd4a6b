//! What a plugin sees and returns: [`Request`], [`Response`], [`Auth`],
//! [`Mount`], [`Info`], and the two traits a plugin implements, [`Backend`]
//! (one engine) and [`Factory`] (makes an engine per mount).
//!
//! ```text
//!  host ──Setup(mount)──▶ Factory::create ──▶ Arc<dyn Backend> (per mount, or one shared)
//!  host ──HandleRequest(mount_id, request)──▶ Backend::handle_request(Request, Storage)
//!                                                   │ Storage is scoped to mount_id
//!                                                   ▼
//!                                      host Storage service (get/put/delete/list)
//! ```
//!
//! Most plugins never implement [`Backend`] by hand: they build a
//! [`PathBackend`](crate::framework::PathBackend) from paths and handlers.

use crate::error::Error;
use crate::lease::{SecretLease, SecretRequest};
pub use crate::mount::Mount;
use crate::storage::Storage;
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Whether the plugin is a secrets engine or an auth method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A secrets engine, mounted with `secrets enable`.
    Secret,
    /// An auth method, mounted with `auth enable`; logins return [`Auth`].
    Credential,
}

/// What `Info` reports: kind, version and special paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Secrets engine or auth method.
    pub kind: Kind,
    /// The plugin's own version, e.g. `v1.2.0`.
    pub version: String,
    /// Paths (relative to the mount, `*` suffix globs) that need `sudo`.
    pub root_paths: Vec<String>,
    /// Paths that need no token, e.g. `login/*`.
    pub unauthenticated_paths: Vec<String>,
}

/// The operation of a request. The host resolves a write into
/// [`Create`](Operation::Create) or [`Update`](Operation::Update) with the
/// plugin's existence check; without one every write is an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// GET.
    Read,
    /// A write to a path that does not exist yet.
    Create,
    /// A write to an existing path (or to a path without existence check).
    Update,
    /// DELETE.
    Delete,
    /// LIST.
    List,
}

impl Operation {
    /// Every operation, in wire order.
    pub const ALL: [Operation; 5] = [
        Operation::Read,
        Operation::Create,
        Operation::Update,
        Operation::Delete,
        Operation::List,
    ];

    /// Lower-case name, as in ACL capabilities.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::List => "list",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One request to a mount of the plugin.
#[derive(Debug, Clone)]
pub struct Request {
    /// Unique request ID (for logs).
    pub id: String,
    /// What to do.
    pub operation: Operation,
    /// The path relative to the mount (`test` for `mock/test`).
    pub path: String,
    /// The JSON body (writes) or query parameters (reads, lists).
    pub data: Map<String, Value>,
    /// The calling token's accessor, when authenticated.
    pub client_token_accessor: Option<String>,
    /// The calling token's display name, when authenticated.
    pub display_name: Option<String>,
    /// The mount the request is for.
    pub mount: Arc<Mount>,
}

impl Request {
    /// A request for tests, on [`Mount::for_tests`].
    pub fn new(operation: Operation, path: impl Into<String>, data: Map<String, Value>) -> Self {
        Request {
            id: String::new(),
            operation,
            path: path.into(),
            data,
            client_token_accessor: None,
            display_name: None,
            mount: Arc::new(Mount::for_tests()),
        }
    }
}

/// The authentication result of a login on an auth method; the host turns
/// it into a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Auth {
    /// Policies of the token.
    pub policies: Vec<String>,
    /// Metadata attached to the token.
    pub metadata: BTreeMap<String, String>,
    /// Display name of the token (e.g. `userpass-alice`).
    pub display_name: String,
    /// Token TTL; zero means the mount's default.
    pub ttl: Duration,
    /// Token max TTL; zero means the mount's max.
    pub max_ttl: Duration,
    /// Whether the token can be renewed.
    pub renewable: bool,
    /// Number of uses, 0 for unlimited.
    pub num_uses: i64,
}

/// A successful answer. `Ok(None)` from a handler means "nothing to
/// return": 404 for reads and lists, 204 otherwise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    /// The `data` object.
    pub data: Option<Map<String, Value>>,
    /// Set by logins on auth methods.
    pub auth: Option<Auth>,
    /// Human-readable warnings shown with the response.
    pub warnings: Vec<String>,
    /// Lease duration of the returned secret; zero for none.
    pub lease_duration: Duration,
    /// Whether the lease is renewable.
    pub renewable: bool,
    /// The host may answer the same read from memory until the mount's
    /// storage changes (see [`Response::cacheable`]).
    pub cacheable: bool,
    /// A secret with a lease (dynamic secrets): the host records a lease
    /// and later calls [`Backend::renew_secret`] / [`Backend::revoke_secret`]
    /// with its internal data. See [`crate::lease`].
    pub secret: Option<SecretLease>,
}

impl Response {
    /// A response carrying `data`.
    pub fn data(data: Map<String, Value>) -> Self {
        Response {
            data: Some(data),
            ..Default::default()
        }
    }

    /// A response carrying a JSON value: an object becomes `data`; any other
    /// value is wrapped as `{"value": ...}`.
    pub fn json(value: Value) -> Self {
        match value {
            Value::Object(map) => Self::data(map),
            other => {
                let mut map = Map::new();
                map.insert("value".into(), other);
                Self::data(map)
            }
        }
    }

    /// A list response, `{"keys": [...]}`.
    pub fn list(keys: Vec<String>) -> Self {
        let mut map = Map::new();
        map.insert("keys".into(), Value::from(keys));
        Self::data(map)
    }

    /// A login response.
    pub fn auth(auth: Auth) -> Self {
        Response {
            auth: Some(auth),
            ..Default::default()
        }
    }

    /// Sets the lease duration.
    pub fn with_lease(mut self, lease: Duration, renewable: bool) -> Self {
        self.lease_duration = lease;
        self.renewable = renewable;
        self
    }

    /// Lets the host cache this read response: promise that it depends only
    /// on the request's path and data and on the mount's storage — not on
    /// the time, randomness, the caller, or state kept outside storage. The
    /// host then answers the same read from memory (after its own token and
    /// policy checks) until anything writes to the mount's storage, the
    /// plugin process changes, or the mount is set up again. Ignored on
    /// anything but a read without auth and without a lease.
    pub fn cacheable(mut self) -> Self {
        self.cacheable = true;
        self
    }

    /// Adds a warning.
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }
}

/// A secrets engine or auth method. Storage is passed per request, already
/// scoped to the request's mount, so one instance can serve many mounts.
///
/// Errors are logical ([`Error`]): they reach the client as 4xx/5xx replies,
/// never as gRPC failures. The SDK catches a panic in a handler, so a
/// panicking handler becomes a 500 instead of taking the process down.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Kind, version and special paths.
    fn info(&self) -> Info;

    /// Called after `Setup`, with the mount's storage (enable, unseal,
    /// reload). The default does nothing.
    async fn initialize(&self, _mount: &Mount, _storage: &Storage) -> Result<(), Error> {
        Ok(())
    }

    /// Handles one request.
    async fn handle_request(
        &self,
        req: Request,
        storage: Storage,
    ) -> Result<Option<Response>, Error>;

    /// Whether the target of a write exists: `Some(exists)`, or `None` when
    /// the path has no existence check (every write is then an update).
    async fn existence_check(
        &self,
        _req: Request,
        _storage: Storage,
    ) -> Result<Option<bool>, Error> {
        Ok(None)
    }

    /// A storage key of the mount changed outside the plugin: drop caches.
    async fn invalidate(&self, _mount: &Mount, _key: &str) {}

    /// Renews a leased secret this backend handed out: the TTL granted
    /// (zero: as asked; the host caps it at the lease's max TTL). The
    /// default refuses (a backend without leases).
    async fn renew_secret(
        &self,
        _req: SecretRequest,
        _storage: Storage,
    ) -> Result<Duration, Error> {
        Err(Error::invalid("lease is not renewable"))
    }

    /// Revokes a leased secret this backend handed out. An error makes the
    /// host retry with backoff. The default has nothing to revoke.
    async fn revoke_secret(&self, _req: SecretRequest, _storage: Storage) -> Result<(), Error> {
        Ok(())
    }

    /// The mount is going away (disable, seal, reload elsewhere).
    async fn cleanup(&self, _mount: &Mount) {}
}

/// Makes the [`Backend`] for each mount at `Setup`, like Vault's
/// `logical.Factory`. Use it when an engine keeps per-mount state in memory
/// or validates mount options; [`serve`](crate::serve) wraps a single shared
/// backend in [`Shared`].
#[async_trait]
pub trait Factory: Send + Sync + 'static {
    /// What `Info` reports (called once, before any mount exists).
    fn info(&self) -> Info;

    /// Creates (or hands out) the backend for `mount`. An error refuses the
    /// mount; its message reaches the operator who enabled it.
    async fn create(&self, mount: &Mount) -> Result<Arc<dyn Backend>, Error>;
}

/// One backend instance shared by every mount.
pub struct Shared(Arc<dyn Backend>);

impl Shared {
    /// Shares `backend` across all mounts.
    pub fn new(backend: impl Backend) -> Self {
        Shared(Arc::new(backend))
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Shared").field(&self.0.info()).finish()
    }
}

#[async_trait]
impl Factory for Shared {
    fn info(&self) -> Info {
        self.0.info()
    }

    async fn create(&self, _mount: &Mount) -> Result<Arc<dyn Backend>, Error> {
        Ok(self.0.clone())
    }
}
