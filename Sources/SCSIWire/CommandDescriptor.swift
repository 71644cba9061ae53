/// How a command interacts with reservations (SPC-4 §5.13.1, table 53;
/// SPC-2 §5.5.1). Used by the reservation conflict check (later PR work).
public enum ReservationConflictClass: Hashable, Sendable {
    /// Never conflicts (INQUIRY, REPORT LUNS, REQUEST SENSE, RSOC, RESERVE/RELEASE
    /// which check the reservation themselves, PR IN/OUT).
    case allowed
    /// Conflicts with an SPC-2 reservation only; allowed under every persistent
    /// reservation type (TEST UNIT READY, READ CAPACITY: SPC-4 table 63).
    case spc2Only
    /// Reads the medium or LU state: conflicts with SPC-2 reservations and the
    /// Exclusive Access persistent reservation types.
    case readAccess
    /// Writes the medium or changes LU state: conflicts with SPC-2 reservations
    /// and the Write Exclusive and Exclusive Access persistent reservation types.
    case writeAccess
}

/// One supported command: the single table that drives parsing/dispatch,
/// REPORT SUPPORTED OPERATION CODES and the reservation conflict check.
public struct CommandDescriptor: Sendable {
    /// Operation code (CDB byte 0).
    public let opcode: UInt8
    /// Service action (CDB byte 1 bits 4:0) for opcodes that carry one.
    public let serviceAction: UInt16?
    /// Human-readable name (logs, metrics).
    public let name: String
    /// CDB length in bytes.
    public let cdbLength: Int
    /// CDB USAGE DATA (SPC-4 §6.35.3): byte 0 is the opcode, a set bit means the
    /// device server looks at it. Bits not set must be zero in a CDB.
    public let usageData: [UInt8]
    /// Reservation interaction.
    public let conflictClass: ReservationConflictClass
    /// In which asymmetric access states it is served (SPC-4 §5.16.2.4-5).
    public let accessClass: AsymmetricAccessClass
    /// Nominal and recommended timeouts in seconds (RSOC timeouts descriptor).
    public let timeouts: (nominal: UInt32, recommended: UInt32)
    /// Field checks beyond the usage mask and construction of the typed command.
    public let parse: @Sendable ([UInt8]) throws(SenseData) -> CDBCommand

    init(
        _ opcode: UInt8, sa: UInt16? = nil, _ name: String, usage: [UInt8],
        conflict: ReservationConflictClass, access: AsymmetricAccessClass = .activeOnly,
        timeouts: (UInt32, UInt32) = (0, 0), parse: @escaping @Sendable ([UInt8]) throws(SenseData) -> CDBCommand
    ) {
        precondition(usage.first == opcode, "usage data must start with the opcode")
        self.opcode = opcode
        self.serviceAction = sa
        self.name = name
        self.cdbLength = usage.count
        self.usageData = usage
        self.conflictClass = conflict
        self.accessClass = access
        self.timeouts = timeouts
        self.parse = parse
    }
}

extension CommandDescriptor {
    /// Looks up the descriptor for `cdb` and parses it: unknown opcode →
    /// INVALID COMMAND OPERATION CODE; unknown service action, short CDB or a
    /// set bit outside the usage mask → INVALID FIELD IN CDB with a field pointer.
    public static func parse(_ cdb: [UInt8]) throws(SenseData) -> (CommandDescriptor, CDBCommand) {
        guard let first = cdb.first else { throw SenseData(.invalidCommandOperationCode) }
        guard let candidates = CommandDescriptor.byOpcode[first] else {
            // SPC-4 §4.5.2 / SAM-5: unsupported opcode.
            throw SenseData(.invalidCommandOperationCode, fieldPointer: FieldPointer(byte: 0, bit: 7))
        }
        let descriptor: CommandDescriptor
        if candidates[0].serviceAction != nil {
            guard cdb.count >= 2 else { throw SenseData.invalidField(byte: 1) }
            let sa = UInt16(cdb[1] & 0x1F)
            guard let d = candidates.first(where: { $0.serviceAction == sa }) else {
                throw SenseData.invalidField(byte: 1, bit: 4)
            }
            descriptor = d
        } else {
            descriptor = candidates[0]
        }
        guard cdb.count >= descriptor.cdbLength else {
            throw SenseData.invalidField(byte: cdb.count)
        }
        try descriptor.checkReservedBits(cdb)
        return (descriptor, try descriptor.parse(cdb))
    }

    /// SPC-4 §4.3.3 / §6.35.3: a bit the device server does not use must be zero.
    func checkReservedBits(_ cdb: [UInt8]) throws(SenseData) {
        for i in 1..<cdbLength {
            var allowed = usageData[i]
            if i == 1 && serviceAction != nil { allowed |= 0x1F }
            let extra = cdb[i] & ~allowed
            if extra != 0 {
                throw SenseData.invalidField(byte: i, bit: UInt8(7 - extra.leadingZeroBitCount))
            }
        }
    }

    /// Descriptors by opcode (sparse; most opcodes have exactly one).
    static let byOpcode: [UInt8: [CommandDescriptor]] = Dictionary(grouping: all, by: \.opcode)

    /// The one command table, in opcode order.
    public static let all: [CommandDescriptor] =
        (base + blockIO + persistentReserve + extended + sanitize + copy + targetPortGroups)
        .sorted { ($0.opcode, $0.serviceAction ?? 0) < ($1.opcode, $1.serviceAction ?? 0) }

    /// PERSISTENT RESERVE IN/OUT, one descriptor per supported service action
    /// (SPC-4 §6.15-6.16).
    static let persistentReserve: [CommandDescriptor] =
        PersistentReserveInAction.allCases.map { sa in
            CommandDescriptor(
                0x5E, sa: UInt16(sa.rawValue), "PERSISTENT RESERVE IN/\(sa)",
                usage: [0x5E, sa.rawValue, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0], conflict: .spc2Only,
                access: .alsoStandby
            ) { cdb throws(SenseData) in
                .persistentReserveIn(sa, allocationLength: cdb.be16(7))
            }
        }
        + PersistentReserveOutAction.allCases.map { sa in
            CommandDescriptor(
                0x5F, sa: UInt16(sa.rawValue), "PERSISTENT RESERVE OUT/\(sa)",
                usage: [0x5F, sa.rawValue, 0xFF, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0], conflict: .spc2Only,
                access: .alsoStandby
            ) { cdb throws(SenseData) in
                .persistentReserveOut(
                    PersistentReserveOut(
                        serviceAction: sa, scope: cdb[2] >> 4, type: cdb[2] & 0x0F, parameterListLength: cdb.be32(5)))
            }
        }

    /// READ, WRITE, WRITE AND VERIFY and VERIFY in their 10-, 12- and 16-byte forms:
    /// the same fields at offsets that depend only on the CDB length (SBC-3 §5).
    static let blockIO: [CommandDescriptor] = [
        // (CDB length, READ, WRITE, WRITE AND VERIFY, VERIFY opcodes), LBA width, length offset and width.
        (size: 10, opcodes: (UInt8(0x28), UInt8(0x2A), UInt8(0x2E), UInt8(0x2F)), lba: 4, length: 7, lengthWidth: 2),
        (size: 12, opcodes: (0xA8, 0xAA, 0xAE, 0xAF), lba: 4, length: 6, lengthWidth: 4),
        (size: 16, opcodes: (0x88, 0x8A, 0x8E, 0x8F), lba: 8, length: 10, lengthWidth: 4),
    ].flatMap { f in
        let (size, lbaWidth, length, lengthWidth) = (f.size, f.lba, f.length, f.lengthWidth)
        let (read, write, writeAndVerify, verify) = f.opcodes
        return [
            CommandDescriptor(
                read, "READ(\(size))", usage: rwUsage(read, size, byte1: 0xFE), conflict: .readAccess,
                timeouts: (30, 60)
            ) {
                cdb throws(SenseData) in
                .read(try rw(cdb, lba: 2, lbaWidth: lbaWidth, length: length, lengthWidth: lengthWidth))
            },
            CommandDescriptor(
                write, "WRITE(\(size))", usage: rwUsage(write, size, byte1: 0xFA), conflict: .writeAccess,
                timeouts: (30, 60)
            ) {
                cdb throws(SenseData) in
                .write(try rw(cdb, lba: 2, lbaWidth: lbaWidth, length: length, lengthWidth: lengthWidth))
            },
            CommandDescriptor(
                writeAndVerify, "WRITE AND VERIFY(\(size))", usage: rwUsage(writeAndVerify, size, byte1: 0xF6),
                conflict: .writeAccess, timeouts: (30, 60)
            ) {
                cdb throws(SenseData) in
                .writeAndVerify(
                    try CommandDescriptor.verify(
                        cdb, lba: 2, lbaWidth: lbaWidth, length: length, lengthWidth: lengthWidth))
            },
            CommandDescriptor(
                verify, "VERIFY(\(size))", usage: rwUsage(verify, size, byte1: 0xF6), conflict: .readAccess,
                timeouts: (30, 60)
            ) {
                cdb throws(SenseData) in
                .verify(
                    try CommandDescriptor.verify(
                        cdb, lba: 2, lbaWidth: lbaWidth, length: length, lengthWidth: lengthWidth))
            },
        ]
    }

    static let base: [CommandDescriptor] = [
        CommandDescriptor(0x00, "TEST UNIT READY", usage: [0x00, 0, 0, 0, 0, 0], conflict: .spc2Only) {
            _ throws(SenseData) in
            .testUnitReady
        },
        CommandDescriptor(
            0x03, "REQUEST SENSE", usage: [0x03, 0x01, 0, 0, 0xFF, 0], conflict: .allowed, access: .anyState,
            parse: parseRequestSense),
        CommandDescriptor(
            0x08, "READ(6)", usage: [0x08, 0x1F, 0xFF, 0xFF, 0xFF, 0], conflict: .readAccess, timeouts: (30, 60)
        ) {
            cdb throws(SenseData) in .read(rw6(cdb))
        },
        CommandDescriptor(
            0x0A, "WRITE(6)", usage: [0x0A, 0x1F, 0xFF, 0xFF, 0xFF, 0], conflict: .writeAccess, timeouts: (30, 60)
        ) {
            cdb throws(SenseData) in .write(rw6(cdb))
        },
        CommandDescriptor(
            0x12, "INQUIRY", usage: [0x12, 0x01, 0xFF, 0xFF, 0xFF, 0], conflict: .allowed, access: .anyState,
            parse: parseInquiry),
        CommandDescriptor(
            0x15, "MODE SELECT(6)", usage: [0x15, 0x11, 0, 0, 0xFF, 0], conflict: .writeAccess, access: .alsoStandby
        ) {
            cdb throws(SenseData) in
            .modeSelect(
                ModeSelect(
                    ten: false, pf: cdb[1] & 0x10 != 0, sp: cdb[1] & 0x01 != 0, parameterListLength: UInt16(cdb[4])))
        },
        CommandDescriptor(0x16, "RESERVE(6)", usage: [0x16, 0, 0, 0, 0, 0], conflict: .allowed) { _ throws(SenseData) in
            .reserve
        },
        CommandDescriptor(0x17, "RELEASE(6)", usage: [0x17, 0, 0, 0, 0, 0], conflict: .allowed) { _ throws(SenseData) in
            .release
        },
        CommandDescriptor(
            0x1A, "MODE SENSE(6)", usage: [0x1A, 0x08, 0xFF, 0xFF, 0xFF, 0], conflict: .readAccess, access: .alsoStandby
        ) {
            cdb throws(SenseData) in
            .modeSense(
                ModeSense(
                    ten: false, dbd: cdb[1] & 0x08 != 0, llbaa: false, pageControl: cdb[2] >> 6,
                    pageCode: cdb[2] & 0x3F, subpageCode: cdb[3], allocationLength: UInt16(cdb[4])))
        },
        CommandDescriptor(0x1B, "START STOP UNIT", usage: [0x1B, 0x01, 0, 0x0F, 0xF7, 0], conflict: .writeAccess) {
            cdb throws(SenseData) in
            .startStopUnit(
                immediate: cdb[1] & 1 != 0, powerCondition: cdb[4] >> 4, loadEject: cdb[4] & 2 != 0,
                start: cdb[4] & 1 != 0)
        },
        CommandDescriptor(
            0x1E, "PREVENT ALLOW MEDIUM REMOVAL", usage: [0x1E, 0, 0, 0, 0x03, 0], conflict: .writeAccess
        ) { cdb throws(SenseData) in
            .preventAllowMediumRemoval(prevent: cdb[4] & 0x03)
        },
        CommandDescriptor(
            0x25, "READ CAPACITY(10)", usage: [0x25, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0x01, 0], conflict: .spc2Only,
            access: .alsoStandby
        ) {
            cdb throws(SenseData) in
            // SBC-3 §5.15.1: LOGICAL BLOCK ADDRESS must be zero when PMI is zero.
            if cdb[8] & 1 == 0 && cdb.be32(2) != 0 { throw SenseData.invalidField(byte: 2) }
            return .readCapacity10
        },
        CommandDescriptor(0x34, "PRE-FETCH(10)", usage: rwUsage(0x34, 10, byte1: 0x02), conflict: .readAccess) {
            cdb throws(SenseData) in
            .prefetch(BlockRange(lba: UInt64(cdb.be32(2)), blockCount: UInt32(cdb.be16(7))), immediate: cdb[1] & 2 != 0)
        },
        CommandDescriptor(
            0x35, "SYNCHRONIZE CACHE(10)", usage: rwUsage(0x35, 10, byte1: 0x06), conflict: .writeAccess,
            timeouts: (30, 60)
        ) {
            cdb throws(SenseData) in
            .synchronizeCache(
                BlockRange(lba: UInt64(cdb.be32(2)), blockCount: UInt32(cdb.be16(7))), immediate: cdb[1] & 2 != 0)
        },
        CommandDescriptor(
            0x41, "WRITE SAME(10)", usage: rwUsage(0x41, 10, byte1: 0xF8), conflict: .writeAccess, timeouts: (60, 120)
        ) {
            cdb throws(SenseData) in
            // WRPROTECT: no protection information.
            if cdb[1] & 0xE0 != 0 { throw SenseData.invalidField(byte: 1, bit: 7) }
            return .writeSame(
                WriteSame(
                    lba: UInt64(cdb.be32(2)), blockCount: UInt32(cdb.be16(7)),
                    unmap: cdb[1] & 0x08 != 0, anchor: cdb[1] & 0x10 != 0, noDataOut: false))
        },
        CommandDescriptor(
            0x42, "UNMAP", usage: [0x42, 0x01, 0, 0, 0, 0, 0x3F, 0xFF, 0xFF, 0], conflict: .writeAccess,
            timeouts: (60, 120)
        ) {
            cdb throws(SenseData) in
            if cdb[1] & 0x01 != 0 { throw SenseData.invalidField(byte: 1, bit: 0) }  // ANCHOR: no anchored state
            return .unmap(parameterListLength: cdb.be16(7))
        },
        CommandDescriptor(
            0x55, "MODE SELECT(10)", usage: [0x55, 0x11, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0], conflict: .writeAccess,
            access: .alsoStandby
        ) {
            cdb throws(SenseData) in
            .modeSelect(
                ModeSelect(ten: true, pf: cdb[1] & 0x10 != 0, sp: cdb[1] & 0x01 != 0, parameterListLength: cdb.be16(7)))
        },
        // SPC-2 §7.21/7.16: third-party and LONGID forms are not supported (usage mask rejects them).
        CommandDescriptor(0x56, "RESERVE(10)", usage: [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0], conflict: .allowed) {
            _ throws(SenseData) in
            .reserve
        },
        CommandDescriptor(0x57, "RELEASE(10)", usage: [0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0], conflict: .allowed) {
            _ throws(SenseData) in
            .release
        },
        CommandDescriptor(
            0x5A, "MODE SENSE(10)", usage: [0x5A, 0x18, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0], conflict: .readAccess,
            access: .alsoStandby
        ) {
            cdb throws(SenseData) in
            .modeSense(
                ModeSense(
                    ten: true, dbd: cdb[1] & 0x08 != 0, llbaa: cdb[1] & 0x10 != 0, pageControl: cdb[2] >> 6,
                    pageCode: cdb[2] & 0x3F, subpageCode: cdb[3], allocationLength: cdb.be16(7)))
        },
        CommandDescriptor(
            0x89, "COMPARE AND WRITE",
            usage: [0x89, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0xFF, 0x3F, 0],
            conflict: .writeAccess, timeouts: (30, 60)
        ) { cdb throws(SenseData) in
            if cdb[1] & 0xE0 != 0 { throw SenseData.invalidField(byte: 1, bit: 7) }
            return .compareAndWrite(
                BlockTransfer(
                    lba: cdb.be64(2), transferLength: UInt32(cdb[13]),
                    dpo: cdb[1] & 0x10 != 0, fua: cdb[1] & 0x08 != 0))
        },
        CommandDescriptor(0x90, "PRE-FETCH(16)", usage: rwUsage(0x90, 16, byte1: 0x02), conflict: .readAccess) {
            cdb throws(SenseData) in
            .prefetch(BlockRange(lba: cdb.be64(2), blockCount: cdb.be32(10)), immediate: cdb[1] & 2 != 0)
        },
        CommandDescriptor(
            0x91, "SYNCHRONIZE CACHE(16)", usage: rwUsage(0x91, 16, byte1: 0x06), conflict: .writeAccess,
            timeouts: (30, 60)
        ) {
            cdb throws(SenseData) in
            .synchronizeCache(BlockRange(lba: cdb.be64(2), blockCount: cdb.be32(10)), immediate: cdb[1] & 2 != 0)
        },
        CommandDescriptor(
            0x93, "WRITE SAME(16)", usage: rwUsage(0x93, 16, byte1: 0xF9), conflict: .writeAccess, timeouts: (60, 120)
        ) {
            cdb throws(SenseData) in
            if cdb[1] & 0xE0 != 0 { throw SenseData.invalidField(byte: 1, bit: 7) }
            return .writeSame(
                WriteSame(
                    lba: cdb.be64(2), blockCount: cdb.be32(10), unmap: cdb[1] & 0x08 != 0,
                    anchor: cdb[1] & 0x10 != 0, noDataOut: cdb[1] & 0x01 != 0))
        },
        CommandDescriptor(
            0x9E, sa: 0x10, "READ CAPACITY(16)",
            usage: [0x9E, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0],
            conflict: .spc2Only, access: .alsoStandby
        ) { cdb throws(SenseData) in
            // SBC-3 §5.16.1: LOGICAL BLOCK ADDRESS must be zero when PMI is zero.
            if cdb[14] & 1 == 0 && cdb.be64(2) != 0 { throw SenseData.invalidField(byte: 2) }
            return .readCapacity16(allocationLength: cdb.be32(10))
        },
        CommandDescriptor(
            0xA0, "REPORT LUNS", usage: [0xA0, 0, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0], conflict: .allowed,
            access: .anyState
        ) {
            cdb throws(SenseData) in
            let alloc = cdb.be32(6)
            // SPC-4 §6.33: allocation length below 16 → INVALID FIELD IN CDB.
            if alloc < 16 { throw SenseData.invalidField(byte: 6) }
            guard [0x00, 0x01, 0x02].contains(cdb[2]) else { throw SenseData.invalidField(byte: 2) }
            return .reportLUNs(selectReport: cdb[2], allocationLength: alloc)
        },
        CommandDescriptor(
            0xA3, sa: 0x0C, "REPORT SUPPORTED OPERATION CODES",
            usage: [0xA3, 0x0C, 0x87, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0], conflict: .allowed,
            access: .alsoStandby
        ) {
            cdb throws(SenseData) in
            let options = cdb[2] & 0x07
            guard options <= 3 else { throw SenseData.invalidField(byte: 2, bit: 2) }
            return .reportSupportedOperationCodes(
                ReportSupportedOperationCodes(
                    rctd: cdb[2] & 0x80 != 0, reportingOptions: options, requestedOperationCode: cdb[3],
                    requestedServiceAction: cdb.be16(4), allocationLength: cdb.be32(6)))
        },
    ]

    /// Usage data of a 10/12/16-byte block command: LBA, length, GROUP NUMBER.
    static func rwUsage(_ opcode: UInt8, _ length: Int, byte1: UInt8) -> [UInt8] {
        var u = [UInt8](repeating: 0xFF, count: length)
        u[0] = opcode
        u[1] = byte1
        u[length - 1] = 0  // CONTROL: no NACA, no vendor bits
        switch length {
        case 10: u[6] = 0x3F  // GROUP NUMBER
        case 12: u[10] = 0x3F
        default: u[14] = 0x3F
        }
        return u
    }

    static func rw6(_ cdb: [UInt8]) -> BlockTransfer {
        // SBC-3 §5.8: TRANSFER LENGTH 0 in READ(6)/WRITE(6) means 256 blocks.
        let n = UInt32(cdb[4])
        return BlockTransfer(
            lba: UInt64(cdb.be24(1) & 0x1F_FFFF), transferLength: n == 0 ? 256 : n, dpo: false, fua: false)
    }

    static func field(_ cdb: [UInt8], _ at: Int, _ width: Int) -> UInt64 {
        width == 8 ? cdb.be64(at) : width == 4 ? UInt64(cdb.be32(at)) : UInt64(cdb.be16(at))
    }

    static func rw(_ cdb: [UInt8], lba: Int, lbaWidth: Int, length: Int, lengthWidth: Int) throws(SenseData)
        -> BlockTransfer
    {
        // SBC-3 §5.9: RDPROTECT/WRPROTECT nonzero needs protection information, which we do not format.
        if cdb[1] & 0xE0 != 0 { throw SenseData.invalidField(byte: 1, bit: 7) }
        return BlockTransfer(
            lba: field(cdb, lba, lbaWidth), transferLength: UInt32(field(cdb, length, lengthWidth)),
            dpo: cdb[1] & 0x10 != 0, fua: cdb[1] & 0x08 != 0)
    }

    static func verify(_ cdb: [UInt8], lba: Int, lbaWidth: Int, length: Int, lengthWidth: Int) throws(SenseData)
        -> Verify
    {
        if cdb[1] & 0xE0 != 0 { throw SenseData.invalidField(byte: 1, bit: 7) }
        let byteCheck = (cdb[1] >> 1) & 0x03
        // SBC-3 §5.29: BYTCHK 10b is reserved.
        if byteCheck == 2 { throw SenseData.invalidField(byte: 1, bit: 2) }
        return Verify(
            lba: field(cdb, lba, lbaWidth), verificationLength: UInt32(field(cdb, length, lengthWidth)),
            byteCheck: byteCheck, dpo: cdb[1] & 0x10 != 0)
    }

    static func parseInquiry(_ cdb: [UInt8]) throws(SenseData) -> CDBCommand {
        let evpd = cdb[1] & 1 != 0
        // SPC-4 §6.6.1: PAGE CODE nonzero with EVPD zero → INVALID FIELD IN CDB.
        if !evpd && cdb[2] != 0 { throw SenseData.invalidField(byte: 2) }
        return .inquiry(Inquiry(evpd: evpd, pageCode: cdb[2], allocationLength: cdb.be16(3)))
    }

    static func parseRequestSense(_ cdb: [UInt8]) throws(SenseData) -> CDBCommand {
        .requestSense(descriptorFormat: cdb[1] & 1 != 0, allocationLength: cdb[4])
    }
}
