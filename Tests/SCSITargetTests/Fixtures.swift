import BlockStorage
import TesseraTestKit
import Testing

@testable import SCSITarget
@testable import SCSIWire

/// Nexuses and a target for the SCSI tests.
enum Fixture {
    static let nexusA = ITNexus(
        initiatorName: "iqn.2026-01.test:a", isid: 0x23D0_0000_0001, targetName: "iqn.2026-01.tessera:t",
        portalGroupTag: 1)
    static let nexusB = ITNexus(
        initiatorName: "iqn.2026-01.test:b", isid: 0x23D0_0000_0002, targetName: "iqn.2026-01.tessera:t",
        portalGroupTag: 2)
    static let blockSize: UInt32 = 512
    static let blockCount: UInt64 = 1024

    static func configuration(writeProtected: Bool = false, thin: Bool = true) -> LogicalUnitConfiguration {
        LogicalUnitConfiguration(
            serial: "TSR0001", identifier: 0x0123_4567_89AB_CDEF, writeProtected: writeProtected, thin: thin)
    }

    static func target(device: (any BlockDevice)? = nil, writeProtected: Bool = false) -> (
        SCSITargetDevice, any BlockDevice
    ) {
        let dev = device ?? MemoryBlockDevice(geometry: BlockGeometry(blockSize: blockSize, blockCount: blockCount))
        let unit = LogicalUnit(configuration: configuration(writeProtected: writeProtected), device: dev)
        return (SCSITargetDevice(logicalUnits: [0: unit]), dev)
    }

    /// A target whose nexuses A and B have already cleared their power-on unit attention.
    static func readyTarget(device: (any BlockDevice)? = nil, writeProtected: Bool = false) async -> (
        SCSITargetDevice, any BlockDevice
    ) {
        let (t, d) = target(device: device, writeProtected: writeProtected)
        for n in [nexusA, nexusB] { _ = await t.run([0x00, 0, 0, 0, 0, 0], nexus: n) }
        return (t, d)
    }

}

extension SCSITargetDevice {
    /// Runs `cdb` on LUN `lun` with optional Data-Out.
    func run(_ cdb: [UInt8], lun: UInt16 = 0, nexus: ITNexus = Fixture.nexusA, data: [UInt8]? = nil, tag: UInt32? = nil)
        async -> SCSIResponse
    {
        let buffer = data.map { IOBuffer(bytes: $0) }
        let command = SCSICommand(
            lun: LUNAddress.encode(lun), cdb: cdb, nexus: nexus, taskTag: tag ?? UInt32.random(in: 0...UInt32.max),
            expectedDataTransferLength: UInt32(data?.count ?? 0), dataOut: buffer, dataOutLength: data?.count ?? 0)
        return await execute(command)
    }
}

extension SCSIResponse {
    /// The Data-In bytes.
    var data: [UInt8] { dataIn?.array(0..<dataInLength) ?? [] }
    /// (key, asc, ascq) of the sense data, nil without sense.
    var senseCode: (UInt8, UInt8, UInt8)? { sense.count >= 14 ? (sense[2] & 0x0F, sense[12], sense[13]) : nil }

    func hasSense(_ reason: SenseReason) -> Bool {
        let c = reason.code
        guard status == .checkCondition, let s = senseCode else { return false }
        return s == (c.key.rawValue, c.asc, c.ascq)
    }
}

/// CDB builders.
enum CDB {
    static func be(_ v: UInt64, _ width: Int) -> [UInt8] {
        (0..<width).map { UInt8(truncatingIfNeeded: v >> (8 * (width - 1 - $0))) }
    }

    static func read10(_ lba: UInt32, _ n: UInt16, flags: UInt8 = 0) -> [UInt8] {
        [0x28, flags] + be(UInt64(lba), 4) + [0] + be(UInt64(n), 2) + [0]
    }
    static func write10(_ lba: UInt32, _ n: UInt16, flags: UInt8 = 0) -> [UInt8] {
        [0x2A, flags] + be(UInt64(lba), 4) + [0] + be(UInt64(n), 2) + [0]
    }
    static func read16(_ lba: UInt64, _ n: UInt32, flags: UInt8 = 0) -> [UInt8] {
        [0x88, flags] + be(lba, 8) + be(UInt64(n), 4) + [0, 0]
    }
    static func write16(_ lba: UInt64, _ n: UInt32, flags: UInt8 = 0) -> [UInt8] {
        [0x8A, flags] + be(lba, 8) + be(UInt64(n), 4) + [0, 0]
    }
    static func read12(_ lba: UInt32, _ n: UInt32) -> [UInt8] {
        [0xA8, 0] + be(UInt64(lba), 4) + be(UInt64(n), 4) + [0, 0]
    }
    static func write12(_ lba: UInt32, _ n: UInt32) -> [UInt8] {
        [0xAA, 0] + be(UInt64(lba), 4) + be(UInt64(n), 4) + [0, 0]
    }
    static func read6(_ lba: UInt32, _ n: UInt8) -> [UInt8] { [0x08] + be(UInt64(lba), 3) + [n, 0] }
    static func write6(_ lba: UInt32, _ n: UInt8) -> [UInt8] { [0x0A] + be(UInt64(lba), 3) + [n, 0] }
    static func verify10(_ lba: UInt32, _ n: UInt16, bytchk: UInt8) -> [UInt8] {
        [0x2F, bytchk << 1] + be(UInt64(lba), 4) + [0] + be(UInt64(n), 2) + [0]
    }
    static func writeAndVerify10(_ lba: UInt32, _ n: UInt16, bytchk: UInt8) -> [UInt8] {
        [0x2E, bytchk << 1] + be(UInt64(lba), 4) + [0] + be(UInt64(n), 2) + [0]
    }
    static func inquiry(evpd: Bool = false, page: UInt8 = 0, alloc: UInt16) -> [UInt8] {
        [0x12, evpd ? 1 : 0, page] + be(UInt64(alloc), 2) + [0]
    }
    static let testUnitReady: [UInt8] = [0, 0, 0, 0, 0, 0]
    static func requestSense(alloc: UInt8 = 18) -> [UInt8] { [0x03, 0, 0, 0, alloc, 0] }
    static func modeSense6(page: UInt8, pc: UInt8 = 0, dbd: Bool = false, alloc: UInt8 = 255) -> [UInt8] {
        [0x1A, dbd ? 0x08 : 0, pc << 6 | page, 0, alloc, 0]
    }
    static func modeSense10(page: UInt8, pc: UInt8 = 0, llbaa: Bool = false, alloc: UInt16 = 1024) -> [UInt8] {
        [0x5A, llbaa ? 0x10 : 0, pc << 6 | page, 0, 0, 0, 0] + be(UInt64(alloc), 2) + [0]
    }
    static func modeSelect6(length: UInt8) -> [UInt8] { [0x15, 0x10, 0, 0, length, 0] }
    static func modeSelect10(length: UInt16) -> [UInt8] { [0x55, 0x10, 0, 0, 0, 0, 0] + be(UInt64(length), 2) + [0] }
    static func reportLUNs(alloc: UInt32 = 4096) -> [UInt8] { [0xA0, 0, 0, 0, 0, 0] + be(UInt64(alloc), 4) + [0, 0] }
    static func rsoc(options: UInt8, rctd: Bool = false, opcode: UInt8 = 0, sa: UInt16 = 0, alloc: UInt32 = 8192)
        -> [UInt8]
    {
        [0xA3, 0x0C, (rctd ? 0x80 : 0) | options, opcode] + be(UInt64(sa), 2) + be(UInt64(alloc), 4) + [0, 0]
    }
    static func readCapacity16(alloc: UInt32 = 32) -> [UInt8] {
        [0x9E, 0x10] + be(0, 8) + be(UInt64(alloc), 4) + [0, 0]
    }
}
