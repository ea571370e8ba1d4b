#!/usr/bin/env bash
# Starts flowexec on PostgreSQL (the README's main command runs it on its
# embedded SQLite instead): makes sure a PostgreSQL answers (as
# scripts/test.sh does: DATABASE_URL, else localhost:5432, else a throwaway
# cluster under target/), builds the release binary, creates the database
# and roles and applies the migrations, then runs the server in the
# foreground (Ctrl-C stops it gracefully).
#
# It writes no file: the settings go to the server through its environment,
# and the lines to paste into another terminal for the admin commands
# (`flowexec org create …`) are printed before it starts.
#
# Environment: FLOWEXEC_PG_DATABASE (default flowexec), FLOWEXEC_PG_APP_PASSWORD
# (the app role's password, default flowexec_app; `flowexec migrate` sets it),
# CARGO_TARGET_DIR; any FLOWEXEC__* setting is passed on to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

database=${FLOWEXEC_PG_DATABASE:-flowexec}
password=${FLOWEXEC_PG_APP_PASSWORD:-flowexec_app}
[[ $database =~ ^[a-z_][a-z0-9_]*$ ]] || die "FLOWEXEC_PG_DATABASE must be a lower-case identifier (a-z, 0-9, _)"

ensure_build_deps
ensure_postgres
trap stop_throwaway_postgres EXIT
parse_pg_url "$PG_SUPERUSER_URL"
unset DATABASE_URL
# A password with characters a URL reserves is percent-encoded whole.
encoded=$password
[[ $password =~ ^[A-Za-z0-9._~-]+$ ]] || encoded=$(printf '%s' "$password" | od -An -tx1 | tr -d ' \n' | sed 's/../%&/g')
export FLOWEXEC__DATABASE__URL="postgres://flowexec_app:${encoded}@${PG_HOST}:${PG_PORT}/${database}"
export FLOWEXEC__DATABASE__ADMIN_URL="postgres://${PG_USERINFO}${PG_HOST}:${PG_PORT}/${database}"

log "building (release)"
cargo build --release --locked -p flowexec-server
bin="$(target_dir)/release/flowexec"
log "flowexec migrate (database ${database} on ${PG_HOST}:${PG_PORT})"
"$bin" migrate
cat >&2 <<TEXT
==> For admin commands in another terminal, use the same store:
    export FLOWEXEC__DATABASE__URL='${FLOWEXEC__DATABASE__URL}'
    export FLOWEXEC__DATABASE__ADMIN_URL='${FLOWEXEC__DATABASE__ADMIN_URL}'
    ${bin} org create my-org
TEXT
log "flowexec serve"
"$bin" serve "$@"
