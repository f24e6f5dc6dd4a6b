//! kstatus conditions: building them so that `lastTransitionTime` only
//! moves when the condition's status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

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
}
