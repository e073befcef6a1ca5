//! Scoring: pure functions from vectors and signal metadata to a score, a decision and reasons.
//! No I/O, no clock (callers pass `now`), no tokio, tonic, stores or models: only std, serde,
//! `domain`, and `regex` for the gate's merge-field patterns. `relevance` matches a candidate to
//! a prospect's evidence, `explain` words the reasons, `gate` holds the gate's rules; this file
//! the parameters and `assess`. docs/scoring.md explains the method and its defaults.

mod explain;
pub mod gate;
mod relevance;

pub use relevance::{
    Centering, Compact, Match, Profile, ProfileSignal, Relevance, SignalInfo, relevance,
    relevance_value,
};

use serde::{Deserialize, Serialize};

use crate::domain::{Millis, Polarity, SignalSource};

/// Every tunable number of the scoring model, with the defaults docs/scoring.md justifies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringOptions {
    /// Evidence loses half its prior every this many days...
    pub half_life_days: f32,
    /// ...but never falls below this share of it (an old interest is still an interest).
    pub recency_floor: f32,
    /// Prior of each source: a reply in the prospect's own words says more than a page view.
    pub source_weights: SourceWeights,
    /// How much a weak prior lowers a match: effective = similarity - penalty * (1 - prior).
    pub prior_penalty: f32,
    /// Sharpness of the soft maximum over matches (higher: closer to the plain maximum).
    pub sharpness: f32,
    /// Two signals of opposite polarity at least this similar are about the same topic; the
    /// older one no longer counts (a later "stop" outranks an earlier interest, and back).
    pub same_topic_similarity: f32,
    /// A negative signal at least this similar to the candidate rejects it, unless a positive
    /// signal matches the candidate more closely...
    pub negative_floor: f32,
    /// ...and from this similarity on, the candidate is on the refused topic itself: only an
    /// interest voiced after the refusal can keep it (a later "stop" outranks an earlier
    /// interest; a later interest reopens the topic).
    pub negative_on_topic: f32,
    /// Centered relevance at which the score is one half.
    pub relevance_midpoint: f32,
    /// Width of the score's logistic curve over centered relevance.
    pub relevance_scale: f32,
    /// Without a tenant baseline nothing is centered, and the score runs on raw relevance
    /// with this midpoint...
    pub uncentered_midpoint: f32,
    /// ...and this width (the calibration of raw relevance: unrelated texts sit at 0-0.25, the
    /// same industry at 0.25-0.45, a prospect's stated need at 0.5-0.85).
    pub uncentered_scale: f32,
    /// A rejected candidate whose raw relevance (before centering) is at least this is GENERIC:
    /// it matches the prospect only through what the tenant's prospects share; below it, the
    /// reason is LOW_RELEVANCE.
    pub generic_relevance: f32,
    /// Fewer other prospects than this and there is no baseline: decisions are capped at REVIEW.
    pub min_baseline_prospects: usize,
    /// How many of the tenant's prospects make the baseline sample.
    pub baseline_sample: usize,
    /// Score at or above which an allowed candidate is SEND.
    pub send_threshold: f32,
    /// Score at or above which a candidate is REVIEW (below: REJECT, LOW_RELEVANCE).
    pub review_threshold: f32,
    /// Evidence entries returned with a result.
    pub max_evidence: usize,
    /// Parameters of the previous method (a product of a relevance gate and a gate on the share
    /// of relevance above the median prospect), accepted so that older `--scoring-config` files
    /// still load, and ignored: startup warns when one is set.
    #[serde(skip_serializing)]
    pub specificity_midpoint: Option<f32>,
    #[serde(skip_serializing)]
    pub specificity_scale: Option<f32>,
    #[serde(skip_serializing)]
    pub generic_share: Option<f32>,
}

impl Default for ScoringOptions {
    fn default() -> Self {
        Self {
            half_life_days: 180.0,
            recency_floor: 0.6,
            source_weights: SourceWeights::default(),
            prior_penalty: 0.5,
            sharpness: 20.0,
            same_topic_similarity: 0.5,
            negative_floor: 0.35,
            negative_on_topic: 0.5,
            relevance_midpoint: 0.24,
            relevance_scale: 0.048,
            uncentered_midpoint: 0.42,
            uncentered_scale: 0.06,
            generic_relevance: 0.3,
            min_baseline_prospects: 3,
            baseline_sample: 64,
            send_threshold: 0.6,
            review_threshold: 0.3,
            max_evidence: 5,
            specificity_midpoint: None,
            specificity_scale: None,
            generic_share: None,
        }
    }
}

impl ScoringOptions {
    /// The parameters set that this version ignores (see `generic_share`).
    pub fn ignored_fields(&self) -> Vec<&'static str> {
        [
            ("specificity_midpoint", self.specificity_midpoint),
            ("specificity_scale", self.specificity_scale),
            ("generic_share", self.generic_share),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(name, _)| name)
        .collect()
    }

    /// Refuses parameters that would make scores meaningless.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("half_life_days", self.half_life_days),
            ("sharpness", self.sharpness),
            ("relevance_scale", self.relevance_scale),
            ("uncentered_scale", self.uncentered_scale),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a positive number"));
            }
        }
        let unit = [
            ("recency_floor", self.recency_floor),
            ("generic_relevance", self.generic_relevance),
            ("send_threshold", self.send_threshold),
            ("review_threshold", self.review_threshold),
        ];
        for (name, v) in unit {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be within [0, 1]"));
            }
        }
        if self.review_threshold > self.send_threshold {
            return Err("review_threshold must not exceed send_threshold".into());
        }
        if self.baseline_sample == 0 {
            return Err("baseline_sample must be at least 1".into());
        }
        self.source_weights.validate()
    }
}

/// The prior of each signal source, in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceWeights {
    pub forum_post: f32,
    pub call_note: f32,
    pub case_study_read: f32,
    pub email_reply: f32,
    pub survey: f32,
    pub web_visit: f32,
    pub other: f32,
}

impl Default for SourceWeights {
    fn default() -> Self {
        Self {
            forum_post: 0.9,
            call_note: 1.0,
            case_study_read: 0.7,
            email_reply: 1.0,
            survey: 0.9,
            web_visit: 0.3,
            other: 0.7,
        }
    }
}

impl SourceWeights {
    /// The prior of one source.
    pub fn of(&self, source: SignalSource) -> f32 {
        match source {
            SignalSource::ForumPost => self.forum_post,
            SignalSource::CallNote => self.call_note,
            SignalSource::CaseStudyRead => self.case_study_read,
            SignalSource::EmailReply => self.email_reply,
            SignalSource::Survey => self.survey,
            SignalSource::WebVisit => self.web_visit,
            SignalSource::Other => self.other,
        }
    }

    fn validate(&self) -> Result<(), String> {
        for s in SignalSource::ALL {
            if !(0.0..=1.0).contains(&self.of(s)) {
                return Err(format!(
                    "source_weights.{} must be within [0, 1]",
                    s.as_str()
                ));
            }
        }
        Ok(())
    }
}

/// Send, look at it first, or don't.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Decision {
    Send,
    Review,
    Reject,
}

/// Why a result is what it is. Codes mirror the API's ReasonCode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReasonCode {
    MatchedInterest,
    LowRelevance,
    Generic,
    NegativeTopic,
    InsufficientProfile,
    NoBaseline,
    FrequencyCap,
    Repeat,
    Cooldown,
    OptedOut,
    Placeholder,
    NoPersonalReference,
    SelfFocused,
    StoreUnavailable,
}

impl Decision {
    /// The lowercase name metrics label decisions with.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Send => "send",
            Decision::Review => "review",
            Decision::Reject => "reject",
        }
    }
}

impl ReasonCode {
    /// The lowercase name metrics label reasons with (the API's name without its prefix).
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::MatchedInterest => "matched_interest",
            ReasonCode::LowRelevance => "low_relevance",
            ReasonCode::Generic => "generic",
            ReasonCode::NegativeTopic => "negative_topic",
            ReasonCode::InsufficientProfile => "insufficient_profile",
            ReasonCode::NoBaseline => "no_baseline",
            ReasonCode::FrequencyCap => "frequency_cap",
            ReasonCode::Repeat => "repeat",
            ReasonCode::Cooldown => "cooldown",
            ReasonCode::OptedOut => "opted_out",
            ReasonCode::Placeholder => "placeholder",
            ReasonCode::NoPersonalReference => "no_personal_reference",
            ReasonCode::SelfFocused => "self_focused",
            ReasonCode::StoreUnavailable => "store_unavailable",
        }
    }
}

/// A reason code with a one-line message a marketer understands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
}

/// One signal that drove a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub signal_id: String,
    pub source: SignalSource,
    pub polarity: Polarity,
    pub similarity: f32,
}

/// The tenant's prospects in general, as seen by one candidate: the relevance of the candidate
/// to the typical sampled prospect other than the one being scored.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Baseline {
    /// How many prospects the statistics cover.
    pub prospects: usize,
    /// Their median relevance to the candidate: the typical prospect. The median, not the
    /// mean, so that the two or three other prospects a piece was also written for do not make
    /// it look generic.
    pub typical: f32,
}

impl Baseline {
    /// The baseline from the relevance values of other prospects.
    pub fn from_relevances(values: impl IntoIterator<Item = f32>) -> Self {
        let mut v: Vec<f32> = values.into_iter().collect();
        v.sort_by(f32::total_cmp);
        let n = v.len();
        let typical = match n {
            0 => 0.0,
            _ if n % 2 == 1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        };
        Self {
            prospects: n,
            typical,
        }
    }
}

/// Everything a scoring call returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub score: f32,
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    pub evidence: Vec<Evidence>,
    pub relevance: f32,
    /// Relevance with the tenant's common direction removed: what the decision is made on.
    /// (Absent from decisions stored before it existed.)
    #[serde(default)]
    pub centered_relevance: f32,
    pub specificity: f32,
}

fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Scores one candidate (its vector) for one prospect. The decision is made on relevance with
/// the tenant's common direction removed (`centering`, from the tenant's sampled prospects);
/// the baseline (the typical other prospect) gives the reported specificity and says whether
/// the tenant is large enough to tell a blast from a targeted piece at all.
pub fn assess(
    candidate: &[f32],
    profile: &Profile,
    baseline: Baseline,
    centering: Option<&Centering>,
    now: Millis,
    config: &ScoringOptions,
) -> Assessment {
    // A baseline needs enough other prospects, and a common direction made of enough
    // prospects' evidence to remove.
    let enough = baseline.prospects >= config.min_baseline_prospects;
    let centering = centering.filter(|c| enough && c.prospects() >= config.min_baseline_prospects);
    let rel = relevance(candidate, profile, centering, now, config);
    let has_baseline = rel.is_centered;
    let specificity = if has_baseline {
        rel.value - baseline.typical
    } else {
        0.0
    };

    if rel.active_positives == 0 {
        return explain::insufficient_profile(&rel, config);
    }

    let score = if has_baseline {
        logistic((rel.centered - config.relevance_midpoint) / config.relevance_scale)
    } else {
        logistic((rel.value - config.uncentered_midpoint) / config.uncentered_scale)
    }
    .clamp(0.0, 1.0);
    let negative = rel.blocking_negative(config);
    let low = score < config.review_threshold;
    // Below the line, and yet about the prospect's field before the tenant's common direction
    // was removed: the match is what every prospect of the tenant shares.
    let generic = low && has_baseline && rel.value >= config.generic_relevance;
    let decision = if negative.is_some() || low {
        Decision::Reject
    } else if score >= config.send_threshold && has_baseline {
        Decision::Send
    } else {
        Decision::Review
    };
    explain::explain(explain::Findings {
        relevance: &rel,
        score,
        specificity,
        decision,
        negative,
        generic,
        has_baseline,
        config,
    })
}

#[cfg(test)]
mod tests;
