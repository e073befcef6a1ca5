//! The engine: where async I/O (the store, the model) meets the pure scoring maths.
//!
//! It owns the caches in front of the store (profiles, content vectors, tenant baselines), the
//! admission limits, and the clock. It takes and returns domain types only; `grpc/` converts.
//! `records` writes and reads prospects, signals and content; `score` resolves candidates
//! and scores them; `gate` is the send-path gate.

mod cache;
pub mod gate;
mod locks;
mod memory;
mod records;
mod score;

pub use score::sort_best_first;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::{
    ContentId, ContentKind, ContentRecord, Millis, Polarity, ProspectId, ProspectRecord, SignalId,
    SignalRecord, SignalSource, Tenant, Text, Weight, embedding_text,
};
use crate::embedding::{EmbedError, Embedder};
use crate::scoring::{self, Assessment, Baseline, Decision, Profile, ScoringOptions};
use crate::store::{ProspectSummary, SignalWrite, StoreError, VectorStore};

use cache::Caches;
use locks::ProspectLocks;

/// Why the engine could not answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The prospect or content named does not exist in the tenant.
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    /// Too much work in flight; the caller should back off and retry.
    #[error("overloaded: {0}")]
    Overloaded(&'static str),
    /// A dependency cannot be reached right now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request conflicts with what is stored (a send id already used for another prospect
    /// or piece): retrying it cannot succeed. `field` names the request field at fault.
    #[error("{field}: {message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    /// The write would take a prospect past a configured bound (`--max-signals-per-prospect`):
    /// delete some first. `field` names the request field at fault.
    #[error("{field}: {message}")]
    Limit {
        field: &'static str,
        message: String,
    },
    /// A bug: a codec failure, a panicked task, a damaged record. Not the caller's to retry.
    #[error("internal: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// What the engine is built from (config.rs fills it from the flags).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub scoring: ScoringOptions,
    pub gate: gate::GateOptions,
    pub limits: EngineLimits,
    pub caches: CacheOptions,
    /// This process is the store's only writer (the embedded store): what it holds in memory
    /// of the gate's histories, decisions and suppression list is exact, so a check need not
    /// ask the store what only another writer could have changed.
    pub exclusive_store: bool,
    /// Label gate metrics with the tenant (cardinality grows with the tenants).
    pub tenant_metrics: bool,
}

/// How much work the engine admits at once; past that, `EngineError::Overloaded`.
#[derive(Debug, Clone, Copy)]
pub struct EngineLimits {
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Tenant-wide scans (FindAudience) at once.
    pub max_scans: usize,
    /// Signals one prospect may hold: each one is compared with the others when its profile is
    /// built, so the bound keeps that work bounded.
    pub max_signals_per_prospect: u32,
}

/// The sizes and lifetimes of the engine's caches.
#[derive(Debug, Clone, Copy)]
pub struct CacheOptions {
    /// How long cached profiles, content, baselines, policies and histories may be served
    /// (writes through this engine also invalidate them at once).
    pub ttl: Duration,
    /// Bytes of prospect profiles to cache.
    pub profile_bytes: u64,
    /// Bytes of text embeddings to cache (texts plus vectors).
    pub text_bytes: u64,
    /// Bytes of prospects' gate histories (sends and engagements) to cache.
    pub history_bytes: u64,
    /// Bytes of registered pieces (vectors and texts) to cache.
    pub content_bytes: u64,
    /// Bytes of recent gate decisions to remember for retries, and for how long.
    pub decision_memory_bytes: u64,
    pub decision_memory_ttl: Duration,
}

/// A signal as a client sends it, before embedding.
#[derive(Debug, Clone)]
pub struct NewSignal {
    pub id: SignalId,
    pub source: SignalSource,
    pub polarity: Polarity,
    pub observed_at: Option<Millis>,
    pub weight: Weight,
    pub text: Text,
}

/// A content piece as a client sends it, before embedding.
#[derive(Debug, Clone)]
pub struct NewContent {
    pub id: ContentId,
    pub kind: ContentKind,
    pub title: String,
    pub body: Text,
    pub tags: Vec<String>,
}

/// Something to score: a registered piece or an unsaved draft.
#[derive(Debug, Clone)]
pub enum CandidateInput {
    Content(ContentId),
    Draft {
        id: String,
        title: String,
        body: Text,
    },
}

/// A candidate with its vector, ready to score.
#[derive(Clone)]
pub struct ResolvedCandidate {
    pub id: String,
    /// `Some` for registered content: its baseline can be cached.
    pub content: Option<ContentId>,
    pub vector: Arc<Vec<f32>>,
}

/// One scored candidate.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Scored {
    pub candidate_id: String,
    pub assessment: Assessment,
}

/// The engine. Cheap to share: hold it in an `Arc`.
pub struct Engine {
    embedder: Arc<dyn Embedder>,
    store: Arc<dyn VectorStore>,
    scoring: ScoringOptions,
    gate: gate::GateOptions,
    caches: Arc<Caches>,
    suppressions: Arc<gate::Suppressions>,
    /// Serialise the gate's work on one prospect.
    locks: ProspectLocks,
    /// Gate metrics carry a tenant label (`--metrics-tenant-labels`).
    tenant_metrics: bool,
    /// See `EngineOptions::exclusive_store`.
    exclusive_store: bool,
    /// Checks answered SEND because the store could not be reached (`--allow-fail-send`).
    fail_sends: std::sync::atomic::AtomicU64,
    in_flight: Arc<Semaphore>,
    scans: Arc<Semaphore>,
    max_signals_per_prospect: u32,
}

/// Runs a store write and the cache invalidation that follows it in a task of its own, so that
/// both finish even when the caller goes away (a gRPC deadline drops the handler): a write that
/// reached the store is never left behind a stale cache entry.
pub(crate) async fn detached<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::spawn(work)
        .await
        .map_err(|e| EngineError::Internal(format!("a store write's task failed: {e}")))
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

impl Engine {
    /// An engine over the given ports.
    pub fn new(
        embedder: Arc<dyn Embedder>,
        store: Arc<dyn VectorStore>,
        options: EngineOptions,
    ) -> Self {
        let EngineOptions {
            scoring,
            gate,
            limits,
            caches,
            exclusive_store,
            tenant_metrics,
        } = options;
        Self {
            embedder,
            store,
            caches: Arc::new(Caches::new(&caches)),
            suppressions: Arc::new(gate::Suppressions::new(exclusive_store)),
            locks: ProspectLocks::new(),
            tenant_metrics,
            exclusive_store,
            fail_sends: std::sync::atomic::AtomicU64::new(0),
            scoring,
            gate,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            scans: Arc::new(Semaphore::new(limits.max_scans)),
            max_signals_per_prospect: limits.max_signals_per_prospect,
        }
    }

    /// Ok when the model and the store both answer.
    pub async fn health(&self) -> Result<(), EngineError> {
        self.embedder.health().await?;
        self.store.health().await?;
        Ok(())
    }

    /// Admits one request, or refuses at once when too many are in flight.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, EngineError> {
        self.in_flight.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("pertinent_admission_refusals_total", "reason" => "in_flight")
                .increment(1);
            EngineError::Overloaded("too many requests in flight")
        })
    }

    /// Embeds texts, taking identical texts the tenant embedded recently from the cache.
    async fn embed(
        &self,
        tenant: &Tenant,
        texts: Vec<String>,
    ) -> Result<Vec<Arc<Vec<f32>>>, EngineError> {
        let mut out: Vec<Option<Arc<Vec<f32>>>> = Vec::with_capacity(texts.len());
        let mut missing = Vec::new();
        let keys: Vec<_> = texts
            .iter()
            .map(|t| (tenant.clone(), cache::text_key(t)))
            .collect();
        for (i, key) in keys.iter().enumerate() {
            let hit = self.caches.texts.get(key).await;
            cache::count("embedding", hit.is_some());
            if hit.is_none() {
                missing.push(i);
            }
            out.push(hit);
        }
        if !missing.is_empty() {
            let batch = missing.iter().map(|&i| texts[i].clone()).collect();
            let vectors = self.embedder.embed(batch).await?;
            if vectors.len() != missing.len() {
                return Err(EmbedError::Model("wrong number of vectors returned".into()).into());
            }
            for (i, vector) in missing.into_iter().zip(vectors) {
                let vector = Arc::new(vector);
                self.caches
                    .texts
                    .insert(keys[i].clone(), vector.clone())
                    .await;
                out[i] = Some(vector);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }
}

fn not_found(kind: &'static str, id: &impl ToString) -> EngineError {
    EngineError::NotFound {
        kind,
        id: id.to_string(),
    }
}

fn missing_prospect(e: StoreError, prospect: &ProspectId) -> EngineError {
    match e {
        StoreError::MissingProspect => not_found("prospect", prospect),
        other => other.into(),
    }
}
