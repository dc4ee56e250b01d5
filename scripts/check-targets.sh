#!/usr/bin/env bash
# Portability check: `cargo check` of the FFI library (engine included) for Android and iOS
# on this Linux machine, with no NDK or Xcode. ring's build script compiles a little C for the
# target, so it gets Debian's clang plus the freestanding header shims in scripts/cross-shim/;
# the bundled SQLite's C is left out (see below).
# Linking (the real .so / .a for devices) is done by android/build-aar.sh and
# ios/build-xcframework.sh where those toolchains exist.
set -euo pipefail
cd "$(dirname "$0")/.."
shim=$PWD/scripts/cross-shim
ar=$(command -v llvm-ar || ls /usr/bin/llvm-ar-* 2>/dev/null | sort -V | tail -1)
[ -n "$ar" ] || { echo "check-targets: llvm-ar not found (apt-get install clang)" >&2; exit 1; }
fake_sdk=$(mktemp -d)
trap 'rm -rf "$fake_sdk"' EXIT
for t in "$@"; do
  case "$t" in
    aarch64-linux-android) clang_target=aarch64-linux-android21 ;;
    aarch64-apple-ios) clang_target=arm64-apple-ios13.0 ;;
    *) echo "check-targets: no recipe for $t" >&2; exit 1 ;;
  esac
  v=${t//-/_}
  # LIBSQLITE3_SYS_USE_PKG_CONFIG=1: libsqlite3-sys (rusqlite's `bundled` SQLite) skips
  # compiling sqlite3.c, which needs a real libc's headers, and takes the same pregenerated
  # bindings as the bundled build, so every Rust crate is still checked for the target.
  # Only a check: nothing links here. android/build-aar.sh (cargo-ndk) and
  # ios/build-xcframework.sh (Xcode) compile the bundled SQLite into the device libraries.
  env LIBSQLITE3_SYS_USE_PKG_CONFIG=1 "CC_$v=clang" "AR_$v=$ar" "CFLAGS_$v=--target=$clang_target -ffreestanding -isystem $shim" \
      SDKROOT="$fake_sdk" cargo check -q -p cubechat-ffi --lib --target "$t"
  echo "check-targets: $t ok"
done
