//! The operator's flags, the Secrets it keeps its unseal key and root
//! token in, and the errors that stop it.

use lockbox_http::tls;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Directory of the lockbox storage (redb file backend) and of the
    /// plugin image cache (`<DIR>/plugin-cache`, with any storage).
    #[arg(long, value_name = "DIR", env = "LOCKBOX_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Storage: `file` (a redb file in --data-dir, one replica) or
    /// `postgresql` (the connection URL only from the environment variable
    /// LOCKBOX_PG_CONNECTION_URL, never a flag: it holds a password).
    #[arg(long, default_value = "file", value_parser = ["file", "postgresql"])]
    pub storage: String,
    /// High availability on PostgreSQL (needs --storage=postgresql): every
    /// replica unseals, the one holding the database lock is active and runs
    /// the controllers, and labels its own Pod `lockbox.dev/active=true`.
    #[arg(long)]
    pub ha: bool,
    /// With --ha: the address clients reach this replica at, such as
    /// `https://10.0.0.5:8200` (standbys redirect clients there).
    #[arg(long, env = "LOCKBOX_API_ADDR", value_name = "URL")]
    pub api_addr: Option<String>,
    /// With --ha: the address standbys forward requests to, such as
    /// `https://10.0.0.5:8201` (default: the host of --api-addr, the port of
    /// --cluster-address).
    #[arg(long, env = "LOCKBOX_CLUSTER_ADDR", value_name = "URL")]
    pub cluster_addr: Option<String>,
    /// With --ha: where the cluster listener (forwarded requests, mutual
    /// TLS) binds.
    #[arg(long, default_value = "0.0.0.0:8201", value_name = "HOST:PORT")]
    pub cluster_address: String,
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
    #[arg(long, value_name = "BYTES", default_value_t = lockbox_plugin_host::images::DEFAULT_MAX_SIZE)]
    pub plugin_image_max_size: u64,
    /// Unused cached plugin binaries are pruned beyond this many bytes. The
    /// cache is `<data-dir>/plugin-cache`.
    #[arg(long, value_name = "BYTES", default_value_t = lockbox_plugin_host::images::DEFAULT_CACHE_MAX_BYTES)]
    pub plugin_cache_max_size: u64,
    /// Enables the `file` audit device at this path, or `stdout` (the
    /// chart's default when `audit.enabled`); kept as configured here at
    /// every start (fail closed: requests are refused when it cannot write).
    #[arg(long, value_name = "PATH|stdout", env = "LOCKBOX_AUDIT_FILE_PATH")]
    pub audit_file_path: Option<String>,
    /// Audit entry format.
    #[arg(long, default_value = "json", value_parser = ["json", "jsonx"])]
    pub audit_format: String,
    /// Written before each audit entry.
    #[arg(long, default_value = "")]
    pub audit_prefix: String,
    /// Log values unhashed (never in production: secrets reach the log).
    #[arg(long)]
    pub audit_log_raw: bool,
    /// HMAC token accessors too (Vault's default).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub audit_hmac_accessor: bool,
    /// Kubernetes auth out of the box (`--kubernetes-auth*`).
    #[command(flatten)]
    pub kube_auth: crate::kube_auth::KubeAuthArgs,
}

impl OperatorArgs {
    /// The audit device these arguments ask for, if any.
    pub fn audit_device(&self) -> Option<lockbox_core::core::audit::DeviceConfig> {
        let path = self.audit_file_path.clone()?;
        let mut options = std::collections::BTreeMap::new();
        options.insert("file_path".to_string(), path);
        options.insert("format".to_string(), self.audit_format.clone());
        if !self.audit_prefix.is_empty() {
            options.insert("prefix".to_string(), self.audit_prefix.clone());
        }
        options.insert("log_raw".to_string(), self.audit_log_raw.to_string());
        options.insert(
            "hmac_accessor".to_string(),
            self.audit_hmac_accessor.to_string(),
        );
        Some(lockbox_core::core::audit::DeviceConfig {
            path: "file/".into(),
            kind: "file".into(),
            description: "set by lockbox operator run --audit-file-path".into(),
            options,
            local: false,
        })
    }
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
    CrdMissing(String),
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
    Storage(#[from] lockbox_storage::StorageError),
    /// `--ha` without `--storage=postgresql`.
    #[error(
        "--ha needs --storage=postgresql (the replicas share the database and lead by its lock); \
         drop --ha for a single replica on --storage=file"
    )]
    HaNeedsPostgres,
    /// HA could not be set up (addresses, the database lock).
    #[error("HA: {0}")]
    Ha(String),
    /// The storage was initialized by another replica, but its unseal key
    /// Secret did not appear in time.
    #[error(
        "another replica initialized lockbox but Secret {0} did not appear within {1}s; check \
         that replica's log (it stores the key right after initializing), then restart this pod"
    )]
    UnsealSecretTimeout(String, u64),
    /// Initialization or unseal failed.
    #[error(transparent)]
    Core(#[from] lockbox_core::core::CoreError),
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
    /// The audit device of `--audit-file-path` could not be enabled.
    #[error("cannot enable the audit device of --audit-file-path: {0}")]
    Audit(String),
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
    /// The flags of `--kubernetes-auth` are wrong.
    #[error(transparent)]
    KubeAuth(#[from] crate::kube_auth::KubeAuthError),
}

pub(crate) fn kube_err(op: &'static str) -> impl FnOnce(kube::Error) -> OperatorError {
    move |source| OperatorError::Kube { op, source }
}
