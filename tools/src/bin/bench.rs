//! `bench`: gRPC load on a pertinent service (docs/benchmarks.md).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pertinent_tools::bench::run(pertinent_tools::bench::BenchSettings::parse()).await
}
