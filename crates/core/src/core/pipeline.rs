//! The request pipeline: [`Core::handle`] (canonical path → sealed? →
//! route → token → existence check → ACL → handler → login) and the early
//! refusal from headers alone ([`Core::precheck`]).

use super::authorize::authorize;
use super::sys::{self, paths, routes};
use super::{Active, ApiRequest, Core, Handler, Method, Reply, audit, leases, new_uuid, tokens};
use crate::logical::{AuthRenewal, Operation, Request, RequestError, SpecialPaths};
use serde_json::{Map, Value};
use std::sync::Arc;

impl Core {
    /// Handles one API request end to end. A request refused before its
    /// handler (no or bad token, the ACL) is recorded by the audit devices
    /// too, as Vault does (failed logins and probes are what an auditor
    /// looks for).
    pub async fn handle(&self, req: ApiRequest) -> Result<Reply, RequestError> {
        self.handle_with(req, None).await
    }

    /// [`Core::handle`] on the active state, or (`standby`: an HA
    /// standby's read view, see `ha`) a read served by a standby from
    /// storage: then anything the view cannot serve without writing is
    /// [`RequestError::Standby`] (the listener forwards it).
    pub(crate) async fn handle_with(
        &self,
        req: ApiRequest,
        standby: Option<Arc<Active>>,
    ) -> Result<Reply, RequestError> {
        let (method, raw_path) = (req.method, req.path.clone());
        let mut audited = false;
        let result = self
            .handle_audited(req, &mut audited, standby.clone())
            .await;
        if let Err(e) = &result
            && !audited
            && matches!(e, RequestError::PermissionDenied | RequestError::Denied(_))
            && let Some(active) = standby.or_else(|| self.active())
        {
            active
                .audit
                .log_refused(raw_path.trim_start_matches('/'), method, e)
                .await?;
        }
        result
    }

    /// [`Core::handle_with`]; `audited` is set once the request was
    /// recorded.
    async fn handle_audited(
        &self,
        req: ApiRequest,
        audited: &mut bool,
        standby: Option<Arc<Active>>,
    ) -> Result<Reply, RequestError> {
        let mut path = canonical_request_path(&req.path)?;
        // Vault lists a folder: a LIST path always ends in `/` (what the
        // engine and the ACL see), however the client spelled it.
        if req.method == Method::List && !path.ends_with('/') {
            path.push('/');
        }
        let local = standby.is_some();
        if !local && let Some(reply) = sys::handle_unsealed_exempt(self, &req, &path).await? {
            return Ok(reply);
        }
        let active = match standby {
            Some(view) => view,
            None => self.serving()?,
        };
        let Some((mount_path, route)) = active.route(&path) else {
            if local {
                // Perhaps a mount this standby has not heard of yet.
                return Err(RequestError::Standby);
            }
            // As in Vault, a path no mount serves is "permission denied"
            // unless the token may use that path: callers without a valid
            // token cannot probe which mounts exist.
            let token = presented_token(&active, &req)
                .await?
                .ok_or(RequestError::PermissionDenied)?;
            let acl = active.policies.acl(&token.entry.policies).await?;
            if !acl.capabilities(&path).grants_anything() {
                return Err(RequestError::PermissionDenied);
            }
            return Err(RequestError::NoHandler { path: path.clone() });
        };
        if local && !route.handler.reads_locally() {
            return Err(RequestError::Standby);
        }
        let mut relative = path.strip_prefix(&mount_path).unwrap_or("").to_string();
        if matches!(route.handler, Handler::System) {
            // One canonical name per object, decided here, before the ACL:
            // the ACL and the handler below both see this path.
            relative = paths::canonical_path(&relative)?;
            path = format!("{mount_path}{relative}");
        }

        let special = route.handler.special_paths();
        let unauthenticated = SpecialPaths::matches(&special.unauthenticated, &relative);
        let token = if !unauthenticated {
            Some(
                presented_token(&active, &req)
                    .await?
                    .ok_or(RequestError::PermissionDenied)?,
            )
        } else if matches!(route.handler, Handler::System) {
            // An unauthenticated endpoint may still answer more to a valid
            // token (`sys/internal/ui/mounts`); a bad one is simply ignored.
            presented_token(&active, &req).await?
        } else {
            None
        };

        let (default_ttl, max_ttl) = self.effective_ttls(&route.entry);
        let mut request = Request {
            id: new_uuid(),
            operation: req.method.operation(),
            path: relative.clone(),
            data: req.data,
            mount_point: route.entry.path.clone(),
            mount_type: route.entry.kind.clone(),
            mount_accessor: route.entry.accessor.clone(),
            mount_default_ttl: default_ttl,
            mount_max_ttl: max_ttl,
            mount_force_no_cache: route.entry.config.force_no_cache,
            client_token_accessor: token.as_ref().map(|t| t.entry.accessor.clone()),
            display_name: token.as_ref().map(|t| t.entry.display_name.clone()),
            remote: req.remote,
        };
        if let Handler::Unavailable(msg) = &route.handler {
            return Err(RequestError::Unavailable(format!(
                "mount {} is unavailable: {msg}",
                route.entry.path
            )));
        }
        if req.method == Method::Write
            && let Handler::Backend(b) = &route.handler
            && let Some(exists) = b.exists(&request, &route.view).await?
        {
            request.operation = if exists {
                Operation::Update
            } else {
                Operation::Create
            };
        }

        // Whether the caller holds `sudo` on this path (the token store
        // grants more to such callers, as Vault's does).
        let mut caller_sudo = false;
        if !unauthenticated && let Some(token) = &token {
            caller_sudo = authorize(
                &active,
                token,
                &path,
                &relative,
                &special,
                request.operation,
            )
            .await?;
        }

        let record = audit::Record::new(&request, &path, token.as_ref());
        // Fail closed: a request no audit device could record is refused
        // before its handler runs. A read that changes nothing may run
        // first: its request and response entries are then written
        // together, before the reply leaves (refused if they cannot be).
        *audited = true;
        let deferred = matches!(request.operation, Operation::Read | Operation::List)
            && route.handler.reads_locally();
        if !deferred {
            active.audit.log_request(&record).await?;
        }
        let outcome: Result<Reply, RequestError> = async {
            let result = match &route.handler {
                Handler::System => routes::handle(self, &active, &request, token.as_ref()).await,
                Handler::Token => match &token {
                    Some(t) => {
                        let renewer = MountRenewer { active: &active };
                        active
                            .tokens
                            .handle(&request, t, caller_sudo, &renewer)
                            .await
                    }
                    None => Err(RequestError::PermissionDenied),
                },
                Handler::Backend(b) => b.handle(&request, &route.view).await,
                Handler::Unavailable(_) => unreachable!("handled above"),
            }?;
            let mut result = result;
            if let Some(resp) = result.as_mut()
                && let Some(login) = resp.login.take()
            {
                let auth = active
                    .tokens
                    .login(&route.entry, &request.path, login, default_ttl, max_ttl)
                    .await?;
                resp.auth = Some(auth);
            }
            if matches!(route.handler, Handler::Backend(_))
                && let Some(resp) = result.as_mut()
                && let Some(secret) = resp.secret.take()
            {
                // Vault records no leases for kv (its ttl is a refresh hint).
                if route.entry.kind == "kv" {
                    resp.lease_duration = secret.ttl;
                } else {
                    let ttl = leases::lease_ttl(secret.ttl, secret.max_ttl, default_ttl, max_ttl);
                    let max = match secret.max_ttl {
                        0 => max_ttl,
                        m => m.min(max_ttl),
                    };
                    let lease = active
                        .leases
                        .register(
                            &format!("{}{}", route.entry.path, request.path),
                            token.as_ref().map(|t| t.hash.as_str()),
                            resp.data.clone(),
                            secret.internal_data,
                            ttl,
                            max,
                            secret.renewable,
                        )
                        .await?;
                    resp.lease_id = lease.lease_id;
                    resp.lease_duration = ttl;
                    resp.renewable = lease.renewable;
                }
            }
            if matches!(route.handler, Handler::Backend(_))
                && let Some(raw) = result
                    .as_ref()
                    .and_then(|r| r.data.as_ref())
                    .and_then(raw_http)
            {
                return raw;
            }
            Ok(match result {
                Some(response) => Reply::Envelope {
                    request_id: request.id.clone(),
                    response: Box::new(response),
                    mount_type: route.entry.kind.clone(),
                    flatten: matches!(route.handler, Handler::System)
                        && paths::injects_data_into_top_level(&request.path),
                },
                None if matches!(request.operation, Operation::Read | Operation::List) => {
                    Reply::NotFound
                }
                None => Reply::NoContent,
            })
        }
        .await;
        if deferred {
            active
                .audit
                .log_request_and_response(&record, &outcome)
                .await?;
        } else {
            active.audit.log_response(&record, &outcome).await?;
        }
        outcome
    }
}

/// Routes a token renewal to the auth method that issued the token: the
/// mount its `path` names (`auth/<mount>/login`). Tokens of the token store
/// and of mounts that no longer exist get no say from a method.
struct MountRenewer<'a> {
    active: &'a Active,
}

#[async_trait::async_trait]
impl tokens::AuthRenewer for MountRenewer<'_> {
    async fn renew_auth(
        &self,
        entry: &tokens::TokenEntry,
        increment: u64,
    ) -> Result<Option<u64>, RequestError> {
        if !entry.path.starts_with("auth/") || entry.path.starts_with("auth/token/") {
            return Ok(None);
        }
        let Some((mount, route)) = self.active.route(&entry.path) else {
            return Ok(None);
        };
        let backend = match &route.handler {
            Handler::Backend(b) => b,
            Handler::Unavailable(msg) => {
                return Err(RequestError::Unavailable(format!(
                    "cannot renew: auth method {mount} is unavailable: {msg}"
                )));
            }
            _ => return Ok(None),
        };
        let metadata = entry
            .meta
            .iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect();
        let renewal = AuthRenewal {
            path: entry.path[mount.len()..].to_string(),
            policies: entry.policies.clone(),
            metadata,
            internal_data: entry.internal_data.clone().unwrap_or_default(),
            display_name: entry.display_name.clone(),
            ttl: entry.creation_ttl,
            max_ttl: entry.explicit_max_ttl,
            increment,
            issue_time: entry.issue_time,
            accessor: entry.accessor.clone(),
        };
        backend.renew_auth(&renewal, &route.view).await
    }
}

/// An engine's raw HTTP answer (Vault's `respondRaw`): `None` unless the
/// data names `http_status_code`. The body is `http_raw_body` (a string,
/// base64-decoded when it is base64, as Vault does, else taken as is; or
/// an array of bytes); the status must be an HTTP status (else a 500
/// naming the problem).
pub fn raw_http(data: &Map<String, Value>) -> Option<Result<Reply, RequestError>> {
    use base64::Engine;
    let status = data.get("http_status_code")?;
    let Some(status) = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..=599).contains(s))
    else {
        return Some(Err(RequestError::Internal(format!(
            "the engine answered a raw HTTP response with an invalid http_status_code {status}"
        ))));
    };
    let body = match data.get("http_raw_body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_else(|_| s.clone().into_bytes()),
        Some(Value::Array(a)) => {
            let bytes: Option<Vec<u8>> = a
                .iter()
                .map(|v| v.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            match bytes {
                Some(b) => b,
                None => {
                    return Some(Err(RequestError::Internal(
                        "the engine answered a raw HTTP response whose http_raw_body is not bytes"
                            .into(),
                    )));
                }
            }
        }
        Some(_) => {
            return Some(Err(RequestError::Internal(
                "the engine answered a raw HTTP response whose http_raw_body is not a string"
                    .into(),
            )));
        }
    };
    let content_type = data
        .get("http_content_type")
        .and_then(Value::as_str)
        .unwrap_or("application/json")
        .to_string();
    Some(Ok(Reply::Http {
        status,
        content_type,
        body,
    }))
}

/// Checks the parts every request path must satisfy and returns it without
/// leading slashes.
///
/// Segments `.` and `..`, empty segments (`a//b`) and control characters
/// are refused with a 400: an engine or plugin that cleaned such a path
/// would act on another object than the one the ACL was checked against.
/// A single trailing `/` is kept (lists).
pub fn canonical_request_path(raw: &str) -> Result<String, RequestError> {
    let path = raw.trim_start_matches('/');
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(RequestError::invalid(format!(
            "invalid request path {path:?}: control character {c:?} is not allowed"
        )));
    }
    let inner = path.strip_suffix('/').unwrap_or(path);
    if !inner.is_empty() {
        for segment in inner.split('/') {
            match segment {
                "" => {
                    return Err(RequestError::invalid(format!(
                        "invalid request path {path:?}: empty path segment (\"//\"); remove the extra slash"
                    )));
                }
                "." | ".." => {
                    return Err(RequestError::invalid(format!(
                        "invalid request path {path:?}: `.` and `..` segments are not allowed"
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(path.to_string())
}

/// The valid token the request presents (`X-Vault-Token` or bearer), if
/// any; an empty header counts as none.
pub(super) async fn presented_token(
    active: &Active,
    req: &ApiRequest,
) -> Result<Option<tokens::Resolved>, RequestError> {
    match req.token.as_deref().filter(|t| !t.is_empty()) {
        Some(id) => active.tokens.lookup(id).await,
        None => Ok(None),
    }
}

impl Core {
    /// An early refusal from a request's path and token alone, before its
    /// body is read (the listener calls it for requests with a body): a
    /// path that needs a token (every path except the unauthenticated
    /// special paths of its handler, e.g. `sys/unseal` or a plugin's
    /// `login`) without a valid one is `PermissionDenied`; while sealed,
    /// every path except those answered sealed is `Sealed`.
    ///
    /// Passing it decides nothing: [`Core::handle`] makes every check again.
    pub async fn precheck(&self, path: &str, token: Option<&str>) -> Result<(), RequestError> {
        let path = path.trim_start_matches('/');
        let sys_unauthenticated = |path: &str| {
            path.strip_prefix("sys/")
                .is_some_and(|p| SpecialPaths::matches(&paths::special_paths().unauthenticated, p))
        };
        let active = match self.serving() {
            Ok(active) => active,
            Err(_) if sys_unauthenticated(path) => return Ok(()),
            Err(e) => return Err(e),
        };
        let needs_token = match active.route(path) {
            None => true,
            Some((mount_path, route)) => {
                let relative = path.strip_prefix(&mount_path).unwrap_or("");
                !SpecialPaths::matches(&route.handler.special_paths().unauthenticated, relative)
            }
        };
        if !needs_token {
            return Ok(());
        }
        match token.filter(|t| !t.is_empty()) {
            Some(id) if active.tokens.lookup(id).await?.is_some() => Ok(()),
            _ => Err(RequestError::PermissionDenied),
        }
    }
}
