//! Administration: organizations and API keys (the `flowexec` commands).

use flowexec_domain::ports::{ApiKeyRepository, ExecutionStore, OrganizationRepository, TenantTx};
use flowexec_domain::{
    Actor, ApiKeyId, ApiKeyInfo, Clock, Organization, OrganizationId, OrganizationName, Role,
    SystemClock, Tenant,
};

use crate::error::ServiceError;
use crate::keys::{self, IssuedKey};

/// A new organization and its first (admin) key.
#[derive(Debug, Clone)]
pub struct CreatedOrganization {
    pub organization: Organization,
    pub key: IssuedKey,
}

/// The administration use cases over a store `S`, with the time from `C`.
pub struct Admin<S, C = SystemClock> {
    store: S,
    clock: C,
}

impl<S: OrganizationRepository + ApiKeyRepository> Admin<S> {
    pub fn new(store: S) -> Self {
        Self::with_clock(store, SystemClock)
    }
}

impl<S: OrganizationRepository + ApiKeyRepository, C: Clock> Admin<S, C> {
    pub fn with_clock(store: S, clock: C) -> Self {
        Self { store, clock }
    }

    fn new_organization(
        &self,
        name: OrganizationName,
    ) -> (CreatedOrganization, flowexec_domain::NewApiKey) {
        let now = self.clock.now();
        let organization = Organization {
            id: OrganizationId::generate(),
            name,
            created_at: now,
        };
        let (key, record) = keys::generate(organization.id, Role::Admin, Actor::System, now);
        (CreatedOrganization { organization, key }, record)
    }

    /// Creates an organization and its first key, role admin, actor system.
    /// [`ServiceError::Conflict`] when an organization has that name.
    pub fn create_organization(
        &self,
        name: &OrganizationName,
    ) -> Result<CreatedOrganization, ServiceError> {
        let (created, record) = self.new_organization(name.clone());
        self.store
            .create_organization(&created.organization, &record)?;
        Ok(created)
    }

    /// Every organization, oldest first (administrators only: see
    /// [`OrganizationRepository::list_organizations`]).
    pub fn list_organizations(&self) -> Result<Vec<Organization>, ServiceError> {
        Ok(self.store.list_organizations()?)
    }

    /// First start: when the store has no organization at all, creates
    /// organization `default` and an admin key (actor system). `None` when
    /// any organization exists. Safe to call from many processes at once.
    pub fn bootstrap(&self) -> Result<Option<CreatedOrganization>, ServiceError> {
        let name = OrganizationName::parse("default")
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("{e}")))?;
        let (created, record) = self.new_organization(name);
        Ok(self
            .store
            .bootstrap_organization(&created.organization, &record)?
            .then_some(created))
    }

    /// Issues a new key for an existing organization.
    /// [`ServiceError::NotFound`] if there is no such organization.
    pub fn create_api_key(
        &self,
        organization_id: OrganizationId,
        role: Role,
        actor: Actor,
    ) -> Result<IssuedKey, ServiceError> {
        let (key, record) = keys::generate(organization_id, role, actor, self.clock.now());
        self.store.create_api_key(&record)?;
        Ok(key)
    }
}

impl<S, C> Admin<S, C>
where
    S: OrganizationRepository + ApiKeyRepository + ExecutionStore,
    C: Clock,
{
    /// The keys of an organization, oldest first, revoked ones included
    /// (an organization without keys, or none at all, answers an empty
    /// list).
    pub fn list_api_keys(
        &self,
        organization_id: OrganizationId,
    ) -> Result<Vec<ApiKeyInfo>, ServiceError> {
        Ok(self
            .store
            .read(Tenant::new(organization_id), |tx| tx.api_keys())?)
    }

    /// Revokes an active key by its id alone, by the rule of
    /// [`crate::revoke`]. [`ServiceError::NotFound`] when no active key has
    /// this id (unknown, or already revoked).
    pub fn revoke_api_key(&self, id: ApiKeyId) -> Result<ApiKeyInfo, ServiceError> {
        let key = self.store.find_api_key(id)?.ok_or(ServiceError::NotFound)?;
        crate::api_keys::revoke(
            &self.store,
            Tenant::new(key.organization_id),
            id,
            self.clock.now(),
        )
    }
}
