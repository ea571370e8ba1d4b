DROP FUNCTION IF EXISTS flowexec_change_status(
    uuid, uuid, text, text, timestamptz, boolean, boolean, boolean, jsonb, boolean, jsonb, text[], text
);
DROP FUNCTION IF EXISTS flowexec_get_task_execution(uuid, uuid);
CREATE FUNCTION flowexec_get_task_execution(p_organization_id uuid, p_id uuid)
RETURNS SETOF task_executions
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_catalog.set_config('app.organization_id', p_organization_id::text, true);
    RETURN QUERY
        SELECT t.*
        FROM public.task_executions AS t
        WHERE t.organization_id = p_organization_id AND t.id = p_id;
END
$$;
REVOKE ALL ON FUNCTION flowexec_get_task_execution(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowexec_get_task_execution(uuid, uuid) TO flowexec_runtime;
