//! Connections: the attempts `sslmode` calls for (lockbox-pg-tls), the startup
//! retries with backoff, and a small bounded pool.
//!
//! The pool lets at most `max_parallel` connections exist at once (a
//! semaphore permit travels with each), keeps at most
//! `max_idle_connections` of them when they are given back, and drops a
//! connection the server closed. Each connection prepares the backend's
//! statements once, when it is made (the fenced writes of high
//! availability at their first use).

use crate::ha::FencedTexts;
use crate::redact::{Scrubber, message};
use crate::{CONNECT_TIMEOUT, PostgresError};
use lockbox_pg_tls::{Plan, SslMode, is_certificate_error};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};

/// The statements every connection prepares (texts in `statements`).
pub(crate) struct Statements {
    pub get: Statement,
    pub put: Statement,
    pub delete: Statement,
    pub list: Statement,
    pub delete_prefix: Statement,
}

/// One connection and its prepared statements.
pub(crate) struct Conn {
    pub client: Client,
    pub stmts: Statements,
    /// The fenced writes (high availability), prepared at their first use.
    fenced: OnceCell<FencedStatements>,
}

/// The fenced writes' statements (texts in `ha::sql`).
pub(crate) struct FencedStatements {
    pub put: Statement,
    pub delete: Statement,
    pub delete_prefix: Statement,
}

impl Conn {
    /// The fenced writes, prepared on this connection once.
    pub(crate) async fn fenced(
        &self,
        texts: &FencedTexts,
    ) -> Result<&FencedStatements, tokio_postgres::Error> {
        self.fenced
            .get_or_try_init(|| async {
                Ok(FencedStatements {
                    put: self.client.prepare(&texts.put).await?,
                    delete: self.client.prepare(&texts.delete).await?,
                    delete_prefix: self.client.prepare(&texts.delete_prefix).await?,
                })
            })
            .await
    }
}

/// How to reach the server, with what is safe to show about it.
pub(crate) struct Target {
    pub config: tokio_postgres::Config,
    pub plan: Plan,
    /// `host:port` for messages.
    pub name: String,
    /// The user name for messages.
    pub user: String,
    /// The URL, redacted.
    pub redacted_url: String,
    pub scrub: Scrubber,
}

/// What one connection attempt ended with.
enum Failure {
    /// Worth retrying: nothing answered, or the server is starting up.
    Transient(String),
    /// Retrying will not help.
    Fatal(PostgresError),
}

impl Target {
    fn classify(&self, e: &tokio_postgres::Error) -> Failure {
        let text = message(e, &self.scrub);
        if self.plan.mode == SslMode::Disable && text.contains("no encryption") {
            return Failure::Fatal(PostgresError::Connect {
                target: self.name.clone(),
                message: format!(
                    "{text} (the server accepts only TLS connections: use sslmode=verify-full \
                     with sslrootcert, or sslmode=require)"
                ),
            });
        }
        match e.code() {
            Some(c)
                if *c == SqlState::INVALID_PASSWORD
                    || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
            {
                Failure::Fatal(PostgresError::Login {
                    target: self.name.clone(),
                    user: self.user.clone(),
                    message: text,
                })
            }
            Some(c)
                if *c == SqlState::CANNOT_CONNECT_NOW || *c == SqlState::TOO_MANY_CONNECTIONS =>
            {
                Failure::Transient(text)
            }
            Some(_) => Failure::Fatal(PostgresError::Connect {
                target: self.name.clone(),
                message: text,
            }),
            None if is_certificate_error(e) => Failure::Fatal(PostgresError::Connect {
                target: self.name.clone(),
                message: format!(
                    "{text} (TLS certificate verification failed with sslmode={}: give the CA \
                     that signed the server's certificate in sslrootcert)",
                    self.plan.mode.name()
                ),
            }),
            None => Failure::Transient(text),
        }
    }

    /// One connection as `sslmode` says (`prefer`: TLS, then plain;
    /// `allow`: plain, then TLS); a failure is classified by the last
    /// attempt's error.
    async fn connect_once(&self) -> Result<Client, Failure> {
        self.connect_with(self.config.clone(), None).await
    }

    /// A connection outside the pool for the high availability lock: TCP
    /// keepalives on (idle 5 s), so a vanished peer is noticed by both
    /// sides. One attempt, no retries (the caller retries with backoff).
    pub(crate) async fn connect_dedicated(&self) -> Result<Client, PostgresError> {
        self.dedicated(None).await
    }

    /// [`Target::connect_dedicated`], its notifications (`LISTEN`) sent to
    /// `notifications` (dropped when the connection ends).
    pub(crate) async fn connect_listening(
        &self,
        notifications: tokio::sync::mpsc::UnboundedSender<tokio_postgres::Notification>,
    ) -> Result<Client, PostgresError> {
        self.dedicated(Some(notifications)).await
    }

    async fn dedicated(
        &self,
        notifications: Option<tokio::sync::mpsc::UnboundedSender<tokio_postgres::Notification>>,
    ) -> Result<Client, PostgresError> {
        let mut config = self.config.clone();
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(5));
        config.keepalives_interval(Duration::from_secs(1));
        config.keepalives_retries(3);
        match self.connect_with(config, notifications).await {
            Ok(c) => Ok(c),
            Err(Failure::Fatal(e)) => Err(e),
            Err(Failure::Transient(m)) => Err(PostgresError::Connect {
                target: self.name.clone(),
                message: m,
            }),
        }
    }

    async fn connect_with(
        &self,
        mut config: tokio_postgres::Config,
        notifications: Option<tokio::sync::mpsc::UnboundedSender<tokio_postgres::Notification>>,
    ) -> Result<Client, Failure> {
        config.connect_timeout(CONNECT_TIMEOUT);
        let scrub = self.scrub.clone();
        let report = move |e: tokio_postgres::Error| {
            tracing::warn!(
                "PostgreSQL storage connection closed: {}",
                message(&e, &scrub)
            );
        };
        match notifications {
            None => lockbox_pg_tls::connect(&config, &self.plan, report).await,
            Some(tx) => lockbox_pg_tls::connect_listening(&config, &self.plan, report, tx).await,
        }
        .map_err(|f| self.classify(&f.last().error))
    }

    /// Connects, retrying up to `retries` times with a doubling delay
    /// (0.5 s up to 10 s) while nothing answers; a refused login or any
    /// other answer from the server ends at once.
    pub(crate) async fn connect_with_retries(&self, retries: u32) -> Result<Client, PostgresError> {
        let mut delay = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.connect_once().await {
                Ok(c) => return Ok(c),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(last)) if attempt > retries => {
                    return Err(PostgresError::Unreachable {
                        target: self.name.clone(),
                        attempts: attempt,
                        last,
                        url: self.redacted_url.clone(),
                    });
                }
                Err(Failure::Transient(last)) => {
                    tracing::warn!(
                        "PostgreSQL storage at {} ({}) not reachable (attempt {attempt} of {}): \
                         {last}; retrying in {delay:?}",
                        self.name,
                        self.redacted_url,
                        retries + 1,
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// The bounded pool.
pub(crate) struct Pool {
    target: Arc<Target>,
    table: String,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
}

/// A connection taken from the pool; given back with [`Pool::put_back`].
pub(crate) struct Lease {
    pub conn: Conn,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub(crate) fn new(target: Target, table: String, max_parallel: usize, max_idle: usize) -> Self {
        Pool {
            target: Arc::new(target),
            table,
            permits: Arc::new(Semaphore::new(max_parallel.max(1))),
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// The storage table's name.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// Prepares the statements on `client` and keeps it as an idle
    /// connection.
    pub(crate) async fn adopt(&self, client: Client) -> Result<(), PostgresError> {
        let conn = self.prepare(client).await?;
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        Ok(())
    }

    async fn prepare(&self, client: Client) -> Result<Conn, PostgresError> {
        let texts = crate::statements::statements(&self.table);
        let prep = |sql: String| {
            let client = &client;
            async move {
                client
                    .prepare(&sql)
                    .await
                    .map_err(|e| PostgresError::Query {
                        operation: "prepare",
                        message: message(&e, &self.target.scrub),
                    })
            }
        };
        let stmts = Statements {
            get: prep(texts.get).await?,
            put: prep(texts.put).await?,
            delete: prep(texts.delete).await?,
            list: prep(texts.list).await?,
            delete_prefix: prep(texts.delete_prefix).await?,
        };
        Ok(Conn {
            client,
            stmts,
            fenced: OnceCell::new(),
        })
    }

    /// An open connection: an idle one, else a new one (one attempt, no
    /// retries: a request should fail fast while the database is away).
    /// Waits while `max_parallel` connections are in use.
    pub(crate) async fn get(&self) -> Result<Lease, PostgresError> {
        let permit =
            self.permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| PostgresError::Query {
                    operation: "connect",
                    message: "the connection pool is closed".to_string(),
                })?;
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match idle {
                Some(conn) if conn.client.is_closed() => continue,
                Some(conn) => {
                    return Ok(Lease {
                        conn,
                        _permit: permit,
                    });
                }
                None => break,
            }
        }
        let client = match self.target.connect_once().await {
            Ok(c) => c,
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient(m)) => {
                return Err(PostgresError::Connect {
                    target: self.target.name.clone(),
                    message: m,
                });
            }
        };
        Ok(Lease {
            conn: self.prepare(client).await?,
            _permit: permit,
        })
    }

    /// Gives a connection back: kept if open and fewer than
    /// `max_idle_connections` are idle, else closed.
    pub(crate) fn put_back(&self, lease: Lease) {
        if lease.conn.client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(lease.conn);
        }
    }
}
