#!/usr/bin/env bash
# Flow engine benchmark (crates/worker/examples/flow_bench.rs), on
# PostgreSQL and SQLite, against the release server:
#
#  1. DAG: BENCH_DAG_LAYERS (10) × BENCH_DAG_WIDTH (100) tasks, each
#     depending on 3 of the layer above, run by BENCH_DAG_WORKERS (8) no-op
#     workers (claims of BENCH_DAG_BATCH, 4); then as many independent
#     tasks drained by the same workers. Wall times and their ratio (what
#     the DAG costs), the engine's overhead per task (its creation minus
#     the completion that made it ready) and ready → claimed, p50/p99.
#  2. Chain: BENCH_CHAIN_LENGTH (40) sequential no-op tasks run by one
#     long-polling worker over HTTP, BENCH_CHAIN_RUNS (10) times: wall time
#     from the flow execution's creation to its last completion (median)
#     and the overhead per step. Target: ≤ 0.2 s for 40 steps.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
source scripts/lib/common.sh

layers=${BENCH_DAG_LAYERS:-10}
width=${BENCH_DAG_WIDTH:-100}
dag_workers=${BENCH_DAG_WORKERS:-8}
dag_batch=${BENCH_DAG_BATCH:-4}
length=${BENCH_CHAIN_LENGTH:-40}
runs=${BENCH_CHAIN_RUNS:-10}
target=$(target_dir)
work="$target/bench/flows"
mkdir -p "$work"

bench_prologue python3
trap 'stop_flowexec; stop_throwaway_postgres' EXIT
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"

log "building the server and the benchmark's workers (release)"
cargo build --release --locked -p flowexec-server
cargo build --release --locked -p flowexec-worker --example flow_bench
bin="$target/release/flowexec"
bench="$target/release/examples/flow_bench"

db=flowexec_flows
admin_url="postgres://${PG_USERINFO}${PG_HOST}:${PG_PORT}/${db}"
app_url="postgres://flowexec_app:flowexec_app@${PG_HOST}:${PG_PORT}/${db}"

# A fresh store and a server on it; sets KEY (admin) and WORKER_KEY.
setup_store() {
  local store=$1 env created
  if [ "$store" = postgres ]; then
    "$PSQL" -X -q -d "$PG_SUPERUSER_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    FLOWEXEC__DATABASE__URL=$app_url FLOWEXEC__DATABASE__ADMIN_URL=$admin_url "$bin" migrate >/dev/null
    env=(FLOWEXEC__DATABASE__URL="$app_url" FLOWEXEC__DATABASE__ADMIN_URL="$admin_url")
  else
    rm -rf "$work/data"
    env=(FLOWEXEC__DATA_DIR="$work/data")
  fi
  start_flowexec "$port" "$work/server-$store.log" "${env[@]}"
  created=$(env "${env[@]}" "$bin" org create "bench-flows" --json 2>/dev/null)
  KEY=$(printf '%s' "$created" | json_field '["api_key"]')
  WORKER_KEY=$(curl -fsS -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"role": "worker"}' "$base/api-keys" | json_field '["key"]')
}

# One benchmark on one store: its JSON line.
run_bench() {
  local store=$1
  shift
  setup_store "$store"
  FLOWEXEC_URL=$base FLOWEXEC_KEY=$KEY FLOWEXEC_WORKER_KEY=$WORKER_KEY RUST_LOG=warn "$bench" "$@" 2>>"$work/bench.log" |
    tail -n 1
  stop_flowexec
}

declare -A DAG CHAIN
for store in postgres sqlite; do
  log "$store: DAG of $layers × $width tasks, $dag_workers workers"
  DAG[$store]=$(run_bench "$store" dag --layers "$layers" --width "$width" --workers "$dag_workers" --batch "$dag_batch")
  log "$store: chain of $length tasks, $runs runs"
  CHAIN[$store]=$(run_bench "$store" chain --length "$length" --runs "$runs")
done

report() {
  python3 - "$@" <<'PY'
import json, sys
dag = {"postgres": json.loads(sys.argv[1]), "sqlite": json.loads(sys.argv[2])}
chain = {"postgres": json.loads(sys.argv[3]), "sqlite": json.loads(sys.argv[4])}
d = dag["postgres"]
print(f"\nFlows — DAG of {d['tasks']} tasks (each depending on 3 of the layer above), {d['workers']} no-op workers (claims of {d['batch']})")
print("             DAG wall   independent   ratio   engine overhead p50/p99   ready→claimed p50/p99")
for store, d in dag.items():
    print(f"  {store:<10} {d['dag_wall_s']:6.2f} s   {d['independent_wall_s']:6.2f} s      {d['ratio_dag_over_independent']:5.2f}   "
          f"{d['engine_overhead_ms_p50']:6.2f} / {d['engine_overhead_ms_p99']:6.2f} ms        "
          f"{d['ready_to_claimed_ms_p50']:6.1f} / {d['ready_to_claimed_ms_p99']:6.1f} ms")
c = chain["postgres"]
print(f"\nFlows — chain of {c['length']} no-op tasks, one long-polling worker over HTTP, median of {c['runs']} runs (target ≤ 0.2 s)")
for store, c in chain.items():
    runs = ", ".join(f"{w:.3f}" for w in c["wall_s_all"])
    print(f"  {store:<10} {c['wall_s_median']:.3f} s   {c['overhead_per_step_ms']:.2f} ms per step   (runs: {runs})")
PY
}
report "${DAG[postgres]}" "${DAG[sqlite]}" "${CHAIN[postgres]}" "${CHAIN[sqlite]}"
