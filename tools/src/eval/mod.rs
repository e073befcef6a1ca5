//! `eval PATH...`: loads labelled data sets into fresh tenants through the public gRPC API and
//! prints the quality metrics of docs/scoring.md per set, pooled per folder and over all.
//!
//! `dataset` is the format (that of tests/data/dev/*.json) and its reading, `measure` the calls
//! that load and measure one set, `report` the metrics and the operating curve; this file the
//! command. docs/scoring.md says what each metric means and which sets are for what.

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
use clap::Parser;
use tonic::transport::Channel;

use crate::server::{ChildServer, pertinent_binary};

/// Loads labelled data sets through pertinent's gRPC API and prints their quality metrics.
#[derive(Debug, Clone, Parser)]
#[command(name = "eval", version, about)]
pub struct EvalSettings {
    /// Labelled data sets: JSON files (the format of tests/data/dev/*.json) or folders of them.
    #[arg(required = true)]
    pub datasets: Vec<PathBuf>,

    /// Evaluate a service already running at this address (on this machine) instead of
    /// starting one with a fresh embedded store.
    #[arg(long)]
    pub target: Option<String>,

    /// The `pertinent` binary to start (default: the one beside this tool).
    #[arg(long)]
    pub pertinent: Option<PathBuf>,

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

/// Runs `eval`.
pub async fn run(settings: EvalSettings) -> anyhow::Result<()> {
    let datasets = read_datasets(&settings.datasets)?;
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)?
        .as_millis()
        .to_string();
    let (channel, _server) = match &settings.target {
        Some(target) => {
            let channel = Channel::from_shared(crate::local_target(target)?)?
                .connect()
                .await?;
            (channel, None)
        }
        None => {
            let binary = pertinent_binary(settings.pertinent.as_deref())?;
            let mut args = vec!["--log-filter".to_owned(), "warn".to_owned()];
            if let Some(path) = &settings.scoring_config {
                args.push("--scoring-config".into());
                args.push(path.display().to_string());
            }
            let server = ChildServer::start(&binary, &args).await?;
            (server.connect().await?, Some(server))
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
