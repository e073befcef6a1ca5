//! Scoring through the engine: candidates resolved to vectors, profiles and tenant baselines
//! from the caches, then `scoring::assess`; Score, Rank and FindAudience.

use super::*;

impl Engine {
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
            let vectors = self.embed(tenant, texts).await?;
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
            .profile(&*self.store, &self.scoring, tenant, prospect)
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
            .baseline_values(&*self.store, &self.scoring, tenant, candidate, now)
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
                &self.scoring,
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
        let _scan = self.scans.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("pertinent_admission_refusals_total", "reason" => "scans")
                .increment(1);
            EngineError::Overloaded("too many audience scans in flight")
        })?;
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
                .profile(&*self.store, &self.scoring, tenant, &prospect)
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
