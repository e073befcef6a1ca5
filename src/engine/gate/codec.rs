//! The gate's decisions encoded, in pairs: as JSON for the store (`to_stored` / `from_stored`)
//! and as postcard for the decision memory (`to_memory` / `from_memory`), both of the same serde
//! types. A decision read back is marked `replayed`.

use super::*;

/// A decision as the store keeps it.
pub(super) fn to_stored(outcome: &GateOutcome) -> Result<String, EngineError> {
    serde_json::to_string(outcome)
        .map_err(|e| EngineError::Internal(format!("encoding the decision: {e}")))
}

/// A stored decision, as the answer to a retry.
pub(super) fn from_stored(stored: &str) -> Result<GateOutcome, EngineError> {
    let mut outcome: GateOutcome = serde_json::from_str(stored)
        .map_err(|e| EngineError::Internal(format!("stored decision: {e}")))?;
    outcome.replayed = true;
    Ok(outcome)
}

/// A decision as the decision memory keeps it.
pub(super) fn to_memory(outcome: &GateOutcome) -> Result<Box<[u8]>, EngineError> {
    postcard::to_allocvec(outcome)
        .map(Vec::into_boxed_slice)
        .map_err(|e| EngineError::Internal(format!("encoding the decision: {e}")))
}

/// A remembered decision, as the answer to a retry.
pub(super) fn from_memory(kept: &[u8]) -> Result<GateOutcome, EngineError> {
    let mut outcome: GateOutcome = postcard::from_bytes(kept)
        .map_err(|e| EngineError::Internal(format!("remembered decision: {e}")))?;
    outcome.replayed = true;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::{Assessment, Evidence};

    fn a_refusal() -> GateOutcome {
        let reason = |code, message: &str| Reason {
            code,
            message: message.into(),
        };
        let evidence = |id: &str, similarity| Evidence {
            signal_id: id.into(),
            source: SignalSource::ForumPost,
            polarity: Polarity::Positive,
            similarity,
        };
        GateOutcome {
            result: Some(Scored {
                candidate_id: "access-reviews".into(),
                assessment: Assessment {
                    score: 0.731_234_5,
                    decision: Decision::Send,
                    reasons: vec![reason(
                        ReasonCode::MatchedInterest,
                        "Matches their interest: \"we are drowning in access reviews\"",
                    )],
                    evidence: vec![evidence("s-17", 0.62), evidence("s-3", -0.1)],
                    relevance: 0.58,
                    centered_relevance: 0.31,
                    specificity: 0.21,
                },
            }),
            decision: Decision::Reject,
            reasons: vec![reason(
                ReasonCode::FrequencyCap,
                "3 sends in the last 7 days; the policy allows 2",
            )],
            decision_id: decision_id(
                &Tenant::parse("t").unwrap(),
                &SendId::parse("send-1").unwrap(),
            ),
            next_allowed_at: Some(1_790_000_000_000),
            repeat_of: Some("send-0".into()),
            replayed: false,
            prospect_id: "p-1".into(),
            judged: "content:access-reviews".into(),
        }
    }

    #[test]
    fn a_remembered_decision_comes_back_whole_and_marked_replayed() {
        let first = a_refusal();
        let kept = to_memory(&first).unwrap();
        let again = from_memory(&kept).unwrap();
        assert!(again.replayed && !first.replayed);
        // Everything but `replayed`, compared through the store's encoding.
        assert_eq!(to_stored(&again).unwrap(), to_stored(&first).unwrap());
        // Compact: well under the JSON the store keeps.
        assert!(
            kept.len() * 2 < to_stored(&first).unwrap().len(),
            "{}",
            kept.len()
        );
    }

    #[test]
    fn a_damaged_memory_is_an_error_not_a_decision() {
        let kept = to_memory(&a_refusal()).unwrap();
        assert!(from_memory(&kept[..kept.len() / 2]).is_err());
    }
}
