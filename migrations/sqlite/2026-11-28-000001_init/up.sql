-- flowexec schema on SQLite: the same tables, keys and checks as on
-- PostgreSQL (migrations/postgres), with SQLite's types: UUIDs as their
-- lower-case hyphenated text, JSON as text (exactly as serialized), times
-- as text in UTC with microseconds. There is no Row-Level Security: tenant
-- isolation rests on the organization filter every repository method
-- applies (see docs/operations.md, "Guarantees on each backend").

CREATE TABLE organizations (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'write', 'read', 'worker')),
    actor TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL CHECK (length(secret_sha256) = 32),
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX api_keys_organization_idx ON api_keys (organization_id, created_at);

CREATE TABLE flow_executions (
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    flow_name TEXT NOT NULL CHECK (length(flow_name) BETWEEN 1 AND 128),
    input TEXT,
    modified_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (organization_id, id)
) WITHOUT ROWID;
CREATE INDEX flow_executions_created_idx ON flow_executions (organization_id, created_at, id);

CREATE TABLE task_executions (
    organization_id TEXT NOT NULL,
    id TEXT NOT NULL,
    flow_execution_id TEXT NOT NULL,
    task_name TEXT NOT NULL CHECK (length(task_name) BETWEEN 1 AND 128),
    execution_index INTEGER NOT NULL DEFAULT 0 CHECK (execution_index >= 0),
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'deleted', 'stale')),
    input TEXT,
    output TEXT,
    error TEXT,
    modified_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    PRIMARY KEY (organization_id, id),
    FOREIGN KEY (organization_id, flow_execution_id)
        REFERENCES flow_executions (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT task_executions_attempt_key
        UNIQUE (organization_id, flow_execution_id, task_name, execution_index)
) WITHOUT ROWID;
CREATE INDEX task_executions_status_idx ON task_executions (organization_id, status, created_at);

CREATE TABLE task_execution_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id TEXT NOT NULL,
    task_execution_id TEXT NOT NULL,
    from_status TEXT
        CHECK (from_status IN ('queued', 'running', 'completed', 'failed', 'deleted', 'stale')),
    to_status TEXT NOT NULL
        CHECK (to_status IN ('queued', 'running', 'completed', 'failed', 'deleted', 'stale')),
    actor TEXT NOT NULL,
    reason TEXT,
    created_at TEXT NOT NULL,
    FOREIGN KEY (organization_id, task_execution_id)
        REFERENCES task_executions (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX task_execution_events_task_idx
    ON task_execution_events (organization_id, task_execution_id, id);
