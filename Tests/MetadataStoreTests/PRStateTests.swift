import ClusterModel
import Testing

@testable import MetadataStore

@Suite("PR state in the store", .serialized)
struct PRStateTests {
    /// A PR change replaces the whole state and bumps context_version in the
    /// same transaction; a rolled-back transaction changes neither.
    @Test(.timeLimit(.minutes(1)))
    func replaceBumpsContextVersionTogether() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await Migrator.migrate(client)
        let repo = StoreRepository(client)
        let key = LUNKey(targetIQN: "iqn.2026-11.io.tessera:pr", lun: 3)
        try await repo.upsertTarget(TargetRecord(iqn: key.targetIQN))
        try await repo.upsertLUN(LUNRecord(key: key, sizeBytes: 1 << 20, blockSize: 512, naaID: [1], serial: "SER-PR"))
        #expect(try await repo.lunKey(serial: "SER-PR") == key)
        #expect(try await repo.lunKey(serial: "nope") == nil)

        let a = PRRegistrationRecord(initiatorPort: "iqn.a,i,0x1", targetPort: "1", reservationKey: 0xA, aptpl: true)
        let b = PRRegistrationRecord(initiatorPort: "iqn.b,i,0x2", targetPort: "*", reservationKey: 0xB, aptpl: true)
        let first = PRState(
            generation: 2, registrations: [a, b],
            reservation: PRReservationRecord(holderInitiatorPort: "iqn.a,i,0x1", holderTargetPort: "1", reservationKey: 0xA, type: 5))
        let version = try await client.transaction { tx in try await StoreRepository(tx).replacePRState(first, lun: key) }
        #expect(version == 1)
        #expect(try await repo.prState(key) == first)

        let second = PRState(generation: 3, registrations: [b])
        #expect(try await client.transaction { tx in try await StoreRepository(tx).replacePRState(second, lun: key) } == 2)
        #expect(try await repo.prState(key) == second)

        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await client.transaction { tx in
                try await StoreRepository(tx).replacePRState(first, lun: key)
                throw Abort()
            }
        }
        #expect(try await repo.prState(key) == second)
        #expect(try await repo.contextVersion(key) == 2)

        await #expect(throws: MetadataStoreError.self) {
            try await repo.replacePRState(first, lun: LUNKey(targetIQN: key.targetIQN, lun: 9))
        }
        await client.close()
    }
}
