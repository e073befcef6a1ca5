//! The gate's view of a prospect's history, cached: the sends (with 8-bit vectors) and
//! negative replies within the time window its policy can see, changed in place by the
//! gate's own sends.

use super::*;
use crate::store::HistoryWindow;

/// What the gate needs of a prospect's history: sends and negative replies within `window`,
/// newest first, as the store orders them. Shared parts, so that adding a send copies pointers.
pub(crate) struct GateHistory {
    pub sends: Vec<Arc<KeptSend>>,
    pub replies: Arc<Vec<EngagementRecord>>,
    /// The window this history was read for.
    pub window: HistoryWindow,
    /// The window held more sends, or more replies, than `HISTORY_LIMIT`: older ones are
    /// missing, and the rules must assume the worst of them.
    pub sends_beyond: bool,
    pub replies_beyond: bool,
}

/// What the gate needs of a send: when, and its embedding at 8 bits per dimension (the
/// repeat rule's similarity, within about 1e-3), a quarter of a send's f32 vector, so that
/// the history cache holds four times the sends.
pub(crate) struct KeptSend {
    pub send_id: SendId,
    pub sent_at: Millis,
    pub vector: Compact,
}

impl From<&SendRecord> for KeptSend {
    fn from(send: &SendRecord) -> Self {
        Self {
            send_id: send.send_id.clone(),
            sent_at: send.sent_at,
            vector: Compact::new(&send.vector),
        }
    }
}

impl GateHistory {
    pub(super) fn approx_bytes(&self) -> usize {
        self.sends
            .iter()
            .map(|s| s.vector.dimensions() + s.send_id.as_str().len() + 96)
            .sum::<usize>()
            + self.replies.len() * 64
            + 96
    }

    /// Whether this history holds everything of `window` (it was read for a wider one).
    pub fn covers(&self, window: &HistoryWindow) -> bool {
        self.window.sends_since <= window.sends_since
            && self.window.replies_since <= window.replies_since
    }

    /// This history with `send` in its place (the store's order: newest first, then by send
    /// id), keeping at most `HISTORY_LIMIT` sends as a read from the store would.
    fn with_send(&self, send: Arc<KeptSend>) -> Self {
        let at = self
            .sends
            .iter()
            .position(|s| {
                (s.sent_at, std::cmp::Reverse(&s.send_id))
                    < (send.sent_at, std::cmp::Reverse(&send.send_id))
            })
            .unwrap_or(self.sends.len());
        let mut sends = Vec::with_capacity((self.sends.len() + 1).min(HISTORY_LIMIT));
        sends.extend(self.sends[..at].iter().cloned());
        sends.push(send);
        sends.extend(self.sends[at..].iter().cloned());
        let beyond = sends.len() > HISTORY_LIMIT;
        sends.truncate(HISTORY_LIMIT);
        Self {
            sends,
            replies: self.replies.clone(),
            window: self.window,
            sends_beyond: self.sends_beyond || beyond,
            replies_beyond: self.replies_beyond,
        }
    }
}

/// How many sends, and how many negative replies, of one prospect's window the gate reads at
/// most. A window that holds more is treated as over the cap (docs/gate.md).
pub(crate) const HISTORY_LIMIT: usize = 1000;

impl Caches {
    /// The prospect's gate history for `window`, from memory or the store. Call it holding
    /// the prospect's lock, so that no write of this process lands between the read and the
    /// caching.
    pub(crate) async fn history(
        &self,
        store: &dyn VectorStore,
        tenant: &Tenant,
        prospect: &ProspectId,
        window: HistoryWindow,
    ) -> Result<Arc<GateHistory>, EngineError> {
        let key = (tenant.clone(), prospect.clone());
        if let Some(cached) = self.histories.get(&key).await {
            if cached.covers(&window) {
                return Ok(cached);
            }
            // Read for a later window (a send planned further back, or a longer policy).
            self.histories.invalidate(&key).await;
        }
        self.histories
            .try_get_with(key, async {
                let read = store.gate_history(tenant, prospect, &window).await?;
                Ok::<_, StoreError>(Arc::new(GateHistory {
                    sends_beyond: read.sends.len() >= window.limit,
                    replies_beyond: read.replies.len() >= window.limit,
                    sends: read
                        .sends
                        .iter()
                        .map(|s| Arc::new(KeptSend::from(s)))
                        .collect(),
                    replies: Arc::new(read.replies),
                    window,
                }))
            })
            .await
            .map_err(|e| EngineError::Store(e.as_ref().clone()))
    }

    /// The gate recorded `send` (durably): add it to the cached history, if one is cached.
    /// Call it holding the prospect's lock.
    pub(crate) async fn history_sent(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        send: &SendRecord,
    ) {
        let send = Arc::new(KeptSend::from(send));
        // A send before the cached window is not part of it.
        self.histories
            .entry((tenant.clone(), prospect.clone()))
            .and_compute_with(|cached| async move {
                match cached {
                    Some(entry) if send.sent_at >= entry.value().window.sends_since => {
                        Op::Put(Arc::new(entry.into_value().with_send(send)))
                    }
                    Some(_) | None => Op::Nop,
                }
            })
            .await;
    }

    /// Retention purged old history: read every history afresh.
    pub(crate) fn histories_purged(&self) {
        self.histories.invalidate_all();
    }

    /// The prospect's sends or engagements changed.
    pub(crate) async fn history_changed(&self, tenant: &Tenant, prospect: &ProspectId) {
        self.histories
            .invalidate(&(tenant.clone(), prospect.clone()))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(id: &str, at: Millis) -> Arc<KeptSend> {
        Arc::new(KeptSend {
            send_id: SendId::parse(id).unwrap(),
            sent_at: at,
            vector: Compact::new(&[]),
        })
    }

    fn history(sends: Vec<Arc<KeptSend>>) -> GateHistory {
        GateHistory {
            sends,
            replies: Arc::new(vec![]),
            window: HistoryWindow {
                sends_since: Millis::MIN,
                replies_since: Millis::MIN,
                limit: HISTORY_LIMIT,
            },
            sends_beyond: false,
            replies_beyond: false,
        }
    }

    fn order(h: &GateHistory) -> Vec<(String, Millis)> {
        h.sends
            .iter()
            .map(|s| (s.send_id.to_string(), s.sent_at))
            .collect()
    }

    #[test]
    fn a_send_goes_where_the_store_would_list_it() {
        // The store lists sends newest first, then by send id.
        let h = history(vec![
            send("b", 30),
            send("a", 20),
            send("c", 20),
            send("d", 10),
        ]);
        let newest = h.with_send(send("z", 40));
        assert_eq!(order(&newest)[0], ("z".into(), 40));
        let tied = h.with_send(send("b2", 20));
        let ids: Vec<String> = order(&tied).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["b", "a", "b2", "c", "d"]);
        let oldest = h.with_send(send("e", 5));
        assert_eq!(order(&oldest).last().unwrap(), &("e".to_string(), 5));
    }

    #[test]
    fn the_history_keeps_at_most_the_store_limit() {
        let h = history(
            (0..HISTORY_LIMIT as i64)
                .map(|i| send(&format!("s{i:05}"), 10_000 - i))
                .collect(),
        );
        let newer = h.with_send(send("new", 20_000));
        assert_eq!(newer.sends.len(), HISTORY_LIMIT);
        assert_eq!(newer.sends[0].send_id.as_str(), "new");
        // What fell off is known to be missing: the cap rule then assumes the worst.
        assert!(newer.sends_beyond && !h.sends_beyond);
        // An older send than all kept falls off, as it would from a read of the store.
        let older = h.with_send(send("old", 0));
        assert_eq!(order(&older), order(&h));
    }
}
