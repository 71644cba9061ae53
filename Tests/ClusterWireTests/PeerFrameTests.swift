import BlockStorage
import ClusterModel
import NIOCore
import NIOEmbedded
import Testing

@testable import ClusterWire

/// One frame of the round-trip table, named by its line.
struct FrameCase: Sendable, CustomTestStringConvertible {
    let line: Int
    let frame: PeerFrame
    init(_ frame: PeerFrame, line: Int = #line) {
        self.line = line
        self.frame = frame
    }
    var testDescription: String { "line \(line): \(describe(frame).prefix(80))" }
}

private let sub = SubUnitID(lun: LUNID(0x1122_3344_5566_7788), index: 3)
private let io = PeerIO(subUnit: sub, epoch: Epoch(9), lba: 0x100, blockCount: 2)
private let bigIO = PeerIO(
    subUnit: SubUnitID(lun: LUNID(.max), index: .max), epoch: Epoch(.max), lba: .max, blockCount: .max)
private let payload = ioBuffer((0..<1024).map { UInt8($0 & 0xff) })

/// Every request kind and reply status, plus the control frames.
let frameTable: [FrameCase] = [
    FrameCase(.hello(.init(minVersion: 1, maxVersion: 1, nodeID: NodeID(7)))),
    FrameCase(.hello(.init(minVersion: 0, maxVersion: .max, nodeID: NodeID(.max)))),
    FrameCase(.helloAck(.init(version: 1, nodeID: NodeID(2)))),
    FrameCase(.request(id: 1, .read(io))),
    FrameCase(.request(id: .max, .read(bigIO))),
    FrameCase(.request(id: 2, .write(PeerWrite(io: io, fua: false, data: payload)))),
    FrameCase(.request(id: 3, .write(PeerWrite(io: io, fua: true, data: ioBuffer([]))))),
    FrameCase(.request(id: 4, .replicate(PeerWrite(io: io, fua: true, data: ioBuffer([1, 2, 3]))))),
    FrameCase(.request(id: 5, .unmap(io))),
    FrameCase(.request(id: 6, .replicateUnmap(bigIO))),
    FrameCase(.request(id: 7, .compareAndWrite(PeerWrite(io: io, fua: false, data: ioBuffer([9, 9, 8, 8]))))),
    FrameCase(.request(id: 8, .allocation(io))),
    FrameCase(.request(id: 9, .flush(LUNID(42)))),
    FrameCase(.request(id: 11, .activityLog(LUNID(45)))),
    FrameCase(.request(id: 12, .ping)),
    FrameCase(.request(id: 10, .contextChange(LUNID(43), payload: [0x7B, 0x7D]))),
    FrameCase(.request(id: 16, .contextChange(LUNID(44), payload: []))),
    FrameCase(.reply(id: 10, .done)),
    FrameCase(.reply(id: 11, .data(payload))),
    FrameCase(.reply(id: 12, .data(ioBuffer([])))),
    FrameCase(.reply(id: 13, .miscompare(offset: 511))),
    FrameCase(.reply(id: 14, .extents([]))),
    FrameCase(
        .reply(
            id: 15,
            .extents([
                BlockExtent(lba: 0, blockCount: 8, mapped: true), BlockExtent(lba: 8, blockCount: .max, mapped: false),
            ]))),
    FrameCase(.reply(id: 16, .failure(PeerFailure(.staleEpoch, epoch: Epoch(12), detail: "stale")))),
    FrameCase(.reply(id: 17, .failure(PeerFailure(.ioError)))),
    FrameCase(.reply(id: 18, .failure(PeerFailure(PeerFailure.Code(rawValue: 200), detail: "épée ✓")))),
    FrameCase(.error(.init(requestID: 0, code: .unexpectedFrame, message: "hello must be first"))),
    FrameCase(.error(.init(requestID: 99, code: PeerWireError.Code(rawValue: 77), message: ""))),
]

/// Hand-assembled from the wire format, independent of the encoder.
let goldenFrames: [(line: Int, frame: PeerFrame, hex: String)] = [
    (
        #line, .hello(.init(minVersion: 1, maxVersion: 1, nodeID: NodeID(7))),
        "00000019 01 0000000000000000 54535257 0001 0001 0000000000000007"
    ),
    (#line, .helloAck(.init(version: 1, nodeID: NodeID(2))), "00000013 02 0000000000000000 0001 0000000000000002"),
    (
        #line,
        .request(
            id: 0x2A,
            .write(
                PeerWrite(
                    io: PeerIO(subUnit: sub, epoch: Epoch(9), lba: 0x100, blockCount: 1), fua: true,
                    data: ioBuffer([0, 0, 0xDE, 0xAD, 0xBE, 0xEF]), offset: 2))),
        "00000033 03 000000000000002A 02 1122334455667788 00000003 0000000000000009 0000000000000100 00000001 01 00000004 DEADBEEF"
    ),
    (#line, .request(id: 1, .flush(LUNID(7))), "00000012 03 0000000000000001 08 0000000000000007"),
    (#line, .request(id: 3, .activityLog(LUNID(7))), "00000012 03 0000000000000003 0B 0000000000000007"),
    (#line, .request(id: 4, .ping), "0000000A 03 0000000000000004 0C"),
    (#line, .request(id: 2, .contextChange(LUNID(7), payload: [0x7B, 0x7D])), "00000018 03 0000000000000002 0A 0000000000000007 00000002 7B7D"),
    (
        #line, .reply(id: 5, .failure(PeerFailure(.staleEpoch, epoch: Epoch(12), detail: "old"))),
        "00000019 04 0000000000000005 04 01 01 000000000000000C 0003 6F6C64"
    ),
    (
        #line,
        .reply(
            id: 6,
            .extents([
                BlockExtent(lba: 0, blockCount: 8, mapped: true), BlockExtent(lba: 8, blockCount: 16, mapped: false),
            ])),
        "00000030 04 0000000000000006 03 00000002 0000000000000000 0000000000000008 01 0000000000000008 0000000000000010 00"
    ),
    (#line, .reply(id: 3, .data(ioBuffer([0xAB]))), "0000000F 04 0000000000000003 01 00000001 AB"),
    (#line, .error(.init(code: .unexpectedFrame, message: "hi")), "0000000E 05 0000000000000000 06 0002 6869"),
]

@Suite("Peer frame codec")
struct PeerFrameTests {
    @Test("round trip", arguments: frameTable)
    func roundTrip(_ testCase: FrameCase) throws {
        try testCase.frame.checkEncodable()
        var buffer = encoded(testCase.frame)
        #expect(buffer.readableBytes == testCase.frame.encodedLength)
        #expect(buffer.getInteger(at: 0, as: UInt32.self) == UInt32(buffer.readableBytes - 4))
        let decoded = try #require(try PeerFrameDecoder().decode(&buffer)?.frame)
        #expect(buffer.readableBytes == 0)
        #expect(describe(decoded) == describe(testCase.frame))
        #expect(decoded.requestID == testCase.frame.requestID)
    }

    @Test("the table covers every request kind and reply status")
    func tableCoversEverything() {
        var kinds = Set<PeerRequestKind>()
        var statuses = Set<UInt8>()
        for testCase in frameTable {
            if case .request(_, let request) = testCase.frame { kinds.insert(request.kind) }
            if case .reply(_, let reply) = testCase.frame { statuses.insert(reply.status.rawValue) }
        }
        #expect(kinds == Set(PeerRequestKind.allCases))
        #expect(statuses == Set(PeerReplyStatus.allCases.map(\.rawValue)))
    }

    @Test("golden bytes", arguments: goldenFrames.indices)
    func golden(_ index: Int) throws {
        let (line, frame, text) = goldenFrames[index]
        #expect(hex(encodedBytes(frame)) == hex(hexBytes(text)), "line \(line)")
        var buffer = ByteBuffer(bytes: hexBytes(text))
        let decoded = try #require(try PeerFrameDecoder().decode(&buffer)?.frame, "line \(line)")
        // The write's offset is not on the wire: compare what is.
        #expect(hex(encodedBytes(decoded)) == hex(hexBytes(text)), "line \(line)")
    }

    @Test("a piece of a larger command buffer puts only its own bytes on the wire")
    func pieceOfALargerBuffer() throws {
        let command = IOBuffer(bytes: (0..<4096).map { UInt8(truncatingIfNeeded: $0 / 7) })
        let io = PeerIO(subUnit: SubUnitID(lun: LUNID(3), index: 1), epoch: Epoch(2), lba: 8, blockCount: 2)
        let piece = PeerWrite(io: io, fua: true, data: command, offset: 1024, length: 1024)
        var buffer = encoded(.request(id: 9, .write(piece)))
        #expect(buffer.readableBytes == 4 + 9 + 1 + 32 + 1 + 4 + 1024)
        guard case .request(9, .write(let decoded)) = try #require(try PeerFrameDecoder().decode(&buffer)?.frame) else {
            Issue.record("not a write request")
            return
        }
        #expect(decoded.length == 1024 && decoded.offset == 0)
        #expect(decoded.data.array() == command.array(1024..<2048))
    }

    @Test("decoded payloads land in aligned IOBuffers")
    func payloadAlignment() throws {
        var buffer = encoded(.reply(id: 1, .data(payload)))
        guard case .reply(_, .data(let data)) = try #require(try PeerFrameDecoder().decode(&buffer)?.frame) else {
            Issue.record("not a data reply")
            return
        }
        #expect(Int(bitPattern: data.baseAddress) % IOBuffer.defaultAlignment == 0)
        #expect(data.array() == payload.array())
    }

    @Test("the pure decoder leaves the reader index alone until the whole frame is in")
    func partialFrames() throws {
        let bytes = frameTable.flatMap { encodedBytes($0.frame) }
        var stream = ByteBuffer()
        var decoded: [String] = []
        for byte in bytes {
            stream.writeInteger(byte)
            let before = stream.readerIndex
            if let inbound = try PeerFrameDecoder().decode(&stream) {
                decoded.append(describe(try #require(inbound.frame)))
            } else {
                #expect(stream.readerIndex == before)
            }
        }
        #expect(decoded == frameTable.map { describe($0.frame) })
        #expect(stream.readableBytes == 0)
    }

    @Test("drip-feed: every frame one byte at a time through the channel decoder", arguments: frameTable)
    func dripFeed(_ testCase: FrameCase) throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder()))
        let bytes = encodedBytes(testCase.frame)
        for (index, byte) in bytes.enumerated() {
            try channel.writeInbound(ByteBuffer(bytes: [byte]))
            let inbound = try channel.readInbound(as: PeerInbound.self)
            if index < bytes.count - 1 {
                #expect(inbound == nil, "frame emitted after \(index + 1) of \(bytes.count) bytes")
            } else {
                let frame = try #require(inbound?.frame)
                #expect(describe(frame) == describe(testCase.frame))
            }
        }
        #expect(try channel.finish().isClean)
    }

    @Test("frames back to back in one read all decode")
    func backToBack() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder()))
        var all = ByteBuffer()
        for testCase in frameTable { testCase.frame.encode(into: &all) }
        try channel.writeInbound(all)
        var decoded: [String] = []
        while let inbound = try channel.readInbound(as: PeerInbound.self) {
            decoded.append(describe(try #require(inbound.frame)))
        }
        #expect(decoded == frameTable.map { describe($0.frame) })
        _ = try channel.finish()
    }

    @Test("an oversized length is rejected as soon as its 4 bytes are in")
    func oversizedBeforeBody() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder()))
        let length = UInt32(PeerFrame.maxFrameLength + 1)
        var partial = ByteBuffer()
        partial.writeInteger(length >> 8 as UInt32)  // 3 bytes first: not yet judged
        partial.moveReaderIndex(forwardBy: 1)
        try channel.writeInbound(partial)
        #expect(try channel.readInbound(as: PeerInbound.self) == nil)
        #expect(throws: PeerWireError.self) {
            try channel.writeInbound(ByteBuffer(bytes: [UInt8(length & 0xff)]))
        }
        do {
            var four = ByteBuffer()
            four.writeInteger(length)
            _ = try PeerFrameDecoder().decode(&four)
            Issue.record("no error")
        } catch {
            #expect(error.code == .oversized)
        }
        _ = try? channel.finish()
    }

    @Test("the largest legal length waits for its body instead of failing")
    func maximumLengthWaits() throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(PeerFrame.maxFrameLength))
        buffer.writeInteger(PeerFrameType.reply.rawValue)
        buffer.writeInteger(1 as UInt64)
        #expect(try PeerFrameDecoder().decode(&buffer) == nil)
        #expect(buffer.readerIndex == 0)
    }

    @Test(
        "stream errors",
        arguments: [
            (#line, "47455420 2f20485454502f31", PeerWireError.Code.oversized),  // "GET / HTTP/1"
            (#line, "FFFFFFFF", .oversized),
            (#line, "00000000", .malformed),
            (#line, "00000008 04 00000000000000", .malformed),
            (#line, "00000009 00", .unknownType),
            (#line, "00000009 06", .unknownType),
            (#line, "00000009 FF 0000000000000000", .unknownType),
            (#line, "00000009 01 0000000000000000", .malformed),  // hello without body
            (#line, "00000019 01 0000000000000000 54535258 0001 0001 0000000000000007", .malformed),  // magic
            (#line, "00000019 01 0000000000000001 54535257 0001 0001 0000000000000007", .malformed),  // id
            (#line, "00000019 01 0000000000000000 54535257 0002 0001 0000000000000007", .malformed),  // min > max
            (#line, "0000001A 01 0000000000000000 54535257 0001 0001 0000000000000007 00", .malformed),  // stray
            (#line, "00000013 02 0000000000000009 0001 0000000000000002", .malformed),  // helloAck id
            (#line, "0000000A 04 0000000000000001 09", .malformed),  // reply status 9
            (#line, "0000000F 04 0000000000000003 01 00000002 AB", .malformed),  // data longer than frame
            (#line, "0000000F 04 0000000000000003 01 00000000 AB", .malformed),  // data shorter than frame
            (#line, "0000000E 04 0000000000000003 03 00010001", .oversized),  // 65537 extents
            (#line, "0000000E 04 0000000000000003 03 00000001", .malformed),  // extent missing
            (#line, "0000001F 04 0000000000000003 03 00000001 0000000000000000 0000000000000008 02", .malformed),
            (#line, "00000016 04 0000000000000005 04 01 00 000000000000000C 0000", .malformed),  // epoch w/o hasEpoch
            (#line, "00000016 04 0000000000000005 04 01 02 000000000000000C 0000", .malformed),  // hasEpoch 2
            (#line, "00000018 04 0000000000000005 04 01 00 0000000000000000 0002 C328", .malformed),  // bad UTF-8
            (#line, "00000016 04 0000000000000005 04 01 00 0000000000000000 0401", .oversized),  // 1025-byte detail
            (#line, "0000000E 05 0000000000000000 06 0003 6869", .malformed),  // message truncated
        ])
    func streamErrors(line: Int, text: String, code: PeerWireError.Code) {
        var buffer = ByteBuffer(bytes: hexBytes(text))
        do {
            let inbound = try PeerFrameDecoder().decode(&buffer)
            Issue.record("line \(line): decoded \(inbound.map { "\($0)" } ?? "nothing")")
        } catch {
            #expect(error.code == code, "line \(line): \(error)")
        }
    }

    @Test(
        "malformed requests keep the frame boundary and name the request",
        arguments: [
            (#line, "0000000A 03 0000000000000007 63", PeerWireError.Code.unknownKind),
            (#line, "0000000A 03 0000000000000007 00", .unknownKind),
            (#line, "00000009 03 0000000000000007", .malformed),  // no kind
            (#line, "0000000E 03 0000000000000007 01 00000000", .malformed),  // io fields truncated
            (#line, "00000013 03 0000000000000007 08 0000000000000007 00", .malformed),  // stray byte
            (
                #line,
                "0000002F 03 0000000000000007 02 1122334455667788 00000003 0000000000000009 0000000000000100 00000001 02 00000000",
                .malformed
            ),  // reserved flag
            (
                #line,
                "00000030 03 0000000000000007 02 1122334455667788 00000003 0000000000000009 0000000000000100 00000001 01 00000002 AB",
                .malformed
            ),  // dataLength beyond the frame
            (
                #line,
                "00000030 03 0000000000000007 02 1122334455667788 00000003 0000000000000009 0000000000000100 00000001 01 00000000 AB",
                .malformed
            ),  // data shorter than the frame
            (
                #line,
                "0000002F 03 0000000000000007 02 1122334455667788 00000003 0000000000000009 0000000000000100 00000001 01 FFFFFFFF",
                .malformed
            ),
        ])
    func malformedRequests(line: Int, text: String, code: PeerWireError.Code) throws {
        var buffer = ByteBuffer(bytes: hexBytes(text))
        buffer.writeBytes(encodedBytes(.request(id: 8, .flush(LUNID(1)))))
        let first = try PeerFrameDecoder().decode(&buffer)
        guard case .malformedRequest(let id, let error) = first else {
            Issue.record("line \(line): \(String(describing: first))")
            return
        }
        #expect(id == 7)
        #expect(error.code == code, "line \(line): \(error)")
        // The next frame is read from the right place.
        let next = try #require(try PeerFrameDecoder().decode(&buffer)?.frame)
        #expect(describe(next) == "request(8, flush lun-1)")
    }

    @Test("limits on encoding")
    func encodingLimits() throws {
        let maxPayload = PeerFrame.maxFrameLength - PeerFrame.headerLength - 1 - 4
        try PeerFrame.reply(id: 1, .data(IOBuffer(count: maxPayload))).checkEncodable()
        #expect(
            throws: PeerWireError(
                .oversized, "frame length \(PeerFrame.maxFrameLength + 1) > \(PeerFrame.maxFrameLength)")
        ) {
            try PeerFrame.reply(id: 1, .data(IOBuffer(count: maxPayload + 1))).checkEncodable()
        }
        // A full 8 MiB write fits.
        try PeerFrame.request(id: 1, .write(PeerWrite(io: io, fua: false, data: IOBuffer(count: 8 << 20))))
            .checkEncodable()
        let extents = Array(repeating: BlockExtent(lba: 0, blockCount: 1, mapped: true), count: PeerFrame.maxExtents)
        try PeerFrame.reply(id: 1, .extents(extents)).checkEncodable()
        #expect(throws: PeerWireError.self) {
            try PeerFrame.reply(id: 1, .extents(extents + [extents[0]])).checkEncodable()
        }
        #expect(throws: PeerWireError.self) {
            try PeerFrame.request(id: 1, .write(PeerWrite(io: io, fua: false, data: payload, offset: 1025)))
                .checkEncodable()
        }
    }

    @Test("the largest frames round-trip")
    func largestFrames() throws {
        let maxPayload = PeerFrame.maxFrameLength - PeerFrame.headerLength - 1 - 4
        let data = IOBuffer(count: maxPayload)
        for index in stride(from: 0, to: maxPayload, by: 4093) { data.bytes[index] = UInt8(truncatingIfNeeded: index) }
        var buffer = encoded(.reply(id: 1, .data(data)))
        #expect(buffer.getInteger(at: 0, as: UInt32.self) == UInt32(PeerFrame.maxFrameLength))
        guard case .reply(_, .data(let decoded)) = try #require(try PeerFrameDecoder().decode(&buffer)?.frame) else {
            Issue.record("not data")
            return
        }
        #expect(decoded.count == maxPayload)
        #expect(decoded.array() == data.array())

        let extents = (0..<PeerFrame.maxExtents).map {
            BlockExtent(lba: UInt64($0), blockCount: 1, mapped: $0 % 2 == 0)
        }
        var extentBuffer = encoded(.reply(id: 2, .extents(extents)))
        guard case .reply(_, .extents(let back)) = try #require(try PeerFrameDecoder().decode(&extentBuffer)?.frame)
        else {
            Issue.record("not extents")
            return
        }
        #expect(back == extents)
    }

    @Test("a write sends only the bytes from its offset")
    func writeOffset() throws {
        let data = ioBuffer([1, 2, 3, 4, 5, 6, 7, 8])
        var buffer = encoded(.request(id: 1, .replicate(PeerWrite(io: io, fua: false, data: data, offset: 5))))
        guard case .request(_, .replicate(let write)) = try #require(try PeerFrameDecoder().decode(&buffer)?.frame)
        else {
            Issue.record("not a replicate")
            return
        }
        #expect(write.offset == 0)
        #expect(write.data.array() == [6, 7, 8])
    }

    @Test("long text is cut at a scalar boundary to 1024 bytes")
    func textCut() throws {
        let cases: [(String, Int)] = [
            (String(repeating: "é", count: 600), 1024),
            (String(repeating: "a", count: 1023) + "é", 1023),
            (String(repeating: "a", count: 1022) + "✓", 1022),
            (String(repeating: "a", count: 1024), 1024),
        ]
        for (text, length) in cases {
            var buffer = encoded(.reply(id: 1, .failure(PeerFailure(.ioError, detail: text))))
            guard case .reply(_, .failure(let failure)) = try #require(try PeerFrameDecoder().decode(&buffer)?.frame)
            else {
                Issue.record("not a failure")
                continue
            }
            #expect(failure.detail.utf8.count == length)
            #expect(text.hasPrefix(failure.detail))
        }
    }

    @Test("fuzz entry point: valid streams, mutations and noise never trap and stay consistent")
    func fuzzing() {
        let valid = frameTable.flatMap { encodedBytes($0.frame) }
        #expect(valid.withUnsafeBytes { PeerWireFuzzing.decodeAndReencode($0) })
        var random = SplitMix64(state: 0x5EED)
        var mutated = 0
        for testCase in frameTable {
            let bytes = encodedBytes(testCase.frame)
            for position in bytes.indices where position < 64 {
                var copy = bytes
                copy[position] ^= UInt8.random(in: 1...255, using: &random)
                #expect(
                    copy.withUnsafeBytes { PeerWireFuzzing.decodeAndReencode($0) },
                    "line \(testCase.line) byte \(position)")
                mutated += 1
            }
            for cut in 0..<bytes.count where cut < 64 {
                #expect(Array(bytes[..<cut]).withUnsafeBytes { PeerWireFuzzing.decodeAndReencode($0) })
            }
        }
        for _ in 0..<2000 {
            let count = Int.random(in: 0...64, using: &random)
            var noise = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            if count >= 5 {  // plausible header so the bodies get exercised
                noise[0...3] = [0, 0, 0, UInt8(count - 4)]
                noise[4] = UInt8.random(in: 1...5, using: &random)
            }
            #expect(noise.withUnsafeBytes { PeerWireFuzzing.decodeAndReencode($0) })
        }
        #expect(mutated > 500)
    }
}
