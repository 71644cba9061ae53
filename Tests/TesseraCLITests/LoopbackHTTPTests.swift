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

    /// The same state, answering `/v1/luns` only after a pause.
    struct SlowState: AdminState {
        func health() -> HealthReport { State().health() }
        func cluster() async throws -> ClusterStatus { try await State().cluster() }
        func luns() async throws -> [LUNStatus] {
            try await Task.sleep(for: .milliseconds(300))
            return [sampleLUN]
        }
        func reservations(target: String, lun: UInt64) async throws -> ReservationStatus? { nil }
        func targets() async throws -> [TargetStatus] { [] }
    }

    func withServer(state: any AdminState = State(), _ body: (NodeEndpoint) async throws -> Void) async throws {
        var logger = Logger(label: "test.admin")
        logger.logLevel = .critical
        let server = AdminServer(host: "127.0.0.1", port: 0, logger: logger, token: AdminToken("tok"), state: state)
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

    /// busybox `nc` in the kernel-initiator guest closes its sending side
    /// once the request is out; the answer must still come back.
    @Test(.timeLimit(.minutes(1)))
    func aClientThatClosesItsSendingSideGetsTheAnswer() async throws {
        try await withServer(state: SlowState()) { node in
            let answer = try halfClosedExchange(
                port: node.port, "GET /v1/luns HTTP/1.0\r\nAuthorization: Bearer tok\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.0 200"), "\(answer.prefix(120))")
            #expect(answer.contains("\"sub_units\""))
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

/// Sends `request` on a new TCP connection to 127.0.0.1:`port`, shuts down
/// the sending side, and reads until the server closes (at most 10 s).
private func halfClosedExchange(port: Int, _ request: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    let bytes = Array(request.utf8)
    guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == bytes.count else { throw POSIXError(.EIO) }
    shutdown(fd, Int32(SHUT_WR))
    var answer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { break }
        answer += chunk.prefix(count)
    }
    return String(decoding: answer, as: UTF8.self)
}
