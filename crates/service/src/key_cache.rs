//! A short-lived cache of verified API key credentials, so that a busy
//! client does not cost a database lookup per request.
//!
//! What is cached is the stored record (organization, role, actor, secret
//! hash), never a yes/no: every request still compares its key with the
//! hash in constant time. Unknown keys are not cached. A change to a key
//! (revocation, once it exists) takes effect within the time-to-live.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use flowexec_domain::{ApiKeyCredentials, ApiKeyId};

pub(crate) struct KeyCache {
    ttl: Duration,
    capacity: usize,
    entries: RwLock<HashMap<ApiKeyId, (ApiKeyCredentials, Instant)>>,
}

impl KeyCache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// The credentials of `id` if they were stored less than the TTL ago.
    pub(crate) fn get(&self, id: ApiKeyId) -> Option<ApiKeyCredentials> {
        if !self.enabled() {
            return None;
        }
        let entries = self.entries.read().ok()?;
        let (credentials, stored) = entries.get(&id)?;
        (stored.elapsed() < self.ttl).then(|| credentials.clone())
    }

    pub(crate) fn put(&self, credentials: &ApiKeyCredentials) {
        if !self.enabled() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= self.capacity {
                // Drop what has expired; if that frees nothing, start over.
                let ttl = self.ttl;
                entries.retain(|_, (_, stored)| stored.elapsed() < ttl);
                if entries.len() >= self.capacity {
                    entries.clear();
                }
            }
            entries.insert(credentials.id, (credentials.clone(), Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use flowexec_domain::{Actor, OrganizationId, Role};

    use super::*;

    fn credentials() -> ApiKeyCredentials {
        ApiKeyCredentials {
            id: ApiKeyId::generate(),
            organization_id: OrganizationId::generate(),
            role: Role::Read,
            actor: Actor::System,
            secret_sha256: [1; 32],
        }
    }

    #[test]
    fn a_stored_key_is_returned_until_it_expires() {
        let cache = KeyCache::new(Duration::from_secs(60), 10);
        let c = credentials();
        assert_eq!(cache.get(c.id), None);
        cache.put(&c);
        assert_eq!(cache.get(c.id), Some(c));
    }

    #[test]
    fn a_zero_ttl_or_capacity_disables_the_cache() {
        for cache in [
            KeyCache::new(Duration::ZERO, 10),
            KeyCache::new(Duration::from_secs(60), 0),
        ] {
            let c = credentials();
            cache.put(&c);
            assert_eq!(cache.get(c.id), None);
        }
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = KeyCache::new(Duration::from_secs(60), 3);
        let keys: Vec<ApiKeyCredentials> = (0..10).map(|_| credentials()).collect();
        for c in &keys {
            cache.put(c);
        }
        let held = keys.iter().filter(|c| cache.get(c.id).is_some()).count();
        assert!((1..=3).contains(&held), "{held} entries held");
        assert!(cache.get(keys[9].id).is_some(), "the newest key is held");
    }
}
