-- Flows: stored definitions, versioned; runs of a definition; the loop
-- iteration of a task; the status of a flow execution stored, changed in
-- the unit of work that changes its tasks.

-- 1. A flow (its name, its latest version, whether it was deleted) and its
-- versions. A version is never changed or removed: runs started from it
-- read it to the end, after the flow is deleted too. A deleted flow starts
-- no run; storing it again revives it with the next version.
CREATE TABLE flows (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    latest_version integer NOT NULL CHECK (latest_version >= 1),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (organization_id, name)
);

CREATE TABLE flow_versions (
    organization_id uuid NOT NULL,
    name text NOT NULL,
    version integer NOT NULL CHECK (version >= 1),
    -- The text as uploaded (YAML or JSON), and the same as JSON.
    source text NOT NULL,
    document jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (organization_id, name, version),
    FOREIGN KEY (organization_id, name) REFERENCES flows (organization_id, name) ON DELETE CASCADE
);

ALTER TABLE flows ENABLE ROW LEVEL SECURITY;
ALTER TABLE flows FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON flows
    USING (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid)
    WITH CHECK (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid);

ALTER TABLE flow_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE flow_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON flow_versions
    USING (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid)
    WITH CHECK (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid);

GRANT SELECT, INSERT, UPDATE ON flows TO flowexec_runtime;
GRANT SELECT, INSERT ON flow_versions TO flowexec_runtime;

-- 2. A flow execution started from a stored definition names its version
-- (NULL: an ad-hoc flow execution, its tasks given when it was created),
-- and keeps its status: queued, running, completed, failed or cancelled.
ALTER TABLE flow_executions
    ADD COLUMN flow_version integer,
    ADD COLUMN status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    ADD CONSTRAINT flow_executions_version_fkey
        FOREIGN KEY (organization_id, flow_name, flow_version)
        REFERENCES flow_versions (organization_id, name, version);

-- The status of each existing flow execution, by the rule it was derived
-- by until now (docs/flows.md): from the latest attempt of each task,
-- deleted ones left out. The owner is bound by Row-Level Security (FORCE)
-- and sees no organization's rows: lifted for this statement only.
ALTER TABLE flow_executions NO FORCE ROW LEVEL SECURITY;
ALTER TABLE task_executions NO FORCE ROW LEVEL SECURITY;
UPDATE flow_executions AS f SET status = s.status
FROM (
    SELECT latest.organization_id, latest.flow_execution_id,
           CASE WHEN bool_or(latest.status = 'failed') THEN 'failed'
                WHEN bool_and(latest.status = 'completed') THEN 'completed'
                WHEN bool_and(latest.status = 'queued') THEN 'queued'
                ELSE 'running' END AS status
    FROM (
        SELECT DISTINCT ON (organization_id, flow_execution_id, task_name)
               organization_id, flow_execution_id, status
        FROM task_executions
        ORDER BY organization_id, flow_execution_id, task_name, execution_index DESC
    ) AS latest
    WHERE latest.status <> 'deleted'
    GROUP BY latest.organization_id, latest.flow_execution_id
) AS s
WHERE f.organization_id = s.organization_id AND f.id = s.flow_execution_id;
ALTER TABLE task_executions FORCE ROW LEVEL SECURITY;
ALTER TABLE flow_executions FORCE ROW LEVEL SECURITY;

-- 3. A run of a for_each task: the item it runs (0-based), kept by its
-- retries, whose execution_index goes on after the last one taken.
ALTER TABLE task_executions
    ADD COLUMN iteration integer CHECK (iteration >= 0);

-- 4. The questions the engine asks of a flow execution at each change of
-- its tasks (is a latest attempt failed? is one still open?), answered
-- from the few rows in those statuses, not the flow execution's all.
CREATE INDEX task_executions_flow_open_idx
    ON task_executions (organization_id, flow_execution_id, task_name)
    WHERE status IN ('queued', 'running', 'stale');
CREATE INDEX task_executions_flow_failed_idx
    ON task_executions (organization_id, flow_execution_id, task_name)
    WHERE status = 'failed';

-- The functions returning task executions return the iteration too.
DROP FUNCTION flowexec_get_task_execution(uuid, uuid);
CREATE FUNCTION flowexec_get_task_execution(p_organization_id uuid, p_id uuid)
RETURNS TABLE (
    organization_id uuid, id uuid, flow_execution_id uuid, task_name text,
    execution_index integer, status text, input jsonb, output jsonb, error jsonb,
    modified_by text, created_at timestamptz, updated_at timestamptz,
    started_at timestamptz, completed_at timestamptz, version bigint,
    worker_id text, lease_expires_at timestamptz, heartbeat_at timestamptz,
    not_before timestamptz, priority integer, timeout_seconds integer, retry_policy jsonb,
    iteration integer
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
               t.not_before, t.priority, t.timeout_seconds, t.retry_policy, t.iteration
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
    iteration integer,
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
               ch.not_before, ch.priority, ch.timeout_seconds, ch.retry_policy, ch.iteration, true
        FROM changed AS ch
        UNION ALL
        SELECT c.organization_id, c.id, c.flow_execution_id, c.task_name,
               c.execution_index, c.status, c.input, c.output, c.error,
               c.modified_by, c.created_at, c.updated_at, c.started_at, c.completed_at,
               c.version, c.worker_id, c.lease_expires_at, c.heartbeat_at,
               c.not_before, c.priority, c.timeout_seconds, c.retry_policy, c.iteration, false
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

DROP FUNCTION flowexec_change_statuses(
    uuid, uuid[], jsonb[], jsonb[], text[], text, text, timestamptz,
    boolean, boolean, boolean, boolean, text[], text
);
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
    iteration integer,
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
               ch.not_before, ch.priority, ch.timeout_seconds, ch.retry_policy, ch.iteration, true
        FROM changed AS ch
        UNION ALL
        SELECT c.ord, c.organization_id, c.id, c.flow_execution_id, c.task_name,
               c.execution_index, c.status, c.input, c.output, c.error,
               c.modified_by, c.created_at, c.updated_at, c.started_at, c.completed_at,
               c.version, c.worker_id, c.lease_expires_at, c.heartbeat_at,
               c.not_before, c.priority, c.timeout_seconds, c.retry_policy, c.iteration, false
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
