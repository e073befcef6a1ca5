//! The `pertinent` binary: parse settings, start telemetry, then serve; or manage API keys.

use clap::Parser;
use pertinent::config::{Cli, Command, KeysCommand};
use pertinent::startup::{App, shutdown_signal};
use pertinent::telemetry;

fn main() -> anyhow::Result<()> {
    pertinent::startup::tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(settings) => {
            let options = settings.validate()?;
            let _telemetry = telemetry::init(&options.telemetry)?;
            let print_address = options.print_address;
            let app = App::build(options).await?;
            if print_address {
                println!("listening on {}", app.addr());
                if let Some(metrics) = app.metrics_addr() {
                    println!("metrics on {metrics}");
                }
            }
            app.run(shutdown_signal()).await
        }
        Command::Keys(KeysCommand::Add {
            file,
            id,
            tenants,
            role,
        }) => {
            // The secret alone on stdout, once: the file keeps only its hash.
            println!("{}", pertinent::auth::keys::add(&file, id, tenants, role)?);
            Ok(())
        }
        Command::Keys(KeysCommand::Revoke { file, id }) => {
            pertinent::auth::keys::revoke(&file, &id)?;
            eprintln!("revoked key {id}");
            Ok(())
        }
    }
}
