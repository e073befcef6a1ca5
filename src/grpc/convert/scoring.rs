//! Candidates, audience limits and scored results.

use super::prospect::polarity_to_pb;
use super::*;

/// A candidate under `field`; a draft without an id gets `default_draft_id`.
pub fn candidate(
    v: &mut Violations,
    field: &str,
    raw: Option<pb::Candidate>,
    default_draft_id: String,
    limits: &RequestLimits,
) -> Option<CandidateInput> {
    let Some(pb::Candidate { item }) = raw else {
        v.add(field, "is required");
        return None;
    };
    match item {
        None => {
            v.add(
                format!("{field}.item"),
                "one of content_id or draft is required",
            );
            None
        }
        Some(pb::candidate::Item::ContentId(id)) => {
            content_id(v, &format!("{field}.content_id"), id).map(CandidateInput::Content)
        }
        Some(pb::candidate::Item::Draft(pb::Draft { title, body, id })) => {
            let title = short_text(v, &format!("{field}.draft.title"), title);
            let body = keep(
                v,
                &format!("{field}.draft.body"),
                Text::parse(body, limits.max_text_bytes),
            );
            let id = if id.is_empty() {
                Some(default_draft_id)
            } else {
                keep(v, &format!("{field}.draft.id"), ContentId::parse(id)).map(|c| c.to_string())
            };
            match (title, body, id) {
                (Some(title), Some(body), Some(id)) => {
                    Some(CandidateInput::Draft { id, title, body })
                }
                _ => None,
            }
        }
    }
}

/// Candidates of a Rank request: 1 to `max_candidates`.
pub fn candidates(
    v: &mut Violations,
    raw: Vec<pb::Candidate>,
    limits: &RequestLimits,
) -> Option<Vec<CandidateInput>> {
    if raw.is_empty() {
        v.add("candidates", "at least one candidate is required");
        return None;
    }
    if raw.len() > limits.max_candidates {
        v.add(
            "candidates",
            format!(
                "{} candidates sent; at most {} are accepted per call",
                raw.len(),
                limits.max_candidates
            ),
        );
        return None;
    }
    let parsed: Vec<Option<CandidateInput>> = raw
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            candidate(
                v,
                &format!("candidates[{i}]"),
                Some(c),
                format!("draft:{i}"),
                limits,
            )
        })
        .collect();
    parsed.into_iter().collect()
}

/// The audience size: 0 means 10; at most `max_audience`.
pub fn audience_limit(v: &mut Violations, raw: u32, limits: &RequestLimits) -> Option<usize> {
    match raw as usize {
        0 => Some(10),
        n if n > limits.max_audience => {
            v.add("limit", format!("must be at most {}", limits.max_audience));
            None
        }
        n => Some(n),
    }
}

/// A decision as the API names it.
pub fn decision_to_pb(d: Decision) -> pb::Decision {
    match d {
        Decision::Send => pb::Decision::Send,
        Decision::Review => pb::Decision::Review,
        Decision::Reject => pb::Decision::Reject,
    }
}

/// A reason code as the API names it.
pub fn reason_code_to_pb(c: ReasonCode) -> pb::ReasonCode {
    match c {
        ReasonCode::MatchedInterest => pb::ReasonCode::MatchedInterest,
        ReasonCode::LowRelevance => pb::ReasonCode::LowRelevance,
        ReasonCode::Generic => pb::ReasonCode::Generic,
        ReasonCode::NegativeTopic => pb::ReasonCode::NegativeTopic,
        ReasonCode::InsufficientProfile => pb::ReasonCode::InsufficientProfile,
        ReasonCode::NoBaseline => pb::ReasonCode::NoBaseline,
        ReasonCode::FrequencyCap => pb::ReasonCode::FrequencyCap,
        ReasonCode::Repeat => pb::ReasonCode::Repeat,
        ReasonCode::Cooldown => pb::ReasonCode::Cooldown,
        ReasonCode::OptedOut => pb::ReasonCode::OptedOut,
        ReasonCode::Placeholder => pb::ReasonCode::Placeholder,
        ReasonCode::NoPersonalReference => pb::ReasonCode::NoPersonalReference,
        ReasonCode::SelfFocused => pb::ReasonCode::SelfFocused,
        ReasonCode::StoreUnavailable => pb::ReasonCode::StoreUnavailable,
    }
}

/// A scored candidate as the API returns it.
pub fn scored_to_pb(s: Scored) -> pb::ScoreResult {
    let Scored {
        candidate_id,
        assessment: a,
    } = s;
    pb::ScoreResult {
        candidate_id,
        score: a.score,
        decision: decision_to_pb(a.decision) as i32,
        reasons: a
            .reasons
            .into_iter()
            .map(|r| pb::Reason {
                code: reason_code_to_pb(r.code) as i32,
                message: r.message,
            })
            .collect(),
        evidence: a
            .evidence
            .into_iter()
            .map(|e| pb::Evidence {
                signal_id: e.signal_id,
                source: source_to_pb(e.source) as i32,
                similarity: e.similarity,
                polarity: polarity_to_pb(e.polarity) as i32,
            })
            .collect(),
        relevance: a.relevance,
        specificity: a.specificity,
        centered_relevance: a.centered_relevance,
    }
}
