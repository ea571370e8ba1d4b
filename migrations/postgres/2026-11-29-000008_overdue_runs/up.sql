-- The sweeper: which runs are overdue — past their lease or their time
-- limit — is a question across tenants that the app role cannot ask under
-- RLS. This function answers only that (organization and id of each), as
-- the owner, whose policy below lets it see running rows; the sweeper then
-- locks, checks and fails each one inside its own tenant. The caller's time
-- is capped at the database's, so that no caller can ask for every running
-- row by naming a time far ahead.
CREATE POLICY owner_overdue_census ON task_executions
    FOR SELECT TO flowexec_owner USING (status = 'running');

CREATE FUNCTION flowexec_overdue_runs(p_at timestamptz, p_limit integer)
RETURNS TABLE (organization_id uuid, id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.organization_id, t.id
    FROM public.task_executions AS t
    WHERE t.status = 'running'
      AND (t.lease_expires_at < LEAST(p_at, now())
           OR (t.timeout_seconds IS NOT NULL
               AND t.started_at + make_interval(secs => t.timeout_seconds) <= LEAST(p_at, now())))
    ORDER BY t.lease_expires_at NULLS LAST
    LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION flowexec_overdue_runs(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION flowexec_overdue_runs(timestamptz, integer) TO flowexec_runtime;
