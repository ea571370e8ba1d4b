"""Seeds a flowexec SQLite database for scripts/bench.sh.

Usage: seed_sqlite.py DB ORGS_TSV FLOWS_PER_ORG TASKS_PER_FLOW

The organizations (and their keys) already exist, created by
`flowexec org create`; ORGS_TSV lists "organization_id<TAB>api_key". Rows are
written in the server's own stored form (see migrations/sqlite).
"""

import json
import sqlite3
import sys
import uuid

db, orgs_tsv, flows_per_org, tasks_per_flow = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
at = "2026-11-28 00:00:00.000000+00:00"
orgs = [line.split("\t")[0] for line in open(orgs_tsv) if line.strip()]

conn = sqlite3.connect(db)
conn.execute("PRAGMA foreign_keys = ON")
with conn:
    for org in orgs:
        flows = [str(uuid.uuid4()) for _ in range(flows_per_org)]
        conn.executemany(
            "INSERT INTO flow_executions (organization_id, id, flow_name, input, modified_by, created_at, updated_at)"
            " VALUES (?, ?, 'bench', '{\"day\":\"2026-11-28\"}', 'system', ?, ?)",
            [(org, f, at, at) for f in flows],
        )
        conn.executemany(
            "INSERT INTO task_executions (organization_id, id, flow_execution_id, task_name, execution_index,"
            " status, input, modified_by, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, 0, 'queued', ?, 'system', ?, ?)",
            (
                (org, str(uuid.uuid4()), f, f"task-{g}",
                 json.dumps({"n": g, "source": f"s3://bucket/key-{g}"}, separators=(",", ":")), at, at)
                for f in flows
                for g in range(1, tasks_per_flow + 1)
            ),
        )
conn.execute("ANALYZE")
conn.close()
