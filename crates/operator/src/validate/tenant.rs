//! Validation of the tenant kinds ([`crate::crd_tenant`]): what a namespace
//! may reach in lockbox. Pure, like the rest of [`super`].
//!
//! # A namespace's prefixes
//!
//! A namespace `ns` owns, in lockbox:
//! - the paths under `ns/` (its SecretsMounts), unless `ns` is a prefix
//!   lockbox reserves (`sys`, `auth`, `identity`, ...);
//! - the paths under `auth/ns/` (its AuthMounts), unless `auth/ns/` is or
//!   holds the token store (`auth/token/`) or the shared Kubernetes auth
//!   mount (`--kubernetes-auth-path`): a namespace named `token` or
//!   `kubernetes` must not write roles or tokens of everyone;
//! - the paths under each prefix the lockbox administrator allowed for `ns`
//!   (`--allowed-path-prefix ns=PREFIX`, the same flag as SecretsMounts').
//!
//! A policy rule is inside when its pattern starts with one of these
//! prefixes literally: `+` and `*` after the prefix only match below it.
//! `team-a*`, `+/kv/*` or `*` could match another team's paths, so they are
//! outside.
//!
//! # Names
//!
//! The lockbox policy of Policy `name` in `ns` is `ns.name`; the role of
//! KubernetesAuthRole `name` is `ns.name`. A namespace is a DNS label (no
//! `.`), so the part before the first `.` is always the namespace: two
//! objects never map to one name, and no tenant can name another's.

use super::{SpecError, check_ttl, is_object_name};
use crate::crd::DeletionPolicy;
use crate::crd_tenant::{AuthMountSpec, KubernetesAuthRoleSpec, PolicySpec};
use lockbox_core::core::mounts;
use lockbox_core::policy::{self, Capabilities, PathRule};
use serde_json::{Map, Value, json};

/// The lockbox name of a Policy or KubernetesAuthRole: `<namespace>.<name>`.
pub fn tenant_name(namespace: &str, name: &str) -> String {
    format!("{namespace}.{name}")
}

/// The path prefixes (each ending in `/`) namespace `namespace` may reach
/// (see the module docs). `kubernetes_auth_path` is the shared Kubernetes
/// auth mount below `auth/` (`kubernetes`).
pub fn namespace_prefixes(
    namespace: &str,
    allowed_prefixes: &[String],
    kubernetes_auth_path: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let own = format!("{namespace}/");
    if mounts::check_reserved(&own).is_ok() {
        out.push(own.clone());
    }
    if auth_path_is_tenants(&own, kubernetes_auth_path) {
        out.push(format!("auth/{own}"));
    }
    for p in allowed_prefixes {
        let p = p.trim_matches('/');
        if !p.is_empty() {
            out.push(format!("{p}/"));
        }
    }
    out
}

/// Whether the auth path `path` (below `auth/`, ending in `/`) may belong
/// to a tenant: it is neither the token store nor the shared Kubernetes
/// auth mount, nor holds or lies in either.
fn auth_path_is_tenants(path: &str, kubernetes_auth_path: &str) -> bool {
    let kube = format!("{}/", kubernetes_auth_path.trim_matches('/'));
    ["token/", kube.as_str()]
        .iter()
        .all(|shared| !path.starts_with(shared) && !shared.starts_with(path))
}

/// Why pattern `pattern` is not within `prefixes`, if it is not.
pub fn check_policy_path(pattern: &str, prefixes: &[String]) -> Result<(), String> {
    let list = if prefixes.is_empty() {
        "none: ask the lockbox administrator to allow a prefix for this namespace".to_string()
    } else {
        prefixes.join(", ")
    };
    let outside = |why: &str| {
        Err(format!(
            "path {pattern:?} {why}; this namespace's policies may only reach paths under {list}"
        ))
    };
    if pattern.starts_with('/') {
        return outside("starts with '/'");
    }
    let body = pattern.strip_suffix('/').unwrap_or(pattern);
    if body
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return outside("has an empty, '.' or '..' segment");
    }
    if prefixes.iter().any(|p| pattern.starts_with(p.as_str())) {
        Ok(())
    } else if pattern.contains(['*', '+']) {
        outside(
            "could match paths outside this namespace (a glob or '+' before the namespace's prefix)",
        )
    } else {
        outside("is outside this namespace's prefixes")
    }
}

/// A Policy spec that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPolicy {
    /// The lockbox name (`<namespace>.<name>`).
    pub name: String,
    /// The policy text written to lockbox: `spec.hcl` as given, or the HCL
    /// of `spec.rules`.
    pub text: String,
    /// What deleting the resource does.
    pub deletion_policy: DeletionPolicy,
}

/// Validates a Policy: exactly one of `hcl` and `rules`; it parses with
/// lockbox's own policy parser; every rule's path is within the
/// namespace's prefixes ([`namespace_prefixes`]), each outside path named.
pub fn validate_policy(
    namespace: &str,
    name: &str,
    spec: &PolicySpec,
    allowed_prefixes: &[String],
    kubernetes_auth_path: &str,
) -> Result<ValidPolicy, Vec<SpecError>> {
    let lockbox_name = tenant_name(namespace, name);
    let prefixes = namespace_prefixes(namespace, allowed_prefixes, kubernetes_auth_path);
    let mut errs = Vec::new();
    let text = match (&spec.hcl, &spec.rules) {
        (Some(_), Some(_)) => {
            errs.push(SpecError::new(
                "spec.rules",
                "is set together with spec.hcl: keep exactly one",
            ));
            None
        }
        (None, None) => {
            errs.push(SpecError::new(
                "spec.hcl",
                "is required: give the policy in Vault's HCL syntax (spec.hcl) or as \
                 spec.rules [{path, capabilities}]",
            ));
            None
        }
        (Some(hcl), None) => match policy::parse(&lockbox_name, hcl) {
            Err(e) => {
                errs.push(SpecError::new("spec.hcl", e.to_string()));
                None
            }
            Ok(parsed) => {
                for rule in &parsed.rules {
                    if let Err(m) = check_policy_path(&rule.pattern, &prefixes) {
                        errs.push(SpecError::new("spec.hcl", m));
                    }
                }
                Some(hcl.clone())
            }
        },
        (None, Some(rules)) => rules_text(&lockbox_name, rules, &prefixes, &mut errs),
    };
    match text {
        Some(text) if errs.is_empty() => Ok(ValidPolicy {
            name: lockbox_name,
            text,
            deletion_policy: spec.deletion_policy.unwrap_or_default(),
        }),
        _ => Err(errs),
    }
}

/// The HCL of structured rules, checked rule by rule and then parsed back
/// by lockbox's parser (which checks the glob position).
fn rules_text(
    lockbox_name: &str,
    rules: &[crate::crd_tenant::PolicyRule],
    prefixes: &[String],
    errs: &mut Vec<SpecError>,
) -> Option<String> {
    let before = errs.len();
    let mut parsed = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("spec.rules[{i}]");
        if let Err(m) = check_policy_path(&rule.path, prefixes) {
            errs.push(SpecError::new(format!("{field}.path"), m));
        }
        if rule.capabilities.is_empty() {
            errs.push(SpecError::new(
                format!("{field}.capabilities"),
                "is empty: list what the rule grants, such as [\"read\", \"list\"], or \
                 [\"deny\"]",
            ));
            continue;
        }
        match Capabilities::parse(rule.capabilities.iter().map(String::as_str), &rule.path) {
            Ok(capabilities) => parsed.push(PathRule {
                pattern: rule.path.clone(),
                capabilities,
            }),
            Err(e) => errs.push(SpecError::new(
                format!("{field}.capabilities"),
                e.to_string(),
            )),
        }
    }
    if errs.len() > before {
        return None;
    }
    let text = policy::Policy {
        name: lockbox_name.to_string(),
        rules: parsed,
    }
    .to_hcl();
    match policy::parse(lockbox_name, &text) {
        Ok(_) => Some(text),
        Err(e) => {
            errs.push(SpecError::new("spec.rules", e.to_string()));
            None
        }
    }
}

/// A KubernetesAuthRole spec that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRole {
    /// The role name (`<namespace>.<name>`).
    pub role: String,
    /// The Policy objects (names in the namespace) it grants.
    pub policy_refs: Vec<String>,
    /// The role's fields as Vault's `auth/<mount>/role/:name` takes them,
    /// every managed field explicit (so removing one from the spec clears
    /// it in lockbox).
    pub data: Map<String, Value>,
    /// What deleting the resource does.
    pub deletion_policy: DeletionPolicy,
}

/// Validates a KubernetesAuthRole: ServiceAccounts of its own namespace
/// only (`boundServiceAccountNamespaces` unset or exactly `[namespace]`),
/// policies named as Policy objects of its namespace (mapped to
/// `<namespace>.<name>`), TTLs that parse and are ordered.
pub fn validate_auth_role(
    namespace: &str,
    name: &str,
    spec: &KubernetesAuthRoleSpec,
) -> Result<ValidRole, Vec<SpecError>> {
    let mut errs = Vec::new();
    if spec.bound_service_account_names.is_empty() {
        errs.push(SpecError::new(
            "spec.boundServiceAccountNames",
            "is empty: name the ServiceAccounts of this namespace that may log in (or \"*\" \
             for all of them)",
        ));
    }
    for (i, sa) in spec.bound_service_account_names.iter().enumerate() {
        let glob_ok = sa
            .strip_suffix('*')
            .is_some_and(|p| p.is_empty() || is_object_name(p.trim_end_matches(['-', '.'])));
        if !(is_object_name(sa) || glob_ok) {
            errs.push(SpecError::new(
                format!("spec.boundServiceAccountNames[{i}]"),
                format!(
                    "{sa:?} is not a ServiceAccount name of this namespace: give the \
                     metadata.name of a ServiceAccount in {namespace} (or \"*\"); \
                     ServiceAccounts of other namespaces cannot be bound"
                ),
            ));
        }
    }
    for (i, ns) in spec
        .bound_service_account_namespaces
        .iter()
        .flatten()
        .enumerate()
    {
        if ns != namespace {
            errs.push(SpecError::new(
                format!("spec.boundServiceAccountNamespaces[{i}]"),
                format!(
                    "{ns:?} is not this namespace: a role may bind ServiceAccounts of \
                     {namespace} only; remove the field or set it to [{namespace}]"
                ),
            ));
        }
    }
    if spec
        .bound_service_account_namespaces
        .as_ref()
        .is_some_and(Vec::is_empty)
    {
        errs.push(SpecError::new(
            "spec.boundServiceAccountNamespaces",
            format!("is empty: remove the field or set it to [{namespace}]"),
        ));
    }
    let refs = spec.token_policies.clone().unwrap_or_default();
    for (i, p) in refs.iter().enumerate() {
        if !is_object_name(p) {
            errs.push(SpecError::new(
                format!("spec.tokenPolicies[{i}]"),
                format!(
                    "{p:?} is not the name of a Policy object: give the metadata.name of a \
                     Policy in namespace {namespace}; policies of other namespaces cannot be \
                     granted"
                ),
            ));
        }
    }
    if spec
        .audience
        .as_deref()
        .is_some_and(|a| a.trim().is_empty())
    {
        errs.push(SpecError::new(
            "spec.audience",
            "is empty: give the audience the tokens are requested for, or remove the field",
        ));
    }
    let ttl = check_ttl("spec.tokenTTL", spec.token_ttl.as_deref(), &mut errs);
    let max = check_ttl("spec.tokenMaxTTL", spec.token_max_ttl.as_deref(), &mut errs);
    if let (Some(t), Some(m)) = (ttl, max)
        && t > 0
        && m > 0
        && t > m
    {
        errs.push(SpecError::new(
            "spec.tokenTTL",
            "is longer than tokenMaxTTL; lower tokenTTL or raise tokenMaxTTL",
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let policies: Vec<String> = refs.iter().map(|p| tenant_name(namespace, p)).collect();
    let mut data = Map::new();
    data.insert(
        "bound_service_account_names".into(),
        json!(spec.bound_service_account_names),
    );
    data.insert(
        "bound_service_account_namespaces".into(),
        json!([namespace]),
    );
    data.insert(
        "audience".into(),
        json!(spec.audience.clone().unwrap_or_default()),
    );
    if let Some(source) = spec.alias_name_source {
        data.insert("alias_name_source".into(), json!(source.as_str()));
    }
    data.insert("token_policies".into(), json!(policies));
    data.insert("token_ttl".into(), json!(ttl.unwrap_or(0)));
    data.insert("token_max_ttl".into(), json!(max.unwrap_or(0)));
    Ok(ValidRole {
        role: tenant_name(namespace, name),
        policy_refs: refs,
        data,
        deletion_policy: spec.deletion_policy.unwrap_or_default(),
    })
}

/// Validates an AuthMount by SecretsMount's rules ([`super::validate_mount`]:
/// default `<namespace>/<name>`, the namespace's prefix rule), the path
/// being below `auth/`; and refuses the token store and the shared
/// Kubernetes auth mount (and any path holding or inside them).
pub fn validate_auth_mount(
    namespace: &str,
    name: &str,
    spec: &AuthMountSpec,
    allowed_prefixes: &[String],
    kubernetes_auth_path: &str,
) -> Result<super::ValidMount, Vec<SpecError>> {
    validate_auth_mount_spec(
        namespace,
        name,
        &spec.into(),
        allowed_prefixes,
        kubernetes_auth_path,
    )
}

/// [`validate_auth_mount`] of the spec as the SecretsMount reconciler
/// holds it.
pub(crate) fn validate_auth_mount_spec(
    namespace: &str,
    name: &str,
    spec: &crate::crd::SecretsMountSpec,
    allowed_prefixes: &[String],
    kubernetes_auth_path: &str,
) -> Result<super::ValidMount, Vec<SpecError>> {
    let valid = super::validate_mount(namespace, name, spec, allowed_prefixes).map_err(|errs| {
        errs.into_iter()
            .map(|e| SpecError::new(e.field, e.message.replace("SecretsMount", "AuthMount")))
            .collect::<Vec<_>>()
    })?;
    if !auth_path_is_tenants(&valid.path, kubernetes_auth_path) {
        return Err(vec![SpecError::new(
            "spec.path",
            format!(
                "auth/{} is, holds or lies in a mount lockbox shares between all namespaces \
                 (auth/token/, auth/{}/): choose another spec.path",
                valid.path,
                kubernetes_auth_path.trim_matches('/')
            ),
        )]);
    }
    Ok(valid)
}

#[cfg(test)]
mod tests;
