import Testing

@testable import SCSIWire

/// CDB parsing: one row per case, keyed by #line.
@Suite struct CDBParseTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var line: Int
        var cdb: [UInt8]
        var expected: Result<CDBCommand, SenseData>
        var testDescription: String { "line \(line)" }
    }

    static func ok(_ cdb: [UInt8], _ c: CDBCommand, line: Int = #line) -> Row {
        Row(line: line, cdb: cdb, expected: .success(c))
    }
    static func fails(_ cdb: [UInt8], _ s: SenseData, line: Int = #line) -> Row {
        Row(line: line, cdb: cdb, expected: .failure(s))
    }

    static let rows: [Row] = [
        ok(CDB.testUnitReady, .testUnitReady),
        fails([0x00, 0, 0, 0, 0, 0x04], .invalidField(byte: 5, bit: 2)),  // NACA not supported
        fails([0x00, 0x01, 0, 0, 0, 0], .invalidField(byte: 1, bit: 0)),
        fails(
            [0xFF, 0, 0, 0, 0, 0], SenseData(.invalidCommandOperationCode, fieldPointer: FieldPointer(byte: 0, bit: 7))),
        fails([], SenseData(.invalidCommandOperationCode)),
        fails([0x28, 0, 0], .invalidField(byte: 3)),  // short CDB
        ok(CDB.read6(0x1F_FFFF, 0), .read(BlockTransfer(lba: 0x1F_FFFF, transferLength: 256, dpo: false, fua: false))),
        ok(CDB.write6(5, 7), .write(BlockTransfer(lba: 5, transferLength: 7, dpo: false, fua: false))),
        ok(
            CDB.read10(0xFFFF_FFFF, 0xFFFF, flags: 0x18),
            .read(BlockTransfer(lba: 0xFFFF_FFFF, transferLength: 0xFFFF, dpo: true, fua: true))),
        fails(CDB.read10(0, 1, flags: 0x20), .invalidField(byte: 1, bit: 7)),  // RDPROTECT
        fails(CDB.write10(0, 1, flags: 0x04), .invalidField(byte: 1, bit: 2)),  // reserved bit in WRITE(10)
        ok(
            CDB.read12(1, 0xFFFF_FFFF),
            .read(BlockTransfer(lba: 1, transferLength: 0xFFFF_FFFF, dpo: false, fua: false))),
        ok(CDB.write12(2, 3), .write(BlockTransfer(lba: 2, transferLength: 3, dpo: false, fua: false))),
        ok(CDB.read16(UInt64.max, 1), .read(BlockTransfer(lba: UInt64.max, transferLength: 1, dpo: false, fua: false))),
        ok(
            CDB.write16(1 << 40, 8, flags: 0x08),
            .write(BlockTransfer(lba: 1 << 40, transferLength: 8, dpo: false, fua: true))),
        ok(CDB.verify10(9, 2, bytchk: 1), .verify(Verify(lba: 9, verificationLength: 2, byteCheck: 1, dpo: false))),
        fails(CDB.verify10(9, 2, bytchk: 2), .invalidField(byte: 1, bit: 2)),
        ok(
            CDB.writeAndVerify10(1, 1, bytchk: 0),
            .writeAndVerify(Verify(lba: 1, verificationLength: 1, byteCheck: 0, dpo: false))),
        ok(CDB.inquiry(alloc: 36), .inquiry(Inquiry(evpd: false, pageCode: 0, allocationLength: 36))),
        ok(
            CDB.inquiry(evpd: true, page: 0x83, alloc: 255),
            .inquiry(Inquiry(evpd: true, pageCode: 0x83, allocationLength: 255))),
        fails(CDB.inquiry(evpd: false, page: 0x80, alloc: 255), .invalidField(byte: 2)),
        fails([0x12, 0x02, 0, 0, 36, 0], .invalidField(byte: 1, bit: 1)),  // CMDDT
        ok(CDB.requestSense(alloc: 252), .requestSense(descriptorFormat: false, allocationLength: 252)),
        ok(CDB.reportLUNs(alloc: 16), .reportLUNs(selectReport: 0, allocationLength: 16)),
        fails(CDB.reportLUNs(alloc: 15), .invalidField(byte: 6)),
        fails([0xA0, 0, 0x03, 0, 0, 0, 0, 0, 1, 0, 0, 0], .invalidField(byte: 2)),
        ok([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], .readCapacity10),
        fails([0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0], .invalidField(byte: 2)),  // LBA without PMI
        ok(CDB.readCapacity16(alloc: 32), .readCapacity16(allocationLength: 32)),
        // Unknown service action.
        fails([0x9E, 0x11] + [UInt8](repeating: 0, count: 14), .invalidField(byte: 1, bit: 4)),
        ok(
            CDB.modeSense6(page: 0x3F, pc: 2, dbd: true, alloc: 200),
            .modeSense(
                ModeSense(
                    ten: false, dbd: true, llbaa: false, pageControl: 2, pageCode: 0x3F, subpageCode: 0,
                    allocationLength: 200))),
        ok(
            CDB.modeSense10(page: 0x08, llbaa: true, alloc: 300),
            .modeSense(
                ModeSense(
                    ten: true, dbd: false, llbaa: true, pageControl: 0, pageCode: 0x08, subpageCode: 0,
                    allocationLength: 300))),
        ok(
            CDB.modeSelect6(length: 24),
            .modeSelect(ModeSelect(ten: false, pf: true, sp: false, parameterListLength: 24))),
        ok(
            CDB.modeSelect10(length: 28),
            .modeSelect(ModeSelect(ten: true, pf: true, sp: false, parameterListLength: 28))),
        ok(
            [0x35, 0x02, 0, 0, 0, 9, 0, 0, 3, 0], .synchronizeCache(BlockRange(lba: 9, blockCount: 3), immediate: true)),
        ok(
            [0x90, 0] + CDB.be(7, 8) + CDB.be(2, 4) + [0, 0],
            .prefetch(BlockRange(lba: 7, blockCount: 2), immediate: false)),
        ok(
            [0x1B, 1, 0, 0, 0x01, 0], .startStopUnit(immediate: true, powerCondition: 0, loadEject: false, start: true)),
        ok([0x1E, 0, 0, 0, 0x01, 0], .preventAllowMediumRemoval(prevent: 1)),
        ok(
            CDB.rsoc(options: 2, rctd: true, opcode: 0x9E, sa: 0x10, alloc: 100),
            .reportSupportedOperationCodes(
                ReportSupportedOperationCodes(
                    rctd: true, reportingOptions: 2, requestedOperationCode: 0x9E, requestedServiceAction: 0x10,
                    allocationLength: 100))),
        fails(CDB.rsoc(options: 4), .invalidField(byte: 2, bit: 2)),
        ok(
            [0x93, 0x08] + CDB.be(5, 8) + CDB.be(10, 4) + [0, 0],
            .writeSame(WriteSame(lba: 5, blockCount: 10, unmap: true, anchor: false, noDataOut: false))),
        ok([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], .unmap(parameterListLength: 24)),
        ok([0x16, 0, 0, 0, 0, 0], .reserve),
        fails([0x16, 0x01, 0, 0, 0, 0], .invalidField(byte: 1, bit: 0)),  // extent reservations
        ok([0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0], .release),
        fails([0x56, 0x10, 0, 0, 0, 0, 0, 0, 0, 0], .invalidField(byte: 1, bit: 4)),  // third party
        ok(
            [0x89, 0x08] + CDB.be(3, 8) + [0, 0, 0, 1, 0, 0],
            .compareAndWrite(BlockTransfer(lba: 3, transferLength: 1, dpo: false, fua: true))),
    ]

    @Test(arguments: rows)
    func parse(_ row: Row) {
        let result: Result<CDBCommand, SenseData>
        do { result = .success(try CommandDescriptor.parse(row.cdb).1) } catch { result = .failure(error) }
        #expect(result == row.expected, "line \(row.line)")
    }

    /// READ/WRITE(16) at LBA 2^64-1 parse; the range check (not the parser) rejects them.
    @Test func transferSizes() throws {
        let (_, c) = try CommandDescriptor.parse(CDB.write10(0, 3))
        #expect(c.dataTransfer(blockSize: 512) == .dataOut(1536))
        let (_, r) = try CommandDescriptor.parse(CDB.read6(0, 0))
        #expect(r.dataTransfer(blockSize: 4096) == .dataIn(256 * 4096))
        let (_, t) = try CommandDescriptor.parse(CDB.testUnitReady)
        #expect(t.dataTransfer(blockSize: 512) == DataTransfer.none)
    }
}
