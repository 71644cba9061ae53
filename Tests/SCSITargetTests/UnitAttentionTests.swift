import Synchronization
import Testing

@testable import SCSITarget
@testable import SCSIWire

/// Unit attention delivery rules (SAM-5 §5.14, SPC-4 §5.9).
@Suite struct UnitAttentionTests {
    @Test func powerOnReportedOncePerNexus() async {
        let (t, _) = Fixture.target()
        #expect(await t.run(CDB.testUnitReady).hasSense(.powerOnResetOrBusDeviceResetOccurred))
        #expect(await t.run(CDB.testUnitReady).status == .good)
        #expect(await t.run(CDB.read10(0, 1), nexus: Fixture.nexusB).hasSense(.powerOnResetOrBusDeviceResetOccurred))
    }

    @Test func inquiryAndReportLUNsDoNotConsume() async {
        let (t, _) = Fixture.target()
        #expect(await t.run(CDB.inquiry(alloc: 36)).status == .good)
        #expect(await t.run(CDB.reportLUNs()).status == .good)
        #expect(await t.run(CDB.testUnitReady).hasSense(.powerOnResetOrBusDeviceResetOccurred))
    }

    /// REQUEST SENSE reports the unit attention as parameter data and clears it.
    @Test func requestSenseReturnsAndClears() async {
        let (t, _) = Fixture.target()
        let r = await t.run(CDB.requestSense())
        #expect(r.status == .good && r.data[2] == 0x06 && r.data[12] == 0x29)
        #expect(await t.run(CDB.testUnitReady).status == .good)
        let none = await t.run(CDB.requestSense())
        #expect(none.data[2] == 0 && none.data[12] == 0)
    }

    @Test func unitAttentionBeatsCDBError() async {
        let (t, _) = Fixture.target()
        #expect(await t.run([0xFF, 0, 0, 0, 0, 0]).hasSense(.powerOnResetOrBusDeviceResetOccurred))
        #expect(await t.run([0xFF, 0, 0, 0, 0, 0]).hasSense(.invalidCommandOperationCode))
    }

    @Test func logicalUnitResetSetsUnitAttentionForAll() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.taskManagement(.logicalUnitReset, lun: 0, nexus: Fixture.nexusA) == .functionComplete)
        #expect(await t.run(CDB.testUnitReady).hasSense(.busDeviceResetFunctionOccurred))
        #expect(await t.run(CDB.testUnitReady, nexus: Fixture.nexusB).hasSense(.busDeviceResetFunctionOccurred))
        #expect(await t.run(CDB.testUnitReady).status == .good)
        #expect(
            await t.taskManagement(.logicalUnitReset, lun: LUNAddress.encode(9), nexus: Fixture.nexusA)
                == .lunDoesNotExist)
    }

    /// A returning nexus is new: 29/00, the only reset ASCQ libiscsi's RESERVE helpers retry through.
    @Test func nexusLossReportedOnReturn() async {
        let (t, _) = await Fixture.readyTarget()
        await t.nexusLost(Fixture.nexusB)
        #expect(await t.run(CDB.testUnitReady, nexus: Fixture.nexusB).hasSense(.powerOnResetOrBusDeviceResetOccurred))
        #expect(await t.run(CDB.testUnitReady).status == .good)
    }

    @Test func queueOrderAndResetPrecedence() async {
        let c = SharedLogicalUnitContext()
        let n = Fixture.nexusA
        #expect(c.unitAttention(for: n, consume: false) == .powerOnResetOrBusDeviceResetOccurred)
        #expect(c.unitAttention(for: n, consume: true) == .powerOnResetOrBusDeviceResetOccurred)
        await c.establishUnitAttention(.modeParametersChanged, scope: .allNexuses)
        await c.establishUnitAttention(.capacityDataHasChanged, scope: .allNexuses)
        await c.establishUnitAttention(.modeParametersChanged, scope: .allNexuses)
        #expect(c.unitAttention(for: n, consume: true) == .modeParametersChanged)
        await c.establishUnitAttention(.busDeviceResetFunctionOccurred, scope: .only(n))
        #expect(c.unitAttention(for: n, consume: true) == .busDeviceResetFunctionOccurred)
        #expect(c.unitAttention(for: n, consume: true) == nil)
    }
}
