//! Settings: the command line and its environment variables, parsed and validated once.
//!
//! Every flag has an environment variable (`PERTINENT_*`) and a doc comment that is its `--help`.
//! Nothing below this module reads the environment: the typed settings are passed down whole.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::scoring::ScoringConfig;

mod gate;
mod security;

pub use gate::{FailDecision, GateConfig, RecordDecisions};
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
    pub gate: GateConfig,

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

    /// Memory for prospect profiles (signal vectors at 8 bits per dimension, about 0.5 KiB per
    /// signal), in MiB. Profiles not in memory are read from the store when scored.
    #[arg(long, env = "PERTINENT_PROFILE_CACHE_MIB", default_value_t = 96)]
    pub profile_cache_mib: u64,

    /// Reader threads of the embedded store, each with its own connection, for point reads
    /// (tenant-wide scans have connections of their own).
    #[arg(long, env = "PERTINENT_SQLITE_READERS", default_value_t = crate::store::sqlite::DEFAULT_READERS)]
    pub sqlite_readers: usize,

    /// Memory for registered pieces (vector and text, about 2 KiB for a short piece), in MiB.
    /// Pieces not in memory are read from the store when scored.
    #[arg(long, env = "PERTINENT_CONTENT_CACHE_MIB", default_value_t = 32)]
    pub content_cache_mib: u64,
}

impl StoreSettings {
    /// The cache TTL as a duration.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_millis(self.cache_ttl_ms)
    }
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
    pub fn load(&self) -> anyhow::Result<ScoringConfig> {
        let mut config = match &self.scoring_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?
            }
            None => ScoringConfig::default(),
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
}

/// Logs and traces.
#[derive(Debug, Clone, Args)]
pub struct TelemetrySettings {
    /// Log filter in tracing's EnvFilter syntax (e.g. "info,pertinent=debug").
    #[arg(long, env = "PERTINENT_LOG_FILTER", default_value = "info")]
    pub log_filter: String,

    /// Log format: text for people, json for log pipelines.
    #[arg(long, env = "PERTINENT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// OTLP/gRPC endpoint for traces (e.g. http://127.0.0.1:4317); unset disables tracing export.
    #[arg(long, env = "PERTINENT_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// service.name reported with traces.
    #[arg(long, env = "PERTINENT_SERVICE_NAME", default_value = "pertinent")]
    pub service_name: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret that Debug never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl ServeSettings {
    /// Checks what clap cannot and resolves default asset paths. Called once, at load.
    pub fn validate(mut self) -> anyhow::Result<Self> {
        let e = &mut self.embedding;
        anyhow::ensure!(e.workers >= 1, "--embed-workers must be at least 1");
        anyhow::ensure!(e.intra_threads >= 1, "--embed-threads must be at least 1");
        anyhow::ensure!(e.batch_texts >= 1, "--embed-batch-texts must be at least 1");
        anyhow::ensure!(
            e.batch_tokens >= e.max_tokens,
            "--embed-batch-tokens must be at least --model-max-tokens"
        );
        anyhow::ensure!(e.queue >= 1, "--embed-queue must be at least 1");
        e.model_dir = resolve_asset(&e.model_dir);
        e.ort_dylib_path = resolve_asset(&e.ort_dylib_path);
        let l = &self.limits;
        anyhow::ensure!(l.max_text_bytes >= 1, "--max-text-bytes must be at least 1");
        anyhow::ensure!(l.max_candidates >= 1, "--max-candidates must be at least 1");
        anyhow::ensure!(
            l.max_signals_per_call >= 1,
            "--max-signals-per-call must be at least 1"
        );
        anyhow::ensure!(l.max_in_flight >= 1, "--max-in-flight must be at least 1");
        anyhow::ensure!(l.max_scans >= 1, "--max-scans must be at least 1");
        anyhow::ensure!(
            self.store.sqlite_readers >= 1,
            "--sqlite-readers must be at least 1"
        );
        self.scoring.load()?;
        self.gate.load()?;
        if let Some(path) = self.store.qdrant_api_key_file.take() {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!("reading --qdrant-api-key-file {}: {e}", path.display())
            })?;
            let key = text.trim_end();
            anyhow::ensure!(
                !key.is_empty(),
                "--qdrant-api-key-file {} is empty",
                path.display()
            );
            self.store.qdrant_api_key = Some(Secret(key.to_owned()));
        }
        let s = &self.security;
        anyhow::ensure!(
            s.api_keys_file.is_some() || s.insecure_no_auth || self.listen.ip().is_loopback(),
            "listening on {} without API keys would let anyone who reaches the port read and erase every tenant's data: give --api-keys-file, or --insecure-no-auth to accept that",
            self.listen
        );
        Ok(self)
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
}
