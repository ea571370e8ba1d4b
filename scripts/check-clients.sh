#!/usr/bin/env bash
# Generates API clients from a running server's /openapi.json and proves
# they accept what the server accepts: a Python client (openapi-python-client,
# checked with mypy --strict) and TypeScript types (openapi-typescript,
# checked with tsc --strict), each then used against the server.
#
#   scripts/check-clients.sh http://127.0.0.1:8080 fx_…
#
# scripts/fuzz.sh calls it. The tools are pinned and installed under the
# target folder (pip, npm); nothing is installed globally.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

[ $# -eq 2 ] || die "usage: scripts/check-clients.sh BASE_URL API_KEY"
base=$1 key=$2
target=$(target_dir)
work="$target/clients"
rm -rf "$work" && mkdir -p "$work"
ensure_python_tools
curl -sf "$base/openapi.json" -o "$work/openapi.json" || die "cannot fetch $base/openapi.json"

log "Python client (openapi-python-client, mypy --strict)"
printf 'post_hooks: []\n' >"$work/py-config.yaml"
"$PY_TOOLS/openapi-python-client" generate --path "$work/openapi.json" --config "$work/py-config.yaml" \
  --output-path "$work/python" --overwrite >"$work/python-generate.log" 2>&1 ||
  die "openapi-python-client failed; see $work/python-generate.log"
cp scripts/clients/sample.py "$work/python/sample.py"
(cd "$work/python" && "$PY_TOOLS/mypy" --strict --no-incremental sample.py flowexec_client) ||
  die "mypy rejects the generated Python client or its use"
(cd "$work/python" && "$PY_TOOLS/python" sample.py "$base" "$key")

log "TypeScript types (openapi-typescript, tsc --strict)"
command -v npm >/dev/null 2>&1 || apt_install nodejs npm || die "npm is needed for the TypeScript check"
node_dir="$target/tools/node"
want="openapi-typescript@7.13.0 typescript@5.9.3 @types/node@20"
if [ ! -f "$node_dir/.installed" ] || [ "$(cat "$node_dir/.installed")" != "$want" ]; then
  mkdir -p "$node_dir"
  log "installing $want (npm, into $node_dir)"
  # shellcheck disable=SC2086
  (cd "$node_dir" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund $want) ||
    die "npm install failed"
  printf '%s' "$want" >"$node_dir/.installed"
fi
mkdir -p "$work/ts"
"$node_dir/node_modules/.bin/openapi-typescript" "$work/openapi.json" -o "$work/ts/api.d.ts" >/dev/null 2>&1 ||
  die "openapi-typescript failed"
cp scripts/clients/sample.ts "$work/ts/sample.ts"
(cd "$work/ts" && "$node_dir/node_modules/.bin/tsc" --strict --target es2022 --module commonjs \
  --typeRoots "$node_dir/node_modules/@types" --types node --outDir out sample.ts) ||
  die "tsc rejects the generated TypeScript types or their use"
node "$work/ts/out/sample.js" "$base" "$key"
