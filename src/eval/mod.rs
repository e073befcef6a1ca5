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
//!
//! `dataset` is the data set format and its reading, `report` the metrics and the operating
//! curve, `measure` the calls that load a set and measure it; this file the command itself.

mod dataset;
mod measure;
mod report;

pub use dataset::{
    ContentData, Dataset, DraftData, DraftSet, ProspectData, SignalData, TenantData, read_dataset,
    read_datasets,
};
pub use measure::evaluate;
pub use report::{Curve, CurvePair, CurvePoint, Rate, Report};

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use tonic::transport::Channel;

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
