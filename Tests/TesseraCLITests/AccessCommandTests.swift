import AdminAPI
import ArgumentParser
import Foundation
import Synchronization
import Testing

@testable import TesseraCLI

/// Answers changes from a table of nodes and records each request.
final class ChangeTransport: AdminTransport {
    struct Sent: Sendable {
        var node: String
        var method: String
        var path: String
        var headers: [String: String]
        var body: String
    }
    let answers: [String: @Sendable (String, String) -> HTTPAnswer]
    let sent = Mutex<[Sent]>([])

    init(_ answers: [String: @Sendable (String, String) -> HTTPAnswer]) { self.answers = answers }

    func get(_ endpoint: NodeEndpoint, path: String, headers: [(String, String)], timeout: Duration) async throws
        -> HTTPAnswer
    {
        try await send(endpoint, method: "GET", path: path, headers: headers, body: [], timeout: timeout)
    }

    func send(
        _ endpoint: NodeEndpoint, method: String, path: String, headers: [(String, String)], body: [UInt8],
        timeout: Duration
    ) async throws -> HTTPAnswer {
        sent.withLock {
            $0.append(
                Sent(
                    node: "\(endpoint)", method: method, path: path,
                    headers: Dictionary(headers, uniquingKeysWith: { first, _ in first }),
                    body: String(decoding: body, as: UTF8.self)))
        }
        guard let answer = answers["\(endpoint)"] else { throw TransportError(description: "connection refused") }
        return answer(method, path)
    }
}

@Suite struct AccessCommandTests {
    static let target = "iqn.2026-11.dev.tessera:cluster"
    static let host2 = "iqn.2026-11.dev.tessera:host2"
    static let secret = "host2-secret-0123"
    static let status = TargetStatus(
        name: target, alias: nil, luns: [0], acl: ["iqn.1994-05.com.redhat:h1", host2], chap: nil,
        initiatorChap: [.init(initiator: host2, user: "host2", mutual: true)])

    static func run(
        _ arguments: [String], transport: ChangeTransport, files: [String: String] = [:], stdin: String? = nil
    ) async throws -> (status: Int32, out: String, err: String) {
        let output = Output()
        let environment = CLIEnvironment(
            variables: ["TESSERA_NODE": "127.0.0.1:8081"], transport: transport,
            readFile: { path in
                guard let text = files[path] else { throw CocoaError(.fileNoSuchFile) }
                return text
            },
            out: { text in output.out.withLock { $0 += text } }, err: { text in output.err.withLock { $0 += text } },
            readStdin: { stdin })
        let command = try TesseraCommand.parseAsRoot(arguments)
        let reading = try #require(command as? any ReadingCommand, "\(arguments)")
        let status = await reading.execute(in: environment)
        return (status, output.out.withLock { $0 }, output.err.withLock { $0 })
    }

    static let answering = ChangeTransport(["127.0.0.1:8081": { _, _ in json(status) }])

    @Test(arguments: [
        ["acl", "add", target, "host2"], ["acl", "add", target], ["acl", "remove", target, "nope"],
        ["chap", "set", target, host2, "--user", "u"],
        ["chap", "set", target, host2, "--user", "u", "--secret-file", "f", "--secret-stdin"],
        ["chap", "set", target, host2, "--user", "u", "--secret-file", "f", "--mutual-user", "t"],
        ["chap", "set", target, host2, "--user", "u", "--secret-file", "f", "--mutual-secret-file", "g"],
        ["chap", "set", target, host2, "--user", "u", "--secret", "in-an-argument"],
        ["chap", "set", target, "bad", "--user", "u", "--secret-stdin"], ["chap", "remove", target],
    ])
    func usageErrorsExit2(arguments: [String]) {
        #expect(throws: (any Error).self) { _ = try TesseraCommand.parseAsRoot(arguments) }
        do {
            _ = try TesseraCommand.parseAsRoot(arguments)
        } catch {
            #expect(TesseraCommand.status(for: error) == 2, "\(arguments)")
        }
    }

    @Test func helpSaysWhyTheSecretIsNeverAnArgument() {
        let help = TesseraCommand.helpMessage(for: CHAPCommand.SetCredentials.self)
        #expect(help.contains("--secret-file") && help.contains("--secret-stdin") && help.contains("ps"))
        #expect(help.contains("12...255"))
    }

    @Test func aclAddPostsTheInitiatorWithARequestID() async throws {
        let transport = ChangeTransport(["127.0.0.1:8081": { _, _ in json(Self.status) }])
        let result = try await Self.run(["acl", "add", Self.target, Self.host2], transport: transport)
        #expect(result.status == 0, "\(result.err)")
        let sent = try #require(transport.sent.withLock { $0.first })
        #expect(sent.method == "POST" && sent.path == "/v1/targets/\(Self.target)/acls")
        #expect(sent.body == #"{"initiator":"\#(Self.host2)"}"#)
        #expect((sent.headers["Idempotency-Key"]?.count ?? 0) >= 32)
        #expect(
            result.out.contains("TARGET") && result.out.contains(Self.host2)
                && result.out.contains("user host2, mutual"))
    }

    @Test func aChangeTriesTheNextNodeWithTheSameRequestID() async throws {
        let transport = ChangeTransport(["127.0.0.1:8082": { _, _ in json(Self.status) }])
        let result = try await Self.run(
            ["acl", "remove", Self.target, Self.host2, "--node", "127.0.0.1:8081", "--node", "127.0.0.1:8082"],
            transport: transport)
        #expect(result.status == 0)
        let sent = transport.sent.withLock { $0 }
        #expect(sent.map(\.node) == ["127.0.0.1:8081", "127.0.0.1:8082"])
        #expect(sent.allSatisfy { $0.method == "DELETE" && $0.path == "/v1/targets/\(Self.target)/acls/\(Self.host2)" })
        #expect(Set(sent.compactMap { $0.headers["Idempotency-Key"] }).count == 1)
    }

    @Test func chapSetReadsTheSecretFromAFileAndNeverPrintsIt() async throws {
        let transport = ChangeTransport(["127.0.0.1:8081": { _, _ in json(Self.status) }])
        for json in [false, true] {
            let result = try await Self.run(
                ["chap", "set", Self.target, Self.host2, "--user", "host2", "--secret-file", "/s"]
                    + (json ? ["--json"] : []),
                transport: transport, files: ["/s": Self.secret + "\n"])
            #expect(result.status == 0, "\(result.err)")
            #expect(!result.out.contains(Self.secret) && !result.err.contains(Self.secret))
        }
        let sent = try #require(transport.sent.withLock { $0.first })
        #expect(sent.method == "PUT" && sent.path == "/v1/targets/\(Self.target)/chap/\(Self.host2)")
        // One final newline stripped.
        #expect(sent.body == #"{"secret":"\#(Self.secret)","user":"host2"}"#)
    }

    @Test func chapSetReadsBothSecretsFromStdin() async throws {
        let transport = ChangeTransport(["127.0.0.1:8081": { _, _ in json(Self.status) }])
        let result = try await Self.run(
            [
                "chap", "set", Self.target, Self.host2, "--user", "host2", "--secret-stdin", "--mutual-user", "tgt",
                "--mutual-secret-stdin",
            ], transport: transport, stdin: Self.secret + "\r\nmutual-secret-89\n")
        #expect(result.status == 0, "\(result.err)")
        let sent = try #require(transport.sent.withLock { $0.first })
        #expect(
            sent.body
                == #"{"mutual_secret":"mutual-secret-89","mutual_user":"tgt","secret":"\#(Self.secret)","user":"host2"}"#
        )
        let missing = try await Self.run(
            [
                "chap", "set", Self.target, Self.host2, "--user", "host2", "--secret-stdin", "--mutual-user", "tgt",
                "--mutual-secret-stdin",
            ], transport: transport, stdin: Self.secret + "\n")
        #expect(missing.status == 2 && missing.err.contains("line 2"))
        let unreadable = try await Self.run(
            ["chap", "set", Self.target, Self.host2, "--user", "host2", "--secret-file", "/missing"],
            transport: transport)
        #expect(unreadable.status == 1 && unreadable.err.contains("--secret-file /missing"))
    }

    @Test func theNodesRefusalIsExit1WithItsReason() async throws {
        let failure = AdminFailure(status: 400, error: "secret is 8 bytes", hint: "12...255 bytes")
        let transport = ChangeTransport([
            "127.0.0.1:8081": { _, _ in HTTPAnswer(status: 400, body: Array(failure.response.body.utf8)) }
        ])
        let result = try await Self.run(
            ["chap", "set", Self.target, Self.host2, "--user", "u", "--secret-stdin"], transport: transport,
            stdin: "short\n")
        #expect(result.status == 1)
        #expect(result.err.contains("secret is 8 bytes; 12...255 bytes"))
        // A 400 is final: the next node is not asked.
        #expect(transport.sent.withLock { $0.count } == 1)
    }

    @Test func aclListShowsEveryInitiatorAndItsCHAP() async throws {
        let open = TargetStatus(
            name: "iqn.2026-11.dev.tessera:open", alias: nil, luns: [], acl: [], chap: .init(user: "all", mutual: false)
        )
        let transport = ChangeTransport(["127.0.0.1:8081": { _, _ in json([Self.status, open]) }])
        let all = try await Self.run(["acl", "list"], transport: transport)
        #expect(all.status == 0)
        #expect(all.out.contains("any initiator") && all.out.contains("user all (target's)"))
        let h1 = all.out.split(separator: "\n").first { $0.contains("iqn.1994-05.com.redhat:h1") }
        #expect(h1?.hasSuffix("none") == true, "\(all.out)")
        let one = try await Self.run(["acl", "list", Self.target, "--json"], transport: transport)
        let decoded = try AdminJSON.decoder.decode([TargetStatus].self, from: Data(one.out.utf8))
        #expect(decoded == [Self.status])
        let none = try await Self.run(["acl", "list", "iqn.2026-11.x:nope"], transport: transport)
        #expect(none.status == 1 && none.err.contains("no target"))
    }

    @Test func targetNamesArePercentEncodedAsOneSegment() {
        #expect(targetPath("iqn.x:a/b", "chap", "iqn.y:c?d") == "/v1/targets/iqn.x:a%2Fb/chap/iqn.y:c%3Fd")
    }
}
