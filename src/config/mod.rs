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

mod gate;
mod security;

pub use gate::{FailDecision, GateSettings, RecordDecisions};
pub use security::{KeysCommand, SecuritySettings};

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

/// Where vectors and records live.
#[derive(Debug, Clone, Args)]
pub struct StoreSettings {
    /// Directory of the embedded SQLite store (used unless --qdrant-url is given).
    #[arg(long, env = "PERTINENT_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Qdrant gRPC URL (e.g. http://127.0.0.1:6334; https:// for TLS). Selects the remote store.
    #[arg(long, env = "PERTINENT_QDRANT_URL")]
    pub qdrant_url: Option<String>,

    /// Qdrant API key (its value is never printed by --help). Prefer --qdrant-api-key-file,
    /// which keeps it out of process listings and the environment.
    #[arg(long, env = "PERTINENT_QDRANT_API_KEY", hide_env_values = true)]
    pub qdrant_api_key: Option<Secret>,

    /// File holding the Qdrant API key (trailing whitespace ignored); read once at start.
    #[arg(
        long,
        env = "PERTINENT_QDRANT_API_KEY_FILE",
        conflicts_with = "qdrant_api_key"
    )]
    pub qdrant_api_key_file: Option<PathBuf>,

    /// Qdrant collection holding all of pertinent's points (created on start if missing).
    #[arg(long, env = "PERTINENT_QDRANT_COLLECTION", default_value = "pertinent")]
    pub qdrant_collection: String,

    /// Timeout of one Qdrant request, in milliseconds.
    #[arg(long, env = "PERTINENT_QDRANT_TIMEOUT_MS", default_value_t = 5_000)]
    pub qdrant_timeout_ms: u64,

    /// With --qdrant-url: how long a cached prospect profile or content piece may be served
    /// before it is read again, in milliseconds, which bounds how stale a replica can be when
    /// another replica writes. Writes through this replica invalidate at once; with the embedded
    /// store (one writer) cached entries live 10 minutes.
    #[arg(long, env = "PERTINENT_CACHE_TTL_MS", default_value_t = 2_000)]
    pub cache_ttl_ms: u64,

    /// Memory for prospect profiles (signal vectors at 8 bits per dimension), in MiB. Profiles
    /// not in memory are read from the store when scored (docs/benchmarks.md, "Memory per entry").
    #[arg(long, env = "PERTINENT_PROFILE_CACHE_MIB", default_value_t = 96)]
    pub profile_cache_mib: u64,

    /// Reader threads of the embedded store, each with its own connection, for point reads
    /// (tenant-wide scans have connections of their own).
    #[arg(long, env = "PERTINENT_SQLITE_READERS", default_value_t = crate::store::sqlite::DEFAULT_READERS)]
    pub sqlite_readers: usize,

    /// Memory for registered pieces (vector and text), in MiB. Pieces not in memory are read
    /// from the store when scored (docs/benchmarks.md, "Memory per entry").
    #[arg(long, env = "PERTINENT_CONTENT_CACHE_MIB", default_value_t = 32)]
    pub content_cache_mib: u64,
}

/// Which store the service runs on.
#[derive(Debug, Clone)]
pub enum StoreOptions {
    /// The embedded default.
    Sqlite(SqliteOptions),
    /// A Qdrant server or cluster.
    Qdrant(QdrantOptions),
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

/// Who may connect, and how, resolved.
#[derive(Debug, Clone)]
pub struct SecurityOptions {
    pub api_keys_file: Option<PathBuf>,
    pub insecure_no_auth: bool,
    pub reflection: bool,
    pub tls: Option<TlsFiles>,
    pub health_listen: Option<SocketAddr>,
}

/// The embedding model and the ONNX Runtime that runs it.
#[derive(Debug, Clone, Args)]
pub struct EmbeddingSettings {
    /// Directory with model.onnx, tokenizer.json, config.json, special_tokens_map.json and
    /// tokenizer_config.json (scripts/fetch-model puts all-MiniLM-L6-v2 here).
    #[arg(long, env = "PERTINENT_MODEL_DIR", default_value = ".cache/model")]
    pub model_dir: PathBuf,

    /// Path of the ONNX Runtime shared library (>= 1.24; scripts/fetch-model puts 1.31.1 here).
    #[arg(
        long,
        env = "PERTINENT_ORT_DYLIB_PATH",
        default_value = ".cache/onnxruntime/libonnxruntime.so"
    )]
    pub ort_dylib_path: PathBuf,

    /// Pooling of token embeddings into one vector: mean (all-MiniLM-L6-v2) or cls.
    #[arg(long = "model-pooling", env = "PERTINENT_MODEL_POOLING", value_enum, default_value_t = PoolingSetting::Mean)]
    pub pooling: PoolingSetting,

    /// Longest input in tokens; longer texts are truncated (256 is all-MiniLM-L6-v2's training length).
    #[arg(
        long = "model-max-tokens",
        env = "PERTINENT_MODEL_MAX_TOKENS",
        default_value_t = 256
    )]
    pub max_tokens: usize,

    /// Model worker threads, each with its own ONNX session.
    #[arg(
        long = "embed-workers",
        env = "PERTINENT_EMBED_WORKERS",
        default_value_t = 1
    )]
    pub workers: usize,

    /// ONNX Runtime intra-op threads per worker.
    #[arg(
        long = "embed-threads",
        env = "PERTINENT_EMBED_THREADS",
        default_value_t = 1
    )]
    pub intra_threads: usize,

    /// How long a worker waits for more texts to fill a batch, in microseconds.
    #[arg(
        long = "embed-batch-wait-us",
        env = "PERTINENT_EMBED_BATCH_WAIT_US",
        default_value_t = 1_000
    )]
    pub batch_wait_us: u64,

    /// Upper bound of one model batch in tokens (memory grows with batch tokens).
    #[arg(
        long = "embed-batch-tokens",
        env = "PERTINENT_EMBED_BATCH_TOKENS",
        default_value_t = 2_048
    )]
    pub batch_tokens: usize,

    /// Upper bound of one model batch in texts.
    #[arg(
        long = "embed-batch-texts",
        env = "PERTINENT_EMBED_BATCH_TEXTS",
        default_value_t = 32
    )]
    pub batch_texts: usize,

    /// Memory for embeddings of recently seen texts, in MiB (identical texts skip the model).
    #[arg(
        long = "embed-cache-mib",
        env = "PERTINENT_EMBED_CACHE_MIB",
        default_value_t = 32
    )]
    pub text_cache_mib: u64,

    /// Embedding requests that may wait for a worker; past that, RESOURCE_EXHAUSTED.
    #[arg(
        long = "embed-queue",
        env = "PERTINENT_EMBED_QUEUE",
        default_value_t = 256
    )]
    pub queue: usize,
}

/// How token embeddings become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolingSetting {
    Mean,
    Cls,
}

/// Decision thresholds and the scoring model's parameters.
#[derive(Debug, Clone, Args)]
pub struct ScoringSettings {
    /// Score at or above which an allowed candidate is SEND.
    #[arg(long, env = "PERTINENT_SEND_THRESHOLD")]
    pub send_threshold: Option<f32>,

    /// Score at or above which a candidate is REVIEW (below: REJECT).
    #[arg(long, env = "PERTINENT_REVIEW_THRESHOLD")]
    pub review_threshold: Option<f32>,

    /// JSON file overriding any scoring parameter (docs/scoring.md lists them).
    #[arg(long, env = "PERTINENT_SCORING_CONFIG")]
    pub scoring_config: Option<PathBuf>,
}

impl ScoringSettings {
    /// The scoring parameters: defaults, then the file, then the threshold flags; validated.
    fn options(&self) -> anyhow::Result<ScoringOptions> {
        let mut config = match &self.scoring_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?
            }
            None => ScoringOptions::default(),
        };
        if let Some(t) = self.send_threshold {
            config.send_threshold = t;
        }
        if let Some(t) = self.review_threshold {
            config.review_threshold = t;
        }
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("scoring settings: {e}"))?;
        Ok(config)
    }
}

/// Bounds on requests, so that no caller can make the service use unbounded memory or time.
#[derive(Debug, Clone, Args)]
pub struct LimitSettings {
    /// Largest signal text, draft body or content body, in bytes.
    #[arg(long, env = "PERTINENT_MAX_TEXT_BYTES", default_value_t = 16_384)]
    pub max_text_bytes: usize,

    /// Most signals one prospect may hold; an AddSignals past it is FAILED_PRECONDITION
    /// (replacing a signal by id never is). Building a profile compares signals pairwise.
    #[arg(
        long,
        env = "PERTINENT_MAX_SIGNALS_PER_PROSPECT",
        default_value_t = 5_000
    )]
    pub max_signals_per_prospect: u32,

    /// Most signals in one AddSignals call (and ids in one DeleteSignals call).
    #[arg(long, env = "PERTINENT_MAX_SIGNALS_PER_CALL", default_value_t = 256)]
    pub max_signals_per_call: usize,

    /// Most candidates in one Rank call.
    #[arg(long, env = "PERTINENT_MAX_CANDIDATES", default_value_t = 256)]
    pub max_candidates: usize,

    /// Largest FindAudience limit.
    #[arg(long, env = "PERTINENT_MAX_AUDIENCE", default_value_t = 1_000)]
    pub max_audience: usize,

    /// Largest gRPC message, in bytes.
    #[arg(long, env = "PERTINENT_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Requests handled at once; past that, RESOURCE_EXHAUSTED.
    #[arg(long, env = "PERTINENT_MAX_IN_FLIGHT", default_value_t = 4_096)]
    pub max_in_flight: usize,

    /// FindAudience scans and other tenant-wide reads running at once; past that, RESOURCE_EXHAUSTED.
    #[arg(long, env = "PERTINENT_MAX_SCANS", default_value_t = 4)]
    pub max_scans: usize,

    /// HTTP/2 streams (concurrent calls) one connection may have open; more wait for the
    /// client's own flow control. Bounds what one connection can make the server decode.
    #[arg(
        long,
        env = "PERTINENT_MAX_STREAMS_PER_CONNECTION",
        default_value_t = 256
    )]
    pub max_streams_per_connection: u32,

    /// Longest any call may run on the server, in milliseconds, whatever deadline the client
    /// sent (or none); past it the call is cancelled.
    #[arg(long, env = "PERTINENT_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// Seconds between HTTP/2 keep-alive pings on an idle connection; a peer that does not
    /// answer one within 20 seconds is disconnected. 0 turns pings off.
    #[arg(long, env = "PERTINENT_KEEPALIVE_SECS", default_value_t = 60)]
    pub keepalive_secs: u64,

    /// On SIGTERM, how long calls in flight may run on before they are dropped and the store
    /// closed, in seconds (keep it under Kubernetes' terminationGracePeriodSeconds).
    #[arg(long, env = "PERTINENT_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,
}

/// Logs and traces.
#[derive(Debug, Clone, Args)]
pub struct TelemetrySettings {
    /// Log filter in tracing's EnvFilter syntax (e.g. "info,pertinent=debug").
    #[arg(long, env = "PERTINENT_LOG_FILTER", default_value = "info")]
    pub log_filter: String,

    /// Log format: text for people, json for log pipelines.
    #[arg(long, env = "PERTINENT_LOG_FORMAT", value_enum, default_value_t = LogFormatSetting::Text)]
    pub log_format: LogFormatSetting,

    /// OTLP/gRPC endpoint for traces (e.g. http://127.0.0.1:4317). Unset, the standard
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT, are used; with
    /// none of them (or OTEL_SDK_DISABLED=true) traces are not exported.
    #[arg(long, env = "PERTINENT_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// service.name reported with traces. Unset, the standard OTEL_SERVICE_NAME, then
    /// "pertinent".
    #[arg(long, env = "PERTINENT_SERVICE_NAME")]
    pub service_name: Option<String>,

    /// Serve Prometheus metrics at /metrics on this address (plain HTTP; port 0 picks a free
    /// port). Off when unset. docs/operations.md lists the metrics.
    #[arg(long, env = "PERTINENT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Label the gate's decision metrics with the tenant. Off by default: every tenant adds
    /// series, so turn it on only for a bounded number of tenants.
    #[arg(long, env = "PERTINENT_METRICS_TENANT_LABELS")]
    pub metrics_tenant_labels: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatSetting {
    Text,
    Json,
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

impl StoreSettings {
    fn options(&self) -> anyhow::Result<StoreOptions> {
        anyhow::ensure!(
            self.sqlite_readers >= 1,
            "--sqlite-readers must be at least 1"
        );
        let Some(url) = &self.qdrant_url else {
            return Ok(StoreOptions::Sqlite(SqliteOptions {
                data_dir: self.data_dir.clone(),
                readers: self.sqlite_readers,
            }));
        };
        let api_key = match &self.qdrant_api_key_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("reading --qdrant-api-key-file {}: {e}", path.display())
                })?;
                let key = text.trim_end();
                anyhow::ensure!(
                    !key.is_empty(),
                    "--qdrant-api-key-file {} is empty",
                    path.display()
                );
                Some(Secret::new(key))
            }
            None => self.qdrant_api_key.clone(),
        };
        Ok(StoreOptions::Qdrant(QdrantOptions {
            url: url.clone(),
            api_key,
            collection: self.qdrant_collection.clone(),
            timeout: Duration::from_millis(self.qdrant_timeout_ms),
        }))
    }
}

impl EmbeddingSettings {
    fn options(&self) -> anyhow::Result<FastembedOptions> {
        anyhow::ensure!(self.workers >= 1, "--embed-workers must be at least 1");
        anyhow::ensure!(
            self.intra_threads >= 1,
            "--embed-threads must be at least 1"
        );
        anyhow::ensure!(
            self.batch_texts >= 1,
            "--embed-batch-texts must be at least 1"
        );
        anyhow::ensure!(
            self.batch_tokens >= self.max_tokens,
            "--embed-batch-tokens must be at least --model-max-tokens"
        );
        anyhow::ensure!(self.queue >= 1, "--embed-queue must be at least 1");
        Ok(FastembedOptions {
            model_dir: resolve_asset(&self.model_dir),
            ort_dylib_path: resolve_asset(&self.ort_dylib_path),
            pooling: match self.pooling {
                PoolingSetting::Mean => ModelPooling::Mean,
                PoolingSetting::Cls => ModelPooling::Cls,
            },
            max_tokens: self.max_tokens,
            workers: self.workers,
            intra_threads: self.intra_threads,
            batch_wait: Duration::from_micros(self.batch_wait_us),
            batch_tokens: self.batch_tokens,
            batch_texts: self.batch_texts,
            queue: self.queue,
        })
    }
}

impl TelemetrySettings {
    /// The flags win over the standard OTEL_* variables, read through `env`.
    fn options(&self, env: impl Fn(&str) -> Option<String>) -> TelemetryOptions {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim() == "true");
        let otlp_endpoint = self
            .otlp_endpoint
            .clone()
            .or_else(|| set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"));
        TelemetryOptions {
            log_filter: self.log_filter.clone(),
            log_format: match self.log_format {
                LogFormatSetting::Text => LogFormat::Text,
                LogFormatSetting::Json => LogFormat::Json,
            },
            otlp_endpoint: if disabled { None } else { otlp_endpoint },
            metrics_listen: self.metrics_listen,
            service_name: self
                .service_name
                .clone()
                .or_else(|| set("OTEL_SERVICE_NAME"))
                .unwrap_or_else(|| "pertinent".to_owned()),
        }
    }
}

/// A relative asset path is looked up in the working directory first, then in the source tree
/// this binary was built from, so `cargo run` and `cargo test` find what scripts/fetch-model
/// fetched wherever they are started. Absolute paths are used as given.
fn resolve_asset(path: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    let in_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if in_tree.exists() {
        in_tree
    } else {
        path.to_path_buf()
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

    #[test]
    fn the_standard_otel_variables_apply_unless_a_flag_is_given() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let t = ServeSettings::for_local(Path::new("unused")).telemetry;
        let none = t.options(env(&[]));
        assert_eq!(none.otlp_endpoint, None);
        assert_eq!(none.service_name, "pertinent");

        let standard = &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_SERVICE_NAME", "pertinent-eu"),
        ];
        let o = t.options(env(standard));
        assert_eq!(o.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4317"));
        assert_eq!(o.service_name, "pertinent-eu");

        let traces = &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318",
            ),
        ];
        let o = t.options(env(traces));
        assert_eq!(o.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4318"));

        let disabled = &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_SDK_DISABLED", "true"),
        ];
        assert_eq!(t.options(env(disabled)).otlp_endpoint, None);

        let mut flags = t.clone();
        flags.otlp_endpoint = Some("http://127.0.0.1:9999".into());
        flags.service_name = Some("from-the-flag".into());
        let o = flags.options(env(standard));
        assert_eq!(o.otlp_endpoint.as_deref(), Some("http://127.0.0.1:9999"));
        assert_eq!(o.service_name, "from-the-flag");
    }
}
