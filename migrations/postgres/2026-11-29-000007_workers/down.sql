DROP FUNCTION IF EXISTS flowexec_change_status(
    uuid, uuid, text, text, timestamptz, boolean, boolean, boolean, jsonb, boolean, jsonb,
    text[], bigint[], text, text
);
DROP INDEX IF EXISTS task_executions_running_idx;
DROP INDEX IF EXISTS task_executions_claim_name_idx;
DROP INDEX IF EXISTS task_executions_claim_idx;
ALTER TABLE task_executions
    DROP COLUMN IF EXISTS retry_policy,
    DROP COLUMN IF EXISTS timeout_seconds,
    DROP COLUMN IF EXISTS priority,
    DROP COLUMN IF EXISTS not_before,
    DROP COLUMN IF EXISTS heartbeat_at,
    DROP COLUMN IF EXISTS lease_expires_at,
    DROP COLUMN IF EXISTS worker_id;

-- The functions as migration 000006 left them.
DROP FUNCTION flowexec_get_task_execution(uuid, uuid);
CREATE FUNCTION flowexec_get_task_execution(p_organization_id uuid, p_id uuid)
RETURNS TABLE (
    organization_id uuid, id uuid, flow_execution_id uuid, task_name text,
    execution_index integer, status text, input jsonb, output jsonb, error jsonb,
    modified_by text, created_at timestamptz, updated_at timestamptz,
    started_at timestamptz, completed_at timestamptz, version bigint
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_catalog.set_config('app.organization_id', p_organization_id::text, true);
    RETURN QUERY
        SELECT t.organization_id, t.id, t.flow_execution_id, t.task_name,
               t.execution_index, t.status, t.input, t.output, t.error,
               t.modified_by, t.created_at, t.updated_at, t.started_at, t.completed_at,
               t.version
        FROM public.task_executions AS t
        WHERE t.organization_id = p_organization_id AND t.id = p_id;
END
$$;
REVOKE ALL ON FUNCTION flowexec_get_task_execution(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowexec_get_task_execution(uuid, uuid) TO flowexec_runtime;

-- A status change decided by the domain (flowexec_domain::StatusChange):
-- the compare-and-set now also on the version (p_versions; NULL: any), the
-- version bumped, and, whether the change applied or not, the row: with
-- `changed` true, as it is after the change (its event recorded); with
-- `changed` false, as it is, unchanged, read under the same row lock. No
-- row: the task execution does not exist in the tenant.
CREATE FUNCTION flowexec_change_status(
    p_organization_id uuid, p_id uuid, p_to text, p_actor text, p_at timestamptz,
    p_starts boolean, p_finishes boolean,
    p_sets_output boolean, p_output jsonb, p_sets_error boolean, p_error jsonb,
    p_from text[], p_versions bigint[], p_reason text
)
RETURNS TABLE (
    organization_id uuid, id uuid, flow_execution_id uuid, task_name text,
    execution_index integer, status text, input jsonb, output jsonb, error jsonb,
    modified_by text, created_at timestamptz, updated_at timestamptz,
    started_at timestamptz, completed_at timestamptz, version bigint, changed boolean
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
        WITH current_row AS (
            SELECT t.*
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
                error = CASE WHEN p_sets_error THEN p_error ELSE t.error END,
                version = t.version + 1
            FROM current_row AS c
            WHERE t.organization_id = p_organization_id AND t.id = c.id
              AND c.status = ANY (p_from)
              AND (p_versions IS NULL OR c.version = ANY (p_versions))
            RETURNING t.organization_id, t.id, t.flow_execution_id, t.task_name,
                      t.execution_index, t.status, t.input, t.output, t.error,
                      t.modified_by, t.created_at, t.updated_at, t.started_at,
                      t.completed_at, t.version, c.status AS from_status
        ), recorded AS (
            INSERT INTO public.task_execution_events
                (organization_id, task_execution_id, from_status, to_status, actor, reason, created_at)
            SELECT ch.organization_id, ch.id, ch.from_status, p_to, p_actor, p_reason, p_at
            FROM changed AS ch
        )
        SELECT ch.organization_id, ch.id, ch.flow_execution_id, ch.task_name,
               ch.execution_index, ch.status, ch.input, ch.output, ch.error,
               ch.modified_by, ch.created_at, ch.updated_at, ch.started_at, ch.completed_at,
               ch.version, true
        FROM changed AS ch
        UNION ALL
        SELECT c.organization_id, c.id, c.flow_execution_id, c.task_name,
               c.execution_index, c.status, c.input, c.output, c.error,
               c.modified_by, c.created_at, c.updated_at, c.started_at, c.completed_at,
               c.version, false
        FROM current_row AS c
        WHERE NOT EXISTS (SELECT 1 FROM changed);
END
$$;
REVOKE ALL ON FUNCTION flowexec_change_status(
    uuid, uuid, text, text, timestamptz, boolean, boolean, boolean, jsonb, boolean, jsonb,
    text[], bigint[], text
) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowexec_change_status(
    uuid, uuid, text, text, timestamptz, boolean, boolean, boolean, jsonb, boolean, jsonb,
    text[], bigint[], text
) TO flowexec_runtime;
