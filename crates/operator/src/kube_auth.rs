//! Kubernetes auth out of the box (`--kubernetes-auth`, the chart's
//! `kubernetesAuth.enabled`): the upstream `vault-plugin-auth-kubernetes`
//! that the image bundles, registered, mounted and configured for the
//! cluster lockbox runs in.
//!
//! ```text
//!  start: SHA256SUMS (image build) ──verify──▶ plugin file ──▶ KubeAuth
//!         └─ sandbox grant: that sha256 may read /var/run/secrets/kubernetes.io/serviceaccount
//!  active (after unseal; with HA each time this replica becomes active):
//!    sys/plugins/catalog/auth/kubernetes   registered (ours: our command) or left (an admin's)
//!    sys/auth/<path>                       enabled when absent
//!    auth/<path>/config                    written once: {kubernetes_host} when there is none
//! ```
//!
//! # Decisions
//! - Catalog name `kubernetes` (type `auth`): `auth enable kubernetes` as in
//!   Vault. A registration whose `command` is the bundled file is ours and
//!   follows the image (a new sha256 after an upgrade is registered and the
//!   mounts reloaded); one with another command (or an OCI image) is an
//!   admin's and left alone.
//! - The config is **written once**: only when the mount has none. An
//!   admin's `auth/<path>/config` (or the one lockbox wrote, since changed)
//!   is never overwritten; delete the mount to have lockbox write it again.
//! - The reviewer JWT and CA are left to the plugin
//!   (`disable_local_ca_jwt` false): it reads the pod's ServiceAccount token
//!   and `ca.crt`, and re-reads the token every minute, so kubelet's rotation
//!   of short-lived projected tokens needs nothing from lockbox. The sandbox
//!   grants that directory, read-only, to the verified binary alone
//!   ([`KubeAuth::read_grant`]). `--kubernetes-auth-ca-file` (out of cluster)
//!   writes a CA into the config instead.
//! - Nothing secret is logged: no token is read or written by this module.
//!
//! # Errors
//! A binary whose sha256 is not the recorded one is refused at start
//! ([`KubeAuthError::Mismatch`]) and nothing is registered; lockbox runs on
//! without Kubernetes auth, and says so in the log.

use lockbox_core::catalog::{PluginType, sha256_file};
use lockbox_core::core::admin::{EnableMount, RegisterPlugin, ReloadTarget};
use lockbox_core::core::mounts::Table;
use lockbox_core::core::{ApiRequest, Core, Method, Reply};
use lockbox_core::logical::RequestError;
use lockbox_plugin_host::sandbox::ReadGrant;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `--kubernetes-auth*` flags of `lockbox operator run`.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeAuthArgs {
    /// Kubernetes auth out of the box: on the active replica after unseal,
    /// register the bundled upstream plugin (catalog `auth/kubernetes`,
    /// sha256 from --kubernetes-auth-sha256sums, refused when the file
    /// differs), enable it at `auth/<--kubernetes-auth-path>` when absent and
    /// write its config once (`kubernetes_host`; the plugin reads the pod's
    /// ServiceAccount token and CA itself and follows their rotation).
    #[arg(long)]
    pub kubernetes_auth: bool,
    /// Where the shared Kubernetes auth method is mounted (`auth/PATH`):
    /// enabled there by --kubernetes-auth, and where KubernetesAuthRoles
    /// write their roles.
    #[arg(long, default_value = crate::context::DEFAULT_KUBERNETES_AUTH_PATH, value_name = "PATH")]
    pub kubernetes_auth_path: String,
    /// With --kubernetes-auth: the plugin's file name in --plugin-directory.
    #[arg(
        long,
        default_value = "vault-plugin-auth-kubernetes",
        value_name = "FILE"
    )]
    pub kubernetes_auth_plugin: String,
    /// With --kubernetes-auth: the sha256sum-format file recording the
    /// plugin's digest at image build time (default: SHA256SUMS in the
    /// parent of --plugin-directory, the image's layout).
    #[arg(long, value_name = "FILE")]
    pub kubernetes_auth_sha256sums: Option<PathBuf>,
    /// With --kubernetes-auth: `kubernetes_host` of the config (default:
    /// https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, in a pod).
    #[arg(long, value_name = "URL")]
    pub kubernetes_auth_host: Option<String>,
    /// With --kubernetes-auth, out of a cluster: a PEM CA written as
    /// `kubernetes_ca_cert` (default: none; in a pod the plugin reads the
    /// ServiceAccount's ca.crt).
    #[arg(long, value_name = "FILE")]
    pub kubernetes_auth_ca_file: Option<PathBuf>,
}

/// Catalog name of the bundled plugin (type `auth`).
pub const PLUGIN_NAME: &str = "kubernetes";
/// Where Kubernetes mounts a pod's ServiceAccount token, `ca.crt` and
/// `namespace` (the upstream plugin's in-cluster paths).
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Description of the mount lockbox enables.
pub const MOUNT_DESCRIPTION: &str =
    "Kubernetes auth (enabled by lockbox operator --kubernetes-auth)";

/// Why Kubernetes auth could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KubeAuthError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The sums file names no digest for the plugin.
    #[error(
        "{sums} records no sha256 for {binary}: the image was not built with the Kubernetes auth \
         plugin; rebuild it from the repository's Dockerfile, or run without --kubernetes-auth"
    )]
    NotRecorded {
        /// The sums file.
        sums: PathBuf,
        /// The plugin's file name.
        binary: String,
    },
    /// The plugin file is not the one the image recorded.
    #[error(
        "the Kubernetes auth plugin {binary} has sha256 {actual}, but {sums} records {recorded}: \
         it is not the binary the image was built with, so it is not registered; rebuild or \
         re-pull the image"
    )]
    Mismatch {
        /// The plugin file.
        binary: PathBuf,
        /// The sums file.
        sums: PathBuf,
        /// What the file hashes to.
        actual: String,
        /// What the sums file says.
        recorded: String,
    },
    /// No API server address.
    #[error(
        "no Kubernetes API address for auth/{0}/config: KUBERNETES_SERVICE_HOST and \
         KUBERNETES_SERVICE_PORT are not set (not in a pod); pass --kubernetes-auth-host"
    )]
    NoHost(String),
    /// The mount path is not usable.
    #[error(
        "--kubernetes-auth-path {0:?}: give a mount path such as `kubernetes` (no `auth/`, no spaces)"
    )]
    BadPath(String),
    /// Another kind of auth method is mounted at the path.
    #[error(
        "auth/{path}/ is a {kind:?} auth method, not Kubernetes auth: lockbox leaves it alone; \
         choose another --kubernetes-auth-path (chart: kubernetesAuth.path)"
    )]
    OtherMount {
        /// The mount path.
        path: String,
        /// Its type.
        kind: String,
    },
    /// A lockbox API call failed.
    #[error("{op} failed: {source}")]
    Api {
        /// The call.
        op: String,
        /// The error the API answered.
        #[source]
        source: RequestError,
    },
}

impl KubeAuthError {
    /// Whether trying again later can help (not for a bad image or flags).
    pub fn is_transient(&self) -> bool {
        matches!(self, KubeAuthError::Api { .. })
    }
}

fn api(op: impl Into<String>) -> impl FnOnce(RequestError) -> KubeAuthError {
    let op = op.into();
    move |source| KubeAuthError::Api { op, source }
}

/// The verified plugin and the config to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeAuth {
    /// Mount path without `auth/` (`kubernetes`).
    pub path: String,
    /// File name of the plugin in the plugin directory.
    pub command: String,
    /// Its verified sha256 (lower-case hex).
    pub sha256: String,
    /// `kubernetes_host` of the config.
    pub host: String,
    /// `kubernetes_ca_cert` of the config (`None`: the plugin reads the
    /// pod's `ca.crt`).
    pub ca_pem: Option<String>,
}

/// What [`KubeAuth::ensure`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ensured {
    /// The catalog entry was written.
    pub registered: bool,
    /// The auth method was enabled.
    pub enabled: bool,
    /// `auth/<path>/config` was written.
    pub configured: bool,
}

/// `https://HOST:PORT` from the in-cluster variables (IPv6 in brackets).
pub fn in_cluster_host(host: Option<&str>, port: Option<&str>) -> Option<String> {
    let (host, port) = (host?.trim(), port?.trim());
    if host.is_empty() || port.is_empty() {
        return None;
    }
    Some(match host.contains(':') {
        true => format!("https://[{host}]:{port}"),
        false => format!("https://{host}:{port}"),
    })
}

/// The digest `sums` (sha256sum format: `<hex>  <name>` or `<hex> *<name>`)
/// records for `binary`.
pub fn recorded_sha256(sums: &str, binary: &str) -> Option<String> {
    sums.lines().find_map(|line| {
        let (hex, name) = line.trim_end().split_once(char::is_whitespace)?;
        let name = name.trim_start().trim_start_matches('*');
        let ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        (ok && name == binary).then(|| hex.to_ascii_lowercase())
    })
}

/// Checks that `plugin_directory/binary` hashes to what `sums` records;
/// returns the sha256.
pub fn verify(plugin_directory: &Path, binary: &str, sums: &Path) -> Result<String, KubeAuthError> {
    let text = std::fs::read_to_string(sums).map_err(|source| KubeAuthError::Read {
        path: sums.to_path_buf(),
        source,
    })?;
    let recorded = recorded_sha256(&text, binary).ok_or_else(|| KubeAuthError::NotRecorded {
        sums: sums.to_path_buf(),
        binary: binary.to_string(),
    })?;
    let file = plugin_directory.join(binary);
    let actual = sha256_file(&file).map_err(|source| KubeAuthError::Read {
        path: file.clone(),
        source,
    })?;
    if actual != recorded {
        return Err(KubeAuthError::Mismatch {
            binary: file,
            sums: sums.to_path_buf(),
            actual,
            recorded,
        });
    }
    Ok(actual)
}

impl KubeAuth {
    /// From the flags: `None` without `--kubernetes-auth`; else the plugin
    /// verified against the recorded sum (default: `SHA256SUMS` beside the
    /// plugin directory, the image's layout) and the API server address
    /// (`--kubernetes-auth-host`, else the in-cluster variables).
    pub fn from_args(
        args: &KubeAuthArgs,
        plugin_directory: &Path,
    ) -> Result<Option<KubeAuth>, KubeAuthError> {
        if !args.kubernetes_auth {
            return Ok(None);
        }
        let path = args.kubernetes_auth_path.trim_matches('/').to_string();
        if path.is_empty()
            || path.starts_with("auth/")
            || path.chars().any(|c| c.is_whitespace() || c == '%')
        {
            return Err(KubeAuthError::BadPath(args.kubernetes_auth_path.clone()));
        }
        let sums = args.kubernetes_auth_sha256sums.clone().unwrap_or_else(|| {
            plugin_directory
                .parent()
                .unwrap_or(plugin_directory)
                .join("SHA256SUMS")
        });
        let command = args.kubernetes_auth_plugin.clone();
        let sha256 = verify(plugin_directory, &command, &sums)?;
        let host = match &args.kubernetes_auth_host {
            Some(h) => h.clone(),
            None => in_cluster_host(
                std::env::var("KUBERNETES_SERVICE_HOST").ok().as_deref(),
                std::env::var("KUBERNETES_SERVICE_PORT").ok().as_deref(),
            )
            .ok_or_else(|| KubeAuthError::NoHost(path.clone()))?,
        };
        let ca_pem = match &args.kubernetes_auth_ca_file {
            Some(f) => Some(
                std::fs::read_to_string(f).map_err(|source| KubeAuthError::Read {
                    path: f.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        Ok(Some(KubeAuth {
            path,
            command,
            sha256,
            host,
            ca_pem,
        }))
    }

    /// The sandbox grant: this binary (by sha256) may read the pod's
    /// ServiceAccount directory, nothing more.
    pub fn read_grant(&self) -> ReadGrant {
        ReadGrant {
            sha256: self.sha256.clone(),
            path: PathBuf::from(SERVICE_ACCOUNT_DIR),
        }
    }

    /// Registers, enables and configures (see the module docs); idempotent.
    pub async fn ensure(&self, core: &Core, token: &str) -> Result<Ensured, KubeAuthError> {
        let mut done = Ensured::default();
        let admin = core.admin(token);
        let current = admin
            .plugin(PluginType::Auth, PLUGIN_NAME, "")
            .await
            .map_err(api("read sys/plugins/catalog/auth/kubernetes"))?;
        match current {
            Some(e) if e.oci.is_some() || e.command != self.command => tracing::info!(
                command = %e.command,
                "auth plugin {PLUGIN_NAME} is registered with another binary (an admin's): left as it is"
            ),
            Some(e) if e.sha256 == self.sha256 && e.args.is_empty() && e.env.is_empty() => {}
            current => {
                admin
                    .register_plugin(RegisterPlugin {
                        kind: PluginType::Auth,
                        name: PLUGIN_NAME.into(),
                        version: String::new(),
                        command: Some(self.command.clone()),
                        sha256: Some(self.sha256.clone()),
                        oci_image: None,
                        args: Vec::new(),
                        env: Vec::new(),
                        multiplexing: true,
                    })
                    .await
                    .map_err(api("register sys/plugins/catalog/auth/kubernetes"))?;
                done.registered = true;
                if current.is_some() {
                    // A new image: mounts still run (or would start) the
                    // old registration.
                    admin
                        .reload(&ReloadTarget::Plugin {
                            name: PLUGIN_NAME.into(),
                            kind: Some(PluginType::Auth),
                            version: None,
                        })
                        .await
                        .map_err(api("reload the kubernetes auth plugin"))?;
                }
            }
        }

        let mount = format!("auth/{}/", self.path);
        let mounts = admin
            .mounts(Table::Auth)
            .await
            .map_err(api("read sys/auth"))?;
        match mounts.iter().find(|m| m.path == mount) {
            Some(m) if m.kind != PLUGIN_NAME => {
                return Err(KubeAuthError::OtherMount {
                    path: self.path.clone(),
                    kind: m.kind.clone(),
                });
            }
            Some(_) => {}
            None => {
                admin
                    .enable_mount(
                        Table::Auth,
                        &self.path,
                        EnableMount {
                            kind: PLUGIN_NAME.into(),
                            description: MOUNT_DESCRIPTION.into(),
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(api(format!("enable sys/auth/{}", self.path)))?;
                done.enabled = true;
            }
        }

        let config = format!("auth/{}/config", self.path);
        let existing = core
            .handle(ApiRequest {
                method: Method::Read,
                path: config.clone(),
                data: Map::new(),
                token: Some(token.to_string()),
                remote: None,
            })
            .await
            .map_err(api(format!("read {config}")))?;
        let has_config = match existing {
            Reply::NotFound | Reply::NoContent => false,
            Reply::Envelope { response, .. } => response.data.is_some_and(|d| !d.is_empty()),
            _ => true,
        };
        if !has_config {
            core.handle(ApiRequest {
                method: Method::Write,
                path: config.clone(),
                data: self.config_body(),
                token: Some(token.to_string()),
                remote: None,
            })
            .await
            .map_err(api(format!("write {config}")))?;
            done.configured = true;
        }
        Ok(done)
    }

    /// The body lockbox writes to `auth/<path>/config`.
    pub fn config_body(&self) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("kubernetes_host".into(), Value::String(self.host.clone()));
        if let Some(ca) = &self.ca_pem {
            body.insert("kubernetes_ca_cert".into(), Value::String(ca.clone()));
        }
        body
    }

    /// Runs [`KubeAuth::ensure`] each time `core` becomes active (at once
    /// without HA, where an unsealed core is active), retrying transient
    /// failures with backoff (10 s doubling to 5 min) while it stays active.
    pub async fn keep(self, core: std::sync::Arc<Core>, token: zeroize::Zeroizing<String>) {
        use lockbox_core::core::ha::Role;
        let mut role = core.watch_role();
        loop {
            if role.wait_for(|r| *r == Role::Active).await.is_err() {
                return;
            }
            let mut delay = Duration::from_secs(10);
            loop {
                match self.ensure(&core, &token).await {
                    Ok(done) => {
                        tracing::info!(
                            path = %format!("auth/{}", self.path),
                            registered = done.registered,
                            enabled = done.enabled,
                            configured = done.configured,
                            "Kubernetes auth ready"
                        );
                        break;
                    }
                    Err(e) if e.is_transient() && core.role() == Role::Active => {
                        tracing::warn!("Kubernetes auth: {e}; retrying in {}s", delay.as_secs());
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(300));
                    }
                    Err(e) => {
                        tracing::error!("Kubernetes auth is not set up: {e}");
                        break;
                    }
                }
            }
            if role.wait_for(|r| *r != Role::Active).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_cluster_host_is_https_with_ipv6_in_brackets() {
        assert_eq!(
            in_cluster_host(Some("10.96.0.1"), Some("443")).as_deref(),
            Some("https://10.96.0.1:443")
        );
        assert_eq!(
            in_cluster_host(Some("fd00::1"), Some("443")).as_deref(),
            Some("https://[fd00::1]:443")
        );
        assert_eq!(in_cluster_host(None, Some("443")), None);
        assert_eq!(in_cluster_host(Some(""), Some("443")), None);
    }

    #[test]
    fn recorded_sha256_reads_sha256sum_lines() {
        let a = "A".repeat(64);
        let sums = format!(
            "{}  lockbox-plugin-mock\n{a}  vault-plugin-auth-kubernetes\nbad line\n",
            "b".repeat(64)
        );
        assert_eq!(
            recorded_sha256(&sums, "vault-plugin-auth-kubernetes"),
            Some("a".repeat(64))
        );
        assert_eq!(
            recorded_sha256(&format!("{a} *x\n"), "x"),
            Some("a".repeat(64))
        );
        assert_eq!(recorded_sha256(&sums, "vault-plugin-auth"), None);
        assert_eq!(recorded_sha256("short  x\n", "x"), None);
    }

    /// Real files: a plugin file whose sum differs from the recorded one is
    /// refused with both digests and what to do; a missing line and a
    /// missing file are named.
    #[test]
    fn verify_refuses_a_binary_that_is_not_the_recorded_one() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let bin = plugins.join("vault-plugin-auth-kubernetes");
        std::fs::write(&bin, b"the image's plugin").unwrap();
        let good = sha256_file(&bin).unwrap();
        let sums = dir.path().join("SHA256SUMS");
        std::fs::write(&sums, format!("{good}  vault-plugin-auth-kubernetes\n")).unwrap();
        assert_eq!(
            verify(&plugins, "vault-plugin-auth-kubernetes", &sums).unwrap(),
            good
        );

        std::fs::write(&bin, b"something else").unwrap();
        let bad = sha256_file(&bin).unwrap();
        let e = verify(&plugins, "vault-plugin-auth-kubernetes", &sums).unwrap_err();
        assert!(matches!(e, KubeAuthError::Mismatch { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains(&bad) && msg.contains(&good) && msg.contains("not registered"),
            "{msg}"
        );
        assert!(!e.is_transient());

        let e = verify(&plugins, "other", &sums).unwrap_err();
        assert!(matches!(e, KubeAuthError::NotRecorded { .. }), "{e}");
        let e = verify(&plugins, "x", &dir.path().join("none")).unwrap_err();
        assert!(e.to_string().contains("none"), "{e}");
    }
}
