//! The per-prospect locks that serialise the gate's reads and writes of one prospect's history
//! (Check, RecordSend, reactions, erasure), so that what the gate holds in memory stays exact.
//! Owns nothing else; the caches are in `cache/`.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::domain::{ProspectId, Tenant};

/// How many locks there are. Prospects share a lock when their keys collide, which only makes
/// one wait for the other; 4096 keep that rare at the concurrency one process serves.
const STRIPES: usize = 4096;

/// A fixed set of locks, one chosen per (tenant, prospect) by a hash.
pub(super) struct ProspectLocks {
    locks: Vec<Arc<Mutex<()>>>,
    hasher: RandomState,
}

impl ProspectLocks {
    pub(super) fn new() -> Self {
        Self {
            locks: (0..STRIPES).map(|_| Arc::new(Mutex::new(()))).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Waits for the prospect's lock; it is held until the guard drops, even across tasks.
    pub(super) async fn lock(&self, tenant: &Tenant, prospect: &ProspectId) -> OwnedMutexGuard<()> {
        let stripe = (self.hasher.hash_one((tenant, prospect)) % STRIPES as u64) as usize;
        self.locks[stripe].clone().lock_owned().await
    }
}
