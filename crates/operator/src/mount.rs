//! Reconciling a [`SecretsMount`] into lockbox's mount table.
//!
//! Apply: validate (with the namespace's allowed prefixes) → refuse a path
//! an older SecretsMount holds (`PathConflict`) → require a registered
//! catalog entry (`PluginMissing`) → adopt a mount from before owners →
//! follow a changed path (remount) → enable, tune or pin the version and
//! reload, as the difference with the core's mount table requires → status
//! from the live table. Each step is a method (a stage) of its own; the core
//! is driven through its typed admin API (`Context::admin`: enable, tune,
//! remount, reload, disable) and read as typed `MountInfo`s.
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
//! Status (kstatus, see [`super::conditions`]): `Ready=True` once mounted
//! (Current); `InvalidSpec`, `PathConflict` and `PluginChanged` add
//! `Stalled=True` (Failed); waiting for the catalog entry (`PluginMissing`)
//! or a plugin that does not run yet (`MountFailed`) add `Reconciling=True`
//! (InProgress) and are retried.
//!
//! Drift (a mount disabled or tuned through the HTTP API) is corrected on
//! the next reconcile: every reconcile compares against the live table, and
//! every object is reconciled at least once per resync period.
//!
//! Cleanup (the finalizer): `deletionPolicy: Retain` leaves the mount;
//! `Delete` disables it (and so removes its data) only if this object owns
//! it.

use super::conditions::{not_ready, ready, reason_of};
use super::context::{Context, Error, Stage, proceed};
use super::crd::{
    CONDITION_READY, DeletionPolicy, PluginCatalogEntry, REASON_INVALID_SPEC, SecretsMount,
    SecretsMountStatus,
};
pub(crate) use super::mount_flavor::{Flavor, MountReconcile};
use super::validate::{ValidMount, message};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use lockbox_core::core::admin::{EnableMount, MountInfo, ReloadTarget, TuneMount};
use lockbox_core::core::mounts::MountConfig;
use lockbox_core::logical::RequestError;
use std::collections::BTreeMap;
use std::ops::ControlFlow::{Break, Continue};
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

/// Whether `live` belongs to the object with `uid`: its recorded owner is
/// `uid`.
fn owned_by(live: &MountInfo, uid: &str) -> bool {
    !uid.is_empty() && live.owner == uid
}

/// Whether `live`, at `path`, has no owner but is the mount `status`
/// records for this object (same path and accessor): a mount an operator
/// enabled for this object before owners were recorded.
fn created_before_owners(
    live: &MountInfo,
    path: &str,
    status: Option<&SecretsMountStatus>,
) -> bool {
    live.owner.is_empty()
        && !live.accessor.is_empty()
        && status.is_some_and(|s| {
            s.path.as_deref() == Some(path) && s.accessor.as_deref() == Some(live.accessor.as_str())
        })
}

/// Whether the live mount `live` differs from `want` in what a tune can
/// change (description, TTLs, caching, options).
fn needs_tune(live: &MountInfo, want: &ValidMount) -> bool {
    live.description != want.description
        || live.config.default_lease_ttl != want.default_lease_ttl
        || live.config.max_lease_ttl != want.max_lease_ttl
        || live.config.force_no_cache != want.force_no_cache
        || want
            .options
            .iter()
            .any(|(k, v)| live.options.get(k) != Some(v))
}

/// The lease settings `want` asks for.
fn config_of(want: &ValidMount) -> MountConfig {
    MountConfig {
        default_lease_ttl: want.default_lease_ttl,
        max_lease_ttl: want.max_lease_ttl,
        force_no_cache: want.force_no_cache,
    }
}

/// The live mount table, keyed by path.
type Mounts = BTreeMap<String, MountInfo>;

impl SecretsMount {
    /// Enables, tunes or reloads the mount (see the module docs).
    pub async fn reconcile(&self, ctx: &Context) -> Result<Action, Error> {
        MountReconcile::new(self, Flavor::Secrets)
            .reconcile(ctx)
            .await
    }

    /// Disables the mount when `deletionPolicy: Delete` and this object owns
    /// it (see module docs).
    pub async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        MountReconcile::new(self, Flavor::Secrets)
            .cleanup(ctx)
            .await
    }
}

impl MountReconcile<'_> {
    /// Enables, tunes or reloads the mount (see the module docs): validate,
    /// check the path is free and the plugin registered, adopt a mount from
    /// before owners, follow a changed path, enable or converge, report.
    pub(crate) async fn reconcile(&self, ctx: &Context) -> Result<Action, Error> {
        let want = proceed!(self.validated(ctx).await);
        let uid = self
            .metadata
            .uid
            .clone()
            .ok_or(Error::MissingField("metadata.uid"))?;
        proceed!(self.check_path_free(ctx, &want).await);
        proceed!(self.check_plugin_registered(ctx, &want).await);
        let mut mounts = self.mounts(ctx).await?;
        proceed!(self.adopt(ctx, &want, &uid, &mut mounts).await);
        proceed!(self.follow_path_change(ctx, &want, &uid, &mut mounts).await);
        match mounts.get(&want.path) {
            None => proceed!(self.enable(ctx, &want, &uid).await),
            Some(live) => proceed!(self.converge(ctx, &want, &uid, live).await),
        }
        self.report_mounted(ctx, &want).await
    }

    /// The validated spec; `InvalidSpec` reported otherwise.
    async fn validated(&self, ctx: &Context) -> Stage<ValidMount> {
        let ns = self.namespace_or_err()?;
        let name = self.name_any();
        match self.flavor.validate(ctx, &ns, &name, &self.spec) {
            Ok(v) => Ok(Continue(v)),
            Err(errs) => {
                ctx.metrics.failed(self.flavor.kind(), REASON_INVALID_SPEC);
                self.not_ready(ctx, None, REASON_INVALID_SPEC, message(&errs))
                    .await?;
                Ok(Break(Action::await_change()))
            }
        }
    }

    /// Path conflicts: the oldest SecretsMount holding a path wins.
    async fn check_path_free(&self, ctx: &Context, want: &ValidMount) -> Stage<()> {
        let Some(holder) = self.conflicting_holder(ctx, &want.path).await? else {
            return Ok(Continue(()));
        };
        let msg = format!(
            "path {} is already held by {} {holder}; choose another spec.path",
            want.path,
            self.flavor.kind()
        );
        self.conflict(ctx, &want.path, msg).await.map(Break)
    }

    /// The catalog entry must exist and have been registered (at the pinned
    /// version, when there is a pin); `PluginMissing` otherwise.
    async fn check_plugin_registered(&self, ctx: &Context, want: &ValidMount) -> Stage<()> {
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
        let msg = match (&registered, &entry) {
            (Some(version), _) => match &want.plugin_version {
                Some(pin) if pin != version => format!(
                    "spec.pluginVersion {pin} is not registered: PluginCatalogEntry {} provides \
                     version {version}",
                    want.plugin
                ),
                _ => return Ok(Continue(())),
            },
            (None, None) => format!("PluginCatalogEntry {} does not exist", want.plugin),
            (None, Some(e)) if e.metadata.deletion_timestamp.is_some() => format!(
                "PluginCatalogEntry {} is being deleted; the mount keeps running its current \
                 process but will not be restarted or changed",
                want.plugin
            ),
            (None, Some(_)) => format!(
                "PluginCatalogEntry {} is not registered yet (see its Ready condition)",
                want.plugin
            ),
        };
        self.report(ctx, Some(&want.path), REASON_PLUGIN_MISSING, msg, RECHECK)
            .await
            .map(Break)
    }

    /// A mount an operator enabled for this object before owners were
    /// recorded: record this object as its owner first (see module docs).
    async fn adopt(
        &self,
        ctx: &Context,
        want: &ValidMount,
        uid: &str,
        mounts: &mut Mounts,
    ) -> Stage<()> {
        let Some(old) = self.status.as_ref().and_then(|s| s.path.as_deref()) else {
            return Ok(Continue(()));
        };
        if !mounts
            .get(old)
            .is_some_and(|m| created_before_owners(m, old, self.status.as_ref()))
        {
            return Ok(Continue(()));
        }
        let tune = TuneMount {
            owner: Some(uid.to_string()),
            ..Default::default()
        };
        if let Err(e) = ctx.admin().tune_mount(self.flavor.table(), old, tune).await {
            return self.core_refused(ctx, &want.path, "AdoptMount", e).await;
        }
        tracing::info!(mount = %old, "recorded the {} as the owner of its mount", self.flavor.kind());
        ctx.event(
            &self.reference(),
            EventType::Normal,
            "Adopted",
            format!(
                "recorded this {} as the owner of {old}, which the operator \
                 enabled for it before owners were recorded",
                self.flavor.kind()
            ),
        )
        .await;
        *mounts = self.mounts(ctx).await?;
        Ok(Continue(()))
    }

    /// spec.path changed on a mount this object owns: move it (and its
    /// data) with `sys/remount` rather than leaving an orphan behind.
    async fn follow_path_change(
        &self,
        ctx: &Context,
        want: &ValidMount,
        uid: &str,
        mounts: &mut Mounts,
    ) -> Stage<()> {
        let conds = self.status.as_ref().and_then(|s| s.conditions.as_deref());
        let Some(old) = self.status.as_ref().and_then(|s| s.path.as_deref()) else {
            return Ok(Continue(()));
        };
        let movable = old != want.path
            && reason_of(conds, CONDITION_READY) == Some(REASON_MOUNTED)
            && !mounts.contains_key(&want.path)
            && mounts
                .get(old)
                .is_some_and(|m| owned_by(m, uid) && m.kind == want.plugin);
        if !movable {
            return Ok(Continue(()));
        }
        if let Err(e) = ctx
            .admin()
            .remount(&self.flavor.routing(old), &self.flavor.routing(&want.path))
            .await
        {
            return self.core_refused(ctx, &want.path, "Remount", e).await;
        }
        tracing::info!(from = %old, to = %want.path, "mount moved");
        ctx.event(
            &self.reference(),
            EventType::Normal,
            "Remounted",
            format!("moved {old} to {} with its data", want.path),
        )
        .await;
        *mounts = self.mounts(ctx).await?;
        Ok(Continue(()))
    }

    /// No mount at the path: enable one, owned by this object.
    async fn enable(&self, ctx: &Context, want: &ValidMount, uid: &str) -> Stage<()> {
        let input = EnableMount {
            kind: want.plugin.clone(),
            description: want.description.clone(),
            config: config_of(want),
            options: want.options.clone(),
            plugin_version: want.plugin_version.clone().unwrap_or_default(),
            owner: Some(uid.to_string()),
            ..Default::default()
        };
        if let Err(e) = ctx
            .admin()
            .enable_mount(self.flavor.table(), &want.path, input)
            .await
        {
            return self.core_refused(ctx, &want.path, "EnableMount", e).await;
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
        ctx.event(&self.reference(), EventType::Normal, "Mounted", note)
            .await;
        Ok(Continue(()))
    }

    /// A mount at the path: it must be this object's and run its plugin;
    /// then tune what differs and move to a changed version pin.
    async fn converge(
        &self,
        ctx: &Context,
        want: &ValidMount,
        uid: &str,
        live: &MountInfo,
    ) -> Stage<()> {
        if !owned_by(live, uid) {
            let msg = self
                .foreign_mount_message(ctx, &want.path, live, uid)
                .await?;
            return self.conflict(ctx, &want.path, msg).await.map(Break);
        }
        if live.kind != want.plugin {
            let msg = format!(
                "lockbox already has a mount at {} running plugin {:?}; a mount's plugin \
                 cannot change: delete the mount (or choose another path)",
                want.path, live.kind
            );
            return self
                .report(ctx, Some(&want.path), REASON_PLUGIN_CHANGED, msg, RECHECK)
                .await
                .map(Break);
        }
        if needs_tune(live, want)
            && let Break(action) = self.tune(ctx, want).await?
        {
            return Ok(Break(action));
        }
        let pin = want.plugin_version.clone().unwrap_or_default();
        if live.plugin_version != pin {
            return self.pin_version(ctx, want, pin).await;
        }
        Ok(Continue(()))
    }

    /// Tunes description, TTLs, caching and options to the spec.
    async fn tune(&self, ctx: &Context, want: &ValidMount) -> Stage<()> {
        let config = config_of(want);
        let input = TuneMount {
            description: Some(want.description.clone()),
            default_lease_ttl: Some(config.default_lease_ttl),
            max_lease_ttl: Some(config.max_lease_ttl),
            force_no_cache: Some(config.force_no_cache),
            options: Some(want.options.clone()),
            ..Default::default()
        };
        if let Err(e) = ctx
            .admin()
            .tune_mount(self.flavor.table(), &want.path, input)
            .await
        {
            return self.core_refused(ctx, &want.path, "TuneMount", e).await;
        }
        ctx.event(
            &self.reference(),
            EventType::Normal,
            "Tuned",
            format!("tuned {} to match the spec", want.path),
        )
        .await;
        Ok(Continue(()))
    }

    /// Pins the mount to `pin` (empty: unpinned) and reloads it onto that
    /// version.
    async fn pin_version(&self, ctx: &Context, want: &ValidMount, pin: String) -> Stage<()> {
        let input = TuneMount {
            plugin_version: Some(pin.clone()),
            ..Default::default()
        };
        if let Err(e) = ctx
            .admin()
            .tune_mount(self.flavor.table(), &want.path, input)
            .await
        {
            return self.core_refused(ctx, &want.path, "TuneMount", e).await;
        }
        let target = ReloadTarget::Mounts(vec![self.flavor.routing(&want.path)]);
        if let Err(e) = ctx.admin().reload(&target).await {
            return self.core_refused(ctx, &want.path, "ReloadMount", e).await;
        }
        ctx.event(
            &self.reference(),
            EventType::Normal,
            "Reloaded",
            format!("plugin version pin changed to {pin:?}; reloaded"),
        )
        .await;
        Ok(Continue(()))
    }

    /// Status from the live table: `Mounted` when the plugin runs.
    async fn report_mounted(&self, ctx: &Context, want: &ValidMount) -> Result<Action, Error> {
        let mounts = self.mounts(ctx).await?;
        let Some(live) = mounts.get(&want.path) else {
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
        if live.running_sha256.is_empty() {
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
        let conds = self.status.as_ref().and_then(|s| s.conditions.as_deref());
        let generation = self.metadata.generation;
        let msg = format!("mounted at {}", want.path);
        let status = SecretsMountStatus {
            observed_generation: generation,
            conditions: Some(ready(conds, REASON_MOUNTED, msg.clone(), generation)),
            path: Some(want.path.clone()),
            accessor: Some(live.accessor.clone()),
            running_version: Some(live.running_plugin_version.clone()),
            running_sha256: Some(live.running_sha256.clone()),
            message: Some(msg),
        };
        if self.status.as_ref() != Some(&status) {
            self.patch_status(ctx, &status).await?;
        }
        Ok(Action::requeue(ctx.resync))
    }

    /// Disables the mount when `deletionPolicy: Delete` and this object owns
    /// it (see module docs).
    pub(crate) async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        let policy = self.spec.deletion_policy.unwrap_or_default();
        let path = self.status.as_ref().and_then(|s| s.path.clone());
        let mut owned = false;
        if let (DeletionPolicy::Delete, Some(path), Some(uid)) =
            (policy, &path, self.metadata.uid.as_deref())
        {
            let mounts = self.mounts(ctx).await?;
            if let Some(live) = mounts.get(path) {
                owned =
                    owned_by(live, uid) || created_before_owners(live, path, self.status.as_ref());
                if !owned {
                    let msg = format!(
                        "deletionPolicy Delete: the mount at {path} is not this {}'s \
                         (its owner is {:?}); left untouched",
                        self.flavor.kind(),
                        live.owner
                    );
                    tracing::info!(mount = %path, "{msg}");
                    ctx.event(&self.reference(), EventType::Normal, "MountKept", msg)
                        .await;
                }
            }
        }
        match (policy, path) {
            (DeletionPolicy::Delete, Some(path)) if owned => {
                // Disabling a missing mount succeeds, so this is idempotent.
                ctx.admin()
                    .disable_mount(self.flavor.table(), &path)
                    .await
                    .map_err(Error::core("DisableMount"))?;
                tracing::info!(mount = %path, "mount disabled (deletionPolicy Delete)");
                ctx.event(
                    &self.reference(),
                    EventType::Normal,
                    "Unmounted",
                    format!("disabled {path} and removed its data (deletionPolicy Delete)"),
                )
                .await;
            }
            (_, path) => {
                tracing::info!(mount = ?path, "{} deleted; lockbox mount retained", self.flavor.kind());
            }
        }
        Ok(Action::await_change())
    }

    /// The `namespace/name` of an older SecretsMount with the same path.
    async fn conflicting_holder(&self, ctx: &Context, path: &str) -> Result<Option<String>, Error> {
        let all = self.holders(ctx).await?;
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
            let Ok(v) = self.flavor.validate(ctx, &ons, &oname, &other.spec) else {
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
        live: &MountInfo,
        uid: &str,
    ) -> Result<String, Error> {
        let owner = live.owner.as_str();
        let whose = if owner.is_empty() {
            format!(
                "no {} owns (it was enabled through the API, or before owners were recorded)",
                self.flavor.kind()
            )
        } else {
            let all = self.holders(ctx).await?;
            match all
                .iter()
                .find(|m| m.metadata.uid.as_deref() == Some(owner))
            {
                Some(m) => format!(
                    "{} {}/{} owns",
                    self.flavor.kind(),
                    m.namespace().unwrap_or_default(),
                    m.name_any()
                ),
                None => format!(
                    "a deleted {} (uid {owner}) owns; it was kept by deletionPolicy \
                     Retain",
                    self.flavor.kind()
                ),
            }
        };
        Ok(format!(
            "lockbox already has a mount at {path} that {whose}; it is left untouched. Choose \
             another spec.path, or ask a lockbox administrator to hand the mount over with the \
             root token: lockbox write {}/tune owner={uid}",
            self.flavor.admin_path(path)
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
                &self.reference(),
                EventType::Warning,
                REASON_PATH_CONFLICT,
                msg.clone(),
            )
            .await;
        }
        self.report(ctx, Some(path), REASON_PATH_CONFLICT, msg, RECHECK)
            .await
    }

    /// Maps a core refusal (`op` failed) to a status reason; other
    /// failures are errors.
    async fn core_refused<T>(
        &self,
        ctx: &Context,
        path: &str,
        op: &'static str,
        e: RequestError,
    ) -> Stage<T> {
        match e {
            RequestError::InvalidRequest(msg) => {
                let reason = if msg.contains("plugin not found in the catalog") {
                    REASON_PLUGIN_MISSING
                } else {
                    REASON_MOUNT_FAILED
                };
                self.report(ctx, Some(path), reason, msg, RECHECK)
                    .await
                    .map(Break)
            }
            source => Err(Error::Core { op, source }),
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
        ctx.metrics.failed(self.flavor.kind(), reason);
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
            // Ready=False with Stalled or Reconciling (kstatus Failed or
            // InProgress, see `conditions`).
            conditions: Some(not_ready(
                previous.conditions.as_deref(),
                reason,
                msg.clone(),
                generation,
            )),
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
        self.flavor.patch_status(ctx, self, status).await
    }
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
