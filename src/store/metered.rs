//! Every store call timed and counted, given a span and, for a remote store, bounded in time,
//! whatever the adapter: a decorator of the port that startup puts in front of the adapter it
//! opens. Labels are the operation (the port method) and the adapter; never an id. The bound
//! is there because a stalled server (a connection accepted, then never answered) outlasts the
//! client's own request timeout while it waits for the connection.

use std::time::Instant;

use async_trait::async_trait;
use tracing::Instrument as _;

use super::{GateRead, HistoryWindow, ProspectSummary, SignalWrite, StoreError, VectorStore};
use crate::domain::{
    ContentId, ContentRecord, EngagementRecord, Millis, ProspectId, ProspectRecord, SendId,
    SendRecord, SignalId, SignalRecord, Tenant,
};

/// A store whose calls are measured (`pertinent_store_operation_duration_seconds`,
/// `pertinent_store_errors_total`) and traced (a `store` span per call).
pub struct Metered<S: ?Sized> {
    inner: std::sync::Arc<S>,
    bound: Option<std::time::Duration>,
}

impl<S: VectorStore + ?Sized> Metered<S> {
    /// Measures every call of `inner`; with a `bound`, a call that takes longer is
    /// `StoreError::Unavailable`.
    pub fn new(inner: std::sync::Arc<S>, bound: Option<std::time::Duration>) -> Self {
        Self { inner, bound }
    }
}

/// Times `call` as `operation` of `adapter`, counting its error if it fails.
async fn measured<T>(
    adapter: &'static str,
    operation: &'static str,
    bound: Option<std::time::Duration>,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let span = tracing::info_span!("store", db.system = adapter, db.operation = operation);
    let started = Instant::now();
    let call = call.instrument(span);
    let result = match bound {
        Some(bound) => tokio::time::timeout(bound, call).await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "no answer within {} ms",
                bound.as_millis()
            )))
        }),
        None => call.await,
    };
    metrics::histogram!(
        "pertinent_store_operation_duration_seconds",
        "operation" => operation,
        "adapter" => adapter
    )
    .record(started.elapsed().as_secs_f64());
    if let Err(e) = &result {
        let kind = match e {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Busy => "busy",
            StoreError::MissingProspect => "missing_prospect",
            StoreError::DimensionMismatch { .. } => "dimension_mismatch",
            StoreError::Backend(_) => "backend",
        };
        metrics::counter!(
            "pertinent_store_errors_total",
            "operation" => operation,
            "adapter" => adapter,
            "kind" => kind
        )
        .increment(1);
    }
    result
}

/// Every store call measured, then passed to the adapter.
macro_rules! metered {
    ($(async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        #[async_trait]
        impl<S: VectorStore + ?Sized> VectorStore for Metered<S> {
            fn adapter(&self) -> &'static str {
                self.inner.adapter()
            }
            fn close(&self) {
                self.inner.close();
            }
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    measured(self.inner.adapter(), stringify!($name), self.bound, self.inner.$name($($arg),*)).await
                }
            )*
        }
    };
}

metered! {
    async fn health(&self) -> Result<(), StoreError>;
    async fn upsert_prospect(&self, tenant: &Tenant, prospect: &ProspectRecord) -> Result<(), StoreError>;
    async fn get_prospect(&self, tenant: &Tenant, id: &ProspectId) -> Result<Option<ProspectSummary>, StoreError>;
    async fn delete_prospect(&self, tenant: &Tenant, id: &ProspectId) -> Result<Option<u32>, StoreError>;
    async fn upsert_signals(&self, tenant: &Tenant, prospect: &ProspectId, signals: &[SignalRecord]) -> Result<SignalWrite, StoreError>;
    async fn delete_signals(&self, tenant: &Tenant, prospect: &ProspectId, ids: &[SignalId]) -> Result<(u32, u32), StoreError>;
    async fn prospect_signals(&self, tenant: &Tenant, prospect: &ProspectId) -> Result<Option<Vec<SignalRecord>>, StoreError>;
    async fn upsert_content(&self, tenant: &Tenant, content: &ContentRecord) -> Result<(), StoreError>;
    async fn get_content(&self, tenant: &Tenant, id: &ContentId) -> Result<Option<ContentRecord>, StoreError>;
    async fn delete_content(&self, tenant: &Tenant, id: &ContentId) -> Result<bool, StoreError>;
    async fn prospect_count(&self, tenant: &Tenant) -> Result<u64, StoreError>;
    async fn sample_prospects(&self, tenant: &Tenant, n: usize) -> Result<Vec<ProspectId>, StoreError>;
    async fn nearest_prospects(&self, tenant: &Tenant, vector: &[f32], limit: usize) -> Result<Vec<(ProspectId, f32)>, StoreError>;
    async fn sends(&self, tenant: &Tenant, prospect: &ProspectId, since: Millis, limit: usize) -> Result<Vec<SendRecord>, StoreError>;
    async fn gate_history(&self, tenant: &Tenant, prospect: &ProspectId, window: &HistoryWindow) -> Result<GateRead, StoreError>;
    async fn record_send(&self, tenant: &Tenant, prospect: &ProspectId, send: &SendRecord) -> Result<Option<(ProspectId, SendRecord)>, StoreError>;
    async fn record_engagement(&self, tenant: &Tenant, prospect: &ProspectId, engagement: &EngagementRecord) -> Result<(), StoreError>;
    async fn engagements(&self, tenant: &Tenant, prospect: &ProspectId, limit: usize) -> Result<Vec<EngagementRecord>, StoreError>;
    async fn record_decision(&self, tenant: &Tenant, prospect: &ProspectId, send_id: &SendId, decision: &str, decided_at: Millis, send: Option<&SendRecord>) -> Result<Option<String>, StoreError>;
    async fn get_decision(&self, tenant: &Tenant, send: &SendId) -> Result<Option<String>, StoreError>;
    async fn put_policy(&self, tenant: &Tenant, policy: &str) -> Result<(), StoreError>;
    async fn get_policy(&self, tenant: &Tenant) -> Result<Option<String>, StoreError>;
    async fn put_suppression(&self, tenant: &Tenant, key: &str, entry: &str) -> Result<(), StoreError>;
    async fn get_suppression(&self, tenant: &Tenant, key: &str) -> Result<Option<String>, StoreError>;
    async fn delete_suppression(&self, tenant: &Tenant, key: &str) -> Result<bool, StoreError>;
    async fn suppressions(&self) -> Result<Vec<(Tenant, String, String)>, StoreError>;
    async fn secret(&self, name: &str) -> Result<String, StoreError>;
    async fn purge_before(&self, before: Millis) -> Result<u64, StoreError>;
}
