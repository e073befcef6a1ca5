//! The engine: where async I/O (the store, the model) meets the pure scoring maths.
//!
//! It owns the caches in front of the store (profiles, content vectors, tenant baselines), the
//! admission limits, and the clock. It takes and returns domain types only; `grpc/` converts.

mod cache;
pub mod gate;
mod memory;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::{
    ContentId, ContentKind, ContentRecord, Millis, Polarity, ProspectId, ProspectRecord, SignalId,
    SignalRecord, SignalSource, Tenant, Text, Weight, embedding_text,
};
use crate::embedding::{EmbedError, Embedder};
use crate::scoring::{self, Assessment, Baseline, Decision, Profile, ScoringConfig};
use crate::store::{ProspectSummary, SignalWrite, StoreError, VectorStore};

use cache::Caches;

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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// Bounds the engine enforces on work.
#[derive(Debug, Clone)]
pub struct EngineLimits {
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Tenant-wide scans (FindAudience) at once.
    pub max_scans: usize,
    /// How long cached profiles, content, baselines, policies and histories may be served
    /// (writes through this engine also invalidate them at once).
    pub cache_ttl: Duration,
    /// Bytes of prospect profiles to cache.
    pub profile_cache_bytes: u64,
    /// Bytes of text embeddings to cache (texts plus vectors).
    pub text_cache_bytes: u64,
    /// Bytes of prospects' gate histories (sends and engagements) to cache.
    pub history_cache_bytes: u64,
    /// Bytes of registered pieces (vectors and texts) to cache.
    pub content_cache_bytes: u64,
    /// Bytes of recent gate decisions to remember for retries, and for how long.
    pub decision_memory_bytes: u64,
    pub decision_memory_ttl: Duration,
    /// This process is the store's only writer (the embedded store), so what it caches of the
    /// gate's histories is exact; with a shared store other replicas write too.
    pub exclusive_store: bool,
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
    config: ScoringConfig,
    gate: gate::GateSettings,
    caches: Arc<Caches>,
    in_flight: Arc<Semaphore>,
    scans: Arc<Semaphore>,
}

/// Runs a store write and the cache invalidation that follows it in a task of its own, so that
/// both finish even when the caller goes away (a gRPC deadline drops the handler): a write that
/// reached the store is never left behind a stale cache entry.
pub(crate) async fn detached<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::spawn(work)
        .await
        .map_err(|e| EngineError::Unavailable(format!("a store write failed: {e}")))
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
        config: ScoringConfig,
        gate: gate::GateSettings,
        limits: EngineLimits,
    ) -> Self {
        Self {
            embedder,
            store,
            caches: Arc::new(Caches::new(&limits)),
            config,
            gate,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            scans: Arc::new(Semaphore::new(limits.max_scans)),
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
        self.in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| EngineError::Overloaded("too many requests in flight"))
    }

    /// Embeds texts, taking identical texts embedded before from the cache.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Arc<Vec<f32>>>, EngineError> {
        let mut out: Vec<Option<Arc<Vec<f32>>>> = Vec::with_capacity(texts.len());
        let mut missing = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let hit = self.caches.texts.get(text).await;
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
                    .insert(texts[i].clone(), vector.clone())
                    .await;
                out[i] = Some(vector);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    // ------------------------------------------------------------ prospects and signals

    /// A write of one prospect's data, then the invalidation of what is cached of it, run to
    /// the end even when the caller goes (`detached`).
    async fn write_prospect<T, W, F>(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        write: W,
    ) -> Result<Result<T, StoreError>, EngineError>
    where
        T: Send + 'static,
        W: FnOnce(Arc<dyn VectorStore>, Tenant, ProspectId) -> F + Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (store, caches, tenant, prospect) = (
            self.store.clone(),
            self.caches.clone(),
            tenant.clone(),
            prospect.clone(),
        );
        detached(async move {
            let written = write(store, tenant.clone(), prospect.clone()).await;
            caches.prospect_changed(&tenant, &prospect).await;
            written
        })
        .await
    }

    /// Creates or replaces a prospect; returns it with its signal count.
    pub async fn upsert_prospect(
        &self,
        tenant: &Tenant,
        prospect: ProspectRecord,
    ) -> Result<ProspectSummary, EngineError> {
        let id = prospect.id.clone();
        self.write_prospect(tenant, &id, move |store, tenant, _| async move {
            store.upsert_prospect(&tenant, &prospect).await
        })
        .await??;
        self.get_prospect(tenant, &id).await
    }

    /// A prospect with its signal count.
    pub async fn get_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<ProspectSummary, EngineError> {
        self.store
            .get_prospect(tenant, id)
            .await?
            .ok_or_else(|| not_found("prospect", id))
    }

    /// Erases a prospect and all that belongs to it; `None` when there was no such prospect.
    pub async fn delete_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<Option<u32>, EngineError> {
        // Under the gate's lock, so that no check caches the history being erased.
        let serial = self.caches.prospect_lock(tenant, id).lock_owned().await;
        let (store, caches, tenant, id) = (
            self.store.clone(),
            self.caches.clone(),
            tenant.clone(),
            id.clone(),
        );
        let deleted = detached(async move {
            let _serial = serial;
            let deleted = store.delete_prospect(&tenant, &id).await;
            // Invalidate even on error: part of the erasure may have happened.
            caches.prospect_changed(&tenant, &id).await;
            caches.decisions.forget_prospect(&tenant, &id);
            deleted
        })
        .await?;
        Ok(deleted?)
    }

    /// Embeds and stores signals (replacing by id).
    pub async fn add_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        signals: Vec<NewSignal>,
    ) -> Result<SignalWrite, EngineError> {
        // Fail fast, before spending model time, when the prospect does not exist. The store
        // checks again atomically with the write.
        if self.store.get_prospect(tenant, prospect).await?.is_none() {
            return Err(not_found("prospect", prospect));
        }
        let texts = signals.iter().map(|s| s.text.as_str().to_owned()).collect();
        let vectors = self.embed(texts).await?;
        let now = now_millis();
        let records: Vec<SignalRecord> = signals
            .into_iter()
            .zip(vectors)
            .map(|(s, vector)| SignalRecord {
                id: s.id,
                source: s.source,
                polarity: s.polarity,
                observed_at: s.observed_at.unwrap_or(now),
                weight: s.weight,
                text: s.text,
                vector: vector.as_ref().clone(),
            })
            .collect();
        self.write_prospect(
            tenant,
            prospect,
            move |store, tenant, prospect| async move {
                store.upsert_signals(&tenant, &prospect, &records).await
            },
        )
        .await?
        .map_err(|e| missing_prospect(e, prospect))
    }

    /// Deletes signals by id; returns (deleted, remaining).
    pub async fn delete_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        ids: &[SignalId],
    ) -> Result<(u32, u32), EngineError> {
        let ids = ids.to_vec();
        self.write_prospect(
            tenant,
            prospect,
            move |store, tenant, prospect| async move {
                store.delete_signals(&tenant, &prospect, &ids).await
            },
        )
        .await?
        .map_err(|e| missing_prospect(e, prospect))
    }

    // ------------------------------------------------------------ content

    /// Embeds and stores a content piece (replacing by id).
    pub async fn register_content(
        &self,
        tenant: &Tenant,
        content: NewContent,
    ) -> Result<ContentRecord, EngineError> {
        let text = embedding_text(&content.title, content.body.as_str());
        let vector =
            self.embed(vec![text]).await?.pop().ok_or_else(|| {
                EngineError::Embed(EmbedError::Model("no vector returned".into()))
            })?;
        let record = ContentRecord {
            id: content.id,
            kind: content.kind,
            title: content.title,
            body: content.body,
            tags: content.tags,
            vector: vector.as_ref().clone(),
        };
        let id = record.id.clone();
        Ok(self
            .write_content(tenant, &id, move |store, tenant| async move {
                store
                    .upsert_content(&tenant, &record)
                    .await
                    .map(|()| record)
            })
            .await??)
    }

    /// A registered content piece.
    pub async fn get_content(
        &self,
        tenant: &Tenant,
        id: &ContentId,
    ) -> Result<ContentRecord, EngineError> {
        self.store
            .get_content(tenant, id)
            .await?
            .ok_or_else(|| not_found("content", id))
    }

    /// Deletes a content piece; false when there was none.
    pub async fn delete_content(
        &self,
        tenant: &Tenant,
        id: &ContentId,
    ) -> Result<bool, EngineError> {
        let gone = id.clone();
        Ok(self
            .write_content(tenant, id, move |store, tenant| async move {
                store.delete_content(&tenant, &gone).await
            })
            .await??)
    }

    /// A write of one content piece, then the invalidation of what is cached of it, run to the
    /// end even when the caller goes (`detached`).
    async fn write_content<T, W, F>(
        &self,
        tenant: &Tenant,
        id: &ContentId,
        write: W,
    ) -> Result<Result<T, StoreError>, EngineError>
    where
        T: Send + 'static,
        W: FnOnce(Arc<dyn VectorStore>, Tenant) -> F + Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (store, caches, tenant, id) = (
            self.store.clone(),
            self.caches.clone(),
            tenant.clone(),
            id.clone(),
        );
        detached(async move {
            let written = write(store, tenant.clone()).await;
            caches.content_changed(&tenant, &id).await;
            written
        })
        .await
    }

    // ------------------------------------------------------------ scoring

    /// Resolves candidates to vectors: registered content from the cache or store, drafts
    /// through the model in one batch.
    pub async fn resolve(
        &self,
        tenant: &Tenant,
        candidates: Vec<CandidateInput>,
    ) -> Result<Vec<ResolvedCandidate>, EngineError> {
        let mut drafts = Vec::new();
        let mut resolved: Vec<Option<ResolvedCandidate>> = Vec::with_capacity(candidates.len());
        for (i, c) in candidates.into_iter().enumerate() {
            match c {
                CandidateInput::Content(id) => {
                    let vector = self
                        .caches
                        .content(&*self.store, tenant, &id)
                        .await?
                        .ok_or_else(|| not_found("content", &id))?
                        .vector
                        .clone();
                    resolved.push(Some(ResolvedCandidate {
                        id: id.to_string(),
                        content: Some(id),
                        vector,
                    }));
                }
                CandidateInput::Draft { id, title, body } => {
                    drafts.push((i, id, embedding_text(&title, body.as_str())));
                    resolved.push(None);
                }
            }
        }
        if !drafts.is_empty() {
            let texts = drafts.iter().map(|(_, _, t)| t.clone()).collect();
            let vectors = self.embed(texts).await?;
            for ((i, id, _), vector) in drafts.into_iter().zip(vectors) {
                resolved[i] = Some(ResolvedCandidate {
                    id,
                    content: None,
                    vector,
                });
            }
        }
        Ok(resolved.into_iter().flatten().collect())
    }

    /// The profile of a prospect, from the cache or the store.
    pub async fn profile(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<Arc<Profile>, EngineError> {
        self.caches
            .profile(&*self.store, &self.config, tenant, prospect)
            .await?
            .ok_or_else(|| not_found("prospect", prospect))
    }

    /// The relevance of `candidate` to each prospect of the tenant's baseline sample.
    async fn baseline_values(
        &self,
        tenant: &Tenant,
        candidate: &ResolvedCandidate,
        now: Millis,
    ) -> Result<cache::BaselineValues, EngineError> {
        self.caches
            .baseline_values(&*self.store, &self.config, tenant, candidate, now)
            .await
    }

    fn assess_one(
        &self,
        candidate: &ResolvedCandidate,
        prospect: &ProspectId,
        profile: &Profile,
        baseline: &cache::BaselineValues,
        now: Millis,
    ) -> Scored {
        let others = Baseline::from_relevances(
            baseline
                .values
                .iter()
                .filter(|(id, _)| id != prospect)
                .map(|(_, v)| *v),
        );
        Scored {
            candidate_id: candidate.id.clone(),
            assessment: scoring::assess(
                &candidate.vector,
                profile,
                others,
                baseline.centering.as_deref(),
                now,
                &self.config,
            ),
        }
    }

    /// Scores resolved candidates for one prospect, in the given order.
    pub async fn score_resolved(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        candidates: &[ResolvedCandidate],
        now: Millis,
    ) -> Result<Vec<Scored>, EngineError> {
        let profile = self.profile(tenant, prospect).await?;
        self.score_with(tenant, prospect, &profile, candidates, now)
            .await
    }

    /// Scores resolved candidates against a profile already in hand, in the given order.
    async fn score_with(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        profile: &Profile,
        candidates: &[ResolvedCandidate],
        now: Millis,
    ) -> Result<Vec<Scored>, EngineError> {
        let mut out = Vec::with_capacity(candidates.len());
        for c in candidates {
            let baseline = self.baseline_values(tenant, c, now).await?;
            out.push(self.assess_one(c, prospect, profile, &baseline, now));
        }
        Ok(out)
    }

    /// Scores one candidate for one prospect.
    pub async fn score(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        candidate: CandidateInput,
    ) -> Result<Scored, EngineError> {
        // The prospect first, before spending model time on a draft.
        let profile = self.profile(tenant, prospect).await?;
        let resolved = self.resolve(tenant, vec![candidate]).await?;
        let mut scored = self
            .score_with(tenant, prospect, &profile, &resolved, now_millis())
            .await?;
        Ok(scored.remove(0))
    }

    /// Scores candidates for one prospect and returns the best `top_k` (0: all), best first.
    pub async fn rank(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        candidates: Vec<CandidateInput>,
        top_k: usize,
    ) -> Result<Vec<Scored>, EngineError> {
        let profile = self.profile(tenant, prospect).await?;
        let resolved = self.resolve(tenant, candidates).await?;
        let mut scored = self
            .score_with(tenant, prospect, &profile, &resolved, now_millis())
            .await?;
        sort_best_first(&mut scored);
        if top_k > 0 {
            scored.truncate(top_k);
        }
        Ok(scored)
    }

    /// The prospects a candidate is most relevant to, best first, at most `limit`.
    pub async fn find_audience(
        &self,
        tenant: &Tenant,
        candidate: CandidateInput,
        limit: usize,
    ) -> Result<Vec<(ProspectId, Scored)>, EngineError> {
        let _scan = self
            .scans
            .clone()
            .try_acquire_owned()
            .map_err(|_| EngineError::Overloaded("too many audience scans in flight"))?;
        let resolved = self.resolve(tenant, vec![candidate]).await?.remove(0);
        let now = now_millis();
        // Candidate generation by nearest positive signal, then exact re-scoring of a wider
        // pool with the full model, so the order is by score and not by raw similarity.
        let pool = limit.saturating_mul(4).max(limit + 20);
        let nearest = self
            .store
            .nearest_prospects(tenant, &resolved.vector, pool)
            .await?;
        let baseline = self.baseline_values(tenant, &resolved, now).await?;
        let mut members = Vec::with_capacity(nearest.len());
        for (prospect, _) in nearest {
            // A prospect deleted since the scan is simply skipped.
            let Some(profile) = self
                .caches
                .profile(&*self.store, &self.config, tenant, &prospect)
                .await?
            else {
                continue;
            };
            let scored = self.assess_one(&resolved, &prospect, &profile, &baseline, now);
            members.push((prospect, scored));
        }
        members.sort_by(|a, b| {
            b.1.assessment
                .score
                .total_cmp(&a.1.assessment.score)
                .then_with(|| a.0.cmp(&b.0))
        });
        members.truncate(limit);
        Ok(members)
    }
}

/// Allowed candidates first (SEND, then REVIEW), each group by score; rejected ones last.
pub fn sort_best_first(scored: &mut [Scored]) {
    let rank = |d: Decision| match d {
        Decision::Send | Decision::Review => 0,
        Decision::Reject => 1,
    };
    scored.sort_by(|a, b| {
        rank(a.assessment.decision)
            .cmp(&rank(b.assessment.decision))
            .then_with(|| b.assessment.score.total_cmp(&a.assessment.score))
            .then_with(|| a.candidate_id.cmp(&b.candidate_id))
    });
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
