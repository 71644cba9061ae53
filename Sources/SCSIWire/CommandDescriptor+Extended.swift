// The issue-3 rows of the command table: ORWRITE, WRITE ATOMIC, READ DEFECT
// DATA, GET LBA STATUS, SANITIZE, EXTENDED COPY and RECEIVE COPY RESULTS.

extension CommandDescriptor {
    static let extended: [CommandDescriptor] = [
        CommandDescriptor(
            0x37, "READ DEFECT DATA(10)", usage: [0x37, 0, 0x1F, 0, 0, 0, 0, 0xFF, 0xFF, 0], conflict: .readAccess
        ) { cdb throws(SenseData) in
            .readDefectData(
                ReadDefectData(
                    twelve: false, requestPrimary: cdb[2] & 0x10 != 0, requestGrown: cdb[2] & 0x08 != 0,
                    format: cdb[2] & 0x07, allocationLength: UInt32(cdb.be16(7))))
        },
        CommandDescriptor(
            0x8B, "ORWRITE(16)", usage: rwUsage(0x8B, 16, byte1: 0xFA), conflict: .writeAccess, timeouts: (30, 60)
        ) { cdb throws(SenseData) in
            .orWrite(try rw(cdb, lba: 2, lbaWidth: 8, length: 10, lengthWidth: 4))
        },
        CommandDescriptor(
            0x9C, "WRITE ATOMIC(16)", usage: rwUsage(0x9C, 16, byte1: 0xF8), conflict: .writeAccess,
            timeouts: (30, 60)
        ) { cdb throws(SenseData) in
            // SBC-4 §5.48: TRANSFER LENGTH is 16 bits at byte 12; bytes 10-11 are the ATOMIC BOUNDARY.
            if cdb[1] & 0xE0 != 0 { throw SenseData.invalidField(byte: 1, bit: 7) }
            if cdb.be16(10) != 0 { throw SenseData.invalidField(byte: 10) }  // no atomic boundary support
            return .writeAtomic(
                BlockTransfer(
                    lba: cdb.be64(2), transferLength: UInt32(cdb.be16(12)), dpo: cdb[1] & 0x10 != 0,
                    fua: cdb[1] & 0x08 != 0))
        },
        CommandDescriptor(
            0x9E, sa: 0x12, "GET LBA STATUS",
            usage: [0x9E, 0x12, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0],
            conflict: .readAccess
        ) { cdb throws(SenseData) in
            .getLBAStatus(lba: cdb.be64(2), allocationLength: cdb.be32(10))
        },
        CommandDescriptor(
            0xB7, "READ DEFECT DATA(12)",
            usage: [0xB7, 0x1F, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0], conflict: .readAccess
        ) { cdb throws(SenseData) in
            .readDefectData(
                ReadDefectData(
                    twelve: true, requestPrimary: cdb[1] & 0x10 != 0, requestGrown: cdb[1] & 0x08 != 0,
                    format: cdb[1] & 0x07, allocationLength: cdb.be32(6)))
        },
    ]

    /// SANITIZE, one row per offered service action (SBC-3 §5.21).
    static let sanitize: [CommandDescriptor] = SanitizeAction.allCases.map { sa in
        CommandDescriptor(
            0x48, sa: UInt16(sa.rawValue), "SANITIZE/\(sa)",
            usage: [0x48, 0xA0 | sa.rawValue, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0], conflict: .writeAccess,
            timeouts: (600, 3600)
        ) { cdb throws(SenseData) in
            .sanitize(
                Sanitize(
                    serviceAction: sa, immediate: cdb[1] & 0x80 != 0, allowUnrestrictedExit: cdb[1] & 0x20 != 0,
                    parameterListLength: cdb.be16(7)))
        }
    }

    /// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 §6.3, §6.18).
    static let copy: [CommandDescriptor] =
        [
            CommandDescriptor(
                0x83, sa: 0x00, "EXTENDED COPY(LID1)",
                usage: [0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0], conflict: .writeAccess,
                timeouts: (60, 600)
            ) { cdb throws(SenseData) in
                .extendedCopy(parameterListLength: cdb.be32(10))
            }
        ]
        + ReceiveCopyResultsAction.allCases.map { sa in
            CommandDescriptor(
                0x84, sa: UInt16(sa.rawValue), "RECEIVE COPY RESULTS/\(sa)",
                usage: [0x84, sa.rawValue, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0],
                conflict: .allowed
            ) { cdb throws(SenseData) in
                .receiveCopyResults(sa, listIdentifier: cdb[2], allocationLength: cdb.be32(10))
            }
        }
}
