#!/usr/bin/env bash
# Install the peer client libraries outside the repo:
#   $BENCH_WORK/venv   (slixmpp)   $BENCH_WORK/node   (@xmpp/client)
# Idempotent; prints one JSON line with the install timings.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${BENCH_WORK:=/tmp/cubechat-bench}"
mkdir -p "$BENCH_WORK"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

t=$(now)
if [ ! -x "$BENCH_WORK/venv/bin/python" ]; then python3 -m venv "$BENCH_WORK/venv"; fi
if ! cmp -s "$here/requirements.txt" "$BENCH_WORK/venv/.bench-requirements" 2>/dev/null; then
    "$BENCH_WORK/venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$BENCH_WORK/venv/.bench-requirements"
fi
t_py=$(since "$t")

t=$(now)
mkdir -p "$BENCH_WORK/node"
if ! cmp -s "$here/node/package.json" "$BENCH_WORK/node/package.json" 2>/dev/null \
   || [ ! -d "$BENCH_WORK/node/node_modules/@xmpp/client" ]; then
    cp "$here/node/package.json" "$BENCH_WORK/node/package.json"
    (cd "$BENCH_WORK/node" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
t_node=$(since "$t")
echo "{\"python_peers_s\":$t_py,\"node_peers_s\":$t_node}"
