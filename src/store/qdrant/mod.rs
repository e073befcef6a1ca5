//! The remote store: a Qdrant server or cluster through qdrant-client (gRPC), the scale-out
//! adapter of `VectorStore`. qdrant-client types never leave this folder.
//! Layout: how records are points (`points`); this file holds the connection, the collection's
//! set-up and the `VectorStore` impl (long for one reason: Rust keeps a trait impl in one
//! block). The collection's layout and what is not transactional: docs/internals.md.

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

mod points;

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
        let mut payload = base_payload(tenant, KIND_PROSPECT);
        payload.insert("prospect_id", prospect.id.to_string());
        payload.insert("name", prospect.name.clone());
        payload.insert("company", prospect.company.clone());
        payload.insert("role", prospect.role.clone());
        let attributes = serde_json::to_string(&prospect.attributes)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        payload.insert("attributes", attributes);
        payload.insert("sample_key", sample_key(&prospect.id));
        // A prospect record has no vector: the collection's vector is named, and named
        // vectors may be left out of a point.
        self.upsert(PointStruct::new(
            point_id(tenant, KIND_PROSPECT, prospect.id.as_str()),
            HashMap::<String, Vec<f32>>::new(),
            payload,
        ))
        .await
    }

    async fn get_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<Option<ProspectSummary>, StoreError> {
        let Some(point) = self
            .get_point(point_id(tenant, KIND_PROSPECT, id.as_str()), false)
            .await?
        else {
            return Ok(None);
        };
        let p = &point.payload;
        let attributes =
            serde_json::from_str(&get_str(p, "attributes")?).map_err(|_| corrupt("attributes"))?;
        let prospect = ProspectRecord {
            id: id.clone(),
            name: get_str(p, "name")?,
            company: get_str(p, "company")?,
            role: get_str(p, "role")?,
            attributes,
        };
        let signal_count = self.signal_count(tenant, id).await?;
        Ok(Some(ProspectSummary {
            prospect,
            signal_count,
        }))
    }

    async fn delete_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<Option<u32>, StoreError> {
        let existed = self.prospect_exists(tenant, id).await?;
        let signals = self.signal_count(tenant, id).await?;
        // Everything of the prospect's carries its id: one filtered delete erases it all,
        // orphans of an interrupted earlier write included.
        let filter = Filter::must([
            Condition::matches("tenant", tenant.to_string()),
            Condition::matches("prospect_id", id.to_string()),
        ]);
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(filter)
                    .wait(true),
            )
            .await
            .map_err(backend)?;
        Ok(existed.then_some(signals))
    }

    async fn upsert_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        signals: &[SignalRecord],
    ) -> Result<SignalWrite, StoreError> {
        if !self.prospect_exists(tenant, prospect).await? {
            return Err(StoreError::MissingProspect);
        }
        if let Some(bad) = signals.iter().find(|s| s.vector.len() != self.dimension) {
            return Err(StoreError::DimensionMismatch {
                expected: self.dimension,
                found: bad.vector.len(),
            });
        }
        let ids: Vec<PointId> = signals
            .iter()
            .map(|s| signal_point(tenant, prospect, &s.id))
            .collect();
        let replaced = self.existing(ids.clone()).await?.len() as u32;
        let points: Vec<PointStruct> = signals
            .iter()
            .zip(ids)
            .map(|(s, id)| {
                let mut payload = base_payload(tenant, KIND_SIGNAL);
                payload.insert("prospect_id", prospect.to_string());
                payload.insert("signal_id", s.id.to_string());
                payload.insert("source", s.source.as_str());
                payload.insert("polarity", s.polarity.as_str());
                payload.insert("observed_at", s.observed_at);
                payload.insert("weight", f64::from(s.weight.get()));
                payload.insert("text", s.text.as_str());
                PointStruct::new(id, named(&s.vector), payload)
            })
            .collect();
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, points).wait(true))
            .await
            .map_err(backend)?;
        Ok(SignalWrite {
            added: signals.len() as u32 - replaced,
            replaced,
            total: self.signal_count(tenant, prospect).await?,
        })
    }

    async fn delete_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        ids: &[SignalId],
    ) -> Result<(u32, u32), StoreError> {
        if !self.prospect_exists(tenant, prospect).await? {
            return Err(StoreError::MissingProspect);
        }
        let points: Vec<PointId> = ids
            .iter()
            .map(|s| signal_point(tenant, prospect, s))
            .collect();
        let existing = self.existing(points).await?;
        let deleted = existing.len() as u32;
        if !existing.is_empty() {
            self.client
                .delete_points(
                    DeletePointsBuilder::new(&self.collection)
                        .points(PointsIdsList { ids: existing })
                        .wait(true),
                )
                .await
                .map_err(backend)?;
        }
        Ok((deleted, self.signal_count(tenant, prospect).await?))
    }

    async fn prospect_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<Option<Vec<SignalRecord>>, StoreError> {
        if !self.prospect_exists(tenant, prospect).await? {
            return Ok(None);
        }
        let points = self
            .scroll_all(prospect_signals_filter(tenant, prospect), true)
            .await?;
        let mut signals = points
            .iter()
            .map(read_signal)
            .collect::<Result<Vec<_>, _>>()?;
        signals.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Some(signals))
    }

    async fn upsert_content(
        &self,
        tenant: &Tenant,
        content: &ContentRecord,
    ) -> Result<(), StoreError> {
        if content.vector.len() != self.dimension {
            return Err(StoreError::DimensionMismatch {
                expected: self.dimension,
                found: content.vector.len(),
            });
        }
        let mut payload = base_payload(tenant, KIND_CONTENT);
        payload.insert("content_id", content.id.to_string());
        payload.insert("content_kind", content.kind.as_str());
        payload.insert("title", content.title.clone());
        payload.insert("body", content.body.as_str());
        let tags =
            serde_json::to_string(&content.tags).map_err(|e| StoreError::Backend(e.to_string()))?;
        payload.insert("tags", tags);
        self.upsert(PointStruct::new(
            point_id(tenant, KIND_CONTENT, content.id.as_str()),
            named(&content.vector),
            payload,
        ))
        .await
    }

    async fn get_content(
        &self,
        tenant: &Tenant,
        id: &ContentId,
    ) -> Result<Option<ContentRecord>, StoreError> {
        let Some(point) = self
            .get_point(point_id(tenant, KIND_CONTENT, id.as_str()), true)
            .await?
        else {
            return Ok(None);
        };
        let p = &point.payload;
        Ok(Some(ContentRecord {
            id: id.clone(),
            kind: ContentKind::from_name(&get_str(p, "content_kind")?)
                .ok_or_else(|| corrupt("content kind"))?,
            title: get_str(p, "title")?,
            body: Text::parse(get_str(p, "body")?, usize::MAX)
                .map_err(|_| corrupt("content body"))?,
            tags: serde_json::from_str(&get_str(p, "tags")?).map_err(|_| corrupt("tags"))?,
            vector: dense(&point)?,
        }))
    }

    async fn delete_content(&self, tenant: &Tenant, id: &ContentId) -> Result<bool, StoreError> {
        let point = point_id(tenant, KIND_CONTENT, id.as_str());
        if self.existing(vec![point.clone()]).await?.is_empty() {
            return Ok(false);
        }
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(PointsIdsList { ids: vec![point] })
                    .wait(true),
            )
            .await
            .map_err(backend)?;
        Ok(true)
    }

    async fn prospect_count(&self, tenant: &Tenant) -> Result<u64, StoreError> {
        self.count(Filter::must(of_tenant_kind(tenant, KIND_PROSPECT)))
            .await
    }

    async fn sample_prospects(
        &self,
        tenant: &Tenant,
        n: usize,
    ) -> Result<Vec<ProspectId>, StoreError> {
        let request = ScrollPointsBuilder::new(&self.collection)
            .filter(Filter::must(of_tenant_kind(tenant, KIND_PROSPECT)))
            .order_by(OrderBy {
                key: "sample_key".into(),
                direction: Some(Direction::Asc as i32),
                start_from: None,
            })
            .limit(n.min(u32::MAX as usize) as u32)
            .with_payload(true)
            .with_vectors(false);
        let page = self.client.scroll(request).await.map_err(backend)?;
        page.result
            .iter()
            .map(|p| {
                ProspectId::parse(get_str(&p.payload, "prospect_id")?)
                    .map_err(|_| corrupt("prospect id"))
            })
            .collect()
    }

    async fn nearest_prospects(
        &self,
        tenant: &Tenant,
        vector: &[f32],
        limit: usize,
    ) -> Result<Vec<(ProspectId, f32)>, StoreError> {
        let mut must = of_tenant_kind(tenant, KIND_SIGNAL);
        must.push(Condition::matches(
            "polarity",
            Polarity::Positive.as_str().to_owned(),
        ));
        let response = self
            .client
            .query_groups(
                QueryPointGroupsBuilder::new(&self.collection, "prospect_id")
                    .query(vector.to_vec())
                    .using(VECTOR)
                    .filter(Filter::must(must))
                    .limit(limit as u64)
                    .group_size(1u64)
                    .with_payload(false),
            )
            .await
            .map_err(backend)?;
        let groups = response.result.map(|r| r.groups).unwrap_or_default();
        groups
            .into_iter()
            .map(|g| {
                let id = match g.id.and_then(|i| i.kind) {
                    Some(group_id::Kind::StringValue(s)) => s,
                    _ => return Err(corrupt("group id")),
                };
                let best = g.hits.first().map_or(0.0, |h| h.score);
                ProspectId::parse(id)
                    .map(|id| (id, best))
                    .map_err(|_| corrupt("prospect id"))
            })
            .collect()
    }

    async fn sends(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        since: Millis,
        limit: usize,
    ) -> Result<Vec<SendRecord>, StoreError> {
        let mut must = of_tenant_kind(tenant, KIND_SEND);
        must.push(Condition::matches("prospect_id", prospect.to_string()));
        must.push(Condition::range(
            "sent_at",
            Range {
                gte: Some(since as f64),
                ..Default::default()
            },
        ));
        let points = self.scroll_all(Filter::must(must), true).await?;
        let mut sends = points
            .iter()
            .map(read_send)
            .collect::<Result<Vec<_>, StoreError>>()?;
        sends.sort_by(|a, b| {
            b.sent_at
                .cmp(&a.sent_at)
                .then_with(|| a.send_id.cmp(&b.send_id))
        });
        sends.truncate(limit);
        Ok(sends)
    }

    async fn gate_history(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        window: &HistoryWindow,
    ) -> Result<GateRead, StoreError> {
        let mut must = of_tenant_kind(tenant, KIND_ENGAGEMENT);
        must.push(Condition::matches("prospect_id", prospect.to_string()));
        must.push(Condition::matches(
            "engagement",
            EngagementKind::RepliedNegative.as_str().to_owned(),
        ));
        must.push(Condition::range(
            "at",
            Range {
                gte: Some(window.replies_since as f64),
                ..Default::default()
            },
        ));
        let (sends, replies) = tokio::join!(
            self.sends(tenant, prospect, window.sends_since, window.limit),
            self.scroll_all(Filter::must(must), false),
        );
        let mut sends = sends?;
        for send in &mut sends {
            send.text.clear();
        }
        let mut replies = replies?
            .iter()
            .map(|point| {
                Ok(EngagementRecord {
                    send_id: SendId::parse(get_str(&point.payload, "send_id")?)
                        .map_err(|_| corrupt("send id"))?,
                    kind: EngagementKind::RepliedNegative,
                    at: get_i64(&point.payload, "at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        replies.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.send_id.cmp(&b.send_id)));
        replies.truncate(window.limit);
        Ok(GateRead { sends, replies })
    }

    async fn record_send(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        send: &SendRecord,
    ) -> Result<Option<(ProspectId, SendRecord)>, StoreError> {
        // Read, then write, as record_decision: two replicas recording one send id at the same
        // instant write the same point, and one survives.
        let point = point_id(tenant, KIND_SEND, send.send_id.as_str());
        if let Some(existing) = self.get_point(point.clone(), true).await? {
            let p = &existing.payload;
            let owner = ProspectId::parse(get_str(p, "prospect_id")?)
                .map_err(|_| corrupt("prospect id"))?;
            return Ok(Some((owner, read_send(&existing)?)));
        }
        if !self.prospect_exists(tenant, prospect).await? {
            return Err(StoreError::MissingProspect);
        }
        self.upsert(send_point(tenant, prospect, send)).await?;
        Ok(None)
    }

    async fn record_engagement(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        engagement: &EngagementRecord,
    ) -> Result<(), StoreError> {
        if !self.prospect_exists(tenant, prospect).await? {
            return Err(StoreError::MissingProspect);
        }
        let key = format!(
            "{prospect}\u{1f}{}\u{1f}{}",
            engagement.send_id,
            engagement.kind.as_str()
        );
        let mut payload = base_payload(tenant, KIND_ENGAGEMENT);
        payload.insert("prospect_id", prospect.to_string());
        payload.insert("send_id", engagement.send_id.to_string());
        payload.insert("engagement", engagement.kind.as_str());
        payload.insert("at", engagement.at);
        self.upsert(PointStruct::new(
            point_id(tenant, KIND_ENGAGEMENT, &key),
            HashMap::<String, Vec<f32>>::new(),
            payload,
        ))
        .await
    }

    async fn engagements(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        limit: usize,
    ) -> Result<Vec<EngagementRecord>, StoreError> {
        let mut must = of_tenant_kind(tenant, KIND_ENGAGEMENT);
        must.push(Condition::matches("prospect_id", prospect.to_string()));
        let points = self.scroll_all(Filter::must(must), false).await?;
        let mut out = points
            .iter()
            .map(|point| {
                let p = &point.payload;
                Ok(EngagementRecord {
                    send_id: SendId::parse(get_str(p, "send_id")?)
                        .map_err(|_| corrupt("send id"))?,
                    kind: EngagementKind::from_name(&get_str(p, "engagement")?)
                        .ok_or_else(|| corrupt("engagement kind"))?,
                    at: get_i64(p, "at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.send_id.cmp(&b.send_id)));
        out.truncate(limit);
        Ok(out)
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
        // A decision already stored answers at once.
        if let Some(existing) = self.get_decision(tenant, send_id).await? {
            return Ok(Some(existing));
        }
        if !self.prospect_exists(tenant, prospect).await? {
            return Err(StoreError::MissingProspect);
        }
        if let Some(send) = send {
            // The send first: a decision is never visible without the send it let through. If
            // another replica's decision of this send id wins below and was not a SEND, this
            // send stays counted: one send too many, the safe side for a gate.
            self.client
                .upsert_points(
                    UpsertPointsBuilder::new(
                        &self.collection,
                        vec![send_point(tenant, prospect, send)],
                    )
                    .wait(true),
                )
                .await
                .map_err(backend)?;
        }
        let mut payload = base_payload(tenant, KIND_DECISION);
        payload.insert("prospect_id", prospect.to_string());
        payload.insert("send_id", send_id.to_string());
        payload.insert("body", decision);
        payload.insert("decided_at", decided_at);
        // Which write this is: two replicas can make byte-identical decisions.
        let writer = Uuid::new_v4().to_string();
        payload.insert("writer", writer.clone());
        let point = PointStruct::new(
            point_id(tenant, KIND_DECISION, send_id.as_str()),
            HashMap::<String, Vec<f32>>::new(),
            payload,
        );
        // Insert-only: of replicas deciding this send id at once, the first write wins and
        // the others change nothing; reading it back tells which one won.
        self.client
            .upsert_points(
                UpsertPointsBuilder::new(&self.collection, vec![point])
                    .update_mode(UpdateMode::InsertOnly)
                    .wait(true),
            )
            .await
            .map_err(backend)?;
        let stored = self
            .get_point(point_id(tenant, KIND_DECISION, send_id.as_str()), false)
            .await?
            .ok_or_else(|| {
                StoreError::Backend("a decision written with wait=true was not read back".into())
            })?;
        let won = get_str(&stored.payload, "writer").is_ok_and(|w| w == writer);
        if won {
            Ok(None)
        } else {
            get_str(&stored.payload, "body").map(Some)
        }
    }

    async fn get_decision(
        &self,
        tenant: &Tenant,
        send: &SendId,
    ) -> Result<Option<String>, StoreError> {
        self.get_point(point_id(tenant, KIND_DECISION, send.as_str()), false)
            .await?
            .map(|p| get_str(&p.payload, "body"))
            .transpose()
    }

    async fn put_policy(&self, tenant: &Tenant, policy: &str) -> Result<(), StoreError> {
        let mut payload = base_payload(tenant, KIND_POLICY);
        payload.insert("body", policy);
        self.upsert(PointStruct::new(
            point_id(tenant, KIND_POLICY, ""),
            HashMap::<String, Vec<f32>>::new(),
            payload,
        ))
        .await
    }

    async fn get_policy(&self, tenant: &Tenant) -> Result<Option<String>, StoreError> {
        self.get_point(point_id(tenant, KIND_POLICY, ""), false)
            .await?
            .map(|p| get_str(&p.payload, "body"))
            .transpose()
    }

    async fn put_suppression(
        &self,
        tenant: &Tenant,
        key: &str,
        entry: &str,
    ) -> Result<(), StoreError> {
        // No prospect_id in the payload: erasing the prospect (a filtered delete by
        // prospect_id) leaves the entry.
        let mut payload = base_payload(tenant, KIND_SUPPRESSION);
        payload.insert("key", key.to_owned());
        payload.insert("body", entry.to_owned());
        self.upsert(PointStruct::new(
            point_id(tenant, KIND_SUPPRESSION, key),
            HashMap::<String, Vec<f32>>::new(),
            payload,
        ))
        .await
    }

    async fn get_suppression(
        &self,
        tenant: &Tenant,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        self.get_point(point_id(tenant, KIND_SUPPRESSION, key), false)
            .await?
            .map(|p| get_str(&p.payload, "body"))
            .transpose()
    }

    async fn delete_suppression(&self, tenant: &Tenant, key: &str) -> Result<bool, StoreError> {
        let point = point_id(tenant, KIND_SUPPRESSION, key);
        if self.existing(vec![point.clone()]).await?.is_empty() {
            return Ok(false);
        }
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(PointsIdsList { ids: vec![point] })
                    .wait(true),
            )
            .await
            .map_err(backend)?;
        Ok(true)
    }

    async fn suppressions(&self) -> Result<Vec<(Tenant, String, String)>, StoreError> {
        let filter = Filter::must([Condition::matches("kind", KIND_SUPPRESSION.to_owned())]);
        self.scroll_all(filter, false)
            .await?
            .iter()
            .map(|point| {
                let p = &point.payload;
                Ok((
                    Tenant::parse(get_str(p, "tenant")?).map_err(|_| corrupt("tenant"))?,
                    get_str(p, "key")?,
                    get_str(p, "body")?,
                ))
            })
            .collect()
    }

    async fn secret(&self, name: &str) -> Result<String, StoreError> {
        let read = || async {
            self.get_point(secret_point(name), false)
                .await?
                .map(|p| get_str(&p.payload, "value"))
                .transpose()
        };
        if let Some(value) = read().await? {
            return Ok(value);
        }
        // Qdrant has no insert-if-absent: two processes making the first secret at the same
        // instant both write, and the one read back afterwards is kept by both only if their
        // writes did not interleave. Start one replica first on a new collection (docs/gate.md).
        let mut payload = Payload::new();
        payload.insert("kind", KIND_SECRET);
        payload.insert("name", name.to_owned());
        payload.insert("value", random_secret()?);
        self.upsert(PointStruct::new(
            secret_point(name),
            HashMap::<String, Vec<f32>>::new(),
            payload,
        ))
        .await?;
        read()
            .await?
            .ok_or_else(|| StoreError::Backend("a secret written was not read back".into()))
    }

    async fn purge_before(&self, before: Millis) -> Result<u64, StoreError> {
        let mut purged = 0;
        for (kind, field) in [
            (KIND_DECISION, "decided_at"),
            (KIND_SEND, "sent_at"),
            (KIND_ENGAGEMENT, "at"),
        ] {
            let filter = Filter::must([
                Condition::matches("kind", kind.to_owned()),
                Condition::range(
                    field,
                    Range {
                        lt: Some(before as f64),
                        ..Default::default()
                    },
                ),
            ]);
            purged += self.count(filter.clone()).await?;
            self.client
                .delete_points(
                    DeletePointsBuilder::new(&self.collection)
                        .points(filter)
                        .wait(true),
                )
                .await
                .map_err(backend)?;
        }
        Ok(purged)
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
