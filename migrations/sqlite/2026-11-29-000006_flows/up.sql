-- Flows, as on PostgreSQL (migrations/postgres/…_flows): stored
-- definitions, versioned; runs of a definition; the loop iteration of a
-- task; the status of a flow execution stored with its tasks.

CREATE TABLE flows (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    latest_version INTEGER NOT NULL CHECK (latest_version >= 1),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT,
    PRIMARY KEY (organization_id, name)
) WITHOUT ROWID;

CREATE TABLE flow_versions (
    organization_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    source TEXT NOT NULL,
    document TEXT NOT NULL CHECK (json_type(document) = 'object'),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (organization_id, name, version),
    FOREIGN KEY (organization_id, name) REFERENCES flows (organization_id, name) ON DELETE CASCADE
) WITHOUT ROWID;

-- SQLite cannot add a table constraint to an existing table: the version a
-- flow execution names is checked by the service, which reads it first in
-- the same transaction.
ALTER TABLE flow_executions ADD COLUMN flow_version INTEGER;
ALTER TABLE flow_executions ADD COLUMN status TEXT NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled'));

-- The status of each existing flow execution, by the rule it was derived
-- by until now: from the latest attempt of each task, deleted ones left out.
UPDATE flow_executions SET status = coalesce((
    SELECT CASE WHEN max(latest.status = 'failed') THEN 'failed'
                WHEN min(latest.status = 'completed') THEN 'completed'
                WHEN min(latest.status = 'queued') THEN 'queued'
                ELSE 'running' END
    FROM task_executions AS latest
    WHERE latest.organization_id = flow_executions.organization_id
      AND latest.flow_execution_id = flow_executions.id
      AND latest.status <> 'deleted'
      AND latest.execution_index = (
          SELECT max(t.execution_index) FROM task_executions AS t
          WHERE t.organization_id = latest.organization_id
            AND t.flow_execution_id = latest.flow_execution_id
            AND t.task_name = latest.task_name)
    HAVING count(*) > 0
), 'queued');

ALTER TABLE task_executions ADD COLUMN iteration INTEGER CHECK (iteration >= 0);

-- The questions the engine asks of a flow execution at each change of
-- its tasks (is a latest attempt failed? is one still open?), answered
-- from the few rows in those statuses, not the flow execution's all.
CREATE INDEX task_executions_flow_open_idx
    ON task_executions (organization_id, flow_execution_id, task_name)
    WHERE status IN ('queued', 'running', 'stale');
CREATE INDEX task_executions_flow_failed_idx
    ON task_executions (organization_id, flow_execution_id, task_name)
    WHERE status = 'failed';
