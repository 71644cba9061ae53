// swift-tools-version:6.0
// libFuzzer targets for Tessera's decoders and state machines. Each
// executable holds only the `LLVMFuzzerTestOneInput` shim; the entry points
// it calls live in the modules they exercise (`…Fuzzing.swift`), so unit
// tests can replay a crash through the same code. Build and run with
// Tools/fuzz/run.sh (it passes -sanitize=fuzzer,address).
import PackageDescription

/// One fuzz target: its main.swift and the root package's products it exercises.
func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name, dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: "Tessera") })
}

let package = Package(
    name: "TesseraFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Tessera", path: "../.."),
    ],
    targets: [
        // libFuzzer's LLVMFuzzerRunDriver, declared for Swift.
        .target(name: "CFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzer"]),
        fuzzTarget("fuzz-iscsi-pdu", ["ISCSIWire", "ISCSISession"]),
        fuzzTarget("fuzz-login", ["ISCSISession"]),
        fuzzTarget("fuzz-scsi", ["SCSITarget"]),
        fuzzTarget("fuzz-dqlite-wire", ["MetadataStore"]),
        fuzzTarget("fuzz-peer-wire", ["ClusterWire"]),
    ]
)
