// ISCSIWireTests does not list NIOEmbedded in Package.swift (the wire helper
// may not edit it); these tests compile when the module is importable and
// run fully once `.product(name: "NIOEmbedded", package: "swift-nio")` is
// added to the ISCSIWireTests dependencies.
#if canImport(NIOEmbedded)
    import NIOCore
    import NIOEmbedded
    import Testing

    @testable import ISCSIWire

    /// Stands in for the connection handler: records what arrives and, on the
    /// final Login Request, answers and then switches digests on, as the real
    /// one does.
    final class RecordingHandler: ChannelInboundHandler {
        typealias InboundIn = ISCSIInbound
        typealias OutboundOut = ISCSIPDU

        let frameHandler: ISCSIFrameHandler
        var received: [ISCSIInbound] = []
        var errors: [any Error] = []

        init(frameHandler: ISCSIFrameHandler) { self.frameHandler = frameHandler }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let inbound = unwrapInboundIn(data)
            received.append(inbound)
            if case .pdu(.loginRequest(let request)) = inbound, request.transit, request.nextStage == .fullFeaturePhase
            {
                let response = LoginResponsePDU(
                    transit: true, currentStage: request.currentStage, nextStage: .fullFeaturePhase,
                    isid: request.isid, tsih: 1, initiatorTaskTag: request.initiatorTaskTag)
                context.writeAndFlush(wrapOutboundOut(.loginResponse(response)), promise: nil)
                frameHandler.enableDigests(header: true, data: true)
                frameHandler.maxRecvDataSegmentLength = 65536
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            errors.append(error)
        }
    }

    @Suite struct FrameHandlerTests {
        func makeChannel() throws -> (EmbeddedChannel, ISCSIFrameHandler, RecordingHandler) {
            let frame = ISCSIFrameHandler()
            let recorder = RecordingHandler(frameHandler: frame)
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(frame)
            try channel.pipeline.syncOperations.addHandler(recorder)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3260)).wait()
            #expect(channel.isActive)
            return (channel, frame, recorder)
        }

        func readAllOutbound(_ channel: EmbeddedChannel) throws -> ByteBuffer {
            var all = ByteBuffer()
            while var part = try channel.readOutbound(as: ByteBuffer.self) { all.writeBuffer(&part) }
            return all
        }

        @Test func enableDigestsMidStreamInOneRead() throws {
            let (channel, _, recorder) = try makeChannel()
            let login = ISCSIPDU.loginRequest(
                LoginRequestPDU(
                    transit: true, currentStage: .loginOperationalNegotiation, nextStage: .fullFeaturePhase,
                    isid: 0x8000_0000_0001, initiatorTaskTag: 1, cmdSN: 1))
            let write = ISCSIPDU.scsiCommand(
                SCSICommandPDU(
                    final: true, write: true, initiatorTaskTag: 2, expectedDataTransferLength: 20000, cmdSN: 1,
                    cdb: [0x2a] + [UInt8](repeating: 0, count: 15), dataSegment: pattern(20000)))
            let nop = ISCSIPDU.nopOut(NOPOutPDU(initiatorTaskTag: 3, cmdSN: 2, dataSegment: pattern(3)))

            // Login without digests, then full-feature PDUs with both digests,
            // all in one TCP read; the 20000-byte segment is above the 8192
            // login-time limit and fits the negotiated 65536.
            var bytes = ByteBuffer()
            ISCSIFrameEncoder().encode(login, into: &bytes)
            let withDigests = ISCSIFrameEncoder(headerDigest: true, dataDigest: true)
            withDigests.encode(write, into: &bytes)
            withDigests.encode(nop, into: &bytes)
            try channel.writeInbound(bytes)

            #expect(recorder.received == [.pdu(login), .pdu(write), .pdu(nop)])
            #expect(recorder.errors.isEmpty)

            // The Login Response went out without digests; later PDUs carry them.
            var out = try readAllOutbound(channel)
            #expect(out.readableBytes == 48)
            var decoder = ISCSIFrameDecoder()
            guard case .pdu(.loginResponse) = try decoder.decode(&out) else {
                Issue.record("no login response")
                return
            }
            let nopIn = ISCSIPDU.nopIn(NOPInPDU(initiatorTaskTag: 3, statSN: 1, dataSegment: pattern(3)))
            try channel.writeOutbound(nopIn)
            var digested = try readAllOutbound(channel)
            #expect(digested.readableBytes == 48 + 4 + 4 + 4)
            decoder.headerDigest = true
            decoder.dataDigest = true
            #expect(try decoder.decode(&digested) == .pdu(nopIn))
            _ = try channel.finish()
        }

        @Test func dripFedBytesThroughTheChannel() throws {
            let (channel, frame, recorder) = try makeChannel()
            frame.enableDigests(header: true, data: true)
            frame.maxRecvDataSegmentLength = 1 << 20
            var bytes = ByteBuffer()
            let encoder = ISCSIFrameEncoder(headerDigest: true, dataDigest: true)
            let requests = pduTable.map(\.pdu).filter { if case .loginRequest = $0 { false } else { true } }
            for pdu in requests { encoder.encode(pdu, into: &bytes) }
            var rng = SplitMix64(seed: 5)
            while bytes.readableBytes > 0 {
                let n = min(bytes.readableBytes, Int.random(in: 1...700, using: &rng))
                try channel.writeInbound(bytes.readSlice(length: n)!)
            }
            #expect(recorder.received == requests.map { .pdu($0) })
            _ = try channel.finish()
        }

        @Test func largeDataOutArrivingInSmallReads() throws {
            let (channel, frame, recorder) = try makeChannel()
            frame.maxRecvDataSegmentLength = 262_144
            frame.enableDigests(header: false, data: true)
            let pdus = [
                ISCSIPDU.dataOut(DataOutPDU(final: false, initiatorTaskTag: 1, dataSegment: pattern(262_144))),
                ISCSIPDU.dataOut(DataOutPDU(final: true, initiatorTaskTag: 1, dataSN: 1, dataSegment: pattern(1001))),
            ]
            var bytes = ByteBuffer()
            for pdu in pdus { ISCSIFrameEncoder(dataDigest: true).encode(pdu, into: &bytes) }
            while bytes.readableBytes > 0 {
                try channel.writeInbound(bytes.readSlice(length: min(bytes.readableBytes, 1448))!)
            }
            #expect(recorder.received == pdus.map { .pdu($0) })
            _ = try channel.finish()
        }

        @Test func unknownOpcodeIsPassedOnAsReject() throws {
            let (channel, _, recorder) = try makeChannel()
            var bytes = buffer([0x1d, 0x80] + [UInt8](repeating: 0, count: 46))
            let nop = ISCSIPDU.nopOut(NOPOutPDU(cmdSN: 1))
            ISCSIFrameEncoder().encode(nop, into: &bytes)
            try channel.writeInbound(bytes)
            #expect(recorder.received.count == 2)
            if case .reject(let reason, let bhs) = recorder.received.first {
                #expect(reason == RejectReason.commandNotSupported)
                #expect(bhs.readableBytes == 48)
            } else {
                Issue.record("expected a reject first")
            }
            #expect(recorder.received.last == .pdu(nop))
            #expect(channel.isActive)
            _ = try channel.finish()
        }

        @Test func headerDigestErrorClosesTheChannel() throws {
            let (channel, frame, recorder) = try makeChannel()
            frame.enableDigests(header: true, data: false)
            var bytes = ByteBuffer()
            let encoder = ISCSIFrameEncoder(headerDigest: true)
            encoder.encode(.nopOut(NOPOutPDU(cmdSN: 1)), into: &bytes)
            let firstLength = bytes.readableBytes
            encoder.encode(.nopOut(NOPOutPDU(cmdSN: 2)), into: &bytes)
            encoder.encode(.nopOut(NOPOutPDU(cmdSN: 3)), into: &bytes)
            bytes.setInteger(UInt8(0x42), at: firstLength + 20)
            _ = try? channel.writeInbound(bytes)
            #expect(recorder.received == [.pdu(.nopOut(NOPOutPDU(cmdSN: 1)))])
            #expect((recorder.errors.first as? ISCSIWireError)?.code == .headerDigestMismatch)
            #expect(!channel.isActive)
        }

        @Test func oversizeSegmentClosesTheChannel() throws {
            let (channel, _, recorder) = try makeChannel()
            var bytes = ByteBuffer()
            ISCSIFrameEncoder().encode(.dataOut(DataOutPDU(dataSegment: pattern(8193))), into: &bytes)
            _ = try? channel.writeInbound(bytes.readSlice(length: 48)!)
            #expect((recorder.errors.first as? ISCSIWireError)?.code == .dataSegmentTooLong)
            #expect(!channel.isActive)
        }

        @Test func largeDataInIsWrittenWithoutCopy() throws {
            let (channel, frame, _) = try makeChannel()
            frame.enableDigests(header: true, data: true)
            let payload = pattern(65536)
            let promise = channel.eventLoop.makePromise(of: Void.self)
            channel.writeAndFlush(
                ISCSIPDU.dataIn(DataInPDU(final: true, initiatorTaskTag: 1, dataSegment: payload)), promise: promise)
            let header = try channel.readOutbound(as: ByteBuffer.self)
            let data = try channel.readOutbound(as: ByteBuffer.self)
            let trailer = try channel.readOutbound(as: ByteBuffer.self)
            #expect(header?.readableBytes == 52)
            #expect(trailer?.readableBytes == 4)
            let same = data?.withUnsafeReadableBytes { a in
                payload.withUnsafeReadableBytes { b in a.baseAddress == b.baseAddress }
            }
            #expect(same == true)
            #expect(throws: Never.self) { try promise.futureResult.wait() }
            _ = try channel.finish()
        }
    }
#endif
