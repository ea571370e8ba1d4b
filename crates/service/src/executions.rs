//! The use cases on flow and task executions. Each asks the domain what a
//! change writes and hands that to the store in one unit of work.

use flowexec_domain::ports::{ExecutionStore, TenantTx};
use flowexec_domain::{
    Clock, FlowExecutionDetail, FlowExecutionId, NewFlowExecution, Principal, SystemClock,
    TaskExecution, TaskExecutionId,
};

use crate::auth::require_write;
use crate::error::ServiceError;

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
}

/// The execution use cases over a store `S`, with the time from `C`.
pub struct Executions<S, C = SystemClock> {
    store: S,
    clock: C,
}

impl<S: ExecutionStore> Executions<S> {
    pub fn new(store: S) -> Self {
        Self::with_clock(store, SystemClock)
    }
}

impl<S: ExecutionStore, C: Clock> Executions<S, C> {
    pub fn with_clock(store: S, clock: C) -> Self {
        Self { store, clock }
    }
}

impl<S: ExecutionStore, C: Clock> ExecutionUseCases for Executions<S, C> {
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
}
