#!/usr/bin/env bash
# Builds android/build/outputs/aar/*.aar: the Rust library for arm64-v8a, armeabi-v7a,
# x86_64 and x86 (cargo-ndk), the Kotlin bindings generated with the `android` option on,
# and Gradle's AAR packaging. Needs ANDROID_NDK_HOME, an Android SDK (ANDROID_HOME) and
# Gradle; where any is missing it says exactly which and exits 2.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
[ -n "${ANDROID_NDK_HOME:-}" ] && [ -d "${ANDROID_NDK_HOME:-/nonexistent}" ] || missing+=("Android NDK (set ANDROID_NDK_HOME)")
[ -n "${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}" ] || missing+=("Android SDK (set ANDROID_HOME)")
command -v gradle >/dev/null 2>&1 || missing+=("Gradle (gradle on PATH)")
if [ ${#missing[@]} -gt 0 ]; then
  echo "android: cannot build the AAR here; missing: ${missing[*]}." >&2
  echo "android: 'make test' still cargo-checks the engine for aarch64-linux-android." >&2
  exit 2
fi
command -v cargo-ndk >/dev/null 2>&1 || cargo install cargo-ndk --locked
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -t x86 -o android/src/main/jniLibs \
  build --release -p cubechat-ffi --lib
# Bindings come from the unstripped host library (a stripped one has no UniFFI metadata).
cargo build -p cubechat-ffi --features bindgen --bin uniffi-bindgen
cargo build -p cubechat-ffi --lib
# Turn the Kotlin `android` option on for this generation only (JVM tests keep it off).
trap 'ln -sfn ../uniffi.toml bindings/uniffi.toml' EXIT
rm bindings/uniffi.toml
sed 's/^omit_checksums = true/omit_checksums = true\nandroid = true/' uniffi.toml > bindings/uniffi.toml
mkdir -p android/src/main/kotlin
target/debug/uniffi-bindgen generate target/debug/libcubechat.so --language kotlin --no-format \
  --out-dir android/src/main/kotlin
(cd android && gradle --no-daemon assembleRelease)
ls android/build/outputs/aar/
