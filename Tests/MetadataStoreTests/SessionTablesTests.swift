import ClusterModel
import Testing

@testable import MetadataStore

/// The published session lists and the close requests, against a real dqlite node.
struct SessionTablesTests {
    @Test(.timeLimit(.minutes(1)))
    func publishedListsReplaceEachOtherAndCloseRequestsAreKeptUntilRemoved() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await Migrator.migrate(client)
        let repo = StoreRepository(client)
        let one = NodeID(1)
        let two = NodeID(2)

        try await repo.publishSessions(two, json: "[2]")
        try await repo.publishSessions(one, json: "[1]")
        try await repo.publishSessions(one, json: "[1, 1]")
        let published = try await repo.publishedSessions()
        #expect(published.map(\.node) == [one, two])
        #expect(published.map(\.json) == ["[1, 1]", "[2]"])
        #expect(published.allSatisfy { $0.publishedAt > 1_700_000_000 })

        try await repo.requestSessionClose(two, tsih: 7)
        try await repo.requestSessionClose(two, tsih: 7)
        try await repo.requestSessionClose(two, tsih: 3)
        try await repo.requestSessionClose(one, tsih: 9)
        #expect(try await repo.sessionCloseRequests(two) == [3, 7])
        try await repo.removeSessionCloseRequests(two, tsihs: [7])
        #expect(try await repo.sessionCloseRequests(two) == [3])
        #expect(try await repo.sessionCloseRequests(one) == [9], "another node's requests are its own")
        try await repo.removeSessionCloseRequests(two, tsihs: [])
        #expect(try await repo.sessionCloseRequests(two) == [3])
        await client.close()
    }
}

/// The LUN mask rows, against a real dqlite node.
struct LUNMaskTablesTests {
    @Test(.timeLimit(.minutes(1)))
    func masksAreAddedOnceAndRemovedPerInitiator() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await Migrator.migrate(client)
        let repo = StoreRepository(client)
        try await repo.upsertTarget(TargetRecord(iqn: "iqn.t:a", alias: nil))
        try await repo.maskLUN(1, of: "iqn.t:a", to: "iqn.h:2")
        try await repo.maskLUN(1, of: "iqn.t:a", to: "iqn.h:1")
        try await repo.maskLUN(1, of: "iqn.t:a", to: "iqn.h:1")
        try await repo.maskLUN(0, of: "iqn.t:a", to: "iqn.h:1")
        #expect(try await repo.lunMasks(target: "iqn.t:a") == [0: ["iqn.h:1"], 1: ["iqn.h:1", "iqn.h:2"]])
        #expect(try await repo.unmaskLUN(1, of: "iqn.t:a", from: "iqn.h:2"))
        #expect(try await repo.unmaskLUN(1, of: "iqn.t:a", from: "iqn.h:2") == false)
        #expect(try await repo.lunMasks(target: "iqn.t:a") == [0: ["iqn.h:1"], 1: ["iqn.h:1"]])
        #expect(try await repo.lunMasks(target: "iqn.t:other").isEmpty)
        await client.close()
    }
}

/// Old request ids are forgotten, recent ones kept.
struct AppliedRequestPruningTests {
    @Test(.timeLimit(.minutes(1)))
    func onlyIdsOlderThanTheRetentionGo() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await Migrator.migrate(client)
        let repo = StoreRepository(client)
        _ = try await client.mutate(requestID: RequestID("recent")) { _ in 1 }
        try await client.exec(
            "INSERT INTO applied_requests(id, applied_at) VALUES ('old', CAST(strftime('%s','now') AS INTEGER) - 90000)")
        #expect(try await repo.pruneAppliedRequests(olderThan: 86_400) == 1)
        let left = try await client.query("SELECT id FROM applied_requests ORDER BY id").map { try $0.string("id") }
        #expect(left == ["recent"])
        let again = try await client.mutate(requestID: RequestID("recent")) { _ in 2 }
        if case .applied = again { Issue.record("a kept id was applied again") }
        await client.close()
    }
}
