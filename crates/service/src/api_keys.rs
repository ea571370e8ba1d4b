//! API keys managed by an organization's admins: issue, list, revoke. The
//! rule that an organization keeps at least one active admin key is the
//! domain's (`ApiKeyInfo::check_revocable`), applied over the keys locked in
//! one unit of work, so that two admins revoking each other at once cannot
//! both succeed.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use flowexec_domain::ports::{ApiKeyRepository, ExecutionStore, TenantTx};
use flowexec_domain::{
    Actor, ApiKeyId, ApiKeyInfo, Clock, Principal, RepoError, Role, SystemClock, Tenant,
};

use crate::auth::{require_admin, Authenticate};
use crate::error::ServiceError;
use crate::keys::{self, IssuedKey};

/// What the HTTP layer asks of key management (role admin).
pub trait KeyUseCases: Send + Sync + 'static {
    /// Issues a key of the principal's organization; `actor` defaults to
    /// the principal's.
    fn create_key(
        &self,
        principal: &Principal,
        role: Role,
        actor: Option<Actor>,
    ) -> Result<IssuedKey, ServiceError>;

    /// The organization's keys, oldest first, revoked ones included.
    fn list_keys(&self, principal: &Principal) -> Result<Vec<ApiKeyInfo>, ServiceError>;

    /// Revokes a key of the organization (as it is if already revoked):
    /// refused for its last active admin key. This process refuses the key
    /// at once.
    fn revoke_key(&self, principal: &Principal, id: ApiKeyId) -> Result<ApiKeyInfo, ServiceError>;
}

/// Revokes `id` in `tenant` at `at`, by the rule: a unit of work over the
/// organization's locked keys. Shared by the HTTP use case and the CLI.
pub fn revoke<S: ExecutionStore>(
    store: &S,
    tenant: Tenant,
    id: ApiKeyId,
    at: DateTime<Utc>,
) -> Result<ApiKeyInfo, ServiceError> {
    Ok(store.in_tenant(tenant, |tx| {
        let keys = tx.lock_api_keys()?;
        let target = keys
            .iter()
            .find(|key| key.id == id)
            .cloned()
            .ok_or(RepoError::NotFound)?;
        if target.revoked_at.is_some() {
            return Ok(target);
        }
        target.check_revocable(keys.iter().filter(|k| k.is_active_admin()).count())?;
        tx.revoke_api_key(id, at)?;
        Ok(ApiKeyInfo {
            revoked_at: Some(at),
            ..target
        })
    })?)
}

/// Key management over a store `S`, with the time from `C`; revoked keys
/// are forgotten by `auth`.
pub struct ApiKeys<S, C = SystemClock> {
    store: S,
    clock: C,
    auth: Arc<dyn Authenticate>,
}

impl<S: ExecutionStore + ApiKeyRepository> ApiKeys<S> {
    pub fn new(store: S, auth: Arc<dyn Authenticate>) -> Self {
        Self::with_clock(store, SystemClock, auth)
    }
}

impl<S: ExecutionStore + ApiKeyRepository, C: Clock> ApiKeys<S, C> {
    pub fn with_clock(store: S, clock: C, auth: Arc<dyn Authenticate>) -> Self {
        Self { store, clock, auth }
    }
}

impl<S: ExecutionStore + ApiKeyRepository, C: Clock> KeyUseCases for ApiKeys<S, C> {
    fn create_key(
        &self,
        principal: &Principal,
        role: Role,
        actor: Option<Actor>,
    ) -> Result<IssuedKey, ServiceError> {
        require_admin(principal)?;
        let (key, record) = keys::generate(
            principal.organization_id,
            role,
            actor.unwrap_or(principal.actor),
            self.clock.now(),
        );
        self.store.create_api_key(&record)?;
        tracing::info!(api_key.id = %key.id, role = %role, "API key issued");
        Ok(key)
    }

    fn list_keys(&self, principal: &Principal) -> Result<Vec<ApiKeyInfo>, ServiceError> {
        require_admin(principal)?;
        Ok(self.store.read(principal.tenant(), |tx| tx.api_keys())?)
    }

    fn revoke_key(&self, principal: &Principal, id: ApiKeyId) -> Result<ApiKeyInfo, ServiceError> {
        require_admin(principal)?;
        let revoked = revoke(&self.store, principal.tenant(), id, self.clock.now())?;
        self.auth.forget_key(id);
        tracing::info!(api_key.id = %id, "API key revoked");
        Ok(revoked)
    }
}
