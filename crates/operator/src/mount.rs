//! Reconciling a [`SecretsMount`] into lockbox's mount table.
//!
//! Apply: validate (with the namespace's allowed prefixes) → refuse a path
//! an older SecretsMount holds (`PathConflict`) → require a registered
//! catalog entry (`PluginMissing`) → enable (`POST sys/mounts/PATH`), tune
//! (`POST sys/mounts/PATH/tune`) or reload (`sys/plugins/reload/backend`) as
//! the difference with the core's mount table requires → status from
//! `GET sys/mounts`.
//!
//! # Ownership
//!
//! Every mount the operator enables records its owner in the core's mount
//! table: the SecretsMount's `metadata.uid` (`owner`, a field only a root
//! token can set). The operator tunes, reloads, moves or disables only a
//! mount whose owner is this object; a mount at the path with any other
//! owner, or none (made through the API), is `PathConflict` (condition and
//! a Warning event) and left untouched, so a SecretsMount cannot take over
//! a mount it did not create. A mount left by `deletionPolicy: Retain` keeps
//! the deleted object's UID: a new SecretsMount at that path (another
//! namespace or the same name again, a new UID either way) is a conflict
//! until a lockbox administrator hands the mount over with the root token
//! (`lockbox write sys/mounts/PATH/tune owner=NEW-UID`; the conflict
//! message prints the command). Mounts from before owners were recorded
//! have none; such a mount is adopted (its owner set) only by the object
//! whose status already records that mount's accessor at that path, which
//! only the operator writes.
//!
//! A changed `spec.path` of a mount this object owns moves the mount with
//! its data (`sys/remount`; the owner moves with it).
//!
//! Drift (a mount disabled or tuned through the HTTP API) is corrected on
//! the next reconcile: every reconcile compares against the live table, and
//! every object is reconciled at least once per resync period.
//!
//! Cleanup (the finalizer): `deletionPolicy: Retain` leaves the mount;
//! `Delete` disables it (and so removes its data) only if this object owns
//! it.

use super::conditions::{condition, reason_of};
use super::context::{Context, Error, apply_status};
use super::crd::{
    CONDITION_READY, DeletionPolicy, PluginCatalogEntry, REASON_INVALID_SPEC, SecretsMount,
    SecretsMountStatus,
};
use super::validate::{ValidMount, message, validate_mount};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use lockbox_core::core::Method;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Finalizer on SecretsMounts.
pub const FINALIZER: &str = "lockbox.dev/secrets-mount";
/// Kind label in metrics.
pub const KIND: &str = "SecretsMount";

/// Reason (Ready=True): the mount is enabled as the spec says.
pub const REASON_MOUNTED: &str = "Mounted";
/// Reason: an older SecretsMount holds the same path.
pub const REASON_PATH_CONFLICT: &str = "PathConflict";
/// Reason: the catalog entry is missing, deleted or not registered.
pub const REASON_PLUGIN_MISSING: &str = "PluginMissing";
/// Reason: the mount exists with another plugin type.
pub const REASON_PLUGIN_CHANGED: &str = "PluginChanged";
/// Reason: the core refused the mount or its plugin does not run.
pub const REASON_MOUNT_FAILED: &str = "MountFailed";

const RECHECK: Duration = Duration::from_secs(15);

/// Request and `sys/mounts` field holding a mount's owner.
const OWNER: &str = lockbox_core::core::mounts::OWNER_FIELD;

/// Whether `live` (a `sys/mounts` entry) belongs to the object with `uid`:
/// its recorded owner is `uid`.
fn owned_by(live: &Map<String, Value>, uid: &str) -> bool {
    !uid.is_empty() && str_of(live, OWNER) == uid
}

/// Whether `live`, at `path`, has no owner but is the mount `status`
/// records for this object (same path and accessor): a mount an operator
/// enabled for this object before owners were recorded.
fn created_before_owners(
    live: &Map<String, Value>,
    path: &str,
    status: Option<&SecretsMountStatus>,
) -> bool {
    let accessor = str_of(live, "accessor");
    str_of(live, OWNER).is_empty()
        && !accessor.is_empty()
        && status.is_some_and(|s| {
            s.path.as_deref() == Some(path) && s.accessor.as_deref() == Some(accessor)
        })
}

fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Whether the live mount `live` (from `sys/mounts`) differs from `want` in
/// what a tune can change (description, TTLs, caching, options).
fn needs_tune(live: &Map<String, Value>, want: &ValidMount) -> bool {
    let config = live.get("config").and_then(Value::as_object);
    let num = |k: &str| config.and_then(|c| c.get(k)).and_then(Value::as_u64);
    let live_options: std::collections::BTreeMap<String, String> = live
        .get("options")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    str_of(live, "description") != want.description
        || num("default_lease_ttl") != Some(want.default_lease_ttl)
        || num("max_lease_ttl") != Some(want.max_lease_ttl)
        || config
            .and_then(|c| c.get("force_no_cache"))
            .and_then(Value::as_bool)
            != Some(want.force_no_cache)
        || want
            .options
            .iter()
            .any(|(k, v)| live_options.get(k) != Some(v))
}

impl SecretsMount {
    fn namespace_or_err(&self) -> Result<String, Error> {
        self.namespace()
            .ok_or(Error::MissingField("metadata.namespace"))
    }

    /// Enables, tunes or reloads the mount (see the module docs).
    pub async fn reconcile(&self, ctx: &Context) -> Result<Action, Error> {
        let ns = self.namespace_or_err()?;
        let name = self.name_any();
        let want = match validate_mount(&ns, &name, &self.spec, ctx.prefixes_for(&ns)) {
            Ok(v) => v,
            Err(errs) => {
                ctx.metrics.failed(KIND, REASON_INVALID_SPEC);
                self.not_ready(ctx, None, REASON_INVALID_SPEC, message(&errs))
                    .await?;
                return Ok(Action::await_change());
            }
        };

        let uid = self
            .metadata
            .uid
            .clone()
            .ok_or(Error::MissingField("metadata.uid"))?;

        // Path conflicts: the oldest SecretsMount holding a path wins.
        if let Some(holder) = self.conflicting_holder(ctx, &want.path).await? {
            let msg = format!(
                "path {} is already held by SecretsMount {holder}; choose another spec.path",
                want.path
            );
            return self.conflict(ctx, &want.path, msg).await;
        }

        // The catalog entry must exist and have been registered.
        let entries: Api<PluginCatalogEntry> = Api::all(ctx.client.clone());
        let entry = entries
            .get_opt(&want.plugin)
            .await
            .map_err(Error::kube("GetCatalogEntry"))?;
        let registered = entry
            .as_ref()
            .filter(|e| e.metadata.deletion_timestamp.is_none())
            .and_then(|e| e.status.as_ref())
            .and_then(|s| s.version.clone());
        let Some(registered_version) = registered else {
            let msg = match &entry {
                None => format!("PluginCatalogEntry {} does not exist", want.plugin),
                Some(e) if e.metadata.deletion_timestamp.is_some() => format!(
                    "PluginCatalogEntry {} is being deleted; the mount keeps running its current \
                     process but will not be restarted or changed",
                    want.plugin
                ),
                Some(_) => format!(
                    "PluginCatalogEntry {} is not registered yet (see its Ready condition)",
                    want.plugin
                ),
            };
            return self
                .report(ctx, Some(&want.path), REASON_PLUGIN_MISSING, msg, RECHECK)
                .await;
        };
        if let Some(pin) = &want.plugin_version
            && *pin != registered_version
        {
            let msg = format!(
                "spec.pluginVersion {pin} is not registered: PluginCatalogEntry {} provides \
                 version {registered_version}",
                want.plugin
            );
            return self
                .report(ctx, Some(&want.path), REASON_PLUGIN_MISSING, msg, RECHECK)
                .await;
        }

        let mount_api = format!("sys/mounts/{}", want.path.trim_end_matches('/'));
        let pin = want.plugin_version.clone().unwrap_or_default();
        let mut mounts = ctx.mounts().await?;
        let reference = self.object_ref(&());

        // A mount an operator enabled for this object before owners were
        // recorded: record this object as its owner first (see module docs).
        let old_path = self.status.as_ref().and_then(|s| s.path.clone());
        if let Some(old) = &old_path
            && mounts
                .get(old)
                .and_then(Value::as_object)
                .is_some_and(|m| created_before_owners(m, old, self.status.as_ref()))
        {
            let tune = format!("sys/mounts/{}/tune", old.trim_end_matches('/'));
            if let Err(e) = ctx
                .call("AdoptMount", Method::Write, &tune, owner_body(&uid))
                .await
            {
                return self.core_refused(ctx, &want.path, e).await;
            }
            tracing::info!(mount = %old, "recorded the SecretsMount as the owner of its mount");
            ctx.event(
                &reference,
                EventType::Normal,
                "Adopted",
                format!(
                    "recorded this SecretsMount as the owner of {old}, which the operator \
                     enabled for it before owners were recorded"
                ),
            )
            .await;
            mounts = ctx.mounts().await?;
        }

        // spec.path changed on a mount this object owns: move it (and its
        // data) with sys/remount rather than leaving an orphan behind.
        let conds = self.status.as_ref().and_then(|s| s.conditions.as_deref());
        if let Some(old) = old_path
            && old != want.path
            && reason_of(conds, CONDITION_READY) == Some(REASON_MOUNTED)
            && !mounts.contains_key(&want.path)
            && mounts
                .get(&old)
                .and_then(Value::as_object)
                .is_some_and(|m| owned_by(m, &uid) && str_of(m, "type") == want.plugin)
        {
            let body = json!({ "from": old, "to": want.path });
            if let Err(e) = ctx
                .call("Remount", Method::Write, "sys/remount", body)
                .await
            {
                return self.core_refused(ctx, &want.path, e).await;
            }
            tracing::info!(from = %old, to = %want.path, "mount moved");
            ctx.event(
                &reference,
                EventType::Normal,
                "Remounted",
                format!("moved {old} to {} with its data", want.path),
            )
            .await;
            mounts = ctx.mounts().await?;
        }
        match mounts.get(&want.path).and_then(Value::as_object) {
            None => {
                let body = json!({
                    "type": want.plugin,
                    "description": want.description,
                    "config": {
                        "default_lease_ttl": want.default_lease_ttl,
                        "max_lease_ttl": want.max_lease_ttl,
                        "force_no_cache": want.force_no_cache,
                    },
                    "options": want.options,
                    "plugin_version": pin,
                    OWNER: uid,
                });
                if let Err(e) = ctx
                    .call("EnableMount", Method::Write, &mount_api, body)
                    .await
                {
                    return self.core_refused(ctx, &want.path, e).await;
                }
                let drift = self
                    .status
                    .as_ref()
                    .and_then(|s| s.accessor.as_ref())
                    .is_some();
                let note = if drift {
                    format!("mount {} was missing in lockbox; enabled again", want.path)
                } else {
                    format!("enabled {} at {}", want.plugin, want.path)
                };
                tracing::info!(mount = %want.path, "{note}");
                ctx.event(&reference, EventType::Normal, "Mounted", note)
                    .await;
            }
            Some(live) => {
                if !owned_by(live, &uid) {
                    let msg = self
                        .foreign_mount_message(ctx, &want.path, live, &uid)
                        .await?;
                    return self.conflict(ctx, &want.path, msg).await;
                }
                if str_of(live, "type") != want.plugin {
                    let msg = format!(
                        "lockbox already has a mount at {} running plugin {:?}; a mount's plugin \
                         cannot change: delete the mount (or choose another path)",
                        want.path,
                        str_of(live, "type")
                    );
                    return self
                        .report(ctx, Some(&want.path), REASON_PLUGIN_CHANGED, msg, RECHECK)
                        .await;
                }
                if needs_tune(live, &want) {
                    let body = json!({
                        "description": want.description,
                        "default_lease_ttl": want.default_lease_ttl,
                        "max_lease_ttl": want.max_lease_ttl,
                        "force_no_cache": want.force_no_cache,
                        "options": want.options,
                    });
                    if let Err(e) = ctx
                        .call(
                            "TuneMount",
                            Method::Write,
                            &format!("{mount_api}/tune"),
                            body,
                        )
                        .await
                    {
                        return self.core_refused(ctx, &want.path, e).await;
                    }
                    ctx.event(
                        &reference,
                        EventType::Normal,
                        "Tuned",
                        format!("tuned {} to match the spec", want.path),
                    )
                    .await;
                }
                if str_of(live, "plugin_version") != pin {
                    let body = json!({ "plugin_version": pin });
                    if let Err(e) = ctx
                        .call(
                            "TuneMount",
                            Method::Write,
                            &format!("{mount_api}/tune"),
                            body,
                        )
                        .await
                    {
                        return self.core_refused(ctx, &want.path, e).await;
                    }
                    if let Err(e) = ctx
                        .call(
                            "ReloadMount",
                            Method::Write,
                            "sys/plugins/reload/backend",
                            json!({ "mounts": [want.path] }),
                        )
                        .await
                    {
                        return self.core_refused(ctx, &want.path, e).await;
                    }
                    ctx.event(
                        &reference,
                        EventType::Normal,
                        "Reloaded",
                        format!("plugin version pin changed to {pin:?}; reloaded"),
                    )
                    .await;
                }
            }
        }

        // Status from the live table.
        let mounts = ctx.mounts().await?;
        let Some(live) = mounts.get(&want.path).and_then(Value::as_object) else {
            return self
                .report(
                    ctx,
                    Some(&want.path),
                    REASON_MOUNT_FAILED,
                    format!("{} vanished right after it was enabled", want.path),
                    RECHECK,
                )
                .await;
        };
        let running_sha = str_of(live, "running_sha256").to_string();
        if running_sha.is_empty() {
            return self
                .report(
                    ctx,
                    Some(&want.path),
                    REASON_MOUNT_FAILED,
                    format!("the plugin of {} is not running", want.path),
                    RECHECK,
                )
                .await;
        }
        let generation = self.metadata.generation;
        let msg = format!("mounted at {}", want.path);
        let status = SecretsMountStatus {
            observed_generation: generation,
            conditions: Some(vec![condition(
                conds,
                CONDITION_READY,
                true,
                REASON_MOUNTED,
                msg.clone(),
                generation,
            )]),
            path: Some(want.path.clone()),
            accessor: Some(str_of(live, "accessor").to_string()),
            running_version: Some(str_of(live, "running_plugin_version").to_string()),
            running_sha256: Some(running_sha),
            message: Some(msg),
        };
        if self.status.as_ref() != Some(&status) {
            self.patch_status(ctx, &status).await?;
        }
        Ok(Action::requeue(ctx.resync))
    }

    /// Disables the mount when `deletionPolicy: Delete` and this object owns
    /// it (see module docs).
    pub async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        let policy = self.spec.deletion_policy.unwrap_or_default();
        let path = self.status.as_ref().and_then(|s| s.path.clone());
        let mut owned = false;
        if let (DeletionPolicy::Delete, Some(path), Some(uid)) =
            (policy, &path, self.metadata.uid.as_deref())
        {
            let mounts = ctx.mounts().await?;
            if let Some(live) = mounts.get(path).and_then(Value::as_object) {
                owned =
                    owned_by(live, uid) || created_before_owners(live, path, self.status.as_ref());
                if !owned {
                    let msg = format!(
                        "deletionPolicy Delete: the mount at {path} is not this SecretsMount's \
                         (its owner is {:?}); left untouched",
                        str_of(live, OWNER)
                    );
                    tracing::info!(mount = %path, "{msg}");
                    ctx.event(&self.object_ref(&()), EventType::Normal, "MountKept", msg)
                        .await;
                }
            }
        }
        match (policy, path) {
            (DeletionPolicy::Delete, Some(path)) if owned => {
                // Disabling a missing mount succeeds, so this is idempotent.
                ctx.call(
                    "DisableMount",
                    Method::Delete,
                    &format!("sys/mounts/{}", path.trim_end_matches('/')),
                    Value::Null,
                )
                .await?;
                tracing::info!(mount = %path, "mount disabled (deletionPolicy Delete)");
                ctx.event(
                    &self.object_ref(&()),
                    EventType::Normal,
                    "Unmounted",
                    format!("disabled {path} and removed its data (deletionPolicy Delete)"),
                )
                .await;
            }
            (_, path) => {
                tracing::info!(mount = ?path, "SecretsMount deleted; lockbox mount retained");
            }
        }
        Ok(Action::await_change())
    }

    /// The `namespace/name` of an older SecretsMount with the same path.
    async fn conflicting_holder(&self, ctx: &Context, path: &str) -> Result<Option<String>, Error> {
        let all = ctx.all_mounts().await?;
        let my_key = (
            self.metadata.creation_timestamp.clone(),
            self.namespace().unwrap_or_default(),
            self.name_any(),
        );
        let mut holder: Option<(_, String, String)> = None;
        for other in all {
            if other.metadata.uid == self.metadata.uid {
                continue;
            }
            let Some(ons) = other.namespace() else {
                continue;
            };
            let oname = other.name_any();
            let Ok(v) = validate_mount(&ons, &oname, &other.spec, ctx.prefixes_for(&ons)) else {
                continue;
            };
            if v.path != path {
                continue;
            }
            let key = (other.metadata.creation_timestamp.clone(), ons, oname);
            if key < my_key && holder.as_ref().is_none_or(|h| key < *h) {
                holder = Some(key);
            }
        }
        Ok(holder.map(|(_, ns, name)| format!("{ns}/{name}")))
    }

    /// The `PathConflict` message for a mount at `path` that is not this
    /// object's (`uid`): whose it is, and how an administrator hands it
    /// over.
    async fn foreign_mount_message(
        &self,
        ctx: &Context,
        path: &str,
        live: &Map<String, Value>,
        uid: &str,
    ) -> Result<String, Error> {
        let owner = str_of(live, OWNER);
        let whose = if owner.is_empty() {
            "no SecretsMount owns (it was enabled through the API, or before owners were \
             recorded)"
                .to_string()
        } else {
            let all = ctx.all_mounts().await?;
            match all
                .iter()
                .find(|m| m.metadata.uid.as_deref() == Some(owner))
            {
                Some(m) => format!(
                    "SecretsMount {}/{} owns",
                    m.namespace().unwrap_or_default(),
                    m.name_any()
                ),
                None => format!(
                    "a deleted SecretsMount (uid {owner}) owns; it was kept by deletionPolicy \
                     Retain"
                ),
            }
        };
        Ok(format!(
            "lockbox already has a mount at {path} that {whose}; it is left untouched. Choose \
             another spec.path, or ask a lockbox administrator to hand the mount over with the \
             root token: lockbox write sys/mounts/{}/tune owner={uid}",
            path.trim_end_matches('/')
        ))
    }

    /// Reports `PathConflict`: the condition, and a Warning event once per
    /// generation.
    async fn conflict(&self, ctx: &Context, path: &str, msg: String) -> Result<Action, Error> {
        let status = self.status.as_ref();
        let reported = reason_of(
            status.and_then(|s| s.conditions.as_deref()),
            CONDITION_READY,
        ) == Some(REASON_PATH_CONFLICT)
            && status.and_then(|s| s.observed_generation) == self.metadata.generation;
        if !reported {
            ctx.event(
                &self.object_ref(&()),
                EventType::Warning,
                REASON_PATH_CONFLICT,
                msg.clone(),
            )
            .await;
        }
        self.report(ctx, Some(path), REASON_PATH_CONFLICT, msg, RECHECK)
            .await
    }

    /// Maps a core refusal to a status reason; other failures are errors.
    async fn core_refused(&self, ctx: &Context, path: &str, e: Error) -> Result<Action, Error> {
        match &e {
            Error::Core {
                source: lockbox_core::logical::RequestError::InvalidRequest(msg),
                ..
            } => {
                let reason = if msg.contains("plugin not found in the catalog") {
                    REASON_PLUGIN_MISSING
                } else {
                    REASON_MOUNT_FAILED
                };
                let msg = msg.clone();
                self.report(ctx, Some(path), reason, msg, RECHECK).await
            }
            _ => Err(e),
        }
    }

    async fn report(
        &self,
        ctx: &Context,
        path: Option<&str>,
        reason: &'static str,
        msg: String,
        requeue: Duration,
    ) -> Result<Action, Error> {
        ctx.metrics.failed(KIND, reason);
        self.not_ready(ctx, path, reason, msg).await?;
        Ok(Action::requeue(requeue))
    }

    async fn not_ready(
        &self,
        ctx: &Context,
        path: Option<&str>,
        reason: &str,
        msg: String,
    ) -> Result<(), Error> {
        tracing::info!(
            mount = %format!("{}/{}", self.namespace().unwrap_or_default(), self.name_any()),
            reason, "not ready: {msg}"
        );
        let generation = self.metadata.generation;
        let previous = self.status.clone().unwrap_or_default();
        let status = SecretsMountStatus {
            observed_generation: generation,
            conditions: Some(vec![condition(
                previous.conditions.as_deref(),
                CONDITION_READY,
                false,
                reason,
                msg.clone(),
                generation,
            )]),
            path: path.map(str::to_string).or(previous.path.clone()),
            message: Some(msg),
            ..previous
        };
        if self.status.as_ref() != Some(&status) {
            self.patch_status(ctx, &status).await?;
        }
        Ok(())
    }

    async fn patch_status(&self, ctx: &Context, status: &SecretsMountStatus) -> Result<(), Error> {
        let ns = self.namespace_or_err()?;
        let api: Api<SecretsMount> = Api::namespaced(ctx.client.clone(), &ns);
        apply_status(&api, &self.name_any(), status, "PatchSecretsMountStatus").await
    }
}

/// A tune body setting the mount's owner to `uid`.
fn owner_body(uid: &str) -> Value {
    let mut m = Map::new();
    m.insert(OWNER.into(), Value::String(uid.into()));
    Value::Object(m)
}

/// Controller entry point: the finalizer around apply/cleanup.
pub async fn reconcile(obj: Arc<SecretsMount>, ctx: Arc<Context>) -> Result<Action, Error> {
    let start = std::time::Instant::now();
    let ns = obj
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let key = format!("{KIND}/{ns}/{}", obj.name_any());
    let api: Api<SecretsMount> = Api::namespaced(ctx.client.clone(), &ns);
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
pub fn error_policy(obj: Arc<SecretsMount>, err: &Error, ctx: Arc<Context>) -> Action {
    let key = format!(
        "{KIND}/{}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    );
    ctx.metrics.failed(KIND, err.reason());
    let delay = ctx.backoff(&key);
    tracing::warn!(mount = %key, reason = err.reason(), ?delay, "reconcile failed: {err}");
    Action::requeue(delay)
}
