//! The path rules of the system backend, which the request pipeline and
//! the typed admin API apply before any handler runs: which `sys/` paths
//! need `sudo` or no token ([`special_paths`]), the one canonical spelling
//! of every `sys/` path that takes a name ([`canonical_path`]), and which
//! answers Vault copies to the top level ([`injects_data_into_top_level`]).

use crate::core::mounts::{self, Table};
use crate::logical::{RequestError, SpecialPaths};

/// Paths of `sys/` that need `sudo`, as in Vault (plus `seal`, which Vault
/// enforces in code).
const ROOT_PATHS: [&str; 15] = [
    "auth/*",
    "remount",
    "step-down",
    "rotate",
    "rotate/keyring",
    "seal",
    "audit",
    "audit/*",
    "raw/*",
    "plugins/catalog/*",
    "leases/revoke-prefix/*",
    "leases/revoke-force/*",
    "leases/lookup/*",
    "revoke-prefix/*",
    "revoke-force/*",
];

/// `sys/` paths that need no token.
const UNAUTHENTICATED: [&str; 7] = [
    "init",
    "seal-status",
    "unseal",
    "health",
    "leader",
    "internal/ui/mounts",
    "internal/ui/mounts/*",
];

pub(in crate::core) fn special_paths() -> SpecialPaths {
    SpecialPaths {
        root: ROOT_PATHS.iter().map(|s| s.to_string()).collect(),
        unauthenticated: UNAUTHENTICATED.iter().map(|s| s.to_string()).collect(),
    }
}

/// The `sys/` endpoints whose answers Vault also copies from `data` to the
/// top level of the body (its `injectDataIntoTopRoutes`, for old clients):
/// exact paths, and prefixes where the entry ends in `/`.
const INJECT_DATA_INTO_TOP: [&str; 14] = [
    "auth",
    "auth/",
    "capabilities",
    "capabilities-accessor",
    "capabilities-self",
    "ha-status",
    "key-status",
    "mounts",
    "mounts/",
    "policy",
    "policy/",
    "remount",
    "rotate",
    "wrapping/wrap",
];

/// Whether the answer to `sys/<path>` carries its data at the top level too.
pub(in crate::core) fn injects_data_into_top_level(path: &str) -> bool {
    INJECT_DATA_INTO_TOP.iter().any(|p| {
        if p.ends_with('/') {
            path.starts_with(p)
        } else {
            path == *p
        }
    })
}

/// The canonical spelling of a `sys/` path (relative to `sys/`).
///
/// The request pipeline calls this once, before the ACL check, and hands
/// the result to both the ACL and the handler, so the two always concern
/// the same object. Every endpoint that takes a name is listed here: the
/// name is either rewritten to its one canonical form (policy names are
/// case-insensitive, as in Vault; a trailing `/` is dropped) or refused
/// with a 400 naming the problem. Handlers never rewrite a name again.
pub(in crate::core) fn canonical_path(path: &str) -> Result<String, RequestError> {
    // Lease ids and prefixes are opaque: a trailing `/` names a folder of
    // leases (and `leases/lookup/` the root, which needs sudo as in Vault).
    if path.starts_with("leases/") {
        return Ok(path.to_string());
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    if let Some(rest) = path.strip_prefix("mounts/") {
        let (name, tune) = split_suffix(rest, "/tune");
        return Ok(format!(
            "mounts/{}{tune}",
            canonical_mount_name(name, Table::Mounts)?
        ));
    }
    if let Some(rest) = path.strip_prefix("auth/") {
        let (name, tune) = split_suffix(rest, "/tune");
        return Ok(format!(
            "auth/{}{tune}",
            canonical_mount_name(name, Table::Auth)?
        ));
    }
    for prefix in ["policies/acl/", "policy/"] {
        if let Some(name) = path.strip_prefix(prefix) {
            return Ok(format!(
                "{prefix}{}",
                crate::core::policies::canonical_name(name)?
            ));
        }
    }
    if let Some(rest) = path.strip_prefix("plugins/catalog/") {
        match rest.split_once('/') {
            Some((kind, name)) => {
                crate::catalog::PluginType::parse(kind)?;
                crate::catalog::validate_name(name)?;
            }
            None => {
                crate::catalog::PluginType::parse(rest)?;
            }
        }
    }
    if let Some(rest) = path.strip_prefix("plugins/reload/")
        && !matches!(rest, "backend" | "backend/status")
    {
        let (kind, name) = rest.split_once('/').ok_or_else(|| {
            RequestError::invalid(format!(
                "use sys/plugins/reload/<type>/<name> or sys/plugins/reload/backend (got sys/plugins/reload/{rest})"
            ))
        })?;
        crate::catalog::PluginType::parse(kind)?;
        crate::catalog::validate_name(name)?;
    }
    Ok(path.to_string())
}

/// `("team/kv", "/tune")` for `"team/kv/tune"`; `(rest, "")` otherwise.
fn split_suffix<'a>(rest: &'a str, suffix: &'static str) -> (&'a str, &'static str) {
    match rest.strip_suffix(suffix) {
        Some(name) => (name, suffix),
        None => (rest, ""),
    }
}

/// Prefixes that are never secrets engines: `sys/mounts/auth/x` must not
/// reach the auth method `auth/x/` (which `sys/auth/x` guards with sudo).
const NOT_SECRETS_ENGINES: [&str; 3] = ["auth/", "cubbyhole/", "identity/"];

/// The canonical name of a mount in `sys/mounts/:path` or `sys/auth/:path`:
/// validated, without surrounding slashes.
fn canonical_mount_name(name: &str, table: Table) -> Result<String, RequestError> {
    let normalized = mounts::normalize_path(name)?;
    if table == Table::Mounts
        && let Some(prefix) = NOT_SECRETS_ENGINES
            .iter()
            .find(|p| normalized.starts_with(**p))
    {
        return Err(RequestError::invalid(format!(
            "sys/mounts/{name}: the prefix {prefix:?} is reserved and holds no secrets engines; auth methods are managed under sys/auth/"
        )));
    }
    Ok(normalized.trim_end_matches('/').to_string())
}
