//! `lockbox operator`: the lockbox server plus the controllers that keep its
//! plugin catalog and mount table in line with the custom resources.
//!
//! ```text
//!  startup: CRDs installed? → open FileBackend(--data-dir) → init (1 share;
//!           key and root token into Secrets) or unseal (key from Secret)
//!           → HTTP API (--api-address) + health (--health-address)
//!           → Lease loop ──leader──▶ controllers (catalog entries, mounts)
//!                        ◀─lost──── controllers stopped
//!  SIGTERM: stop controllers, release the Lease, drain HTTP, seal.
//! ```
//!
//! The unseal key and root token are written once, at initialization, to
//! Secrets `lockbox-unseal-keys` (key `unseal-key`) and `lockbox-root-token`
//! (key `token`) in `--namespace`; their values are never logged.

use super::context::Context;
use super::crd::{PluginCatalogEntry, SecretsMount};
use super::metrics::{Metrics, serve_health};
use super::{catalog, crashloop, leader, mount};
use crate::core::{Core, CoreConfig};
use crate::http::{self, ServerOptions, tls};
use crate::storage::{FileBackend, Physical};
use base64::Engine;
use futures_util::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// Secret holding the unseal key (base64, data key [`UNSEAL_KEY`]).
pub const UNSEAL_SECRET: &str = "lockbox-unseal-keys";
/// Data key of the unseal key in [`UNSEAL_SECRET`].
pub const UNSEAL_KEY: &str = "unseal-key";
/// Secret holding the root token (data key [`ROOT_TOKEN_KEY`]).
pub const ROOT_TOKEN_SECRET: &str = "lockbox-root-token";
/// Data key of the root token in [`ROOT_TOKEN_SECRET`].
pub const ROOT_TOKEN_KEY: &str = "token";

/// Flags of `lockbox operator`.
#[derive(Debug, Clone, clap::Args)]
pub struct OperatorArgs {
    /// Directory of the lockbox storage (redb file backend).
    #[arg(long, value_name = "DIR", env = "LOCKBOX_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Directory plugin binaries are read from (`spec.binary.path` is relative to it).
    #[arg(long, value_name = "DIR", env = "LOCKBOX_PLUGIN_DIRECTORY")]
    pub plugin_directory: PathBuf,
    /// Address of the lockbox HTTP API.
    #[arg(long, default_value = "127.0.0.1:8200", value_name = "HOST:PORT")]
    pub api_address: String,
    /// TLS certificate for the API (plain HTTP unless both TLS flags are given).
    #[arg(long, requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// TLS private key for the API.
    #[arg(long, requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// The operator's own namespace (its Secrets and Lease).
    #[arg(long, env = "POD_NAMESPACE", default_value = "lockbox-system")]
    pub namespace: String,
    /// Address serving /healthz, /readyz and /metrics.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub health_address: String,
    /// Every object is reconciled at least this often (drift correction).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub resync_period: Duration,
    /// Extra mount path prefix for a namespace, `NS=PREFIX` (repeatable).
    #[arg(long = "allowed-path-prefix", value_name = "NS=PREFIX", value_parser = parse_prefix)]
    pub allowed_path_prefix: Vec<(String, String)>,
    /// Log level (or LOCKBOX_LOG with an EnvFilter directive).
    #[arg(long, default_value = "info", env = "LOCKBOX_LOG_LEVEL")]
    pub log_level: String,
    /// Log format: `json` (one object per line, for log collectors) or `standard`.
    #[arg(long, default_value = "json", value_parser = ["json", "standard"], env = "LOCKBOX_LOG_FORMAT")]
    pub log_format: String,
    /// Reach this registry (HOST:PORT) over plain HTTP instead of HTTPS when
    /// pulling plugin images; repeat for several.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT",
          value_parser = lockbox_oci::reference::parse_insecure_registry)]
    pub insecure_registries: Vec<String>,
    /// Largest plugin image (sum of its blobs) and binary, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = crate::oci::DEFAULT_MAX_SIZE)]
    pub plugin_image_max_size: u64,
    /// Unused cached plugin binaries are pruned beyond this many bytes. The
    /// cache is `<data-dir>/plugin-cache`.
    #[arg(long, value_name = "BYTES", default_value_t = crate::oci::DEFAULT_CACHE_MAX_BYTES)]
    pub plugin_cache_max_size: u64,
}

fn parse_prefix(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((ns, p)) if !ns.is_empty() && !p.trim_matches('/').is_empty() => {
            Ok((ns.to_string(), p.to_string()))
        }
        _ => Err(format!("{s:?}: expected NS=PREFIX, such as team-a=shared")),
    }
}

/// Errors that stop the operator.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// No usable kubeconfig / in-cluster config.
    #[error(
        "cannot configure the Kubernetes client (in-cluster, KUBECONFIG or ~/.kube/config): {0}"
    )]
    Kubeconfig(#[source] kube::Error),
    /// A CRD is not installed.
    #[error(
        "the {0} CustomResourceDefinition is not installed; install the CRDs with \
         `kubectl apply --server-side -f crds/`"
    )]
    CrdMissing(&'static str),
    /// A Kubernetes call failed.
    #[error("{op} failed: {source}")]
    Kube {
        /// The operation.
        op: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Storage could not be opened.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// Initialization or unseal failed.
    #[error(transparent)]
    Core(#[from] crate::core::CoreError),
    /// The storage is initialized but the unseal key Secret is gone.
    #[error(
        "lockbox in {data_dir} is initialized but Secret {namespace}/{UNSEAL_SECRET} (key \
         {UNSEAL_KEY}) is missing; restore it from your backup to unseal"
    )]
    UnsealKeyMissing {
        /// The namespace.
        namespace: String,
        /// The data directory.
        data_dir: String,
    },
    /// The unseal key did not unseal.
    #[error("the unseal key in Secret {0} did not unseal lockbox")]
    UnsealFailed(String),
    /// The root token Secret is gone.
    #[error("Secret {0} (key {ROOT_TOKEN_KEY}) is missing; restore it to run the operator")]
    RootTokenMissing(String),
    /// The storage is empty but the key Secrets exist from an earlier install.
    #[error(
        "Secret {0} already exists but the storage in --data-dir is not initialized; if the old \
         data is gone, delete the Secret, otherwise point --data-dir at the old data"
    )]
    StaleSecret(String),
    /// Storing the fresh unseal key failed; it was saved to a file instead.
    #[error(
        "cannot store the new unseal key in Secret {secret}: {source}; it was saved to {file} \
         (mode 0600): create the Secret from it, then delete the file"
    )]
    KeyNotStored {
        /// The Secret.
        secret: String,
        /// The recovery file.
        file: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// Binding a listener failed.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TLS material is wrong.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Other I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn kube_err(op: &'static str) -> impl FnOnce(kube::Error) -> OperatorError {
    move |source| OperatorError::Kube { op, source }
}

/// Fails with [`OperatorError::CrdMissing`] unless both CRDs are served.
async fn check_crds(client: &Client) -> Result<(), OperatorError> {
    let lp = ListParams::default().limit(1);
    match Api::<PluginCatalogEntry>::all(client.clone())
        .list(&lp)
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(OperatorError::CrdMissing(
                "plugincatalogentries.lockbox.dev",
            ));
        }
        Err(e) => return Err(kube_err("ListPluginCatalogEntries")(e)),
        Ok(_) => {}
    }
    match Api::<SecretsMount>::all(client.clone()).list(&lp).await {
        Err(kube::Error::Api(s)) if s.code == 404 => {
            Err(OperatorError::CrdMissing("secretsmounts.lockbox.dev"))
        }
        Err(e) => Err(kube_err("ListSecretsMounts")(e)),
        Ok(_) => Ok(()),
    }
}

fn secret(name: &str, key: &str, value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "lockbox-operator".to_string(),
            )])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            key.to_string(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Default::default()
    }
}

fn secret_value(s: &Secret, key: &str) -> Option<Zeroizing<String>> {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .map(Zeroizing::new)
}

async fn create_with_retry(api: &Api<Secret>, s: &Secret) -> Result<(), kube::Error> {
    let mut delay = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        match api.create(&PostParams::default(), s).await {
            Ok(_) => return Ok(()),
            Err(e) if attempt >= 5 => return Err(e),
            Err(e) => {
                tracing::warn!(secret = %s.name_any(), "create failed, retrying: {e}");
                attempt += 1;
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

/// Initializes (first start) or unseals the core; returns the root token.
async fn init_or_unseal(
    core: &Core,
    secrets: &Api<Secret>,
    args: &OperatorArgs,
) -> Result<Zeroizing<String>, OperatorError> {
    if !core.is_initialized().await? {
        // Surface RBAC problems and stale Secrets before creating keys that
        // would then have nowhere to go.
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        for name in [UNSEAL_SECRET, ROOT_TOKEN_SECRET] {
            match secrets.create(&dry, &secret(name, "probe", "x")).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    return Err(OperatorError::StaleSecret(format!(
                        "{}/{name}",
                        args.namespace
                    )));
                }
                Err(e) => return Err(kube_err("CreateSecret")(e)),
            }
        }
        let init = core.initialize(1, 1, None).await?;
        let Some(key) = init.keys.first() else {
            return Err(OperatorError::UnsealFailed("(no key generated)".into()));
        };
        let key_b64 =
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.as_slice()));
        if let Err(source) =
            create_with_retry(secrets, &secret(UNSEAL_SECRET, UNSEAL_KEY, &key_b64)).await
        {
            let file = args.data_dir.join("unseal-key.recovery");
            write_private(&file, key_b64.as_bytes())?;
            return Err(OperatorError::KeyNotStored {
                secret: format!("{}/{UNSEAL_SECRET}", args.namespace),
                file: file.display().to_string(),
                source,
            });
        }
        create_with_retry(
            secrets,
            &secret(ROOT_TOKEN_SECRET, ROOT_TOKEN_KEY, &init.root_token),
        )
        .await
        .map_err(kube_err("CreateRootTokenSecret"))?;
        core.submit_unseal_key(key).await?;
        tracing::info!(
            namespace = %args.namespace,
            "initialized lockbox; unseal key and root token stored in Secrets {UNSEAL_SECRET} and {ROOT_TOKEN_SECRET}"
        );
        return Ok(Zeroizing::new(init.root_token));
    }
    let unseal = secrets
        .get_opt(UNSEAL_SECRET)
        .await
        .map_err(kube_err("GetUnsealSecret"))?
        .and_then(|s| secret_value(&s, UNSEAL_KEY))
        .ok_or_else(|| OperatorError::UnsealKeyMissing {
            namespace: args.namespace.clone(),
            data_dir: args.data_dir.display().to_string(),
        })?;
    let raw = Zeroizing::new(crate::core::decode_key(&unseal)?);
    if !core.submit_unseal_key(&raw).await? {
        return Err(OperatorError::UnsealFailed(format!(
            "{}/{UNSEAL_SECRET}",
            args.namespace
        )));
    }
    let token = secrets
        .get_opt(ROOT_TOKEN_SECRET)
        .await
        .map_err(kube_err("GetRootTokenSecret"))?
        .and_then(|s| secret_value(&s, ROOT_TOKEN_KEY))
        .ok_or_else(|| {
            OperatorError::RootTokenMissing(format!("{}/{ROOT_TOKEN_SECRET}", args.namespace))
        })?;
    tracing::info!("unsealed lockbox with the key from Secret {UNSEAL_SECRET}");
    Ok(token)
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Reconcile on spec changes (generation), on deletion and on finalizer
/// changes, but not on status patches (which would loop).
fn spec_or_lifecycle<K: Resource>(obj: &K) -> Option<u64> {
    let meta = obj.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    meta.finalizers.hash(&mut h);
    Some(h.finish())
}

/// At most this many reconciles of one kind run at once: bounds memory and
/// the load on the API server when many objects change together (500 new
/// mounts), while still overlapping the waits of plugin starts.
const RECONCILE_CONCURRENCY: u16 = 16;

fn controller_config() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(RECONCILE_CONCURRENCY)
}

/// Runs both controllers until the future is dropped.
async fn run_controllers(ctx: Arc<Context>) {
    let client = ctx.client.clone();
    let wc = watcher::Config::default();

    let (reader, writer) = reflector::store::<PluginCatalogEntry>();
    let entries = watcher(Api::<PluginCatalogEntry>::all(client.clone()), wc.clone())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, Default::default());
    let entry_store = reader.clone();
    let catalog_ctl = Controller::for_stream(entries, reader)
        .with_config(controller_config())
        // A Secret that env values or image pull credentials come from
        // changes: re-check (env: re-register and so reload) the entries
        // that use it.
        .watches(
            Api::<Secret>::namespaced(client.clone(), &ctx.namespace),
            wc.clone(),
            move |secret: Secret| {
                let name = secret.name_any();
                entry_store
                    .state()
                    .into_iter()
                    .filter(|e| {
                        e.spec.env.iter().flatten().any(|v| {
                            v.value_from
                                .as_ref()
                                .is_some_and(|f| f.secret_key_ref.name == name)
                        }) || e
                            .spec
                            .image
                            .as_ref()
                            .and_then(|i| i.pull_secrets.as_ref())
                            .is_some_and(|s| s.contains(&name))
                    })
                    .map(|e| ObjectRef::from_obj(e.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .run(catalog::reconcile, catalog::error_policy, ctx.clone())
        .for_each(|_| std::future::ready(()));

    let (reader, writer) = reflector::store::<SecretsMount>();
    ctx.set_mount_store(reader.clone());
    let store = reader.clone();
    let mounts = watcher(Api::<SecretsMount>::all(client.clone()), wc.clone())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(spec_or_lifecycle, Default::default());
    let mount_ctl = Controller::for_stream(mounts, reader)
        .with_config(controller_config())
        // A catalog entry that changes (registered, deleted) re-checks the
        // mounts that use it.
        .watches(
            Api::<PluginCatalogEntry>::all(client.clone()),
            wc,
            move |entry: PluginCatalogEntry| {
                let name = entry.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|m| m.spec.plugin == name)
                    .map(|m| ObjectRef::from_obj(m.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .run(mount::reconcile, mount::error_policy, ctx.clone())
        .for_each(|_| std::future::ready(()));
    let crash_loops = crashloop::run(ctx.clone(), ctx.core.plugin_host().subscribe());
    tokio::join!(catalog_ctl, mount_ctl, crash_loops);
}

async fn bind(address: &str) -> Result<tokio::net::TcpListener, OperatorError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| OperatorError::Bind {
            address: address.into(),
            source,
        })
}

/// Runs `lockbox operator` until SIGTERM or SIGINT.
pub async fn run(args: OperatorArgs) -> Result<(), OperatorError> {
    let _ = crate::server::init_logging(&args.log_level, args.log_format.as_str());
    tls::install_crypto_provider();
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;

    let client = Client::try_default()
        .await
        .map_err(OperatorError::Kubeconfig)?;
    check_crds(&client).await?;

    std::fs::create_dir_all(&args.data_dir)?;
    let plugin_directory = args.plugin_directory.canonicalize()?;
    let physical: Arc<dyn Physical> = Arc::new(FileBackend::open(&args.data_dir)?);
    let core = Arc::new(Core::new(
        physical,
        CoreConfig {
            plugins: crate::plugin::HostConfig {
                plugin_directory: Some(plugin_directory.clone()),
                plugin_cache_directory: Some(args.data_dir.join("plugin-cache")),
                ..Default::default()
            },
            images: crate::oci::ImageSettings {
                insecure_registries: args.insecure_registries.clone(),
                max_size: args.plugin_image_max_size,
                cache_max_bytes: args.plugin_cache_max_size,
                registry_auth_file: None,
            },
            ..Default::default()
        },
    ));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &args.namespace);
    let root_token = init_or_unseal(&core, &secrets, &args).await?;

    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(c), Some(k)) => Some(tls::Reloadable::load(c, k)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let api_listener = bind(&args.api_address).await?;
    let health_listener = bind(&args.health_address).await?;
    let api_local = api_listener.local_addr()?;
    let health_local = health_listener.local_addr()?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let http_task = tokio::spawn(http::serve(
        api_listener,
        core.clone(),
        ServerOptions {
            tls,
            ..Default::default()
        },
        stopped(stop_rx.clone()),
    ));
    let metrics = Arc::new(Metrics::default());
    let health_task = tokio::spawn(serve_health(
        health_listener,
        core.clone(),
        metrics.clone(),
        stopped(stop_rx.clone()),
    ));

    let mut allowed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (ns, p) in &args.allowed_path_prefix {
        allowed.entry(ns.clone()).or_default().push(p.clone());
    }
    let ctx = Arc::new(Context::new(
        client.clone(),
        core.clone(),
        root_token,
        args.namespace.clone(),
        plugin_directory,
        allowed,
        metrics.clone(),
        args.resync_period,
    ));

    let identity = format!(
        "{}-{}",
        std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "lockbox".into()),
        uuid::Uuid::new_v4()
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), &args.namespace);
    let (leader_tx, mut leader_rx) = tokio::sync::watch::channel(false);
    let election = tokio::spawn(leader::run(leases.clone(), identity.clone(), leader_tx));

    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "==> lockbox operator started");
        let _ = writeln!(out, "api address: {scheme}://{api_local}");
        let _ = writeln!(out, "health address: {health_local}");
        let _ = out.flush();
    }

    let mut controllers: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received, shutting down"); break; }
            _ = tokio::signal::ctrl_c() => { tracing::info!("interrupt received, shutting down"); break; }
            changed = leader_rx.changed() => {
                if changed.is_err() { break; }
                let leading = *leader_rx.borrow_and_update();
                metrics.set_leader(leading);
                match (leading, controllers.is_some()) {
                    (true, false) => {
                        tracing::info!(%identity, "became leader: starting controllers");
                        controllers = Some(tokio::spawn(run_controllers(ctx.clone())));
                    }
                    (false, true) => {
                        tracing::warn!(%identity, "lost leadership: stopping controllers");
                        if let Some(h) = controllers.take() { h.abort(); }
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(h) = controllers.take() {
        h.abort();
    }
    election.abort();
    leader::release(&leases, &identity).await;
    let _ = stop_tx.send(true);
    let _ = http_task.await;
    let _ = health_task.await;
    core.seal().await;
    Ok(())
}
