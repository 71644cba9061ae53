import ClusterModel
import Testing
@testable import MetadataStore

/// Against real in-process dqlite nodes.
@Suite("Real dqlite node", .serialized)
struct RealNodeTests {
    @Test func singleNodeExecQueryRoundTrip() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await client.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB, f REAL, n TEXT)")
        let result = try await client.exec(
            "INSERT INTO t (name, data, f, n) VALUES (?, ?, ?, ?)", [.text("héllo"), .blob([1, 2, 3]), .float(1.5), .null])
        #expect(result.rowsAffected == 1)
        #expect(result.lastInsertID == 1)
        let rows = try await client.query("SELECT id, name, data, f, n FROM t WHERE id = ?", [.integer(1)])
        #expect(rows.count == 1)
        #expect(try rows[0].int64("id") == 1)
        #expect(try rows[0].string("name") == "héllo")
        #expect(try rows[0].bytes("data") == [1, 2, 3])
        #expect(rows[0]["f"] == .float(1.5))
        #expect(try rows[0].optionalString("n") == nil)
        let leader = try await client.leader()
        #expect(leader.id == NodeID(1))
        let members = try await client.members()
        #expect(members == [ClusterMember(id: NodeID(1), address: cluster.addresses[0].description, role: .voter)])
        await client.close()
    }

    @Test func sqlErrorIsTypedAndNotRetried() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await client.exec("CREATE TABLE u (id INTEGER PRIMARY KEY)")
        try await client.exec("INSERT INTO u VALUES (1)")
        await #expect(throws: MetadataStoreError.self) { try await client.exec("INSERT INTO u VALUES (1)") }
        do {
            try await client.exec("INSERT INTO u VALUES (1)")
        } catch let error as MetadataStoreError {
            #expect(error.isConstraintViolation)
        }
        await client.close()
    }

    @Test func multiPartQueryReturnsEveryRow() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await client.exec("CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT)")
        let payload = String(repeating: "x", count: 200)
        try await client.transaction { tx in
            for i in 0..<3000 {
                try await tx.exec("INSERT INTO big VALUES (?, ?)", [.integer(Int64(i)), .text(payload)])
            }
        }
        let rows = try await client.query("SELECT id, payload FROM big ORDER BY id")
        #expect(rows.count == 3000)
        #expect(try rows.map { try $0.int64("id") } == (0..<3000).map(Int64.init))
        #expect(rows.allSatisfy { (try? $0.string("payload")) == payload })
        await client.close()
    }
}
