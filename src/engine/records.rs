//! Prospects, their signals and content pieces: writes (each followed by the invalidation of
//! what is cached of it, run to the end even when the caller goes) and reads.

use super::*;

impl Engine {
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
        let serial = self.locks.lock(tenant, id).await;
        let (store, caches, tenant, id) = (
            self.store.clone(),
            self.caches.clone(),
            tenant.clone(),
            id.clone(),
        );
        let deleted = detached(async move {
            let _serial = serial;
            // The texts whose embeddings the cache may hold: its signals and what was sent.
            let (signals, sends) = tokio::join!(
                store.prospect_signals(&tenant, &id),
                store.sends(&tenant, &id, crate::domain::Millis::MIN, usize::MAX),
            );
            let mut texts: Vec<String> = signals
                .ok()
                .flatten()
                .into_iter()
                .flatten()
                .map(|s| s.text.as_str().to_owned())
                .collect();
            texts.extend(sends.into_iter().flatten().map(|s| s.text));
            let deleted = store.delete_prospect(&tenant, &id).await;
            // Invalidate even on error: part of the erasure may have happened.
            caches.prospect_changed(&tenant, &id).await;
            caches.decisions.forget_prospect(&tenant, &id);
            caches.forget_texts(&tenant, &texts).await;
            deleted
        })
        .await?;
        Ok(deleted?)
    }

    /// Refuses signals that would take the prospect past `--max-signals-per-prospect`. Near the
    /// bound the stored ids are read, so that replacing a signal is never refused; two writes
    /// racing at the bound can pass it by one call's worth (the bound is on work, not a quota).
    async fn within_signal_bound(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        stored: u32,
        signals: &[NewSignal],
    ) -> Result<(), EngineError> {
        let bound = u64::from(self.max_signals_per_prospect);
        if u64::from(stored) + signals.len() as u64 <= bound {
            return Ok(());
        }
        let existing: std::collections::HashSet<SignalId> = self
            .store
            .prospect_signals(tenant, prospect)
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.id)
            .collect();
        let new: std::collections::HashSet<&SignalId> = signals
            .iter()
            .map(|s| &s.id)
            .filter(|id| !existing.contains(*id))
            .collect();
        let total = existing.len() as u64 + new.len() as u64;
        if total > bound {
            return Err(EngineError::Limit {
                field: "signals",
                message: format!(
                    "the prospect would hold {total} signals, over the bound of {bound} (--max-signals-per-prospect): delete some first"
                ),
            });
        }
        Ok(())
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
        let Some(summary) = self.store.get_prospect(tenant, prospect).await? else {
            return Err(not_found("prospect", prospect));
        };
        self.within_signal_bound(tenant, prospect, summary.signal_count, &signals)
            .await?;
        let texts = signals.iter().map(|s| s.text.as_str().to_owned()).collect();
        let vectors = self.embed(tenant, texts).await?;
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
            self.embed(tenant, vec![text]).await?.pop().ok_or_else(|| {
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
}
