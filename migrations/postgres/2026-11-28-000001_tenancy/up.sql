-- flowexec schema, part 1: organizations, API keys, flow executions, task
-- executions and their status events, each isolated per organization with
-- Row-Level Security.
--
-- Runs as the NOLOGIN owner role `flowexec_owner` (`flowexec migrate` does
-- `SET ROLE flowexec_owner`), so the owner owns every object. The server
-- connects as a LOGIN role that is a member of `flowexec_runtime` and gets
-- only the privileges granted to that role below.
--
-- The tenant of a transaction is `app.organization_id`, set with
-- `set_config('app.organization_id', $1, true)` (transaction-local). Unset or
-- empty, every policy sees NULL and matches no row: no error, no data.

CREATE TABLE organizations (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('admin', 'write', 'read', 'worker')),
    actor text NOT NULL CHECK (
        actor IN ('system', 'integration', 'service-account')
        OR actor ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
    ),
    secret_sha256 bytea NOT NULL CHECK (octet_length(secret_sha256) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX api_keys_organization_idx ON api_keys (organization_id, created_at);

CREATE TABLE flow_executions (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    flow_name text NOT NULL CHECK (char_length(flow_name) BETWEEN 1 AND 128),
    input jsonb,
    modified_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id)
);
CREATE INDEX flow_executions_created_idx ON flow_executions (organization_id, created_at, id);

CREATE TABLE task_executions (
    organization_id uuid NOT NULL,
    id uuid NOT NULL,
    flow_execution_id uuid NOT NULL,
    task_name text NOT NULL CHECK (char_length(task_name) BETWEEN 1 AND 128),
    execution_index integer NOT NULL DEFAULT 0 CHECK (execution_index >= 0),
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'deleted', 'stale')),
    input jsonb,
    output jsonb,
    error jsonb,
    modified_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id, flow_execution_id)
        REFERENCES flow_executions (organization_id, id) ON DELETE CASCADE,
    -- The attempt key: one row per (flow execution, task name, attempt). A
    -- flow execution belongs to exactly one organization, so leading with
    -- organization_id keeps the same rule while serving tenant queries.
    CONSTRAINT task_executions_attempt_key
        UNIQUE (organization_id, flow_execution_id, task_name, execution_index)
);
CREATE INDEX task_executions_status_idx ON task_executions (organization_id, status, created_at);

CREATE TABLE task_execution_events (
    organization_id uuid NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    task_execution_id uuid NOT NULL,
    from_status text
        CHECK (from_status IN ('queued', 'running', 'completed', 'failed', 'deleted', 'stale')),
    to_status text NOT NULL
        CHECK (to_status IN ('queued', 'running', 'completed', 'failed', 'deleted', 'stale')),
    actor text NOT NULL,
    reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id, task_execution_id)
        REFERENCES task_executions (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX task_execution_events_task_idx
    ON task_execution_events (organization_id, task_execution_id, id);

-- Row-Level Security: ENABLE and FORCE (the owner is bound too), one policy
-- per table with USING and WITH CHECK on the transaction's organization.
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON organizations
    USING (id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid)
    WITH CHECK (id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys
    USING (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid)
    WITH CHECK (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid);
-- The key lookup happens before the organization is known. It goes through
-- flowexec_find_api_key() below, which runs as the owner; this policy lets
-- the owner (a NOLOGIN role) read keys across organizations, and nobody else.
CREATE POLICY owner_key_lookup ON api_keys FOR SELECT TO flowexec_owner USING (true);

ALTER TABLE flow_executions ENABLE ROW LEVEL SECURITY;
ALTER TABLE flow_executions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON flow_executions
    USING (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid)
    WITH CHECK (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid);

ALTER TABLE task_executions ENABLE ROW LEVEL SECURITY;
ALTER TABLE task_executions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON task_executions
    USING (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid)
    WITH CHECK (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid);

ALTER TABLE task_execution_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE task_execution_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON task_execution_events
    USING (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid)
    WITH CHECK (organization_id = (SELECT NULLIF(current_setting('app.organization_id', true), ''))::uuid);

-- The one cross-tenant read the server needs: a key's credentials by key id.
-- SECURITY DEFINER (runs as the owner) with a pinned search_path and fully
-- qualified names, so a caller cannot redirect it; it returns only the row
-- asked for and never a revoked key.
CREATE FUNCTION flowexec_find_api_key(p_key_id uuid)
RETURNS TABLE (organization_id uuid, role text, actor text, secret_sha256 bytea)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.organization_id, k.role, k.actor, k.secret_sha256
    FROM public.api_keys AS k
    WHERE k.id = p_key_id AND k.revoked_at IS NULL
$$;
REVOKE ALL ON FUNCTION flowexec_find_api_key(uuid) FROM PUBLIC;

-- Privileges of the server's role. Events are append-only; API keys are
-- written by the admin commands and read through the function above.
GRANT SELECT, INSERT ON organizations TO flowexec_runtime;
GRANT SELECT, INSERT ON api_keys TO flowexec_runtime;
GRANT UPDATE (revoked_at) ON api_keys TO flowexec_runtime;
GRANT SELECT, INSERT, UPDATE ON flow_executions TO flowexec_runtime;
GRANT SELECT, INSERT, UPDATE ON task_executions TO flowexec_runtime;
GRANT SELECT, INSERT ON task_execution_events TO flowexec_runtime;
GRANT EXECUTE ON FUNCTION flowexec_find_api_key(uuid) TO flowexec_runtime;
