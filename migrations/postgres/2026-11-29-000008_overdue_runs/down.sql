DROP FUNCTION IF EXISTS flowexec_overdue_runs(timestamptz, integer);
DROP POLICY IF EXISTS owner_overdue_census ON task_executions;
