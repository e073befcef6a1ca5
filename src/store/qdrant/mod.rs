//! The remote store: a Qdrant server or cluster through qdrant-client (gRPC), the scale-out
//! adapter of `VectorStore`. qdrant-client types never leave this folder.
//! Layout: how records are points (`points`), prospects, signals and content (`records`), the
//! gate's records (`gate`); this file holds the connection, the collection's set-up, shared
//! point reads and the `VectorStore` impl, which calls them. The collection's layout and what
//! is not transactional: docs/internals.md.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use qdrant_client::qdrant::value::Kind as ValueKind;
use qdrant_client::qdrant::vector_output::Vector as OutputVector;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder,
    DeletePointsBuilder, Direction, Distance, FieldType, Filter, GetPointsBuilder,
    KeywordIndexParamsBuilder, OrderBy, PointId, PointStruct, PointsIdsList,
    QueryPointGroupsBuilder, Range, RetrievedPoint, ScrollPointsBuilder, UpdateMode,
    UpsertPointsBuilder, Value, VectorParamsBuilder, VectorsConfigBuilder, group_id,
    vectors_config,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use uuid::Uuid;

use super::{
    GateRead, HistoryWindow, ProspectSummary, SignalWrite, StoreError, VectorStore, random_secret,
    sample_key,
};
use crate::domain::Secret;
use crate::domain::{
    ContentId, ContentKind, ContentRecord, EngagementKind, EngagementRecord, Millis, Polarity,
    ProspectId, ProspectRecord, SendId, SendRecord, SignalId, SignalRecord, SignalSource, Tenant,
    Text, Weight,
};

mod gate;
mod points;
mod records;

use points::*;

/// The oldest Qdrant server the adapter accepts: 1.17 brought the insert-only and conditional
/// upserts that exact gate rules across replicas are to use (docs/reliability.md). Tested
/// against 1.18.3.
const OLDEST: (u64, u64) = (1, 17);

/// Refuses a Qdrant server older than `OLDEST`, or of another major version, at start.
fn supported(version: &str) -> Result<(), StoreError> {
    let mut parts = version.trim_start_matches('v').split('.');
    let mut number = || parts.next().and_then(|p| p.parse::<u64>().ok());
    let parsed = (number(), number());
    match parsed {
        (Some(major), Some(minor)) if major == OLDEST.0 && minor >= OLDEST.1 => Ok(()),
        _ => Err(StoreError::Backend(format!(
            "Qdrant {version} is not supported: pertinent needs Qdrant {}.{} or a later 1.x",
            OLDEST.0, OLDEST.1
        ))),
    }
}

/// What the Qdrant adapter is built from (config.rs fills it from the flags).
#[derive(Debug, Clone)]
pub struct QdrantOptions {
    /// The gRPC URL (http://HOST:6334, or https:// for TLS).
    pub url: String,
    pub api_key: Option<Secret>,
    /// The one collection holding every tenant's points, created if missing.
    pub collection: String,
    /// Bound of one request, and of connecting.
    pub timeout: Duration,
}

/// The Qdrant adapter.
pub struct QdrantStore {
    client: Qdrant,
    collection: String,
    dimension: usize,
}
impl QdrantStore {
    /// Connects, creates the collection and its payload indexes if missing, and checks that the
    /// collection's vector size matches the model's.
    pub async fn connect(options: &QdrantOptions, dimension: usize) -> Result<Self, StoreError> {
        let mut builder = Qdrant::from_url(&options.url)
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            // qdrant-client's own check only prints to stdout, and only accepts servers within
            // one minor version of the client; `supported` below decides instead.
            .skip_compatibility_check();
        if let Some(key) = &options.api_key {
            builder = builder.api_key(key.expose().to_owned());
        }
        let client = builder
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let version = client.health_check().await.map_err(backend)?.version;
        supported(&version)?;
        tracing::info!(%version, "connected to Qdrant");
        let store = Self {
            client,
            collection: options.collection.clone(),
            dimension,
        };
        store.ensure_collection().await?;
        Ok(store)
    }

    async fn ensure_collection(&self) -> Result<(), StoreError> {
        let exists = self
            .client
            .collection_exists(&self.collection)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        if !exists {
            let mut vectors = VectorsConfigBuilder::default();
            vectors.add_named_vector_params(
                VECTOR,
                VectorParamsBuilder::new(self.dimension as u64, Distance::Cosine),
            );
            let created = self
                .client
                .create_collection(
                    CreateCollectionBuilder::new(&self.collection).vectors_config(vectors),
                )
                .await;
            // Another replica may have created it meanwhile; the check below decides.
            if let Err(e) = created
                && !self
                    .client
                    .collection_exists(&self.collection)
                    .await
                    .unwrap_or(false)
            {
                return Err(backend(e));
            }
        }
        self.check_dimension().await?;
        self.ensure_indexes().await
    }

    async fn check_dimension(&self) -> Result<(), StoreError> {
        let info = self
            .client
            .collection_info(&self.collection)
            .await
            .map_err(backend)?;
        let config = info
            .result
            .and_then(|r| r.config)
            .and_then(|c| c.params)
            .and_then(|p| p.vectors_config)
            .and_then(|v| v.config);
        let size = match config {
            Some(vectors_config::Config::ParamsMap(map)) => map.map.get(VECTOR).map(|p| p.size),
            _ => None,
        };
        match size {
            Some(found) if found as usize == self.dimension => Ok(()),
            Some(found) => Err(StoreError::DimensionMismatch {
                expected: self.dimension,
                found: found as usize,
            }),
            None => Err(StoreError::Backend(format!(
                "collection {} has no dense vector named {VECTOR:?}; it was not made by pertinent",
                self.collection
            ))),
        }
    }

    async fn ensure_indexes(&self) -> Result<(), StoreError> {
        let c = &self.collection;
        let indexes = [
            CreateFieldIndexCollectionBuilder::new(c, "tenant", FieldType::Keyword)
                .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
                .wait(true),
            CreateFieldIndexCollectionBuilder::new(c, "kind", FieldType::Keyword).wait(true),
            CreateFieldIndexCollectionBuilder::new(c, "prospect_id", FieldType::Keyword).wait(true),
            CreateFieldIndexCollectionBuilder::new(c, "polarity", FieldType::Keyword).wait(true),
            // Integer index with range support: scroll orders by it for the baseline sample.
            CreateFieldIndexCollectionBuilder::new(c, "sample_key", FieldType::Integer).wait(true),
        ];
        for index in indexes {
            // Creating an existing index is a no-op on the server.
            self.client
                .create_field_index(index)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    async fn get_point(
        &self,
        id: PointId,
        vectors: bool,
    ) -> Result<Option<RetrievedPoint>, StoreError> {
        let response = self
            .client
            .get_points(
                GetPointsBuilder::new(&self.collection, vec![id])
                    .with_payload(true)
                    .with_vectors(vectors),
            )
            .await
            .map_err(backend)?;
        Ok(response.result.into_iter().next())
    }

    async fn prospect_exists(&self, tenant: &Tenant, id: &ProspectId) -> Result<bool, StoreError> {
        Ok(self
            .get_point(point_id(tenant, KIND_PROSPECT, id.as_str()), false)
            .await?
            .is_some())
    }

    async fn count(&self, filter: Filter) -> Result<u64, StoreError> {
        let response = self
            .client
            .count(
                CountPointsBuilder::new(&self.collection)
                    .filter(filter)
                    .exact(true),
            )
            .await
            .map_err(backend)?;
        Ok(response.result.map_or(0, |r| r.count))
    }

    async fn signal_count(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<u32, StoreError> {
        Ok(self
            .count(prospect_signals_filter(tenant, prospect))
            .await? as u32)
    }

    /// Every point matching `filter`, page by page.
    async fn scroll_all(
        &self,
        filter: Filter,
        vectors: bool,
    ) -> Result<Vec<RetrievedPoint>, StoreError> {
        let mut out = Vec::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut request = ScrollPointsBuilder::new(&self.collection)
                .filter(filter.clone())
                .limit(PAGE)
                .with_payload(true)
                .with_vectors(vectors);
            if let Some(o) = offset.take() {
                request = request.offset(o);
            }
            let page = self.client.scroll(request).await.map_err(backend)?;
            out.extend(page.result);
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Upserts one point and waits for it to be applied.
    async fn upsert(&self, point: PointStruct) -> Result<(), StoreError> {
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, vec![point]).wait(true))
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Which of `ids` exist.
    async fn existing(&self, ids: Vec<PointId>) -> Result<Vec<PointId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let response = self
            .client
            .get_points(
                GetPointsBuilder::new(&self.collection, ids)
                    .with_payload(false)
                    .with_vectors(false),
            )
            .await
            .map_err(backend)?;
        Ok(response.result.into_iter().filter_map(|p| p.id).collect())
    }
}

#[async_trait]
impl VectorStore for QdrantStore {
    fn adapter(&self) -> &'static str {
        "qdrant"
    }

    /// Nothing to flush: every write was acknowledged by the server when it returned. The
    /// client's connections close when the store is dropped.
    fn close(&self) {}

    async fn health(&self) -> Result<(), StoreError> {
        self.client
            .health_check()
            .await
            .map(|_| ())
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    async fn upsert_prospect(
        &self,
        tenant: &Tenant,
        prospect: &ProspectRecord,
    ) -> Result<(), StoreError> {
        records::upsert_prospect(self, tenant, prospect).await
    }

    async fn get_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<Option<ProspectSummary>, StoreError> {
        records::get_prospect(self, tenant, id).await
    }

    async fn delete_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<Option<u32>, StoreError> {
        records::delete_prospect(self, tenant, id).await
    }

    async fn upsert_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        signals: &[SignalRecord],
    ) -> Result<SignalWrite, StoreError> {
        records::upsert_signals(self, tenant, prospect, signals).await
    }

    async fn delete_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        ids: &[SignalId],
    ) -> Result<(u32, u32), StoreError> {
        records::delete_signals(self, tenant, prospect, ids).await
    }

    async fn prospect_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<Option<Vec<SignalRecord>>, StoreError> {
        records::prospect_signals(self, tenant, prospect).await
    }

    async fn upsert_content(
        &self,
        tenant: &Tenant,
        content: &ContentRecord,
    ) -> Result<(), StoreError> {
        records::upsert_content(self, tenant, content).await
    }

    async fn get_content(
        &self,
        tenant: &Tenant,
        id: &ContentId,
    ) -> Result<Option<ContentRecord>, StoreError> {
        records::get_content(self, tenant, id).await
    }

    async fn delete_content(&self, tenant: &Tenant, id: &ContentId) -> Result<bool, StoreError> {
        records::delete_content(self, tenant, id).await
    }

    async fn prospect_count(&self, tenant: &Tenant) -> Result<u64, StoreError> {
        records::prospect_count(self, tenant).await
    }

    async fn sample_prospects(
        &self,
        tenant: &Tenant,
        n: usize,
    ) -> Result<Vec<ProspectId>, StoreError> {
        records::sample_prospects(self, tenant, n).await
    }

    async fn nearest_prospects(
        &self,
        tenant: &Tenant,
        vector: &[f32],
        limit: usize,
    ) -> Result<Vec<(ProspectId, f32)>, StoreError> {
        records::nearest_prospects(self, tenant, vector, limit).await
    }

    async fn sends(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        since: Millis,
        limit: usize,
    ) -> Result<Vec<SendRecord>, StoreError> {
        gate::sends(self, tenant, prospect, since, limit).await
    }

    async fn gate_history(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        window: &HistoryWindow,
    ) -> Result<GateRead, StoreError> {
        gate::gate_history(self, tenant, prospect, window).await
    }

    async fn record_send(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        send: &SendRecord,
    ) -> Result<Option<(ProspectId, SendRecord)>, StoreError> {
        gate::record_send(self, tenant, prospect, send).await
    }

    async fn record_engagement(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        engagement: &EngagementRecord,
    ) -> Result<(), StoreError> {
        gate::record_engagement(self, tenant, prospect, engagement).await
    }

    async fn engagements(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        limit: usize,
    ) -> Result<Vec<EngagementRecord>, StoreError> {
        gate::engagements(self, tenant, prospect, limit).await
    }

    async fn record_decision(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        send_id: &SendId,
        decision: &str,
        decided_at: Millis,
        send: Option<&SendRecord>,
    ) -> Result<Option<String>, StoreError> {
        gate::record_decision(self, tenant, prospect, send_id, decision, decided_at, send).await
    }

    async fn get_decision(
        &self,
        tenant: &Tenant,
        send: &SendId,
    ) -> Result<Option<String>, StoreError> {
        gate::get_decision(self, tenant, send).await
    }

    async fn put_policy(&self, tenant: &Tenant, policy: &str) -> Result<(), StoreError> {
        gate::put_policy(self, tenant, policy).await
    }

    async fn get_policy(&self, tenant: &Tenant) -> Result<Option<String>, StoreError> {
        gate::get_policy(self, tenant).await
    }

    async fn put_suppression(
        &self,
        tenant: &Tenant,
        key: &str,
        entry: &str,
    ) -> Result<(), StoreError> {
        gate::put_suppression(self, tenant, key, entry).await
    }

    async fn get_suppression(
        &self,
        tenant: &Tenant,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        gate::get_suppression(self, tenant, key).await
    }

    async fn delete_suppression(&self, tenant: &Tenant, key: &str) -> Result<bool, StoreError> {
        gate::delete_suppression(self, tenant, key).await
    }

    async fn suppressions(&self) -> Result<Vec<(Tenant, String, String)>, StoreError> {
        gate::suppressions(self).await
    }

    async fn secret(&self, name: &str) -> Result<String, StoreError> {
        gate::secret(self, name).await
    }

    async fn purge_before(&self, before: Millis) -> Result<u64, StoreError> {
        gate::purge_before(self, before).await
    }
}

#[cfg(test)]
mod tests {
    use super::supported;

    #[test]
    fn only_qdrant_1_17_and_later_1_x_servers_are_supported() {
        for ok in ["1.17.0", "1.18.3", "1.20.1", "v1.25.0"] {
            assert!(supported(ok).is_ok(), "{ok}");
        }
        for refused in ["1.16.3", "0.11.0", "2.0.0", "dev", ""] {
            assert!(supported(refused).is_err(), "{refused}");
        }
    }
}
