//! The bench's synthetic tenant: varied B2B evidence, pieces and drafts made from a small
//! vocabulary, and the seeding of it all through the public API.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use super::BenchSettings;
use crate::pb;
use crate::pb::content_service_client::ContentServiceClient;
use crate::pb::prospect_service_client::ProspectServiceClient;

/// The tenant the bench seeds and drives.
pub const TENANT: &str = "bench";

/// Vocabulary for synthetic but varied B2B evidence: every signal text is one of
/// `TOPICS x ANGLES` sentences, so seeding embeds a few hundred distinct texts (the rest hit
/// the embedding cache) while the stored vectors are real model output.
const TOPICS: [&str; 24] = [
    "warehouse slotting and pick paths",
    "SOX user access reviews",
    "patient appointment no-shows",
    "mobile checkout abandonment",
    "predictive maintenance on CNC lines",
    "cloud cost allocation by team",
    "sales forecast accuracy",
    "customer churn in the first 90 days",
    "invoice processing backlog",
    "field technician scheduling",
    "supplier risk monitoring",
    "employee onboarding paperwork",
    "data pipeline failures at night",
    "fraud in card-not-present payments",
    "carbon reporting for scope 3",
    "contract renewal tracking",
    "call-centre wait times",
    "inventory shrinkage in stores",
    "clinical trial recruitment",
    "fleet fuel costs",
    "phishing simulations for staff",
    "ERP migration planning",
    "pricing experiments in SaaS",
    "student retention at universities",
];

const ANGLES: [&str; 16] = [
    "We are struggling with {} and need a better approach this quarter.",
    "Our board asked me to fix {} before the next review.",
    "Has anyone automated {}? Manual work is eating our week.",
    "Read your case study about {} with interest.",
    "Survey answer: top priority is {}.",
    "Call notes: budget approved for a project on {}.",
    "Visited the solutions page on {}.",
    "Replied: send me more on {}, especially benchmarks.",
    "Forum post: what tools do you use for {}?",
    "Downloaded the guide on {}.",
    "Our team spends too many hours on {} every month.",
    "We tried a vendor for {} last year and it failed.",
    "Asked for a comparison of approaches to {}.",
    "Mentioned {} as the main pain point in discovery.",
    "Wants a pilot on {} in one region first.",
    "Interested in how peers measure success in {}.",
];

const SOURCES: [pb::SignalSource; 7] = [
    pb::SignalSource::CallNote,
    pb::SignalSource::WebVisit,
    pb::SignalSource::ForumPost,
    pb::SignalSource::EmailReply,
    pb::SignalSource::CaseStudyRead,
    pb::SignalSource::Survey,
    pb::SignalSource::Other,
];

fn signal_text(prospect: usize, k: usize) -> String {
    // Each prospect gets two or three main topics, so profiles differ.
    let topic = TOPICS[(prospect * 7 + (k % 3) * 5) % TOPICS.len()];
    let angle = ANGLES[(prospect + k * 3) % ANGLES.len()];
    angle.replace("{}", topic)
}

fn content_text(i: usize) -> (String, String) {
    let topic = TOPICS[i % TOPICS.len()];
    (
        format!(
            "A practical guide to {topic} (part {})",
            i / TOPICS.len() + 1
        ),
        format!(
            "How three mid-size companies approached {topic}: what they measured, what they \
             changed first and the results after six months."
        ),
    )
}

pub fn draft_text(i: u64) -> (String, String) {
    let topic = TOPICS[(i as usize * 11) % TOPICS.len()];
    (
        format!("Idea #{i} on {topic}"),
        format!(
            "Hi, you mentioned {topic} on our call. Draft {i}: teams like yours cut the manual \
             work in half within a quarter by starting with one measurable process. Worth a look?"
        ),
    )
}

/// The registered piece request `i` scores.
pub fn piece(i: u64, contents: u64) -> Option<pb::Candidate> {
    Some(pb::Candidate {
        item: Some(pb::candidate::Item::ContentId(format!("c{}", i % contents))),
    })
}

/// A new draft for request `i` (offset so that workloads never share texts).
pub fn new_draft(i: u64) -> Option<pb::Candidate> {
    let (title, body) = draft_text(i);
    Some(pb::Candidate {
        item: Some(pb::candidate::Item::Draft(pb::Draft {
            title,
            body,
            id: String::new(),
        })),
    })
}

/// The prospect request `i` is for: a stride through all of them.
pub fn prospect_of(i: u64, prospects: u64) -> String {
    format!("p{}", (i * 7919) % prospects)
}

/// Seeds `--prospects` prospects with their signals and `--contents` pieces; returns how long it took.
pub async fn seed(channels: &[Channel], s: &BenchSettings) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..8usize {
        let channel = channels[worker % channels.len()].clone();
        let next = next.clone();
        let (prospects, per) = (s.prospects, s.signals_per_prospect);
        tasks.push(tokio::spawn(async move {
            let mut client = ProspectServiceClient::new(channel);
            loop {
                let p = next.fetch_add(1, Ordering::Relaxed) as usize;
                if p >= prospects {
                    return Ok::<_, anyhow::Error>(());
                }
                let id = format!("p{p}");
                client
                    .upsert_prospect(pb::UpsertProspectRequest {
                        tenant: TENANT.into(),
                        prospect: Some(pb::Prospect {
                            id: id.clone(),
                            name: format!("Prospect {p}"),
                            company: format!("Company {}", p / 3),
                            role: "Director".into(),
                            ..Default::default()
                        }),
                    })
                    .await?;
                let signals = (0..per)
                    .map(|k| pb::Signal {
                        id: format!("s{k}"),
                        source: SOURCES[k % SOURCES.len()] as i32,
                        polarity: pb::Polarity::Positive as i32,
                        observed_at: None,
                        text: signal_text(p, k),
                        weight: 0.0,
                    })
                    .collect();
                client
                    .add_signals(pb::AddSignalsRequest {
                        tenant: TENANT.into(),
                        prospect_id: id,
                        signals,
                    })
                    .await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut content = ContentServiceClient::new(channels[0].clone());
    for i in 0..s.contents {
        let (title, body) = content_text(i);
        content
            .register_content(pb::RegisterContentRequest {
                tenant: TENANT.into(),
                content: Some(pb::Content {
                    id: format!("c{i}"),
                    kind: pb::ContentKind::BlogPost as i32,
                    title,
                    body,
                    tags: vec![],
                }),
            })
            .await?;
    }
    Ok(started.elapsed())
}
