//! The use cases of workers: claim queued tasks, extend a lease, report a
//! result. Each asks the domain what it writes and hands that to the store
//! in one unit of work; a failure and the retry its policy brings commit
//! together. The sweeper ([`Workers::sweep`]) fails runs past their lease
//! or time limit, the same way.

use chrono::{DateTime, Utc};
use flowexec_domain::ports::{ExecutionStore, OverdueRuns, TenantTx};
use flowexec_domain::{
    next_attempt_numbered, Actor, ChangeOutcome, Claim, Clock, FlowStatus, Heartbeat, Numbering,
    OrganizationId, Overdue, Principal, RepoError, RetryPolicy, StatusChange, SystemClock,
    TaskExecution, TaskExecutionId, TaskName, Tenant, Transition, WorkerId,
};
use serde_json::Value;

use crate::auth::require_worker;
use crate::engine::{flows_of, Engine, NewWork};
use crate::error::ServiceError;

/// Settings of the worker use cases.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WorkerSettings {
    /// The policy of a task created without one.
    pub default_retry: RetryPolicy,
}

/// A worker's request for queued tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    pub worker_id: WorkerId,
    /// Only tasks of these names; empty: any.
    pub task_names: Vec<TaskName>,
    /// 1–500.
    pub limit: usize,
    /// 5–3600.
    pub lease_seconds: u32,
}

/// What a claim took, and when to look again if it took nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClaimAnswer {
    /// The tasks now running under the worker's lease (empty: none).
    pub tasks: Vec<TaskExecution>,
    /// When nothing was taken: how long until the earliest task the claim
    /// could take (by name), queued but not yet due, falls due; `None`
    /// when there is no such task (only new work can end the wait).
    pub next_due_in: Option<std::time::Duration>,
}

/// How a run ended, as its worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed {
        output: Option<Value>,
    },
    /// `retryable` false: no retry, whatever the policy.
    Failed {
        error: Option<Value>,
        retryable: bool,
    },
}

/// A worker's report on a task it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub task_execution_id: TaskExecutionId,
    pub worker_id: WorkerId,
    pub outcome: Outcome,
}

/// What the HTTP layer asks of workers. Object-safe.
pub trait WorkerUseCases: Send + Sync + 'static {
    /// Takes up to `limit` due queued tasks of the principal's
    /// organization, highest priority first, then oldest; each now running
    /// under the worker's lease. Empty when there is nothing to take, with
    /// when the next task it could take falls due. Needs role admin or
    /// worker.
    fn claim(
        &self,
        principal: &Principal,
        request: &ClaimRequest,
    ) -> Result<ClaimAnswer, ServiceError>;

    /// Extends the lease of a task the worker holds; [`ServiceError::LeaseLost`]
    /// when it no longer does.
    fn heartbeat(
        &self,
        principal: &Principal,
        id: TaskExecutionId,
        worker_id: WorkerId,
        lease_seconds: u32,
    ) -> Result<TaskExecution, ServiceError>;

    /// Records how a run ended: the task completed or failed (and, when it
    /// failed retryably with attempts left, its next attempt queued, in the
    /// same transaction). A repeat of a report already recorded answers the
    /// task as it is; a report on a task the worker no longer holds is
    /// [`ServiceError::LeaseLost`].
    fn report(&self, principal: &Principal, report: Report) -> Result<TaskExecution, ServiceError>;

    /// Many reports in one transaction, each answered on its own (a report
    /// refused leaves the others be). Fails as a whole only when the store
    /// does.
    fn report_many(
        &self,
        principal: &Principal,
        reports: Vec<Report>,
    ) -> Result<Vec<Result<TaskExecution, ServiceError>>, ServiceError>;
}

/// The worker use cases over a store `S`, with time from `C`.
pub struct Workers<S, C = SystemClock> {
    store: S,
    clock: C,
    settings: WorkerSettings,
    engine: Engine,
    new_work: Option<NewWork>,
}

impl<S> Workers<S> {
    pub fn new(store: S, settings: WorkerSettings) -> Self {
        Self::with_clock(store, SystemClock, settings)
    }
}

impl<S, C> Workers<S, C> {
    pub fn with_clock(store: S, clock: C, settings: WorkerSettings) -> Self {
        Self {
            store,
            clock,
            settings,
            engine: Engine::default(),
            new_work: None,
        }
    }

    /// Calls `new_work` after each report that queued tasks (a retry, or
    /// the tasks a completion made ready) commits.
    pub fn announcing(mut self, new_work: NewWork) -> Self {
        self.new_work = Some(new_work);
        self
    }

    fn announce(&self, queued: bool) {
        if let (true, Some(new_work)) = (queued, &self.new_work) {
            new_work();
        }
    }
}

/// Checks what the schema already bounds, for callers other than the API.
fn check_claim(request: &ClaimRequest) -> Result<(), ServiceError> {
    if !(1..=flowexec_domain::claim::MAX_CLAIM_LIMIT).contains(&request.limit) {
        return Err(ServiceError::Invalid(format!(
            "limit must be between 1 and {}",
            flowexec_domain::claim::MAX_CLAIM_LIMIT
        )));
    }
    check_lease(request.lease_seconds)
}

fn check_lease(seconds: u32) -> Result<(), ServiceError> {
    let range = flowexec_domain::claim::LEASE_SECONDS;
    if range.contains(&seconds) {
        Ok(())
    } else {
        Err(ServiceError::Invalid(format!(
            "lease_seconds must be between {} and {}",
            range.start(),
            range.end()
        )))
    }
}

impl<S: ExecutionStore, C: Clock> Workers<S, C> {
    /// Queues the attempt that follows `failed` when its policy (or the
    /// default) allows one, in the failure's unit of work; whether it did.
    fn retry_after<T: TenantTx>(
        &self,
        tx: &mut T,
        failed: &TaskExecution,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        // Nothing more runs in a cancelled flow execution.
        if tx.lock_flow_execution(failed.flow_execution_id)?.status == FlowStatus::Cancelled {
            return Ok(false);
        }
        let policy = failed.run.retry.unwrap_or(self.settings.default_retry);
        let numbering = numbering(tx, failed)?;
        match next_attempt_numbered(
            failed,
            numbering,
            &policy,
            Actor::System,
            at,
            rand::random::<f64>(),
        ) {
            Some((next, event)) => {
                tx.insert_task_executions(std::slice::from_ref(&next))?;
                tx.insert_events(&[event])?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The conditioned change a report asks for, and whether its failure
    /// may be retried.
    fn plan(&self, actor: Actor, report: &Report, at: DateTime<Utc>) -> (StatusChange, bool) {
        let (transition, retryable) = match &report.outcome {
            Outcome::Completed { output } => (
                Transition::Complete {
                    output: output.clone(),
                },
                false,
            ),
            Outcome::Failed { error, retryable } => (
                Transition::Fail {
                    error: error.clone(),
                },
                *retryable,
            ),
        };
        let plan = transition
            .plan(report.task_execution_id, actor, None, at)
            .held_by(report.worker_id.clone());
        (plan, retryable)
    }

    /// What a report's change came to, inside its unit of work: the retry
    /// its failure brings, or what its refusal means. A missing task is
    /// `Ok(Err(NotFound))`, so that a batch goes on.
    fn settle<T: TenantTx>(
        &self,
        tx: &mut T,
        plan: &StatusChange,
        retryable: bool,
        outcome: Result<ChangeOutcome, RepoError>,
    ) -> Result<(Result<TaskExecution, RepoError>, bool), RepoError> {
        match outcome {
            Ok(ChangeOutcome::Changed(row)) => {
                let retried = retryable && self.retry_after(tx, &row, plan.at)?;
                Ok((Ok(row), retried))
            }
            Ok(ChangeOutcome::Refused(row)) => {
                // Only a row already in the target status can be a repeat;
                // only then is its last event needed.
                let last = if row.status == plan.to {
                    tx.last_event(plan.task_execution_id)?
                } else {
                    None
                };
                Ok((plan.refused(row, last.as_ref()), false))
            }
            Err(RepoError::NotFound) => Ok((Err(RepoError::NotFound), false)),
            Err(other) => Err(other),
        }
    }

    /// Reports inside one unit of work: their changes together (one
    /// statement for those alike, where the store can), then each settled,
    /// then their flow executions. With the answers, whether it queued
    /// tasks.
    fn apply<T: TenantTx>(
        &self,
        tx: &mut T,
        organization: OrganizationId,
        actor: Actor,
        reports: &[Report],
    ) -> Result<(Vec<Result<TaskExecution, RepoError>>, bool), RepoError> {
        let at = self.clock.now();
        let (plans, retryable): (Vec<StatusChange>, Vec<bool>) = reports
            .iter()
            .map(|report| self.plan(actor, report, at))
            .unzip();
        let outcomes = tx.change_many(&plans)?;
        if outcomes.len() != plans.len() {
            return Err(RepoError::Unknown(anyhow::anyhow!(
                "{} answers to {} changes",
                outcomes.len(),
                plans.len()
            )));
        }
        // Their flow executions locked now, in id order (the engine's
        // order), before a failure's retry reads one of them.
        let changed: std::collections::BTreeSet<_> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Ok(ChangeOutcome::Changed(row)) => Some(row.flow_execution_id),
                _ => None,
            })
            .collect();
        for id in &changed {
            tx.lock_flow_execution(*id)?;
        }
        let settled = plans
            .iter()
            .zip(retryable)
            .zip(outcomes)
            .map(|((plan, retryable), outcome)| self.settle(tx, plan, retryable, outcome))
            .collect::<Result<Vec<_>, RepoError>>()?;
        let retried = settled.iter().any(|(_, retried)| *retried);
        let created = self.engine.settle(tx, organization, changed, actor, at)?;
        let answers = settled.into_iter().map(|(answer, _)| answer).collect();
        Ok((answers, retried || created > 0))
    }
}

/// How the attempt after `failed` is numbered: its policy counts the
/// attempts of its run (of its iteration, for a `for_each` task) since the
/// run was last made again (a rerun: the attempts before are stale), and
/// it takes the index after every attempt of the task.
pub(crate) fn numbering<T: TenantTx>(
    tx: &mut T,
    failed: &TaskExecution,
) -> Result<Numbering, RepoError> {
    let attempts = tx.run_attempts(
        failed.flow_execution_id,
        &failed.task_name,
        failed.iteration,
    )?;
    let since_rerun = attempts
        .iter()
        .rev()
        .take_while(|(_, status)| *status != flowexec_domain::TaskStatus::Stale)
        .count();
    let latest = tx.latest_execution_index(failed.flow_execution_id, &failed.task_name)?;
    Ok(Numbering {
        attempts: u32::try_from(since_rerun.max(1)).unwrap_or(u32::MAX),
        next_index: latest.saturating_add(1),
    })
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Swept {
    /// Runs failed because their lease lapsed.
    pub lease_expired: usize,
    /// Runs failed because they exceeded their time limit.
    pub timed_out: usize,
    /// Of those, how many were followed by a new attempt.
    pub retried: usize,
}

impl<S: ExecutionStore + OverdueRuns, C: Clock> Workers<S, C> {
    /// Fails up to `limit` overdue runs — past their lease or their time
    /// limit — with `{"code": "lease_expired"}` or `{"code": "timed_out"}`
    /// (actor `system`), each in its own tenant's unit of work, after
    /// locking it and checking it is still overdue: of many sweepers (one
    /// per server process) and a late report, exactly one changes it. Each
    /// failure is retried by the task's policy, as a reported one is. A run
    /// that cannot be handled is logged and left to the next sweep.
    pub fn sweep(&self, limit: usize) -> Result<Swept, ServiceError> {
        let at = self.clock.now();
        let mut swept = Swept::default();
        for (organization_id, id) in self.store.overdue_runs(at, limit)? {
            let handled = self.store.in_tenant(Tenant::new(organization_id), |tx| {
                let row = match tx.lock_task_execution(id) {
                    Ok(row) => row,
                    Err(RepoError::NotFound) => return Ok(None),
                    Err(other) => return Err(other),
                };
                let Some(overdue) = Overdue::of(&row, at) else {
                    return Ok(None);
                };
                let mut plan = Transition::Fail {
                    error: Some(overdue.error(&row)),
                }
                .plan(id, Actor::System, Some(overdue.code().to_owned()), at);
                if let Some(worker) = row.lease.worker_id {
                    plan = plan.held_by(worker);
                }
                match tx.change_status(&plan)? {
                    ChangeOutcome::Changed(failed) => {
                        let retried = self.retry_after(tx, &failed, at)?;
                        self.engine.settle(
                            tx,
                            organization_id,
                            flows_of([&failed]),
                            Actor::System,
                            at,
                        )?;
                        Ok(Some((overdue, retried)))
                    }
                    ChangeOutcome::Refused(_) => Ok(None),
                }
            });
            match handled {
                Ok(Some((overdue, retried))) => {
                    tracing::info!(task_execution.id = %id, reason = overdue.code(), retried, "swept");
                    match overdue {
                        Overdue::LeaseExpired => swept.lease_expired += 1,
                        Overdue::TimedOut => swept.timed_out += 1,
                    }
                    swept.retried += usize::from(retried);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(task_execution.id = %id, %error, "could not sweep a run; the next sweep tries again");
                }
            }
        }
        Ok(swept)
    }
}

impl<S: ExecutionStore, C: Clock> WorkerUseCases for Workers<S, C> {
    fn claim(
        &self,
        principal: &Principal,
        request: &ClaimRequest,
    ) -> Result<ClaimAnswer, ServiceError> {
        require_worker(principal)?;
        check_claim(request)?;
        let claim = Claim::new(
            request.worker_id.clone(),
            request.task_names.clone(),
            request.limit,
            request.lease_seconds,
            principal.actor,
            self.clock.now(),
        );
        let (tasks, next_due) = self.store.in_tenant(principal.tenant(), |tx| {
            let tasks = tx.claim(&claim)?;
            self.engine.started(tx, flows_of(&tasks), claim.at)?;
            let next_due = if tasks.is_empty() {
                tx.next_due(&claim)?
            } else {
                None
            };
            Ok((tasks, next_due))
        })?;
        if !tasks.is_empty() {
            tracing::info!(worker_id = %request.worker_id, tasks = tasks.len(), "claimed");
        }
        Ok(ClaimAnswer {
            tasks,
            next_due_in: next_due.map(|due| (due - self.clock.now()).to_std().unwrap_or_default()),
        })
    }

    fn heartbeat(
        &self,
        principal: &Principal,
        id: TaskExecutionId,
        worker_id: WorkerId,
        lease_seconds: u32,
    ) -> Result<TaskExecution, ServiceError> {
        require_worker(principal)?;
        check_lease(lease_seconds)?;
        let beat = Heartbeat::new(id, worker_id, lease_seconds, self.clock.now());
        match self
            .store
            .in_tenant(principal.tenant(), |tx| tx.heartbeat(&beat))?
        {
            ChangeOutcome::Changed(row) => Ok(row),
            ChangeOutcome::Refused(row) => Err(ServiceError::LeaseLost {
                current: row.status,
            }),
        }
    }

    fn report(&self, principal: &Principal, report: Report) -> Result<TaskExecution, ServiceError> {
        require_worker(principal)?;
        let id = report.task_execution_id;
        let (answers, queued) = self.store.in_tenant(principal.tenant(), |tx| {
            self.apply(
                tx,
                principal.organization_id,
                principal.actor,
                std::slice::from_ref(&report),
            )
        })?;
        self.announce(queued);
        let row = answers
            .into_iter()
            .next()
            .unwrap_or(Err(RepoError::NotFound))?;
        tracing::info!(task_execution.id = %id, status = %row.status, "reported");
        Ok(row)
    }

    fn report_many(
        &self,
        principal: &Principal,
        reports: Vec<Report>,
    ) -> Result<Vec<Result<TaskExecution, ServiceError>>, ServiceError> {
        require_worker(principal)?;
        let (answers, queued) = self.store.in_tenant(principal.tenant(), |tx| {
            self.apply(tx, principal.organization_id, principal.actor, &reports)
        })?;
        self.announce(queued);
        Ok(answers
            .into_iter()
            .map(|answer| answer.map_err(ServiceError::from))
            .collect())
    }
}
