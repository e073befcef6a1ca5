//! Rows to records and back: the shared reads (sends, replies, engagements, signals), blobs and
//! the adapter's error mapping.

use super::*;

/// The prospect's sends at or after `since`, newest first; texts only `with_text`.
pub(super) fn read_sends(
    conn: &Connection,
    tenant: &str,
    prospect: &str,
    since: Millis,
    limit: usize,
    with_text: bool,
) -> Result<Vec<SendRecord>, StoreError> {
    let sql = if with_text {
        "SELECT send_id, decision_id, candidate_id, channel, sent_at, text, vector
         FROM sends WHERE tenant = ?1 AND prospect_id = ?2 AND sent_at >= ?3
         ORDER BY sent_at DESC, send_id LIMIT ?4"
    } else {
        "SELECT send_id, decision_id, candidate_id, channel, sent_at, '', vector
         FROM sends WHERE tenant = ?1 AND prospect_id = ?2 AND sent_at >= ?3
         ORDER BY sent_at DESC, send_id LIMIT ?4"
    };
    let mut select = conn.prepare_cached(sql).map_err(backend)?;
    let mut rows = select
        .query(params![tenant, prospect, since, limit as i64])
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let send_id: String = r.get(0).map_err(backend)?;
        let blob: Vec<u8> = r.get(6).map_err(backend)?;
        out.push(SendRecord {
            send_id: SendId::parse(send_id).map_err(|_| corrupt("send id"))?,
            decision_id: r.get(1).map_err(backend)?,
            candidate_id: r.get(2).map_err(backend)?,
            channel: r.get(3).map_err(backend)?,
            sent_at: r.get(4).map_err(backend)?,
            text: r.get(5).map_err(backend)?,
            vector: from_blob(&blob),
        });
    }
    Ok(out)
}

/// The prospect's negative replies at or after `since`, newest first.
pub(super) fn read_replies(
    conn: &Connection,
    tenant: &str,
    prospect: &str,
    since: Millis,
    limit: usize,
) -> Result<Vec<EngagementRecord>, StoreError> {
    let mut select = conn
        .prepare_cached(
            "SELECT send_id, at FROM engagements
             WHERE tenant = ?1 AND prospect_id = ?2 AND kind = ?3 AND at >= ?4
             ORDER BY at DESC, send_id LIMIT ?5",
        )
        .map_err(backend)?;
    let mut rows = select
        .query(params![
            tenant,
            prospect,
            EngagementKind::RepliedNegative.as_str(),
            since,
            limit as i64
        ])
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let send_id: String = r.get(0).map_err(backend)?;
        out.push(EngagementRecord {
            send_id: SendId::parse(send_id).map_err(|_| corrupt("send id"))?,
            kind: EngagementKind::RepliedNegative,
            at: r.get(1).map_err(backend)?,
        });
    }
    Ok(out)
}

/// The prospect's engagements, newest first.
pub(super) fn read_engagements(
    conn: &Connection,
    tenant: &str,
    prospect: &str,
    limit: usize,
) -> Result<Vec<EngagementRecord>, StoreError> {
    let mut select = conn
        .prepare_cached(
            "SELECT send_id, kind, at FROM engagements
             WHERE tenant = ?1 AND prospect_id = ?2
             ORDER BY at DESC, send_id, kind LIMIT ?3",
        )
        .map_err(backend)?;
    let mut rows = select
        .query(params![tenant, prospect, limit as i64])
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let send_id: String = r.get(0).map_err(backend)?;
        let kind: String = r.get(1).map_err(backend)?;
        out.push(EngagementRecord {
            send_id: SendId::parse(send_id).map_err(|_| corrupt("send id"))?,
            kind: EngagementKind::from_name(&kind).ok_or_else(|| corrupt("engagement kind"))?,
            at: r.get(2).map_err(backend)?,
        });
    }
    Ok(out)
}

pub(super) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(super) fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub(super) fn prospect_exists(tx: &Connection, tenant: &str, id: &str) -> Result<bool, StoreError> {
    tx.prepare_cached("SELECT 1 FROM prospects WHERE tenant = ?1 AND id = ?2")
        .and_then(|mut s| s.exists(params![tenant, id]))
        .map_err(backend)
}

pub(super) fn signal_count(conn: &Connection, tenant: &str, id: &str) -> Result<u32, StoreError> {
    query_row_cached(
        conn,
        "SELECT COUNT(*) FROM signals WHERE tenant = ?1 AND prospect_id = ?2",
        params![tenant, id],
        |r| r.get::<_, u32>(0),
    )
    .map_err(backend)
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt stored {what}"))
}

pub(super) fn read_signal(row: &rusqlite::Row<'_>) -> Result<SignalRecord, StoreError> {
    let id: String = row.get(0).map_err(backend)?;
    let source: String = row.get(1).map_err(backend)?;
    let polarity: String = row.get(2).map_err(backend)?;
    let text: String = row.get(5).map_err(backend)?;
    let blob: Vec<u8> = row.get(6).map_err(backend)?;
    Ok(SignalRecord {
        id: SignalId::parse(id).map_err(|_| corrupt("signal id"))?,
        source: SignalSource::from_name(&source).ok_or_else(|| corrupt("signal source"))?,
        polarity: Polarity::from_name(&polarity).ok_or_else(|| corrupt("signal polarity"))?,
        observed_at: row.get(3).map_err(backend)?,
        weight: Weight::parse(row.get(4).map_err(backend)?).map_err(|_| corrupt("weight"))?,
        text: Text::parse(text, usize::MAX).map_err(|_| corrupt("signal text"))?,
        vector: from_blob(&blob),
    })
}
