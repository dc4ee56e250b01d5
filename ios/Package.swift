// swift-tools-version:5.9
// The CubeChat Swift package: generated Swift sources (`make swift`) over the Rust engine,
// linked as an XCFramework built by `ios/build-xcframework.sh` on macOS.
import PackageDescription

let package = Package(
    name: "CubeChat",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "CubeChat", targets: ["CubeChat"]),
    ],
    targets: [
        .binaryTarget(name: "CubeChatFFI", path: "CubeChatFFI.xcframework"),
        .target(
            name: "CubeChat",
            dependencies: ["CubeChatFFI"],
            path: "Sources/CubeChat"
        ),
        .testTarget(name: "CubeChatTests", dependencies: ["CubeChat"], path: "Tests/CubeChatTests"),
    ]
)
