//! The encryption barrier: everything above physical storage is encrypted
//! here before it reaches disk.
//!
//! ```text
//!  unseal keys ──shamir──▶ KEK ──decrypts──▶ root key ──decrypts──▶ keyring
//!                                                                   │ term 1..n keys
//!  logical reads/writes ─────── AES-256-GCM with the active term ◀──┘
//! ```
//!
//! * Values are stored as `version(1) | term(u32 BE) | nonce(12) | ciphertext+tag`,
//!   with a fresh random nonce per write and the storage key as additional
//!   authenticated data, so a ciphertext moved to another key fails to decrypt.
//! * `sys/rotate` appends a term to the keyring; new writes use it, older
//!   terms still decrypt.
//! * The only plaintext this layer writes is the seal configuration (share
//!   count and threshold), which is not secret.
//!
//! The barrier exists only while the server is unsealed; sealing drops it and
//! with it every key (zeroized on drop).

pub mod shamir;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use lockbox_storage::{Physical, StorageError, TxnOp};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// Physical key of the plaintext seal configuration.
pub const SEAL_CONFIG_PATH: &str = "core/seal-config";
/// Physical key of the root key, encrypted with the unseal key.
pub const ROOT_KEY_PATH: &str = "core/root-key";
/// Physical key of the keyring, encrypted with the root key.
pub const KEYRING_PATH: &str = "core/keyring";

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
/// Length of every key this module generates.
pub const KEY_LEN: usize = 32;

/// Errors of the barrier layer.
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    /// The physical layer failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A value failed authentication: wrong key, tampering, or moved data.
    #[error(
        "failed to decrypt {key:?}: the value was not written by this server's keyring or has been tampered with"
    )]
    Decrypt {
        /// The storage key.
        key: String,
    },
    /// A value names a key term the keyring does not have.
    #[error(
        "value at {key:?} was encrypted with key term {term}, which this keyring does not have"
    )]
    UnknownTerm {
        /// The storage key.
        key: String,
        /// The term in the value's header.
        term: u32,
    },
    /// A stored value is too short or has an unknown version byte.
    #[error("value at {key:?} is not a lockbox ciphertext: {reason}")]
    Corrupt {
        /// The storage key.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// Serializing or parsing the keyring or seal config failed.
    #[error("invalid {what}: {source}")]
    Encoding {
        /// Which record.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The unseal keys do not decrypt the root key.
    #[error(
        "the unseal keys do not match this server (they decrypt nothing); check that they come from this server's `operator init`"
    )]
    WrongUnsealKey,
    /// The barrier is not initialized.
    #[error("server is not initialized")]
    NotInitialized,
    /// The shares could not be combined, or init parameters are invalid.
    #[error(transparent)]
    Shamir(#[from] shamir::ShamirError),
}

/// How the unseal key is split; stored in plaintext.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealConfig {
    /// Always `shamir` for now.
    #[serde(rename = "type")]
    pub kind: String,
    /// Number of key shares handed out.
    pub secret_shares: u32,
    /// Number of shares needed to unseal.
    pub secret_threshold: u32,
}

#[derive(Serialize, Deserialize)]
struct StoredTerm {
    term: u32,
    key: String,
    #[serde(with = "time::serde::rfc3339")]
    install_time: OffsetDateTime,
}

#[derive(Serialize, Deserialize)]
struct StoredKeyring {
    active_term: u32,
    terms: Vec<StoredTerm>,
}

struct Term {
    key: Zeroizing<[u8; KEY_LEN]>,
    cipher: Aes256Gcm,
    install_time: OffsetDateTime,
}

impl Term {
    fn new(key: Zeroizing<[u8; KEY_LEN]>, install_time: OffsetDateTime) -> Self {
        let cipher = Aes256Gcm::new(key.as_ref().into());
        Self {
            key,
            cipher,
            install_time,
        }
    }
}

struct Keyring {
    root: Aes256Gcm,
    terms: BTreeMap<u32, Term>,
    active: u32,
}

/// Information about the active key, for `sys/key-status`.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    /// The active term.
    pub term: u32,
    /// When the active term was installed.
    pub install_time: OffsetDateTime,
    /// Encryptions since this process unsealed.
    pub encryptions: u64,
}

/// The unsealed barrier: encrypts and decrypts everything in storage.
pub struct Barrier {
    physical: Arc<dyn Physical>,
    keyring: RwLock<Arc<Keyring>>,
    encryptions: AtomicU64,
    /// Serializes `rotate`: two rotations must not pick the same term.
    rotation: tokio::sync::Mutex<()>,
}

fn random_key() -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::thread_rng().fill_bytes(key.as_mut());
    key
}

fn seal_value(cipher: &Aes256Gcm, term: u32, aad: &str, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        // AES-GCM encryption only fails for inputs beyond 64 GiB.
        .unwrap_or_default();
    let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&term.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

/// Splits a stored value into (term, nonce, ciphertext).
fn parse_value<'a>(key: &str, value: &'a [u8]) -> Result<(u32, &'a [u8], &'a [u8]), BarrierError> {
    let corrupt = |reason: &str| BarrierError::Corrupt {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    if value.len() < HEADER_LEN + 16 {
        return Err(corrupt("too short"));
    }
    if value[0] != VERSION {
        return Err(corrupt(&format!("unknown version byte {}", value[0])));
    }
    let term = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
    Ok((term, &value[5..HEADER_LEN], &value[HEADER_LEN..]))
}

fn open_value(
    cipher: &Aes256Gcm,
    key: &str,
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, BarrierError> {
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: key.as_bytes(),
            },
        )
        .map_err(|_| BarrierError::Decrypt {
            key: key.to_string(),
        })
}

/// Reads the seal configuration, `None` when the server is not initialized.
pub async fn seal_config(physical: &dyn Physical) -> Result<Option<SealConfig>, BarrierError> {
    match physical.get(SEAL_CONFIG_PATH).await? {
        None => Ok(None),
        Some(raw) => {
            serde_json::from_slice(&raw)
                .map(Some)
                .map_err(|source| BarrierError::Encoding {
                    what: "seal configuration",
                    source,
                })
        }
    }
}

/// The result of [`Barrier::initialize`].
pub struct Initialized {
    /// The unsealed barrier.
    pub barrier: Barrier,
    /// The unseal key shares, to hand to the operator once.
    pub shares: Vec<Zeroizing<Vec<u8>>>,
}

/// One write of [`Barrier::transaction`].
#[derive(Debug, Clone, Copy)]
pub enum BarrierOp<'a> {
    /// Encrypt and write the plaintext at the key.
    Put(&'a str, &'a [u8]),
    /// Delete the key.
    Delete(&'a str),
}

impl BarrierOp<'_> {
    fn key(&self) -> &str {
        match self {
            BarrierOp::Put(k, _) | BarrierOp::Delete(k) => k,
        }
    }
}

/// Reads and decrypts the keyring with the root key: its terms and the
/// active term.
async fn read_keyring(
    physical: &dyn Physical,
    root_cipher: &Aes256Gcm,
) -> Result<(BTreeMap<u32, Term>, u32), BarrierError> {
    let stored_ring = physical
        .get(KEYRING_PATH)
        .await?
        .ok_or(BarrierError::NotInitialized)?;
    let (_, nonce, ct) = parse_value(KEYRING_PATH, &stored_ring)?;
    let plain = Zeroizing::new(open_value(root_cipher, KEYRING_PATH, nonce, ct)?);
    let stored: StoredKeyring =
        serde_json::from_slice(&plain).map_err(|source| BarrierError::Encoding {
            what: "keyring",
            source,
        })?;
    let mut terms = BTreeMap::new();
    for t in stored.terms {
        use base64::Engine;
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(&t.key)
                .map_err(|e| BarrierError::Corrupt {
                    key: KEYRING_PATH.into(),
                    reason: e.to_string(),
                })?,
        );
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(BarrierError::Corrupt {
                key: KEYRING_PATH.into(),
                reason: format!("term {} key has {} bytes", t.term, bytes.len()),
            });
        }
        key.copy_from_slice(&bytes);
        terms.insert(t.term, Term::new(key, t.install_time));
    }
    Ok((terms, stored.active_term))
}

impl Barrier {
    /// Creates fresh keys for an uninitialized storage and returns the
    /// unsealed barrier plus the unseal key shares.
    pub async fn initialize(
        physical: Arc<dyn Physical>,
        shares: u32,
        threshold: u32,
    ) -> Result<Initialized, BarrierError> {
        shamir::validate(shares, threshold)?;
        let kek = random_key();
        let root = random_key();
        let now = OffsetDateTime::now_utc();
        let mut terms = BTreeMap::new();
        terms.insert(1, Term::new(random_key(), now));
        let keyring = Keyring {
            root: Aes256Gcm::new(root.as_ref().into()),
            terms,
            active: 1,
        };
        let barrier = Barrier {
            physical: physical.clone(),
            keyring: RwLock::new(Arc::new(keyring)),
            encryptions: AtomicU64::new(0),
            rotation: tokio::sync::Mutex::new(()),
        };
        // Order matters for crash safety: the seal config, which marks the
        // server initialized, is written last.
        barrier.persist_keyring(&barrier.ring()).await?;
        let kek_cipher = Aes256Gcm::new(kek.as_ref().into());
        physical
            .put(
                ROOT_KEY_PATH,
                seal_value(&kek_cipher, 0, ROOT_KEY_PATH, root.as_ref()),
            )
            .await?;
        let config = SealConfig {
            kind: "shamir".into(),
            secret_shares: shares,
            secret_threshold: threshold,
        };
        let raw = serde_json::to_vec(&config).map_err(|source| BarrierError::Encoding {
            what: "seal configuration",
            source,
        })?;
        physical.put(SEAL_CONFIG_PATH, raw).await?;
        let parts = shamir::split(kek.as_ref(), shares, threshold)?;
        Ok(Initialized {
            barrier,
            shares: parts.into_iter().map(Zeroizing::new).collect(),
        })
    }

    /// Recombines unseal key shares and opens the keyring.
    pub async fn unseal(
        physical: Arc<dyn Physical>,
        parts: &[Vec<u8>],
    ) -> Result<Barrier, BarrierError> {
        let config = seal_config(physical.as_ref())
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        let kek = Zeroizing::new(shamir::combine(parts, config.secret_threshold, KEY_LEN)?);
        let kek_cipher =
            Aes256Gcm::new_from_slice(&kek).map_err(|_| BarrierError::WrongUnsealKey)?;
        let stored_root = physical
            .get(ROOT_KEY_PATH)
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        let (_, nonce, ct) = parse_value(ROOT_KEY_PATH, &stored_root)?;
        let root = Zeroizing::new(
            open_value(&kek_cipher, ROOT_KEY_PATH, nonce, ct)
                .map_err(|_| BarrierError::WrongUnsealKey)?,
        );
        let root_cipher =
            Aes256Gcm::new_from_slice(&root).map_err(|_| BarrierError::WrongUnsealKey)?;
        let (terms, active) = read_keyring(physical.as_ref(), &root_cipher).await?;
        Ok(Barrier {
            physical,
            keyring: RwLock::new(Arc::new(Keyring {
                root: root_cipher,
                terms,
                active,
            })),
            encryptions: AtomicU64::new(0),
            rotation: tokio::sync::Mutex::new(()),
        })
    }

    /// Reads the keyring from storage again (a standby before promotion,
    /// or on a value under a term it does not know yet: another node
    /// rotated the key).
    pub async fn reload_keyring(&self) -> Result<(), BarrierError> {
        let old = self.ring();
        let (terms, active) = read_keyring(self.physical.as_ref(), &old.root).await?;
        *self.keyring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Keyring {
            root: old.root.clone(),
            terms,
            active,
        });
        Ok(())
    }

    fn ring(&self) -> Arc<Keyring> {
        self.keyring
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn persist_keyring(&self, ring: &Keyring) -> Result<(), BarrierError> {
        let stored = StoredKeyring {
            active_term: ring.active,
            terms: ring
                .terms
                .iter()
                .map(|(term, t)| {
                    use base64::Engine;
                    StoredTerm {
                        term: *term,
                        key: base64::engine::general_purpose::STANDARD.encode(t.key.as_ref()),
                        install_time: t.install_time,
                    }
                })
                .collect(),
        };
        let plain = Zeroizing::new(serde_json::to_vec(&stored).map_err(|source| {
            BarrierError::Encoding {
                what: "keyring",
                source,
            }
        })?);
        self.physical
            .put(
                KEYRING_PATH,
                seal_value(&ring.root, 0, KEYRING_PATH, &plain),
            )
            .await?;
        Ok(())
    }

    /// Adds a new key term and makes it active (`sys/rotate`).
    pub async fn rotate(&self) -> Result<KeyStatus, BarrierError> {
        let _one_at_a_time = self.rotation.lock().await;
        let old = self.ring();
        let next = old.active + 1;
        let mut terms = BTreeMap::new();
        for (term, t) in &old.terms {
            terms.insert(*term, Term::new(t.key.clone(), t.install_time));
        }
        terms.insert(next, Term::new(random_key(), OffsetDateTime::now_utc()));
        let ring = Keyring {
            root: old.root.clone(),
            terms,
            active: next,
        };
        // Persist first, then switch: no value is ever written under a term
        // that storage does not know about.
        self.persist_keyring(&ring).await?;
        *self.keyring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
        self.encryptions.store(0, Ordering::Relaxed);
        Ok(self.key_status())
    }

    /// The active term, for `sys/key-status`.
    pub fn key_status(&self) -> KeyStatus {
        let ring = self.ring();
        let install_time = ring
            .terms
            .get(&ring.active)
            .map(|t| t.install_time)
            .unwrap_or_else(OffsetDateTime::now_utc);
        KeyStatus {
            term: ring.active,
            install_time,
            encryptions: self.encryptions.load(Ordering::Relaxed),
        }
    }

    /// The storage backend's name.
    pub fn physical_kind(&self) -> &'static str {
        self.physical.kind()
    }

    /// Encrypts and writes a value.
    pub async fn put(&self, key: &str, plaintext: &[u8]) -> Result<(), BarrierError> {
        let ring = self.ring();
        let term = ring
            .terms
            .get(&ring.active)
            .ok_or(BarrierError::UnknownTerm {
                key: key.to_string(),
                term: ring.active,
            })?;
        let value = seal_value(&term.cipher, ring.active, key, plaintext);
        self.encryptions.fetch_add(1, Ordering::Relaxed);
        self.physical.put(key, value).await?;
        Ok(())
    }

    /// Encrypts the puts of `ops` and applies them all in one storage
    /// transaction (all or none where the backend can: every backend of
    /// lockbox's does).
    pub async fn transaction(&self, ops: &[BarrierOp<'_>]) -> Result<(), BarrierError> {
        let ring = self.ring();
        let term = ring
            .terms
            .get(&ring.active)
            .ok_or(BarrierError::UnknownTerm {
                key: ops.first().map(|o| o.key().to_string()).unwrap_or_default(),
                term: ring.active,
            })?;
        let mut puts = 0;
        let txn = ops
            .iter()
            .map(|op| match op {
                BarrierOp::Put(key, plaintext) => {
                    puts += 1;
                    TxnOp::Put {
                        key: key.to_string(),
                        value: seal_value(&term.cipher, ring.active, key, plaintext),
                    }
                }
                BarrierOp::Delete(key) => TxnOp::Delete {
                    key: key.to_string(),
                },
            })
            .collect();
        self.encryptions.fetch_add(puts, Ordering::Relaxed);
        self.physical.transaction(txn).await?;
        Ok(())
    }

    /// Reads and decrypts a value.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BarrierError> {
        let Some(raw) = self.physical.get(key).await? else {
            return Ok(None);
        };
        let (term, nonce, ct) = parse_value(key, &raw)?;
        let mut ring = self.ring();
        if !ring.terms.contains_key(&term) && term > ring.active {
            // Written by another node (HA) after it rotated the key.
            self.reload_keyring().await?;
            ring = self.ring();
        }
        let t = ring.terms.get(&term).ok_or(BarrierError::UnknownTerm {
            key: key.to_string(),
            term,
        })?;
        open_value(&t.cipher, key, nonce, ct).map(Some)
    }

    /// Deletes a value.
    pub async fn delete(&self, key: &str) -> Result<(), BarrierError> {
        Ok(self.physical.delete(key).await?)
    }

    /// Lists the children of a prefix (keys are not secret: they are paths).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError> {
        Ok(self.physical.list(prefix).await?)
    }

    /// Deletes everything under a prefix.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<usize, BarrierError> {
        Ok(self.physical.delete_prefix(prefix).await?)
    }
}

/// The storage interface a secrets engine sees: already encrypted, already
/// scoped to the engine's own prefix.
#[async_trait]
pub trait Storage: Send + Sync {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BarrierError>;
    /// Writes one key.
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), BarrierError>;
    /// Deletes one key.
    async fn delete(&self, key: &str) -> Result<(), BarrierError>;
    /// Lists the immediate children of a prefix.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError>;
}

/// A prefix-scoped window onto the barrier. A view cannot reach outside its
/// prefix: every key is the view's prefix followed by the caller's key, and
/// keys are opaque strings (not filesystem paths), so `..` in a key is just
/// two dots and names nothing outside the prefix.
#[derive(Clone)]
pub struct View {
    barrier: Arc<Barrier>,
    prefix: String,
}

impl View {
    /// A view of everything under `prefix` (which should end in `/`).
    pub fn new(barrier: Arc<Barrier>, prefix: impl Into<String>) -> Self {
        Self {
            barrier,
            prefix: prefix.into(),
        }
    }

    /// The view's prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A narrower view.
    pub fn sub(&self, prefix: &str) -> View {
        View::new(self.barrier.clone(), format!("{}{}", self.prefix, prefix))
    }

    /// Removes everything in the view.
    pub async fn clear(&self) -> Result<usize, BarrierError> {
        self.barrier.delete_prefix(&self.prefix).await
    }

    fn full(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }
}

#[async_trait]
impl Storage for View {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BarrierError> {
        self.barrier.get(&self.full(key)).await
    }
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), BarrierError> {
        self.barrier.put(&self.full(key), value).await
    }
    async fn delete(&self, key: &str) -> Result<(), BarrierError> {
        self.barrier.delete(&self.full(key)).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>, BarrierError> {
        self.barrier.list(&self.full(prefix)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lockbox_storage::InMemory;

    async fn fresh() -> (Arc<InMemory>, Initialized) {
        let mem = Arc::new(InMemory::new());
        let init = Barrier::initialize(mem.clone(), 3, 2).await.unwrap();
        (mem, init)
    }

    #[tokio::test]
    async fn roundtrip_and_no_plaintext_on_disk() {
        let (mem, init) = fresh().await;
        init.barrier
            .put("a/b", b"super-secret-value")
            .await
            .unwrap();
        assert_eq!(
            init.barrier.get("a/b").await.unwrap().unwrap(),
            b"super-secret-value"
        );
        for (_, v) in mem.dump() {
            assert!(!v.windows(12).any(|w| w == b"super-secret"));
        }
    }

    #[tokio::test]
    async fn a_transaction_encrypts_its_puts_and_applies_its_deletes() {
        let (mem, init) = fresh().await;
        init.barrier.put("gone", b"x").await.unwrap();
        init.barrier
            .transaction(&[
                BarrierOp::Put("t/a", b"pl41n-one"),
                BarrierOp::Delete("gone"),
                BarrierOp::Put("t/b", b"pl41n-two"),
            ])
            .await
            .unwrap();
        assert_eq!(
            init.barrier.get("t/a").await.unwrap().unwrap(),
            b"pl41n-one"
        );
        assert_eq!(
            init.barrier.get("t/b").await.unwrap().unwrap(),
            b"pl41n-two"
        );
        assert_eq!(init.barrier.get("gone").await.unwrap(), None);
        for (_, v) in mem.dump() {
            assert!(!v.windows(5).any(|w| w == b"pl41n"));
        }
    }

    /// HA: a standby's barrier opened before the active rotated the key
    /// reads values written under the new term (it reloads the keyring).
    #[tokio::test]
    async fn a_second_barrier_follows_a_rotation_by_the_first() {
        let (mem, init) = fresh().await;
        let parts: Vec<Vec<u8>> = init.shares.iter().map(|s| s.to_vec()).collect();
        let standby = Barrier::unseal(mem.clone(), &parts[..2]).await.unwrap();
        init.barrier.rotate().await.unwrap();
        init.barrier.put("after", b"rotated").await.unwrap();
        assert_eq!(standby.get("after").await.unwrap().unwrap(), b"rotated");
        assert_eq!(standby.key_status().term, 2);
        // A term no keyring has is still an error, not a loop.
        let mut raw = mem.get("after").await.unwrap().unwrap();
        raw[1..5].copy_from_slice(&9u32.to_be_bytes());
        mem.put("after", raw).await.unwrap();
        assert!(matches!(
            standby.get("after").await,
            Err(BarrierError::UnknownTerm { term: 9, .. })
        ));
    }

    #[tokio::test]
    async fn unseal_with_threshold_and_reject_wrong_keys() {
        let (mem, init) = fresh().await;
        init.barrier.put("k", b"v").await.unwrap();
        let parts: Vec<Vec<u8>> = init.shares.iter().map(|s| s.to_vec()).collect();
        let b = Barrier::unseal(mem.clone(), &parts[1..]).await.unwrap();
        assert_eq!(b.get("k").await.unwrap().unwrap(), b"v");

        // Shares of another server's key.
        let other = Barrier::initialize(Arc::new(InMemory::new()), 3, 2)
            .await
            .unwrap();
        let wrong: Vec<Vec<u8>> = other.shares.iter().take(2).map(|s| s.to_vec()).collect();
        assert!(matches!(
            Barrier::unseal(mem.clone(), &wrong).await,
            Err(BarrierError::WrongUnsealKey)
        ));
    }

    #[tokio::test]
    async fn rotation_keeps_old_terms_readable() {
        let (mem, init) = fresh().await;
        let b = init.barrier;
        b.put("old", b"1").await.unwrap();
        let status = b.rotate().await.unwrap();
        assert_eq!(status.term, 2);
        b.put("new", b"2").await.unwrap();
        let raw = mem.dump().into_iter().find(|(k, _)| k == "new").unwrap().1;
        assert_eq!(&raw[1..5], &2u32.to_be_bytes());
        let parts: Vec<Vec<u8>> = init.shares.iter().map(|s| s.to_vec()).collect();
        let reopened = Barrier::unseal(mem, &parts).await.unwrap();
        assert_eq!(reopened.get("old").await.unwrap().unwrap(), b"1");
        assert_eq!(reopened.get("new").await.unwrap().unwrap(), b"2");
        assert_eq!(reopened.key_status().term, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_rotations_get_distinct_terms_and_everything_stays_readable() {
        let (mem, init) = fresh().await;
        let b = Arc::new(init.barrier);
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move {
                    let status = b.rotate().await.unwrap();
                    b.put(&format!("k{i}"), format!("v{i}").as_bytes())
                        .await
                        .unwrap();
                    status.term
                })
            })
            .collect();
        let mut terms = Vec::new();
        for t in tasks {
            terms.push(t.await.unwrap());
        }
        terms.sort();
        assert_eq!(terms, (2..=9).collect::<Vec<u32>>());
        let parts: Vec<Vec<u8>> = init.shares.iter().map(|s| s.to_vec()).collect();
        let reopened = Barrier::unseal(mem, &parts).await.unwrap();
        assert_eq!(reopened.key_status().term, 9);
        for i in 0..8 {
            assert_eq!(
                reopened.get(&format!("k{i}")).await.unwrap().unwrap(),
                format!("v{i}").as_bytes()
            );
        }
    }

    #[tokio::test]
    async fn moved_or_tampered_values_fail() {
        let (mem, init) = fresh().await;
        init.barrier.put("x", b"1").await.unwrap();
        let raw = mem.get("x").await.unwrap().unwrap();
        mem.put("y", raw.clone()).await.unwrap();
        assert!(matches!(
            init.barrier.get("y").await,
            Err(BarrierError::Decrypt { .. })
        ));
        let mut bad = raw;
        let last = bad.len() - 1;
        bad[last] ^= 1;
        mem.put("x", bad).await.unwrap();
        assert!(matches!(
            init.barrier.get("x").await,
            Err(BarrierError::Decrypt { .. })
        ));
    }

    #[tokio::test]
    async fn views_are_scoped() {
        let (_mem, init) = fresh().await;
        let b = Arc::new(init.barrier);
        let v1 = View::new(b.clone(), "logical/one/");
        let v2 = View::new(b.clone(), "logical/two/");
        v1.put("k", b"1").await.unwrap();
        assert_eq!(v2.get("k").await.unwrap(), None);
        assert_eq!(v1.list("").await.unwrap(), vec!["k"]);
        v1.clear().await.unwrap();
        assert_eq!(v1.get("k").await.unwrap(), None);
    }
}
