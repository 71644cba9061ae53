import NIOCore
import Testing

@testable import ISCSIWire

@Suite struct FrameDecoderTests {
    /// Every table PDU encoded back to back.
    func stream(headerDigest: Bool, dataDigest: Bool) -> ByteBuffer {
        let encoder = ISCSIFrameEncoder(headerDigest: headerDigest, dataDigest: dataDigest)
        var out = ByteBuffer()
        for (_, pdu) in pduTable { encoder.encode(pdu, into: &out) }
        return out
    }

    /// Feeds `input` in chunks of the given sizes into a cumulation buffer,
    /// decoding after each chunk, as a channel handler would.
    func decodeChunked(
        _ input: ByteBuffer, chunkSizes: inout some IteratorProtocol<Int>, decoder: inout ISCSIFrameDecoder
    ) throws -> [ISCSIInbound] {
        var input = input
        var cumulation = ByteBuffer()
        var out: [ISCSIInbound] = []
        while input.readableBytes > 0 {
            let n = min(input.readableBytes, chunkSizes.next() ?? 1)
            var chunk = input.readSlice(length: n)!
            cumulation.writeBuffer(&chunk)
            while true {
                let before = cumulation.readerIndex
                guard let inbound = try decoder.decode(&cumulation) else {
                    #expect(cumulation.readerIndex == before, "partial frame moved the reader index")
                    break
                }
                out.append(inbound)
            }
        }
        #expect(cumulation.readableBytes == 0)
        return out
    }

    @Test(arguments: [false, true], [false, true])
    func dripFeedOneByteAtATime(headerDigest: Bool, dataDigest: Bool) throws {
        var decoder = ISCSIFrameDecoder(
            maxRecvDataSegmentLength: 1 << 20, headerDigest: headerDigest, dataDigest: dataDigest)
        var ones = AnyIterator { 1 }
        let decoded = try decodeChunked(
            stream(headerDigest: headerDigest, dataDigest: dataDigest), chunkSizes: &ones, decoder: &decoder)
        #expect(decoded == pduTable.map { .pdu($0.pdu) })
    }

    @Test(arguments: [1, 2, 3, 4, 5])
    func randomChunkSizes(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var sizes = AnyIterator { Int.random(in: 1...9000, using: &rng) }
        var decoder = ISCSIFrameDecoder(maxRecvDataSegmentLength: 1 << 20, headerDigest: true, dataDigest: true)
        let decoded = try decodeChunked(
            stream(headerDigest: true, dataDigest: true), chunkSizes: &sizes, decoder: &decoder)
        #expect(decoded == pduTable.map { .pdu($0.pdu) })
    }

    @Test func partialFrameLeavesReaderIndexAlone() throws {
        var whole = ByteBuffer()
        ISCSIFrameEncoder().encode(.nopOut(NOPOutPDU(dataSegment: pattern(10))), into: &whole)
        var decoder = ISCSIFrameDecoder()
        for length in [0, 1, 47, 48, 57, whole.readableBytes - 1] {
            var partial = whole.getSlice(at: whole.readerIndex, length: length)!
            #expect(try decoder.decode(&partial) == nil, "length \(length)")
            #expect(partial.readerIndex == 0 && partial.readableBytes == length)
        }
    }

    // MARK: digest errors

    @Test func headerDigestMismatchThrows() {
        var bytes = ByteBuffer()
        ISCSIFrameEncoder(headerDigest: true).encode(.nopOut(NOPOutPDU(cmdSN: 1)), into: &bytes)
        bytes.setInteger(UInt8(0x99), at: 27)  // corrupt CmdSN
        var decoder = ISCSIFrameDecoder(headerDigest: true)
        #expect(throws: ISCSIWireError.self) { try decoder.decode(&bytes) }
        do {
            _ = try decoder.decode(&bytes)
        } catch {
            #expect(error.code == .headerDigestMismatch)
        }
    }

    @Test func corruptHeaderDigestItselfThrows() {
        var bytes = ByteBuffer()
        ISCSIFrameEncoder(headerDigest: true).encode(.nopOut(NOPOutPDU()), into: &bytes)
        bytes.setInteger(UInt8(0), at: 48)
        bytes.setInteger(UInt8(0), at: 49)
        var decoder = ISCSIFrameDecoder(headerDigest: true)
        #expect(throws: ISCSIWireError.self) { try decoder.decode(&bytes) }
    }

    @Test(arguments: [1, 4, 5, 4096])
    func dataDigestMismatchRejectsAndContinues(length: Int) throws {
        let bad = ISCSIPDU.dataOut(DataOutPDU(final: true, initiatorTaskTag: 9, dataSegment: pattern(length)))
        let good = ISCSIPDU.nopOut(NOPOutPDU(initiatorTaskTag: 10, cmdSN: 3))
        let encoder = ISCSIFrameEncoder(headerDigest: true, dataDigest: true)
        var bytes = ByteBuffer()
        encoder.encode(bad, into: &bytes)
        let badLength = bytes.readableBytes
        encoder.encode(good, into: &bytes)
        bytes.setInteger(UInt8(0xee), at: 48 + 4 + length - 1)  // last data byte

        var decoder = ISCSIFrameDecoder(maxRecvDataSegmentLength: 8192, headerDigest: true, dataDigest: true)
        let first = try decoder.decode(&bytes)
        var expectedBHS = ByteBuffer()
        ISCSIFrameEncoder().encode(
            .dataOut(DataOutPDU(final: true, initiatorTaskTag: 9, dataSegment: ByteBuffer())), into: &expectedBHS)
        expectedBHS.setInteger(UInt32(length) & 0xff_ffff, at: 4)
        #expect(first == .reject(reason: RejectReason.dataDigestError, basicHeaderSegment: expectedBHS))
        #expect(bytes.readerIndex == badLength)
        #expect(try decoder.decode(&bytes) == .pdu(good))
    }

    @Test func corruptPaddingIsADataDigestError() throws {
        var bytes = ByteBuffer()
        ISCSIFrameEncoder(dataDigest: true).encode(.nopOut(NOPOutPDU(dataSegment: pattern(5))), into: &bytes)
        bytes.setInteger(UInt8(1), at: 48 + 6)  // a padding byte
        var decoder = ISCSIFrameDecoder(dataDigest: true)
        guard case .reject(let reason, _) = try decoder.decode(&bytes) else {
            Issue.record("expected a reject")
            return
        }
        #expect(reason == RejectReason.dataDigestError)
    }

    @Test func noDataDigestOnEmptyDataSegment() throws {
        var bytes = ByteBuffer()
        ISCSIFrameEncoder(headerDigest: true, dataDigest: true).encode(.nopOut(NOPOutPDU()), into: &bytes)
        #expect(bytes.readableBytes == 52)
    }

    // MARK: lengths

    @Test func oversizeDataSegmentLengthThrowsBeforeDataArrives() throws {
        var bytes = ByteBuffer()
        ISCSIFrameEncoder().encode(.dataOut(DataOutPDU(dataSegment: pattern(8196))), into: &bytes)
        var header = bytes.getSlice(at: 0, length: 48)!
        var decoder = ISCSIFrameDecoder(maxRecvDataSegmentLength: 8192)
        do {
            _ = try decoder.decode(&header)
            Issue.record("no error")
        } catch {
            #expect(error.code == .dataSegmentTooLong)
        }
        decoder.maxRecvDataSegmentLength = 8196
        #expect(try decoder.decode(&bytes) != nil)
    }

    @Test func maximumDataSegmentLengthFieldIsBounded() {
        // DataSegmentLength 0xffffff (RFC 7143 §11.2.1.5 maximum) above the limit.
        var bytes = buffer([0x05, 0x80, 0, 0, 0x00, 0xff, 0xff, 0xff] + [UInt8](repeating: 0, count: 40))
        var decoder = ISCSIFrameDecoder(maxRecvDataSegmentLength: 1 << 24)
        #expect(throws: Never.self) { _ = try decoder.decode(&bytes) }
        decoder.maxRecvDataSegmentLength = 262_144
        #expect(throws: ISCSIWireError.self) { _ = try decoder.decode(&bytes) }
    }

    @Test func loginPDUsAreBoundedAt8192EvenAfterNegotiation() throws {
        var bytes = ByteBuffer()
        ISCSIFrameEncoder().encode(.loginRequest(LoginRequestPDU(dataSegment: pattern(8193))), into: &bytes)
        var decoder = ISCSIFrameDecoder(maxRecvDataSegmentLength: 262_144)
        #expect(throws: ISCSIWireError.self) { _ = try decoder.decode(&bytes) }
    }

    // MARK: rejects

    @Test(
        arguments: [
            (0x07, RejectReason.protocolError), (0x1c, RejectReason.commandNotSupported),
            (0x1e, RejectReason.commandNotSupported), (0x2f, RejectReason.protocolError),
            (0x3e, RejectReason.protocolError),
        ] as [(UInt8, UInt8)])
    func unknownOpcodeRejectsAndContinues(opcode: UInt8, reason: UInt8) throws {
        var bhs = buffer([opcode, 0x80, 0, 0, 0, 0, 0, 3] + [UInt8](repeating: 0x11, count: 40))
        var bytes = bhs
        bytes.writeBytes([1, 2, 3, 0])  // data segment + padding
        let next = ISCSIPDU.nopOut(NOPOutPDU(cmdSN: 5))
        ISCSIFrameEncoder().encode(next, into: &bytes)
        var decoder = ISCSIFrameDecoder()
        #expect(try decoder.decode(&bytes) == .reject(reason: reason, basicHeaderSegment: bhs.readSlice(length: 48)!))
        #expect(try decoder.decode(&bytes) == .pdu(next))
    }

    @Test func reservedLoginStageIsAnInvalidField() throws {
        var bytes = ByteBuffer()
        ISCSIFrameEncoder().encode(.loginRequest(LoginRequestPDU()), into: &bytes)
        bytes.setInteger(UInt8(0x80 | (2 << 2) | 3), at: 1)  // CSG = 2 (reserved)
        var decoder = ISCSIFrameDecoder()
        guard case .reject(let reason, let bhs) = try decoder.decode(&bytes) else {
            Issue.record("expected a reject")
            return
        }
        #expect(reason == RejectReason.invalidPDUField)
        #expect(bhs.readableBytes == 48)
    }

    @Test(
        arguments: [
            [0x00, 0x09, 0x01, 0x00, 0, 0, 0, 0],  // AHSLength past the end
            [0x00, 0x04, 0x02, 0x00, 0, 0, 0, 0],  // bidirectional AHS of the wrong length
            [0x00, 0x01, 0x07, 0x00, 0, 0, 0, 0],  // unknown AHSType
            [0x00, 0x00, 0x01, 0x00, 0, 0, 0, 0],  // AHSLength 0
        ] as [[UInt8]])
    func malformedAHSIsAnInvalidField(ahs: [UInt8]) throws {
        var bytes = ByteBuffer()
        ISCSIFrameEncoder().encode(.scsiCommand(SCSICommandPDU(initiatorTaskTag: 1)), into: &bytes)
        bytes.setInteger(UInt8(ahs.count / 4), at: 4)
        bytes.writeBytes(ahs)
        var decoder = ISCSIFrameDecoder()
        guard case .reject(let reason, _) = try decoder.decode(&bytes) else {
            Issue.record("expected a reject")
            return
        }
        #expect(reason == RejectReason.invalidPDUField)
        #expect(bytes.readableBytes == 0)
    }

    @Test func headerDigestCoversAHS() throws {
        let pdu = ISCSIPDU.scsiCommand(SCSICommandPDU(initiatorTaskTag: 1, cdb: (0..<24).map { UInt8($0) }))
        var bytes = ByteBuffer()
        ISCSIFrameEncoder(headerDigest: true).encode(pdu, into: &bytes)
        bytes.setInteger(UInt8(0xff), at: 50)  // inside the AHS
        var decoder = ISCSIFrameDecoder(headerDigest: true)
        #expect(throws: ISCSIWireError.self) { _ = try decoder.decode(&bytes) }
    }

    /// Arbitrary bytes never crash the decoder, never make it loop, and
    /// every PDU it accepts re-encodes to itself.
    @Test func randomGarbageNeverCrashes() {
        var rng = SplitMix64(seed: 99)
        for round in 0..<3000 {
            var bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if round % 2 == 0, bytes.count >= 8 {
                // Plausible headers: a known opcode, small AHS and data lengths.
                bytes[0] = ISCSIOpcode.allCases.randomElement(using: &rng)!.rawValue
                bytes[4] = UInt8.random(in: 0...3, using: &rng)
                bytes[5] = 0
                bytes[6] = 0
                bytes[7] = UInt8.random(in: 0...64, using: &rng)
            }
            let ok = bytes.withUnsafeBytes { ISCSIWireFuzzing.decodeAndReencode($0) }
            #expect(ok, "round \(round): \(bytes)")
            if !ok { return }
        }
    }
}
