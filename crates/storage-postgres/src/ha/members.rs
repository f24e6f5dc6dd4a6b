//! The members of an HA cluster: every unsealed node echoes a row of its
//! own (`node:<node_id>`) in the HA table every few seconds, standby or
//! active, so `sys/ha-status` can list them all (Vault's standbys echo to
//! the active node; here the database is the meeting point). Rows are
//! plain upserts (no fencing: they are not the secrets' storage), and rows
//! not echoed for an hour are removed by the next echo.

use super::lock::{column, query_error};
use super::{Leadership, Shared};
use crate::PostgresError;
use std::time::{Duration, SystemTime};

/// Rows echoed within this long are members.
pub const MEMBER_WINDOW: Duration = Duration::from_secs(30);

/// One node as its last echo recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its `node_id`.
    pub node_id: String,
    /// Its `api_addr`.
    pub api_addr: String,
    /// Its `cluster_addr`.
    pub cluster_addr: String,
    /// When it last echoed (database clock).
    pub last_echo: SystemTime,
}

fn echo_sql(t: &str) -> String {
    format!(
        "WITH gone AS (DELETE FROM {t} WHERE ha_key LIKE 'node:%' \
         AND heartbeat < clock_timestamp() - interval '1 hour') \
         INSERT INTO {t} (ha_key, term, node_id, api_addr, cluster_addr, heartbeat) \
         VALUES ('node:' || $1, 0, $1, $2, $3, clock_timestamp()) \
         ON CONFLICT (ha_key) DO UPDATE SET api_addr = EXCLUDED.api_addr, \
         cluster_addr = EXCLUDED.cluster_addr, heartbeat = EXCLUDED.heartbeat"
    )
}

fn members_sql(t: &str) -> String {
    format!(
        "SELECT node_id, api_addr, cluster_addr, EXTRACT(EPOCH FROM heartbeat)::float8 \
         FROM {t} WHERE ha_key LIKE 'node:%' \
         AND heartbeat > clock_timestamp() - make_interval(secs => $1) ORDER BY node_id"
    )
}

impl Leadership {
    /// Records that this node is up (call every few seconds while
    /// unsealed).
    pub async fn echo(&self) -> Result<(), PostgresError> {
        let s: &Shared = &self.shared;
        let pool = &s.backend.pool;
        let lease = pool.get().await?;
        let result = lease
            .conn
            .client
            .execute(
                &echo_sql(&s.config.table),
                &[
                    &s.config.node_id,
                    &s.config.api_addr,
                    &s.config.cluster_addr,
                ],
            )
            .await
            .map_err(query_error("HA member echo", s));
        pool.put_back(lease);
        result.map(|_| ())
    }

    /// The nodes that echoed within [`MEMBER_WINDOW`], by node id.
    pub async fn members(&self) -> Result<Vec<Member>, PostgresError> {
        const OP: &str = "HA member list";
        let s: &Shared = &self.shared;
        let pool = &s.backend.pool;
        let lease = pool.get().await?;
        let rows = lease
            .conn
            .client
            .query(
                &members_sql(&s.config.table),
                &[&MEMBER_WINDOW.as_secs_f64()],
            )
            .await
            .map_err(query_error(OP, s));
        pool.put_back(lease);
        rows?
            .iter()
            .map(|row| {
                let at: Option<f64> = column(row, 3, OP)?;
                Ok(Member {
                    node_id: column(row, 0, OP)?,
                    api_addr: column(row, 1, OP)?,
                    cluster_addr: column(row, 2, OP)?,
                    last_echo: SystemTime::UNIX_EPOCH
                        + Duration::try_from_secs_f64(at.unwrap_or(0.0).max(0.0))
                            .unwrap_or_default(),
                })
            })
            .collect()
    }
}
