import AdminAPI
import Foundation
import Logging
import Testing

@testable import TesseraCLI

/// The real server (NIOHTTP1) and the real client transport on loopback,
/// over a fixed state: headers, statuses and bodies as they travel.
@Suite struct LoopbackHTTPTests {
    /// A state with one LUN and one target.
    struct State: AdminState {
        func health() -> HealthReport {
            HealthReport(
                nodeID: 1, peerAddress: "127.0.0.1:1", lease: "held", mayChangeContext: true,
                millisecondsSinceQuorumContact: 1, leaderID: 1, targets: ["iqn.x:y"], lunCount: 1, version: "v")
        }
        func cluster() async throws -> ClusterStatus {
            ClusterStatus(answeredBy: 1, version: "v", storeLeader: 1, members: [], portGroups: [])
        }
        func luns() async throws -> [LUNStatus] { [sampleLUN] }
        func reservations(target: String, lun: UInt64) async throws -> ReservationStatus? { nil }
        func targets() async throws -> [TargetStatus] { [] }
    }

    func withServer(_ body: (NodeEndpoint) async throws -> Void) async throws {
        var logger = Logger(label: "test.admin")
        logger.logLevel = .critical
        let server = AdminServer(host: "127.0.0.1", port: 0, logger: logger, token: AdminToken("tok"), state: State())
        try await server.start()
        let port = try #require(server.boundPort)
        do {
            try await body(NodeEndpoint(host: "127.0.0.1", port: port))
        } catch {
            await server.shutdown()
            throw error
        }
        await server.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func statusesOverTheWire() async throws {
        try await withServer { node in
            let transport = NIOAdminTransport()
            let auth = [("Authorization", "Bearer tok")]
            #expect(try await transport.get(node, path: "/v1/luns", headers: [], timeout: .seconds(5)).status == 401)
            let luns = try await transport.get(node, path: "/v1/luns", headers: auth, timeout: .seconds(5))
            #expect(luns.status == 200)
            #expect(try AdminJSON.decoder.decode([LUNStatus].self, from: Data(luns.body)) == [sampleLUN])
            #expect(
                try await transport.get(node, path: "/v1/luns/0", headers: auth, timeout: .seconds(5)).status == 200)
            #expect(try await transport.get(node, path: "/v1/nope", headers: auth, timeout: .seconds(5)).status == 404)
            let health = try await transport.get(node, path: "/health", headers: [], timeout: .seconds(5))
            #expect(health.status == 200 && health.text == State().health().json)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func theCommandFallsBackOverTheWire() async throws {
        try await withServer { node in
            let output = Output()
            let environment = CLIEnvironment(
                variables: ["TESSERA_TOKEN": "tok"], transport: NIOAdminTransport(), readFile: { _ in "" },
                out: { text in output.out.withLock { $0 += text } }, err: { text in output.err.withLock { $0 += text } }
            )
            // Port 1 on loopback: nothing listens there (it needs root), so the connection is refused.
            let command = try #require(
                try TesseraCommand.parseAsRoot([
                    "lun", "show", "0", "--node", "127.0.0.1:1", "--node", "\(node)", "--verbose",
                ])
                    as? any ReadingCommand)
            let status = await command.execute(in: environment)
            #expect(status == 0, "\(output.err.withLock { $0 })")
            #expect(output.out.withLock { $0 }.contains("SUB-UNIT  EPOCH  PRIMARY"))
            #expect(output.err.withLock { $0 }.contains("127.0.0.1:1 did not answer: connection refused"))
            #expect(output.err.withLock { $0 }.contains("answered by \(node)"))
        }
    }
}
