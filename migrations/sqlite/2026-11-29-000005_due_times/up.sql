-- When the next queued task falls due, as on PostgreSQL
-- (migrations/postgres/…_batch_changes_and_due_times): a claim waiting for
-- work sleeps until then instead of looking again every second.
CREATE INDEX task_executions_due_idx
    ON task_executions (organization_id, not_before)
    WHERE status = 'queued' AND not_before IS NOT NULL;
