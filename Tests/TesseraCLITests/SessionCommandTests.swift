import AdminAPI
import ArgumentParser
import Foundation
import Testing

@testable import TesseraCLI

@Suite struct SessionCommandTests {
    static let target = "iqn.2026-11.dev.tessera:cluster"
    static let listed = [
        SessionStatus(
            node: 1, tsih: 3, initiator: "iqn.1994-05.com.redhat:h1", isid: "0x00023d000001", target: target,
            portalGroup: 1, portal: "127.0.0.1:3261", initiatorAddress: "127.0.0.1:50000", loggedInAt: 1_000,
            source: "node_down"),
        SessionStatus(
            node: 2, tsih: 12, initiator: "iqn.1994-05.com.redhat:h2", isid: "0x00023d000002", target: target,
            portalGroup: 2, portal: "127.0.0.1:3262", initiatorAddress: "127.0.0.1:50001", loggedInAt: 1_000 + 3_700,
            source: "live"),
    ]

    @Test func listRendersAnAlignedTableAndSaysWhichNodeIsDown() async throws {
        let transport = ChangeTransport(["127.0.0.1:8081": { _, _ in json(Self.listed) }])
        let result = try await AccessCommandTests.run(["session", "list"], transport: transport)
        #expect(result.status == 0)
        let lines = result.out.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("NODE  TSIH  INITIATOR") == true, "\(result.out)")
        #expect(lines.contains { $0.contains("iqn.1994-05.com.redhat:h2") && $0.contains("127.0.0.1:3262,2") && $0.contains("live") })
        #expect(result.out.contains("node 1 is not renewing its lease"))
        #expect(transport.sent.withLock { $0.map(\.path) } == ["/v1/sessions"])
    }

    @Test func listFiltersByNodeAndInitiatorAndPrintsJSON() async throws {
        let transport = ChangeTransport(["127.0.0.1:8081": { _, _ in json(Self.listed) }])
        let result = try await AccessCommandTests.run(
            ["session", "list", "--node-id", "2", "--initiator", "IQN.1994-05.com.redhat:H2", "--json"], transport: transport)
        #expect(result.status == 0)
        let decoded = try AdminJSON.decoder.decode([SessionStatus].self, from: Data(result.out.utf8))
        #expect(decoded == [Self.listed[1]])
    }

    @Test func anEmptyListSaysSo() async throws {
        let transport = ChangeTransport(["127.0.0.1:8081": { _, _ in json([SessionStatus]()) }])
        let result = try await AccessCommandTests.run(["session", "list"], transport: transport)
        #expect(result.out == "no sessions\n")
    }

    @Test(arguments: [
        ["session", "close", "2", "12"], ["session", "close", "0", "12", "--yes"], ["session", "close", "2", "0", "--yes"],
        ["session", "close", "2", "70000", "--yes"], ["session", "close", "2"], ["session", "close", "x", "1", "--yes"],
    ])
    func closeUsageErrorsExit2(arguments: [String]) {
        do {
            _ = try TesseraCommand.parseAsRoot(arguments)
            Issue.record("parsed: \(arguments)")
        } catch {
            #expect(TesseraCommand.status(for: error) == 2, "\(arguments)")
        }
    }

    @Test func closeSendsOneDeleteAndSaysWhatHappened() async throws {
        let answer = SessionClose(session: Self.listed[1], outcome: "requested")
        let transport = ChangeTransport(["127.0.0.1:8081": { _, _ in json(answer) }])
        let result = try await AccessCommandTests.run(["session", "close", "2", "12", "--yes"], transport: transport)
        #expect(result.status == 0)
        let sent = transport.sent.withLock { $0 }
        #expect(sent.map(\.method) == ["DELETE"])
        #expect(sent.first?.path == "/v1/sessions/2/12")
        #expect(result.out.contains("asked node 2 to close session 12 of iqn.1994-05.com.redhat:h2,i,0x00023d000002"))
    }

    @Test func durations() {
        #expect(Render.duration(seconds: 5) == "5s")
        #expect(Render.duration(seconds: 125) == "2m")
        #expect(Render.duration(seconds: 3_700) == "1h01m")
        #expect(Render.duration(seconds: 2 * 86_400 + 4 * 3600) == "2d04h")
    }
}
