//! `lockbox operator run`: the server assembly in operator mode. The
//! operator crate provides the parts that need Kubernetes (CRD check,
//! init/unseal from Secrets, the health server, the Lease loop and the
//! controllers); this module composes them with the same [`Assembly`] as
//! dev and config mode, so SIGHUP reloads the TLS certificate here too.
//!
//! Storage is the redb file in `--data-dir` (one replica, the Lease decides
//! who runs the controllers), or PostgreSQL (`--storage=postgresql`, the URL
//! from `LOCKBOX_PG_CONNECTION_URL` only). With `--ha` it is HA exactly as
//! in config mode ([`ha::enable`] before unseal, [`ha::spawn`] after,
//! requests forwarded to the active node), the core's role decides who runs
//! the controllers (no Lease), and each replica keeps the label
//! `lockbox.dev/active` on its own Pod ([`lockbox_operator::active_label`]).
//!
//! With `--kubernetes-auth` the bundled Kubernetes auth plugin is verified
//! against the image's recorded sha256 before the plugin host starts (its
//! sandbox grant, read-only access to the pod's ServiceAccount directory,
//! goes to that digest only), and set up on the active node after unseal
//! ([`lockbox_operator::kube_auth`]).

use crate::args::ServerError;
use crate::assembly::Assembly;
use crate::ha;
use crate::logging::init_logging;
use crate::reload::{Reload, Signals, shutdown_signal};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Client;
use kube::api::Api;
use lockbox_core::core::CoreConfig;
use lockbox_http::{ServerOptions, tls};
use lockbox_operator::active_label;
use lockbox_operator::bootstrap::{check_crds, init_or_unseal};
use lockbox_operator::context::Context;
use lockbox_operator::controllers::{Election, lead};
use lockbox_operator::kube_auth::KubeAuth;
use lockbox_operator::metrics::{Metrics, serve_health};
use lockbox_operator::{OperatorArgs, OperatorError};
use lockbox_plugin_host::images::ImageSettings;
use lockbox_plugin_host::{HostConfig, Node, NodeConfig};
use lockbox_storage::{FileBackend, Physical};
use lockbox_storage_postgres::{PostgresBackend, PostgresConfig};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

async fn bind(address: &str) -> Result<tokio::net::TcpListener, OperatorError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| OperatorError::Bind {
            address: address.into(),
            source,
        })
}

/// A server-side setup error (PostgreSQL, HA) as the operator's.
fn operator_error(e: ServerError) -> OperatorError {
    match e {
        ServerError::Storage(s) => OperatorError::Storage(s),
        ServerError::Bind { address, source } => OperatorError::Bind { address, source },
        other => OperatorError::Ha(other.to_string()),
    }
}

/// The storage of `--storage`: the redb file in `--data-dir`, or
/// PostgreSQL (returned as well, for HA).
async fn open_storage(
    args: &OperatorArgs,
) -> Result<(Arc<dyn Physical>, Option<Arc<PostgresBackend>>), OperatorError> {
    if args.storage == "postgresql" {
        let backend = Arc::new(
            crate::config_mode::open_postgres(&PostgresConfig::default())
                .await
                .map_err(operator_error)?,
        );
        return Ok((backend.clone(), Some(backend)));
    }
    Ok((Arc::new(FileBackend::open(&args.data_dir)?), None))
}

/// Runs `lockbox operator` until SIGTERM or SIGINT.
pub async fn run_operator(args: OperatorArgs) -> Result<(), OperatorError> {
    if args.ha && args.storage != "postgresql" {
        return Err(OperatorError::HaNeedsPostgres);
    }
    let log = init_logging(&args.log_level, args.log_format.as_str());
    tls::install_crypto_provider();
    let signals = Signals::register()?;

    let client = Client::try_default()
        .await
        .map_err(OperatorError::Kubeconfig)?;
    check_crds(&client).await?;

    std::fs::create_dir_all(&args.data_dir)?;
    let plugin_directory = args.plugin_directory.canonicalize()?;
    let kube_auth = kubernetes_auth(&args, &plugin_directory)?;
    let (physical, postgres) = open_storage(&args).await?;
    let mut plugins = HostConfig {
        plugin_directory: Some(plugin_directory.clone()),
        plugin_cache_directory: Some(args.data_dir.join("plugin-cache")),
        ..Default::default()
    };
    if let Some(k) = &kube_auth {
        plugins.launch.read_grants.push(k.read_grant());
    }
    let node = Arc::new(Node::new(
        physical,
        NodeConfig {
            core: CoreConfig::default(),
            plugins,
            images: ImageSettings {
                insecure_registries: args.insecure_registries.clone(),
                max_size: args.plugin_image_max_size,
                cache_max_bytes: args.plugin_cache_max_size,
                registry_auth_file: None,
            },
        },
    ));
    let cluster = match (args.ha, &postgres) {
        (true, Some(backend)) => {
            let addresses = ha::HaAddresses::resolve(
                args.api_addr.as_ref(),
                args.cluster_addr.as_ref(),
                &args.api_address,
                Some(&args.cluster_address),
            )
            .map_err(operator_error)?;
            let cluster_listener = bind(&addresses.cluster_listen).await?;
            let cluster_node = ha::enable(backend, None, &addresses, &node)
                .await
                .map_err(operator_error)?;
            Some((cluster_node, cluster_listener))
        }
        _ => None,
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &args.namespace);
    let root_token = init_or_unseal(&node, &secrets, &args).await?;
    if let Some(device) = args.audit_device() {
        if cluster.is_some() {
            // Only the active node writes: the device is kept by whichever
            // replica becomes active.
            tokio::spawn(ensure_audit_when_active(
                node.clone(),
                root_token.clone(),
                device,
            ));
        } else {
            let path = device.options.get("file_path").cloned().unwrap_or_default();
            match node.admin(&root_token).ensure_audit_device(device).await {
                Ok(true) => tracing::info!(%path, "audit device file/ enabled"),
                Ok(false) => {}
                Err(e) => return Err(OperatorError::Audit(e.to_string())),
            }
        }
    }

    if let Some(k) = kube_auth {
        tokio::spawn(k.keep(node.core().clone(), root_token.clone()));
    }

    let tls = match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(c), Some(k)) => Some(tls::Reloadable::load(c, k)?),
        _ => None,
    };
    let api_listener = bind(&args.api_address).await?;
    let health_listener = bind(&args.health_address).await?;
    let api_local = api_listener.local_addr()?;
    let health_local = health_listener.local_addr()?;
    let server = Assembly::new(
        node.clone(),
        api_listener,
        ServerOptions {
            tls,
            forwarding: match cluster {
                Some(_) => ha::forwarding(false),
                None => Default::default(),
            },
            ..Default::default()
        },
    );
    let scheme = server.scheme();
    let ha_mode = cluster.is_some();
    if let Some((cluster_node, cluster_listener)) = cluster {
        ha::spawn(
            cluster_node,
            node.core().clone(),
            cluster_listener,
            ServerOptions::default(),
            // No re-unseal from a file here (the key is in a Secret): a
            // replica that lost the database stays unsealed and standby;
            // the lock and the fencing term keep it from writing.
            ha::StorageLoss {
                seal_after: None,
                keys_file: None,
            },
        );
    }
    let pod = match (ha_mode, std::env::var("POD_NAME")) {
        (true, Ok(name)) if !name.is_empty() => {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &args.namespace);
            tokio::spawn(active_label::run(
                pods.clone(),
                name.clone(),
                node.watch_role(),
            ));
            Some((pods, name))
        }
        (true, _) => {
            tracing::warn!(
                "POD_NAME is not set: this replica does not label its Pod \
                 {} (the active Service finds no pod)",
                active_label::ACTIVE_LABEL
            );
            None
        }
        _ => None,
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    server.reload_on_sighup(
        signals.hup,
        Reload {
            log,
            ..Default::default()
        },
    );
    let http_task = tokio::spawn(server.serve(stopped(stop_rx.clone())));
    let metrics = Arc::new(Metrics::default());
    let health_task = tokio::spawn(serve_health(
        health_listener,
        node.clone(),
        metrics.clone(),
        stopped(stop_rx.clone()),
    ));

    let mut allowed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (ns, p) in &args.allowed_path_prefix {
        allowed.entry(ns.clone()).or_default().push(p.clone());
    }
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            node.clone(),
            root_token,
            args.namespace.clone(),
            plugin_directory,
            allowed,
            metrics.clone(),
            args.resync_period,
        )
        .with_kubernetes_auth_path(&args.kube_auth.kubernetes_auth_path),
    );

    let identity = format!(
        "{}-{}",
        std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "lockbox".into()),
        uuid::Uuid::new_v4()
    );
    let election = match ha_mode {
        true => Election::CoreRole(node.watch_role()),
        false => Election::Lease {
            api: Box::new(Api::<Lease>::namespaced(client.clone(), &args.namespace)),
            identity,
        },
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "==> lockbox operator started");
        let _ = writeln!(out, "api address: {scheme}://{api_local}");
        let _ = writeln!(out, "health address: {health_local}");
        let _ = out.flush();
    }
    lead(ctx, election, shutdown_signal(signals.term)).await;
    let _ = stop_tx.send(true);
    let _ = http_task.await;
    let _ = health_task.await;
    if let Some((pods, name)) = pod {
        // Sealed now: take the label off before the process exits (the
        // label task may not get to it).
        let unlabel = active_label::set(&pods, &name, false);
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(3), unlabel).await {
            tracing::warn!(
                "cannot set {}=false on {name}: {e}",
                active_label::ACTIVE_LABEL
            );
        }
    }
    Ok(())
}

/// The Kubernetes auth of `--kubernetes-auth`: wrong flags stop the
/// operator; a plugin binary that is not the one the image recorded (or is
/// missing) is logged as an error and lockbox runs without Kubernetes auth.
fn kubernetes_auth(
    args: &OperatorArgs,
    plugin_directory: &std::path::Path,
) -> Result<Option<KubeAuth>, OperatorError> {
    use lockbox_operator::kube_auth::KubeAuthError;
    match KubeAuth::from_args(&args.kube_auth, plugin_directory) {
        Ok(k) => Ok(k),
        Err(
            e @ (KubeAuthError::Mismatch { .. }
            | KubeAuthError::NotRecorded { .. }
            | KubeAuthError::Read { .. }),
        ) => {
            tracing::error!("Kubernetes auth is not set up: {e}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// HA: enables the audit device of `--audit-file-path` each time this
/// replica becomes active (a no-op when it is configured already).
async fn ensure_audit_when_active(
    node: Arc<Node>,
    root_token: zeroize::Zeroizing<String>,
    device: lockbox_core::core::audit::DeviceConfig,
) {
    let mut role = node.watch_role();
    loop {
        if role
            .wait_for(|r| *r == lockbox_core::core::ha::Role::Active)
            .await
            .is_err()
        {
            return;
        }
        match node
            .admin(&root_token)
            .ensure_audit_device(device.clone())
            .await
        {
            Ok(true) => tracing::info!("audit device file/ enabled"),
            Ok(false) => {}
            Err(e) => tracing::error!("cannot enable the audit device of --audit-file-path: {e}"),
        }
        if role
            .wait_for(|r| *r != lockbox_core::core::ha::Role::Active)
            .await
            .is_err()
        {
            return;
        }
    }
}
