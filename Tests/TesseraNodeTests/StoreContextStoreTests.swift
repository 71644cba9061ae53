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

@Suite struct StoreContextStoreTests {
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

    /// Commit with compare-and-set on a real store: the state and its effects
    /// are kept by version, a commit from an older version conflicts, a retry
    /// of an applied request id is harmless, and a restarted node loads it all.
    @Test(.timeLimit(.minutes(1)))
    func commitConflictRetryAndReloadOnARealStore() async throws {
        let root = NSTemporaryDirectory() + "tessera-ctx-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .warning
        let settings = ClusterSettings(nodeID: 1, peerPort: freeLoopbackPort(), lease: .seconds(2))
        let configuration = try parse(StoreSeedTests.toml)
        let key = LUNKey(targetIQN: "iqn.2026-11.dev.tessera:a", lun: 0)
        var pages = ModePageValues.defaults
        pages.pages[ModePageCode.caching.rawValue]?[2] &= ~0x04
        let holder = NexusName(initiatorPort: "iqn.1994-05.com.redhat:a,i,0x000000000001", targetPort: "iqn.2026-11.dev.tessera:a,t,0x0001")
        let state = SharedLUNState(persistent: try Self.state(aptpl: false), spc2Holder: holder, modePages: pages)
        let effects: [ContextEffect] = [
            .registrantUnitAttention(
                .reservationsPreempted, port: RegistrantPort(initiator: "iqn.x,i,0x1", relativeTargetPortIdentifier: 2),
                except: holder),
            .abortAll(clearedBy: nil),
        ]

        let cluster = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        _ = try await cluster.seedAndLoad(configuration)
        let store = StoreContextStore(client: cluster.client, key: key)
        #expect(try await store.load() == VersionedLUNState(version: 0, state: SharedLUNState()))
        let change = ContextChange(version: 1, state: state, effects: effects)
        #expect(try await store.commit(change, expected: 0, requestID: "r1") == .committed(version: 1))
        #expect(try await store.commit(change, expected: 0, requestID: "r1") == .committed(version: 1), "a retry is harmless")
        #expect(try await store.commit(change, expected: 0, requestID: "r2") == .conflict)
        #expect(try await store.load() == VersionedLUNState(version: 1, state: state))
        let (current, recorded) = try await store.changes(after: 0)
        #expect(current.version == 1 && recorded == [RecordedEffects(version: 1, effects: effects)])
        let released = ContextChange(version: 2, state: SharedLUNState(persistent: state.persistent, modePages: pages), effects: [])
        #expect(try await store.commit(released, expected: 1, requestID: "r3") == .committed(version: 2))
        #expect(try await StoreRepository(cluster.client).spc2Reservation(key) == nil)
        await cluster.stop()

        let again = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        let reloaded = try await StoreContextStore(client: again.client, key: key).load()
        #expect(reloaded == VersionedLUNState(version: 2, state: released.state))
        await #expect(throws: StoreContextStore.Missing.self) {
            try await StoreContextStore(client: again.client, key: LUNKey(targetIQN: "iqn.none", lun: 9)).load()
        }
        await again.stop()
    }
}
