//! The request pipeline: [`Core::handle`] (canonical path → sealed? →
//! route → token → existence check → ACL → handler → login) and the early
//! refusal from headers alone ([`Core::precheck`]).

use super::authorize::authorize;
use super::sys::{self, paths, routes};
use super::{Active, ApiRequest, Core, Handler, Method, Reply, new_uuid, tokens};
use crate::logical::{Operation, Request, RequestError, SpecialPaths};

impl Core {
    /// Handles one API request end to end.
    pub async fn handle(&self, req: ApiRequest) -> Result<Reply, RequestError> {
        let mut path = canonical_request_path(&req.path)?;
        if let Some(reply) = sys::handle_unsealed_exempt(self, &req, &path).await? {
            return Ok(reply);
        }
        let active = self.active().ok_or(RequestError::Sealed)?;
        let Some((mount_path, route)) = active.route(&path) else {
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
            operation: match req.method {
                Method::Read => Operation::Read,
                Method::Write => Operation::Update,
                Method::Delete => Operation::Delete,
                Method::List => Operation::List,
            },
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

        let result = match &route.handler {
            Handler::System => routes::handle(self, &active, &request, token.as_ref()).await,
            Handler::Token => match &token {
                Some(t) => active.tokens.handle(&request, t, caller_sudo).await,
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
        Ok(match result {
            Some(response) => Reply::Envelope {
                request_id: request.id,
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
        let Some(active) = self.active() else {
            return if sys_unauthenticated(path) {
                Ok(())
            } else {
                Err(RequestError::Sealed)
            };
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
