//! Relevance of a candidate to one prospect's evidence: each positive signal's similarity,
//! lowered by its prior (source, recency, weight), combined by a soft maximum; and the same
//! over centered similarities. docs/scoring.md, section 3, has the method.

use crate::domain::{Millis, Polarity, SignalSource};

use super::ScoringOptions;

const MILLIS_PER_DAY: f32 = 86_400_000.0;

/// One signal as scoring sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSignal {
    pub id: String,
    pub source: SignalSource,
    pub polarity: Polarity,
    pub observed_at: Millis,
    pub weight: f32,
    pub vector: Vec<f32>,
}

/// What scoring keeps of a signal besides its vector.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalInfo {
    pub id: String,
    pub source: SignalSource,
    pub polarity: Polarity,
    pub observed_at: Millis,
    pub weight: f32,
}

/// A unit vector kept in 8 bits per dimension with one scale: a quarter of the memory of f32,
/// so that profiles of hundreds of thousands of signals stay in memory. The error of a dot
/// product with a unit vector is about 1e-3, far below any threshold's resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Compact {
    scale: f32,
    data: Box<[i8]>,
}

impl Compact {
    pub fn new(v: &[f32]) -> Self {
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        Self {
            scale,
            data: v
                .iter()
                .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
                .collect(),
        }
    }

    /// Bytes held (the dimensions; the scale is beside them).
    pub fn dimensions(&self) -> usize {
        self.data.len()
    }

    /// Dot product with a full vector; 0 when the lengths differ.
    pub fn dot(&self, other: &[f32]) -> f32 {
        if other.len() != self.data.len() {
            return 0.0;
        }
        // Independent lanes let the compiler vectorize the sum (a single running f32 sum
        // cannot be reordered, so it would stay scalar).
        const LANES: usize = 16;
        let mut acc = [0.0f32; LANES];
        let q = self.data.chunks_exact(LANES);
        let x = other.chunks_exact(LANES);
        let (q_rest, x_rest) = (q.remainder(), x.remainder());
        for (qc, xc) in q.zip(x) {
            for i in 0..LANES {
                acc[i] += f32::from(qc[i]) * xc[i];
            }
        }
        let tail: f32 = q_rest
            .iter()
            .zip(x_rest)
            .map(|(q, x)| f32::from(*q) * x)
            .sum();
        (acc.iter().sum::<f32>() + tail) * self.scale
    }

    /// Adds the vector (dequantized from its 8 bits) to `sum`; nothing when the lengths differ.
    pub fn add_to(&self, sum: &mut [f32]) {
        if sum.len() != self.data.len() {
            return;
        }
        for (acc, q) in sum.iter_mut().zip(self.data.iter()) {
            *acc += f32::from(*q) * self.scale;
        }
    }

    fn dot_compact(&self, other: &Compact) -> f32 {
        if other.data.len() != self.data.len() {
            return 0.0;
        }
        let sum: i32 = self
            .data
            .iter()
            .zip(other.data.iter())
            .map(|(a, b)| i32::from(*a) * i32::from(*b))
            .sum();
        sum as f32 * self.scale * other.scale
    }
}

/// A tenant's common direction: the mean of the positive signal vectors in force of its sampled
/// prospects. What every prospect of a tenant shares (its industry's or its product's
/// vocabulary) lies along it; removing it before comparing leaves what is a prospect's own
/// ("all-but-the-top" post-processing of embeddings, with the mean only).
#[derive(Debug, Clone, PartialEq)]
pub struct Centering {
    mean: Vec<f32>,
    norm_sq: f32,
    prospects: usize,
}

impl Centering {
    /// The centering of a sum of `count` unit vectors from the signals of `prospects`
    /// prospects; `None` for none.
    pub fn from_sum(mut sum: Vec<f32>, count: usize, prospects: usize) -> Option<Self> {
        if count == 0 || prospects == 0 {
            return None;
        }
        let n = count as f32;
        sum.iter_mut().for_each(|x| *x /= n);
        let norm_sq = sum.iter().map(|x| x * x).sum();
        Some(Self {
            mean: sum,
            norm_sq,
            prospects,
        })
    }

    /// How many prospects' signals the mean is made of.
    pub fn prospects(&self) -> usize {
        self.prospects
    }

    /// The mean vector.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }
}

/// The candidate's side of centered similarities: its dot product with the mean and the norm
/// of the centered candidate, computed once per candidate.
#[derive(Debug, Clone, Copy)]
struct CenteredCandidate {
    dot_mean: f32,
    norm: f32,
    mean_sq: f32,
}

impl CenteredCandidate {
    fn new(candidate: &[f32], centering: &Centering) -> Option<Self> {
        if candidate.len() != centering.mean.len() {
            return None;
        }
        let dot_mean = crate::domain::dot(candidate, &centering.mean);
        let norm_sq = 1.0 - 2.0 * dot_mean + centering.norm_sq;
        (norm_sq > 1e-6).then(|| Self {
            dot_mean,
            norm: norm_sq.sqrt(),
            mean_sq: centering.norm_sq,
        })
    }

    /// Cosine of (signal - mean) and (candidate - mean), from the raw cosine of the two and the
    /// signal's dot product with the mean (both vectors of unit length).
    fn cosine(&self, similarity: f32, signal_dot_mean: f32) -> f32 {
        let signal_sq = 1.0 - 2.0 * signal_dot_mean + self.mean_sq;
        if signal_sq <= 1e-6 {
            return 0.0;
        }
        let dot = similarity - signal_dot_mean - self.dot_mean + self.mean_sq;
        (dot / (signal_sq.sqrt() * self.norm)).clamp(-1.0, 1.0)
    }
}

/// A prospect's evidence, with the signals later evidence replaced already marked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Profile {
    signals: Vec<SignalInfo>,
    vectors: Vec<Compact>,
    /// `superseded[i]`: a later signal of the opposite polarity is about the same topic.
    superseded: Vec<bool>,
}

impl Profile {
    /// Builds a profile, marking signals superseded by later opposite ones on the same topic.
    pub fn new(signals: Vec<ProfileSignal>, config: &ScoringOptions) -> Self {
        let vectors: Vec<Compact> = signals.iter().map(|s| Compact::new(&s.vector)).collect();
        let superseded = signals
            .iter()
            .enumerate()
            .map(|(i, s)| {
                signals.iter().enumerate().any(|(j, later)| {
                    later.polarity != s.polarity
                        && later.observed_at > s.observed_at
                        && vectors[j].dot_compact(&vectors[i]) >= config.same_topic_similarity
                })
            })
            .collect();
        let signals = signals
            .into_iter()
            .map(|s| SignalInfo {
                id: s.id,
                source: s.source,
                polarity: s.polarity,
                observed_at: s.observed_at,
                weight: s.weight,
            })
            .collect();
        Self {
            signals,
            vectors,
            superseded,
        }
    }

    /// Approximate heap bytes held, for cache weighing.
    pub fn approx_bytes(&self) -> usize {
        self.signals
            .iter()
            .zip(&self.vectors)
            .map(|(s, v)| s.id.len() + v.data.len() + 96)
            .sum::<usize>()
            + 64
    }

    /// The dimension of the profile's vectors; `None` for an empty profile.
    pub fn dimensions(&self) -> Option<usize> {
        self.vectors.first().map(Compact::dimensions)
    }

    /// The signals, in the order given.
    pub fn signals(&self) -> &[SignalInfo] {
        &self.signals
    }

    /// Whether signal `i` was replaced by a later opposite signal on the same topic.
    pub fn is_superseded(&self, i: usize) -> bool {
        self.superseded[i]
    }

    /// Signals still in force (not superseded) with the given polarity.
    fn active(&self, polarity: Polarity) -> impl Iterator<Item = (usize, &SignalInfo)> + Clone {
        self.signals
            .iter()
            .enumerate()
            .filter(move |(i, s)| s.polarity == polarity && !self.superseded[*i])
    }

    /// How many positive signals are in force.
    pub fn active_positive_count(&self) -> usize {
        self.active(Polarity::Positive).count()
    }

    /// Adds the vectors of the positive signals in force to `sum` (of the model's dimension)
    /// and returns how many there were: the profile's part of a tenant's `Centering`.
    pub fn add_positives_to(&self, sum: &mut [f32]) -> usize {
        let mut n = 0;
        for (i, _) in self.active(Polarity::Positive) {
            if self.vectors[i].dimensions() == sum.len() {
                self.vectors[i].add_to(sum);
                n += 1;
            }
        }
        n
    }
}

/// One signal's match with the candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// Index into `Profile::signals`.
    pub index: usize,
    /// Cosine similarity to the candidate.
    pub similarity: f32,
    /// Cosine similarity after the tenant's common direction is removed from both (the raw
    /// similarity when there is no centering).
    pub centered: f32,
    /// Centered similarity lowered by the weakness of the signal's prior (positive signals
    /// only).
    pub effective: f32,
}

/// The relevance of a candidate to a profile, with the matches behind it.
#[derive(Debug, Clone)]
pub struct Relevance<'p> {
    pub profile: &'p Profile,
    /// Soft maximum of the raw similarities lowered by their priors, in [0, 1].
    pub value: f32,
    /// The same over centered similarities, in [0, 1]: what decisions are made on. Equal to
    /// `value` when nothing was centered (see `is_centered`).
    pub centered: f32,
    /// Whether `centered` is centered: a centering was given and applies to the candidate.
    pub is_centered: bool,
    /// Positive signals in force.
    pub active_positives: usize,
    /// Positive matches, best effective (centered) first.
    pub positives: Vec<Match>,
    /// Negative matches in force, most similar first.
    pub negatives: Vec<Match>,
}

impl Relevance<'_> {
    /// The negative match that rejects the candidate, if any: similar enough to a refused
    /// topic, and not outdone by a closer match with something wanted. On the refused topic
    /// itself (`negative_on_topic`) only interests voiced after the refusal count.
    pub fn blocking_negative(&self, config: &ScoringOptions) -> Option<Match> {
        let signals = self.profile.signals();
        self.negatives
            .iter()
            .filter(|n| n.similarity >= config.negative_floor)
            .find(|n| {
                let refused_at = signals[n.index].observed_at;
                let on_topic = n.similarity >= config.negative_on_topic;
                !self.positives.iter().any(|p| {
                    p.similarity > n.similarity
                        && (!on_topic || signals[p.index].observed_at > refused_at)
                })
            })
            .copied()
    }
}

/// A signal's prior in [0, 1]: source weight x recency x weight.
fn prior(signal: &SignalInfo, now: Millis, config: &ScoringOptions) -> f32 {
    let age_days = ((now - signal.observed_at).max(0) as f32) / MILLIS_PER_DAY;
    let decay = 0.5f32.powf(age_days / config.half_life_days);
    let recency = config.recency_floor + (1.0 - config.recency_floor) * decay;
    (config.source_weights.of(signal.source) * recency * signal.weight).clamp(0.0, 1.0)
}

/// Soft maximum of `values` (a softmax-weighted mean); 0 for none.
fn soft_max(values: impl Iterator<Item = f32> + Clone, sharpness: f32) -> f32 {
    let top = values.clone().fold(f32::NEG_INFINITY, f32::max);
    if !top.is_finite() {
        return 0.0;
    }
    let (num, den) = values.fold((0.0f32, 0.0f32), |(num, den), v| {
        let w = (sharpness * (v - top)).exp();
        (num + w * v, den + w)
    });
    num / den
}

/// The relevance value only, without allocating: for baselines over many prospects.
pub fn relevance_value(
    candidate: &[f32],
    profile: &Profile,
    now: Millis,
    config: &ScoringOptions,
) -> f32 {
    let effective = profile.active(Polarity::Positive).map(|(i, s)| {
        profile.vectors[i].dot(candidate) - config.prior_penalty * (1.0 - prior(s, now, config))
    });
    // Two passes over a cheap iterator beat collecting into a Vec on this hot path.
    soft_max(effective, config.sharpness).clamp(0.0, 1.0)
}

/// The relevance of `candidate` to `profile`, with its matches; centered relevance and the
/// matches' order use `centering` when there is one.
pub fn relevance<'p>(
    candidate: &[f32],
    profile: &'p Profile,
    centering: Option<&Centering>,
    now: Millis,
    config: &ScoringOptions,
) -> Relevance<'p> {
    let centered_candidate =
        centering.and_then(|c| Some((c, CenteredCandidate::new(candidate, c)?)));
    let mut raw_effective = Vec::new();
    let mut positives: Vec<Match> = profile
        .active(Polarity::Positive)
        .map(|(index, s)| {
            let vector = &profile.vectors[index];
            let similarity = vector.dot(candidate);
            let centered = match &centered_candidate {
                Some((c, cc)) => cc.cosine(similarity, vector.dot(&c.mean)),
                None => similarity,
            };
            let penalty = config.prior_penalty * (1.0 - prior(s, now, config));
            raw_effective.push(similarity - penalty);
            Match {
                index,
                similarity,
                centered,
                effective: centered - penalty,
            }
        })
        .collect();
    let value = soft_max(raw_effective.iter().copied(), config.sharpness).clamp(0.0, 1.0);
    let centered =
        soft_max(positives.iter().map(|m| m.effective), config.sharpness).clamp(0.0, 1.0);
    positives.sort_by(|a, b| b.effective.total_cmp(&a.effective));
    let mut negatives: Vec<Match> = profile
        .active(Polarity::Negative)
        .map(|(index, _)| {
            let similarity = profile.vectors[index].dot(candidate);
            Match {
                index,
                similarity,
                centered: similarity,
                effective: similarity,
            }
        })
        .collect();
    negatives.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
    Relevance {
        profile,
        value,
        centered,
        is_centered: centered_candidate.is_some(),
        active_positives: positives.len(),
        positives,
        negatives,
    }
}
