import BlockStorage
import TesseraTestKit
import Testing

@testable import SCSITarget
@testable import SCSIWire

@Suite struct ReadWriteTests {
    static func pattern(_ blocks: Int, _ seed: UInt8) -> [UInt8] {
        (0..<blocks * Int(Fixture.blockSize)).map { UInt8(truncatingIfNeeded: $0 &* 7) &+ seed }
    }

    struct RW: Sendable, CustomTestStringConvertible {
        var write: [UInt8]
        var read: [UInt8]
        var blocks: Int
        var testDescription: String { "opcode \(write[0])" }
    }

    @Test(arguments: [
        RW(write: CDB.write6(3, 2), read: CDB.read6(3, 2), blocks: 2),
        RW(write: CDB.write10(5, 3), read: CDB.read10(5, 3), blocks: 3),
        RW(write: CDB.write12(7, 1), read: CDB.read12(7, 1), blocks: 1),
        RW(write: CDB.write16(1000, 24, flags: 0x18), read: CDB.read16(1000, 24, flags: 0x18), blocks: 24),
    ])
    func roundTrip(_ c: RW) async {
        let (t, _) = await Fixture.readyTarget()
        let data = Self.pattern(c.blocks, c.write[0])
        #expect(await t.run(c.write, data: data).status == .good)
        let r = await t.run(c.read)
        #expect(r.status == .good)
        #expect(r.data == data)
    }

    /// SBC-3 §5.8: READ(6) with TRANSFER LENGTH 0 reads 256 blocks.
    @Test func read6ZeroMeans256() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run(CDB.read6(0, 0)).dataInLength == 256 * 512)
        #expect(await t.run(CDB.read10(0, 0)).dataInLength == 0)
    }

    /// iscsi-test-cu SCSI.Read16.BeyondEol / Write16.BeyondEol: no overflow at 2^64-1.
    @Test(arguments: [UInt64.max, UInt64.max - 1, 1 << 63, Fixture.blockCount, Fixture.blockCount - 1])
    func beyondEndOfLUN(_ lba: UInt64) async {
        let (t, _) = await Fixture.readyTarget()
        let n: UInt32 = 2
        #expect(await t.run(CDB.read16(lba, n)).hasSense(.lbaOutOfRange))
        #expect(await t.run(CDB.write16(lba, n), data: Self.pattern(2, 0)).hasSense(.lbaOutOfRange))
        #expect(await t.run([0x91, 0] + CDB.be(lba, 8) + CDB.be(2, 4) + [0, 0]).hasSense(.lbaOutOfRange))
        #expect(await t.run([0x8F, 0] + CDB.be(lba, 8) + CDB.be(2, 4) + [0, 0]).hasSense(.lbaOutOfRange))
    }

    /// iscsi-test-cu SCSI.Read10.ZeroBlocks: zero blocks at the end is fine, past it is not.
    @Test func zeroBlocksAtEnd() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run(CDB.read10(UInt32(Fixture.blockCount), 0)).status == .good)
        #expect(await t.run(CDB.read10(UInt32(Fixture.blockCount) + 1, 0)).hasSense(.lbaOutOfRange))
    }

    @Test func transferLongerThanMaximum() async {
        let big = MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 1 << 20))
        let unit = LogicalUnit(configuration: Fixture.configuration(), device: big)
        let t2 = SCSITargetDevice(logicalUnits: [0: unit])
        _ = await t2.run(CDB.testUnitReady)
        #expect(await t2.run(CDB.read16(0, 0x10_0000)).hasSense(.invalidFieldInCDB))
    }

    /// iscsi-test-cu SCSI.Write10.Residuals: EDTL < SPDTL writes only the whole blocks received.
    @Test func shortDataOutWritesWhatArrived() async {
        let (t, _) = await Fixture.readyTarget()
        let a = [UInt8](repeating: 0x61, count: 1024)
        #expect(await t.run(CDB.write10(0, 2), data: a).status == .good)
        let b = [UInt8](repeating: 0x62, count: 512)
        #expect(await t.run(CDB.write10(0, 2), data: b).status == .good)
        #expect(await t.run(CDB.read10(0, 2)).data == b + a.prefix(512))
        // A partial block cannot be written.
        #expect(
            await t.run(CDB.write10(0, 1), data: [UInt8](repeating: 0x63, count: 200)).hasSense(
                .invalidFieldInInformationUnit))
        #expect(await t.run(CDB.read10(0, 1)).data == b)
        // No data at all: nothing written, GOOD.
        #expect(await t.run(CDB.write10(0, 1)).status == .good)
        // More data than needed: only the CDB's blocks are written.
        #expect(await t.run(CDB.write10(1, 1), data: [UInt8](repeating: 0x64, count: 1024)).status == .good)
        #expect(await t.run(CDB.read10(2, 1)).data == [UInt8](repeating: 0, count: 512))
    }

    @Test func writeProtected() async {
        let (t, _) = await Fixture.readyTarget(writeProtected: true)
        #expect(await t.run(CDB.write10(0, 1), data: Self.pattern(1, 0)).hasSense(.writeProtected))
        let ms = await t.run(CDB.modeSense6(page: 0x3F)).data
        #expect(ms[2] & 0x80 != 0)
    }

    @Test func verify() async {
        let (t, _) = await Fixture.readyTarget()
        let data = Self.pattern(2, 9)
        _ = await t.run(CDB.write10(10, 2), data: data)
        #expect(await t.run(CDB.verify10(10, 2, bytchk: 0)).status == .good)
        #expect(await t.run(CDB.verify10(10, 2, bytchk: 1), data: data).status == .good)
        var bad = data
        bad[700] ^= 0xFF
        let r = await t.run(CDB.verify10(10, 2, bytchk: 1), data: bad)
        #expect(r.hasSense(.miscompareDuringVerifyOperation))
        #expect(r.sense[0] & 0x80 != 0 && Array(r.sense[3...6]) == [0, 0, 0x02, 0xBC])
        // BYTCHK 3: one block compared with each.
        let same = [UInt8](repeating: 0x5A, count: 512)
        _ = await t.run(CDB.write10(20, 2), data: same + same)
        #expect(await t.run(CDB.verify10(20, 2, bytchk: 3), data: same).status == .good)
        #expect(await t.run(CDB.verify10(10, 2, bytchk: 3), data: same).hasSense(.miscompareDuringVerifyOperation))
    }

    @Test func writeAndVerify() async {
        let (t, _) = await Fixture.readyTarget()
        let data = Self.pattern(3, 1)
        #expect(await t.run(CDB.writeAndVerify10(30, 3, bytchk: 1), data: data).status == .good)
        #expect(await t.run(CDB.read10(30, 3)).data == data)
    }

    @Test func synchronizeCacheReachesDevice() async {
        let mem = MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 64))
        let (t, _) = await Fixture.readyTarget(device: mem)
        #expect(await t.run([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]).status == .good)
        #expect(mem.flushCount == 1)
    }

    @Test func prefetchConditionMet() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run([0x34, 0, 0, 0, 0, 1, 0, 0, 4, 0]).status == .conditionMet)
        #expect(await t.run([0x34, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 4, 0]).hasSense(.lbaOutOfRange))
    }

    @Test func fuaFollowsWriteCache() async {
        let rec = RecordingBlockDevice(MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 64)))
        let (t, _) = await Fixture.readyTarget(device: rec)
        _ = await t.run(CDB.write10(0, 1), data: Self.pattern(1, 0))
        _ = await t.run(CDB.write10(0, 1, flags: 0x08), data: Self.pattern(1, 0))
        #expect(
            rec.operations == [.write(lba: 0, blockCount: 1, fua: false), .write(lba: 0, blockCount: 1, fua: true)])
    }

    @Test func deviceErrorsBecomeMediumErrors() async {
        let dev = FailingBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 64))
        let (t, _) = await Fixture.readyTarget(device: dev)
        #expect(await t.run(CDB.read10(0, 1)).hasSense(.unrecoveredReadError))
        #expect(await t.run(CDB.write10(0, 1), data: Self.pattern(1, 0)).hasSense(.writeError))
        #expect(await t.run([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]).hasSense(.writeError))
        let full = FailingBlockDevice(
            geometry: BlockGeometry(blockSize: 512, blockCount: 64), writeError: BlockDeviceError(.noSpace))
        let (t2, _) = await Fixture.readyTarget(device: full)
        #expect(await t2.run(CDB.write10(0, 1), data: Self.pattern(1, 0)).hasSense(.spaceAllocationFailedWriteProtect))
    }

    @Test func readCapacity() async {
        let (t, _) = await Fixture.readyTarget()
        #expect(await t.run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]).data == [0, 0, 0x03, 0xFF, 0, 0, 0x02, 0])
        let d = await t.run(CDB.readCapacity16()).data
        #expect(d.count == 32 && Array(d[0..<12]) == [0, 0, 0, 0, 0, 0, 0x03, 0xFF, 0, 0, 0x02, 0])
        #expect(d[14] & 0xC0 == 0xC0)
        // SBC-3 §5.16.2: by default one logical block per physical block.
        #expect(d[13] & 0x0F == 0)
        #expect(BlockLimits.physicalBlockExponent(logicalBlockSize: 512, physicalBlockSize: 4096) == 3)
        #expect(BlockLimits.physicalBlockExponent(logicalBlockSize: 4096, physicalBlockSize: 4096) == 0)
        #expect(BlockLimits.physicalBlockExponent(logicalBlockSize: 1024, physicalBlockSize: 4096) == 2)
        for alloc in 0...40 {
            #expect(await t.run(CDB.readCapacity16(alloc: UInt32(alloc))).dataInLength == min(alloc, 32))
        }
        #expect(ReadCapacityData.ten(blockCount: 1 << 33, blockSize: 512).prefix(4) == [0xFF, 0xFF, 0xFF, 0xFF])
    }

    /// 512-byte blocks reported over 4096-byte physical blocks: exponent 3 in
    /// READ CAPACITY(16); VPD B0 OPTIMAL UNMAP GRANULARITY is one physical block.
    @Test func physicalBlockSizeIsReported() async {
        var configuration = Fixture.configuration()
        configuration.physicalBlockSize = 4096
        let device = MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 1024))
        let target = SCSITargetDevice(logicalUnits: [0: LogicalUnit(configuration: configuration, device: device)])
        _ = await target.run(CDB.testUnitReady)  // consumes the power-on unit attention
        let d = await target.run(CDB.readCapacity16()).data
        #expect(d.count == 32 && d[13] & 0x0F == 3)
        let b0 = await target.run(CDB.inquiry(evpd: true, page: 0xB0, alloc: 64)).data
        #expect(b0.count == 64 && Array(b0[28..<32]) == [0, 0, 0, 8])
    }

    @Test func writeSameAndUnmap() async {
        let (t, _) = await Fixture.readyTarget()
        let block = [UInt8](repeating: 0xA5, count: 512)
        #expect(await t.run([0x41, 0, 0, 0, 0, 4, 0, 0, 3, 0], data: block).status == .good)
        #expect(await t.run(CDB.read10(4, 3)).data == block + block + block)
        // UNMAP 2 blocks at LBA 5.
        let params: [UInt8] = [0, 22, 0, 16, 0, 0, 0, 0] + CDB.be(5, 8) + CDB.be(2, 4) + [0, 0, 0, 0]
        #expect(await t.run([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], data: params).status == .good)
        #expect(await t.run(CDB.read10(4, 3)).data == block + [UInt8](repeating: 0, count: 1024))
        let oob: [UInt8] = [0, 22, 0, 16, 0, 0, 0, 0] + CDB.be(UInt64.max, 8) + CDB.be(2, 4) + [0, 0, 0, 0]
        #expect(await t.run([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], data: oob).hasSense(.lbaOutOfRange))
        // WRITE SAME(16) with UNMAP and NDOB deallocates.
        #expect(await t.run([0x93, 0x09] + CDB.be(4, 8) + CDB.be(1, 4) + [0, 0]).status == .good)
        #expect(await t.run(CDB.read10(4, 1)).data == [UInt8](repeating: 0, count: 512))
    }
}
