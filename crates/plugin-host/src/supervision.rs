//! Supervision's decisions, free of I/O: how long to wait before the next
//! restart of a plugin process, and when its failures are a crash loop.
//!
//! [`Supervision`] is a state machine fed with what happened (a process
//! exited after running for some time, a restart failed) and answering
//! with a [`Decision`]. It reads no clock and sleeps never: the supervisor
//! task (`host::supervisor`) measures run times, waits, relaunches and
//! publishes events, and asks this module what to do at each step.
//!
//! Rules:
//! * a failure is an exit within [`CRASH_LOOP_WINDOW`] of starting, or a
//!   failed restart; an exit after a longer run starts the count at 1;
//! * the delay after the n-th exit since the last long run is
//!   `initial * 2^(n-1)` (exponent at most 15), a failed restart doubles
//!   the delay, and no delay exceeds the configured maximum;
//! * the failure that reaches [`CRASH_LOOP_THRESHOLD`] is reported as a
//!   crash loop, then every 10th failure after it ([`is_crash_loop_report`]).

use std::time::Duration;

/// A process that exits within this long of starting counts toward a crash loop.
pub const CRASH_LOOP_WINDOW: Duration = Duration::from_secs(60);
/// Consecutive short-lived exits (or failed restarts) that make a crash loop.
pub const CRASH_LOOP_THRESHOLD: u32 = 3;
/// The largest exponent of the exit backoff (`initial * 2^15`).
const MAX_EXPONENT: u32 = 15;

/// Whether the `failures`-th consecutive failure should be reported as a
/// crash loop (the threshold, then every 10th).
pub fn is_crash_loop_report(failures: u32) -> bool {
    failures >= CRASH_LOOP_THRESHOLD && (failures - CRASH_LOOP_THRESHOLD).is_multiple_of(10)
}

/// The restart delays: the first one, and the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first exit (and after an exit following a long run).
    pub initial: Duration,
    /// No delay is longer.
    pub max: Duration,
}

/// What the supervisor does after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// How long to wait before the next launch.
    pub restart_after: Duration,
    /// `Some(consecutive failures)` when this failure is reported as a
    /// crash loop (event `PluginEventKind::CrashLoop`).
    pub crash_loop: Option<u32>,
}

/// The state of one supervised process slot: consecutive failures, the
/// exits since the last long run (that one included), the current delay.
#[derive(Debug, Clone)]
pub struct Supervision {
    backoff: Backoff,
    failures: u32,
    streak: u32,
    delay: Duration,
}

impl Supervision {
    /// A slot that has not failed yet.
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            failures: 0,
            streak: 0,
            delay: backoff.initial.min(backoff.max),
        }
    }

    /// The process exited after running for `ran_for`.
    pub fn on_exit(&mut self, ran_for: Duration) -> Decision {
        if ran_for > CRASH_LOOP_WINDOW {
            self.failures = 1;
            self.streak = 1;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.streak = self.streak.saturating_add(1);
        }
        let exponent = (self.streak - 1).min(MAX_EXPONENT);
        self.delay = self
            .backoff
            .initial
            .saturating_mul(1 << exponent)
            .min(self.backoff.max);
        self.decision()
    }

    /// A restart failed (the launch, or setting up the mounts on the new
    /// process).
    pub fn on_restart_failed(&mut self) -> Decision {
        self.failures = self.failures.saturating_add(1);
        self.delay = self.delay.saturating_mul(2).min(self.backoff.max);
        self.decision()
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    fn decision(&self) -> Decision {
        Decision {
            restart_after: self.delay,
            crash_loop: is_crash_loop_report(self.failures).then_some(self.failures),
        }
    }
}

#[cfg(test)]
mod tests;
