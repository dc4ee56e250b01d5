#!/usr/bin/env bash
# Installs everything `make test` and `make demo` need, idempotently:
#   apt: JNA + JUnit 5 (Kotlin tests); pip (in .venv): maturin, pytest, pytest-asyncio, mypy,
#   wheel; `wheel` (only for `make wheel`, not part of the default): ziglang, auditwheel;
#   npm (in .tools): the Kotlin compiler; npm (tests/interop): the official ConnectyCube JS SDK;
#   rustup + apt clang: the Android and iOS targets used for the portability check;
#   apt: ejabberd (the reference XMPP server of the engine's XMPP tests).
# Usage: scripts/setup.sh [python] [kotlin] [interop] [targets] [ejabberd] [wheel]
#   (no argument = all but wheel)
set -euo pipefail
cd "$(dirname "$0")/.."
parts=("$@"); [ ${#parts[@]} -eq 0 ] && parts=(python kotlin interop targets ejabberd)
has() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

log() { echo "setup: $*" >&2; }

if has python; then
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv"; python3 -m venv .venv
  fi
  if ! .venv/bin/python -c 'import maturin, pytest, pytest_asyncio, mypy, wheel' 2>/dev/null \
     || ! .venv/bin/maturin --version >/dev/null 2>&1; then
    log "installing Python tools"
    .venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt
  fi
fi

if has wheel; then
  if ! .venv/bin/python -c 'import ziglang, auditwheel' 2>/dev/null; then
    log "installing the wheel tools (zig, auditwheel)"
    .venv/bin/pip install -q --disable-pip-version-check -r bindings/requirements-wheel.txt
  fi
fi

if has kotlin; then
  need_apt=()
  [ -f /usr/share/java/jna.jar ] || need_apt+=(libjna-java)
  dpkg -s libjna-jni >/dev/null 2>&1 || need_apt+=(libjna-jni)
  [ -f /usr/share/java/junit-platform-console-standalone.jar ] || need_apt+=(junit5)
  if [ ${#need_apt[@]} -gt 0 ]; then
    log "apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
  KOTLINC_VERSION=2.4.20
  if [ ! -x .tools/node_modules/kotlin-compiler/bin/kotlinc ]; then
    log "npm install kotlin-compiler@$KOTLINC_VERSION"
    mkdir -p .tools
    npm install --silent --no-audit --no-fund --prefix .tools "kotlin-compiler@$KOTLINC_VERSION" >/dev/null
  fi
fi

if has interop; then
  if [ ! -f tests/interop/node_modules/connectycube/package.json ]; then
    log "npm install (tests/interop)"
    (cd tests/interop && npm install --silent --no-audit --no-fund >/dev/null)
  fi
fi

if has targets; then
  if ! command -v clang >/dev/null 2>&1; then
    log "apt-get install clang (C for ring when checking mobile targets)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends clang >/dev/null
  fi
  installed=$(rustup target list --installed)
  for t in aarch64-linux-android aarch64-apple-ios; do
    grep -qx "$t" <<<"$installed" || { log "rustup target add $t"; rustup target add "$t" >/dev/null; }
  done
fi
if has ejabberd; then
  if [ ! -x /usr/sbin/ejabberdctl ] || ! compgen -G '/usr/lib/erlang/lib/p1_sqlite3-*' >/dev/null; then
    log "apt-get install ejabberd (never started as a system service)"
    scripts/ejabberd.sh install >/dev/null
  fi
fi
log "ok"
