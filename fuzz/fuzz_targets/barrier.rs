//! The barrier's value decoding: every value in storage is AES-256-GCM
//! with the storage key as associated data and a key term in its header.
//!
//! Properties: a stored value that was tampered with (bytes flipped,
//! truncated, extended, its term changed, or moved under another key) is
//! refused, never decrypted to something else; an untouched value reads
//! back exactly.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lockbox_core::barrier::Barrier;
use lockbox_fuzz::runtime;
use lockbox_storage::{InMemory, Physical};
use std::sync::{Arc, OnceLock};

#[derive(Arbitrary, Debug)]
enum Tamper {
    None,
    Flip { at: u16, mask: u8 },
    Truncate { len: u16 },
    Extend { bytes: Vec<u8> },
    Term { term: u32 },
    Move { to: String },
    Replace { bytes: Vec<u8> },
}

#[derive(Arbitrary, Debug)]
struct Input {
    key: String,
    value: Vec<u8>,
    tamper: Tamper,
}

struct World {
    mem: Arc<InMemory>,
    barrier: Barrier,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        runtime().block_on(async {
            let mem = Arc::new(InMemory::new());
            let init = Barrier::initialize(mem.clone(), 1, 1).await.expect("init");
            // Two terms, so a changed term can name a real key.
            init.barrier.rotate().await.expect("rotate");
            World {
                mem,
                barrier: init.barrier,
            }
        })
    })
}

fuzz_target!(|input: Input| {
    if input.key.is_empty() || input.key.starts_with("core/") {
        return;
    }
    let w = world();
    runtime().block_on(async {
        let key = format!("fuzz/{}", input.key);
        w.barrier.put(&key, &input.value).await.expect("put");
        let stored = w.mem.get(&key).await.expect("get raw").expect("stored");
        let (target, tampered) = match input.tamper {
            Tamper::None => (key.clone(), stored.clone()),
            Tamper::Flip { at, mask } => {
                let mut v = stored.clone();
                let i = usize::from(at) % v.len();
                v[i] ^= mask;
                (key.clone(), v)
            }
            Tamper::Truncate { len } => {
                let mut v = stored.clone();
                v.truncate(usize::from(len) % v.len());
                (key.clone(), v)
            }
            Tamper::Extend { bytes } => {
                let mut v = stored.clone();
                v.extend_from_slice(&bytes);
                (key.clone(), v)
            }
            Tamper::Term { term } => {
                let mut v = stored.clone();
                if v.len() >= 5 {
                    v[1..5].copy_from_slice(&term.to_be_bytes());
                }
                (key.clone(), v)
            }
            Tamper::Move { to } => (format!("fuzz/{to}"), stored.clone()),
            Tamper::Replace { bytes } => (key.clone(), bytes),
        };
        w.mem.put(&target, tampered.clone()).await.expect("raw put");
        let read = w.barrier.get(&target).await;
        if target == key && tampered == stored {
            assert_eq!(
                read.expect("untouched value reads").as_deref(),
                Some(input.value.as_slice())
            );
        } else {
            assert!(
                read.is_err(),
                "tampered value under {target:?} was accepted: {:?}",
                read.map(|v| v.map(|v| v.len()))
            );
        }
        let _ = w.mem.delete(&target).await;
        let _ = w.mem.delete(&key).await;
    });
});
