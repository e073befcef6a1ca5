//! Sends the gate did not let through itself: a REVIEW a person approved, or a send made by
//! another tool. Recorded, they count for every rule (caps, gaps, repeats) like the gate's own.

use super::*;

/// One RecordSend call.
#[derive(Debug, Clone)]
pub struct RecordSendInput {
    pub send_id: SendId,
    /// What went out; may be left out when `decision_id` names a Check of a registered piece.
    pub candidate: Option<CandidateInput>,
    /// The decision (a REVIEW, usually) this send follows: the Check's of the same send id.
    pub decision_id: Option<String>,
    pub channel: String,
    pub sent_at: Millis,
}

impl Engine {
    /// Records a send, once per send id: a second call with the send id returns the first
    /// record (FAILED_PRECONDITION naming `send_id` when it was another prospect's).
    pub async fn record_send(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        input: RecordSendInput,
    ) -> Result<SendRecord, EngineError> {
        let followed = match &input.decision_id {
            Some(id) => Some(
                self.followed_decision(tenant, prospect, &input.send_id, id)
                    .await?,
            ),
            None => None,
        };
        let candidate = match (input.candidate, followed) {
            (Some(candidate), _) => candidate,
            (None, Some(first)) => match first.judged.strip_prefix("content:") {
                Some(id) => CandidateInput::Content(
                    crate::domain::ContentId::parse(id)
                        .map_err(|_| EngineError::Internal("a stored decision's piece".into()))?,
                ),
                None => {
                    return Err(EngineError::Conflict {
                        field: "candidate",
                        message: "is required: the Check judged a draft, and drafts are not kept; send the text that went out".into(),
                    });
                }
            },
            (None, None) => {
                return Err(EngineError::Conflict {
                    field: "candidate",
                    message: "is required when no decision_id is given".into(),
                });
            }
        };
        let resolved = self
            .resolve(tenant, vec![candidate.clone()])
            .await?
            .remove(0);
        let text = match (&candidate, &resolved.content) {
            (CandidateInput::Draft { title, body, .. }, _) => embedding_text(title, body.as_str()),
            (CandidateInput::Content(_), Some(id)) => self
                .caches
                .content(&*self.store, tenant, id)
                .await?
                .ok_or_else(|| super::super::not_found("content", id))?
                .text
                .clone(),
            (CandidateInput::Content(id), None) => {
                return Err(EngineError::Internal(format!(
                    "content {id} resolved without its id"
                )));
            }
        };
        let send = SendRecord {
            send_id: input.send_id,
            decision_id: input.decision_id.unwrap_or_default(),
            candidate_id: resolved.id.clone(),
            channel: input.channel,
            sent_at: input.sent_at,
            text,
            vector: resolved.vector.as_ref().clone(),
        };

        // Under the prospect's lock, to the end even when the caller goes: the next check of
        // the prospect sees this send.
        let serial = self.locks.lock(tenant, prospect).await;
        let (store, caches) = (self.store.clone(), self.caches.clone());
        let (tenant_owned, prospect_owned, written) =
            (tenant.clone(), prospect.clone(), send.clone());
        let recorded = detached(async move {
            let _serial = serial;
            let (tenant, prospect) = (&tenant_owned, &prospect_owned);
            let recorded = store.record_send(tenant, prospect, &written).await;
            match &recorded {
                Ok(None) => caches.history_sent(tenant, prospect, &written).await,
                Ok(Some(_)) => {}
                Err(_) => caches.history_changed(tenant, prospect).await,
            }
            recorded
        })
        .await?;
        match recorded.map_err(|e| missing_prospect(e, prospect))? {
            None => Ok(send),
            Some((owner, first)) if &owner == prospect => Ok(first),
            Some(_) => Err(EngineError::Conflict {
                field: "send_id",
                message: "is already used for a send to another prospect; every send needs its own send_id".into(),
            }),
        }
    }

    /// The Check decision `decision_id` names: the decision of `send_id`, for this prospect.
    async fn followed_decision(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        send_id: &SendId,
        decision_id: &str,
    ) -> Result<GateOutcome, EngineError> {
        let first = match self.caches.decisions.get(tenant, send_id, Instant::now()) {
            Some(kept) => Some(from_memory(kept.decision())?),
            None => match self.store.get_decision(tenant, send_id).await? {
                Some(stored) => Some(from_stored(&stored)?),
                None => None,
            },
        };
        let first = first
            .filter(|f| f.decision_id == decision_id)
            .ok_or_else(|| EngineError::Conflict {
                field: "decision_id",
                message: "is not the decision of a Check with this send_id; pass the send_id the Check was made with, or leave decision_id empty and pass the candidate".into(),
            })?;
        if !first.prospect_id.is_empty() && first.prospect_id != prospect.as_str() {
            return Err(EngineError::Conflict {
                field: "send_id",
                message: "belongs to a Check of another prospect".into(),
            });
        }
        Ok(first)
    }
}
