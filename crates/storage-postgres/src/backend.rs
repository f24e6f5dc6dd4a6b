//! [`PostgresBackend`]: opening (URL, TLS plan, retries, schema) and the
//! [`Physical`] operations as prepared statements on pooled connections.
//!
//! Every operation is one statement, so each is atomic on its own:
//! `put` is an upsert, `delete_prefix` one `DELETE` (its own transaction)
//! that returns how many rows it removed. An operation that finds its
//! connection closed by the server (a restart) is tried once more on a
//! fresh connection; all of them are idempotent.

use crate::ha::Fence;
use crate::keys::{self, like_prefix, list_path};
use crate::pool::{Lease, Pool, Target};
use crate::redact::{Scrubber, message, redact_url};
use crate::{PostgresConfig, PostgresError, URL_ENV, schema, valid_table_name};
use async_trait::async_trait;
use lockbox_storage::{Physical, StorageError, TxnOp};
use std::sync::OnceLock;
use tokio_postgres::config::Host;

/// PostgreSQL storage in Vault's table layout. See the crate docs.
pub struct PostgresBackend {
    pub(crate) pool: Pool,
    /// Set by `enable_ha`: writes are fenced by the leadership's term.
    pub(crate) ha: OnceLock<Fence>,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("url", &self.pool.target().redacted_url)
            .finish_non_exhaustive()
    }
}

/// The connection URL: [`URL_ENV`] (first set wins), else the file's.
pub fn resolve_url(
    config: &PostgresConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    URL_ENV
        .iter()
        .find_map(|name| env(name).filter(|v| !v.trim().is_empty()))
        .or_else(|| config.connection_url.clone())
}

fn target_name(config: &tokio_postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(Host::Tcp(h)) => format!("{h}:{port}"),
        Some(Host::Unix(dir)) => format!("{}/.s.PGSQL.{port}", dir.display()),
        None => format!("localhost:{port}"),
    }
}

impl PostgresBackend {
    /// Connects to `url` (already resolved, see [`resolve_url`]) with
    /// `config`'s settings: retries while the server is unreachable (a log
    /// line each time), refuses a wrong login at once, creates the table
    /// when missing and refuses one that is not Vault's layout.
    pub async fn open(url: &str, config: &PostgresConfig) -> Result<Self, PostgresError> {
        if !valid_table_name(&config.table) {
            return Err(PostgresError::Config(format!(
                "table {:?} is not a plain SQL identifier (letters, digits and _, not starting \
                 with a digit, at most 63 bytes)",
                config.table
            )));
        }
        let redacted_url = redact_url(url);
        let plan = lockbox_pg_tls::plan(url, lockbox_pg_tls::Pem::default())?;
        let pg_config: tokio_postgres::Config = plan.url.parse().map_err(|e| {
            PostgresError::Config(format!(
                "connection_url {redacted_url} is not a PostgreSQL URL or key=value string: {e}"
            ))
        })?;
        let scrub = Scrubber::new(pg_config.get_password());
        let target = Target {
            name: target_name(&pg_config),
            user: pg_config.get_user().unwrap_or("").to_string(),
            config: pg_config,
            plan,
            redacted_url: scrub.scrub(&redacted_url),
            scrub,
        };
        tracing::info!(
            "PostgreSQL storage: connecting to {} ({}), sslmode={}, table {}",
            target.name,
            target.redacted_url,
            target.plan.mode.name(),
            config.table
        );
        let client = target
            .connect_with_retries(config.max_connect_retries)
            .await?;
        schema::ensure(&client, &config.table, &target.scrub).await?;
        let pool = Pool::new(
            target,
            config.table.clone(),
            config.max_parallel,
            config.max_idle_connections.max(1),
        );
        pool.adopt(client).await?;
        Ok(PostgresBackend {
            pool,
            ha: OnceLock::new(),
        })
    }

    /// The connection URL with its password masked.
    pub fn redacted_url(&self) -> &str {
        &self.pool.target().redacted_url
    }

    /// A pooled connection for `operation` on `key`.
    async fn lease(&self, operation: &'static str, key: &str) -> Result<Lease, StorageError> {
        self.pool.get().await.map_err(|e| engine(operation, key, e))
    }

    /// Gives `lease` back and turns `result` into the answer: `Ok(None)`
    /// when the statement failed because the server closed the connection
    /// and this was the first try (the caller tries once more, on a fresh
    /// connection).
    fn finish<T>(
        &self,
        lease: Lease,
        result: Result<T, tokio_postgres::Error>,
        operation: &'static str,
        key: &str,
        first_try: bool,
    ) -> Result<Option<T>, StorageError> {
        let closed = lease.conn.client.is_closed();
        self.pool.put_back(lease);
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) if closed && first_try => {
                tracing::warn!(
                    "PostgreSQL storage {operation}: the connection was closed ({}); retrying on \
                     a new one",
                    message(&e, &self.pool.target().scrub)
                );
                Ok(None)
            }
            Err(e) => {
                let err = PostgresError::Query {
                    operation,
                    message: message(&e, &self.pool.target().scrub),
                };
                Err(engine(operation, key, err))
            }
        }
    }
}

/// Runs `$body` (an expression using the connection `$c`) through
/// `lease`/`finish`: at most two tries, the second only after the server
/// closed the first connection.
macro_rules! with_conn {
    ($self:ident, $op:literal, $key:expr, |$c:ident| $body:expr) => {{
        let mut first_try = true;
        loop {
            let lease = $self.lease($op, $key).await?;
            let result = {
                let $c = &lease.conn;
                $body
            };
            if let Some(v) = $self.finish(lease, result, $op, $key, first_try)? {
                break Ok(v);
            }
            first_try = false;
        }
    }};
}

fn engine(operation: &'static str, key: &str, e: PostgresError) -> StorageError {
    StorageError::Engine {
        operation,
        key: key.to_string(),
        source: Box::new(e),
    }
}

/// A fenced delete's answer (fence rows, deleted rows): no fence row means
/// the term changed (refused), else the number deleted.
fn fenced_count(
    fence: &Fence,
    term: i64,
    operation: &'static str,
    key: &str,
    counts: &tokio_postgres::Row,
) -> Result<usize, StorageError> {
    let read = |i: usize| {
        counts.try_get::<_, i64>(i).map_err(|e| {
            engine(
                operation,
                key,
                PostgresError::Query {
                    operation,
                    message: format!("unexpected answer to the fenced {operation}: {e}"),
                },
            )
        })
    };
    if read(0)? == 0 {
        return Err(fence.refused(term, operation, key));
    }
    Ok(usize::try_from(read(1)?).unwrap_or(usize::MAX))
}

#[async_trait]
impl Physical for PostgresBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let row = keys::split(key);
        with_conn!(self, "get", key, |c| c
            .client
            .query(&c.stmts.get, &[&row.path, &row.key])
            .await
            .map(|rows| rows.first().map(|r| r.get::<_, Vec<u8>>(0))))
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        let row = keys::split(key);
        let Some(fence) = self.ha.get() else {
            return with_conn!(self, "put", key, |c| c
                .client
                .execute(
                    &c.stmts.put,
                    &[&row.parent_path, &row.path, &row.key, &value]
                )
                .await
                .map(|_| ()));
        };
        if fence.announce.key(key) {
            // In a transaction with its announcement (sent at commit).
            return self
                .transaction(vec![TxnOp::Put {
                    key: key.to_string(),
                    value,
                }])
                .await;
        }
        let term = fence.write_term("put", key)?;
        let written: u64 = with_conn!(self, "put", key, |c| async {
            let s = c.fenced(&fence.texts).await?;
            c.client
                .execute(
                    &s.put,
                    &[&row.parent_path, &row.path, &row.key, &value, &term],
                )
                .await
        }
        .await)?;
        if written == 0 {
            return Err(fence.refused(term, "put", key));
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let row = keys::split(key);
        let Some(fence) = self.ha.get() else {
            return with_conn!(self, "delete", key, |c| c
                .client
                .execute(&c.stmts.delete, &[&row.path, &row.key])
                .await
                .map(|_| ()));
        };
        if fence.announce.key(key) {
            return self
                .transaction(vec![TxnOp::Delete {
                    key: key.to_string(),
                }])
                .await;
        }
        let term = fence.write_term("delete", key)?;
        let counts = with_conn!(self, "delete", key, |c| async {
            let s = c.fenced(&fence.texts).await?;
            c.client
                .query_one(&s.delete, &[&row.path, &row.key, &term])
                .await
        }
        .await)?;
        fenced_count(fence, term, "delete", key, &counts).map(|_| ())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let path = list_path(prefix);
        let pattern = like_prefix(&path);
        let rows: Vec<tokio_postgres::Row> = with_conn!(self, "list", prefix, |c| c
            .client
            .query(&c.stmts.list, &[&path, &pattern])
            .await)?;
        let mut out: Vec<String> = rows
            .iter()
            .filter_map(|r| r.get::<_, Option<String>>(0))
            .filter(|s| !s.is_empty())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<usize, StorageError> {
        let pattern = like_prefix(prefix);
        let Some(fence) = self.ha.get() else {
            let n: u64 = with_conn!(self, "delete_prefix", prefix, |c| c
                .client
                .execute(&c.stmts.delete_prefix, &[&pattern])
                .await)?;
            return Ok(usize::try_from(n).unwrap_or(usize::MAX));
        };
        let term = fence.write_term("delete_prefix", prefix)?;
        let counts = with_conn!(self, "delete_prefix", prefix, |c| async {
            let s = c.fenced(&fence.texts).await?;
            c.client
                .query_one(&s.delete_prefix, &[&pattern, &term])
                .await
        }
        .await)?;
        let removed = fenced_count(fence, term, "delete_prefix", prefix, &counts)?;
        // Announced whatever the count: a retried delete finds nothing left.
        if fence.announce.prefix(prefix) {
            // After the commit: "anything under a cached prefix changed".
            // A failure is only logged: the delete is committed; standbys
            // see the change at their next reconnection at the latest.
            let channel = fence.announce.channel.as_str();
            let sent: Result<u64, StorageError> = with_conn!(self, "delete_prefix", prefix, |c| c
                .client
                .execute("SELECT pg_notify($1, '')", &[&channel])
                .await);
            if let Err(e) = sent {
                tracing::warn!("PostgreSQL HA: the deletion under {prefix} was not announced: {e}");
            }
        }
        Ok(removed)
    }

    /// One PostgreSQL transaction; with HA, its first statement checks
    /// the term under `FOR SHARE` (held to the commit), so a new active
    /// node's term bump waits for it, and a transaction of an old term
    /// writes nothing.
    async fn transaction(&self, ops: Vec<TxnOp>) -> Result<(), StorageError> {
        let Some(first) = ops.first().map(|o| o.key().to_string()) else {
            return Ok(());
        };
        let fence = self.ha.get();
        let term = match fence {
            Some(f) => Some(f.write_term("transaction", &first)?),
            None => None,
        };
        let announced: Vec<&str> = match fence {
            Some(f) => ops
                .iter()
                .map(TxnOp::key)
                .filter(|k| f.announce.key(k))
                .map(crate::ha::payload)
                .collect(),
            None => Vec::new(),
        };
        let committed: bool = with_conn!(self, "transaction", &first, |c| {
            let check = fence.zip(term).map(|(f, t)| (f.texts.check.as_str(), t));
            let announce = fence
                .filter(|_| !announced.is_empty())
                .map(|f| (f.announce.channel.as_str(), announced.as_slice()));
            in_transaction(c, &ops, check, announce).await
        })?;
        match (committed, fence, term) {
            (false, Some(f), Some(t)) => Err(f.refused(t, "transaction", &first)),
            _ => Ok(()),
        }
    }

    fn kind(&self) -> &'static str {
        "postgresql"
    }
}

/// Runs `ops` between `BEGIN` and `COMMIT` on `c`; `false` (rolled back,
/// nothing written) when `check` (the fence query and term) finds another
/// term. `announce` (channel, payloads): notifications sent with the
/// commit. An error rolls back too; a cancelled call drops the connection
/// (the pool takes back only connections whose call finished).
async fn in_transaction(
    c: &crate::pool::Conn,
    ops: &[TxnOp],
    check: Option<(&str, i64)>,
    announce: Option<(&str, &[&str])>,
) -> Result<bool, tokio_postgres::Error> {
    c.client.batch_execute("BEGIN").await?;
    let body = async {
        if let Some((sql, term)) = check
            && c.client.query(sql, &[&term]).await?.is_empty()
        {
            return Ok(false);
        }
        for op in ops {
            match op {
                TxnOp::Put { key, value } => {
                    let row = keys::split(key);
                    c.client
                        .execute(
                            &c.stmts.put,
                            &[&row.parent_path, &row.path, &row.key, value],
                        )
                        .await?;
                }
                TxnOp::Delete { key } => {
                    let row = keys::split(key);
                    c.client
                        .execute(&c.stmts.delete, &[&row.path, &row.key])
                        .await?;
                }
            }
        }
        if let Some((channel, payloads)) = announce {
            for payload in payloads {
                c.client
                    .execute("SELECT pg_notify($1, $2)", &[&channel, payload])
                    .await?;
            }
        }
        Ok(true)
    };
    match body.await {
        Ok(true) => c.client.batch_execute("COMMIT").await.map(|()| true),
        Ok(false) => c.client.batch_execute("ROLLBACK").await.map(|()| false),
        Err(e) => {
            let _ = c.client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}
