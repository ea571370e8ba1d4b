-- Waiting claims on every server instance learn of new work: when a
-- statement inserts queued task executions, one notification on channel
-- flowexec_work (no payload: nothing of a tenant is broadcast), delivered
-- at commit (and not at all on rollback; repeats in one transaction are
-- folded into one). See WorkListener.
CREATE FUNCTION flowexec_notify_work()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows AS n WHERE n.status = 'queued') THEN
        PERFORM pg_notify('flowexec_work', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER task_executions_notify_work
    AFTER INSERT ON task_executions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION flowexec_notify_work();
