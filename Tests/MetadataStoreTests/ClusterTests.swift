import ClusterModel
import Testing
@testable import MetadataStore

/// Several real dqlite nodes in this process.
@Suite("dqlite cluster", .serialized, .timeLimit(.minutes(2)))
struct ClusterTests {
    @Test func joinAssignsThreeVotersThenStandbyAndLeaveRemoves() async throws {
        let cluster = try await TestCluster(size: 4)
        defer { cluster.shutdown() }
        let client = cluster.client()
        let members = try await client.members().sorted { $0.id < $1.id }
        #expect(members.map(\.role) == [.voter, .voter, .voter, .standby])
        // Joining again changes nothing.
        #expect(try await client.join(id: NodeID(4), address: cluster.addresses[3]) == .standby)
        try await client.leave(id: NodeID(4))
        #expect(try await client.members().map(\.id).sorted() == [NodeID(1), NodeID(2), NodeID(3)])
        await client.close()
    }

    @Test func leaderStopFailsOverAndRetriedWriteAppliesOnce() async throws {
        let cluster = try await TestCluster(size: 3)
        defer { cluster.shutdown() }
        let client = cluster.client(retryDeadline: .seconds(5))
        try await Migrator.migrate(client)
        try await client.exec("CREATE TABLE writes (id TEXT PRIMARY KEY)")

        let requestID = RequestID("write-1")
        let first = try await client.mutate(requestID: requestID) { tx in
            try await tx.exec("INSERT INTO writes VALUES (?)", [.text("write-1")])
        }
        #expect(first.value != nil)

        let oldLeader = try await client.leader().id
        let stoppedAt = ContinuousClock.now
        await cluster.node(oldLeader)?.stop()

        // The caller did not see the answer (say) and retries: applied once.
        let retry = try await client.mutate(requestID: requestID) { tx in
            try await tx.exec("INSERT INTO writes VALUES (?)", [.text("write-1")])
        }
        let failover = ContinuousClock.now - stoppedAt
        #expect(retry.value == nil)
        #expect(try await client.leader().id != oldLeader)
        #expect(try await client.query("SELECT count(*) AS c FROM writes")[0].int64("c") == 1)
        // Writes resume on the new leader.
        _ = try await client.mutate(requestID: RequestID("write-2")) { tx in
            try await tx.exec("INSERT INTO writes VALUES (?)", [.text("write-2")])
        }
        #expect(try await client.query("SELECT id FROM writes ORDER BY id").map { try $0.string("id") } == ["write-1", "write-2"])
        #expect(failover < .seconds(5), "failover took \(failover)")

        // Two of three down: the survivor has no quorum and refuses writes.
        let secondLeader = try await client.leader().id
        await cluster.node(secondLeader)?.stop()
        let impatient = cluster.client(retryDeadline: .seconds(2))
        await #expect(throws: MetadataStoreError.self) {
            _ = try await impatient.mutate(requestID: RequestID("write-3")) { tx in
                try await tx.exec("INSERT INTO writes VALUES (?)", [.text("write-3")])
            }
        }
        await #expect(throws: MetadataStoreError.self) { try await client.heartbeat() }
        await impatient.close()
        await client.close()
    }
}

/// A writer committing as fast as it can while the leader is stopped twice:
/// every acknowledged write is present exactly once. In the serialized suite
/// above: two three-node clusters stopping leaders at once (dqlite_node_stop
/// blocks its thread) hung the whole test run on two cores.
extension ClusterTests {
    @Test func noAcknowledgedWriteLostOrDuplicatedAcrossLeaderStops() async throws {
        let cluster = try await TestCluster(size: 3)
        defer { cluster.shutdown() }
        let client = cluster.client(retryDeadline: .seconds(10))
        try await Migrator.migrate(client)
        try await client.exec("CREATE TABLE log (rid TEXT NOT NULL)")

        let writer = Task { () -> [String] in
            var acknowledged: [String] = []
            var i = 0
            while !Task.isCancelled {
                let rid = "w\(i)"
                i += 1
                do {
                    _ = try await client.mutate(requestID: RequestID(rid)) { tx in
                        try await tx.exec("INSERT INTO log (rid) VALUES (?)", [.text(rid)])
                    }
                } catch where Task.isCancelled {
                    break
                }
                acknowledged.append(rid)
            }
            return acknowledged
        }
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(300))
            let leader = try await client.leader().id
            await cluster.node(leader)?.stop()
            try await Task.sleep(for: .milliseconds(1500))
            // Bring the stopped node back so the next stop keeps a quorum.
            if let index = cluster.nodes.firstIndex(where: { $0.configuration.id == leader }) {
                let configuration = cluster.nodes[index].configuration
                cluster.nodes.remove(at: index)
                let restarted = try DqliteNode(configuration)
                try restarted.start()
                cluster.nodes.append(restarted)
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        writer.cancel()
        let acknowledged = try await writer.value
        #expect(acknowledged.count > 100)
        let rows = try await client.query("SELECT rid, count(*) AS n FROM log GROUP BY rid")
        let present = Set(try rows.map { try $0.string("rid") })
        #expect(Set(acknowledged).isSubset(of: present))
        #expect(try rows.allSatisfy { try $0.int64("n") == 1 })
        await client.close()
    }
}
