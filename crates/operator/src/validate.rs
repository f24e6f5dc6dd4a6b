//! Semantic validation of the custom resources: one pure function per kind.
//!
//! The CRD schemas already refuse many malformed specs at `kubectl apply`
//! (types, enums, patterns); these functions repeat those rules and add the
//! ones a structural schema without CEL cannot express (mutually exclusive
//! fields, uniqueness, TTL ordering, the namespace's path prefix). The
//! controller reports a failure as `Ready=False`, reason `InvalidSpec`, with
//! [`message`] of the errors; it does not retry until the spec changes.
//!
//! Guarantees:
//! - Pure: no I/O, no cluster, no clock. Same input, same answer.
//! - Every problem is reported, not only the first.
//! - Each [`SpecError`] names the field (`spec.env[1].valueFrom...`) and says
//!   what to do.
//! - Secret material is never echoed: `env[].value` never appears in a
//!   message.

use super::crd::{
    DeletionPolicy, EnvVar, ImageSource, OBJECT_NAME_MAX_LEN, PATH_MAX_LEN, PLUGIN_ENV_LABEL,
    PLUGIN_ENV_LABEL_VALUE, PluginCatalogEntrySpec, SecretsMountSpec,
};
use crate::args::{ROOT_TOKEN_SECRET, UNSEAL_SECRET};
use lockbox_core::core::mounts;
use lockbox_core::logical::duration;
use lockbox_plugin_proto as proto;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// Environment variables the plugin host sets itself (the plugin protocol);
/// an entry with one of these names would be overwritten.
const RESERVED_ENV: [&str; 6] = [
    proto::MAGIC_COOKIE_KEY,
    proto::PROTOCOL_VERSIONS_KEY,
    proto::SOCKET_DIR_KEY,
    proto::HOST_SOCKET_KEY,
    proto::NAME_KEY,
    proto::VERSION_KEY,
];

/// The operator's own Secrets (the unseal key and the root token) and what
/// they hold: never a source of plugin env values or pull credentials,
/// whatever their labels say.
const OPERATOR_SECRETS: [(&str, &str); 2] = [
    (UNSEAL_SECRET, "lockbox's unseal key"),
    (ROOT_TOKEN_SECRET, "lockbox's root token"),
];

/// Secret type of ServiceAccount tokens: never given to a plugin.
const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";

/// What an operator Secret holds, if `name` is one of them.
fn operator_secret(name: &str) -> Option<&'static str> {
    OPERATOR_SECRETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, what)| *what)
}

/// One problem in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Path of the offending field, such as `spec.binary.sha256`.
    pub field: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl SpecError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// All errors as one line, for a condition message.
pub fn message(errors: &[SpecError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A SecretsMount spec that passed validation, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidMount {
    /// Effective mount path, normalized with one trailing `/`
    /// (`team-a/kv/`), as lockbox's mount table keys it.
    pub path: String,
    /// Catalog entry (plugin) name.
    pub plugin: String,
    /// The pinned plugin version, if any.
    pub plugin_version: Option<String>,
    /// Description (empty when unset).
    pub description: String,
    /// Default lease TTL in seconds; 0 means the system default.
    pub default_lease_ttl: u64,
    /// Maximum lease TTL in seconds; 0 means the system default.
    pub max_lease_ttl: u64,
    /// Disable caching.
    pub force_no_cache: bool,
    /// Plugin options.
    pub options: BTreeMap<String, String>,
    /// What deleting the resource does (`Retain` when unset).
    pub deletion_policy: DeletionPolicy,
}

/// Validates a PluginCatalogEntry spec.
///
/// Rules: `version` is a semantic version; exactly one source (`binary` or
/// `image`) is set; `binary.path` is relative without `..`; `binary.sha256`
/// is 64 lower-case hex digits; `image.reference` parses and is pinned by
/// digest unless `image.sha256` is set, `image.path` stays inside the image,
/// `image.pullSecrets` are Secret names; no argument contains a NUL byte; `env` names
/// are valid, unique and not set by the host (`LOCKBOX_PLUGIN_NAME`, ...;
/// `LOCKBOX_PLUGIN_LOG` is the plugin's own and allowed), and each entry has exactly one of
/// `value` / `valueFrom` with a valid Secret name and key. Neither
/// `valueFrom` nor `pullSecrets` may name the operator's own Secrets
/// (`lockbox-unseal-keys`, `lockbox-root-token`); the Secrets themselves are
/// checked when read ([`check_env_secret`]).
pub fn validate_catalog_entry(spec: &PluginCatalogEntrySpec) -> Result<(), Vec<SpecError>> {
    let mut errs = Vec::new();

    check_version("spec.version", &spec.version, &mut errs);

    match (&spec.binary, &spec.image) {
        (None, None) => errs.push(SpecError::new(
            "spec.binary",
            "is required: set spec.binary.path (the plugin file inside the operator's plugin \
             directory) and spec.binary.sha256 (the output of `sha256sum FILE`), or \
             spec.image.reference (an OCI image pinned by digest)",
        )),
        (Some(_), Some(_)) => errs.push(SpecError::new(
            "spec.image",
            "is set together with spec.binary: keep exactly one source",
        )),
        (None, Some(image)) => check_image(image, &mut errs),
        (Some(binary), None) => {
            check_relative_path(
                "spec.binary.path",
                &binary.path,
                "the plugin file name inside the operator's plugin directory, such as \
                 \"lockbox-plugin-mock\"",
                &mut errs,
            );
            check_sha256("spec.binary.sha256", &binary.sha256, &mut errs);
        }
    }

    for (i, arg) in spec.args.iter().flatten().enumerate() {
        if arg.contains('\0') {
            errs.push(SpecError::new(
                format!("spec.args[{i}]"),
                "contains a NUL character, which cannot be passed to a process; remove it",
            ));
        }
    }

    let mut seen = HashSet::new();
    for (i, env) in spec.env.iter().flatten().enumerate() {
        check_env(i, env, &mut seen, &mut errs);
    }

    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// `spec.image`: a parseable reference, pinned by digest unless `sha256`
/// pins the binary; a clean path; valid Secret names.
fn check_image(image: &ImageSource, errs: &mut Vec<SpecError>) {
    use lockbox_oci::OciError;
    match lockbox_oci::ImageRef::parse(&image.reference) {
        Err(e) => errs.push(SpecError::new("spec.image.reference", e.to_string())),
        Ok(r) if !r.is_pinned() && image.sha256.is_none() => errs.push(SpecError::new(
            "spec.image.reference",
            OciError::Unpinned {
                reference: image.reference.clone(),
            }
            .to_string()
            .replace("give the binary's sha256", "set spec.image.sha256"),
        )),
        Ok(_) => {}
    }
    if let Some(path) = &image.path
        && let Err(e) = lockbox_oci::layout::normalize_path(path)
    {
        errs.push(SpecError::new("spec.image.path", e));
    }
    if let Some(sha) = &image.sha256 {
        check_sha256("spec.image.sha256", sha, errs);
    }
    let mut seen = HashSet::new();
    for (i, name) in image.pull_secrets.iter().flatten().enumerate() {
        if let Some(what) = operator_secret(name) {
            errs.push(SpecError::new(
                format!("spec.image.pullSecrets[{i}]"),
                format!(
                    "{name:?} is the operator's own Secret ({what}), not registry credentials: \
                     name a kubernetes.io/dockerconfigjson Secret"
                ),
            ));
        } else if !is_object_name(name) {
            errs.push(SpecError::new(
                format!("spec.image.pullSecrets[{i}]"),
                format!(
                    "{name:?} is not a valid Secret name: name a kubernetes.io/dockerconfigjson \
                     Secret in the operator's namespace"
                ),
            ));
        } else if !seen.insert(name.as_str()) {
            errs.push(SpecError::new(
                format!("spec.image.pullSecrets[{i}]"),
                format!("{name:?} is listed twice"),
            ));
        }
    }
}

fn check_env<'a>(
    i: usize,
    env: &'a EnvVar,
    seen: &mut HashSet<&'a str>,
    errs: &mut Vec<SpecError>,
) {
    let field = format!("spec.env[{i}]");
    let name = env.name.as_str();
    if !is_env_name(name) {
        errs.push(SpecError::new(
            format!("{field}.name"),
            format!(
                "{name:?} is not a valid environment variable name: use letters, digits and \
                 '_', not starting with a digit"
            ),
        ));
    } else if RESERVED_ENV.contains(&name) {
        errs.push(SpecError::new(
            format!("{field}.name"),
            format!(
                "{name:?} is reserved: the plugin host sets it for the plugin protocol; remove \
                 the entry"
            ),
        ));
    }
    if !seen.insert(name) {
        errs.push(SpecError::new(
            format!("{field}.name"),
            format!("{name:?} is set more than once; keep one entry per name"),
        ));
    }
    match (&env.value, &env.value_from) {
        (Some(_), Some(_)) => errs.push(SpecError::new(
            field.clone(),
            "sets both value and valueFrom; keep exactly one",
        )),
        (None, None) => errs.push(SpecError::new(
            field.clone(),
            "sets neither value nor valueFrom; give a literal value or \
             valueFrom.secretKeyRef {name, key}",
        )),
        (Some(value), None) => {
            if value.contains('\0') {
                // The value itself is never echoed.
                errs.push(SpecError::new(
                    format!("{field}.value"),
                    "contains a NUL character, which cannot be passed to a process; remove it",
                ));
            }
        }
        (None, Some(from)) => {
            let r = &from.secret_key_ref;
            let f = format!("{field}.valueFrom.secretKeyRef");
            if let Some(what) = operator_secret(&r.name) {
                errs.push(SpecError::new(
                    format!("{f}.name"),
                    format!(
                        "{:?} is the operator's own Secret ({what}) and is never given to a \
                         plugin, labelled or not: put the value in a Secret of its own labelled \
                         {PLUGIN_ENV_LABEL}={PLUGIN_ENV_LABEL_VALUE}",
                        r.name
                    ),
                ));
            } else if !is_object_name(&r.name) {
                errs.push(SpecError::new(
                    format!("{f}.name"),
                    format!(
                        "{:?} is not a valid Secret name: use the name of a Secret in the \
                         operator's namespace (lower-case letters, digits, '-' and '.')",
                        r.name
                    ),
                ));
            }
            if r.key.is_empty()
                || r.key.len() > OBJECT_NAME_MAX_LEN as usize
                || !r
                    .key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                errs.push(SpecError::new(
                    format!("{f}.key"),
                    format!(
                        "{:?} is not a valid Secret key: use a key of the Secret's data \
                         (letters, digits, '-', '_' and '.')",
                        r.key
                    ),
                ));
            }
        }
    }
}

/// Whether the Secret an env value comes from may be read for a plugin:
/// `spec.env[index]` names Secret `namespace/name` (the operator's
/// namespace), which has `labels` and type `secret_type`.
///
/// Rule: the Secret must carry the label
/// `lockbox.dev/plugin-env: "true"` (whoever creates a catalog entry must
/// not be able to hand the operator's other Secrets to a plugin they
/// choose), and it is neither one of the operator's own Secrets nor a
/// ServiceAccount token, even when labelled. RBAC cannot grant reads by
/// label, so this check is what enforces it.
pub fn check_env_secret(
    index: usize,
    namespace: &str,
    name: &str,
    labels: Option<&BTreeMap<String, String>>,
    secret_type: Option<&str>,
) -> Result<(), SpecError> {
    let field = format!("spec.env[{index}].valueFrom.secretKeyRef.name");
    if let Some(what) = operator_secret(name) {
        return Err(SpecError::new(
            field,
            format!(
                "Secret {namespace}/{name} is the operator's own Secret ({what}) and is never \
                 given to a plugin, labelled or not: put the value in a Secret of its own \
                 labelled {PLUGIN_ENV_LABEL}={PLUGIN_ENV_LABEL_VALUE}"
            ),
        ));
    }
    if secret_type == Some(SERVICE_ACCOUNT_TOKEN_TYPE) {
        return Err(SpecError::new(
            field,
            format!(
                "Secret {namespace}/{name} is a ServiceAccount token \
                 ({SERVICE_ACCOUNT_TOKEN_TYPE}) and is never given to a plugin, labelled or not"
            ),
        ));
    }
    let labelled = labels
        .and_then(|l| l.get(PLUGIN_ENV_LABEL))
        .is_some_and(|v| v == PLUGIN_ENV_LABEL_VALUE);
    if !labelled {
        return Err(SpecError::new(
            field,
            format!(
                "Secret {namespace}/{name} is not marked for plugin use: if its values may be \
                 given to plugins, label it: kubectl label secret -n {namespace} {name} \
                 {PLUGIN_ENV_LABEL}={PLUGIN_ENV_LABEL_VALUE}"
            ),
        ));
    }
    Ok(())
}

/// Validates a SecretsMount spec and applies the defaults.
///
/// The effective path is `spec.path`, or `<namespace>/<name>` when unset. It
/// must lie within `<namespace>/` (the path `<namespace>` itself included)
/// or within one of `allowed_prefixes`, the extra prefixes the lockbox
/// administrator granted this namespace (given with or without slashes:
/// `shared` and `/shared/` are the same prefix). Prefixes match whole path
/// segments: `team-a` does not cover `team-ab/kv`.
///
/// Other rules: `plugin` is a valid catalog entry name; `pluginVersion` is a
/// semantic version; the TTLs parse and `defaultLeaseTTL` does not exceed
/// `maxLeaseTTL`; option keys are not empty; lockbox's reserved prefixes
/// (`sys/`, `auth/`, ...) are refused.
pub fn validate_mount(
    namespace: &str,
    name: &str,
    spec: &SecretsMountSpec,
    allowed_prefixes: &[String],
) -> Result<ValidMount, Vec<SpecError>> {
    let mut errs = Vec::new();

    let path = check_mount_path(
        namespace,
        name,
        spec.path.as_deref(),
        allowed_prefixes,
        &mut errs,
    );

    if !is_object_name(&spec.plugin) {
        errs.push(SpecError::new(
            "spec.plugin",
            format!(
                "{:?} is not a valid catalog entry name: use the metadata.name of a \
                 PluginCatalogEntry of type secret (lower-case letters, digits, '-' and '.')",
                spec.plugin
            ),
        ));
    }
    if let Some(v) = &spec.plugin_version {
        check_version("spec.pluginVersion", v, &mut errs);
    }

    let config = spec.config.clone().unwrap_or_default();
    let default_lease_ttl = check_ttl(
        "spec.config.defaultLeaseTTL",
        config.default_lease_ttl.as_deref(),
        &mut errs,
    );
    let max_lease_ttl = check_ttl(
        "spec.config.maxLeaseTTL",
        config.max_lease_ttl.as_deref(),
        &mut errs,
    );
    if let (Some(d), Some(m)) = (default_lease_ttl, max_lease_ttl) {
        check_ttl_order(d, m, &mut errs);
    }

    let options = spec.options.clone().unwrap_or_default();
    if options.keys().any(|k| k.trim().is_empty()) {
        errs.push(SpecError::new(
            "spec.options",
            "has an empty key; remove it or name the option",
        ));
    }

    match (errs.is_empty(), path) {
        (true, Some(path)) => Ok(ValidMount {
            path,
            plugin: spec.plugin.clone(),
            plugin_version: spec.plugin_version.clone(),
            description: spec.description.clone().unwrap_or_default(),
            default_lease_ttl: default_lease_ttl.unwrap_or(0),
            max_lease_ttl: max_lease_ttl.unwrap_or(0),
            force_no_cache: config.force_no_cache.unwrap_or(false),
            options,
            deletion_policy: spec.deletion_policy.unwrap_or_default(),
        }),
        _ => Err(errs),
    }
}

/// 0 means "system default" on either side, so only two set TTLs are compared.
fn check_ttl_order(default: u64, max: u64, errs: &mut Vec<SpecError>) {
    if default > 0 && max > 0 && default > max {
        errs.push(SpecError::new(
            "spec.config.defaultLeaseTTL",
            format!(
                "{} is longer than maxLeaseTTL {}; lower defaultLeaseTTL or raise maxLeaseTTL",
                duration::format(default),
                duration::format(max)
            ),
        ));
    }
}

/// Returns the normalized effective path (`a/b/`), or `None` after pushing
/// the errors.
fn check_mount_path(
    namespace: &str,
    name: &str,
    path: Option<&str>,
    allowed_prefixes: &[String],
    errs: &mut Vec<SpecError>,
) -> Option<String> {
    const FIELD: &str = "spec.path";
    let before = errs.len();
    let (raw, defaulted) = match path {
        Some(p) => (p.to_string(), false),
        None => (format!("{namespace}/{name}"), true),
    };
    let example = format!("{namespace}/{name}");
    if !defaulted {
        check_relative_path(
            FIELD,
            &raw,
            &format!("a relative mount path such as \"{example}\", or remove spec.path to use it"),
            errs,
        );
        if errs.len() > before {
            return None;
        }
    }
    // Same normalization and reserved prefixes as `sys/mounts`, so the
    // operator and the API never disagree about what a path means.
    let normalized = match mounts::normalize_path(&raw) {
        Ok(p) => p,
        Err(e) => {
            errs.push(SpecError::new(FIELD, e.to_string()));
            return None;
        }
    };
    let bare = normalized.trim_end_matches('/');
    let allowed: Vec<String> = allowed_prefixes
        .iter()
        .map(|p| p.trim_matches('/').to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let allowed_list = allowed
        .iter()
        .map(|p| format!("{p}/"))
        .collect::<Vec<_>>()
        .join(", ");
    // A namespace named like a reserved prefix (`sys`, `auth`) has no usable
    // prefix of its own.
    let own = mounts::check_reserved(&format!("{namespace}/"))
        .is_ok()
        .then(|| format!("under {namespace}/ (such as \"{example}\")"));
    let hint = match (own, allowed.is_empty()) {
        (Some(own), true) => format!("use a path {own}"),
        (Some(own), false) => {
            format!("use a path {own} or under a prefix allowed for this namespace: {allowed_list}")
        }
        (None, false) => {
            format!("use a path under a prefix allowed for this namespace: {allowed_list}")
        }
        (None, true) => format!(
            "ask the lockbox administrator to allow a path prefix for namespace {namespace}"
        ),
    };
    if let Err(e) = mounts::check_reserved(&normalized) {
        let what = if defaulted {
            format!(
                "is unset and the default path {bare:?} is reserved by lockbox ({e}); set \
                 spec.path"
            )
        } else {
            format!("{e}")
        };
        errs.push(SpecError::new(FIELD, format!("{what}; {hint}")));
        return None;
    }
    let within = |prefix: &str| bare == prefix || bare.starts_with(&format!("{prefix}/"));
    if !within(namespace) && !allowed.iter().any(|p| within(p)) {
        errs.push(SpecError::new(
            FIELD,
            format!(
                "{bare:?} is outside this namespace's prefix {namespace}/: {hint}; or ask the \
                 lockbox administrator to allow the prefix for namespace {namespace}"
            ),
        ));
        return None;
    }
    Some(normalized)
}

/// Checks a relative path (`a/b`): the schema's `RELATIVE_PATH_PATTERN`,
/// with one message per kind of mistake. `what` describes what to give.
fn check_relative_path(field: &str, path: &str, what: &str, errs: &mut Vec<SpecError>) {
    let problem = if path.is_empty() {
        Some("is empty".to_string())
    } else if path.len() > PATH_MAX_LEN as usize {
        Some(format!("is longer than {PATH_MAX_LEN} characters"))
    } else if path.starts_with('/') {
        Some(format!("{path:?} is absolute; remove the leading '/'"))
    } else if path.ends_with('/') {
        Some(format!("{path:?} ends with '/'; remove the trailing '/'"))
    } else if path.split('/').any(str::is_empty) {
        Some(format!("{path:?} has an empty segment (\"//\")"))
    } else if path.split('/').any(|s| s == "." || s == "..") {
        Some(format!("{path:?} has a '.' or '..' segment"))
    } else {
        path.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.')))
            .map(|c| format!("{path:?} contains {c:?}; use letters, digits, '-', '_', '.' and '/'"))
    };
    if let Some(problem) = problem {
        errs.push(SpecError::new(field, format!("{problem}: give {what}")));
    }
}

fn check_sha256(field: &str, sha: &str, errs: &mut Vec<SpecError>) {
    if sha.len() == 64 && sha.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return;
    }
    let hint = if sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        "use lower-case hex digits"
    } else {
        "give the 64 hex digits printed by `sha256sum FILE`"
    };
    errs.push(SpecError::new(
        field,
        format!("{sha:?} is not a sha256 ({} characters); {hint}", sha.len()),
    ));
}

fn check_version(field: &str, version: &str, errs: &mut Vec<SpecError>) {
    if !is_semver(version) {
        errs.push(SpecError::new(
            field,
            format!(
                "{version:?} is not a semantic version: use MAJOR.MINOR.PATCH with an optional \
                 leading 'v' and -prerelease, such as \"1.0.0\" or \"v0.2.1-rc.1\""
            ),
        ));
    }
}

/// Parses a TTL; `None` after pushing an error.
fn check_ttl(field: &str, value: Option<&str>, errs: &mut Vec<SpecError>) -> Option<u64> {
    let value = value?;
    match duration::parse_str(field, value) {
        Ok(secs) => Some(secs),
        Err(e) => {
            let msg = e
                .strip_prefix(field)
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(&e);
            errs.push(SpecError::new(field, msg));
            None
        }
    }
}

/// `^v?MAJOR.MINOR.PATCH(-pre)?(+build)?$` as in `VERSION_PATTERN`.
fn is_semver(v: &str) -> bool {
    if v.len() > 128 {
        return false;
    }
    let v = v.strip_prefix('v').unwrap_or(v);
    let (v, build) = match v.split_once('+') {
        Some((v, b)) => (v, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let numeric = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let idents = |s: &str| {
        s.split('.')
            .all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(idents)
        && build.is_none_or(idents)
}

/// A DNS-1123 subdomain, as in `OBJECT_NAME_PATTERN`.
fn is_object_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= OBJECT_NAME_MAX_LEN as usize
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// As in `ENV_NAME_PATTERN`.
fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub mod tenant;

#[cfg(test)]
mod tests;
