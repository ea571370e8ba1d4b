DROP INDEX IF EXISTS organizations_name_key;
