//! A small path framework, like Vault's `framework.Backend`: a backend is a
//! list of [`Path`]s, each with a [pattern](pattern), typed [fields](Field),
//! a handler per operation, an optional existence check and help text.
//!
//! ```text
//! request "roles/web" (update, {"length": "12"})
//!   │ 1. reject `.` / `..` segments                         → 400
//!   │ 2. first Path whose pattern matches, in declaration order  → else 404
//!   │ 3. its handler for the operation (create falls back to update) → else 405
//!   │ 4. captures + body checked against the fields         → else 400
//!   ▼ 5. handler(Request, Fields, Storage)
//! ```
//!
//! Handlers are async closures or `async fn`s taking owned
//! `(Request, Fields, Storage)` (all cheap: built per request) and returning
//! `Result<Option<Response>, Error>`; or any type implementing [`Handler`].
//!
//! ```
//! use lockbox_sdk::framework::{Field, Path, PathBackend};
//! use lockbox_sdk::{Kind, Response};
//!
//! let backend = PathBackend::new(Kind::Secret, "v0.1.0").path(
//!     Path::new("greeting/{name}")
//!         .field(Field::string("salutation").default("Hello"))
//!         .read(|_req, fields, _storage| async move {
//!             let text = format!(
//!                 "{} {}",
//!                 fields.str("salutation").unwrap_or_default(),
//!                 fields.str("name").unwrap_or_default()
//!             );
//!             Ok(Some(Response::json(serde_json::json!({ "text": text }))))
//!         }),
//! );
//! # let _ = backend;
//! ```
//!
//! Bodies may carry keys the path does not declare: they are ignored, and a
//! successful response then carries a warning naming them (unless the path
//! declares no body fields at all, like a kv-style catch-all).

pub mod fields;
pub mod pattern;
pub mod secret;

pub use fields::{Field, FieldType, FieldValue, Fields, parse_duration};
pub use pattern::PatternError;
pub use secret::{SECRET_TYPE_KEY, Secret};

use crate::error::Error;
use crate::lease::SecretRequest;
use crate::logical::{Backend, Info, Kind, Operation, Request, Response};
use crate::storage::Storage;
use async_trait::async_trait;
use pattern::{Captures, Pattern};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What a handler returns.
pub type HandlerResult = Result<Option<Response>, Error>;

/// A handler of one operation on a path. Implemented for every
/// `Fn(Request, Fields, Storage) -> impl Future<Output = HandlerResult>`;
/// implement it yourself for handler objects with state.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one request.
    async fn handle(&self, req: Request, fields: Fields, storage: Storage) -> HandlerResult;
}

#[async_trait]
impl<F, Fut> Handler for F
where
    F: Fn(Request, Fields, Storage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    async fn handle(&self, req: Request, fields: Fields, storage: Storage) -> HandlerResult {
        self(req, fields, storage).await
    }
}

/// An existence check: whether the target of a write exists, so the host
/// can tell create from update (and apply the right ACL capability).
#[async_trait]
pub trait ExistenceCheck: Send + Sync + 'static {
    /// Whether the target exists.
    async fn exists(&self, req: Request, fields: Fields, storage: Storage) -> Result<bool, Error>;
}

#[async_trait]
impl<F, Fut> ExistenceCheck for F
where
    F: Fn(Request, Fields, Storage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<bool, Error>> + Send + 'static,
{
    async fn exists(&self, req: Request, fields: Fields, storage: Storage) -> Result<bool, Error> {
        self(req, fields, storage).await
    }
}

/// One path of a backend: a pattern, its fields, handlers and help.
pub struct Path {
    pattern: Pattern,
    fields: Vec<Field>,
    handlers: BTreeMap<Operation, Arc<dyn Handler>>,
    existence: Option<Arc<dyn ExistenceCheck>>,
    synopsis: String,
    description: String,
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Path")
            .field("pattern", &self.pattern.to_string())
            .field("fields", &self.fields)
            .field("operations", &self.handlers.keys().collect::<Vec<_>>())
            .field("existence_check", &self.existence.is_some())
            .finish()
    }
}

impl Path {
    /// A path with `pattern` (see [`pattern`] for the syntax). Captures are
    /// fields of type string unless declared otherwise with [`Path::field`].
    ///
    /// # Panics
    ///
    /// If the pattern is invalid: that is a bug in the plugin, found by its
    /// first test. Use [`Path::try_new`] to handle it instead.
    pub fn new(pattern: &str) -> Self {
        match Self::try_new(pattern) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Path::new`], returning the pattern error.
    pub fn try_new(pattern: &str) -> Result<Self, PatternError> {
        let pattern = Pattern::parse(pattern)?;
        let fields = pattern.capture_names().map(Field::string).collect();
        Ok(Path {
            pattern,
            fields,
            handlers: BTreeMap::new(),
            existence: None,
            synopsis: String::new(),
            description: String::new(),
        })
    }

    /// Declares a field (replacing a capture's default string field of the
    /// same name, e.g. to make `{id}` an int).
    ///
    /// # Panics
    ///
    /// If the field's default does not fit its type or constraints (a bug in
    /// the plugin).
    pub fn field(mut self, field: Field) -> Self {
        if let Some(default) = &field.default {
            if let Err(e) = field.parse(default) {
                panic!("path {:?}: invalid default: {e}", self.pattern.to_string());
            }
        }
        self.fields.retain(|f| f.name != field.name);
        self.fields.push(field);
        self
    }

    /// Sets the handler for `operation` (any [`Handler`], e.g. a struct).
    pub fn on(mut self, operation: Operation, handler: impl Handler) -> Self {
        self.handlers.insert(operation, Arc::new(handler));
        self
    }

    /// Handles reads.
    pub fn read<F, Fut>(self, f: F) -> Self
    where
        F: Fn(Request, Fields, Storage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.on(Operation::Read, f)
    }

    /// Handles creates (writes to a path whose existence check said "no").
    pub fn create<F, Fut>(self, f: F) -> Self
    where
        F: Fn(Request, Fields, Storage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.on(Operation::Create, f)
    }

    /// Handles updates (and creates, when no create handler is set).
    pub fn update<F, Fut>(self, f: F) -> Self
    where
        F: Fn(Request, Fields, Storage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.on(Operation::Update, f)
    }

    /// Handles both creates and updates with one handler.
    pub fn write<F, Fut>(self, f: F) -> Self
    where
        F: Fn(Request, Fields, Storage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let handler: Arc<dyn Handler> = Arc::new(f);
        let mut this = self;
        this.handlers.insert(Operation::Create, handler.clone());
        this.handlers.insert(Operation::Update, handler);
        this
    }

    /// Handles deletes.
    pub fn delete<F, Fut>(self, f: F) -> Self
    where
        F: Fn(Request, Fields, Storage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.on(Operation::Delete, f)
    }

    /// Handles lists.
    pub fn list<F, Fut>(self, f: F) -> Self
    where
        F: Fn(Request, Fields, Storage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.on(Operation::List, f)
    }

    /// Sets the existence check (a closure or `async fn` returning
    /// `Result<bool, Error>`). Without one, every write is an update.
    pub fn existence_check<F, Fut>(self, f: F) -> Self
    where
        F: Fn(Request, Fields, Storage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool, Error>> + Send + 'static,
    {
        self.existence_check_with(f)
    }

    /// Sets the existence check from any [`ExistenceCheck`] object.
    pub fn existence_check_with(mut self, check: impl ExistenceCheck) -> Self {
        self.existence = Some(Arc::new(check));
        self
    }

    /// Sets the help: a one-line synopsis and a longer description.
    pub fn help(mut self, synopsis: impl Into<String>, description: impl Into<String>) -> Self {
        self.synopsis = synopsis.into();
        self.description = description.into();
        self
    }

    /// The operations this path supports.
    pub fn operations(&self) -> Vec<Operation> {
        self.handlers.keys().copied().collect()
    }

    fn handler(&self, op: Operation) -> Option<&Arc<dyn Handler>> {
        self.handlers.get(&op).or_else(|| match op {
            Operation::Create => self.handlers.get(&Operation::Update),
            _ => None,
        })
    }

    fn declares_body_fields(&self) -> bool {
        let captures: Vec<&str> = self.pattern.capture_names().collect();
        self.fields
            .iter()
            .any(|f| !captures.contains(&f.name.as_str()))
    }

    /// The path's help text: pattern, synopsis, operations, fields.
    pub fn help_text(&self) -> String {
        let mut out = format!("## {}\n", display_pattern(&self.pattern));
        if !self.synopsis.is_empty() {
            out.push_str(&format!("\n{}\n", self.synopsis));
        }
        if !self.description.is_empty() {
            out.push_str(&format!("\n{}\n", self.description));
        }
        let ops: Vec<&str> = self.handlers.keys().map(|o| o.as_str()).collect();
        out.push_str(&format!("\nOperations: {}\n", ops.join(", ")));
        if !self.fields.is_empty() {
            out.push_str("\nFields:\n");
            for f in &self.fields {
                let mut line = format!("  {} ({})", f.name, f.ty);
                if f.required {
                    line.push_str(", required");
                }
                if let Some(d) = &f.default {
                    line.push_str(&format!(", default {d}"));
                }
                if !f.allowed.is_empty() {
                    line.push_str(&format!(", one of {}", f.allowed.join("|")));
                }
                if let Some(r) = &f.range {
                    line.push_str(&format!(", {}..={}", r.start(), r.end()));
                }
                if !f.description.is_empty() {
                    line.push_str(&format!(": {}", f.description));
                }
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

fn display_pattern(p: &Pattern) -> String {
    let s = p.to_string();
    if s.is_empty() {
        "(mount root)".into()
    } else {
        s
    }
}

/// A backend built from [`Path`]s; implements [`Backend`].
pub struct PathBackend {
    info: Info,
    paths: Vec<Path>,
    secrets: BTreeMap<String, Secret>,
    help: String,
}

impl fmt::Debug for PathBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PathBackend")
            .field("info", &self.info)
            .field("paths", &self.paths)
            .finish()
    }
}

impl PathBackend {
    /// An empty backend of `kind` reporting `version`.
    pub fn new(kind: Kind, version: impl Into<String>) -> Self {
        PathBackend {
            info: Info {
                kind,
                version: version.into(),
                root_paths: Vec::new(),
                unauthenticated_paths: Vec::new(),
            },
            paths: Vec::new(),
            secrets: BTreeMap::new(),
            help: String::new(),
        }
    }

    /// Declares a secret type: the host's renewals and revocations of
    /// secrets of that type (by `secret_type` in their internal data) go to
    /// its handlers. A later type of the same name replaces the earlier.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.insert(secret.name().to_string(), secret);
        self
    }

    /// The declared type of a secret handed back by the host.
    fn secret_of(&self, req: &SecretRequest) -> Result<&Secret, Error> {
        let name = secret::secret_type(req)?;
        self.secrets.get(name).ok_or_else(|| {
            Error::invalid(format!(
                "secret type {name:?} (lease {:?}) is not declared by this plugin; \
                 it cannot be renewed or revoked here",
                req.lease_id
            ))
        })
    }

    /// Adds a path. Paths are tried in the order they are added.
    pub fn path(mut self, path: Path) -> Self {
        self.paths.push(path);
        self
    }

    /// Declares paths that need `sudo` (`*` suffix globs).
    pub fn root_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.info.root_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Declares paths that need no token, e.g. `login/*`.
    pub fn unauthenticated_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.info.unauthenticated_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the backend's overall help text.
    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.help = text.into();
        self
    }

    /// The help text for `path` (relative to the mount), or the backend's
    /// help and every path's when `path` is empty and no path matches it.
    pub fn help_text(&self, path: &str) -> Option<String> {
        if let Some((p, _)) = self.route(path) {
            return Some(p.help_text());
        }
        if !path.is_empty() {
            return None;
        }
        let mut out = self.help.clone();
        for p in &self.paths {
            out.push_str("\n\n");
            out.push_str(&p.help_text());
        }
        Some(out)
    }

    /// The first path matching `path`, with its captures.
    fn route(&self, path: &str) -> Option<(&Path, Captures)> {
        self.paths
            .iter()
            .find_map(|p| p.pattern.matches(path).map(|caps| (p, caps)))
    }

    fn route_request(&self, path: &str) -> Result<(&Path, Captures), Error> {
        if path.split('/').any(|s| s == "." || s == "..") {
            return Err(Error::invalid(format!(
                "invalid path {path:?}: `.` and `..` segments are not allowed"
            )));
        }
        self.route(path)
            .ok_or_else(|| Error::UnsupportedPath(format!("unsupported path {path:?}")))
    }
}

#[async_trait]
impl Backend for PathBackend {
    fn info(&self) -> Info {
        self.info.clone()
    }

    async fn handle_request(&self, req: Request, storage: Storage) -> HandlerResult {
        let (path, captures) = self.route_request(&req.path)?;
        let Some(handler) = path.handler(req.operation) else {
            let supported: Vec<&str> = path.handlers.keys().map(|o| o.as_str()).collect();
            return Err(Error::UnsupportedOperation(format!(
                "unsupported operation: {} on {:?} (this path supports: {})",
                req.operation,
                req.path,
                supported.join(", ")
            )));
        };
        let check_required = matches!(req.operation, Operation::Create | Operation::Update);
        let (fields, unknown) = Fields::parse(&path.fields, &captures, &req.data, check_required)?;
        let mut response = handler.handle(req, fields, storage).await?;
        if let Some(resp) = response.as_mut() {
            if !unknown.is_empty() && path.declares_body_fields() {
                resp.warnings.push(format!(
                    "endpoint ignored these unrecognized parameters: [{}]",
                    unknown.join(", ")
                ));
            }
        }
        Ok(response)
    }

    async fn renew_secret(&self, req: SecretRequest, storage: Storage) -> Result<Duration, Error> {
        self.secret_of(&req)?.handle_renew(req, storage).await
    }

    async fn revoke_secret(&self, req: SecretRequest, storage: Storage) -> Result<(), Error> {
        self.secret_of(&req)?.handle_revoke(req, storage).await
    }

    async fn existence_check(&self, req: Request, storage: Storage) -> Result<Option<bool>, Error> {
        let (path, captures) = self.route_request(&req.path)?;
        let Some(check) = &path.existence else {
            return Ok(None);
        };
        let (fields, _) = Fields::parse(&path.fields, &captures, &req.data, false)?;
        check.exists(req, fields, storage).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn req(op: Operation, path: &str, data: serde_json::Value) -> Request {
        let data = match data {
            serde_json::Value::Object(m) => m,
            _ => Map::new(),
        };
        Request::new(op, path, data)
    }

    fn backend() -> PathBackend {
        PathBackend::new(Kind::Secret, "v1")
            .path(
                Path::new("roles/")
                    .list(|_, _, _| async { Ok(Some(Response::list(vec!["a".into()]))) }),
            )
            .path(
                Path::new("roles/{name}")
                    .field(Field::int("length").range(1..=10).default(5))
                    .field(Field::duration("ttl"))
                    .existence_check(|req, _, _| async move { Ok(req.path.ends_with("old")) })
                    .read(|_, fields, _| async move {
                        Ok(Some(Response::json(json!({
                            "name": fields.str("name"),
                            "length": fields.int("length"),
                            "ttl": fields.duration("ttl").map(|d| d.as_secs()),
                        }))))
                    })
                    .update(|_, _, _| async { Ok(Some(Response::json(json!({"op": "update"})))) }),
            )
            .path(Path::new("boom").read(|_, _, _| async { Err(Error::internal("boom")) }))
    }

    #[tokio::test]
    async fn routes_validates_and_fills_defaults() {
        let b = backend();
        let s = Storage::in_memory();
        let r = b
            .handle_request(
                req(Operation::Read, "roles/web", json!({"ttl": "1h"})),
                s.clone(),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::Value::Object(r.data.unwrap()),
            json!({"name": "web", "length": 5, "ttl": 3600})
        );
        let e = b
            .handle_request(
                req(Operation::Read, "roles/web", json!({"ttl": "soon"})),
                s.clone(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "field ttl: expected a duration like \"1h\", got \"soon\""
        );
        assert_eq!(
            e.kind(),
            lockbox_plugin_proto::v1::ErrorKind::InvalidRequest
        );

        let r = b
            .handle_request(req(Operation::List, "roles", json!({})), s.clone())
            .await
            .unwrap();
        assert!(r.is_some());
    }

    #[tokio::test]
    async fn unknown_paths_operations_and_dot_segments() {
        let b = backend();
        let s = Storage::in_memory();
        let e = b
            .handle_request(req(Operation::Read, "nope", json!({})), s.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedPath(ref m) if m == "unsupported path \"nope\""),
            "{e}"
        );
        let e = b
            .handle_request(req(Operation::Delete, "roles/web", json!({})), s.clone())
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported operation: delete on \"roles/web\" (this path supports: read, update)"
        );
        assert!(matches!(e, Error::UnsupportedOperation(_)));
        let e = b
            .handle_request(req(Operation::Read, "roles/..", json!({})), s.clone())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
    }

    #[tokio::test]
    async fn create_falls_back_to_update_and_warns_on_unknown_fields() {
        let b = backend();
        let s = Storage::in_memory();
        let r = b
            .handle_request(
                req(
                    Operation::Create,
                    "roles/x",
                    json!({"bogus": 1, "length": 3}),
                ),
                s,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.data.unwrap()["op"], "update");
        assert_eq!(
            r.warnings,
            vec!["endpoint ignored these unrecognized parameters: [bogus]"]
        );
    }

    #[tokio::test]
    async fn existence_checks() {
        let b = backend();
        let s = Storage::in_memory();
        let check = |p: &str| b.existence_check(req(Operation::Update, p, json!({})), s.clone());
        assert_eq!(check("roles/old").await.unwrap(), Some(true));
        assert_eq!(check("roles/new").await.unwrap(), Some(false));
        assert_eq!(check("roles/").await.unwrap(), None);
        assert!(matches!(check("zzz").await, Err(Error::UnsupportedPath(_))));
    }

    #[test]
    fn help_lists_fields_and_operations() {
        let b = backend();
        let h = b.help_text("roles/web").unwrap();
        assert!(h.contains("## roles/{name}"), "{h}");
        assert!(h.contains("Operations: read, update"), "{h}");
        assert!(h.contains("length (int), default 5, 1..=10"), "{h}");
        assert!(b.help_text("").unwrap().contains("## boom"));
        assert!(b.help_text("nothing").is_none());
    }

    #[tokio::test]
    async fn secret_types_route_renew_and_revoke_by_type() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let revoked = Arc::new(AtomicUsize::new(0));
        let counter = revoked.clone();
        let creds = Secret::new("creds")
            .default_ttl(Duration::from_secs(30))
            .renew(|req, _| async move { Ok(req.asked_ttl() * 2) })
            .revoke(move |req, _| {
                let counter = counter.clone();
                async move {
                    assert_eq!(req.internal_data["user"], "u1");
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            });
        let issued = creds.response(
            Map::new(),
            json!({"user": "u1"}).as_object().unwrap().clone(),
        );
        let b = backend().secret(creds).secret(Secret::new("plain"));
        let lease = issued.secret.unwrap();
        assert_eq!(lease.ttl, Duration::from_secs(30));
        assert!(lease.renewable);
        assert_eq!(lease.internal_data[SECRET_TYPE_KEY], "creds");

        let s = Storage::in_memory();
        let mut call = SecretRequest::new("creds/x", lease.internal_data.clone());
        call.increment = Duration::from_secs(5);
        let ttl = b.renew_secret(call.clone(), s.clone()).await.unwrap();
        assert_eq!(ttl, Duration::from_secs(10));
        b.revoke_secret(call, s.clone()).await.unwrap();
        assert_eq!(revoked.load(Ordering::SeqCst), 1);

        // A type without renew refuses; without revoke, revocation is a no-op.
        let plain = json!({"secret_type": "plain"}).as_object().unwrap().clone();
        let e = b
            .renew_secret(SecretRequest::new("p", plain.clone()), s.clone())
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("lease is not renewable"), "{e}");
        b.revoke_secret(SecretRequest::new("p", plain), s.clone())
            .await
            .unwrap();
        // Unknown or missing types are refused, not silently "revoked".
        for internal in [json!({"secret_type": "other"}), json!({})] {
            let internal = internal.as_object().unwrap().clone();
            let e = b
                .revoke_secret(SecretRequest::new("p", internal), s.clone())
                .await
                .unwrap_err();
            assert!(matches!(e, Error::InvalidRequest(_)), "{e}");
        }
    }

    #[test]
    fn bad_patterns_and_defaults_are_reported() {
        assert!(Path::try_new("a//b").is_err());
        let r = std::panic::catch_unwind(|| Path::new("x").field(Field::int("n").default("abc")));
        assert!(r.is_err());
    }
}
