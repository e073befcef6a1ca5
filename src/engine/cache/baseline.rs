//! A tenant's baseline sample (its prospects' profiles and their common direction) and each
//! registered piece's relevance to that sample, cached per sample generation.

use super::*;

/// A tenant's baseline sample.
pub(super) struct Sample {
    generation: u64,
    members: Vec<(ProspectId, Arc<Profile>)>,
    /// The members' common direction.
    centering: Option<Arc<Centering>>,
}

impl Sample {
    fn new(generation: u64, members: Vec<(ProspectId, Arc<Profile>)>) -> Self {
        let dimensions = members
            .iter()
            .find_map(|(_, p)| p.dimensions())
            .unwrap_or(0);
        let mut sum = vec![0.0f32; dimensions];
        let (mut count, mut prospects) = (0, 0);
        for (_, profile) in &members {
            let added = profile.add_positives_to(&mut sum);
            count += added;
            prospects += usize::from(added > 0);
        }
        Self {
            generation,
            centering: Centering::from_sum(sum, count, prospects).map(Arc::new),
            members,
        }
    }
}

/// A candidate's relevance to each member of the tenant's baseline sample, and the sample's
/// common direction.
#[derive(Clone)]
pub struct BaselineValues {
    pub values: Arc<Vec<(ProspectId, f32)>>,
    pub centering: Option<Arc<Centering>>,
}

/// One piece's relevance to each member of a sample of a given generation.
pub(super) struct PieceBaseline {
    generation: u64,
    values: Arc<Vec<(ProspectId, f32)>>,
}

impl Caches {
    async fn sample(
        &self,
        store: &dyn VectorStore,
        config: &ScoringOptions,
        tenant: &Tenant,
    ) -> Result<Arc<Sample>, EngineError> {
        let loaded = self
            .samples
            .try_get_with(tenant.clone(), async {
                let ids = store
                    .sample_prospects(tenant, config.baseline_sample)
                    .await
                    .map_err(EngineError::Store)?;
                let mut members = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(profile) = self.profile(store, config, tenant, &id).await? {
                        members.push((id, profile));
                    }
                }
                Ok::<_, EngineError>(Arc::new(Sample::new(
                    self.generation.fetch_add(1, Ordering::Relaxed) + 1,
                    members,
                )))
            })
            .await;
        loaded.map_err(|e| match &*e {
            EngineError::Store(s) => EngineError::Store(s.clone()),
            other => EngineError::Unavailable(other.to_string()),
        })
    }

    /// The candidate's relevance to every prospect of the tenant's baseline sample; cached per
    /// registered piece for as long as the sample stays the same.
    pub(crate) async fn baseline_values(
        &self,
        store: &dyn VectorStore,
        config: &ScoringOptions,
        tenant: &Tenant,
        candidate: &ResolvedCandidate,
        now: Millis,
    ) -> Result<BaselineValues, EngineError> {
        let sample = self.sample(store, config, tenant).await?;
        let with = |values| BaselineValues {
            values,
            centering: sample.centering.clone(),
        };
        let compute = || {
            Arc::new(
                sample
                    .members
                    .iter()
                    .map(|(id, p)| {
                        (
                            id.clone(),
                            relevance_value(&candidate.vector, p, now, config),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let Some(content) = &candidate.content else {
            return Ok(with(compute()));
        };
        let key = (tenant.clone(), content.clone());
        if let Some(cached) = self.piece_baselines.get(&key).await
            && cached.generation == sample.generation
        {
            super::count("baseline", true);
            return Ok(with(cached.values.clone()));
        }
        super::count("baseline", false);
        let values = compute();
        self.piece_baselines
            .insert(
                key,
                Arc::new(PieceBaseline {
                    generation: sample.generation,
                    values: values.clone(),
                }),
            )
            .await;
        Ok(with(values))
    }
}
