//! The use cases on flow and task executions. Each asks the domain what a
//! change writes and hands that to the store in one unit of work.

use std::collections::BTreeSet;
use std::slice;

use flowexec_domain::ports::{DeploymentSecrets, ExecutionStore, RowLock, TenantTx};
use flowexec_domain::{
    latest_attempts, ChangeOutcome, Clock, CountBy, FlowExecution, FlowExecutionDetail,
    FlowExecutionFilter, FlowExecutionId, FlowGraph, FlowStatus, IfMatch, ListQuery,
    NewFlowExecution, Order, Position, Principal, RecordedEvent, RepoError, RetryRefusal,
    RetryRequest, StartFlow, StatusChange, SystemClock, TaskExecution, TaskExecutionFilter,
    TaskExecutionId, TaskName, TaskStatus, Transition,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::auth::require_write;
use crate::cursor::{CursorKey, LazyCursorKey};
use crate::engine::{flows_of, Engine, NewWork};
use crate::error::ServiceError;
use crate::flows::live;

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

    /// Starts a run of a stored flow definition (its latest version, or
    /// the one named): its input checked against the definition's
    /// `input_schema` ([`ServiceError::InputMismatch`]), the flow execution
    /// created with the tasks that depend on nothing, queued, their inputs
    /// rendered. [`ServiceError::NotFound`] for a flow that does not exist
    /// or was deleted. Needs role admin or write.
    fn start_flow(
        &self,
        principal: &Principal,
        start: StartFlow,
    ) -> Result<FlowExecutionDetail, ServiceError>;

    /// Cancels a flow execution: its queued tasks are deleted and its
    /// running ones failed (`{"code": "cancelled"}`; their workers hear
    /// `lease_lost` at their next heartbeat or report), nothing more is
    /// created, and it is `cancelled`; in one unit of work. Cancelling a
    /// cancelled one answers it as it is; a completed one cannot be
    /// cancelled ([`ServiceError::FlowState`]). Needs role admin or write.
    fn cancel_flow(
        &self,
        principal: &Principal,
        id: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, ServiceError>;

    /// Runs a flow execution of a stored definition again from one of its
    /// tasks: the latest attempt of that task and of every task downstream
    /// of it, completed or failed, becomes `stale`; the task is created
    /// again (its input rendered again), and what depends on it as it
    /// completes. Refused ([`ServiceError::FlowState`]) for a cancelled or
    /// ad hoc flow execution, a task not run yet, or while one of those
    /// tasks is queued or running. Needs role admin or write.
    fn rerun(
        &self,
        principal: &Principal,
        id: FlowExecutionId,
        from_task: TaskName,
    ) -> Result<FlowExecutionDetail, ServiceError>;

    /// A flow execution as a graph: its tasks, where each stands, and the
    /// dependencies between them.
    fn flow_graph(
        &self,
        principal: &Principal,
        id: FlowExecutionId,
    ) -> Result<FlowGraph, ServiceError>;

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
    cursor_key: LazyCursorKey,
    engine: Engine,
    new_work: Option<NewWork>,
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
            cursor_key: LazyCursorKey::default(),
            engine: Engine::default(),
            new_work: None,
        }
    }

    /// Calls `new_work` after a status change that queued tasks (those its
    /// completion made ready) commits.
    pub fn announcing(mut self, new_work: NewWork) -> Self {
        self.new_work = Some(new_work);
        self
    }

    fn cursor_key(&self) -> Result<&CursorKey, ServiceError> {
        self.cursor_key.get(&self.store)
    }
}

/// Reads one page of a list: checks the size, opens the cursor (sealed
/// for `query` of the principal's organization), has `fetch` read one row
/// more than the page holds (so that a next page is known to exist without
/// another query), and seals the last row's `position` as the next cursor.
pub(crate) fn paged<T, P>(
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

    fn start_flow(
        &self,
        principal: &Principal,
        start: StartFlow,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        require_write(principal)?;
        let organization = principal.organization_id;
        let (number, definition) = self.store.read(principal.tenant(), |tx| {
            let flow = live(tx, &start.flow, RowLock::None)?;
            let number = start.version.unwrap_or(flow.latest_version);
            if !(1..=flow.latest_version).contains(&number) {
                return Err(RepoError::NotFound);
            }
            let definition = self
                .engine
                .definition(tx, organization, &start.flow, number)?;
            Ok((number, definition))
        })?;
        if let Some(schema) = &definition.input_schema {
            let input = start.input.clone().unwrap_or(Value::Null);
            let mismatches = flowexec_flows::schema::mismatches(schema, &input);
            if !mismatches.is_empty() {
                return Err(ServiceError::InputMismatch(mismatches));
            }
        }
        let at = self.clock.now();
        let flow_execution = FlowExecution {
            id: FlowExecutionId::generate(),
            organization_id: organization,
            flow_name: start.flow.clone(),
            flow_version: Some(number),
            input: start.input.clone(),
            status: FlowStatus::Queued,
            modified_by: principal.actor,
            created_at: at,
            updated_at: at,
        };
        let detail = self.store.in_tenant(principal.tenant(), |tx| {
            // Share-locked: a deletion waits for this run to be created,
            // or this run sees the deletion; other runs start alongside.
            live(tx, &start.flow, RowLock::Shared)?;
            tx.insert_flow_execution(&flow_execution)?;
            self.engine.settle(
                tx,
                organization,
                BTreeSet::from([flow_execution.id]),
                principal.actor,
                at,
            )?;
            tx.flow_execution(flow_execution.id)
        })?;
        tracing::info!(
            flow_execution.id = %flow_execution.id,
            flow = %start.flow,
            version = number,
            tasks = detail.task_executions.len(),
            "flow started"
        );
        Ok(detail)
    }

    fn cancel_flow(
        &self,
        principal: &Principal,
        id: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        require_write(principal)?;
        let at = self.clock.now();
        let reason = Some("cancelled".to_owned());
        let outcome = self.store.in_tenant(principal.tenant(), |tx| {
            // The flow execution first: a completion in it settles after
            // this unit (and, seeing it cancelled, creates nothing), or
            // before it (and what it created is read below). Against the
            // engine's order (tasks, then flow executions): a deadlock with
            // a completion is broken by the database and run again.
            let flow = tx.lock_flow_execution(id)?;
            let detail = tx.flow_execution(id)?;
            match flow.status {
                FlowStatus::Cancelled => return Ok(Ok(detail)),
                FlowStatus::Completed => return Ok(Err(FlowStatus::Completed)),
                _ => {}
            }
            let plans: Vec<StatusChange> = latest_attempts(&detail.task_executions)
                .into_iter()
                .filter_map(|task| {
                    match task.status {
                        TaskStatus::Queued => Some(Transition::Delete),
                        TaskStatus::Running => Some(Transition::Fail {
                            error: Some(serde_json::json!({"code": "cancelled"})),
                        }),
                        _ => None,
                    }
                    .map(|t| t.plan(task.id, principal.actor, reason.clone(), at))
                })
                .collect();
            // A task that finished meanwhile is refused, and stays so.
            tx.change_many(&plans)?;
            tx.set_flow_status(id, FlowStatus::Cancelled, at)?;
            tx.flow_execution(id).map(Ok)
        })?;
        match outcome {
            Ok(detail) => {
                tracing::info!(flow_execution.id = %id, "flow cancelled");
                Ok(detail)
            }
            Err(status) => Err(ServiceError::FlowState {
                status,
                detail: "the flow execution completed; there is nothing to cancel".to_owned(),
            }),
        }
    }

    fn rerun(
        &self,
        principal: &Principal,
        id: FlowExecutionId,
        from_task: TaskName,
    ) -> Result<FlowExecutionDetail, ServiceError> {
        require_write(principal)?;
        let at = self.clock.now();
        let organization = principal.organization_id;
        let refused = |status, detail: String| Ok(Err(ServiceError::FlowState { status, detail }));
        let outcome = self.store.in_tenant(principal.tenant(), |tx| {
            // The flow execution first, as cancel does: no completion
            // settles it between this unit's reading and its writing.
            tx.lock_flow_execution(id)?;
            let detail = tx.flow_execution(id)?;
            let flow = &detail.flow_execution;
            if flow.status == FlowStatus::Cancelled {
                return refused(flow.status, "the flow execution was cancelled".to_owned());
            }
            let Some(version) = flow.flow_version else {
                return refused(
                    flow.status,
                    "an ad hoc flow execution has no definition to rerun: retry its task instead"
                        .to_owned(),
                );
            };
            let definition = self.engine.definition(tx, organization, &flow.flow_name, version)?;
            if !definition.tasks.iter().any(|t| t.name == from_task.as_str()) {
                return Ok(Err(ServiceError::InvalidFields(vec![(
                    "from_task".to_owned(),
                    format!(
                        "flow {} version {version} has no task named {from_task}",
                        flow.flow_name
                    ),
                )])));
            }
            let affected = flowexec_flows::graph::downstream(&definition.tasks, from_task.as_str());
            let latest: Vec<&TaskExecution> = latest_attempts(&detail.task_executions)
                .into_iter()
                .filter(|t| affected.contains(t.task_name.as_str()))
                .collect();
            if !latest.iter().any(|t| t.task_name == from_task) {
                return refused(flow.status, format!("task {from_task} has not run yet"));
            }
            if let Some(busy) = latest
                .iter()
                .find(|t| matches!(t.status, TaskStatus::Queued | TaskStatus::Running))
            {
                return refused(
                    flow.status,
                    format!(
                        "task {} is {}: a rerun from {from_task} waits until it and every task downstream of it are done",
                        busy.task_name, busy.status
                    ),
                );
            }
            let reason = Some(format!("rerun from {from_task}"));
            let plans: Vec<StatusChange> = latest
                .iter()
                .filter(|t| matches!(t.status, TaskStatus::Completed | TaskStatus::Failed))
                .map(|t| Transition::MarkStale.plan(t.id, principal.actor, reason.clone(), at))
                .collect();
            tx.change_many(&plans)?;
            self.engine
                .settle(tx, organization, BTreeSet::from([id]), principal.actor, at)?;
            tx.flow_execution(id).map(Ok)
        })?;
        let detail = outcome?;
        tracing::info!(flow_execution.id = %id, from_task = %from_task, "flow rerun");
        Ok(detail)
    }

    fn flow_graph(
        &self,
        principal: &Principal,
        id: FlowExecutionId,
    ) -> Result<FlowGraph, ServiceError> {
        let organization = principal.organization_id;
        Ok(self.store.read(principal.tenant(), |tx| {
            let detail = tx.flow_execution(id)?;
            let flow = detail.flow_execution;
            let definition = flow
                .flow_version
                .map(|version| {
                    self.engine
                        .definition(tx, organization, &flow.flow_name, version)
                })
                .transpose()?;
            Ok(crate::engine::graph(
                flow,
                definition.as_deref(),
                &detail.task_executions,
            ))
        })?)
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
        let at = self.clock.now();
        let plan = request
            .transition
            .plan(id, principal.actor, request.reason, at)
            .if_match(request.if_match);
        let (task_execution, changed, queued) =
            self.store
                .in_tenant(principal.tenant(), |tx| match tx.change_status(&plan)? {
                    ChangeOutcome::Changed(row) => {
                        let queued = self.engine.settle(
                            tx,
                            principal.organization_id,
                            flows_of([&row]),
                            principal.actor,
                            at,
                        )?;
                        Ok((row, true, queued))
                    }
                    ChangeOutcome::Refused(row) => {
                        // Only a row already in the target status can be a
                        // repeat; only then is its last event needed.
                        let last = if row.status == plan.to {
                            tx.last_event(id)?
                        } else {
                            None
                        };
                        plan.refused(row, last.as_ref()).map(|row| (row, false, 0))
                    }
                })?;
        if changed {
            tracing::info!(task_execution.id = %id, to = %plan.to, "status changed");
        }
        if let (true, Some(new_work)) = (queued > 0, &self.new_work) {
            new_work();
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
            let flow = tx.lock_flow_execution(attempt.flow_execution_id)?;
            if flow.status == FlowStatus::Cancelled {
                return Err(RepoError::RetryRefused(RetryRefusal::FlowCancelled));
            }
            // A stale attempt of a run of a definition is made again by the
            // engine, its input rendered again (rerun), not copied.
            if flow.flow_version.is_some() && attempt.status == TaskStatus::Stale {
                return Err(RepoError::RetryRefused(RetryRefusal::StaleInFlow));
            }
            let latest =
                tx.latest_execution_index(attempt.flow_execution_id, &attempt.task_name)?;
            // An iteration of a for_each task is retried as itself: the
            // latest attempt of its iteration, numbered after the task's.
            let latest_of_run = match attempt.iteration {
                Some(iteration) => tx
                    .run_attempts(
                        attempt.flow_execution_id,
                        &attempt.task_name,
                        Some(iteration),
                    )?
                    .last()
                    .map_or(attempt.execution_index, |(index, _)| *index),
                None => latest,
            };
            let retry = request
                .plan_numbered(
                    &attempt,
                    latest_of_run,
                    latest.saturating_add(1),
                    principal.actor,
                    at,
                )
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
            self.engine.settle(
                tx,
                principal.organization_id,
                flows_of([&retry.task_execution]),
                principal.actor,
                at,
            )?;
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
