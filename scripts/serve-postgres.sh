#!/usr/bin/env bash
# Starts flowexec on PostgreSQL (the README's main command runs it on its
# embedded SQLite instead): makes sure PostgreSQL answers (see
# scripts/test.sh), builds the release binary, creates the roles and applies
# migrations, then runs the server in the foreground (Ctrl-C stops it
# gracefully).
#
# On first run it writes ./flowexec.toml with the database URLs it used, so
# `target/release/flowexec org create …` from this directory finds the same
# database. An existing flowexec.toml is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

ensure_build_deps
ensure_postgres
parse_pg_url "$PG_SUPERUSER_URL"
unset DATABASE_URL
if [ ! -f flowexec.toml ]; then
  cat >flowexec.toml <<TOML
# Written by scripts/serve.sh; see docs/operations.md for every setting.
[database]
url = "postgres://flowexec_app@${PG_HOST}:${PG_PORT}/flowexec"
admin_url = "postgres://${PG_USERINFO}${PG_HOST}:${PG_PORT}/flowexec"
TOML
  log "wrote flowexec.toml (database flowexec on ${PG_HOST}:${PG_PORT})"
fi

log "building (release)"
cargo build --release --locked -p flowexec-server
log "flowexec migrate"
target/release/flowexec migrate
log "flowexec serve — create an organization and key in another terminal with:"
log "    target/release/flowexec org create my-org"
exec target/release/flowexec serve "$@"
