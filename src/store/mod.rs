//! The `VectorStore` port: prospects, their signals and content pieces, with embeddings.
//!
//! Adapters: `sqlite` (embedded, the default: one file, exact scans) and `qdrant` (a Qdrant server
//! or cluster through qdrant-client, the scale-out path). Both pass one contract test suite
//! (tests/api/store_contract.rs). rusqlite and qdrant-client types never leave their adapter
//! folder.

mod metered;
pub mod qdrant;
pub mod sqlite;

pub use metered::Metered;

use async_trait::async_trait;

use crate::domain::{
    ContentId, ContentRecord, EngagementRecord, Millis, ProspectId, ProspectRecord, SendId,
    SendRecord, SignalId, SignalRecord, Tenant,
};

/// Why the store could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or has been closed.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Too much is waiting for the store already; try again later.
    #[error("the store is busy")]
    Busy,
    /// The prospect a write belongs to does not exist (deleted concurrently, say).
    #[error("no such prospect")]
    MissingProspect,
    /// Stored vectors have another length than the model's.
    #[error("the store holds {found}-dimensional vectors but the model makes {expected}")]
    DimensionMismatch { expected: usize, found: usize },
    /// Anything else the backend reported.
    #[error("store failure: {0}")]
    Backend(String),
}

/// What an `upsert_signals` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignalWrite {
    /// Signals whose id was new.
    pub added: u32,
    /// Signals that replaced one with the same id.
    pub replaced: u32,
    /// The prospect's signal count afterwards.
    pub total: u32,
}

/// A stored prospect with its signal count.
#[derive(Debug, Clone, PartialEq)]
pub struct ProspectSummary {
    pub prospect: ProspectRecord,
    pub signal_count: u32,
}

/// Persistence for everything pertinent knows. Writes are durable when they return.
#[async_trait]
pub trait VectorStore: Send + Sync {
    /// The adapter's name, as metrics and traces label it ("sqlite", "qdrant").
    fn adapter(&self) -> &'static str;

    /// Ok when the store answers.
    async fn health(&self) -> Result<(), StoreError>;

    /// Finishes queued writes and lets go of the store; every later call is
    /// `StoreError::Unavailable` (or, on a remote store, the client's own error). For orderly
    /// shutdown.
    fn close(&self);

    /// Creates or replaces a prospect's descriptive fields; its signals are kept.
    async fn upsert_prospect(
        &self,
        tenant: &Tenant,
        prospect: &ProspectRecord,
    ) -> Result<(), StoreError>;

    /// The prospect and its signal count, if it exists.
    async fn get_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<Option<ProspectSummary>, StoreError>;

    /// Erases the prospect and everything that belongs to it. `None` when it did not exist,
    /// otherwise how many signals went with it.
    async fn delete_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<Option<u32>, StoreError>;

    /// Inserts or replaces signals by id. `MissingProspect` when the prospect does not exist;
    /// then nothing is written.
    async fn upsert_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        signals: &[SignalRecord],
    ) -> Result<SignalWrite, StoreError>;

    /// Deletes signals by id; returns (deleted, remaining). `MissingProspect` when the prospect
    /// does not exist.
    async fn delete_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        ids: &[SignalId],
    ) -> Result<(u32, u32), StoreError>;

    /// Every signal of a prospect (fetched by key, not by similarity), or `None` when the
    /// prospect does not exist.
    async fn prospect_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<Option<Vec<SignalRecord>>, StoreError>;

    /// Creates or replaces a content piece.
    async fn upsert_content(
        &self,
        tenant: &Tenant,
        content: &ContentRecord,
    ) -> Result<(), StoreError>;

    /// A content piece, if registered.
    async fn get_content(
        &self,
        tenant: &Tenant,
        id: &ContentId,
    ) -> Result<Option<ContentRecord>, StoreError>;

    /// Deletes a content piece; false when there was none.
    async fn delete_content(&self, tenant: &Tenant, id: &ContentId) -> Result<bool, StoreError>;

    /// How many prospects the tenant has.
    async fn prospect_count(&self, tenant: &Tenant) -> Result<u64, StoreError>;

    /// Up to `n` of the tenant's prospects, chosen by the smallest `sample_key`: a uniform
    /// sample that stays stable as prospects come and go (a bottom-k sketch).
    async fn sample_prospects(
        &self,
        tenant: &Tenant,
        n: usize,
    ) -> Result<Vec<ProspectId>, StoreError>;

    /// The prospects whose positive signals come nearest to `vector`, each with its best cosine
    /// similarity, best first, at most `limit`. Candidate generation for FindAudience.
    async fn nearest_prospects(
        &self,
        tenant: &Tenant,
        vector: &[f32],
        limit: usize,
    ) -> Result<Vec<(ProspectId, f32)>, StoreError>;

    /// The prospect's sends at or after `since`, newest first, at most `limit`.
    async fn sends(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        since: Millis,
        limit: usize,
    ) -> Result<Vec<SendRecord>, StoreError>;

    /// What the gate reads of a prospect within `window`: its sends (texts left empty) and its
    /// negative replies, each newest first, at most `window.limit` of each.
    async fn gate_history(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        window: &HistoryWindow,
    ) -> Result<GateRead, StoreError>;

    /// Records a send that happened without a Check letting it through (after a review, or
    /// through another tool), unless the send id is taken: then nothing is written and the
    /// stored send is returned with its prospect. `MissingProspect` when the prospect does not
    /// exist.
    async fn record_send(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        send: &SendRecord,
    ) -> Result<Option<(ProspectId, SendRecord)>, StoreError>;

    /// Records a reaction, replacing one of the same kind to the same send.
    /// `MissingProspect` when the prospect does not exist.
    async fn record_engagement(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        engagement: &EngagementRecord,
    ) -> Result<(), StoreError>;

    /// The prospect's engagements, newest first, at most `limit`.
    async fn engagements(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        limit: usize,
    ) -> Result<Vec<EngagementRecord>, StoreError>;

    /// Stores the gate's decision for a send id, and the send itself when the decision let it
    /// through, in one atomic write, unless a decision is stored for the send id already: then
    /// nothing is written and the stored one is returned. Decisions and sends are opaque to the
    /// store apart from their keys. `MissingProspect` when the prospect does not exist.
    async fn record_decision(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        send_id: &SendId,
        decision: &str,
        decided_at: Millis,
        send: Option<&SendRecord>,
    ) -> Result<Option<String>, StoreError>;

    /// The stored decision for a send id.
    async fn get_decision(
        &self,
        tenant: &Tenant,
        send: &SendId,
    ) -> Result<Option<String>, StoreError>;

    /// Stores the tenant's gate policy (opaque text to the store).
    async fn put_policy(&self, tenant: &Tenant, policy: &str) -> Result<(), StoreError>;

    /// The tenant's stored gate policy.
    async fn get_policy(&self, tenant: &Tenant) -> Result<Option<String>, StoreError>;

    /// Creates or replaces an entry of the tenant's suppression list (opaque text), under
    /// `key`, a keyed hash of the prospect id. Entries belong to no prospect: erasing the
    /// prospect leaves them, and retention never purges them.
    async fn put_suppression(
        &self,
        tenant: &Tenant,
        key: &str,
        entry: &str,
    ) -> Result<(), StoreError>;

    /// A suppression entry, if there is one.
    async fn get_suppression(
        &self,
        tenant: &Tenant,
        key: &str,
    ) -> Result<Option<String>, StoreError>;

    /// Removes a suppression entry; false when there was none.
    async fn delete_suppression(&self, tenant: &Tenant, key: &str) -> Result<bool, StoreError>;

    /// Every suppression entry of every tenant: (tenant, key, entry).
    async fn suppressions(&self) -> Result<Vec<(Tenant, String, String)>, StoreError>;

    /// A secret of this deployment by name (hex): made at random by the first caller, then
    /// the same for every caller and every process sharing the store.
    async fn secret(&self, name: &str) -> Result<String, StoreError>;

    /// Deletes the decisions, sends and engagements dated before `before` (retention);
    /// returns how many went. Prospects, signals, content, policies and suppression stay.
    async fn purge_before(&self, before: Millis) -> Result<u64, StoreError>;
}

/// What of a prospect's history the gate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryWindow {
    /// Sends at or after this time.
    pub sends_since: Millis,
    /// Negative replies at or after this time.
    pub replies_since: Millis,
    /// At most this many of each, newest first.
    pub limit: usize,
}

/// The gate's read of a prospect's history.
#[derive(Debug, Clone, Default)]
pub struct GateRead {
    pub sends: Vec<SendRecord>,
    pub replies: Vec<EngagementRecord>,
}

/// A fresh random secret: 32 bytes from the operating system, as hex.
pub(crate) fn random_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Backend(format!("no randomness for a secret: {e}")))?;
    Ok(hex::encode(bytes))
}

/// The key by which `sample_prospects` orders prospects: a 63-bit FNV-1a hash of the id, the
/// same in every adapter so that both choose the same sample.
pub fn sample_key(id: &ProspectId) -> i64 {
    let h = id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h >> 1) as i64
}
