//! The gate: send ids, channels, engagements, policies, decisions and history.

use super::*;

/// The pipeline's id for one send.
pub fn send_id(v: &mut Violations, field: &str, raw: String) -> Option<crate::domain::SendId> {
    keep(v, field, crate::domain::SendId::parse(raw))
}

/// A decision id to follow (RecordSend): empty means none; else as the gate makes them, a UUID.
pub fn decision_id(v: &mut Violations, raw: String) -> Option<Option<String>> {
    if raw.is_empty() {
        return Some(None);
    }
    match uuid::Uuid::parse_str(&raw) {
        Ok(id) => Some(Some(id.to_string())),
        Err(_) => {
            v.add(
                "decision_id",
                "must be a decision_id the gate returned (a UUID)",
            );
            None
        }
    }
}

/// A channel name: free text, at most 64 bytes, no control characters; may be empty.
pub fn channel(v: &mut Violations, raw: String) -> Option<String> {
    if raw.len() > 64 || raw.chars().any(char::is_control) {
        v.add(
            "channel",
            "must be at most 64 bytes without control characters",
        );
        return None;
    }
    Some(raw)
}

/// An engagement kind; unspecified is refused.
pub fn engagement_kind(v: &mut Violations, raw: i32) -> Option<crate::domain::EngagementKind> {
    use crate::domain::EngagementKind as K;
    match pb::EngagementKind::try_from(raw) {
        Ok(pb::EngagementKind::Opened) => Some(K::Opened),
        Ok(pb::EngagementKind::Clicked) => Some(K::Clicked),
        Ok(pb::EngagementKind::RepliedPositive) => Some(K::RepliedPositive),
        Ok(pb::EngagementKind::RepliedNegative) => Some(K::RepliedNegative),
        Ok(pb::EngagementKind::Unsubscribed) => Some(K::Unsubscribed),
        Ok(pb::EngagementKind::Complained) => Some(K::Complained),
        Ok(pb::EngagementKind::Resubscribed) => Some(K::Resubscribed),
        Ok(pb::EngagementKind::Unspecified) => {
            v.add("kind", "is required");
            None
        }
        Err(_) => {
            v.add("kind", format!("unknown EngagementKind value {raw}"));
            None
        }
    }
}

fn engagement_kind_to_pb(k: crate::domain::EngagementKind) -> pb::EngagementKind {
    use crate::domain::EngagementKind as K;
    match k {
        K::Opened => pb::EngagementKind::Opened,
        K::Clicked => pb::EngagementKind::Clicked,
        K::RepliedPositive => pb::EngagementKind::RepliedPositive,
        K::RepliedNegative => pb::EngagementKind::RepliedNegative,
        K::Unsubscribed => pb::EngagementKind::Unsubscribed,
        K::Complained => pb::EngagementKind::Complained,
        K::Resubscribed => pb::EngagementKind::Resubscribed,
    }
}

/// Optional reply text: empty means none.
pub fn reply_text(v: &mut Violations, raw: String, limits: &RequestLimits) -> Option<Option<Text>> {
    if raw.is_empty() {
        return Some(None);
    }
    keep(v, "text", Text::parse(raw, limits.max_text_bytes)).map(Some)
}

fn decision_from_pb(
    v: &mut Violations,
    field: &str,
    raw: i32,
    default: Decision,
    allow_send: bool,
) -> Option<Decision> {
    match pb::Decision::try_from(raw) {
        Ok(pb::Decision::Unspecified) => Some(default),
        Ok(pb::Decision::Send) if allow_send => Some(Decision::Send),
        Ok(pb::Decision::Send) => {
            v.add(field, "must be DECISION_REVIEW or DECISION_REJECT");
            None
        }
        Ok(pb::Decision::Review) => Some(Decision::Review),
        Ok(pb::Decision::Reject) => Some(Decision::Reject),
        Err(_) => {
            v.add(field, format!("unknown Decision value {raw}"));
            None
        }
    }
}

/// What the server allows a policy to set.
#[derive(Debug, Clone, Copy)]
pub struct PolicyBounds {
    /// A fail decision of SEND (`--allow-fail-send`).
    pub allow_fail_send: bool,
    /// The retention period in seconds, if any: no window may be longer.
    pub retention_seconds: Option<u64>,
}

/// A policy to set: zero fields take `base` (the configured default).
pub fn policy(
    v: &mut Violations,
    raw: Option<pb::Policy>,
    base: &crate::scoring::gate::GatePolicy,
    bounds: PolicyBounds,
) -> Option<crate::scoring::gate::GatePolicy> {
    let Some(pb::Policy {
        max_sends,
        window_seconds,
        min_gap_seconds,
        repeat_similarity,
        repeat_window_seconds,
        cooldown_seconds,
        opt_out_seconds,
        draft_check_action,
        fail_decision,
    }) = raw
    else {
        v.add("policy", "is required");
        return None;
    };
    let or = |x: u64, d: u64| if x == 0 { d } else { x };
    if !repeat_similarity.is_finite() || !(0.0..=1.0).contains(&repeat_similarity) {
        v.add("policy.repeat_similarity", "must be within [0, 1]");
    }
    let draft_check_action = decision_from_pb(
        v,
        "policy.draft_check_action",
        draft_check_action,
        base.draft_check_action,
        false,
    );
    if fail_decision == pb::Decision::Send as i32 && !bounds.allow_fail_send {
        v.add(
            "policy.fail_decision",
            "DECISION_SEND needs a server started with --allow-fail-send",
        );
        return None;
    }
    let fail_decision = decision_from_pb(
        v,
        "policy.fail_decision",
        fail_decision,
        base.fail_decision,
        true,
    );
    let (Some(draft_check_action), Some(fail_decision)) = (draft_check_action, fail_decision)
    else {
        return None;
    };
    let p = crate::scoring::gate::GatePolicy {
        max_sends: if max_sends == 0 {
            base.max_sends
        } else {
            max_sends
        },
        window_seconds: or(window_seconds, base.window_seconds),
        min_gap_seconds: or(min_gap_seconds, base.min_gap_seconds),
        repeat_similarity: if repeat_similarity == 0.0 {
            base.repeat_similarity
        } else {
            repeat_similarity
        },
        repeat_window_seconds: or(repeat_window_seconds, base.repeat_window_seconds),
        cooldown_seconds: or(cooldown_seconds, base.cooldown_seconds),
        opt_out_seconds: or(opt_out_seconds, base.opt_out_seconds),
        draft_check_action,
        draft_check_factor: base.draft_check_factor,
        draft_min_score: base.draft_min_score,
        fail_decision,
    };
    // Each duration named on its own; validate() then says the same for the policy file.
    for (name, seconds) in p.durations() {
        if let Some(retention) = bounds.retention_seconds
            && name != "opt_out_seconds"
            && seconds > retention
        {
            v.add(
                format!("policy.{name}"),
                format!(
                    "must be at most the retention period, {retention} seconds (--retention-days): older history is purged"
                ),
            );
        } else if seconds > crate::scoring::gate::MAX_DURATION_SECONDS {
            v.add(
                format!("policy.{name}"),
                format!(
                    "must be at most {} seconds (ten years)",
                    crate::scoring::gate::MAX_DURATION_SECONDS
                ),
            );
        }
    }
    if !v.is_empty() {
        return None;
    }
    match p.validate() {
        Ok(()) if v.is_empty() => Some(p),
        Ok(()) => None,
        Err(e) => {
            v.add("policy", e);
            None
        }
    }
}

/// A policy as the API returns it.
pub fn policy_to_pb(p: &crate::scoring::gate::GatePolicy) -> pb::Policy {
    pb::Policy {
        max_sends: p.max_sends,
        window_seconds: p.window_seconds,
        min_gap_seconds: p.min_gap_seconds,
        repeat_similarity: p.repeat_similarity,
        repeat_window_seconds: p.repeat_window_seconds,
        cooldown_seconds: p.cooldown_seconds,
        opt_out_seconds: p.opt_out_seconds,
        draft_check_action: decision_to_pb(p.draft_check_action) as i32,
        fail_decision: decision_to_pb(p.fail_decision) as i32,
    }
}

/// A gate outcome as the API returns it.
pub fn gate_decision_to_pb(o: crate::engine::gate::GateOutcome) -> pb::GateDecision {
    let crate::engine::gate::GateOutcome {
        result,
        decision,
        reasons,
        decision_id,
        next_allowed_at,
        repeat_of,
        replayed,
        prospect_id: _,
        judged: _,
    } = o;
    pb::GateDecision {
        result: result.map(scored_to_pb),
        decision: decision_to_pb(decision) as i32,
        reasons: reasons
            .into_iter()
            .map(|r| pb::Reason {
                code: reason_code_to_pb(r.code) as i32,
                message: r.message,
            })
            .collect(),
        decision_id,
        next_allowed_at: next_allowed_at.map(timestamp),
        repeat_of_send_id: repeat_of.unwrap_or_default(),
        replayed,
    }
}

/// A send record as the API returns it.
pub fn send_record_to_pb(s: crate::domain::SendRecord) -> pb::SendRecord {
    pb::SendRecord {
        send_id: s.send_id.to_string(),
        decision_id: s.decision_id,
        candidate_id: s.candidate_id,
        channel: s.channel,
        sent_at: Some(timestamp(s.sent_at)),
    }
}

/// A history event as the API returns it.
pub fn history_event_to_pb(e: crate::engine::gate::HistoryEvent) -> pb::HistoryEvent {
    use crate::engine::gate::HistoryEvent;
    let event = match e {
        HistoryEvent::Send(s) => pb::history_event::Event::Send(send_record_to_pb(s)),
        HistoryEvent::Engagement(g) => pb::history_event::Event::Engagement(pb::EngagementRecord {
            send_id: g.send_id.to_string(),
            kind: engagement_kind_to_pb(g.kind) as i32,
            at: Some(timestamp(g.at)),
        }),
    };
    pb::HistoryEvent { event: Some(event) }
}
