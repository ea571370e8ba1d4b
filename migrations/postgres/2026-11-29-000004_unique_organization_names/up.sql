-- Organization names are unique in a deployment, so that an operator can
-- tell organizations apart by name (`flowexec org list`) and a second
-- `flowexec org create acme` is refused instead of silently making another.
--
-- Names that already repeat keep their first holder (the oldest); every
-- later one gets its id appended, "acme (<id>)", shortened to stay within
-- 200 characters. No row is removed.
--
-- The owner is bound by Row-Level Security (FORCE) and has no UPDATE policy,
-- so FORCE is lifted for the one statement, inside this migration's
-- transaction, and restored.
ALTER TABLE organizations NO FORCE ROW LEVEL SECURITY;
UPDATE organizations AS o
SET name = left(o.name, 200 - 39) || ' (' || o.id::text || ')'
FROM (
    SELECT id, row_number() OVER (PARTITION BY name ORDER BY created_at, id) AS n
    FROM organizations
) AS ranked
WHERE o.id = ranked.id AND ranked.n > 1;
ALTER TABLE organizations FORCE ROW LEVEL SECURITY;

ALTER TABLE organizations ADD CONSTRAINT organizations_name_key UNIQUE (name);

