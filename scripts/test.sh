#!/usr/bin/env bash
# The one test command: formatting, lints, the whole test suite against a
# real PostgreSQL (DATABASE_URL if set, else localhost:5432, else a
# throwaway cluster under target/), built in release mode so that the
# binary's own tests run the release binary, then the API fuzzer and the
# generated-client checks on both stores (scripts/fuzz.sh). Fails, never
# skips, without a database.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_build_deps
ensure_postgres
trap stop_throwaway_postgres EXIT
ensure_pg_server_binaries
parse_pg_url "$PG_SUPERUSER_URL"
export FLOWEXEC_TEST_DATABASE_URL=$PG_SUPERUSER_URL
unset DATABASE_URL

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test --release (PostgreSQL at ${PG_HOST}:${PG_PORT})"
target=$(target_dir)
mkdir -p "$target"
set +e
cargo test --workspace --release --locked --no-fail-fast 2>&1 | tee "$target/test-output.log"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo's own last line is often a
# doc-test run with nothing in it).
read -r passed failed < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$target/test-output.log")
echo "tests: ${passed} passed, ${failed} failed"
[ "$passed" -gt 0 ] || die "no test ran"
[ "$status" -eq 0 ] || exit "$status"

log "API fuzzing and generated clients (scripts/fuzz.sh)"
DATABASE_URL=$PG_SUPERUSER_URL FLOWEXEC_BIN="$target/release/flowexec" scripts/fuzz.sh

