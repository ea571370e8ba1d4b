#!/usr/bin/env bash
# Transition benchmark (run by scripts/bench.sh, or alone): 100,000 task
# executions moved queued → running → completed by 16 clients through the
# store (crates/persistence/examples/transition_bench.rs), on PostgreSQL and
# on SQLite; on PostgreSQL against a same-run pgbench floor replaying the
# round trips one transition sends. Prints transitions/s, the round trips
# per transition and the ratio.
#
# Settings (environment): BENCH_TRANSITION_TASKS (100000),
# BENCH_TRANSITION_CLIENTS (16), BENCH_SECONDS (10, the floor's run).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/common.sh

tasks=${BENCH_TRANSITION_TASKS:-100000}
clients=${BENCH_TRANSITION_CLIENTS:-16}
seconds=${BENCH_SECONDS:-10}
target=$(target_dir)
work="$target/bench/transitions"
mkdir -p "$work"

ensure_build_deps
ensure_postgres
parse_pg_url "$PG_SUPERUSER_URL"
unset DATABASE_URL
PSQL=$(pg_bin psql) || die "psql is required (apt-get install -y postgresql-client)"
PGBENCH=$(pg_bin pgbench) || die "pgbench is required (apt-get install -y postgresql-contrib)"

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
SELECT * FROM flowexec_change_status('$org', '$id', 'completed', 'system', transaction_timestamp(), false, true, true, '{"ok": true}', false, NULL, '{queued,running,completed,failed,deleted,stale}', NULL);
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

log "SQLite: $tasks task executions, $clients clients"
rm -f "$work/transitions.db" "$work/transitions.db-wal" "$work/transitions.db-shm"
sqlite=$("$bench" --store sqlite --url "$work/transitions.db" --tasks "$tasks" --clients "$clients" | sed -n 's/^RESULT //p')
"$PSQL" -X -q -d "$PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"

field() { printf '%s\n' "$1" | sed -E "s/.*$2=([0-9.]+).*/\1/"; }
pg_rate=$(field "$pg" per_second)
cat <<REPORT

Transitions (queued → running → completed), $tasks task executions, $clients clients, $(nproc) cores:
  PostgreSQL: $(printf '%.0f' "$pg_rate") transitions/s, $(field "$pg" round_trips_per_transition) round trips each
  floor (pgbench, the same SQL in $floor_trips round trips, $clients clients): $(printf '%.0f' "$floor") transitions/s
  ratio store / floor: $(awk -v a="$pg_rate" -v b="$floor" 'BEGIN { printf "%.2f", a / b }')
  SQLite: $(printf '%.0f' "$(field "$sqlite" per_second)") transitions/s, $(field "$sqlite" round_trips_per_transition) statements each
REPORT
