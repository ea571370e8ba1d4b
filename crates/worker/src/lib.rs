#![doc = include_str!("../README.md")]

mod transport;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;
use uuid::Uuid;

pub use transport::{
    ClaimRequest, Claimed, HttpTransport, InProcess, RunResult, Transport, TransportError,
};

/// How a worker runs.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// The worker's name for itself, on every claim and report.
    pub worker_id: String,
    /// Tasks run at once, at most (default 8).
    pub concurrency: usize,
    /// The lease asked for each task (default 60 s); heartbeats are sent
    /// every third of it.
    pub lease_seconds: u32,
    /// How long a claim waits for work when there is none (default 20 s).
    pub wait_seconds: u32,
    /// Tasks taken by one claim, at most (default 500: as many as there
    /// are free slots).
    pub claim_batch: usize,
    /// Results sent in one call, at most (default 1: each by its own
    /// `complete` or `fail`). Above 1, results that end close together
    /// share one `POST /task-executions/results`, the first waiting at most
    /// `report_linger` for others.
    pub report_batch: usize,
    /// How long a result may wait for others to share its call (default
    /// 5 ms; only with `report_batch` above 1).
    pub report_linger: Duration,
    /// On shutdown, how long running tasks may take to finish (default
    /// 30 s) before the worker stops heartbeating and leaves them to their
    /// leases; then as long again, at most, for the last batched results
    /// to be sent.
    pub grace: Duration,
}

impl WorkerConfig {
    pub fn new(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            concurrency: 8,
            lease_seconds: 60,
            wait_seconds: 20,
            claim_batch: 500,
            report_batch: 1,
            report_linger: Duration::from_millis(5),
            grace: Duration::from_secs(30),
        }
    }
}

/// A run that did not succeed: what to record as the task's `error`, and
/// whether the task's retry policy may run it again.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskError {
    pub error: Value,
    pub retryable: bool,
}

impl TaskError {
    /// A failure worth another attempt (the policy decides how many).
    pub fn retryable(error: impl Into<Value>) -> Self {
        Self {
            error: error.into(),
            retryable: true,
        }
    }

    /// A failure another attempt would repeat (bad input, say).
    pub fn fatal(error: impl Into<Value>) -> Self {
        Self {
            error: error.into(),
            retryable: false,
        }
    }
}

impl<E: std::error::Error> From<E> for TaskError {
    /// Any error, as a retryable failure with its message.
    fn from(error: E) -> Self {
        Self::retryable(json!({"message": error.to_string()}))
    }
}

/// A claimed task, as its handler sees it.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: Uuid,
    pub task_name: String,
    pub execution_index: i32,
    cancelled: watch::Receiver<bool>,
}

impl Task {
    /// Whether the task's lease was lost (it was deleted, or failed by the
    /// sweeper): stop working on it; its result will not be recorded.
    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Completes when the task's lease is lost.
    pub async fn cancelled(&self) {
        let mut receiver = self.cancelled.clone();
        let _ = receiver.wait_for(|cancelled| *cancelled).await;
    }
}

type Handler =
    Arc<dyn Fn(Option<Value>, Task) -> BoxFuture<'static, Result<Value, TaskError>> + Send + Sync>;

/// A worker: handlers by task name, over a transport.
pub struct Worker<T> {
    transport: Arc<T>,
    config: WorkerConfig,
    handlers: HashMap<String, Handler>,
    /// Runs the tasks no handler is named for; when set, the worker claims
    /// tasks of any name.
    fallback: Option<Handler>,
}

impl<T: Transport> Worker<T> {
    pub fn new(transport: T, config: WorkerConfig) -> Self {
        Self {
            transport: Arc::new(transport),
            config,
            handlers: HashMap::new(),
            fallback: None,
        }
    }

    /// Runs tasks named `name` with `handler`, their input read as `I` (a
    /// task whose input does not read fails, not retried, with `{"code":
    /// "bad_input"}`) and the output written from `O`.
    pub fn handle<I, O, F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        F: Fn(I, Task) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, TaskError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.handlers.insert(
            name.to_owned(),
            Arc::new(move |input, task| {
                let handler = handler.clone();
                Box::pin(async move {
                    let input: I =
                        serde_json::from_value(input.unwrap_or(Value::Null)).map_err(|e| {
                            TaskError::fatal(json!({"code": "bad_input", "message": e.to_string()}))
                        })?;
                    let output = handler(input, task).await?;
                    serde_json::to_value(output).map_err(|e| {
                        TaskError::fatal(json!({"code": "bad_output", "message": e.to_string()}))
                    })
                })
            }),
        );
        self
    }

    /// Runs tasks named `name` with `handler`, on the raw JSON input.
    pub fn handle_json<F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        F: Fn(Option<Value>, Task) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.handlers.insert(
            name.to_owned(),
            Arc::new(move |input, task| Box::pin(handler(input, task))),
        );
        self
    }

    /// Runs every task no other handler is named for with `handler`, on the
    /// raw JSON input (`task.task_name` says which it is). The worker then
    /// claims tasks of any name: for a worker serving many task names (a
    /// claim names at most 100), or all of them.
    pub fn handle_any<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Option<Value>, Task) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.fallback = Some(Arc::new(move |input, task| Box::pin(handler(input, task))));
        self
    }

    /// Claims and runs tasks until `shutdown` completes; then stops
    /// claiming, lets running tasks finish within the grace period, and
    /// returns (tasks still running are abandoned: their leases lapse and
    /// the server's sweeper retries them).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        // No names: any task (a fallback handler runs what has no other).
        let mut task_names: Vec<String> = if self.fallback.is_some() {
            Vec::new()
        } else {
            self.handlers.keys().cloned().collect()
        };
        task_names.sort();
        let handlers = Arc::new(self.handlers);
        let fallback = self.fallback;
        let config = Arc::new(self.config);
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let (reporter, sending) = Reporter::start(self.transport.clone(), &config);
        let mut running = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            while running.try_join_next().is_some() {}
            let free = slots.available_permits();
            if free == 0 {
                tokio::select! {
                    () = &mut shutdown => break,
                    _ = running.join_next() => continue,
                }
            }
            let claim = self.transport.claim(ClaimRequest {
                worker_id: config.worker_id.clone(),
                task_names: task_names.clone(),
                limit: free.min(config.claim_batch.clamp(1, 500)),
                lease_seconds: config.lease_seconds,
                wait_seconds: config.wait_seconds,
            });
            let claimed = tokio::select! {
                () = &mut shutdown => break,
                claimed = claim => claimed,
            };
            match claimed {
                Ok(tasks) => {
                    for task in tasks {
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            tracing::warn!(task_execution.id = %task.id, "claimed more tasks than free slots; its lease will lapse");
                            continue;
                        };
                        let Some(handler) =
                            handlers.get(&task.task_name).or(fallback.as_ref()).cloned()
                        else {
                            continue;
                        };
                        let span = tracing::info_span!(
                            "task",
                            task_execution.id = %task.id,
                            task_name = %task.task_name,
                            execution_index = task.execution_index
                        );
                        running.spawn(
                            run_task(
                                self.transport.clone(),
                                reporter.clone(),
                                config.clone(),
                                handler,
                                task,
                                slot,
                            )
                            .instrument(span),
                        );
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "claim failed; trying again in a second");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        tracing::info!(running = running.len(), "stopping: no more claims");
        let drained = tokio::time::timeout(config.grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                abandoned = running.len(),
                "grace period over: abandoning running tasks to their leases"
            );
            running.abort_all();
            while running.join_next().await.is_some() {}
        }
        // The last results still batched are sent before the worker stops,
        // within another grace period.
        drop(reporter);
        if let Some(mut sending) = sending {
            if tokio::time::timeout(config.grace, &mut sending)
                .await
                .is_err()
            {
                tracing::warn!("grace period over: results not yet sent are left to their leases");
                sending.abort();
            }
        }
    }
}

/// One result waiting to be sent, and where its answer goes.
struct Pending {
    run: RunResult,
    answer: oneshot::Sender<Result<(), TransportError>>,
}

/// Sends results: each on its own, or batched through a task of its own.
enum Reporter<T> {
    Direct(Arc<T>),
    Batched(mpsc::Sender<Pending>),
}

impl<T> Clone for Reporter<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Direct(transport) => Self::Direct(transport.clone()),
            Self::Batched(sender) => Self::Batched(sender.clone()),
        }
    }
}

impl<T: Transport> Reporter<T> {
    /// A reporter for `config`, and the batching task, if any (it ends when
    /// the last clone of the reporter is dropped, after sending what it
    /// holds).
    fn start(
        transport: Arc<T>,
        config: &WorkerConfig,
    ) -> (Self, Option<tokio::task::JoinHandle<()>>) {
        let batch = config.report_batch.clamp(1, 500);
        if batch == 1 {
            return (Self::Direct(transport), None);
        }
        let (sender, receiver) = mpsc::channel(batch * 4);
        let linger = config.report_linger;
        let sending = tokio::spawn(send_batches(transport, receiver, batch, linger));
        (Self::Batched(sender), Some(sending))
    }

    async fn report(&self, run: RunResult) -> Result<(), TransportError> {
        match self {
            Self::Direct(transport) => transport.report(run.id, run.worker_id, run.result).await,
            Self::Batched(sender) => {
                let (answer, answered) = oneshot::channel();
                sender
                    .send(Pending { run, answer })
                    .await
                    .map_err(|_| TransportError::Other("the reporter has stopped".into()))?;
                answered
                    .await
                    .map_err(|_| TransportError::Other("the reporter has stopped".into()))?
            }
        }
    }
}

/// Collects results into batches of up to `batch` (the first waiting at
/// most `linger` for others) and sends each batch in one call.
async fn send_batches<T: Transport>(
    transport: Arc<T>,
    mut receiver: mpsc::Receiver<Pending>,
    batch: usize,
    linger: Duration,
) {
    while let Some(first) = receiver.recv().await {
        let mut pending = vec![first];
        let until = tokio::time::Instant::now() + linger;
        while pending.len() < batch {
            match tokio::time::timeout_at(until, receiver.recv()).await {
                Ok(Some(next)) => pending.push(next),
                Ok(None) | Err(_) => break,
            }
        }
        let (runs, answers): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .map(|pending| (pending.run, pending.answer))
            .unzip();
        let count = runs.len();
        match transport.report_many(runs).await {
            Ok(results) if results.len() == count => {
                for (answer, result) in answers.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
            Ok(results) => {
                for answer in answers {
                    let _ = answer.send(Err(TransportError::Other(format!(
                        "{} answers to {count} results",
                        results.len()
                    ))));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for answer in answers {
                    let _ = answer.send(Err(TransportError::Other(message.clone())));
                }
            }
        }
    }
}

/// One task: its handler (on a task of its own, so that a panic is caught),
/// heartbeats beside it, then the report.
async fn run_task<T: Transport>(
    transport: Arc<T>,
    reporter: Reporter<T>,
    config: Arc<WorkerConfig>,
    handler: Handler,
    claimed: Claimed,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let (cancel, cancelled) = watch::channel(false);
    let task = Task {
        id: claimed.id,
        task_name: claimed.task_name.clone(),
        execution_index: claimed.execution_index,
        cancelled,
    };
    let mut work = tokio::spawn(handler(claimed.input, task).in_current_span());
    let every = Duration::from_secs(u64::from(config.lease_seconds)) / 3;
    let mut lost = false;
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            () = tokio::time::sleep(every), if !lost => {
                match transport.heartbeat(claimed.id, config.worker_id.clone(), config.lease_seconds).await {
                    Ok(()) => {}
                    Err(TransportError::LeaseLost) => {
                        tracing::warn!("lease lost: cancelling the task");
                        lost = true;
                        let _ = cancel.send(true);
                    }
                    Err(error) => tracing::warn!(%error, "heartbeat failed"),
                }
            }
        }
    };
    if lost {
        // Its result would not be recorded.
        return;
    }
    let result = match outcome {
        Ok(result) => result,
        Err(join) if join.is_panic() => {
            let payload = join.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            tracing::error!(%message, "the handler panicked");
            Err(TaskError::retryable(
                json!({"code": "panic", "message": message}),
            ))
        }
        Err(_) => return,
    };
    let run = RunResult {
        id: claimed.id,
        worker_id: config.worker_id.clone(),
        result,
    };
    // The lease is kept while the result waits to be sent (a batch, a
    // retried call): a result must not lapse on its way.
    let report = reporter.report(run);
    tokio::pin!(report);
    let answer = loop {
        tokio::select! {
            answer = &mut report => break answer,
            () = tokio::time::sleep(every) => {
                let beat = transport.heartbeat(claimed.id, config.worker_id.clone(), config.lease_seconds);
                if let Err(error) = beat.await {
                    tracing::warn!(%error, "heartbeat failed while the result waits to be sent");
                }
            }
        }
    };
    match answer {
        Ok(()) => {}
        Err(TransportError::LeaseLost) => {
            tracing::warn!("the result was not recorded: the lease was lost");
        }
        Err(error) => {
            tracing::warn!(%error, "the result could not be reported; the lease will lapse")
        }
    }
}
