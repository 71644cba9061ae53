import BlockStorage
import Testing

@testable import SCSITarget
@testable import SCSIWire

/// SPC-2 RESERVE/RELEASE (iscsi-test-cu SCSI.Reserve6.*).
@Suite struct ReservationTests {
    static let reserve6: [UInt8] = [0x16, 0, 0, 0, 0, 0]
    static let release6: [UInt8] = [0x17, 0, 0, 0, 0, 0]
    static let a = Fixture.nexusA
    static let b = Fixture.nexusB

    /// iscsi-test-cu SCSI.Reserve6.2Initiators.
    @Test func twoInitiators() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run(Self.reserve6, nexus: Self.a).status == .good)
        #expect(await t.run(Self.reserve6, nexus: Self.a).status == .good)
        #expect(await t.run(Self.reserve6, nexus: Self.b).status == .reservationConflict)
        #expect(await t.run(Self.release6, nexus: Self.b).status == .good)  // a no-op
        #expect(await t.run(CDB.modeSense6(page: 0x3F), nexus: Self.a).status == .good)
        #expect(await t.run(CDB.modeSense6(page: 0x3F), nexus: Self.b).status == .reservationConflict)
        #expect(await t.run(CDB.testUnitReady, nexus: Self.b).status == .reservationConflict)
        #expect(await t.run(CDB.read10(0, 1), nexus: Self.b).status == .reservationConflict)
        #expect(await t.run(CDB.inquiry(alloc: 36), nexus: Self.b).status == .good)
        #expect(await t.run(CDB.reportLUNs(), nexus: Self.b).status == .good)
        #expect(await t.run(CDB.requestSense(), nexus: Self.b).status == .good)
        #expect(await t.run(Self.release6, nexus: Self.a).status == .good)
        #expect(await t.run(Self.reserve6, nexus: Self.b).status == .good)
        #expect(await t.run(Self.release6, nexus: Self.b).status == .good)
        #expect(await t.run(CDB.read10(0, 1), nexus: Self.a).status == .good)
    }

    /// iscsi-test-cu SCSI.Reserve6.LUNReset / TargetWarmReset.
    @Test(arguments: [TaskManagementFunction.logicalUnitReset, .targetWarmReset, .targetColdReset])
    func resetReleases(_ function: TaskManagementFunction) async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run(Self.reserve6, nexus: Self.a).status == .good)
        #expect(await t.taskManagement(function, lun: 0, nexus: Self.a) == .functionComplete)
        #expect(await t.run(Self.reserve6, nexus: Self.b).hasSense(.busDeviceResetFunctionOccurred))
        #expect(await t.run(Self.reserve6, nexus: Self.b).status == .good)
    }

    /// iscsi-test-cu SCSI.Reserve6.ITNexusLoss / Logout.
    @Test func nexusLossReleases() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run(Self.reserve6, nexus: Self.a).status == .good)
        await t.nexusLost(Self.a)
        #expect(await t.run(Self.reserve6, nexus: Self.b).status == .good)
    }
}

/// COMPARE AND WRITE (iscsi-test-cu SCSI.CompareAndWrite.*).
@Suite struct CompareAndWriteTests {
    static func cdb(_ lba: UInt64, _ n: UInt8) -> [UInt8] { [0x89, 0] + CDB.be(lba, 8) + [0, 0, 0, n, 0, 0] }

    @Test func simpleAndMiscompare() async {
        let (t, _) = await Fixture.readyTarget()
        let old = [UInt8](repeating: 0x11, count: 512)
        let new = [UInt8](repeating: 0x22, count: 512)
        _ = await t.run(CDB.write10(5, 1), data: old)
        #expect(await t.run(Self.cdb(5, 1), data: old + new).status == .good)
        #expect(await t.run(CDB.read10(5, 1)).data == new)
        var wrong = new
        wrong[100] = 0
        let r = await t.run(Self.cdb(5, 1), data: wrong + old)
        #expect(r.hasSense(.miscompareDuringVerifyOperation))
        #expect(Array(r.sense[3...6]) == [0, 0, 0, 100])
        #expect(await t.run(CDB.read10(5, 1)).data == new)
    }

    @Test func limitsAndDataSize() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run(Self.cdb(0, 2), data: [UInt8](repeating: 0, count: 2048)).hasSense(.invalidFieldInCDB))
        #expect(
            await t.run(Self.cdb(0, 1), data: [UInt8](repeating: 0, count: 512)).hasSense(
                .invalidFieldInInformationUnit))
        #expect(
            await t.run(Self.cdb(Fixture.blockCount, 1), data: [UInt8](repeating: 0, count: 1024)).hasSense(
                .lbaOutOfRange))
        #expect(await t.run(Self.cdb(0, 0)).status == .good)
    }

    /// iscsi-test-cu SCSI.WriteSame10.InvalidDataOutSize: WRITE SAME needs exactly one block.
    @Test func writeSameDataOutSize() async {
        let (t, _) = await Fixture.readyTarget()
        let ws: [UInt8] = [0x41, 0x08, 0, 0, 0, 0, 0, 0, 1, 0]
        #expect(await t.run(ws, data: [UInt8](repeating: 0, count: 256)).status == .checkCondition)
        #expect(await t.run(ws, data: [UInt8](repeating: 0, count: 1024)).status == .checkCondition)
        #expect(await t.run(ws, data: [UInt8](repeating: 0, count: 512)).status == .good)
    }
}
