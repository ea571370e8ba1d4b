DROP INDEX IF EXISTS task_executions_due_idx;
