import ClusterModel
import Foundation
import Logging
import MetadataStore
import SCSITarget
import SCSIWire
import Testing

@testable import TesseraNode

/// A gate whose answer the test sets.
final class ManualGate: ContextChangeGate, @unchecked Sendable {
    private let lock = NSLock()
    private var open: Bool
    init(open: Bool) { self.open = open }
    func set(_ value: Bool) { lock.withLock { open = value } }
    func mayChangeContext() -> Bool { lock.withLock { open } }
}

@Suite struct StoreReservationStateStoreTests {
    /// A PersistentReservations value made through its Codable form (its
    /// nested types have no public initialisers).
    static func state(aptpl: Bool = true) throws -> PersistentReservations {
        let json = """
            {"generation":7,"aptpl":\(aptpl),
             "registrations":[
               {"port":{"initiator":"iqn.1994-05.com.redhat:a,i,0x000000000001","deviceName":false,"relativeTargetPortIdentifier":1},"key":10},
               {"port":{"initiator":"iqn.1994-05.com.redhat:b","deviceName":true},"key":11}],
             "reservation":{"holder":{"initiator":"iqn.1994-05.com.redhat:b","deviceName":true},"type":5}}
            """
        return try JSONDecoder().decode(PersistentReservations.self, from: Data(json.utf8))
    }

    @Test func mappingRoundTrips() throws {
        let state = try Self.state()
        let record = PRStateMapping.record(state)
        #expect(record.registrations.map(\.initiatorPort) == ["iqn.1994-05.com.redhat:a,i,0x000000000001", "device iqn.1994-05.com.redhat:b"])
        #expect(record.registrations.map(\.targetPort) == ["1", "*"])
        #expect(record.reservation?.reservationKey == 11)
        #expect(record.reservation?.type == 5)
        #expect(try PRStateMapping.reservations(record) == state)
    }

    @Test func unknownTypeInTheStoreIsADecodingError() {
        let record = PRState(
            generation: 1, registrations: [],
            reservation: PRReservationRecord(holderInitiatorPort: "x", holderTargetPort: "*", reservationKey: 1, type: 2))
        #expect(throws: MetadataStoreError.self) { try PRStateMapping.reservations(record) }
    }

    /// Save, restart the store node, load: the state (APTPL) survives; a
    /// save while the lease is lapsed is refused and changes nothing.
    @Test(.timeLimit(.minutes(1)))
    func saveLoadOnARealStoreAndRefusalWithoutLease() async throws {
        let root = NSTemporaryDirectory() + "tessera-pr-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .warning
        let settings = ClusterSettings(nodeID: 1, peerPort: freeLoopbackPort(), lease: .seconds(2))
        let configuration = try parse(StoreSeedTests.toml)
        let serial = NodeRuntime.defaultSerial(targetName: "iqn.2026-11.dev.tessera:a", lunID: 0)
        let key = LUNKey(targetIQN: "iqn.2026-11.dev.tessera:a", lun: 0)

        let cluster = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        _ = try await cluster.seedAndLoad(configuration)
        let gate = ManualGate(open: true)
        let store = StoreReservationStateStore(client: cluster.client, gate: gate)
        #expect(try await store.loadReservations(lun: serial) == nil)
        let state = try Self.state()
        try await store.saveReservations(state, lun: serial)
        #expect(try await StoreRepository(cluster.client).contextVersion(key) == 1)
        gate.set(false)
        await #expect(throws: StoreReservationStateStore.Refused.self) {
            try await store.saveReservations(PersistentReservations(), lun: serial)
        }
        gate.set(true)
        await #expect(throws: StoreReservationStateStore.Refused.self) {
            try await store.saveReservations(state, lun: "no-such-serial")
        }
        await cluster.stop()

        let again = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        let reloaded = StoreReservationStateStore(client: again.client, gate: gate)
        #expect(try await reloaded.loadReservations(lun: serial) == state)
        #expect(try await StoreRepository(again.client).contextVersion(key) == 1)
        await again.stop()
    }

    /// SPC-2 holder and mode pages go to their tables with a context_version
    /// bump each; a lapsed lease refuses them; a restarted node loads the pages.
    @Test(.timeLimit(.minutes(1)))
    func spc2AndModePagesOnARealStore() async throws {
        let root = NSTemporaryDirectory() + "tessera-ctx-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .warning
        let settings = ClusterSettings(nodeID: 1, peerPort: freeLoopbackPort(), lease: .seconds(2))
        let configuration = try parse(StoreSeedTests.toml)
        let serial = NodeRuntime.defaultSerial(targetName: "iqn.2026-11.dev.tessera:a", lunID: 0)
        let key = LUNKey(targetIQN: "iqn.2026-11.dev.tessera:a", lun: 0)
        let nexus = ITNexus(
            initiatorName: "iqn.1994-05.com.redhat:a", isid: 1, targetName: "iqn.2026-11.dev.tessera:a", portalGroupTag: 1)
        var pages = ModePageValues.defaults
        pages.pages[ModePageCode.caching.rawValue]?[2] &= ~0x04

        let cluster = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        _ = try await cluster.seedAndLoad(configuration)
        let gate = ManualGate(open: true)
        let store = StoreReservationStateStore(client: cluster.client, gate: gate)
        let repository = StoreRepository(cluster.client)
        #expect(store.restoresAcrossNodeRestart)
        #expect(try await store.loadModePages(lun: serial) == nil)
        try await store.saveSPC2Reservation(nexus, lun: serial)
        #expect(try await repository.spc2Reservation(key)
            == SPC2ReservationRecord(holderInitiatorPort: nexus.initiatorPortName, holderTargetPort: nexus.targetPortName))
        #expect(try await repository.contextVersion(key) == 1)
        try await store.saveModePages(pages, lun: serial)
        #expect(try await repository.contextVersion(key) == 2)
        gate.set(false)
        await #expect(throws: StoreReservationStateStore.Refused.self) {
            try await store.saveSPC2Reservation(nil, lun: serial)
        }
        await #expect(throws: StoreReservationStateStore.Refused.self) {
            try await store.saveModePages(.defaults, lun: serial)
        }
        #expect(try await repository.spc2Reservation(key) != nil)
        #expect(try await repository.contextVersion(key) == 2)
        gate.set(true)
        try await store.saveSPC2Reservation(nil, lun: serial)
        #expect(try await repository.spc2Reservation(key) == nil)
        await cluster.stop()

        let again = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        let reloaded = StoreReservationStateStore(client: again.client, gate: gate)
        #expect(try await reloaded.loadModePages(lun: serial) == pages)
        #expect(try await StoreRepository(again.client).contextVersion(key) == 3)
        await again.stop()
    }
}
