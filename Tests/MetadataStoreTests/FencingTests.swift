import ClusterModel
import Testing

@testable import MetadataStore

/// The lease renewals and the fence that failover writes, against a real dqlite node.
struct FencingTests {
    @Test(.timeLimit(.minutes(1)))
    func aFencedNodeRenewsNothingUntilItRejoins() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await Migrator.migrate(client)
        let repo = StoreRepository(client)
        let one = NodeID(1)
        let two = NodeID(2)

        #expect(try await repo.renewLease(one))
        #expect(try await repo.renewLease(one))
        #expect(try await repo.leaseBeats()[one] == MemberLiveness.Beat(beats: 2, fenced: false))

        // Only at the count that was read: a renewal in between wins over the fence.
        #expect(try await repo.fence(one, atBeats: 1) == false)
        #expect(try await repo.fence(one, atBeats: 2))
        #expect(try await repo.fence(one, atBeats: 2) == false, "fenced once")
        #expect(try await repo.renewLease(one) == false)
        #expect(try await repo.leaseBeats()[one] == MemberLiveness.Beat(beats: 2, fenced: true))

        try await repo.unfence(one)
        #expect(try await repo.leaseBeats()[one] == MemberLiveness.Beat(beats: 3, fenced: false))
        #expect(try await repo.renewLease(one))

        // A member that never renewed is fenced at count 0 with a row of its own.
        #expect(try await repo.fence(two, atBeats: 0))
        #expect(try await repo.renewLease(two) == false)
        #expect(try await repo.leaseBeats()[two] == MemberLiveness.Beat(beats: 0, fenced: true))
    }
}
