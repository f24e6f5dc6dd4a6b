//! `lockbox server --config FILE`: storage (in memory, a redb file or
//! PostgreSQL), listener and plugins from the HCL file; starts sealed unless unseal keys are available
//! (`unseal_keys_file`, `--unseal-keys-file`, `LOCKBOX_UNSEAL_KEYS`).

use crate::args::{ServerArgs, ServerError};
use crate::assembly::{Assembly, TempCacheDir, bind};
use crate::banner::{listener_line, print_banner, print_started};
use crate::config::{Config, PostgresConfig, StorageConfig};
use crate::ha;
use crate::logging::{LogSettings, init_logging};
use crate::reload::{Reload, Signals, shutdown_signal};
use crate::unseal::{auto_unseal, keys_from_file};
use lockbox_core::core::{Core, CoreConfig};
use lockbox_http::{self as http, ServerOptions, tls};
use lockbox_plugin_host::{HostConfig, Node, NodeConfig};
use lockbox_storage::{FileBackend, InMemory, Physical};
use lockbox_storage_postgres::{PostgresBackend, PostgresError, URL_ENV, redact_url, resolve_url};
use std::path::PathBuf;
use std::sync::Arc;

fn unseal_keys(path: Option<&PathBuf>) -> Result<Vec<String>, ServerError> {
    let mut keys = match path {
        Some(path) => keys_from_file(path)?,
        None => Vec::new(),
    };
    if let Some(env) = crate::hardening::secret_env("LOCKBOX_UNSEAL_KEYS") {
        keys.extend(
            env.split([',', ' ', '\n'])
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    Ok(keys)
}

/// The PostgreSQL storage: the URL from `LOCKBOX_PG_CONNECTION_URL` or
/// `VAULT_PG_CONNECTION_URL` (taken out of the environment at startup, so
/// plugins never see it), else the file's `connection_url`.
pub(crate) async fn open_postgres(pg: &PostgresConfig) -> Result<PostgresBackend, ServerError> {
    let Some(url) = resolve_url(pg, crate::hardening::secret_env) else {
        let e = PostgresError::Config(format!(
            "no connection_url: set it in the storage block or in {}",
            URL_ENV.join(" or ")
        ));
        return Err(e.into_open_error("(no connection_url)").into());
    };
    PostgresBackend::open(&url, pg)
        .await
        .map_err(|e| e.into_open_error(&redact_url(&url)).into())
}

/// The connection URL for the banner, its password masked.
fn physical_url(pg: &PostgresConfig) -> String {
    resolve_url(pg, crate::hardening::secret_env)
        .map(|u| redact_url(&u))
        .unwrap_or_default()
}

/// Runs `lockbox server --config FILE` until SIGTERM or SIGINT.
pub(crate) async fn run_config(args: ServerArgs, path: PathBuf) -> Result<(), ServerError> {
    let config = Config::load(&path)?;
    let logging = LogSettings::resolve(&args, Some(&config))?;
    let log = init_logging(logging.level, logging.format);
    let mut postgres = None;
    let physical: Arc<dyn Physical> = match &config.storage {
        StorageConfig::InMemory => Arc::new(InMemory::new()),
        StorageConfig::File { path } => Arc::new(FileBackend::open(path)?),
        StorageConfig::Postgres(pg) => {
            let backend = Arc::new(open_postgres(pg).await?);
            postgres = Some((backend.clone(), pg.ha_table.clone()));
            backend
        }
    };
    let ha_addresses = match config.ha_enabled {
        false => None,
        true => Some(ha::HaAddresses::resolve(
            config.api_addr.as_ref(),
            config.cluster_addr.as_ref(),
            &config.listener.address,
            config.listener.cluster_address.as_ref(),
        )?),
    };
    // Used only with in-memory storage and no plugin_cache_directory.
    let temp_cache = TempCacheDir::new();
    let node = Arc::new(Node::new(
        physical,
        NodeConfig {
            plugins: HostConfig {
                plugin_directory: config.plugin_directory.clone(),
                plugin_cache_directory: Some(
                    config
                        .plugin_cache_dir()
                        .unwrap_or_else(|| temp_cache.0.clone()),
                ),
                response_cache_size: config.plugin_response_cache_size,
                ..Default::default()
            },
            core: CoreConfig {
                default_lease_ttl: config.default_lease_ttl,
                max_lease_ttl: config.max_lease_ttl,
                cluster_name: config.cluster_name.clone(),
            },
            images: lockbox_plugin_host::images::ImageSettings {
                insecure_registries: config
                    .insecure_registries
                    .iter()
                    .chain(&args.insecure_registries)
                    .cloned()
                    .collect(),
                max_size: config.plugin_image_max_size,
                cache_max_bytes: config.plugin_cache_max_size,
                registry_auth_file: config.registry_auth_file.clone(),
            },
        },
    ));
    let core: &Core = &node;
    let cluster = match (&ha_addresses, &postgres) {
        (Some(addresses), Some((backend, table))) => {
            let cluster_listener = bind(&addresses.cluster_listen).await?;
            let cluster_node = ha::enable(backend, table.as_ref(), addresses, core).await?;
            Some((cluster_node, cluster_listener))
        }
        _ => None,
    };
    let keys = unseal_keys(
        args.unseal_keys_file
            .as_ref()
            .or(config.unseal_keys_file.as_ref()),
    )?;
    let listener = bind(&config.listener.address).await?;
    let local = listener.local_addr()?;
    let tls = if config.listener.tls_disable {
        None
    } else {
        match (
            &config.listener.tls_cert_file,
            &config.listener.tls_key_file,
        ) {
            (Some(c), Some(k)) => Some(tls::Reloadable::load(c, k)?),
            _ => None,
        }
    };
    let tls_enabled = tls.is_some();
    let storage_desc = match &config.storage {
        StorageConfig::InMemory => "inmem".to_string(),
        StorageConfig::File { path } => format!("file (path: {})", path.display()),
        StorageConfig::Postgres(pg) => format!(
            "postgresql (url: {}, table: {}, HA: {})",
            physical_url(pg),
            pg.table,
            match &ha_addresses {
                Some(a) => format!("enabled, cluster listener {}", a.cluster_listen),
                None => "disabled".into(),
            }
        ),
    };
    let limit = config.request_limit();
    let options = ServerOptions {
        max_request_size: http::RequestLimit::new(limit.unwrap_or(usize::MAX)),
        tls,
        timeouts: config.listener_timeouts(),
        max_connections: config.max_connections(),
        forwarding: match cluster {
            Some(_) => ha::forwarding(config.disable_request_forwarding),
            None => Default::default(),
        },
        ..Default::default()
    };
    let server = Assembly::new(node.clone(), listener, options.clone());
    if let Some((cluster_node, cluster_listener)) = cluster {
        // The cluster listener has the API listener's limits (its TLS and
        // forwarding are its own: `ha::serve_cluster` sets them).
        ha::spawn(
            cluster_node,
            node.core().clone(),
            cluster_listener,
            options,
            ha::StorageLoss {
                seal_after: config.ha_seal_after,
                keys_file: args
                    .unseal_keys_file
                    .clone()
                    .or_else(|| config.unseal_keys_file.clone()),
            },
        );
    }
    let signals = Signals::register()?;
    print_banner(&[
        (
            "Api Address",
            config
                .api_addr
                .clone()
                .unwrap_or_else(|| format!("{}://{local}", server.scheme())),
        ),
        (
            "Listener 1",
            listener_line(
                local,
                limit,
                config.listener_timeouts().max_request_duration,
                tls_enabled,
            ),
        ),
        ("Log Level", logging.level.to_string()),
        ("Storage", storage_desc),
        (
            "Version",
            format!("lockbox v{}", lockbox_core::core::VERSION),
        ),
    ]);
    match auto_unseal(core, &keys).await {
        Ok(true) => tracing::info!("lockbox is unsealed"),
        Ok(false) if !core.is_initialized().await? => {
            tracing::info!("lockbox is not initialized yet: run `lockbox operator init`")
        }
        Ok(false) => tracing::info!("lockbox is sealed: run `lockbox operator unseal`"),
        Err(e) => tracing::error!("auto-unseal failed, lockbox stays sealed: {e}"),
    }
    print_started();
    server.reload_on_sighup(
        signals.hup,
        Reload {
            path: Some(path),
            running: Some(config),
            log,
            level_pinned_by: logging.pinned_by,
        },
    );
    server.serve(shutdown_signal(signals.term)).await
}
