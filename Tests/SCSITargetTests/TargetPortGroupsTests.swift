import BlockStorage
import Synchronization
import Testing

@testable import SCSITarget
@testable import SCSIWire

/// A ``TargetPortGroupSource`` whose groups a test sets.
final class FixedPortGroups: TargetPortGroupSource {
    let groups: Mutex<[TargetPortGroupStatus]>

    init(_ groups: [TargetPortGroupStatus]) { self.groups = Mutex(groups) }

    func portGroups() -> [TargetPortGroupStatus] { groups.withLock { $0 } }

    /// Sets the state of `group`.
    func set(_ group: UInt16, _ state: AsymmetricAccessState) {
        groups.withLock { all in
            for i in all.indices where all[i].group == group { all[i].state = state }
        }
    }

    /// Group 1 (Fixture.nexusA's port) and group 2 (nexusB's), both active/optimized.
    static func two() -> FixedPortGroups {
        FixedPortGroups([
            TargetPortGroupStatus(group: 1, state: .activeOptimized, relativeTargetPorts: [1]),
            TargetPortGroupStatus(group: 2, state: .activeOptimized, relativeTargetPorts: [2]),
        ])
    }
}

extension CDB {
    static func rtpg(format: UInt8 = 0, alloc: UInt32 = 1024) -> [UInt8] {
        [0xA3, format << 5 | 0x0A, 0, 0, 0, 0] + be(UInt64(alloc), 4) + [0, 0]
    }
    static func persistentReserveIn(_ sa: UInt8 = 0, alloc: UInt16 = 256) -> [UInt8] {
        [0x5E, sa, 0, 0, 0, 0, 0] + be(UInt64(alloc), 2) + [0]
    }
    static let readCapacity10: [UInt8] = [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    static let synchronizeCache10: [UInt8] = [0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]
}

/// Implicit ALUA (SPC-4 §5.16, §6.37): the RTPG codec, the per-state command
/// gate, the unit attention on a change, and what INQUIRY says about it.
@Suite struct TargetPortGroupsTests {
    static func target(_ source: (any TargetPortGroupSource)?) async -> SCSITargetDevice {
        let unit = LogicalUnit(
            configuration: Fixture.configuration(),
            device: MemoryBlockDevice(
                geometry: BlockGeometry(blockSize: Fixture.blockSize, blockCount: Fixture.blockCount)))
        let t = SCSITargetDevice(logicalUnits: [0: unit], portGroups: source)
        for n in [Fixture.nexusA, Fixture.nexusB] { _ = await t.run(CDB.testUnitReady, nexus: n) }
        return t
    }

    static let groups = [
        TargetPortGroupStatus(group: 1, state: .activeOptimized, relativeTargetPorts: [1], preferred: true),
        TargetPortGroupStatus(
            group: 2, state: .unavailable, relativeTargetPorts: [2, 5], statusCode: .alteredImplicitly),
    ]
    /// The two descriptors of ``groups`` (SPC-4 §6.37, tables 306 and 309).
    static let descriptors: [UInt8] = [
        0x80, 0x8F, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, /**/ 0, 0, 0x00, 0x01,
        0x03, 0x8F, 0x00, 0x02, 0x00, 0x02, 0x00, 0x02, /**/ 0, 0, 0x00, 0x02, /**/ 0, 0, 0x00, 0x05,
    ]

    // MARK: - Codec

    /// Table 304: RETURN DATA LENGTH (n - 3), then the descriptors.
    @Test func lengthOnlyHeaderIsByteExact() {
        let b = TargetPortGroupsData.encode(Self.groups, format: .lengthOnly, implicitTransitionTime: 2)
        #expect(b == [0, 0, 0, 28] + Self.descriptors)
    }

    /// Table 305: RETURN DATA LENGTH (n - 3) counts bytes 4-7 too; FORMAT TYPE 001b,
    /// IMPLICIT TRANSITION TIME.
    @Test func extendedHeaderIsByteExact() {
        let b = TargetPortGroupsData.encode(Self.groups, format: .extended, implicitTransitionTime: 2)
        #expect(b == [0, 0, 0, 32, 0x10, 0x02, 0, 0] + Self.descriptors)
    }

    /// T_SUP, U_SUP, S_SUP, AN_SUP and AO_SUP: exactly the states reported.
    @Test func supportedStatesAreTheOfferedOnes() {
        #expect(AsymmetricAccessState.supportedStates == 0x80 | 0x08 | 0x04 | 0x02 | 0x01)
    }

    @Test func cdbParsesBothFormatsAndRefusesReservedOnes() throws {
        let (d, c) = try CommandDescriptor.parse(CDB.rtpg(format: 0, alloc: 0x0102_0304))
        #expect(d.name == "REPORT TARGET PORT GROUPS" && d.accessClass == .anyState && d.conflictClass == .allowed)
        #expect(
            c
                == .reportTargetPortGroups(
                    ReportTargetPortGroups(parameterDataFormat: .lengthOnly, allocationLength: 0x0102_0304)))
        #expect(c.dataTransfer(blockSize: 512) == .dataIn(0x0102_0304))
        let (_, e) = try CommandDescriptor.parse(CDB.rtpg(format: 1, alloc: 8))
        #expect(
            e == .reportTargetPortGroups(ReportTargetPortGroups(parameterDataFormat: .extended, allocationLength: 8)))
        for format: UInt8 in 2...7 {
            #expect(throws: SenseData.invalidField(byte: 1, bit: 7)) {
                try CommandDescriptor.parse(CDB.rtpg(format: format))
            }
        }
        var reserved = CDB.rtpg()
        reserved[10] = 1
        #expect(throws: SenseData.invalidField(byte: 10, bit: 0)) { try CommandDescriptor.parse(reserved) }
    }

    /// Implicit only: SET TARGET PORT GROUPS (MAINTENANCE OUT A4h/0Ah) is not a command here.
    @Test func setTargetPortGroupsIsAnInvalidOperationCode() async throws {
        let stpg: [UInt8] = [0xA4, 0x0A, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0]
        #expect(throws: SenseData(.invalidCommandOperationCode, fieldPointer: FieldPointer(byte: 0, bit: 7))) {
            try CommandDescriptor.parse(stpg)
        }
        let t = await Self.target(nil)
        #expect(await t.run(stpg, data: [0, 0, 0, 0]).hasSense(.invalidCommandOperationCode))
    }

    /// REPORT SUPPORTED OPERATION CODES is built from the table: RTPG is in it, SET TPG is not.
    @Test func rsocListsReportTargetPortGroupsOnly() async {
        let t = await Self.target(nil)
        let all = await t.run(CDB.rsoc(options: 0)).data
        let entries: [[UInt8]] = stride(from: 4, to: all.count, by: 8).map { [all[$0], all[$0 + 2], all[$0 + 3]] }
        #expect(entries.contains([0xA3, 0x00, 0x0A]))
        #expect(!entries.contains { $0[0] == 0xA4 })
        let one = await t.run(CDB.rsoc(options: 2, opcode: 0xA3, sa: 0x0A)).data
        #expect(one[1] & 0x07 == 0x03)  // SUPPORT 011b
        #expect(Array(one[4...]) == [0xA3, 0xEA, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0])
        let stpg = await t.run(CDB.rsoc(options: 2, opcode: 0xA4, sa: 0x0A)).data
        #expect(stpg[1] & 0x07 == 0x01)  // SUPPORT 001b: not supported
    }

    // MARK: - INQUIRY

    /// SPC-4 §6.6.2: TPGS 01b (implicit ALUA only), in byte 5 bits 5-4.
    @Test func standardInquiryReportsImplicitTPGS() async {
        let t = await Self.target(nil)
        let d = await t.run(CDB.inquiry(alloc: 96)).data
        #expect((d[5] >> 4) & 0x03 == 0b01)
        #expect(d[0] == 0x00)
    }

    /// SPC-4 §5.16.2.7 a): VPD 0x83 carries the answering port's relative target port (type 4h)
    /// and target port group (type 5h), association 01b (target port).
    @Test(arguments: [Fixture.nexusA, Fixture.nexusB])
    func deviceIdentificationNamesTheAnsweringPort(_ nexus: ITNexus) async {
        let t = await Self.target(FixedPortGroups.two())
        let page = await t.run(CDB.inquiry(evpd: true, page: 0x83, alloc: 1024), nexus: nexus).data
        var designators: [UInt8: [UInt8]] = [:]
        var i = 4
        while i + 4 <= page.count {
            let length = Int(page[i + 3])
            if (page[i + 1] >> 4) & 0x03 == 1 { designators[page[i + 1] & 0x0F] = Array(page[i + 4..<i + 4 + length]) }
            i += 4 + length
        }
        #expect(designators[4] == [0, 0] + CDB.be(UInt64(nexus.relativeTargetPortIdentifier), 2))
        #expect(designators[5] == [0, 0] + CDB.be(UInt64(nexus.targetPortGroup), 2))
    }

    // MARK: - RTPG through the device

    /// Without a source the device is one group: the nexus's own, active/optimized.
    @Test func withoutASourceTheNexusGroupIsTheOnlyOne() async {
        let t = await Self.target(nil)
        let d = await t.run(CDB.rtpg(), nexus: Fixture.nexusB).data
        #expect(d == [0, 0, 0, 12, 0x00, 0x8F, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2])
    }

    /// Every group of the source, in its order; the extended header carries the transition time.
    @Test func rtpgReportsEveryGroupOfTheSource() async {
        let t = await Self.target(FixedPortGroups(Self.groups))
        #expect(await t.run(CDB.rtpg()).data == [0, 0, 0, 28] + Self.descriptors)
        let extended = await t.run(CDB.rtpg(format: 1)).data
        #expect(Array(extended[0..<8]) == [0, 0, 0, 32, 0x10, SCSITargetDevice.implicitTransitionTime, 0, 0])
    }

    /// SPC-4 §4.2.5.6: the data is cut to any allocation length, RETURN DATA LENGTH unchanged
    /// (libiscsi's RTPG AllocLength asks for 4 bytes first).
    @Test func everyAllocationLengthCutsTheSameData() async {
        let t = await Self.target(FixedPortGroups(Self.groups))
        let full = [0, 0, 0, 28] + Self.descriptors
        for alloc in 0...(full.count + 4) {
            let r = await t.run(CDB.rtpg(alloc: UInt32(alloc)))
            #expect(r.status == .good)
            #expect(r.data == Array(full.prefix(alloc)))
        }
    }

    /// A group the source does not list cannot vouch for the unit: it is
    /// unavailable, and RTPG still lists it (VPD 0x83 names it).
    @Test func aGroupTheSourceDoesNotKnowIsUnavailable() async {
        let source = FixedPortGroups([
            TargetPortGroupStatus(group: 1, state: .activeOptimized, relativeTargetPorts: [1])
        ])
        let t = await Self.target(source)
        #expect(await t.run(CDB.read10(0, 1), nexus: Fixture.nexusB).hasSense(.targetPortInUnavailableState))
        let d = await t.run(CDB.rtpg(), nexus: Fixture.nexusB).data
        #expect(Array(d[16...]) == [0x03, 0x8F, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2])
    }

    // MARK: - The gate

    /// The commands the tables list per state (SPC-4 §5.16.2.4.4 standby, §5.16.2.4.5
    /// unavailable, §5.16.2.5 transitioning), among those offered: the sense in
    /// standby, unavailable and transitioning; nil = served.
    static let gate: [(name: String, cdb: [UInt8], refusals: [SenseReason?])] = {
        let medium: [SenseReason?] = [
            .targetPortInStandbyState, .targetPortInUnavailableState, .asymmetricAccessStateTransition,
        ]
        let standbyToo: [SenseReason?] = [nil, .targetPortInUnavailableState, .asymmetricAccessStateTransition]
        let always: [SenseReason?] = [nil, nil, nil]
        return [
            ("TEST UNIT READY", CDB.testUnitReady, medium),
            ("READ(10)", CDB.read10(0, 1), medium),
            ("WRITE(10)", CDB.write10(0, 0), medium),
            ("SYNCHRONIZE CACHE(10)", CDB.synchronizeCache10, medium),
            ("INQUIRY", CDB.inquiry(alloc: 96), always),
            ("REPORT LUNS", CDB.reportLUNs(), always),
            ("REPORT TARGET PORT GROUPS", CDB.rtpg(), always),
            ("REQUEST SENSE", CDB.requestSense(), always),
            ("MODE SENSE(6)", CDB.modeSense6(page: 0x3F), standbyToo),
            ("MODE SENSE(10)", CDB.modeSense10(page: 0x3F), standbyToo),
            ("PERSISTENT RESERVE IN", CDB.persistentReserveIn(), standbyToo),
            ("READ CAPACITY(10)", CDB.readCapacity10, standbyToo),
            ("READ CAPACITY(16)", CDB.readCapacity16(), standbyToo),
            ("REPORT SUPPORTED OPERATION CODES", CDB.rsoc(options: 0), standbyToo),
        ]
    }()

    @Test(arguments: [AsymmetricAccessState.standby, .unavailable, .transitioning])
    func eachStateServesItsTable(_ state: AsymmetricAccessState) async {
        let source = FixedPortGroups.two()
        let t = await Self.target(source)
        source.set(1, state)
        for row in Self.gate {
            let expected = row.refusals[state == .standby ? 0 : state == .unavailable ? 1 : 2]
            let r = await t.run(row.cdb, nexus: Fixture.nexusA)
            if let expected {
                #expect(r.hasSense(expected), "\(row.name) in \(state)")
            } else {
                #expect(r.status == .good, "\(row.name) in \(state): \(r.sense)")
            }
            // The other group is active/optimized: everything is served through it.
            #expect(await t.run(row.cdb, nexus: Fixture.nexusB).status != .checkCondition, "\(row.name) via group 2")
        }
    }

    /// Both active states serve every command the table has.
    @Test(arguments: [AsymmetricAccessState.activeOptimized, .activeNonOptimized])
    func activeStatesServeEverything(_ state: AsymmetricAccessState) {
        for d in CommandDescriptor.all { #expect(state.refusal(for: d.accessClass) == nil, "\(d.name)") }
    }

    /// The table's classes are the spec's lists: exactly the identification commands in
    /// every state, and the standby list adds only MODE, PR, READ CAPACITY and RSOC.
    @Test func accessClassesOfTheTable() {
        let anyState = Set(CommandDescriptor.all.filter { $0.accessClass == .anyState }.map(\.name))
        #expect(anyState == ["INQUIRY", "REPORT LUNS", "REPORT TARGET PORT GROUPS", "REQUEST SENSE"])
        let standby = CommandDescriptor.all.filter { $0.accessClass == .alsoStandby }.map(\.opcode)
        #expect(Set(standby) == [0x15, 0x1A, 0x55, 0x5A, 0x5E, 0x5F, 0x25, 0x9E, 0xA3])
    }

    /// Through an unavailable group INQUIRY keeps PERIPHERAL QUALIFIER 000b (Linux attaches
    /// its disk driver only to 000b), and REQUEST SENSE reports the unavailable state.
    @Test func unavailableInquiryAndRequestSense() async {
        let source = FixedPortGroups.two()
        let t = await Self.target(source)
        source.set(1, .unavailable)
        let standard = await t.run(CDB.inquiry(alloc: 96)).data
        #expect(standard[0] == 0x00 && (standard[5] >> 4) & 0x03 == 0b01)
        #expect(await t.run(CDB.inquiry(evpd: true, page: 0x83, alloc: 255)).data[0] == 0x00)
        let sense = await t.run(CDB.requestSense())
        #expect(sense.status == .good && sense.data[2] == 0x02 && sense.data[12] == 0x04 && sense.data[13] == 0x0C)
        #expect(await t.run(CDB.inquiry(alloc: 96), nexus: Fixture.nexusB).data[0] == 0x00)
    }

    // MARK: - Unit attention

    /// SPC-4 §5.16.2.5: an implicit change queues ASYMMETRIC ACCESS STATE CHANGED for
    /// every nexus; INQUIRY does not consume it; it comes before the state's own refusal.
    @Test func accessStatesChangedReachesEveryNexusFirst() async {
        let source = FixedPortGroups.two()
        let t = await Self.target(source)
        source.set(1, .unavailable)
        await t.accessStatesChanged()
        #expect(await t.run(CDB.inquiry(alloc: 96)).status == .good)
        #expect(await t.run(CDB.testUnitReady).hasSense(.asymmetricAccessStateChanged))
        #expect(await t.run(CDB.testUnitReady).hasSense(.targetPortInUnavailableState))
        #expect(await t.run(CDB.rtpg(), nexus: Fixture.nexusB).hasSense(.asymmetricAccessStateChanged))
        #expect(await t.run(CDB.rtpg(), nexus: Fixture.nexusB).status == .good)
        #expect(await t.run(CDB.testUnitReady, nexus: Fixture.nexusB).status == .good)
    }

    /// One LU whose saved context cannot be read until the test clears `unreadable`.
    static func targetWithUnreadableContext() -> (SCSITargetDevice, RecordingContextStore) {
        let store = RecordingContextStore(restoresAcrossNodeRestart: true)
        store.unreadable.withLock { $0 = true }
        let t = SCSITargetDevice(logicalUnits: [
            0: LogicalUnit(
                configuration: Fixture.configuration(), device: MemoryBlockDevice(geometry: ContextStoreTests.geometry),
                reservationStore: store)
        ])
        return (t, store)
    }

    /// While the unit's saved context cannot be loaded it is transitioning:
    /// RTPG is still served (SPC-4 §5.16.2.5 b C), TEST UNIT READY is not.
    @Test func unloadedContextStillAnswersRTPG() async {
        let (t, _) = Self.targetWithUnreadableContext()
        #expect(await t.run(CDB.testUnitReady).hasSense(.asymmetricAccessStateTransition))
        let rtpg = await t.run(CDB.rtpg())
        #expect(rtpg.hasSense(.powerOnResetOrBusDeviceResetOccurred))
        #expect(await t.run(CDB.rtpg()).status == .good)
    }

    /// A command refused while the context cannot be loaded consumes no unit
    /// attention: once the store answers, the pending 29/00 comes first (SAM-5 §5.14).
    @Test func refusalWhileUnloadedKeepsTheUnitAttention() async {
        let (t, store) = Self.targetWithUnreadableContext()
        #expect(await t.run(CDB.testUnitReady).hasSense(.asymmetricAccessStateTransition))
        #expect(await t.run(CDB.testUnitReady).hasSense(.asymmetricAccessStateTransition))
        store.unreadable.withLock { $0 = false }
        #expect(await t.run(CDB.testUnitReady).hasSense(.powerOnResetOrBusDeviceResetOccurred))
        #expect(await t.run(CDB.testUnitReady).status == .good)
    }
}
