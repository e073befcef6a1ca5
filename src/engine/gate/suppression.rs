//! The suppression list: each tenant's opt-out states, keyed by a keyed hash of the prospect id
//! (HMAC-SHA256 under a secret of the deployment), so that the list holds no ids and outlives
//! the prospect's erasure. Read in one lookup by every Check; every entry is also held in
//! memory, so that the gate still refuses an opted-out prospect when the store is down. With
//! the embedded store this process is the only writer and memory is exact: the lookup is a
//! map read.

use std::collections::HashMap;
use std::sync::{OnceLock, PoisonError, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::*;
use crate::scoring::gate::OptOut;
use crate::store::VectorStore;

/// The name of the deployment secret the list is keyed with.
const SECRET: &str = "suppression-key";

/// A prospect's place on the list: the keyed hash of (tenant, prospect id).
type Key = [u8; 32];

/// The list in memory, and the key of its hashes.
#[derive(Default)]
pub(crate) struct Suppressions {
    secret: OnceLock<Vec<u8>>,
    states: RwLock<HashMap<(Tenant, Key), OptOut>>,
    /// Memory holds every change (this process is the store's only writer).
    exact: bool,
}

impl Suppressions {
    pub(crate) fn new(exact: bool) -> Self {
        Self {
            exact,
            ..Self::default()
        }
    }

    fn key(&self, tenant: &Tenant, prospect: &ProspectId) -> Result<Key, EngineError> {
        let secret = self
            .secret
            .get()
            .ok_or_else(|| EngineError::Internal("the suppression list is not loaded".into()))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|e| EngineError::Internal(format!("suppression key: {e}")))?;
        mac.update(tenant.as_str().as_bytes());
        mac.update(&[0x1f]);
        mac.update(prospect.as_str().as_bytes());
        Ok(mac.finalize().into_bytes().into())
    }

    fn remember(&self, tenant: &Tenant, key: Key, state: Option<OptOut>) {
        let mut states = self.states.write().unwrap_or_else(PoisonError::into_inner);
        match state {
            Some(state) => states.insert((tenant.clone(), key), state),
            None => states.remove(&(tenant.clone(), key)),
        };
    }

    /// The prospect's state as last seen, without the store.
    pub(crate) fn remembered(&self, tenant: &Tenant, prospect: &ProspectId) -> Option<OptOut> {
        self.remembered_by(tenant, self.key(tenant, prospect).ok()?)
    }

    fn remembered_by(&self, tenant: &Tenant, key: Key) -> Option<OptOut> {
        self.states
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant.clone(), key))
            .copied()
    }
}

fn hex(key: &Key) -> String {
    hex::encode(key)
}

fn unhex(text: &str) -> Option<Key> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(text, &mut key).ok()?;
    Some(key)
}

fn decode(entry: &str) -> Result<OptOut, EngineError> {
    serde_json::from_str(entry)
        .map_err(|e| EngineError::Internal(format!("stored suppression entry: {e}")))
}

fn encode(state: &OptOut) -> Result<String, EngineError> {
    serde_json::to_string(state)
        .map_err(|e| EngineError::Internal(format!("encoding a suppression entry: {e}")))
}

impl Suppressions {
    /// Reads the list's key and every entry into memory.
    async fn load(&self, store: &dyn VectorStore) -> Result<usize, EngineError> {
        let secret = store.secret(SECRET).await?;
        let secret = unhex(&secret)
            .ok_or_else(|| EngineError::Internal("the stored suppression key is damaged".into()))?;
        // A second call keeps the first key: the store returns the same one anyway.
        let _ = self.secret.set(secret.to_vec());
        let entries = store.suppressions().await?;
        let mut loaded = HashMap::with_capacity(entries.len());
        for (tenant, key, entry) in entries {
            let key = unhex(&key).ok_or_else(|| {
                EngineError::Internal("a stored suppression key is damaged".into())
            })?;
            loaded.insert((tenant, key), decode(&entry)?);
        }
        let n = loaded.len();
        *self.states.write().unwrap_or_else(PoisonError::into_inner) = loaded;
        Ok(n)
    }

    /// The prospect's opt-out: one lookup in the store (memory follows what it says), or in
    /// memory when memory is exact.
    pub(super) async fn lookup(
        &self,
        store: &dyn VectorStore,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<Option<OptOut>, EngineError> {
        let key = self.key(tenant, prospect)?;
        if self.exact {
            return Ok(self.remembered_by(tenant, key));
        }
        let state = match store.get_suppression(tenant, &hex(&key)).await? {
            Some(entry) => Some(decode(&entry)?),
            None => None,
        };
        self.remember(tenant, key, state);
        Ok(state)
    }

    /// Puts the prospect on the list, or extends its entry. Call it holding the prospect's lock.
    pub(super) async fn suppress(
        &self,
        store: &dyn VectorStore,
        tenant: &Tenant,
        prospect: &ProspectId,
        event: OptOut,
    ) -> Result<(), EngineError> {
        let state = match self.lookup(store, tenant, prospect).await? {
            Some(known) => known.and(event),
            None => event,
        };
        let key = self.key(tenant, prospect)?;
        store
            .put_suppression(tenant, &hex(&key), &encode(&state)?)
            .await?;
        self.remember(tenant, key, Some(state));
        Ok(())
    }

    /// Takes the prospect off the list: a re-subscribe at `at` lifts an opt-out made at or
    /// before it; `at: None` (an operator) lifts any. True when an entry was removed. Call it
    /// holding the prospect's lock.
    pub(super) async fn unsuppress(
        &self,
        store: &dyn VectorStore,
        tenant: &Tenant,
        prospect: &ProspectId,
        at: Option<Millis>,
    ) -> Result<bool, EngineError> {
        let key = self.key(tenant, prospect)?;
        if let (Some(at), Some(known)) = (at, self.lookup(store, tenant, prospect).await?)
            && known.since > at
        {
            return Ok(false);
        }
        let removed = store.delete_suppression(tenant, &hex(&key)).await?;
        self.remember(tenant, key, None);
        Ok(removed)
    }
}

impl Engine {
    /// Reads the suppression list's key and every entry into memory; returns how many entries.
    /// Startup calls it once, before serving.
    pub async fn load_suppressions(&self) -> Result<usize, EngineError> {
        self.suppressions.load(&*self.store).await
    }

    /// The prospect's opt-out state, from the store.
    pub(super) async fn opt_out(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<Option<OptOut>, EngineError> {
        self.suppressions
            .lookup(&*self.store, tenant, prospect)
            .await
    }

    /// Lifts a prospect's suppression, whether or not the prospect exists (an operator's
    /// call, for a person who asked to hear from the tenant again by other means). True when
    /// there was one.
    pub async fn lift_suppression(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<bool, EngineError> {
        let serial = self.locks.lock(tenant, prospect).await;
        let (store, suppressions) = (self.store.clone(), self.suppressions.clone());
        let (tenant, prospect) = (tenant.clone(), prospect.clone());
        let removed = detached(async move {
            let _serial = serial;
            suppressions
                .unsuppress(&*store, &tenant, &prospect, None)
                .await
        })
        .await??;
        if removed {
            tracing::info!("gate: a suppression was lifted by an operator");
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_hex() {
        let key: Key = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(unhex(&hex(&key)), Some(key));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"g".repeat(64)), None);
    }

    #[test]
    fn the_key_depends_on_the_secret_the_tenant_and_the_prospect_and_hides_the_id() {
        let with = |secret: &[u8]| {
            let s = Suppressions::default();
            s.secret.set(secret.to_vec()).unwrap();
            s
        };
        let (a, b) = (with(b"one"), with(b"two"));
        let t = Tenant::parse("acme").unwrap();
        let u = Tenant::parse("acme2").unwrap();
        let p = ProspectId::parse("jane@example.com").unwrap();
        let q = ProspectId::parse("jane@example.co").unwrap();
        let k = a.key(&t, &p).unwrap();
        assert_eq!(k, a.key(&t, &p).unwrap());
        assert_ne!(k, b.key(&t, &p).unwrap());
        assert_ne!(k, a.key(&u, &p).unwrap());
        assert_ne!(k, a.key(&t, &q).unwrap());
        assert!(!hex(&k).contains("jane"));
        // Without a loaded secret there is no key, never an unkeyed hash.
        assert!(Suppressions::default().key(&t, &p).is_err());
    }
}
