//! All request validation and every conversion between proto messages and domain types.
//!
//! Each request is checked whole: every wrong field is reported at once, named by its path
//! (`signals[2].weight`), before anything is embedded or stored, so a refused request changes
//! nothing. Messages are destructured exhaustively so that a new proto field is a compile error
//! here until it is handled.

use std::collections::{BTreeMap, HashSet};

use crate::domain::{
    ContentId, ContentKind, ContentRecord, Invalid, Millis, Polarity, ProspectId, ProspectRecord,
    SignalId, SignalSource, Tenant, Text, Weight,
};
use crate::engine::{CandidateInput, NewContent, NewSignal, Scored};
use crate::scoring::{Decision, ReasonCode};
use crate::store::ProspectSummary;

use super::error::Violations;
use super::pb;

/// Longest prospect name, company, role, content title or tag, in bytes.
pub const MAX_SHORT_TEXT_BYTES: usize = 1024;
/// Most attributes per prospect.
pub const MAX_ATTRIBUTES: usize = 64;
/// Most tags per content piece.
pub const MAX_TAGS: usize = 64;
/// How far in the future an observation time may lie (clock skew), in milliseconds.
const MAX_FUTURE_SKEW_MS: Millis = 24 * 3600 * 1000;

/// The request bounds that depend on configuration.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    pub max_text_bytes: usize,
    pub max_signals_per_call: usize,
    pub max_candidates: usize,
    pub max_audience: usize,
}

/// Keeps the value, or records the violation under `field`.
fn keep<T>(v: &mut Violations, field: &str, r: Result<T, Invalid>) -> Option<T> {
    r.map_err(|e| v.add(field, e.0)).ok()
}

fn short_text(v: &mut Violations, field: &str, raw: String) -> Option<String> {
    if raw.len() > MAX_SHORT_TEXT_BYTES {
        v.add(
            field,
            format!("must be at most {MAX_SHORT_TEXT_BYTES} bytes"),
        );
        return None;
    }
    if raw.contains('\0') {
        v.add(field, "must not contain NUL characters");
        return None;
    }
    Some(raw)
}

/// The tenant of any request.
pub fn tenant(v: &mut Violations, raw: String) -> Option<Tenant> {
    keep(v, "tenant", Tenant::parse(raw))
}

/// A prospect id under `field`.
pub fn prospect_id(v: &mut Violations, field: &str, raw: String) -> Option<ProspectId> {
    keep(v, field, ProspectId::parse(raw))
}

/// A content id under `field`.
pub fn content_id(v: &mut Violations, field: &str, raw: String) -> Option<ContentId> {
    keep(v, field, ContentId::parse(raw))
}

/// A prospect to store.
pub fn prospect(v: &mut Violations, raw: Option<pb::Prospect>) -> Option<ProspectRecord> {
    let Some(pb::Prospect {
        id,
        name,
        company,
        role,
        attributes,
        signal_count: _, // output only
    }) = raw
    else {
        v.add("prospect", "is required");
        return None;
    };
    let id = prospect_id(v, "prospect.id", id);
    let name = short_text(v, "prospect.name", name);
    let company = short_text(v, "prospect.company", company);
    let role = short_text(v, "prospect.role", role);
    if attributes.len() > MAX_ATTRIBUTES {
        v.add(
            "prospect.attributes",
            format!("at most {MAX_ATTRIBUTES} entries are accepted"),
        );
    }
    let mut checked = BTreeMap::new();
    for (key, value) in attributes {
        let field = format!("prospect.attributes[{key:?}]");
        if key.is_empty() || key.len() > 128 || key.chars().any(char::is_control) {
            v.add(
                &field,
                "keys must be 1 to 128 bytes without control characters",
            );
            continue;
        }
        if let Some(value) = short_text(v, &field, value) {
            checked.insert(key, value);
        }
    }
    match (id, name, company, role) {
        (Some(id), Some(name), Some(company), Some(role)) => Some(ProspectRecord {
            id,
            name,
            company,
            role,
            attributes: checked,
        }),
        _ => None,
    }
}

/// Milliseconds of a timestamp, refusing out-of-range values.
pub fn millis(v: &mut Violations, field: &str, ts: prost_types::Timestamp) -> Option<Millis> {
    let prost_types::Timestamp { seconds, nanos } = ts;
    // 0001-01-01 to 9999-12-31, as google.protobuf.Timestamp defines.
    if !(-62_135_596_800..=253_402_300_799).contains(&seconds)
        || !(0..1_000_000_000).contains(&nanos)
    {
        v.add(field, "is not a valid timestamp");
        return None;
    }
    Some(seconds * 1000 + Millis::from(nanos / 1_000_000))
}

/// A timestamp of a millisecond count.
pub fn timestamp(ms: Millis) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn signal_source(v: &mut Violations, field: &str, raw: i32) -> Option<SignalSource> {
    match pb::SignalSource::try_from(raw) {
        Ok(pb::SignalSource::Unspecified | pb::SignalSource::Other) => Some(SignalSource::Other),
        Ok(pb::SignalSource::ForumPost) => Some(SignalSource::ForumPost),
        Ok(pb::SignalSource::CallNote) => Some(SignalSource::CallNote),
        Ok(pb::SignalSource::CaseStudyRead) => Some(SignalSource::CaseStudyRead),
        Ok(pb::SignalSource::EmailReply) => Some(SignalSource::EmailReply),
        Ok(pb::SignalSource::Survey) => Some(SignalSource::Survey),
        Ok(pb::SignalSource::WebVisit) => Some(SignalSource::WebVisit),
        Err(_) => {
            v.add(field, format!("unknown SignalSource value {raw}"));
            None
        }
    }
}

fn polarity(v: &mut Violations, field: &str, raw: i32) -> Option<Polarity> {
    match pb::Polarity::try_from(raw) {
        Ok(pb::Polarity::Unspecified | pb::Polarity::Positive) => Some(Polarity::Positive),
        Ok(pb::Polarity::Negative) => Some(Polarity::Negative),
        Err(_) => {
            v.add(field, format!("unknown Polarity value {raw}"));
            None
        }
    }
}

fn content_kind(v: &mut Violations, field: &str, raw: i32) -> Option<ContentKind> {
    match pb::ContentKind::try_from(raw) {
        Ok(pb::ContentKind::Unspecified | pb::ContentKind::Other) => Some(ContentKind::Other),
        Ok(pb::ContentKind::CaseStudy) => Some(ContentKind::CaseStudy),
        Ok(pb::ContentKind::BlogPost) => Some(ContentKind::BlogPost),
        Ok(pb::ContentKind::Ebook) => Some(ContentKind::Ebook),
        Ok(pb::ContentKind::Webinar) => Some(ContentKind::Webinar),
        Ok(pb::ContentKind::ProductUpdate) => Some(ContentKind::ProductUpdate),
        Ok(pb::ContentKind::Newsletter) => Some(ContentKind::Newsletter),
        Ok(pb::ContentKind::EmailTemplate) => Some(ContentKind::EmailTemplate),
        Err(_) => {
            v.add(field, format!("unknown ContentKind value {raw}"));
            None
        }
    }
}

/// Signals to add: 1 to `max_signals_per_call`, ids unique within the request.
pub fn signals(
    v: &mut Violations,
    raw: Vec<pb::Signal>,
    limits: &RequestLimits,
    now: Millis,
) -> Option<Vec<NewSignal>> {
    if raw.is_empty() {
        v.add("signals", "at least one signal is required");
        return None;
    }
    if raw.len() > limits.max_signals_per_call {
        v.add(
            "signals",
            format!(
                "{} signals sent; at most {} are accepted per call",
                raw.len(),
                limits.max_signals_per_call
            ),
        );
        return None;
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    let mut all_valid = true;
    for (i, s) in raw.into_iter().enumerate() {
        let pb::Signal {
            id,
            source,
            polarity: pol,
            observed_at,
            text,
            weight,
        } = s;
        let f = |name: &str| format!("signals[{i}].{name}");
        let id = keep(v, &f("id"), SignalId::parse(id));
        if let Some(id) = &id
            && !seen.insert(id.clone())
        {
            v.add(f("id"), "appears twice in this request");
        }
        let source = signal_source(v, &f("source"), source);
        let pol = polarity(v, &f("polarity"), pol);
        let observed_at = match observed_at {
            None => Some(None),
            Some(ts) => match millis(v, &f("observed_at"), ts) {
                Some(ms) if ms > now + MAX_FUTURE_SKEW_MS => {
                    v.add(f("observed_at"), "lies more than a day in the future");
                    None
                }
                Some(ms) => Some(Some(ms)),
                None => None,
            },
        };
        let text = keep(v, &f("text"), Text::parse(text, limits.max_text_bytes));
        let weight = keep(v, &f("weight"), Weight::parse(weight));
        match (id, source, pol, observed_at, text, weight) {
            (
                Some(id),
                Some(source),
                Some(polarity),
                Some(observed_at),
                Some(text),
                Some(weight),
            ) => out.push(NewSignal {
                id,
                source,
                polarity,
                observed_at,
                weight,
                text,
            }),
            _ => all_valid = false,
        }
    }
    (all_valid && v.is_empty()).then_some(out)
}

/// Signal ids to delete: 1 to `max_signals_per_call`.
pub fn signal_ids(
    v: &mut Violations,
    raw: Vec<String>,
    limits: &RequestLimits,
) -> Option<Vec<SignalId>> {
    if raw.is_empty() {
        v.add("ids", "at least one id is required");
        return None;
    }
    if raw.len() > limits.max_signals_per_call {
        v.add(
            "ids",
            format!(
                "at most {} ids are accepted per call",
                limits.max_signals_per_call
            ),
        );
        return None;
    }
    let ids: Vec<Option<SignalId>> = raw
        .into_iter()
        .enumerate()
        .map(|(i, id)| keep(v, &format!("ids[{i}]"), SignalId::parse(id)))
        .collect();
    ids.into_iter().collect()
}

/// A content piece to register.
pub fn content(
    v: &mut Violations,
    raw: Option<pb::Content>,
    limits: &RequestLimits,
) -> Option<NewContent> {
    let Some(pb::Content {
        id,
        kind,
        title,
        body,
        tags,
    }) = raw
    else {
        v.add("content", "is required");
        return None;
    };
    let id = content_id(v, "content.id", id);
    let kind = content_kind(v, "content.kind", kind);
    let title = short_text(v, "content.title", title);
    let body = keep(v, "content.body", Text::parse(body, limits.max_text_bytes));
    if tags.len() > MAX_TAGS {
        v.add(
            "content.tags",
            format!("at most {MAX_TAGS} tags are accepted"),
        );
    }
    for (i, tag) in tags.iter().enumerate() {
        if tag.trim().is_empty() || tag.len() > 128 || tag.chars().any(char::is_control) {
            v.add(
                format!("content.tags[{i}]"),
                "tags must be 1 to 128 bytes without control characters",
            );
        }
    }
    match (id, kind, title, body) {
        (Some(id), Some(kind), Some(title), Some(body)) if v.is_empty() => Some(NewContent {
            id,
            kind,
            title,
            body,
            tags,
        }),
        _ => None,
    }
}

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

// ------------------------------------------------------------------ domain -> proto

/// A stored prospect as the API returns it.
pub fn prospect_to_pb(s: ProspectSummary) -> pb::Prospect {
    let ProspectSummary {
        prospect,
        signal_count,
    } = s;
    pb::Prospect {
        id: prospect.id.to_string(),
        name: prospect.name,
        company: prospect.company,
        role: prospect.role,
        attributes: prospect.attributes.into_iter().collect(),
        signal_count,
    }
}

fn content_kind_to_pb(k: ContentKind) -> pb::ContentKind {
    match k {
        ContentKind::CaseStudy => pb::ContentKind::CaseStudy,
        ContentKind::BlogPost => pb::ContentKind::BlogPost,
        ContentKind::Ebook => pb::ContentKind::Ebook,
        ContentKind::Webinar => pb::ContentKind::Webinar,
        ContentKind::ProductUpdate => pb::ContentKind::ProductUpdate,
        ContentKind::Newsletter => pb::ContentKind::Newsletter,
        ContentKind::EmailTemplate => pb::ContentKind::EmailTemplate,
        ContentKind::Other => pb::ContentKind::Other,
    }
}

/// A stored content piece as the API returns it.
pub fn content_to_pb(c: ContentRecord) -> pb::Content {
    pb::Content {
        id: c.id.to_string(),
        kind: content_kind_to_pb(c.kind) as i32,
        title: c.title,
        body: c.body.into_string(),
        tags: c.tags,
    }
}

/// A source as the API names it.
pub fn source_to_pb(s: SignalSource) -> pb::SignalSource {
    match s {
        SignalSource::ForumPost => pb::SignalSource::ForumPost,
        SignalSource::CallNote => pb::SignalSource::CallNote,
        SignalSource::CaseStudyRead => pb::SignalSource::CaseStudyRead,
        SignalSource::EmailReply => pb::SignalSource::EmailReply,
        SignalSource::Survey => pb::SignalSource::Survey,
        SignalSource::WebVisit => pb::SignalSource::WebVisit,
        SignalSource::Other => pb::SignalSource::Other,
    }
}

fn polarity_to_pb(p: Polarity) -> pb::Polarity {
    match p {
        Polarity::Positive => pb::Polarity::Positive,
        Polarity::Negative => pb::Polarity::Negative,
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

// ------------------------------------------------------------------ gate

/// The caller's deadline from the `grpc-timeout` header, if any.
pub fn caller_deadline(metadata: &tonic::metadata::MetadataMap) -> Option<std::time::Duration> {
    use std::time::Duration;
    let raw = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The pipeline's id for one send.
pub fn send_id(v: &mut Violations, field: &str, raw: String) -> Option<crate::domain::SendId> {
    keep(v, field, crate::domain::SendId::parse(raw))
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

/// An optional timestamp under `field`: `Some(None)` when unset.
pub fn optional_millis(
    v: &mut Violations,
    field: &str,
    raw: Option<prost_types::Timestamp>,
) -> Option<Option<Millis>> {
    match raw {
        None => Some(None),
        Some(ts) => millis(v, field, ts).map(Some),
    }
}

/// An optional event time (an engagement's `at`, a check's `planned_at`): at most
/// `MAX_FUTURE_SKEW_MS` (a day of clock skew) ahead of now, as for signals. Further ahead, an
/// event could sort before, or hide, what really happened last (an opt-out).
pub fn optional_event_millis(
    v: &mut Violations,
    field: &str,
    raw: Option<prost_types::Timestamp>,
) -> Option<Option<Millis>> {
    let at = optional_millis(v, field, raw)?;
    match at {
        Some(ms) if ms > crate::engine::now_millis() + MAX_FUTURE_SKEW_MS => {
            v.add(field, "lies more than a day in the future");
            None
        }
        other => Some(other),
    }
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

/// A policy to set: zero fields take `base` (the configured default).
pub fn policy(
    v: &mut Violations,
    raw: Option<pb::Policy>,
    base: &crate::scoring::gate::GatePolicy,
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
        if seconds > crate::scoring::gate::MAX_DURATION_SECONDS {
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

/// A history event as the API returns it.
pub fn history_event_to_pb(e: crate::engine::gate::HistoryEvent) -> pb::HistoryEvent {
    use crate::engine::gate::HistoryEvent;
    let event = match e {
        HistoryEvent::Send(s) => pb::history_event::Event::Send(pb::SendRecord {
            send_id: s.send_id.to_string(),
            decision_id: s.decision_id,
            candidate_id: s.candidate_id,
            channel: s.channel,
            sent_at: Some(timestamp(s.sent_at)),
        }),
        HistoryEvent::Engagement(g) => pb::history_event::Event::Engagement(pb::EngagementRecord {
            send_id: g.send_id.to_string(),
            kind: engagement_kind_to_pb(g.kind) as i32,
            at: Some(timestamp(g.at)),
        }),
    };
    pb::HistoryEvent { event: Some(event) }
}
