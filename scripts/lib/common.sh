# Shared by scripts/*.sh: build prerequisites and a reachable PostgreSQL.
# shellcheck shell=bash

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  log "installing $* (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The Rust toolchain and what the bundled libpq build needs (a C compiler,
# pkg-config and OpenSSL headers for TLS to PostgreSQL).
ensure_build_deps() {
  command -v cargo >/dev/null 2>&1 || die "cargo is not installed: install Rust from https://rustup.rs"
  local missing=()
  command -v cc >/dev/null 2>&1 || missing+=(gcc)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}" || die "missing build prerequisites: ${missing[*]} (install them with your package manager)"
  fi
}

# Where cargo puts its output (CARGO_TARGET_DIR when set).
target_dir() {
  printf '%s\n' "${CARGO_TARGET_DIR:-$(pwd)/target}"
}

# Pinned Python tools in a virtualenv under the target folder: the API
# fuzzer and the OpenAPI validator and client generator. Exports PY_TOOLS
# (the virtualenv's bin folder).
ensure_python_tools() {
  local venv
  venv="$(target_dir)/tools/venv"
  local want="schemathesis==4.32.5 openapi-spec-validator==0.9.0 openapi-python-client==0.29.1 mypy==2.4.1 python-dateutil==2.9.0.post0"
  if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$want" ]; then
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv || die "python3 is needed for the API fuzzer"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; } ||
      die "cannot create a Python virtualenv (install python3-venv)"
    log "installing $want (pip, into $venv)"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $want || die "pip install failed"
    printf '%s' "$want" >"$venv/.installed"
  fi
  export PY_TOOLS="$venv/bin"
}

pg_bin() {
  # A PostgreSQL server binary: on PATH, else the newest Debian install.
  local name=$1 found
  if found=$(command -v "$name" 2>/dev/null); then printf '%s\n' "$found"; return 0; fi
  found=$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1)
  [ -n "$found" ] && printf '%s\n' "$found"
}

# Splits a postgres:// URL into PG_USERINFO ("user[:password]@" or ""),
# PG_HOST and PG_PORT.
parse_pg_url() {
  local re='^postgres(ql)?://(([^@/]*)@)?(\[[^]]*\]|[^:/?]*)(:([0-9]+))?(/.*)?$'
  [[ $1 =~ $re ]] || die "not a postgres:// URL: $1"
  PG_USERINFO=${BASH_REMATCH[2]}
  PG_HOST=${BASH_REMATCH[4]:-localhost}
  PG_PORT=${BASH_REMATCH[6]:-5432}
}

pg_answers() {
  local host=$1 port=$2 ready
  if ready=$(pg_bin pg_isready); then
    "$ready" -q -h "$host" -p "$port" -t 3 && return 0
    return 1
  fi
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# Makes sure a PostgreSQL answers and exports PG_SUPERUSER_URL, a superuser
# URL to its `postgres` database. Uses DATABASE_URL when set, else
# localhost:5432; when neither answers and PostgreSQL's binaries exist,
# starts a throwaway cluster under target/flowexec-pg (port 55432).
ensure_postgres() {
  local url=${DATABASE_URL:-postgres://postgres@localhost:5432/postgres}
  parse_pg_url "$url"
  if pg_answers "$PG_HOST" "$PG_PORT"; then
    export PG_SUPERUSER_URL="postgres://${PG_USERINFO}${PG_HOST}:${PG_PORT}/postgres"
    log "PostgreSQL answers at ${PG_HOST}:${PG_PORT}"
    return 0
  fi
  [ -n "${DATABASE_URL:-}" ] && die "DATABASE_URL is set but no PostgreSQL answers at ${PG_HOST}:${PG_PORT}"

  local initdb pg_ctl dir port=55432
  initdb=$(pg_bin initdb) || true
  if [ -z "$initdb" ]; then
    apt_install postgresql >/dev/null 2>&1 || true
    initdb=$(pg_bin initdb) || true
  fi
  [ -n "$initdb" ] || die "no PostgreSQL answers at localhost:5432 and no PostgreSQL binaries are installed; install PostgreSQL (apt-get install -y postgresql) or set DATABASE_URL to a superuser URL"
  pg_ctl=$(dirname "$initdb")/pg_ctl
  dir="$(pwd)/target/flowexec-pg"
  local run=()
  if [ "$(id -u)" -eq 0 ]; then
    # PostgreSQL refuses to run as root: use its own account.
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
    run=(runuser -u postgres --)
  fi
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    log "starting a throwaway PostgreSQL cluster in target/flowexec-pg (port $port)"
    "${run[@]}" "$initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 ||
      die "initdb failed; see $dir/initdb.log"
  fi
  if ! pg_answers 127.0.0.1 "$port"; then
    "${run[@]}" "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null ||
      die "the throwaway PostgreSQL did not start; see $dir/server.log"
  fi
  export PG_SUPERUSER_URL="postgres://postgres@127.0.0.1:${port}/postgres"
  PG_THROWAWAY_STOP=("${run[@]}" "$pg_ctl" -D "$dir/data" -m fast -w stop)
  log "PostgreSQL answers at 127.0.0.1:${port} (throwaway cluster)"
}

# Makes sure PostgreSQL's server binaries (initdb, pg_ctl) are here, for
# the tests that run a cluster of their own (the database restart drill),
# and exports FLOWEXEC_PG_BIN, their folder.
ensure_pg_server_binaries() {
  local initdb
  initdb=$(pg_bin initdb) || true
  if [ -z "$initdb" ]; then
    log "installing PostgreSQL's server binaries (apt-get install -y postgresql)"
    apt_install postgresql >/dev/null 2>&1 || true
    initdb=$(pg_bin initdb) || true
  fi
  [ -n "$initdb" ] || die "PostgreSQL's server binaries (initdb, pg_ctl) are needed by the database restart test; install them (apt-get install -y postgresql)"
  FLOWEXEC_PG_BIN=$(dirname "$initdb")
  export FLOWEXEC_PG_BIN
}

# Stops the throwaway cluster if ensure_postgres started one.
stop_throwaway_postgres() {
  if [ ${#PG_THROWAWAY_STOP[@]} -gt 0 ]; then
    log "stopping the throwaway PostgreSQL cluster"
    "${PG_THROWAWAY_STOP[@]}" >/dev/null 2>&1 || true
  fi
}
PG_THROWAWAY_STOP=()

# Starts `$bin serve` on 127.0.0.1:$1, logging to $2, with the extra
# environment (NAME=value …) that follows, bootstrap off; sets SERVER_PID and
# waits for /readyz.
start_flowexec() {
  local port=$1 logfile=$2
  shift 2
  env FLOWEXEC__SERVER__BIND="127.0.0.1:$port" FLOWEXEC__LOG__LEVEL=warn FLOWEXEC__BOOTSTRAP__ENABLED=false \
    "$@" "$bin" serve >"$logfile" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server did not start; see $logfile"
    sleep 0.1
  done
  die "the server did not become ready; see $logfile"
}

# What a benchmark needs: the build tools, a PostgreSQL (PG_SUPERUSER_URL,
# PG_HOST, PG_PORT, PG_USERINFO; DATABASE_URL unset), psql (PSQL), and each
# tool named: pgbench (PGBENCH), wrk, sqlite3, python3.
bench_prologue() {
  ensure_build_deps
  ensure_postgres
  parse_pg_url "$PG_SUPERUSER_URL"
  unset DATABASE_URL
  PSQL=$(pg_bin psql) || die "psql is required (apt-get install -y postgresql-client)"
  local tool
  for tool in "$@"; do
    case $tool in
      pgbench) PGBENCH=$(pg_bin pgbench) || die "pgbench is required (apt-get install -y postgresql-contrib)" ;;
      *) command -v "$tool" >/dev/null 2>&1 || apt_install "$tool" || die "$tool is required (apt-get install -y $tool)" ;;
    esac
  done
}

# A field of the JSON on stdin, e.g. json_field '["api_key"]'.
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# CPU time (clock ticks) of one process, and of every PostgreSQL process.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
  local total=0 pid
  for pid in $(pgrep -x postgres 2>/dev/null); do total=$((total + $(ticks "$pid"))); done
  echo "$total"
}

# Stops the server start_flowexec started, if any.
stop_flowexec() {
  if [ -n "${SERVER_PID:-}" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
