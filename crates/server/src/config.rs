//! The server configuration file: Vault-style HCL.
//!
//! ```hcl
//! storage "file" { path = "/var/lib/lockbox" }
//! # or: storage "postgresql" { connection_url = "postgres://...", table = "vault_kv_store" }
//! listener "tcp" {
//!   address       = "0.0.0.0:8200"
//!   tls_cert_file = "/etc/lockbox/tls.crt"
//!   tls_key_file  = "/etc/lockbox/tls.key"
//!   # Vault's timeouts (seconds or "10s", "500ms", "5m"; 0 = the default):
//!   http_read_header_timeout = "10s"
//!   http_read_timeout        = "30s"
//!   http_write_timeout       = 0      # default: none
//!   http_idle_timeout        = "5m"
//!   max_request_duration     = "90s"  # overrides default_max_request_duration
//!   max_connections          = 4096   # lockbox's own; 0 = the default
//! }
//! api_addr         = "https://lockbox.example:8200"
//! plugin_directory = "/etc/lockbox/plugins"
//! max_request_size = 33554432    # bytes; 0 = the default (32 MiB), < 0 = no limit
//! plugin_response_cache_size = 33554432  # bytes; 0 turns the cache off
//! log_level        = "info"      # trace, debug, info, warn, error (Vault's aliases too)
//! ```
//!
//! Parsing is pure (text in, [`Config`] out) so it is unit-tested without
//! files. Unknown keys are errors that name the key; a few Vault keys that
//! have no meaning here (`ui`, `disable_mlock`, ...) are accepted and ignored
//! so existing Vault configs load.

mod storage;

use lockbox_core::logical::duration;
pub use lockbox_storage_postgres::PostgresConfig;
use std::path::PathBuf;
use std::time::Duration;

/// Errors reading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not HCL.
    #[error("config file is not valid HCL: {0}")]
    Syntax(String),
    /// A key or value is wrong.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Where data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// `storage "inmem" {}`: lost on exit.
    InMemory,
    /// `storage "file" { path = ... }`: the embedded database in a directory.
    File {
        /// The data directory.
        path: PathBuf,
    },
    /// `storage "postgresql" { connection_url = ... }`: Vault's table layout
    /// in PostgreSQL (`lockbox-storage-postgres`). Its `Debug` output
    /// redacts the URL's password.
    Postgres(PostgresConfig),
}

/// One `listener "tcp"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// `host:port`.
    pub address: String,
    /// Serve plain HTTP.
    pub tls_disable: bool,
    /// PEM certificate chain.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key.
    pub tls_key_file: Option<PathBuf>,
    /// HA: the cluster listener's `host:port` (default: the API port + 1,
    /// as Vault).
    pub cluster_address: Option<String>,
    /// Overrides the top-level `max_request_size` (same meaning).
    pub max_request_size: Option<i64>,
    /// `http_read_header_timeout`; unset or 0 is Vault's default (10s).
    pub http_read_header_timeout: Option<Duration>,
    /// `http_read_timeout`; unset or 0 is Vault's default (30s).
    pub http_read_timeout: Option<Duration>,
    /// `http_write_timeout`; unset or 0 is Vault's default (none).
    pub http_write_timeout: Option<Duration>,
    /// `http_idle_timeout`; unset or 0 is Vault's default (5m).
    pub http_idle_timeout: Option<Duration>,
    /// `max_request_duration`; unset or 0 is the top-level
    /// `default_max_request_duration`.
    pub max_request_duration: Option<Duration>,
    /// `max_connections` (lockbox's own key): connections served at once;
    /// unset or 0 is [`lockbox_http::conn::DEFAULT_MAX_CONNECTIONS`].
    pub max_connections: Option<usize>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Storage backend.
    pub storage: StorageConfig,
    /// The API listener.
    pub listener: ListenerConfig,
    /// The address clients should use (HA: where standbys redirect).
    pub api_addr: Option<String>,
    /// HA: where standbys forward requests to this node when it is active
    /// (`https://host:port` of the cluster listener).
    pub cluster_addr: Option<String>,
    /// HA: `storage "postgresql" { ha_enabled = "true" }`.
    pub ha_enabled: bool,
    /// HA: seal when the database was unreachable this long
    /// (`ha_seal_after_storage_loss`; `None`: never).
    pub ha_seal_after: Option<Duration>,
    /// HA: standbys answer 307 to the active's `api_addr` instead of
    /// forwarding.
    pub disable_request_forwarding: bool,
    /// Where plugin binaries must live.
    pub plugin_directory: Option<PathBuf>,
    /// Largest request body in bytes, as Vault reads it: 0 means the
    /// default ([`lockbox_http::DEFAULT_MAX_REQUEST_SIZE`]), a negative number
    /// means no limit. See [`Config::request_limit`].
    pub max_request_size: i64,
    /// `default_max_request_duration`; unset or 0 is Vault's default (90s).
    pub default_max_request_duration: Option<Duration>,
    /// Size bound of the plugin read-response cache in bytes; 0 turns it off.
    pub plugin_response_cache_size: u64,
    /// `trace`, `debug`, `info`, `warn` or `error` (normalized by
    /// [`parse_log_level`], so Vault's `warning`, `err`, `notice` are
    /// accepted in the file).
    pub log_level: String,
    /// `standard` or `json`.
    pub log_format: String,
    /// System default lease TTL in seconds.
    pub default_lease_ttl: u64,
    /// System max lease TTL in seconds.
    pub max_lease_ttl: u64,
    /// File with unseal keys (one per line) for auto-unseal.
    pub unseal_keys_file: Option<PathBuf>,
    /// Cluster name.
    pub cluster_name: String,
    /// Cache of plugin binaries pulled from OCI images; default: the
    /// `plugin-cache` directory inside the file storage path.
    pub plugin_cache_directory: Option<PathBuf>,
    /// `HOST:PORT` registries reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Largest plugin image (sum of its blobs) and binary, in bytes.
    pub plugin_image_max_size: u64,
    /// Size beyond which unused cached plugin binaries are pruned, in bytes.
    pub plugin_cache_max_size: u64,
    /// Docker config JSON with registry credentials for pulls.
    pub registry_auth_file: Option<PathBuf>,
}

const IGNORED: [&str; 7] = [
    "ui",
    "disable_mlock",
    "disable_cache",
    "pid_file",
    "raw_storage_endpoint",
    "disable_clustering",
    "enable_response_header_hostname",
];

fn invalid(m: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(m.into())
}

fn as_string(key: &str, v: &hcl::Value) -> Result<String, ConfigError> {
    match v {
        hcl::Value::String(s) => Ok(s.clone()),
        hcl::Value::Number(n) => Ok(n.to_string()),
        other => Err(invalid(format!("{key}: expected a string, got {other}"))),
    }
}

fn as_bool(key: &str, v: &hcl::Value) -> Result<bool, ConfigError> {
    match v {
        hcl::Value::Bool(b) => Ok(*b),
        hcl::Value::Number(n) => Ok(n.as_u64() != Some(0)),
        hcl::Value::String(s) => match s.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" | "" => Ok(false),
            _ => Err(invalid(format!("{key}: expected true or false, got {s:?}"))),
        },
        other => Err(invalid(format!(
            "{key}: expected true or false, got {other}"
        ))),
    }
}

/// A signed byte count (Vault's `parseutil.ParseInt`): `max_request_size`.
fn as_signed_size(key: &str, v: &hcl::Value) -> Result<i64, ConfigError> {
    let s = as_string(key, v)?;
    s.trim()
        .parse::<i64>()
        .map_err(|_| invalid(format!("{key}: expected a number of bytes, got {s:?}")))
}

/// The log levels the server accepts, as listed in error messages.
pub const LOG_LEVELS: &str =
    "trace, debug, info, warn, error (Vault's aliases notice, warning and err also work)";

/// Normalizes a log level as Vault does (case-insensitive; `notice` is
/// `info`, `warning` is `warn`, `err` is `error`) to the name tracing uses.
/// The same rule applies to `--log-level`, `LOCKBOX_LOG_LEVEL` and the
/// file's `log_level`, so a level is either accepted everywhere or refused
/// with the list of accepted values.
pub fn parse_log_level(level: &str) -> Result<&'static str, String> {
    match level.trim().to_ascii_lowercase().as_str() {
        "trace" => Ok("trace"),
        "debug" => Ok("debug"),
        "info" | "notice" => Ok("info"),
        "warn" | "warning" => Ok("warn"),
        "error" | "err" => Ok("error"),
        _ => Err(format!(
            "unknown log level {level:?}; accepted values are {LOG_LEVELS}"
        )),
    }
}

/// Validates a log format (`standard` or `json`, case-insensitive).
pub fn parse_log_format(format: &str) -> Result<&'static str, String> {
    match format.trim().to_ascii_lowercase().as_str() {
        "standard" => Ok("standard"),
        "json" => Ok("json"),
        _ => Err(format!(
            "unknown log format {format:?}; accepted values are standard, json"
        )),
    }
}

/// A duration as Vault reads listener durations (`parseutil.ParseDurationSecond`):
/// a number of seconds (`10`, `"10"`) or a duration with units (`"10s"`,
/// `"500ms"`, `"5m"`, `"1h30m"`).
fn as_duration(key: &str, v: &hcl::Value) -> Result<Duration, ConfigError> {
    const FORMS: &str =
        "use a number of seconds or a duration such as \"10s\", \"500ms\", \"5m\" or \"1h30m\"";
    let s = match v {
        hcl::Value::String(s) => s.clone(),
        hcl::Value::Number(n) => n.to_string(),
        other => {
            return Err(invalid(format!(
                "{key}: expected a duration, got {other}; {FORMS}"
            )));
        }
    };
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(t)
        .map_err(|e| invalid(format!("{key}: invalid duration {s:?} ({e}); {FORMS}")))
}

/// A configured duration, or `default` when unset or 0 (as Vault does).
fn or_default(value: Option<Duration>, default: Option<Duration>) -> Option<Duration> {
    value.filter(|d| !d.is_zero()).or(default)
}

fn as_size(key: &str, v: &hcl::Value) -> Result<usize, ConfigError> {
    let s = as_string(key, v)?;
    s.parse::<usize>()
        .map_err(|_| invalid(format!("{key}: expected a number of bytes, got {s:?}")))
}

fn attr_value(attr: &hcl::Attribute) -> hcl::Value {
    hcl::Value::from(attr.expr().clone())
}

impl Config {
    /// Reads and parses a file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses HCL text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let body: hcl::Body = lockbox_core::hcl::check_nesting(text)
            .and_then(|()| hcl::from_str(text).map_err(|e| e.to_string()))
            .map_err(ConfigError::Syntax)?;
        let mut storage = None;
        let mut listener = None;
        let mut cfg = Config {
            storage: StorageConfig::InMemory,
            listener: ListenerConfig {
                address: "127.0.0.1:8200".into(),
                tls_disable: false,
                tls_cert_file: None,
                tls_key_file: None,
                max_request_size: None,
                http_read_header_timeout: None,
                http_read_timeout: None,
                http_write_timeout: None,
                http_idle_timeout: None,
                max_request_duration: None,
                max_connections: None,
                cluster_address: None,
            },
            api_addr: None,
            cluster_addr: None,
            ha_enabled: false,
            ha_seal_after: None,
            disable_request_forwarding: false,
            plugin_directory: None,
            max_request_size: 0,
            default_max_request_duration: None,
            plugin_response_cache_size: lockbox_plugin_host::cache::DEFAULT_SIZE,
            log_level: "info".into(),
            log_format: "standard".into(),
            default_lease_ttl: lockbox_core::core::SYSTEM_TTL,
            max_lease_ttl: lockbox_core::core::SYSTEM_TTL,
            unseal_keys_file: None,
            cluster_name: "lockbox".into(),
            plugin_cache_directory: None,
            insecure_registries: Vec::new(),
            plugin_image_max_size: lockbox_plugin_host::images::DEFAULT_MAX_SIZE,
            plugin_cache_max_size: lockbox_plugin_host::images::DEFAULT_CACHE_MAX_BYTES,
            registry_auth_file: None,
        };
        for attr in body.attributes() {
            let key = attr.key();
            let v = attr_value(attr);
            match key {
                "api_addr" => cfg.api_addr = Some(as_string(key, &v)?),
                "cluster_addr" => cfg.cluster_addr = Some(as_string(key, &v)?),
                "disable_request_forwarding" => cfg.disable_request_forwarding = as_bool(key, &v)?,
                "plugin_directory" => {
                    cfg.plugin_directory = Some(PathBuf::from(as_string(key, &v)?))
                }
                "max_request_size" => cfg.max_request_size = as_signed_size(key, &v)?,
                "default_max_request_duration" => {
                    cfg.default_max_request_duration = Some(as_duration(key, &v)?)
                }
                "plugin_response_cache_size" => {
                    cfg.plugin_response_cache_size = as_size(key, &v)? as u64
                }
                "log_level" => {
                    cfg.log_level = parse_log_level(&as_string(key, &v)?)
                        .map_err(|e| invalid(format!("log_level: {e}")))?
                        .to_string()
                }
                "log_format" => {
                    cfg.log_format = parse_log_format(&as_string(key, &v)?)
                        .map_err(|e| invalid(format!("log_format: {e}")))?
                        .to_string()
                }
                "default_lease_ttl" => {
                    cfg.default_lease_ttl =
                        duration::parse_str(key, &as_string(key, &v)?).map_err(invalid)?
                }
                "max_lease_ttl" => {
                    cfg.max_lease_ttl =
                        duration::parse_str(key, &as_string(key, &v)?).map_err(invalid)?
                }
                "unseal_keys_file" => {
                    cfg.unseal_keys_file = Some(PathBuf::from(as_string(key, &v)?))
                }
                "cluster_name" => cfg.cluster_name = as_string(key, &v)?,
                "plugin_cache_directory" => {
                    cfg.plugin_cache_directory = Some(PathBuf::from(as_string(key, &v)?))
                }
                "insecure_registries" => {
                    let list = match &v {
                        hcl::Value::Array(items) => items
                            .iter()
                            .map(|i| as_string(key, i))
                            .collect::<Result<Vec<_>, _>>()?,
                        other => vec![as_string(key, other)?],
                    };
                    for r in list {
                        cfg.insecure_registries.push(
                            lockbox_oci::reference::parse_insecure_registry(&r)
                                .map_err(|e| invalid(format!("insecure_registries: {e}")))?,
                        );
                    }
                }
                "plugin_image_max_size" => cfg.plugin_image_max_size = as_size(key, &v)? as u64,
                "plugin_cache_max_size" => cfg.plugin_cache_max_size = as_size(key, &v)? as u64,
                "registry_auth_file" => {
                    cfg.registry_auth_file = Some(PathBuf::from(as_string(key, &v)?))
                }
                k if IGNORED.contains(&k) => {}
                other => return Err(invalid(format!("unknown key {other:?}"))),
            }
        }
        for block in body.blocks() {
            let label = block.labels().first().map(|l| l.as_str().to_string());
            match block.identifier() {
                "storage" | "backend" => {
                    if storage.is_some() {
                        return Err(invalid("only one storage block is allowed"));
                    }
                    let kind = label.ok_or_else(|| {
                        invalid("storage block needs a type: storage \"file\" { ... }")
                    })?;
                    let (parsed, ha) = storage::parse(&kind, block.body())?;
                    storage = Some(parsed);
                    cfg.ha_enabled = ha.enabled;
                    cfg.ha_seal_after = ha.seal_after;
                }
                "listener" => {
                    if listener.is_some() {
                        return Err(invalid("only one listener block is supported"));
                    }
                    if label.as_deref() != Some("tcp") {
                        return Err(invalid("only listener \"tcp\" is supported"));
                    }
                    let mut l = cfg.listener.clone();
                    for attr in block.body().attributes() {
                        let key = attr.key();
                        let v = attr_value(attr);
                        match key {
                            "address" => l.address = as_string(key, &v)?,
                            "tls_disable" => l.tls_disable = as_bool(key, &v)?,
                            "tls_cert_file" => {
                                l.tls_cert_file = Some(PathBuf::from(as_string(key, &v)?))
                            }
                            "tls_key_file" => {
                                l.tls_key_file = Some(PathBuf::from(as_string(key, &v)?))
                            }
                            "max_request_size" => {
                                l.max_request_size = Some(as_signed_size(key, &v)?)
                            }
                            "http_read_header_timeout" => {
                                l.http_read_header_timeout = Some(as_duration(key, &v)?)
                            }
                            "http_read_timeout" => {
                                l.http_read_timeout = Some(as_duration(key, &v)?)
                            }
                            "http_write_timeout" => {
                                l.http_write_timeout = Some(as_duration(key, &v)?)
                            }
                            "http_idle_timeout" => {
                                l.http_idle_timeout = Some(as_duration(key, &v)?)
                            }
                            "max_request_duration" => {
                                l.max_request_duration = Some(as_duration(key, &v)?)
                            }
                            "max_connections" => l.max_connections = Some(as_size(key, &v)?),
                            "cluster_address" => l.cluster_address = Some(as_string(key, &v)?),
                            "tls_min_version" => {}
                            other => {
                                return Err(invalid(format!(
                                    "listener \"tcp\": unknown key {other:?}"
                                )));
                            }
                        }
                    }
                    listener = Some(l);
                }
                "telemetry" | "seal" | "service_registration" => {
                    return Err(invalid(format!(
                        "{} blocks are not supported by lockbox; for auto-unseal use unseal_keys_file",
                        block.identifier()
                    )));
                }
                other => return Err(invalid(format!("unknown block {other:?}"))),
            }
        }
        cfg.storage = storage.ok_or_else(|| {
            invalid("missing storage block, e.g. storage \"file\" { path = \"/var/lib/lockbox\" }")
        })?;
        if let Some(l) = listener {
            cfg.listener = l;
        }
        if !cfg.listener.tls_disable
            && (cfg.listener.tls_cert_file.is_none() || cfg.listener.tls_key_file.is_none())
        {
            return Err(invalid(
                "listener \"tcp\": TLS is on but tls_cert_file and tls_key_file are not both set; set them, or set tls_disable = true to serve plain HTTP",
            ));
        }
        if cfg.default_lease_ttl > cfg.max_lease_ttl {
            return Err(invalid(
                "default_lease_ttl cannot be greater than max_lease_ttl",
            ));
        }
        Ok(cfg)
    }

    /// Where the plugin cache lives: `plugin_cache_directory`, else
    /// `<storage path>/plugin-cache` for file storage; `None` for in-memory
    /// and PostgreSQL storage without the key (the server then uses a
    /// temporary directory).
    pub fn plugin_cache_dir(&self) -> Option<PathBuf> {
        self.plugin_cache_directory
            .clone()
            .or_else(|| match &self.storage {
                StorageConfig::File { path } => Some(path.join("plugin-cache")),
                StorageConfig::InMemory | StorageConfig::Postgres(_) => None,
            })
    }

    /// The effective request size limit in bytes, `None` for no limit:
    /// the listener's `max_request_size` if set, else the top-level one;
    /// 0 means Vault's default (32 MiB), a negative number means no limit.
    pub fn request_limit(&self) -> Option<usize> {
        match self
            .listener
            .max_request_size
            .unwrap_or(self.max_request_size)
        {
            0 => Some(lockbox_http::DEFAULT_MAX_REQUEST_SIZE),
            n if n < 0 => None,
            n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        }
    }

    /// The listener's timeouts: each configured value, or Vault's default
    /// when unset or 0; the listener's `max_request_duration` wins over
    /// `default_max_request_duration`.
    pub fn listener_timeouts(&self) -> lockbox_http::Timeouts {
        use lockbox_http::conn;
        let l = &self.listener;
        lockbox_http::Timeouts {
            read_header: or_default(
                l.http_read_header_timeout,
                Some(conn::DEFAULT_READ_HEADER_TIMEOUT),
            ),
            read: or_default(l.http_read_timeout, Some(conn::DEFAULT_READ_TIMEOUT)),
            write: or_default(l.http_write_timeout, None),
            idle: or_default(l.http_idle_timeout, Some(conn::DEFAULT_IDLE_TIMEOUT)),
            max_request_duration: or_default(
                l.max_request_duration,
                or_default(
                    self.default_max_request_duration,
                    Some(conn::DEFAULT_MAX_REQUEST_DURATION),
                ),
            ),
        }
    }

    /// The listener's `max_connections`, or the default when unset or 0.
    pub fn max_connections(&self) -> usize {
        self.listener
            .max_connections
            .filter(|n| *n > 0)
            .unwrap_or(lockbox_http::conn::DEFAULT_MAX_CONNECTIONS)
    }

    /// The keys that differ between `self` (the running configuration) and
    /// `new` and that only take effect after a restart, named as in the
    /// file. What SIGHUP applies (the log level, the TLS certificate and
    /// key files including new paths, `plugin_directory`,
    /// `max_request_size`) is not listed. The listener's timeouts and
    /// `max_connections` are listed: as in Vault, listener settings apply
    /// when the server starts.
    pub fn changes_needing_restart(&self, new: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut check = |differs: bool, key: &'static str| {
            if differs {
                changed.push(key);
            }
        };
        check(
            self.listener.address != new.listener.address,
            "listener address",
        );
        check(
            self.listener.tls_disable != new.listener.tls_disable,
            "listener tls_disable",
        );
        let (old_t, new_t) = (self.listener_timeouts(), new.listener_timeouts());
        check(
            old_t.read_header != new_t.read_header,
            "listener http_read_header_timeout",
        );
        check(old_t.read != new_t.read, "listener http_read_timeout");
        check(old_t.write != new_t.write, "listener http_write_timeout");
        check(old_t.idle != new_t.idle, "listener http_idle_timeout");
        check(
            old_t.max_request_duration != new_t.max_request_duration,
            "max_request_duration",
        );
        check(
            self.max_connections() != new.max_connections(),
            "listener max_connections",
        );
        check(self.storage != new.storage, "storage");
        check(self.api_addr != new.api_addr, "api_addr");
        check(self.cluster_addr != new.cluster_addr, "cluster_addr");
        check(self.ha_enabled != new.ha_enabled, "ha_enabled");
        check(
            self.ha_seal_after != new.ha_seal_after,
            "ha_seal_after_storage_loss",
        );
        check(
            self.disable_request_forwarding != new.disable_request_forwarding,
            "disable_request_forwarding",
        );
        check(
            self.listener.cluster_address != new.listener.cluster_address,
            "listener cluster_address",
        );
        check(
            self.plugin_response_cache_size != new.plugin_response_cache_size,
            "plugin_response_cache_size",
        );
        check(self.log_format != new.log_format, "log_format");
        check(
            self.default_lease_ttl != new.default_lease_ttl,
            "default_lease_ttl",
        );
        check(self.max_lease_ttl != new.max_lease_ttl, "max_lease_ttl");
        check(
            self.unseal_keys_file != new.unseal_keys_file,
            "unseal_keys_file",
        );
        check(self.cluster_name != new.cluster_name, "cluster_name");
        check(
            self.plugin_cache_dir() != new.plugin_cache_dir(),
            "plugin_cache_directory",
        );
        check(
            self.insecure_registries != new.insecure_registries,
            "insecure_registries",
        );
        check(
            self.plugin_image_max_size != new.plugin_image_max_size,
            "plugin_image_max_size",
        );
        check(
            self.plugin_cache_max_size != new.plugin_cache_max_size,
            "plugin_cache_max_size",
        );
        check(
            self.registry_auth_file != new.registry_auth_file,
            "registry_auth_file",
        );
        changed
    }
}

#[cfg(test)]
mod tests;
