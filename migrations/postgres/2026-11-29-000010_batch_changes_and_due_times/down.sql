DROP FUNCTION IF EXISTS flowexec_refresh_statistics();
DROP INDEX IF EXISTS task_executions_due_idx;
DROP FUNCTION IF EXISTS flowexec_change_statuses(
    uuid, uuid[], jsonb[], jsonb[], text[], text, text, timestamptz,
    boolean, boolean, boolean, boolean, text[], text
);
