//! The model-based property test of the lifecycle (`flowexec_testkit::model`)
//! on the real use cases over a SQLite file: many cases, fast. The server's
//! tests run the same model over HTTP on both stores.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use flowexec_domain::{
    Actor, CountBy, FixedClock, FlowName, IfMatch, NewFlowExecution, NewTask, Order,
    OrganizationName, Principal, RetryRefusal, RetryRequest, Role, TaskExecution,
    TaskExecutionFilter, TaskExecutionId, TaskName, TaskStatus, Transition,
};
use flowexec_persistence::SqliteStore;
use flowexec_service::{
    Admin, Authenticate, ChangeRequest, ExecutionUseCases, Executions, KeyAuthenticator,
    KeyCacheSettings, PageRequest, ServiceError,
};
use flowexec_testkit::model::{self, ChangeAnswer, Observed, RetryAnswer, Subject};
use flowexec_testkit::TestSqlite;
use proptest::prelude::*;
use serde_json::{json, Value};
use uuid::Uuid;

struct UseCases {
    _db: TestSqlite,
    executions: Executions<SqliteStore, FixedClock>,
    principal: Principal,
}

fn use_cases() -> UseCases {
    let at = DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    let db = TestSqlite::new().unwrap_or_else(|e| panic!("{e}"));
    let store = db.open(2).unwrap_or_else(|e| panic!("{e}"));
    let admin = Admin::with_clock(store.clone(), FixedClock(at));
    let created = admin
        .create_organization(&OrganizationName::parse("model").unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let key = admin
        .create_api_key(created.organization.id, Role::Write, Actor::Integration)
        .unwrap_or_else(|e| panic!("{e}"));
    let principal = KeyAuthenticator::new(store.clone(), &KeyCacheSettings::default())
        .authenticate(&key.plaintext)
        .unwrap_or_else(|e| panic!("{e}"));
    UseCases {
        _db: db,
        executions: Executions::with_clock(store, FixedClock(at)),
        principal,
    }
}

fn observed(task: TaskExecution) -> Observed {
    Observed {
        id: task.id.into_uuid(),
        flow_execution_id: task.flow_execution_id.into_uuid(),
        task_name: task.task_name.to_string(),
        execution_index: task.execution_index,
        status: task.status,
        output: task.output,
        error: task.error,
        version: Some(task.version),
        created_at: task.created_at,
    }
}

impl UseCases {
    fn transition(&self, id: Uuid, transition: Transition) -> Result<ChangeAnswer, String> {
        let request = ChangeRequest {
            transition,
            reason: None,
            if_match: IfMatch::Any,
        };
        match self.executions.change_status(
            &self.principal,
            TaskExecutionId::from_uuid(id),
            request,
        ) {
            Ok(changed) => Ok(ChangeAnswer::Done(observed(changed.task_execution))),
            Err(ServiceError::InvalidTransition { current, .. }) => {
                Ok(ChangeAnswer::Refused { current })
            }
            Err(other) => Err(other.to_string()),
        }
    }
}

impl Subject for UseCases {
    fn create(&mut self, flow_name: &str, tasks: usize) -> Result<Vec<Observed>, String> {
        let new = NewFlowExecution::new(
            FlowName::parse(flow_name).map_err(|e| e.to_string())?,
            None,
            (0..tasks)
                .map(|i| {
                    Ok(NewTask {
                        task_name: TaskName::parse(format!("t{i}")).map_err(|e| e.to_string())?,
                        input: Some(json!(i)),
                        run: flowexec_domain::RunOptions::default(),
                    })
                })
                .collect::<Result<_, String>>()?,
        )
        .map_err(|e| e.to_string())?;
        let created = self
            .executions
            .create_flow_execution(&self.principal, new)
            .map_err(|e| e.to_string())?;
        Ok(created.task_executions.into_iter().map(observed).collect())
    }

    fn change(
        &mut self,
        id: Uuid,
        to: TaskStatus,
        payload: Option<Value>,
    ) -> Result<ChangeAnswer, String> {
        let transition = match to {
            TaskStatus::Running => Transition::Start,
            TaskStatus::Completed => Transition::Complete { output: payload },
            TaskStatus::Failed => Transition::Fail { error: payload },
            TaskStatus::Stale => Transition::MarkStale,
            TaskStatus::Deleted => Transition::Delete,
            TaskStatus::Queued => return Err("no transition to queued".into()),
        };
        self.transition(id, transition)
    }

    fn delete(&mut self, id: Uuid) -> Result<ChangeAnswer, String> {
        self.transition(id, Transition::Delete)
    }

    fn retry(&mut self, id: Uuid) -> Result<RetryAnswer, String> {
        match self.executions.retry(
            &self.principal,
            TaskExecutionId::from_uuid(id),
            RetryRequest::default(),
        ) {
            Ok(new) => Ok(RetryAnswer::Created(observed(new))),
            Err(ServiceError::RetryRefused(RetryRefusal::Superseded {
                latest_execution_index,
            })) => Ok(RetryAnswer::Superseded {
                latest_execution_index,
            }),
            Err(ServiceError::RetryRefused(RetryRefusal::NotFinished { status })) => {
                Ok(RetryAnswer::NotFinished { status })
            }
            Err(other) => Err(other.to_string()),
        }
    }

    fn get(&mut self, id: Uuid) -> Result<Observed, String> {
        self.executions
            .get_task_execution(&self.principal, TaskExecutionId::from_uuid(id))
            .map(observed)
            .map_err(|e| e.to_string())
    }

    fn list(&mut self, statuses: &[TaskStatus], limit: usize) -> Result<Vec<Observed>, String> {
        let filter = TaskExecutionFilter {
            statuses: statuses.to_vec(),
            ..TaskExecutionFilter::default()
        };
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .executions
                .list_task_executions(
                    &self.principal,
                    filter.clone(),
                    Order::OldestFirst,
                    PageRequest { limit, cursor },
                )
                .map_err(|e| e.to_string())?;
            seen.extend(page.items.into_iter().map(observed));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(seen),
            }
        }
    }

    fn count_by_status(&mut self) -> Result<BTreeMap<String, i64>, String> {
        Ok(self
            .executions
            .count_task_executions(
                &self.principal,
                TaskExecutionFilter::default(),
                CountBy::Status,
            )
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("FLOWEXEC_MODEL_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_use_cases_follow_the_model(steps in model::steps(40)) {
        model::run(&mut use_cases(), steps)?;
    }
}
