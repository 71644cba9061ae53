import BlockStorage
import ClusterModel
import Foundation
import Logging
import MetadataStore
import SCSITarget
import SCSIWire
import Testing

@testable import TesseraNode

/// A logical unit over the real single-node store: a PR change without APTPL
/// survives a node restart, and with the lease lapsed the change is refused
/// (retryable sense) and not kept.
@Suite struct StoreContextEndToEndTests {
    static let nexus = ITNexus(
        initiatorName: "iqn.1994-05.com.redhat:a", isid: 1, targetName: "iqn.2026-11.dev.tessera:a", portalGroupTag: 1)

    static func target(_ client: MetadataStoreClient, gate: ManualGate) -> SCSITargetDevice {
        let context = SharedLogicalUnitContext(
            store: StoreContextStore(client: client, key: LUNKey(targetIQN: "iqn.2026-11.dev.tessera:a", lun: 0)),
            mayChange: { gate.mayChangeContext() })
        return SCSITargetDevice(logicalUnits: [
            0: LogicalUnit(
                configuration: LogicalUnitConfiguration(serial: "e2e", identifier: 1),
                device: MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 64)), context: context)
        ])
    }

    static func run(_ t: SCSITargetDevice, _ cdb: [UInt8], data: [UInt8]? = nil) async -> SCSIResponse {
        await t.execute(
            SCSICommand(
                lun: LUNAddress.encode(0), cdb: cdb, nexus: nexus, taskTag: .random(in: 0...UInt32.max),
                expectedDataTransferLength: UInt32(data?.count ?? 0), dataOut: data.map { IOBuffer(bytes: $0) },
                dataOutLength: data?.count ?? 0))
    }

    /// PERSISTENT RESERVE OUT REGISTER parameters (current key `current`, new key `key`), APTPL off.
    static func register(_ key: UInt64, current: UInt64 = 0) -> [UInt8] {
        func be(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * $0)) } }
        return be(current) + be(key) + [UInt8](repeating: 0, count: 8)
    }
    static let registerCDB: [UInt8] = [0x5F, 0, 0, 0, 0, 0, 0, 0, 24, 0]
    static let readKeysCDB: [UInt8] = [0x5E, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]

    @Test(.timeLimit(.minutes(1)))
    func registrationSurvivesANodeRestartAndLapsedLeaseRefuses() async throws {
        let root = NSTemporaryDirectory() + "tessera-e2e-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .warning
        let settings = ClusterSettings(nodeID: 1, peerPort: freeLoopbackPort(), lease: .seconds(2))
        let configuration = try parse(StoreSeedTests.toml)

        let cluster = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        _ = try await cluster.seedAndLoad(configuration)
        let gate = ManualGate(open: true)
        let first = Self.target(cluster.client, gate: gate)
        _ = await Self.run(first, [0, 0, 0, 0, 0, 0])
        #expect(await Self.run(first, Self.registerCDB, data: Self.register(0xABC)).status == .good)
        gate.set(false)
        let refused = await Self.run(first, Self.registerCDB, data: Self.register(0xDEF, current: 0xABC))
        #expect(refused.status == .checkCondition)
        #expect(refused.sense.count >= 14 && refused.sense[2] & 0x0F == 0x02 && refused.sense[12] == 0x04
            && refused.sense[13] == 0x0A)
        // Only the first key is registered, in memory and in the store.
        let keys = await Self.run(first, Self.readKeysCDB).dataIn?.array(0..<16) ?? []
        #expect(Array(keys[4..<8]) == [0, 0, 0, 8] && Array(keys[8..<16]) == [0, 0, 0, 0, 0, 0, 0x0A, 0xBC])
        await cluster.stop()

        gate.set(true)
        let again = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        let second = Self.target(again.client, gate: gate)
        _ = await Self.run(second, [0, 0, 0, 0, 0, 0])
        let restored = await Self.run(second, Self.readKeysCDB).dataIn?.array(0..<16) ?? []
        #expect(restored == keys, "a non-APTPL registration survives the node's restart")
        await again.stop()
    }
}
