//! The check itself, in its three steps: score the candidate (outside any lock), apply the
//! rules under the prospect's lock to its history and opt-out state (`apply_rules`), and record the decision;
//! plus finding an earlier decision of the send id, and the answer without a store.

use tracing::Instrument as _;

use super::*;

/// The share of the caller's remaining deadline the gate may spend before answering with the
/// fail decision; the rest is for the answer to travel back.
const DEADLINE_SHARE: f64 = 0.8;

/// What a decision judged: a registered piece by id, a draft by id and a hash of its text (a
/// retry sends the same draft; another draft under the same send id is another send).
fn judged_key(candidate: &CandidateInput) -> String {
    match candidate {
        CandidateInput::Content(id) => format!("content:{id}"),
        CandidateInput::Draft { id, title, body } => {
            let mut h = Sha256::new();
            h.update(title.as_bytes());
            h.update([0x1f]);
            h.update(body.as_str().as_bytes());
            let digest = h.finalize();
            format!("draft:{id}:{}", hex::encode(&digest[..12]))
        }
    }
}

/// Whether a stored decision may answer this check: same prospect, same piece. Decisions of
/// earlier versions carry neither and are taken as they are.
fn bound_to(first: &GateOutcome, prospect: &ProspectId, judged: &str) -> Result<(), EngineError> {
    if !first.prospect_id.is_empty() && first.prospect_id != prospect.as_str() {
        return Err(EngineError::Conflict {
            field: "send_id",
            message:
                "is already used for a send to another prospect; every send needs its own send_id"
                    .into(),
        });
    }
    if !first.judged.is_empty() && first.judged != judged {
        return Err(EngineError::Conflict {
            field: "send_id",
            message: "is already used for another piece; every send needs its own send_id".into(),
        });
    }
    Ok(())
}

impl Engine {
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
        let planned_at = input.planned_at.unwrap_or_else(now_millis);
        let dry_run = input.dry_run;
        let decided =
            tokio::time::timeout(budget, self.decide(tenant, prospect, input, cached.clone()));
        let cause = match decided.await {
            Ok(Ok(outcome)) => {
                self.count_decision(tenant, &outcome, dry_run);
                return Ok(outcome);
            }
            Ok(Err(EngineError::Store(StoreError::Unavailable(cause)))) => cause,
            Ok(Err(EngineError::Store(StoreError::Busy))) => "busy".into(),
            Ok(Err(other)) => return Err(other),
            Err(_) => format!("no answer within {} ms", budget.as_millis()),
        };
        let policy = cached.unwrap_or_else(|| Arc::new(self.gate.default_policy.clone()));
        let outcome = self.without_store(tenant, prospect, planned_at, &policy, &cause);
        self.count_decision(tenant, &outcome, dry_run);
        Ok(outcome)
    }

    /// `pertinent_gate_decisions_total` by decision (a replay, a dry run and a fresh decision
    /// apart) and `pertinent_gate_decision_reasons_total` by decision and each reason; by
    /// tenant too with `--metrics-tenant-labels`.
    fn count_decision(&self, tenant: &Tenant, outcome: &GateOutcome, dry_run: bool) {
        let kind = match (outcome.replayed, dry_run) {
            (true, _) => "replayed",
            (false, true) => "dry_run",
            (false, false) => "decided",
        };
        let decision = outcome.decision.as_str();
        let mut labels = vec![("decision", decision.to_owned()), ("kind", kind.to_owned())];
        if self.tenant_metrics {
            labels.push(("tenant", tenant.to_string()));
        }
        metrics::counter!("pertinent_gate_decisions_total", &labels).increment(1);
        if outcome.replayed {
            return;
        }
        labels.retain(|(name, _)| *name != "kind");
        for reason in &outcome.reasons {
            let mut with_reason = labels.clone();
            with_reason.push(("reason", reason.code.as_str().to_owned()));
            metrics::counter!("pertinent_gate_decision_reasons_total", &with_reason).increment(1);
        }
    }

    /// The answer when the store cannot be reached: REJECT for a prospect the suppression list
    /// in memory says opted out, else the policy's fail decision.
    fn without_store(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        planned_at: Millis,
        policy: &GatePolicy,
        cause: &str,
    ) -> GateOutcome {
        let mut outcome = fail_outcome(policy.fail_decision);
        if let Some(opted_out) = self.suppressions.remembered(tenant, prospect) {
            let mut findings = GateFindings::none();
            opt_out_rule(&mut findings, Some(&opted_out), planned_at, policy);
            if findings.decision == Decision::Reject {
                tracing::warn!(error = %cause, "gate: store unavailable; the prospect opted out: REJECT");
                outcome.decision = Decision::Reject;
                findings.reasons.append(&mut outcome.reasons);
                outcome.reasons = findings.reasons;
                outcome.next_allowed_at = findings.next_allowed_at;
                return outcome;
            }
        }
        match outcome.decision {
            Decision::Send if !self.gate.allow_fail_send => {
                // A policy stored while the flag was set: without it, review instead.
                tracing::warn!(error = %cause, "gate: store unavailable; fail decision SEND needs --allow-fail-send: REVIEW");
                outcome.decision = Decision::Review;
            }
            Decision::Send => {
                let n = self
                    .fail_sends
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                tracing::warn!(error = %cause, fail_sends_total = n, "gate: store unavailable; answering the fail decision SEND");
            }
            Decision::Review | Decision::Reject => {
                tracing::warn!(error = %cause, "gate: store unavailable; answering the fail decision");
            }
        }
        outcome
    }

    /// A decision made earlier for this send id, if it may answer this check; NOT_FOUND when
    /// the prospect is gone (a decision is never replayed for a prospect that does not exist).
    async fn earlier_decision(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        send_id: &SendId,
        judged: &str,
    ) -> Result<Option<GateOutcome>, EngineError> {
        let first = match self.caches.decisions.get(tenant, send_id, Instant::now()) {
            Some(kept) => from_memory(kept.decision())?,
            // The embedded store's own decisions: asked for under the lock when the history
            // lists the send id, and found by the write of any decision that would be stored.
            None if self.exclusive_store => return Ok(None),
            None => match self.store.get_decision(tenant, send_id).await? {
                Some(stored) => from_stored(&stored)?,
                None => return Ok(None),
            },
        };
        self.profile(tenant, prospect).await?;
        bound_to(&first, prospect, judged)?;
        Ok(Some(first))
    }

    /// A retry gets the first decision of its send id (from memory, else the store); anything
    /// else is decided afresh. A dry run is always decided afresh, unless every decision is
    /// stored (`--record-decisions all`). The lookup runs beside the scoring, so that it adds
    /// no latency; a retry throws the score away.
    async fn decide(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        input: CheckInput,
        policy: Option<Arc<GatePolicy>>,
    ) -> Result<GateOutcome, EngineError> {
        let judged = judged_key(&input.candidate);
        let now = now_millis();
        let look_up = !input.dry_run || self.gate.record_all;
        let (earlier, scored) = tokio::join!(
            async {
                match look_up {
                    true => {
                        self.earlier_decision(tenant, prospect, &input.send_id, &judged)
                            .await
                    }
                    false => Ok(None),
                }
            },
            self.score_check(tenant, prospect, &input, now),
        );
        // A retry is answered even when the piece has gone since.
        if let Some(first) = earlier? {
            return Ok(first);
        }
        self.decide_afresh(tenant, prospect, input, judged, scored?, now, policy)
            .await
    }

    /// Judges under the prospect's lock, then records (still holding it, so that the next
    /// check of the prospect sees this one).
    #[allow(clippy::too_many_arguments)]
    async fn decide_afresh(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        input: CheckInput,
        judged: String,
        scored: ScoredCheck,
        now: Millis,
        policy: Option<Arc<GatePolicy>>,
    ) -> Result<GateOutcome, EngineError> {
        let policy = match policy {
            Some(policy) => policy,
            None => self.gate_policy(tenant).await?,
        };
        let planned_at = input.planned_at.unwrap_or(now);

        let serial = self.locks.lock(tenant, prospect).await;
        // Under the lock, a check of this send id that ran meanwhile has left its decision.
        if let Some(first) = self
            .caches
            .decisions
            .get(tenant, &input.send_id, Instant::now())
        {
            let first = from_memory(first.decision())?;
            bound_to(&first, prospect, &judged)?;
            return Ok(first);
        }
        let (mut outcome, listed) = self
            .apply_rules(tenant, prospect, &input, &scored, planned_at, &policy)
            .instrument(tracing::info_span!("gate.rules"))
            .await?;
        // A send of this send id that this process no longer remembers (a restart): its
        // decision is in the store.
        if listed && let Some(stored) = self.store.get_decision(tenant, &input.send_id).await? {
            let first = from_stored(&stored)?;
            bound_to(&first, prospect, &judged)?;
            return Ok(first);
        }
        outcome.prospect_id = prospect.to_string();
        outcome.judged = judged.clone();
        if !input.dry_run {
            outcome.decision_id = decision_id(tenant, &input.send_id);
        }
        let stored = self
            .record_check(
                tenant, prospect, &input, scored, outcome, planned_at, now, serial,
            )
            .await?;
        if stored.replayed {
            bound_to(&stored, prospect, &judged)?;
        }
        Ok(stored)
    }

    /// Step one: the candidate scored for the prospect, with what the draft checks need.
    async fn score_check(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        input: &CheckInput,
        now: Millis,
    ) -> Result<ScoredCheck, EngineError> {
        let draft = match &input.candidate {
            CandidateInput::Draft { title, body, .. } => Some((title.clone(), body.clone())),
            CandidateInput::Content(_) => None,
        };
        let candidate = self
            .resolve(tenant, vec![input.candidate.clone()])
            .await?
            .remove(0);
        let scored = self
            .score_resolved(tenant, prospect, std::slice::from_ref(&candidate), now)
            .await?
            .remove(0);
        let person = match &draft {
            // Only drafts need the prospect's name and company.
            Some(_) => Some(self.get_prospect(tenant, prospect).await?.prospect),
            None => None,
        };
        Ok(ScoredCheck {
            candidate,
            scored,
            draft,
            person,
        })
    }

    /// Step two, under the prospect's lock: the opt-out state and the history within the
    /// policy's window, read together, then every rule. Also says whether the history lists a
    /// send of this send id.
    async fn apply_rules(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        input: &CheckInput,
        check: &ScoredCheck,
        planned_at: Millis,
        policy: &GatePolicy,
    ) -> Result<(GateOutcome, bool), EngineError> {
        let window = HistoryWindow {
            sends_since: planned_at.saturating_sub(policy.lookback_millis()),
            replies_since: planned_at.saturating_sub(policy.cooldown_millis()),
            limit: HISTORY_LIMIT,
        };
        let (history, opt_out) = tokio::join!(
            self.caches.history(&*self.store, tenant, prospect, window),
            self.opt_out(tenant, prospect),
        );
        let (history, opt_out) = (history?, opt_out?);
        let listed = history.sends.iter().any(|s| s.send_id == input.send_id);
        let past: Vec<PastSend<'_>> = history
            .sends
            .iter()
            .filter(|s| s.send_id != input.send_id && s.sent_at >= window.sends_since)
            .map(|s| PastSend {
                send_id: s.send_id.as_str(),
                sent_at: s.sent_at,
                vector: &s.vector,
            })
            .collect();
        let replies: Vec<PastEngagement> = history
            .replies
            .iter()
            .map(|e| PastEngagement {
                kind: e.kind,
                at: e.at,
            })
            .collect();
        let candidate = &check.candidate;
        let mut findings = history_rules(&candidate.vector, planned_at, &past, &replies, policy);
        unread_history_rule(&mut findings, history.sends_beyond, history.replies_beyond);
        opt_out_rule(&mut findings, opt_out.as_ref(), planned_at, policy);
        let mut scored = check.scored.clone();
        if let (Some((title, body)), Some(person)) = (&check.draft, &check.person) {
            let checks = draft_checks(title, body.as_str(), &person.name, &person.company);
            apply_draft_checks(&mut findings, checks, policy);
            apply_draft_line(&mut findings, &scored.assessment, policy);
        }
        scored.assessment.score *= findings.score_factor;
        let decision = scored.assessment.decision.max(findings.decision);
        let mut reasons = findings.reasons;
        reasons.extend(scored.assessment.reasons.iter().cloned());
        let outcome = GateOutcome {
            result: Some(scored),
            decision,
            reasons,
            decision_id: Uuid::new_v4().to_string(),
            next_allowed_at: findings.next_allowed_at,
            repeat_of: findings.repeat_of,
            replayed: false,
            prospect_id: String::new(),
            judged: String::new(),
        };
        Ok((outcome, listed))
    }

    /// Step three: store the decision (SEND with its send, REVIEW alone, every decision with
    /// `--record-decisions all`) and remember it, still under the prospect's lock. The write
    /// runs to the end even when the caller goes. Returns the stored decision when another
    /// one of this send id got there first.
    #[allow(clippy::too_many_arguments)]
    async fn record_check(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        input: &CheckInput,
        check: ScoredCheck,
        outcome: GateOutcome,
        planned_at: Millis,
        now: Millis,
        serial: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<GateOutcome, EngineError> {
        if input.dry_run {
            return Ok(outcome);
        }
        // On a shared store every decision is written, refusals too: replicas deciding one send
        // id at once must all find the first decision there (the store's insert-only write
        // picks it), which a refusal kept in one replica's memory would not be.
        let remembering = !self.gate.record_all && self.exclusive_store;
        let decision = outcome.decision;
        if remembering && decision == Decision::Reject {
            // A refusal costs no write: its retry is answered from memory, or decided again
            // from the same facts under the same decision id.
            let kept = to_memory(&outcome)?;
            self.caches
                .decisions
                .insert(tenant, &input.send_id, prospect, kept, Instant::now());
            drop(serial);
            return Ok(outcome);
        }
        let send = if decision == Decision::Send {
            let ScoredCheck {
                candidate, draft, ..
            } = check;
            let text = match (&draft, &candidate.content) {
                (Some((title, body)), _) => embedding_text(title, body.as_str()),
                (None, Some(id)) => self
                    .caches
                    .content(&*self.store, tenant, id)
                    .await?
                    .ok_or_else(|| crate::engine::not_found("content", id))?
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
        let body = to_stored(&outcome)?;
        let (store, caches) = (self.store.clone(), self.caches.clone());
        let (tenant_owned, prospect_owned, send_id) =
            (tenant.clone(), prospect.clone(), input.send_id.clone());
        let kept = remembering.then(|| to_memory(&outcome)).transpose()?;
        let recorded = detached(async move {
            let _serial = serial;
            let (tenant, prospect) = (&tenant_owned, &prospect_owned);
            // The decision and the send it lets through are written together, once per send id.
            let recorded = store
                .record_decision(tenant, prospect, &send_id, &body, now, send.as_ref())
                .await;
            match (&recorded, send) {
                (Ok(None), Some(send)) => caches.history_sent(tenant, prospect, &send).await,
                (Ok(_), _) => {}
                // Whether a failed write reached the disk is unknown: read it again next time.
                (Err(_), _) => caches.history_changed(tenant, prospect).await,
            }
            if let (Ok(None), Some(kept)) = (&recorded, kept) {
                caches
                    .decisions
                    .insert(tenant, &send_id, prospect, kept, Instant::now());
            }
            recorded
        })
        .await?;
        match recorded.map_err(|e| missing_prospect(e, prospect))? {
            Some(first) => from_stored(&first),
            None => Ok(outcome),
        }
    }
}

/// A candidate scored for a check, with what the rules and the record need of it.
struct ScoredCheck {
    candidate: crate::engine::ResolvedCandidate,
    scored: Scored,
    /// The draft's title and body, when the candidate is a draft.
    draft: Option<(String, Text)>,
    /// The prospect's descriptive fields, for the draft checks.
    person: Option<crate::domain::ProspectRecord>,
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
        prospect_id: String::new(),
        judged: String::new(),
    }
}
