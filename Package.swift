// swift-tools-version:6.0
// Tessera: a clustered iSCSI target. Module layout and import direction:
// ../shared/design/ARCHITECTURE.md ("Modules").
import PackageDescription

let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tesserad", targets: ["tesserad"]),
        .executable(name: "tessera", targets: ["tessera"]),
        // The modules Tools/fuzz builds its libFuzzer targets against.
        .library(name: "ISCSIWire", targets: ["ISCSIWire"]),
        .library(name: "ISCSISession", targets: ["ISCSISession"]),
        .library(name: "SCSIWire", targets: ["SCSIWire"]),
        .library(name: "SCSITarget", targets: ["SCSITarget"]),
        .library(name: "BlockStorage", targets: ["BlockStorage"]),
        .library(name: "MetadataStore", targets: ["MetadataStore"]),
        .library(name: "ClusterWire", targets: ["ClusterWire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
    ],
    targets: [
        // C shims ------------------------------------------------------------
        .target(name: "CCRC32C", path: "Sources/CCRC32C"),
        .systemLibrary(name: "CAIO", path: "Sources/CAIO", providers: [.apt(["libaio-dev"])]),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "CClusterAuth", path: "Sources/CClusterAuth", linkerSettings: [.linkedLibrary("crypto")]),

        // Pure protocol cores -----------------------------------------------
        .target(name: "ISCSIWire", dependencies: [
            "CCRC32C", .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .target(name: "ISCSISession", dependencies: [
            "ISCSIWire", "SCSIWire", "COpenSSL", .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .target(name: "SCSIWire"),
        .target(name: "BlockStorage"),
        .target(name: "SCSITarget", dependencies: ["SCSIWire", "BlockStorage", "TesseraMetrics"]),
        // Lock-free counters and latency histograms the data path records into, and their snapshots.
        .target(name: "TesseraMetrics"),

        // I/O shells ----------------------------------------------------------
        .target(name: "AIOBlockStorage", dependencies: [
            "BlockStorage", "CAIO", .product(name: "Logging", package: "swift-log"),
        ]),
        // Swift tasks and block-device completions on a connection's NIO event loop.
        .target(name: "EventLoopExecution", dependencies: [
            "BlockStorage", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "ISCSITargetServer", dependencies: [
            "ISCSIWire", "ISCSISession", "SCSIWire", "SCSITarget", "BlockStorage", "EventLoopExecution",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "TesseraNode", dependencies: [
            "ISCSITargetServer", "SCSITarget", "SCSIWire", "BlockStorage", "AIOBlockStorage", "ISCSISession",
            "MetadataStore", "ClusterModel", "AdminAPI", "DistributedLUN", "ClusterWire", "ClusterAuth", "TesseraMetrics",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        .executableTarget(name: "tesserad", dependencies: [
            "TesseraNode",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "TesseraCLI", dependencies: [
            "AdminAPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "TOMLKit", package: "TOMLKit"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .executableTarget(name: "tessera", dependencies: ["TesseraCLI"]),

        // Tests ---------------------------------------------------------------
        .target(name: "TesseraTestKit", dependencies: ["BlockStorage", "ClusterModel", "DistributedLUN", "SCSITarget", "SCSIWire"], path: "Tests/TesseraTestKit"),
        .testTarget(name: "ISCSIWireTests", dependencies: [
            "ISCSIWire", "CCRC32C",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .testTarget(name: "ISCSISessionTests", dependencies: [
            "ISCSISession", "ISCSIWire", "SCSIWire", .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "SCSITargetTests", dependencies: [
            "SCSIWire", "SCSITarget", "BlockStorage", "TesseraTestKit", "TesseraMetrics",
        ]),
        .testTarget(name: "BlockStorageTests", dependencies: [
            "BlockStorage", "AIOBlockStorage", "TesseraTestKit", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ISCSITargetServerTests", dependencies: [
            "ISCSITargetServer", "ISCSIWire", "ISCSISession", "SCSITarget", "BlockStorage", "TesseraTestKit", "EventLoopExecution",
            "AIOBlockStorage", .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "AdminAPITests", dependencies: ["AdminAPI", "TesseraMetrics"]),
        .testTarget(name: "TesseraCLITests", dependencies: [
            "TesseraCLI", "AdminAPI", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "TesseraNodeTests", dependencies: [
            "TesseraNode", "SCSITarget", "SCSIWire", "BlockStorage", "AIOBlockStorage", "MetadataStore", "ClusterModel", "AdminAPI", "TesseraTestKit", .product(name: "Logging", package: "swift-log"),
        ]),

        // Metadata store (dqlite) -------------------------------------------
        .systemLibrary(name: "CDqlite", path: "Sources/CDqlite", pkgConfig: "dqlite", providers: [.apt(["libdqlite-dev"])]),
        .target(name: "CDqliteShim", dependencies: ["CDqlite", "CClusterAuth"], path: "Sources/CDqliteShim"),
        .target(name: "ClusterModel", dependencies: ["BlockStorage"]),
        .target(name: "MetadataStore", dependencies: [
            "ClusterModel", "ClusterAuth", "CDqlite", "CDqliteShim", "TesseraMetrics",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "tessera-store-bench", dependencies: [
            "MetadataStore", "ClusterModel", "ClusterAuth",
        ]),
        .testTarget(name: "MetadataStoreTests", dependencies: [
            "MetadataStore", "ClusterModel", "ClusterAuth",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),

        // Distributed LUN: the data path over sub-units, and the peer port ---
        .target(name: "DistributedLUN", dependencies: [
            "BlockStorage", "ClusterModel", "SCSITarget",
        ]),
        .target(name: "ClusterWire", dependencies: [
            "ClusterModel", "ClusterAuth", "BlockStorage", "EventLoopExecution",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Cluster authentication: the handshake every store and peer connection opens with.
        .target(name: "ClusterAuth", dependencies: [
            "CClusterAuth",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ClusterAuthTests", dependencies: [
            "ClusterAuth", "CClusterAuth",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ClusterModelTests", dependencies: ["ClusterModel", "BlockStorage"]),
        .testTarget(name: "DistributedLUNTests", dependencies: [
            "DistributedLUN", "ClusterModel", "BlockStorage", "TesseraTestKit", "SCSITarget", "SCSIWire",
        ]),
        .testTarget(name: "ClusterWireTests", dependencies: [
            "ClusterWire", "ClusterModel", "ClusterAuth", "BlockStorage", "EventLoopExecution",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),

        // Admin HTTP endpoint (health, metrics) --------------------------------
        .target(name: "AdminAPI", dependencies: [
            "ISCSISession", "TesseraMetrics",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)

// The test code and its kit compile unoptimised even in a release build: the
// test command builds once, in release, so that every stage runs the daemons
// as they are deployed; optimising the tests themselves buys only compile time.
for target in package.targets where target.type == .test || target.name == "TesseraTestKit" {
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-Onone"])]
}

// The data path's modules run their nonisolated async functions on the
// caller's executor (SE-0461, nonisolated(nonsending)) instead of hopping to
// the generic executor at every entry: a command's task runs on its
// connection's event loop, and each such hop was a swift_task_switch that
// locks the task's executor-preference record.
let callerExecutorModules: Set<String> = [
    "BlockStorage", "SCSITarget", "DistributedLUN", "ISCSITargetServer", "AIOBlockStorage", "EventLoopExecution",
]
for target in package.targets where callerExecutorModules.contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
}
