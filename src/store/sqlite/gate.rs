//! The gate's records in SQLite: sends, engagements, decisions, policies, the suppression
//! list, deployment secrets and retention; the VectorStore impl in mod.rs calls these.

use super::*;

pub(super) async fn sends(
    store: &SqliteStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    since: Millis,
    limit: usize,
) -> Result<Vec<SendRecord>, StoreError> {
    let tenant = tenant.to_string();
    let prospect = prospect.to_string();
    store
        .read(move |conn| read_sends(conn, &tenant, &prospect, since, limit, true))
        .await
}

pub(super) async fn gate_history(
    store: &SqliteStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    window: &HistoryWindow,
) -> Result<GateRead, StoreError> {
    let tenant = tenant.to_string();
    let prospect = prospect.to_string();
    let w = *window;
    // One read transaction, so that both lists are of one moment.
    store
        .read(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let sends = read_sends(&tx, &tenant, &prospect, w.sends_since, w.limit, false)?;
            let replies = read_replies(&tx, &tenant, &prospect, w.replies_since, w.limit)?;
            tx.commit().map_err(backend)?;
            Ok(GateRead { sends, replies })
        })
        .await
}

pub(super) async fn record_send(
    store: &SqliteStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    send: &SendRecord,
) -> Result<Option<(ProspectId, SendRecord)>, StoreError> {
    let tenant = tenant.to_string();
    let prospect = prospect.to_string();
    let send = send.clone();
    store.write(move |conn| {
        if !prospect_exists(conn, &tenant, &prospect)? {
            return Err(StoreError::MissingProspect);
        }
        let existing = query_row_cached(
            conn,
            "SELECT prospect_id, decision_id, candidate_id, channel, sent_at, text, vector
             FROM sends WHERE tenant = ?1 AND send_id = ?2",
            params![tenant, send.send_id.as_str()],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    SendRecord {
                        send_id: send.send_id.clone(),
                        decision_id: r.get(1)?,
                        candidate_id: r.get(2)?,
                        channel: r.get(3)?,
                        sent_at: r.get(4)?,
                        text: r.get(5)?,
                        vector: from_blob(&r.get::<_, Vec<u8>>(6)?),
                    },
                ))
            },
        )
        .optional()
        .map_err(backend)?;
        if let Some((owner, first)) = existing {
            let owner = ProspectId::parse(owner).map_err(|_| corrupt("prospect id"))?;
            return Ok(Some((owner, first)));
        }
        execute_cached(
            conn,
            "INSERT INTO sends
               (tenant, send_id, prospect_id, decision_id, candidate_id, channel, sent_at, text, vector)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                tenant,
                send.send_id.as_str(),
                prospect,
                send.decision_id,
                send.candidate_id,
                send.channel,
                send.sent_at,
                send.text,
                to_blob(&send.vector)
            ],
        )
        .map_err(backend)?;
        Ok(None)
    })
    .await
}

pub(super) async fn record_engagement(
    store: &SqliteStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    engagement: &EngagementRecord,
) -> Result<(), StoreError> {
    let tenant = tenant.to_string();
    let prospect = prospect.to_string();
    let e = engagement.clone();
    store
        .write(move |conn| {
            let tx = conn;
            if !prospect_exists(tx, &tenant, &prospect)? {
                return Err(StoreError::MissingProspect);
            }
            execute_cached(
                tx,
                "INSERT INTO engagements (tenant, prospect_id, send_id, kind, at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant, prospect_id, send_id, kind) DO UPDATE SET at = excluded.at",
                params![tenant, prospect, e.send_id.as_str(), e.kind.as_str(), e.at],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
}

pub(super) async fn engagements(
    store: &SqliteStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    limit: usize,
) -> Result<Vec<EngagementRecord>, StoreError> {
    let tenant = tenant.to_string();
    let prospect = prospect.to_string();
    store
        .read(move |conn| read_engagements(conn, &tenant, &prospect, limit))
        .await
}

pub(super) async fn record_decision(
    store: &SqliteStore,
    tenant: &Tenant,
    prospect: &ProspectId,
    send_id: &SendId,
    decision: &str,
    decided_at: Millis,
    send: Option<&SendRecord>,
) -> Result<Option<String>, StoreError> {
    let tenant = tenant.to_string();
    let prospect = prospect.to_string();
    let send_id = send_id.to_string();
    let decision = decision.to_owned();
    let send = send.cloned();
    // Most checks write a decision and no send: one statement, which is atomic without a
    // savepoint. It inserts only for an existing prospect and a new send id.
    store.write_with(send.is_some(), move |conn| {
        let inserted = execute_cached(
            conn,
            "INSERT INTO decisions (tenant, send_id, prospect_id, body, decided_at)
             SELECT ?1, ?2, ?3, ?4, ?5
             WHERE EXISTS (SELECT 1 FROM prospects WHERE tenant = ?1 AND id = ?3)
             ON CONFLICT (tenant, send_id) DO NOTHING",
            params![tenant, send_id, prospect, decision, decided_at],
        )
        .map_err(backend)?;
        if inserted == 0 {
            let existing: Option<String> = query_row_cached(
                conn,
                "SELECT body FROM decisions WHERE tenant = ?1 AND send_id = ?2",
                params![tenant, send_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
            return match existing {
                Some(first) => Ok(Some(first)),
                None => Err(StoreError::MissingProspect),
            };
        }
        if let Some(send) = send {
            execute_cached(
                conn,
                "INSERT INTO sends
                   (tenant, send_id, prospect_id, decision_id, candidate_id, channel, sent_at, text, vector)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (tenant, send_id) DO NOTHING",
                params![
                    tenant,
                    send.send_id.as_str(),
                    prospect,
                    send.decision_id,
                    send.candidate_id,
                    send.channel,
                    send.sent_at,
                    send.text,
                    to_blob(&send.vector)
                ],
            )
            .map_err(backend)?;
        }
        Ok(None)
    })
    .await
}

pub(super) async fn get_decision(
    store: &SqliteStore,
    tenant: &Tenant,
    send: &SendId,
) -> Result<Option<String>, StoreError> {
    let tenant = tenant.to_string();
    let send = send.to_string();
    store
        .read(move |conn| {
            query_row_cached(
                conn,
                "SELECT body FROM decisions WHERE tenant = ?1 AND send_id = ?2",
                params![tenant, send],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
}

pub(super) async fn put_policy(
    store: &SqliteStore,
    tenant: &Tenant,
    policy: &str,
) -> Result<(), StoreError> {
    let tenant = tenant.to_string();
    let policy = policy.to_owned();
    store
        .write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO policies (tenant, body) VALUES (?1, ?2)
             ON CONFLICT (tenant) DO UPDATE SET body = excluded.body",
                params![tenant, policy],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
}

pub(super) async fn get_policy(
    store: &SqliteStore,
    tenant: &Tenant,
) -> Result<Option<String>, StoreError> {
    let tenant = tenant.to_string();
    store
        .read(move |conn| {
            query_row_cached(
                conn,
                "SELECT body FROM policies WHERE tenant = ?1",
                params![tenant],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
}

pub(super) async fn put_suppression(
    store: &SqliteStore,
    tenant: &Tenant,
    key: &str,
    entry: &str,
) -> Result<(), StoreError> {
    let (tenant, key, entry) = (tenant.to_string(), key.to_owned(), entry.to_owned());
    store
        .write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO suppressions (tenant, key, entry) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant, key) DO UPDATE SET entry = excluded.entry",
                params![tenant, key, entry],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
}

pub(super) async fn get_suppression(
    store: &SqliteStore,
    tenant: &Tenant,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let (tenant, key) = (tenant.to_string(), key.to_owned());
    store
        .read(move |conn| {
            query_row_cached(
                conn,
                "SELECT entry FROM suppressions WHERE tenant = ?1 AND key = ?2",
                params![tenant, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
}

pub(super) async fn delete_suppression(
    store: &SqliteStore,
    tenant: &Tenant,
    key: &str,
) -> Result<bool, StoreError> {
    let (tenant, key) = (tenant.to_string(), key.to_owned());
    store
        .write(move |conn| {
            let n = execute_cached(
                conn,
                "DELETE FROM suppressions WHERE tenant = ?1 AND key = ?2",
                params![tenant, key],
            )
            .map_err(backend)?;
            Ok(n > 0)
        })
        .await
}

pub(super) async fn suppressions(
    store: &SqliteStore,
) -> Result<Vec<(Tenant, String, String)>, StoreError> {
    store
        .scan(|conn| {
            let mut select = conn
                .prepare("SELECT tenant, key, entry FROM suppressions ORDER BY tenant, key")
                .map_err(backend)?;
            let mut rows = select.query([]).map_err(backend)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(backend)? {
                let tenant: String = r.get(0).map_err(backend)?;
                out.push((
                    Tenant::parse(tenant).map_err(|_| corrupt("tenant"))?,
                    r.get(1).map_err(backend)?,
                    r.get(2).map_err(backend)?,
                ));
            }
            Ok(out)
        })
        .await
}

pub(super) async fn secret(store: &SqliteStore, name: &str) -> Result<String, StoreError> {
    let key = format!("secret:{name}");
    let fresh = random_secret()?;
    // One statement each in the writer's transaction: the first caller's value stays.
    store
        .write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, fresh],
            )
            .map_err(backend)?;
            query_row_cached(
                conn,
                "SELECT value FROM meta WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .map_err(backend)
        })
        .await
}

pub(super) async fn purge_before(store: &SqliteStore, before: Millis) -> Result<u64, StoreError> {
    store
        .write(move |conn| {
            let mut purged = 0u64;
            for (table, column) in [
                ("decisions", "decided_at"),
                ("sends", "sent_at"),
                ("engagements", "at"),
            ] {
                purged += execute_cached(
                    conn,
                    &format!("DELETE FROM {table} WHERE {column} < ?1"),
                    params![before],
                )
                .map_err(backend)? as u64;
            }
            Ok(purged)
        })
        .await
}
