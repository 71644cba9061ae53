import BlockStorage
import Testing

@testable import SCSITarget
@testable import SCSIWire

/// PERSISTENT RESERVE IN/OUT (iscsi-test-cu SCSI.Prout*/Prin*).
@Suite struct PersistentReservationTests {
    static let a = Fixture.nexusA
    static let b = Fixture.nexusB
    static let c = ITNexus(
        initiatorName: "iqn.2026-01.test:c", isid: 3, targetName: "iqn.2026-01.tessera:t", portalGroupTag: 1)

    static func out(_ sa: PersistentReserveOutAction, type: UInt8 = 0, key: UInt64, sark: UInt64 = 0) -> (
        cdb: [UInt8], data: [UInt8]
    ) {
        (
            [0x5F, sa.rawValue, type, 0, 0, 0, 0, 0, 24, 0],
            PersistentReserveOutParameters(reservationKey: key, serviceActionReservationKey: sark).bytes
        )
    }

    static func run(
        _ t: SCSITargetDevice, _ sa: PersistentReserveOutAction, type: UInt8 = 0, key: UInt64, sark: UInt64 = 0,
        nexus: ITNexus
    ) async -> SCSIResponse {
        let o = out(sa, type: type, key: key, sark: sark)
        return await t.run(o.cdb, nexus: nexus, data: o.data)
    }

    static func readIn(_ t: SCSITargetDevice, _ sa: UInt8, nexus: ITNexus = a) async -> [UInt8] {
        await t.run([0x5E, sa, 0, 0, 0, 0, 0, 0x10, 0, 0], nexus: nexus).data
    }

    static func ready() async -> SCSITargetDevice {
        let (t, _) = await Fixture.readyTarget()
        _ = await t.run(CDB.testUnitReady, nexus: c)
        return t
    }

    @Test func registerReadKeysAndUnregister() async {
        let t = await Self.ready()
        #expect(await Self.run(t, .register, key: 0, sark: 0xAA, nexus: Self.a).status == .good)
        #expect(await Self.run(t, .register, key: 0, sark: 0xBB, nexus: Self.b).status == .good)
        // Re-registering with the wrong key conflicts.
        #expect(await Self.run(t, .register, key: 0, sark: 0xCC, nexus: Self.a).status == .reservationConflict)
        let keys = await Self.readIn(t, 0)
        #expect(Array(keys[0..<8]) == [0, 0, 0, 2, 0, 0, 0, 16])
        #expect(keys[15] == 0xAA && keys[23] == 0xBB)
        #expect(await Self.run(t, .register, key: 0xAA, sark: 0, nexus: Self.a).status == .good)
        #expect(await Self.readIn(t, 0)[7] == 8)
        #expect(await Self.run(t, .registerAndIgnoreExistingKey, key: 0, sark: 0xDD, nexus: Self.b).status == .good)
        #expect(await Self.readIn(t, 0)[15] == 0xDD)
        // PRin truncation (iscsi-test-cu SCSI.PrinReadKeys.Truncate).
        #expect(await t.run([0x5E, 0, 0, 0, 0, 0, 0, 0, 4, 0]).dataInLength == 4)
    }

    /// iscsi-test-cu SCSI.ProutReserve.AccessWE / AccessEA.
    @Test(arguments: [PersistentReservationType.writeExclusive, .exclusiveAccess])
    func accessRules(_ type: PersistentReservationType) async {
        let t = await Self.ready()
        _ = await Self.run(t, .register, key: 0, sark: 1, nexus: Self.a)
        _ = await Self.run(t, .register, key: 0, sark: 2, nexus: Self.b)
        #expect(await Self.run(t, .reserve, type: type.rawValue, key: 1, nexus: Self.a).status == .good)
        #expect(await Self.run(t, .reserve, type: type.rawValue, key: 2, nexus: Self.b).status == .reservationConflict)
        let block = [UInt8](repeating: 7, count: 512)
        #expect(await t.run(CDB.write10(0, 1), nexus: Self.a, data: block).status == .good)
        #expect(await t.run(CDB.write10(0, 1), nexus: Self.b, data: block).status == .reservationConflict)
        let read = await t.run(CDB.read10(0, 1), nexus: Self.c)
        #expect(read.status == (type == .exclusiveAccess ? .reservationConflict : .good))
        #expect(await t.run(CDB.testUnitReady, nexus: Self.c).status == .good)
        let rr = await Self.readIn(t, 1)
        #expect(rr[7] == 16 && rr[15] == 1 && rr[21] == type.rawValue)
        // Wrong type on release → INVALID RELEASE OF PERSISTENT RESERVATION.
        let other: UInt8 = type == .writeExclusive ? 3 : 1
        #expect(
            await Self.run(t, .release, type: other, key: 1, nexus: Self.a).hasSense(
                .invalidReleaseOfPersistentReservation))
        #expect(await Self.run(t, .release, type: type.rawValue, key: 1, nexus: Self.a).status == .good)
        #expect(await t.run(CDB.write10(0, 1), nexus: Self.b, data: block).status == .good)
    }

    /// iscsi-test-cu SCSI.ProutReserve.AccessWERO / AccessEAAR: registrants share access.
    @Test(arguments: [PersistentReservationType.writeExclusiveRegistrantsOnly, .exclusiveAccessAllRegistrants])
    func registrantsShareAccess(_ type: PersistentReservationType) async {
        let t = await Self.ready()
        _ = await Self.run(t, .register, key: 0, sark: 1, nexus: Self.a)
        _ = await Self.run(t, .register, key: 0, sark: 2, nexus: Self.b)
        #expect(await Self.run(t, .reserve, type: type.rawValue, key: 1, nexus: Self.a).status == .good)
        let block = [UInt8](repeating: 7, count: 512)
        #expect(await t.run(CDB.write10(0, 1), nexus: Self.b, data: block).status == .good)
        #expect(await t.run(CDB.write10(0, 1), nexus: Self.c, data: block).status == .reservationConflict)
        if type.allRegistrants {
            #expect(await Self.readIn(t, 1)[15] == 0)  // all-registrants: key 0
            // The reservation outlives its creator's unregistration.
            _ = await Self.run(t, .register, key: 1, sark: 0, nexus: Self.a)
            #expect(await Self.readIn(t, 1)[7] == 16)
        }
    }

    /// iscsi-test-cu SCSI.ProutPreempt.RemoveRegistration and SCSI.ProutClear.Simple.
    @Test func preemptAndClear() async {
        let t = await Self.ready()
        _ = await Self.run(t, .register, key: 0, sark: 1, nexus: Self.a)
        _ = await Self.run(t, .register, key: 0, sark: 2, nexus: Self.b)
        _ = await Self.run(t, .reserve, type: 1, key: 2, nexus: Self.b)
        #expect(await Self.run(t, .preempt, type: 3, key: 1, sark: 2, nexus: Self.a).status == .good)
        let rr = await Self.readIn(t, 1)
        #expect(rr[15] == 1 && rr[21] == 3)
        #expect(await t.run(CDB.testUnitReady, nexus: Self.b).hasSense(.registrationsPreempted))
        #expect(await Self.readIn(t, 0)[7] == 8)
        #expect(await Self.run(t, .preempt, type: 3, key: 1, sark: 9, nexus: Self.a).status == .reservationConflict)
        _ = await Self.run(t, .register, key: 0, sark: 3, nexus: Self.c)
        #expect(await Self.run(t, .clear, key: 1, nexus: Self.a).status == .good)
        #expect(await Self.readIn(t, 0)[7] == 0)
        #expect(await Self.readIn(t, 1)[7] == 0)
        #expect(await t.run(CDB.testUnitReady, nexus: Self.c).hasSense(.reservationsPreempted))
    }

    @Test func spc2AndPersistentExcludeEachOther() async {
        let t = await Self.ready()
        _ = await Self.run(t, .register, key: 0, sark: 1, nexus: Self.a)
        #expect(await t.run([0x16, 0, 0, 0, 0, 0], nexus: Self.b).status == .reservationConflict)
        _ = await Self.run(t, .register, key: 1, sark: 0, nexus: Self.a)
        #expect(await t.run([0x16, 0, 0, 0, 0, 0], nexus: Self.b).status == .good)
        #expect(await Self.run(t, .register, key: 0, sark: 1, nexus: Self.a).status == .reservationConflict)
        #expect(await t.run([0x5E, 0, 0, 0, 0, 0, 0, 0x10, 0, 0], nexus: Self.a).status == .reservationConflict)
    }

    @Test func capabilitiesFullStatusAndErrors() async {
        let t = await Self.ready()
        let caps = await Self.readIn(t, 2)
        #expect(caps.count == 8 && caps[1] == 8 && caps[3] & 0x80 != 0)
        _ = await Self.run(t, .register, key: 0, sark: 0x1234, nexus: Self.a)
        _ = await Self.run(t, .reserve, type: 1, key: 0x1234, nexus: Self.a)
        let fs = await Self.readIn(t, 3)
        #expect(fs[15] == 0x34 && fs[20] == 0x01 && fs[21] == 0x01)
        #expect(fs[32] == 0x45)  // TransportID: format 01b, iSCSI
        let name = String(decoding: fs[36...].prefix { $0 != 0 }, as: UTF8.self)
        #expect(name == Self.a.initiatorPortName)
        // Service action 4 of PR IN does not exist (iscsi-test-cu SCSI.PrinServiceactionRange).
        #expect(await t.run([0x5E, 4, 0, 0, 0, 0, 0, 0x10, 0, 0]).hasSense(.invalidFieldInCDB))
        // Parameter list length other than 24.
        #expect(
            await t.run([0x5F, 0, 0, 0, 0, 0, 0, 0, 20, 0], data: [UInt8](repeating: 0, count: 20)).hasSense(
                .parameterListLengthError))
        // APTPL is offered (no store configured: the state simply lives in memory).
        var p = PersistentReserveOutParameters(reservationKey: 0x1234, serviceActionReservationKey: 5, aptpl: true)
            .bytes
        #expect(await t.run([0x5F, 0, 0, 0, 0, 0, 0, 0, 24, 0], data: p).status == .good)
        // ALL_TG_PT with RESERVE → INVALID FIELD IN PARAMETER LIST.
        p = PersistentReserveOutParameters(reservationKey: 5, serviceActionReservationKey: 0, allTgPt: true).bytes
        #expect(await t.run([0x5F, 1, 0x01, 0, 0, 0, 0, 0, 24, 0], data: p).hasSense(.invalidFieldInParameterList))
        p = PersistentReserveOutParameters(reservationKey: 5, serviceActionReservationKey: 0).bytes
        #expect(await t.run([0x5F, 1, 0x09, 0, 0, 0, 0, 0, 24, 0], data: p).hasSense(.invalidFieldInCDB))  // type 9
    }

    /// Registrations survive resets and nexus loss (SPC-4 §5.13.1).
    @Test func survivesResets() async {
        let t = await Self.ready()
        _ = await Self.run(t, .register, key: 0, sark: 1, nexus: Self.a)
        _ = await Self.run(t, .reserve, type: 1, key: 1, nexus: Self.a)
        _ = await t.taskManagement(.logicalUnitReset, lun: 0, nexus: Self.a)
        await t.nexusLost(Self.a)
        _ = await t.run(CDB.testUnitReady, nexus: Self.b)
        #expect(
            await t.run(CDB.write10(0, 1), nexus: Self.b, data: [UInt8](repeating: 0, count: 512)).status
                == .reservationConflict)
    }
}
