//! Settings: the command line and its environment variables, parsed and validated once.
//!
//! Every flag has an environment variable (`PERTINENT_*`) and a doc comment that is its `--help`.
//! `ServeSettings::validate` is the one place that turns flags into what each layer is built
//! from (`ServeOptions`: `SqliteOptions`, `QdrantOptions`, `FastembedOptions`, `EngineOptions`
//! with its `CacheOptions`, `TelemetryOptions`...) and reads the files flags name. Naming:
//! `*Settings` is what clap parses, `*Options` / `*Limits` what a layer takes. Nothing below
//! this module reads the environment or sees a clap type.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::Secret;
use crate::embedding::fastembed::{FastembedOptions, ModelPooling};
use crate::engine::{CacheOptions, EngineLimits, EngineOptions};
use crate::grpc::RequestLimits;
use crate::grpc::conn::TransportLimits;
use crate::grpc::tls::TlsFiles;
use crate::scoring::ScoringOptions;
use crate::store::qdrant::QdrantOptions;
use crate::store::sqlite::SqliteOptions;
use crate::telemetry::{LogFormat, TelemetryOptions};

mod embedding;
mod gate;
mod limits;
mod scoring;
mod security;
mod store;
mod telemetry;

pub use embedding::{EmbeddingSettings, PoolingSetting};
pub use gate::{FailDecision, GateSettings, RecordDecisions};
pub use limits::LimitSettings;
pub use scoring::ScoringSettings;
pub use security::{KeysCommand, SecurityOptions, SecuritySettings};
pub use store::{StoreOptions, StoreSettings};
pub use telemetry::{LogFormatSetting, TelemetrySettings};

/// pertinent: scores how relevant a piece of outbound marketing is to one prospect.
#[derive(Debug, Parser)]
#[command(name = "pertinent", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What the binary does.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the gRPC service.
    Serve(Box<ServeSettings>),
    /// Manages the API key file (docs/security.md).
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// Everything `pertinent serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Address to listen on for gRPC (port 0 picks a free port).
    #[arg(long, env = "PERTINENT_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Once bound, print `listening on HOST:PORT` on stdout: how tools that start the service
    /// with --listen 127.0.0.1:0 learn its address.
    #[arg(long, env = "PERTINENT_PRINT_ADDRESS")]
    pub print_address: bool,

    #[command(flatten)]
    pub store: StoreSettings,

    #[command(flatten)]
    pub embedding: EmbeddingSettings,

    #[command(flatten)]
    pub scoring: ScoringSettings,

    #[command(flatten)]
    pub gate: GateSettings,

    #[command(flatten)]
    pub limits: LimitSettings,

    #[command(flatten)]
    pub telemetry: TelemetrySettings,

    #[command(flatten)]
    pub security: SecuritySettings,
}

/// How long a cached entry lives with the embedded store. Every write goes through this one
/// process and invalidates at once; the TTL still bounds the one staleness left: a load that
/// read the store just before a write and landed in the cache just after its invalidation.
const EMBEDDED_CACHE_TTL: Duration = Duration::from_secs(600);

/// What `pertinent serve` is built from: every flag resolved, every file a flag names read
/// (the API key file and the TLS files are read by their layers, which re-read them on change).
#[derive(Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub print_address: bool,
    pub store: StoreOptions,
    pub embedding: FastembedOptions,
    pub engine: EngineOptions,
    pub requests: RequestLimits,
    /// Largest gRPC message, either way.
    pub max_message_bytes: usize,
    pub transport: TransportLimits,
    pub telemetry: TelemetryOptions,
    pub security: SecurityOptions,
}

impl ServeSettings {
    /// Checks what clap cannot, reads the files flags name and resolves default asset paths
    /// into what each layer is built from. Called once, at load.
    pub fn validate(self) -> anyhow::Result<ServeOptions> {
        let Self {
            listen,
            print_address,
            store,
            embedding,
            scoring,
            gate,
            limits,
            telemetry,
            security,
        } = self;
        anyhow::ensure!(
            security.api_keys_file.is_some()
                || security.insecure_no_auth
                || listen.ip().is_loopback(),
            "listening on {listen} without API keys would let anyone who reaches the port read and erase every tenant's data: give --api-keys-file, or --insecure-no-auth to accept that",
        );
        let l = &limits;
        anyhow::ensure!(l.max_text_bytes >= 1, "--max-text-bytes must be at least 1");
        anyhow::ensure!(l.max_candidates >= 1, "--max-candidates must be at least 1");
        anyhow::ensure!(
            l.max_signals_per_call >= 1,
            "--max-signals-per-call must be at least 1"
        );
        anyhow::ensure!(l.max_in_flight >= 1, "--max-in-flight must be at least 1");
        anyhow::ensure!(l.max_scans >= 1, "--max-scans must be at least 1");
        anyhow::ensure!(
            l.max_streams_per_connection >= 1,
            "--max-streams-per-connection must be at least 1"
        );
        anyhow::ensure!(
            l.request_timeout_ms >= 1,
            "--request-timeout-ms must be at least 1"
        );
        let store_options = store.options()?;
        let exclusive_store = matches!(store_options, StoreOptions::Sqlite(_));
        let mib = |n: u64| n * 1024 * 1024;
        let engine = EngineOptions {
            scoring: scoring.options()?,
            gate: gate.options()?,
            limits: EngineLimits {
                max_in_flight: limits.max_in_flight,
                max_scans: limits.max_scans,
                max_signals_per_prospect: limits.max_signals_per_prospect,
            },
            caches: CacheOptions {
                // A shared remote store has writers this process does not see: entries expire
                // after --cache-ttl-ms.
                ttl: if exclusive_store {
                    EMBEDDED_CACHE_TTL
                } else {
                    Duration::from_millis(store.cache_ttl_ms)
                },
                profile_bytes: mib(store.profile_cache_mib),
                text_bytes: mib(embedding.text_cache_mib),
                history_bytes: mib(gate.history_cache_mib),
                content_bytes: mib(store.content_cache_mib),
                decision_memory_bytes: mib(gate.decision_memory_mib),
                decision_memory_ttl: Duration::from_secs(gate.decision_memory_minutes * 60),
            },
            exclusive_store,
            tenant_metrics: telemetry.metrics_tenant_labels,
        };
        Ok(ServeOptions {
            listen,
            print_address,
            store: store_options,
            embedding: embedding.options()?,
            engine,
            requests: RequestLimits {
                max_text_bytes: limits.max_text_bytes,
                max_signals_per_call: limits.max_signals_per_call,
                max_candidates: limits.max_candidates,
                max_audience: limits.max_audience,
            },
            max_message_bytes: limits.max_message_bytes,
            transport: TransportLimits {
                max_streams_per_connection: limits.max_streams_per_connection,
                request_timeout: Duration::from_millis(limits.request_timeout_ms),
                keepalive: (limits.keepalive_secs > 0)
                    .then(|| Duration::from_secs(limits.keepalive_secs)),
                shutdown_grace: Duration::from_secs(limits.shutdown_grace_secs),
            },
            telemetry: telemetry.options(|name| std::env::var(name).ok()),
            security: security.options(),
        })
    }

    /// Settings for tests: listen on 127.0.0.1:0, store in `data_dir`,
    /// defaults for everything else (the model where scripts/fetch-model puts it).
    pub fn for_local(data_dir: &Path) -> Self {
        let cli = Cli::parse_from([
            "pertinent",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            &data_dir.to_string_lossy(),
        ]);
        match cli.command {
            Command::Serve(settings) => *settings,
            Command::Keys(_) => unreachable!("parsed a serve command"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_flag_it_refuses() {
        let dir = Path::new("unused");
        let mut readers = ServeSettings::for_local(dir);
        readers.store.sqlite_readers = 0;
        let refused = readers.validate().expect_err("no reader threads");
        assert!(
            refused.to_string().contains("--sqlite-readers"),
            "{refused}"
        );

        let mut workers = ServeSettings::for_local(dir);
        workers.embedding.workers = 0;
        let refused = workers.validate().expect_err("no model workers");
        assert!(refused.to_string().contains("--embed-workers"), "{refused}");
    }
}
