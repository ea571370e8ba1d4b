DROP TRIGGER IF EXISTS task_executions_notify_work ON task_executions;
DROP FUNCTION IF EXISTS flowexec_notify_work();
