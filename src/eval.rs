//! `pertinent eval DATASET`: loads a labelled data set through the public gRPC API into fresh
//! tenants and prints the quality metrics of docs/scoring.md.
//!
//! The data set format is tests/data/dev.json: tenants with prospects (signals with a source,
//! polarity, age in days and text), content pieces labelled `targets` (written for these
//! prospects), `generic` (fits everyone), `refused_by` (on a topic these prospects refused) or
//! `distractor`, and per-prospect draft pairs (personal, generic, optionally placeholder).
//! Everything goes through the same API a pipeline uses; nothing here reaches into the engine.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::grpc::pb;
use crate::grpc::pb::content_service_client::ContentServiceClient;
use crate::grpc::pb::gate_service_client::GateServiceClient;
use crate::grpc::pb::prospect_service_client::ProspectServiceClient;
use crate::grpc::pb::scoring_service_client::ScoringServiceClient;

/// Options of `pertinent eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalSettings {
    /// The labelled data set (JSON, the format of tests/data/dev.json).
    pub dataset: PathBuf,

    /// Evaluate a service already running at this address (on this machine) instead of
    /// starting one with a fresh embedded store.
    #[arg(long)]
    pub target: Option<String>,

    /// Print every miss, not only the metrics.
    #[arg(long)]
    pub verbose: bool,

    /// Scoring parameters (JSON) for the service this command starts; ignored with --target.
    #[arg(long)]
    pub scoring_config: Option<PathBuf>,

    /// Also write every (prospect, piece) result as CSV to this file, for studying thresholds.
    #[arg(long)]
    pub dump: Option<PathBuf>,
}

/// A labelled data set.
#[derive(Debug, Clone, Deserialize)]
pub struct Dataset {
    pub name: String,
    pub tenants: Vec<TenantData>,
}

/// One sender's prospects, content and drafts.
#[derive(Debug, Clone, Deserialize)]
pub struct TenantData {
    pub id: String,
    pub prospects: Vec<ProspectData>,
    pub content: Vec<ContentData>,
    #[serde(default)]
    pub drafts: Vec<DraftSet>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProspectData {
    pub id: String,
    pub name: String,
    pub company: String,
    pub role: String,
    pub signals: Vec<SignalData>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SignalData {
    pub id: String,
    /// SignalSource without its prefix: CALL_NOTE, WEB_VISIT, ...
    pub source: String,
    /// POSITIVE (default) or NEGATIVE.
    #[serde(default)]
    pub polarity: Option<String>,
    pub days_ago: u32,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContentData {
    pub id: String,
    /// ContentKind without its prefix.
    pub kind: String,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub generic: bool,
    #[serde(default)]
    pub refused_by: Vec<String>,
    #[serde(default)]
    pub distractor: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DraftSet {
    pub prospect: String,
    pub personal: DraftData,
    pub generic: DraftData,
    #[serde(default)]
    pub placeholder: Option<DraftData>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DraftData {
    pub title: String,
    pub body: String,
}

/// A share: hits out of total.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rate {
    pub hits: usize,
    pub total: usize,
}

impl Rate {
    fn add(&mut self, hit: bool) {
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
    /// Lines describing each miss.
    pub misses: Vec<String>,
    /// tenant,prospect,piece,label,decision,score,relevance,specificity per scored pair.
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
        ];
        let mut out = String::from("| metric | value |\n|---|---|\n");
        for (name, rate) in rows {
            out.push_str(&format!("| {name} | {rate} |\n"));
        }
        out
    }
}

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
                    "{},{},{},{label},{},{:.4},{:.4},{:.4}",
                    data.id, p.id, c.id, r.decision, r.score, r.relevance, r.specificity
                ));
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
                Some((&d.personal, "personal")),
                d.placeholder.as_ref().map(|p| (p, "placeholder")),
            ];
            for (draft_data, label) in variants.into_iter().flatten() {
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
                let hit = if label == "placeholder" {
                    let hit = rejected && codes.contains(&(pb::ReasonCode::Placeholder as i32));
                    report.gate_placeholder_rejected.add(hit);
                    hit
                } else {
                    report.gate_personal_allowed.add(!rejected);
                    !rejected
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

/// Reads a data set file.
pub fn read_dataset(path: &std::path::Path) -> anyhow::Result<Dataset> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Runs `pertinent eval`.
pub async fn run(settings: EvalSettings) -> anyhow::Result<()> {
    let dataset = read_dataset(&settings.dataset)?;
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)?
        .as_millis()
        .to_string();
    let (channel, _server) = match &settings.target {
        Some(target) => {
            anyhow::ensure!(
                target.starts_with("127.0.0.1:") || target.starts_with("localhost:"),
                "--target must be on this machine (127.0.0.1)"
            );
            let channel = Channel::from_shared(format!("http://{target}"))?
                .connect()
                .await?;
            (channel, None)
        }
        None => {
            let (channel, server) =
                crate::startup::spawn_local(settings.scoring_config.clone()).await?;
            (channel, Some(server))
        }
    };
    let report = evaluate(&channel, &dataset, &run_id).await?;
    if let Some(path) = &settings.dump {
        let mut csv =
            String::from("tenant,prospect,piece,label,decision,score,relevance,specificity\n");
        for row in &report.rows {
            csv.push_str(row);
            csv.push('\n');
        }
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("## pertinent eval: {}\n", dataset.name);
    println!("{}", report.table());
    if settings.verbose || !report.misses.is_empty() {
        println!("Misses:");
        for m in &report.misses {
            println!("- {m}");
        }
    }
    Ok(())
}
