//! A store the tests can unplug: every call goes to the real adapter underneath until
//! `unplug()`, then every call is `StoreError::Unavailable` until `plug()`. It stands in for a
//! store that went away (a crashed disk, a partitioned Qdrant) without closing anything, so
//! the service's store-down paths are tested through `App::build_with`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use pertinent::domain::{
    ContentId, ContentRecord, EngagementRecord, Millis, ProspectId, ProspectRecord, SendId,
    SendRecord, SignalId, SignalRecord, Tenant,
};
use pertinent::store::{
    GateRead, HistoryWindow, ProspectSummary, SignalWrite, StoreError, VectorStore,
};

/// The real store, behind a switch.
pub struct UnpluggableStore {
    inner: Arc<dyn VectorStore>,
    unplugged: AtomicBool,
}

impl UnpluggableStore {
    pub fn new(inner: Arc<dyn VectorStore>) -> Self {
        Self {
            inner,
            unplugged: AtomicBool::new(false),
        }
    }

    /// From now on every call fails as an unreachable store does.
    pub fn unplug(&self) {
        self.unplugged.store(true, Ordering::SeqCst);
    }

    /// The store answers again.
    pub fn plug(&self) {
        self.unplugged.store(false, Ordering::SeqCst);
    }

    /// The real store underneath, whatever the switch says (to read what was written).
    pub fn inner(&self) -> &dyn VectorStore {
        &*self.inner
    }

    fn plugged(&self) -> Result<(), StoreError> {
        if self.unplugged.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("unplugged by the test".into()));
        }
        Ok(())
    }
}

/// Every store call checks the switch, then goes to the real store.
macro_rules! unpluggable {
    ($(async fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        #[async_trait]
        impl VectorStore for UnpluggableStore {
            fn adapter(&self) -> &'static str {
                self.inner.adapter()
            }
            fn close(&self) {
                self.inner.close();
            }
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    self.plugged()?;
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
}

unpluggable! {
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
