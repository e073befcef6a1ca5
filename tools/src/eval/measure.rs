//! Loads one data set into fresh tenants through the public gRPC API and measures it: Rank,
//! the decisions on every (prospect, piece) pair, draft pairs, the gate on drafts, FindAudience.

use std::collections::{BTreeMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tonic::transport::Channel;

use crate::pb;
use crate::pb::content_service_client::ContentServiceClient;
use crate::pb::gate_service_client::GateServiceClient;
use crate::pb::prospect_service_client::ProspectServiceClient;
use crate::pb::scoring_service_client::ScoringServiceClient;

use super::dataset::{Dataset, DraftData, TenantData};
use super::report::{CurvePair, Report};

fn source(name: &str) -> anyhow::Result<i32> {
    pb::SignalSource::from_str_name(&format!("SIGNAL_SOURCE_{name}"))
        .map(|s| s as i32)
        .with_context(|| format!("unknown signal source {name}"))
}

fn kind(name: &str) -> anyhow::Result<i32> {
    pb::ContentKind::from_str_name(&format!("CONTENT_KIND_{name}"))
        .map(|k| k as i32)
        .with_context(|| format!("unknown content kind {name}"))
}

fn polarity(name: Option<&str>) -> anyhow::Result<i32> {
    match name.unwrap_or("POSITIVE") {
        "POSITIVE" => Ok(pb::Polarity::Positive as i32),
        "NEGATIVE" => Ok(pb::Polarity::Negative as i32),
        other => anyhow::bail!("unknown polarity {other}"),
    }
}

fn draft(d: &DraftData, id: &str) -> pb::Candidate {
    pb::Candidate {
        item: Some(pb::candidate::Item::Draft(pb::Draft {
            title: d.title.clone(),
            body: d.body.clone(),
            id: id.into(),
        })),
    }
}

fn content_candidate(id: &str) -> pb::Candidate {
    pb::Candidate {
        item: Some(pb::candidate::Item::ContentId(id.into())),
    }
}

/// The variants of a prospect's draft that the gate is tried on.
#[derive(Debug, Clone, Copy)]
enum DraftKind {
    Personal,
    Placeholder,
    Generic,
    SelfFocused,
    OffTopic,
}

impl DraftKind {
    fn label(self) -> &'static str {
        match self {
            Self::Personal => "personal",
            Self::Placeholder => "placeholder",
            Self::Generic => "generic",
            Self::SelfFocused => "self-focused",
            Self::OffTopic => "off-topic",
        }
    }
}

fn is(decision: i32, d: pb::Decision) -> bool {
    decision == d as i32
}

/// Loads one tenant of the data set under `tenant`.
async fn load(channel: &Channel, tenant: &str, data: &TenantData) -> anyhow::Result<()> {
    let mut prospects = ProspectServiceClient::new(channel.clone());
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    for p in &data.prospects {
        prospects
            .upsert_prospect(pb::UpsertProspectRequest {
                tenant: tenant.into(),
                prospect: Some(pb::Prospect {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    company: p.company.clone(),
                    role: p.role.clone(),
                    ..Default::default()
                }),
            })
            .await
            .with_context(|| format!("upserting prospect {}", p.id))?;
        let signals = p
            .signals
            .iter()
            .map(|s| {
                Ok(pb::Signal {
                    id: s.id.clone(),
                    source: source(&s.source)?,
                    polarity: polarity(s.polarity.as_deref())?,
                    observed_at: Some(prost_types::Timestamp {
                        seconds: now - i64::from(s.days_ago) * 86_400,
                        nanos: 0,
                    }),
                    text: s.text.clone(),
                    weight: 0.0,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        prospects
            .add_signals(pb::AddSignalsRequest {
                tenant: tenant.into(),
                prospect_id: p.id.clone(),
                signals,
            })
            .await
            .with_context(|| format!("adding signals of {}", p.id))?;
    }
    let mut content = ContentServiceClient::new(channel.clone());
    for c in &data.content {
        content
            .register_content(pb::RegisterContentRequest {
                tenant: tenant.into(),
                content: Some(pb::Content {
                    id: c.id.clone(),
                    kind: kind(&c.kind)?,
                    title: c.title.clone(),
                    body: c.body.clone(),
                    tags: vec![],
                }),
            })
            .await
            .with_context(|| format!("registering content {}", c.id))?;
    }
    Ok(())
}

/// Loads `dataset` into fresh tenants (`<tenant>-<run>`) of the service behind `channel` and
/// measures it.
pub async fn evaluate(channel: &Channel, dataset: &Dataset, run: &str) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut scoring = ScoringServiceClient::new(channel.clone());
    for data in &dataset.tenants {
        let tenant = format!("{}-{run}", data.id);
        load(channel, &tenant, data).await?;
        let all: Vec<pb::Candidate> = data
            .content
            .iter()
            .map(|c| content_candidate(&c.id))
            .collect();

        for p in &data.prospects {
            let ranked = scoring
                .rank(pb::RankRequest {
                    tenant: tenant.clone(),
                    prospect_id: p.id.clone(),
                    candidates: all.clone(),
                    top_k: 0,
                })
                .await?
                .into_inner()
                .results;
            let by_id: BTreeMap<&str, &pb::ScoreResult> = ranked
                .iter()
                .map(|r| (r.candidate_id.as_str(), r))
                .collect();
            let first = ranked.first().map_or("", |r| r.candidate_id.as_str());
            let targets: HashSet<&str> = data
                .content
                .iter()
                .filter(|c| c.targets.contains(&p.id))
                .map(|c| c.id.as_str())
                .collect();
            if !targets.is_empty() {
                let hit = targets.contains(first);
                report.precision_at_1.add(hit);
                if !hit {
                    report.misses.push(format!(
                        "precision@1 {}/{}: first {first} ({:.3}), targets {targets:?}",
                        data.id, p.id, ranked[0].score
                    ));
                }
            }
            for c in &data.content {
                let r = by_id[c.id.as_str()];
                let label = if c.targets.contains(&p.id) {
                    "target"
                } else if c.generic {
                    "generic"
                } else if c.refused_by.contains(&p.id) {
                    "refused"
                } else if c.distractor {
                    "distractor"
                } else {
                    "other"
                };
                report.rows.push(format!(
                    "{},{},{},{label},{},{:.4},{:.4},{:.4},{:.4}",
                    data.id,
                    p.id,
                    c.id,
                    r.decision,
                    r.score,
                    r.relevance,
                    r.specificity,
                    r.centered_relevance
                ));
                if c.generic || c.targets.contains(&p.id) {
                    report.pairs.push(CurvePair {
                        on_target: !c.generic,
                        centered_relevance: r.centered_relevance,
                        rejected_otherwise: r
                            .reasons
                            .iter()
                            .any(|x| x.code == pb::ReasonCode::NegativeTopic as i32),
                    });
                }
                if c.generic {
                    let hit = is(r.decision, pb::Decision::Reject);
                    report.generic_rejected.add(hit);
                    if !hit {
                        report.misses.push(format!(
                            "generic allowed {}/{} {}: score {:.3} rel {:.3} spec {:.3}",
                            data.id, p.id, c.id, r.score, r.relevance, r.specificity
                        ));
                    }
                }
                if c.targets.contains(&p.id) {
                    let hit = !is(r.decision, pb::Decision::Reject);
                    report.on_target_accepted.add(hit);
                    if !hit {
                        report.misses.push(format!(
                            "on-target rejected {}/{} {}: score {:.3} rel {:.3} spec {:.3} reasons {:?}",
                            data.id,
                            p.id,
                            c.id,
                            r.score,
                            r.relevance,
                            r.specificity,
                            r.reasons.iter().map(|x| x.code).collect::<Vec<_>>()
                        ));
                    }
                }
                if c.refused_by.contains(&p.id) {
                    let violated = !is(r.decision, pb::Decision::Reject) || first == c.id;
                    report.negative_violations.add(violated);
                    if violated {
                        report.misses.push(format!(
                            "refused topic allowed {}/{} {}: score {:.3}",
                            data.id, p.id, c.id, r.score
                        ));
                    }
                }
            }
        }

        for d in &data.drafts {
            let ranked = scoring
                .rank(pb::RankRequest {
                    tenant: tenant.clone(),
                    prospect_id: d.prospect.clone(),
                    candidates: vec![draft(&d.personal, "personal"), draft(&d.generic, "generic")],
                    top_k: 0,
                })
                .await?
                .into_inner()
                .results;
            let score = |id: &str| {
                ranked
                    .iter()
                    .find(|r| r.candidate_id == id)
                    .map_or(0.0, |r| r.score)
            };
            let hit = score("personal") > score("generic");
            report.drafts_personal_higher.add(hit);
            if !hit {
                report.misses.push(format!(
                    "draft pair {}/{}: personal {:.3} <= generic {:.3}",
                    data.id,
                    d.prospect,
                    score("personal"),
                    score("generic")
                ));
            }
        }

        let mut gate = GateServiceClient::new(channel.clone());
        for d in &data.drafts {
            let variants = [
                Some((&d.personal, DraftKind::Personal)),
                d.placeholder.as_ref().map(|p| (p, DraftKind::Placeholder)),
                Some((&d.generic, DraftKind::Generic)),
                d.self_focused.as_ref().map(|p| (p, DraftKind::SelfFocused)),
                d.off_topic.as_ref().map(|p| (p, DraftKind::OffTopic)),
            ];
            for (draft_data, kind) in variants.into_iter().flatten() {
                let label = kind.label();
                let answer = gate
                    .check(pb::CheckRequest {
                        tenant: tenant.clone(),
                        prospect_id: d.prospect.clone(),
                        candidate: Some(draft(draft_data, label)),
                        send_id: format!("eval-{run}-{}-{label}", d.prospect),
                        channel: "email".into(),
                        planned_at: None,
                        dry_run: true,
                    })
                    .await?
                    .into_inner();
                let rejected = is(answer.decision, pb::Decision::Reject);
                let codes: Vec<i32> = answer.reasons.iter().map(|r| r.code).collect();
                let hit = match kind {
                    DraftKind::Placeholder => {
                        let hit = rejected && codes.contains(&(pb::ReasonCode::Placeholder as i32));
                        report.gate_placeholder_rejected.add(hit);
                        hit
                    }
                    DraftKind::Personal => {
                        report.gate_personal_allowed.add(!rejected);
                        !rejected
                    }
                    DraftKind::Generic | DraftKind::SelfFocused | DraftKind::OffTopic => {
                        report.gate_bad_drafts_rejected.add(rejected);
                        rejected
                    }
                };
                if !hit {
                    report.misses.push(format!(
                        "gate {label} draft {}/{}: decision {} reasons {codes:?}",
                        data.id, d.prospect, answer.decision
                    ));
                }
            }
        }

        for c in data.content.iter().filter(|c| !c.targets.is_empty()) {
            let members = scoring
                .find_audience(pb::FindAudienceRequest {
                    tenant: tenant.clone(),
                    candidate: Some(content_candidate(&c.id)),
                    limit: 3,
                })
                .await?
                .into_inner()
                .members;
            let first = members.first().map_or("", |m| m.prospect_id.as_str());
            let hit = c.targets.iter().any(|t| t == first);
            report.audience_at_1.add(hit);
            if !hit {
                report.misses.push(format!(
                    "audience {}/{}: first {first}, targets {:?}",
                    data.id, c.id, c.targets
                ));
            }
        }
    }
    Ok(report)
}
