//! The gate's records as Qdrant points: sends, engagements, decisions (insert-only, so that
//! replicas agree on each send id), policies, the suppression list, deployment secrets and
//! retention; the VectorStore impl in mod.rs calls these.

use super::*;

pub(super) async fn sends(
    store: &QdrantStore,
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
    let points = store.scroll_all(Filter::must(must), true).await?;
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

pub(super) async fn gate_history(
    store: &QdrantStore,
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
        store.sends(tenant, prospect, window.sends_since, window.limit),
        store.scroll_all(Filter::must(must), false),
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

pub(super) async fn record_send(
    store: &QdrantStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    send: &SendRecord,
) -> Result<Option<(ProspectId, SendRecord)>, StoreError> {
    // Read, then write, as record_decision: two replicas recording one send id at the same
    // instant write the same point, and one survives.
    let point = point_id(tenant, KIND_SEND, send.send_id.as_str());
    if let Some(existing) = store.get_point(point.clone(), true).await? {
        let p = &existing.payload;
        let owner =
            ProspectId::parse(get_str(p, "prospect_id")?).map_err(|_| corrupt("prospect id"))?;
        return Ok(Some((owner, read_send(&existing)?)));
    }
    if !store.prospect_exists(tenant, prospect).await? {
        return Err(StoreError::MissingProspect);
    }
    store.upsert(send_point(tenant, prospect, send)).await?;
    Ok(None)
}

pub(super) async fn record_engagement(
    store: &QdrantStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    engagement: &EngagementRecord,
) -> Result<(), StoreError> {
    if !store.prospect_exists(tenant, prospect).await? {
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
    store
        .upsert(PointStruct::new(
            point_id(tenant, KIND_ENGAGEMENT, &key),
            HashMap::<String, Vec<f32>>::new(),
            payload,
        ))
        .await
}

pub(super) async fn engagements(
    store: &QdrantStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    limit: usize,
) -> Result<Vec<EngagementRecord>, StoreError> {
    let mut must = of_tenant_kind(tenant, KIND_ENGAGEMENT);
    must.push(Condition::matches("prospect_id", prospect.to_string()));
    let points = store.scroll_all(Filter::must(must), false).await?;
    let mut out = points
        .iter()
        .map(|point| {
            let p = &point.payload;
            Ok(EngagementRecord {
                send_id: SendId::parse(get_str(p, "send_id")?).map_err(|_| corrupt("send id"))?,
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

pub(super) async fn record_decision(
    store: &QdrantStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    send_id: &SendId,
    decision: &str,
    decided_at: Millis,
    send: Option<&SendRecord>,
) -> Result<Option<String>, StoreError> {
    // A decision already stored answers at once.
    if let Some(existing) = store.get_decision(tenant, send_id).await? {
        return Ok(Some(existing));
    }
    if !store.prospect_exists(tenant, prospect).await? {
        return Err(StoreError::MissingProspect);
    }
    if let Some(send) = send {
        // The send first: a decision is never visible without the send it let through. If
        // another replica's decision of this send id wins below and was not a SEND, this
        // send stays counted: one send too many, the safe side for a gate.
        store
            .client
            .upsert_points(
                UpsertPointsBuilder::new(
                    &store.collection,
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
    store
        .client
        .upsert_points(
            UpsertPointsBuilder::new(&store.collection, vec![point])
                .update_mode(UpdateMode::InsertOnly)
                .wait(true),
        )
        .await
        .map_err(backend)?;
    let stored = store
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

pub(super) async fn get_decision(
    store: &QdrantStore,
    tenant: &Tenant,
    send: &SendId,
) -> Result<Option<String>, StoreError> {
    store
        .get_point(point_id(tenant, KIND_DECISION, send.as_str()), false)
        .await?
        .map(|p| get_str(&p.payload, "body"))
        .transpose()
}

pub(super) async fn put_policy(
    store: &QdrantStore,
    tenant: &Tenant,
    policy: &str,
) -> Result<(), StoreError> {
    let mut payload = base_payload(tenant, KIND_POLICY);
    payload.insert("body", policy);
    store
        .upsert(PointStruct::new(
            point_id(tenant, KIND_POLICY, ""),
            HashMap::<String, Vec<f32>>::new(),
            payload,
        ))
        .await
}

pub(super) async fn get_policy(
    store: &QdrantStore,
    tenant: &Tenant,
) -> Result<Option<String>, StoreError> {
    store
        .get_point(point_id(tenant, KIND_POLICY, ""), false)
        .await?
        .map(|p| get_str(&p.payload, "body"))
        .transpose()
}

pub(super) async fn put_suppression(
    store: &QdrantStore,
    tenant: &Tenant,
    key: &str,
    entry: &str,
) -> Result<(), StoreError> {
    // No prospect_id in the payload: erasing the prospect (a filtered delete by
    // prospect_id) leaves the entry.
    let mut payload = base_payload(tenant, KIND_SUPPRESSION);
    payload.insert("key", key.to_owned());
    payload.insert("body", entry.to_owned());
    store
        .upsert(PointStruct::new(
            point_id(tenant, KIND_SUPPRESSION, key),
            HashMap::<String, Vec<f32>>::new(),
            payload,
        ))
        .await
}

pub(super) async fn get_suppression(
    store: &QdrantStore,
    tenant: &Tenant,
    key: &str,
) -> Result<Option<String>, StoreError> {
    store
        .get_point(point_id(tenant, KIND_SUPPRESSION, key), false)
        .await?
        .map(|p| get_str(&p.payload, "body"))
        .transpose()
}

pub(super) async fn delete_suppression(
    store: &QdrantStore,
    tenant: &Tenant,
    key: &str,
) -> Result<bool, StoreError> {
    let point = point_id(tenant, KIND_SUPPRESSION, key);
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

pub(super) async fn suppressions(
    store: &QdrantStore,
) -> Result<Vec<(Tenant, String, String)>, StoreError> {
    let filter = Filter::must([Condition::matches("kind", KIND_SUPPRESSION.to_owned())]);
    store
        .scroll_all(filter, false)
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

pub(super) async fn secret(store: &QdrantStore, name: &str) -> Result<String, StoreError> {
    let read = || async {
        store
            .get_point(secret_point(name), false)
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
    store
        .upsert(PointStruct::new(
            secret_point(name),
            HashMap::<String, Vec<f32>>::new(),
            payload,
        ))
        .await?;
    read()
        .await?
        .ok_or_else(|| StoreError::Backend("a secret written was not read back".into()))
}

pub(super) async fn purge_before(store: &QdrantStore, before: Millis) -> Result<u64, StoreError> {
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
        purged += store.count(filter.clone()).await?;
        store
            .client
            .delete_points(
                DeletePointsBuilder::new(&store.collection)
                    .points(filter)
                    .wait(true),
            )
            .await
            .map_err(backend)?;
    }
    Ok(purged)
}
