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

    @Test(.timeLimit(.minutes(1)))
    func movesOntoANodeGoneForGoodGoElsewhereOrAreForgotten() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await Migrator.migrate(client)
        let repo = StoreRepository(client)
        let key = LUNKey(targetIQN: "iqn.t:a", lun: 0)
        func set(_ nodes: [UInt64]) -> ReplicaSet {
            ReplicaSet(epoch: Epoch(rawValue: 3), replicas: nodes.map { Replica(node: NodeID($0), state: .inSync) })
        }
        // Node 1 is being drained: sub-unit 0's replica was going to 3,
        // sub-unit 1's to 4; 3 is gone for good. Sub-unit 2's move off 2
        // was also going to 3, but 1, 2 and 4 all hold it already.
        let map = SubUnitMap(
            lun: LUNID(9), layout: SubUnitLayout(blockSize: 512, blockCount: 3 * 64, subUnitBlocks: 64), replicationFactor: 2,
            subUnits: [set([1, 2]), set([1, 2]), set([2, 1, 4])])
        let onto3 = StoreRepository.StoredMove(key: key, move: ReplicaMove(index: 0, from: NodeID(1), to: NodeID(3)))
        let onto4 = StoreRepository.StoredMove(key: key, move: ReplicaMove(index: 1, from: NodeID(1), to: NodeID(4)))
        let full = StoreRepository.StoredMove(key: key, move: ReplicaMove(index: 2, from: NodeID(2), to: NodeID(3)))
        try await repo.planMoves([onto3, onto4, full])
        let outcome = try await repo.retargetMoves(
            onto: [NodeID(3)], maps: [key: map], candidates: [NodeID(2), NodeID(3), NodeID(4)])
        #expect(outcome.retargeted == 1 && outcome.forgotten == 1)
        #expect(
            try await repo.replicaMoves() == [
                StoreRepository.StoredMove(key: key, move: ReplicaMove(index: 0, from: NodeID(1), to: NodeID(4))), onto4,
            ], "sub-unit 0 goes to 4 (2 holds it), sub-unit 2 has nowhere to go")
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
