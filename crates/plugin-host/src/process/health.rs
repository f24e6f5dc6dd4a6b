//! Whether a process's connection broke: the count of breaks and the
//! "lost" flag in one atomic word, so that a successful call clears the
//! flag only if no break happened since it started, with no window in
//! between for a break to slip in and be forgotten.

use std::sync::atomic::{AtomicU64, Ordering};

/// Connection breaks of one process. The word is `breaks << 1 | lost`.
#[derive(Debug, Default)]
pub(crate) struct ConnectionHealth(AtomicU64);

const LOST: u64 = 1;

impl ConnectionHealth {
    /// A request's connection broke: counts it and marks the connection lost.
    pub(crate) fn lose(&self) {
        // `s | LOST` sets the flag; `+ 2` counts the break (bits above it).
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| Some((s | LOST) + 2));
    }

    /// What a call notes when it starts: the breaks so far.
    pub(crate) fn call_started(&self) -> u64 {
        self.0.load(Ordering::SeqCst) >> 1
    }

    /// A call that started at `started` succeeded: clears the flag if no
    /// break happened since (one compare-exchange: a concurrent break makes
    /// it fail, and the break stays recorded).
    pub(crate) fn call_succeeded(&self, started: u64) {
        let lost = (started << 1) | LOST;
        let _ = self
            .0
            .compare_exchange(lost, started << 1, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Whether a break is recorded that no later call has cleared.
    pub(crate) fn lost(&self) -> bool {
        self.0.load(Ordering::SeqCst) & LOST != 0
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectionHealth;
    use std::sync::{Arc, Barrier};

    #[test]
    fn a_call_clears_only_a_break_from_before_it_started() {
        let h = ConnectionHealth::default();
        assert!(!h.lost());
        let before = h.call_started();
        h.lose();
        assert!(h.lost());
        h.call_succeeded(before);
        assert!(h.lost(), "a call that started before the break cleared it");
        let after = h.call_started();
        h.call_succeeded(after);
        assert!(
            !h.lost(),
            "a call that started after the break did not clear it"
        );
        h.call_succeeded(after);
        assert!(!h.lost());
    }

    /// Calls succeed while a break happens; none that started before the
    /// break may clear it. Each round: every caller notes its start (after
    /// the previous round's break, so its success may clear that one), then
    /// the callers' successes race one new break. After the round no call
    /// started after the new break, so the connection must be lost. (With a separate check and store, a success that checked
    /// before the break and stored after it forgets the break.)
    #[test]
    fn concurrent_successes_never_forget_a_later_break() {
        const CALLERS: usize = 4;
        const ROUNDS: usize = 20_000;
        let h = Arc::new(ConnectionHealth::default());
        let start = Arc::new(Barrier::new(CALLERS + 1));
        let end = Arc::new(Barrier::new(CALLERS + 1));
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (h, start, end) = (h.clone(), start.clone(), end.clone());
                std::thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        let started = h.call_started();
                        start.wait();
                        // Several successes per round widen the race.
                        for _ in 0..8 {
                            h.call_succeeded(started);
                        }
                        end.wait();
                    }
                })
            })
            .collect();
        let mut forgotten = 0;
        for _ in 0..ROUNDS {
            // The previous round's break is still recorded and the callers
            // started after it, so their successes may clear it, racing
            // this round's break.
            start.wait();
            h.lose();
            end.wait();
            if !h.lost() {
                forgotten += 1;
            }
        }
        for c in callers {
            c.join().expect("caller thread");
        }
        assert_eq!(
            forgotten, 0,
            "breaks forgotten in {forgotten} of {ROUNDS} rounds"
        );
    }
}
