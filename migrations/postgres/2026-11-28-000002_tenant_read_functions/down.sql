DROP FUNCTION IF EXISTS flowexec_get_task_execution(uuid, uuid);
