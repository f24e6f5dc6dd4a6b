//! kstatus conditions: which conditions a status carries, and building them
//! so that `lastTransitionTime` only moves when the condition's status flips.
//!
//! Every status write of a controller follows the kstatus conventions that
//! Flux, Argo CD (`deploy/argocd/health.lua`) and cli-utils read
//! (`sigs.k8s.io/cli-utils` `status.Compute`; the rules are spelled out in
//! `tests/harness/README.md`, "kstatus"), through [`ready`] and
//! [`not_ready`]:
//!
//! - in effect: `Ready=True` alone → kstatus **Current**;
//! - a failure a retry cannot fix (a reason of [`is_stalled`]): `Ready=False`
//!   and `Stalled=True`, both with the reason and message → **Failed**;
//! - anything else not ready (still converging, waiting for another object,
//!   a transient error that is retried): `Ready=False` and
//!   `Reconciling=True` → **InProgress**.
//!
//! `Reconciling` and `Stalled` are never `True` together, and they are left
//! out (not written `False`) when they do not hold: the status is applied
//! server-side by one field manager, so a condition left out is removed.
//! `status.observedGeneration` is written by the callers on every write.

use super::crd::{CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The reasons that make a resource `Stalled` (kstatus Failed): what the
/// operator cannot fix by retrying, until the spec (or the binary, the
/// image, the mount a lockbox administrator holds) changes:
///
/// - `InvalidSpec`: the spec failed validation;
/// - `DigestMismatch`: the binary or image does not match the pinned sha256
///   or digest;
/// - `PathConflict`: another owner holds the mount path (a hand-over or a
///   new `spec.path` is needed);
/// - `PluginChanged`: a mount's plugin cannot change in place;
/// - image content problems (`TooLarge`, `BinaryNotFound`, `UnsafePath`,
///   `NotRegularFile`, `UnsupportedImage`, `InvalidManifest`) and a refused
///   reference (`InvalidReference`, `UnpinnedReference`).
///
/// Everything else (`PluginMissing`, `SecretMissing`, `BinaryUnreadable`,
/// `RegistryUnavailable`, `Unauthorized`, `MountFailed`, ...) may heal by
/// itself or by another object appearing, and reads `Reconciling`.
pub const STALLED_REASONS: &[&str] = &[
    "InvalidSpec",
    "DigestMismatch",
    "PathConflict",
    "PluginChanged",
    "TooLarge",
    "BinaryNotFound",
    "UnsafePath",
    "NotRegularFile",
    "UnsupportedImage",
    "InvalidManifest",
    "InvalidReference",
    "UnpinnedReference",
];

/// Whether a not-ready `reason` is `Stalled` (see [`STALLED_REASONS`]).
pub fn is_stalled(reason: &str) -> bool {
    STALLED_REASONS.contains(&reason)
}

/// The conditions of a resource in effect: `Ready=True` with `reason` and
/// `message` (kstatus Current). `extra` conditions (such as a catalog
/// entry's `Verified`) go after it.
pub fn ready(
    previous: Option<&[Condition]>,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Vec<Condition> {
    vec![condition(
        previous,
        CONDITION_READY,
        true,
        reason,
        message,
        generation,
    )]
}

/// The conditions of a resource that is not in effect: `Ready=False` and,
/// with the same reason and message, `Stalled=True` when [`is_stalled`]
/// (kstatus Failed) or `Reconciling=True` otherwise (kstatus InProgress).
pub fn not_ready(
    previous: Option<&[Condition]>,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Vec<Condition> {
    let message = message.into();
    let second = if is_stalled(reason) {
        CONDITION_STALLED
    } else {
        CONDITION_RECONCILING
    };
    vec![
        condition(
            previous,
            CONDITION_READY,
            false,
            reason,
            message.clone(),
            generation,
        ),
        condition(previous, second, true, reason, message, generation),
    ]
}

/// A condition of `type_` with `status` (`"True"`/`"False"`), carrying over
/// `lastTransitionTime` from `previous` when the status did not change.
pub fn condition(
    previous: Option<&[Condition]>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let last_transition_time = previous
        .into_iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The reason of condition `type_`, if present.
pub fn reason_of<'a>(conditions: Option<&'a [Condition]>, type_: &str) -> Option<&'a str> {
    conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == type_)
        .map(|c| c.reason.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_flip() {
        let first = condition(None, "Ready", false, "X", "m", Some(1));
        let prev = vec![first.clone()];
        let same = condition(Some(&prev), "Ready", false, "Y", "m2", Some(2));
        assert_eq!(same.last_transition_time, first.last_transition_time);
        assert_eq!(same.reason, "Y");
        std::thread::sleep(std::time::Duration::from_millis(5));
        let flipped = condition(Some(&prev), "Ready", true, "Z", "ok", Some(2));
        assert_ne!(flipped.last_transition_time, first.last_transition_time);
        assert_eq!(reason_of(Some(&prev), "Ready"), Some("X"));
    }

    /// Types and statuses of `conditions`, in order.
    fn shape(conditions: &[Condition]) -> Vec<(&str, &str, &str)> {
        conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect()
    }

    #[test]
    fn kstatus_shapes() {
        assert_eq!(
            shape(&ready(None, "Mounted", "ok", Some(3))),
            [("Ready", "True", "Mounted")]
        );
        for reason in ["InvalidSpec", "DigestMismatch", "PathConflict"] {
            let c = not_ready(None, reason, "bad", Some(3));
            assert_eq!(
                shape(&c),
                [("Ready", "False", reason), ("Stalled", "True", reason)]
            );
            assert!(
                c.iter()
                    .all(|c| c.message == "bad" && c.observed_generation == Some(3))
            );
        }
        for reason in [
            "PluginMissing",
            "SecretMissing",
            "RegistryUnavailable",
            "MountFailed",
        ] {
            assert_eq!(
                shape(&not_ready(None, reason, "wait", Some(3))),
                [("Ready", "False", reason), ("Reconciling", "True", reason)]
            );
        }
    }

    /// A stalled resource that becomes retryable keeps no `Stalled`, and the
    /// `Ready=False` transition time is carried over.
    #[test]
    fn stalled_then_reconciling() {
        let stalled = not_ready(None, "InvalidSpec", "bad", Some(1));
        let next = not_ready(Some(&stalled), "PluginMissing", "wait", Some(2));
        assert_eq!(
            shape(&next),
            [
                ("Ready", "False", "PluginMissing"),
                ("Reconciling", "True", "PluginMissing")
            ]
        );
        assert_eq!(
            next[0].last_transition_time,
            stalled[0].last_transition_time
        );
    }
}
