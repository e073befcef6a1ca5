//! A tenant's gate policy: its fields, defaults, bounds and validation.

use serde::{Deserialize, Serialize};

use crate::domain::Millis;
use crate::scoring::Decision;

const SECOND: Millis = 1000;

/// The longest duration a policy may set: ten years, in seconds. Longer is refused, so that no
/// window, gap or cooldown can overflow the clock arithmetic (docs/gate.md).
pub const MAX_DURATION_SECONDS: u64 = 10 * 366 * 24 * 3600;

/// A policy duration in milliseconds, saturating (validated policies stay far below).
pub(super) fn duration_millis(seconds: u64) -> Millis {
    Millis::try_from(seconds)
        .unwrap_or(Millis::MAX)
        .saturating_mul(SECOND)
}

/// A tenant's gate policy. Durations in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatePolicy {
    /// At most this many sends per prospect within `window_seconds`.
    pub max_sends: u32,
    pub window_seconds: u64,
    /// At least this long between two sends to one prospect.
    pub min_gap_seconds: u64,
    /// A candidate at least this similar to a send within `repeat_window_seconds` is a repeat.
    pub repeat_similarity: f32,
    pub repeat_window_seconds: u64,
    /// No sends this long after a negative reply.
    pub cooldown_seconds: u64,
    /// No sends this long after an unsubscribe or a complaint; 0 means until the policy changes.
    pub opt_out_seconds: u64,
    /// What a draft-check finding does: Review (caps the decision at REVIEW) or Reject.
    pub draft_check_action: Decision,
    /// Each draft-check finding multiplies the score by this. Service-wide (the `--gate-policy`
    /// file): never stored with a tenant's policy, which always uses the service's value.
    #[serde(skip_serializing)]
    pub draft_check_factor: f32,
    /// A draft is written for one person: below this score, after the findings' factors, it
    /// is REJECT. A draft with a finding (impersonal, self-focused) thus needs a score of at
    /// least `draft_min_score / draft_check_factor` to reach review, and one with two
    /// findings never does. Service-wide, like `draft_check_factor`.
    #[serde(skip_serializing)]
    pub draft_min_score: f32,
    /// The answer when the store cannot be reached.
    pub fail_decision: Decision,
}

impl Default for GatePolicy {
    fn default() -> Self {
        Self {
            max_sends: 3,
            window_seconds: 7 * 24 * 3600,
            min_gap_seconds: 2 * 24 * 3600,
            repeat_similarity: 0.9,
            repeat_window_seconds: 30 * 24 * 3600,
            cooldown_seconds: 30 * 24 * 3600,
            opt_out_seconds: 0,
            draft_check_action: Decision::Review,
            draft_check_factor: 0.55,
            draft_min_score: 0.5,
            fail_decision: Decision::Review,
        }
    }
}

impl GatePolicy {
    /// A tenant's stored policy with the service-wide fields taken from the service's `default`
    /// (stored policies of earlier versions hold an old `draft_check_factor`).
    pub fn with_service_fields(mut self, default: &GatePolicy) -> Self {
        self.draft_check_factor = default.draft_check_factor;
        self.draft_min_score = default.draft_min_score;
        self
    }

    /// Refuses policies that cannot be applied.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_sends == 0 {
            return Err("max_sends must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.repeat_similarity) {
            return Err("repeat_similarity must be within [0, 1]".into());
        }
        if !(0.0..=1.0).contains(&self.draft_check_factor) {
            return Err("draft_check_factor must be within [0, 1]".into());
        }
        if !(0.0..=1.0).contains(&self.draft_min_score) {
            return Err("draft_min_score must be within [0, 1]".into());
        }
        if self.draft_check_action == Decision::Send {
            return Err("draft_check_action must be REVIEW or REJECT".into());
        }
        for (name, seconds) in self.durations() {
            if seconds > MAX_DURATION_SECONDS {
                return Err(format!(
                    "{name} must be at most {MAX_DURATION_SECONDS} seconds (ten years)"
                ));
            }
        }
        Ok(())
    }

    /// Every duration of the policy, by field name.
    pub fn durations(&self) -> [(&'static str, u64); 5] {
        [
            ("window_seconds", self.window_seconds),
            ("min_gap_seconds", self.min_gap_seconds),
            ("repeat_window_seconds", self.repeat_window_seconds),
            ("cooldown_seconds", self.cooldown_seconds),
            ("opt_out_seconds", self.opt_out_seconds),
        ]
    }

    /// How far back from a planned send the gate reads sends: the longest of the cap's
    /// window, the repeat window and the minimum gap.
    pub fn lookback_millis(&self) -> Millis {
        duration_millis(
            self.window_seconds
                .max(self.repeat_window_seconds)
                .max(self.min_gap_seconds),
        )
    }

    /// How far back from a planned send the gate reads negative replies.
    pub fn cooldown_millis(&self) -> Millis {
        duration_millis(self.cooldown_seconds)
    }
}
