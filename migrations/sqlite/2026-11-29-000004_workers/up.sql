-- Workers, as on PostgreSQL (migrations/postgres/…_workers): a claimed
-- task is held by a worker (worker_id) under a lease (lease_expires_at,
-- extended by heartbeats); a queued task is claimable once not_before has
-- passed (NULL: at once), highest priority first, then oldest; a run may
-- be limited in time (timeout_seconds) and a failure retried by the task's
-- policy (retry_policy, JSON; NULL: the server's default).

ALTER TABLE task_executions ADD COLUMN worker_id TEXT
    CHECK (worker_id IS NULL OR length(worker_id) BETWEEN 1 AND 200);
ALTER TABLE task_executions ADD COLUMN lease_expires_at TEXT;
ALTER TABLE task_executions ADD COLUMN heartbeat_at TEXT;
ALTER TABLE task_executions ADD COLUMN not_before TEXT;
ALTER TABLE task_executions ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE task_executions ADD COLUMN timeout_seconds INTEGER
    CHECK (timeout_seconds IS NULL OR timeout_seconds BETWEEN 1 AND 604800);
ALTER TABLE task_executions ADD COLUMN retry_policy TEXT;

-- Claims: the queued tasks of an organization by priority then age, with
-- or without a task name.
CREATE INDEX task_executions_claim_idx
    ON task_executions (organization_id, priority DESC, created_at, id)
    WHERE status = 'queued';
CREATE INDEX task_executions_claim_name_idx
    ON task_executions (organization_id, task_name, priority DESC, created_at, id)
    WHERE status = 'queued';
-- The sweeper: running tasks, every organization, by lease end.
CREATE INDEX task_executions_running_idx
    ON task_executions (lease_expires_at)
    WHERE status = 'running';
