//! The tenant kinds of group `lockbox.dev/v1alpha1`: [`Policy`],
//! [`KubernetesAuthRole`] and [`AuthMount`], all namespaced, so that a team
//! with RBAC in its own namespace only can serve itself.
//!
//! The schema rules of [`super::crd`] hold here too (structural, no schema
//! defaults, the operator writes only `status`, `Ready` with
//! `observedGeneration`). What a tenant may reach is decided by
//! [`super::validate::tenant`]:
//!
//! ```text
//!  namespace team-a                                   lockbox
//!  Policy read        ──────── policy ───────────▶  sys/policies/acl/team-a.read
//!    rules only under team-a/…, auth/team-a/…          (paths of other teams: InvalidSpec)
//!  KubernetesAuthRole app ──── role ─────────────▶  auth/kubernetes/role/team-a.app
//!    ServiceAccounts of team-a, Policies of team-a     bound_service_account_namespaces=[team-a]
//!  AuthMount oidc     ──────── auth method ──────▶  sys/auth/team-a/oidc
//! ```

use super::crd::{DeletionPolicy, MountConfigSpec, OBJECT_NAME_MAX_LEN, OBJECT_NAME_PATTERN};
use super::crd::{PATH_MAX_LEN, RELATIVE_PATH_PATTERN, SecretsMountStatus, VERSION_PATTERN};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------

/// Desired state of a policy: Vault's HCL (`hcl`) or the same rules as
/// structured data (`rules`), exactly one of them. The lockbox policy is
/// named `<namespace>.<name>` (a namespace has no `.`, so two objects never
/// map to the same name).
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "lockbox.dev",
    version = "v1alpha1",
    kind = "Policy",
    plural = "policies",
    singular = "policy",
    shortname = "lbpol",
    category = "lockbox",
    namespaced,
    status = "PolicyStatus",
    derive = "PartialEq",
    doc = "An ACL policy in lockbox named <namespace>.<name>, whose paths stay within the namespace's own prefixes.",
    printcolumn(
        name = "Lockbox Name",
        type_ = "string",
        json_path = ".status.lockboxName"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// The policy in Vault's HCL syntax (`path "team-a/*" { capabilities =
    /// ["read"] }`). Exactly one of `hcl` and `rules` must be set. Every
    /// path must stay within `<namespace>/` or `auth/<namespace>/` (or a
    /// prefix the lockbox administrator allowed for the namespace); a glob
    /// or `+` that could match outside (`team-a*`, `+/x`, `*`) is outside.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub hcl: Option<String>,

    /// The policy as structured rules, one per path. Exactly one of `hcl`
    /// and `rules` must be set; the same path rules apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<PolicyRule>>,

    /// What deleting this resource does in lockbox: `Retain` (the default
    /// when unset) keeps the policy, `Delete` deletes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// One `path "..." { capabilities = [...] }` rule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// The path pattern, such as `team-a/kv/*` or `team-a/+/config`.
    #[schemars(length(min = 1, max = 512))]
    pub path: String,
    /// Capabilities: `create`, `read`, `update`, `patch`, `delete`, `list`,
    /// `sudo`, `deny`.
    #[schemars(length(min = 1))]
    pub capabilities: Vec<String>,
}

/// Observed state of a policy, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the policy is written in lockbox as the spec says.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Option<Vec<Condition>>,
    /// The policy's name in lockbox (`<namespace>.<name>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lockbox_name: Option<String>,
    /// Human-readable summary of the last reconcile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

// ---------------------------------------------------------------------------
// KubernetesAuthRole
// ---------------------------------------------------------------------------

/// Desired state of a role of a Kubernetes auth mount (Vault's
/// `auth/kubernetes/role/:name`). It binds ServiceAccounts of this
/// namespace only and grants Policies of this namespace only. The role is
/// named `<namespace>.<name>` and lives in the cluster's shared Kubernetes
/// auth mount (`auth/kubernetes`, the operator's `--kubernetes-auth-path`).
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "lockbox.dev",
    version = "v1alpha1",
    kind = "KubernetesAuthRole",
    plural = "kubernetesauthroles",
    singular = "kubernetesauthrole",
    shortname = "k8srole",
    category = "lockbox",
    namespaced,
    status = "KubernetesAuthRoleStatus",
    derive = "PartialEq",
    doc = "A role of lockbox's Kubernetes auth method named <namespace>.<name>, binding ServiceAccounts and Policies of its own namespace only.",
    printcolumn(name = "Role", type_ = "string", json_path = ".status.role"),
    printcolumn(name = "Mount", type_ = "string", json_path = ".status.mount"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesAuthRoleSpec {
    /// ServiceAccount names of this namespace that may log in with the role
    /// (`bound_service_account_names`); `*` means every ServiceAccount of
    /// this namespace.
    #[schemars(length(min = 1))]
    pub bound_service_account_names: Vec<String>,

    /// `bound_service_account_namespaces`: may only be this namespace (it is
    /// set to it when unset); another namespace or `*` is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_service_account_namespaces: Option<Vec<String>>,

    /// The audience the ServiceAccount token must carry (`audience`), such
    /// as `lockbox`. Unset: the plugin's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,

    /// `alias_name_source`: `serviceaccount_uid` (the default) or
    /// `serviceaccount_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias_name_source: Option<AliasNameSource>,

    /// Names of Policy objects of this namespace whose lockbox policies
    /// tokens of the role get (`token_policies`, as `<namespace>.<name>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_policies: Option<Vec<String>>,

    /// Lifetime of the tokens issued (`token_ttl`), such as `1h`.
    #[serde(rename = "tokenTTL", skip_serializing_if = "Option::is_none")]
    pub token_ttl: Option<String>,

    /// Longest lifetime of the tokens issued (`token_max_ttl`).
    #[serde(rename = "tokenMaxTTL", skip_serializing_if = "Option::is_none")]
    pub token_max_ttl: Option<String>,

    /// What deleting this resource does in lockbox: `Retain` (the default
    /// when unset) keeps the role, `Delete` deletes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// Where the alias name of a login comes from (Vault's `alias_name_source`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AliasNameSource {
    /// The ServiceAccount's UID (Vault's default).
    #[serde(rename = "serviceaccount_uid")]
    ServiceAccountUid,
    /// `<namespace>/<name>` of the ServiceAccount.
    #[serde(rename = "serviceaccount_name")]
    ServiceAccountName,
}

impl AliasNameSource {
    /// Vault's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AliasNameSource::ServiceAccountUid => "serviceaccount_uid",
            AliasNameSource::ServiceAccountName => "serviceaccount_name",
        }
    }
}

/// Observed state of a role, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesAuthRoleStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the role is written in lockbox as the spec says.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Option<Vec<Condition>>,
    /// The role's name in the auth mount (`<namespace>.<name>`), the `role`
    /// of a login.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The auth mount the role lives in (`auth/kubernetes/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// Human-readable summary of the last reconcile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

// ---------------------------------------------------------------------------
// AuthMount
// ---------------------------------------------------------------------------

/// Desired state of an auth method mount: which catalog plugin (of type
/// `auth`) serves it, where under `auth/`, and how. The same fields and
/// rules as SecretsMount's.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "lockbox.dev",
    version = "v1alpha1",
    kind = "AuthMount",
    plural = "authmounts",
    singular = "authmount",
    shortname = "amount",
    category = "lockbox",
    namespaced,
    status = "SecretsMountStatus",
    derive = "PartialEq",
    doc = "An auth method mounted in lockbox at auth/<namespace>/<name> (or auth/<spec.path>), backed by a PluginCatalogEntry of type auth.",
    printcolumn(name = "Path", type_ = "string", json_path = ".status.path"),
    printcolumn(name = "Plugin", type_ = "string", json_path = ".spec.plugin"),
    printcolumn(
        name = "Version",
        type_ = "string",
        description = "Version of the plugin the mount runs",
        json_path = ".status.runningVersion"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AuthMountSpec {
    /// Mount path below `auth/`, relative (`team-a/oidc` is mounted at
    /// `auth/team-a/oidc`). Default when unset: `<namespace>/<name>`. Paths
    /// outside `<namespace>/` are refused unless the lockbox administrator
    /// allowed the prefix for this namespace; a path where lockbox already
    /// has an auth method this object did not create is `PathConflict`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = RELATIVE_PATH_PATTERN), length(max = PATH_MAX_LEN))]
    pub path: Option<String>,

    /// Name of the PluginCatalogEntry (of type `auth`) that serves this
    /// mount.
    #[schemars(regex(pattern = OBJECT_NAME_PATTERN), length(max = OBJECT_NAME_MAX_LEN))]
    pub plugin: String,

    /// Run exactly this version of the plugin. When unset the mount follows
    /// the catalog entry's `spec.version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = VERSION_PATTERN), length(max = 128))]
    pub plugin_version: Option<String>,

    /// Human-readable description shown by `lockbox auth list`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// Lease settings of the mount (tokens issued by the method).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<MountConfigSpec>,

    /// Options passed to the plugin when the mount is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,

    /// What deleting this resource does in lockbox: `Retain` (the default
    /// when unset) or `Delete` (disables the method, if this object created
    /// it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

impl From<&AuthMountSpec> for super::crd::SecretsMountSpec {
    /// The same fields: an AuthMount is validated by the SecretsMount rules
    /// (with paths relative to `auth/`).
    fn from(s: &AuthMountSpec) -> Self {
        super::crd::SecretsMountSpec {
            path: s.path.clone(),
            plugin: s.plugin.clone(),
            plugin_version: s.plugin_version.clone(),
            description: s.description.clone(),
            config: s.config.clone(),
            options: s.options.clone(),
            deletion_policy: s.deletion_policy,
        }
    }
}
