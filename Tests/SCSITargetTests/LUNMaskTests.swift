import BlockStorage
import TesseraTestKit
import Testing

@testable import SCSITarget
@testable import SCSIWire

/// LUN masking: a LUN with a mask exists only for the initiators it names.
@Suite struct LUNMaskTests {
    static let targetName = "iqn.2026-01.tessera:t"

    /// LUN 0 unmasked, LUN 1 masked to initiator A (named in another case).
    static func target() async -> (SCSITargetDevice, LUNMasks) {
        let masks = LUNMasks([targetName.uppercased(): [1: ["IQN.2026-01.TEST:A"]]])
        func unit() -> LogicalUnit {
            LogicalUnit(
                configuration: Fixture.configuration(),
                device: MemoryBlockDevice(geometry: BlockGeometry(blockSize: Fixture.blockSize, blockCount: Fixture.blockCount)))
        }
        let t = SCSITargetDevice(logicalUnits: [0: unit(), 1: unit()], masks: (masks, targetName))
        for nexus in [Fixture.nexusA, Fixture.nexusB] {
            for lun: UInt16 in [0, 1] { _ = await t.run(CDB.testUnitReady, lun: lun, nexus: nexus) }
        }
        return (t, masks)
    }

    /// The LUN numbers a REPORT LUNS to `lun` lists for `nexus`.
    static func reported(_ t: SCSITargetDevice, nexus: ITNexus, lun: UInt16 = 0) async -> [UInt16] {
        let data = await t.run(CDB.reportLUNs(), lun: lun, nexus: nexus).data
        let count = Int(data[3]) / 8
        return (0..<count).map { UInt16(data[8 + 8 * $0]) << 8 | UInt16(data[9 + 8 * $0]) }
    }

    @Test func reportLUNsListsOnlyWhatTheInitiatorSees() async {
        let (t, _) = await Self.target()
        #expect(await Self.reported(t, nexus: Fixture.nexusA) == [0, 1])
        #expect(await Self.reported(t, nexus: Fixture.nexusB) == [0])
        // Through a LUN it does not see (SPC-4 §6.33: REPORT LUNS to any LUN answers).
        #expect(await Self.reported(t, nexus: Fixture.nexusB, lun: 1) == [0])
    }

    @Test func aMaskedLUNDoesNotExistForTheOthers() async {
        let (t, _) = await Self.target()
        let tur = await t.run(CDB.testUnitReady, lun: 1, nexus: Fixture.nexusB)
        #expect(tur.status == .checkCondition)
        #expect(tur.senseCode.map { [$0.0, $0.1, $0.2] } == [0x05, 0x25, 0x00], "LOGICAL UNIT NOT SUPPORTED")
        let inquiry = await t.run(CDB.inquiry(alloc: 36), lun: 1, nexus: Fixture.nexusB)
        #expect(inquiry.status == .good)
        #expect(inquiry.data.first == 0x7F, "peripheral qualifier 011b, device type 1Fh")
        #expect(await t.run(CDB.testUnitReady, lun: 1, nexus: Fixture.nexusA).status == .good)
        #expect(await t.run(CDB.inquiry(alloc: 36), lun: 1, nexus: Fixture.nexusA).data.first == 0x00)
        let reset = await t.taskManagement(.logicalUnitReset, lun: LUNAddress.encode(1), nexus: Fixture.nexusB)
        #expect(reset == .lunDoesNotExist, "a reset cannot reach a LUN the initiator does not see")
    }

    @Test func aChangeIsInForceAtOnceAndEveryNexusIsToldReportedLUNsChanged() async {
        let (t, masks) = await Self.target()
        let changed = masks.replace(with: [Self.targetName: [1: [Fixture.nexusB.initiatorName]]])
        #expect(changed.map(\.lun) == [1])
        await t.reportedLUNsChanged()
        #expect(await Self.reported(t, nexus: Fixture.nexusB) == [0, 1])
        #expect(await Self.reported(t, nexus: Fixture.nexusA) == [0])
        // A, which had seen its power-on unit attention on LUN 0, is told on its next command.
        let told = await t.run(CDB.testUnitReady, lun: 0, nexus: Fixture.nexusA)
        #expect(told.senseCode.map { [$0.0, $0.1, $0.2] } == [0x06, 0x3F, 0x0E], "REPORTED LUNS DATA HAS CHANGED")
        #expect(await t.run(CDB.testUnitReady, lun: 0, nexus: Fixture.nexusA).status == .good)
        #expect(await t.run(CDB.testUnitReady, lun: 1, nexus: Fixture.nexusA).senseCode.map { [$0.0, $0.1, $0.2] } == [0x05, 0x25, 0x00])
        masks.replace(with: [Self.targetName: [0: ["iqn.x:y"], 1: ["iqn.x:y"]]])
        #expect(await Self.reported(t, nexus: Fixture.nexusA) == [], "an initiator may see no LUN at all")
    }

    @Test func changesNameTheLUNsWhoseEntriesDiffer() {
        let old: LUNMasks.Table = ["t": [0: ["a"], 1: ["b"]]]
        let new: LUNMasks.Table = ["t": [0: ["a"], 2: ["c"]], "u": [0: ["a"]]]
        let changes = LUNMasks.changes(from: old, to: new).map { "\($0.target)/\($0.lun)" }
        #expect(changes == ["t/1", "t/2", "u/0"])
        #expect(LUNMasks.changes(from: new, to: new).isEmpty)
        let masks = LUNMasks(["T": [0: []]])
        #expect(masks.sees("anyone", target: "t", lun: 0), "an empty mask is no mask")
    }
}
