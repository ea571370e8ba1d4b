#!/usr/bin/env bash
# Transition benchmark (run by scripts/bench.sh, or alone), on PostgreSQL
# and on SQLite:
#  - through the store: 100,000 task executions moved queued → running →
#    completed by 16 clients (crates/persistence/examples/transition_bench.rs);
#  - over HTTP: the release server, PATCH /task-executions/{id} by 16 wrk
#    connections (scripts/bench/patch.lua), each moving its own tasks queued
#    → running → completed, every answer a 200;
#  - on PostgreSQL, a same-run pgbench floor replaying the round trips one
#    transition sends (the same for both: the key is cached, so a PATCH
#    sends what the store does).
# Prints transitions/s, the round trips per transition, the PATCH p50 and
# p99, and the ratios to the floor.
#
# Settings (environment): BENCH_TRANSITION_TASKS (100000),
# BENCH_TRANSITION_CLIENTS (16), BENCH_SECONDS (10, the floor's and each
# PATCH run), BENCH_PATCH_TASKS (tasks seeded for the PATCH run, 40000).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/common.sh

tasks=${BENCH_TRANSITION_TASKS:-100000}
clients=${BENCH_TRANSITION_CLIENTS:-16}
seconds=${BENCH_SECONDS:-10}
patch_tasks=${BENCH_PATCH_TASKS:-40000}
target=$(target_dir)
work="$target/bench/transitions"
mkdir -p "$work"

bench_prologue pgbench wrk python3
trap 'stop_flowexec; stop_throwaway_postgres' EXIT
port=$((20000 + RANDOM % 20000))

# PATCH over HTTP on the server started with the environment given (the
# store's settings): seeds $patch_tasks queued tasks through the API in an
# organization of its own, then moves them with wrk; prints wrk's BENCH line.
patch_run() {
  local created key
  start_flowexec "$port" "$work/server.log" FLOWEXEC__DATABASE__POOL_SIZE="$clients" "$@"
  created=$(env "$@" "$bin" org create "bench-patch-$RANDOM" --json 2>/dev/null)
  key=$(printf '%s' "$created" | json_field '["api_key"]')
  python3 scripts/bench/seed_tasks.py "http://127.0.0.1:$port" "$key" "$patch_tasks" "$work/patch-ids.txt"
  BENCH_IDS="$work/patch-ids.txt" BENCH_KEY=$key BENCH_THREADS=$clients \
    wrk -t "$clients" -c "$clients" -d "${seconds}s" -s scripts/bench/patch.lua "http://127.0.0.1:$port" |
    grep -E "^(BENCH|refused)" || die "wrk printed no result"
  stop_flowexec
}

log "building the server and the transition benchmark (release)"
cargo build --release --locked -p flowexec-server
cargo build --release --locked -p flowexec-persistence --example transition_bench
bin="$target/release/flowexec"
bench="$target/release/examples/transition_bench"

db=flowexec_transitions
admin_url="postgres://${PG_USERINFO}${PG_HOST}:${PG_PORT}/${db}"
app_url="postgres://flowexec_app:flowexec_app@${PG_HOST}:${PG_PORT}/${db}"
"$PSQL" -X -q -d "$PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
FLOWEXEC__DATABASE__URL=$app_url FLOWEXEC__DATABASE__ADMIN_URL=$admin_url "$bin" migrate >/dev/null

log "PostgreSQL: $tasks task executions, $clients clients"
pg=$("$bench" --store postgres --url "$app_url" --tasks "$tasks" --clients "$clients" --ids "$work/ids.tsv" | sed -n 's/^RESULT //p')

# The floor: the round trips one transition sends (see PgStore's
# in_tenant and PgTx::change_status), by as many clients, over 100 of the
# seeded rows: BEGIN and the tenant setting as one message, the status
# change as one statement (allowed from every status, so that each one
# writes its row and its event), COMMIT.
rm -f "$work"/floor-*.sql
head -n 100 "$work/ids.tsv" | nl -w1 -s$'\t' | while IFS=$'\t' read -r n org id; do
  cat >"$work/floor-$n.sql" <<SQL
BEGIN \; SELECT set_config('app.organization_id', '$org', true);
SELECT * FROM flowexec_change_status('$org', '$id', 'completed', 'system', transaction_timestamp(), false, true, true, '{"ok": true}', false, NULL, '{queued,running,completed,failed,deleted,stale}', NULL, NULL, NULL);
COMMIT;
SQL
done
floor_trips=$(grep -c ';$' "$work/floor-1.sql")
args=()
for f in "$work"/floor-*.sql; do args+=(-f "$f"); done
# Simple protocol for the compound first message; the status change is
# sent with the extended protocol by the store, so the floor's is the
# cheaper of the two only by its parse, which is negligible beside it.
out=$(PGPASSWORD=flowexec_app "$PGBENCH" -n -M simple -c "$clients" -j 2 -T "$seconds" \
  -h "$PG_HOST" -p "$PG_PORT" -U flowexec_app "${args[@]}" "$db" 2>&1) ||
  { printf '%s\n' "$out" >&2; die "pgbench failed"; }
floor=$(printf '%s\n' "$out" | sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\)/\1/p')

log "PostgreSQL: PATCH over HTTP, $clients connections, ${seconds}s"
pg_patch=$(patch_run FLOWEXEC__DATABASE__URL="$app_url" FLOWEXEC__DATABASE__ADMIN_URL="$admin_url")

log "SQLite: $tasks task executions, $clients clients"
rm -f "$work/transitions.db" "$work/transitions.db-wal" "$work/transitions.db-shm"
sqlite=$("$bench" --store sqlite --url "$work/transitions.db" --tasks "$tasks" --clients "$clients" | sed -n 's/^RESULT //p')
log "SQLite: PATCH over HTTP, $clients connections, ${seconds}s"
rm -rf "$work/patch-data"
lite_patch=$(patch_run FLOWEXEC__DATA_DIR="$work/patch-data")
"$PSQL" -X -q -d "$PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"

field() { printf '%s\n' "$1" | sed -E "s/.*$2=([0-9.]+).*/\1/"; }
pg_rate=$(field "$pg" per_second)
# Transitions/s of a PATCH run, refusing one with errors or out of tasks.
patch_rate() {
  [ "$(field "$1" errors)" -eq 0 ] || die "PATCH run with errors: $1"
  [ "$(field "$1" exhausted)" -eq 0 ] || die "PATCH run out of tasks (raise BENCH_PATCH_TASKS): $1"
  awk -v n="$(field "$1" requests)" -v us="$(field "$1" duration_us)" 'BEGIN { printf "%.0f", n / (us / 1e6) }'
}
latency() { awk -v a="$(field "$1" p50_us)" -v b="$(field "$1" p99_us)" 'BEGIN { printf "p50 %.2f ms, p99 %.2f ms", a / 1000, b / 1000 }'; }
pg_patch_rate=$(patch_rate "$pg_patch")
lite_patch_rate=$(patch_rate "$lite_patch")
cat <<REPORT

Transitions (queued → running → completed), $tasks task executions, $clients clients, $(nproc) cores:
  PostgreSQL: $(printf '%.0f' "$pg_rate") transitions/s, $(field "$pg" round_trips_per_transition) round trips each
  floor (pgbench, the same SQL in $floor_trips round trips, $clients clients): $(printf '%.0f' "$floor") transitions/s
  ratio store / floor: $(awk -v a="$pg_rate" -v b="$floor" 'BEGIN { printf "%.2f", a / b }')
  PATCH over HTTP: $pg_patch_rate transitions/s, $(latency "$pg_patch")
  ratio PATCH / floor: $(awk -v a="$pg_patch_rate" -v b="$floor" 'BEGIN { printf "%.2f", a / b }')
  SQLite: $(printf '%.0f' "$(field "$sqlite" per_second)") transitions/s, $(field "$sqlite" round_trips_per_transition) statements each
  SQLite PATCH over HTTP: $lite_patch_rate transitions/s, $(latency "$lite_patch")
REPORT
