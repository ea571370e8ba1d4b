-- The functions as migrations 000007 and 000010 left them.
DROP FUNCTION flowexec_change_statuses(
    uuid, uuid[], jsonb[], jsonb[], text[], text, text, timestamptz,
    boolean, boolean, boolean, boolean, text[], text
);
DROP FUNCTION flowexec_get_task_execution(uuid, uuid);
CREATE FUNCTION flowexec_get_task_execution(p_organization_id uuid, p_id uuid)
RETURNS TABLE (
    organization_id uuid, id uuid, flow_execution_id uuid, task_name text,
    execution_index integer, status text, input jsonb, output jsonb, error jsonb,
    modified_by text, created_at timestamptz, updated_at timestamptz,
    started_at timestamptz, completed_at timestamptz, version bigint,
    worker_id text, lease_expires_at timestamptz, heartbeat_at timestamptz,
    not_before timestamptz, priority integer, timeout_seconds integer, retry_policy jsonb
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
               t.version, t.worker_id, t.lease_expires_at, t.heartbeat_at,
               t.not_before, t.priority, t.timeout_seconds, t.retry_policy
        FROM public.task_executions AS t
        WHERE t.organization_id = p_organization_id AND t.id = p_id;
END
$$;
REVOKE ALL ON FUNCTION flowexec_get_task_execution(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowexec_get_task_execution(uuid, uuid) TO flowexec_runtime;

DROP FUNCTION flowexec_change_status(
    uuid, uuid, text, text, timestamptz, boolean, boolean, boolean, jsonb, boolean, jsonb,
    text[], bigint[], text, text
);
CREATE FUNCTION flowexec_change_status(
    p_organization_id uuid, p_id uuid, p_to text, p_actor text, p_at timestamptz,
    p_starts boolean, p_finishes boolean,
    p_sets_output boolean, p_output jsonb, p_sets_error boolean, p_error jsonb,
    p_from text[], p_versions bigint[], p_reason text, p_worker_id text
)
RETURNS TABLE (
    organization_id uuid, id uuid, flow_execution_id uuid, task_name text,
    execution_index integer, status text, input jsonb, output jsonb, error jsonb,
    modified_by text, created_at timestamptz, updated_at timestamptz,
    started_at timestamptz, completed_at timestamptz, version bigint,
    worker_id text, lease_expires_at timestamptz, heartbeat_at timestamptz,
    not_before timestamptz, priority integer, timeout_seconds integer, retry_policy jsonb,
    changed boolean
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
                lease_expires_at = CASE WHEN p_to <> 'running' THEN NULL ELSE t.lease_expires_at END,
                output = CASE WHEN p_sets_output THEN p_output ELSE t.output END,
                error = CASE WHEN p_sets_error THEN p_error ELSE t.error END,
                version = t.version + 1
            FROM current_row AS c
            WHERE t.organization_id = p_organization_id AND t.id = c.id
              AND c.status = ANY (p_from)
              AND (p_versions IS NULL OR c.version = ANY (p_versions))
              AND (p_worker_id IS NULL OR c.worker_id = p_worker_id)
            RETURNING t.*, c.status AS from_status
        ), recorded AS (
            INSERT INTO public.task_execution_events
                (organization_id, task_execution_id, from_status, to_status, actor, reason, created_at)
            SELECT ch.organization_id, ch.id, ch.from_status, p_to, p_actor, p_reason, p_at
            FROM changed AS ch
        )
        SELECT ch.organization_id, ch.id, ch.flow_execution_id, ch.task_name,
               ch.execution_index, ch.status, ch.input, ch.output, ch.error,
               ch.modified_by, ch.created_at, ch.updated_at, ch.started_at, ch.completed_at,
               ch.version, ch.worker_id, ch.lease_expires_at, ch.heartbeat_at,
               ch.not_before, ch.priority, ch.timeout_seconds, ch.retry_policy, true
        FROM changed AS ch
        UNION ALL
        SELECT c.organization_id, c.id, c.flow_execution_id, c.task_name,
               c.execution_index, c.status, c.input, c.output, c.error,
               c.modified_by, c.created_at, c.updated_at, c.started_at, c.completed_at,
               c.version, c.worker_id, c.lease_expires_at, c.heartbeat_at,
               c.not_before, c.priority, c.timeout_seconds, c.retry_policy, false
        FROM current_row AS c
        WHERE NOT EXISTS (SELECT 1 FROM changed);
END
$$;
REVOKE ALL ON FUNCTION flowexec_change_status(
    uuid, uuid, text, text, timestamptz, boolean, boolean, boolean, jsonb, boolean, jsonb,
    text[], bigint[], text, text
) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowexec_change_status(
    uuid, uuid, text, text, timestamptz, boolean, boolean, boolean, jsonb, boolean, jsonb,
    text[], bigint[], text, text
) TO flowexec_runtime;

CREATE FUNCTION flowexec_change_statuses(
    p_organization_id uuid, p_ids uuid[], p_outputs jsonb[], p_errors jsonb[],
    p_worker_ids text[],
    p_to text, p_actor text, p_at timestamptz,
    p_starts boolean, p_finishes boolean, p_sets_output boolean, p_sets_error boolean,
    p_from text[], p_reason text
)
RETURNS TABLE (
    ord bigint,
    organization_id uuid, id uuid, flow_execution_id uuid, task_name text,
    execution_index integer, status text, input jsonb, output jsonb, error jsonb,
    modified_by text, created_at timestamptz, updated_at timestamptz,
    started_at timestamptz, completed_at timestamptz, version bigint,
    worker_id text, lease_expires_at timestamptz, heartbeat_at timestamptz,
    not_before timestamptz, priority integer, timeout_seconds integer, retry_policy jsonb,
    changed boolean
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    IF cardinality(p_ids) <> (SELECT count(DISTINCT u) FROM unnest(p_ids) AS u) THEN
        RAISE EXCEPTION 'flowexec_change_statuses: an id is named twice'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(p_ids) <> cardinality(p_outputs) OR cardinality(p_ids) <> cardinality(p_errors)
        OR cardinality(p_ids) <> cardinality(p_worker_ids) THEN
        RAISE EXCEPTION 'flowexec_change_statuses: arrays of different lengths'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        WITH wanted AS (
            SELECT r.id, r.new_output, r.new_error, r.held_by, r.ord
            FROM unnest(p_ids, p_outputs, p_errors, p_worker_ids) WITH ORDINALITY
                AS r (id, new_output, new_error, held_by, ord)
        ), current_rows AS (
            SELECT t.*, w.new_output, w.new_error, w.held_by, w.ord
            FROM public.task_executions AS t
            JOIN wanted AS w ON w.id = t.id
            -- Both key columns as index conditions: whatever the table's
            -- statistics say, the rows are found by their key, never by
            -- reading the organization's rows.
            WHERE t.organization_id = p_organization_id AND t.id = ANY (p_ids)
            ORDER BY t.id
            FOR UPDATE OF t
        ), changed AS (
            UPDATE public.task_executions AS t SET
                status = p_to,
                modified_by = p_actor,
                updated_at = p_at,
                started_at = CASE WHEN p_starts THEN p_at ELSE t.started_at END,
                completed_at = CASE WHEN p_finishes THEN p_at ELSE t.completed_at END,
                lease_expires_at = CASE WHEN p_to <> 'running' THEN NULL ELSE t.lease_expires_at END,
                output = CASE WHEN p_sets_output THEN c.new_output ELSE t.output END,
                error = CASE WHEN p_sets_error THEN c.new_error ELSE t.error END,
                version = t.version + 1
            FROM current_rows AS c
            WHERE t.organization_id = p_organization_id AND t.id = ANY (p_ids) AND t.id = c.id
              AND c.status = ANY (p_from)
              AND (c.held_by IS NULL OR c.worker_id = c.held_by)
            RETURNING t.*, c.status AS from_status, c.ord
        ), recorded AS (
            INSERT INTO public.task_execution_events
                (organization_id, task_execution_id, from_status, to_status, actor, reason, created_at)
            SELECT ch.organization_id, ch.id, ch.from_status, p_to, p_actor, p_reason, p_at
            FROM changed AS ch
            ORDER BY ch.ord
        )
        SELECT ch.ord, ch.organization_id, ch.id, ch.flow_execution_id, ch.task_name,
               ch.execution_index, ch.status, ch.input, ch.output, ch.error,
               ch.modified_by, ch.created_at, ch.updated_at, ch.started_at, ch.completed_at,
               ch.version, ch.worker_id, ch.lease_expires_at, ch.heartbeat_at,
               ch.not_before, ch.priority, ch.timeout_seconds, ch.retry_policy, true
        FROM changed AS ch
        UNION ALL
        SELECT c.ord, c.organization_id, c.id, c.flow_execution_id, c.task_name,
               c.execution_index, c.status, c.input, c.output, c.error,
               c.modified_by, c.created_at, c.updated_at, c.started_at, c.completed_at,
               c.version, c.worker_id, c.lease_expires_at, c.heartbeat_at,
               c.not_before, c.priority, c.timeout_seconds, c.retry_policy, false
        FROM current_rows AS c
        WHERE NOT EXISTS (SELECT 1 FROM changed AS ch WHERE ch.id = c.id)
        ORDER BY 1;
END
$$;
REVOKE ALL ON FUNCTION flowexec_change_statuses(
    uuid, uuid[], jsonb[], jsonb[], text[], text, text, timestamptz,
    boolean, boolean, boolean, boolean, text[], text
) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowexec_change_statuses(
    uuid, uuid[], jsonb[], jsonb[], text[], text, text, timestamptz,
    boolean, boolean, boolean, boolean, text[], text
) TO flowexec_runtime;


DROP INDEX IF EXISTS task_executions_flow_failed_idx;
DROP INDEX IF EXISTS task_executions_flow_open_idx;
ALTER TABLE task_executions DROP COLUMN IF EXISTS iteration;
ALTER TABLE flow_executions
    DROP CONSTRAINT IF EXISTS flow_executions_version_fkey,
    DROP COLUMN IF EXISTS status,
    DROP COLUMN IF EXISTS flow_version;
DROP TABLE IF EXISTS flow_versions;
DROP TABLE IF EXISTS flows;
