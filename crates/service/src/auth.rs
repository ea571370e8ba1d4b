//! Authentication: who is calling, from a bearer key; and the role rules.

use std::time::Duration;

use flowexec_domain::ports::ApiKeyRepository;
use flowexec_domain::{ApiKeyId, Principal, Role};

use crate::error::ServiceError;
use crate::key_cache::{KeyCache, Verdict};
use crate::keys;

/// What the HTTP layer asks of authentication.
pub trait Authenticate: Send + Sync + 'static {
    /// The principal of a bearer key. [`ServiceError::Unauthorized`] for a
    /// malformed, unknown or revoked key, or a wrong secret.
    fn authenticate(&self, key: &str) -> Result<Principal, ServiceError>;

    /// What [`authenticate`](Self::authenticate) would answer, when that is
    /// known without a trip to the store (a malformed key, or a verdict
    /// reached moments ago); `None` when the store must be asked. Never
    /// blocks, so the HTTP layer calls it before reading a request body.
    fn authenticate_cached(&self, key: &str) -> Option<Result<Principal, ServiceError>>;

    /// Forgets what was verified of the key with this id: it was revoked,
    /// and is refused from now on by this process (others: within the
    /// cache's lifetime).
    fn forget_key(&self, id: ApiKeyId);
}

/// How long verdicts are kept, and how many.
#[derive(Debug, Clone)]
pub struct KeyCacheSettings {
    /// How long an authentication verdict (valid or not) is reused without
    /// a database lookup; zero disables the cache. A key's revocation takes
    /// effect within this time.
    pub ttl: Duration,
    /// Most valid keys held, and separately most invalid ones.
    pub capacity: usize,
}

impl Default for KeyCacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            capacity: 10_000,
        }
    }
}

/// Authentication by API key over a key store, with a cache of verdicts
/// (see `key_cache`).
pub struct KeyAuthenticator<K> {
    keys: K,
    cache: KeyCache,
}

impl<K: ApiKeyRepository> KeyAuthenticator<K> {
    pub fn new(keys: K, settings: &KeyCacheSettings) -> Self {
        Self {
            keys,
            cache: KeyCache::new(settings.ttl, settings.capacity),
        }
    }
}

fn verdict_result(verdict: Verdict) -> Result<Principal, ServiceError> {
    match verdict {
        Verdict::Valid(principal) => Ok(principal),
        Verdict::Invalid => Err(ServiceError::Unauthorized),
    }
}

impl<K: ApiKeyRepository> Authenticate for KeyAuthenticator<K> {
    fn authenticate(&self, key: &str) -> Result<Principal, ServiceError> {
        let id = keys::parse_key_id(key).ok_or(ServiceError::Unauthorized)?;
        let digest = keys::sha256(key);
        if let Some(verdict) = self.cache.get(&digest) {
            return verdict_result(verdict);
        }
        let stored = self.keys.find_api_key(id)?;
        // An unknown id is compared too (against no key), so that it costs
        // what a wrong secret costs.
        let matches = keys::digest_matches(&digest, stored.as_ref().map(|c| &c.secret_sha256));
        let verdict = match stored {
            Some(credentials) if matches => Verdict::Valid(Principal {
                key_id: credentials.id,
                organization_id: credentials.organization_id,
                role: credentials.role,
                actor: credentials.actor,
            }),
            _ => Verdict::Invalid,
        };
        self.cache.put(digest, verdict);
        verdict_result(verdict)
    }

    fn authenticate_cached(&self, key: &str) -> Option<Result<Principal, ServiceError>> {
        if keys::parse_key_id(key).is_none() {
            return Some(Err(ServiceError::Unauthorized));
        }
        self.cache.get(&keys::sha256(key)).map(verdict_result)
    }

    fn forget_key(&self, id: ApiKeyId) {
        self.cache.forget(id);
    }
}

/// [`ServiceError::Forbidden`] unless the principal's key is an admin key.
pub fn require_admin(principal: &Principal) -> Result<(), ServiceError> {
    if principal.role == Role::Admin {
        Ok(())
    } else {
        Err(ServiceError::Forbidden { required: "admin" })
    }
}

/// [`ServiceError::Forbidden`] unless the principal's role may create and
/// change executions. The use cases check it; the HTTP layer also checks it
/// before reading a body, so a key that may not write costs no parsing.
pub fn require_write(principal: &Principal) -> Result<(), ServiceError> {
    if principal.role.can_write() {
        Ok(())
    } else {
        Err(ServiceError::Forbidden {
            required: "admin, write",
        })
    }
}

/// [`ServiceError::Forbidden`] unless the principal's role may run tasks
/// (claim them, send heartbeats, report results).
pub fn require_worker(principal: &Principal) -> Result<(), ServiceError> {
    if principal.role.can_run_tasks() {
        Ok(())
    } else {
        Err(ServiceError::Forbidden {
            required: "admin, worker",
        })
    }
}
