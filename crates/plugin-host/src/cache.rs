//! The read-response cache of plugin mounts.
//!
//! A plugin marks a read response `cacheable` when it is a pure function of
//! the request's path and data and of the mount's storage (protocol field
//! `Response.cacheable`). The host then answers the same read from memory,
//! after its own token and policy checks, without a round trip to the
//! plugin process.
//!
//! ```text
//!  key = (mount serial, mount generation, process serial, path, data JSON)
//!  generation += 1  after every storage put/delete of the mount (any process),
//!                   and on every Setup of the mount
//!  process serial   changes on crash/restart and reload: a new process never
//!                   sees an old process's answers; a stopped one's are unreachable
//! ```
//!
//! Correctness rests on two rules: the generation is read *before* the
//! request is sent and the answer is stored under that generation, and a
//! storage write bumps the generation only *after* it committed. So an
//! answer computed from storage older than a write is stored under a
//! generation that is already dead, and no later read looks it up.
//! Unreachable entries age out under the size bound; a mount's entries are
//! dropped when it is unmounted.
//!
//! The cache holds decrypted secrets in memory, as every request does while
//! it is served; it never touches disk. `plugin_response_cache_size = 0`
//! turns it off.

use lockbox_core::logical;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default size bound of the cache, in bytes (approximate: keys + JSON).
pub const DEFAULT_SIZE: u64 = 32 * 1024 * 1024;

/// Per-mount state shared by the mount's backend and the host storage
/// service of every process serving the mount (two during a reload).
#[derive(Debug)]
pub struct MountGeneration {
    serial: u64,
    generation: AtomicU64,
}

static SERIALS: AtomicU64 = AtomicU64::new(1);

/// A process-wide unique number (mounts and processes).
pub fn next_serial() -> u64 {
    SERIALS.fetch_add(1, Ordering::Relaxed)
}

impl MountGeneration {
    /// A fresh mount state.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            serial: next_serial(),
            generation: AtomicU64::new(0),
        })
    }

    /// Kills every cached answer of the mount (call after the change).
    pub fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The current generation.
    pub fn current(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The mount's serial.
    pub fn serial(&self) -> u64 {
        self.serial
    }
}

/// One cached read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    mount: u64,
    generation: u64,
    process: u64,
    path: String,
    data: Vec<u8>,
}

impl Key {
    /// The key of a read of `path` with `data` (its JSON) on `mount`,
    /// answered by process `process`; the generation is read now.
    pub fn new(mount: &MountGeneration, process: u64, path: &str, data: &[u8]) -> Self {
        Key {
            mount: mount.serial,
            generation: mount.current(),
            process,
            path: path.to_string(),
            data: data.to_vec(),
        }
    }
}

#[derive(Clone)]
struct Entry {
    response: Arc<logical::Response>,
    weight: u64,
}

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<Key, Entry> for Weight {
    fn weight(&self, _key: &Key, val: &Entry) -> u64 {
        val.weight
    }
}

/// The host-wide cache, bounded by size (S3-FIFO eviction, `quick_cache`).
pub struct ResponseCache {
    entries: quick_cache::sync::Cache<Key, Entry, Weight>,
}

impl ResponseCache {
    /// A cache of about `size` bytes; `None` when `size` is 0 (off).
    pub fn new(size: u64) -> Option<Self> {
        (size > 0).then(|| Self {
            entries: quick_cache::sync::Cache::with_weighter(1024, size, Weight),
        })
    }

    /// The cached answer for `key`, if still current.
    pub fn get(&self, key: &Key) -> Option<logical::Response> {
        self.entries.get(key).map(|e| (*e.response).clone())
    }

    /// Stores an answer; `json_len` is the size of its data on the wire.
    pub fn insert(&self, key: Key, response: logical::Response, json_len: usize) {
        let weight = (key.path.len() + key.data.len() + json_len + 128) as u64;
        self.entries.insert(
            key,
            Entry {
                response: Arc::new(response),
                weight,
            },
        );
    }

    /// Drops every entry of a mount (unmount).
    pub fn forget_mount(&self, mount: u64) {
        self.entries.retain(|k, _| k.mount != mount);
    }

    /// Number of entries (tests).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether a plugin's answer to a request may be cached: a read whose
/// response the plugin marked cacheable, with no login and no lease.
pub fn may_cache(op: logical::Operation, resp: &lockbox_plugin_proto::v1::Response) -> bool {
    op == logical::Operation::Read
        && resp.cacheable
        && resp.auth.is_none()
        && resp.lease_duration_seconds == 0
        && !resp.renewable
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockbox_plugin_proto::v1;
    use serde_json::json;

    fn resp(v: i64) -> logical::Response {
        let serde_json::Value::Object(m) = json!({ "v": v }) else {
            unreachable!()
        };
        logical::Response {
            data: Some(m),
            ..Default::default()
        }
    }

    fn data(r: Option<logical::Response>) -> Option<i64> {
        r?.data?.get("v")?.as_i64()
    }

    #[test]
    fn a_bump_makes_earlier_answers_unreachable() {
        let cache = ResponseCache::new(1 << 20).unwrap();
        let mount = MountGeneration::new();
        let before = Key::new(&mount, 7, "a", b"{}");
        cache.insert(before.clone(), resp(1), 10);
        assert_eq!(data(cache.get(&Key::new(&mount, 7, "a", b"{}"))), Some(1));
        // A read that started before a write stores under the old generation.
        mount.bump();
        cache.insert(before, resp(1), 10);
        assert!(cache.get(&Key::new(&mount, 7, "a", b"{}")).is_none());
        // Other process, other data, other mount: all distinct.
        let now = Key::new(&mount, 7, "a", b"{}");
        cache.insert(now, resp(2), 10);
        assert!(cache.get(&Key::new(&mount, 8, "a", b"{}")).is_none());
        assert!(cache.get(&Key::new(&mount, 7, "a", b"{\"x\":1}")).is_none());
        let other = MountGeneration::new();
        assert_ne!(other.serial(), mount.serial());
        assert!(cache.get(&Key::new(&other, 7, "a", b"{}")).is_none());
        assert_eq!(data(cache.get(&Key::new(&mount, 7, "a", b"{}"))), Some(2));
        cache.forget_mount(mount.serial());
        assert!(cache.is_empty());
    }

    #[test]
    fn size_bound_holds_and_zero_turns_it_off() {
        assert!(ResponseCache::new(0).is_none());
        let cache = ResponseCache::new(64 * 1024).unwrap();
        let mount = MountGeneration::new();
        for i in 0..1000 {
            cache.insert(Key::new(&mount, 1, &format!("k{i}"), b"{}"), resp(i), 1024);
        }
        // Each entry weighs > 1 KiB: at most ~64 fit.
        assert!(cache.len() <= 64, "{} entries", cache.len());
        assert!(!cache.is_empty());
    }

    #[test]
    fn only_plain_cacheable_reads_are_cached() {
        let base = v1::Response {
            cacheable: true,
            ..Default::default()
        };
        assert!(may_cache(logical::Operation::Read, &base));
        assert!(!may_cache(logical::Operation::List, &base));
        assert!(!may_cache(logical::Operation::Update, &base));
        let unmarked = v1::Response::default();
        assert!(!may_cache(logical::Operation::Read, &unmarked));
        let leased = v1::Response {
            lease_duration_seconds: 60,
            ..base.clone()
        };
        assert!(!may_cache(logical::Operation::Read, &leased));
        let renewable = v1::Response {
            renewable: true,
            ..base.clone()
        };
        assert!(!may_cache(logical::Operation::Read, &renewable));
        let login = v1::Response {
            auth: Some(v1::Auth::default()),
            ..base
        };
        assert!(!may_cache(logical::Operation::Read, &login));
    }
}
