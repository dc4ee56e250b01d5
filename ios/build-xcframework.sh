#!/usr/bin/env bash
# Builds ios/CubeChatFFI.xcframework from the Rust static library for iOS devices and the
# simulators (arm64 + x86_64). Needs macOS with Xcode; elsewhere it says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -s)" != "Darwin" ] || ! command -v xcodebuild >/dev/null 2>&1; then
  echo "ios: needs macOS with Xcode (xcodebuild) to build the XCFramework; this machine is $(uname -s)." >&2
  echo "ios: the Swift sources are generated here with 'make swift'." >&2
  exit 2
fi
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
rustup target add "${targets[@]}"
for t in "${targets[@]}"; do cargo build --release -p cubechat-ffi --lib --target "$t"; done
# The Swift sources come from the host library built as shipped: without the test hooks.
cargo build -p cubechat-ffi --features bindgen --bin uniffi-bindgen
cargo build -p cubechat-ffi --lib
make swift-sources
headers=$(mktemp -d)
cp ios/Sources/CubeChatFFI/include/CubeChatFFI.h "$headers/"
cp ios/Sources/CubeChatFFI/include/module.modulemap "$headers/module.modulemap"
mkdir -p target/ios-sim
lipo -create target/aarch64-apple-ios-sim/release/libcubechat.a target/x86_64-apple-ios/release/libcubechat.a \
  -output target/ios-sim/libcubechat.a
rm -rf ios/CubeChatFFI.xcframework
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/release/libcubechat.a -headers "$headers" \
  -library target/ios-sim/libcubechat.a -headers "$headers" \
  -output ios/CubeChatFFI.xcframework
echo "ios: built ios/CubeChatFFI.xcframework"
