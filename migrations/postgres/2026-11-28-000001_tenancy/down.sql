DROP FUNCTION IF EXISTS flowexec_find_api_key(uuid);
DROP TABLE IF EXISTS task_execution_events;
DROP TABLE IF EXISTS task_executions;
DROP TABLE IF EXISTS flow_executions;
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS organizations;
