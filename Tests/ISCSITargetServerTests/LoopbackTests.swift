import BlockStorage
import ISCSISession
import ISCSIWire
import NIOCore
import NIOPosix
import SCSITarget
import Testing

@testable import ISCSITargetServer

/// A hand-rolled initiator for loopback tests: login, commands, R2T answers, logout.
struct TinyInitiator {
    var iterator: NIOAsyncChannelInboundStream<ISCSIInbound>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ISCSIPDU>
    var cmdSN: UInt32 = 1
    var expStatSN: UInt32 = 0
    var nextTag: UInt32 = 1
    static let targetMaxRecv = 8192

    init(_ inbound: NIOAsyncChannelInboundStream<ISCSIInbound>, _ outbound: NIOAsyncChannelOutboundWriter<ISCSIPDU>) {
        self.iterator = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    mutating func next() async throws -> ISCSIPDU {
        guard let inbound = try await iterator.next() else { throw TestFailure("connection closed") }
        guard case .pdu(let pdu) = inbound else { throw TestFailure("undecodable PDU \(inbound)") }
        return pdu
    }

    static func text(_ pairs: [(String, String)]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for (key, value) in pairs {
            buffer.writeString("\(key)=\(value)")
            buffer.writeInteger(UInt8(0))
        }
        return buffer
    }

    /// Logs in straight to operational negotiation; returns the final response.
    mutating func login(initiator: String, target: String?, isid: UInt64 = 0x23D0_0000_0001) async throws -> LoginResponsePDU {
        var keys: [(String, String)] = [("InitiatorName", initiator)]
        if let target {
            keys += [("SessionType", "Normal"), ("TargetName", target)]
        } else {
            keys += [("SessionType", "Discovery")]
        }
        keys += [
            ("HeaderDigest", "None"), ("DataDigest", "None"), ("MaxRecvDataSegmentLength", "\(Self.targetMaxRecv)"),
            ("InitialR2T", "No"), ("ImmediateData", "Yes"), ("FirstBurstLength", "65536"), ("MaxBurstLength", "262144"),
            ("ErrorRecoveryLevel", "0"),
        ]
        for _ in 0..<4 {
            let request = LoginRequestPDU(
                transit: true, currentStage: .loginOperationalNegotiation, nextStage: .fullFeaturePhase, isid: isid,
                tsih: 0, initiatorTaskTag: 0, cid: 0, cmdSN: cmdSN, expStatSN: expStatSN, dataSegment: Self.text(keys))
            try await outbound.write(.loginRequest(request))
            guard case .loginResponse(let response) = try await next() else { throw TestFailure("expected a login response") }
            expStatSN = response.statSN &+ 1
            guard response.statusClass == 0 else { return response }
            if response.transit, response.nextStage == .fullFeaturePhase { return response }
            keys = []
        }
        throw TestFailure("login did not finish")
    }

    /// Sends one SCSI command (with write data, answering R2Ts) and collects its Data-In and response.
    mutating func command(
        cdb: [UInt8], read: Bool = false, writeData: [UInt8] = [], expectedLength: UInt32, immediate: Bool = false
    ) async throws -> (status: UInt8, data: [UInt8], response: SCSIResponsePDU?, lastDataIn: DataInPDU?) {
        let tag = nextTag
        nextTag &+= 1
        let immediateCount = min(writeData.count, Self.targetMaxRecv)
        let command = SCSICommandPDU(
            immediate: immediate, final: true, read: read, write: !writeData.isEmpty, attribute: 1, lun: 0,
            initiatorTaskTag: tag, expectedDataTransferLength: expectedLength, cmdSN: cmdSN, expStatSN: expStatSN,
            cdb: cdb + [UInt8](repeating: 0, count: 16 - cdb.count), bidirectionalReadExpectedDataTransferLength: nil,
            dataSegment: ByteBuffer(bytes: writeData.prefix(immediateCount)))
        if !immediate { cmdSN &+= 1 }
        try await outbound.write(.scsiCommand(command))
        var data: [UInt8] = []
        while true {
            switch try await next() {
            case .dataIn(let pdu):
                #expect(Int(pdu.bufferOffset) == data.count)
                data += pdu.dataSegment.readableBytesView
                if pdu.statusPresent {
                    expStatSN = pdu.statSN &+ 1
                    return (pdu.status, data, nil, pdu)
                }
            case .r2t(let r2t):
                var offset = Int(r2t.bufferOffset)
                let end = offset + Int(r2t.desiredDataTransferLength)
                var dataSN: UInt32 = 0
                while offset < end {
                    let chunk = min(Self.targetMaxRecv, end - offset)
                    let pdu = DataOutPDU(
                        final: offset + chunk == end, lun: 0, initiatorTaskTag: tag, targetTransferTag: r2t.targetTransferTag,
                        expStatSN: expStatSN, dataSN: dataSN, bufferOffset: UInt32(offset),
                        dataSegment: ByteBuffer(bytes: writeData[offset..<offset + chunk]))
                    try await outbound.write(.dataOut(pdu))
                    dataSN += 1
                    offset += chunk
                }
            case .scsiResponse(let response):
                expStatSN = response.statSN &+ 1
                return (response.status, data, response, nil)
            case let other:
                throw TestFailure("unexpected \(other.opcode)")
            }
        }
    }

    mutating func logout() async throws -> LogoutResponsePDU {
        let request = LogoutRequestPDU(
            immediate: true, reasonCode: 0x80, initiatorTaskTag: nextTag, cid: 0, cmdSN: cmdSN, expStatSN: expStatSN)
        try await outbound.write(.logoutRequest(request))
        guard case .logoutResponse(let response) = try await next() else { throw TestFailure("expected a logout response") }
        return response
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Starts a server on 127.0.0.1:0 with `device` behind `targetName`, runs `body`, shuts down.
func withServer(
    device: FakeSCSIDevice, targetName: String = "iqn.2026-01.test:disk", allowedInitiators: [String] = [],
    _ body: (ISCSIServer, Int) async throws -> Void
) async throws {
    let login = LoginConfiguration(targets: [TargetDescription(name: targetName, allowedInitiators: allowedInitiators)])
    let server = ISCSIServer(
        configuration: ISCSIServerConfiguration(
            portals: [.init(host: "127.0.0.1", port: 0, portalGroupTag: 1)], login: login, targets: [targetName: device]))
    try await server.start()
    do {
        try await body(server, try #require(server.boundPorts.first))
    } catch {
        await server.shutdown()
        throw error
    }
    await server.shutdown()
}

func connect(port: Int, _ body: (inout TinyInitiator) async throws -> Void) async throws {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ISCSIFrameHandler(maxRecvDataSegmentLength: 1 << 20))
                return try NIOAsyncChannel<ISCSIInbound, ISCSIPDU>(wrappingChannelSynchronously: channel)
            }
        }
    try await channel.executeThenClose { inbound, outbound in
        var initiator = TinyInitiator(inbound, outbound)
        try await body(&initiator)
    }
}

@Suite("Loopback: ISCSIServer with a hand-rolled initiator", .timeLimit(.minutes(1)))
struct LoopbackTests {
    @Test func loginInquiryWriteReadLogout() async throws {
        let device = FakeSCSIDevice()
        try await withServer(device: device) { server, port in
            try await connect(port: port) { initiator in
                let login = try await initiator.login(initiator: "iqn.2026-01.test:host", target: "iqn.2026-01.test:disk")
                #expect(login.statusClass == 0)
                #expect(login.tsih != 0)

                let inquiry = try await initiator.command(cdb: [0x12, 0, 0, 0, 255, 0], read: true, expectedLength: 255)
                #expect(inquiry.status == 0)
                #expect(inquiry.data.count == 36)
                #expect(inquiry.lastDataIn?.residualUnderflow == true)
                #expect(inquiry.lastDataIn?.residualCount == UInt32(219))

                // 64 KiB write: immediate data, unsolicited burst and R2Ts on the way.
                let pattern = (0..<65536).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
                let write = try await initiator.command(
                    cdb: [0x2A, 0, 0, 0, 0, 16, 0, 0, 128, 0], writeData: pattern, expectedLength: 65536)
                #expect(write.status == 0)

                let read = try await initiator.command(cdb: [0x28, 0, 0, 0, 0, 16, 0, 0, 128, 0], read: true, expectedLength: 65536)
                #expect(read.status == 0)
                #expect(read.data == pattern)

                let bad = try await initiator.command(cdb: [0xFF], expectedLength: 0)
                #expect(bad.status == 2)
                #expect(bad.response?.senseData.count == 18)

                let logout = try await initiator.logout()
                #expect(logout.response == 0)
            }
            #expect(device.established.count == 1)
            #expect(device.established.first?.initiatorName == "iqn.2026-01.test:host")
        }
    }

    @Test func sessionReinstatementClosesTheOldConnection() async throws {
        let device = FakeSCSIDevice()
        try await withServer(device: device) { server, port in
            try await connect(port: port) { first in
                _ = try await first.login(initiator: "iqn.2026-01.test:host", target: "iqn.2026-01.test:disk")
                try await connect(port: port) { second in
                    let response = try await second.login(initiator: "iqn.2026-01.test:host", target: "iqn.2026-01.test:disk")
                    #expect(response.statusClass == 0)
                    // The first connection is closed by the reinstatement.
                    var closed = false
                    do { _ = try await first.next() } catch { closed = true }
                    #expect(closed)
                    let tur = try await second.command(cdb: [0x00], expectedLength: 0)
                    #expect(tur.status == 0)
                }
            }
            #expect(device.lost.count >= 1)
        }
    }

    /// The old and the new session are the same I_T nexus: the old one's
    /// cleanup (which aborts that nexus's tasks and releases its reservation)
    /// must be over before the new session runs anything.
    @Test func reinstatementWaitsForTheOldNexusCleanup() async throws {
        let device = FakeSCSIDevice(nexusLossTime: .milliseconds(300))
        try await withServer(device: device) { _, port in
            try await connect(port: port) { first in
                _ = try await first.login(initiator: "iqn.2026-01.test:host", target: "iqn.2026-01.test:disk")
                try await connect(port: port) { second in
                    let login = try await second.login(initiator: "iqn.2026-01.test:host", target: "iqn.2026-01.test:disk")
                    #expect(login.statusClass == 0)
                    let tur = try await second.command(cdb: [0x00], expectedLength: 0)
                    #expect(tur.status == 0)
                }
            }
        }
        let events = device.events
        let cleaned = try #require(events.firstIndex(of: "lost done"))
        let command = try #require(events.firstIndex(of: "command 0"))
        #expect(events.filter { $0 == "established" }.count == 2)
        #expect(events.lastIndex(of: "established")! > cleaned && command > cleaned, "\(events)")
    }

    @Test func initiatorOutsideTheACLCannotLogIn() async throws {
        let device = FakeSCSIDevice()
        try await withServer(device: device, allowedInitiators: ["iqn.2026-01.test:other"]) { _, port in
            try await connect(port: port) { initiator in
                let response = try await initiator.login(initiator: "iqn.2026-01.test:host", target: "iqn.2026-01.test:disk")
                #expect(response.statusClass == 2)
            }
            #expect(device.established.isEmpty)
        }
    }

    @Test func discoverySessionListsThePortal() async throws {
        let device = FakeSCSIDevice()
        try await withServer(device: device) { _, port in
            try await connect(port: port) { initiator in
                let login = try await initiator.login(initiator: "iqn.2026-01.test:host", target: nil)
                #expect(login.statusClass == 0)
                let request = TextRequestPDU(
                    immediate: true, final: true, initiatorTaskTag: 9, targetTransferTag: 0xFFFF_FFFF, cmdSN: initiator.cmdSN,
                    expStatSN: initiator.expStatSN, dataSegment: TinyInitiator.text([("SendTargets", "All")]))
                try await initiator.outbound.write(.textRequest(request))
                guard case .textResponse(let response) = try await initiator.next() else {
                    Issue.record("expected a Text Response")
                    return
                }
                let text = String(decoding: response.dataSegment.readableBytesView, as: UTF8.self)
                #expect(text.contains("TargetName=iqn.2026-01.test:disk"))
                #expect(text.contains("TargetAddress=127.0.0.1:\(port),1"))
            }
        }
    }
}
