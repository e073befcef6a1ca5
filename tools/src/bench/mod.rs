//! `bench`: gRPC load on pertinent, and the report in docs/benchmarks.md.
//!
//! It starts `pertinent serve` as a child process on a fresh data directory (or drives
//! `--target`), seeds a tenant through the public API (`corpus`), then runs closed-loop load
//! per workload (`load`) in rounds, and prints one line per workload (`report`): requests per
//! second, p50 and p99, the server's CPU per request and its ratio to Score's in the same
//! round, and peak RSS. The raw model on the same texts (`raw_model`) is the reference for
//! drafts. Every loop is bounded in count and time and talks to 127.0.0.1 only.

mod corpus;
mod load;
mod raw_model;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures::future::BoxFuture;
use prost::Message as _;
use tonic::transport::Channel;

use crate::pb;
use crate::pb::gate_service_client::GateServiceClient;
use crate::pb::scoring_service_client::ScoringServiceClient;
use crate::server::{ChildServer, pertinent_binary};
use corpus::{TENANT, new_draft, piece, prospect_of};
use load::{Measured, Tally, load};

/// Drives pertinent with gRPC load and prints throughput, latency, CPU and memory.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench", version, about)]
pub struct BenchSettings {
    /// Drive a service already running at this address instead of starting one (then peak RSS
    /// and CPU are not reported). Must be on this machine.
    #[arg(long)]
    pub target: Option<String>,

    /// The `pertinent` binary to start (default: the one beside this tool).
    #[arg(long)]
    pub pertinent: Option<PathBuf>,

    /// The model directory, for the service this tool starts and the raw-model reference.
    #[arg(long, default_value = ".cache/model")]
    pub model_dir: PathBuf,

    /// The ONNX Runtime library, for the service this tool starts and the raw-model reference.
    #[arg(long, default_value = ".cache/onnxruntime/libonnxruntime.so")]
    pub ort_dylib_path: PathBuf,

    /// Prospects to seed.
    #[arg(long, default_value_t = 12_500)]
    pub prospects: usize,

    /// Signals per prospect (12,500 x 8 = 100,000 signals).
    #[arg(long, default_value_t = 8)]
    pub signals_per_prospect: usize,

    /// Registered content pieces.
    #[arg(long, default_value_t = 50)]
    pub contents: usize,

    /// Concurrent requests for Score on registered content.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,

    /// Concurrent requests for Score on drafts.
    #[arg(long, default_value_t = 16)]
    pub draft_concurrency: usize,

    /// Seconds of load per workload.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,

    /// Times the workloads run, in turn, on the same server. With more than one, each line
    /// shows the median over rounds of req/s and CPU per request, and "CPU / Score" the median
    /// of each round's ratio to that round's Score: on a host whose speed drifts, workloads
    /// run side by side compare better than runs far apart.
    /// ("CPU / Score" compares a check on drafts with Score on drafts.)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: u64,

    /// HTTP/2 connections the load is spread over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,

    /// Model worker threads and intra-op threads of the server (and of the raw-model baseline).
    #[arg(long, default_value_t = 1)]
    pub embed_workers: usize,

    /// ONNX intra-op threads per worker.
    #[arg(long, default_value_t = 1)]
    pub embed_threads: usize,

    /// The workloads to run, in this order (comma-separated). The raw-model comparison runs
    /// when `drafts` is among them.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "score,drafts,check,check-dry-run,check-drafts,single-draft,audience"
    )]
    pub workloads: Vec<Workload>,
}

/// One workload of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Score on registered content, `--concurrency` at once.
    Score,
    /// Score on drafts, each a new text, `--draft-concurrency` at once.
    Drafts,
    /// Recorded Check on registered content, each with a new send id.
    Check,
    /// Check on registered content with `dry_run` (nothing written).
    CheckDryRun,
    /// Recorded Check on drafts, each a new text.
    CheckDrafts,
    /// Score on drafts, one at a time.
    SingleDraft,
    /// FindAudience with limit 10, one at a time.
    Audience,
}

impl Workload {
    /// Whether the workload calls GateService.Check.
    fn is_check(self) -> bool {
        match self {
            Workload::Check | Workload::CheckDryRun | Workload::CheckDrafts => true,
            Workload::Score | Workload::Drafts | Workload::SingleDraft | Workload::Audience => {
                false
            }
        }
    }

    /// The Score workload doing the same scoring, which "CPU / Score" compares with.
    fn score_counterpart(self) -> Option<Workload> {
        match self {
            Workload::Score | Workload::Check | Workload::CheckDryRun => Some(Workload::Score),
            Workload::Drafts | Workload::CheckDrafts => Some(Workload::Drafts),
            Workload::SingleDraft | Workload::Audience => None,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Workload::Score => "Score, registered content",
            Workload::Drafts => "Score, drafts",
            Workload::Check => "Check, registered content",
            Workload::CheckDryRun => "Check, registered content, dry run",
            Workload::CheckDrafts => "Check, drafts",
            Workload::SingleDraft => "Score, drafts, one at a time",
            Workload::Audience => "FindAudience, limit 10",
        }
    }
}

/// The service under load: a child this tool started, or `--target`.
struct Target {
    child: Option<ChildServer>,
    addr: String,
}

impl Target {
    async fn start(s: &BenchSettings) -> anyhow::Result<Self> {
        if let Some(target) = &s.target {
            return Ok(Self {
                child: None,
                addr: crate::local_target(target)?,
            });
        }
        let binary = pertinent_binary(s.pertinent.as_deref())?;
        let args: Vec<String> = [
            "--embed-workers",
            &s.embed_workers.to_string(),
            "--embed-threads",
            &s.embed_threads.to_string(),
            "--model-dir",
            &s.model_dir.display().to_string(),
            "--ort-dylib-path",
            &s.ort_dylib_path.display().to_string(),
            "--log-filter",
            "warn",
        ]
        .map(str::to_owned)
        .to_vec();
        let child = ChildServer::start(&binary, &args).await?;
        let addr = format!("http://{}", child.addr());
        Ok(Self {
            child: Some(child),
            addr,
        })
    }

    fn cpu_time(&self) -> Option<Duration> {
        self.child.as_ref()?.cpu_time()
    }

    fn peak_rss_mib(&self) -> Option<f64> {
        self.child.as_ref()?.peak_rss_mib()
    }

    /// `n` separate HTTP/2 connections.
    async fn channels(&self, n: usize) -> anyhow::Result<Vec<Channel>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            out.push(Channel::from_shared(self.addr.clone())?.connect().await?);
        }
        Ok(out)
    }
}

/// The calls each workload makes, spread over the connections: request `i` goes to prospect
/// `prospect_of(i)` and, for registered content, piece `i mod contents`.
#[derive(Clone)]
struct Calls {
    chans: Arc<Vec<Channel>>,
    prospects: u64,
    contents: u64,
}

/// The encoded size of an answer, or the error.
type Answer = Result<usize, tonic::Status>;
/// Makes request number `i`.
type Call = Box<dyn Fn(u64) -> BoxFuture<'static, Answer> + Send + Sync>;

impl Calls {
    fn channel(&self, i: u64, spread: usize) -> Channel {
        self.chans[i as usize % spread.clamp(1, self.chans.len())].clone()
    }

    /// Score on registered content.
    fn score_piece(&self) -> Call {
        let calls = self.clone();
        Box::new(move |i| {
            let mut c = ScoringServiceClient::new(calls.channel(i, usize::MAX));
            let request = pb::ScoreRequest {
                tenant: TENANT.into(),
                prospect_id: prospect_of(i, calls.prospects),
                candidate: piece(i, calls.contents),
            };
            Box::pin(async move { c.score(request).await.map(|r| r.get_ref().encoded_len()) })
        })
    }

    /// Score on drafts, each a new text (numbered from `offset`), over the first `spread`
    /// connections.
    fn score_draft(&self, offset: u64, spread: usize) -> Call {
        let calls = self.clone();
        Box::new(move |i| {
            let mut c = ScoringServiceClient::new(calls.channel(i, spread));
            let request = pb::ScoreRequest {
                tenant: TENANT.into(),
                prospect_id: prospect_of(i, calls.prospects),
                candidate: new_draft(offset + i),
            };
            Box::pin(async move { c.score(request).await.map(|r| r.get_ref().encoded_len()) })
        })
    }

    /// The gate, as a pipeline calls it: a check per send, each with a new send id, on new
    /// drafts numbered from `drafts` (registered content when 0). A prospect hit again within
    /// the fatigue window is refused, which is part of the work.
    fn check(&self, tally: Arc<Tally>, prefix: String, dry_run: bool, drafts: u64) -> Call {
        let calls = self.clone();
        Box::new(move |i| {
            let mut c = GateServiceClient::new(calls.channel(i, usize::MAX));
            let tally = tally.clone();
            let candidate = if drafts > 0 {
                new_draft(drafts + i)
            } else {
                piece(i, calls.contents)
            };
            let request = pb::CheckRequest {
                tenant: TENANT.into(),
                prospect_id: prospect_of(i, calls.prospects),
                candidate,
                send_id: format!("{prefix}-{i}"),
                channel: "email".into(),
                planned_at: None,
                dry_run,
            };
            Box::pin(async move {
                c.check(request).await.map(|r| {
                    tally.count(r.get_ref());
                    r.get_ref().encoded_len()
                })
            })
        })
    }

    /// FindAudience with limit 10, on the first connection.
    fn audience(&self) -> Call {
        let calls = self.clone();
        Box::new(move |i| {
            let mut c = ScoringServiceClient::new(calls.channel(0, 1));
            let request = pb::FindAudienceRequest {
                tenant: TENANT.into(),
                candidate: piece(i, calls.contents),
                limit: 10,
            };
            Box::pin(async move {
                c.find_audience(request)
                    .await
                    .map(|r| r.get_ref().encoded_len())
            })
        })
    }
}

/// Warms the caches the way a running service has them warm: profiles and baselines by
/// scoring, the gate's policy and histories by a dry-run check of each prospect (a dry run
/// records and remembers nothing). A cold history costs one store read.
async fn warm_up(calls: &Calls, s: &BenchSettings) -> anyhow::Result<()> {
    let warm = Duration::from_secs(2);
    load("warm-up", s.concurrency, warm, calls.score_piece()).await?;
    let checks = s.workloads.iter().any(|w| w.is_check());
    if checks {
        let dry = calls.check(Arc::default(), "bench-warm".into(), true, 0);
        load("warm-up", s.concurrency, warm, dry).await?;
    }
    Ok(())
}

/// One round of one workload. Every round sends new drafts and new send ids, so that no round
/// finds the texts embedded or the decisions made by an earlier one.
async fn run_workload(
    calls: &Calls,
    s: &BenchSettings,
    workload: Workload,
    round: u64,
    tally: &Arc<Tally>,
) -> anyhow::Result<Measured> {
    let name = workload.title();
    let duration = Duration::from_secs(s.seconds);
    let fresh = round * 10_000_000;
    let checked = |prefix: &str, dry_run: bool, drafts: u64| {
        calls.check(tally.clone(), format!("{prefix}-{round}"), dry_run, drafts)
    };
    let mut m = match workload {
        Workload::Score => load(name, s.concurrency, duration, calls.score_piece()).await?,
        Workload::Drafts => {
            let call = calls.score_draft(fresh, usize::MAX);
            load(name, s.draft_concurrency, duration, call).await?
        }
        Workload::Check => {
            let call = checked("bench-content", false, 0);
            load(name, s.concurrency, duration, call).await?
        }
        Workload::CheckDryRun => {
            let call = checked("bench-dry", true, 0);
            load(name, s.concurrency, duration, call).await?
        }
        Workload::CheckDrafts => {
            let call = checked("bench-draft", false, fresh + 2_000_000);
            load(name, s.draft_concurrency, duration, call).await?
        }
        Workload::SingleDraft => {
            let call = calls.score_draft(fresh + 500_000, 1);
            load(name, 1, duration / 2, call).await?
        }
        Workload::Audience => load(name, 1, duration / 2, calls.audience()).await?,
    };
    if workload.is_check() {
        m.decisions = Some(tally.clone());
    }
    Ok(m)
}

/// Runs the benchmark and prints the report.
pub async fn run(s: BenchSettings) -> anyhow::Result<()> {
    let target = Target::start(&s).await?;
    let chans = target.channels(s.connections).await?;
    eprintln!(
        "bench: seeding {} prospects x {} signals and {} pieces...",
        s.prospects, s.signals_per_prospect, s.contents
    );
    let seeded = corpus::seed(&chans, &s).await?;
    let rss_after_seed = target.peak_rss_mib();
    let calls = Calls {
        chans: Arc::new(chans),
        prospects: s.prospects as u64,
        contents: s.contents.max(1) as u64,
    };
    warm_up(&calls, &s).await?;

    // Each workload's measurements, one per round, workloads in turn within a round.
    let mut rounds: Vec<Vec<Measured>> = s.workloads.iter().map(|_| Vec::new()).collect();
    let tallies: Vec<Arc<Tally>> = s.workloads.iter().map(|_| Arc::default()).collect();
    for round in 0..s.rounds {
        for (slot, &workload) in s.workloads.iter().enumerate() {
            eprintln!("bench: {}...", workload.title());
            let cpu_before = target.cpu_time();
            let mut m = run_workload(&calls, &s, workload, round, &tallies[slot]).await?;
            m.server_cpu = cpu_before
                .zip(target.cpu_time())
                .map(|(before, after)| after.saturating_sub(before));
            rounds[slot].push(m);
        }
    }
    let peak_rss = target.peak_rss_mib();
    let lines = report::lines(&s.workloads, rounds);
    report::print_table(&s, seeded, &lines);
    let drafts = s.workloads.iter().position(|w| *w == Workload::Drafts);
    if let Some(line) = drafts.map(|at| &lines[at]) {
        eprintln!("bench: the raw model on the same texts...");
        let sample = (line.requests as usize).clamp(64, 512);
        let settings = s.clone();
        let raw = tokio::task::spawn_blocking(move || raw_model::rate(&settings, sample)).await??;
        report::print_raw_model(&s, raw, line.rate);
    }
    report::print_memory(rss_after_seed, peak_rss);
    Ok(())
}
