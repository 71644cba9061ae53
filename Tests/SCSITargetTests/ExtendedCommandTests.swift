import BlockStorage
import Foundation
import Synchronization
import Testing
import TesseraTestKit

@testable import SCSITarget
@testable import SCSIWire

/// SPC-4/SBC-3 commands beyond the basics: EXTENDED COPY, RECEIVE COPY RESULTS, GET LBA STATUS,
/// SANITIZE, ORWRITE, WRITE ATOMIC, READ DEFECT DATA, APTPL persistence.
@Suite struct ExtendedCommandTests {
    static let bs = Int(Fixture.blockSize)

    static func twoUnits() async -> (SCSITargetDevice, LogicalUnit, LogicalUnit) {
        let geometry = BlockGeometry(blockSize: Fixture.blockSize, blockCount: Fixture.blockCount)
        let u0 = LogicalUnit(configuration: Fixture.configuration(), device: MemoryBlockDevice(geometry: geometry))
        let u1 = LogicalUnit(
            configuration: LogicalUnitConfiguration(serial: "TSR0002", identifier: 0x2222),
            device: MemoryBlockDevice(geometry: geometry))
        let t = SCSITargetDevice(logicalUnits: [0: u0, 1: u1])
        for lun: UInt16 in [0, 1] { _ = await t.run(CDB.testUnitReady, lun: lun) }
        return (t, u0, u1)
    }

    /// An identification CSCD descriptor naming `unit` by its NAA designator.
    static func cscd(_ unit: LogicalUnit, type: UInt8 = 0xE4) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 32)
        d[0] = type
        d[4] = 0x01  // binary
        d[5] = 0x03  // NAA
        d[7] = 16
        for (i, b) in unit.configuration.naaIdentifier.enumerated() { d[8 + i] = b }
        d[30] = UInt8(Fixture.blockSize >> 8)
        d[31] = UInt8(Fixture.blockSize & 0xFF)
        return d
    }

    static func segment(src: UInt16, dst: UInt16, blocks: UInt16, from: UInt64, to: UInt64) -> [UInt8] {
        [0x02, 0, 0, 0x18] + CDB.be(UInt64(src), 2) + CDB.be(UInt64(dst), 2) + [0, 0] + CDB.be(UInt64(blocks), 2)
            + CDB.be(from, 8) + CDB.be(to, 8)
    }

    static func xcopy(list: UInt8 = 1, targets: [[UInt8]], segments: [[UInt8]]) -> [UInt8] {
        let t = targets.flatMap { $0 }
        let s = segments.flatMap { $0 }
        var h = [UInt8](repeating: 0, count: 16)
        h[0] = list
        h[2] = UInt8(t.count >> 8)
        h[3] = UInt8(t.count & 0xFF)
        h[8...11] = ArraySlice(CDB.be(UInt64(s.count), 4))
        return h + t + s
    }

    static func xcopyCDB(_ length: Int) -> [UInt8] { [0x83, 0] + [UInt8](repeating: 0, count: 8) + CDB.be(UInt64(length), 4) + [0, 0] }

    @Test func extendedCopyBetweenLogicalUnits() async {
        let (t, u0, u1) = await Self.twoUnits()
        let pattern = (0..<(4 * Self.bs)).map { UInt8(truncatingIfNeeded: $0 * 7) }
        #expect(await t.run(CDB.write16(10, 4), data: pattern).status == .good)
        let list = Self.xcopy(
            targets: [Self.cscd(u0), Self.cscd(u1)], segments: [Self.segment(src: 0, dst: 1, blocks: 4, from: 10, to: 100)])
        #expect(await t.run(Self.xcopyCDB(list.count), data: list).status == .good)
        #expect(await t.run(CDB.read16(100, 4), lun: 1).data == pattern)
        // COPY STATUS for list 1: completed, one segment, 4 blocks.
        let status = await t.run([0x84, 0x00, 1] + [UInt8](repeating: 0, count: 7) + CDB.be(64, 4) + [0, 0]).data
        #expect(status.count == 12 && status[4] == 1 && status[6] == 1 && status[11] == 4)
        // No result for list 9 → INVALID FIELD IN CDB.
        #expect(await t.run([0x84, 0x00, 9] + [UInt8](repeating: 0, count: 7) + CDB.be(64, 4) + [0, 0]).hasSense(.invalidFieldInCDB))
        // OPERATING PARAMETERS report the limits decode enforces.
        let op = await t.run([0x84, 0x03, 0] + [UInt8](repeating: 0, count: 7) + CDB.be(128, 4) + [0, 0]).data
        #expect(Int(op.be16(8)) == ExtendedCopyLimits.maximumTargetDescriptors)
    }

    @Test func extendedCopyErrors() async {
        let (t, u0, _) = await Self.twoUnits()
        let good = Self.segment(src: 0, dst: 0, blocks: 8, from: 0, to: 200)
        func run(_ list: [UInt8], length: Int? = nil) async -> SCSIResponse {
            await t.run(Self.xcopyCDB(length ?? list.count), data: Array(list.prefix(length ?? list.count)))
        }
        #expect(await run([], length: 0).status == .good)
        let whole = Self.xcopy(targets: [Self.cscd(u0)], segments: [good])
        #expect(await run(whole, length: whole.count - 1).hasSense(.parameterListLengthError))
        let nine = Self.xcopy(targets: Array(repeating: Self.cscd(u0), count: 9), segments: [good])
        #expect(await run(nine).hasSense(.tooManyTargetDescriptors))
        let nineSegments = Self.xcopy(targets: [Self.cscd(u0)], segments: Array(repeating: good, count: 9))
        #expect(await run(nineSegments).hasSense(.tooManySegmentDescriptors))
        #expect(await run(Self.xcopy(targets: [Self.cscd(u0, type: 0xE0)], segments: [good])).hasSense(
            .unsupportedTargetDescriptorTypeCode))
        var stream = good
        stream[0] = 0x03
        #expect(await run(Self.xcopy(targets: [Self.cscd(u0)], segments: [stream])).hasSense(
            .unsupportedSegmentDescriptorTypeCode))
        let badIndex = Self.segment(src: 0, dst: 1, blocks: 8, from: 0, to: 200)
        #expect(await run(Self.xcopy(targets: [Self.cscd(u0)], segments: [badIndex])).hasSense(
            .copyTargetDeviceNotReachable))
        let beyond = Self.segment(src: 0, dst: 0, blocks: 8, from: 0, to: Fixture.blockCount - 1)
        #expect(await run(Self.xcopy(targets: [Self.cscd(u0)], segments: [beyond])).hasSense(.copyAborted))
        let overflow = Self.segment(src: 0, dst: 0, blocks: 8, from: UInt64.max - 2, to: 0)
        #expect(await run(Self.xcopy(targets: [Self.cscd(u0)], segments: [overflow])).hasSense(.copyAborted))
    }

    static func getLBAStatus(_ lba: UInt64, alloc: UInt32 = 1024) -> [UInt8] {
        [0x9E, 0x12] + CDB.be(lba, 8) + CDB.be(UInt64(alloc), 4) + [0, 0]
    }

    @Test func getLBAStatusFollowsAllocation() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run(CDB.write16(8, 4), data: [UInt8](repeating: 1, count: 4 * Self.bs)).status == .good)
        let d = await t.run(Self.getLBAStatus(0)).data
        // [0,8) deallocated, [8,12) mapped, rest deallocated.
        #expect(d.count == 8 + 3 * 16)
        #expect(d.be64(8) == 0 && d.be32(16) == 8 && d[20] == 1)
        #expect(d.be64(24) == 8 && d.be32(32) == 4 && d[36] == 0)
        #expect(d.be64(40) == 12 && d[52] == 1)
        let unmap: [UInt8] = [0, 22, 0, 16] + [0, 0, 0, 0] + CDB.be(9, 8) + CDB.be(1, 4) + [0, 0, 0, 0]
        #expect(await t.run([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], data: unmap).status == .good)
        let after = await t.run(Self.getLBAStatus(9)).data
        #expect(after.be64(8) == 9 && after.be32(16) == 1 && after[20] == 1)
        #expect(await t.run(Self.getLBAStatus(Fixture.blockCount)).hasSense(.lbaOutOfRange))
        #expect(await t.run(Self.getLBAStatus(UInt64.max)).hasSense(.lbaOutOfRange))
    }

    @Test func thickUnitOffersNoThinCommands() async {
        let dev = MemoryBlockDevice(geometry: BlockGeometry(blockSize: Fixture.blockSize, blockCount: Fixture.blockCount))
        let unit = LogicalUnit(configuration: Fixture.configuration(thin: false), device: dev)
        let t = SCSITargetDevice(logicalUnits: [0: unit])
        _ = await t.run(CDB.testUnitReady)
        #expect(await t.run(CDB.rsoc(options: 1, opcode: 0x42)).data.prefix(2) == [0, 0x01])
        #expect(await t.run(CDB.rsoc(options: 2, opcode: 0x9E, sa: 0x12)).data.prefix(2) == [0, 0x01])
        #expect(await t.run([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], data: [UInt8](repeating: 0, count: 24)).hasSense(
            .invalidCommandOperationCode))
        #expect(await t.run(Self.getLBAStatus(0)).hasSense(.invalidFieldInCDB))
        #expect(await t.run([0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]).hasSense(.invalidFieldInCDB))
    }

    @Test func sanitize() async {
        let (t, dev) = await Fixture.readyTarget()
        #expect(await t.run(CDB.write16(0, 2), data: [UInt8](repeating: 0x61, count: 2 * Self.bs)).status == .good)
        // OVERWRITE with a 4-byte pattern, one pass.
        let list: [UInt8] = [0x01, 0, 0, 4, 0xDE, 0xAD, 0xBE, 0xEF]
        #expect(await t.run([0x48, 0x01, 0, 0, 0, 0, 0, 0, 8, 0], data: list).status == .good)
        let back = await t.run(CDB.read16(Fixture.blockCount - 1, 1)).data
        #expect(back.prefix(4) == [0xDE, 0xAD, 0xBE, 0xEF] && back[4] == 0xDE)
        // Parameter list length 4 and count 0 → errors.
        #expect(await t.run([0x48, 0x01, 0, 0, 0, 0, 0, 0, 4, 0], data: Array(list.prefix(4))).hasSense(.invalidFieldInCDB))
        #expect(await t.run([0x48, 0x01, 0, 0, 0, 0, 0, 0, 8, 0], data: [0, 0, 0, 4, 1, 2, 3, 4]).hasSense(
            .invalidFieldInParameterList))
        // BLOCK ERASE deallocates everything.
        #expect(await t.run([0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]).status == .good)
        let lba = await t.run(Self.getLBAStatus(0)).data
        #expect(lba.be32(16) == UInt32(Fixture.blockCount) && lba[20] == 1)
        #expect(await t.run(CDB.read16(0, 1)).data == [UInt8](repeating: 0, count: Self.bs))
        // CRYPTOGRAPHIC ERASE is not offered: INVALID FIELD IN CDB on the service action.
        #expect(await t.run([0x48, 0x03, 0, 0, 0, 0, 0, 0, 0, 0]).hasSense(.invalidFieldInCDB))
        _ = dev
    }

    @Test func orWriteAndWriteAtomic() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run(CDB.write16(5, 1), data: [UInt8](repeating: 0x0F, count: Self.bs)).status == .good)
        let orw = [0x8B, 0] + CDB.be(5, 8) + CDB.be(1, 4) + [0, 0]
        #expect(await t.run(orw, data: [UInt8](repeating: 0xF0, count: Self.bs)).status == .good)
        #expect(await t.run(CDB.read16(5, 1)).data == [UInt8](repeating: 0xFF, count: Self.bs))
        let atomic = { (lba: UInt64, n: UInt16) in [0x9C, 0] + CDB.be(lba, 8) + [0, 0] + CDB.be(UInt64(n), 2) + [0, 0] }
        #expect(await t.run(atomic(0, 2), data: [UInt8](repeating: 3, count: 2 * Self.bs)).status == .good)
        #expect(await t.run(atomic(Fixture.blockCount - 1, 2), data: [UInt8](repeating: 3, count: 2 * Self.bs))
            .hasSense(.lbaOutOfRange))
        #expect(await t.run(atomic(UInt64.max, 1), data: [UInt8](repeating: 3, count: Self.bs)).hasSense(.lbaOutOfRange))
        #expect(await t.run(atomic(0, 0)).status == .good)
        // READ DEFECT DATA: empty lists.
        #expect(await t.run([0x37, 0, 0x18, 0, 0, 0, 0, 0, 4, 0]).data == [0, 0x18, 0, 0])
        // START STOP UNIT: LOEJ on a non-removable unit is refused; a plain start is fine.
        #expect(await t.run([0x1B, 1, 0, 0, 0x02, 0]).hasSense(.invalidFieldInCDB))
        #expect(await t.run([0x1B, 0, 0, 0, 0x01, 0]).status == .good)
    }

    @Test func aptplSurvivesARestart() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pr-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = FileReservationStateStore(directory: dir)
        let geometry = BlockGeometry(blockSize: Fixture.blockSize, blockCount: Fixture.blockCount)
        func target() -> SCSITargetDevice {
            SCSITargetDevice(logicalUnits: [
                0: LogicalUnit(
                    configuration: Fixture.configuration(), device: MemoryBlockDevice(geometry: geometry),
                    reservationStore: store)
            ])
        }
        let first = target()
        _ = await first.run(CDB.testUnitReady)
        let register = PersistentReserveOutParameters(reservationKey: 0, serviceActionReservationKey: 0xABC, aptpl: true)
        #expect(await first.run([0x5F, 0, 0, 0, 0, 0, 0, 0, 24, 0], data: register.bytes).status == .good)
        let reserve = PersistentReserveOutParameters(reservationKey: 0xABC, serviceActionReservationKey: 0)
        #expect(await first.run([0x5F, 1, 0x03, 0, 0, 0, 0, 0, 24, 0], data: reserve.bytes).status == .good)
        let keys = await first.run([0x5E, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]).data
        let reservation = await first.run([0x5E, 1, 0, 0, 0, 0, 0, 0x10, 0, 0]).data
        // "Restart": a new target over the same store.
        let second = target()
        _ = await second.run(CDB.testUnitReady)
        #expect(await second.run([0x5E, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]).data == keys)
        #expect(await second.run([0x5E, 1, 0, 0, 0, 0, 0, 0x10, 0, 0]).data == reservation)
        // B is locked out by the restored Exclusive Access reservation.
        _ = await second.run(CDB.testUnitReady, nexus: Fixture.nexusB)
        #expect(await second.run(CDB.read16(0, 1), nexus: Fixture.nexusB).status == .reservationConflict)
        // APTPL off on the next registration: nothing persists any more.
        let off = PersistentReserveOutParameters(reservationKey: 0xABC, serviceActionReservationKey: 0xDEF)
        #expect(await second.run([0x5F, 0, 0, 0, 0, 0, 0, 0, 24, 0], data: off.bytes).status == .good)
        let third = target()
        _ = await third.run(CDB.testUnitReady)
        #expect(await third.run([0x5E, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]).data.be32(4) == 0)
    }
}

/// COMPARE AND WRITE is atomic with respect to every command on the unit, not only other CAWs.
@Suite struct CompareAndWriteAtomicityTests {
    @Test func compareAndWriteWaitsForAWriteInFlight() async {
        let dev = ControlledBlockDevice(geometry: BlockGeometry(blockSize: Fixture.blockSize, blockCount: 64))
        let t = SCSITargetDevice(logicalUnits: [0: LogicalUnit(configuration: Fixture.configuration(), device: dev)])
        let bs = Int(Fixture.blockSize)
        // Clear the power-on unit attention.
        async let ready = t.run(CDB.testUnitReady)
        _ = await ready
        // A WRITE parks in the device…
        async let write = t.run(CDB.write10(0, 1), data: [UInt8](repeating: 7, count: bs))
        #expect(await dev.waitForPending(1))
        // …so a COMPARE AND WRITE to the same block must not reach the device yet.
        let caw: [UInt8] = [0x89, 0] + CDB.be(0, 8) + [0, 0, 0, 1, 0, 0]
        async let compare = t.run(caw, data: [UInt8](repeating: 7, count: bs) + [UInt8](repeating: 9, count: bs))
        try? await Task.sleep(for: .milliseconds(100))
        #expect(dev.pending.count == 1, "CAW must wait for the write in flight")
        _ = dev.complete()
        #expect(await write.status == .good)
        // Now CAW reads (compare matches the 7s just written) and writes.
        #expect(await dev.waitForPending(1))
        _ = dev.complete()
        #expect(await dev.waitForPending(1))
        _ = dev.complete()
        #expect(await compare.status == .good)
    }
}

/// Control mode page SWP (software write protect) makes the unit read-only for every nexus.
@Suite struct SoftwareWriteProtectTests {
    @Test func swpBlocksWritesUntilCleared() async {
        let (t, _) = await Fixture.readyTarget()
        var page = await t.run(CDB.modeSense6(page: 0x0A, dbd: true)).data
        // MODE SENSE(6) header is 4 bytes; the control page follows. Set SWP (page byte 4 bit 3).
        page[0] = 0
        page[4 + 4] |= 0x08
        #expect(await t.run(CDB.modeSelect6(length: UInt8(page.count)), data: page).status == .good)
        _ = await t.run(CDB.testUnitReady, nexus: Fixture.nexusB)  // MODE PARAMETERS CHANGED
        let w = await t.run(CDB.write10(0, 1), nexus: Fixture.nexusB, data: [UInt8](repeating: 1, count: 512))
        #expect(w.hasSense(.softwareWriteProtected))
        #expect(await t.run([0x48, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]).hasSense(.softwareWriteProtected))
        let sense = await t.run(CDB.modeSense6(page: 0x0A)).data
        #expect(sense[2] & 0x80 != 0, "WP in the device-specific parameter")
        page[4 + 4] &= ~0x08
        #expect(await t.run(CDB.modeSelect6(length: UInt8(page.count)), data: page).status == .good)
        #expect(await t.run(CDB.write10(0, 1), data: [UInt8](repeating: 1, count: 512)).status == .good)
    }
}

/// SPC-2 RESERVE/RELEASE under persistent reservations (SPC-4 §5.13.3, CRH = 1).
@Suite struct ReserveReleaseWithPersistentReservationsTests {
    @Test func onlyThePersistentHolderGetsGood() async {
        let (t, _) = await Fixture.readyTarget()
        let a = Fixture.nexusA, b = Fixture.nexusB
        func out(_ sa: UInt8, type: UInt8 = 0, key: UInt64, sark: UInt64 = 0, _ n: ITNexus) async -> SCSIResponse {
            await t.run(
                [0x5F, sa, type, 0, 0, 0, 0, 0, 24, 0], nexus: n,
                data: PersistentReserveOutParameters(reservationKey: key, serviceActionReservationKey: sark).bytes)
        }
        #expect(await out(0, key: 0, sark: 0xA, a).status == .good)
        #expect(await out(0, key: 0, sark: 0xB, b).status == .good)
        #expect(await out(1, type: 1, key: 0xA, a).status == .good)
        #expect(await t.run([0x16, 0, 0, 0, 0, 0], nexus: a).status == .good)  // holder: GOOD, no effect
        #expect(await t.run([0x16, 0, 0, 0, 0, 0], nexus: b).status == .reservationConflict)
        #expect(await t.run([0x17, 0, 0, 0, 0, 0], nexus: b).status == .reservationConflict)
        #expect(await t.run([0x17, 0, 0, 0, 0, 0], nexus: a).status == .good)
        // B (a registrant, not the holder of a Write Exclusive) can read but not write.
        #expect(await t.run(CDB.read10(0, 1), nexus: b).status == .good)
        #expect(await t.run(CDB.write10(0, 1), nexus: b, data: [UInt8](repeating: 0, count: 512)).status
            == .reservationConflict)
        // With an SPC-2 reservation held by B, PERSISTENT RESERVE OUT from A conflicts.
        #expect(await out(3, key: 0xA, a).status == .good)  // CLEAR
        #expect(await t.run(CDB.testUnitReady, nexus: b).hasSense(.reservationsPreempted))
        #expect(await t.run([0x16, 0, 0, 0, 0, 0], nexus: b).status == .good)
        #expect(await out(0, key: 0, sark: 0xA, a).status == .reservationConflict)
    }
}

/// Control mode page D_SENSE: descriptor-format sense data (SPC-4 §4.5.2).
@Suite struct DescriptorSenseTests {
    @Test func dSenseSwitchesTheFormat() async {
        let (t, _) = await Fixture.readyTarget()
        var page = await t.run(CDB.modeSense6(page: 0x0A, dbd: true)).data
        page[0] = 0
        page[4 + 2] |= 0x04
        #expect(await t.run(CDB.modeSelect6(length: UInt8(page.count)), data: page).status == .good)
        // LBA out of range: descriptor format 72h with key 05h, ASC 21h.
        let r = await t.run(CDB.read16(UInt64.max, 1))
        #expect(r.status == .checkCondition && r.sense.prefix(4) == [0x72, 0x05, 0x21, 0x00])
        // A field pointer travels in a sense-key specific descriptor.
        let bad = await t.run([0x28, 0xE0, 0, 0, 0, 0, 0, 0, 1, 0])
        #expect(bad.sense[0] == 0x72 && bad.sense[8] == 0x02 && bad.sense[12] & 0x80 != 0)
        // REQUEST SENSE with DESC = 1.
        #expect(await t.run([0x03, 0x01, 0, 0, 252, 0]).data.prefix(4) == [0x72, 0, 0, 0])
        #expect(SenseData.descriptorFormat(fromFixed: SenseData(.lbaOutOfRange).bytes) == SenseData(.lbaOutOfRange).descriptorBytes)
    }
}

/// A 4 TiB device that holds nothing and records what allocation was asked.
private final class VastEmptyDevice: BlockDevice, @unchecked Sendable {
    let geometry = BlockGeometry(blockSize: 512, blockCount: 1 << 33)
    let supportsUnmap = true
    private let asked = Mutex<[UInt64]>([])
    var allocationRequests: [UInt64] { asked.withLock { $0 } }

    func read(lba: UInt64, blockCount: UInt32, into buffer: IOBuffer, offset: Int) async throws(BlockDeviceError) {}
    func write(lba: UInt64, blockCount: UInt32, from buffer: IOBuffer, offset: Int, fua: Bool) async throws(BlockDeviceError) {
        throw BlockDeviceError(.readOnly)
    }
    func flush() async throws(BlockDeviceError) {}
    func unmap(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) {}
    func close() async {}
    func allocation(lba: UInt64, blockCount: UInt64) async throws(BlockDeviceError) -> [BlockExtent] {
        asked.withLock { $0.append(blockCount) }
        return [BlockExtent(lba: lba, blockCount: blockCount, mapped: false)]
    }
}

@Suite struct LBAStatusBoundTests {
    /// SBC-3 §5.5.2 lets the descriptors stop before the medium does: one
    /// GET LBA STATUS walks at most 1 GiB of the allocation map.
    @Test func oneCommandLooksAtOneGiBAtMost() async {
        let device = VastEmptyDevice()
        let unit = LogicalUnit(configuration: Fixture.configuration(), device: device)
        let t = SCSITargetDevice(logicalUnits: [0: unit])
        _ = await t.run(CDB.testUnitReady)
        let d = await t.run(ExtendedCommandTests.getLBAStatus(0)).data
        #expect(device.allocationRequests == [(1 << 30) / 512])
        #expect(d.count == 8 + 16)
        #expect(d.be64(8) == 0 && d.be32(16) == (1 << 30) / 512 && d[20] == 1)
        // The host goes on from where the descriptors stopped.
        let next = await t.run(ExtendedCommandTests.getLBAStatus((1 << 30) / 512)).data
        #expect(next.be64(8) == (1 << 30) / 512)
    }
}
