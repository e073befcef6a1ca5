//! `pertinent bench`: a gRPC load generator and the report in docs/benchmarks.md.
//!
//! It starts `pertinent serve` as a child process on a fresh data directory (or drives
//! `--target`), seeds a tenant through the public API, then runs closed-loop load with a fixed
//! number of concurrent requests for a fixed time per workload, and reports requests per
//! second, p50 and p99 from an HDR histogram. The raw model's own throughput on the same texts
//! and thread settings is measured in this process for comparison, and the server's peak RSS is
//! read from /proc. Every loop is bounded in count and time and talks to 127.0.0.1 only.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use hdrhistogram::Histogram;
use prost::Message as _;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::config::ServeSettings;
use crate::embedding::Embedder;
use crate::embedding::fastembed::FastembedEmbedder;
use crate::grpc::pb;
use crate::grpc::pb::content_service_client::ContentServiceClient;
use crate::grpc::pb::gate_service_client::GateServiceClient;
use crate::grpc::pb::prospect_service_client::ProspectServiceClient;
use crate::grpc::pb::scoring_service_client::ScoringServiceClient;

/// Options of `pertinent bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchSettings {
    /// Drive a service already running at this address instead of starting one (then peak RSS
    /// is not reported). Must be on this machine.
    #[arg(long)]
    pub target: Option<String>,

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

const TENANT: &str = "bench";

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

fn draft_text(i: u64) -> (String, String) {
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
fn piece(i: u64, contents: u64) -> Option<pb::Candidate> {
    Some(pb::Candidate {
        item: Some(pb::candidate::Item::ContentId(format!("c{}", i % contents))),
    })
}

/// A new draft for request `i` (offset so that workloads never share texts).
fn new_draft(i: u64) -> Option<pb::Candidate> {
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
fn prospect_of(i: u64, prospects: u64) -> String {
    format!("p{}", (i * 7919) % prospects)
}

struct Server {
    child: Option<Child>,
    addr: String,
    _data: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    /// CPU time the server process has used so far (user + system), from /proc.
    fn cpu_time(&self) -> Option<Duration> {
        let pid = self.child.as_ref()?.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf only reads a system constant.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        (per_second > 0).then(|| Duration::from_secs_f64(ticks as f64 / per_second as f64))
    }

    fn peak_rss_mib(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

async fn start_server(settings: &BenchSettings) -> anyhow::Result<Server> {
    if let Some(target) = &settings.target {
        anyhow::ensure!(
            target.starts_with("127.0.0.1:") || target.starts_with("localhost:"),
            "--target must be on this machine (127.0.0.1)"
        );
        return Ok(Server {
            child: None,
            addr: target.clone(),
            _data: None,
        });
    }
    let data = tempfile::tempdir()?;
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let exe: PathBuf = std::env::current_exe()?;
    let child = Command::new(exe)
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(data.path())
        .args([
            "--embed-workers",
            &settings.embed_workers.to_string(),
            "--embed-threads",
            &settings.embed_threads.to_string(),
            "--log-filter",
            "warn",
        ])
        .stdout(Stdio::null())
        .spawn()
        .context("starting pertinent serve")?;
    let server = Server {
        child: Some(child),
        addr,
        _data: Some(data),
    };
    // Wait (bounded) for the port to accept connections.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(&server.addr).await.is_ok() {
            return Ok(server);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the server did not start within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn channels(addr: &str, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        out.push(
            Channel::from_shared(format!("http://{addr}"))?
                .connect()
                .await
                .context("connecting to the service")?,
        );
    }
    Ok(out)
}

async fn seed(channels: &[Channel], s: &BenchSettings) -> anyhow::Result<Duration> {
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

/// The result of one workload.
struct Measured {
    name: &'static str,
    concurrency: usize,
    requests: u64,
    errors: u64,
    elapsed: Duration,
    histogram: Histogram<u64>,
    /// Server CPU time spent during the workload, when the bench started the server.
    server_cpu: Option<Duration>,
    /// For gate workloads, how the checks were decided.
    decisions: Option<Arc<Tally>>,
    /// Encoded size of all answers (protobuf bytes, before gRPC framing).
    answer_bytes: u64,
}

/// How many checks of a workload were decided SEND, REVIEW and REJECT.
#[derive(Default)]
struct Tally([AtomicU64; 3]);

impl Tally {
    fn count(&self, d: &pb::GateDecision) {
        let slot = match pb::Decision::try_from(d.decision) {
            Ok(pb::Decision::Send) => 0,
            Ok(pb::Decision::Review) => 1,
            _ => 2,
        };
        self.0[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// "send / review / reject" in percent of the checks answered.
    fn shares(&self) -> String {
        let n: Vec<u64> = self.0.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total = n.iter().sum::<u64>().max(1) as f64;
        let pct: Vec<String> = n
            .iter()
            .map(|&c| format!("{:.0}", c as f64 * 100.0 / total))
            .collect();
        pct.join(" / ")
    }
}

impl Measured {
    /// Server CPU microseconds per request.
    fn cpu_us(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (self.requests > 0).then(|| cpu.as_secs_f64() * 1e6 / self.requests as f64)
    }
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// One line of the report: a workload's rounds together.
struct Line {
    name: &'static str,
    concurrency: usize,
    requests: u64,
    errors: u64,
    /// Median over rounds.
    rate: f64,
    /// Over all rounds' requests.
    p50_ms: f64,
    p99_ms: f64,
    /// Median over rounds.
    cpu_us: Option<f64>,
    /// Median over rounds of this round's CPU per request over that of the Score workload
    /// doing the same scoring (on registered content, or on drafts).
    vs_score: Option<f64>,
    answer_bytes: u64,
    decisions: Option<Arc<Tally>>,
}

impl Line {
    fn new(runs: Vec<Measured>, score_cpu: Option<&[f64]>) -> Self {
        let first = &runs[0];
        let mut histogram = first.histogram.clone();
        for m in &runs[1..] {
            let _ = histogram.add(&m.histogram);
        }
        let requests = runs.iter().map(|m| m.requests).sum::<u64>();
        let cpu: Option<Vec<f64>> = runs.iter().map(Measured::cpu_us).collect();
        let vs_score = cpu
            .as_deref()
            .zip(score_cpu)
            .map(|(cpu, score)| median(cpu.iter().zip(score).map(|(c, s)| c / s).collect()));
        Self {
            name: first.name,
            concurrency: first.concurrency,
            requests,
            errors: runs.iter().map(|m| m.errors).sum(),
            rate: median(runs.iter().map(Measured::rate).collect()),
            p50_ms: histogram.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: histogram.value_at_quantile(0.99) as f64 / 1000.0,
            cpu_us: cpu.map(median),
            vs_score,
            answer_bytes: runs.iter().map(|m| m.answer_bytes).sum::<u64>() / requests.max(1),
            decisions: first.decisions.clone(),
        }
    }
}

/// The median (the mean of the middle two of an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Closed-loop load: `concurrency` tasks each send one request at a time until `duration`
/// has passed. `call(i)` makes request number i and returns the encoded size of its answer.
async fn load<F, Fut>(
    name: &'static str,
    concurrency: usize,
    duration: Duration,
    call: F,
) -> anyhow::Result<Measured>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<usize, tonic::Status>> + Send,
{
    let call = Arc::new(call);
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (call, stop, counter, errors, bytes, histogram) = (
            call.clone(),
            stop.clone(),
            counter.clone(),
            errors.clone(),
            bytes.clone(),
            histogram.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            let mut local_bytes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                match call(i).await {
                    Ok(size) => {
                        let _ = local.record(t.elapsed().as_micros().max(1) as u64);
                        local_bytes += size as u64;
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let _ = histogram.lock().await.add(&local);
            bytes.fetch_add(local_bytes, Ordering::Relaxed);
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await?;
    }
    let elapsed = started.elapsed();
    let histogram = Arc::try_unwrap(histogram)
        .map_err(|_| anyhow::anyhow!("histogram still shared"))?
        .into_inner();
    Ok(Measured {
        name,
        concurrency,
        requests: histogram.len(),
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        histogram,
        server_cpu: None,
        decisions: None,
        answer_bytes: bytes.load(Ordering::Relaxed),
    })
}

/// The raw model: the same texts through one fastembed session per worker, in batches as
/// large as the server's, as fast as it goes. Texts per second.
fn raw_model_rate(s: &BenchSettings, texts: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut serve = ServeSettings::for_local(dir.path());
    serve.embedding.workers = s.embed_workers;
    serve.embedding.intra_threads = s.embed_threads;
    let serve = serve.validate()?;
    let embedder = FastembedEmbedder::load(&serve.embedding)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let all: Vec<String> = (0..texts as u64)
        .map(|i| {
            let (t, b) = draft_text(1_000_000 + i);
            crate::domain::embedding_text(&t, &b)
        })
        .collect();
    let started = Instant::now();
    rt.block_on(async {
        let chunks = all.chunks(16).map(|c| embedder.embed(c.to_vec()));
        futures::future::try_join_all(chunks).await
    })?;
    Ok(texts as f64 / started.elapsed().as_secs_f64())
}

/// Runs the benchmark and prints the report.
pub async fn run(s: BenchSettings) -> anyhow::Result<()> {
    let server = start_server(&s).await?;
    let chans = channels(&server.addr, s.connections).await?;
    eprintln!(
        "bench: seeding {} prospects x {} signals and {} pieces...",
        s.prospects, s.signals_per_prospect, s.contents
    );
    let seeded = seed(&chans, &s).await?;
    let rss_after_seed = server.peak_rss_mib();
    let duration = Duration::from_secs(s.seconds);
    let chans = Arc::new(chans);
    let (prospects, contents) = (s.prospects as u64, s.contents.max(1) as u64);

    // Score on registered content: a stride through prospects and pieces.
    let score_piece = |chans: Arc<Vec<Channel>>| {
        move |i: u64| {
            let mut c = ScoringServiceClient::new(chans[i as usize % chans.len()].clone());
            async move {
                c.score(pb::ScoreRequest {
                    tenant: TENANT.into(),
                    prospect_id: prospect_of(i, prospects),
                    candidate: piece(i, contents),
                })
                .await
                .map(|r| r.get_ref().encoded_len())
            }
        }
    };
    // Score on drafts, each a new text (numbered from `offset`), over the first `spread`
    // connections.
    let score_draft = |chans: Arc<Vec<Channel>>, offset: u64, spread: usize| {
        move |i: u64| {
            let mut c = ScoringServiceClient::new(chans[i as usize % spread].clone());
            let candidate = new_draft(offset + i);
            async move {
                c.score(pb::ScoreRequest {
                    tenant: TENANT.into(),
                    prospect_id: prospect_of(i, prospects),
                    candidate,
                })
                .await
                .map(|r| r.get_ref().encoded_len())
            }
        }
    };
    // The gate, as a pipeline calls it: a check per send, each with a new send id. A prospect
    // hit again within the fatigue window is refused, which is part of the work.
    let check = |chans: Arc<Vec<Channel>>,
                 tally: Arc<Tally>,
                 prefix: String,
                 dry_run: bool,
                 drafts: u64| {
        move |i: u64| {
            let mut c = GateServiceClient::new(chans[i as usize % chans.len()].clone());
            let tally = tally.clone();
            let send_id = format!("{prefix}-{i}");
            let candidate = if drafts > 0 {
                new_draft(drafts + i)
            } else {
                piece(i, contents)
            };
            async move {
                c.check(pb::CheckRequest {
                    tenant: TENANT.into(),
                    prospect_id: prospect_of(i, prospects),
                    candidate,
                    send_id,
                    channel: "email".into(),
                    planned_at: None,
                    dry_run,
                })
                .await
                .map(|r| {
                    tally.count(r.get_ref());
                    r.get_ref().encoded_len()
                })
            }
        }
    };
    // Warm the caches the way a running service has them warm: profiles and baselines by
    // scoring, the gate's policy and histories by a dry-run check of each prospect (a dry run
    // records and remembers nothing). A cold history costs one store read.
    load(
        "warm-up",
        s.concurrency,
        Duration::from_secs(2),
        score_piece(chans.clone()),
    )
    .await?;
    if s.workloads.iter().any(|w| {
        matches!(
            w,
            Workload::Check | Workload::CheckDryRun | Workload::CheckDrafts
        )
    }) {
        let warm = check(
            chans.clone(),
            Arc::new(Tally::default()),
            "bench-warm".into(),
            true,
            0,
        );
        load("warm-up", s.concurrency, Duration::from_secs(2), warm).await?;
    }

    // Each workload's measurements, one per round. Every round sends new drafts and new send
    // ids, so that no round finds the texts embedded or the decisions made by an earlier one.
    let mut rounds: Vec<Vec<Measured>> = s.workloads.iter().map(|_| Vec::new()).collect();
    let tallies: Vec<Arc<Tally>> = s.workloads.iter().map(|_| Arc::default()).collect();
    for (round, slot) in (0..s.rounds).flat_map(|r| (0..s.workloads.len()).map(move |w| (r, w))) {
        let workload = s.workloads[slot];
        eprintln!("bench: {}...", workload.title());
        let name = workload.title();
        let fresh = round * 10_000_000;
        let cpu_before = server.cpu_time();
        let mut m = match workload {
            Workload::Score => {
                load(name, s.concurrency, duration, score_piece(chans.clone())).await?
            }
            Workload::Drafts => {
                let call = score_draft(chans.clone(), fresh, chans.len());
                load(name, s.draft_concurrency, duration, call).await?
            }
            Workload::Check | Workload::CheckDryRun | Workload::CheckDrafts => {
                let tally = tallies[slot].clone();
                let (prefix, dry_run, drafts, concurrency) = match workload {
                    Workload::Check => ("bench-content", false, 0, s.concurrency),
                    Workload::CheckDryRun => ("bench-dry", true, 0, s.concurrency),
                    _ => ("bench-draft", false, fresh + 2_000_000, s.draft_concurrency),
                };
                let prefix = format!("{prefix}-{round}");
                let call = check(chans.clone(), tally.clone(), prefix, dry_run, drafts);
                let mut m = load(name, concurrency, duration, call).await?;
                m.decisions = Some(tally);
                m
            }
            Workload::SingleDraft => {
                let call = score_draft(chans.clone(), fresh + 500_000, 1);
                load(name, 1, duration / 2, call).await?
            }
            Workload::Audience => {
                let chans = chans.clone();
                load(name, 1, duration / 2, move |i| {
                    let mut c = ScoringServiceClient::new(chans[0].clone());
                    async move {
                        c.find_audience(pb::FindAudienceRequest {
                            tenant: TENANT.into(),
                            candidate: piece(i, contents),
                            limit: 10,
                        })
                        .await
                        .map(|r| r.get_ref().encoded_len())
                    }
                })
                .await?
            }
        };
        m.server_cpu = cpu_before
            .zip(server.cpu_time())
            .map(|(before, after)| after.saturating_sub(before));
        rounds[slot].push(m);
    }
    let peak_rss = server.peak_rss_mib();
    // Each round's CPU per request of a workload's Score counterpart, if it ran.
    let cpu_of = |w: Workload| -> Option<Vec<f64>> {
        let at = s.workloads.iter().position(|x| *x == w)?;
        rounds[at].iter().map(Measured::cpu_us).collect()
    };
    let baselines: Vec<Option<Vec<f64>>> = s
        .workloads
        .iter()
        .map(|w| w.score_counterpart().and_then(cpu_of))
        .collect();
    let lines: Vec<Line> = rounds
        .into_iter()
        .zip(baselines)
        .map(|(runs, baseline)| Line::new(runs, baseline.as_deref()))
        .collect();
    let drafts_rate = s
        .workloads
        .iter()
        .position(|w| *w == Workload::Drafts)
        .map(|at| (lines[at].rate, lines[at].requests));

    println!("## pertinent bench\n");
    println!(
        "Seeded {} prospects x {} signals = {} signals and {} pieces in {:.1} s through the API.\n",
        s.prospects,
        s.signals_per_prospect,
        s.prospects * s.signals_per_prospect,
        s.contents,
        seeded.as_secs_f64()
    );
    if s.rounds > 1 {
        println!(
            "{} rounds of {} s per workload; req/s, CPU and CPU / Score are medians over \
             rounds.\n",
            s.rounds, s.seconds
        );
    }
    println!(
        "| workload | concurrency | requests | errors | req/s | p50 ms | p99 ms | server CPU us/req \
         | CPU / Score | answer bytes | send / review / reject % |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let dash = || "–".to_owned();
    for l in &lines {
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} |",
            l.name,
            l.concurrency,
            l.requests,
            l.errors,
            l.rate,
            l.p50_ms,
            l.p99_ms,
            l.cpu_us.map_or_else(dash, |us| format!("{us:.0}")),
            l.vs_score.map_or_else(dash, |r| format!("{r:.2}x")),
            l.answer_bytes,
            l.decisions.as_ref().map_or_else(dash, |t| t.shares())
        );
    }
    if let Some((rate, requests)) = drafts_rate {
        eprintln!("bench: the raw model on the same texts...");
        let sample = (requests as usize).clamp(64, 512);
        let raw = tokio::task::spawn_blocking({
            let s = s.clone();
            move || raw_model_rate(&s, sample)
        })
        .await??;
        println!(
            "\nRaw model, same texts, {} worker(s) x {} thread(s): {:.1} texts/s; drafts through \
             the service reach {:.2}x of it.",
            s.embed_workers,
            s.embed_threads,
            raw,
            rate / raw
        );
    }
    match (rss_after_seed, peak_rss) {
        (Some(a), Some(b)) => {
            println!("\nServer peak RSS: {a:.0} MiB after seeding, {b:.0} MiB at the end (VmHWM).")
        }
        _ => println!("\nServer peak RSS: not measured (--target)."),
    }
    Ok(())
}
