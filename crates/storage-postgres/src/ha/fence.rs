//! The backend's side of high availability: whether this node may write,
//! and under which term. The backend asks [`Fence::write_term`] before each
//! write and reports a write the database refused with [`Fence::refused`];
//! the lock side switches it with [`Fence::lead`] and [`Fence::step_down`].

use super::sql::{FencedTexts, fenced_texts};
use super::{Announce, LostReason};
use lockbox_storage::StorageError;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// Where a lost leadership is reported (the `Held`'s `lost()`).
pub(crate) type LostTx = Arc<watch::Sender<Option<LostReason>>>;

/// HA write state of one backend.
pub(crate) struct Fence {
    pub(crate) texts: FencedTexts,
    /// Which writes are announced to the other nodes.
    pub(crate) announce: Announce,
    state: Mutex<Option<(i64, LostTx)>>,
}

impl Fence {
    pub(crate) fn new(data_table: &str, ha_table: &str, announce: Announce) -> Self {
        Fence {
            texts: fenced_texts(data_table, ha_table),
            announce,
            state: Mutex::new(None),
        }
    }

    /// From now on writes go out fenced by `term`.
    pub(crate) fn lead(&self, term: i64, lost: LostTx) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = Some((term, lost));
    }

    /// Back to standby refusal if `term` is still the one writes use;
    /// `reason` (if any) is reported to the `Held`.
    pub(crate) fn step_down(&self, term: i64, reason: Option<LostReason>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((current, lost)) = state.as_ref()
            && *current == term
        {
            if let Some(reason) = reason {
                lost.send_if_modified(|v| {
                    if v.is_none() {
                        *v = Some(reason);
                        true
                    } else {
                        false
                    }
                });
            }
            *state = None;
        }
    }

    /// The term a write of `operation` on `key` runs under, or the standby
    /// refusal.
    pub(crate) fn write_term(
        &self,
        operation: &'static str,
        key: &str,
    ) -> Result<i64, StorageError> {
        match self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some((term, _)) => Ok(*term),
            None => Err(StorageError::Fenced {
                operation,
                key: key.to_string(),
                reason: "this node is a standby: only the active node writes; send the \
                         request to the active node (sys/leader names it)"
                    .to_string(),
            }),
        }
    }

    /// The database found another term than `term`: another node took the
    /// leadership over. Steps down (reporting `WriteFenced`) and returns
    /// the refusal.
    pub(crate) fn refused(&self, term: i64, operation: &'static str, key: &str) -> StorageError {
        tracing::warn!(
            "PostgreSQL HA: a {operation} under term {term} was refused by the database: another \
             node took the leadership over; this node is a standby now"
        );
        self.step_down(term, Some(LostReason::WriteFenced));
        StorageError::Fenced {
            operation,
            key: key.to_string(),
            reason: format!(
                "this node lost the leadership (term {term}) to another node and is a standby \
                 now; nothing was written: send the request to the active node (sys/leader \
                 names it)"
            ),
        }
    }
}
