//! The use cases.

use flowexec_domain::ports::{
    ApiKeyRepository, FlowExecutionRepository, HealthCheck, OrganizationRepository,
    TaskExecutionRepository,
};
use flowexec_domain::{
    Actor, FlowExecutionDetail, FlowExecutionId, NewFlowExecution, Organization, OrganizationId,
    OrganizationName, Principal, Role, TaskExecution, TaskExecutionId,
};

use std::time::Duration;

use crate::error::ServiceError;
use crate::key_cache::{KeyCache, Verdict};
use crate::keys::{self, IssuedKey};

/// Everything the use cases need from a store.
pub trait Store:
    TaskExecutionRepository
    + FlowExecutionRepository
    + ApiKeyRepository
    + OrganizationRepository
    + HealthCheck
{
}

impl<T> Store for T where
    T: TaskExecutionRepository
        + FlowExecutionRepository
        + ApiKeyRepository
        + OrganizationRepository
        + HealthCheck
{
}

/// What the HTTP layer calls. Object-safe, so the API holds an
/// `Arc<dyn ExecutionService>` and its tests can supply a fake.
pub trait ExecutionService: Send + Sync + 'static {
    /// The principal of a bearer key. [`ServiceError::Unauthorized`] for a
    /// malformed, unknown or revoked key, or a wrong secret.
    fn authenticate(&self, key: &str) -> Result<Principal, ServiceError>;

    /// What [`authenticate`](Self::authenticate) would answer, when that is
    /// known without a trip to the store (a malformed key, or a verdict
    /// reached moments ago); `None` when the store must be asked. Never
    /// blocks, so the HTTP layer calls it before reading a request body.
    fn authenticate_cached(&self, key: &str) -> Option<Result<Principal, ServiceError>> {
        let _ = key;
        None
    }

    /// Creates a flow execution with one queued task execution per task.
    /// Needs role admin or write.
    fn create_flow_execution(
        &self,
        principal: &Principal,
        new: NewFlowExecution,
    ) -> Result<FlowExecutionDetail, ServiceError>;

    /// A flow execution of the principal's organization, with its tasks.
    fn get_flow_execution(
        &self,
        principal: &Principal,
        id: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, ServiceError>;

    /// A task execution of the principal's organization.
    fn get_task_execution(
        &self,
        principal: &Principal,
        id: TaskExecutionId,
    ) -> Result<TaskExecution, ServiceError>;

    /// Whether the store answers.
    fn ready(&self) -> Result<(), ServiceError>;
}

/// A new organization and its first (admin) key.
#[derive(Debug, Clone)]
pub struct CreatedOrganization {
    pub organization: Organization,
    pub key: IssuedKey,
}

/// Tunables of the use cases.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// How long an authentication verdict (valid or not) is reused without
    /// a database lookup; zero disables the cache. A key's revocation takes
    /// effect within this time.
    pub key_cache_ttl: Duration,
    /// Most valid keys held in the cache, and separately most invalid ones.
    pub key_cache_capacity: usize,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            key_cache_ttl: Duration::from_secs(10),
            key_cache_capacity: 10_000,
        }
    }
}

/// The use cases over a store `S`.
pub struct Service<S> {
    store: S,
    keys: KeyCache,
}

impl<S> std::fmt::Debug for Service<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl<S: Store> Service<S> {
    pub fn new(store: S) -> Self {
        Self::with_settings(store, &ServiceSettings::default())
    }

    pub fn with_settings(store: S, settings: &ServiceSettings) -> Self {
        Self {
            store,
            keys: KeyCache::new(settings.key_cache_ttl, settings.key_cache_capacity),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Creates an organization and its first key, role admin, actor system.
    /// [`ServiceError::Conflict`] when an organization has that name.
    pub fn create_organization(
        &self,
        name: &OrganizationName,
    ) -> Result<CreatedOrganization, ServiceError> {
        let (key, record) = keys::generate(OrganizationId::generate(), Role::Admin, Actor::System);
        let organization = self.store.create_organization(name, &record)?;
        Ok(CreatedOrganization { organization, key })
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
        let (key, record) = keys::generate(OrganizationId::generate(), Role::Admin, Actor::System);
        Ok(self
            .store
            .bootstrap_organization(&name, &record)?
            .map(|organization| CreatedOrganization { organization, key }))
    }

    /// Issues a new key for an existing organization.
    /// [`ServiceError::NotFound`] if there is no such organization.
    pub fn create_api_key(
        &self,
        organization_id: OrganizationId,
        role: Role,
        actor: Actor,
    ) -> Result<IssuedKey, ServiceError> {
        let (key, record) = keys::generate(organization_id, role, actor);
        self.store.create_api_key(&record)?;
        Ok(key)
    }
}

fn verdict_result(verdict: Verdict) -> Result<Principal, ServiceError> {
    match verdict {
        Verdict::Valid(principal) => Ok(principal),
        Verdict::Invalid => Err(ServiceError::Unauthorized),
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

impl<S: Store> ExecutionService for Service<S> {
    fn authenticate(&self, key: &str) -> Result<Principal, ServiceError> {
        let id = keys::parse_key_id(key).ok_or(ServiceError::Unauthorized)?;
        let digest = keys::sha256(key);
        if let Some(verdict) = self.keys.get(&digest) {
            return verdict_result(verdict);
        }
        let stored = self.store.find_api_key(id)?;
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
        self.keys.put(digest, verdict);
        verdict_result(verdict)
    }

    fn authenticate_cached(&self, key: &str) -> Option<Result<Principal, ServiceError>> {
        if keys::parse_key_id(key).is_none() {
            return Some(Err(ServiceError::Unauthorized));
        }
        self.keys.get(&keys::sha256(key)).map(verdict_result)
    }

    fn create_flow_execution(
        &self,
        principal: &Principal,
        new: NewFlowExecution,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        require_write(principal)?;
        let created =
            self.store
                .create_flow_execution(principal.tenant(), &new, principal.actor)?;
        tracing::info!(
            flow_execution.id = %created.flow_execution.id,
            tasks = created.task_executions.len(),
            "flow execution created"
        );
        Ok(created)
    }

    fn get_flow_execution(
        &self,
        principal: &Principal,
        id: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        Ok(self.store.get_flow_execution(principal.tenant(), id)?)
    }

    fn get_task_execution(
        &self,
        principal: &Principal,
        id: TaskExecutionId,
    ) -> Result<TaskExecution, ServiceError> {
        Ok(self.store.get_task_execution(principal.tenant(), id)?)
    }

    fn ready(&self) -> Result<(), ServiceError> {
        self.store.ping().map_err(|e| match e {
            flowexec_domain::RepoError::Unavailable(cause)
            | flowexec_domain::RepoError::Unknown(cause) => ServiceError::Unavailable(cause),
            other => ServiceError::Unavailable(other.into()),
        })
    }
}
