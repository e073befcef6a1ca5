//! Closed-loop load: a fixed number of concurrent callers for a fixed time, latencies in an HDR
//! histogram, and how the gate decided the checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Mutex;

use crate::pb;

/// The result of one workload.
pub struct Measured {
    pub name: &'static str,
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub histogram: Histogram<u64>,
    /// Server CPU time spent during the workload, when the bench started the server.
    pub server_cpu: Option<Duration>,
    /// For gate workloads, how the checks were decided.
    pub decisions: Option<Arc<Tally>>,
    /// Encoded size of all answers (protobuf bytes, before gRPC framing).
    pub answer_bytes: u64,
}

/// How many checks of a workload were decided SEND, REVIEW and REJECT.
#[derive(Default)]
pub struct Tally([AtomicU64; 3]);

impl Tally {
    pub fn count(&self, d: &pb::GateDecision) {
        let slot = match pb::Decision::try_from(d.decision) {
            Ok(pb::Decision::Send) => 0,
            Ok(pb::Decision::Review) => 1,
            Ok(pb::Decision::Reject | pb::Decision::Unspecified) | Err(_) => 2,
        };
        self.0[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// "send / review / reject" in percent of the checks answered.
    pub fn shares(&self) -> String {
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
    pub fn cpu_us(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (self.requests > 0).then(|| cpu.as_secs_f64() * 1e6 / self.requests as f64)
    }
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// Closed-loop load: `concurrency` tasks each send one request at a time until `duration`
/// has passed. `call(i)` makes request number i and returns the encoded size of its answer.
pub async fn load<F, Fut>(
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
