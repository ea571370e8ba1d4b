//! Ports: what the service layer needs from a store. `flowexec-persistence`
//! implements them on PostgreSQL; the service tests implement them in memory.
//!
//! Every method is one unit of work: one transaction owned by the adapter.
//! Methods that touch tenant data take a [`Tenant`] and MUST confine every
//! read and write to it; a row of another tenant MUST be answered exactly as
//! a row that does not exist ([`RepoError::NotFound`]).

use crate::access::{Actor, Tenant};
use crate::entities::{
    ApiKeyCredentials, FlowExecutionDetail, NewApiKey, NewFlowExecution, Organization,
    StatusChange, TaskExecution, TaskExecutionEvent,
};
use crate::error::RepoError;
use crate::ids::{ApiKeyId, FlowExecutionId, TaskExecutionId};
use crate::names::OrganizationName;

pub trait TaskExecutionRepository: Send + Sync + 'static {
    /// The task execution with this id in the tenant.
    ///
    /// MUST return [`RepoError::NotFound`] if it does not exist in the tenant.
    /// Soft-deleted task executions are still returned.
    fn get_task_execution(
        &self,
        tenant: Tenant,
        id: TaskExecutionId,
    ) -> Result<TaskExecution, RepoError>;

    /// Moves a task execution to `change.to` as one compare-and-set, and
    /// records the event row (from, to, actor, time, reason) in the same
    /// transaction. Sets `started_at` on `running`, `completed_at` and
    /// `output` on `completed`, `completed_at` and `error` on `failed`.
    ///
    /// MUST return [`RepoError::NotFound`] if the row does not exist in the
    /// tenant, and [`RepoError::InvalidTransition`] with the current status
    /// (changing nothing) if the state machine forbids the change.
    fn transition_task_execution(
        &self,
        tenant: Tenant,
        change: &StatusChange,
    ) -> Result<TaskExecution, RepoError>;

    /// The status changes of a task execution, oldest first, starting with
    /// its creation (from no status to `queued`).
    ///
    /// MUST return [`RepoError::NotFound`] if the task execution does not
    /// exist in the tenant.
    fn list_task_execution_events(
        &self,
        tenant: Tenant,
        id: TaskExecutionId,
    ) -> Result<Vec<TaskExecutionEvent>, RepoError>;
}

pub trait FlowExecutionRepository: Send + Sync + 'static {
    /// Creates the flow execution and one `queued` task execution per task
    /// (execution index 0, `modified_by` = `actor`), with their creation
    /// events, in one transaction: all or nothing.
    ///
    /// MUST return [`RepoError::Conflict`] if a task execution with the same
    /// (flow execution, task name, execution index) already exists.
    fn create_flow_execution(
        &self,
        tenant: Tenant,
        new: &NewFlowExecution,
        actor: Actor,
    ) -> Result<FlowExecutionDetail, RepoError>;

    /// The flow execution with its task executions.
    ///
    /// MUST return [`RepoError::NotFound`] if it does not exist in the tenant.
    fn get_flow_execution(
        &self,
        tenant: Tenant,
        id: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, RepoError>;
}

pub trait ApiKeyRepository: Send + Sync + 'static {
    /// The credentials of the key with this id, across all tenants: this is
    /// the one lookup made before the organization is known. Revoked keys
    /// are not returned.
    fn find_api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyCredentials>, RepoError>;

    /// Stores a new key for its organization (`key.organization_id`).
    ///
    /// MUST return [`RepoError::NotFound`] if the organization does not exist.
    fn create_api_key(&self, key: &NewApiKey) -> Result<(), RepoError>;
}

pub trait OrganizationRepository: Send + Sync + 'static {
    /// Creates an organization and its first key in one transaction.
    /// `first_key.organization_id` is the new organization's id.
    ///
    /// MUST return [`RepoError::Conflict`] if an organization of the same
    /// name exists (names are unique in a deployment).
    fn create_organization(
        &self,
        name: &OrganizationName,
        first_key: &NewApiKey,
    ) -> Result<Organization, RepoError>;

    /// Creates the organization and its first key only if the store has no
    /// organization at all, atomically: of any number of concurrent callers
    /// (processes included) at most one creates it. `None` when an
    /// organization already existed.
    fn bootstrap_organization(
        &self,
        name: &OrganizationName,
        first_key: &NewApiKey,
    ) -> Result<Option<Organization>, RepoError>;

    /// Every organization, oldest first. A question across tenants, for
    /// administrators only: on PostgreSQL it needs the administrative
    /// connection (`database.admin_url`), and the server's role is refused.
    fn list_organizations(&self) -> Result<Vec<Organization>, RepoError>;
}

pub trait HealthCheck: Send + Sync + 'static {
    /// Succeeds when the store answers a trivial query.
    fn ping(&self) -> Result<(), RepoError>;
}
