//! Prospects and their signals: requests in, records out.

use super::*;

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
        let observed_at = optional_event_millis(v, &f("observed_at"), observed_at, now);
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

pub(super) fn polarity_to_pb(p: Polarity) -> pb::Polarity {
    match p {
        Polarity::Positive => pb::Polarity::Positive,
        Polarity::Negative => pb::Polarity::Negative,
    }
}
