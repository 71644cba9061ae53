// swift-tools-version:6.0
// libFuzzer targets for Tessera's decoders and state machines. Each
// executable holds only the `LLVMFuzzerTestOneInput` shim; the entry points
// it calls live in the modules they exercise (`…Fuzzing.swift`), so unit
// tests can replay a crash through the same code. Build and run with
// Tools/fuzz/run.sh (it passes -sanitize=fuzzer,address).
import PackageDescription

let package = Package(
    name: "TesseraFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Tessera", path: "../.."),
    ],
    targets: [
        .target(name: "CFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzer"]),
        .executableTarget(name: "fuzz-iscsi-pdu", dependencies: [
            "FuzzSupport",
            .product(name: "ISCSIWire", package: "Tessera"),
            .product(name: "ISCSISession", package: "Tessera"),
        ]),
        .executableTarget(name: "fuzz-login", dependencies: [
            "FuzzSupport",
            .product(name: "ISCSISession", package: "Tessera"),
        ]),
        .executableTarget(name: "fuzz-scsi", dependencies: [
            "FuzzSupport",
            .product(name: "SCSITarget", package: "Tessera"),
        ]),
        .executableTarget(name: "fuzz-dqlite-wire", dependencies: [
            "FuzzSupport",
            .product(name: "MetadataStore", package: "Tessera"),
        ]),
        .executableTarget(name: "fuzz-peer-wire", dependencies: [
            "FuzzSupport",
            .product(name: "ClusterWire", package: "Tessera"),
        ]),
    ]
)
