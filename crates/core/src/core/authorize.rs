//! The ACL decision of a request, in one place: the request pipeline
//! ([`crate::core::Core::handle`]) and the typed admin API (`core::admin`)
//! both call [`authorize`], so a typed call is allowed exactly where the
//! HTTP request for it is.

use super::Active;
use super::tokens::Resolved;
use crate::logical::{Operation, RequestError, SpecialPaths};

/// The ACL decision of a request, shared by [`crate::core::Core::handle`] and the typed
/// admin API (`core::admin`): `token` may perform `operation` on `path`
/// (the canonical full path; a LIST is checked on `path/`), with `sudo`
/// where `relative` (the path inside the mount) matches one of the
/// handler's root paths; then the token's use is counted. Returns whether
/// the caller holds `sudo` on the path.
pub(in crate::core) async fn authorize(
    active: &Active,
    token: &Resolved,
    path: &str,
    relative: &str,
    special: &SpecialPaths,
    operation: Operation,
) -> Result<bool, RequestError> {
    let acl = active.policies.acl(&token.entry.policies).await?;
    let mut acl_path = path.to_string();
    if operation == Operation::List && !acl_path.ends_with('/') {
        acl_path.push('/');
    }
    let caps = acl.capabilities(&acl_path);
    let sudo = caps.allows(crate::policy::Capability::Sudo);
    let needs_sudo = SpecialPaths::matches(&special.root, relative);
    if !caps.allows(operation.capability()) || (needs_sudo && !sudo) {
        return Err(RequestError::PermissionDenied);
    }
    active.tokens.use_once(token).await?;
    Ok(sudo)
}
