//! Reactions to sends (engagements, and the signals they make) and the prospect's history.

use super::*;
use crate::scoring::gate::OptOut;

/// The id of a signal made from a reaction to `send_id`: `engagement:<send id>:<kind>:<what>`,
/// with the send id replaced by a name-based UUID of it when the whole would pass the id
/// limit, so that a long send id never drops the signal. Either way the same reaction maps to
/// the same id, so recording it again replaces the signal.
fn derived_signal_id(
    send_id: &SendId,
    kind: EngagementKind,
    what: &str,
) -> Result<SignalId, crate::domain::Invalid> {
    let plain = format!("engagement:{send_id}:{}:{what}", kind.as_str());
    SignalId::parse(plain).or_else(|_| {
        let hashed = Uuid::new_v5(&Uuid::NAMESPACE_OID, send_id.as_str().as_bytes());
        SignalId::parse(format!("engagement:{hashed}:{}:{what}", kind.as_str()))
    })
}

impl Engine {
    /// Records a reaction; reply text and the reacted-to piece become signals. Returns the ids
    /// of the signals made. An unsubscribe or a complaint also puts the prospect on the
    /// suppression list; a re-subscribe takes it off (if it came after the opt-out).
    pub async fn record_engagement(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        engagement: EngagementRecord,
        text: Option<Text>,
    ) -> Result<Vec<SignalId>, EngineError> {
        // Under the gate's lock, and to the end even when the caller goes: a check must not
        // cache a history without this reaction.
        let serial = self.locks.lock(tenant, prospect).await;
        let recorded = self
            .engagement_written(tenant, prospect, engagement.clone(), serial)
            .await?;
        recorded?;
        let kind = engagement.kind;
        let negative = matches!(
            kind,
            EngagementKind::RepliedNegative
                | EngagementKind::Unsubscribed
                | EngagementKind::Complained
        );
        let mut signals = Vec::new();
        let id = |suffix: &str| derived_signal_id(&engagement.send_id, kind, suffix);
        if let Some(text) = text
            && let Ok(id) = id("reply")
        {
            signals.push(NewSignal {
                id,
                source: SignalSource::EmailReply,
                polarity: if negative {
                    Polarity::Negative
                } else {
                    Polarity::Positive
                },
                observed_at: Some(engagement.at),
                weight: Weight::default(),
                text,
            });
        }
        // The piece itself: refused after a negative reply, reinforced after a click or a
        // positive reply. Opens say too little; opt-outs are handled by the gate.
        let from_piece = match kind {
            EngagementKind::RepliedNegative => Some((Polarity::Negative, SignalSource::EmailReply)),
            EngagementKind::RepliedPositive => Some((Polarity::Positive, SignalSource::EmailReply)),
            EngagementKind::Clicked => Some((Polarity::Positive, SignalSource::Other)),
            EngagementKind::Opened
            | EngagementKind::Unsubscribed
            | EngagementKind::Complained
            | EngagementKind::Resubscribed => None,
        };
        if let Some((polarity, source)) = from_piece {
            let sent = self
                .store
                .sends(tenant, prospect, Millis::MIN, HISTORY_LIMIT)
                .await?
                .into_iter()
                .find(|s| s.send_id == engagement.send_id);
            if let Some(sent) = sent
                && let Ok(text) = Text::parse(sent.text, usize::MAX)
                && let Ok(id) = id("piece")
            {
                signals.push(NewSignal {
                    id,
                    source,
                    polarity,
                    observed_at: Some(engagement.at),
                    weight: Weight::default(),
                    text,
                });
            }
        }
        if signals.is_empty() {
            return Ok(Vec::new());
        }
        let ids = signals.iter().map(|s| s.id.clone()).collect();
        self.add_signals(tenant, prospect, signals).await?;
        Ok(ids)
    }

    /// Writes the engagement, then the suppression state it changes, in a task that runs to
    /// the end even when the caller goes, holding the prospect's lock.
    async fn engagement_written(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        engagement: EngagementRecord,
        serial: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<Result<(), EngineError>, EngineError> {
        let (store, caches) = (self.store.clone(), self.caches.clone());
        let suppressions = self.suppressions.clone();
        let (tenant, prospect) = (tenant.clone(), prospect.clone());
        detached(async move {
            let _serial = serial;
            let written = store
                .record_engagement(&tenant, &prospect, &engagement)
                .await;
            caches.history_changed(&tenant, &prospect).await;
            written.map_err(|e| missing_prospect(e, &prospect))?;
            let kind = engagement.kind;
            if kind.opts_out() {
                let event = OptOut {
                    since: engagement.at,
                    complained: kind == EngagementKind::Complained,
                };
                suppressions
                    .suppress(&*store, &tenant, &prospect, event)
                    .await?;
            } else if kind == EngagementKind::Resubscribed {
                suppressions
                    .unsuppress(&*store, &tenant, &prospect, Some(engagement.at))
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// The prospect's sends and engagements, newest first.
    pub async fn history(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<Vec<HistoryEvent>, EngineError> {
        self.get_prospect(tenant, prospect).await?;
        let (sends, engagements) = tokio::join!(
            self.store
                .sends(tenant, prospect, Millis::MIN, HISTORY_LIMIT),
            self.store.engagements(tenant, prospect, HISTORY_LIMIT),
        );
        let (mut sends, engagements) = (sends?, engagements?);
        // The answer carries no texts.
        for send in &mut sends {
            send.text.clear();
        }
        let mut events: Vec<(Millis, HistoryEvent)> = sends
            .into_iter()
            .map(|s| (s.sent_at, HistoryEvent::Send(s)))
            .chain(
                engagements
                    .into_iter()
                    .map(|e| (e.at, HistoryEvent::Engagement(e))),
            )
            .collect();
        events.sort_by_key(|e| std::cmp::Reverse(e.0));
        Ok(events.into_iter().map(|(_, e)| e).collect())
    }
}
