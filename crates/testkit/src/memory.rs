//! An in-memory implementation of every port, honouring the same contracts
//! as the PostgreSQL store (tenant confinement, the attempt key, the state
//! machine). Used to test the service layer without a database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use chrono::Utc;
use flowexec_domain::ports::{
    ApiKeyRepository, FlowExecutionRepository, HealthCheck, OrganizationRepository,
    TaskExecutionRepository,
};
use flowexec_domain::{
    Actor, ApiKeyCredentials, ApiKeyId, FlowExecution, FlowExecutionDetail, FlowExecutionId,
    NewApiKey, NewFlowExecution, Organization, OrganizationId, OrganizationName, RepoError,
    StatusChange, TaskExecution, TaskExecutionEvent, TaskExecutionId, TaskStatus, Tenant,
};

#[derive(Default)]
struct State {
    organizations: HashMap<OrganizationId, Organization>,
    keys: HashMap<ApiKeyId, NewApiKey>,
    flows: HashMap<FlowExecutionId, FlowExecution>,
    tasks: HashMap<TaskExecutionId, TaskExecution>,
    events: Vec<TaskExecutionEvent>,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    key_lookups: AtomicUsize,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, RepoError> {
        self.state
            .lock()
            .map_err(|_| RepoError::Unknown(anyhow::anyhow!("memory store poisoned")))
    }

    /// How many times `find_api_key` has been called.
    pub fn key_lookups(&self) -> usize {
        self.key_lookups.load(Ordering::Relaxed)
    }
}

fn tasks_of(state: &State, flow: FlowExecutionId) -> Vec<TaskExecution> {
    let mut tasks: Vec<TaskExecution> = state
        .tasks
        .values()
        .filter(|t| t.flow_execution_id == flow)
        .cloned()
        .collect();
    tasks.sort_by(|a, b| {
        (a.task_name.as_str(), a.execution_index).cmp(&(b.task_name.as_str(), b.execution_index))
    });
    tasks
}

impl TaskExecutionRepository for MemoryStore {
    fn get_task_execution(
        &self,
        tenant: Tenant,
        id: TaskExecutionId,
    ) -> Result<TaskExecution, RepoError> {
        self.state()?
            .tasks
            .get(&id)
            .filter(|t| t.organization_id == tenant.organization_id())
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    fn transition_task_execution(
        &self,
        tenant: Tenant,
        change: &StatusChange,
    ) -> Result<TaskExecution, RepoError> {
        let mut state = self.state()?;
        let task = state
            .tasks
            .get_mut(&change.task_execution_id)
            .filter(|t| t.organization_id == tenant.organization_id())
            .ok_or(RepoError::NotFound)?;
        let current = task.status;
        if !current.can_transition_to(change.to) {
            return Err(RepoError::InvalidTransition {
                current,
                requested: change.to,
            });
        }
        let now = Utc::now();
        task.status = change.to;
        task.modified_by = change.actor;
        task.updated_at = now;
        match change.to {
            TaskStatus::Running => task.started_at = Some(now),
            TaskStatus::Completed => {
                task.completed_at = Some(now);
                task.output.clone_from(&change.output);
            }
            TaskStatus::Failed => {
                task.completed_at = Some(now);
                task.error.clone_from(&change.error);
            }
            _ => {}
        }
        let updated = task.clone();
        state.events.push(TaskExecutionEvent {
            task_execution_id: change.task_execution_id,
            from: Some(current),
            to: change.to,
            actor: change.actor,
            reason: change.reason.clone(),
            created_at: now,
        });
        Ok(updated)
    }

    fn list_task_execution_events(
        &self,
        tenant: Tenant,
        id: TaskExecutionId,
    ) -> Result<Vec<TaskExecutionEvent>, RepoError> {
        let state = self.state()?;
        state
            .tasks
            .get(&id)
            .filter(|t| t.organization_id == tenant.organization_id())
            .ok_or(RepoError::NotFound)?;
        Ok(state
            .events
            .iter()
            .filter(|e| e.task_execution_id == id)
            .cloned()
            .collect())
    }
}

impl FlowExecutionRepository for MemoryStore {
    fn create_flow_execution(
        &self,
        tenant: Tenant,
        new: &NewFlowExecution,
        actor: Actor,
    ) -> Result<FlowExecutionDetail, RepoError> {
        let mut state = self.state()?;
        let org = tenant.organization_id();
        if !state.organizations.contains_key(&org) {
            return Err(RepoError::NotFound);
        }
        let now = Utc::now();
        let flow = FlowExecution {
            id: FlowExecutionId::generate(),
            organization_id: org,
            flow_name: new.flow_name().clone(),
            input: new.input().cloned(),
            modified_by: actor,
            created_at: now,
            updated_at: now,
        };
        state.flows.insert(flow.id, flow.clone());
        for task in new.tasks() {
            let id = TaskExecutionId::generate();
            state.tasks.insert(
                id,
                TaskExecution {
                    id,
                    flow_execution_id: flow.id,
                    organization_id: org,
                    task_name: task.task_name.clone(),
                    execution_index: 0,
                    status: TaskStatus::Queued,
                    input: task.input.clone(),
                    output: None,
                    error: None,
                    modified_by: actor,
                    created_at: now,
                    updated_at: now,
                    started_at: None,
                    completed_at: None,
                },
            );
            state.events.push(TaskExecutionEvent {
                task_execution_id: id,
                from: None,
                to: TaskStatus::Queued,
                actor,
                reason: Some("created".into()),
                created_at: now,
            });
        }
        let task_executions = tasks_of(&state, flow.id);
        Ok(FlowExecutionDetail {
            flow_execution: flow,
            task_executions,
        })
    }

    fn get_flow_execution(
        &self,
        tenant: Tenant,
        id: FlowExecutionId,
    ) -> Result<FlowExecutionDetail, RepoError> {
        let state = self.state()?;
        let flow = state
            .flows
            .get(&id)
            .filter(|f| f.organization_id == tenant.organization_id())
            .cloned()
            .ok_or(RepoError::NotFound)?;
        Ok(FlowExecutionDetail {
            task_executions: tasks_of(&state, id),
            flow_execution: flow,
        })
    }
}

impl ApiKeyRepository for MemoryStore {
    fn find_api_key(&self, id: ApiKeyId) -> Result<Option<ApiKeyCredentials>, RepoError> {
        self.key_lookups.fetch_add(1, Ordering::Relaxed);
        Ok(self.state()?.keys.get(&id).map(|k| ApiKeyCredentials {
            id: k.id,
            organization_id: k.organization_id,
            role: k.role,
            actor: k.actor,
            secret_sha256: k.secret_sha256,
        }))
    }

    fn create_api_key(&self, key: &NewApiKey) -> Result<(), RepoError> {
        let mut state = self.state()?;
        if !state.organizations.contains_key(&key.organization_id) {
            return Err(RepoError::NotFound);
        }
        if state.keys.contains_key(&key.id) {
            return Err(RepoError::Conflict("api_keys_pkey".into()));
        }
        state.keys.insert(key.id, key.clone());
        Ok(())
    }
}

fn insert_organization(
    state: &mut State,
    name: &OrganizationName,
    first_key: &NewApiKey,
) -> Result<Organization, RepoError> {
    let organization = Organization {
        id: first_key.organization_id,
        name: name.clone(),
        created_at: Utc::now(),
    };
    if state.organizations.contains_key(&organization.id) {
        return Err(RepoError::Conflict("organizations_pkey".into()));
    }
    if state.organizations.values().any(|o| o.name == *name) {
        return Err(RepoError::Conflict("organizations_name_key".into()));
    }
    state
        .organizations
        .insert(organization.id, organization.clone());
    state.keys.insert(first_key.id, first_key.clone());
    Ok(organization)
}

impl OrganizationRepository for MemoryStore {
    fn create_organization(
        &self,
        name: &OrganizationName,
        first_key: &NewApiKey,
    ) -> Result<Organization, RepoError> {
        insert_organization(&mut *self.state()?, name, first_key)
    }

    fn bootstrap_organization(
        &self,
        name: &OrganizationName,
        first_key: &NewApiKey,
    ) -> Result<Option<Organization>, RepoError> {
        let mut state = self.state()?;
        if !state.organizations.is_empty() {
            return Ok(None);
        }
        insert_organization(&mut state, name, first_key).map(Some)
    }

    fn list_organizations(&self) -> Result<Vec<Organization>, RepoError> {
        let mut all: Vec<Organization> = self.state()?.organizations.values().cloned().collect();
        all.sort_by_key(|o| (o.created_at, o.id));
        Ok(all)
    }
}

impl HealthCheck for MemoryStore {
    fn ping(&self) -> Result<(), RepoError> {
        self.state().map(|_| ())
    }
}
