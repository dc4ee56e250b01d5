#!/usr/bin/env bash
# Runs the Kotlin example against a fresh cubeserver (CUBESERVER_BIN) on free local ports.
# Usage: examples/kotlin/run.sh EXAMPLE_CLASSES JAR RUNTIME_CLASSPATH
# The library is loaded from the jar only (no jna.library.path); JNA's load log proves it.
set -euo pipefail
classes=$1 jar=$2 cp=$3
: "${CUBESERVER_BIN:?CUBESERVER_BIN is not set}"
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkfifo "$work/ready"
"$CUBESERVER_BIN" --api-port 0 --db :memory: --cert-dir "$work/certs" --app 7:key-7:secret-7 \
  >"$work/ready" 2>"$work/server.log" &
server=$!
exec 3<"$work/ready"
read -r -t 20 line <&3 || { echo "example: cubeserver printed no ready line" >&2; exit 1; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$line" "$1"; }
export CUBECHAT_APP_ID=7 CUBECHAT_AUTH_KEY=key-7 CUBECHAT_AUTH_SECRET=secret-7
CUBECHAT_API_URL=$(field api_url); CUBECHAT_CHAT_HOST=127.0.0.1
CUBECHAT_CHAT_DOMAIN=$(field chat_domain); CUBECHAT_CHAT_PORT=$(field xmpp_port)
CUBECHAT_CA_PEM=$(field ca_cert)
export CUBECHAT_API_URL CUBECHAT_CHAT_HOST CUBECHAT_CHAT_DOMAIN CUBECHAT_CHAT_PORT CUBECHAT_CA_PEM
# Drain the server's stdout so it never blocks on a full pipe.
cat <&3 >/dev/null &
java -Djna.debug_load=true -cp "$classes:$jar:$cp" io.cubechat.examples.ChatExampleKt 2>"$work/jna.log"
grep -q "libcubechat.so" "$work/jna.log" && grep -E "Found library resource|Extract" "$work/jna.log" | grep -q "linux-x86-64/libcubechat.so" \
  || { echo "example: libcubechat.so was not loaded from the jar:" >&2; cat "$work/jna.log" >&2; exit 1; }
echo "example: libcubechat.so loaded from $(basename "$jar") (linux-x86-64/libcubechat.so)"
