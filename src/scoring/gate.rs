//! The send-path gate's rules: fatigue, repeats, cooldown after bad reactions, and draft checks.
//! Pure functions of the history, the policy and `now`; the engine reads the history and
//! records the outcome.
//!
//! Window edges: a send counts against a window when it happened strictly less than the window
//! before the planned send, and two sends exactly `min_gap` apart are allowed.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::domain::{EngagementKind, Millis};

use super::{Assessment, Compact, Decision, Reason, ReasonCode};

const SECOND: Millis = 1000;

/// The longest duration a policy may set: ten years, in seconds. Longer is refused, so that no
/// window, gap or cooldown can overflow the clock arithmetic (docs/gate.md).
pub const MAX_DURATION_SECONDS: u64 = 10 * 366 * 24 * 3600;

/// A policy duration in milliseconds, saturating (validated policies stay far below).
fn duration_millis(seconds: u64) -> Millis {
    Millis::try_from(seconds)
        .unwrap_or(Millis::MAX)
        .saturating_mul(SECOND)
}

/// A tenant's gate policy. Durations in seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatePolicy {
    /// At most this many sends per prospect within `window_seconds`.
    pub max_sends: u32,
    pub window_seconds: u64,
    /// At least this long between two sends to one prospect.
    pub min_gap_seconds: u64,
    /// A candidate at least this similar to a send within `repeat_window_seconds` is a repeat.
    pub repeat_similarity: f32,
    pub repeat_window_seconds: u64,
    /// No sends this long after a negative reply.
    pub cooldown_seconds: u64,
    /// No sends this long after an unsubscribe or a complaint; 0 means until the policy changes.
    pub opt_out_seconds: u64,
    /// What a draft-check finding does: Review (caps the decision at REVIEW) or Reject.
    pub draft_check_action: Decision,
    /// Each draft-check finding multiplies the score by this. Service-wide (the `--gate-policy`
    /// file): never stored with a tenant's policy, which always uses the service's value.
    #[serde(skip_serializing)]
    pub draft_check_factor: f32,
    /// A draft is written for one person: below this score, after the findings' factors, it
    /// is REJECT. A draft with a finding (impersonal, self-focused) thus needs a score of at
    /// least `draft_min_score / draft_check_factor` to reach review, and one with two
    /// findings never does. Service-wide, like `draft_check_factor`.
    #[serde(skip_serializing)]
    pub draft_min_score: f32,
    /// The answer when the store cannot be reached.
    pub fail_decision: Decision,
}

impl Default for GatePolicy {
    fn default() -> Self {
        Self {
            max_sends: 3,
            window_seconds: 7 * 24 * 3600,
            min_gap_seconds: 2 * 24 * 3600,
            repeat_similarity: 0.9,
            repeat_window_seconds: 30 * 24 * 3600,
            cooldown_seconds: 30 * 24 * 3600,
            opt_out_seconds: 0,
            draft_check_action: Decision::Review,
            draft_check_factor: 0.55,
            draft_min_score: 0.5,
            fail_decision: Decision::Review,
        }
    }
}

impl GatePolicy {
    /// A tenant's stored policy with the service-wide fields taken from the service's `default`
    /// (stored policies of earlier versions hold an old `draft_check_factor`).
    pub fn with_service_fields(mut self, default: &GatePolicy) -> Self {
        self.draft_check_factor = default.draft_check_factor;
        self.draft_min_score = default.draft_min_score;
        self
    }

    /// Refuses policies that cannot be applied.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_sends == 0 {
            return Err("max_sends must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.repeat_similarity) {
            return Err("repeat_similarity must be within [0, 1]".into());
        }
        if !(0.0..=1.0).contains(&self.draft_check_factor) {
            return Err("draft_check_factor must be within [0, 1]".into());
        }
        if !(0.0..=1.0).contains(&self.draft_min_score) {
            return Err("draft_min_score must be within [0, 1]".into());
        }
        if self.draft_check_action == Decision::Send {
            return Err("draft_check_action must be REVIEW or REJECT".into());
        }
        for (name, seconds) in self.durations() {
            if seconds > MAX_DURATION_SECONDS {
                return Err(format!(
                    "{name} must be at most {MAX_DURATION_SECONDS} seconds (ten years)"
                ));
            }
        }
        Ok(())
    }

    /// Every duration of the policy, by field name.
    pub fn durations(&self) -> [(&'static str, u64); 5] {
        [
            ("window_seconds", self.window_seconds),
            ("min_gap_seconds", self.min_gap_seconds),
            ("repeat_window_seconds", self.repeat_window_seconds),
            ("cooldown_seconds", self.cooldown_seconds),
            ("opt_out_seconds", self.opt_out_seconds),
        ]
    }

    /// The history the gate needs, back from `now`.
    pub fn lookback_millis(&self) -> Millis {
        duration_millis(self.window_seconds.max(self.repeat_window_seconds))
    }
}

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
    fn cap(&mut self, decision: Decision, code: ReasonCode, message: String) {
        self.decision = self.decision.max(decision);
        self.reasons.push(Reason { code, message });
    }
}

fn days(ms: Millis) -> String {
    let d = ms as f64 / 86_400_000.0;
    if d >= 1.0 {
        format!("{d:.1} days")
    } else {
        format!("{:.1} hours", d * 24.0)
    }
}

/// Applies fatigue, repeat and reaction rules for a send planned at `planned_at`.
pub fn history_rules(
    candidate: &[f32],
    planned_at: Millis,
    sends: &[PastSend<'_>],
    engagements: &[PastEngagement],
    policy: &GatePolicy,
) -> GateFindings {
    let mut f = GateFindings {
        decision: Decision::Send,
        reasons: Vec::new(),
        next_allowed_at: None,
        repeat_of: None,
        score_factor: 1.0,
    };
    let secs = duration_millis;
    // What happened up to the planned send; a later event cannot undo an earlier opt-out.
    let before = |e: &&PastEngagement| e.at <= planned_at;

    // Opt-outs and complaints first: they override everything.
    if let Some(e) = engagements
        .iter()
        .filter(before)
        .filter(|e| {
            matches!(
                e.kind,
                EngagementKind::Unsubscribed | EngagementKind::Complained
            )
        })
        .max_by_key(|e| e.at)
        && (policy.opt_out_seconds == 0
            || planned_at.saturating_sub(e.at) < secs(policy.opt_out_seconds))
    {
        let what = match e.kind {
            EngagementKind::Complained => "complained",
            _ => "unsubscribed",
        };
        let until =
            (policy.opt_out_seconds > 0).then(|| e.at.saturating_add(secs(policy.opt_out_seconds)));
        f.next_allowed_at = until;
        f.cap(
            Decision::Reject,
            ReasonCode::OptedOut,
            match until {
                Some(_) => format!(
                    "The prospect {what} {} ago; the policy allows sends again after {}.",
                    days(planned_at.saturating_sub(e.at)),
                    days(secs(policy.opt_out_seconds))
                ),
                None => format!("The prospect {what}: no more sends until the policy changes."),
            },
        );
    }

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

/// Unrendered merge fields of the common mail tools and templating syntaxes: Handlebars and
/// Liquid {{first_name}}, {FirstName}, Salesforce {!Contact.FirstName}, ${name} and #{name},
/// [COMPANY], [First Name] and [first_name], <FIRST_NAME>, %FNAME% and %%First Name%%,
/// <<Name>>, ##FIRSTNAME##, Mailchimp *|FNAME|*. (In verbose mode white space is ignored even
/// inside classes, hence \x20.)
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        \{\{[^{}]{1,64}\}\}
        | [$\#]?\{!?[A-Za-z_][A-Za-z0-9_.\-\x20]{0,40}\}
        | \[[A-Z][A-Za-z_\x20]{1,30}\]
        | \[[a-z][a-z0-9]*(?:_[a-z0-9]+)+\]
        | <[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+>
        | %%[A-Za-z_][A-Za-z0-9_\x20]{0,38}%%
        | %[A-Za-z_][A-Za-z0-9_]{1,30}%
        | <<[^<>]{1,40}>>
        | \#\#[A-Za-z_][A-Za-z0-9_]{1,30}\#\#
        | \*\|[A-Za-z0-9_:]{1,30}\|\*
        ",
    )
    .expect("a valid pattern")
});

/// Capitalised tokens that may be a bare merge field: `FIRST_NAME`, `COMPANYNAME`,
/// `$FIRSTNAME`, `<COMPANY>`. Only those naming a field of a contact record count (see
/// `FIELD_WORDS`), so that `ASC_606`, `SPRING_SALE`, `$USD` or `<TITLE>` do not.
static BARE_FIELD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[$<]?\b[A-Z][A-Z_]{3,30}\b>?").expect("a valid pattern"));

/// The fields of a contact record that mail-merge templates fill in.
const FIELD_WORDS: [&str; 8] = [
    "NAME", "FIRST", "LAST", "COMPANY", "EMAIL", "PHONE", "CITY", "INSERT",
];

/// Whether a capitalised token is a bare merge field: it names a contact field and is
/// written as a template writes one (`$X`, `<X>`, `FIELD_NAME` or `...NAME` run together).
fn is_bare_field(token: &str) -> bool {
    let marked = token.starts_with('$') || (token.starts_with('<') && token.ends_with('>'));
    let word = token.trim_matches(|c| c == '$' || c == '<' || c == '>');
    let names_field = FIELD_WORDS.iter().any(|f| word.contains(f));
    let run_together = word.len() > 4 && word.ends_with("NAME");
    names_field && (marked || word.contains('_') || run_together)
}

/// The merge fields left in `text`.
fn merge_fields(text: &str) -> Vec<&str> {
    let mut found: Vec<&str> = PLACEHOLDER.find_iter(text).map(|m| m.as_str()).collect();
    found.extend(
        BARE_FIELD
            .find_iter(text)
            .map(|m| m.as_str())
            .filter(|t| is_bare_field(t)),
    );
    found
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('\'').to_lowercase())
}

/// Whether `text` names the prospect (a name part) or their company (its full name or its
/// first distinctive word). `None` when nothing is known to look for.
fn names_reader(text: &str, name: &str, company: &str) -> Option<bool> {
    let honorifics = ["dr", "mr", "mrs", "ms", "prof", "st", "the"];
    let mut keys: Vec<String> = words(name)
        .filter(|w| w.chars().count() >= 2 && !honorifics.contains(&w.as_str()))
        .collect();
    if let Some(first) =
        words(company).find(|w| w.chars().count() >= 3 && !honorifics.contains(&w.as_str()))
    {
        keys.push(first);
    }
    if keys.is_empty() {
        return None;
    }
    let lowered = text.to_lowercase();
    let found: std::collections::HashSet<String> = words(&lowered).collect();
    let company_full = company.trim().to_lowercase();
    Some(
        keys.iter()
            .any(|k| found.contains(k) || found.contains(&format!("{k}'s")))
            || (!company_full.is_empty() && lowered.contains(&company_full)),
    )
}

/// Checks of an unsaved draft: merge fields left unrendered, no reference to the reader, and
/// talk about "we/our/us" with little about "you/your". Returns the findings as reasons.
pub fn draft_checks(title: &str, body: &str, name: &str, company: &str) -> Vec<Reason> {
    let text = format!("{title}\n{body}");
    let mut out = Vec::new();
    let fields = merge_fields(&text);
    if !fields.is_empty() {
        let shown: Vec<&str> = fields.iter().take(3).copied().collect();
        out.push(Reason {
            code: ReasonCode::Placeholder,
            message: format!("Unrendered merge field(s): {}.", shown.join(", ")),
        });
    }
    let names = names_reader(&text, name, company);
    if names == Some(false) {
        out.push(Reason {
            code: ReasonCode::NoPersonalReference,
            message: "The draft names neither the prospect nor their company.".into(),
        });
    }
    let (mut sender, mut reader) = (0usize, 0usize);
    for w in words(&text) {
        match w.as_str() {
            "we" | "our" | "ours" | "us" | "ourselves" | "we're" | "we've" | "we'll" => sender += 1,
            "you" | "your" | "yours" | "yourself" | "you're" | "you've" | "you'll" => reader += 1,
            _ => {}
        }
    }
    if names == Some(true) {
        reader += 1;
    }
    if sender >= 2 && sender >= 2 * reader {
        out.push(Reason {
            code: ReasonCode::SelfFocused,
            message: format!(
                "About the sender, not the reader: {sender} mentions of we/our/us against {reader} of the reader."
            ),
        });
    }
    out
}

/// Applies draft-check findings to the gate's findings as the policy says.
pub fn apply_draft_checks(findings: &mut GateFindings, checks: Vec<Reason>, policy: &GatePolicy) {
    for reason in checks {
        let decision = if reason.code == ReasonCode::Placeholder {
            // A merge-field left in is always a mail-merge mistake: never send it.
            Decision::Reject
        } else {
            policy.draft_check_action
        };
        findings.score_factor *= policy.draft_check_factor;
        findings.cap(decision, reason.code, reason.message);
    }
}

/// Holds a draft to its line: its score after the findings' factors must reach
/// `draft_min_score`, or the draft is REJECT. Not applied to a draft scoring already rejected
/// (its reasons say why) or to a prospect of whom nothing is known yet (score 0 claims
/// nothing: a first-touch draft goes to review).
pub fn apply_draft_line(findings: &mut GateFindings, scored: &Assessment, policy: &GatePolicy) {
    let unknown = scored
        .reasons
        .iter()
        .any(|r| r.code == ReasonCode::InsufficientProfile);
    if unknown || scored.decision == Decision::Reject {
        return;
    }
    let adjusted = scored.score * findings.score_factor;
    if adjusted < policy.draft_min_score {
        findings.cap(
            Decision::Reject,
            ReasonCode::LowRelevance,
            format!(
                "A draft must be clearly about this person: it scores {adjusted:.2} after its \
                 checks, under the draft line {:.2}.",
                policy.draft_min_score
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                PastEngagement { kind: EngagementKind::Unsubscribed, at: event },
                PastEngagement { kind: EngagementKind::RepliedNegative, at: event },
            ];
            let f = history_rules(&[1.0, 0.0], planned, &sends, &engagements, &policy);
            // An opt-out at or before the planned send, kept forever, always holds.
            if event <= planned && policy.opt_out_seconds == 0 {
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

        let unsub = [PastEngagement {
            kind: EngagementKind::Unsubscribed,
            at: NOW - 400 * DAY,
        }];
        let f = history_rules(&v(1.0), NOW, &[], &unsub, &policy);
        assert_eq!(codes(&f), vec![ReasonCode::OptedOut]);
        assert_eq!(f.decision, Decision::Reject);
    }

    #[test]
    fn merge_fields_of_every_common_tool_are_found() {
        for draft in [
            "Hi {{first_name}}, about Acme",
            "Hi {FirstName}, about Acme",
            "Dear [COMPANY] team, Ana",
            "Hi [First Name], Acme",
            "Dear %FNAME%, Acme",
            "Hello <<Name>>, Acme",
            "Hi *|FNAME|*, Acme",
            "Hi ${name}, Acme",
            "Hi #{name}, Acme",
            "Hi {!Contact.FirstName}, Acme",
            "Hello [first_name], Acme",
            "Dear <FIRST_NAME>, Acme",
            "Dear <COMPANY> team, Ana",
            "Dear %%First Name%%, Acme",
            "Hi ##FIRSTNAME##, Acme",
            "Hi $FIRSTNAME, Acme",
            "Hi FIRSTNAME, Acme",
            "We help teams like Acme in INSERT_COUNTRY",
            "We help COMPANY_NAME, Ana",
        ] {
            let r = draft_checks("", draft, "Ana Ruiz", "Acme");
            assert_eq!(
                r.first().map(|r| r.code),
                Some(ReasonCode::Placeholder),
                "{draft}"
            );
        }
        let clean = draft_checks(
            "Ana, your pick paths",
            "Hi Ana, you said Acme's pickers [see notes] lose hours; the SOX audit costs $40k, \
             ASC_606 and ISO_27001 are due in Q3_2024, the SPRING_SALE code works in USD ($USD), \
             <b>ASC 606</b> and <TITLE> are a NAME you know, and we grew 40%% to 60%%, Ana.",
            "Ana Ruiz",
            "Acme",
        );
        assert!(clean.is_empty(), "{clean:?}");
    }

    #[test]
    fn impersonal_and_self_focused_drafts_are_found() {
        let r = draft_checks(
            "Our platform",
            "We are the leading provider. Our award-winning team helps us help companies grow.",
            "Ana Ruiz",
            "Northwind Logistics",
        );
        let codes: Vec<ReasonCode> = r.iter().map(|r| r.code).collect();
        assert_eq!(
            codes,
            vec![ReasonCode::NoPersonalReference, ReasonCode::SelfFocused]
        );
        let personal = draft_checks(
            "",
            "Hi Dr. Marsh, you said St. Aldric's ED boards patients.",
            "Dr. Kevin Marsh",
            "St. Aldric Medical Center",
        );
        assert!(personal.is_empty(), "{personal:?}");
    }

    #[test]
    fn placeholders_reject_and_other_findings_follow_the_policy() {
        let policy = GatePolicy::default();
        let mut f = history_rules(&v(1.0), NOW, &[], &[], &policy);
        apply_draft_checks(
            &mut f,
            draft_checks("", "We at our company love us.", "Ana", "Acme"),
            &policy,
        );
        assert_eq!(f.decision, Decision::Review);
        assert!(f.score_factor < 1.0);
        let mut g = history_rules(&v(1.0), NOW, &[], &[], &policy);
        apply_draft_checks(
            &mut g,
            draft_checks("", "Hi {{first_name}} at Acme", "Ana", "Acme"),
            &policy,
        );
        assert_eq!(g.decision, Decision::Reject);
    }
}
