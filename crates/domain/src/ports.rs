//! Ports: what the use cases need from a store. `flowexec-persistence`
//! implements them on PostgreSQL and on SQLite; one contract suite
//! (`flowexec-contract`) holds both to the same behaviour.
//!
//! Tenant data is reached through a **unit of work**:
//! [`ExecutionStore::in_tenant`] runs a closure in one transaction confined
//! to one organization, handing it a [`TenantTx`] whose operations compose
//! (create a flow execution and its tasks and events; complete a task and
//! create its retry; …) and commit or roll back together. The rules — what
//! a change writes — come from the domain (`Transition::plan`,
//! `NewFlowExecution::plan`); a store only persists what it is given.
//!
//! Every operation is confined to the unit's tenant; a row of another
//! tenant MUST be answered exactly as a row that does not exist
//! ([`RepoError::NotFound`]).

use chrono::{DateTime, Utc};

use crate::access::Tenant;
use crate::claim::{Claim, Heartbeat};

use crate::entities::FlowStatus;
use crate::entities::{
    ApiKeyCredentials, ApiKeyInfo, FlowExecution, FlowExecutionDetail, NewApiKey, Organization,
    RecordedEvent, TaskExecution, TaskExecutionEvent,
};
use crate::error::RepoError;
use crate::flows::{Flow, FlowVersion};
use crate::ids::{ApiKeyId, FlowExecutionId, OrganizationId, TaskExecutionId};
use crate::names::{FlowName, TaskName};
use crate::query::{CountBy, FlowExecutionFilter, ListQuery, TaskExecutionFilter};
use crate::transition::{ChangeOutcome, StatusChange};

/// How a row read in a unit of work is locked until the unit ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLock {
    /// Not locked.
    None,
    /// Shared: others may read and share-lock it, none may change it (nor
    /// lock it exclusively) until this unit ends.
    Shared,
    /// Exclusive: the units that lock it run one after another.
    Exclusive,
}

/// The operations of a unit of work on one tenant's executions.
pub trait TenantTx {
    /// The task execution with this id. Soft-deleted ones are returned too.
    ///
    /// MUST return [`RepoError::NotFound`] if it does not exist in the tenant.
    fn task_execution(&mut self, id: TaskExecutionId) -> Result<TaskExecution, RepoError>;

    /// The task execution with this id, locked until the unit of work ends
    /// (a change by another unit waits for it), for a decision that the
    /// row must not change under.
    ///
    /// MUST return [`RepoError::NotFound`] if it does not exist in the tenant.
    fn lock_task_execution(&mut self, id: TaskExecutionId) -> Result<TaskExecution, RepoError>;

    /// The flow execution with its task executions, by task name then
    /// execution index.
    ///
    /// MUST return [`RepoError::NotFound`] if it does not exist in the tenant.
    fn flow_execution(&mut self, id: FlowExecutionId) -> Result<FlowExecutionDetail, RepoError>;

    /// Up to `limit` status changes of a task execution with an id greater
    /// than `after`, oldest first; the first is its creation.
    ///
    /// MUST return [`RepoError::NotFound`] if the task execution does not
    /// exist in the tenant.
    fn events(
        &mut self,
        id: TaskExecutionId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, RepoError>;

    /// The latest status change of a task execution (`None` if it has no
    /// event or does not exist in the tenant).
    fn last_event(&mut self, id: TaskExecutionId) -> Result<Option<TaskExecutionEvent>, RepoError>;

    /// The highest `execution_index` of the task's attempts in the flow
    /// execution.
    ///
    /// MUST return [`RepoError::NotFound`] if the task has no attempt there.
    fn latest_execution_index(
        &mut self,
        flow_execution_id: FlowExecutionId,
        task_name: &TaskName,
    ) -> Result<i32, RepoError>;

    /// The `execution_index` and status of each attempt of one run of a
    /// task — of one iteration of a `for_each` task, or (`None`) of a task
    /// that runs once — ascending by index (empty: none).
    fn run_attempts(
        &mut self,
        flow_execution_id: FlowExecutionId,
        task_name: &TaskName,
        iteration: Option<i32>,
    ) -> Result<Vec<(i32, crate::status::TaskStatus)>, RepoError>;

    /// Whether the latest attempt of some task of the flow execution (of
    /// some iteration of a `for_each` task) is in one of `statuses`.
    fn any_latest_in(
        &mut self,
        flow_execution_id: FlowExecutionId,
        statuses: &[crate::status::TaskStatus],
    ) -> Result<bool, RepoError>;

    /// Whether the flow execution exists in the tenant.
    fn has_flow_execution(&mut self, id: FlowExecutionId) -> Result<bool, RepoError>;

    /// One page of the task executions that match `query.filter`, in
    /// `query.order` (by `created_at`, then `id`), strictly after
    /// `query.after`, at most `query.limit`.
    fn list_task_executions(
        &mut self,
        query: &ListQuery<TaskExecutionFilter>,
    ) -> Result<Vec<TaskExecution>, RepoError>;

    /// One page of the flow executions that match, as
    /// [`list_task_executions`](Self::list_task_executions).
    fn list_flow_executions(
        &mut self,
        query: &ListQuery<FlowExecutionFilter>,
    ) -> Result<Vec<FlowExecution>, RepoError>;

    /// How many task executions match `filter`, by status or task name (as
    /// its text); groups with none are absent.
    fn count_task_executions(
        &mut self,
        filter: &TaskExecutionFilter,
        by: CountBy,
    ) -> Result<Vec<(String, i64)>, RepoError>;

    /// The organization's API keys, oldest first (revoked ones too).
    fn api_keys(&mut self) -> Result<Vec<ApiKeyInfo>, RepoError>;

    /// The organization's API keys, oldest first, locked until the unit of
    /// work ends: of concurrent units that lock them, each sees what the
    /// ones before it committed (so that a rule over all of them — never
    /// revoke the last admin key — holds under concurrency).
    fn lock_api_keys(&mut self) -> Result<Vec<ApiKeyInfo>, RepoError>;

    /// Marks a key revoked at `at` (a revoked key keeps its first time).
    ///
    /// MUST return [`RepoError::NotFound`] if it does not exist in the tenant.
    fn revoke_api_key(&mut self, id: ApiKeyId, at: DateTime<Utc>) -> Result<(), RepoError>;

    /// Stores a flow execution as given. Its organization MUST be the
    /// unit's tenant.
    fn insert_flow_execution(&mut self, flow: &FlowExecution) -> Result<(), RepoError>;

    /// Stores task executions as given, in their flow execution (which MUST
    /// exist in the tenant: else [`RepoError::NotFound`]).
    ///
    /// MUST return [`RepoError::Conflict`] if one has the same (flow
    /// execution, task name, execution index) as a stored one.
    fn insert_task_executions(&mut self, tasks: &[TaskExecution]) -> Result<(), RepoError>;

    /// Appends events, in order, to the audit trail.
    fn insert_events(&mut self, events: &[TaskExecutionEvent]) -> Result<(), RepoError>;

    /// Applies a status change as one compare-and-set — the row must be
    /// accepted by `change.accepts` (its status one of `change.from`, its
    /// version meeting `change.if_match`) — writing exactly the fields the
    /// change names (`change.applied_to`), and appends its event
    /// (`change.event(<status before>)`): [`ChangeOutcome::Changed`] with
    /// the row after the change. Otherwise changes nothing and answers
    /// [`ChangeOutcome::Refused`] with the row as it is, read under the same
    /// lock the compare-and-set took.
    ///
    /// MUST return [`RepoError::NotFound`] if the row does not exist in the
    /// tenant.
    fn change_status(&mut self, change: &StatusChange) -> Result<ChangeOutcome, RepoError>;

    /// Many status changes in this unit of work, each answered as
    /// [`TenantTx::change_status`] answers it, in order: a row that does not
    /// exist is that change's `Err(RepoError::NotFound)`, and the others go
    /// on. `Err` as a whole only when the store fails. A store may apply
    /// changes of the same shape in one statement; this default applies
    /// them one by one.
    fn change_many(
        &mut self,
        changes: &[StatusChange],
    ) -> Result<Vec<Result<ChangeOutcome, RepoError>>, RepoError> {
        changes
            .iter()
            .map(|change| match self.change_status(change) {
                Ok(outcome) => Ok(Ok(outcome)),
                Err(RepoError::NotFound) => Ok(Err(RepoError::NotFound)),
                Err(other) => Err(other),
            })
            .collect()
    }

    /// Takes up to `claim.limit` task executions that `claim.may_take`, the
    /// highest `priority` first, then the oldest (`created_at`, `id`),
    /// skipping rows that a concurrent unit has locked (never waiting for
    /// them, never taking a row twice); writes each as `claim.applied_to`
    /// and appends `claim.event`. Answers the rows after the claim, in that
    /// order (none: nothing to take).
    fn claim(&mut self, claim: &Claim) -> Result<Vec<TaskExecution>, RepoError>;

    /// When the earliest task this claim could take by name, queued and
    /// not yet due (`not_before` after `claim.at`), falls due; `None` when
    /// there is none. What a claim that took nothing may sleep until.
    fn next_due(&mut self, claim: &Claim) -> Result<Option<DateTime<Utc>>, RepoError>;

    /// The flow execution (without its tasks), locked until the unit of
    /// work ends: the engine's decisions for one run are made one unit at
    /// a time.
    ///
    /// MUST return [`RepoError::NotFound`] if it does not exist in the tenant.
    fn lock_flow_execution(&mut self, id: FlowExecutionId) -> Result<FlowExecution, RepoError>;

    /// Stores a flow execution's status, as of `at`.
    ///
    /// MUST return [`RepoError::NotFound`] if it does not exist in the tenant.
    fn set_flow_status(
        &mut self,
        id: FlowExecutionId,
        status: FlowStatus,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// Moves each of the flow executions that is `queued` to `running`, as
    /// of `at` (a claim started one of its tasks); the others are left as
    /// they are, unlocked.
    fn mark_flows_running(
        &mut self,
        ids: &[FlowExecutionId],
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// The flow of this name (deleted or not), locked as `lock` says until
    /// the unit of work ends; `None` if the tenant has none.
    fn flow(&mut self, name: &FlowName, lock: RowLock) -> Result<Option<Flow>, RepoError>;

    /// Stores a flow as given, inserting or replacing the tenant's flow of
    /// that name.
    fn save_flow(&mut self, flow: &Flow) -> Result<(), RepoError>;

    /// Stores a version of a flow (which MUST have been saved).
    ///
    /// MUST return [`RepoError::Conflict`] if that version is stored.
    fn insert_flow_version(&mut self, version: &FlowVersion) -> Result<(), RepoError>;

    /// One version of a flow, whether the flow was deleted or not.
    ///
    /// MUST return [`RepoError::NotFound`] if it does not exist in the tenant.
    fn flow_version(&mut self, name: &FlowName, version: i32) -> Result<FlowVersion, RepoError>;

    /// Up to `limit` flows that are not deleted, by name, strictly after
    /// `after`.
    fn list_flows(
        &mut self,
        after: Option<&FlowName>,
        limit: usize,
    ) -> Result<Vec<Flow>, RepoError>;

    /// Extends a lease as one compare-and-set: if `beat.applies_to` the row
    /// (running, held by the worker), writes `beat.applied_to` and answers
    /// [`ChangeOutcome::Changed`]; else changes nothing and answers
    /// [`ChangeOutcome::Refused`] with the row as it is. Records no event.
    ///
    /// MUST return [`RepoError::NotFound`] if the row does not exist in the
    /// tenant.
    fn heartbeat(&mut self, beat: &Heartbeat) -> Result<ChangeOutcome, RepoError>;
}

/// The runs that are overdue, across tenants: what the sweeper handles.
pub trait OverdueRuns: Send + Sync + 'static {
    /// Up to `limit` task executions of any organization that are running
    /// at `at` and past their lease (`lease_expires_at` before `at`) or
    /// their time limit (`started_at` + `timeout_seconds` at or before
    /// `at`), the longest overdue leases first; their organization and id
    /// only. The caller decides and changes each inside its own tenant.
    fn overdue_runs(
        &self,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(OrganizationId, TaskExecutionId)>, RepoError>;
}

/// Tenant data, through units of work.
pub trait ExecutionStore: Send + Sync + 'static {
    type Tx<'t>: TenantTx
    where
        Self: 't;

    /// Runs `work` in one transaction confined to `tenant`: committed when
    /// it returns `Ok`, rolled back when it returns `Err` (which is passed
    /// on). A store MAY run `work` again when an attempt is sure to have
    /// left nothing behind (a lost database connection), so `work` MUST NOT
    /// have effects outside the unit of work.
    fn in_tenant<T, F>(&self, tenant: Tenant, work: F) -> Result<T, RepoError>
    where
        F: FnMut(&mut Self::Tx<'_>) -> Result<T, RepoError>;

    /// Runs `work`, which only reads, on one consistent snapshot of
    /// `tenant`'s data (it may run concurrently with writes).
    fn read<T, F>(&self, tenant: Tenant, work: F) -> Result<T, RepoError>
    where
        F: FnMut(&mut Self::Tx<'_>) -> Result<T, RepoError>;

    /// One task execution, read as cheaply as the store can (the hot path
    /// of `GET /task-executions/{id}`); the same answer as
    /// [`TenantTx::task_execution`].
    fn task_execution(
        &self,
        tenant: Tenant,
        id: TaskExecutionId,
    ) -> Result<TaskExecution, RepoError>;
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
    /// Stores an organization and its first key in one transaction.
    /// `first_key.organization_id` is the organization's id.
    ///
    /// MUST return [`RepoError::Conflict`] if an organization of the same
    /// name exists (names are unique in a deployment).
    fn create_organization(
        &self,
        organization: &Organization,
        first_key: &NewApiKey,
    ) -> Result<(), RepoError>;

    /// Stores the organization and its first key only if the store has no
    /// organization at all, atomically: of any number of concurrent callers
    /// (processes included) at most one stores it. `false` when an
    /// organization already existed.
    fn bootstrap_organization(
        &self,
        organization: &Organization,
        first_key: &NewApiKey,
    ) -> Result<bool, RepoError>;

    /// Every organization, oldest first. A question across tenants, for
    /// administrators only: on PostgreSQL it needs the administrative
    /// connection (`database.admin_url`), and the server's role is refused.
    fn list_organizations(&self) -> Result<Vec<Organization>, RepoError>;
}

pub trait DeploymentSecrets: Send + Sync + 'static {
    /// The secret that signs list cursors: made once when the store's schema
    /// is created, the same for every server on the store, at least 32
    /// bytes.
    fn cursor_secret(&self) -> Result<Vec<u8>, RepoError>;
}

pub trait HealthCheck: Send + Sync + 'static {
    /// Succeeds when the store answers a trivial query.
    fn ping(&self) -> Result<(), RepoError>;
}
