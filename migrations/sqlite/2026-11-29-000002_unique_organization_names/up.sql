-- Organization names are unique in a deployment (see the PostgreSQL
-- migration of the same name): later holders of a repeated name get their
-- id appended; no row is removed.
UPDATE organizations
SET name = substr(name, 1, 200 - 39) || ' (' || id || ')'
WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY name ORDER BY created_at, id) AS n
        FROM organizations
    )
    WHERE n > 1
);

CREATE UNIQUE INDEX organizations_name_key ON organizations (name);
