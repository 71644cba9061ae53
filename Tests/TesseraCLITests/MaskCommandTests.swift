import AdminAPI
import ArgumentParser
import Foundation
import Testing

@testable import TesseraCLI

@Suite struct MaskCommandTests {
    static let target = "iqn.2026-11.dev.tessera:cluster"
    static let masked = TargetStatus(
        name: target, alias: nil, luns: [0, 1], acl: [], chap: nil,
        lunMasks: [.init(lun: 1, initiators: ["iqn.1994-05.com.redhat:h1"])])
    static let luns = [
        LUNStatus(target: target, lun: 1, sizeBytes: 1 << 20, blockSize: 512, serial: "S1", layout: nil, subUnits: [])
    ]

    @Test func mapFindsTheLUNsTargetThenPutsAndShowsWhoSeesWhat() async throws {
        let transport = ChangeTransport([
            "127.0.0.1:8081": { method, path in method == "GET" ? json(Self.luns) : json(Self.masked) }
        ])
        let result = try await AccessCommandTests.run(
            ["lun", "map", "1", "iqn.1994-05.com.redhat:h1"], transport: transport)
        #expect(result.status == 0, "\(result.err)")
        let sent = transport.sent.withLock { $0 }
        #expect(sent.map(\.method) == ["GET", "PUT"])
        #expect(sent.last?.path == "/v1/targets/\(Self.target)/luns/1/initiators/iqn.1994-05.com.redhat:h1")
        #expect(sent.last?.headers["Idempotency-Key"]?.isEmpty == false)
        #expect(result.out.contains("every initiator the ACL admits"), "LUN 0 has no mask")
        #expect(result.out.split(separator: "\n").contains { $0.hasSuffix("1  iqn.1994-05.com.redhat:h1") })
    }

    @Test func unmapAllDeletesTheWholeMaskOfTheNamedTarget() async throws {
        let transport = ChangeTransport(["127.0.0.1:8081": { _, _ in json(Self.masked) }])
        let result = try await AccessCommandTests.run(
            ["lun", "unmap", "1", "--all", "--target", Self.target], transport: transport)
        #expect(result.status == 0)
        let sent = transport.sent.withLock { $0 }
        #expect(sent.map(\.method) == ["DELETE"])
        #expect(sent.first?.path == "/v1/targets/\(Self.target)/luns/1/initiators")
    }

    @Test func aLUNInNoTargetIsAFailureThatSaysWhereToLook() async throws {
        let transport = ChangeTransport(["127.0.0.1:8081": { _, _ in json([LUNStatus]()) }])
        let result = try await AccessCommandTests.run(["lun", "map", "7", "iqn.1994-05.com.redhat:h1"], transport: transport)
        #expect(result.status == 1)
        #expect(result.err.contains("tessera lun list"))
    }

    @Test(arguments: [
        ["lun", "unmap", "1"], ["lun", "unmap", "1", "iqn.1994-05.com.redhat:h1", "--all"], ["lun", "map", "1", "not a name"],
        ["lun", "map", "16384", "iqn.1994-05.com.redhat:h1"], ["lun", "map", "1"],
    ])
    func usageErrorsExit2(arguments: [String]) {
        do {
            _ = try TesseraCommand.parseAsRoot(arguments)
            Issue.record("parsed: \(arguments)")
        } catch {
            #expect(TesseraCommand.status(for: error) == 2, "\(arguments)")
        }
    }
}
