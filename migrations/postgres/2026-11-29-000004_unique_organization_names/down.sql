ALTER TABLE organizations DROP CONSTRAINT IF EXISTS organizations_name_key;
