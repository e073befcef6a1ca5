//! Prospects, their signals and content pieces in SQLite, and the tenant-wide reads
//! (counts, the baseline sample, FindAudience's scan); the VectorStore impl in mod.rs calls
//! these.

use super::*;

pub(super) async fn upsert_prospect(
    store: &SqliteStore,
    tenant: &Tenant,
    prospect: &ProspectRecord,
) -> Result<(), StoreError> {
    let tenant = tenant.to_string();
    let p = prospect.clone();
    store
        .write(move |conn| {
            let attributes = serde_json::to_string(&p.attributes)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            execute_cached(
                conn,
                "INSERT INTO prospects (tenant, id, name, company, role, attributes, sample_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (tenant, id) DO UPDATE SET
               name = excluded.name, company = excluded.company, role = excluded.role,
               attributes = excluded.attributes",
                params![
                    tenant,
                    p.id.as_str(),
                    p.name,
                    p.company,
                    p.role,
                    attributes,
                    sample_key(&p.id)
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
}

pub(super) async fn get_prospect(
    store: &SqliteStore,
    tenant: &Tenant,
    id: &ProspectId,
) -> Result<Option<ProspectSummary>, StoreError> {
    let tenant = tenant.to_string();
    let id = id.clone();
    store
        .read(move |conn| {
            let row = query_row_cached(
                conn,
                "SELECT name, company, role, attributes FROM prospects
                 WHERE tenant = ?1 AND id = ?2",
                params![tenant, id.as_str()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(backend)?;
            let Some((name, company, role, attributes)) = row else {
                return Ok(None);
            };
            let attributes: BTreeMap<String, String> =
                serde_json::from_str(&attributes).map_err(|_| corrupt("attributes"))?;
            let signal_count = signal_count(conn, &tenant, id.as_str())?;
            Ok(Some(ProspectSummary {
                prospect: ProspectRecord {
                    id,
                    name,
                    company,
                    role,
                    attributes,
                },
                signal_count,
            }))
        })
        .await
}

pub(super) async fn delete_prospect(
    store: &SqliteStore,
    tenant: &Tenant,
    id: &ProspectId,
) -> Result<Option<u32>, StoreError> {
    let tenant = tenant.to_string();
    let id = id.to_string();
    let erased = store.erased.clone();
    store
        .write(move |conn| {
            erased.store(true, Ordering::SeqCst);
            let tx = conn;
            let signals = execute_cached(
                tx,
                "DELETE FROM signals WHERE tenant = ?1 AND prospect_id = ?2",
                params![tenant, id],
            )
            .map_err(backend)?;
            for table in ["sends", "engagements", "decisions"] {
                execute_cached(
                    tx,
                    &format!("DELETE FROM {table} WHERE tenant = ?1 AND prospect_id = ?2"),
                    params![tenant, id],
                )
                .map_err(backend)?;
            }
            let prospects = execute_cached(
                tx,
                "DELETE FROM prospects WHERE tenant = ?1 AND id = ?2",
                params![tenant, id],
            )
            .map_err(backend)?;
            Ok((prospects > 0).then_some(signals as u32))
        })
        .await
}

pub(super) async fn upsert_signals(
    store: &SqliteStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    signals: &[SignalRecord],
) -> Result<SignalWrite, StoreError> {
    let tenant = tenant.to_string();
    let prospect = prospect.to_string();
    let signals = signals.to_vec();
    let dimension = store.dimension;
    store.write(move |conn| {
        let tx = conn;
        if !prospect_exists(tx, &tenant, &prospect)? {
            return Err(StoreError::MissingProspect);
        }
        let mut write = SignalWrite::default();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO signals
                       (tenant, prospect_id, id, source, polarity, observed_at, weight, text, vector)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (tenant, prospect_id, id) DO UPDATE SET
                       source = excluded.source, polarity = excluded.polarity,
                       observed_at = excluded.observed_at, weight = excluded.weight,
                       text = excluded.text, vector = excluded.vector",
                )
                .map_err(backend)?;
            let mut exists = tx
                .prepare_cached(
                    "SELECT 1 FROM signals WHERE tenant = ?1 AND prospect_id = ?2 AND id = ?3",
                )
                .map_err(backend)?;
            for s in &signals {
                if s.vector.len() != dimension {
                    return Err(StoreError::DimensionMismatch {
                        expected: dimension,
                        found: s.vector.len(),
                    });
                }
                let existed = exists
                    .exists(params![tenant, prospect, s.id.as_str()])
                    .map_err(backend)?;
                insert
                    .execute(params![
                        tenant,
                        prospect,
                        s.id.as_str(),
                        s.source.as_str(),
                        s.polarity.as_str(),
                        s.observed_at,
                        s.weight.get(),
                        s.text.as_str(),
                        to_blob(&s.vector),
                    ])
                    .map_err(backend)?;
                if existed {
                    write.replaced += 1;
                } else {
                    write.added += 1;
                }
            }
        }
        write.total = signal_count(tx, &tenant, &prospect)?;
        Ok(write)
    })
    .await
}

pub(super) async fn delete_signals(
    store: &SqliteStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    ids: &[SignalId],
) -> Result<(u32, u32), StoreError> {
    let tenant = tenant.to_string();
    let prospect = prospect.to_string();
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let erased = store.erased.clone();
    store
        .write(move |conn| {
            erased.store(true, Ordering::SeqCst);
            let tx = conn;
            if !prospect_exists(tx, &tenant, &prospect)? {
                return Err(StoreError::MissingProspect);
            }
            let mut deleted = 0;
            {
                let mut delete = tx
                    .prepare_cached(
                        "DELETE FROM signals WHERE tenant = ?1 AND prospect_id = ?2 AND id = ?3",
                    )
                    .map_err(backend)?;
                for id in &ids {
                    deleted += delete
                        .execute(params![tenant, prospect, id])
                        .map_err(backend)? as u32;
                }
            }
            let remaining = signal_count(tx, &tenant, &prospect)?;
            Ok((deleted, remaining))
        })
        .await
}

pub(super) async fn prospect_signals(
    store: &SqliteStore,
    tenant: &Tenant,
    prospect: &ProspectId,
) -> Result<Option<Vec<SignalRecord>>, StoreError> {
    let tenant = tenant.to_string();
    let prospect = prospect.to_string();
    store
        .read(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            if !prospect_exists(&tx, &tenant, &prospect)? {
                return Ok(None);
            }
            let mut out = Vec::new();
            {
                let mut select = tx
                    .prepare_cached(
                        "SELECT id, source, polarity, observed_at, weight, text, vector
                     FROM signals WHERE tenant = ?1 AND prospect_id = ?2 ORDER BY id",
                    )
                    .map_err(backend)?;
                let mut rows = select.query(params![tenant, prospect]).map_err(backend)?;
                while let Some(row) = rows.next().map_err(backend)? {
                    out.push(read_signal(row)?);
                }
            }
            tx.commit().map_err(backend)?;
            Ok(Some(out))
        })
        .await
}

pub(super) async fn upsert_content(
    store: &SqliteStore,
    tenant: &Tenant,
    content: &ContentRecord,
) -> Result<(), StoreError> {
    let tenant = tenant.to_string();
    let c = content.clone();
    store
        .write(move |conn| {
            let tags =
                serde_json::to_string(&c.tags).map_err(|e| StoreError::Backend(e.to_string()))?;
            execute_cached(
                conn,
                "INSERT INTO content (tenant, id, kind, title, body, tags, vector)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (tenant, id) DO UPDATE SET
               kind = excluded.kind, title = excluded.title, body = excluded.body,
               tags = excluded.tags, vector = excluded.vector",
                params![
                    tenant,
                    c.id.as_str(),
                    c.kind.as_str(),
                    c.title,
                    c.body.as_str(),
                    tags,
                    to_blob(&c.vector)
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
}

pub(super) async fn get_content(
    store: &SqliteStore,
    tenant: &Tenant,
    id: &ContentId,
) -> Result<Option<ContentRecord>, StoreError> {
    let tenant = tenant.to_string();
    let id = id.clone();
    store
        .read(move |conn| {
            let row = query_row_cached(
                conn,
                "SELECT kind, title, body, tags, vector FROM content
                 WHERE tenant = ?1 AND id = ?2",
                params![tenant, id.as_str()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(backend)?;
            let Some((kind, title, body, tags, vector)) = row else {
                return Ok(None);
            };
            Ok(Some(ContentRecord {
                id,
                kind: ContentKind::from_name(&kind).ok_or_else(|| corrupt("content kind"))?,
                title,
                body: Text::parse(body, usize::MAX).map_err(|_| corrupt("content body"))?,
                tags: serde_json::from_str(&tags).map_err(|_| corrupt("content tags"))?,
                vector: from_blob(&vector),
            }))
        })
        .await
}

pub(super) async fn delete_content(
    store: &SqliteStore,
    tenant: &Tenant,
    id: &ContentId,
) -> Result<bool, StoreError> {
    let tenant = tenant.to_string();
    let id = id.to_string();
    let erased = store.erased.clone();
    store
        .write(move |conn| {
            erased.store(true, Ordering::SeqCst);
            let n = execute_cached(
                conn,
                "DELETE FROM content WHERE tenant = ?1 AND id = ?2",
                params![tenant, id],
            )
            .map_err(backend)?;
            Ok(n > 0)
        })
        .await
}

pub(super) async fn prospect_count(
    store: &SqliteStore,
    tenant: &Tenant,
) -> Result<u64, StoreError> {
    let tenant = tenant.to_string();
    store
        .read(move |conn| {
            query_row_cached(
                conn,
                "SELECT COUNT(*) FROM prospects WHERE tenant = ?1",
                params![tenant],
                |r| r.get::<_, i64>(0).map(|n| n.max(0) as u64),
            )
            .map_err(backend)
        })
        .await
}

pub(super) async fn sample_prospects(
    store: &SqliteStore,
    tenant: &Tenant,
    n: usize,
) -> Result<Vec<ProspectId>, StoreError> {
    let tenant = tenant.to_string();
    store
        .read(move |conn| {
            let mut select = conn
                .prepare_cached(
                    "SELECT id FROM prospects WHERE tenant = ?1 ORDER BY sample_key, id LIMIT ?2",
                )
                .map_err(backend)?;
            let ids = select
                .query_map(params![tenant, n as i64], |r| r.get::<_, String>(0))
                .map_err(backend)?
                .map(|r| {
                    r.map_err(backend)
                        .and_then(|s| ProspectId::parse(s).map_err(|_| corrupt("prospect id")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ids)
        })
        .await
}

pub(super) async fn nearest_prospects(
    store: &SqliteStore,
    tenant: &Tenant,
    vector: &[f32],
    limit: usize,
) -> Result<Vec<(ProspectId, f32)>, StoreError> {
    let tenant = tenant.to_string();
    let query = vector.to_vec();
    store
        .scan(move |conn| {
            let mut select = conn
                .prepare_cached(
                    "SELECT prospect_id, vector FROM signals
                 WHERE tenant = ?1 AND polarity = 'positive'",
                )
                .map_err(backend)?;
            let mut best: HashMap<String, f32> = HashMap::new();
            let mut rows = select.query(params![tenant]).map_err(backend)?;
            let mut buf = Vec::with_capacity(query.len());
            while let Some(row) = rows.next().map_err(backend)? {
                let prospect: String = row.get(0).map_err(backend)?;
                let blob = row
                    .get_ref(1)
                    .map_err(backend)?
                    .as_blob()
                    .map_err(|_| corrupt("vector"))?;
                buf.clear();
                buf.extend(
                    blob.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
                let sim = dot(&query, &buf);
                best.entry(prospect)
                    .and_modify(|b| *b = b.max(sim))
                    .or_insert(sim);
            }
            let mut ranked: Vec<(String, f32)> = best.into_iter().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            ranked.truncate(limit);
            ranked
                .into_iter()
                .map(|(id, s)| {
                    ProspectId::parse(id)
                        .map(|id| (id, s))
                        .map_err(|_| corrupt("prospect id"))
                })
                .collect()
        })
        .await
}
