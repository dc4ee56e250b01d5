// swift-tools-version:5.9
// The CubeChat Swift package: the generated bindings (`make swift` writes
// Sources/CubeChat/CubeChat.swift and Sources/CubeChatFFI/include/) plus a thin hand-written
// layer (AsyncStreams, async transfers, an iOS lifecycle helper) over the Rust engine.
//
// Apple platforms link the engine as `CubeChatFFI.xcframework` (built by
// `ios/build-xcframework.sh` on a Mac; a release points `binaryTarget(url:checksum:)` at the
// zipped framework instead, see ios/README.md). Linux builds a C module over the generated
// header and module map and links `libcubechat.so` from `CUBECHAT_LIB_DIR` (default
// `../target/debug`, what `make build` produces), which is how `make test-swift` runs.
import PackageDescription

#if os(Linux)
import Foundation

/// The directory holding libcubechat.so.
let libDir: String = {
    if let dir = ProcessInfo.processInfo.environment["CUBECHAT_LIB_DIR"], !dir.isEmpty { return dir }
    let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    return here.appendingPathComponent("../target/debug").standardizedFileURL.path
}()

let ffi: Target = .target(name: "CubeChatFFI", path: "Sources/CubeChatFFI")
let ffiLink: [LinkerSetting] = [
    .linkedLibrary("cubechat"),
    .unsafeFlags(["-L\(libDir)", "-Xlinker", "-rpath", "-Xlinker", libDir]),
]
#else
let ffi: Target = .binaryTarget(name: "CubeChatFFI", path: "CubeChatFFI.xcframework")
let ffiLink: [LinkerSetting] = []
#endif

let package = Package(
    name: "CubeChat",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "CubeChat", targets: ["CubeChat"]),
    ],
    targets: [
        ffi,
        .target(
            name: "CubeChat",
            dependencies: ["CubeChatFFI"],
            path: "Sources/CubeChat",
            linkerSettings: ffiLink
        ),
        .testTarget(name: "CubeChatTests", dependencies: ["CubeChat"], path: "Tests/CubeChatTests"),
    ]
)
