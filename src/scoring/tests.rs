//! Table tests and property tests of the scoring maths, on hand-made unit vectors.

use proptest::prelude::*;

use super::*;
use crate::domain::{Polarity, SignalSource};

const DAY: Millis = 86_400_000;
const NOW: Millis = 1_000 * DAY;

/// A unit vector in 3-d at `angle` radians from the x axis, in the x-y plane.
fn at(angle: f32) -> Vec<f32> {
    vec![angle.cos(), angle.sin(), 0.0]
}

/// A unit vector whose dot product with x is `cos`.
fn with_cos(cos: f32) -> Vec<f32> {
    at(cos.clamp(-1.0, 1.0).acos())
}

fn signal(id: &str, polarity: Polarity, days_ago: i64, vector: Vec<f32>) -> ProfileSignal {
    ProfileSignal {
        id: id.into(),
        source: SignalSource::EmailReply,
        polarity,
        observed_at: NOW - days_ago * DAY,
        weight: 1.0,
        vector,
    }
}

fn profile(signals: Vec<ProfileSignal>) -> Profile {
    Profile::new(signals, &ScoringOptions::default())
}

fn x() -> Vec<f32> {
    vec![1.0, 0.0, 0.0]
}

fn baseline(typical: f32) -> Baseline {
    Baseline {
        prospects: 10,
        typical,
    }
}

/// A tenant whose prospects' evidence averages to `mean`.
fn tenant_mean(mean: Vec<f32>) -> Centering {
    Centering::from_sum(mean, 1, 10).expect("one vector")
}

/// `assess` of the x axis with no tenant centering and the default config.
fn uncentered(p: &Profile, typical: f32) -> Assessment {
    assess(
        &x(),
        p,
        baseline(typical),
        None,
        NOW,
        &ScoringOptions::default(),
    )
}

fn codes(a: &Assessment) -> Vec<ReasonCode> {
    a.reasons.iter().map(|r| r.code).collect()
}

#[test]
fn a_close_specific_match_is_sent_with_its_evidence() {
    let p = profile(vec![
        signal("s1", Polarity::Positive, 1, with_cos(0.75)),
        signal("s2", Polarity::Positive, 1, with_cos(0.1)),
    ]);
    let common = tenant_mean(vec![0.0, 0.0, 0.3]);
    let a = assess(
        &x(),
        &p,
        baseline(0.2),
        Some(&common),
        NOW,
        &ScoringOptions::default(),
    );
    assert_eq!(a.decision, Decision::Send, "{a:?}");
    assert!(a.score > 0.9);
    assert_eq!(a.evidence[0].signal_id, "s1");
    assert!(codes(&a).contains(&ReasonCode::MatchedInterest));
}

#[test]
fn a_piece_that_fits_everyone_is_generic_whatever_its_similarity() {
    // The prospect's interest is close to the piece (cos 0.6), but the whole tenant leans the
    // same way: once the common direction (0.8 along the piece) is removed, nothing is left.
    let p = profile(vec![signal("s1", Polarity::Positive, 1, with_cos(0.6))]);
    let common = tenant_mean(vec![0.8, 0.0, 0.0]);
    let a = assess(
        &x(),
        &p,
        baseline(0.58),
        Some(&common),
        NOW,
        &ScoringOptions::default(),
    );
    assert_eq!(a.decision, Decision::Reject);
    assert!(codes(&a).contains(&ReasonCode::Generic), "{a:?}");
    assert!(a.relevance > 0.5 && a.centered_relevance < 0.1, "{a:?}");
}

#[test]
fn what_stands_out_from_the_tenant_is_sent_and_what_matches_nothing_is_low_relevance() {
    let config = ScoringOptions::default();
    // The tenant leans along y; the prospect's interest and the piece share x.
    let common = tenant_mean(vec![0.0, 0.5, 0.0]);
    let p = profile(vec![signal("s1", Polarity::Positive, 1, with_cos(0.8))]);
    let a = assess(&x(), &p, baseline(0.1), Some(&common), NOW, &config);
    assert_eq!(a.decision, Decision::Send, "{a:?}");
    // A piece orthogonal to everything the prospect said is LOW_RELEVANCE, not GENERIC.
    let far = profile(vec![signal(
        "s1",
        Polarity::Positive,
        1,
        vec![0.0, 0.0, 1.0],
    )]);
    let b = assess(&x(), &far, baseline(0.1), Some(&common), NOW, &config);
    assert_eq!(b.decision, Decision::Reject);
    assert_eq!(codes(&b), vec![ReasonCode::LowRelevance], "{b:?}");
}

#[test]
fn centered_similarity_is_the_cosine_of_the_centered_vectors() {
    let p = profile(vec![signal("s1", Polarity::Positive, 0, at(0.7))]);
    let mean = vec![0.3, -0.2, 0.1];
    let common = tenant_mean(mean.clone());
    let rel = relevance(&x(), &p, Some(&common), NOW, &ScoringOptions::default());
    let centered = |v: Vec<f32>| -> Vec<f32> {
        let d: Vec<f32> = v.iter().zip(&mean).map(|(a, m)| a - m).collect();
        let n = d.iter().map(|x| x * x).sum::<f32>().sqrt();
        d.iter().map(|x| x / n).collect()
    };
    let expected = crate::domain::dot(&centered(at(0.7)), &centered(x()));
    assert!(
        (rel.positives[0].centered - expected).abs() < 0.01,
        "{rel:?} vs {expected}"
    );
}

#[test]
fn without_positive_evidence_the_answer_is_review_with_no_claimed_relevance() {
    let p = profile(vec![]);
    let a = uncentered(&p, 0.2);
    assert_eq!(a.decision, Decision::Review);
    assert_eq!(a.score, 0.0);
    assert_eq!(codes(&a), vec![ReasonCode::InsufficientProfile]);
}

#[test]
fn a_later_stop_outranks_an_earlier_interest_on_the_same_topic() {
    // The old interest is even closer to the candidate than the refusal.
    let p = profile(vec![
        signal("old-interest", Polarity::Positive, 300, with_cos(0.8)),
        signal("stop", Polarity::Negative, 10, with_cos(0.7)),
        signal("other", Polarity::Positive, 5, vec![0.0, 0.0, 1.0]),
    ]);
    assert!(p.is_superseded(0));
    let a = uncentered(&p, 0.1);
    assert_eq!(a.decision, Decision::Reject, "{a:?}");
    assert_eq!(codes(&a)[0], ReasonCode::NegativeTopic);
    assert_eq!(a.evidence[0].signal_id, "stop");
}

#[test]
fn a_later_interest_outranks_an_earlier_stop() {
    let p = profile(vec![
        signal("stop", Polarity::Negative, 300, with_cos(0.8)),
        signal("new-interest", Polarity::Positive, 10, with_cos(0.75)),
    ]);
    assert!(p.is_superseded(0));
    let a = uncentered(&p, 0.1);
    assert_ne!(a.decision, Decision::Reject, "{a:?}");
}

#[test]
fn near_a_refused_topic_but_closer_to_a_wanted_one_is_not_punished() {
    // The refusal is about a different topic (angle 1.6 from the interest), so neither
    // supersedes the other; the candidate is near it (cos 0.45) but closer to the interest.
    let p = profile(vec![
        signal("interest", Polarity::Positive, 10, at(-0.5)),
        signal("stop", Polarity::Negative, 5, at(1.1)),
    ]);
    assert!(!p.is_superseded(0) && !p.is_superseded(1));
    let without_stop = profile(vec![signal("interest", Polarity::Positive, 10, at(-0.5))]);
    let config = ScoringOptions::default();
    let a = assess(&x(), &p, baseline(0.1), None, NOW, &config);
    let b = assess(&x(), &without_stop, baseline(0.1), None, NOW, &config);
    assert_eq!(a.score, b.score);
    assert_eq!(a.decision, b.decision);
}

#[test]
fn on_the_refused_topic_only_a_later_interest_keeps_the_piece() {
    // The candidate is on the refused topic (cos 0.6) and closer still to an interest on a
    // neighbouring topic (cos 0.8) that is not similar enough to the refusal to be replaced.
    let config = ScoringOptions::default();
    let interest = || {
        let mut v = with_cos(0.8);
        v[1] = -v[1];
        v
    };
    let refusal = with_cos(0.6);
    assert!(crate::domain::dot(&interest(), &refusal) < config.same_topic_similarity);
    let older_interest = profile(vec![
        signal("interest", Polarity::Positive, 30, interest()),
        signal("stop", Polarity::Negative, 5, refusal.clone()),
    ]);
    let a = assess(&x(), &older_interest, baseline(0.1), None, NOW, &config);
    assert_eq!(a.decision, Decision::Reject, "{a:?}");
    assert_eq!(codes(&a)[0], ReasonCode::NegativeTopic);

    let newer_interest = profile(vec![
        signal("interest", Polarity::Positive, 1, interest()),
        signal("stop", Polarity::Negative, 5, refusal),
    ]);
    let b = assess(&x(), &newer_interest, baseline(0.1), None, NOW, &config);
    assert_ne!(b.decision, Decision::Reject, "{b:?}");
}

#[test]
fn without_a_common_direction_there_is_no_baseline_and_raw_relevance_decides() {
    // Enough other prospects, but none of them with evidence to make a mean of.
    let config = ScoringOptions::default();
    let close = profile(vec![signal("s1", Polarity::Positive, 1, with_cos(0.8))]);
    let a = assess(&x(), &close, baseline(0.1), None, NOW, &config);
    assert_eq!(a.decision, Decision::Review, "{a:?}");
    assert!(codes(&a).contains(&ReasonCode::NoBaseline), "{a:?}");
    // Raw relevance of 0.3 is the same industry at most: rejected, and never called GENERIC.
    let far = profile(vec![signal("s1", Polarity::Positive, 1, with_cos(0.3))]);
    let b = assess(&x(), &far, baseline(0.1), None, NOW, &config);
    assert_eq!(b.decision, Decision::Reject, "{b:?}");
    assert!(!codes(&b).contains(&ReasonCode::Generic), "{b:?}");
    // A mean made of fewer prospects than a baseline needs is no baseline either.
    let thin = Centering::from_sum(vec![0.0, 0.5, 0.0], 1, 1).unwrap();
    let c = assess(&x(), &close, baseline(0.1), Some(&thin), NOW, &config);
    assert!(codes(&c).contains(&ReasonCode::NoBaseline), "{c:?}");
}

#[test]
fn a_small_tenant_caps_decisions_at_review() {
    let p = profile(vec![signal("s1", Polarity::Positive, 1, with_cos(0.8))]);
    let small = Baseline {
        prospects: 1,
        typical: 0.1,
    };
    let a = assess(&x(), &p, small, None, NOW, &ScoringOptions::default());
    assert_eq!(a.decision, Decision::Review);
    assert!(codes(&a).contains(&ReasonCode::NoBaseline));
}

#[test]
fn page_views_count_less_than_replies() {
    let mut view = signal("v", Polarity::Positive, 1, with_cos(0.6));
    view.source = SignalSource::WebVisit;
    let reply = signal("r", Polarity::Positive, 1, with_cos(0.6));
    let config = ScoringOptions::default();
    let rv = relevance_value(&x(), &profile(vec![view]), NOW, &config);
    let rr = relevance_value(&x(), &profile(vec![reply]), NOW, &config);
    assert!(rr > rv);
}

#[test]
fn the_baseline_is_the_median_of_other_prospects() {
    let b = Baseline::from_relevances([0.1, 0.9, 0.2, 0.8, 0.15]);
    assert_eq!(b.prospects, 5);
    assert_eq!(b.typical, 0.2);
    assert_eq!(Baseline::from_relevances([0.1, 0.3]).typical, 0.2);
    assert_eq!(Baseline::from_relevances([]).typical, 0.0);
}

#[test]
fn defaults_are_valid_and_bad_values_are_refused() {
    assert!(ScoringOptions::default().validate().is_ok());
    let bad = ScoringOptions {
        review_threshold: 0.9,
        send_threshold: 0.5,
        ..ScoringOptions::default()
    };
    assert!(bad.validate().is_err());
    let nan = ScoringOptions {
        sharpness: f32::NAN,
        ..ScoringOptions::default()
    };
    assert!(nan.validate().is_err());
}

proptest! {
    #[test]
    fn score_and_relevance_stay_in_bounds(
        angles in proptest::collection::vec(-3.1f32..3.1, 0..12),
        negatives in proptest::collection::vec(any::<bool>(), 12),
        ages in proptest::collection::vec(0i64..2000, 12),
        mean in -1.0f32..1.0,
        others in 0usize..50,
    ) {
        let signals = angles.iter().enumerate().map(|(i, a)| {
            let polarity = if negatives[i] { Polarity::Negative } else { Polarity::Positive };
            signal(&format!("s{i}"), polarity, ages[i], at(*a))
        }).collect();
        let p = profile(signals);
        let a = assess(&x(), &p, Baseline { prospects: others, typical: mean }, None, NOW, &ScoringOptions::default());
        prop_assert!((0.0..=1.0).contains(&a.score));
        prop_assert!((0.0..=1.0).contains(&a.relevance));
        prop_assert!(a.evidence.len() <= ScoringOptions::default().max_evidence);
        prop_assert!(!a.reasons.is_empty());
    }

    #[test]
    fn a_closer_match_never_lowers_the_score(
        near in 0.0f32..1.5, delta in 0.0f32..0.5, mean in 0.0f32..0.4,
    ) {
        let config = ScoringOptions::default();
        let far = profile(vec![signal("s", Polarity::Positive, 3, at(near + delta))]);
        let close = profile(vec![signal("s", Polarity::Positive, 3, at(near))]);
        let a = assess(&x(), &far, baseline(mean), None, NOW, &config);
        let b = assess(&x(), &close, baseline(mean), None, NOW, &config);
        // Profiles keep vectors at 8 bits: similarities carry an error of about 1e-3, which the
        // score's steepest slope (about 4 per unit of relevance) turns into at most ~0.01.
        prop_assert!(b.score >= a.score - 0.01, "{} < {}", b.score, a.score);
    }

    #[test]
    fn newer_evidence_never_counts_less(angle in 0.0f32..1.5, older in 0i64..1000, gap in 0i64..1000) {
        let config = ScoringOptions::default();
        let old = profile(vec![signal("s", Polarity::Positive, older + gap, at(angle))]);
        let new = profile(vec![signal("s", Polarity::Positive, older, at(angle))]);
        prop_assert!(relevance_value(&x(), &new, NOW, &config) >= relevance_value(&x(), &old, NOW, &config));
    }

    #[test]
    fn more_common_ground_along_the_piece_never_raises_the_score(
        angle in 0.0f32..1.5, t in 0.0f32..0.8, dt in 0.0f32..0.15,
    ) {
        // The more of the tenant's shared direction lies along the candidate, the less of the
        // prospect's match is their own.
        let config = ScoringOptions::default();
        let p = profile(vec![signal("s", Polarity::Positive, 3, at(angle))]);
        let less = tenant_mean(vec![t, 0.0, 0.0]);
        let more = tenant_mean(vec![t + dt, 0.0, 0.0]);
        let low = assess(&x(), &p, baseline(0.1), Some(&less), NOW, &config);
        let high = assess(&x(), &p, baseline(0.1), Some(&more), NOW, &config);
        prop_assert!(high.score <= low.score + 0.01, "{} > {}", high.score, low.score);
    }
}
