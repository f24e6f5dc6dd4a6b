//! The lock connection: the campaign (try the advisory lock every `poll`,
//! end a stale holder's session, promote with a term bump) and, once held,
//! the heartbeat task that also notices the loss of the leadership.

use super::{Held, LeaderRecord, LostReason, Shared};
use crate::PostgresError;
use crate::redact::message;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{oneshot, watch};
use tokio_postgres::{Client, Row};

pub(super) fn query_error(
    operation: &'static str,
    shared: &Shared,
) -> impl Fn(tokio_postgres::Error) -> PostgresError {
    let scrub = shared.scrub().clone();
    move |e| PostgresError::Query {
        operation,
        message: message(&e, &scrub),
    }
}

pub(super) fn column<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
    operation: &'static str,
) -> Result<T, PostgresError> {
    row.try_get(index).map_err(|e| PostgresError::Query {
        operation,
        message: format!("unexpected column {index}: {e}"),
    })
}

/// One attempt at the leadership on one dedicated connection.
pub(crate) struct Campaign<'a> {
    shared: &'a Arc<Shared>,
    /// A holder that has not promoted itself yet (no heartbeat of its
    /// own): its pid and when this node first saw it hold the lock.
    unpromoted: Option<(i32, Instant)>,
}

impl<'a> Campaign<'a> {
    pub(crate) fn new(shared: &'a Arc<Shared>) -> Self {
        Campaign {
            shared,
            unpromoted: None,
        }
    }

    /// Waits for the lock on a new connection; an error means the
    /// connection failed (the caller retries with backoff).
    pub(crate) async fn run(&mut self) -> Result<Held, PostgresError> {
        let shared = self.shared;
        let client = shared.backend.pool.target().connect_dedicated().await?;
        let key = shared.key;
        // Someone may have emptied the table since enable_ha.
        client
            .batch_execute(&shared.texts.seed)
            .await
            .map_err(query_error("HA table rows", shared))?;
        loop {
            let row = client
                .query_one(shared.texts.try_lock, &[&key])
                .await
                .map_err(query_error("HA lock", shared))?;
            if column::<bool>(&row, 0, "HA lock")? {
                return promote(shared, client).await;
            }
            self.check_holder(&client).await?;
            tokio::time::sleep(shared.config.poll).await;
        }
    }

    /// Ends the holder's session when its heartbeat (by the database clock)
    /// is older than `stale_after`, or when it has held the lock that long
    /// without promoting itself.
    async fn check_holder(&mut self, client: &Client) -> Result<(), PostgresError> {
        let shared = self.shared;
        let rows = client
            .query(&shared.texts.holder, &[&shared.key])
            .await
            .map_err(query_error("HA holder check", shared))?;
        let Some(row) = rows.first() else {
            self.unpromoted = None;
            return Ok(());
        };
        let pid: i32 = column(row, 0, "HA holder check")?;
        let recorded: Option<i32> = column(row, 1, "HA holder check")?;
        let age: Option<f64> = column(row, 2, "HA holder check")?;
        let stale_after = shared.config.stale_after;
        let stale = match (recorded, age) {
            (Some(p), Some(age)) if p == pid => {
                self.unpromoted = None;
                age > stale_after.as_secs_f64()
            }
            _ => match self.unpromoted {
                Some((p, since)) if p == pid => since.elapsed() > stale_after,
                _ => {
                    self.unpromoted = Some((pid, Instant::now()));
                    false
                }
            },
        };
        if !stale {
            return Ok(());
        }
        tracing::warn!(
            "PostgreSQL HA: node {} ends the session (pid {pid}) holding the leadership lock of \
             table {}: its heartbeat is {} old, more than stale_after {stale_after:?} (a paused \
             or cut-off node); taking over",
            shared.config.node_id,
            shared.config.table,
            age.map_or_else(|| "missing".to_string(), |a| format!("{a:.3}s")),
        );
        client
            .query_one(shared.texts.terminate, &[&pid])
            .await
            .map_err(query_error(
                "HA end of a stale holder's session (pg_terminate_backend needs the holder's \
                 login role or pg_signal_backend)",
                shared,
            ))?;
        self.unpromoted = None;
        Ok(())
    }
}

/// Bumps the term on the lock connection, then enables fenced writes for
/// it and starts the heartbeat.
async fn promote(shared: &Arc<Shared>, client: Client) -> Result<Held, PostgresError> {
    let config = &shared.config;
    let row = client
        .query_one(
            &shared.texts.promote,
            &[&config.node_id, &config.api_addr, &config.cluster_addr],
        )
        .await
        .map_err(query_error("HA promotion", shared))?;
    let term: i64 = column(&row, 0, "HA promotion")?;
    let Some(fence) = shared.fence() else {
        return Err(PostgresError::Config(
            "high availability is not enabled on this backend".to_string(),
        ));
    };
    let (lost_tx, lost_rx) = watch::channel(None);
    let lost_tx = Arc::new(lost_tx);
    fence.lead(term, lost_tx.clone());
    tracing::info!(
        "PostgreSQL HA: node {} is the active node now (term {term}, table {}, api_addr {})",
        config.node_id,
        config.table,
        config.api_addr
    );
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(heartbeat(
        shared.clone(),
        client,
        term,
        lost_tx.clone(),
        stop_rx,
    ));
    Ok(Held {
        term,
        shared: shared.clone(),
        _lost_tx: lost_tx,
        lost_rx,
        stop: Some(stop_tx),
        task: Some(task),
    })
}

/// Refreshes the heartbeat every `heartbeat` while the term is ours; on a
/// failure or another term, steps down and reports why. On `stop`, unlocks
/// and ends. The connection closes when this ends (or is aborted).
async fn heartbeat(
    shared: Arc<Shared>,
    client: Client,
    term: i64,
    lost_tx: super::fence::LostTx,
    mut stop: oneshot::Receiver<()>,
) {
    let channel = super::changes_channel(&shared.config.table);
    let mut tick = tokio::time::interval(shared.config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut lost_rx = lost_tx.subscribe();
    let reason = loop {
        tokio::select! {
            _ = &mut stop => {
                if let Err(e) = client.query_one(shared.texts.unlock, &[&shared.key]).await {
                    tracing::warn!(
                        "PostgreSQL HA: unlocking failed ({}); closing the lock connection \
                         releases it",
                        message(&e, shared.scrub())
                    );
                }
                return;
            }
            () = until_lost(&mut lost_rx) => return,
            _ = tick.tick() => {}
        }
        match client
            .execute(&shared.texts.heartbeat, &[&term, &channel])
            .await
        {
            Ok(1) => {}
            Ok(_) => {
                let found = match client.query_one(&shared.texts.term, &[]).await {
                    Ok(row) => row.try_get::<_, i64>(0).unwrap_or(term),
                    Err(_) => term,
                };
                break LostReason::Superseded {
                    term: u64::try_from(found).unwrap_or(0),
                };
            }
            Err(e) => break LostReason::ConnectionLost(message(&e, shared.scrub())),
        }
    };
    tracing::warn!(
        "PostgreSQL HA: node {} lost the leadership (term {term}): {reason}; it is a standby now",
        shared.config.node_id
    );
    if let Some(fence) = shared.fence() {
        fence.step_down(term, Some(reason));
    }
}

/// Resolves once a loss is reported (a refused write).
async fn until_lost(rx: &mut watch::Receiver<Option<LostReason>>) {
    let _ = rx.wait_for(Option::is_some).await;
}

/// The leader row, for [`super::Leadership::leader`].
pub(crate) async fn read_leader(
    shared: &Shared,
    client: &Client,
) -> Result<Option<LeaderRecord>, PostgresError> {
    const OP: &str = "HA leader read";
    let row = client
        .query_one(&shared.texts.leader, &[&shared.key])
        .await
        .map_err(query_error(OP, shared))?;
    let term: i64 = column(&row, 0, OP)?;
    if term <= 0 {
        return Ok(None);
    }
    let since: Option<f64> = column(&row, 4, OP)?;
    let age: Option<f64> = column(&row, 5, OP)?;
    let seconds =
        |s: Option<f64>| Duration::try_from_secs_f64(s.unwrap_or(0.0).max(0.0)).unwrap_or_default();
    Ok(Some(LeaderRecord {
        term: u64::try_from(term).unwrap_or(0),
        node_id: column(&row, 1, OP)?,
        api_addr: column(&row, 2, OP)?,
        cluster_addr: column(&row, 3, OP)?,
        active_since: SystemTime::UNIX_EPOCH + seconds(since),
        heartbeat_age: seconds(age),
        lock_held: column(&row, 6, OP)?,
    }))
}
