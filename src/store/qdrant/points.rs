//! How pertinent's records are Qdrant points: point ids, payload fields and their readers,
//! the vector's name, and the mapping of qdrant-client errors to store errors.

use super::*;

/// The name of the dense vector in the collection.
pub(super) const VECTOR: &str = "text";
/// Page size of scrolls.
pub(super) const PAGE: u32 = 512;
/// Namespace of the UUIDv5 point ids (a fixed random UUID: changing it orphans every point).
pub(super) const NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_3c2e_9b4d_4e57_8c0a_51d2_7f3b_9e64);

pub(super) const KIND_PROSPECT: &str = "prospect";
pub(super) const KIND_SIGNAL: &str = "signal";
pub(super) const KIND_CONTENT: &str = "content";
pub(super) const KIND_SEND: &str = "send";
pub(super) const KIND_ENGAGEMENT: &str = "engagement";
pub(super) const KIND_DECISION: &str = "decision";
pub(super) const KIND_POLICY: &str = "policy";
pub(super) const KIND_SUPPRESSION: &str = "suppression";
pub(super) const KIND_SECRET: &str = "secret";

pub(super) fn backend(e: QdrantError) -> StoreError {
    match &e {
        QdrantError::ResponseError { status }
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ) || unreachable(status) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// qdrant-client reports a connection it could not make as INTERNAL ("Failed to connect to
/// ..."), and a connection that broke as UNKNOWN with a transport error: the server is
/// unreachable, which is not a bug of the request.
pub(super) fn unreachable(status: &tonic::Status) -> bool {
    let message = status.message();
    match status.code() {
        tonic::Code::Internal => message.starts_with("Failed to connect to"),
        tonic::Code::Unknown => message.contains("transport error"),
        _ => false,
    }
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("corrupt stored {what}"))
}

/// The point id of (tenant, kind, id).
pub(super) fn point_id(tenant: &Tenant, kind: &str, id: &str) -> PointId {
    let name = format!("{tenant}\u{1f}{kind}\u{1f}{id}");
    PointId::from(Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string())
}

pub(super) fn signal_point(tenant: &Tenant, prospect: &ProspectId, signal: &SignalId) -> PointId {
    point_id(tenant, KIND_SIGNAL, &format!("{prospect}\u{1f}{signal}"))
}

pub(super) fn of_tenant_kind(tenant: &Tenant, kind: &str) -> Vec<Condition> {
    vec![
        Condition::matches("tenant", tenant.to_string()),
        Condition::matches("kind", kind.to_owned()),
    ]
}

pub(super) fn prospect_signals_filter(tenant: &Tenant, prospect: &ProspectId) -> Filter {
    let mut must = of_tenant_kind(tenant, KIND_SIGNAL);
    must.push(Condition::matches("prospect_id", prospect.to_string()));
    Filter::must(must)
}

pub(super) fn get_str(p: &HashMap<String, Value>, key: &str) -> Result<String, StoreError> {
    match p.get(key).and_then(|v| v.kind.as_ref()) {
        Some(ValueKind::StringValue(s)) => Ok(s.clone()),
        _ => Err(corrupt(key)),
    }
}

pub(super) fn get_i64(p: &HashMap<String, Value>, key: &str) -> Result<i64, StoreError> {
    match p.get(key).and_then(|v| v.kind.as_ref()) {
        Some(ValueKind::IntegerValue(i)) => Ok(*i),
        Some(ValueKind::DoubleValue(d)) => Ok(*d as i64),
        _ => Err(corrupt(key)),
    }
}

pub(super) fn get_f64(p: &HashMap<String, Value>, key: &str) -> Result<f64, StoreError> {
    match p.get(key).and_then(|v| v.kind.as_ref()) {
        Some(ValueKind::DoubleValue(d)) => Ok(*d),
        Some(ValueKind::IntegerValue(i)) => Ok(*i as f64),
        _ => Err(corrupt(key)),
    }
}

pub(super) fn dense(point: &RetrievedPoint) -> Result<Vec<f32>, StoreError> {
    match point
        .vectors
        .as_ref()
        .and_then(|v| v.get_vector_by_name(VECTOR))
    {
        Some(OutputVector::Dense(d)) => Ok(d.data),
        _ => Err(corrupt("vector")),
    }
}

pub(super) fn base_payload(tenant: &Tenant, kind: &str) -> Payload {
    let mut p = Payload::new();
    p.insert("tenant", tenant.to_string());
    p.insert("kind", kind);
    p
}

pub(super) fn named(vector: &[f32]) -> HashMap<String, Vec<f32>> {
    HashMap::from([(VECTOR.to_owned(), vector.to_vec())])
}

pub(super) fn read_send(point: &RetrievedPoint) -> Result<SendRecord, StoreError> {
    let p = &point.payload;
    Ok(SendRecord {
        send_id: SendId::parse(get_str(p, "send_id")?).map_err(|_| corrupt("send id"))?,
        decision_id: get_str(p, "decision_id")?,
        candidate_id: get_str(p, "candidate_id")?,
        channel: get_str(p, "channel")?,
        sent_at: get_i64(p, "sent_at")?,
        text: get_str(p, "text")?,
        vector: dense(point)?,
    })
}

pub(super) fn send_point(tenant: &Tenant, prospect: &ProspectId, send: &SendRecord) -> PointStruct {
    let mut payload = base_payload(tenant, KIND_SEND);
    payload.insert("prospect_id", prospect.to_string());
    payload.insert("send_id", send.send_id.to_string());
    payload.insert("decision_id", send.decision_id.clone());
    payload.insert("candidate_id", send.candidate_id.clone());
    payload.insert("channel", send.channel.clone());
    payload.insert("sent_at", send.sent_at);
    payload.insert("text", send.text.clone());
    PointStruct::new(
        point_id(tenant, KIND_SEND, send.send_id.as_str()),
        named(&send.vector),
        payload,
    )
}

/// The point of a deployment secret: it belongs to no tenant.
pub(super) fn secret_point(name: &str) -> PointId {
    let name = format!("\u{1f}{KIND_SECRET}\u{1f}{name}");
    PointId::from(Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string())
}

pub(super) fn read_signal(point: &RetrievedPoint) -> Result<SignalRecord, StoreError> {
    let p = &point.payload;
    Ok(SignalRecord {
        id: SignalId::parse(get_str(p, "signal_id")?).map_err(|_| corrupt("signal id"))?,
        source: SignalSource::from_name(&get_str(p, "source")?)
            .ok_or_else(|| corrupt("signal source"))?,
        polarity: Polarity::from_name(&get_str(p, "polarity")?)
            .ok_or_else(|| corrupt("signal polarity"))?,
        observed_at: get_i64(p, "observed_at")?,
        weight: Weight::parse(get_f64(p, "weight")? as f32).map_err(|_| corrupt("weight"))?,
        text: Text::parse(get_str(p, "text")?, usize::MAX).map_err(|_| corrupt("signal text"))?,
        vector: dense(point)?,
    })
}
