//! The mount table: which engine serves which path, persisted through the
//! barrier, plus the pure rules for valid mount paths and the longest-prefix
//! router.
//!
//! Two tables as in Vault: secrets engines (`core/mounts`) and auth methods
//! (`core/auth`, paths shown without `auth/` in `sys/auth` but routed with it).
//! Each mount's storage lives under a prefix derived from its UUID
//! (`logical/<uuid>/` or `auth/<uuid>/`), so remounting moves no data and
//! disabling removes exactly that prefix.

use crate::logical::{RequestError, duration};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Barrier key of the secrets mount table.
pub const MOUNTS_PATH: &str = "core/mounts";
/// Barrier key of the auth mount table.
pub const AUTH_PATH: &str = "core/auth";

/// Per-mount lease configuration; 0 means "use the system default".
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountConfig {
    /// Default lease TTL in seconds.
    pub default_lease_ttl: u64,
    /// Maximum lease TTL in seconds.
    pub max_lease_ttl: u64,
    /// Disable caching.
    pub force_no_cache: bool,
}

/// Which table a mount belongs to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// Secrets engines.
    Mounts,
    /// Auth methods.
    Auth,
}

/// One row of the mount table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountEntry {
    /// Which table.
    pub table: Table,
    /// Routing path with trailing `/`; for auth mounts it includes `auth/`.
    pub path: String,
    /// Engine type (`kv`, `system`, `token`, or a plugin name).
    #[serde(rename = "type")]
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Unique ID; names the storage prefix.
    pub uuid: String,
    /// Non-secret identifier, e.g. `kv_1a2b3c4d`.
    pub accessor: String,
    /// Lease settings.
    pub config: MountConfig,
    /// Engine options (e.g. `version`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Not replicated (kept for API compatibility).
    #[serde(default)]
    pub local: bool,
    /// Seal wrapping (kept for API compatibility).
    #[serde(default)]
    pub seal_wrap: bool,
    /// The plugin version requested at mount time.
    #[serde(default)]
    pub plugin_version: String,
    /// Whether the mount can be disabled or moved.
    #[serde(default)]
    pub builtin_fixed: bool,
    /// The object that owns this mount, for the operator: the UID of the
    /// SecretsMount it was enabled for; empty for mounts made through the
    /// API. A lockbox extension set only with a root token (see
    /// [`OWNER_FIELD`]); tables saved before it existed load with none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
}

/// Request field (enable and tune of `sys/mounts/*` and `sys/auth/*`) that
/// sets [`MountEntry::owner`]; only a root token may send it.
pub const OWNER_FIELD: &str = "owner";
/// Longest accepted owner.
const OWNER_MAX_LEN: usize = 253;

/// Parses the `owner` field: up to 253 ASCII letters, digits and
/// `-_.:/` (a Kubernetes UID fits); empty (or absent) means no owner.
pub fn parse_owner(value: Option<&Value>) -> Result<String, RequestError> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => check_owner(s),
        Some(other) => Err(RequestError::invalid(format!(
            "{OWNER_FIELD}: expected a string, got {other}"
        ))),
    }
}

/// Checks an owner identity (see [`parse_owner`]); returns it.
pub fn check_owner(owner: &str) -> Result<String, RequestError> {
    if owner.len() > OWNER_MAX_LEN
        || !owner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/'))
    {
        return Err(RequestError::invalid(format!(
            "{OWNER_FIELD}: {owner:?} is not an owner identity: use up to {OWNER_MAX_LEN} ASCII \
             letters, digits and -_.:/ (such as a Kubernetes object UID)"
        )));
    }
    Ok(owner.to_string())
}

impl MountEntry {
    /// The barrier prefix of this mount's data.
    pub fn storage_prefix(&self) -> String {
        // Only the built-in system and token mounts live under `sys/`; a
        // user mount never does, whatever its type is called.
        match (self.builtin_fixed, self.table) {
            (true, _) => "sys/".to_string(),
            (false, Table::Mounts) => format!("logical/{}/", self.uuid),
            (false, Table::Auth) => format!("auth/{}/", self.uuid),
        }
    }

    /// The path as shown in `sys/auth` (without `auth/`) or `sys/mounts`.
    pub fn display_path(&self) -> &str {
        match self.table {
            Table::Auth => self.path.strip_prefix("auth/").unwrap_or(&self.path),
            Table::Mounts => &self.path,
        }
    }

    /// The JSON shape of a mount in `sys/mounts` and `sys/auth`; `owner`
    /// only when the mount has one (Vault has no such key).
    pub fn to_api(&self, running_version: &str, running_sha256: &str) -> Value {
        let options: Map<String, Value> = self
            .options
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut v = json!({
            "accessor": self.accessor,
            "config": {
                "default_lease_ttl": self.config.default_lease_ttl,
                "max_lease_ttl": self.config.max_lease_ttl,
                "force_no_cache": self.config.force_no_cache,
            },
            "description": self.description,
            "external_entropy_access": false,
            "local": self.local,
            "options": if options.is_empty() { Value::Null } else { Value::Object(options) },
            "plugin_version": self.plugin_version,
            "running_plugin_version": running_version,
            "running_sha256": running_sha256,
            "seal_wrap": self.seal_wrap,
            "type": self.kind,
            "uuid": self.uuid,
        });
        if !self.owner.is_empty()
            && let Some(m) = v.as_object_mut()
        {
            m.insert(OWNER_FIELD.into(), json!(self.owner));
        }
        v
    }
}

/// Paths under which nothing can be mounted by users.
const RESERVED: [&str; 4] = ["sys/", "auth/", "cubbyhole/", "identity/"];

/// Normalizes and validates a user-supplied mount path (without `auth/` for
/// auth mounts). Returns the path with exactly one trailing `/`.
///
/// The only change made to the name is the leading and trailing `/` (both
/// spellings name the same mount, as in Vault). Anything else that could
/// make two spellings name one mount (surrounding whitespace, case is kept
/// as is) is refused rather than rewritten: the ACL is checked on the path
/// the client sent, so the handler must act on exactly that name.
pub fn normalize_path(raw: &str) -> Result<String, RequestError> {
    let trimmed = raw.trim_start_matches('/');
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(RequestError::invalid(
            "mount path is empty: give a path such as \"secret\" or \"team-a/kv\"",
        ));
    }
    for segment in trimmed.split('/') {
        match segment {
            "" => {
                return Err(RequestError::invalid(format!(
                    "invalid mount path {raw:?}: empty path segment (\"//\"); remove the extra slash"
                )));
            }
            "." | ".." => {
                return Err(RequestError::invalid(format!(
                    "invalid mount path {raw:?}: `.` and `..` segments are not allowed"
                )));
            }
            _ => {}
        }
    }
    if let Some(c) = trimmed
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '*' | '+' | '?' | '#' | '%'))
    {
        return Err(RequestError::invalid(format!(
            "invalid mount path {raw:?}: character {c:?} is not allowed in mount paths"
        )));
    }
    Ok(format!("{trimmed}/"))
}

/// Types that exist once, built in, and can never be mounted again (as in
/// Vault's singleton mounts).
pub const SINGLETON_TYPES: &[&str] = &["system", "token", "cubbyhole", "identity"];

/// Refuses a mount (or plugin) type that names one of the built-in singletons.
pub fn check_mountable_type(kind: &str) -> Result<(), RequestError> {
    if SINGLETON_TYPES.contains(&kind) {
        return Err(RequestError::invalid(format!(
            "type {kind:?} is built in and cannot be mounted again; choose another engine type"
        )));
    }
    Ok(())
}

/// Checks a normalized secrets-mount path against the reserved prefixes.
pub fn check_reserved(path: &str) -> Result<(), RequestError> {
    for reserved in RESERVED {
        if path.starts_with(reserved) {
            return Err(RequestError::invalid(format!(
                "cannot mount at {path:?}: the prefix {reserved:?} is reserved by lockbox"
            )));
        }
    }
    Ok(())
}

/// Checks that `path` neither contains nor is contained by an existing mount.
pub fn check_overlap<'a>(
    path: &str,
    existing: impl Iterator<Item = &'a str>,
) -> Result<(), RequestError> {
    for other in existing {
        if path.starts_with(other) || other.starts_with(path) {
            return Err(RequestError::invalid(format!(
                "path is already in use at {other}: mount paths may not overlap; choose a path outside {other}"
            )));
        }
    }
    Ok(())
}

/// The lease settings an enable or tune request sets (`None`: not given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConfigChange {
    /// `default_lease_ttl`, seconds.
    pub default_lease_ttl: Option<u64>,
    /// `max_lease_ttl`, seconds.
    pub max_lease_ttl: Option<u64>,
    /// `force_no_cache`.
    pub force_no_cache: Option<bool>,
}

impl ConfigChange {
    /// Sets what was given in `config`.
    pub fn apply(&self, config: &mut MountConfig) {
        if let Some(v) = self.default_lease_ttl {
            config.default_lease_ttl = v;
        }
        if let Some(v) = self.max_lease_ttl {
            config.max_lease_ttl = v;
        }
        if let Some(v) = self.force_no_cache {
            config.force_no_cache = v;
        }
    }
}

/// Parses the `config` object of an enable or tune request into `config`.
pub fn apply_config(
    config: &mut MountConfig,
    input: &Map<String, Value>,
) -> Result<(), RequestError> {
    parse_config(input)?.apply(config);
    Ok(())
}

/// Parses the `config` object of an enable request (or the config fields
/// of a tune request).
pub fn parse_config(input: &Map<String, Value>) -> Result<ConfigChange, RequestError> {
    let mut change = ConfigChange::default();
    for (key, value) in input {
        match key.as_str() {
            "default_lease_ttl" => {
                change.default_lease_ttl = Some(
                    duration::parse_seconds(key, value).map_err(RequestError::InvalidRequest)?,
                );
            }
            "max_lease_ttl" => {
                change.max_lease_ttl = Some(
                    duration::parse_seconds(key, value).map_err(RequestError::InvalidRequest)?,
                );
            }
            "force_no_cache" => {
                change.force_no_cache = Some(match value {
                    Value::Bool(b) => *b,
                    Value::String(s) => s.parse().map_err(|_| {
                        RequestError::invalid(format!(
                            "force_no_cache: expected true or false, got {s:?}"
                        ))
                    })?,
                    other => {
                        return Err(RequestError::invalid(format!(
                            "force_no_cache: expected a boolean, got {other}"
                        )));
                    }
                });
            }
            // Vault's CLI sends `config.options: null` next to the real,
            // top-level `options`.
            "options" if value.is_null() || value.as_object().is_some_and(|o| o.is_empty()) => {}
            "options" => {
                return Err(RequestError::invalid(
                    "config.options: engine options go at the top level of the request (\"options\": {...}), not inside config",
                ));
            }
            // Accepted for compatibility with Vault clients, not used.
            "audit_non_hmac_request_keys"
            | "audit_non_hmac_response_keys"
            | "listing_visibility"
            | "passthrough_request_headers"
            | "allowed_response_headers"
            | "token_type"
            | "plugin_version"
            | "allowed_managed_keys"
            | "user_lockout_config"
            | "delegated_auth_accessors"
            | "identity_token_key" => {}
            other => {
                return Err(RequestError::invalid(format!(
                    "unknown mount config field {other:?}; supported: default_lease_ttl, max_lease_ttl, force_no_cache"
                )));
            }
        }
    }
    Ok(change)
}

/// Parses an `options` object (string values; numbers and booleans are
/// converted the way Vault's CLI sends them).
pub fn parse_options(input: &Value) -> Result<BTreeMap<String, String>, RequestError> {
    let mut out = BTreeMap::new();
    match input {
        Value::Null => {}
        Value::Object(map) => {
            for (k, v) in map {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => {
                        return Err(RequestError::invalid(format!(
                            "options.{k}: expected a string, got {other}"
                        )));
                    }
                };
                out.insert(k.clone(), s);
            }
        }
        other => {
            return Err(RequestError::invalid(format!(
                "options: expected an object, got {other}"
            )));
        }
    }
    Ok(out)
}

/// kv's two versions (Vault's model): version 1 is lockbox's built-in
/// engine; version 2 is served by the kv plugin (Vault's own
/// `vault-plugin-secrets-kv`, run unmodified) registered in the catalog as
/// secret plugin `kv`. Vault's type aliases `kv-v1` / `kv-v2` name the
/// version; `options.version` names it for `kv`.
pub fn kv_type(kind: &str, options: &mut BTreeMap<String, String>) -> Result<String, RequestError> {
    let version = match kind {
        "kv-v1" => "1",
        "kv-v2" => "2",
        _ => return Ok(kind.to_string()),
    };
    match options.get("version").map(String::as_str) {
        None | Some("") => {
            options.insert("version".into(), version.into());
        }
        Some(v) if v == version => {}
        Some(v) => {
            return Err(RequestError::invalid(format!(
                "type {kind:?} with options.version {v:?}: the two disagree; use type \"kv\" with options.version, or the alias alone"
            )));
        }
    }
    Ok("kv".into())
}

/// Whether a mount of `kind` with `options` runs on the catalog plugin of
/// the same name instead of the built-in engine: kv version 2.
pub fn served_by_plugin(kind: &str, options: &BTreeMap<String, String>) -> bool {
    kind == "kv" && options.get("version").is_some_and(|v| v == "2")
}

/// Refuses options no kv engine honours: kv has versions 1 (built in) and
/// 2 (the kv plugin).
pub fn check_options(kind: &str, options: &BTreeMap<String, String>) -> Result<(), RequestError> {
    if kind == "kv"
        && let Some(v) = options.get("version")
        && !v.is_empty()
        && v != "1"
        && v != "2"
    {
        return Err(RequestError::invalid(format!(
            "options.version {v:?}: kv has version 1 (built in) and version 2 (the kv plugin); set \"1\" or \"2\""
        )));
    }
    Ok(())
}

/// Refuses a tune that would move a mount between the built-in engine and
/// a plugin (kv 1 ⇄ 2): the data formats differ and lockbox does not
/// upgrade a kv version 1 mount in place.
pub fn check_options_change(
    kind: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), RequestError> {
    if served_by_plugin(kind, old) != served_by_plugin(kind, new) {
        return Err(RequestError::invalid(format!(
            "cannot change the version of a {kind} mount by tuning: lockbox does not upgrade kv version 1 data in place; mount a new kv version 2 engine and copy the secrets"
        )));
    }
    Ok(())
}

/// Finds the longest mount path that prefixes `path`, trying each `/`
/// boundary from the longest down. `lookup` answers whether a candidate
/// prefix (ending in `/`) is mounted. `secret` matches the mount `secret/`.
pub fn longest_prefix<T>(
    path: &str,
    mut lookup: impl FnMut(&str) -> Option<T>,
) -> Option<(String, T)> {
    let mut candidate = path.to_string();
    if !candidate.ends_with('/') {
        candidate.push('/');
    }
    loop {
        if let Some(found) = lookup(&candidate) {
            return Some((candidate, found));
        }
        // Drop the last segment: "a/b/c/" -> "a/b/".
        let without_slash = &candidate[..candidate.len() - 1];
        match without_slash.rfind('/') {
            Some(i) => candidate.truncate(i + 1),
            None => return None,
        }
    }
}

/// An 8-hex-digit accessor like Vault's `kv_4947b778`.
pub fn new_accessor(kind: &str) -> String {
    use rand::Rng;
    let n: u32 = rand::thread_rng().r#gen();
    let prefix: String = kind
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{n:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_rejects_paths() {
        assert_eq!(normalize_path("secret").unwrap(), "secret/");
        assert_eq!(normalize_path("/team/kv/").unwrap(), "team/kv/");
        for bad in ["", "/", "a//b", "a/../b", "./a", "a/*", "a\u{0}b"] {
            let e = normalize_path(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}");
        }
        assert!(check_reserved("sys/foo/").is_err());
        assert!(check_reserved("auth/foo/").is_err());
        assert!(check_reserved("system/").is_ok());
    }

    #[test]
    fn overlap_both_ways() {
        let existing = ["secret/", "team/a/"];
        assert!(check_overlap("secret/sub/", existing.iter().copied()).is_err());
        assert!(check_overlap("team/", existing.iter().copied()).is_err());
        assert!(check_overlap("team/b/", existing.iter().copied()).is_ok());
        let e = check_overlap("secret/", existing.iter().copied()).unwrap_err();
        assert!(e.to_string().contains("already in use at secret/"));
    }

    #[test]
    fn longest_prefix_routing() {
        let mounts = ["secret/", "secret/deep/", "sys/"];
        let find = |p: &str| mounts.iter().find(|m| **m == p).copied();
        assert_eq!(
            longest_prefix("secret/deep/x", find).unwrap().0,
            "secret/deep/"
        );
        assert_eq!(
            longest_prefix("secret/deeper/x", find).unwrap().0,
            "secret/"
        );
        assert_eq!(longest_prefix("secret", find).unwrap().0, "secret/");
        assert!(longest_prefix("nothing/here", find).is_none());
    }

    /// Tables saved before `owner` existed load with no owner; an entry
    /// without one is stored and shown without the key (the API keeps
    /// Vault's key set), and one with an owner round-trips.
    #[test]
    fn owner_is_optional_in_stored_tables_and_the_api() {
        let old = r#"[{"table":"mounts","path":"team/kv/","type":"kv","description":"",
            "uuid":"u","accessor":"kv_1","config":{"default_lease_ttl":0,"max_lease_ttl":0,
            "force_no_cache":false}}]"#;
        let mut entries: Vec<MountEntry> = serde_json::from_str(old).unwrap();
        assert_eq!(entries[0].owner, "");
        let stored = serde_json::to_value(&entries).unwrap();
        assert!(stored[0].get("owner").is_none(), "{stored}");
        assert!(entries[0].to_api("", "").get("owner").is_none());
        entries[0].owner = "uid-1".into();
        let back: Vec<MountEntry> =
            serde_json::from_value(serde_json::to_value(&entries).unwrap()).unwrap();
        assert_eq!(back, entries);
        assert_eq!(entries[0].to_api("", "")["owner"], "uid-1");
        assert_eq!(parse_owner(None).unwrap(), "");
        assert_eq!(
            parse_owner(Some(&json!("a-1:b/c.d_e"))).unwrap(),
            "a-1:b/c.d_e"
        );
        for bad in [json!("a b"), json!("é"), json!(1), json!("x".repeat(254))] {
            assert_eq!(parse_owner(Some(&bad)).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn config_parsing() {
        let mut c = MountConfig::default();
        let input = serde_json::json!({"default_lease_ttl": "1h", "max_lease_ttl": 7200, "force_no_cache": true});
        apply_config(&mut c, input.as_object().unwrap()).unwrap();
        assert_eq!(
            c,
            MountConfig {
                default_lease_ttl: 3600,
                max_lease_ttl: 7200,
                force_no_cache: true
            }
        );
        let bad = serde_json::json!({"default_lease_ttl": "forever"});
        assert!(apply_config(&mut c, bad.as_object().unwrap()).is_err());
        let unknown = serde_json::json!({"colour": "red"});
        assert!(apply_config(&mut c, unknown.as_object().unwrap()).is_err());
    }
}
