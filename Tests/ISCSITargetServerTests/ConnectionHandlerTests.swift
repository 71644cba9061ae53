import ISCSISession
import ISCSIWire
import Logging
import NIOCore
import NIOEmbedded
import SCSITarget
import Testing

@testable import ISCSITargetServer

/// The connection handler on a test channel: login, commands through a fake
/// SCSI device, NOP, logout — no sockets.
@Suite("ISCSIConnectionHandler on NIOAsyncTestingChannel", .timeLimit(.minutes(1)))
struct ConnectionHandlerTests {
    static let target = "iqn.2026-01.test:disk"

    func makeChannel(
        device: FakeSCSIDevice, registry: SessionRegistry = SessionRegistry(), logger: Logger = Logger(label: "test"),
        nopInInterval: Duration? = nil, nopInTimeout: Duration = .seconds(30),
        limits: ISCSIServerLimits = ISCSIServerLimits(), peer: String = "127.0.0.1",
        executor: (any SCSITaskExecutor)? = nil
    ) async throws -> NIOAsyncTestingChannel {
        let login = LoginConfiguration(targets: [TargetDescription(name: Self.target)])
        let served: any SCSITaskExecutor = executor ?? device
        let name = Self.target.lowercased()
        let environment = ConnectionEnvironment(
            login: { login }, target: { $0 == name ? served : nil }, portalGroupTag: 1, queueDepth: 32,
            nopInInterval: nopInInterval, nopInTimeout: nopInTimeout, registry: registry, logger: logger,
            limits: limits)
        let channel = NIOAsyncTestingChannel()
        try await channel.testingEventLoop.executeInContext {
            // Built on the loop: the handler is loop-bound, not Sendable.
            let handler = ISCSIConnectionHandler(environment: environment, frameHandler: ISCSIFrameHandler())
            try channel.pipeline.syncOperations.addHandler(handler)
        }
        try await channel.connect(to: SocketAddress(ipAddress: peer, port: 3260))
        return channel
    }

    func login(
        _ channel: NIOAsyncTestingChannel, initiator: String = "iqn.2026-01.test:host", target: String = Self.target
    ) async throws -> LoginResponsePDU {
        let keys = TinyInitiator.text([
            ("InitiatorName", initiator), ("SessionType", "Normal"), ("TargetName", target),
            ("HeaderDigest", "None"), ("DataDigest", "None"), ("MaxRecvDataSegmentLength", "8192"),
        ])
        let request = LoginRequestPDU(
            transit: true, currentStage: .loginOperationalNegotiation, nextStage: .fullFeaturePhase, isid: 0x23D0_0000_0001,
            tsih: 0, initiatorTaskTag: 0, cid: 0, cmdSN: 1, expStatSN: 0, dataSegment: keys)
        try await channel.writeInbound(ISCSIInbound.pdu(.loginRequest(request)))
        guard case .loginResponse(let response) = try await channel.waitForOutboundWrite(as: ISCSIPDU.self) else {
            throw TestFailure("expected a Login Response")
        }
        return response
    }

    func command(_ cdb: [UInt8], itt: UInt32, cmdSN: UInt32, read: Bool = true, length: UInt32) -> ISCSIInbound {
        .pdu(
            .scsiCommand(
                SCSICommandPDU(
                    immediate: false, final: true, read: read, write: false, attribute: 1, lun: 0, initiatorTaskTag: itt,
                    expectedDataTransferLength: length, cmdSN: cmdSN, expStatSN: 1,
                    cdb: cdb + [UInt8](repeating: 0, count: 16 - cdb.count), bidirectionalReadExpectedDataTransferLength: nil,
                    dataSegment: ByteBuffer())))
    }

    @Test func loginThenCommandsThenLogout() async throws {
        let device = FakeSCSIDevice()
        let registry = SessionRegistry()
        let channel = try await makeChannel(device: device, registry: registry)
        let response = try await login(channel)
        #expect(response.statusClass == 0)
        #expect(response.transit)
        #expect(registry.count == 1)

        // Two commands in one read burst; each answered once, in whatever order they finish.
        try await channel.writeInbound(command([0x12, 0, 0, 0, 36, 0], itt: 10, cmdSN: response.expCmdSN, length: 36))
        try await channel.writeInbound(command([0x25], itt: 11, cmdSN: response.expCmdSN &+ 1, length: 8))
        var answered: Set<UInt32> = []
        for _ in 0..<2 {
            guard case .dataIn(let dataIn) = try await channel.waitForOutboundWrite(as: ISCSIPDU.self) else {
                throw TestFailure("expected Data-In")
            }
            #expect(dataIn.statusPresent)
            answered.insert(dataIn.initiatorTaskTag)
        }
        #expect(answered == [10, 11])
        #expect(device.commands.count == 2)
        #expect(device.commands.allSatisfy { $0.nexus.initiatorName == "iqn.2026-01.test:host" })

        // NOP-Out ping → NOP-In echo.
        try await channel.writeInbound(
            ISCSIInbound.pdu(
                .nopOut(
                    NOPOutPDU(
                        immediate: true, lun: 0, initiatorTaskTag: 12, targetTransferTag: 0xFFFF_FFFF,
                        cmdSN: response.expCmdSN &+ 2, expStatSN: 1, dataSegment: ByteBuffer(bytes: [1, 2, 3])))))
        guard case .nopIn(let nopIn) = try await channel.waitForOutboundWrite(as: ISCSIPDU.self) else {
            throw TestFailure("expected NOP-In")
        }
        #expect(nopIn.initiatorTaskTag == 12)
        #expect(nopIn.dataSegment == ByteBuffer(bytes: [1, 2, 3]))

        // An undecodable PDU the decoder flagged is answered with Reject.
        var header = ByteBuffer(repeating: 0, count: 48)
        header.setInteger(UInt8(0x1C), at: 0)
        try await channel.writeInbound(ISCSIInbound.reject(reason: RejectReason.commandNotSupported, basicHeaderSegment: header))
        guard case .reject(let reject) = try await channel.waitForOutboundWrite(as: ISCSIPDU.self) else {
            throw TestFailure("expected Reject")
        }
        #expect(reject.reason == RejectReason.commandNotSupported)
        #expect(reject.dataSegment == header)

        // Logout: response, then the connection closes and the nexus is lost.
        try await channel.writeInbound(
            ISCSIInbound.pdu(
                .logoutRequest(
                    LogoutRequestPDU(
                        immediate: true, reasonCode: 0x80, initiatorTaskTag: 13, cid: 0, cmdSN: response.expCmdSN &+ 2,
                        expStatSN: 1))))
        guard case .logoutResponse(let logout) = try await channel.waitForOutboundWrite(as: ISCSIPDU.self) else {
            throw TestFailure("expected Logout Response")
        }
        #expect(logout.response == 0)
        try await channel.closeFuture.get()
        #expect(registry.count == 0)
    }

    @Test func nonLoginPDUBeforeLoginCloses() async throws {
        let channel = try await makeChannel(device: FakeSCSIDevice())
        try await channel.writeInbound(command([0x00], itt: 1, cmdSN: 1, length: 0))
        try await channel.closeFuture.get()
    }
}
