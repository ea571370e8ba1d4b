DROP FUNCTION IF EXISTS flowexec_change_status(
    uuid, uuid, text, text, timestamptz, boolean, boolean, boolean, jsonb, boolean, jsonb,
    text[], bigint[], text
);
DROP FUNCTION IF EXISTS flowexec_get_task_execution(uuid, uuid);
DROP TABLE IF EXISTS deployment_secrets;
DROP INDEX IF EXISTS flow_executions_name_idx;
DROP INDEX IF EXISTS task_executions_flow_created_idx;
DROP INDEX IF EXISTS task_executions_task_name_idx;
DROP INDEX IF EXISTS task_executions_created_idx;
DROP INDEX IF EXISTS task_executions_status_idx;
CREATE INDEX task_executions_status_idx ON task_executions (organization_id, status, created_at);
ALTER TABLE task_executions DROP COLUMN IF EXISTS version;

-- The functions as migration 000005 left them.
CREATE FUNCTION flowexec_get_task_execution(p_organization_id uuid, p_id uuid)
RETURNS TABLE (
    organization_id uuid, id uuid, flow_execution_id uuid, task_name text,
    execution_index integer, status text, input jsonb, output jsonb, error jsonb,
    modified_by text, created_at timestamptz, updated_at timestamptz,
    started_at timestamptz, completed_at timestamptz
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_catalog.set_config('app.organization_id', p_organization_id::text, true);
    RETURN QUERY
        SELECT t.organization_id, t.id, t.flow_execution_id, t.task_name,
               t.execution_index, t.status, t.input, t.output, t.error,
               t.modified_by, t.created_at, t.updated_at, t.started_at, t.completed_at
        FROM public.task_executions AS t
        WHERE t.organization_id = p_organization_id AND t.id = p_id;
END
$$;
REVOKE ALL ON FUNCTION flowexec_get_task_execution(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowexec_get_task_execution(uuid, uuid) TO flowexec_runtime;

CREATE FUNCTION flowexec_change_status(
    p_organization_id uuid, p_id uuid, p_to text, p_actor text, p_at timestamptz,
    p_starts boolean, p_finishes boolean,
    p_sets_output boolean, p_output jsonb, p_sets_error boolean, p_error jsonb,
    p_from text[], p_reason text
)
RETURNS TABLE (
    organization_id uuid, id uuid, flow_execution_id uuid, task_name text,
    execution_index integer, status text, input jsonb, output jsonb, error jsonb,
    modified_by text, created_at timestamptz, updated_at timestamptz,
    started_at timestamptz, completed_at timestamptz
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
        WITH current_row AS (
            SELECT t.id, t.status
            FROM public.task_executions AS t
            WHERE t.organization_id = p_organization_id AND t.id = p_id
            FOR UPDATE
        ), changed AS (
            UPDATE public.task_executions AS t SET
                status = p_to,
                modified_by = p_actor,
                updated_at = p_at,
                started_at = CASE WHEN p_starts THEN p_at ELSE t.started_at END,
                completed_at = CASE WHEN p_finishes THEN p_at ELSE t.completed_at END,
                output = CASE WHEN p_sets_output THEN p_output ELSE t.output END,
                error = CASE WHEN p_sets_error THEN p_error ELSE t.error END
            FROM current_row AS c
            WHERE t.organization_id = p_organization_id AND t.id = c.id
              AND c.status = ANY (p_from)
            RETURNING t.organization_id, t.id, t.flow_execution_id, t.task_name,
                      t.execution_index, t.status, t.input, t.output, t.error,
                      t.modified_by, t.created_at, t.updated_at, t.started_at,
                      t.completed_at, c.status AS from_status
        ), recorded AS (
            INSERT INTO public.task_execution_events
                (organization_id, task_execution_id, from_status, to_status, actor, reason, created_at)
            SELECT ch.organization_id, ch.id, ch.from_status, p_to, p_actor, p_reason, p_at
            FROM changed AS ch
        )
        SELECT ch.organization_id, ch.id, ch.flow_execution_id, ch.task_name,
               ch.execution_index, ch.status, ch.input, ch.output, ch.error,
               ch.modified_by, ch.created_at, ch.updated_at, ch.started_at, ch.completed_at
        FROM changed AS ch;
END
$$;
REVOKE ALL ON FUNCTION flowexec_change_status(
    uuid, uuid, text, text, timestamptz, boolean, boolean, boolean, jsonb, boolean, jsonb, text[], text
) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowexec_change_status(
    uuid, uuid, text, text, timestamptz, boolean, boolean, boolean, jsonb, boolean, jsonb, text[], text
) TO flowexec_runtime;
