-- The task execution lifecycle over HTTP, as on PostgreSQL
-- (migrations/postgres/…_lifecycle): a per-row version that every change
-- bumps (the ETag); the indexes every list is served by, each leading with
-- organization_id; the deployment's secret for signing list cursors.

ALTER TABLE task_executions
    ADD COLUMN version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1);

DROP INDEX task_executions_status_idx;
CREATE INDEX task_executions_status_idx
    ON task_executions (organization_id, status, created_at, id);
CREATE INDEX task_executions_created_idx
    ON task_executions (organization_id, created_at, id);
CREATE INDEX task_executions_task_name_idx
    ON task_executions (organization_id, task_name, created_at, id);
CREATE INDEX task_executions_flow_created_idx
    ON task_executions (organization_id, flow_execution_id, created_at, id);
CREATE INDEX flow_executions_name_idx
    ON flow_executions (organization_id, flow_name, created_at, id);

CREATE TABLE deployment_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL CHECK (length(value) >= 32)
);
INSERT INTO deployment_secrets (name, value) VALUES ('cursor', randomblob(32));
