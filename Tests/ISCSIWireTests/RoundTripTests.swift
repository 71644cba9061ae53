import NIOCore
import Testing

@testable import ISCSIWire

@Suite struct RoundTripTests {
    /// Digest settings every table row is tried with.
    static let digestModes: [(header: Bool, data: Bool)] = [(false, false), (true, false), (false, true), (true, true)]

    @Test func tableCoversEveryOpcode() {
        let covered = Set(pduTable.map(\.pdu.opcode))
        #expect(covered == Set(ISCSIOpcode.allCases))
    }

    @Test(arguments: 0..<pduTable.count, 0..<4)
    func roundTrip(row: Int, mode: Int) throws {
        let (line, pdu) = pduTable[row]
        let (headerDigest, dataDigest) = Self.digestModes[mode]
        let encoder = ISCSIFrameEncoder(headerDigest: headerDigest, dataDigest: dataDigest)
        var decoder = ISCSIFrameDecoder(
            maxRecvDataSegmentLength: 1 << 20, headerDigest: headerDigest, dataDigest: dataDigest)

        var stream = ByteBuffer()
        encoder.encode(pdu, into: &stream)
        let expectedLength = expectedFrameLength(pdu, headerDigest: headerDigest, dataDigest: dataDigest)
        #expect(stream.readableBytes == expectedLength, "row at line \(line)")
        #expect(stream.readableBytes % 4 == 0, "row at line \(line): frame not 4-byte aligned")

        let decoded = try decoder.decode(&stream)
        #expect(decoded == .pdu(pdu), "row at line \(line), digests \(headerDigest)/\(dataDigest)")
        #expect(stream.readableBytes == 0, "row at line \(line): bytes left over")

        // The (header, data) form gives the same bytes.
        let (header, data) = encoder.encode(pdu, allocator: ByteBufferAllocator())
        var joined = header
        if var data { joined.writeBuffer(&data) }
        var again = ByteBuffer()
        encoder.encode(pdu, into: &again)
        #expect(joined == again, "row at line \(line): encode forms differ")
    }

    func expectedFrameLength(_ pdu: ISCSIPDU, headerDigest: Bool, dataDigest: Bool) -> Int {
        var ahs = 0
        if case .scsiCommand(let command) = pdu {
            if command.cdb.count > 16 { ahs += (4 + command.cdb.count - 16 + 3) / 4 * 4 }
            if command.bidirectionalReadExpectedDataTransferLength != nil { ahs += 8 }
        }
        let data = pdu.dataSegment.readableBytes
        return 48 + ahs + (headerDigest ? 4 : 0) + (data + 3) / 4 * 4 + (dataDigest && data > 0 ? 4 : 0)
    }

    @Test func dataSegmentIsNotCopiedByEncodeFrame() {
        let payload = pattern(4096)
        let pdu = ISCSIPDU.dataIn(DataInPDU(final: true, initiatorTaskTag: 1, dataSegment: payload))
        let frame = ISCSIFrameEncoder(headerDigest: true, dataDigest: true).encodeFrame(
            pdu, allocator: ByteBufferAllocator())
        let same = frame.data?.withUnsafeReadableBytes { a in
            payload.withUnsafeReadableBytes { b in a.baseAddress == b.baseAddress }
        }
        #expect(same == true)
        #expect(frame.trailer?.readableBytes == 4)
    }

    @Test func decodedDataSegmentIsASliceOfTheInput() throws {
        let pdu = ISCSIPDU.dataOut(DataOutPDU(final: true, initiatorTaskTag: 1, dataSegment: pattern(4096)))
        var stream = ByteBuffer()
        ISCSIFrameEncoder().encode(pdu, into: &stream)
        let dataAddress = stream.withUnsafeReadableBytes { $0.baseAddress! + 48 }
        var decoder = ISCSIFrameDecoder(maxRecvDataSegmentLength: 8192)
        guard case .pdu(.dataOut(let out)) = try decoder.decode(&stream) else {
            Issue.record("not a Data-Out")
            return
        }
        #expect(out.dataSegment.withUnsafeReadableBytes { $0.baseAddress } == UnsafeRawPointer(dataAddress))
    }

    @Test func senseSegmentLayout() {
        let segment = SCSIResponsePDU.senseSegment([0x70, 0x00, 0x05])
        #expect(Array(segment.readableBytesView) == [0x00, 0x03, 0x70, 0x00, 0x05])
        #expect(SCSIResponsePDU(dataSegment: segment).senseData == [0x70, 0x00, 0x05])
        #expect(SCSIResponsePDU.senseSegment([]).readableBytes == 0)
        #expect(SCSIResponsePDU(dataSegment: buffer([0x00, 0x09, 0x70])).senseData == [])
    }
}

@Suite struct BasicHeaderSegmentTests {
    @Test(arguments: 0..<pduTable.count)
    func headerOnlyDecodeKeepsTheHeaderFields(row: Int) {
        let (line, pdu) = pduTable[row]
        var bytes = ByteBuffer()
        ISCSIFrameEncoder().encode(pdu, into: &bytes)
        guard let decoded = ISCSIPDU(basicHeaderSegment: bytes.getSlice(at: 0, length: 48)!) else {
            Issue.record("row at line \(line) did not decode")
            return
        }
        #expect(decoded.opcode == pdu.opcode, "row at line \(line)")
        #expect(decoded.initiatorTaskTag == pdu.initiatorTaskTag, "row at line \(line)")
        #expect(decoded.dataSegment.readableBytes == 0)
    }

    @Test func shortOrUnknownHeadersGiveNil() {
        #expect(ISCSIPDU(basicHeaderSegment: pattern(47)) == nil)
        #expect(ISCSIPDU(basicHeaderSegment: buffer([0x3e] + [UInt8](repeating: 0, count: 47))) == nil)
    }
}
