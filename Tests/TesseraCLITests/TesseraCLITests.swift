import AdminAPI
import ArgumentParser
import Foundation
import Synchronization
import Testing

@testable import TesseraCLI

/// Answers from a table of nodes; a node missing from it does not answer.
/// Records every request (node, path, headers).
final class FakeTransport: AdminTransport {
    let answers: [String: @Sendable (String) -> HTTPAnswer]
    let requests = Mutex<[(node: String, path: String, headers: [String: String])]>([])

    init(_ answers: [String: @Sendable (String) -> HTTPAnswer]) { self.answers = answers }

    func get(_ endpoint: NodeEndpoint, path: String, headers: [(String, String)], timeout: Duration) async throws
        -> HTTPAnswer
    {
        requests.withLock {
            $0.append(("\(endpoint)", path, Dictionary(headers, uniquingKeysWith: { first, _ in first })))
        }
        guard let answer = answers["\(endpoint)"] else { throw TransportError(description: "connection refused") }
        return answer(path)
    }
}

/// What a command printed.
final class Output: Sendable {
    let out = Mutex("")
    let err = Mutex("")
}

func json(_ value: some Encodable, status: Int = 200) -> HTTPAnswer {
    HTTPAnswer(status: status, body: Array(AdminJSON.encode(value).utf8))
}

let sampleLUN = LUNStatus(
    target: "iqn.2026-11.dev.tessera:cluster", lun: 0, sizeBytes: 64 << 20, blockSize: 512, serial: "TSR-1",
    layout: .init(lunID: "0x6001405", subUnitBytes: 8 << 20, replicas: 2, subUnitCount: 2),
    subUnits: [
        .init(
            index: 0, epoch: 1, primary: 1, secondaries: [2],
            replicas: [.init(node: 1, state: "in_sync"), .init(node: 2, state: "in_sync")]),
        .init(
            index: 1, epoch: 4, primary: 2, secondaries: [1],
            replicas: [
                .init(node: 2, state: "in_sync"),
                .init(
                    node: 1, state: "resyncing",
                    resync: .init(percent: 50, bytesDone: 4 << 20, bytesTotal: 8 << 20, bytesPerSecond: 1 << 20)),
            ]),
    ])

func run(
    _ arguments: [String], transport: FakeTransport, variables: [String: String] = [:], files: [String: String] = [:]
)
    async throws -> (status: Int32, out: String, err: String)
{
    let output = Output()
    let environment = CLIEnvironment(
        variables: variables, transport: transport,
        readFile: { path in
            guard let text = files[path] else { throw CocoaError(.fileNoSuchFile) }
            return text
        },
        out: { text in output.out.withLock { $0 += text } }, err: { text in output.err.withLock { $0 += text } })
    let command = try TesseraCommand.parseAsRoot(arguments)
    guard let reading = command as? any ReadingCommand else {
        Issue.record("\(arguments) is not a reading command")
        return (-1, "", "")
    }
    let status = await reading.execute(in: environment)
    return (status, output.out.withLock { $0 }, output.err.withLock { $0 })
}

@Suite struct TesseraCLITests {
    @Test(arguments: [
        ["lun", "show"], ["lun", "show", "abc"], ["lun", "show", "16384"], ["pr", "show"],
        ["cluster", "status", "--node", "nohost"],
        ["cluster", "status", "--node", "127.0.0.1:0"], ["cluster", "status", "--node", "127.0.0.1:99999"],
        ["cluster", "frob"],
        ["frob"], ["lun", "list", "--bogus"], ["resync", "status", "--interval", "0", "--watch"],
        ["resync", "status", "--interval", "5"],
        ["node", "add", "x"], ["node", "drain", "0"], ["node", "remove", "2"], ["node", "add", "3", "--timeout", "5"],
        ["node", "drain", "3", "--wait", "--timeout", "0"],
    ])
    func badUsageExits2(arguments: [String]) {
        do {
            _ = try TesseraCommand.parseAsRoot(arguments)
            Issue.record("\(arguments) parsed")
        } catch {
            #expect(TesseraCommand.status(for: error) == 2, "\(arguments)")
        }
    }

    @Test func helpAndVersionExit0() {
        for arguments in [["--help"], ["--version"], ["lun", "show", "--help"]] {
            do {
                _ = try TesseraCommand.parseAsRoot(arguments)
            } catch {
                #expect(TesseraCommand.status(for: error) == 0, "\(arguments)")
            }
        }
    }


    @Test func fallsBackToTheNextNodeAndSaysWhichAnswered() async throws {
        let transport = FakeTransport(["127.0.0.1:8082": { _ in json(sampleLUN) }])
        let result = try await run(
            ["lun", "show", "0", "--node", "127.0.0.1:8081", "--node", "127.0.0.1:8082", "--verbose"],
            transport: transport)
        #expect(result.status == 0)
        #expect(result.err.contains("127.0.0.1:8081 did not answer"))
        #expect(result.err.contains("answered by 127.0.0.1:8082"))
        #expect(result.out.contains("1:resyncing 50.0%"))
        #expect(transport.requests.withLock { $0.map(\.node) } == ["127.0.0.1:8081", "127.0.0.1:8082"])
        #expect(transport.requests.withLock { $0.last?.path } == "/v1/luns/0")
    }

    @Test func aNodeThatCannotReadTheStoreIsPassedOver() async throws {
        let transport = FakeTransport([
            "127.0.0.1:8081": { _ in json(AdminErrorBody(error: "no quorum", hint: "retry"), status: 503) },
            "127.0.0.1:8082": { _ in json([sampleLUN]) },
        ])
        let result = try await run(
            ["lun", "list", "--node", "127.0.0.1:8081", "--node", "127.0.0.1:8082"], transport: transport)
        #expect(result.status == 0)
        #expect(result.out.hasPrefix("TARGET"))
        #expect(result.err.isEmpty, "quiet without --verbose")
    }

    @Test func noNodeAnsweringExits1WithWhatToDo() async throws {
        let result = try await run(
            ["cluster", "status", "--node", "127.0.0.1:8081", "--node", "127.0.0.1:8082"], transport: FakeTransport([:])
        )
        #expect(result.status == 1)
        #expect(result.err.contains("no node answered: tried 127.0.0.1:8081"))
        #expect(result.err.contains("127.0.0.1:8082"))
        #expect(result.err.contains("start a node or pass --node"))
    }

    @Test func nodesFromTheEnvironmentAndTheDefault() async throws {
        let transport = FakeTransport([:])
        _ = try await run(["lun", "list"], transport: transport, variables: ["TESSERA_NODE": "127.0.0.1:1, [::1]:2"])
        #expect(transport.requests.withLock { $0.map(\.node) } == ["127.0.0.1:1", "[::1]:2"])
        let plain = FakeTransport([:])
        _ = try await run(["lun", "list"], transport: plain)
        #expect(plain.requests.withLock { $0.map(\.node) } == [GlobalOptions.defaultNode])
        let bad = try await run(["lun", "list"], transport: FakeTransport([:]), variables: ["TESSERA_NODE": "nohost"])
        #expect(bad.status == 2)
    }

    @Test func tokenFromFileOrEnvironment() async throws {
        let transport = FakeTransport(["127.0.0.1:8081": { _ in json([sampleLUN]) }])
        _ = try await run(
            ["lun", "list", "--node", "127.0.0.1:8081", "--token-file", "/t"], transport: transport,
            variables: ["TESSERA_TOKEN": "from-env"], files: ["/t": "from-file\n"])
        _ = try await run(
            ["lun", "list", "--node", "127.0.0.1:8081"], transport: transport, variables: ["TESSERA_TOKEN": "from-env"])
        _ = try await run(["lun", "list", "--node", "127.0.0.1:8081"], transport: transport)
        #expect(
            transport.requests.withLock { $0.map { $0.headers["Authorization"] } } == [
                "Bearer from-file", "Bearer from-env", nil,
            ])
        let missing = try await run(["lun", "list", "--token-file", "/none"], transport: transport)
        #expect(missing.status == 1 && missing.err.contains("cannot read --token-file /none"))
    }

    @Test func refusedTokenSaysHowToPassOne() async throws {
        let transport = FakeTransport([
            "127.0.0.1:8081": { _ in
                json(AdminErrorBody(error: "this request needs the admin token", hint: "h"), status: 401)
            }
        ])
        let result = try await run(["target", "list", "--node", "127.0.0.1:8081"], transport: transport)
        #expect(result.status == 1)
        #expect(result.err.contains("--token-file"))
    }

    @Test func apiErrorsArePassedOnWithTheirHint() async throws {
        let transport = FakeTransport([
            "127.0.0.1:8081": { _ in
                json(AdminErrorBody(error: "no LUN 9", hint: "tessera lun list lists them"), status: 404)
            }
        ])
        let result = try await run(["pr", "show", "9", "--node", "127.0.0.1:8081"], transport: transport)
        #expect(result.status == 1)
        #expect(result.err.contains("no LUN 9; tessera lun list lists them"))
        #expect(transport.requests.withLock { $0.first?.path } == "/v1/luns/9/reservations")
    }

    @Test func jsonFlagPrintsTheBodyAsIs() async throws {
        let body = AdminJSON.encode([sampleLUN])
        let transport = FakeTransport(["127.0.0.1:8081": { _ in HTTPAnswer(status: 200, body: Array(body.utf8)) }])
        let result = try await run(["lun", "list", "--json", "--node", "127.0.0.1:8081"], transport: transport)
        #expect(result.out == body)
    }

    @Test func globalOptionsBeforeTheSubcommand() throws {
        let arguments = ["--node", "127.0.0.1:1", "--node=127.0.0.1:2", "--verbose", "lun", "show", "0", "--json"]
        let hoisted = TesseraCommand.hoistingGlobalOptions(arguments)
        #expect(hoisted == ["lun", "show", "0", "--json", "--node", "127.0.0.1:1", "--node=127.0.0.1:2", "--verbose"])
        let show = try #require(try TesseraCommand.parseAsRoot(hoisted) as? LUNCommand.Show)
        #expect(show.global.node == ["127.0.0.1:1", "127.0.0.1:2"] && show.global.verbose && show.global.json)
        #expect(
            TesseraCommand.hoistingGlobalOptions(["lun", "list", "--node", "a:1"]) == ["lun", "list", "--node", "a:1"])
        #expect(
            TesseraCommand.hoistingGlobalOptions(["--node"]) == ["--node"], "a dangling option is left to the parser")
    }

    @Test func targetOptionIsEncodedInTheQuery() {
        #expect(lunPath(0, target: "iqn.2026-11.dev.tessera:a&b") == "/v1/luns/0?target=iqn.2026-11.dev.tessera:a%26b")
        #expect(lunPath(3, target: nil, suffix: "/reservations") == "/v1/luns/3/reservations")
    }

    @Test func endpointParsing() {
        #expect(NodeEndpoint(parsing: "127.0.0.1:8081") == NodeEndpoint(host: "127.0.0.1", port: 8081))
        #expect(NodeEndpoint(parsing: "[::1]:8081") == NodeEndpoint(host: "::1", port: 8081))
        #expect(NodeEndpoint(parsing: "node-a:1")?.description == "node-a:1")
        for bad in ["", "127.0.0.1", ":80", "a:b", "::1:80", "[::1]", "[::1]80", "h:0", "h:65536"] {
            #expect(NodeEndpoint(parsing: bad) == nil, "\(bad)")
        }
    }
}

@Suite struct RenderTests {
    @Test func tableAlignsColumns() {
        let table = TextTable(
            headers: ["NAME", "N", "NOTE"], rows: [["a", "10", "x"], ["long name", "2"], ["b\nc", "3", "", "extra"]])
        #expect(
            table.render() == """
                NAME        N  NOTE
                a          10  x
                long name   2
                b c         3

                """)
    }

    @Test func tableWithoutRows() {
        #expect(TextTable(headers: ["A", "BB"]).render() == "A  BB\n")
    }

    @Test(arguments: [
        (UInt64(0), "0 B"), (512, "512 B"), (1024, "1 KiB"), (1536, "1.5 KiB"), (64 << 20, "64 MiB"),
        (1 << 30, "1 GiB"),
        (UInt64.max, "16 EiB"),
    ])
    func bytes(value: UInt64, text: String) {
        #expect(formatBytes(value) == text)
    }

    @Test func lunShow() {
        let text = Render.lun(sampleLUN)
        #expect(
            text.hasPrefix(
                "iqn.2026-11.dev.tessera:cluster LUN 0: 64 MiB (67108864 bytes), 512-byte blocks, serial TSR-1\n"))
        #expect(text.contains("2 sub-units of 8 MiB, 2 replicas each"))
        #expect(text.contains("SUB-UNIT  EPOCH  PRIMARY  SECONDARIES  REPLICAS\n"))
        #expect(text.contains("       1      4        2            1  2:in_sync 1:resyncing 50.0%\n"))
    }

    @Test func resyncStatus() {
        let text = Render.resyncs([sampleLUN], answeredBy: "127.0.0.1:8082")
        #expect(text.contains("resyncing  50.0% (4 MiB of 8 MiB, 1 MiB/s)"))
        let barred = Render.resyncs([sampleLUN], answeredBy: "127.0.0.1:8082", bar: true)
        #expect(barred.contains("resyncing  [##########..........] 50.0% (4 MiB of 8 MiB"), "\(barred)")
        var synced = sampleLUN
        synced.subUnits.removeLast()
        #expect(Render.resyncs([synced], answeredBy: "n") == "every replica is in sync\n")
    }

    @Test func targetListNeverShowsASecret() {
        let text = Render.targets([
            TargetStatus(name: "iqn.x:y", alias: nil, luns: [0, 1], acl: [], chap: .init(user: "alice", mutual: true))
        ])
        #expect(text.contains("user alice, mutual"))
        #expect(text.contains("any initiator"))
    }

    @Test func reservationsShow() {
        let status = ReservationStatus(
            target: "iqn.x:y", lun: 0, generation: 2, aptpl: false,
            registrations: [
                .init(key: "0x0000000000000001", nexus: .init(initiatorPort: "i1", targetPort: "t1"), aptpl: false)
            ],
            reservation: .init(
                key: "0x0000000000000001", holder: nil, type: "write_exclusive_all_registrants", typeCode: 7, scope: 0),
            spc2Reservation: nil)
        let text = Render.reservations(status)
        #expect(text.contains("PR generation 2, APTPL no"))
        #expect(text.contains("0x0000000000000001  i1              t1           no"))
        #expect(text.contains("holder every registrant"))
        #expect(text.contains("SPC-2 reservation: none"))
    }
}
