#!/usr/bin/env bash
# Benchmark of GET /task-executions/{id} against same-run floors, on
# PostgreSQL, then on SQLite.
#
#  1. Seeds 1,000,000 task executions across 10 organizations (database
#     flowexec_bench, and target/bench/flowexec.db; reused when seeded).
#  2. Starts the release server and drives the endpoint with wrk at fixed
#     concurrency: random ids, each with a key of its organization.
#  3. Measures, in the same run, two floors with pgbench:
#     - same-SQL: the exact statements one request sends in steady state
#       (the single-statement tenant read; the key lookup happens once per
#       key per auth.key_cache_secs), prepared, as the app role;
#     - point-select: one prepared primary-key select, as the superuser.
#  4. Prints req/s, p50, p99, the server's peak RSS and the ratios.
#  5. Runs the same wrk load against the server on SQLite and prints its
#     req/s, latency and peak RSS beside the PostgreSQL figures.
#  6. At the default settings (no pool or worker overrides), 16 connections:
#     p99 and the slowest request of each round, on PostgreSQL.
#  7. Hostile clients (scripts/bench/hostile.py), on each store: the median
#     401 time of an unknown key id against a wrong secret for a live id
#     (fresh keys, then repeated ones); on SQLite also the server CPU per
#     1 MiB body refused for a junk key (against one parsed and refused
#     with 422), and /healthz while BENCH_STALLED stalled bodies are held.
#  8. The transition benchmark (scripts/bench/transitions.sh): queued →
#     running → completed on 100,000 tasks, many clients, both stores,
#     through the store and as PATCH over HTTP, with a same-run pgbench
#     floor replaying the same SQL.
#  9. The list benchmark (scripts/bench/lists.sh): at 1,000,000 task
#     executions, the first page against a page 100,000 rows deep, counts
#     for a flow of 1,000 tasks and an organization of 100,000, and the
#     plan of every list query shape.
# 10. The worker benchmark (scripts/bench/workers.sh): 100,000 no-op tasks
#     drained by workers over HTTP at claim batch 1 and 50, on both stores,
#     against a same-run pgbench floor replaying the claim and completion
#     SQL; created → completed latency; the idle cost of 100 long-pollers.
# 11. The flow benchmark (scripts/bench/flows.sh): a DAG of 1,000 tasks
#     (10 layers of 100, each depending on 3 of the layer above) run by 8
#     no-op workers against as many independent tasks; the engine's overhead
#     and ready → claimed per task; a chain of 40 tasks run by one
#     long-polling worker, median of 10 runs.
#
# Settings (environment): BENCH_SECONDS (10 per run), BENCH_ROUNDS (3),
# BENCH_CONNECTIONS (32), BENCH_POOL (4), BENCH_WORKERS (2), BENCH_STALLED
# (15000; at most the open-file limit of this shell less a few hundred).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
POOL=${BENCH_POOL:-4}
WORKERS=${BENCH_WORKERS:-2}
PORT=${BENCH_PORT:-18480}
ORGS=10
FLOWS_PER_ORG=1000
TASKS_PER_FLOW=100
SAMPLE=100000

ensure_build_deps
ensure_postgres
parse_pg_url "$PG_SUPERUSER_URL"
unset DATABASE_URL
command -v wrk >/dev/null 2>&1 || apt_install wrk || die "wrk is required (apt-get install -y wrk)"
PSQL=$(pg_bin psql) || die "psql is required (apt-get install -y postgresql-client)"
command -v python3 >/dev/null 2>&1 || apt_install python3 || die "python3 is required to seed SQLite"
PGBENCH=$(pg_bin pgbench) || die "pgbench is required (apt-get install -y postgresql-contrib)"

work=$(target_dir)/bench
mkdir -p "$work"
db=flowexec_bench
admin_url="postgres://${PG_USERINFO}${PG_HOST}:${PG_PORT}/${db}"
app_url="postgres://flowexec_app@${PG_HOST}:${PG_PORT}/${db}"
export FLOWEXEC__DATABASE__URL=$app_url FLOWEXEC__DATABASE__ADMIN_URL=$admin_url
psql_admin() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$admin_url" "$@"; }

log "building (release)"
cargo build --release --locked -p flowexec-server
bin=$(target_dir)/release/flowexec
"$bin" migrate >/dev/null

want=$((ORGS * FLOWS_PER_ORG * TASKS_PER_FLOW))
have=$(psql_admin -At -c "SELECT count(*) FROM task_executions")
if [ "$have" -ne "$want" ] || [ ! -s "$work/keys.tsv" ]; then
  log "seeding $want task executions across $ORGS organizations"
  psql_admin -c "TRUNCATE organizations CASCADE"
  : >"$work/keys.tsv"
  for i in $(seq 1 "$ORGS"); do
    "$bin" org create "bench-$i" --json |
      sed -E 's/.*"api_key":"([^"]+)".*"organization_id":"([^"]+)".*/\2\t\1/' >>"$work/keys.tsv"
  done
  psql_admin <<SQL
INSERT INTO flow_executions (organization_id, id, flow_name, input, modified_by)
SELECT o.id, gen_random_uuid(), 'bench', '{"day": "2026-11-28"}', 'system'
FROM organizations o, generate_series(1, ${FLOWS_PER_ORG});
INSERT INTO task_executions (organization_id, id, flow_execution_id, task_name, execution_index, status, input, modified_by)
SELECT f.organization_id, gen_random_uuid(), f.id, 'task-' || g, 0, 'queued',
       jsonb_build_object('n', g, 'source', 's3://bucket/key-' || g), 'system'
FROM flow_executions f, generate_series(1, ${TASKS_PER_FLOW}) g;
VACUUM ANALYZE;
SQL
fi

log "sampling $SAMPLE random task ids"
psql_admin -At -F $'\t' -c "SELECT organization_id, id FROM task_executions ORDER BY random() LIMIT ${SAMPLE}" >"$work/tasks.tsv"
awk -F'\t' 'NR == FNR { key[$1] = $2; next } { print key[$1] "\t" $2 }' "$work/keys.tsv" "$work/tasks.tsv" >"$work/ids.tsv"

# pgbench scripts: one per sampled request (pgbench takes at most 128), each
# the exact statement sequence of one GET /task-executions/{id}.
rm -f "$work"/same-sql-*.sql "$work"/point-*.sql
columns='"task_executions"."organization_id", "task_executions"."id", "task_executions"."flow_execution_id", "task_executions"."task_name", "task_executions"."execution_index", "task_executions"."status", "task_executions"."input", "task_executions"."output", "task_executions"."error", "task_executions"."modified_by", "task_executions"."created_at", "task_executions"."updated_at", "task_executions"."started_at", "task_executions"."completed_at"'
head -n 100 "$work/ids.tsv" | while IFS=$'\t' read -r key task; do
  org=$(awk -F'\t' -v t="$task" '$2 == t { print $1 }' "$work/tasks.tsv")
  n=$((${n:-0} + 1))
  cat >"$work/same-sql-$n.sql" <<SQL
SELECT flowexec_get_task_execution('$org', '$task');
SQL
  cat >"$work/point-$n.sql" <<SQL
SELECT $columns FROM "task_executions" WHERE (("task_executions"."organization_id" = '$org') AND ("task_executions"."id" = '$task')) LIMIT 1;
SQL
done

# Runs pgbench over the given scripts; prints "tps mean_us". (pgbench's
# per-transaction log reports many latencies as 0 at these rates, so no
# percentiles are taken from it.)
pgbench_run() {
  local prefix=$1 user=$2 args=() out
  for f in "$work/$prefix"-*.sql; do args+=(-f "$f"); done
  out=$("$PGBENCH" -n -M prepared -c "$POOL" -j 2 -T "$SECONDS_PER_RUN" \
    -h "$PG_HOST" -p "$PG_PORT" -U "$user" "${args[@]}" "$db" 2>&1) ||
    { printf '%s\n' "$out" >&2; die "pgbench failed"; }
  local tps mean
  tps=$(printf '%s\n' "$out" | sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\)/\1/p')
  mean=$(printf '%s\n' "$out" | sed -nE 's/^latency average = ([0-9.]+) ms/\1/p')
  echo "$tps $(awk -v m="$mean" 'BEGIN { printf "%.0f", m * 1000 }')"
}

superuser=${PG_USERINFO%@}
[ -n "$superuser" ] || superuser=postgres
case $superuser in *:*) export PGPASSWORD=${superuser#*:} ;; esac

wrk_run() {
  BENCH_IDS="$ids_file" wrk -t 2 -c "$CONNECTIONS" -d "$1" -s scripts/bench/get_task_execution.lua \
    "http://127.0.0.1:$PORT"
}

log "server on PostgreSQL: $WORKERS workers, pool $POOL"
trap 'stop_flowexec; stop_throwaway_postgres' EXIT
start_flowexec "$PORT" "$work/server.log" FLOWEXEC__SERVER__WORKERS="$WORKERS" FLOWEXEC__DATABASE__POOL_SIZE="$POOL"
server=$SERVER_PID
ids_file=$work/ids.tsv
wrk_run 3s >/dev/null # warm-up

# CPU time (clock ticks, ticks/pg_ticks in common.sh) of the server and of
# every PostgreSQL process, around the measured HTTP run, to show where the
# machine's time goes.
hz=$(getconf CLK_TCK)
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
val() { printf '%s\n' "$line" | sed -E "s/.* $1=([0-9]+).*/\1/"; }
per_request() { awk -v t="$1" -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }'; }

# Rounds of (same-SQL floor, point-select floor, HTTP), so that each ratio
# compares runs made minutes apart at most; the report gives medians.
declare -a R_HTTP R_MEAN R_P50 R_P99 R_FLOOR R_FLOOR_MEAN R_POINT R_POINT_MEAN R_SRV R_PG R_WRK R_SAME R_PT
for round in $(seq 1 "$ROUNDS"); do
  log "round $round/$ROUNDS: pgbench same SQL ($POOL conns as flowexec_app), pgbench point-select ($POOL conns), wrk ($CONNECTIONS conns); ${SECONDS_PER_RUN}s each"
  read -r floor_tps floor_mean < <(pgbench_run same-sql flowexec_app)
  read -r point_tps point_mean < <(pgbench_run point "${superuser%%:*}")
  server_t0=$(ticks "$server") pg_t0=$(pg_ticks)
  TIMEFORMAT='%U %S'
  { time wrk_run "${SECONDS_PER_RUN}s" >"$work/wrk.out"; } 2>"$work/wrk.time"
  server_t1=$(ticks "$server") pg_t1=$(pg_ticks)

  line=$(grep '^BENCH ' "$work/wrk.out") || { cat "$work/wrk.out" >&2; die "wrk printed no result"; }
  requests=$(val requests)
  [ "$(val errors)" -eq 0 ] || die "$(val errors) requests failed or were not 200"
  http_rps=$(awk -v r="$requests" -v d="$(val duration_us)" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
  R_HTTP+=("$http_rps") R_MEAN+=("$(val mean_us)") R_P50+=("$(val p50_us)") R_P99+=("$(val p99_us)")
  R_FLOOR+=("$floor_tps") R_FLOOR_MEAN+=("$floor_mean") R_POINT+=("$point_tps") R_POINT_MEAN+=("$point_mean")
  R_SRV+=("$(per_request $((server_t1 - server_t0)))") R_PG+=("$(per_request $((pg_t1 - pg_t0)))")
  R_WRK+=("$(awk -v n="$requests" '{ printf "%.0f", ($1 + $2) * 1e6 / n }' "$work/wrk.time")")
  R_SAME+=("$(ratio "$http_rps" "$floor_tps")") R_PT+=("$(ratio "$http_rps" "$point_tps")")
  log "  HTTP $http_rps req/s, same-SQL floor $(printf '%.0f' "$floor_tps"), point-select floor $(printf '%.0f' "$point_tps"); ratios ${R_SAME[-1]} / ${R_PT[-1]}"
done
rss_kib=$(awk '/^VmHWM/ { print $2 }' "/proc/$server/status")
log "key timing on PostgreSQL"
pg_key=$(head -n 1 "$work/keys.tsv" | cut -f 2)
pg_timing=$(python3 scripts/bench/hostile.py keytiming "127.0.0.1:$PORT" "$pg_key" 2000 | sed -n 's/^RESULT //p')
stop_flowexec

# The default settings: what an operator gets without tuning.
log "server on PostgreSQL at the default settings ($(nproc) cores), wrk 16 conns"
start_flowexec "$PORT" "$work/server-defaults.log"
server=$SERVER_PID
declare -a D_P99 D_MAX D_RPS
for round in $(seq 1 "$ROUNDS"); do
  BENCH_IDS="$work/ids.tsv" wrk -t 2 -c 16 -d "${SECONDS_PER_RUN}s" --latency -s scripts/bench/get_task_execution.lua \
    "http://127.0.0.1:$PORT" >"$work/wrk.out"
  line=$(grep '^BENCH ' "$work/wrk.out") || { cat "$work/wrk.out" >&2; die "wrk printed no result"; }
  [ "$(val errors)" -eq 0 ] || die "$(val errors) requests failed or were not 200 (default settings)"
  D_P99+=("$(ms "$(val p99_us)")")
  D_MAX+=("$(awk '/^    Latency/ { print $4 }' "$work/wrk.out")")
  D_RPS+=("$(awk -v r="$(val requests)" -v d="$(val duration_us)" 'BEGIN { printf "%.0f", r / (d / 1e6) }')")
done
stop_flowexec

# SQLite: the same endpoint and load, over the same number of rows.
sqlite_db=$work/flowexec.db
sqlite_url="sqlite://$sqlite_db"
sqlite_count() { python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from task_executions").fetchone()[0])' "$sqlite_db" 2>/dev/null || echo 0; }
if [ "$(sqlite_count)" -ne "$want" ] || [ ! -s "$work/sqlite-keys.tsv" ]; then
  log "seeding $want task executions across $ORGS organizations in SQLite"
  rm -f "$sqlite_db" "$sqlite_db-wal" "$sqlite_db-shm"
  : >"$work/sqlite-keys.tsv"
  for i in $(seq 1 "$ORGS"); do
    FLOWEXEC__DATABASE__URL=$sqlite_url "$bin" org create "bench-$i" --json |
      sed -E 's/.*"api_key":"([^"]+)".*"organization_id":"([^"]+)".*/\2\t\1/' >>"$work/sqlite-keys.tsv"
  done
  python3 scripts/bench/seed_sqlite.py "$sqlite_db" "$work/sqlite-keys.tsv" "$FLOWS_PER_ORG" "$TASKS_PER_FLOW"
fi
python3 -c '
import sqlite3, sys
keys = dict(line.rstrip("\n").split("\t") for line in open(sys.argv[2]) if line.strip())
rows = sqlite3.connect(sys.argv[1]).execute(
    "select organization_id, id from task_executions order by random() limit ?", (int(sys.argv[3]),))
with open(sys.argv[4], "w") as out:
    for org, task in rows:
        out.write(f"{keys[org]}\t{task}\n")
' "$sqlite_db" "$work/sqlite-keys.tsv" "$SAMPLE" "$work/sqlite-ids.tsv"

log "server on SQLite: $WORKERS workers, pool $POOL"
start_flowexec "$PORT" "$work/server-sqlite.log" FLOWEXEC__DATABASE__URL="$sqlite_url" \
  FLOWEXEC__SERVER__WORKERS="$WORKERS" FLOWEXEC__DATABASE__POOL_SIZE="$POOL"
server=$SERVER_PID
ids_file=$work/sqlite-ids.tsv
wrk_run 3s >/dev/null # warm-up
declare -a S_HTTP S_MEAN S_P50 S_P99 S_SRV
for round in $(seq 1 "$ROUNDS"); do
  server_t0=$(ticks "$server")
  { time wrk_run "${SECONDS_PER_RUN}s" >"$work/wrk.out"; } 2>"$work/wrk.time"
  server_t1=$(ticks "$server")
  line=$(grep '^BENCH ' "$work/wrk.out") || { cat "$work/wrk.out" >&2; die "wrk printed no result"; }
  requests=$(val requests)
  [ "$(val errors)" -eq 0 ] || die "$(val errors) requests failed or were not 200 (SQLite)"
  http_rps=$(awk -v r="$requests" -v d="$(val duration_us)" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
  S_HTTP+=("$http_rps") S_MEAN+=("$(val mean_us)") S_P50+=("$(val p50_us)") S_P99+=("$(val p99_us)")
  S_SRV+=("$(per_request $((server_t1 - server_t0)))")
  log "  SQLite round $round/$ROUNDS: HTTP $http_rps req/s"
done
sqlite_rss_kib=$(awk '/^VmHWM/ { print $2 }' "/proc/$server/status")
sqlite_key=$(head -n 1 "$work/sqlite-keys.tsv" | cut -f 2)
log "key timing, refused bodies and stalled clients on SQLite"
sqlite_timing=$(python3 scripts/bench/hostile.py keytiming "127.0.0.1:$PORT" "$sqlite_key" 2000 | sed -n 's/^RESULT //p')
refused=$(python3 scripts/bench/hostile.py rejected "127.0.0.1:$PORT" "$sqlite_key" 100 "$server" | sed -n 's/^RESULT //p')
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
stalled_n=${BENCH_STALLED:-15000}
stalled=$(python3 scripts/bench/hostile.py stalled "127.0.0.1:$PORT" "$sqlite_key" "$stalled_n" | sed -n 's/^RESULT //p')
stop_flowexec

cat <<REPORT

GET /task-executions/{id} — $want rows, $ORGS organizations, $(nproc) cores; medians of $ROUNDS rounds of ${SECONDS_PER_RUN}s
                                   req/s     mean       p50        p99
  PostgreSQL: HTTP (wrk, $CONNECTIONS conns) $(printf '%8.0f' "$(median "${R_HTTP[@]}")")   $(printf '%-10s' "$(ms "$(median "${R_MEAN[@]}")")") $(printf '%-10s' "$(ms "$(median "${R_P50[@]}")")") $(ms "$(median "${R_P99[@]}")")
  floor: same SQL (pgbench, $POOL)      $(printf '%8.0f' "$(median "${R_FLOOR[@]}")")   $(ms "$(median "${R_FLOOR_MEAN[@]}")")
  floor: point-select (pgbench, $POOL)  $(printf '%8.0f' "$(median "${R_POINT[@]}")")   $(ms "$(median "${R_POINT_MEAN[@]}")")
  SQLite: HTTP (wrk, $CONNECTIONS conns)     $(printf '%8.0f' "$(median "${S_HTTP[@]}")")   $(printf '%-10s' "$(ms "$(median "${S_MEAN[@]}")")") $(printf '%-10s' "$(ms "$(median "${S_P50[@]}")")") $(ms "$(median "${S_P99[@]}")")
  server peak RSS: PostgreSQL $((rss_kib / 1024)) MiB, SQLite $((sqlite_rss_kib / 1024)) MiB (target < 64 MiB)
  CPU per HTTP request (PostgreSQL): server $(median "${R_SRV[@]}") µs, PostgreSQL $(median "${R_PG[@]}") µs, wrk $(median "${R_WRK[@]}") µs ($(nproc) cores shared by all three)
  CPU per HTTP request (SQLite): server $(median "${S_SRV[@]}") µs, database included
  ratio HTTP / same-SQL floor:     $(median "${R_SAME[@]}")  (target >= 0.70; per round: ${R_SAME[*]})
  ratio HTTP / point-select floor: $(median "${R_PT[@]}")  (target >= 0.35; per round: ${R_PT[*]})

At the default settings (PostgreSQL, 16 conns), per round: req/s ${D_RPS[*]}; p99 ${D_P99[*]}; slowest ${D_MAX[*]}

Hostile clients (401 medians over 2000 fresh keys each, then one repeated key each):
  PostgreSQL: $pg_timing
  SQLite:     $sqlite_timing
  refused 1 MiB bodies (SQLite server CPU per request): $refused
  stalled bodies held: $stalled
REPORT

scripts/bench/transitions.sh
scripts/bench/lists.sh
scripts/bench/workers.sh
scripts/bench/flows.sh
