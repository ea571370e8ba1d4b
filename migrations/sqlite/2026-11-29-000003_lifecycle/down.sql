DROP TABLE IF EXISTS deployment_secrets;
DROP INDEX IF EXISTS flow_executions_name_idx;
DROP INDEX IF EXISTS task_executions_flow_created_idx;
DROP INDEX IF EXISTS task_executions_task_name_idx;
DROP INDEX IF EXISTS task_executions_created_idx;
DROP INDEX IF EXISTS task_executions_status_idx;
CREATE INDEX task_executions_status_idx ON task_executions (organization_id, status, created_at);
ALTER TABLE task_executions DROP COLUMN version;
