//! Change announcements between the nodes of a cluster: the active node's
//! writes of keys under the announced prefixes ([`HaConfig::announce`])
//! send `NOTIFY` on the cluster's channel ([`changes_channel`]) in the
//! write's own transaction (so the announcement leaves exactly at commit),
//! and every node follows the channel with [`Leadership::changes`] on a
//! dedicated `LISTEN` connection.
//!
//! A standby caches what it read under those prefixes (mount tables,
//! policies) and drops it on an announcement. Announcements sent while a
//! node was not listening are lost, so the follower says when it listens
//! ([`Change::Listening`]: anything may have changed) and when it stopped
//! ([`Change::Lost`]: caches cannot be trusted until it listens again).
//! The active node also sends its heartbeat on the channel
//! ([`Change::Heartbeat`]), so a follower knows the announcements arrive.

use super::{HaConfig, Leadership, lock_key};
use std::time::Duration;
use tokio::sync::mpsc;

/// The payload prefix of the active node's heartbeat (every `heartbeat`,
/// with its term): keys are never announced with it (they are paths under
/// the announced prefixes).
pub(crate) const HEARTBEAT: &str = "heartbeat:";

/// The largest key sent as is; a longer one is announced as "anything"
/// (PostgreSQL's payload limit is 8000 bytes).
const MAX_PAYLOAD: usize = 7900;

/// The `NOTIFY` channel of the cluster whose HA table is `ha_table`: a
/// plain identifier (`lockbox_changes_` and the table's lock key), the
/// same on every node.
pub fn changes_channel(ha_table: &str) -> String {
    format!("lockbox_changes_{}", lock_key(ha_table))
}

/// What a node hears of the other nodes' writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Listening (again): announcements before this were not heard, so
    /// anything may have changed.
    Listening,
    /// The active node's heartbeat (its term): it announces its writes.
    /// A node trusts the feed only while these arrive: an active that does
    /// not announce (an older version, a connection pooler that drops
    /// notifications) sends none either.
    Heartbeat {
        /// The active node's term.
        term: u64,
    },
    /// A key under an announced prefix was written or deleted (`None`: a
    /// whole prefix, or a key too long to announce).
    Key(Option<String>),
    /// Not listening any more (the connection ended; it reconnects): what
    /// was cached may go stale unheard.
    Lost(String),
}

/// The payload announcing `key`: the key, or empty for "anything".
pub(crate) fn payload(key: &str) -> &str {
    if key.len() <= MAX_PAYLOAD { key } else { "" }
}

/// What a notification's payload says.
fn parse(payload: &str) -> Change {
    if let Some(term) = payload.strip_prefix(HEARTBEAT).and_then(|t| t.parse().ok()) {
        return Change::Heartbeat { term };
    }
    Change::Key(Some(payload.to_string()).filter(|k| !k.is_empty()))
}

/// Which writes are announced, and where.
#[derive(Debug, Clone)]
pub(crate) struct Announce {
    pub(crate) channel: String,
    prefixes: Vec<String>,
}

impl Announce {
    pub(crate) fn new(config: &HaConfig) -> Self {
        Announce {
            channel: changes_channel(&config.table),
            prefixes: config.announce.clone(),
        }
    }

    /// Whether a write of `key` is announced.
    pub(crate) fn key(&self, key: &str) -> bool {
        self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }

    /// Whether deleting everything under `prefix` removes announced keys.
    pub(crate) fn prefix(&self, prefix: &str) -> bool {
        self.prefixes
            .iter()
            .any(|p| prefix.starts_with(p.as_str()) || p.starts_with(prefix))
    }
}

impl Leadership {
    /// Follows the cluster's announcements until the receiver is dropped:
    /// a dedicated connection (TCP keepalives) that `LISTEN`s, reconnecting
    /// with backoff (100 ms doubling to 1 s) when it ends.
    pub fn changes(&self) -> mpsc::UnboundedReceiver<Change> {
        let (out, rx) = mpsc::unbounded_channel();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let channel = changes_channel(&shared.config.table);
            let mut backoff = Duration::from_millis(100);
            loop {
                let (tx, mut heard) = mpsc::unbounded_channel();
                let target = shared.backend.pool.target();
                let why = match target.connect_listening(tx).await {
                    Err(e) => e.to_string(),
                    Ok(client) => match client.batch_execute(&format!("LISTEN {channel}")).await {
                        Err(e) => crate::redact::message(&e, &target.scrub),
                        Ok(()) => {
                            backoff = Duration::from_millis(100);
                            if out.send(Change::Listening).is_err() {
                                return;
                            }
                            loop {
                                tokio::select! {
                                    n = heard.recv() => match n {
                                        Some(n) => {
                                            if out.send(parse(n.payload())).is_err() {
                                                return;
                                            }
                                        }
                                        None => break,
                                    },
                                    () = out.closed() => return,
                                }
                            }
                            drop(client);
                            "the connection ended".to_string()
                        }
                    },
                };
                tracing::warn!(
                    "PostgreSQL HA: not following the other nodes' changes ({why}); retrying in \
                     {backoff:?}"
                );
                if out.send(Change::Lost(why)).is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_keys_and_prefixes() {
        let mut config = HaConfig::new("n", "a", "c");
        config.announce = vec!["core/".into(), "sys/policy/".into()];
        let a = Announce::new(&config);
        assert!(a.key("core/mounts") && a.key("sys/policy/p"));
        assert!(!a.key("logical/x/core/") && !a.key("sys/token/id/x"));
        assert!(a.prefix("core/audit/") && a.prefix("sys/") && !a.prefix("logical/"));
        assert_eq!(a.channel, changes_channel(&config.table));
        assert!(a.channel.starts_with("lockbox_changes_") && a.channel.len() < 64);
        assert_eq!(payload("core/x"), "core/x");
        assert_eq!(parse("core/x"), Change::Key(Some("core/x".into())));
        assert_eq!(parse(""), Change::Key(None));
        assert_eq!(parse("heartbeat:42"), Change::Heartbeat { term: 42 });
        assert_eq!(
            parse("heartbeat:x"),
            Change::Key(Some("heartbeat:x".into()))
        );
        assert_eq!(payload(&"k".repeat(MAX_PAYLOAD + 1)), "");
    }
}
