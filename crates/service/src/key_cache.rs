//! A short-lived cache of authentication verdicts, so that a busy client
//! does not cost a database lookup per request — and so that an unknown key
//! and a known key with a wrong secret cost the same.
//!
//! Entries are keyed by the SHA-256 of the whole presented key, never by its
//! (public) key id. A verdict is either the principal of a verified key or
//! "not a valid key". A wrong secret therefore never finds the entry of the
//! right one: it is looked up in the database exactly like an unknown key
//! id, and then remembered exactly like one. Both paths do the same work in
//! the same order (hash, cache probe, store lookup, constant-time compare),
//! which is what keeps a key id's existence from showing in response times.
//!
//! Valid and invalid verdicts are held in two maps with their own capacity,
//! so a flood of bad keys cannot push the good ones out. A change to a key
//! (revocation, once it exists) takes effect within the time-to-live.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use flowexec_domain::{ApiKeyId, Principal};

/// The SHA-256 of a presented key.
pub(crate) type KeyDigest = [u8; 32];

/// What is known of a presented key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Valid(Principal),
    Invalid,
}

struct Entries<T> {
    capacity: usize,
    map: HashMap<KeyDigest, (T, Instant)>,
}

impl<T: Copy> Entries<T> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: HashMap::new(),
        }
    }

    fn get(&self, digest: &KeyDigest, ttl: Duration) -> Option<T> {
        let (value, stored) = self.map.get(digest)?;
        (stored.elapsed() < ttl).then_some(*value)
    }

    fn put(&mut self, digest: KeyDigest, value: T, ttl: Duration) {
        if self.capacity == 0 {
            return;
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(&digest) {
            // Drop what has expired; if that frees nothing, start over.
            self.map.retain(|_, (_, stored)| stored.elapsed() < ttl);
            if self.map.len() >= self.capacity {
                self.map.clear();
            }
        }
        self.map.insert(digest, (value, Instant::now()));
    }
}

pub(crate) struct KeyCache {
    ttl: Duration,
    valid: RwLock<Entries<Principal>>,
    invalid: RwLock<Entries<()>>,
    /// Keys revoked in this process in the last `ttl`: a verdict reached
    /// from a read made before the revocation committed must not be cached
    /// after it.
    revoked: RwLock<HashMap<ApiKeyId, Instant>>,
}

impl KeyCache {
    /// `capacity` bounds each of the two maps.
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            valid: RwLock::new(Entries::new(capacity)),
            invalid: RwLock::new(Entries::new(capacity)),
            revoked: RwLock::new(HashMap::new()),
        }
    }

    /// The verdict on the key with this digest, if one was reached less
    /// than the time-to-live ago.
    pub(crate) fn get(&self, digest: &KeyDigest) -> Option<Verdict> {
        if self.ttl.is_zero() {
            return None;
        }
        if let Some(principal) = self.valid.read().ok()?.get(digest, self.ttl) {
            return Some(Verdict::Valid(principal));
        }
        self.invalid
            .read()
            .ok()?
            .get(digest, self.ttl)
            .map(|()| Verdict::Invalid)
    }

    /// Forgets every valid verdict on the key with this id (it was
    /// revoked), and refuses to take a new one for the cache's lifetime.
    pub(crate) fn forget(&self, key_id: ApiKeyId) {
        if let Ok(mut revoked) = self.revoked.write() {
            let ttl = self.ttl;
            revoked.retain(|_, at| at.elapsed() < ttl);
            revoked.insert(key_id, Instant::now());
        }
        if let Ok(mut valid) = self.valid.write() {
            valid
                .map
                .retain(|_, (principal, _)| principal.key_id != key_id);
        }
    }

    fn recently_revoked(&self, key_id: ApiKeyId) -> bool {
        self.revoked
            .read()
            .map(|revoked| {
                revoked
                    .get(&key_id)
                    .is_some_and(|at| at.elapsed() < self.ttl)
            })
            .unwrap_or(true)
    }

    pub(crate) fn put(&self, digest: KeyDigest, verdict: Verdict) {
        if self.ttl.is_zero() {
            return;
        }
        match verdict {
            Verdict::Valid(principal) if self.recently_revoked(principal.key_id) => {}
            Verdict::Valid(principal) => {
                if let Ok(mut valid) = self.valid.write() {
                    valid.put(digest, principal, self.ttl);
                }
            }
            Verdict::Invalid => {
                if let Ok(mut invalid) = self.invalid.write() {
                    invalid.put(digest, (), self.ttl);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use flowexec_domain::{Actor, ApiKeyId, OrganizationId, Role};

    use super::*;

    fn principal() -> Principal {
        Principal {
            key_id: ApiKeyId::generate(),
            organization_id: OrganizationId::generate(),
            role: Role::Read,
            actor: Actor::System,
        }
    }

    fn digest(n: u8) -> KeyDigest {
        [n; 32]
    }

    #[test]
    fn a_revoked_key_is_forgotten_and_not_cached_again() {
        let cache = KeyCache::new(Duration::from_secs(60), 10);
        let who = principal();
        cache.put(digest(1), Verdict::Valid(who));
        cache.forget(who.key_id);
        assert_eq!(cache.get(&digest(1)), None);
        // A verdict from a lookup made before the revocation arrives late.
        cache.put(digest(1), Verdict::Valid(who));
        assert_eq!(cache.get(&digest(1)), None);
    }

    #[test]
    fn a_verdict_is_returned_until_it_expires() {
        let cache = KeyCache::new(Duration::from_secs(60), 10);
        let p = principal();
        assert_eq!(cache.get(&digest(1)), None);
        cache.put(digest(1), Verdict::Valid(p));
        cache.put(digest(2), Verdict::Invalid);
        assert_eq!(cache.get(&digest(1)), Some(Verdict::Valid(p)));
        assert_eq!(cache.get(&digest(2)), Some(Verdict::Invalid));
        assert_eq!(cache.get(&digest(3)), None);
    }

    #[test]
    fn a_zero_ttl_or_capacity_disables_the_cache() {
        for cache in [
            KeyCache::new(Duration::ZERO, 10),
            KeyCache::new(Duration::from_secs(60), 0),
        ] {
            cache.put(digest(1), Verdict::Valid(principal()));
            cache.put(digest(2), Verdict::Invalid);
            assert_eq!(cache.get(&digest(1)), None);
            assert_eq!(cache.get(&digest(2)), None);
        }
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = KeyCache::new(Duration::from_secs(60), 3);
        for n in 0..10 {
            cache.put(digest(n), Verdict::Valid(principal()));
        }
        let held = (0..10).filter(|n| cache.get(&digest(*n)).is_some()).count();
        assert!((1..=3).contains(&held), "{held} entries held");
        assert!(cache.get(&digest(9)).is_some(), "the newest key is held");
    }

    #[test]
    fn a_flood_of_invalid_keys_does_not_evict_valid_ones() {
        let cache = KeyCache::new(Duration::from_secs(60), 3);
        let p = principal();
        cache.put(digest(200), Verdict::Valid(p));
        for n in 0..100 {
            cache.put(digest(n), Verdict::Invalid);
        }
        assert_eq!(cache.get(&digest(200)), Some(Verdict::Valid(p)));
    }
}
