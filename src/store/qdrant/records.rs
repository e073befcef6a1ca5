//! Prospects, their signals and content pieces as Qdrant points, and the tenant-wide reads
//! (counts, the baseline sample, FindAudience's search); the VectorStore impl in mod.rs calls
//! these.

use super::*;

pub(super) async fn upsert_prospect(
    store: &QdrantStore,
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
    store
        .upsert(PointStruct::new(
            point_id(tenant, KIND_PROSPECT, prospect.id.as_str()),
            HashMap::<String, Vec<f32>>::new(),
            payload,
        ))
        .await
}

pub(super) async fn get_prospect(
    store: &QdrantStore,
    tenant: &Tenant,
    id: &ProspectId,
) -> Result<Option<ProspectSummary>, StoreError> {
    let Some(point) = store
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
    let signal_count = store.signal_count(tenant, id).await?;
    Ok(Some(ProspectSummary {
        prospect,
        signal_count,
    }))
}

pub(super) async fn delete_prospect(
    store: &QdrantStore,
    tenant: &Tenant,
    id: &ProspectId,
) -> Result<Option<u32>, StoreError> {
    let existed = store.prospect_exists(tenant, id).await?;
    let signals = store.signal_count(tenant, id).await?;
    // Everything of the prospect's carries its id: one filtered delete erases it all,
    // orphans of an interrupted earlier write included.
    let filter = Filter::must([
        Condition::matches("tenant", tenant.to_string()),
        Condition::matches("prospect_id", id.to_string()),
    ]);
    store
        .client
        .delete_points(
            DeletePointsBuilder::new(&store.collection)
                .points(filter)
                .wait(true),
        )
        .await
        .map_err(backend)?;
    Ok(existed.then_some(signals))
}

pub(super) async fn upsert_signals(
    store: &QdrantStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    signals: &[SignalRecord],
) -> Result<SignalWrite, StoreError> {
    if !store.prospect_exists(tenant, prospect).await? {
        return Err(StoreError::MissingProspect);
    }
    if let Some(bad) = signals.iter().find(|s| s.vector.len() != store.dimension) {
        return Err(StoreError::DimensionMismatch {
            expected: store.dimension,
            found: bad.vector.len(),
        });
    }
    let ids: Vec<PointId> = signals
        .iter()
        .map(|s| signal_point(tenant, prospect, &s.id))
        .collect();
    let replaced = store.existing(ids.clone()).await?.len() as u32;
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
    store
        .client
        .upsert_points(UpsertPointsBuilder::new(&store.collection, points).wait(true))
        .await
        .map_err(backend)?;
    Ok(SignalWrite {
        added: signals.len() as u32 - replaced,
        replaced,
        total: store.signal_count(tenant, prospect).await?,
    })
}

pub(super) async fn delete_signals(
    store: &QdrantStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    ids: &[SignalId],
) -> Result<(u32, u32), StoreError> {
    if !store.prospect_exists(tenant, prospect).await? {
        return Err(StoreError::MissingProspect);
    }
    let points: Vec<PointId> = ids
        .iter()
        .map(|s| signal_point(tenant, prospect, s))
        .collect();
    let existing = store.existing(points).await?;
    let deleted = existing.len() as u32;
    if !existing.is_empty() {
        store
            .client
            .delete_points(
                DeletePointsBuilder::new(&store.collection)
                    .points(PointsIdsList { ids: existing })
                    .wait(true),
            )
            .await
            .map_err(backend)?;
    }
    Ok((deleted, store.signal_count(tenant, prospect).await?))
}

pub(super) async fn prospect_signals(
    store: &QdrantStore,
    tenant: &Tenant,
    prospect: &ProspectId,
) -> Result<Option<Vec<SignalRecord>>, StoreError> {
    if !store.prospect_exists(tenant, prospect).await? {
        return Ok(None);
    }
    let points = store
        .scroll_all(prospect_signals_filter(tenant, prospect), true)
        .await?;
    let mut signals = points
        .iter()
        .map(read_signal)
        .collect::<Result<Vec<_>, _>>()?;
    signals.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Some(signals))
}

pub(super) async fn upsert_content(
    store: &QdrantStore,
    tenant: &Tenant,
    content: &ContentRecord,
) -> Result<(), StoreError> {
    if content.vector.len() != store.dimension {
        return Err(StoreError::DimensionMismatch {
            expected: store.dimension,
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
    store
        .upsert(PointStruct::new(
            point_id(tenant, KIND_CONTENT, content.id.as_str()),
            named(&content.vector),
            payload,
        ))
        .await
}

pub(super) async fn get_content(
    store: &QdrantStore,
    tenant: &Tenant,
    id: &ContentId,
) -> Result<Option<ContentRecord>, StoreError> {
    let Some(point) = store
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
        body: Text::parse(get_str(p, "body")?, usize::MAX).map_err(|_| corrupt("content body"))?,
        tags: serde_json::from_str(&get_str(p, "tags")?).map_err(|_| corrupt("tags"))?,
        vector: dense(&point)?,
    }))
}

pub(super) async fn delete_content(
    store: &QdrantStore,
    tenant: &Tenant,
    id: &ContentId,
) -> Result<bool, StoreError> {
    let point = point_id(tenant, KIND_CONTENT, id.as_str());
    if store.existing(vec![point.clone()]).await?.is_empty() {
        return Ok(false);
    }
    store
        .client
        .delete_points(
            DeletePointsBuilder::new(&store.collection)
                .points(PointsIdsList { ids: vec![point] })
                .wait(true),
        )
        .await
        .map_err(backend)?;
    Ok(true)
}

pub(super) async fn prospect_count(
    store: &QdrantStore,
    tenant: &Tenant,
) -> Result<u64, StoreError> {
    store
        .count(Filter::must(of_tenant_kind(tenant, KIND_PROSPECT)))
        .await
}

pub(super) async fn sample_prospects(
    store: &QdrantStore,
    tenant: &Tenant,
    n: usize,
) -> Result<Vec<ProspectId>, StoreError> {
    let request = ScrollPointsBuilder::new(&store.collection)
        .filter(Filter::must(of_tenant_kind(tenant, KIND_PROSPECT)))
        .order_by(OrderBy {
            key: "sample_key".into(),
            direction: Some(Direction::Asc as i32),
            start_from: None,
        })
        .limit(n.min(u32::MAX as usize) as u32)
        .with_payload(true)
        .with_vectors(false);
    let page = store.client.scroll(request).await.map_err(backend)?;
    page.result
        .iter()
        .map(|p| {
            ProspectId::parse(get_str(&p.payload, "prospect_id")?)
                .map_err(|_| corrupt("prospect id"))
        })
        .collect()
}

pub(super) async fn nearest_prospects(
    store: &QdrantStore,
    tenant: &Tenant,
    vector: &[f32],
    limit: usize,
) -> Result<Vec<(ProspectId, f32)>, StoreError> {
    let mut must = of_tenant_kind(tenant, KIND_SIGNAL);
    must.push(Condition::matches(
        "polarity",
        Polarity::Positive.as_str().to_owned(),
    ));
    let response = store
        .client
        .query_groups(
            QueryPointGroupsBuilder::new(&store.collection, "prospect_id")
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
