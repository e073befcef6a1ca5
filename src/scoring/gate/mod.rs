//! The send-path gate's rules: fatigue, repeats, cooldown after bad reactions, and draft checks.
//! Pure functions of the history, the policy and `now`; the engine reads the history and
//! records the outcome. Imports nothing but the domain types, the scoring types and `regex`;
//! docs/gate.md explains the rules.
//!
//! Window edges: a send counts against a window when it happened strictly less than the window
//! before the planned send, and two sends exactly `min_gap` apart are allowed.

mod drafts;
mod history;
mod policy;

pub use drafts::{apply_draft_checks, apply_draft_line, draft_checks};
pub use history::{history_rules, opt_out_rule, unread_history_rule};
pub use policy::{GatePolicy, MAX_DURATION_SECONDS};

use crate::domain::{EngagementKind, Millis};

use super::{Compact, Decision, Reason, ReasonCode};

/// A past send, as the gate sees it.
#[derive(Debug, Clone, Copy)]
pub struct PastSend<'a> {
    pub send_id: &'a str,
    pub sent_at: Millis,
    /// Its embedding, at 8 bits per dimension as the history cache keeps it.
    pub vector: &'a Compact,
}

/// A past reaction, as the gate sees it.
#[derive(Debug, Clone, Copy)]
pub struct PastEngagement {
    pub kind: EngagementKind,
    pub at: Millis,
}

/// A prospect's opt-out, as the gate keeps it: a state set by an unsubscribe or a complaint and
/// lifted only by a re-subscribe or an operator, never an event that newer events could hide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OptOut {
    /// When the latest opt-out event happened.
    pub since: Millis,
    /// Whether any of them was a complaint.
    pub complained: bool,
}

/// What the gate found; `decision` is the most a send may get (Send when nothing applies).
#[derive(Debug, Clone, PartialEq)]
pub struct GateFindings {
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    pub next_allowed_at: Option<Millis>,
    pub repeat_of: Option<String>,
    /// Multiplies the score (draft checks).
    pub score_factor: f32,
}

impl GateFindings {
    /// Nothing found: a send may go out.
    pub fn none() -> Self {
        Self {
            decision: Decision::Send,
            reasons: Vec::new(),
            next_allowed_at: None,
            repeat_of: None,
            score_factor: 1.0,
        }
    }

    pub(super) fn cap(&mut self, decision: Decision, code: ReasonCode, message: String) {
        self.decision = self.decision.max(decision);
        self.reasons.push(Reason { code, message });
    }

    /// As `cap`, for a reason that outranks every other found: it goes first.
    pub(super) fn cap_first(&mut self, decision: Decision, code: ReasonCode, message: String) {
        self.decision = self.decision.max(decision);
        self.reasons.insert(0, Reason { code, message });
    }
}
