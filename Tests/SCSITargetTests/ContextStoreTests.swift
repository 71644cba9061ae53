import BlockStorage
import Foundation
import Synchronization
import Testing

@testable import SCSITarget
@testable import SCSIWire

/// A ``ReservationStateStore`` that records every save, or refuses them all
/// (a node whose store lease lapsed).
final class RecordingContextStore: ReservationStateStore, Sendable {
    /// One recorded save.
    enum Save: Hashable, Sendable {
        case reservations(PersistentReservations)
        case spc2(NexusName?)
        case modePages(ModePageValues)
    }

    struct Refused: Error {}

    let refuse: Mutex<Bool>
    /// Loads fail while set (a node that cannot reach the store's quorum).
    let unreadable = Mutex(false)
    let saves = Mutex<[Save]>([])
    let restores: Bool

    init(refuse: Bool = false, restoresAcrossNodeRestart: Bool = true) {
        self.refuse = Mutex(refuse)
        self.restores = restoresAcrossNodeRestart
    }

    var restoresAcrossNodeRestart: Bool { restores }
    var recorded: [Save] { saves.withLock { $0 } }

    private func record(_ save: Save) throws {
        if refuse.withLock({ $0 }) { throw Refused() }
        saves.withLock { $0.append(save) }
    }

    func loadReservations(lun: String) async throws -> PersistentReservations? {
        if unreadable.withLock({ $0 }) { throw Refused() }
        for case .reservations(let state) in recorded.reversed() { return state }
        return nil
    }
    func saveReservations(_ state: PersistentReservations, lun: String) async throws {
        try record(.reservations(state))
    }
    func saveSPC2Reservation(_ holder: NexusName?, lun: String) async throws { try record(.spc2(holder)) }
    func saveModePages(_ values: ModePageValues, lun: String) async throws { try record(.modePages(values)) }
    func loadModePages(lun: String) async throws -> ModePageValues? {
        for case .modePages(let values) in recorded.reversed() { return values }
        return nil
    }
}

/// Every SCSI context change goes through the store before GOOD; a refused
/// save fails the command (retryable) and leaves the context unchanged.
@Suite struct ContextStoreTests {
    static let geometry = BlockGeometry(blockSize: Fixture.blockSize, blockCount: Fixture.blockCount)

    static func target(_ store: RecordingContextStore) async -> SCSITargetDevice {
        let t = SCSITargetDevice(logicalUnits: [
            0: LogicalUnit(
                configuration: Fixture.configuration(), device: MemoryBlockDevice(geometry: geometry),
                reservationStore: store)
        ])
        for n in [Fixture.nexusA, Fixture.nexusB] { _ = await t.run(CDB.testUnitReady, nexus: n) }
        return t
    }

    static let register: [UInt8] = [0x5F, 0, 0, 0, 0, 0, 0, 0, 24, 0]
    static let reserveEA: [UInt8] = [0x5F, 1, 0x03, 0, 0, 0, 0, 0, 24, 0]
    static let readKeys: [UInt8] = [0x5E, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]
    static func registerKey(_ key: UInt64) -> [UInt8] {
        PersistentReserveOutParameters(reservationKey: 0, serviceActionReservationKey: key).bytes
    }
    static var cachingOff: [UInt8] {
        var page = ModePageCode.caching.defaultPage
        page[2] &= ~0x04
        return [0, 0, 0, 0] + page
    }

    /// The commands that change the context, each with the save it must cause.
    enum Change: CaseIterable, Sendable {
        case prRegister, spc2Reserve, modeSelect
    }

    func run(_ change: Change, on t: SCSITargetDevice) async -> SCSIResponse {
        switch change {
        case .prRegister: await t.run(Self.register, data: Self.registerKey(0xABC))
        case .spc2Reserve: await t.run([0x16, 0, 0, 0, 0, 0])
        case .modeSelect: await t.run(CDB.modeSelect6(length: UInt8(Self.cachingOff.count)), data: Self.cachingOff)
        }
    }

    @Test(arguments: Change.allCases) func eachChangeIsSavedOnce(_ change: Change) async {
        let store = RecordingContextStore()
        let t = await Self.target(store)
        #expect(await run(change, on: t).status == .good)
        let saves = store.recorded
        #expect(saves.count == 1)
        switch (change, saves.first) {
        case (.prRegister, .reservations(let state)?):
            #expect(state.registrations.map(\.key) == [0xABC] && !state.aptpl)
        case (.spc2Reserve, .spc2(let holder)?): #expect(holder == NexusName(Fixture.nexusA))
        case (.modeSelect, .modePages(let values)?): #expect(!values.writeCacheEnabled)
        default: Issue.record("unexpected saves \(saves)")
        }
        // Repeating a change that changes nothing saves nothing more (SPC-2 RESERVE by the holder,
        // the same MODE SELECT; a REGISTER with a stale reservation key is a conflict).
        _ = await run(change, on: t)
        #expect(store.recorded.count == 1)
    }

    @Test(arguments: Change.allCases) func refusedSaveFailsAndKeepsMemory(_ change: Change) async {
        let store = RecordingContextStore(refuse: true)
        let t = await Self.target(store)
        let response = await run(change, on: t)
        #expect(response.hasSense(.asymmetricAccessStateTransition))
        #expect(store.recorded.isEmpty)
        // Nothing changed in memory.
        #expect(await t.run(Self.readKeys).data.be32(4) == 0)
        #expect(await t.run(CDB.read16(0, 1), nexus: Fixture.nexusB).status == .good)
        #expect(await t.run(CDB.modeSense6(page: 0x08, dbd: true)).data[6] & 0x04 != 0)
        #expect(await t.run(CDB.testUnitReady, nexus: Fixture.nexusB).status == .good, "no unit attention")
        // The store comes back: the retry succeeds.
        store.refuse.withLock { $0 = false }
        #expect(await run(change, on: t).status == .good)
        #expect(store.recorded.count == 1)
    }

    @Test func refusedReservationKeepsTheOldState() async {
        let store = RecordingContextStore()
        let t = await Self.target(store)
        #expect(await t.run(Self.register, data: Self.registerKey(0xABC)).status == .good)
        store.refuse.withLock { $0 = true }
        let reserve = PersistentReserveOutParameters(reservationKey: 0xABC, serviceActionReservationKey: 0)
        #expect(await t.run(Self.reserveEA, data: reserve.bytes).hasSense(.asymmetricAccessStateTransition))
        // No reservation was kept: B still reads, and the generation did not move.
        #expect(await t.run(CDB.read16(0, 1), nexus: Fixture.nexusB).status == .good)
        #expect(await t.run([0x5E, 1, 0, 0, 0, 0, 0, 0x10, 0, 0]).data.be32(4) == 0)
    }

    @Test func spc2ReleaseOnNexusLossIsSaved() async {
        let store = RecordingContextStore()
        let t = await Self.target(store)
        #expect(await t.run([0x16, 0, 0, 0, 0, 0]).status == .good)
        await t.nexusLost(Fixture.nexusA)
        #expect(store.recorded == [.spc2(NexusName(Fixture.nexusA)), .spc2(nil)])
    }

    @Test func clusterStoreRestoresEverythingOnRestart() async {
        let store = RecordingContextStore(restoresAcrossNodeRestart: true)
        let first = await Self.target(store)
        #expect(await first.run(Self.register, data: Self.registerKey(0xABC)).status == .good)
        #expect(await run(.modeSelect, on: first).status == .good)
        let second = await Self.target(store)
        let keys = await second.run(Self.readKeys).data
        #expect(keys.be32(4) == 8)
        #expect(await second.run(CDB.modeSense6(page: 0x08, dbd: true)).data[6] & 0x04 == 0)
    }

    @Test func nodeStoreRestoresOnlyAPTPL() async {
        let store = RecordingContextStore(restoresAcrossNodeRestart: false)
        let first = await Self.target(store)
        #expect(await first.run(Self.register, data: Self.registerKey(0xABC)).status == .good)
        #expect(await run(.modeSelect, on: first).status == .good)
        let second = await Self.target(store)
        #expect(await second.run(Self.readKeys).data.be32(4) == 0)
        #expect(await second.run(CDB.modeSense6(page: 0x08, dbd: true)).data[6] & 0x04 != 0)
    }

    /// A node that cannot read the store at a LUN's first command must not serve
    /// with an empty context: medium access gets a retryable NOT READY, INQUIRY
    /// still answers, and once the store is readable the saved state is loaded.
    @Test func unreadableStoreHoldsCommandsUntilTheContextLoads() async {
        let store = RecordingContextStore(restoresAcrossNodeRestart: true)
        let first = await Self.target(store)
        #expect(await first.run(Self.register, data: Self.registerKey(0xABC)).status == .good)
        store.unreadable.withLock { $0 = true }
        let second = SCSITargetDevice(logicalUnits: [
            0: LogicalUnit(
                configuration: Fixture.configuration(), device: MemoryBlockDevice(geometry: Self.geometry),
                reservationStore: store)
        ])
        #expect(await second.run(CDB.inquiry(alloc: 96)).status == .good)
        let held = await second.run(CDB.read10(0, 1))
        #expect(held.status == .checkCondition && held.hasSense(.asymmetricAccessStateTransition))
        store.unreadable.withLock { $0 = false }
        _ = await second.run(CDB.testUnitReady)  // the power-on unit attention
        #expect(await second.run(Self.readKeys).data.be32(4) == 8)
    }
}
