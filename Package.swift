// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Sockets",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Sockets", targets: ["Sockets"]),
        .executable(name: "echo-server", targets: ["EchoServer"]),
        .executable(name: "chicken-server", targets: ["ChickenServer"]),
        .executable(name: "chicken-client", targets: ["ChickenClient"]),
        .executable(name: "udp-bridge", targets: ["UDPBridge"]),
    ],
    targets: [
        // System calls that Swift's Glibc module does not expose (accept4, epoll, recvmmsg/sendmmsg).
        // A C target inside this package: not a package dependency.
        .target(name: "CSockets"),
        .target(
            name: "Sockets",
            dependencies: ["CSockets"],
            swiftSettings: [
                .swiftLanguageMode(.v6),
                // The platforms with a readiness backend (Readiness/) and a system layer (System/): epoll on
                // Linux. Elsewhere the build stops at the one #error in Sources/Sockets/Platform.swift.
                .define("SOCKETS_PLATFORM_SUPPORTED", .when(platforms: [.linux])),
            ]
        ),
        .executableTarget(
            name: "EchoServer",
            dependencies: ["Sockets"],
            path: "Examples/EchoServer",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "ChickenServer",
            dependencies: ["Sockets"],
            path: "Examples/ChickenServer",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "ChickenClient",
            dependencies: ["Sockets"],
            path: "Examples/ChickenClient",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "UDPBridge",
            dependencies: ["Sockets"],
            path: "Examples/UDPBridge",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "SocketsTests",
            dependencies: ["Sockets"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
