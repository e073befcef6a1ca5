//! The gate's memory of its recent decisions, which retries of a send id are answered from:
//! first in, first out, bounded in bytes and by age, sharded behind plain mutexes. Takes `now`
//! from its callers. Why FIFO and why encoded: docs/internals.md, "The decision memory".

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::domain::{ProspectId, SendId, Tenant};

/// Shards of the memory; each holds an equal share of its bytes.
const SHARDS: usize = 16;

/// What an entry costs besides its key and its decision: the entry and its `Arc`, its slots
/// in the map and the queue (with their spare capacity), and the allocator's headers of its
/// three allocations.
const ENTRY_OVERHEAD: usize = 160;

/// One remembered decision.
pub(super) struct Remembered {
    /// The tenant and the send id, as one string: `tenant` U+001F `send` (ids hold no control
    /// characters, so the split is unambiguous).
    key: Box<str>,
    /// The hash of the key, where the entry is in its shard's map.
    hash: u64,
    /// A hash of the prospect, for erasure. Two prospects with one hash only means that
    /// erasing one also forgets the other's decisions, which are then decided again.
    prospect: u64,
    /// The decision, encoded.
    decision: Box<[u8]>,
    at: Instant,
    bytes: usize,
}

impl Remembered {
    /// The decision, encoded.
    pub(super) fn decision(&self) -> &[u8] {
        &self.decision
    }

    fn is(&self, tenant: &Tenant, send: &SendId) -> bool {
        let (t, s) = (tenant.as_str(), send.as_str());
        self.key.len() == t.len() + SEPARATOR.len_utf8() + s.len()
            && self.key.starts_with(t)
            && self.key[t.len()..].starts_with(SEPARATOR)
            && self.key.ends_with(s)
    }
}

const SEPARATOR: char = '\u{1f}';

#[derive(Default)]
struct Shard {
    /// By the hash of (tenant, send id). Two keys with one hash share a slot, the newer
    /// replacing the older: the older is then decided again if retried.
    by_key: HashMap<u64, Arc<Remembered>>,
    /// Oldest first.
    order: VecDeque<Arc<Remembered>>,
    bytes: usize,
}

impl Shard {
    fn find(&self, hash: u64, tenant: &Tenant, send: &SendId) -> Option<&Arc<Remembered>> {
        self.by_key.get(&hash).filter(|r| r.is(tenant, send))
    }

    /// Lets the oldest entry go.
    fn pop_oldest(&mut self) {
        let Some(oldest) = self.order.pop_front() else {
            return;
        };
        self.bytes -= oldest.bytes;
        if self
            .by_key
            .get(&oldest.hash)
            .is_some_and(|r| Arc::ptr_eq(r, &oldest))
        {
            self.by_key.remove(&oldest.hash);
        }
    }
}

/// Recent decisions by (tenant, send id), bounded in bytes and age.
pub(super) struct DecisionMemory {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    shard_bytes: usize,
    ttl: Duration,
}

impl DecisionMemory {
    pub(super) fn new(bytes: u64, ttl: Duration) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            shard_bytes: usize::try_from(bytes / SHARDS as u64).unwrap_or(usize::MAX),
            ttl,
        }
    }

    fn key_hash(&self, tenant: &Tenant, send: &SendId) -> u64 {
        self.hasher.hash_one((tenant, send))
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        // A panic while holding a shard cannot leave it inconsistent in a way that matters
        // more than losing the memory: go on with it.
        self.shards[(hash % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The decision remembered for this send id, if it is younger than the time to live at
    /// `now`.
    pub(super) fn get(
        &self,
        tenant: &Tenant,
        send: &SendId,
        now: Instant,
    ) -> Option<Arc<Remembered>> {
        let hash = self.key_hash(tenant, send);
        let shard = self.shard(hash);
        shard
            .find(hash, tenant, send)
            .filter(|r| now.saturating_duration_since(r.at) < self.ttl)
            .cloned()
    }

    /// Remembers a decision (encoded) made at `now`. A send id already remembered keeps its
    /// first decision.
    pub(super) fn insert(
        &self,
        tenant: &Tenant,
        send: &SendId,
        prospect: &ProspectId,
        decision: Box<[u8]>,
        now: Instant,
    ) {
        let hash = self.key_hash(tenant, send);
        let key: Box<str> = format!("{tenant}{SEPARATOR}{send}").into();
        let bytes = key.len() + decision.len() + ENTRY_OVERHEAD;
        let entry = Arc::new(Remembered {
            key,
            hash,
            prospect: self.hasher.hash_one((tenant, prospect)),
            decision,
            at: now,
            bytes,
        });
        let mut shard = self.shard(hash);
        let young = |at: Instant| now.saturating_duration_since(at) < self.ttl;
        if let Some(first) = shard.find(hash, tenant, send)
            && young(first.at)
        {
            return;
        }
        while shard.bytes + bytes > self.shard_bytes
            || shard.order.front().is_some_and(|oldest| !young(oldest.at))
        {
            if shard.order.is_empty() {
                // Larger than a whole shard: not remembered.
                return;
            }
            shard.pop_oldest();
        }
        shard.bytes += bytes;
        shard.order.push_back(entry.clone());
        // An expired entry of the same send id, or another key of the same hash, gives way.
        shard.by_key.insert(hash, entry);
    }

    /// Forgets every decision about a prospect (its erasure).
    pub(super) fn forget_prospect(&self, tenant: &Tenant, prospect: &ProspectId) {
        let hash = self.hasher.hash_one((tenant, prospect));
        let gone = |r: &Remembered| r.prospect == hash;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let before = shard.order.len();
            shard.order.retain(|r| !gone(r));
            if shard.order.len() == before {
                continue;
            }
            shard.by_key.retain(|_, r| !gone(r));
            shard.bytes = shard.order.iter().map(|r| r.bytes).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(t: &str, s: &str, p: &str) -> (Tenant, SendId, ProspectId) {
        (
            Tenant::parse(t).unwrap(),
            SendId::parse(s).unwrap(),
            ProspectId::parse(p).unwrap(),
        )
    }

    fn remembered_at(m: &DecisionMemory, t: &str, s: &str, now: Instant) -> Option<String> {
        let (t, s, _) = ids(t, s, "p");
        m.get(&t, &s, now)
            .map(|r| String::from_utf8(r.decision().to_vec()).unwrap())
    }

    fn remembered(m: &DecisionMemory, t: &str, s: &str) -> Option<String> {
        remembered_at(m, t, s, Instant::now())
    }

    fn remember_at(m: &DecisionMemory, t: &str, s: &str, p: &str, id: &str, now: Instant) {
        let (t, s, p) = ids(t, s, p);
        m.insert(&t, &s, &p, id.as_bytes().into(), now);
    }

    fn remember(m: &DecisionMemory, t: &str, s: &str, p: &str, id: &str) {
        remember_at(m, t, s, p, id, Instant::now());
    }

    #[test]
    fn the_first_decision_of_a_send_id_is_kept() {
        let m = DecisionMemory::new(1 << 20, Duration::from_secs(60));
        remember(&m, "t", "s1", "p", "first");
        remember(&m, "t", "s1", "p", "second");
        assert_eq!(remembered(&m, "t", "s1").as_deref(), Some("first"));
        // Tenants do not share send ids.
        assert_eq!(remembered(&m, "u", "s1"), None);
    }

    #[test]
    fn the_oldest_decisions_leave_first_when_memory_is_full() {
        // Room for a few entries per shard: after many inserts the newest are all there and
        // the oldest are gone.
        let one = "t".len() + "s999".len() + "p".len() + "d999".len() + ENTRY_OVERHEAD;
        let m = DecisionMemory::new((SHARDS * one * 4) as u64, Duration::from_secs(60));
        for i in 0..1000 {
            remember(&m, "t", &format!("s{i}"), "p", &format!("d{i}"));
        }
        assert_eq!(remembered(&m, "t", "s0"), None);
        assert_eq!(remembered(&m, "t", "s999").as_deref(), Some("d999"));
        for shard in &m.shards {
            let shard = shard.lock().unwrap();
            assert!(shard.bytes <= m.shard_bytes);
            assert_eq!(
                shard.bytes,
                shard.order.iter().map(|r| r.bytes).sum::<usize>()
            );
        }
    }

    #[test]
    fn decisions_expire_after_their_time_to_live() {
        let ttl = Duration::from_secs(60);
        let m = DecisionMemory::new(1 << 20, ttl);
        let start = Instant::now();
        remember_at(&m, "t", "s1", "p", "first", start);
        let almost = start + ttl - Duration::from_millis(1);
        assert_eq!(
            remembered_at(&m, "t", "s1", almost).as_deref(),
            Some("first")
        );
        let later = start + ttl;
        assert_eq!(remembered_at(&m, "t", "s1", later), None);
        // An expired decision does not block a new one of the same send id.
        remember_at(&m, "t", "s1", "p", "again", later);
        assert_eq!(
            remembered_at(&m, "t", "s1", later).as_deref(),
            Some("again")
        );
    }

    #[test]
    fn erasing_a_prospect_forgets_only_its_decisions() {
        let m = DecisionMemory::new(1 << 20, Duration::from_secs(60));
        remember(&m, "t", "a1", "ana", "a");
        remember(&m, "t", "b1", "ben", "b");
        remember(&m, "u", "a2", "ana", "other tenant");
        let (t, _, ana) = ids("t", "x", "ana");
        m.forget_prospect(&t, &ana);
        assert_eq!(remembered(&m, "t", "a1"), None);
        assert_eq!(remembered(&m, "t", "b1").as_deref(), Some("b"));
        assert_eq!(remembered(&m, "u", "a2").as_deref(), Some("other tenant"));
    }
}
