#!/usr/bin/env bash
# Builds the cubechat AAR and publishes it with its POM to android/build/repo (a local Maven
# repository): the release Rust library for arm64-v8a, armeabi-v7a, x86_64 and x86
# (cargo-ndk, the pinned NDK, linked for 16 KB pages and checked), the Kotlin bindings
# generated with uniffi's `android` option on, the hand-written layer, and Gradle's
# packaging. Everything it needs is checked first; when anything is missing it lists
# exactly what and exits 2 without building. `android/build-aar.sh --check` only checks.
#
# Needs: the Android NDK 27.2.12479018 (r27c; ANDROID_NDK_HOME, or ANDROID_HOME/ndk/<that
# version>), an Android SDK (ANDROID_HOME) with platforms;android-35, Gradle >= 8.9 on PATH,
# a JDK >= 17, network access to Google Maven and Maven Central (Gradle fetches the Android
# Gradle plugin, kotlinx-coroutines, JNA, androidx), and rustup (the four Android targets).
set -euo pipefail
cd "$(dirname "$0")/.."

NDK_VERSION=27.2.12479018           # keep equal to ndkVersion in android/build.gradle.kts
SDK_PLATFORM=android-35             # compileSdk
GRADLE_MIN=8.9                      # what Android Gradle plugin 8.7 requires
PAGE=16384                          # Google Play: 16 KB page alignment of native libraries
ABIS=(arm64-v8a armeabi-v7a x86_64 x86)
TRIPLES=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android)

missing=()
sdk=${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}
ndk=${ANDROID_NDK_HOME:-}
[ -z "$ndk" ] && [ -n "$sdk" ] && ndk="$sdk/ndk/$NDK_VERSION"
if [ -z "$ndk" ] || [ ! -f "$ndk/source.properties" ]; then
  missing+=("Android NDK $NDK_VERSION (set ANDROID_NDK_HOME, or install it as ANDROID_HOME/ndk/$NDK_VERSION: sdkmanager 'ndk;$NDK_VERSION')")
else
  found=$(sed -n 's/^Pkg.Revision *= *//p' "$ndk/source.properties" | tr -d '[:space:]')
  [ "$found" = "$NDK_VERSION" ] || missing+=("Android NDK $NDK_VERSION (ANDROID_NDK_HOME=$ndk is $found)")
fi
if [ -z "$sdk" ]; then
  missing+=("Android SDK (set ANDROID_HOME)")
elif [ ! -d "$sdk/platforms/$SDK_PLATFORM" ]; then
  missing+=("Android SDK platform $SDK_PLATFORM (sdkmanager 'platforms;$SDK_PLATFORM' in ANDROID_HOME=$sdk)")
fi
if ! command -v gradle >/dev/null 2>&1; then
  missing+=("Gradle >= $GRADLE_MIN (gradle on PATH)")
else
  gv=$(gradle --version 2>/dev/null | sed -n 's/^Gradle //p' | head -1)
  [ "$(printf '%s\n%s\n' "$GRADLE_MIN" "$gv" | sort -V | head -1)" = "$GRADLE_MIN" ] \
    || missing+=("Gradle >= $GRADLE_MIN (found ${gv:-unknown})")
fi
jv=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "${jv:-0}" -ge 17 ] 2>/dev/null || missing+=("JDK >= 17 (java on PATH is ${jv:-absent})")
for url in https://dl.google.com/dl/android/maven2/com/android/tools/build/gradle/8.7.3/gradle-8.7.3.pom \
           https://repo.maven.apache.org/maven2/net/java/dev/jna/jna/5.14.0/jna-5.14.0.pom; do
  curl -fsS -m 15 -o /dev/null "$url" 2>/dev/null || missing+=("network access to $(cut -d/ -f3 <<<"$url") (Gradle downloads from it)")
done
command -v rustup >/dev/null 2>&1 || missing+=("rustup (for the Android Rust targets)")

if [ ${#missing[@]} -gt 0 ]; then
  echo "android: cannot build the AAR here; missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "android: 'make test' still cargo-checks the engine for aarch64-linux-android and builds" >&2
  echo "android: the same Kotlin layer for the JVM ('make kotlin', 'make jar')." >&2
  exit 2
fi
if [ "${1:-}" = "--check" ]; then echo "android: everything the AAR build needs is here"; exit 0; fi
export ANDROID_NDK_HOME=$ndk

command -v cargo-ndk >/dev/null 2>&1 || cargo install cargo-ndk --locked
rustup target add "${TRIPLES[@]}"
# 16 KB pages: NDK r27 still links with 4 KB max-page-size by default.
for t in "${TRIPLES[@]}"; do
  v=CARGO_TARGET_$(tr 'a-z-' 'A-Z_' <<<"$t")_RUSTFLAGS
  export "$v=${!v:-} -C link-arg=-Wl,-z,max-page-size=$PAGE"
done
abi_flags=(); for a in "${ABIS[@]}"; do abi_flags+=(-t "$a"); done
# Shipped library: release profile, no test hooks.
cargo ndk "${abi_flags[@]}" -o android/src/main/jniLibs build --release -p cubechat-ffi --lib
readelf="$ndk/toolchains/llvm/prebuilt/linux-x86_64/bin/llvm-readelf"
for a in "${ABIS[@]}"; do
  so=android/src/main/jniLibs/$a/libcubechat.so
  bad=""
  while read -r align; do
    [ $((align)) -ge $PAGE ] || bad+=" $align"
  done < <("$readelf" -lW "$so" | awk '$1=="LOAD" {print $NF}')
  [ -z "$bad" ] || { echo "android: $so has LOAD segments aligned to $bad, not $PAGE" >&2; exit 1; }
  echo "android: $a: $(stat -c %s "$so") bytes, LOAD segments aligned to >= $PAGE"
done

# Bindings come from the host release library (its symbols, and so its UniFFI metadata, are
# kept: the release profile strips debug info only); same features as the shipped library.
cargo build -p cubechat-ffi --features bindgen --bin uniffi-bindgen
cargo rustc --release -p cubechat-ffi --lib --crate-type cdylib
target_dir=${CARGO_TARGET_DIR:-target}
# Turn the Kotlin `android` option on for this generation only (JVM tests keep it off).
trap 'ln -sfn ../uniffi.toml bindings/uniffi.toml' EXIT
rm bindings/uniffi.toml
sed 's/^omit_checksums = true/omit_checksums = true\nandroid = true/' uniffi.toml > bindings/uniffi.toml
mkdir -p android/src/main/kotlin
"$target_dir/debug/uniffi-bindgen" generate "$target_dir/release/libcubechat.so" --language kotlin --no-format \
  --out-dir android/src/main/kotlin
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
(cd android && gradle --no-daemon -PcubechatVersion="$version" assembleRelease publishReleasePublicationToLocalRepository)
ls -l android/build/outputs/aar/
pom=android/build/repo/io/cubechat/cubechat-android/$version/cubechat-android-$version.pom
echo "android: published to android/build/repo; POM dependencies:"
sed -n '/<dependencies>/,/<\/dependencies>/p' "$pom"
