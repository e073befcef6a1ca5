//! `pertinent eval PATH...`: loads labelled data sets through the public gRPC API into fresh
//! tenants and prints the quality metrics of docs/scoring.md for every set, pooled per folder
//! and pooled over all, with the operating curve of the GENERIC line.
//!
//! The data set format is that of tests/data/dev/*.json: tenants with prospects (signals with a
//! source, polarity, age in days and text), content pieces labelled `targets` (written for these
//! prospects), `generic` (fits everyone), `refused_by` (on a topic these prospects refused) or
//! `distractor`, and per-prospect drafts (personal, its generic twin, and optionally a
//! placeholder leak, a self-focused and an off-topic variant). Everything goes through the same
//! API a pipeline uses; nothing here reaches into the engine.

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
    /// Labelled data sets: JSON files (the format of tests/data/dev/*.json) or folders of them.
    #[arg(required = true)]
    pub datasets: Vec<PathBuf>,

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
    /// All about the sender, little about the reader.
    #[serde(default)]
    pub self_focused: Option<DraftData>,
    /// Addressed to the prospect by name, about something they never showed interest in.
    #[serde(default)]
    pub off_topic: Option<DraftData>,
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
    fn merge(&mut self, other: Rate) {
        self.hits += other.hits;
        self.total += other.total;
    }

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

/// Reads a data set file.
pub fn read_dataset(path: &std::path::Path) -> anyhow::Result<Dataset> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The data sets named by `paths`, each with its group: a file stands for itself (its group is
/// its folder's name), a folder for every `*.json` in it, in name order.
pub fn read_datasets(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, Dataset)>> {
    let mut out = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            files.retain(|f| f.extension().is_some_and(|e| e == "json"));
            files.sort();
            anyhow::ensure!(
                !files.is_empty(),
                "{} holds no .json data set",
                path.display()
            );
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            let group = file
                .parent()
                .and_then(|p| p.file_name())
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            out.push((group, read_dataset(&file)?));
        }
    }
    Ok(out)
}

/// Every set's report, the pooled report of each group (folder) and of all sets.
pub struct Evaluation {
    pub sets: Vec<(String, String, Report)>,
    pub groups: Vec<(String, Report)>,
    pub pooled: Report,
}

/// Evaluates each data set in fresh tenants of the service behind `channel`.
pub async fn evaluate_all(
    channel: &Channel,
    datasets: &[(String, Dataset)],
    run: &str,
) -> anyhow::Result<Evaluation> {
    let mut sets = Vec::new();
    let mut groups: Vec<(String, Report)> = Vec::new();
    let mut pooled = Report::default();
    for (i, (group, dataset)) in datasets.iter().enumerate() {
        // Each set in tenants of its own, even if two sets share a tenant id.
        let report = evaluate(channel, dataset, &format!("{run}-{i}")).await?;
        match groups.iter_mut().find(|(g, _)| g == group) {
            Some((_, r)) => r.merge(&report),
            None => {
                let mut r = Report::default();
                r.merge(&report);
                groups.push((group.clone(), r));
            }
        }
        pooled.merge(&report);
        sets.push((group.clone(), dataset.name.clone(), report));
    }
    Ok(Evaluation {
        sets,
        groups,
        pooled,
    })
}

/// Runs `pertinent eval`.
pub async fn run(settings: EvalSettings) -> anyhow::Result<()> {
    let datasets = read_datasets(&settings.datasets)?;
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
    let evaluation = evaluate_all(&channel, &datasets, &run_id).await?;
    if let Some(path) = &settings.dump {
        let mut csv = String::from(
            "tenant,prospect,piece,label,decision,score,relevance,specificity,centered_relevance\n",
        );
        for row in &evaluation.pooled.rows {
            csv.push_str(row);
            csv.push('\n');
        }
        std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))?;
    }
    for (group, name, report) in &evaluation.sets {
        println!("## {name} ({group})\n");
        println!("{}", report.table());
        if settings.verbose || !report.misses.is_empty() {
            println!("Misses:");
            for m in &report.misses {
                println!("- {m}");
            }
            println!();
        }
    }
    let many_groups = evaluation.groups.len() > 1;
    for (group, report) in &evaluation.groups {
        if many_groups || evaluation.sets.len() > 1 {
            println!("## pooled: {group}\n");
            println!("{}", report.table());
            println!("{}", report.curve_table());
        }
    }
    if many_groups {
        println!("## pooled: all sets\n");
        println!("{}", evaluation.pooled.table());
    }
    if evaluation.sets.len() == 1 {
        println!("{}", evaluation.pooled.curve_table());
    }
    Ok(())
}
