-- Single-statement tenant reads for the hot path.
--
-- A tenant read normally takes four round trips: BEGIN, set_config, the
-- select, COMMIT. This function does the same work in one statement: it sets
-- app.organization_id transaction-locally (the statement's own implicit
-- transaction when called outside one, so the setting ends with the
-- statement) and then selects, filtered by the organization as well as by
-- Row-Level Security. SECURITY INVOKER (the default): RLS applies to the
-- caller exactly as for an inline query. See
-- docs/decisions/0003-single-statement-tenant-reads.md.
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
