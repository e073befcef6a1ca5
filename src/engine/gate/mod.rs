//! The send-path gate: scoring plus the memory of what was sent and how the prospect reacted.
//! `check` runs a Check's three steps (score, apply the rules under the prospect's lock,
//! record); `reactions` records engagements and lists the history; `sends` records sends made
//! after a review; `suppression` keeps opt-out states; `codec` encodes decisions. The rules
//! are pure, in `scoring::gate`. Behaviour: docs/gate.md; design: docs/internals.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use sha2::{Digest, Sha256};

use super::{
    CandidateInput, Engine, EngineError, NewSignal, Scored, detached, missing_prospect, now_millis,
};
use crate::domain::{
    EngagementKind, EngagementRecord, Millis, Polarity, ProspectId, SendId, SendRecord, SignalId,
    SignalSource, Tenant, Text, Weight, embedding_text,
};
use crate::scoring::gate::{
    GateFindings, GatePolicy, PastEngagement, PastSend, apply_draft_checks, apply_draft_line,
    draft_checks, history_rules, opt_out_rule, unread_history_rule,
};
use crate::scoring::{Decision, Reason, ReasonCode};
use crate::store::{HistoryWindow, StoreError};

use super::cache::HISTORY_LIMIT;

mod check;
mod codec;
mod reactions;
mod sends;
mod suppression;

pub use sends::RecordSendInput;
pub(crate) use suppression::Suppressions;

use codec::{from_memory, from_stored, to_memory, to_stored};

/// One Check call.
#[derive(Debug, Clone)]
pub struct CheckInput {
    pub send_id: SendId,
    pub candidate: CandidateInput,
    pub channel: String,
    pub planned_at: Option<Millis>,
    pub dry_run: bool,
}

/// The gate's answer, as returned and as stored for replays.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GateOutcome {
    /// The scoring result (its score lowered by draft-check findings); absent when the store
    /// could not be reached.
    pub result: Option<Scored>,
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    pub decision_id: String,
    pub next_allowed_at: Option<Millis>,
    pub repeat_of: Option<String>,
    #[serde(skip)]
    pub replayed: bool,
    /// The prospect the decision is for; empty in decisions stored by earlier versions.
    #[serde(default)]
    pub prospect_id: String,
    /// The piece it judged (`judged_key`); empty in decisions stored by earlier versions.
    #[serde(default)]
    pub judged: String,
}

/// One event of a prospect's history.
#[derive(Debug, Clone)]
pub enum HistoryEvent {
    Send(SendRecord),
    Engagement(EngagementRecord),
}

/// The gate's settings from configuration.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// The policy of tenants that set none, and the base of partial policies.
    pub default_policy: GatePolicy,
    /// Upper bound of a check's store work, whatever the caller's deadline.
    pub timeout: Duration,
    /// Write every decision to the store, not only SEND and REVIEW (`--record-decisions all`).
    pub record_all: bool,
    /// A policy may answer SEND when the store is down (`--allow-fail-send`).
    pub allow_fail_send: bool,
    /// Decisions, sends and engagements older than this are purged (`--retention-days`).
    pub retention: Option<Duration>,
}

fn decision_id(tenant: &Tenant, send: &SendId) -> String {
    let name = format!("{tenant}\u{1f}decision\u{1f}{send}");
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

impl Engine {
    /// The tenant's gate policy (stored, else the configured default).
    pub async fn gate_policy(&self, tenant: &Tenant) -> Result<Arc<GatePolicy>, EngineError> {
        self.caches
            .policy(&*self.store, tenant, &self.gate.default_policy)
            .await
    }

    /// Stores the tenant's policy and returns it.
    pub async fn set_gate_policy(
        &self,
        tenant: &Tenant,
        policy: GatePolicy,
    ) -> Result<Arc<GatePolicy>, EngineError> {
        let text = serde_json::to_string(&policy)
            .map_err(|e| EngineError::Internal(format!("encoding the policy: {e}")))?;
        let (store, caches, owner) = (self.store.clone(), self.caches.clone(), tenant.clone());
        detached(async move {
            let stored = store.put_policy(&owner, &text).await;
            caches.policy_changed(&owner).await;
            stored
        })
        .await??;
        Ok(Arc::new(policy))
    }

    /// The configured default policy.
    pub fn default_gate_policy(&self) -> &GatePolicy {
        &self.gate.default_policy
    }

    /// How long decisions, sends and engagements are kept, if not forever.
    pub fn retention(&self) -> Option<Duration> {
        self.gate.retention
    }

    /// Deletes the decisions, sends and engagements older than the retention period; returns
    /// how many went. Opt-out states and the suppression list are never purged.
    pub async fn purge_expired(&self) -> Result<u64, EngineError> {
        let Some(retention) = self.gate.retention else {
            return Ok(0);
        };
        let keep_ms = Millis::try_from(retention.as_millis()).unwrap_or(Millis::MAX);
        let before = now_millis().saturating_sub(keep_ms);
        let purged = self.store.purge_before(before).await?;
        if purged > 0 {
            // Cached histories may hold what went; the decision memory expires on its own.
            self.caches.histories_purged();
            tracing::info!(
                purged,
                "gate: retention purged old decisions, sends and engagements"
            );
        }
        Ok(purged)
    }

    /// Whether a policy may answer SEND when the store is down.
    pub fn allows_fail_send(&self) -> bool {
        self.gate.allow_fail_send
    }

    /// How many checks were answered SEND without the store (`--allow-fail-send`).
    pub fn fail_sends(&self) -> u64 {
        self.fail_sends.load(std::sync::atomic::Ordering::Relaxed)
    }
}
