//! All request validation and every conversion between proto messages and domain types: each
//! request is checked whole, every wrong field named by its path, before anything is embedded
//! or stored; messages are destructured exhaustively. One file per service, as the handlers
//! are; this file holds what they share (limits, ids, timestamps, violations).

mod content;
mod gate;
mod prospect;
mod scoring;

pub use content::*;
pub use gate::*;
pub use prospect::*;
pub use scoring::*;

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

/// An optional event time (a signal's `observed_at`, an engagement's `at`, a check's
/// `planned_at`): at most
/// `MAX_FUTURE_SKEW_MS` (a day of clock skew) ahead of now, as for signals. Further ahead, an
/// event could sort before, or hide, what really happened last (an opt-out).
pub fn optional_event_millis(
    v: &mut Violations,
    field: &str,
    raw: Option<prost_types::Timestamp>,
    now: Millis,
) -> Option<Option<Millis>> {
    let at = optional_millis(v, field, raw)?;
    match at {
        Some(ms) if ms > now + MAX_FUTURE_SKEW_MS => {
            v.add(field, "lies more than a day in the future");
            None
        }
        other => Some(other),
    }
}
