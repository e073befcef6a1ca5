//! The history rules: opt-outs, cooldowns, frequency caps, minimum gaps and repeats.

use crate::domain::{EngagementKind, Millis};
use crate::scoring::{Decision, ReasonCode};

use super::policy::duration_millis;
use super::{GateFindings, GatePolicy, OptOut, PastEngagement, PastSend};

fn days(ms: Millis) -> String {
    let d = ms as f64 / 86_400_000.0;
    if d >= 1.0 {
        format!("{d:.1} days")
    } else {
        format!("{:.1} hours", d * 24.0)
    }
}

impl OptOut {
    /// The state after one more opt-out event: the latest time counts (a period runs from the
    /// last refusal), and a complaint is never forgotten by a later unsubscribe.
    pub fn and(self, other: OptOut) -> OptOut {
        OptOut {
            since: self.since.max(other.since),
            complained: self.complained || other.complained,
        }
    }

    /// Whether the opt-out holds for a send planned at `planned_at`: always when the policy
    /// keeps opt-outs (`opt_out_seconds` 0), else until that long after `since`. A send planned
    /// before the opt-out is refused too: the person has said stop, whatever the schedule.
    pub fn holds_at(&self, planned_at: Millis, policy: &GatePolicy) -> bool {
        policy.opt_out_seconds == 0
            || planned_at
                < self
                    .since
                    .saturating_add(duration_millis(policy.opt_out_seconds))
    }
}

/// The opt-out rule: it overrides everything, so it comes first.
pub fn opt_out_rule(
    f: &mut GateFindings,
    opt_out: Option<&OptOut>,
    planned_at: Millis,
    policy: &GatePolicy,
) {
    let Some(o) = opt_out.filter(|o| o.holds_at(planned_at, policy)) else {
        return;
    };
    let what = if o.complained {
        "complained"
    } else {
        "unsubscribed"
    };
    let period = duration_millis(policy.opt_out_seconds);
    let until = (policy.opt_out_seconds > 0).then(|| o.since.saturating_add(period));
    // Kept forever: no time is allowed. Otherwise the later of this and the other rules' time.
    f.next_allowed_at = until.map(|t| f.next_allowed_at.map_or(t, |other| other.max(t)));
    f.cap_first(
        Decision::Reject,
        ReasonCode::OptedOut,
        match until {
            Some(_) => format!(
                "The prospect {what} {} ago; the policy allows sends again after {}.",
                days(planned_at.saturating_sub(o.since).max(0)),
                days(period)
            ),
            None => format!(
                "The prospect {what}: no sends until they re-subscribe or an operator lifts it."
            ),
        },
    );
}

/// When the window held more sends or replies than the gate reads, the rules cannot see the
/// oldest of them: the cap, or the cooldown, is taken as reached.
pub fn unread_history_rule(f: &mut GateFindings, sends_beyond: bool, replies_beyond: bool) {
    if sends_beyond {
        f.cap(
            Decision::Reject,
            ReasonCode::FrequencyCap,
            "The prospect has more sends in the policy's window than the gate reads; taken as over the cap.".into(),
        );
    }
    if replies_beyond {
        f.cap(
            Decision::Reject,
            ReasonCode::Cooldown,
            "The prospect has more negative replies in the cooldown than the gate reads; taken as cooling down.".into(),
        );
    }
}

/// Applies fatigue, repeat and reaction rules for a send planned at `planned_at`. Opt-outs are
/// a state of their own (`opt_out_rule`).
pub fn history_rules(
    candidate: &[f32],
    planned_at: Millis,
    sends: &[PastSend<'_>],
    engagements: &[PastEngagement],
    policy: &GatePolicy,
) -> GateFindings {
    let mut f = GateFindings::none();
    let secs = duration_millis;
    // What happened up to the planned send: a later event changes nothing for it.
    let before = |e: &&PastEngagement| e.at <= planned_at;

    if let Some(e) = engagements
        .iter()
        .filter(before)
        .filter(|e| e.kind == EngagementKind::RepliedNegative)
        .max_by_key(|e| e.at)
        && planned_at.saturating_sub(e.at) < secs(policy.cooldown_seconds)
    {
        let until = e.at.saturating_add(secs(policy.cooldown_seconds));
        f.next_allowed_at = Some(f.next_allowed_at.map_or(until, |t| t.max(until)));
        f.cap(
            Decision::Reject,
            ReasonCode::Cooldown,
            format!(
                "The prospect replied negatively {} ago; cooling down for {}.",
                days(planned_at.saturating_sub(e.at)),
                days(secs(policy.cooldown_seconds))
            ),
        );
    }

    // Fatigue: sends before the planned time, within the window.
    let window = secs(policy.window_seconds);
    let mut recent: Vec<Millis> = sends
        .iter()
        .map(|s| s.sent_at)
        .filter(|&t| t <= planned_at && planned_at.saturating_sub(t) < window)
        .collect();
    recent.sort_unstable();
    if recent.len() >= policy.max_sends as usize {
        // The window frees up when the oldest send that keeps it full leaves it.
        let until = recent[recent.len() - policy.max_sends as usize].saturating_add(window);
        f.next_allowed_at = Some(f.next_allowed_at.map_or(until, |t| t.max(until)));
        f.cap(
            Decision::Reject,
            ReasonCode::FrequencyCap,
            format!(
                "{} sends to this prospect in the last {}; the policy allows {}.",
                recent.len(),
                days(window),
                policy.max_sends
            ),
        );
    }
    if let Some(&last) = sends
        .iter()
        .map(|s| &s.sent_at)
        .filter(|&&t| t <= planned_at)
        .max()
    {
        let gap = secs(policy.min_gap_seconds);
        if planned_at.saturating_sub(last) < gap {
            let until = last.saturating_add(gap);
            f.next_allowed_at = Some(f.next_allowed_at.map_or(until, |t| t.max(until)));
            f.cap(
                Decision::Reject,
                ReasonCode::FrequencyCap,
                format!(
                    "The last send was {} ago; the policy wants {} between sends.",
                    days(planned_at.saturating_sub(last)),
                    days(gap)
                ),
            );
        }
    }

    // Repeats: the most similar send within the repeat window.
    let repeat_window = secs(policy.repeat_window_seconds);
    if let Some((s, sim)) = sends
        .iter()
        .filter(|s| s.sent_at <= planned_at && planned_at.saturating_sub(s.sent_at) < repeat_window)
        .map(|s| (s, s.vector.dot(candidate)))
        .filter(|(_, sim)| *sim >= policy.repeat_similarity)
        .max_by(|a, b| a.1.total_cmp(&b.1))
    {
        f.repeat_of = Some(s.send_id.to_owned());
        f.cap(
            Decision::Reject,
            ReasonCode::Repeat,
            format!(
                "Repeats send {} of {} ago (similarity {:.2}).",
                s.send_id,
                days(planned_at.saturating_sub(s.sent_at)),
                sim
            ),
        );
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::Compact;
    use crate::scoring::gate::MAX_DURATION_SECONDS;
    use proptest::prelude::*;

    fn huge() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(u64::MAX),
            Just(u64::MAX - 1),
            Just(i64::MAX as u64),
            Just(i64::MAX as u64 + 1),
            Just(MAX_DURATION_SECONDS),
            Just(MAX_DURATION_SECONDS + 1),
            Just(0),
            any::<u64>(),
        ]
    }

    proptest! {
        #[test]
        fn policy_durations_are_bounded_and_the_rules_never_overflow(
            field in 0usize..5,
            value in huge(),
            planned in prop_oneof![Just(Millis::MAX), Just(Millis::MIN), Just(0), any::<Millis>()],
            event in prop_oneof![Just(Millis::MAX), Just(Millis::MIN), Just(0), any::<Millis>()],
        ) {
            let mut policy = GatePolicy::default();
            match field {
                0 => policy.window_seconds = value,
                1 => policy.min_gap_seconds = value,
                2 => policy.repeat_window_seconds = value,
                3 => policy.cooldown_seconds = value,
                _ => policy.opt_out_seconds = value,
            }
            let name = policy.durations()[field].0;
            match policy.validate() {
                Ok(()) => prop_assert!(value <= MAX_DURATION_SECONDS),
                Err(e) => {
                    prop_assert!(value > MAX_DURATION_SECONDS);
                    prop_assert!(e.contains(name), "{e}");
                }
            }
            // Even an unvalidated policy and extreme times never panic (debug builds trap
            // overflow).
            let kept = Compact::new(&[1.0, 0.0]);
            let sends = [PastSend { send_id: "s", sent_at: event, vector: &kept }];
            let engagements = [
                PastEngagement { kind: EngagementKind::RepliedNegative, at: event },
            ];
            let mut f = history_rules(&[1.0, 0.0], planned, &sends, &engagements, &policy);
            let opt_out = OptOut { since: event, complained: false };
            opt_out_rule(&mut f, Some(&opt_out), planned, &policy);
            // An opt-out kept forever always holds, whenever it happened; one with a period
            // holds at least until the period has run from it.
            if policy.opt_out_seconds == 0 || planned <= event {
                prop_assert_eq!(f.decision, Decision::Reject);
            }
            let _ = policy.lookback_millis();
        }
    }

    const DAY: Millis = 86_400_000;
    const NOW: Millis = 100 * DAY;

    fn v(x: f32) -> Vec<f32> {
        vec![x, (1.0 - x * x).sqrt()]
    }

    /// `v(x)` as the history keeps it.
    fn kept(x: f32) -> Compact {
        Compact::new(&v(x))
    }

    fn codes(f: &GateFindings) -> Vec<ReasonCode> {
        f.reasons.iter().map(|r| r.code).collect()
    }

    #[test]
    fn frequency_cap_counts_sends_strictly_inside_the_window() {
        let policy = GatePolicy {
            max_sends: 2,
            window_seconds: 7 * 24 * 3600,
            min_gap_seconds: 0,
            ..GatePolicy::default()
        };
        let a = kept(0.0);
        let b = kept(1.0);
        // Exactly seven days ago: outside the window.
        let sends = [
            PastSend {
                send_id: "old",
                sent_at: NOW - 7 * DAY,
                vector: &a,
            },
            PastSend {
                send_id: "new",
                sent_at: NOW - DAY,
                vector: &b,
            },
        ];
        let c = v(0.5);
        let f = history_rules(&c, NOW, &sends, &[], &policy);
        assert!(f.reasons.is_empty(), "{f:?}");
        // One millisecond later the old one is still inside for a send planned 1 ms earlier.
        let f = history_rules(&c, NOW - 1, &sends, &[], &policy);
        assert_eq!(codes(&f), vec![ReasonCode::FrequencyCap]);
        assert_eq!(f.next_allowed_at, Some(NOW - 7 * DAY + 7 * DAY));
    }

    #[test]
    fn min_gap_allows_exactly_the_gap() {
        let policy = GatePolicy {
            min_gap_seconds: 2 * 24 * 3600,
            ..GatePolicy::default()
        };
        let a = kept(0.0);
        let sends = [PastSend {
            send_id: "s",
            sent_at: NOW - 2 * DAY,
            vector: &a,
        }];
        assert!(
            history_rules(&v(1.0), NOW, &sends, &[], &policy)
                .reasons
                .is_empty()
        );
        let f = history_rules(&v(1.0), NOW - 1, &sends, &[], &policy);
        assert_eq!(codes(&f), vec![ReasonCode::FrequencyCap]);
        assert_eq!(f.next_allowed_at, Some(NOW));
    }

    #[test]
    fn a_near_copy_of_a_recent_send_is_a_repeat_naming_it() {
        let policy = GatePolicy {
            min_gap_seconds: 0,
            ..GatePolicy::default()
        };
        let a = kept(0.95);
        let sends = [PastSend {
            send_id: "s-1",
            sent_at: NOW - 10 * DAY,
            vector: &a,
        }];
        let f = history_rules(&v(0.99), NOW, &sends, &[], &policy);
        assert_eq!(codes(&f), vec![ReasonCode::Repeat]);
        assert_eq!(f.repeat_of.as_deref(), Some("s-1"));
        // Outside the repeat window it is no longer a repeat.
        let f = history_rules(&v(0.99), NOW + 30 * DAY, &sends, &[], &policy);
        assert!(f.reasons.is_empty());
    }

    #[test]
    fn bad_reactions_stop_sends() {
        let policy = GatePolicy::default();
        let neg = [PastEngagement {
            kind: EngagementKind::RepliedNegative,
            at: NOW - DAY,
        }];
        let f = history_rules(&v(1.0), NOW, &[], &neg, &policy);
        assert_eq!(codes(&f), vec![ReasonCode::Cooldown]);
        assert_eq!(f.next_allowed_at, Some(NOW - DAY + 30 * DAY));
        let after = history_rules(&v(1.0), NOW + 29 * DAY, &[], &neg, &policy);
        assert!(after.reasons.is_empty());

        let unsub = OptOut {
            since: NOW - 400 * DAY,
            complained: false,
        };
        let mut f = history_rules(&v(1.0), NOW, &[], &[], &policy);
        opt_out_rule(&mut f, Some(&unsub), NOW, &policy);
        assert_eq!(codes(&f), vec![ReasonCode::OptedOut]);
        assert_eq!(f.decision, Decision::Reject);
    }

    #[test]
    fn an_opt_out_with_a_period_ends_after_it_and_a_later_event_extends_it() {
        let policy = GatePolicy {
            opt_out_seconds: 10 * 24 * 3600,
            ..GatePolicy::default()
        };
        let first = OptOut {
            since: NOW - 9 * DAY,
            complained: false,
        };
        let at = |o: &OptOut, t: Millis| {
            let mut f = history_rules(&v(1.0), t, &[], &[], &policy);
            opt_out_rule(&mut f, Some(o), t, &policy);
            f
        };
        assert_eq!(at(&first, NOW).next_allowed_at, Some(NOW + DAY));
        assert!(at(&first, NOW + DAY).reasons.is_empty());
        // A send scheduled before the opt-out is refused as well.
        assert_eq!(
            codes(&at(&first, NOW - 20 * DAY)),
            vec![ReasonCode::OptedOut]
        );
        let both = first.and(OptOut {
            since: NOW - DAY,
            complained: true,
        });
        assert_eq!(both.since, NOW - DAY);
        assert!(both.complained && !at(&both, NOW + DAY).reasons.is_empty());
        // The order of the events does not matter.
        assert_eq!(
            both,
            OptOut {
                since: NOW - DAY,
                complained: true
            }
            .and(first)
        );
    }
}
