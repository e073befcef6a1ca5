//! The measured quality of a data set: rates, the report table, pooling, and the operating
//! curve of the GENERIC line with the area under it.

use serde::Serialize;

/// A share: hits out of total.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rate {
    pub hits: usize,
    pub total: usize,
}

impl Rate {
    fn merge(&mut self, other: Rate) {
        self.hits += other.hits;
        self.total += other.total;
    }

    pub(super) fn add(&mut self, hit: bool) {
        self.total += 1;
        self.hits += usize::from(hit);
    }

    /// hits / total; 1 for an empty set.
    pub fn value(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.hits as f64 / self.total as f64
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.3} ({}/{})", self.value(), self.hits, self.total)
    }
}

/// The measured quality of one data set.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Rank over all of a tenant's content: the first result is a piece written for the prospect.
    pub precision_at_1: Rate,
    /// Generic pieces REJECTed, over every (prospect, generic piece) pair.
    pub generic_rejected: Rate,
    /// Pieces written for a prospect allowed (SEND or REVIEW) for them.
    pub on_target_accepted: Rate,
    /// Refused topics that were not rejected, or were ranked first, over the refused pairs.
    pub negative_violations: Rate,
    /// Draft pairs where the personal draft scores above its generic twin.
    pub drafts_personal_higher: Rate,
    /// FindAudience: the first prospect is one the piece was written for.
    pub audience_at_1: Rate,
    /// Gate (dry-run Check): drafts with unrendered merge fields rejected.
    pub gate_placeholder_rejected: Rate,
    /// Gate (dry-run Check): personalized drafts allowed (SEND or REVIEW).
    pub gate_personal_allowed: Rate,
    /// Gate (dry-run Check): generic, self-focused and off-topic drafts rejected.
    pub gate_bad_drafts_rejected: Rate,
    /// On-target and generic (prospect, piece) pairs, for the operating curve.
    pub pairs: Vec<CurvePair>,
    /// Lines describing each miss.
    pub misses: Vec<String>,
    /// tenant,prospect,piece,label,decision,score,relevance,specificity,centered_relevance per
    /// scored pair.
    pub rows: Vec<String>,
}

impl Report {
    /// The metrics as a table.
    pub fn table(&self) -> String {
        let rows = [
            ("precision@1 of Rank", self.precision_at_1),
            ("generic blasts rejected", self.generic_rejected),
            ("on-target pieces accepted", self.on_target_accepted),
            ("negative-topic violations", self.negative_violations),
            (
                "personal draft above generic twin",
                self.drafts_personal_higher,
            ),
            ("FindAudience top-1 is a target", self.audience_at_1),
            (
                "gate: placeholder drafts rejected",
                self.gate_placeholder_rejected,
            ),
            (
                "gate: personalized drafts allowed",
                self.gate_personal_allowed,
            ),
            (
                "gate: generic, self-focused, off-topic drafts rejected",
                self.gate_bad_drafts_rejected,
            ),
        ];
        let mut out = String::from("| metric | value |\n|---|---|\n");
        for (name, rate) in rows {
            out.push_str(&format!("| {name} | {rate} |\n"));
        }
        out
    }

    /// Adds another report's counts to this one (pooling).
    pub fn merge(&mut self, other: &Report) {
        self.precision_at_1.merge(other.precision_at_1);
        self.generic_rejected.merge(other.generic_rejected);
        self.on_target_accepted.merge(other.on_target_accepted);
        self.negative_violations.merge(other.negative_violations);
        self.drafts_personal_higher
            .merge(other.drafts_personal_higher);
        self.audience_at_1.merge(other.audience_at_1);
        self.gate_placeholder_rejected
            .merge(other.gate_placeholder_rejected);
        self.gate_personal_allowed
            .merge(other.gate_personal_allowed);
        self.gate_bad_drafts_rejected
            .merge(other.gate_bad_drafts_rejected);
        self.pairs.extend(other.pairs.iter().copied());
        self.misses.extend(other.misses.iter().cloned());
        self.rows.extend(other.rows.iter().cloned());
    }

    /// The operating curve as a table, with the point the service's own decisions are at.
    pub fn curve_table(&self) -> String {
        format!(
            "{}the service's own line: generic rejected {}, on-target accepted {}\n",
            self.curve().table(),
            self.generic_rejected,
            self.on_target_accepted
        )
    }

    /// The operating curve of the GENERIC line: for each threshold on centered relevance, the
    /// share of generic pairs rejected and of on-target pairs accepted if the line were there
    /// (pairs rejected for another reason, such as a refused topic, stay rejected).
    pub fn curve(&self) -> Curve {
        let points = (0..=50)
            .map(|i| {
                let threshold = i as f32 * 0.01;
                let mut generic = Rate::default();
                let mut on_target = Rate::default();
                for p in &self.pairs {
                    let rejected = p.rejected_otherwise || p.centered_relevance < threshold;
                    if p.on_target {
                        on_target.add(!rejected);
                    } else {
                        generic.add(rejected);
                    }
                }
                CurvePoint {
                    threshold,
                    generic_rejected: generic.value(),
                    on_target_accepted: on_target.value(),
                }
            })
            .collect();
        Curve {
            points,
            auc: auc(&self.pairs),
        }
    }
}

/// One on-target or generic (prospect, piece) pair as the operating curve sees it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurvePair {
    pub on_target: bool,
    pub centered_relevance: f32,
    /// Rejected for a reason the GENERIC line does not move (a refused topic).
    pub rejected_otherwise: bool,
}

/// A point of the operating curve.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurvePoint {
    pub threshold: f32,
    pub generic_rejected: f64,
    pub on_target_accepted: f64,
}

/// The operating curve and the area under it.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub points: Vec<CurvePoint>,
    /// The probability that an on-target pair has a higher centered relevance than a generic
    /// one (ties count half): the area under generic-rejected against on-target-accepted.
    pub auc: f64,
}

impl Curve {
    /// The curve as a table (every other point from 0.10 to 0.36) and the area under it.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| GENERIC line (centered relevance) | generic rejected | on-target accepted |\n|---|---|---|\n",
        );
        // Points are 0.01 apart from 0: indices 10, 12, ..., 36.
        for p in self.points.iter().skip(10).take(27).step_by(2) {
            out.push_str(&format!(
                "| {:.2} | {:.3} | {:.3} |\n",
                p.threshold, p.generic_rejected, p.on_target_accepted
            ));
        }
        out.push_str(&format!("\narea under the curve: {:.4}\n", self.auc));
        out
    }
}

fn auc(pairs: &[CurvePair]) -> f64 {
    let targets: Vec<f32> = pairs
        .iter()
        .filter(|p| p.on_target)
        .map(|p| p.centered_relevance)
        .collect();
    let generic: Vec<f32> = pairs
        .iter()
        .filter(|p| !p.on_target)
        .map(|p| p.centered_relevance)
        .collect();
    if targets.is_empty() || generic.is_empty() {
        return 1.0;
    }
    let mut wins = 0.0;
    for t in &targets {
        for g in &generic {
            wins += if t > g {
                1.0
            } else if t == g {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (targets.len() * generic.len()) as f64
}
