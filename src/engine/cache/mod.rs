//! Caches in front of the store, so that scoring registered content touches no disk or network:
//! profiles, content pieces, tenant baselines (`baseline`), gate policies and histories
//! (`history`), and the decision memory. Writes invalidate at once; every entry also expires
//! after a TTL. No store adapter, grpc or clock is imported (callers pass `now`). How staleness
//! is bounded and why histories are exact: docs/internals.md, "The engine's caches".

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;
use moka::ops::compute::Op;

use super::memory::DecisionMemory;
use super::{CacheOptions, EngineError, ResolvedCandidate};
use crate::domain::{
    ContentId, ContentRecord, EngagementRecord, Millis, ProspectId, SendId, SendRecord, Tenant,
    embedding_text,
};
use crate::scoring::gate::GatePolicy;
use crate::scoring::{Centering, Compact, Profile, ProfileSignal, ScoringOptions, relevance_value};
use crate::store::{StoreError, VectorStore};

mod baseline;
mod history;

pub use baseline::BaselineValues;
use baseline::{PieceBaseline, Sample};
pub(crate) use history::{GateHistory, HISTORY_LIMIT};

/// Counts a lookup of `cache` (`pertinent_cache_requests_total`).
pub(super) fn count(cache: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!("pertinent_cache_requests_total", "cache" => cache, "result" => result)
        .increment(1);
}

/// Stripes of the per-prospect write counts that profiles are stamped with.
const WRITE_STRIPES: usize = 4096;

/// A registered piece as scoring and the gate need it.
pub(super) struct CachedContent {
    pub vector: Arc<Vec<f32>>,
    /// Title and body as embedded: what a send of this piece records.
    pub text: String,
}

impl From<ContentRecord> for CachedContent {
    fn from(record: ContentRecord) -> Self {
        Self {
            text: embedding_text(&record.title, record.body.as_str()),
            vector: Arc::new(record.vector),
        }
    }
}

/// A cached value with the write count of its stripe when its load began.
#[derive(Clone)]
struct Stamped<T> {
    writes: u64,
    value: T,
}

/// A prospect's profile from the store.
async fn load_profile(
    store: &dyn VectorStore,
    config: &ScoringOptions,
    tenant: &Tenant,
    prospect: &ProspectId,
) -> Result<Profile, Miss> {
    let records = store
        .prospect_signals(tenant, prospect)
        .await?
        .ok_or(Miss::Absent)?;
    let signals = records
        .into_iter()
        .map(|r| ProfileSignal {
            id: r.id.to_string(),
            source: r.source,
            polarity: r.polarity,
            observed_at: r.observed_at,
            weight: r.weight.get(),
            vector: r.vector,
        })
        .collect();
    Ok(Profile::new(signals, config))
}

/// A load that found nothing is not an error, but must not be cached either.
#[derive(Debug, Clone)]
enum Miss {
    Absent,
    Failed(Arc<StoreError>),
}

impl From<StoreError> for Miss {
    fn from(e: StoreError) -> Self {
        Self::Failed(Arc::new(e))
    }
}

fn unwrap_miss<T>(result: Result<T, Arc<Miss>>) -> Result<Option<T>, EngineError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(miss) => match &*miss {
            Miss::Absent => Ok(None),
            Miss::Failed(e) => Err(EngineError::Store(e.as_ref().clone())),
        },
    }
}

/// The key of a text in the embedding cache: its SHA-256.
pub(super) type TextKey = [u8; 32];

/// How long an embedding stays cached, however often it is hit.
pub(super) const TEXT_TTL: Duration = Duration::from_secs(3600);

/// A text's key in the embedding cache.
pub(super) fn text_key(text: &str) -> TextKey {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

pub(super) struct Caches {
    /// Embeddings by exact text: the same template sent to many prospects, or the same
    /// "visited the pricing page" signal, is embedded once.
    /// Embeddings of recently embedded texts, by (tenant, SHA-256 of the text): no raw text,
    /// no sharing between tenants (a hit's speed would tell one tenant what another embedded),
    /// entries expire after `TEXT_TTL`, and erasing a prospect removes its signals' entries.
    pub(super) texts: Cache<(Tenant, TextKey), Arc<Vec<f32>>>,
    profiles: Cache<(Tenant, ProspectId), Stamped<Arc<Profile>>>,
    /// Per stripe of prospects, how many writes this process has made to them: a profile
    /// loaded under an older count may have read the store before a write and been cached
    /// after the write's invalidation, and is read again.
    profile_writes: Vec<AtomicU64>,
    contents: Cache<(Tenant, ContentId), Arc<CachedContent>>,
    samples: Cache<Tenant, Arc<Sample>>,
    piece_baselines: Cache<(Tenant, ContentId), Arc<PieceBaseline>>,
    generation: AtomicU64,
    /// Gate policies by tenant.
    policies: Cache<Tenant, Arc<GatePolicy>>,
    /// Chooses the stripe of `profile_writes`.
    stripe_hasher: RandomState,
    /// Gate histories by prospect.
    histories: Cache<(Tenant, ProspectId), Arc<GateHistory>>,
    /// The gate's recent decisions by send id, for retries.
    pub(super) decisions: DecisionMemory,
}

impl Caches {
    pub(super) fn new(limits: &CacheOptions) -> Self {
        // Every cache but the embeddings' (which a write cannot make stale) expires entries.
        fn built<K, V>(capacity: u64, ttl: Duration) -> Cache<K, V>
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build()
        }
        let ttl = limits.ttl;
        Self {
            texts: Cache::builder()
                .max_capacity(limits.text_bytes)
                .weigher(|key: &(Tenant, TextKey), vector: &Arc<Vec<f32>>| {
                    (key.0.as_str().len() + 32 + vector.len() * 4 + 64)
                        .try_into()
                        .unwrap_or(u32::MAX)
                })
                .time_to_live(TEXT_TTL)
                .build(),
            profiles: Cache::builder()
                .max_capacity(limits.profile_bytes)
                .time_to_live(ttl)
                .weigher(|_: &(Tenant, ProspectId), p: &Stamped<Arc<Profile>>| {
                    p.value.approx_bytes().try_into().unwrap_or(u32::MAX)
                })
                .build(),
            contents: Cache::builder()
                .max_capacity(limits.content_bytes)
                .time_to_live(ttl)
                .weigher(|_: &(Tenant, ContentId), c: &Arc<CachedContent>| {
                    (c.vector.len() * 4 + c.text.len() + 64)
                        .try_into()
                        .unwrap_or(u32::MAX)
                })
                .build(),
            samples: built(10_000, ttl),
            piece_baselines: built(100_000, ttl),
            generation: AtomicU64::new(0),
            policies: built(10_000, ttl),
            profile_writes: (0..WRITE_STRIPES).map(|_| AtomicU64::new(0)).collect(),
            stripe_hasher: RandomState::new(),
            histories: Cache::builder()
                .max_capacity(limits.history_bytes)
                .time_to_live(ttl)
                .weigher(|_: &(Tenant, ProspectId), h: &Arc<GateHistory>| {
                    h.approx_bytes().try_into().unwrap_or(u32::MAX)
                })
                .build(),
            decisions: DecisionMemory::new(
                limits.decision_memory_bytes,
                limits.decision_memory_ttl,
            ),
        }
    }

    /// The stripe of a prospect's write count.
    fn stripe(&self, tenant: &Tenant, prospect: &ProspectId) -> usize {
        (self.stripe_hasher.hash_one((tenant, prospect)) % WRITE_STRIPES as u64) as usize
    }

    /// The tenant's policy if it is in memory (for answering without the store).
    pub(super) async fn cached_policy(&self, tenant: &Tenant) -> Option<Arc<GatePolicy>> {
        self.policies.get(tenant).await
    }

    /// Forgets the embeddings of `texts` (an erasure).
    pub(super) async fn forget_texts(&self, tenant: &Tenant, texts: &[String]) {
        for text in texts {
            self.texts
                .invalidate(&(tenant.clone(), text_key(text)))
                .await;
        }
    }

    /// The tenant's policy changed.
    pub(super) async fn policy_changed(&self, tenant: &Tenant) {
        self.policies.invalidate(tenant).await;
    }

    /// The tenant's stored policy, or `default` when it set none.
    pub(super) async fn policy(
        &self,
        store: &dyn VectorStore,
        tenant: &Tenant,
        default: &GatePolicy,
    ) -> Result<Arc<GatePolicy>, EngineError> {
        self.policies
            .try_get_with(tenant.clone(), async {
                match store.get_policy(tenant).await? {
                    Some(text) => serde_json::from_str::<GatePolicy>(&text)
                        .map(|p| Arc::new(p.with_service_fields(default)))
                        .map_err(|e| StoreError::Backend(format!("stored gate policy: {e}"))),
                    None => Ok(Arc::new(default.clone())),
                }
            })
            .await
            .map_err(|e| EngineError::Store(e.as_ref().clone()))
    }

    /// A prospect or its signals changed: its profile, its gate history and its tenant's
    /// sample are stale.
    pub(super) async fn prospect_changed(&self, tenant: &Tenant, prospect: &ProspectId) {
        let key = (tenant.clone(), prospect.clone());
        // Counted before the entry goes, so that a load already under way is found stale.
        self.profile_writes[self.stripe(tenant, prospect)].fetch_add(1, Ordering::SeqCst);
        self.profiles.invalidate(&key).await;
        self.histories.invalidate(&key).await;
        self.samples.invalidate(tenant).await;
    }

    /// A content piece changed.
    pub(super) async fn content_changed(&self, tenant: &Tenant, id: &ContentId) {
        let key = (tenant.clone(), id.clone());
        self.contents.invalidate(&key).await;
        self.piece_baselines.invalidate(&key).await;
    }

    /// The profile of a prospect; `None` when it does not exist.
    pub(super) async fn profile(
        &self,
        store: &dyn VectorStore,
        config: &ScoringOptions,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<Option<Arc<Profile>>, EngineError> {
        let key = (tenant.clone(), prospect.clone());
        let writes = &self.profile_writes[self.stripe(tenant, prospect)];
        // A stale entry is dropped and loaded again; if writes keep coming, the second load is
        // served without trusting the cache further.
        for round in 0..2 {
            let before = writes.load(Ordering::SeqCst);
            let missed = AtomicBool::new(false);
            let loaded = self
                .profiles
                .try_get_with(key.clone(), async {
                    missed.store(true, Ordering::Relaxed);
                    let profile = load_profile(store, config, tenant, prospect).await?;
                    Ok::<_, Miss>(Stamped {
                        writes: before,
                        value: Arc::new(profile),
                    })
                })
                .await;
            if round == 0 {
                count("profile", !missed.load(Ordering::Relaxed));
            }
            match unwrap_miss(loaded)? {
                None => return Ok(None),
                Some(entry) if entry.writes == writes.load(Ordering::SeqCst) => {
                    return Ok(Some(entry.value));
                }
                Some(_) => self.profiles.invalidate(&key).await,
            }
        }
        match load_profile(store, config, tenant, prospect).await {
            Ok(profile) => Ok(Some(Arc::new(profile))),
            Err(Miss::Absent) => Ok(None),
            Err(Miss::Failed(e)) => Err(EngineError::Store(e.as_ref().clone())),
        }
    }

    /// A registered piece (its vector and send text); `None` when it is not registered.
    pub(super) async fn content(
        &self,
        store: &dyn VectorStore,
        tenant: &Tenant,
        id: &ContentId,
    ) -> Result<Option<Arc<CachedContent>>, EngineError> {
        let key = (tenant.clone(), id.clone());
        let missed = AtomicBool::new(false);
        let loaded = self
            .contents
            .try_get_with(key, async {
                missed.store(true, Ordering::Relaxed);
                let record = store.get_content(tenant, id).await?.ok_or(Miss::Absent)?;
                Ok::<_, Miss>(Arc::new(CachedContent::from(record)))
            })
            .await;
        count("content", !missed.load(Ordering::Relaxed));
        unwrap_miss(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caches() -> Caches {
        Caches::new(&CacheOptions {
            ttl: Duration::from_secs(60),
            profile_bytes: 1 << 20,
            text_bytes: 1 << 20,
            history_bytes: 1 << 20,
            content_bytes: 1 << 20,
            decision_memory_bytes: 1 << 20,
            decision_memory_ttl: Duration::from_secs(60),
        })
    }

    #[tokio::test]
    async fn the_embedding_cache_holds_no_text_is_per_tenant_and_forgets_an_erased_prospects_texts()
    {
        let c = caches();
        let (acme, other) = (
            Tenant::parse("acme").unwrap(),
            Tenant::parse("other").unwrap(),
        );
        let note = "Zebulon said the marmalade centrifuge fails every Tuesday.".to_owned();
        let kept = "A text of someone else's.".to_owned();
        for text in [&note, &kept] {
            c.texts
                .insert((acme.clone(), text_key(text)), Arc::new(vec![1.0; 4]))
                .await;
        }
        // Keyed by a hash: no entry holds the text, and another tenant cannot hit it.
        assert_eq!(text_key(&note).len(), 32);
        assert!(
            c.texts
                .get(&(other.clone(), text_key(&note)))
                .await
                .is_none()
        );
        assert!(
            c.texts
                .get(&(acme.clone(), text_key(&note)))
                .await
                .is_some()
        );
        c.forget_texts(&acme, std::slice::from_ref(&note)).await;
        assert!(
            c.texts
                .get(&(acme.clone(), text_key(&note)))
                .await
                .is_none()
        );
        assert!(
            c.texts
                .get(&(acme.clone(), text_key(&kept)))
                .await
                .is_some()
        );
        c.texts.run_pending_tasks().await;
        for (key, _) in c.texts.iter() {
            let bytes: Vec<u8> = key.1.to_vec();
            assert!(!String::from_utf8_lossy(&bytes).contains("marmalade"));
        }
    }
}
