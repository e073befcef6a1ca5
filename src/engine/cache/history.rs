//! The gate's view of a prospect's history, cached: sends (with 8-bit vectors) and
//! engagements, changed in place by the gate's own sends.

use super::*;

/// What the gate needs of a prospect's history: sends and engagements, newest first, as the
/// store orders them. Shared parts, so that adding a send copies pointers.
pub(crate) struct GateHistory {
    pub sends: Vec<Arc<KeptSend>>,
    pub engagements: Arc<Vec<EngagementRecord>>,
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
            + self.engagements.len() * 64
            + 64
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
        sends.truncate(HISTORY_LIMIT);
        Self {
            sends,
            engagements: self.engagements.clone(),
        }
    }
}

/// How many sends or engagements of one prospect the gate reads at most.
pub(crate) const HISTORY_LIMIT: usize = 1000;

impl Caches {
    /// The prospect's gate history, from memory or the store. Call it holding the prospect's
    /// lock, so that no write of this process lands between the read and the caching.
    pub(crate) async fn history(
        &self,
        store: &dyn VectorStore,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<Arc<GateHistory>, EngineError> {
        self.histories
            .try_get_with((tenant.clone(), prospect.clone()), async {
                let (sends, engagements) =
                    store.gate_history(tenant, prospect, HISTORY_LIMIT).await?;
                Ok::<_, StoreError>(Arc::new(GateHistory {
                    sends: sends.iter().map(|s| Arc::new(KeptSend::from(s))).collect(),
                    engagements: Arc::new(engagements),
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
        self.histories
            .entry((tenant.clone(), prospect.clone()))
            .and_compute_with(|cached| async move {
                match cached {
                    Some(entry) => Op::Put(Arc::new(entry.into_value().with_send(send))),
                    None => Op::Nop,
                }
            })
            .await;
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

    fn order(h: &GateHistory) -> Vec<(String, Millis)> {
        h.sends
            .iter()
            .map(|s| (s.send_id.to_string(), s.sent_at))
            .collect()
    }

    #[test]
    fn a_send_goes_where_the_store_would_list_it() {
        // The store lists sends newest first, then by send id.
        let h = GateHistory {
            sends: vec![send("b", 30), send("a", 20), send("c", 20), send("d", 10)],
            engagements: Arc::new(vec![]),
        };
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
        let h = GateHistory {
            sends: (0..HISTORY_LIMIT as i64)
                .map(|i| send(&format!("s{i:05}"), 10_000 - i))
                .collect(),
            engagements: Arc::new(vec![]),
        };
        let newer = h.with_send(send("new", 20_000));
        assert_eq!(newer.sends.len(), HISTORY_LIMIT);
        assert_eq!(newer.sends[0].send_id.as_str(), "new");
        // An older send than all kept falls off, as it would from a read of the store.
        let older = h.with_send(send("old", 0));
        assert_eq!(order(&older), order(&h));
    }
}
