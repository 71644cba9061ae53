import BlockStorage
import Foundation
import ISCSISession
import ISCSIWire
import Logging
import NIOCore
import NIOEmbedded
import SCSITarget
import Testing

@testable import ISCSITargetServer

/// What a host can make a connection hold, on test channels with virtual
/// time: the login timeout, the connection bounds at accept, TSIHs, and
/// output backpressure.
@Suite("Connection bounds on NIOAsyncTestingChannel", .timeLimit(.minutes(1)))
struct BoundsHandlerTests {
    let harness = ConnectionHandlerTests()

    private func isOpen(_ channel: NIOAsyncTestingChannel) async throws -> Bool {
        try await channel.testingEventLoop.executeInContext { channel.isActive }
    }

    // MARK: - Login timeout

    /// A host that connects and sends nothing is closed after login_timeout, with the reason logged.
    @Test func silentConnectionIsClosedAtTheLoginTimeout() async throws {
        let recorder = LogRecorder()
        let registry = SessionRegistry()
        let channel = try await harness.makeChannel(
            device: FakeSCSIDevice(), registry: registry, logger: recorder.logger,
            limits: ISCSIServerLimits(loginTimeout: .seconds(2)))
        #expect(registry.connectionCount() == 1)
        await channel.testingEventLoop.advanceTime(by: .milliseconds(1999))
        #expect(try await isOpen(channel))
        await channel.testingEventLoop.advanceTime(by: .milliseconds(1))
        try await channel.closeFuture.get()
        let line = try #require(recorder.entries.first { $0.level == .notice })
        #expect(line.message == "connection closed by the target: login not completed within login_timeout")
        #expect(line.metadata["login-timeout"] == "2.0 seconds")
        #expect(line.metadata["peer"] == "127.0.0.1:3260")
        #expect(registry.connectionCount() == 0)
        #expect(registry.tsihsInUse == 0)
    }

    /// A login stalled mid-negotiation (security stage, never the final PDU) is closed too.
    @Test func loginStalledInNegotiationIsClosed() async throws {
        let channel = try await harness.makeChannel(
            device: FakeSCSIDevice(), limits: ISCSIServerLimits(loginTimeout: .seconds(2)))
        let keys = TinyInitiator.text([
            ("InitiatorName", "iqn.2026-01.test:host"), ("SessionType", "Normal"),
            ("TargetName", ConnectionHandlerTests.target), ("AuthMethod", "None"),
        ])
        let request = LoginRequestPDU(
            transit: false, currentStage: .securityNegotiation, nextStage: .securityNegotiation, isid: 0x23D0_0000_0001,
            tsih: 0, initiatorTaskTag: 0, cid: 0, cmdSN: 1, expStatSN: 0, dataSegment: keys)
        try await channel.writeInbound(ISCSIInbound.pdu(.loginRequest(request)))
        guard case .loginResponse = try await channel.waitForOutboundWrite(as: ISCSIPDU.self) else {
            throw TestFailure("expected a Login Response")
        }
        await channel.testingEventLoop.advanceTime(by: .seconds(2))
        try await channel.closeFuture.get()
    }

    /// A session that reached full feature phase is not touched by the timer.
    @Test func completedLoginOutlivesTheTimeout() async throws {
        let registry = SessionRegistry()
        let channel = try await harness.makeChannel(
            device: FakeSCSIDevice(), registry: registry, limits: ISCSIServerLimits(loginTimeout: .seconds(2)))
        let response = try await harness.login(channel)
        #expect(response.statusClass == 0)
        await channel.testingEventLoop.advanceTime(by: .seconds(60))
        #expect(try await isOpen(channel))
        #expect(registry.count == 1)
        try await channel.close()
    }

    // MARK: - Connection bounds and TSIHs

    /// Over max_connections_per_initiator_address: closed at accept, no slot, no TSIH; another address still gets in.
    @Test func connectionOverThePerAddressBoundIsClosedAtAccept() async throws {
        let recorder = LogRecorder()
        let registry = SessionRegistry()
        let limits = ISCSIServerLimits(maxConnections: 3, maxConnectionsPerInitiatorAddress: 2)
        let device = FakeSCSIDevice()
        let first = try await harness.makeChannel(device: device, registry: registry, limits: limits, peer: "10.0.0.1")
        let second = try await harness.makeChannel(device: device, registry: registry, limits: limits, peer: "10.0.0.1")
        let refused = try await harness.makeChannel(
            device: device, registry: registry, logger: recorder.logger, limits: limits, peer: "10.0.0.1")
        try await refused.closeFuture.get()
        #expect(registry.connectionCount(from: "10.0.0.1") == 2)
        #expect(registry.tsihsInUse == 0, "no connection has logged in")
        let line = try #require(recorder.entries.first { $0.level == .notice })
        #expect(line.message.contains("refused at accept"))
        #expect(line.message.contains("max_connections_per_initiator_address (2)"))

        // Another address is under its own bound, but the node bound (3) is reached after it.
        let other = try await harness.makeChannel(device: device, registry: registry, limits: limits, peer: "10.0.0.2")
        #expect(try await isOpen(other))
        let nodeFull = try await harness.makeChannel(
            device: device, registry: registry, limits: limits, peer: "10.0.0.3")
        try await nodeFull.closeFuture.get()
        #expect(registry.connectionCount() == 3)

        // Once one closes, the address is under its bound again: a login works.
        try await first.close()
        #expect(registry.connectionCount(from: "10.0.0.1") == 1)
        let again = try await harness.makeChannel(device: device, registry: registry, limits: limits, peer: "10.0.0.1")
        #expect(try await harness.login(again).statusClass == 0)
        #expect(registry.tsihsInUse == 1)
        try await again.close()
        try await second.close()
        try await other.close()
        #expect(registry.connectionCount() == 0)
        #expect(registry.tsihsInUse == 0, "the TSIH is given back when the session ends")
    }

    @Test func tsihIsTakenOnlyWhenTheLeadingLoginSucceeds() async throws {
        let registry = SessionRegistry()
        let channel = try await harness.makeChannel(device: FakeSCSIDevice(), registry: registry)
        #expect(registry.tsihsInUse == 0)
        let refused = try await harness.login(channel, target: "iqn.2026-01.test:nosuch")
        #expect(refused.statusClass != 0)
        try await channel.closeFuture.get()
        #expect(registry.tsihsInUse == 0)
        let good = try await harness.makeChannel(device: FakeSCSIDevice(), registry: registry)
        let response = try await harness.login(good)
        #expect(response.tsih != 0)
        #expect(response.tsih != ISCSIConnectionHandler.placeholderTSIH)
        #expect(registry.tsihsInUse == 1)
        try await good.close()
    }

    /// All 65535 TSIHs in use: a released one is handed out again, and none is ever 0 (RFC 7143 §11.12.6).
    @Test func tsihsAreReusedAfterSessionsEnd() {
        let registry = SessionRegistry()
        var taken: [UInt16] = []
        while let tsih = registry.reserveTSIH() { taken.append(tsih) }
        #expect(taken.count == 65535)
        #expect(!taken.contains(0))
        registry.releaseTSIH(4242)
        #expect(registry.reserveTSIH() == 4242)
        #expect(registry.reserveTSIH() == nil)
    }

    @Test func refusalLogIsRateLimited() {
        var log = RateLimitedLog(interval: .seconds(1))
        let start = ContinuousClock.now
        #expect(log.attempt(now: start) == (true, 0))
        #expect(log.attempt(now: start + .milliseconds(10)) == (false, 1))
        #expect(log.attempt(now: start + .milliseconds(20)) == (false, 2))
        #expect(log.attempt(now: start + .seconds(1)) == (true, 2))
        #expect(log.attempt(now: start + .milliseconds(1500)) == (false, 1))
    }

    // MARK: - Output backpressure

    /// While the channel is not writable, commands wait; they run in order once it is writable again.
    @Test func commandsWaitWhileTheChannelIsNotWritable() async throws {
        let device = FakeSCSIDevice()
        let channel = try await harness.makeChannel(device: device)
        let response = try await harness.login(channel)
        try await channel.testingEventLoop.executeInContext {
            channel.isWritable = false
            channel.pipeline.fireChannelWritabilityChanged()
        }
        try await channel.writeInbound(
            harness.command([0x12, 0, 0, 0, 36, 0], itt: 10, cmdSN: response.expCmdSN, length: 36))
        try await channel.writeInbound(harness.command([0x25], itt: 11, cmdSN: response.expCmdSN &+ 1, length: 8))
        await channel.testingEventLoop.run()
        #expect(device.commands.isEmpty)
        try await channel.testingEventLoop.executeInContext {
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
        }
        var answered: [UInt32] = []
        for _ in 0..<2 {
            guard case .dataIn(let dataIn) = try await channel.waitForOutboundWrite(as: ISCSIPDU.self) else {
                throw TestFailure("expected Data-In")
            }
            answered.append(dataIn.initiatorTaskTag)
        }
        #expect(Set(answered) == [10, 11])
        #expect(device.commands.map(\.taskTag) == [10, 11])
        try await channel.close()
    }
}

extension BoundsHandlerTests {
    private func tmf(_ function: TaskManagementFunctionCode, itt: UInt32, ref: UInt32, cmdSN: UInt32) -> ISCSIInbound {
        .pdu(
            .taskManagementRequest(
                TaskManagementRequestPDU(
                    immediate: true, function: 0x80 | function.rawValue, lun: 0, initiatorTaskTag: itt,
                    referencedTaskTag: ref, cmdSN: cmdSN, expStatSN: 0)))
    }

    /// A command held back by backpressure never reached the SCSI layer: task management
    /// ends it here (no response, SAM-5 §7 with TAS=0); ABORT TASK of it is "function complete".
    @Test(arguments: [TaskManagementFunctionCode.abortTask, .logicalUnitReset])
    func taskManagementAbortsHeldBackCommands(function: TaskManagementFunctionCode) async throws {
        let device = FakeSCSIDevice()
        let channel = try await harness.makeChannel(device: device)
        let response = try await harness.login(channel)
        try await channel.testingEventLoop.executeInContext {
            channel.isWritable = false
            channel.pipeline.fireChannelWritabilityChanged()
        }
        try await channel.writeInbound(harness.command([0x25], itt: 10, cmdSN: response.expCmdSN, length: 8))
        try await channel.writeInbound(tmf(function, itt: 11, ref: 10, cmdSN: response.expCmdSN &+ 1))
        guard case .taskManagementResponse(let answer) = try await channel.waitForOutboundWrite(as: ISCSIPDU.self)
        else {
            throw TestFailure("expected a Task Management Response")
        }
        #expect(answer.initiatorTaskTag == 11)
        #expect(answer.response == TaskManagementResponseCode.functionComplete.rawValue)
        try await channel.testingEventLoop.executeInContext {
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
        }
        await channel.testingEventLoop.run()
        #expect(device.commands.isEmpty, "the aborted command never runs")
        #expect(try await channel.readOutbound(as: ISCSIPDU.self) == nil, "and gets no response")
        try await channel.close()
    }
}

/// A SCSI device whose commands end only when the test says so: shows which
/// commands the connection has started.
final class GatedSCSIDevice: SCSITaskExecutor, @unchecked Sendable {
    private let lock = NSLock()
    private var _started: [UInt32] = []
    private var waiting: [UInt32: CheckedContinuation<Void, Never>] = [:]

    /// Task tags of the commands started, in order.
    var started: [UInt32] { lock.withLock { _started } }

    func execute(_ command: SCSICommand) async -> SCSIResponse {
        await withCheckedContinuation { continuation in
            lock.withLock {
                _started.append(command.taskTag)
                waiting[command.taskTag] = continuation
            }
        }
        let length = Int(command.expectedDataTransferLength)
        return SCSIResponse(
            status: .good, dataIn: length > 0 ? IOBuffer(bytes: [UInt8](repeating: 0, count: length)) : nil)
    }

    /// Ends the command with `tag`.
    func finish(_ tag: UInt32) {
        let continuation = lock.withLock { waiting.removeValue(forKey: tag) }
        continuation?.resume()
    }

    func taskManagement(_ function: TaskManagementFunction, lun: UInt64, nexus: ITNexus) async -> TaskManagementResult {
        .functionComplete
    }
    func nexusEstablished(_ nexus: ITNexus) async {}
    func nexusLost(_ nexus: ITNexus) async {}
}

@Suite("Reads in flight bounded per connection", .timeLimit(.minutes(1)))
struct ReadBytesInFlightTests {
    let harness = ConnectionHandlerTests()

    /// Runs the test loop (the command tasks and their completions hop onto it) until `condition` holds.
    private func waitUntil(_ channel: NIOAsyncTestingChannel, _ condition: () -> Bool) async throws {
        for _ in 0..<500 where !condition() {
            await channel.testingEventLoop.run()
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// With 1000 bytes allowed: A (600) runs, B (600) waits, and C (no Data-In) waits behind B
    /// (commands start in order); when A ends, B and C start. A read alone above the bound runs.
    @Test func readsOverTheBoundWaitInOrder() async throws {
        let device = GatedSCSIDevice()
        let channel = try await harness.makeChannel(
            device: FakeSCSIDevice(), limits: ISCSIServerLimits(maxReadBytesInFlight: 1000), executor: device)
        let response = try await harness.login(channel)
        let sn = response.expCmdSN
        try await channel.writeInbound(harness.command([0x28], itt: 1, cmdSN: sn, length: 600))
        try await channel.writeInbound(harness.command([0x28], itt: 2, cmdSN: sn &+ 1, length: 600))
        try await channel.writeInbound(harness.command([0x00], itt: 3, cmdSN: sn &+ 2, read: false, length: 0))
        try await waitUntil(channel) { device.started == [1] }
        for _ in 0..<10 {
            await channel.testingEventLoop.run()
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(device.started == [1])
        device.finish(1)
        try await waitUntil(channel) { device.started == [1, 2, 3] }
        #expect(device.started == [1, 2, 3])
        device.finish(2)
        device.finish(3)
        try await channel.writeInbound(harness.command([0x28], itt: 4, cmdSN: sn &+ 3, length: 5000))
        try await waitUntil(channel) { device.started.count == 4 }
        #expect(device.started == [1, 2, 3, 4], "a read alone runs whatever its length")
        device.finish(4)
        try await channel.close()
    }
}

/// Counts the `read()` calls that reach the front of the pipeline.
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

@Suite("ReadGate: no reading while the channel is not writable")
struct ReadGateTests {
    @Test func readsWaitForWritability() throws {
        let counter = ReadCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers(counter, ReadGate())
        channel.read()
        #expect(counter.reads == 1)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.read()
        channel.read()
        #expect(counter.reads == 1, "held back while not writable")
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(counter.reads == 2, "one read once writable again")
        channel.pipeline.fireChannelWritabilityChanged()
        #expect(counter.reads == 2, "nothing pending: no extra read")
        _ = try channel.finish()
    }
}
