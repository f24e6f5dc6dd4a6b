//! `lockbox server --dev`: in-memory, initialized and unsealed with one
//! key, `secret/` mounted, the root token stored for the CLI, and every
//! executable of `--dev-plugin-dir` registered in the catalog.

use crate::args::{ServerArgs, ServerError};
use crate::assembly::{Assembly, TempCacheDir, bind};
use crate::banner::{listener_line, print_banner, print_started};
use crate::logging::{LogSettings, init_logging};
use crate::reload::{Reload, Signals, shutdown_signal};
use base64::Engine;
use lockbox_core::catalog::{CatalogEntry, PluginType};
use lockbox_core::core::Core;
use lockbox_http::{self as http, ServerOptions, tls};
use lockbox_plugin_host::{Node, NodeConfig};
use lockbox_storage::{InMemory, Physical};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// A non-empty environment variable, the first of `names` that is set
/// (empty counts as unset, as in Vault).
fn env_var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| crate::hardening::secret_env(n).filter(|v| !v.trim().is_empty()))
}

/// Stores the dev root token in the CLI's token file, as Vault's dev mode
/// does with its token helper, so `lockbox token lookup` works right away.
/// Returns the file written.
fn store_dev_token(token: &str) -> Result<PathBuf, String> {
    let path = lockbox_cli::token_file_path(&|name| std::env::var(name).ok())
        .ok_or_else(|| "HOME is not set, so there is no token file to store it in".to_string())?;
    lockbox_cli::write_token_file(&path, token).map_err(|e| e.to_string())?;
    Ok(path)
}

/// What [`register_dev_plugins`] did.
#[derive(Debug, Default)]
pub struct DevPlugins {
    /// Registered entries, in file-name order.
    pub registered: Vec<CatalogEntry>,
    /// Executables that are not lockbox plugins (file names).
    pub failed: Vec<String>,
}

/// Registers every executable in `dir` (dev mode). Each is started once to
/// learn whether it is a secrets engine or an auth method; one that does not
/// start as a plugin is listed in [`DevPlugins::failed`].
pub async fn register_dev_plugins(
    node: &Node,
    dir: &std::path::Path,
) -> Result<DevPlugins, ServerError> {
    use std::os::unix::fs::PermissionsExt;
    let mut result = DevPlugins::default();
    let dir = dir
        .canonicalize()
        .map_err(|source| ServerError::PluginDir {
            path: dir.to_path_buf(),
            source,
        })?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|source| ServerError::PluginDir {
            path: dir.clone(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .collect();
    files.sort();
    for path in files {
        let Some(file) = path
            .file_name()
            .and_then(|f| f.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let (name, named_kind) = dev_plugin_name(&file);
        if lockbox_core::catalog::validate_name(&name).is_err() {
            continue;
        }
        let sha256 = match lockbox_core::catalog::sha256_file_async(&path).await {
            Ok(hex) => hex,
            Err(e) => {
                tracing::warn!("skipping {}: {e}", path.display());
                result.failed.push(file);
                continue;
            }
        };
        let mut entry = CatalogEntry {
            name,
            kind: PluginType::Secret,
            version: String::new(),
            command: file.clone(),
            args: vec![],
            env: vec![],
            sha256,
            multiplexing: true,
            oci: None,
        };
        let launch = node.plugin_host().config().launch.clone();
        match lockbox_plugin_host::process::launch(&entry, &path, &launch).await {
            Ok(p) => {
                entry.kind = match named_kind {
                    Some(kind) => kind,
                    None if p.vault().is_none()
                        && p.info.kind
                            == lockbox_plugin_proto::v1::BackendKind::Credential as i32 =>
                    {
                        PluginType::Auth
                    }
                    None => PluginType::Secret,
                };
                p.stop().await;
            }
            Err(e) => {
                tracing::warn!("skipping {}: not a lockbox plugin ({e})", path.display());
                result.failed.push(file);
                continue;
            }
        }
        node.register_plugin(&entry).await?;
        tracing::info!(
            name = %entry.name,
            kind = entry.kind.as_str(),
            sha256 = %entry.sha256,
            "registered dev plugin"
        );
        result.registered.push(entry);
    }
    Ok(result)
}

/// The catalog name of a dev plugin file, and its type when the name says
/// it: Vault's binary names (`vault-plugin-secrets-NAME`,
/// `vault-plugin-auth-NAME`, OpenBao's `openbao-plugin-…`) name both, so
/// `vault-plugin-secrets-kv` is the `kv` plugin (kv version 2) and
/// `vault-plugin-auth-kubernetes` the `kubernetes` auth method;
/// `lockbox-plugin-NAME` is `NAME`; any other file keeps its name. Without
/// a type in the name, a lockbox plugin says its type at start; a Vault
/// plugin is taken for a secrets engine (its type is per mount).
fn dev_plugin_name(file: &str) -> (String, Option<PluginType>) {
    for vendor in ["vault", "openbao"] {
        for (kind, word) in [(PluginType::Secret, "secrets"), (PluginType::Auth, "auth")] {
            if let Some(name) = file
                .strip_prefix(vendor)
                .and_then(|f| f.strip_prefix("-plugin-"))
                .and_then(|f| f.strip_prefix(word))
                .and_then(|f| f.strip_prefix('-'))
                .filter(|n| !n.is_empty())
            {
                return (name.to_string(), Some(kind));
            }
        }
    }
    let name = file.strip_prefix("lockbox-plugin-").unwrap_or(file);
    (name.to_string(), None)
}

/// Runs `lockbox server --dev` until SIGTERM or SIGINT.
pub(crate) async fn run_dev(args: ServerArgs) -> Result<(), ServerError> {
    let logging = LogSettings::resolve(&args, None)?;
    let log = init_logging(logging.level, logging.format);
    let root_token_id = args
        .dev_root_token_id
        .clone()
        .or_else(|| env_var(&["LOCKBOX_DEV_ROOT_TOKEN_ID", "VAULT_DEV_ROOT_TOKEN_ID"]));
    let listen_address = args
        .dev_listen_address
        .clone()
        .or_else(|| env_var(&["LOCKBOX_DEV_LISTEN_ADDRESS", "VAULT_DEV_LISTEN_ADDRESS"]))
        .unwrap_or_else(|| "127.0.0.1:8200".to_string());
    let physical: Arc<dyn Physical> = Arc::new(InMemory::new());
    let mut config = NodeConfig::default();
    config.plugins.plugin_directory = args.dev_plugin_dir.clone();
    let temp_cache = TempCacheDir::new();
    config.plugins.plugin_cache_directory = Some(temp_cache.0.clone());
    config.images.insecure_registries = args.insecure_registries.clone();
    let node = Arc::new(Node::new(physical, config));
    let core: &Core = &node;

    let init = core.initialize(1, 1, root_token_id).await?;
    for key in &init.keys {
        core.submit_unseal_key(key).await?;
    }
    let dev_plugins = match &args.dev_plugin_dir {
        Some(dir) => register_dev_plugins(&node, dir).await?,
        None => DevPlugins::default(),
    };
    // `secret/` is kv version 2 when the kv plugin is there, as in Vault's
    // dev server; otherwise the built-in kv version 1.
    let kv = if dev_plugins
        .registered
        .iter()
        .any(|e| e.name == "kv" && e.kind == PluginType::Secret)
    {
        "kv-v2"
    } else {
        "kv"
    };
    core.enable_mount("secret", kv, "key/value secret storage")
        .await?;

    let listener = bind(&listen_address).await?;
    let local: SocketAddr = listener.local_addr()?;
    let tls_certs = if args.dev_tls {
        let dir = match &args.dev_tls_cert_dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!("lockbox-dev-tls-{}", std::process::id())),
        };
        Some(tls::generate_dev(&dir)?)
    } else {
        None
    };
    let tls = match &tls_certs {
        Some(c) => Some(tls::Reloadable::load(&c.cert, &c.key)?),
        None => None,
    };
    let tls_enabled = tls.is_some();
    let server = Assembly::new(
        node.clone(),
        listener,
        ServerOptions {
            tls,
            ..Default::default()
        },
    );
    let addr = format!("{}://{local}", server.scheme());
    let unseal_key = init
        .keys
        .first()
        .map(|k| base64::engine::general_purpose::STANDARD.encode(k.as_slice()))
        .unwrap_or_default();
    let stored = if args.dev_no_store_token {
        false
    } else {
        match store_dev_token(&init.root_token) {
            Ok(path) => {
                tracing::info!(path = %path.display(), "root token stored for the CLI");
                true
            }
            Err(e) => {
                tracing::warn!("could not store the root token for the CLI: {e}");
                false
            }
        }
    };
    let signals = Signals::register()?;
    print_banner(&[
        ("Api Address", addr.clone()),
        (
            "Listener 1",
            listener_line(
                local,
                Some(http::DEFAULT_MAX_REQUEST_SIZE),
                http::Timeouts::default().max_request_duration,
                tls_enabled,
            ),
        ),
        ("Log Level", logging.level.to_string()),
        ("Storage", "inmem".into()),
        (
            "Version",
            format!("lockbox v{}", lockbox_core::core::VERSION),
        ),
    ]);
    print_started();
    print_dev_warning(&DevBanner {
        addr: &addr,
        ca: tls_certs.as_ref().map(|c| c.ca.as_path()),
        unseal_key: &unseal_key,
        root_token: &init.root_token,
        token_stored: stored,
        plugins: &dev_plugins,
    });

    server.reload_on_sighup(
        signals.hup,
        Reload {
            log,
            level_pinned_by: logging.pinned_by,
            ..Default::default()
        },
    );
    server.serve(shutdown_signal(signals.term)).await?;
    // Certificates generated into a temporary directory go with the server.
    if args.dev_tls_cert_dir.is_none()
        && let Some(dir) = tls_certs.as_ref().and_then(|c| c.ca.parent())
    {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

struct DevBanner<'a> {
    addr: &'a str,
    ca: Option<&'a std::path::Path>,
    unseal_key: &'a str,
    root_token: &'a str,
    token_stored: bool,
    plugins: &'a DevPlugins,
}

/// Vault's dev-mode block, in Vault's order: the warning, the environment,
/// the unseal key and root token, the dev plugins, then "Development mode
/// should NOT be used in production installations!" as the last line, so
/// a reader that waits for it has seen everything.
fn print_dev_warning(b: &DevBanner<'_>) {
    let mut text = String::from(
        "WARNING! dev mode is enabled! In this mode, lockbox runs entirely in-memory\n\
         and starts unsealed with a single unseal key. ",
    );
    if b.token_stored {
        text.push_str(
            "The root token is already\n\
             authenticated to the CLI, so you can immediately begin using lockbox.\n",
        );
    } else {
        text.push_str(
            "The root token is NOT\n\
             stored for the CLI: set LOCKBOX_TOKEN or run `lockbox login` to use it.\n",
        );
    }
    text.push_str(&format!(
        "\nYou may need to set the following environment variables:\n\n    \
         $ export LOCKBOX_ADDR='{addr}'\n    $ export VAULT_ADDR='{addr}'\n",
        addr = b.addr
    ));
    if let Some(ca) = b.ca {
        text.push_str(&format!(
            "    $ export VAULT_CACERT='{ca}'\n    $ export LOCKBOX_CACERT='{ca}'\n",
            ca = ca.display()
        ));
    }
    text.push_str(&format!(
        "\nThe unseal key and root token are displayed below in case you want to\n\
         seal/unseal lockbox or re-authenticate.\n\n\
         Unseal Key: {}\nRoot Token: {}\n",
        b.unseal_key, b.root_token
    ));
    if !b.plugins.registered.is_empty() {
        text.push_str("\nThe following dev plugins are registered in the catalog:\n");
        for p in &b.plugins.registered {
            text.push_str(&format!("    - {}\n", p.name));
        }
    }
    if !b.plugins.failed.is_empty() {
        text.push_str(
            "\nThe following dev plugins FAILED to be registered in the catalog due to unknown type:\n",
        );
        for f in &b.plugins.failed {
            text.push_str(&format!("    - {f}\n"));
        }
    }
    text.push_str("\nDevelopment mode should NOT be used in production installations!\n\n");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_plugin_names_follow_vaults_binary_names() {
        let cases = [
            ("vault-plugin-secrets-kv", "kv", Some(PluginType::Secret)),
            (
                "vault-plugin-auth-kubernetes",
                "kubernetes",
                Some(PluginType::Auth),
            ),
            (
                "openbao-plugin-secrets-nomad",
                "nomad",
                Some(PluginType::Secret),
            ),
            ("openbao-plugin-auth-jwt", "jwt", Some(PluginType::Auth)),
            ("lockbox-plugin-userpass", "userpass", None),
            ("mock", "mock", None),
            ("vault-plugin-secrets-", "vault-plugin-secrets-", None),
            ("vault-plugin-database-x", "vault-plugin-database-x", None),
        ];
        for (file, name, kind) in cases {
            assert_eq!(dev_plugin_name(file), (name.to_string(), kind), "{file}");
        }
    }
}
