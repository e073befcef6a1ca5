//! The send-path gate: one call before every send. Scoring plus the memory of what was sent and
//! how the prospect reacted.
//!
//! Idempotency: a decision that lets a send through is stored under the send id, in one write
//! with the send, and a write that finds a decision stored already writes nothing and returns
//! it. Every decision is also remembered in memory (`memory.rs`) for a while, and a retry of
//! its send id gets it back from there (`recall`). So a refusal costs no write; its retry
//! after a restart is decided again, from the same facts, under the same decision id.
//! `--record-decisions all` writes every decision instead.
//!
//! Concurrency: a prospect's checks and reactions are serialised in this process (a lock per
//! prospect, taken after scoring, so the model never runs under it): each check sees the sends
//! recorded before it, so concurrent checks cannot together break the frequency cap, and
//! retries of one send id run one after another. Replicas sharing a Qdrant are not serialised:
//! two replicas racing on one prospect may both let a send through, and two racing on one send
//! id may both decide while one decision survives.
//!
//! Availability: the store work of a check runs under a deadline (the caller's gRPC deadline,
//! less a margin, capped by `--gate-timeout-ms`). When the store is unreachable or the deadline
//! passes, the answer is the policy's fail decision with STORE_UNAVAILABLE: the gate never
//! hangs the send path.
//!
//! `reactions` records engagements and lists the history; `codec` is the one encoding of a
//! decision for the store and for the decision memory.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{
    CandidateInput, Engine, EngineError, NewSignal, Scored, detached, missing_prospect, now_millis,
};
use crate::domain::{
    EngagementKind, EngagementRecord, Millis, Polarity, ProspectId, SendId, SendRecord, SignalId,
    SignalSource, Tenant, Text, Weight, embedding_text,
};
use crate::scoring::gate::{
    GatePolicy, PastEngagement, PastSend, apply_draft_checks, apply_draft_line, draft_checks,
    history_rules,
};
use crate::scoring::{Decision, Reason, ReasonCode};
use crate::store::StoreError;

use super::cache::HISTORY_LIMIT;

mod codec;
mod reactions;

use codec::{encode, keep, recall, replay};

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
}

/// One event of a prospect's history.
#[derive(Debug, Clone)]
pub enum HistoryEvent {
    Send(SendRecord),
    Engagement(EngagementRecord),
}

/// The gate's settings from configuration.
#[derive(Debug, Clone)]
pub struct GateSettings {
    /// The policy of tenants that set none, and the base of partial policies.
    pub default_policy: GatePolicy,
    /// Upper bound of a check's store work, whatever the caller's deadline.
    pub timeout: Duration,
    /// Write every decision to the store, not only those that let a send through
    /// (`--record-decisions all`).
    pub record_all: bool,
}

/// The share of the caller's remaining deadline the gate may spend before answering with the
/// fail decision; the rest is for the answer to travel back.
const DEADLINE_SHARE: f64 = 0.8;

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
            .map_err(|e| EngineError::Unavailable(format!("encoding the policy: {e}")))?;
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

    /// Should this go out now? See the module docs for idempotency and availability.
    pub async fn check(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        input: CheckInput,
        caller_deadline: Option<Duration>,
    ) -> Result<GateOutcome, EngineError> {
        let budget = caller_deadline
            .map(|d| d.mul_f64(DEADLINE_SHARE))
            .map_or(self.gate.timeout, |d| d.min(self.gate.timeout));
        // The policy in memory answers the fail decision without the store, and spares the
        // check a second lookup.
        let cached = self.caches.cached_policy(tenant).await;
        let fail_decision = cached
            .as_ref()
            .map_or(self.gate.default_policy.fail_decision, |p| p.fail_decision);
        match tokio::time::timeout(budget, self.decide(tenant, prospect, input, cached)).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(EngineError::Store(StoreError::Unavailable(cause)))) => {
                tracing::warn!(error = %cause, "gate: store unavailable, answering the fail decision");
                Ok(fail_outcome(fail_decision))
            }
            Ok(Err(EngineError::Store(StoreError::Busy))) => {
                tracing::warn!("gate: store busy, answering the fail decision");
                Ok(fail_outcome(fail_decision))
            }
            Ok(Err(other)) => Err(other),
            Err(_) => {
                tracing::warn!(
                    budget_ms = budget.as_millis() as u64,
                    "gate: store too slow, answering the fail decision"
                );
                Ok(fail_outcome(fail_decision))
            }
        }
    }

    /// Where a retry finds the first decision:
    /// - in memory, where every decision this process made is remembered for a while (unless
    ///   `--record-decisions all`, where the store holds them all);
    /// - in the store, for a decision that let a send through: a recorded check learns of it
    ///   from `record_decision`, which writes nothing then, or from the prospect's history,
    ///   which lists the send. A dry run, or a check whose prospect or piece has gone since,
    ///   asks the store.
    async fn decide(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        input: CheckInput,
        policy: Option<Arc<GatePolicy>>,
    ) -> Result<GateOutcome, EngineError> {
        if input.dry_run && self.gate.record_all {
            if let Some(stored) = self.store.get_decision(tenant, &input.send_id).await? {
                return replay(&stored);
            }
            return self.decide_afresh(tenant, prospect, input, policy).await;
        }
        let send_id = input.send_id.clone();
        match self.decide_afresh(tenant, prospect, input, policy).await {
            Err(EngineError::NotFound { kind, id }) => {
                if let Some(first) = self.caches.decisions.get(tenant, &send_id) {
                    return recall(first.decision());
                }
                match self.store.get_decision(tenant, &send_id).await? {
                    Some(stored) => replay(&stored),
                    None => Err(EngineError::NotFound { kind, id }),
                }
            }
            other => other,
        }
    }

    /// Scores the candidate (embedding a draft), then, holding the prospect's lock, applies
    /// the history rules and records the decision. The lock makes a prospect's checks see each
    /// other's sends, so that concurrent checks cannot together break the frequency cap; the
    /// model runs outside it.
    async fn decide_afresh(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        input: CheckInput,
        policy: Option<Arc<GatePolicy>>,
    ) -> Result<GateOutcome, EngineError> {
        let policy = match policy {
            Some(policy) => policy,
            None => self.gate_policy(tenant).await?,
        };
        let draft = match &input.candidate {
            CandidateInput::Draft { title, body, .. } => Some((title.clone(), body.clone())),
            CandidateInput::Content(_) => None,
        };
        let candidate = self.resolve(tenant, vec![input.candidate]).await?.remove(0);
        let now = now_millis();
        let planned_at = input.planned_at.unwrap_or(now);
        let mut scored = self
            .score_resolved(tenant, prospect, std::slice::from_ref(&candidate), now)
            .await?
            .remove(0);
        let person = match &draft {
            // Only drafts need the prospect's name and company.
            Some(_) => Some(self.get_prospect(tenant, prospect).await?.prospect),
            None => None,
        };

        let serial = self
            .caches
            .prospect_lock(tenant, prospect)
            .lock_owned()
            .await;
        let history = self.caches.history(&*self.store, tenant, prospect).await?;
        let remembering = !self.gate.record_all;
        if remembering {
            // Under the lock, a check of this send id that ran meanwhile has left its decision.
            if let Some(first) = self.caches.decisions.get(tenant, &input.send_id) {
                return recall(first.decision());
            }
            // A send recorded before this process remembered it (a restart, or memory full).
            if history.sends.iter().any(|s| s.send_id == input.send_id)
                && let Some(stored) = self.store.get_decision(tenant, &input.send_id).await?
            {
                return replay(&stored);
            }
        }
        // Whether the history may lack a send of this send id: another replica's, or one past
        // the history's limit. A decision that writes nothing then asks the store.
        let history_may_lack_it =
            !self.caches.histories_exact || history.sends.len() >= HISTORY_LIMIT;
        let since = planned_at.saturating_sub(policy.lookback_millis());
        let past: Vec<PastSend<'_>> = history
            .sends
            .iter()
            .filter(|s| s.send_id != input.send_id && s.sent_at >= since)
            .map(|s| PastSend {
                send_id: s.send_id.as_str(),
                sent_at: s.sent_at,
                vector: &s.vector,
            })
            .collect();
        let reactions: Vec<PastEngagement> = history
            .engagements
            .iter()
            .map(|e| PastEngagement {
                kind: e.kind,
                at: e.at,
            })
            .collect();
        let mut findings = history_rules(&candidate.vector, planned_at, &past, &reactions, &policy);
        if let (Some((title, body)), Some(person)) = (&draft, &person) {
            let checks = draft_checks(title, body.as_str(), &person.name, &person.company);
            apply_draft_checks(&mut findings, checks, &policy);
            apply_draft_line(&mut findings, &scored.assessment, &policy);
        }

        scored.assessment.score *= findings.score_factor;
        let decision = scored.assessment.decision.max(findings.decision);
        let mut reasons = findings.reasons;
        reasons.extend(scored.assessment.reasons.iter().cloned());
        let outcome = GateOutcome {
            result: Some(scored),
            decision,
            reasons,
            decision_id: if input.dry_run {
                Uuid::new_v4().to_string()
            } else {
                decision_id(tenant, &input.send_id)
            },
            next_allowed_at: findings.next_allowed_at,
            repeat_of: findings.repeat_of,
            replayed: false,
        };
        let writes_nothing = input.dry_run || (remembering && decision != Decision::Send);
        if remembering
            && writes_nothing
            && history_may_lack_it
            && let Some(stored) = self.store.get_decision(tenant, &input.send_id).await?
        {
            return replay(&stored);
        }
        if input.dry_run {
            return Ok(outcome);
        }
        if writes_nothing {
            // Remembered under the lock, so that a concurrent retry finds it.
            let kept = keep(&outcome)?;
            self.caches
                .decisions
                .insert(tenant, &input.send_id, prospect, kept);
            drop(serial);
            return Ok(outcome);
        }
        let send = if decision == Decision::Send {
            let text = match (&draft, &candidate.content) {
                (Some((title, body)), _) => embedding_text(title, body.as_str()),
                (None, Some(id)) => self
                    .caches
                    .content(&*self.store, tenant, id)
                    .await?
                    .ok_or_else(|| super::not_found("content", id))?
                    .text
                    .clone(),
                (None, None) => unreachable!("a candidate is a draft or content"),
            };
            Some(SendRecord {
                send_id: input.send_id.clone(),
                decision_id: outcome.decision_id.clone(),
                candidate_id: candidate.id.clone(),
                channel: input.channel.clone(),
                sent_at: planned_at,
                text,
                vector: candidate.vector.as_ref().clone(),
            })
        } else {
            None
        };
        let body = encode(&outcome)?;
        // The write and the cache update run to the end even when this call is abandoned (the
        // caller's deadline), holding the prospect's lock: the next check of this prospect
        // then sees exactly what the store holds.
        let (store, caches) = (self.store.clone(), self.caches.clone());
        let (tenant_owned, prospect_owned, send_id) =
            (tenant.clone(), prospect.clone(), input.send_id.clone());
        let kept = remembering.then(|| keep(&outcome)).transpose()?;
        let recorded = detached(async move {
            let _serial = serial;
            let (tenant, prospect) = (&tenant_owned, &prospect_owned);
            // The decision and the send it lets through are written together, once per send id.
            let recorded = store
                .record_decision(tenant, prospect, &send_id, &body, send.as_ref())
                .await;
            match (&recorded, send) {
                (Ok(None), Some(send)) => caches.history_sent(tenant, prospect, &send).await,
                (Ok(_), _) => {}
                // Whether a failed write reached the disk is unknown: read it again next time.
                (Err(_), _) => caches.history_changed(tenant, prospect).await,
            }
            if let (Ok(None), Some(kept)) = (&recorded, kept) {
                caches.decisions.insert(tenant, &send_id, prospect, kept);
            }
            recorded
        })
        .await?;
        match recorded.map_err(|e| missing_prospect(e, prospect))? {
            Some(first) => replay(&first),
            None => Ok(outcome),
        }
    }
}

fn fail_outcome(decision: Decision) -> GateOutcome {
    GateOutcome {
        result: None,
        decision,
        reasons: vec![Reason {
            code: ReasonCode::StoreUnavailable,
            message:
                "The store could not be reached in time; this is the configured fail decision."
                    .into(),
        }],
        decision_id: Uuid::new_v4().to_string(),
        next_allowed_at: None,
        repeat_of: None,
        replayed: false,
    }
}
