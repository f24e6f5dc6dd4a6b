//! The `storage` block: `inmem`, `file` (also Vault's `raft` name) and
//! `postgresql` (Vault's keys: `connection_url`, `table`, `max_parallel`,
//! `max_idle_connections`, `ha_enabled`, `ha_table`; lockbox's
//! `max_connect_retries`). No error here quotes `connection_url` (it holds
//! a password).

use super::{
    ConfigError, PostgresConfig, StorageConfig, as_bool, as_duration, as_string, attr_value,
    invalid,
};
use lockbox_storage_postgres::valid_table_name;
use std::path::PathBuf;
use std::time::Duration;

/// The HA keys of `storage "postgresql"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HaKeys {
    /// `ha_enabled`.
    pub enabled: bool,
    /// `ha_seal_after_storage_loss` (lockbox's own key, default 60s, 0 =
    /// never).
    pub seal_after: Option<Duration>,
}

/// Default of `ha_seal_after_storage_loss`.
pub const DEFAULT_HA_SEAL_AFTER: Duration = Duration::from_secs(60);

/// Parses `storage "<kind>" { ... }`; with its HA keys (postgresql only).
pub(super) fn parse(kind: &str, body: &hcl::Body) -> Result<(StorageConfig, HaKeys), ConfigError> {
    match kind {
        "postgresql" => {
            return postgres(body).map(|(c, ha)| (StorageConfig::Postgres(c), ha));
        }
        "inmem" | "file" | "raft" => {}
        other => {
            return Err(invalid(format!(
                "unsupported storage type {other:?}; lockbox supports \"file\" (embedded, \
                 persistent), \"postgresql\" and \"inmem\""
            )));
        }
    }
    let mut path = None;
    for attr in body.attributes() {
        match attr.key() {
            "path" => path = Some(PathBuf::from(as_string("storage.path", &attr_value(attr))?)),
            "node_id" => {}
            other => {
                return Err(invalid(format!(
                    "storage \"{kind}\": unknown key {other:?}"
                )));
            }
        }
    }
    let storage = match kind {
        "inmem" => StorageConfig::InMemory,
        _ => StorageConfig::File {
            path: path.ok_or_else(|| {
                invalid(format!("storage \"{kind}\" needs path = \"/a/data/dir\""))
            })?,
        },
    };
    Ok((
        storage,
        HaKeys {
            enabled: false,
            seal_after: None,
        },
    ))
}

fn count(key: &str, v: &hcl::Value) -> Result<u64, ConfigError> {
    let s = as_string(&format!("storage \"postgresql\": {key}"), v)?;
    s.trim().parse::<u64>().map_err(|_| {
        invalid(format!(
            "storage \"postgresql\": {key} must be a whole number, got {s:?}"
        ))
    })
}

fn postgres(body: &hcl::Body) -> Result<(PostgresConfig, HaKeys), ConfigError> {
    let mut c = PostgresConfig::default();
    let mut ha = HaKeys {
        enabled: false,
        seal_after: Some(DEFAULT_HA_SEAL_AFTER),
    };
    for attr in body.attributes() {
        let key = attr.key();
        let v = attr_value(attr);
        match key {
            "connection_url" => match v {
                hcl::Value::String(s) if !s.trim().is_empty() => c.connection_url = Some(s),
                _ => {
                    return Err(invalid(
                        "storage \"postgresql\": connection_url must be a non-empty string \
                         (or leave it out and set LOCKBOX_PG_CONNECTION_URL)",
                    ));
                }
            },
            "table" => {
                let t = as_string("storage \"postgresql\": table", &v)?;
                if !valid_table_name(&t) {
                    return Err(invalid(format!(
                        "storage \"postgresql\": table {t:?} is not a plain SQL identifier \
                         (letters, digits and _, not starting with a digit, at most 63 bytes)"
                    )));
                }
                c.table = t;
            }
            "max_parallel" => {
                let n = count(key, &v)?;
                c.max_parallel = if n == 0 {
                    lockbox_storage_postgres::DEFAULT_MAX_PARALLEL
                } else {
                    usize::try_from(n).unwrap_or(usize::MAX)
                };
            }
            "max_idle_connections" => {
                let n = count(key, &v)?;
                c.max_idle_connections = if n == 0 {
                    lockbox_storage_postgres::DEFAULT_MAX_IDLE
                } else {
                    usize::try_from(n).unwrap_or(usize::MAX)
                };
            }
            "max_connect_retries" => {
                c.max_connect_retries = u32::try_from(count(key, &v)?).map_err(|_| {
                    invalid("storage \"postgresql\": max_connect_retries is too large")
                })?;
            }
            "ha_enabled" => ha.enabled = as_bool("storage \"postgresql\": ha_enabled", &v)?,
            "ha_seal_after_storage_loss" => {
                let d = as_duration("storage \"postgresql\": ha_seal_after_storage_loss", &v)?;
                ha.seal_after = (!d.is_zero()).then_some(d);
            }
            "ha_table" => {
                let t = as_string("storage \"postgresql\": ha_table", &v)?;
                if !valid_table_name(&t) {
                    return Err(invalid(format!(
                        "storage \"postgresql\": ha_table {t:?} is not a plain SQL identifier"
                    )));
                }
                c.ha_table = Some(t);
            }
            other => {
                return Err(invalid(format!(
                    "storage \"postgresql\": unknown key {other:?}"
                )));
            }
        }
    }
    Ok((c, ha))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, StorageConfig};

    fn parse(storage: &str) -> Result<Config, String> {
        Config::parse(&format!(
            "{storage}\nlistener \"tcp\" {{\n  address = \"127.0.0.1:0\"\n  tls_disable = true\n}}\n"
        ))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn postgresql_block_is_read_with_vaults_keys() {
        let c = parse(
            r#"storage "postgresql" {
                 connection_url       = "postgres://u:hunter2@db:5432/vault?sslmode=verify-full"
                 table                = "lockbox_kv"
                 max_parallel         = "16"
                 max_idle_connections = 4
                 max_connect_retries  = "7"
                 ha_enabled           = "false"
                 ha_table             = "vault_ha_locks"
               }"#,
        )
        .expect("parse");
        let StorageConfig::Postgres(p) = &c.storage else {
            panic!("not postgres: {:?}", c.storage);
        };
        assert_eq!(
            p.connection_url.as_deref(),
            Some("postgres://u:hunter2@db:5432/vault?sslmode=verify-full")
        );
        assert_eq!(p.table, "lockbox_kv");
        assert_eq!(p.max_parallel, 16);
        assert_eq!(p.max_idle_connections, 4);
        assert_eq!(p.max_connect_retries, 7);
        assert_eq!(p.ha_table.as_deref(), Some("vault_ha_locks"));
        assert!(!c.ha_enabled);
        let c = parse("storage \"postgresql\" { ha_enabled = \"true\" }").expect("ha");
        assert!(c.ha_enabled);
        assert_eq!(c.ha_seal_after, Some(super::DEFAULT_HA_SEAL_AFTER));
        let c = parse(
            "storage \"postgresql\" {\n ha_enabled = \"true\"\n ha_seal_after_storage_loss = \"0\"\n}",
        )
        .expect("ha");
        assert_eq!(c.ha_seal_after, None);
        let c =
            parse("storage \"postgresql\" { ha_seal_after_storage_loss = \"5s\" }").expect("ha");
        assert_eq!(c.ha_seal_after, Some(std::time::Duration::from_secs(5)));
        // Debug output (the server logs configs in places) hides the password.
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.plugin_cache_dir(), None);

        // Defaults, and the URL may come from the environment later.
        let c = parse("storage \"postgresql\" {}").expect("parse");
        let StorageConfig::Postgres(p) = &c.storage else {
            panic!("not postgres");
        };
        assert_eq!(p.table, "vault_kv_store");
        assert_eq!(p.max_parallel, 128);
        assert!(p.connection_url.is_none());
    }

    #[test]
    fn postgresql_mistakes_are_refused_without_quoting_the_url() {
        let e = parse("storage \"postgresql\" { ha_enabled = \"maybe\" }").expect_err("ha");
        assert!(e.contains("ha_enabled"), "{e}");
        let e = parse("storage \"file\" {\n path = \"/x\"\n ha_enabled = \"true\"\n}")
            .expect_err("ha on file");
        assert!(e.contains("ha_enabled"), "{e}");
        let e = parse("storage \"postgresql\" { table = \"a;drop\" }").expect_err("table");
        assert!(e.contains("identifier"), "{e}");
        let e = parse("storage \"postgresql\" { max_parallel = \"many\" }").expect_err("n");
        assert!(e.contains("max_parallel"), "{e}");
        let e = parse(
            "storage \"postgresql\" {\n connection_url = \"postgres://u:pw@h/db\"\n bogus = 1\n}",
        )
        .expect_err("unknown key");
        assert!(e.contains("bogus") && !e.contains("pw@"), "{e}");
        let e = parse("storage \"postgresql\" { connection_url = 5 }").expect_err("type");
        assert!(e.contains("connection_url"), "{e}");
        let e = parse("storage \"mysql\" {}").expect_err("type");
        assert!(e.contains("\"postgresql\""), "{e}");
    }
}
