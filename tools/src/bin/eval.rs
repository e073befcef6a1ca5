//! `eval`: pertinent's quality on labelled data sets (docs/scoring.md).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    pertinent_tools::eval::run(pertinent_tools::eval::EvalSettings::parse()).await
}
