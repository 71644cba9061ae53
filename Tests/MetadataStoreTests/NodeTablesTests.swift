import ClusterModel
import Testing

@testable import MetadataStore

/// Drains, replica moves and removed members, against a real dqlite node.
struct NodeTablesTests {
    @Test(.timeLimit(.minutes(1)))
    func drainsMovesAndTombstones() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await Migrator.migrate(client)
        let repo = StoreRepository(client)
        let key = LUNKey(targetIQN: "iqn.t:a", lun: 0)
        let three = NodeID(3)
        for id in 1...3 {
            try await repo.upsertMember(
                MemberRecord(nodeID: NodeID(UInt64(id)), storeAddress: "127.0.0.1:900\(id)", iscsiPortal: nil))
        }

        try await repo.startDrain(three, planned: 4)
        try await repo.startDrain(three, planned: 0)
        #expect(try await repo.drains()[three]?.planned == 4, "asking again keeps the count")
        let moves = [
            StoreRepository.StoredMove(key: key, move: ReplicaMove(index: 0, from: three, to: NodeID(1))),
            StoreRepository.StoredMove(key: key, move: ReplicaMove(index: 2, from: three, to: NodeID(2))),
            StoreRepository.StoredMove(key: key, move: ReplicaMove(index: 1, from: NodeID(1), to: NodeID(2))),
        ]
        try await repo.planMoves(moves)
        try await repo.planMoves([StoreRepository.StoredMove(key: key, move: ReplicaMove(index: 0, from: three, to: NodeID(2)))])
        #expect(try await repo.replicaMoves() == [moves[0], moves[2], moves[1]], "a sub-unit's move off a node keeps the first plan")
        try await repo.finishMove(moves[2])
        #expect(try await repo.replicaMoves() == [moves[0], moves[1]])

        // A large drain: more moves than one statement's parameters hold.
        let many = (UInt32(100)..<UInt32(220)).map {
            StoreRepository.StoredMove(key: key, move: ReplicaMove(index: $0, from: three, to: NodeID(1)))
        }
        try await repo.planMoves(many)
        #expect(try await repo.replicaMoves().count == 2 + many.count)

        try await repo.endDrain(three)
        #expect(try await repo.drains().isEmpty)
        #expect(try await repo.replicaMoves().isEmpty, "the moves off it go with the drain")

        try await repo.planMoves([moves[2]])
        try await repo.publishSessions(three, json: "[]")
        try await repo.removeMember(three)
        #expect(try await repo.members().map(\.nodeID) == [NodeID(1), NodeID(2)])
        #expect(try await repo.removedMembers()[three] ?? 0 > 1_700_000_000)
        #expect(try await repo.publishedSessions().isEmpty)
        #expect(try await repo.replicaMoves() == [moves[2]], "moves between other nodes stay")
        try await repo.removeMember(three)
        #expect(try await repo.removedMembers().count == 1, "removing again is harmless")
        await client.close()
    }
}

/// Published resyncs, against a real dqlite node.
struct ResyncTablesTests {
    @Test(.timeLimit(.minutes(1)))
    func aNodesPublishedResyncsReplaceTheLastAndLeaveWithIt() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await Migrator.migrate(client)
        let repo = StoreRepository(client)
        try await repo.publishResyncs(NodeID(2), json: "[1]")
        try await repo.publishResyncs(NodeID(2), json: "[2]")
        try await repo.publishResyncs(NodeID(1), json: "[]")
        let published = try await repo.publishedResyncs()
        #expect(published.map(\.node) == [NodeID(1), NodeID(2)] && published.map(\.json) == ["[]", "[2]"])
        #expect(published.allSatisfy { $0.publishedAt > 1_700_000_000 })
        try await repo.removeMember(NodeID(2))
        #expect(try await repo.publishedResyncs().map(\.node) == [NodeID(1)])
        await client.close()
    }
}
