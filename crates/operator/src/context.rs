//! What every reconcile shares ([`Context`]), the reconcile error type
//! ([`Error`]) and the per-object retry backoff used by `error_policy`.
//!
//! The operator drives lockbox through the core's typed admin API
//! ([`lockbox_core::core::admin::Admin`]) with the root token: the same
//! operations, validation and ACL check as the `sys/` HTTP routes, so the
//! operator and the API can never disagree about the rules.

use super::crd::SecretsMount;
use super::metrics::Metrics;
use kube::Client;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use lockbox_core::core::admin::{Admin, MountInfo};
use lockbox_core::core::mounts::Table;
use lockbox_core::logical::RequestError;
use lockbox_plugin_host::Node;
use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

/// Field manager of every write the operator makes (status SSA, finalizers).
pub const MANAGER: &str = "lockbox-operator";

/// Default of `--kubernetes-auth-path`: the shared Kubernetes auth mount.
pub const DEFAULT_KUBERNETES_AUTH_PATH: &str = "kubernetes";

/// Namespace of events about cluster-scoped objects.
pub const CLUSTER_EVENTS_NAMESPACE: &str = "kube-system";

/// First retry delay after a transient failure; doubles per failure.
const BACKOFF_INITIAL: Duration = Duration::from_secs(5);
/// Cap of the retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// State shared by both controllers and the health server.
pub struct Context {
    /// Kubernetes client (the operator's own identity).
    pub client: Client,
    /// The lockbox core the operator runs.
    pub core: Arc<Node>,
    /// Root token for [`Context::admin`]; never logged.
    root_token: Zeroizing<String>,
    /// The operator's namespace (Secrets for env values, the Lease).
    pub namespace: String,
    /// Directory plugin binaries are read from.
    pub plugin_directory: PathBuf,
    /// Extra mount path prefixes per namespace (`--allowed-path-prefix`).
    pub allowed_prefixes: BTreeMap<String, Vec<String>>,
    /// Event recorder (reporter `lockbox-operator`).
    pub recorder: Recorder,
    /// Counters and histograms served on `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Period of the full resync of every object.
    pub resync: Duration,
    /// Path of the shared Kubernetes auth mount below `auth/`
    /// (`--kubernetes-auth-path`), where KubernetesAuthRoles write roles.
    pub kubernetes_auth_path: String,
    /// `reportingInstance` of events.
    instance: String,
    /// Consecutive failures per object key, for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The controllers' cache of every SecretsMount (set when they start),
    /// so a reconcile checks path conflicts without listing the cluster.
    mount_store: std::sync::RwLock<Option<kube::runtime::reflector::Store<SecretsMount>>>,
}

/// A failed reconcile. Spec problems are not errors: they are reported in
/// status (`InvalidSpec`, `DigestMismatch`, ...) and the reconcile succeeds.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{op} failed: {source}")]
    Kube {
        /// The operation (`PatchStatus`, `GetSecret`, ...).
        op: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A lockbox core call failed.
    #[error("{op} failed: {source}")]
    Core {
        /// The operation (`RegisterPlugin`, `EnableMount`, ...).
        op: &'static str,
        /// The core's error.
        #[source]
        source: RequestError,
    },
    /// Adding or removing the finalizer failed, or cleanup failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// An object lacks a field the API server always sets.
    #[error("object has no {0}")]
    MissingField(&'static str),
}

impl Error {
    /// Stable label for the error counter.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "KubeApi",
            Error::Core { .. } => "CoreApi",
            Error::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.reason(),
                _ => "Finalizer",
            },
            Error::MissingField(_) => "MissingField",
        }
    }

    pub(crate) fn kube(op: &'static str) -> impl FnOnce(kube::Error) -> Error {
        move |source| Error::Kube { op, source }
    }

    pub(crate) fn core(op: &'static str) -> impl FnOnce(RequestError) -> Error {
        move |source| Error::Core { op, source }
    }
}

/// What a reconcile stage hands on: a value for the next stage, or the
/// action that ends the reconcile (its status already reported).
pub(crate) type Stage<T> = Result<ControlFlow<Action, T>, Error>;

/// The value of a [`Stage`], or returns its action from the reconcile.
macro_rules! proceed {
    ($stage:expr) => {
        match $stage? {
            std::ops::ControlFlow::Continue(value) => value,
            std::ops::ControlFlow::Break(action) => return Ok(action),
        }
    };
}
pub(crate) use proceed;

/// Server-side applies `status` to the `/status` subresource of `name`
/// under the field manager [`MANAGER`] (forced: the operator owns status);
/// `op` names the call in errors.
pub async fn apply_status<K>(
    api: &kube::Api<K>,
    name: &str,
    status: &impl serde::Serialize,
    op: &'static str,
) -> Result<(), Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &kube::api::PatchParams::apply(MANAGER).force(),
        &kube::api::Patch::Apply(&patch),
    )
    .await
    .map_err(Error::kube(op))?;
    Ok(())
}

impl Context {
    /// A context; `root_token` is kept in zeroizing memory.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        core: Arc<Node>,
        root_token: Zeroizing<String>,
        namespace: String,
        plugin_directory: PathBuf,
        allowed_prefixes: BTreeMap<String, Vec<String>>,
        metrics: Arc<Metrics>,
        resync: Duration,
    ) -> Self {
        let instance = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| MANAGER.into());
        let reporter = kube::runtime::events::Reporter {
            controller: MANAGER.into(),
            instance: Some(instance.clone()),
        };
        Self {
            instance,
            recorder: Recorder::new(client.clone(), reporter),
            client,
            core,
            root_token,
            namespace,
            plugin_directory,
            allowed_prefixes,
            metrics,
            resync,
            kubernetes_auth_path: DEFAULT_KUBERNETES_AUTH_PATH.into(),
            failures: Mutex::new(HashMap::new()),
            mount_store: std::sync::RwLock::new(None),
        }
    }

    /// The context with KubernetesAuthRoles writing to `auth/<path>/`.
    pub fn with_kubernetes_auth_path(mut self, path: &str) -> Self {
        self.kubernetes_auth_path = path.trim_matches('/').to_string();
        self
    }

    /// Hands the controllers' SecretsMount cache to reconciles.
    pub fn set_mount_store(&self, store: kube::runtime::reflector::Store<SecretsMount>) {
        *self
            .mount_store
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(store);
    }

    /// Every SecretsMount: from the controllers' cache once it has synced,
    /// from the API server when there is no cache (or it is gone).
    pub async fn all_mounts(&self) -> Result<Vec<Arc<SecretsMount>>, Error> {
        let store = self
            .mount_store
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(store) = store
            && store.wait_until_ready().await.is_ok()
        {
            return Ok(store.state());
        }
        let api: kube::Api<SecretsMount> = kube::Api::all(self.client.clone());
        let list = api
            .list(&kube::api::ListParams::default())
            .await
            .map_err(Error::kube("ListSecretsMounts"))?;
        Ok(list.items.into_iter().map(Arc::new).collect())
    }

    /// Extra prefixes granted to `namespace`.
    pub fn prefixes_for(&self, namespace: &str) -> &[String] {
        self.allowed_prefixes
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The core's admin API, acting with the root token.
    pub fn admin(&self) -> Admin<'_> {
        self.core.admin(&self.root_token)
    }

    /// The root token (the unit tests read the core over its HTTP API).
    #[cfg(test)]
    pub(crate) fn root_token(&self) -> &str {
        &self.root_token
    }

    /// The core's secrets engines (`sys/mounts`), keyed by path with a
    /// trailing `/`.
    pub async fn mounts(&self) -> Result<BTreeMap<String, MountInfo>, Error> {
        let mounts = self
            .admin()
            .mounts(Table::Mounts)
            .await
            .map_err(Error::core("ListMounts"))?;
        Ok(mounts.into_iter().map(|m| (m.path.clone(), m)).collect())
    }

    /// Publishes an event; failures are logged, never fatal.
    ///
    /// Events about cluster-scoped objects (catalog entries) go to
    /// `kube-system` with an empty `regarding.namespace`: the API server
    /// accepts `events.k8s.io/v1` events for cluster-scoped objects only
    /// there (the kube Recorder would use `default`, which is refused).
    pub async fn event(
        &self,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        let result = if reference.namespace.is_none() {
            self.cluster_event(&ev, reference).await
        } else {
            self.recorder.publish(&ev, reference).await
        };
        if let Err(e) = result {
            tracing::warn!(reason, "cannot publish event: {e}");
        }
    }

    async fn cluster_event(
        &self,
        ev: &Event,
        reference: &k8s_openapi::api::core::v1::ObjectReference,
    ) -> Result<(), kube::Error> {
        use k8s_openapi::api::events::v1::Event as K8sEvent;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
        let now = k8s_openapi::jiff::Timestamp::now();
        let event = K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(reference.clone()),
            note: ev.note.clone(),
            metadata: kube::api::ObjectMeta {
                namespace: Some(CLUSTER_EVENTS_NAMESPACE.into()),
                name: Some(format!(
                    "{}.{:x}",
                    reference.name.as_deref().unwrap_or(MANAGER),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            reporting_controller: Some(MANAGER.into()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(
                match ev.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            ..Default::default()
        };
        kube::Api::<K8sEvent>::namespaced(self.client.clone(), CLUSTER_EVENTS_NAMESPACE)
            .create(&kube::api::PostParams::default(), &event)
            .await
            .map(|_| ())
    }

    /// Clears the failure count of `key` after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// The next retry delay for `key`: 5 s, 10 s, 20 s ... capped at 5 min.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key.to_string()).or_insert(0);
        let delay = BACKOFF_INITIAL
            .saturating_mul(1u32 << (*n).min(10))
            .min(BACKOFF_MAX);
        *n = n.saturating_add(1);
        delay
    }
}

#[cfg(test)]
mod tests {
    /// The controllers reach the core only through the typed admin API: no
    /// Vault-API requests (`Core::handle`, `ApiRequest`, methods, `sys/`
    /// paths) and no JSON bodies for it. (`context.rs` builds one JSON
    /// document, the Kubernetes status patch of `apply_status`.)
    #[test]
    fn controllers_use_the_typed_admin_api() {
        let files = [
            ("mount.rs", include_str!("mount.rs"), true),
            ("catalog.rs", include_str!("catalog.rs"), true),
            ("context.rs", include_str!("context.rs"), false),
        ];
        let test_module = "#[cfg(test)]\nmod tests";
        for (name, text, no_json) in files {
            let code = text.split(test_module).next().unwrap_or(text);
            let mut banned = vec![".handle(", "ApiRequest", "Method::", "\"sys/"];
            if no_json {
                banned.push("json!");
            }
            for b in banned {
                assert!(!code.contains(b), "{name} contains {b:?}");
            }
        }
    }
}
