import CClusterAuth
import ClusterAuth
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing

/// The C initiator (libdqlite's connect function uses it) against the Swift
/// responder, and the two NIO handlers against each other.
@Suite struct ClusterAuthInteropTests {
    static let secret = ClusterHandshakeTests.secret

    /// Runs the C initiator on one end of a socket pair while the Swift
    /// responder machine answers on the other; returns the C result and the
    /// responder's last action.
    static func cInitiator(
        initiatorSecret: String, responder: ClusterSecret, purpose: String = "STOR"
    ) -> (Int32, ClusterHandshakeResponder.Action) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { return (-99, .wait) }
        defer { close(fds[0]); close(fds[1]) }
        let key = Array(initiatorSecret.utf8)
        let result = Handoff<Int32>(fallback: -98)
        let initiatorEnd = fds[0]
        let thread = Thread {
            let rc = key.withUnsafeBufferPointer { tessera_auth_initiate(initiatorEnd, $0.baseAddress, key.count, purpose, 10_000) }
            // Before handing over: the caller closes the descriptors next,
            // and their numbers may be reused by another test at once.
            shutdown(initiatorEnd, Int32(SHUT_RDWR))
            result.set(rc)
        }
        thread.start()
        // The responder on a thread of its own too: blocking reads must not
        // hold one of the test runner's cooperative threads.
        let responderEnd = fds[1]
        let outcome = Handoff<ClusterHandshakeResponder.Action>(fallback: .wait)
        Thread {
            var machine = ClusterHandshakeResponder(ClusterHandshakeSide(secret: responder, purpose: .store)!)
            var last = ClusterHandshakeResponder.Action.wait
            var buffer = [UInt8](repeating: 0, count: 256)
            loop: while true {
                let n = read(responderEnd, &buffer, buffer.count)
                guard n > 0 else { break }
                last = machine.receive(buffer[..<n])
                switch last {
                case .wait: continue
                case .send(let bytes): _ = bytes.withUnsafeBytes { write(responderEnd, $0.baseAddress, $0.count) }
                case .accept(let verdict, _), .refuse(let verdict?, _):
                    _ = verdict.withUnsafeBytes { write(responderEnd, $0.baseAddress, $0.count) }
                    break loop
                case .refuse(nil, _):
                    break loop
                }
            }
            shutdown(responderEnd, Int32(SHUT_RDWR))
            outcome.set(last)
        }.start()
        return (result.wait(), outcome.wait())
    }

    @Test func theCInitiatorIsAcceptedWithTheSecret() {
        let (rc, last) = Self.cInitiator(initiatorSecret: "0123456789abcdef0123456789abcdef", responder: Self.secret)
        #expect(rc == 0)
        #expect({ if case .accept = last { true } else { false } }())
    }

    @Test func theCInitiatorWithAnotherSecretRejectsTheResponder() {
        let (rc, last) = Self.cInitiator(initiatorSecret: "another secret of enough length", responder: Self.secret)
        #expect(rc == -2)
        #expect(!{ if case .accept = last { true } else { false } }())
    }

    @Test func theCInitiatorForThePeerPortIsRefusedByTheStorePort() {
        let (rc, last) = Self.cInitiator(initiatorSecret: "0123456789abcdef0123456789abcdef", responder: Self.secret, purpose: "PEER")
        #expect(rc == -1)
        #expect({ if case .refuse(nil, _) = last { true } else { false } }())
    }

    /// Moves bytes between two embedded channels until neither has anything to send.
    static func pump(_ a: EmbeddedChannel, _ b: EmbeddedChannel) throws {
        var moved = true
        while moved {
            moved = false
            while let bytes = try a.readOutbound(as: ByteBuffer.self) {
                try b.writeInbound(bytes)
                moved = true
            }
            while let bytes = try b.readOutbound(as: ByteBuffer.self) {
                try a.writeInbound(bytes)
                moved = true
            }
        }
    }

    @Test func theHandlersHoldWritesUntilAcceptedThenStepAside() throws {
        let client = EmbeddedChannel()
        let server = EmbeddedChannel()
        let initiator = ClusterAuthInitiatorHandler(secret: Self.secret, purpose: .peer)
        try client.pipeline.syncOperations.addHandler(initiator)
        try server.pipeline.syncOperations.addHandler(
            ClusterAuthResponderHandler(secret: Self.secret, purpose: .peer, logger: Logger(label: "test")))
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        // Written before the handshake finished: held, then sent after it.
        client.writeAndFlush(ByteBuffer(string: "protected"), promise: nil)
        try Self.pump(client, server)
        try initiator.authenticated.wait()
        var received = ByteBuffer()
        while var part = try server.readInbound(as: ByteBuffer.self) { received.writeBuffer(&part) }
        #expect(String(buffer: received) == "protected")
        // Both handlers have left the pipelines.
        #expect(throws: (any Error).self) { try client.pipeline.syncOperations.handler(type: ClusterAuthInitiatorHandler.self) }
        #expect(throws: (any Error).self) { try server.pipeline.syncOperations.handler(type: ClusterAuthResponderHandler.self) }
        _ = try? client.finish()
        _ = try? server.finish()
    }

    @Test func aWrongSecretFailsTheHeldWritesAndClosesBothEnds() throws {
        let client = EmbeddedChannel()
        let server = EmbeddedChannel()
        let initiator = ClusterAuthInitiatorHandler(secret: ClusterHandshakeTests.other, purpose: .store)
        try client.pipeline.syncOperations.addHandler(initiator)
        try server.pipeline.syncOperations.addHandler(
            ClusterAuthResponderHandler(secret: Self.secret, purpose: .store, logger: Logger(label: "test")))
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let write = client.writeAndFlush(ByteBuffer(string: "never sent"))
        try? Self.pump(client, server)
        #expect(throws: ClusterAuthError.self) { try initiator.authenticated.wait() }
        #expect(throws: ClusterAuthError.self) { try write.wait() }
        #expect(!client.isActive)
        #expect(try server.readInbound(as: ByteBuffer.self) == nil)
    }
}

/// A value handed from a thread, waited for with a bound.
final class Handoff<Value>: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: Value?
    private let fallback: Value

    init(fallback: Value) { self.fallback = fallback }

    func set(_ value: Value) {
        condition.lock()
        self.value = value
        condition.signal()
        condition.unlock()
    }

    /// The value, or the fallback after 20 s.
    func wait() -> Value {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(20)
        while value == nil, condition.wait(until: deadline) {}
        return value ?? fallback
    }
}
