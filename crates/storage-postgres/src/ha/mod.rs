//! High availability on PostgreSQL: which node is active, and fencing so
//! that only its writes land.
//!
//! ```text
//!  node A (active)                       PostgreSQL                      node B (standby)
//!  lock connection ── pg_try_advisory_lock(key) ✓     ◀── pg_try_advisory_lock(key) ✗ every poll
//!    heartbeat row  ◀─ UPDATE every heartbeat             reads heartbeat age (DB clock) + holder pid;
//!  pool: writes  ── WITH fence (term = A's, FOR SHARE)      older than stale_after: pg_terminate_backend
//!                                                        then lock ✓, term = term + 1, fenced writes
//! ```
//!
//! This module owns [`HaConfig`], [`PostgresBackend::enable_ha`],
//! [`Leadership`] (waiting for and reading the leadership), [`Held`] (the
//! leadership while held: its term, its loss, stepping down) and
//! [`LostReason`]. `sql` holds the table layout and statements, `fence` the
//! backend's write state, `lock` the lock connection (campaign, heartbeat),
//! `changes` the announcements of writes to the other nodes
//! (`LISTEN/NOTIFY`, [`Leadership::changes`]).
//!
//! The table (`ha_table`, default [`DEFAULT_HA_TABLE`]) is lockbox's own;
//! Vault's `vault_ha_locks` (a TTL lock) is not used.

mod changes;
mod fence;
mod lock;
mod members;
mod sql;

pub(crate) use changes::{Announce, payload};
pub use changes::{Change, changes_channel};
pub(crate) use fence::Fence;
pub use members::{MEMBER_WINDOW, Member};
pub(crate) use sql::FencedTexts;
pub use sql::{ha_ddl, lock_key};

use crate::redact::Scrubber;
use crate::{PostgresBackend, PostgresError, valid_table_name};
use lock::Campaign;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// The default `ha_table`.
pub const DEFAULT_HA_TABLE: &str = "lockbox_ha_leader";

/// How one node takes part in high availability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// The `ha_table` key (a plain identifier).
    pub table: String,
    /// Unique per process.
    pub node_id: String,
    /// Published for standbys (redirects, `sys/leader`).
    pub api_addr: String,
    /// Published for standbys (request forwarding).
    pub cluster_addr: String,
    /// How often the active node refreshes its heartbeat (default 200 ms).
    pub heartbeat: Duration,
    /// A heartbeat older than this (by the database clock) makes a
    /// waiting standby end the holder's session (default 2 s).
    pub stale_after: Duration,
    /// How often a standby tries the lock (default 100 ms).
    pub poll: Duration,
    /// Writes of keys under these prefixes are announced to the other
    /// nodes (`changes`: what a standby caches); default none.
    pub announce: Vec<String>,
}

impl HaConfig {
    /// The defaults, with [`DEFAULT_HA_TABLE`].
    pub fn new(
        node_id: impl Into<String>,
        api_addr: impl Into<String>,
        cluster_addr: impl Into<String>,
    ) -> Self {
        HaConfig {
            table: DEFAULT_HA_TABLE.to_string(),
            node_id: node_id.into(),
            api_addr: api_addr.into(),
            cluster_addr: cluster_addr.into(),
            heartbeat: Duration::from_millis(200),
            stale_after: Duration::from_secs(2),
            poll: Duration::from_millis(100),
            announce: Vec::new(),
        }
    }
}

/// The leader as recorded in the HA table.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderRecord {
    /// The term of its leadership (grows by one per takeover).
    pub term: u64,
    /// Its `node_id`.
    pub node_id: String,
    /// Its `api_addr`.
    pub api_addr: String,
    /// Its `cluster_addr`.
    pub cluster_addr: String,
    /// When it became active (database clock).
    pub active_since: SystemTime,
    /// How old its last heartbeat is (database clock).
    pub heartbeat_age: Duration,
    /// Whether any node holds the lock now (false: the recorded leader is
    /// gone and nobody took over yet).
    pub lock_held: bool,
}

/// Why a held leadership ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostReason {
    /// The lock connection failed (the server restarted, the session was
    /// terminated, the network broke): the lock is gone with it.
    ConnectionLost(String),
    /// Another node's term is recorded: it took over.
    Superseded {
        /// The term found.
        term: u64,
    },
    /// A write was refused because the term changed.
    WriteFenced,
}

impl std::fmt::Display for LostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LostReason::ConnectionLost(m) => write!(f, "the lock connection was lost: {m}"),
            LostReason::Superseded { term } => write!(f, "another node took over (term {term})"),
            LostReason::WriteFenced => write!(f, "a write was refused: the term changed"),
        }
    }
}

/// What the campaign and the heartbeat share.
pub(crate) struct Shared {
    pub(crate) backend: Arc<PostgresBackend>,
    pub(crate) config: HaConfig,
    pub(crate) key: i64,
    pub(crate) texts: sql::HaTexts,
}

impl Shared {
    pub(crate) fn scrub(&self) -> &Scrubber {
        &self.backend.pool.target().scrub
    }

    pub(crate) fn fence(&self) -> Option<&Fence> {
        self.backend.ha.get()
    }
}

/// Taking part in the leadership election of one HA table.
#[derive(Clone)]
pub struct Leadership {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("table", &self.shared.config.table)
            .field("node_id", &self.shared.config.node_id)
            .finish_non_exhaustive()
    }
}

impl PostgresBackend {
    /// Creates/checks the HA table and switches the backend to HA writes:
    /// from now on writes (put, delete, delete_prefix) are refused with
    /// `StorageError::Fenced` ("this node is a standby ...") unless this
    /// node holds leadership. Called once per backend.
    pub async fn enable_ha(
        self: &Arc<Self>,
        config: HaConfig,
    ) -> Result<Leadership, PostgresError> {
        if !valid_table_name(&config.table) {
            return Err(PostgresError::Config(format!(
                "ha_table {:?} is not a plain SQL identifier (letters, digits and _, not \
                 starting with a digit, at most 63 bytes)",
                config.table
            )));
        }
        if config.table == self.pool.table() {
            return Err(PostgresError::Config(format!(
                "ha_table {:?} is the storage table: give the HA table another name",
                config.table
            )));
        }
        if config.node_id.is_empty() {
            return Err(PostgresError::Config(
                "high availability needs a node id unique per process".to_string(),
            ));
        }
        if config.heartbeat.is_zero() || config.stale_after.is_zero() || config.poll.is_zero() {
            return Err(PostgresError::Config(
                "high availability heartbeat, stale_after and poll must be longer than 0"
                    .to_string(),
            ));
        }
        let lease = self.pool.get().await?;
        let checked =
            sql::ensure(&lease.conn.client, &config.table, &self.pool.target().scrub).await;
        self.pool.put_back(lease);
        checked?;
        if self
            .ha
            .set(Fence::new(
                self.pool.table(),
                &config.table,
                Announce::new(&config),
            ))
            .is_err()
        {
            return Err(PostgresError::Config(
                "high availability is already enabled on this storage backend".to_string(),
            ));
        }
        tracing::info!(
            "PostgreSQL HA: node {} takes part in the election on table {} (standby until it \
             holds the leadership)",
            config.node_id,
            config.table
        );
        Ok(Leadership {
            shared: Arc::new(Shared {
                backend: self.clone(),
                key: lock_key(&config.table),
                texts: sql::ha_texts(&config.table),
                config,
            }),
        })
    }
}

impl Leadership {
    /// Waits (forever, retrying connection errors with a log line and
    /// backoff capped at 1 s) until this node holds leadership.
    /// Cancel-safe: if dropped mid-way, no lock stays held (the dedicated
    /// connection is closed with it).
    pub async fn acquire(&self) -> Held {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut campaign = Campaign::new(&self.shared);
            match campaign.run().await {
                Ok(held) => return held,
                Err(e) => {
                    tracing::warn!(
                        "PostgreSQL HA: node {} cannot campaign for the leadership: {e}; \
                         retrying in {backoff:?}",
                        self.shared.config.node_id
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// The leader as recorded in the HA table (None before the first
    /// leader ever).
    pub async fn leader(&self) -> Result<Option<LeaderRecord>, PostgresError> {
        let pool = &self.shared.backend.pool;
        let lease = pool.get().await?;
        let result = lock::read_leader(&self.shared, &lease.conn.client).await;
        pool.put_back(lease);
        result
    }
}

/// The leadership while this node holds it. Dropping it steps down at
/// once (writes refused, heartbeat stopped, lock connection dropped).
pub struct Held {
    term: i64,
    shared: Arc<Shared>,
    /// Keeps the channel open so `lost()` never sees it closed.
    _lost_tx: fence::LostTx,
    lost_rx: watch::Receiver<Option<LostReason>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("term", &self.term)
            .finish_non_exhaustive()
    }
}

impl Held {
    /// The term of this leadership.
    pub fn term(&self) -> u64 {
        u64::try_from(self.term).unwrap_or(0)
    }

    /// Resolves once leadership is lost; cancel-safe, and resolves again
    /// (with the same reason) when called after that.
    pub async fn lost(&mut self) -> LostReason {
        let lost = self.lost_rx.wait_for(Option::is_some).await;
        match lost {
            Ok(reason) => reason.clone().unwrap_or(LostReason::WriteFenced),
            // Unreachable while `lost_tx` lives in self; never claim leadership.
            Err(_) => LostReason::ConnectionLost("the leadership was dropped".to_string()),
        }
    }

    /// Steps down: first stops this node's writes (back to standby
    /// refusal), then unlocks and closes the lock connection.
    pub async fn release(mut self) {
        if let Some(fence) = self.shared.fence() {
            fence.step_down(self.term, None);
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        tracing::info!(
            "PostgreSQL HA: node {} stepped down (term {})",
            self.shared.config.node_id,
            self.term
        );
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            if let Some(fence) = self.shared.fence() {
                fence.step_down(self.term, None);
            }
            task.abort();
        }
    }
}
