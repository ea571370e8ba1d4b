//! The use cases on flow and task executions. Each asks the domain what a
//! change writes and hands that to the store in one unit of work.

use std::slice;
use std::sync::OnceLock;

use flowexec_domain::ports::{DeploymentSecrets, ExecutionStore, TenantTx};
use flowexec_domain::{
    ChangeOutcome, Clock, CountBy, FlowExecution, FlowExecutionDetail, FlowExecutionFilter,
    FlowExecutionId, IfMatch, ListQuery, NewFlowExecution, Order, Position, Principal,
    RecordedEvent, RepoError, RetryRefusal, RetryRequest, SystemClock, TaskExecution,
    TaskExecutionFilter, TaskExecutionId, Transition,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::require_write;
use crate::cursor::CursorKey;
use crate::error::ServiceError;

/// Most items one page may hold, and how many when the caller does not say.
pub const MAX_PAGE: usize = 500;
pub const DEFAULT_PAGE: usize = 50;

/// A requested page of a list: its size (1–[`MAX_PAGE`]) and, after the
/// first, the cursor the previous page ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_PAGE,
            cursor: None,
        }
    }
}

/// One page of a list, and the cursor of the next (`None` on the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A requested status change of one task execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRequest {
    pub transition: Transition,
    /// Recorded on the event.
    pub reason: Option<String>,
    pub if_match: IfMatch,
}

/// The task execution after a change, and whether this request made it
/// (`false`: a repeat of the change that already happened, nothing
/// recorded).
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub task_execution: TaskExecution,
    pub changed: bool,
}

/// What the HTTP layer asks of executions. Object-safe, so the API holds an
/// `Arc<dyn ExecutionUseCases>`.
pub trait ExecutionUseCases: Send + Sync + 'static {
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

    /// Moves a task execution along the status machine, with its event, in
    /// one compare-and-set. A repeat of the change that already happened
    /// (same status, output or error, and reason) answers the row as it is
    /// and records nothing. Needs role admin or write.
    fn change_status(
        &self,
        principal: &Principal,
        id: TaskExecutionId,
        request: ChangeRequest,
    ) -> Result<Changed, ServiceError>;

    /// Creates the next attempt of a completed, failed or stale task
    /// execution that is the latest attempt of its task. Needs role admin
    /// or write.
    fn retry(
        &self,
        principal: &Principal,
        id: TaskExecutionId,
        request: RetryRequest,
    ) -> Result<TaskExecution, ServiceError>;

    /// The status changes of a task execution, oldest first.
    fn task_execution_events(
        &self,
        principal: &Principal,
        id: TaskExecutionId,
        page: PageRequest,
    ) -> Result<Page<RecordedEvent>, ServiceError>;

    /// A page of the organization's task executions that `filter` selects.
    fn list_task_executions(
        &self,
        principal: &Principal,
        filter: TaskExecutionFilter,
        order: Order,
        page: PageRequest,
    ) -> Result<Page<TaskExecution>, ServiceError>;

    /// A page of the task executions of one flow execution (404 if it is
    /// not the organization's).
    fn list_flow_task_executions(
        &self,
        principal: &Principal,
        flow_execution_id: FlowExecutionId,
        filter: TaskExecutionFilter,
        order: Order,
        page: PageRequest,
    ) -> Result<Page<TaskExecution>, ServiceError>;

    /// A page of the organization's flow executions that `filter` selects.
    fn list_flow_executions(
        &self,
        principal: &Principal,
        filter: FlowExecutionFilter,
        order: Order,
        page: PageRequest,
    ) -> Result<Page<FlowExecution>, ServiceError>;

    /// How many of the organization's task executions `filter` selects, by
    /// status or task name.
    fn count_task_executions(
        &self,
        principal: &Principal,
        filter: TaskExecutionFilter,
        by: CountBy,
    ) -> Result<Vec<(String, i64)>, ServiceError>;
}

/// The execution use cases over a store `S`, with the time from `C`.
pub struct Executions<S, C = SystemClock> {
    store: S,
    clock: C,
    cursor_key: OnceLock<CursorKey>,
}

impl<S: ExecutionStore + DeploymentSecrets> Executions<S> {
    pub fn new(store: S) -> Self {
        Self::with_clock(store, SystemClock)
    }
}

impl<S: ExecutionStore + DeploymentSecrets, C: Clock> Executions<S, C> {
    pub fn with_clock(store: S, clock: C) -> Self {
        Self {
            store,
            clock,
            cursor_key: OnceLock::new(),
        }
    }

    /// The deployment's cursor key, read from the store once.
    fn cursor_key(&self) -> Result<&CursorKey, ServiceError> {
        if let Some(key) = self.cursor_key.get() {
            return Ok(key);
        }
        let key = CursorKey::new(self.store.cursor_secret()?);
        Ok(self.cursor_key.get_or_init(|| key))
    }
}

/// Reads one page of a list: checks the size, opens the cursor (sealed
/// for `query` of the principal's organization), has `fetch` read one row
/// more than the page holds (so that a next page is known to exist without
/// another query), and seals the last row's `position` as the next cursor.
fn paged<T, P>(
    key: &CursorKey,
    principal: &Principal,
    query: &str,
    page: &PageRequest,
    fetch: impl FnOnce(Option<P>, usize) -> Result<Vec<T>, ServiceError>,
    position: impl Fn(&T) -> P,
) -> Result<Page<T>, ServiceError>
where
    P: Serialize + DeserializeOwned,
{
    let limit = page_limit(page)?;
    let organization = principal.organization_id;
    let after = page
        .cursor
        .as_deref()
        .map(|cursor| key.open(organization, query, cursor))
        .transpose()?;
    let mut items = fetch(after, limit + 1)?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|last| key.seal(organization, query, &position(last)))
            .transpose()?
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

fn task_position(task: &TaskExecution) -> Position {
    Position {
        created_at: task.created_at,
        id: task.id.into_uuid(),
    }
}

/// The size of a requested page, checked.
fn page_limit(page: &PageRequest) -> Result<usize, ServiceError> {
    if (1..=MAX_PAGE).contains(&page.limit) {
        Ok(page.limit)
    } else {
        Err(ServiceError::Invalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )))
    }
}

impl<S: ExecutionStore + DeploymentSecrets, C: Clock> ExecutionUseCases for Executions<S, C> {
    fn create_flow_execution(
        &self,
        principal: &Principal,
        new: NewFlowExecution,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        require_write(principal)?;
        let creation = new.plan(principal.organization_id, principal.actor, self.clock.now());
        self.store.in_tenant(principal.tenant(), |tx| {
            tx.insert_flow_execution(&creation.flow_execution)?;
            tx.insert_task_executions(&creation.task_executions)?;
            tx.insert_events(&creation.events)
        })?;
        tracing::info!(
            flow_execution.id = %creation.flow_execution.id,
            tasks = creation.task_executions.len(),
            "flow execution created"
        );
        Ok(creation.detail())
    }

    fn get_flow_execution(
        &self,
        principal: &Principal,
        id: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        Ok(self
            .store
            .read(principal.tenant(), |tx| tx.flow_execution(id))?)
    }

    fn get_task_execution(
        &self,
        principal: &Principal,
        id: TaskExecutionId,
    ) -> Result<TaskExecution, ServiceError> {
        Ok(self.store.task_execution(principal.tenant(), id)?)
    }

    fn change_status(
        &self,
        principal: &Principal,
        id: TaskExecutionId,
        request: ChangeRequest,
    ) -> Result<Changed, ServiceError> {
        require_write(principal)?;
        let plan = request
            .transition
            .plan(id, principal.actor, request.reason, self.clock.now())
            .if_match(request.if_match);
        let (task_execution, changed) = self.store.in_tenant(principal.tenant(), |tx| match tx
            .change_status(&plan)?
        {
            ChangeOutcome::Changed(row) => Ok((row, true)),
            ChangeOutcome::Refused(row) => {
                // Only a row already in the target status can be a
                // repeat; only then is its last event needed.
                let last = if row.status == plan.to {
                    tx.last_event(id)?
                } else {
                    None
                };
                plan.refused(row, last.as_ref()).map(|row| (row, false))
            }
        })?;
        if changed {
            tracing::info!(task_execution.id = %id, to = %plan.to, "status changed");
        }
        Ok(Changed {
            task_execution,
            changed,
        })
    }

    fn retry(
        &self,
        principal: &Principal,
        id: TaskExecutionId,
        request: RetryRequest,
    ) -> Result<TaskExecution, ServiceError> {
        require_write(principal)?;
        let at = self.clock.now();
        let created = self.store.in_tenant(principal.tenant(), |tx| {
            // Locked: neither its status nor its version may change
            // between this check and the new attempt.
            let attempt = tx.lock_task_execution(id)?;
            if !request.if_match.matches(attempt.version) {
                return Err(RepoError::PreconditionFailed {
                    current_version: attempt.version,
                });
            }
            let latest =
                tx.latest_execution_index(attempt.flow_execution_id, &attempt.task_name)?;
            let retry = request
                .plan(&attempt, latest, principal.actor, at)
                .map_err(RepoError::RetryRefused)?;
            match tx.insert_task_executions(slice::from_ref(&retry.task_execution)) {
                // A concurrent retry of the same attempt created it first.
                Err(RepoError::Conflict(_)) => {
                    return Err(RepoError::RetryRefused(RetryRefusal::Superseded {
                        latest_execution_index: retry.task_execution.execution_index,
                    }))
                }
                other => other?,
            }
            tx.insert_events(slice::from_ref(&retry.event))?;
            Ok(retry.task_execution)
        })?;
        tracing::info!(
            task_execution.id = %created.id,
            execution_index = created.execution_index,
            retry_of = %id,
            "retry created"
        );
        Ok(created)
    }

    fn task_execution_events(
        &self,
        principal: &Principal,
        id: TaskExecutionId,
        page: PageRequest,
    ) -> Result<Page<RecordedEvent>, ServiceError> {
        paged(
            self.cursor_key()?,
            principal,
            &format!("events:{id}"),
            &page,
            |after, limit| {
                Ok(self
                    .store
                    .read(principal.tenant(), |tx| tx.events(id, after, limit))?)
            },
            |event: &RecordedEvent| event.id,
        )
    }

    fn list_task_executions(
        &self,
        principal: &Principal,
        filter: TaskExecutionFilter,
        order: Order,
        page: PageRequest,
    ) -> Result<Page<TaskExecution>, ServiceError> {
        paged(
            self.cursor_key()?,
            principal,
            &format!("task-executions:{filter:?}:{order:?}"),
            &page,
            |after, limit| {
                let query = ListQuery {
                    filter: filter.clone(),
                    order,
                    after,
                    limit,
                };
                Ok(self
                    .store
                    .read(principal.tenant(), |tx| tx.list_task_executions(&query))?)
            },
            task_position,
        )
    }

    fn list_flow_task_executions(
        &self,
        principal: &Principal,
        flow_execution_id: FlowExecutionId,
        filter: TaskExecutionFilter,
        order: Order,
        page: PageRequest,
    ) -> Result<Page<TaskExecution>, ServiceError> {
        // A flow_execution_id filter naming another flow execution selects
        // nothing here (after the 404 for a flow execution that is not the
        // organization's).
        let contradicts = filter
            .flow_execution_id
            .is_some_and(|given| given != flow_execution_id);
        let filter = TaskExecutionFilter {
            flow_execution_id: Some(flow_execution_id),
            ..filter
        };
        paged(
            self.cursor_key()?,
            principal,
            &format!("flow-task-executions:{filter:?}:{order:?}"),
            &page,
            |after, limit| {
                let query = ListQuery {
                    filter: filter.clone(),
                    order,
                    after,
                    limit,
                };
                Ok(self.store.read(principal.tenant(), |tx| {
                    if !tx.has_flow_execution(flow_execution_id)? {
                        return Err(RepoError::NotFound);
                    }
                    if contradicts {
                        return Ok(Vec::new());
                    }
                    tx.list_task_executions(&query)
                })?)
            },
            task_position,
        )
    }

    fn list_flow_executions(
        &self,
        principal: &Principal,
        filter: FlowExecutionFilter,
        order: Order,
        page: PageRequest,
    ) -> Result<Page<FlowExecution>, ServiceError> {
        paged(
            self.cursor_key()?,
            principal,
            &format!("flow-executions:{filter:?}:{order:?}"),
            &page,
            |after, limit| {
                let query = ListQuery {
                    filter: filter.clone(),
                    order,
                    after,
                    limit,
                };
                Ok(self
                    .store
                    .read(principal.tenant(), |tx| tx.list_flow_executions(&query))?)
            },
            |flow: &FlowExecution| Position {
                created_at: flow.created_at,
                id: flow.id.into_uuid(),
            },
        )
    }

    fn count_task_executions(
        &self,
        principal: &Principal,
        filter: TaskExecutionFilter,
        by: CountBy,
    ) -> Result<Vec<(String, i64)>, ServiceError> {
        Ok(self.store.read(principal.tenant(), |tx| {
            tx.count_task_executions(&filter, by)
        })?)
    }
}
