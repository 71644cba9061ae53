import ISCSISession
import ISCSIWire
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import ISCSITargetServer

/// Keeps every log line a logger writes, for checking what an administrator sees.
final class LogRecorder: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let recorded = Mutex<[Entry]>([])

    var entries: [Entry] { recorded.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(recorder: self) }
    }

    fileprivate func append(_ entry: Entry) { recorded.withLock { $0.append(entry) } }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var merged = metadata
            if let extra = event.metadata { merged.merge(extra) { $1 } }
            recorder.append(
                Entry(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
        }
    }
}

@Suite("Escaping peer text for the log")
struct LogTextTests {
    @Test(arguments: [
        (#line, "iqn.2026-01.test:host", "iqn.2026-01.test:host"),
        (#line, "a\nnotice forged line", "a\\x0anotice forged line"),
        (#line, "\u{1B}[31mred", "\\x1b[31mred"),
        (#line, "back\\slash", "back\\x5cslash"),
        (#line, "caf\u{E9}", "caf\\xc3\\xa9"),
        (#line, "nul\u{0}del\u{7F}", "nul\\x00del\\x7f"),
    ])
    func escapes(line: Int, text: String, expected: String) {
        #expect(LogText.escaped(text) == expected, "line \(line)")
    }

    @Test func boundsTheLength() {
        #expect(LogText.escaped(String(repeating: "a", count: 300)) == String(repeating: "a", count: 256) + "...(+44 bytes)")
        #expect(LogText.escaped("\n\n\n", limit: 2) == "\\x0a\\x0a...(+1 bytes)")
    }
}

/// Every connection the target ends on its own leaves a notice line with the
/// initiator, the portal, the peer and the reason.
@Suite("Connection endings in the log", .timeLimit(.minutes(1)))
struct ConnectionEndingLogTests {
    let harness = ConnectionHandlerTests()

    private func notices(_ recorder: LogRecorder) -> [LogRecorder.Entry] {
        recorder.entries.filter { $0.level == .notice }
    }

    /// libiscsi's synchronous client sleeping in Sanitize.Reset: the NOP-In goes unanswered.
    @Test func unansweredNOPInIsLoggedWithItsFigures() async throws {
        let recorder = LogRecorder()
        let channel = try await harness.makeChannel(
            device: FakeSCSIDevice(), logger: recorder.logger, nopInInterval: .milliseconds(1),
            nopInTimeout: .milliseconds(1))
        #expect(try await harness.login(channel).statusClass == 0)
        // The keepalive runs on the test loop every second; the machine's clock is real time.
        try await Task.sleep(for: .milliseconds(20))
        await channel.testingEventLoop.advanceTime(by: .seconds(1))
        guard case .nopIn(let ping) = try await channel.waitForOutboundWrite(as: ISCSIPDU.self) else {
            throw TestFailure("expected a NOP-In ping")
        }
        #expect(ping.initiatorTaskTag == 0xFFFF_FFFF)
        try await Task.sleep(for: .milliseconds(20))
        await channel.testingEventLoop.advanceTime(by: .seconds(1))
        try await channel.closeFuture.get()
        let lines = notices(recorder)
        #expect(lines.count == 1, "\(recorder.entries)")
        let line = try #require(lines.first)
        #expect(line.message.hasPrefix("connection closed by the target: NOP-In ping unanswered for "))
        #expect(line.metadata["initiator"] == "iqn.2026-01.test:host")
        #expect(line.metadata["target"] == ConnectionHandlerTests.target)
        #expect(line.metadata["peer"] == "127.0.0.1:3260")
        #expect(line.metadata["portal"] != nil)
        #expect(line.metadata["nop-in-timeout"] == "\(Duration.milliseconds(1))")
        #expect(line.metadata["nop-in-interval"] == "\(Duration.milliseconds(1))")
    }

    @Test func refusedLoginIsLoggedWithThePeersTextEscaped() async throws {
        let recorder = LogRecorder()
        let channel = try await harness.makeChannel(device: FakeSCSIDevice(), logger: recorder.logger)
        let response = try await harness.login(
            channel, initiator: "iqn.2026-01.test:evil\nnotice forged", target: "iqn.2026-01.test:nosuch\u{1B}[2J")
        #expect(response.statusClass == 2)
        try await channel.closeFuture.get()
        let line = try #require(notices(recorder).first, "\(recorder.entries)")
        #expect(line.message == "connection closed by the target: login refused: no target iqn.2026-01.test:nosuch\\x1b[2J")
        #expect(line.metadata["initiator"] == "iqn.2026-01.test:evil\\x0anotice forged")
        #expect(line.metadata["status"] == "0x0203")
        #expect(!recorder.entries.contains { $0.message.contains("\n") || $0.metadata.values.contains { $0.contains("\n") } })
    }

    @Test func protocolErrorIsLogged() async throws {
        let recorder = LogRecorder()
        let channel = try await harness.makeChannel(device: FakeSCSIDevice(), logger: recorder.logger)
        let login = try await harness.login(channel)
        // RFC 7143 §6.2: a Login Request in full feature phase.
        let again = LoginRequestPDU(
            transit: true, currentStage: .loginOperationalNegotiation, nextStage: .fullFeaturePhase, isid: 1, tsih: 0,
            initiatorTaskTag: 9, cid: 0, cmdSN: login.expCmdSN, expStatSN: login.statSN &+ 1)
        try await channel.writeInbound(ISCSIInbound.pdu(.loginRequest(again)))
        guard case .reject = try await channel.waitForOutboundWrite(as: ISCSIPDU.self) else {
            throw TestFailure("expected a Reject")
        }
        try await channel.closeFuture.get()
        let line = try #require(notices(recorder).first, "\(recorder.entries)")
        #expect(line.message == "connection closed by the target: protocol error: Login Request in full feature phase")
        #expect(line.metadata["initiator"] == "iqn.2026-01.test:host")
    }

    @Test func logoutIsNoNotice() async throws {
        let recorder = LogRecorder()
        let channel = try await harness.makeChannel(device: FakeSCSIDevice(), logger: recorder.logger)
        let login = try await harness.login(channel)
        try await channel.writeInbound(
            ISCSIInbound.pdu(
                .logoutRequest(
                    LogoutRequestPDU(
                        immediate: true, reasonCode: 0x80, initiatorTaskTag: 3, cid: 0, cmdSN: login.expCmdSN,
                        expStatSN: login.statSN &+ 1))))
        _ = try await channel.waitForOutboundWrite(as: ISCSIPDU.self)
        try await channel.closeFuture.get()
        #expect(notices(recorder).isEmpty, "\(recorder.entries)")
        #expect(recorder.entries.contains { $0.level == .info && $0.message == "initiator logged out" })
    }

    @Test func framingErrorIsLogged() async throws {
        let recorder = LogRecorder()
        let channel = try await harness.makeChannel(device: FakeSCSIDevice(), logger: recorder.logger)
        _ = try await harness.login(channel)
        channel.pipeline.fireErrorCaught(
            ISCSIWireError(code: .headerDigestMismatch, detail: "opcode 0x1 header digest 0x1, computed 0x2"))
        try await channel.closeFuture.get()
        let line = try #require(notices(recorder).first, "\(recorder.entries)")
        #expect(line.message.contains("headerDigestMismatch: opcode 0x1 header digest 0x1, computed 0x2"))
    }
}

