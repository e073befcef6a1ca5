//! The bench's report: each workload's rounds as one line of a Markdown table.

use std::sync::Arc;

use std::time::Duration;

use super::load::{Measured, Tally};
use super::{BenchSettings, Workload};

/// One line of the report: a workload's rounds together.
pub struct Line {
    pub name: &'static str,
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    /// Median over rounds.
    pub rate: f64,
    /// Over all rounds' requests.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Median over rounds.
    pub cpu_us: Option<f64>,
    /// Median over rounds of this round's CPU per request over that of the Score workload
    /// doing the same scoring (on registered content, or on drafts).
    pub vs_score: Option<f64>,
    pub answer_bytes: u64,
    pub decisions: Option<Arc<Tally>>,
}

impl Line {
    pub fn new(runs: Vec<Measured>, score_cpu: Option<&[f64]>) -> Self {
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

/// One line per workload, from its rounds; "CPU / Score" pairs each round with the same
/// round of the workload's Score counterpart.
pub fn lines(workloads: &[Workload], rounds: Vec<Vec<Measured>>) -> Vec<Line> {
    let cpu_of = |w: Workload| -> Option<Vec<f64>> {
        let at = workloads.iter().position(|x| *x == w)?;
        rounds[at].iter().map(Measured::cpu_us).collect()
    };
    let baselines: Vec<Option<Vec<f64>>> = workloads
        .iter()
        .map(|w| w.score_counterpart().and_then(cpu_of))
        .collect();
    rounds
        .into_iter()
        .zip(baselines)
        .map(|(runs, baseline)| Line::new(runs, baseline.as_deref()))
        .collect()
}

/// The heading and the table.
pub fn print_table(s: &BenchSettings, seeded: Duration, lines: &[Line]) {
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
    for l in lines {
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
}

/// The raw model's rate on the same texts, and how close drafts through the service come.
pub fn print_raw_model(s: &BenchSettings, raw: f64, drafts_rate: f64) {
    println!(
        "\nRaw model, same texts, {} worker(s) x {} thread(s): {:.1} texts/s; drafts through \
         the service reach {:.2}x of it.",
        s.embed_workers,
        s.embed_threads,
        raw,
        drafts_rate / raw
    );
}

/// The server's peak RSS after seeding and at the end.
pub fn print_memory(after_seed: Option<f64>, at_end: Option<f64>) {
    match (after_seed, at_end) {
        (Some(a), Some(b)) => {
            println!("\nServer peak RSS: {a:.0} MiB after seeding, {b:.0} MiB at the end (VmHWM).")
        }
        _ => println!("\nServer peak RSS: not measured (--target)."),
    }
}
