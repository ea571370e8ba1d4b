#!/usr/bin/env bash
# List benchmark (run by scripts/bench.sh, or alone): 1,000,000 task
# executions of one organization (1,000 flow executions of 1,000 tasks) and
# 100,000 of another, on PostgreSQL and on SQLite, through the release
# server. Prints, for each store, the p50 of the first page of
# GET /task-executions against a page 100,000 rows deep (reached by its
# cursor) and their ratio; the p50 of counts for one flow execution of
# 1,000 tasks and for the 100,000-task organization; and, on PostgreSQL,
# the plan of each list query shape at 1,000,000 rows (no sequential scan).
#
# Settings (environment): BENCH_SECONDS (10: each wrk run), BENCH_LIST_DEPTH
# (100000), BENCH_CONNECTIONS for wrk (4).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/common.sh

seconds=${BENCH_SECONDS:-10}
depth=${BENCH_LIST_DEPTH:-100000}
connections=${BENCH_CONNECTIONS:-4}
target=$(target_dir)
work="$target/bench/lists"
rm -rf "$work"
mkdir -p "$work"

bench_prologue wrk sqlite3

log "building the server (release)"
cargo build --release --locked -p flowexec-server
bin="$target/release/flowexec"
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"


# p50 of one URL under wrk, in ms.
p50() {
  wrk -t 2 -c "$connections" -d "${seconds}s" --latency -H "Authorization: Bearer $2" "$1" |
    awk '$1 == "50%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } printf "%.3f", v }'
}

start_server() { start_flowexec "$port" "$work/server.log" "$@"; }
trap 'stop_flowexec; stop_throwaway_postgres' EXIT

# The cursor of the page that starts `depth` rows into the list.
deep_cursor() {
  local key=$1 cursor="" walked=0 page
  while [ "$walked" -lt "$depth" ]; do
    page=$(curl -fs "$base/task-executions?limit=500${cursor:+&cursor=$cursor}" -H "Authorization: Bearer $key")
    cursor=$(printf '%s' "$page" | json_field '["next_cursor"]')
    walked=$((walked + 500))
  done
  printf '%s' "$cursor"
}

# Measures one running server; prints "first deep ratio flow_counts org_counts".
measure() {
  local big=$1 small=$2 flow=$3 cursor first deep
  cursor=$(deep_cursor "$big")
  wrk -t 1 -c 1 -d 2s -H "Authorization: Bearer $big" "$base/task-executions?limit=50" >/dev/null # warm-up
  first=$(p50 "$base/task-executions?limit=50" "$big")
  deep=$(p50 "$base/task-executions?limit=50&cursor=$cursor" "$big")
  echo "$first $deep $(awk -v a="$deep" -v b="$first" 'BEGIN { printf "%.2f", a / b }')" \
    "$(p50 "$base/task-executions/counts?group_by=status&flow_execution_id=$flow" "$big")" \
    "$(p50 "$base/task-executions/counts?group_by=status" "$small")"
}

# ---- PostgreSQL ----
db=flowexec_lists
admin_url="postgres://${PG_USERINFO}${PG_HOST}:${PG_PORT}/${db}"
app_url="postgres://flowexec_app:flowexec_app@${PG_HOST}:${PG_PORT}/${db}"
"$PSQL" -X -q -d "$PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
export FLOWEXEC__DATABASE__URL=$app_url FLOWEXEC__DATABASE__ADMIN_URL=$admin_url
"$bin" migrate >/dev/null
big=$("$bin" org create bench-big --json 2>/dev/null)
small=$("$bin" org create bench-small --json 2>/dev/null)
big_org=$(printf '%s' "$big" | json_field '["organization_id"]')
small_org=$(printf '%s' "$small" | json_field '["organization_id"]')
big_key=$(printf '%s' "$big" | json_field '["api_key"]')
small_key=$(printf '%s' "$small" | json_field '["api_key"]')

log "PostgreSQL: seeding 1,000,000 + 100,000 task executions"
# As the superuser (Row-Level Security does not apply), in plain SQL: flow
# executions one second apart, their tasks a millisecond apart, statuses
# in turn.
"$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$admin_url" <<SQL
INSERT INTO flow_executions (organization_id, id, flow_name, modified_by, created_at, updated_at)
SELECT o.id, gen_random_uuid(), 'flow-' || (g % 10), 'system',
       timestamptz '2026-01-01' + g * interval '1 second', timestamptz '2026-01-01' + g * interval '1 second'
FROM (VALUES ('$big_org'::uuid, 1000), ('$small_org'::uuid, 100)) AS o (id, flows),
     LATERAL generate_series(1, o.flows) AS g;
INSERT INTO task_executions (organization_id, id, flow_execution_id, task_name, execution_index, status,
                             modified_by, created_at, updated_at)
SELECT f.organization_id, gen_random_uuid(), f.id, 't' || s, 0,
       (ARRAY['queued', 'running', 'completed', 'failed', 'stale'])[1 + s % 5], 'system',
       f.created_at + s * interval '1 millisecond', f.created_at + s * interval '1 millisecond'
FROM flow_executions AS f, generate_series(1, 1000) AS s;
ANALYZE;
SQL
flow=$("$PSQL" -X -At -d "$admin_url" -c "SELECT id FROM flow_executions WHERE organization_id = '$big_org' LIMIT 1")
# A position $depth rows into the list, for the deep page's plan (OFFSET
# only here, to find one).
IFS='|' read -r deep_at deep_id < <("$PSQL" -X -At -d "$admin_url" -c \
  "SELECT created_at, id FROM task_executions WHERE organization_id = '$big_org' ORDER BY created_at DESC, id DESC OFFSET $depth LIMIT 1")

# The plans, as the app role under the tenant setting, of each list shape
# the store sends (diesel's SQL, with the filters' values inlined).
cols='organization_id, id, flow_execution_id, task_name, execution_index, status, input, output, error, modified_by, created_at, updated_at, started_at, completed_at, version'
shown="status = ANY('{queued,running,completed,failed,stale}')"
after="created_at <= '$deep_at' AND (created_at < '$deep_at' OR id < '$deep_id')"
newer="NOT EXISTS (SELECT 1 FROM task_executions AS n WHERE n.organization_id = t.organization_id AND n.flow_execution_id = t.flow_execution_id AND n.task_name = t.task_name AND n.execution_index > t.execution_index)"
declare -A shapes=(
  [all]="SELECT $cols FROM task_executions AS t WHERE organization_id = '$big_org' AND $shown ORDER BY created_at DESC, id DESC LIMIT 51"
  [deep]="SELECT $cols FROM task_executions AS t WHERE organization_id = '$big_org' AND $shown AND $after ORDER BY created_at DESC, id DESC LIMIT 51"
  [status]="SELECT $cols FROM task_executions AS t WHERE organization_id = '$big_org' AND status = ANY('{failed}') ORDER BY created_at DESC, id DESC LIMIT 51"
  [task_name]="SELECT $cols FROM task_executions AS t WHERE organization_id = '$big_org' AND task_name = 't7' AND $shown ORDER BY created_at ASC, id ASC LIMIT 51"
  [flow_latest]="SELECT $cols FROM task_executions AS t WHERE organization_id = '$big_org' AND flow_execution_id = '$flow' AND $shown AND $newer ORDER BY created_at DESC, id DESC LIMIT 51"
  [modified_by]="SELECT $cols FROM task_executions AS t WHERE organization_id = '$big_org' AND $shown AND modified_by = 'system' AND updated_at > timestamptz '2026-01-01' ORDER BY created_at DESC, id DESC LIMIT 51"
  [flows]="SELECT organization_id, id, flow_name, input, modified_by, created_at, updated_at FROM flow_executions WHERE organization_id = '$big_org' AND flow_name = 'flow-3' ORDER BY created_at DESC, id DESC LIMIT 51"
  [counts]="SELECT status, count(*) FROM task_executions AS t WHERE organization_id = '$big_org' AND flow_execution_id = '$flow' AND $shown GROUP BY status"
)
plans="$work/plans.txt"
: >"$plans"
for shape in all deep status task_name flow_latest modified_by flows counts; do
  {
    echo "-- $shape"
    PGPASSWORD=flowexec_app "$PSQL" -X -At -h "$PG_HOST" -p "$PG_PORT" -U flowexec_app -d "$db" <<SQL
BEGIN;
SELECT set_config('app.organization_id', '$big_org', true) \gset
EXPLAIN ${shapes[$shape]};
COMMIT;
SQL
  } >>"$plans" 2>&1
done
seq_scans=$(grep -c 'Seq Scan' "$plans" || true)

log "PostgreSQL: measuring (wrk, $connections connections, ${seconds}s per URL)"
start_server
pg=$(measure "$big_key" "$small_key" "$flow")
stop_flowexec
"$PSQL" -X -q -d "$PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
unset FLOWEXEC__DATABASE__URL FLOWEXEC__DATABASE__ADMIN_URL

# ---- SQLite ----
data="$work/sqlite"
export FLOWEXEC__DATA_DIR=$data
big=$("$bin" org create bench-big --json 2>/dev/null)
small=$("$bin" org create bench-small --json 2>/dev/null)
big_org=$(printf '%s' "$big" | json_field '["organization_id"]')
small_org=$(printf '%s' "$small" | json_field '["organization_id"]')
big_key=$(printf '%s' "$big" | json_field '["api_key"]')
small_key=$(printf '%s' "$small" | json_field '["api_key"]')
log "SQLite: seeding 1,000,000 + 100,000 task executions"
sqlite3 "$data/flowexec.db" <<SQL
PRAGMA journal_mode = WAL;
CREATE TEMP TABLE n (i INTEGER PRIMARY KEY);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000) INSERT INTO n SELECT i FROM c;
CREATE TEMP TABLE orgs (id TEXT, flows INTEGER);
INSERT INTO orgs VALUES ('$big_org', 1000), ('$small_org', 100);
BEGIN;
INSERT INTO flow_executions (organization_id, id, flow_name, input, modified_by, created_at, updated_at)
SELECT o.id,
       lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
       'flow-' || (n.i % 10), NULL, 'system',
       strftime('%Y-%m-%d %H:%M:%f', '2026-01-01', '+' || n.i || ' seconds') || '+00:00',
       strftime('%Y-%m-%d %H:%M:%f', '2026-01-01', '+' || n.i || ' seconds') || '+00:00'
FROM orgs AS o JOIN n ON n.i <= o.flows;
INSERT INTO task_executions (organization_id, id, flow_execution_id, task_name, execution_index, status,
                             input, output, error, modified_by, created_at, updated_at, version)
SELECT f.organization_id,
       lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
       f.id, 't' || n.i, 0,
       CASE n.i % 5 WHEN 0 THEN 'queued' WHEN 1 THEN 'running' WHEN 2 THEN 'completed' WHEN 3 THEN 'failed' ELSE 'stale' END,
       NULL, NULL, NULL, 'system',
       strftime('%Y-%m-%d %H:%M:%f', substr(f.created_at, 1, 23), '+' || (n.i / 1000.0) || ' seconds') || '+00:00',
       strftime('%Y-%m-%d %H:%M:%f', substr(f.created_at, 1, 23), '+' || (n.i / 1000.0) || ' seconds') || '+00:00',
       1
FROM flow_executions AS f, n;
COMMIT;
ANALYZE;
SQL
flow=$(sqlite3 "$data/flowexec.db" "SELECT id FROM flow_executions WHERE organization_id = '$big_org' LIMIT 1")
log "SQLite: measuring"
start_server
lite=$(measure "$big_key" "$small_key" "$flow")
stop_flowexec

field() { printf '%s\n' "$1" | awk -v i="$2" '{ print $i }'; }
cat <<REPORT

Lists at 1,000,000 task executions (GET /task-executions, limit 50, p50 under wrk with $connections connections, $(nproc) cores):
  PostgreSQL: first page $(field "$pg" 1) ms, a page $depth rows deep $(field "$pg" 2) ms, ratio deep / first $(field "$pg" 3)
  SQLite:     first page $(field "$lite" 1) ms, a page $depth rows deep $(field "$lite" 2) ms, ratio deep / first $(field "$lite" 3)
Counts (group_by=status), p50:
  PostgreSQL: one flow execution of 1,000 tasks $(field "$pg" 4) ms, an organization of 100,000 $(field "$pg" 5) ms
  SQLite:     one flow execution of 1,000 tasks $(field "$lite" 4) ms, an organization of 100,000 $(field "$lite" 5) ms
Plans of the list shapes on PostgreSQL at 1,000,000 rows: $seq_scans sequential scans (every plan: $plans)
REPORT
