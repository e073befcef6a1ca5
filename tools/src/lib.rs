//! pertinent's tools: `bench` (gRPC load, latency, CPU and memory; docs/benchmarks.md) and
//! `eval` (quality on labelled data sets; docs/scoring.md).
//!
//! Both are clients of the public gRPC API and nothing else: `pb` is compiled here from
//! ../proto, and no module imports the service crate (only the quality test, which runs the
//! service in its own process, does). `server` starts `pertinent serve` as a child process.

pub mod bench;
pub mod eval;
pub mod server;

/// The service's public API, as clients see it (no server code is generated).
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("pertinent.v1");
}

/// Refuses an address that is not on this machine: the tools only ever drive 127.0.0.1.
pub fn local_target(target: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        target.starts_with("127.0.0.1:") || target.starts_with("localhost:"),
        "--target must be on this machine (127.0.0.1)"
    );
    Ok(format!("http://{target}"))
}
