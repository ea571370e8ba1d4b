-- 1. Many status changes of one shape in one statement, planned once.
--
-- A worker's batch of results used to be recorded by calling
-- flowexec_change_status once per row (LATERAL). Every connection plans
-- every execution for its parameters (decision 0012), and each call planned
-- the function's statement again: about 160 µs a row, most of the database
-- work of a completion. flowexec_change_statuses does what that function
-- does, for rows p_ids (distinct) with their own output, error and holding
-- worker, as one set-based statement: planned once per batch.
--
-- Answers one row per id found, with its position in p_ids (ord), the row
-- after the change (changed) or as it is (not changed: its status is not
-- in p_from, or it is not held by that row's worker). Ids not found are
-- absent. Both the locking read and the update find their rows by both
-- key columns (organization_id, id = ANY (p_ids)), whatever the table's
-- statistics say. Rows are locked in id order, so two calls never wait on
-- each other crosswise (a caller that makes several calls in one
-- transaction orders them itself).
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

-- 2. When the next queued task falls due: a claim waiting for work sleeps
-- until then (or until new work is announced) instead of looking again
-- every second. Queued tasks with a due time (retries in backoff), by it.
CREATE INDEX task_executions_due_idx
    ON task_executions (organization_id, not_before)
    WHERE status = 'queued' AND not_before IS NOT NULL;

-- 3. Statistics that keep up with a growing table.
--
-- Plans are made from the tables' statistics. A table that grows from
-- nothing (a new deployment, a burst of work) outruns autovacuum's analyze
-- (at most once a minute, after 10 % of the rows changed): the planner
-- believes an organization has a few dozen tasks and reads all of them to
-- find fifty by key. Each server's sweeper calls this function: it
-- analyzes each tenant table whose rows changed since its last analyze
-- (inserted, updated or deleted: n_mod_since_analyze) at least as many
-- times as it then had rows, and at least 500 times, as the owner
-- (SECURITY DEFINER), one instance at a time; a table growing from nothing
-- is analyzed about log2(its rows) times in all, a large steady one is
-- left to autovacuum. A table whose lock is not free within 100 ms (a
-- vacuum, an index being built) is skipped until the next call. Answers
-- the tables analyzed.
CREATE FUNCTION flowexec_refresh_statistics()
RETURNS text[]
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
DECLARE
    analyzed text[] := '{}';
    stale regclass;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('flowexec_refresh_statistics')) THEN
        RETURN analyzed;
    END IF;
    FOR stale IN
        SELECT c.oid::regclass
        FROM pg_class AS c
        JOIN pg_stat_user_tables AS s ON s.relid = c.oid
        WHERE c.relnamespace = 'public'::regnamespace
          AND c.relname IN ('flow_executions', 'task_executions', 'task_execution_events')
          AND s.n_mod_since_analyze >= greatest(c.reltuples::bigint, 500)
        ORDER BY c.relname
    LOOP
        BEGIN
            EXECUTE format('ANALYZE %s', stale);
            analyzed := analyzed || stale::text;
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;
    RETURN analyzed;
END
$$;
REVOKE ALL ON FUNCTION flowexec_refresh_statistics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowexec_refresh_statistics() TO flowexec_runtime;
