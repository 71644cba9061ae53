import ClusterAuth
import ClusterModel
import NIOCore
import NIOPosix
import Testing

@testable import ClusterWire

/// The peer port with a cluster secret: requests flow only after the
/// connecting node proved it.
@Suite("Peer port: cluster authentication")
struct PeerAuthenticationTests {
    static let secret = ClusterSecret(text: "peer-test-secret-0123456789abcdef")!
    static let other = ClusterSecret(text: "not-this-cluster-0123456789abcdef")!

    @Test("a node with the secret is served")
    func withTheSecret() async throws {
        let harness = try await PeerHarness.start(handler: EchoHandler(), serverSecret: Self.secret, clientSecret: Self.secret)
        let request = writeRequest(3, bytes: 4096)
        #expect((await harness.client.send(request, to: serverNode, timeout: .seconds(10))).dataBytes == expectedEcho(request))
        await harness.stop()
    }

    @Test("a node with another secret is refused, and the reply says why")
    func withAnotherSecret() async throws {
        let handler = EchoHandler()
        let harness = try await PeerHarness.start(handler: handler, serverSecret: Self.secret, clientSecret: Self.other)
        let reply = await harness.client.send(writeRequest(1), to: serverNode, timeout: .seconds(10))
        guard case .failure(let failure) = reply else {
            Issue.record("served without the secret: \(describe(reply))")
            await harness.stop()
            return
        }
        #expect(failure.code == .unavailable)
        #expect(failure.detail.contains("secret"))
        #expect(await handler.recorder.arrived.isEmpty)
        await harness.stop()
    }

    @Test("a node without the handshake gets nothing: its hello is never answered")
    func withoutTheHandshake() async throws {
        let handler = EchoHandler()
        let harness = try await PeerHarness.start(handler: handler, serverSecret: Self.secret, clientSecret: nil)
        let reply = await harness.client.send(writeRequest(1), to: serverNode, timeout: .seconds(10))
        #expect(isUnavailable(reply))
        #expect(await handler.recorder.arrived.isEmpty)
        await harness.stop()
    }
}
