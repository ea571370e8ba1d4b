-- Waiting claims on every server instance learn of new work: when queued
-- task executions are inserted, one notification per organization on
-- channel flowexec_work (payload: the organization id), delivered at
-- commit (and not at all on rollback). See WorkListener.
CREATE FUNCTION flowexec_notify_work()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('flowexec_work', o.organization_id::text)
    FROM (SELECT DISTINCT n.organization_id FROM new_rows AS n WHERE n.status = 'queued') AS o;
    RETURN NULL;
END
$$;

CREATE TRIGGER task_executions_notify_work
    AFTER INSERT ON task_executions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION flowexec_notify_work();
