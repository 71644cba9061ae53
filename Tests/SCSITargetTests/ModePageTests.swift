import Testing

@testable import SCSITarget
@testable import SCSIWire

@Suite struct ModePageTests {
    @Test func allPagesSense6() async {
        let (t, _) = await Fixture.readyTarget()
        let d = await t.run(CDB.modeSense6(page: 0x3F)).data
        #expect(Int(d[0]) == d.count - 1)
        #expect(d[3] == 8)  // one short block descriptor
        #expect(Array(d[4..<8]) == [0, 0, 4, 0])  // 1024 blocks
        #expect(Array(d[9..<12]) == [0, 2, 0])  // 512-byte blocks
        var codes: [UInt8] = []
        var i = 12
        while i < d.count { codes.append(d[i] & 0x3F); i += 2 + Int(d[i + 1]) }
        #expect(codes == [0x08, 0x0A, 0x1C])
    }

    @Test func sense10LongLBAAndDBD() async {
        let (t, _) = await Fixture.readyTarget()
        let d = await t.run(CDB.modeSense10(page: 0x08, llbaa: true)).data
        #expect(d[4] & 1 == 1 && d[7] == 16)
        #expect(Int(d[0]) << 8 | Int(d[1]) == d.count - 2)
        let n = await t.run(CDB.modeSense6(page: 0x0A, dbd: true)).data
        #expect(n[3] == 0 && n[4] == 0x0A && n.count == 16)
    }

    @Test func pageControls() async {
        let (t, _) = await Fixture.readyTarget()
        let changeable = await t.run(CDB.modeSense6(page: 0x08, pc: 1, dbd: true)).data
        #expect(changeable[4] == 0x08 && changeable[6] == 0x04)
        let defaults = await t.run(CDB.modeSense6(page: 0x08, pc: 2, dbd: true)).data
        #expect(defaults[6] & 0x04 != 0)
        #expect(await t.run(CDB.modeSense6(page: 0x08, pc: 3)).hasSense(.savingParametersNotSupported))
        #expect(await t.run(CDB.modeSense6(page: 0x02)).hasSense(.invalidFieldInCDB))
    }

    @Test func selectRoundTripAndUnitAttention() async {
        let (t, _) = await Fixture.readyTarget()
        var page = ModePageCode.caching.defaultPage
        page[2] &= ~0x04  // WCE off
        let params: [UInt8] = [0, 0, 0, 0] + page
        let r = await t.run(CDB.modeSelect6(length: UInt8(params.count)), data: params)
        #expect(r.status == .good)
        let d = await t.run(CDB.modeSense6(page: 0x08, dbd: true)).data
        #expect(d[6] & 0x04 == 0)
        // SPC-4 §6.11: the other nexus learns of it; the changer does not.
        #expect(await t.run(CDB.testUnitReady).status == .good)
        #expect(await t.run(CDB.testUnitReady, nexus: Fixture.nexusB).hasSense(.modeParametersChanged))
        #expect(await t.run(CDB.testUnitReady, nexus: Fixture.nexusB).status == .good)
    }

    @Test func selectRejectsUnchangeableBitsAndBadLengths() async {
        let (t, _) = await Fixture.readyTarget()
        var page = ModePageCode.control.defaultPage
        page[2] |= 0x02  // GLTSD: not changeable
        let params: [UInt8] = [0, 0, 0, 0] + page
        #expect(
            await t.run(CDB.modeSelect6(length: UInt8(params.count)), data: params).hasSense(
                .invalidFieldInParameterList))
        #expect(await t.run(CDB.modeSelect6(length: 2), data: [0, 0]).hasSense(.parameterListLengthError))
        #expect(await t.run(CDB.modeSelect6(length: 4), data: [0, 0]).hasSense(.parameterListLengthError))
        let sp: [UInt8] = [0x15, 0x11, 0, 0, 4, 0]
        #expect(await t.run(sp, data: [0, 0, 0, 0]).hasSense(.invalidFieldInCDB))
        // Block descriptor with a different block length.
        let bd: [UInt8] = [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x10, 0]
        #expect(await t.run(CDB.modeSelect6(length: 12), data: bd).hasSense(.invalidFieldInParameterList))
        let same: [UInt8] = [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0x02, 0]
        #expect(await t.run(CDB.modeSelect6(length: 12), data: same).status == .good)
    }

    @Test func sense6AllocationSweep() async {
        let (t, _) = await Fixture.readyTarget()
        let full = await t.run(CDB.modeSense6(page: 0x3F)).data
        for alloc in 0...255 {
            let r = await t.run(CDB.modeSense6(page: 0x3F, alloc: UInt8(alloc)))
            #expect(r.data == Array(full.prefix(alloc)))
        }
    }
}
