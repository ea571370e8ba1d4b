-- Workers: a claimed task is held by a worker (worker_id) under a lease
-- (lease_expires_at, extended by heartbeats at heartbeat_at); a queued task
-- is claimable once not_before has passed (NULL: at once), highest
-- priority first, then oldest; a run may be limited in time
-- (timeout_seconds) and a failure retried by the task's policy
-- (retry_policy; NULL: the server's default).

ALTER TABLE task_executions
    ADD COLUMN worker_id text CHECK (char_length(worker_id) BETWEEN 1 AND 200),
    ADD COLUMN lease_expires_at timestamptz,
    ADD COLUMN heartbeat_at timestamptz,
    ADD COLUMN not_before timestamptz,
    ADD COLUMN priority integer NOT NULL DEFAULT 0,
    ADD COLUMN timeout_seconds integer CHECK (timeout_seconds BETWEEN 1 AND 604800),
    ADD COLUMN retry_policy jsonb CHECK (jsonb_typeof(retry_policy) = 'object');

-- Claims: the queued tasks of an organization by priority then age, with
-- or without a task name.
CREATE INDEX task_executions_claim_idx
    ON task_executions (organization_id, priority DESC, created_at, id)
    WHERE status = 'queued';
CREATE INDEX task_executions_claim_name_idx
    ON task_executions (organization_id, task_name, priority DESC, created_at, id)
    WHERE status = 'queued';
-- The sweeper: running tasks, every organization, by lease end.
CREATE INDEX task_executions_running_idx
    ON task_executions (lease_expires_at)
    WHERE status = 'running';

-- The functions returning task executions return the new columns; the
-- status change is also conditioned on the worker holding the task
-- (p_worker_id; NULL: any) and ends the lease whenever the task leaves
-- running (finished, or deleted while it ran).
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
    text[], bigint[], text
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
