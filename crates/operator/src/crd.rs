//! The custom resource types of group `lockbox.dev`, version `v1alpha1`.
//!
//! Field documentation here becomes the OpenAPI `description` that
//! `kubectl explain` shows, so it is written for the cluster user.
//!
//! # Schema rules (why the types look the way they do)
//!
//! - **Structural, CEL for what a pattern cannot say.** The schemas come
//!   from schemars through kube's structural rewriter. Every field has a
//!   `type`; there is no `oneOf`/`anyOf` (mutually exclusive fields such as
//!   `binary`/`image` and `env[].value`/`env[].valueFrom` are plain optional
//!   siblings). Rules across fields are CEL `x-kubernetes-validations`
//!   (Kubernetes 1.25+, GA in 1.29; supported: 1.30+), written with
//!   schemars `extend` next to the type they check: exactly one source,
//!   exactly one env value, a tag-only image needs `sha256`, no reserved
//!   mount path. Each rule only reads fields of its own object and is cheap
//!   (no list walk), so the API server's cost estimate stays small. They
//!   are a first line at `kubectl apply`: [`super::validate`] checks all of
//!   it again (and what CEL cannot know: the operator's allowed prefixes,
//!   reference parsing, Secrets), so an object stored before a rule existed
//!   is still refused with `InvalidSpec`.
//! - **No schema defaults.** Nothing uses a serde default that schemars would
//!   turn into an OpenAPI `default`: the API server would write such defaults
//!   into the stored object and GitOps tools (Argo CD, Flux) would then see a
//!   diff against the manifest in git. Optional fields are `Option` with
//!   `skip_serializing_if`, and the documented defaults are applied by
//!   [`super::validate`] (for example the mount path `<namespace>/<name>`).
//! - **The operator never writes `spec`.** Everything it learns goes to
//!   `status`, whose `conditions` follow the kstatus conventions
//!   (`observedGeneration`; `Ready`, with `Stalled` or `Reconciling` beside
//!   `Ready=False`; see [`super::conditions`]).
//! - **Patterns mirror the validation functions.** Enums, patterns, lengths
//!   and required fields give early feedback at `kubectl apply`; the same
//!   rules (and the ones a schema cannot express) live in
//!   [`super::validate`] with messages that say what to change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// API group of all lockbox resources.
pub const GROUP: &str = "lockbox.dev";
/// API version served and stored.
pub const VERSION: &str = "v1alpha1";

/// Condition type: the resource is in effect (kstatus `Ready`).
pub const CONDITION_READY: &str = "Ready";
/// Condition type: kstatus `Reconciling` (not ready yet, the operator
/// retries; kstatus InProgress). See [`super::conditions`].
pub const CONDITION_RECONCILING: &str = "Reconciling";
/// Condition type: kstatus `Stalled` (not ready, and a retry cannot fix it
/// until something changes; kstatus Failed). See [`super::conditions`].
pub const CONDITION_STALLED: &str = "Stalled";
/// Condition type (catalog entries): the plugin binary's sha256 matched.
pub const CONDITION_VERIFIED: &str = "Verified";
/// Condition reason: the spec failed [`super::validate`]; the message lists
/// every problem. Retrying does not help until the spec changes.
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";

/// Label that marks a Secret in the operator's namespace as a source of
/// plugin environment values (`env[].valueFrom.secretKeyRef`); the value
/// must be [`PLUGIN_ENV_LABEL_VALUE`]. Unlabelled Secrets are refused.
pub const PLUGIN_ENV_LABEL: &str = "lockbox.dev/plugin-env";
/// The value of [`PLUGIN_ENV_LABEL`] that allows plugin use.
pub const PLUGIN_ENV_LABEL_VALUE: &str = "true";

/// Number of hex digits of the sha256 shown in the catalog's printer column.
pub const SHA256_PREFIX_LEN: usize = 12;

// Patterns are RE2-compatible (the API server evaluates them with Go's
// regexp): no look-around, no back-references.

/// Lower-case hex sha256, the output of `sha256sum`.
pub const SHA256_PATTERN: &str = "^[a-f0-9]{64}$";
/// A Kubernetes object name (DNS-1123 subdomain): catalog entry names
/// (which are the plugin names) and Secret names.
pub const OBJECT_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// Maximum length of a Kubernetes object name.
pub const OBJECT_NAME_MAX_LEN: u32 = 253;
/// A relative path: `/`-separated segments of `[A-Za-z0-9_.-]`, no leading
/// or trailing `/`, no empty, `.` or `..` segment.
pub const RELATIVE_PATH_PATTERN: &str = concat!(
    r"^([A-Za-z0-9_-][A-Za-z0-9_.-]*|\.[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.\.[A-Za-z0-9_.-]+)",
    r"(/([A-Za-z0-9_-][A-Za-z0-9_.-]*|\.[A-Za-z0-9_-][A-Za-z0-9_.-]*|\.\.[A-Za-z0-9_.-]+))*$"
);
/// Maximum length of a mount path or plugin binary path.
pub const PATH_MAX_LEN: u32 = 256;
/// A semantic version with an optional leading `v` (`1.2.0`, `v0.3.1-rc.1`).
pub const VERSION_PATTERN: &str = concat!(
    r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)",
    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$"
);
/// An environment variable name.
pub const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";
/// A key in a Secret's `data`.
pub const SECRET_KEY_PATTERN: &str = "^[-._a-zA-Z0-9]+$";

// ---------------------------------------------------------------------------
// PluginCatalogEntry
// ---------------------------------------------------------------------------

/// Desired state of a catalog entry. The entry's `metadata.name` is the
/// plugin name that `SecretsMount.spec.plugin` refers to (and that
/// `lockbox secrets enable` would use).
// clippy reads `type_ = "string"` in two `printcolumn(...)` as a duplicated
// attribute; they are separate columns.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "lockbox.dev",
    version = "v1alpha1",
    kind = "PluginCatalogEntry",
    plural = "plugincatalogentries",
    singular = "plugincatalogentry",
    shortname = "pce",
    category = "lockbox",
    status = "PluginCatalogEntryStatus",
    derive = "PartialEq",
    doc = "A plugin that lockbox may run, pinned by sha256 (cluster-scoped; the name is the plugin name).",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(
        name = "SHA256",
        type_ = "string",
        description = "First 12 hex digits of the verified sha256",
        json_path = ".status.sha256Prefix"
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
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.binary) != has(self.image)",
    "message": "exactly one of spec.binary and spec.image must be set",
    "reason": "FieldValueInvalid",
}]))]
pub struct PluginCatalogEntrySpec {
    /// Kind of plugin: `secret` (a secrets engine, used by SecretsMount) or
    /// `auth` (an auth method).
    #[serde(rename = "type")]
    pub plugin_type: PluginType,

    /// Semantic version of the plugin, with an optional leading `v`
    /// (`1.2.0`, `v0.3.1-rc.1`). SecretsMounts can pin it with
    /// `spec.pluginVersion`.
    #[schemars(regex(pattern = VERSION_PATTERN), length(max = 128))]
    pub version: String,

    /// The plugin executable inside the operator's plugin directory. Exactly
    /// one source must be set: `binary` or `image`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<BinarySource>,

    /// The plugin executable inside an OCI image, pulled by the operator
    /// itself, verified, and kept in its content-addressed cache. Exactly
    /// one source must be set: `binary` or `image`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSource>,

    /// Arguments passed to the plugin process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,

    /// Environment of the plugin process. Literal `value`s and values read
    /// from a Secret (`valueFrom.secretKeyRef`, in the namespace the operator
    /// runs in). Values are never copied into status, events or logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub env: Option<Vec<EnvVar>>,

    /// `true` (the default when unset): one plugin process serves every mount
    /// of this plugin. `false`: one process per mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multiplexing: Option<bool>,
}

/// Kinds of plugins.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PluginType {
    /// A secrets engine, mounted by SecretsMount.
    Secret,
    /// An auth method.
    Auth,
}

impl PluginType {
    /// `secret` or `auth`, as in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginType::Secret => "secret",
            PluginType::Auth => "auth",
        }
    }
}

impl fmt::Display for PluginType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<PluginType> for lockbox_core::catalog::PluginType {
    fn from(t: PluginType) -> Self {
        match t {
            PluginType::Secret => lockbox_core::catalog::PluginType::Secret,
            PluginType::Auth => lockbox_core::catalog::PluginType::Auth,
        }
    }
}

/// A plugin executable shipped in the operator's plugin directory.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BinarySource {
    /// File path relative to the operator's plugin directory, such as
    /// `lockbox-plugin-mock` or `team-a/passgen`. No leading `/`, no `..`.
    #[schemars(regex(pattern = RELATIVE_PATH_PATTERN), length(max = PATH_MAX_LEN))]
    pub path: String,

    /// Expected sha256 of the file, 64 lower-case hex digits (the output of
    /// `sha256sum FILE`). The plugin is not run unless the file matches.
    #[schemars(regex(pattern = SHA256_PATTERN))]
    pub sha256: String,
}

/// A plugin executable in an OCI image (an artifact pushed with
/// `lockbox plugin push`, or an ordinary container image).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.reference.contains('@') || has(self.sha256)",
    "message": "spec.image.reference has no @sha256:<digest>: pin it by digest or set spec.image.sha256",
    "reason": "FieldValueInvalid",
}]))]
pub struct ImageSource {
    /// The image, pinned by manifest digest:
    /// `registry.example/plugins/mock@sha256:<64 hex>`. A reference with
    /// only a tag is refused unless `sha256` pins the binary (the resolved
    /// manifest digest is then recorded in status). Registries are reached
    /// over HTTPS unless the operator runs with `--insecure-registry`.
    #[schemars(length(min = 1, max = 1024))]
    pub reference: String,

    /// Path of the binary inside the image. Unset means `/plugin`. Ignored
    /// for an artifact whose single layer is the binary itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = PATH_MAX_LEN))]
    pub path: Option<String>,

    /// Expected sha256 of the binary, 64 lower-case hex digits. Required
    /// with a tag-only reference; otherwise an extra pin.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SHA256_PATTERN))]
    pub sha256: Option<String>,

    /// Names of `kubernetes.io/dockerconfigjson` Secrets in the operator's
    /// namespace holding credentials for the registry (grant the operator
    /// `get` on them). Unset: anonymous pulls.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = OBJECT_NAME_PATTERN), length(max = OBJECT_NAME_MAX_LEN)))]
    pub pull_secrets: Option<Vec<String>>,
}

/// One environment variable of the plugin process: either `value` or
/// `valueFrom`, not both.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.value) != has(self.valueFrom)",
    "message": "exactly one of value and valueFrom must be set",
    "reason": "FieldValueInvalid",
}]))]
pub struct EnvVar {
    /// Variable name (letters, digits, `_`; not starting with a digit).
    /// The plugin protocol's own variables (`LOCKBOX_PLUGIN_NAME`,
    /// `LOCKBOX_PLUGIN_VERSION`, `LOCKBOX_PLUGIN_SOCKET_DIR`, ...) are set by
    /// the host and cannot be given; `LOCKBOX_PLUGIN_LOG` can.
    #[schemars(regex(pattern = ENV_NAME_PATTERN), length(max = 256))]
    pub name: String,

    /// Literal value. Prefer `valueFrom.secretKeyRef` for anything secret:
    /// a literal lives in the custom resource, readable by whoever can read
    /// catalog entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,

    /// Read the value from a Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// `Debug` never prints the value: specs end up in logs.
impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvVar")
            .field("name", &self.name)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .field("value_from", &self.value_from)
            .finish()
    }
}

/// Where an environment variable's value comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource {
    /// A key of a Secret in the operator's own namespace (catalog entries are
    /// cluster-scoped, so the Secret lives next to the operator). The Secret
    /// must be labelled `lockbox.dev/plugin-env: "true"`; the operator's own
    /// Secrets (`lockbox-unseal-keys`, `lockbox-root-token`) and
    /// ServiceAccount tokens are refused even when labelled.
    pub secret_key_ref: SecretKeySelector,
}

/// A key of a Secret in the operator's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// Name of the Secret (in the operator's namespace).
    #[schemars(regex(pattern = OBJECT_NAME_PATTERN), length(max = OBJECT_NAME_MAX_LEN))]
    pub name: String,
    /// Key within the Secret's `data`.
    #[schemars(regex(pattern = SECRET_KEY_PATTERN), length(max = OBJECT_NAME_MAX_LEN))]
    pub key: String,
}

/// Observed state of a catalog entry, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginCatalogEntryStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready` (registered in lockbox and usable) and `Verified` (the
    /// executable matched `sha256`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Option<Vec<Condition>>,

    /// The sha256 that was verified and registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,

    /// The first 12 hex digits of `sha256`, for the printer column (JSONPath
    /// cannot shorten a string).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256_prefix: Option<String>,

    /// The version registered in lockbox's plugin catalog.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,

    /// For `spec.image`: the manifest digest (`sha256:...`) the verified
    /// binary was taken from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,

    /// Human-readable summary of the last reconcile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl PluginCatalogEntryStatus {
    /// The value of `sha256Prefix` for a verified sha256.
    pub fn sha256_prefix_of(sha256: &str) -> String {
        sha256.chars().take(SHA256_PREFIX_LEN).collect()
    }
}

// ---------------------------------------------------------------------------
// SecretsMount
// ---------------------------------------------------------------------------

/// Desired state of a mount: which catalog plugin serves it, where, and how.
// clippy reads `type_ = "string"` in two `printcolumn(...)` as a duplicated
// attribute; they are separate columns.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "lockbox.dev",
    version = "v1alpha1",
    kind = "SecretsMount",
    plural = "secretsmounts",
    singular = "secretsmount",
    shortname = "smount",
    category = "lockbox",
    namespaced,
    status = "SecretsMountStatus",
    derive = "PartialEq",
    doc = "A secrets engine mounted in lockbox at <namespace>/<name> (or spec.path), backed by a PluginCatalogEntry.",
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
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.path) || !self.path.matches('^(sys|auth|cubbyhole|identity)(/|$)')",
    "message": "spec.path must not start with sys/, auth/, cubbyhole/ or identity/ (reserved by lockbox)",
    "reason": "FieldValueInvalid",
    "fieldPath": ".path",
}]))]
pub struct SecretsMountSpec {
    /// Mount path in lockbox, relative (`team-a/kv`, no leading `/`, no
    /// `..`). Default when unset: `<namespace>/<name>`. Paths outside
    /// `<namespace>/` are refused unless the lockbox administrator allowed
    /// the prefix for this namespace. A path where lockbox already has a
    /// mount this object did not create (made through the API, or kept by
    /// another SecretsMount's `Retain`) is `PathConflict` and left untouched
    /// until a lockbox administrator hands it over.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = RELATIVE_PATH_PATTERN), length(max = PATH_MAX_LEN))]
    pub path: Option<String>,

    /// Name of the PluginCatalogEntry (of type `secret`) that serves this
    /// mount.
    #[schemars(regex(pattern = OBJECT_NAME_PATTERN), length(max = OBJECT_NAME_MAX_LEN))]
    pub plugin: String,

    /// Run exactly this version of the plugin. When unset the mount follows
    /// the catalog entry's `spec.version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = VERSION_PATTERN), length(max = 128))]
    pub plugin_version: Option<String>,

    /// Human-readable description shown by `lockbox secrets list`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,

    /// Lease and caching settings of the mount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<MountConfigSpec>,

    /// Options passed to the plugin when the mount is enabled (plugin
    /// specific, string values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,

    /// What deleting this resource does in lockbox: `Retain` (the default
    /// when unset) or `Delete`; see [`DeletionPolicy`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// Lease and caching settings of a mount; unset fields use lockbox's
/// system defaults.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct MountConfigSpec {
    /// Default lease TTL, such as `1h` or `30m` (`0` or unset: system
    /// default).
    #[serde(rename = "defaultLeaseTTL", skip_serializing_if = "Option::is_none")]
    pub default_lease_ttl: Option<String>,

    /// Maximum lease TTL, such as `768h` (`0` or unset: system default).
    /// Must not be shorter than `defaultLeaseTTL`.
    #[serde(rename = "maxLeaseTTL", skip_serializing_if = "Option::is_none")]
    pub max_lease_ttl: Option<String>,

    /// Disable response caching in the engine.
    #[serde(rename = "forceNoCache", skip_serializing_if = "Option::is_none")]
    pub force_no_cache: Option<bool>,
}

/// What deleting the SecretsMount does in lockbox: `Retain` (the default
/// when unset) leaves the mount and its data in place; `Delete` disables the
/// mount and removes its data, if this SecretsMount created it (lockbox
/// records its UID as the mount's owner).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the mount and its data (the default).
    #[default]
    Retain,
    /// Disable the mount and delete its data (only a mount this object
    /// created).
    Delete,
}

/// Observed state of a mount, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretsMountStatus {
    /// The `metadata.generation` this status describes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`: the mount is enabled and tuned as the spec says.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Option<Vec<Condition>>,

    /// The effective mount path in lockbox (with a trailing `/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,

    /// The mount's accessor (as in `lockbox secrets list -detailed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accessor: Option<String>,

    /// Version of the plugin the mount runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_version: Option<String>,

    /// sha256 of the plugin executable the mount runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_sha256: Option<String>,

    /// Human-readable summary of the last reconcile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
