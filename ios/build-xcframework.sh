#!/usr/bin/env bash
# Builds ios/CubeChatFFI.xcframework from the Rust static library: iOS devices (arm64), the iOS
# simulators (arm64 + x86_64) and macOS (arm64 + x86_64, the package declares macOS 12), and
# the Swift sources for it (`make swift-sources`). Needs macOS with Xcode; elsewhere it says
# what is missing. The shipped library has no test hooks; to run `swift test` on a Mac, build
# it with them: CUBECHAT_FFI_FEATURES=test-hooks ios/build-xcframework.sh
# Release: ios/README.md ("Releasing") zips the framework for `binaryTarget(url:checksum:)`.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -s)" != "Darwin" ] || ! command -v xcodebuild >/dev/null 2>&1; then
  echo "ios: needs macOS with Xcode (xcodebuild) to build the XCFramework; this machine is $(uname -s)." >&2
  echo "ios: the Swift sources are generated here with 'make swift'; 'make test-swift' builds and tests the package on Linux." >&2
  exit 2
fi
features=()
if [ -n "${CUBECHAT_FFI_FEATURES:-}" ]; then features=(--features "$CUBECHAT_FFI_FEATURES"); fi
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
for t in "${targets[@]}"; do cargo build --release -p cubechat-ffi --lib --target "$t" "${features[@]}"; done
# The Swift sources come from the host library built the same way (by default without the
# test hooks, as shipped).
cargo build -p cubechat-ffi --features bindgen --bin uniffi-bindgen
cargo build -p cubechat-ffi --lib "${features[@]}"
make swift-sources LIB="$PWD/target/debug/libcubechat.dylib"
headers=$(mktemp -d)
cp ios/Sources/CubeChatFFI/include/CubeChatFFI.h "$headers/"
cp ios/Sources/CubeChatFFI/include/module.modulemap "$headers/module.modulemap"
mkdir -p target/ios-sim target/macos
lipo -create target/aarch64-apple-ios-sim/release/libcubechat.a target/x86_64-apple-ios/release/libcubechat.a \
  -output target/ios-sim/libcubechat.a
lipo -create target/aarch64-apple-darwin/release/libcubechat.a target/x86_64-apple-darwin/release/libcubechat.a \
  -output target/macos/libcubechat.a
rm -rf ios/CubeChatFFI.xcframework
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/release/libcubechat.a -headers "$headers" \
  -library target/ios-sim/libcubechat.a -headers "$headers" \
  -library target/macos/libcubechat.a -headers "$headers" \
  -output ios/CubeChatFFI.xcframework
echo "ios: built ios/CubeChatFFI.xcframework (iOS device, iOS simulator, macOS)"
