//! Reconciling a [`PluginCatalogEntry`] into lockbox's plugin catalog.
//!
//! Apply: validate → resolve env (Secrets in the operator's namespace
//! labelled `lockbox.dev/plugin-env: "true"`, never the operator's own) →
//! hash the binary in the plugin directory and compare with
//! `spec.binary.sha256`, or, for `spec.image`, pull the image inside the
//! operator's pod with the pull secrets' credentials into the
//! content-addressed cache (verified by digest; see `lockbox_plugin_host::images`) →
//! register (the core's typed admin API, `Admin::register_plugin`, with
//! `oci_image` pinned by digest so the core finds the binary in the cache)
//! → reload the mounts whose running process differs from the registration
//! (`Admin::running_plugins` tells what each process runs).
//!
//! An image that cannot be used (digest mismatch, missing manifest, refused
//! credentials, too large, no binary at the path, ...) is `Ready=False` with
//! the reason of [`lockbox_oci::OciError::reason`], a Warning event, and
//! nothing registered or executed.
//!
//! Status (kstatus, see [`super::conditions`]): `Ready=True` and
//! `Verified=True` once registered (Current); `InvalidSpec`, `DigestMismatch`
//! and image content problems add `Stalled=True` (Failed); what may heal
//! (a missing Secret or binary, a registry down) adds `Reconciling=True`
//! (InProgress) and is retried.
//!
//! Guarantees:
//! - A digest mismatch never registers anything: the previous registration
//!   (if any) stays, and mounts keep running what they run.
//! - Env values go only into the core's catalog; never into status, events
//!   or logs (messages name the Secret and key, not the value).
//! - Only Secrets marked for plugin use are read for env values: a Secret
//!   without the label `lockbox.dev/plugin-env: "true"`, the operator's own
//!   (`lockbox-unseal-keys`, `lockbox-root-token`, even labelled) or a
//!   ServiceAccount token is `InvalidSpec` and nothing is registered, so a
//!   catalog entry cannot make the operator hand its other Secrets to a
//!   plugin (RBAC cannot restrict reads by label; this check does).
//! - Idempotent: a resync of an unchanged entry re-registers the same entry
//!   and reloads nothing.
//!
//! Cleanup (the finalizer): the registration of the entry's version is
//! removed from the core. Mounts of the plugin keep their running process;
//! the mount controller (which watches catalog entries) reports them
//! `Ready=False`, reason `PluginMissing`.

use super::conditions::{condition, not_ready, ready, reason_of};
use super::context::{Context, Error, Stage, apply_status, proceed};
use super::crd::{
    BinarySource, CONDITION_READY, CONDITION_VERIFIED, ImageSource, PluginCatalogEntry,
    PluginCatalogEntryStatus, REASON_INVALID_SPEC, SecretsMount,
};
use super::validate::{check_env_secret, message, validate_catalog_entry};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use lockbox_core::catalog::{CatalogEntry, OciSource};
use lockbox_core::core::admin::{RegisterPlugin, ReloadTarget};
use lockbox_core::logical::RequestError;
use lockbox_oci::Credentials;
use lockbox_plugin_host::images::ImageRequest;
use std::ops::ControlFlow::{Break, Continue};
use std::sync::Arc;
use std::time::Duration;

/// Finalizer on catalog entries.
pub const FINALIZER: &str = "lockbox.dev/catalog-entry";
/// Kind label in metrics.
pub const KIND: &str = "PluginCatalogEntry";

/// Reason: the binary's sha256 differs from `spec.binary.sha256`.
pub const REASON_DIGEST_MISMATCH: &str = "DigestMismatch";
/// Reason: an env Secret or key is missing.
pub const REASON_SECRET_MISSING: &str = "SecretMissing";
/// Reason: the binary cannot be read.
pub const REASON_BINARY_UNREADABLE: &str = "BinaryUnreadable";
/// Reason: the core refused the registration.
pub const REASON_REGISTER_FAILED: &str = "RegisterFailed";
/// Reason: a `spec.image.pullSecrets` Secret does not exist.
pub const REASON_PULL_SECRET_MISSING: &str = "PullSecretMissing";
/// Reason: a pull secret is not usable Docker config JSON.
pub const REASON_INVALID_PULL_SECRET: &str = "InvalidPullSecret";
/// The Secret type of registry credentials.
const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
// Image failures use the reasons of `lockbox_oci::OciError::reason`:
// DigestMismatch, ManifestNotFound, Unauthorized, TooLarge, BinaryNotFound,
// UnsafePath, NotRegularFile, RegistryUnavailable, ...

/// How long to wait before checking again for something outside the
/// cluster's notice (a file in the plugin directory, a Secret).
const RECHECK: Duration = Duration::from_secs(30);

/// Outcome of one step that is reported in status rather than as an error.
struct NotReady {
    reason: &'static str,
    message: String,
    verified: Option<bool>,
    requeue: Option<Duration>,
}

impl PluginCatalogEntry {
    /// Registers the entry (see the module docs): validate, resolve env,
    /// verify the binary, register, reload what runs stale, report.
    pub async fn reconcile(&self, ctx: &Context) -> Result<Action, Error> {
        proceed!(self.validated(ctx).await);
        let env = proceed!(self.resolve_env(ctx).await);
        let (command, sha256, oci) = proceed!(self.verified_binary(ctx).await);
        let desired = CatalogEntry {
            name: self.name_any(),
            kind: self.spec.plugin_type.into(),
            version: self.spec.version.clone(),
            command,
            args: self.spec.args.clone().unwrap_or_default(),
            env,
            sha256,
            multiplexing: self.spec.multiplexing.unwrap_or(true),
            oci,
        };
        proceed!(self.register(ctx, &desired).await);
        let previous = self.status.clone().unwrap_or_default();
        let changed = previous.sha256.as_deref() != Some(desired.sha256.as_str())
            || previous.version.as_deref() != Some(desired.version.as_str())
            || previous.manifest_digest.as_deref()
                != desired.oci.as_ref().map(|o| o.manifest_digest.as_str());
        self.reload_stale(ctx, &desired, changed).await?;
        self.report_registered(ctx, &desired, changed).await
    }

    /// `InvalidSpec` reported when the spec does not validate.
    async fn validated(&self, ctx: &Context) -> Stage<()> {
        let Err(errs) = validate_catalog_entry(&self.spec) else {
            return Ok(Continue(()));
        };
        ctx.metrics.failed(KIND, REASON_INVALID_SPEC);
        self.not_ready(
            ctx,
            NotReady {
                reason: REASON_INVALID_SPEC,
                message: message(&errs),
                verified: None,
                requeue: None,
            },
        )
        .await?;
        Ok(Break(Action::await_change()))
    }

    /// Env values (`KEY=value`): literal or from a Secret in the operator's
    /// namespace that is marked for plugin use (never the operator's own).
    async fn resolve_env(&self, ctx: &Context) -> Stage<Vec<String>> {
        let mut env = Vec::new();
        let mut refused = Vec::new();
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        for (i, var) in self.spec.env.iter().flatten().enumerate() {
            let value = match (&var.value, &var.value_from) {
                (Some(v), _) => v.clone(),
                (None, Some(from)) => {
                    let r = &from.secret_key_ref;
                    let secret = secrets
                        .get_opt(&r.name)
                        .await
                        .map_err(Error::kube("GetSecret"))?;
                    if let Some(s) = &secret
                        && let Err(e) = check_env_secret(
                            i,
                            &ctx.namespace,
                            &r.name,
                            s.metadata.labels.as_ref(),
                            s.type_.as_deref(),
                        )
                    {
                        // Not read: its data never leaves this object.
                        refused.push(e);
                        continue;
                    }
                    let value = secret
                        .as_ref()
                        .and_then(|s| s.data.as_ref())
                        .and_then(|d| d.get(&r.key))
                        .and_then(|b| String::from_utf8(b.0.clone()).ok());
                    let Some(v) = value else {
                        let message = format!(
                            "env {}: Secret {}/{} has no UTF-8 key {:?}; create it in the \
                             operator's namespace",
                            var.name, ctx.namespace, r.name, r.key
                        );
                        let nr = NotReady {
                            reason: REASON_SECRET_MISSING,
                            message,
                            verified: None,
                            requeue: Some(RECHECK),
                        };
                        return self.report(ctx, nr).await.map(Break);
                    };
                    v
                }
                (None, None) => return Err(Error::MissingField("spec.env[].value")),
            };
            env.push(format!("{}={value}", var.name));
        }
        if refused.is_empty() {
            return Ok(Continue(env));
        }
        ctx.metrics.failed(KIND, REASON_INVALID_SPEC);
        self.not_ready(
            ctx,
            NotReady {
                reason: REASON_INVALID_SPEC,
                message: message(&refused),
                verified: None,
                requeue: None,
            },
        )
        .await?;
        // Labelling the Secret changes it, which re-checks this entry.
        Ok(Break(Action::await_change()))
    }

    /// The binary: pulled from an image into the cache, or read from the
    /// plugin directory and compared with spec.binary.sha256. Hands on the
    /// command, the sha256 and the image source.
    async fn verified_binary(&self, ctx: &Context) -> Stage<(String, String, Option<OciSource>)> {
        let found = if let Some(image) = &self.spec.image {
            self.fetch_image(ctx, image).await?
        } else {
            let Some(binary) = &self.spec.binary else {
                return Err(Error::MissingField("spec.binary"));
            };
            self.check_binary(ctx, binary)
                .await?
                .map(|sha| (binary.path.clone(), sha, None))
        };
        Ok(match found {
            Ok(found) => Continue(found),
            Err(action) => Break(action),
        })
    }

    /// Registers `desired` in the core (`RegisterFailed` when the core
    /// refuses it), then removes the version registered before, if it
    /// differs: mounts that follow the entry move to the new one on reload.
    async fn register(&self, ctx: &Context, desired: &CatalogEntry) -> Stage<()> {
        let input = RegisterPlugin {
            kind: desired.kind,
            name: desired.name.clone(),
            version: desired.version.clone(),
            command: Some(desired.command.clone()),
            sha256: Some(desired.sha256.clone()),
            // Pinned by digest, so the core finds the verified binary in the
            // cache without contacting the registry.
            oci_image: desired.oci.as_ref().map(|o| o.image.clone()),
            args: desired.args.clone(),
            env: desired.env.clone(),
            multiplexing: desired.multiplexing,
        };
        match ctx.admin().register_plugin(input).await {
            Ok(_) => {}
            Err(e @ RequestError::InvalidRequest(_)) => {
                let nr = NotReady {
                    reason: REASON_REGISTER_FAILED,
                    message: e.to_string(),
                    verified: Some(true),
                    requeue: Some(RECHECK),
                };
                return self.report(ctx, nr).await.map(Break);
            }
            Err(source) => {
                return Err(Error::Core {
                    op: "RegisterPlugin",
                    source,
                });
            }
        }
        if let Some(old) = self.status.as_ref().and_then(|s| s.version.as_deref())
            && old != desired.version
        {
            ctx.admin()
                .deregister_plugin(desired.kind, &desired.name, old)
                .await
                .map_err(Error::core("DeregisterPlugin"))?;
        }
        Ok(Continue(()))
    }

    /// Reloads the mounts of this plugin (unpinned or pinned to this
    /// version) when the registration `changed` or a process runs another
    /// entry than `desired`.
    async fn reload_stale(
        &self,
        ctx: &Context,
        desired: &CatalogEntry,
        changed: bool,
    ) -> Result<(), Error> {
        let stale_running = ctx
            .admin()
            .running_plugins(desired.kind, &desired.name)
            .await
            .map_err(Error::core("RunningPlugins"))?
            .iter()
            .any(|running| running != desired);
        if !changed && !stale_running {
            return Ok(());
        }
        let reloaded: Vec<String> = ctx
            .mounts()
            .await?
            .into_values()
            .filter(|m| {
                m.kind == desired.name
                    && (m.plugin_version.is_empty() || m.plugin_version == desired.version)
            })
            .map(|m| m.path)
            .collect();
        if reloaded.is_empty() {
            return Ok(());
        }
        ctx.admin()
            .reload(&ReloadTarget::Mounts(reloaded.clone()))
            .await
            .map_err(Error::core("ReloadMounts"))?;
        tracing::info!(plugin = %desired.name, mounts = ?reloaded, "mounts reloaded");
        self.announce_reload(ctx, &reloaded, &desired.sha256).await;
        Ok(())
    }

    /// `Ready=True`, `Verified=True` and what is registered; a `Registered`
    /// event when it `changed` or was not ready.
    async fn report_registered(
        &self,
        ctx: &Context,
        desired: &CatalogEntry,
        changed: bool,
    ) -> Result<Action, Error> {
        let generation = self.metadata.generation;
        let (ptype, name) = (desired.kind.as_str(), &desired.name);
        let conditions = self.status.as_ref().and_then(|s| s.conditions.as_deref());
        let msg = match &desired.oci {
            None => format!(
                "registered {ptype} {name} version {} (sha256 {})",
                desired.version, desired.sha256
            ),
            Some(oci) => format!(
                "registered {ptype} {name} version {} (sha256 {}) from {} (manifest {})",
                desired.version, desired.sha256, oci.image, oci.manifest_digest
            ),
        };
        let status = PluginCatalogEntryStatus {
            observed_generation: generation,
            conditions: Some({
                let mut c = ready(conditions, "Registered", msg.clone(), generation);
                c.push(condition(
                    conditions,
                    CONDITION_VERIFIED,
                    true,
                    "DigestMatched",
                    format!("sha256 {} matches", desired.sha256),
                    generation,
                ));
                c
            }),
            sha256: Some(desired.sha256.clone()),
            sha256_prefix: Some(PluginCatalogEntryStatus::sha256_prefix_of(&desired.sha256)),
            version: Some(desired.version.clone()),
            manifest_digest: desired.oci.as_ref().map(|o| o.manifest_digest.clone()),
            message: Some(msg.clone()),
        };
        let was_ready = reason_of(conditions, CONDITION_READY) == Some("Registered");
        self.patch_status(ctx, &status).await?;
        if changed || !was_ready {
            ctx.event(&self.object_ref(&()), EventType::Normal, "Registered", msg)
                .await;
        }
        Ok(Action::requeue(ctx.resync))
    }

    /// `spec.binary`: the file in the plugin directory must hash to
    /// `spec.binary.sha256`. `Ok(Err(action))` when reported not ready.
    async fn check_binary(
        &self,
        ctx: &Context,
        binary: &BinarySource,
    ) -> Result<Result<String, Action>, Error> {
        let path = match lockbox_core::catalog::resolve_command(&ctx.plugin_directory, &binary.path)
        {
            Ok(p) => p,
            Err(e) => {
                return self
                    .report(
                        ctx,
                        NotReady {
                            reason: REASON_BINARY_UNREADABLE,
                            message: format!("spec.binary.path {:?}: {e}", binary.path),
                            verified: Some(false),
                            requeue: Some(RECHECK),
                        },
                    )
                    .await
                    .map(Err);
            }
        };
        let actual = match lockbox_core::catalog::sha256_file_async(&path).await {
            Ok(hex) => hex,
            Err(e) => {
                return self
                    .report(
                        ctx,
                        NotReady {
                            reason: REASON_BINARY_UNREADABLE,
                            message: format!(
                                "cannot read {:?} in the plugin directory: {e}",
                                binary.path
                            ),
                            verified: Some(false),
                            requeue: Some(RECHECK),
                        },
                    )
                    .await
                    .map(Err);
            }
        };
        if actual != binary.sha256 {
            let msg = format!(
                "the file {:?} has sha256 {actual}, but spec.binary.sha256 is {}; not registered \
                 (mounts keep running the previously registered binary)",
                binary.path, binary.sha256
            );
            if !self.already_reported(CONDITION_VERIFIED, REASON_DIGEST_MISMATCH) {
                ctx.event(
                    &self.object_ref(&()),
                    EventType::Warning,
                    REASON_DIGEST_MISMATCH,
                    msg.clone(),
                )
                .await;
            }
            return self
                .report(
                    ctx,
                    NotReady {
                        reason: REASON_DIGEST_MISMATCH,
                        message: msg,
                        verified: Some(false),
                        requeue: Some(ctx.resync),
                    },
                )
                .await
                .map(Err);
        }

        Ok(Ok(actual))
    }

    /// `spec.image`: pull (or find in the cache) and verify the binary with
    /// the pull secrets' credentials. Returns the command (path inside the
    /// image), the binary's sha256 and the catalog's OCI record;
    /// `Ok(Err(action))` when reported not ready.
    async fn fetch_image(
        &self,
        ctx: &Context,
        image: &ImageSource,
    ) -> Result<Result<(String, String, Option<OciSource>), Action>, Error> {
        let generation = self.metadata.generation;
        let req = match ImageRequest::parse(
            &image.reference,
            image.path.as_deref(),
            image.sha256.as_deref(),
        ) {
            Ok(r) => r,
            Err(e) => {
                return self
                    .report(
                        ctx,
                        NotReady {
                            reason: e.reason(),
                            message: format!("spec.image: {e}"),
                            verified: None,
                            requeue: None,
                        },
                    )
                    .await
                    .map(Err);
            }
        };
        let creds = match self
            .pull_credentials(ctx, image, req.image.registry())
            .await?
        {
            Ok(c) => c,
            Err(nr) => return self.report(ctx, nr).await.map(Err),
        };
        let mut result = ctx.core.fetch_plugin_image(&req, Some(&creds)).await;
        // A tag-only reference while the registry is unreachable: the digest
        // recorded for this generation still pins the verified binary.
        if let Err(e) = &result
            && e.reason() == "RegistryUnavailable"
            && !req.image.is_pinned()
            && let Some(status) = &self.status
            && status.observed_generation == generation
            && let Some(md) = &status.manifest_digest
            && let Ok(pinned) =
                lockbox_oci::ImageRef::parse(&format!("{}@{md}", req.image.as_given()))
        {
            let pinned = ImageRequest {
                image: pinned,
                ..req.clone()
            };
            result = ctx.core.fetch_plugin_image(&pinned, Some(&creds)).await;
        }
        match result {
            Ok(fetched) => {
                let image_ref = if req.image.is_pinned() {
                    req.image.as_given().to_string()
                } else {
                    format!("{}@{}", req.image.as_given(), fetched.manifest_digest)
                };
                Ok(Ok((
                    req.path.clone(),
                    fetched.sha256,
                    Some(OciSource {
                        image: image_ref,
                        manifest_digest: fetched.manifest_digest,
                    }),
                )))
            }
            Err(e) => {
                let reason = e.reason();
                let msg = format!(
                    "image {}: {e}; not registered (mounts keep running the previously \
                     registered binary)",
                    image.reference
                );
                let content_problem = matches!(
                    reason,
                    "DigestMismatch"
                        | "TooLarge"
                        | "BinaryNotFound"
                        | "UnsafePath"
                        | "NotRegularFile"
                        | "UnsupportedImage"
                        | "InvalidManifest"
                );
                if !self.already_reported(CONDITION_READY, reason) {
                    ctx.event(
                        &self.object_ref(&()),
                        EventType::Warning,
                        reason,
                        msg.clone(),
                    )
                    .await;
                }
                self.report(
                    ctx,
                    NotReady {
                        reason,
                        message: msg,
                        verified: content_problem.then_some(false),
                        // Content problems need a new spec; access problems
                        // (registry down, credentials) may heal by themselves.
                        requeue: Some(if content_problem { ctx.resync } else { RECHECK }),
                    },
                )
                .await
                .map(Err)
            }
        }
    }

    /// Credentials for `registry` from `spec.image.pullSecrets`
    /// (`kubernetes.io/dockerconfigjson` Secrets in the operator's
    /// namespace, first match wins); anonymous when none lists it. Read for
    /// each pull and kept only in memory.
    async fn pull_credentials(
        &self,
        ctx: &Context,
        image: &ImageSource,
        registry: &str,
    ) -> Result<Result<Credentials, NotReady>, Error> {
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        let not_ready = |reason: &'static str, message: String| NotReady {
            reason,
            message,
            verified: None,
            requeue: Some(RECHECK),
        };
        for name in image.pull_secrets.iter().flatten() {
            let source = format!("pull secret {}/{name}", ctx.namespace);
            let Some(secret) = secrets
                .get_opt(name)
                .await
                .map_err(Error::kube("GetSecret"))?
            else {
                return Ok(Err(not_ready(
                    REASON_PULL_SECRET_MISSING,
                    format!(
                        "{source} does not exist; create it with `kubectl create secret \
                         docker-registry {name} -n {} ...`",
                        ctx.namespace
                    ),
                )));
            };
            if secret.type_.as_deref() != Some(DOCKER_CONFIG_JSON) {
                return Ok(Err(not_ready(
                    REASON_INVALID_PULL_SECRET,
                    format!(
                        "{source} has type {:?}, not {DOCKER_CONFIG_JSON}",
                        secret.type_.as_deref().unwrap_or("")
                    ),
                )));
            }
            let Some(raw) = secret
                .data
                .as_ref()
                .and_then(|d| d.get(".dockerconfigjson"))
            else {
                return Ok(Err(not_ready(
                    REASON_INVALID_PULL_SECRET,
                    format!("{source} has no .dockerconfigjson key"),
                )));
            };
            match lockbox_oci::auth::from_docker_config(&raw.0, registry, &source) {
                Ok(Some(c)) => return Ok(Ok(c)),
                Ok(None) => continue,
                Err(e) => {
                    return Ok(Err(not_ready(REASON_INVALID_PULL_SECRET, e.to_string())));
                }
            }
        }
        Ok(Ok(Credentials::Anonymous))
    }

    /// Removes the registration from the core (see the module docs).
    pub async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        let name = self.name_any();
        if let Some(version) = self.status.as_ref().and_then(|s| s.version.clone()) {
            ctx.admin()
                .deregister_plugin(self.spec.plugin_type.into(), &name, &version)
                .await
                .map_err(Error::core("DeregisterPlugin"))?;
            tracing::info!(plugin = %name, %version, "plugin deregistered");
        }
        Ok(Action::await_change())
    }

    /// Events `Reloaded` on the SecretsMounts whose path was reloaded.
    async fn announce_reload(&self, ctx: &Context, paths: &[String], sha256: &str) {
        let api: Api<SecretsMount> = Api::all(ctx.client.clone());
        let list = match api.list(&ListParams::default()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("cannot list SecretsMounts for Reloaded events: {e}");
                return;
            }
        };
        for m in list.items {
            let Some(path) = m.status.as_ref().and_then(|s| s.path.as_deref()) else {
                continue;
            };
            if paths.iter().any(|p| p == path) {
                ctx.event(
                    &m.object_ref(&()),
                    EventType::Normal,
                    "Reloaded",
                    format!(
                        "plugin {} changed: reloaded to version {} (sha256 {})",
                        self.name_any(),
                        self.spec.version,
                        sha256
                    ),
                )
                .await;
            }
        }
    }

    /// Writes a not-ready status and returns the action.
    /// Whether the status already reports `reason` on `condition` for this
    /// generation: its Warning event was published then, not again.
    fn already_reported(&self, condition: &str, reason: &str) -> bool {
        let status = self.status.as_ref();
        reason_of(status.and_then(|s| s.conditions.as_deref()), condition) == Some(reason)
            && status.and_then(|s| s.observed_generation) == self.metadata.generation
    }

    async fn report(&self, ctx: &Context, nr: NotReady) -> Result<Action, Error> {
        ctx.metrics.failed(KIND, nr.reason);
        let requeue = nr.requeue;
        self.not_ready(ctx, nr).await?;
        Ok(requeue
            .map(Action::requeue)
            .unwrap_or_else(Action::await_change))
    }

    async fn not_ready(&self, ctx: &Context, nr: NotReady) -> Result<(), Error> {
        tracing::info!(entry = %self.name_any(), reason = nr.reason, "not ready: {}", nr.message);
        let generation = self.metadata.generation;
        let previous = self.status.clone().unwrap_or_default();
        let conds = previous.conditions.as_deref();
        // Ready=False with Stalled or Reconciling (kstatus Failed or
        // InProgress, see `conditions`).
        let mut conditions = not_ready(conds, nr.reason, nr.message.clone(), generation);
        if let Some(v) = nr.verified {
            let reason = if v { "DigestMatched" } else { nr.reason };
            conditions.push(condition(
                conds,
                CONDITION_VERIFIED,
                v,
                reason,
                nr.message.clone(),
                generation,
            ));
        }
        // Keep what was registered before: it is still what mounts run.
        let status = PluginCatalogEntryStatus {
            observed_generation: generation,
            conditions: Some(conditions),
            message: Some(nr.message),
            ..previous
        };
        self.patch_status(ctx, &status).await
    }

    async fn patch_status(
        &self,
        ctx: &Context,
        status: &PluginCatalogEntryStatus,
    ) -> Result<(), Error> {
        let api: Api<PluginCatalogEntry> = Api::all(ctx.client.clone());
        apply_status(&api, &self.name_any(), status, "PatchCatalogEntryStatus").await
    }
}

/// Controller entry point: the finalizer around apply/cleanup.
pub async fn reconcile(obj: Arc<PluginCatalogEntry>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = std::time::Instant::now();
    let api: Api<PluginCatalogEntry> = Api::all(ctx.client.clone());
    let key = format!("{KIND}/{}", obj.name_any());
    let result = kube::runtime::finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            kube::runtime::finalizer::Event::Apply(o) => o.reconcile(&ctx).await,
            kube::runtime::finalizer::Event::Cleanup(o) => o.cleanup(&ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconciled(KIND, start.elapsed());
    if result.is_ok() {
        ctx.succeeded(&key);
    }
    result
}

/// Retry policy: transient failures back off per object (5 s doubling).
pub fn error_policy(obj: Arc<PluginCatalogEntry>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = format!("{KIND}/{}", obj.name_any());
    ctx.metrics.failed(KIND, err.reason());
    let delay = ctx.backoff(&key);
    tracing::warn!(entry = %obj.name_any(), reason = err.reason(), ?delay, "reconcile failed: {err}");
    Action::requeue(delay)
}
