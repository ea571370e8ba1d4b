#!/usr/bin/env bash
# Worker benchmark: no-op tasks run by worker processes over HTTP
# (crates/worker/examples/drain.rs), at claim batch 1 (POST …/complete per
# task) and batch 50 (POST …/results per 50), on PostgreSQL and SQLite.
#
#  1. Drain: BENCH_WORKER_TASKS (100,000) queued tasks, created through the
#     API, drained by BENCH_WORKER_COUNT (8) workers: tasks/s, claimed →
#     completed p50/p99, server and PostgreSQL CPU per task.
#  2. Latency: the workers waiting (long-polling) on an empty queue while
#     BENCH_LATENCY_TASKS (10,000) tasks are created at half the drain rate:
#     created → completed p50/p99.
#  3. Floor (PostgreSQL): pgbench, as many clients as workers, replaying the
#     claim statement the store sends (LIMIT batch, the same task names) and
#     the completion of what it claimed through flowexec_change_statuses (in
#     one statement, as the server does for a batch), in two transactions, each
#     opened with the tenant setting as the server does, on the same number
#     of tasks; ratio drain / floor
#     (targets: batch 50 ≥ 0.5, batch 1 ≥ 0.3).
#  4. Idle: BENCH_IDLE_WORKERS (100) workers long-polling an empty queue for
#     BENCH_IDLE_SECONDS (60): server and PostgreSQL CPU.
set -euo pipefail
# A failure inside $(...) stops the run too.
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
source scripts/lib/common.sh

tasks=${BENCH_WORKER_TASKS:-100000}
workers=${BENCH_WORKER_COUNT:-8}
latency_tasks=${BENCH_LATENCY_TASKS:-10000}
idle_workers=${BENCH_IDLE_WORKERS:-100}
idle_seconds=${BENCH_IDLE_SECONDS:-60}
target=$(target_dir)
work="$target/bench/workers"
mkdir -p "$work"

bench_prologue pgbench python3
DRAIN_PID=
stop_drain() {
  if [ -n "$DRAIN_PID" ]; then
    kill -TERM "$DRAIN_PID" 2>/dev/null || true
    wait "$DRAIN_PID" 2>/dev/null || true
    DRAIN_PID=
  fi
}
trap 'stop_drain; stop_flowexec; stop_throwaway_postgres' EXIT
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
hz=$(getconf CLK_TCK)

log "building the server and the drain worker (release)"
cargo build --release --locked -p flowexec-server
cargo build --release --locked -p flowexec-worker --example drain
bin="$target/release/flowexec"
drain="$target/release/examples/drain"

db=flowexec_workers
admin_url="postgres://${PG_USERINFO}${PG_HOST}:${PG_PORT}/${db}"
app_url="postgres://flowexec_app:flowexec_app@${PG_HOST}:${PG_PORT}/${db}"
lite_db="$work/data/flowexec.db"

# SQL on the store of this run (the superuser on PostgreSQL).
store_sql() {
  if [ "$STORE" = postgres ]; then
    "$PSQL" -X -qAt -d "$admin_url" -c "$1"
  else
    python3 -c 'import sqlite3, sys; print("\n".join("|".join(map(str, r)) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])))' "$lite_db" "$1"
  fi
}

# A fresh store and a server on it; sets KEY (admin) and WORKER_KEY.
setup_store() {
  STORE=$1
  local env created
  if [ "$STORE" = postgres ]; then
    "$PSQL" -X -q -d "$PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    FLOWEXEC__DATABASE__URL=$app_url FLOWEXEC__DATABASE__ADMIN_URL=$admin_url "$bin" migrate >/dev/null
    env=(FLOWEXEC__DATABASE__URL="$app_url" FLOWEXEC__DATABASE__ADMIN_URL="$admin_url")
  else
    rm -rf "$work/data"
    env=(FLOWEXEC__DATA_DIR="$work/data")
  fi
  start_flowexec "$port" "$work/server-$STORE.log" "${env[@]}"
  created=$(env "${env[@]}" "$bin" org create "bench-workers" --json 2>/dev/null)
  KEY=$(printf '%s' "$created" | json_field '["api_key"]')
  WORKER_KEY=$(curl -fsS -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"role": "worker"}' "$base/api-keys" | json_field '["key"]')
}

start_drain() {
  FLOWEXEC_URL=$base FLOWEXEC_KEY=$WORKER_KEY RUST_LOG=warn "$drain" --workers "$1" --batch "$2" \
    >>"$work/drain.log" 2>&1 &
  DRAIN_PID=$!
}

# Waits until no task is queued or running (at most an hour).
wait_drained() {
  local left deadline=$((SECONDS + 3600))
  while :; do
    left=$(store_sql "SELECT count(*) FROM task_executions WHERE status IN ('queued', 'running')")
    [ "$left" -eq 0 ] && return 0
    kill -0 "$DRAIN_PID" 2>/dev/null || die "the drain worker stopped; see $work/drain.log"
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server stopped; see $work/server-$STORE.log"
    [ "$SECONDS" -lt "$deadline" ] || die "not drained within an hour ($left left)"
    sleep 0.2
  done
}

# p50 and p99 (ms) of completed_at - a start column, over completed tasks.
percentiles() {
  local from=$1
  if [ "$STORE" = postgres ]; then
    store_sql "SELECT round(1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY completed_at - $from))::numeric, 1) || ' ' ||
                      round(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY completed_at - $from))::numeric, 1)
               FROM task_executions WHERE status = 'completed'"
  else
    store_sql "SELECT (julianday(completed_at) - julianday($from)) * 86400000 FROM task_executions WHERE status = 'completed'" |
      sort -n | awk '{ v[NR] = $1 } END { printf "%.1f %.1f\n", v[int(NR * 0.5) + 1], v[int(NR * 0.99) + 1] }'
  fi
}

# One drain: prints "rate server_us pg_us p50 p99".
drain_run() {
  local store=$1 batch=$2 s0 p0 t0 s1 p1 t1 done_count
  setup_store "$store"
  python3 scripts/bench/seed_noop.py "$base" "$KEY" "$tasks"
  s0=$(ticks "$SERVER_PID") p0=$(pg_ticks) t0=$(date +%s.%N)
  start_drain "$workers" "$batch"
  wait_drained
  t1=$(date +%s.%N) s1=$(ticks "$SERVER_PID") p1=$(pg_ticks)
  stop_drain
  done_count=$(store_sql "SELECT count(*) FROM task_executions WHERE status = 'completed'")
  [ "$done_count" -eq "$tasks" ] || die "$store batch $batch: $done_count of $tasks tasks completed"
  [ "$store" = postgres ] || p1=$p0
  awk -v n="$tasks" -v t0="$t0" -v t1="$t1" -v s="$((s1 - s0))" -v p="$((p1 - p0))" -v hz="$hz" -v pc="$(percentiles started_at)" \
    'BEGIN { printf "%.0f %.0f %.0f %s\n", n / (t1 - t0), s * 1e6 / hz / n, p * 1e6 / hz / n, pc }'
  stop_flowexec
}

# Created → completed with the workers waiting: prints "p50 p99".
latency_run() {
  local store=$1 batch=$2 rate=$3
  setup_store "$store"
  start_drain "$workers" "$batch"
  sleep 2
  python3 scripts/bench/seed_noop.py "$base" "$KEY" "$latency_tasks" "$rate"
  wait_drained
  stop_drain
  [ "$(store_sql "SELECT count(*) FROM task_executions WHERE status = 'completed'")" -eq "$latency_tasks" ] ||
    die "$store batch $batch: not every task of the latency run completed"
  percentiles created_at
  stop_flowexec
}

# The floor: pgbench replaying claim + complete at `batch`; prints tasks/s.
floor_run() {
  local batch=$1 org per_client out tps names
  STORE=postgres
  "$PSQL" -X -q -d "$PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  FLOWEXEC__DATABASE__URL=$app_url FLOWEXEC__DATABASE__ADMIN_URL=$admin_url "$bin" migrate >/dev/null
  org=$(FLOWEXEC__DATABASE__URL=$app_url FLOWEXEC__DATABASE__ADMIN_URL=$admin_url "$bin" org create bench-floor --json 2>/dev/null |
    json_field '["organization_id"]')
  store_sql "INSERT INTO flow_executions (organization_id, id, flow_name, modified_by)
               SELECT '$org', gen_random_uuid(), 'bench-workers', 'system' FROM generate_series(1, $tasks / 100);
             INSERT INTO task_executions (organization_id, id, flow_execution_id, task_name, modified_by, input, created_at)
               SELECT f.organization_id, gen_random_uuid(), f.id, 'noop-' || lpad(n::text, 2, '0'), 'system',
                      '{\"flow\": 0}', clock_timestamp()
               FROM flow_executions f, generate_series(0, 99) n;
             ANALYZE" >/dev/null
  names="{$(seq -f 'noop-%02g' 0 99 | paste -sd,)}"
  cat >"$work/floor.sql" <<SQL
BEGIN \; SELECT set_config('app.organization_id', '$org', true);
WITH picked AS (
    SELECT t.organization_id, t.id FROM task_executions AS t
    WHERE t.organization_id = '$org' AND t.status = 'queued'
      AND (t.not_before IS NULL OR t.not_before <= now()) AND t.task_name = ANY (CAST(':names' AS text[]))
    ORDER BY t.priority DESC, t.created_at, t.id
    LIMIT $batch
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE task_executions AS t SET
        status = 'running', worker_id = 'floor-:client_id', lease_expires_at = now() + interval '60 seconds',
        heartbeat_at = now(), started_at = now(), updated_at = now(),
        modified_by = 'system', version = t.version + 1
    FROM picked AS p
    WHERE t.organization_id = p.organization_id AND t.id = p.id
    RETURNING t.*
), recorded AS (
    INSERT INTO task_execution_events
        (organization_id, task_execution_id, from_status, to_status, actor, reason, created_at)
    SELECT c.organization_id, c.id, 'queued', 'running', 'system', NULL, now() FROM claimed AS c
)
SELECT coalesce(array_agg(id), '{}') AS ids FROM claimed \gset
COMMIT;
BEGIN \; SELECT set_config('app.organization_id', '$org', true);
SELECT count(*) FROM flowexec_change_statuses('$org', CAST(':ids' AS uuid[]),
    array_fill(jsonb_build_object('ok', true), ARRAY[cardinality(CAST(':ids' AS uuid[]))]),
    array_fill(CAST(NULL AS jsonb), ARRAY[cardinality(CAST(':ids' AS uuid[]))]),
    array_fill(CAST('floor-:client_id' AS text), ARRAY[cardinality(CAST(':ids' AS uuid[]))]),
    'completed', 'system', now(), false, true, true, false, ARRAY['running'], NULL);
COMMIT;
SQL
  per_client=$((tasks / workers / batch))
  out=$(PGPASSWORD=flowexec_app "$PGBENCH" -n -M simple -c "$workers" -j 2 -t "$per_client" -D "names=$names" \
    -h "$PG_HOST" -p "$PG_PORT" -U flowexec_app -f "$work/floor.sql" "$db" 2>&1) ||
    { printf '%s\n' "$out" >&2; die "pgbench failed"; }
  tps=$(printf '%s\n' "$out" | sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\)/\1/p')
  awk -v t="$tps" -v b="$batch" 'BEGIN { printf "%.0f\n", t * b }'
}

idle_run() {
  local s0 p0 s1 p1
  setup_store postgres
  start_drain "$idle_workers" 1
  sleep 5
  s0=$(ticks "$SERVER_PID") p0=$(pg_ticks)
  sleep "$idle_seconds"
  s1=$(ticks "$SERVER_PID") p1=$(pg_ticks)
  stop_drain
  stop_flowexec
  awk -v s="$((s1 - s0))" -v p="$((p1 - p0))" -v hz="$hz" -v d="$idle_seconds" \
    'BEGIN { printf "server %.2f%% of a core, PostgreSQL %.2f%% of a core\n", 100 * s / hz / d, 100 * p / hz / d }'
}

declare -A R
for batch in 1 50; do
  log "PostgreSQL: draining $tasks tasks, $workers workers, batch $batch"
  R[pg$batch]=$(drain_run postgres "$batch")
  log "PostgreSQL floor (pgbench, $workers clients), batch $batch"
  R[floor$batch]=$(floor_run "$batch")
  rate=$(echo "${R[pg$batch]}" | awk '{ printf "%d", $1 / 2 }')
  log "PostgreSQL: latency, $latency_tasks tasks at $rate/s, batch $batch"
  R[pglat$batch]=$(latency_run postgres "$batch" "$rate")
  log "SQLite: draining $tasks tasks, $workers workers, batch $batch"
  R[lite$batch]=$(drain_run sqlite "$batch")
  rate=$(echo "${R[lite$batch]}" | awk '{ printf "%d", $1 / 2 }')
  log "SQLite: latency, $latency_tasks tasks at $rate/s, batch $batch"
  R[litelat$batch]=$(latency_run sqlite "$batch" "$rate")
done
log "idle: $idle_workers workers long-polling an empty queue for ${idle_seconds}s (PostgreSQL)"
idle=$(idle_run)
"$PSQL" -X -q -d "$PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"

line() {
  local name=$1 drain=$2 lat=$3
  read -r rate srv pg p50 p99 <<<"$drain"
  read -r l50 l99 <<<"$lat"
  printf '  %-22s %7s tasks/s  claimed→completed p50 %s ms, p99 %s ms; created→completed p50 %s ms, p99 %s ms; CPU per task: server %s µs' \
    "$name" "$rate" "$p50" "$p99" "$l50" "$l99" "$srv"
  [ "$pg" != 0 ] && printf ', PostgreSQL %s µs' "$pg"
  printf '\n'
}
ratio() { awk -v a="$(echo "$1" | cut -d' ' -f1)" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cat <<REPORT

Workers ($tasks no-op tasks, $workers worker processes' workers over HTTP, $(nproc) cores):
$(line "PostgreSQL, batch 1" "${R[pg1]}" "${R[pglat1]}")
  floor (pgbench, batch 1):  ${R[floor1]} tasks/s   ratio $(ratio "${R[pg1]}" "${R[floor1]}") (target >= 0.3)
$(line "PostgreSQL, batch 50" "${R[pg50]}" "${R[pglat50]}")
  floor (pgbench, batch 50): ${R[floor50]} tasks/s   ratio $(ratio "${R[pg50]}" "${R[floor50]}") (target >= 0.5)
$(line "SQLite, batch 1" "${R[lite1]}" "${R[litelat1]}")
$(line "SQLite, batch 50" "${R[lite50]}" "${R[litelat50]}")
  idle, $idle_workers workers long-polling for ${idle_seconds}s: $idle
REPORT
