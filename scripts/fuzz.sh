#!/usr/bin/env bash
# Fuzzes the HTTP API against its own OpenAPI document with Schemathesis:
# every operation of /openapi.json, every check, on both stores, with the
# keys of two organizations (Schemathesis's object-level authorization check
# replays one organization's reads with the other's key). Any failure fails
# the script. Also validates the document with openapi-spec-validator, and
# (on SQLite) generates clients from it with scripts/check-clients.sh.
#
# Three documented rules that JSON Schema cannot state are told to the
# fuzzer, so that it does not take their 422 for valid data refused: task
# names are distinct within a flow execution, a retry policy's max_ms is at
# least its initial_ms (scripts/fuzz/flowexec_hooks.py), and no string or
# key holds the NUL character, which PostgreSQL cannot store
# (--generation-allow-x00 false). The tests check each refusal.
#
#   scripts/fuzz.sh                       # both stores, the CI budget
#   FUZZ_EXAMPLES=1000 scripts/fuzz.sh    # a longer run
#
# Settings (environment): FUZZ_EXAMPLES (examples per operation, default
# 50), FUZZ_SEED (default fixed, so CI runs are repeatable), FUZZ_STORES
# ("sqlite postgres"), FLOWEXEC_BIN (default: build the release binary).
# PostgreSQL is found as scripts/test.sh finds it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

# DATABASE_URL names the PostgreSQL to use; the binary must not see it (it
# would take it for database.url, also on SQLite).
pg_url=${DATABASE_URL:-}
unset DATABASE_URL
examples=${FUZZ_EXAMPLES:-50}
seed=${FUZZ_SEED:-20261129}
stores=${FUZZ_STORES:-"sqlite postgres"}
target=$(target_dir)

ensure_python_tools
bin=${FLOWEXEC_BIN:-}
if [ -z "$bin" ]; then
  ensure_build_deps
  log "building the release binary"
  cargo build --release --locked -p flowexec-server
  bin="$target/release/flowexec"
fi
[ -x "$bin" ] || die "no flowexec binary at $bin"

SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "${FUZZ_DB:-}" ]; then
    psql_admin "DROP DATABASE IF EXISTS $FUZZ_DB WITH (FORCE)" || true
  fi
  stop_throwaway_postgres
}
trap cleanup EXIT

# One statement as the PostgreSQL superuser (psql, installed if missing).
psql_admin() {
  local psql
  psql=$(pg_bin psql) || { apt_install postgresql-client && psql=$(pg_bin psql); } ||
    die "psql is required (apt-get install -y postgresql-client)"
  "$psql" -X -q -v ON_ERROR_STOP=1 -d "$PG_SUPERUSER_URL" -c "$1" >/dev/null
}

# Runs the admin CLI with the store's settings; prints its stdout.
flowexec_admin() { env "${STORE_ENV[@]}" "$bin" "$@"; }

# Starts the server with the store's settings; sets SERVER_PID and ADDRESS.
start_server() {
  local log=$1
  env "${STORE_ENV[@]}" FLOWEXEC__SERVER__BIND=127.0.0.1:0 FLOWEXEC__BOOTSTRAP__ENABLED=false \
    FLOWEXEC__LOG__LEVEL=info "$bin" serve >"$log" 2>&1 &
  SERVER_PID=$!
  ADDRESS=
  for _ in $(seq 1 300); do
    ADDRESS=$(sed -n 's/.*listening on http:\/\/\([0-9.:]*\).*/\1/p' "$log" | head -n 1)
    [ -n "$ADDRESS" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server did not start; see $log"
    sleep 0.1
  done
  die "the server did not start within 30 s; see $log"
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || die "the server did not stop cleanly"
  SERVER_PID=
}

key_of() { "$PY_TOOLS/python" -c 'import json,sys; print(json.load(sys.stdin)["api_key"])'; }

fuzz_store() {
  local store=$1 work="$target/fuzz/$store"
  rm -rf "$work" && mkdir -p "$work"
  case $store in
    sqlite)
      STORE_ENV=(FLOWEXEC__DATA_DIR="$work/data")
      ;;
    postgres)
      if [ -n "$pg_url" ]; then DATABASE_URL=$pg_url ensure_postgres; else ensure_postgres; fi
      parse_pg_url "$PG_SUPERUSER_URL"
      FUZZ_DB="flowexec_fuzz_$$"
      local admin="postgres://${PG_USERINFO}${PG_HOST}:${PG_PORT}/$FUZZ_DB"
      local app="postgres://flowexec_app:flowexec_app@${PG_HOST}:${PG_PORT}/$FUZZ_DB"
      STORE_ENV=(FLOWEXEC__DATA_DIR="$work/data" FLOWEXEC__DATABASE__URL="$app" FLOWEXEC__DATABASE__ADMIN_URL="$admin")
      flowexec_admin migrate >/dev/null
      ;;
    *) die "unknown store $store (sqlite or postgres)" ;;
  esac
  local key_a key_b
  key_a=$(flowexec_admin org create "fuzz-a-$$" --json | key_of)
  key_b=$(flowexec_admin org create "fuzz-b-$$" --json | key_of)
  start_server "$work/server.log"
  log "fuzzing $store at http://$ADDRESS ($examples examples per operation, seed $seed)"

  curl -sf "http://$ADDRESS/openapi.json" -o "$work/openapi.json" || die "cannot fetch /openapi.json"
  "$PY_TOOLS/openapi-spec-validator" "$work/openapi.json"

  cat >"$work/wfc.json" <<JSON
{"auth": [
  {"name": "org-a", "fixedHeaders": [{"name": "Authorization", "value": "Bearer $key_a"}]},
  {"name": "org-b", "fixedHeaders": [{"name": "Authorization", "value": "Bearer $key_b"}]}
]}
JSON
  cat >"$work/schemathesis.toml" <<TOML
[auth.wfc]
path = "$work/wfc.json"
peers = ["org-a", "org-b"]
TOML
  local status=0
  # Run from the work folder: Schemathesis and Hypothesis keep their caches
  # in the current directory.
  (cd "$work" && PYTHONPATH="$OLDPWD/scripts/fuzz" SCHEMATHESIS_HOOKS=flowexec_hooks \
    "$PY_TOOLS/schemathesis" --no-color --config-file "$work/schemathesis.toml" \
    run "http://$ADDRESS/openapi.json" --checks all --max-examples "$examples" --seed "$seed" \
    --request-timeout 30 --generation-allow-x00 false >"$work/schemathesis.log" 2>&1) || status=$?
  tail -n 25 "$work/schemathesis.log" | cut -c 1-400
  if [ "$status" -eq 0 ] && [ "$store" = sqlite ] && [ -z "${FUZZ_SKIP_CLIENTS:-}" ]; then
    scripts/check-clients.sh "http://$ADDRESS" "$key_a"
  fi
  stop_server
  if [ "$store" = postgres ]; then
    psql_admin "DROP DATABASE IF EXISTS $FUZZ_DB WITH (FORCE)"
    FUZZ_DB=
  fi
  [ "$status" -eq 0 ] || die "Schemathesis found failures on $store; the whole report is in $work/schemathesis.log"
}

for store in $stores; do
  fuzz_store "$store"
done
log "fuzzing passed: $stores"
