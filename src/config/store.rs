//! Where vectors and records live: the store flags, resolved into the adapter's options
//! (the Qdrant API key file is read here, once).

use super::*;

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

impl StoreSettings {
    pub(super) fn options(&self) -> anyhow::Result<StoreOptions> {
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
