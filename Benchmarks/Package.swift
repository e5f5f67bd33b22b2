// swift-tools-version: 6.0
// The benchmark harness: echo servers built on our peers (SwiftNIO, FlyingSocks), with the same command line as
// Sockets' own echo-server, measured side by side by ../../shared/bench/compare. See README.md and `./run`.
import PackageDescription

let package = Package(
    name: "SocketsBenchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "nio-classic-echo", targets: ["NIOClassicEcho"]),
        .executable(name: "nio-async-echo", targets: ["NIOAsyncEcho"]),
        .executable(name: "flyingsocks-echo", targets: ["FlyingSocksEcho"]),
        .executable(name: "connect-race", targets: ["ConnectRace"]),
        .executable(name: "sequence-bench", targets: ["SequenceBench"]),
        .executable(name: "readme-echo", targets: ["ReadmeEcho"]),
        .executable(name: "idle-breakdown", targets: ["IdleBreakdown"]),
    ],
    dependencies: [
        .package(name: "Sockets", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/swhitty/FlyingFox.git", from: "0.27.1"),
    ],
    targets: [
        // The command line every server shares: --port, --host, the listening line, SIGTERM/SIGINT → exit 0.
        .target(
            name: "BenchSupport",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "NIOClassicEcho",
            dependencies: [
                "BenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "NIOAsyncEcho",
            dependencies: [
                "BenchSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "FlyingSocksEcho",
            dependencies: [
                "BenchSupport",
                .product(name: "FlyingSocks", package: "FlyingFox"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Connect latency to a name with a dead and a live address: Sockets beside NIO's ClientBootstrap.
        .executableTarget(
            name: "ConnectRace",
            dependencies: [
                "BenchSupport",
                .product(name: "Sockets", package: "Sockets"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // What iterating `bytes` and `lines` costs beside read(upTo:) and readLine(); an unflushed request.
        .executableTarget(
            name: "SequenceBench",
            dependencies: [.product(name: "Sockets", package: "Sockets")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The echo server as the README teaches it: measured beside the tuned echo-server.
        .executableTarget(
            name: "ReadmeEcho",
            dependencies: ["BenchSupport", .product(name: "Sockets", package: "Sockets")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // What an idle connection costs, part by part (Benchmarks/RESULTS.md, "Idle memory").
        .executableTarget(
            name: "IdleBreakdown",
            dependencies: [.product(name: "Sockets", package: "Sockets")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
