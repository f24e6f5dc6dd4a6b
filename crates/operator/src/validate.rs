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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{BinarySource, EnvVarSource, MountConfigSpec, PluginType, SecretKeySelector};

    const SHA: &str = "3b9f2a6c5d0e1f4a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c";

    fn entry() -> PluginCatalogEntrySpec {
        PluginCatalogEntrySpec {
            plugin_type: PluginType::Secret,
            version: "1.0.0".into(),
            binary: Some(BinarySource {
                path: "lockbox-plugin-mock".into(),
                sha256: SHA.into(),
            }),
            args: None,
            env: None,
            multiplexing: None,
            image: None,
        }
    }

    fn image_entry(reference: &str) -> PluginCatalogEntrySpec {
        let mut e = entry();
        e.binary = None;
        e.image = Some(ImageSource {
            reference: reference.into(),
            path: None,
            sha256: None,
            pull_secrets: None,
        });
        e
    }

    #[test]
    fn image_sources() {
        let pinned = format!("registry.example/plugins/mock@sha256:{SHA}");
        assert_eq!(validate_catalog_entry(&image_entry(&pinned)), Ok(()));
        // Tag only: needs sha256.
        let errs = validate_catalog_entry(&image_entry("registry.example/mock:v1")).unwrap_err();
        assert_eq!(errs[0].field, "spec.image.reference");
        assert!(errs[0].message.contains("spec.image.sha256"), "{}", errs[0]);
        let mut tagged = image_entry("registry.example/mock:v1");
        tagged.image.as_mut().unwrap().sha256 = Some(SHA.into());
        assert_eq!(validate_catalog_entry(&tagged), Ok(()));
        // Both sources.
        let mut both = image_entry(&pinned);
        both.binary = entry().binary;
        assert_eq!(
            validate_catalog_entry(&both).unwrap_err()[0].field,
            "spec.image"
        );
        // Bad reference, path, sha256, pull secrets.
        let mut bad = image_entry("https://registry.example/x");
        {
            let i = bad.image.as_mut().unwrap();
            i.path = Some("/../etc/passwd".into());
            i.sha256 = Some("ABC".into());
            i.pull_secrets = Some(vec!["ok".into(), "Not_OK".into(), "ok".into()]);
        }
        let fields: Vec<String> = validate_catalog_entry(&bad)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.image.reference",
                "spec.image.path",
                "spec.image.sha256",
                "spec.image.pullSecrets[1]",
                "spec.image.pullSecrets[2]"
            ]
        );
    }

    fn literal(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: SecretKeySelector {
                    name: secret.into(),
                    key: key.into(),
                },
            }),
        }
    }

    fn mount() -> SecretsMountSpec {
        SecretsMountSpec {
            path: None,
            plugin: "mock".into(),
            plugin_version: None,
            description: None,
            config: None,
            options: None,
            deletion_policy: None,
        }
    }

    /// The single error of a failed validation.
    fn one<T: fmt::Debug>(r: Result<T, Vec<SpecError>>) -> SpecError {
        let errs = r.expect_err("expected a validation error");
        assert_eq!(errs.len(), 1, "expected one error, got {errs:?}");
        errs.into_iter().next().unwrap()
    }

    fn entry_err(f: impl FnOnce(&mut PluginCatalogEntrySpec)) -> SpecError {
        let mut e = entry();
        f(&mut e);
        one(validate_catalog_entry(&e))
    }

    fn mount_err(f: impl FnOnce(&mut SecretsMountSpec)) -> SpecError {
        let mut m = mount();
        f(&mut m);
        one(validate_mount("team-a", "kv", &m, &[]))
    }

    // -- catalog entries ----------------------------------------------------

    #[test]
    fn valid_catalog_entry() {
        let mut e = entry();
        e.args = Some(vec!["--verbose".into(), String::new()]);
        e.env = Some(vec![
            literal("LOG_LEVEL", "debug"),
            from_secret("API_TOKEN", "mock-credentials", "token"),
        ]);
        e.multiplexing = Some(false);
        assert_eq!(validate_catalog_entry(&e), Ok(()));
        for v in [
            "0.0.1",
            "v1.2.3",
            "1.0.0-rc.1",
            "1.0.0+build.5",
            "v10.20.30-alpha-1+x",
        ] {
            e.version = v.into();
            assert_eq!(validate_catalog_entry(&e), Ok(()), "{v}");
        }
    }

    #[test]
    fn version_must_be_semver() {
        for v in [
            "",
            "1",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "v",
            "1.0.0-",
            "1.0.0-a..b",
            "latest",
        ] {
            let e = entry_err(|e| e.version = v.into());
            assert_eq!(e.field, "spec.version", "{v}");
            assert!(e.message.contains("MAJOR.MINOR.PATCH"), "{e}");
        }
    }

    #[test]
    fn binary_is_required() {
        let e = entry_err(|e| e.binary = None);
        assert_eq!(e.field, "spec.binary");
        assert!(e.message.contains("spec.binary.path"), "{e}");
        assert!(e.message.contains("sha256sum"), "{e}");
    }

    #[test]
    fn binary_path_is_relative_and_clean() {
        let cases = [
            ("", "is empty"),
            ("/usr/bin/mock", "remove the leading '/'"),
            ("mock/", "remove the trailing '/'"),
            ("a//mock", "empty segment"),
            ("../mock", "'..'"),
            ("a/./mock", "'.'"),
            ("mo ck", "contains ' '"),
        ];
        for (path, want) in cases {
            let e = entry_err(|e| e.binary.as_mut().unwrap().path = path.into());
            assert_eq!(e.field, "spec.binary.path", "{path:?}");
            assert!(e.message.contains(want), "{path:?}: {e}");
            assert!(e.message.contains("plugin directory"), "{e}");
        }
        let long = "a".repeat(PATH_MAX_LEN as usize + 1);
        let e = entry_err(|e| e.binary.as_mut().unwrap().path = long);
        assert!(e.message.contains("longer than"), "{e}");
        // Dots inside names are fine.
        let mut ok = entry();
        ok.binary.as_mut().unwrap().path = "team.a/..mock/.plugin-1.0".into();
        assert_eq!(validate_catalog_entry(&ok), Ok(()));
    }

    #[test]
    fn sha256_is_64_lower_hex() {
        let e = entry_err(|e| e.binary.as_mut().unwrap().sha256 = "abc".into());
        assert_eq!(e.field, "spec.binary.sha256");
        assert!(e.message.contains("sha256sum"), "{e}");
        let e = entry_err(|e| e.binary.as_mut().unwrap().sha256 = SHA.to_uppercase());
        assert!(e.message.contains("lower-case"), "{e}");
        let e = entry_err(|e| e.binary.as_mut().unwrap().sha256 = format!("{}g", &SHA[..63]));
        assert!(e.message.contains("sha256sum"), "{e}");
    }

    #[test]
    fn args_without_nul() {
        let e = entry_err(|e| e.args = Some(vec!["ok".into(), "a\0b".into()]));
        assert_eq!(e.field, "spec.args[1]");
        assert!(e.message.contains("NUL"), "{e}");
    }

    #[test]
    fn env_names() {
        for bad in ["", "1ABC", "A-B", "A B", "É"] {
            let e = entry_err(|e| e.env = Some(vec![literal(bad, "x")]));
            assert_eq!(e.field, "spec.env[0].name", "{bad:?}");
            assert!(
                e.message.contains("not a valid environment variable name"),
                "{e}"
            );
        }
        for reserved in [
            "LOCKBOX_PLUGIN_NAME",
            "LOCKBOX_PLUGIN_VERSION",
            "LOCKBOX_PLUGIN_MAGIC_COOKIE",
            "LOCKBOX_PLUGIN_PROTOCOL_VERSIONS",
            "LOCKBOX_PLUGIN_SOCKET_DIR",
            "LOCKBOX_PLUGIN_HOST_SOCKET",
        ] {
            let e = entry_err(|e| e.env = Some(vec![literal(reserved, "x")]));
            assert!(e.message.contains("reserved"), "{e}");
        }
        // The SDK's log level is the plugin's own setting.
        let mut ok = entry();
        ok.env = Some(vec![literal("LOCKBOX_PLUGIN_LOG", "debug")]);
        assert_eq!(validate_catalog_entry(&ok), Ok(()));
        let e = entry_err(|e| {
            e.env = Some(vec![
                literal("A", "1"),
                from_secret("B", "s", "k"),
                literal("A", "2"),
            ])
        });
        assert_eq!(e.field, "spec.env[2].name");
        assert!(e.message.contains("more than once"), "{e}");
    }

    #[test]
    fn env_value_xor_value_from() {
        let mut both = from_secret("A", "s", "k");
        both.value = Some("secret-literal".into());
        let e = entry_err(|e| e.env = Some(vec![both]));
        assert_eq!(e.field, "spec.env[0]");
        assert!(e.message.contains("both"), "{e}");
        assert!(!e.message.contains("secret-literal"), "value echoed: {e}");

        let neither = EnvVar {
            name: "A".into(),
            value: None,
            value_from: None,
        };
        let e = entry_err(|e| e.env = Some(vec![neither]));
        assert!(e.message.contains("neither"), "{e}");

        // An empty literal is a legitimate value.
        let mut ok = entry();
        ok.env = Some(vec![literal("EMPTY", "")]);
        assert_eq!(validate_catalog_entry(&ok), Ok(()));
    }

    #[test]
    fn env_values_are_never_echoed() {
        let e = entry_err(|e| e.env = Some(vec![literal("A", "hunter2\0")]));
        assert_eq!(e.field, "spec.env[0].value");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let dbg = format!("{:?}", literal("A", "hunter2"));
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("redacted"), "{dbg}");
    }

    #[test]
    fn env_secret_key_ref() {
        for bad in ["", "Mock", "-mock", "mock_creds", "a..b"] {
            let e = entry_err(|e| e.env = Some(vec![from_secret("A", bad, "k")]));
            assert_eq!(
                e.field, "spec.env[0].valueFrom.secretKeyRef.name",
                "{bad:?}"
            );
            assert!(e.message.contains("operator's namespace"), "{e}");
        }
        for bad in ["", "a/b", "a b"] {
            let e = entry_err(|e| e.env = Some(vec![from_secret("A", "creds", bad)]));
            assert_eq!(e.field, "spec.env[0].valueFrom.secretKeyRef.key", "{bad:?}");
        }
        let mut ok = entry();
        ok.env = Some(vec![from_secret("A", "mock.creds-1", "tls.key_2-x")]);
        assert_eq!(validate_catalog_entry(&ok), Ok(()));
    }

    /// The operator's own Secrets are refused by name in the spec, for env
    /// values and pull secrets alike, before anything is read.
    #[test]
    fn the_operators_own_secrets_are_refused_in_the_spec() {
        for own in ["lockbox-unseal-keys", "lockbox-root-token"] {
            let e = entry_err(|e| e.env = Some(vec![from_secret("A", own, "token")]));
            assert_eq!(e.field, "spec.env[0].valueFrom.secretKeyRef.name");
            assert!(
                e.message.contains(own) && e.message.contains("lockbox.dev/plugin-env=true"),
                "{e}"
            );
            let mut spec = image_entry(&format!("registry.example/p@sha256:{SHA}"));
            if let Some(i) = spec.image.as_mut() {
                i.pull_secrets = Some(vec![own.into()]);
            }
            let e = one(validate_catalog_entry(&spec));
            assert_eq!(e.field, "spec.image.pullSecrets[0]");
            assert!(e.message.contains(own), "{e}");
        }
    }

    /// Only Secrets labelled `lockbox.dev/plugin-env: "true"` feed env
    /// values; the operator's own Secrets and ServiceAccount tokens never
    /// do, labelled or not. Messages name the Secret and the label to add.
    #[test]
    fn env_secrets_need_the_plugin_env_label() {
        let labelled: BTreeMap<String, String> =
            [("lockbox.dev/plugin-env".to_string(), "true".to_string())].into();
        let ns = "lockbox-system";
        assert_eq!(
            check_env_secret(0, ns, "creds", Some(&labelled), Some("Opaque")),
            Ok(())
        );
        let other: BTreeMap<String, String> =
            [("lockbox.dev/plugin-env".to_string(), "yes".to_string())].into();
        for labels in [None, Some(&BTreeMap::new()), Some(&other)] {
            let e = check_env_secret(2, ns, "creds", labels, None).unwrap_err();
            assert_eq!(e.field, "spec.env[2].valueFrom.secretKeyRef.name");
            assert!(
                e.message
                    .contains("Secret lockbox-system/creds is not marked")
                    && e.message.contains(
                        "kubectl label secret -n lockbox-system creds lockbox.dev/plugin-env=true"
                    ),
                "{e}"
            );
        }
        for own in ["lockbox-unseal-keys", "lockbox-root-token"] {
            let e = check_env_secret(0, ns, own, Some(&labelled), None).unwrap_err();
            assert!(
                e.message.contains(&format!("{ns}/{own}"))
                    && e.message.contains("operator's own Secret"),
                "{e}"
            );
        }
        let e = check_env_secret(
            0,
            ns,
            "sa-token",
            Some(&labelled),
            Some("kubernetes.io/service-account-token"),
        )
        .unwrap_err();
        assert!(e.message.contains("ServiceAccount token"), "{e}");
    }

    #[test]
    fn every_problem_is_reported() {
        let mut e = entry();
        e.version = "one".into();
        e.binary = None;
        e.env = Some(vec![literal("1X", "v")]);
        let errs = validate_catalog_entry(&e).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.version", "spec.binary", "spec.env[0].name"]);
        let msg = message(&errs);
        assert!(msg.starts_with("spec.version: "), "{msg}");
        assert_eq!(msg.matches("; spec.").count(), 2, "{msg}");
    }

    // -- mounts -------------------------------------------------------------

    #[test]
    fn mount_defaults() {
        let v = validate_mount("team-a", "kv", &mount(), &[]).unwrap();
        assert_eq!(
            v,
            ValidMount {
                path: "team-a/kv/".into(),
                plugin: "mock".into(),
                plugin_version: None,
                description: String::new(),
                default_lease_ttl: 0,
                max_lease_ttl: 0,
                force_no_cache: false,
                options: BTreeMap::new(),
                deletion_policy: DeletionPolicy::Retain,
            }
        );
    }

    #[test]
    fn mount_full_spec() {
        let mut m = mount();
        m.path = Some("team-a/apps/payments".into());
        m.plugin_version = Some("v1.2.0".into());
        m.description = Some("payments".into());
        m.config = Some(MountConfigSpec {
            default_lease_ttl: Some("1h".into()),
            max_lease_ttl: Some("24h".into()),
            force_no_cache: Some(true),
        });
        m.options = Some(BTreeMap::from([("version".into(), "2".into())]));
        m.deletion_policy = Some(DeletionPolicy::Delete);
        let v = validate_mount("team-a", "kv", &m, &[]).unwrap();
        assert_eq!(v.path, "team-a/apps/payments/");
        assert_eq!(v.plugin_version.as_deref(), Some("v1.2.0"));
        assert_eq!(v.description, "payments");
        assert_eq!((v.default_lease_ttl, v.max_lease_ttl), (3600, 86400));
        assert!(v.force_no_cache);
        assert_eq!(v.options["version"], "2");
        assert_eq!(v.deletion_policy, DeletionPolicy::Delete);
    }

    #[test]
    fn mount_path_may_be_the_namespace_itself() {
        let mut m = mount();
        m.path = Some("team-a".into());
        assert_eq!(
            validate_mount("team-a", "kv", &m, &[]).unwrap().path,
            "team-a/"
        );
    }

    #[test]
    fn mount_path_shape() {
        let cases = [
            ("", "is empty"),
            ("/team-a/kv", "remove the leading '/'"),
            ("team-a/kv/", "remove the trailing '/'"),
            ("team-a//kv", "empty segment"),
            ("team-a/../team-b/kv", "'..'"),
            ("team-a/./kv", "'.'"),
            ("team-a/k*v", "contains '*'"),
        ];
        for (path, want) in cases {
            let e = mount_err(|m| m.path = Some(path.into()));
            assert_eq!(e.field, "spec.path", "{path:?}");
            assert!(e.message.contains(want), "{path:?}: {e}");
            assert!(e.message.contains("\"team-a/kv\""), "{path:?}: {e}");
        }
    }

    #[test]
    fn mount_path_outside_namespace_is_refused() {
        for path in ["team-b/kv", "team-ab/kv", "kv", "shared/kv"] {
            let e = mount_err(|m| m.path = Some(path.into()));
            assert_eq!(e.field, "spec.path");
            assert!(
                e.message
                    .contains("outside this namespace's prefix team-a/"),
                "{e}"
            );
            assert!(e.message.contains("administrator"), "{e}");
        }
    }

    #[test]
    fn mount_path_allowed_prefixes() {
        let allowed = ["shared".to_string(), "/platform/db/".to_string()];
        for (path, want) in [
            ("shared/kv", "shared/kv/"),
            ("shared", "shared/"),
            ("platform/db/pg", "platform/db/pg/"),
            ("team-a/kv", "team-a/kv/"),
        ] {
            let mut m = mount();
            m.path = Some(path.into());
            assert_eq!(
                validate_mount("team-a", "kv", &m, &allowed).unwrap().path,
                want
            );
        }
        for path in ["sharedx/kv", "platform/dbx", "platform/kv"] {
            let mut m = mount();
            m.path = Some(path.into());
            let e = one(validate_mount("team-a", "kv", &m, &allowed));
            assert!(e.message.contains("shared/, platform/db/"), "{e}");
        }
    }

    #[test]
    fn reserved_paths_are_refused() {
        // A namespace named like a reserved prefix cannot use the default.
        let e = one(validate_mount("sys", "kv", &mount(), &[]));
        assert_eq!(e.field, "spec.path");
        assert!(e.message.contains("is unset"), "{e}");
        assert!(e.message.contains("reserved"), "{e}");
        assert!(e.message.contains("set spec.path"), "{e}");
        assert!(e.message.contains("administrator"), "{e}");
        assert!(!e.message.contains("under sys/"), "{e}");
        // ... but can use a prefix granted to it.
        let shared = ["shared".to_string()];
        let e = one(validate_mount("sys", "kv", &mount(), &shared));
        assert!(
            e.message.contains("allowed for this namespace: shared/"),
            "{e}"
        );
        let mut m = mount();
        m.path = Some("shared/kv".into());
        assert_eq!(
            validate_mount("sys", "kv", &m, &shared).unwrap().path,
            "shared/kv/"
        );
        // Even an allowed prefix cannot reach them.
        let mut m = mount();
        m.path = Some("auth/kv".into());
        let e = one(validate_mount("team-a", "kv", &m, &["auth".to_string()]));
        assert!(e.message.contains("reserved"), "{e}");
    }

    #[test]
    fn mount_plugin_name() {
        for bad in ["", "Mock", "mock_1", "-mock", "mock-", "a..b"] {
            let e = mount_err(|m| m.plugin = bad.into());
            assert_eq!(e.field, "spec.plugin", "{bad:?}");
            assert!(e.message.contains("PluginCatalogEntry"), "{e}");
        }
        let e = mount_err(|m| m.plugin = "a".repeat(254));
        assert_eq!(e.field, "spec.plugin");
    }

    #[test]
    fn mount_plugin_version() {
        let e = mount_err(|m| m.plugin_version = Some("1.0".into()));
        assert_eq!(e.field, "spec.pluginVersion");
        assert!(e.message.contains("semantic version"), "{e}");
    }

    #[test]
    fn mount_ttls() {
        let e = mount_err(|m| {
            m.config = Some(MountConfigSpec {
                default_lease_ttl: Some("forever".into()),
                ..Default::default()
            })
        });
        assert_eq!(e.field, "spec.config.defaultLeaseTTL");
        assert!(e.message.starts_with("invalid duration \"forever\""), "{e}");
        assert!(e.message.contains("\"1h30m\""), "{e}");

        let e = mount_err(|m| {
            m.config = Some(MountConfigSpec {
                default_lease_ttl: Some("48h".into()),
                max_lease_ttl: Some("24h".into()),
                force_no_cache: None,
            })
        });
        assert_eq!(e.field, "spec.config.defaultLeaseTTL");
        assert!(e.message.contains("longer than maxLeaseTTL 24h"), "{e}");

        // 0 means the system default on either side, so no ordering check.
        let mut m = mount();
        m.config = Some(MountConfigSpec {
            default_lease_ttl: Some("48h".into()),
            max_lease_ttl: Some("0".into()),
            force_no_cache: None,
        });
        let v = validate_mount("team-a", "kv", &m, &[]).unwrap();
        assert_eq!((v.default_lease_ttl, v.max_lease_ttl), (172800, 0));
    }

    #[test]
    fn mount_option_keys() {
        let e = mount_err(|m| m.options = Some(BTreeMap::from([(" ".into(), "x".into())])));
        assert_eq!(e.field, "spec.options");
    }

    #[test]
    fn mount_reports_every_problem() {
        let mut m = mount();
        m.path = Some("/abs".into());
        m.plugin = "Bad".into();
        m.plugin_version = Some("x".into());
        let errs = validate_mount("team-a", "kv", &m, &[]).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.path", "spec.plugin", "spec.pluginVersion"]);
    }
}
