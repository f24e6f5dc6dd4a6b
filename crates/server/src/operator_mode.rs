//! `lockbox operator run`: the server assembly in operator mode. The
//! operator crate provides the parts that need Kubernetes (CRD check,
//! init/unseal from Secrets, the health server, the Lease loop and the
//! controllers); this module composes them with the same [`Assembly`] as
//! dev and config mode, so SIGHUP reloads the TLS certificate here too.

use crate::assembly::Assembly;
use crate::logging::init_logging;
use crate::reload::{Reload, Signals, shutdown_signal};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use lockbox_core::core::CoreConfig;
use lockbox_http::{ServerOptions, tls};
use lockbox_operator::bootstrap::{check_crds, init_or_unseal};
use lockbox_operator::context::Context;
use lockbox_operator::controllers::lead;
use lockbox_operator::metrics::{Metrics, serve_health};
use lockbox_operator::{OperatorArgs, OperatorError};
use lockbox_plugin_host::images::ImageSettings;
use lockbox_plugin_host::{HostConfig, Node, NodeConfig};
use lockbox_storage::{FileBackend, Physical};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

async fn bind(address: &str) -> Result<tokio::net::TcpListener, OperatorError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| OperatorError::Bind {
            address: address.into(),
            source,
        })
}

/// Runs `lockbox operator` until SIGTERM or SIGINT.
pub async fn run_operator(args: OperatorArgs) -> Result<(), OperatorError> {
    let log = init_logging(&args.log_level, args.log_format.as_str());
    tls::install_crypto_provider();
    let signals = Signals::register()?;

    let client = Client::try_default()
        .await
        .map_err(OperatorError::Kubeconfig)?;
    check_crds(&client).await?;

    std::fs::create_dir_all(&args.data_dir)?;
    let plugin_directory = args.plugin_directory.canonicalize()?;
    let physical: Arc<dyn Physical> = Arc::new(FileBackend::open(&args.data_dir)?);
    let node = Arc::new(Node::new(
        physical,
        NodeConfig {
            core: CoreConfig::default(),
            plugins: HostConfig {
                plugin_directory: Some(plugin_directory.clone()),
                plugin_cache_directory: Some(args.data_dir.join("plugin-cache")),
                ..Default::default()
            },
            images: ImageSettings {
                insecure_registries: args.insecure_registries.clone(),
                max_size: args.plugin_image_max_size,
                cache_max_bytes: args.plugin_cache_max_size,
                registry_auth_file: None,
            },
        },
    ));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &args.namespace);
    let root_token = init_or_unseal(&node, &secrets, &args).await?;
    if let Some(device) = args.audit_device() {
        let path = device.options.get("file_path").cloned().unwrap_or_default();
        match node.admin(&root_token).ensure_audit_device(device).await {
            Ok(true) => tracing::info!(%path, "audit device file/ enabled"),
            Ok(false) => {}
            Err(e) => return Err(OperatorError::Audit(e.to_string())),
        }
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
            ..Default::default()
        },
    );
    let scheme = server.scheme();

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
    let ctx = Arc::new(Context::new(
        client.clone(),
        node.clone(),
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
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "==> lockbox operator started");
        let _ = writeln!(out, "api address: {scheme}://{api_local}");
        let _ = writeln!(out, "health address: {health_local}");
        let _ = out.flush();
    }
    lead(ctx, leases, identity, shutdown_signal(signals.term)).await;
    let _ = stop_tx.send(true);
    let _ = http_task.await;
    let _ = health_task.await;
    Ok(())
}
