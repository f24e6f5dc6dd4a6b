//! PostgreSQL physical storage (`storage "postgresql"`), in Vault's table
//! layout so a team can point lockbox at the schema it already knows.
//!
//! ```text
//!  Physical::put("a/b/c", v)
//!        │  keys::split: parent_path "/a/", path "/a/b/", key "c"
//!        ▼
//!  pool::Pool ── at most max_parallel connections, max_idle kept ──▶ PostgreSQL
//!   (each connection: TLS per sslmode (lockbox-pg-tls), statements prepared once)
//!        ▼
//!  vault_kv_store (parent_path, path, key, value BYTEA, PRIMARY KEY (path, key))
//! ```
//!
//! This crate owns [`PostgresConfig`] (the `storage "postgresql"` block),
//! [`PostgresBackend`] (the [`Physical`] implementation), the schema check
//! (`schema`: the table is created with its index when missing, a table
//! with other columns is refused), the pool and the startup retries
//! (`pool`), the statements' SQL (`statements`), the key layout (`keys`) and the redaction of the connection
//! URL's password (`redact`, [`redact_url`]): no log line or error of this
//! crate contains it.
//!
//! High availability (`ha`, [`PostgresBackend::enable_ha`]): nodes sharing
//! the database elect one active node with a session advisory lock on a
//! dedicated connection (TCP keepalives on); the active node heartbeats in
//! its own HA table (`ha_table`, default [`DEFAULT_HA_TABLE`]; not Vault's
//! `vault_ha_locks`), and a standby that sees the heartbeat older than
//! `stale_after` by the database clock ends the holder's session
//! (`pg_terminate_backend`) and takes over. Each takeover bumps a term;
//! every write of the active node checks its term in the same statement
//! under `FOR SHARE`, so once a new term is committed no write of an older
//! one commits, and a standby's writes are refused
//! ([`lockbox_storage::StorageError::Fenced`]). Reads are never fenced.
//!
//! Like every backend it sees only ciphertext (and the non-secret seal
//! configuration): the core's barrier encrypts before it stores.

mod backend;
mod ha;
mod keys;
mod pool;
mod redact;
mod schema;
mod statements;

pub use backend::{PostgresBackend, resolve_url};
pub use ha::{
    Change, DEFAULT_HA_TABLE, HaConfig, Held, LeaderRecord, Leadership, LostReason, MEMBER_WINDOW,
    Member, changes_channel, ha_ddl, lock_key,
};
pub use redact::redact_url;

use lockbox_storage::StorageError;
use std::time::Duration;

/// Vault's default table name.
pub const DEFAULT_TABLE: &str = "vault_kv_store";
/// Vault's default `max_parallel`: connections open at once.
pub const DEFAULT_MAX_PARALLEL: usize = 128;
/// Idle connections kept when `max_idle_connections` is unset or 0. Not
/// Vault's (Go's `database/sql` default of 2): with more than 2 requests at
/// once that opens and closes a connection per request, which the `ha`
/// benchmark measured at 2-6x less throughput (BENCHMARKS.md).
pub const DEFAULT_MAX_IDLE: usize = 32;
/// Connection attempts after the first one at startup.
pub const DEFAULT_MAX_CONNECT_RETRIES: u32 = 5;
/// The environment variables that may hold the connection URL (they win
/// over the file's `connection_url`, as Vault's `VAULT_PG_CONNECTION_URL`).
pub const URL_ENV: [&str; 2] = ["LOCKBOX_PG_CONNECTION_URL", "VAULT_PG_CONNECTION_URL"];

/// The `storage "postgresql"` block.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `connection_url`: a `postgres[ql]://` URL or libpq's `key=value`
    /// form, with `sslmode`, `sslrootcert`, `sslcert`, `sslkey`. `None`
    /// when it comes from [`URL_ENV`]. Holds a password: never print it
    /// (the `Debug` output redacts it).
    pub connection_url: Option<String>,
    /// `table`: an identifier (letters, digits, `_`).
    pub table: String,
    /// `max_parallel`: connections open at once.
    pub max_parallel: usize,
    /// `max_idle_connections`: idle connections kept open.
    pub max_idle_connections: usize,
    /// `max_connect_retries`: attempts after the first at startup.
    pub max_connect_retries: u32,
    /// `ha_table`: the high availability table (see [`HaConfig::table`]).
    pub ha_table: Option<String>,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            connection_url: None,
            table: DEFAULT_TABLE.to_string(),
            max_parallel: DEFAULT_MAX_PARALLEL,
            max_idle_connections: DEFAULT_MAX_IDLE,
            max_connect_retries: DEFAULT_MAX_CONNECT_RETRIES,
            ha_table: None,
        }
    }
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field(
                "connection_url",
                &self.connection_url.as_deref().map(redact_url),
            )
            .field("table", &self.table)
            .field("max_parallel", &self.max_parallel)
            .field("max_idle_connections", &self.max_idle_connections)
            .field("max_connect_retries", &self.max_connect_retries)
            .field("ha_table", &self.ha_table)
            .finish()
    }
}

/// Whether `name` may be used as a table name: an SQL identifier of
/// letters, digits and `_` (not starting with a digit), at most 63 bytes
/// (PostgreSQL's limit).
pub fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

/// What went wrong opening or using PostgreSQL storage. No variant holds
/// the connection URL's password: URLs are redacted, and server messages
/// have the password cut out.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The settings are wrong (no URL, a URL that does not parse, a bad
    /// table name).
    #[error("storage \"postgresql\": {0}")]
    Config(String),
    /// The TLS parameters of the URL are wrong.
    #[error("storage \"postgresql\": {0}")]
    Tls(#[from] lockbox_pg_tls::TlsError),
    /// No connection could be made after every retry.
    #[error(
        "cannot reach PostgreSQL at {target} after {attempts} attempt(s): {last}; check that \
         the server is running and listens on {target} (listen_addresses, port), that no \
         firewall is in the way, and the host and port in connection_url \
         ({url}); raise max_connect_retries to wait longer"
    )]
    Unreachable {
        /// `host:port` (or the socket directory).
        target: String,
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: String,
        /// The connection URL, redacted.
        url: String,
    },
    /// The server refused the login: wrong user or password, or no
    /// pg_hba.conf entry for this host. Not retried.
    #[error(
        "PostgreSQL at {target} refused the login of user {user:?}: {message}; check the user \
         and password in connection_url (or {env}) and pg_hba.conf",
        env = URL_ENV.join(" / ")
    )]
    Login {
        /// `host:port`.
        target: String,
        /// The user name from the URL.
        user: String,
        /// PostgreSQL's message.
        message: String,
    },
    /// The server answered, but the connection cannot be used (the
    /// database does not exist, TLS failed, ...). Not retried.
    #[error("cannot connect to PostgreSQL at {target}: {message}")]
    Connect {
        /// `host:port`.
        target: String,
        /// What failed.
        message: String,
    },
    /// The table exists with other columns than Vault's layout, or cannot
    /// be created.
    #[error("storage \"postgresql\": table {table:?}: {problem}")]
    Schema {
        /// The table name.
        table: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// A statement failed.
    #[error("PostgreSQL {operation} failed: {message}")]
    Query {
        /// What was being done.
        operation: &'static str,
        /// PostgreSQL's message (password cut out).
        message: String,
    },
}

impl PostgresError {
    /// As the storage layer's error for a failed open, naming the
    /// (redacted) URL.
    pub fn into_open_error(self, redacted_url: &str) -> StorageError {
        StorageError::Open {
            path: format!("postgresql {redacted_url}"),
            source: Box::new(self),
        }
    }
}

/// How long one connection attempt may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_identifiers() {
        for ok in ["vault_kv_store", "_t", "T1"] {
            assert!(valid_table_name(ok), "{ok}");
        }
        for bad in ["", "1t", "a-b", "a.b", "a b", "t\"; drop", &"x".repeat(64)] {
            assert!(!valid_table_name(bad), "{bad}");
        }
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let c = PostgresConfig {
            connection_url: Some("postgres://u:hunter2secret@h:5432/db".to_string()),
            ..PostgresConfig::default()
        };
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2secret"), "{text}");
        assert!(text.contains("h:5432"), "{text}");
    }
}
