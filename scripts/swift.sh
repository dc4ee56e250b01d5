#!/usr/bin/env bash
# Swift on Linux for cubechat: Swift 6.0.3 (Debian trixie's `swiftlang`) in a chroot kept outside
# the repository and reused, and the ios/ package built and tested inside it.
#
#   scripts/swift.sh install        the toolchain (idempotent; says why when it cannot)
#   scripts/swift.sh test [N]       swift test of ios/ in Swift 5 and Swift 6 language modes
#                                   (SWIFT_MODES), in a private mount+pid namespace, N-second
#                                   timeout; prints `swift: N passed, N failed`
#
# A `swift` already on PATH (e.g. a swift.org toolchain) is used directly instead of the chroot
# (CUBECHAT_SWIFT_CHROOT=1 forces the chroot). Each mode builds into ios/.build/swift<mode>,
# so warm runs only rebuild what changed. CUBECHAT_SKIP_SWIFT=1 skips the tests on purpose.
#
# The chroot lives in $CUBECHAT_SWIFT_ROOT (default /var/cache/cubechat-swift). Everything the
# run mounts lives in its own namespace: nothing stays mounted or running after it ends, also
# after a timeout. Needs root (CAP_SYS_ADMIN for unshare/chroot), debootstrap (installed through
# apt when missing) and ~3 GB free.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
CHROOT=${CUBECHAT_SWIFT_ROOT:-/var/cache/cubechat-swift}
SUITE=trixie
MIRROR=${CUBECHAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NEED_MB=3500

die() { echo "swift: $*" >&2; exit 1; }

have_toolchain() { [ -d "$CHROOT" ] && chroot "$CHROOT" test -x /usr/bin/swift 2>/dev/null; }

install() {
  if [ "$(id -u)" -ne 0 ]; then
    if [ -L "$CHROOT/usr/bin/swift" ]; then
      die "the Swift toolchain in $CHROOT runs in a private mount namespace (unshare + chroot), which needs root: run as root, or put a native swift (swift.org, 6.0+) on PATH"
    fi
    die "cannot install: the Swift toolchain is a Debian trixie chroot in $CHROOT, made with debootstrap, which needs root: run as root, or put a native swift (swift.org, 6.0+) on PATH"
  fi
  if have_toolchain; then return 0; fi
  local parent; parent=$(dirname "$CHROOT"); mkdir -p "$parent"
  # One installer at a time (two worktrees may run `make test-swift` together).
  exec 9>"$parent/cubechat-swift.lock"
  flock 9
  if have_toolchain; then return 0; fi
  local free_mb; free_mb=$(df -Pm "$parent" | awk 'NR==2 {print $4}')
  if [ "${free_mb:-0}" -lt "$NEED_MB" ]; then
    die "cannot install: ${free_mb} MB free under $parent, the chroot needs ~${NEED_MB} MB (set CUBECHAT_SWIFT_ROOT elsewhere)"
  fi
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "swift: installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; } \
      || die "cannot install debootstrap through apt-get"
  fi
  if [ ! -d "$CHROOT" ]; then
    echo "swift: debootstrap $SUITE into $CHROOT (~200 MB)"
    rm -rf "$CHROOT.partial"
    debootstrap --variant=minbase "$SUITE" "$CHROOT.partial" "$MIRROR" >"$parent/cubechat-swift-debootstrap.log" 2>&1 \
      || die "debootstrap failed (log: $parent/cubechat-swift-debootstrap.log)"
    mv "$CHROOT.partial" "$CHROOT"
  fi
  echo "swift: installing swiftlang into $CHROOT (~530 MB download)"
  # apt inside the chroot needs /proc and /dev; a private namespace drops them when it ends.
  unshare --mount --pid --fork --kill-child --propagation private sh -c '
    set -e
    mount -t proc proc "$1/proc"
    mount --rbind /dev "$1/dev"
    cp /etc/resolv.conf "$1/etc/resolv.conf"
    chroot "$1" sh -c "export DEBIAN_FRONTEND=noninteractive
      apt-get update -q && apt-get install -y -q --no-install-recommends swiftlang libc6-dev && apt-get clean"
  ' sh "$CHROOT" >"$parent/cubechat-swift-apt.log" 2>&1 \
    || die "apt-get install swiftlang failed in the chroot (log: $parent/cubechat-swift-apt.log)"
  have_toolchain || die "swiftlang installed but $CHROOT/usr/bin/swift is missing"
  echo "swift: toolchain ready in $CHROOT"
}

# The Swift block under "## Quick start" in ios/README.md equals the region the suite runs.
readme_matches_test() {
  python3 - "$ROOT_DIR" <<'PY'
import pathlib, sys, textwrap
root = pathlib.Path(sys.argv[1])
lines = (root / "ios/Tests/CubeChatTests/ReadmeTests.swift").read_text().splitlines()
start = next(n for n, l in enumerate(lines) if l.strip() == "// [guide:swift-quick-start]")
end = next(n for n, l in enumerate(lines) if n > start and l.strip() == "// [/guide]")
region = textwrap.dedent("\n".join(lines[start + 1:end])).strip("\n") + "\n"
readme = (root / "ios/README.md").read_text()
block = readme.split("## Quick start", 1)[1].split("```swift\n", 1)[1].split("```", 1)[0]
sys.exit(0 if block == region else 1)
PY
}

# Builds and tests ios/ in each language mode inside the chroot, in a private mount + pid
# namespace: /proc, /dev, a tmpfs /tmp and the repository (plus the library folder, when it
# is elsewhere) are mounted there only, and every process dies with the namespace, also when
# the timeout strikes. Prints one `swift: N passed, N failed` line.
run_tests() {
  local limit=${1:-1200}
  if [ -n "${CUBECHAT_SKIP_SWIFT:-}" ]; then echo "swift: skipped (CUBECHAT_SKIP_SWIFT is set)"; return 0; fi
  if [ "$(uname -s)" = Darwin ]; then
    die "on macOS the package links ios/CubeChatFFI.xcframework: run ios/build-xcframework.sh, then 'cd ios && swift test'"
  fi
  local native=
  if command -v swift >/dev/null 2>&1 && [ -z "${CUBECHAT_SWIFT_CHROOT:-}" ]; then native=1; else install; fi
  local libdir=${CUBECHAT_LIB_DIR:-$ROOT_DIR/target/debug}
  local server=${CUBESERVER_BIN:-$libdir/cubeserver}
  [ -f "$libdir/libcubechat.so" ] || die "no $libdir/libcubechat.so (run 'make build' first)"
  [ -x "$server" ] || die "no cubeserver at $server (run 'make build' first)"
  [ -f "$ROOT_DIR/ios/Sources/CubeChat/CubeChat.swift" ] || die "no generated Swift sources (run 'make swift' first)"
  readme_matches_test || die "the quick start of ios/README.md differs from the [guide:swift-quick-start] region of ios/Tests/CubeChatTests/ReadmeTests.swift"
  local log; log=$(mktemp)
  local rc=0
  if [ -n "$native" ]; then
    # A native toolchain: timeout signals its whole process group (servers included).
    echo "swift: using $(command -v swift)"
    CUBESERVER_BIN=$server CUBECHAT_LIB_DIR=$libdir MODES=${SWIFT_MODES:-"5 6"} \
      timeout -k 10 "$limit" bash "$0" inside 2>&1 | tee "$log" || rc=$?
  else
  CHROOT=$CHROOT ROOT_DIR=$ROOT_DIR LIBDIR=$libdir SERVER=$server MODES=${SWIFT_MODES:-"5 6"} \
  timeout -k 10 "$limit" unshare --mount --pid --fork --kill-child --propagation private sh -c '
    set -e
    mount -t proc proc "$CHROOT/proc"
    mount --rbind /dev "$CHROOT/dev"
    mount -t tmpfs tmpfs "$CHROOT/tmp"
    for d in "$ROOT_DIR" "$LIBDIR" "$(dirname "$SERVER")"; do
      case "$d" in "$ROOT_DIR"/*) continue ;; esac
      mkdir -p "$CHROOT$d" && mount --bind "$d" "$CHROOT$d"
    done
    exec chroot "$CHROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root TMPDIR=/tmp LANG=C.UTF-8 \
      CUBESERVER_BIN="$SERVER" CUBECHAT_LIB_DIR="$LIBDIR" MODES="$MODES" \
      bash "$ROOT_DIR/scripts/swift.sh" inside
  ' 2>&1 | tee "$log" || rc=$?
  fi
  # Per mode and in total, from Swift Testing's per-test lines ("✔ Test name() passed after …").
  awk '/^swift: Swift [0-9]+ language mode/ { m = $3; modes[m] = 1 }
       /^[^ ]+ Test [A-Za-z0-9_]+\(.*\) passed after/ { p[m]++ }
       /^[^ ]+ Test [A-Za-z0-9_]+\(.*\) failed after/ { f[m]++ }
       END { for (m in modes) printf "swift: Swift %s mode: %d passed, %d failed\n", m, p[m], f[m] }' "$log" | sort
  local passed failed
  passed=$(grep -cE '^[^ ]+ Test [A-Za-z0-9_]+\(.*\) passed after' "$log" || true)
  failed=$(grep -cE '^[^ ]+ Test [A-Za-z0-9_]+\(.*\) failed after' "$log" || true)
  local broken; broken=$(grep -c '^swift: mode .* exited with' "$log" || true)
  rm -f "$log"
  echo "swift: $passed passed, $failed failed"
  if [ "$rc" -ne 0 ]; then die "the run failed or timed out after ${limit}s (exit $rc)"; fi
  if [ "$broken" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then exit 1; fi
}

case "${1:-}" in
  install) install ;;
  test) shift; run_tests "$@" ;;
  inside) # in the chroot (run_tests calls it): one `swift test` per language mode
    cd "$ROOT_DIR/ios"
    for mode in $MODES; do
      echo "swift: Swift $mode language mode"
      swift test --disable-xctest --scratch-path ".build/swift$mode" -Xswiftc -swift-version -Xswiftc "$mode" \
        || echo "swift: mode $mode exited with $?"
    done ;;
  *) echo "usage: scripts/swift.sh install|test [timeout-seconds]" >&2; exit 2 ;;
esac
