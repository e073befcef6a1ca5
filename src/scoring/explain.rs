//! Turns findings into reasons (codes + one line a marketer understands) and evidence.

use crate::domain::{Polarity, SignalSource};

use super::{Assessment, Decision, Evidence, Match, Reason, ReasonCode, Relevance, ScoringOptions};

/// What `assess` found, handed over for explanation.
pub(super) struct Findings<'a, 'p> {
    pub relevance: &'a Relevance<'p>,
    pub score: f32,
    pub specificity: f32,
    pub decision: Decision,
    pub negative: Option<Match>,
    pub generic: bool,
    pub has_baseline: bool,
    pub config: &'a ScoringOptions,
}

fn source_phrase(source: SignalSource) -> &'static str {
    match source {
        SignalSource::ForumPost => "forum post",
        SignalSource::CallNote => "call notes",
        SignalSource::CaseStudyRead => "case-study reading",
        SignalSource::EmailReply => "email reply",
        SignalSource::Survey => "survey answer",
        SignalSource::WebVisit => "site visit",
        SignalSource::Other => "recorded interest",
    }
}

fn evidence_of(relevance: &Relevance<'_>, m: &Match) -> Evidence {
    let s = &relevance.profile.signals()[m.index];
    Evidence {
        signal_id: s.id.clone(),
        source: s.source,
        polarity: s.polarity,
        similarity: m.similarity,
    }
}

/// The strongest matches, refused topics first when one decided the result.
fn evidence(f: &Findings<'_, '_>) -> Vec<Evidence> {
    let rel = f.relevance;
    let mut out: Vec<Evidence> = Vec::with_capacity(f.config.max_evidence);
    if let Some(neg) = &f.negative {
        out.push(evidence_of(rel, neg));
    }
    out.extend(
        rel.positives
            .iter()
            .filter(|m| m.similarity > 0.0)
            .take(f.config.max_evidence.saturating_sub(out.len()))
            .map(|m| evidence_of(rel, m)),
    );
    out
}

fn negative_reason(rel: &Relevance<'_>, neg: &Match) -> Reason {
    let s = &rel.profile.signals()[neg.index];
    Reason {
        code: ReasonCode::NegativeTopic,
        message: format!(
            "The prospect asked not to get this topic (their {} {}, similarity {:.2}).",
            source_phrase(s.source),
            s.id,
            neg.similarity
        ),
    }
}

pub(super) fn explain(f: Findings<'_, '_>) -> Assessment {
    let rel = f.relevance;
    let mut reasons = Vec::new();
    if let Some(neg) = &f.negative {
        reasons.push(negative_reason(rel, neg));
    }
    if f.generic {
        reasons.push(Reason {
            code: ReasonCode::Generic,
            message: format!(
                "Matches this prospect only through what this workspace's prospects share \
                 (relevance {:.2}, {:.2} once that is set aside): a blast, not a message for \
                 this person.",
                rel.value, rel.centered
            ),
        });
    }
    if f.score < f.config.review_threshold && f.negative.is_none() && !f.generic {
        reasons.push(Reason {
            code: ReasonCode::LowRelevance,
            message: format!(
                "Little in common with what the prospect has shown interest in (score {:.2}).",
                f.score
            ),
        });
    }
    if !f.has_baseline {
        reasons.push(Reason {
            code: ReasonCode::NoBaseline,
            message: format!(
                "Fewer than {} other prospects in this workspace: a targeted piece cannot be told \
                 from a blast yet, so nothing is sent without review.",
                f.config.min_baseline_prospects
            ),
        });
    }
    if let Some(best) = rel.positives.first()
        && f.decision != Decision::Reject
    {
        let s = &rel.profile.signals()[best.index];
        reasons.push(Reason {
            code: ReasonCode::MatchedInterest,
            message: format!(
                "Matches the prospect's {} {} (similarity {:.2}).",
                source_phrase(s.source),
                s.id,
                best.similarity
            ),
        });
    }
    Assessment {
        score: f.score,
        decision: f.decision,
        evidence: evidence(&f),
        reasons,
        relevance: rel.value,
        centered_relevance: rel.centered,
        specificity: f.specificity,
    }
}

/// No positive evidence in force: review, and claim no relevance.
pub(super) fn insufficient_profile(rel: &Relevance<'_>, config: &ScoringOptions) -> Assessment {
    let blocking = rel.blocking_negative(config);
    let mut reasons = Vec::new();
    let mut evidence = Vec::new();
    if let Some(neg) = blocking {
        reasons.push(negative_reason(rel, &neg));
        evidence.push(evidence_of(rel, &neg));
    }
    reasons.push(Reason {
        code: ReasonCode::InsufficientProfile,
        message: "Nothing is known yet about what this prospect wants: relevance cannot be judged."
            .into(),
    });
    debug_assert!(evidence.iter().all(|e| e.polarity == Polarity::Negative));
    Assessment {
        score: 0.0,
        decision: if blocking.is_some() {
            Decision::Reject
        } else {
            Decision::Review
        },
        reasons,
        evidence,
        relevance: 0.0,
        centered_relevance: 0.0,
        specificity: 0.0,
    }
}
