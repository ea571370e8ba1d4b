DROP INDEX IF EXISTS task_executions_flow_failed_idx;
DROP INDEX IF EXISTS task_executions_flow_open_idx;
ALTER TABLE task_executions DROP COLUMN iteration;
ALTER TABLE flow_executions DROP COLUMN status;
ALTER TABLE flow_executions DROP COLUMN flow_version;
DROP TABLE IF EXISTS flow_versions;
DROP TABLE IF EXISTS flows;
