//! The model and the ONNX Runtime that runs it: the flags, resolved into `FastembedOptions`
//! (relative asset paths looked up in the working directory, then in the source tree).

use super::*;

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

impl EmbeddingSettings {
    pub(super) fn options(&self) -> anyhow::Result<FastembedOptions> {
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
