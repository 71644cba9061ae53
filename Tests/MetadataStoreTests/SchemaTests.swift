import ClusterModel
import Testing
@testable import MetadataStore

/// Migrations and repositories against a real single node.
@Suite("Schema and repositories", .serialized)
struct SchemaTests {
    @Test func migrationsAreIdempotentAndConcurrentSafe() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let a = cluster.client()
        let b = cluster.client()
        async let first = Migrator.migrate(a)
        async let second = Migrator.migrate(b)
        let (ranA, ranB) = try await (first, second)
        #expect((ranA + ranB).sorted() == Schema.migrations.map(\.name))
        #expect(try await Migrator.migrate(a) == [])
        #expect(try await Migrator.appliedMigrations(a) == Schema.migrations.map(\.name))

        let extended = Schema.migrations + [Migration("0002_test", ["CREATE TABLE extra (x INTEGER)"])]
        #expect(try await Migrator.migrate(a, migrations: extended) == ["0002_test"])
        // A binary that does not know 0002_test refuses to run on this store.
        await #expect(throws: MigrationError.self) { try await Migrator.migrate(b) }
        await a.close()
        await b.close()
    }

    @Test func mutationWithTheSameRequestIDAppliesOnce() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await Migrator.migrate(client)
        try await client.exec("CREATE TABLE counter (n INTEGER)")
        let id = RequestID.random()
        let first = try await client.mutate(requestID: id) { tx in try await tx.exec("INSERT INTO counter VALUES (1)").rowsAffected }
        let second = try await client.mutate(requestID: id) { tx in try await tx.exec("INSERT INTO counter VALUES (1)").rowsAffected }
        #expect(first.value == 1)
        #expect(second.value == nil)
        #expect(try await client.query("SELECT count(*) AS c FROM counter")[0].int64("c") == 1)

        // A failing body rolls back everything, including the request id.
        let failing = RequestID.random()
        await #expect(throws: MetadataStoreError.self) {
            _ = try await client.mutate(requestID: failing) { tx in
                try await tx.exec("INSERT INTO counter VALUES (2)")
                try await tx.exec("INSERT INTO no_such_table VALUES (2)")
            }
        }
        #expect(try await client.query("SELECT count(*) AS c FROM counter")[0].int64("c") == 1)
        #expect(try await client.mutate(requestID: failing) { tx in try await tx.exec("INSERT INTO counter VALUES (2)") }.value != nil)
        await client.close()
    }

    @Test func repositoriesRoundTrip() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await Migrator.migrate(client)
        let repo = StoreRepository(client)
        let key = LUNKey(targetIQN: "iqn.2026-11.io.tessera:t1", lun: 0)
        let lun = LUNRecord(key: key, sizeBytes: 1 << 30, blockSize: 512, naaID: [0x60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], serial: "TSR0001", backing: "/dev/null")

        try await client.transaction { tx in
            let repo = StoreRepository(tx)
            try await repo.upsertMember(MemberRecord(nodeID: NodeID(1), storeAddress: "127.0.0.1:9001", iscsiPortal: "127.0.0.1:3260"))
            try await repo.upsertTarget(TargetRecord(iqn: key.targetIQN, alias: "t1"))
            try await repo.upsertLUN(lun)
            try await repo.allowInitiator("iqn.init:a", target: key.targetIQN)
            try await repo.allowInitiator("iqn.init:a", target: key.targetIQN)
            try await repo.upsertCHAP(CHAPRecord(targetIQN: key.targetIQN, direction: .initiator, username: "u", secret: "s3cret-s3cret"))
            try await repo.upsertPRRegistration(PRRegistrationRecord(initiatorPort: "iqn.init:a,i,0x000000000001", targetPort: "t,t,0x0001", reservationKey: 0xABCD, aptpl: true), lun: key)
            try await repo.upsertPRRegistration(PRRegistrationRecord(initiatorPort: "iqn.init:b,i,0x000000000002", targetPort: "t,t,0x0001", reservationKey: UInt64.max), lun: key)
            try await repo.setPRReservation(PRReservationRecord(holderInitiatorPort: "iqn.init:a,i,0x000000000001", holderTargetPort: "t,t,0x0001", reservationKey: 0xABCD, type: 1), lun: key)
            try await repo.setPRGeneration(UInt32.max, lun: key)
            try await repo.setSPC2Reservation(SPC2ReservationRecord(holderInitiatorPort: "i", holderTargetPort: "t"), lun: key)
            try await repo.upsertModePage(ModePageRecord(pageCode: 0x08, data: [0x08, 0x12, 0x04]), lun: key)
            try await repo.upsertALUAState(ALUAStateRecord(targetPortGroup: 1, nodeID: NodeID(1), state: 0, preferred: true))
        }

        #expect(try await repo.members() == [MemberRecord(nodeID: NodeID(1), storeAddress: "127.0.0.1:9001", iscsiPortal: "127.0.0.1:3260")])
        #expect(try await repo.targets() == [TargetRecord(iqn: key.targetIQN, alias: "t1")])
        #expect(try await repo.lun(key) == lun)
        #expect(try await repo.luns(target: key.targetIQN) == [lun])
        #expect(try await repo.allowedInitiators(target: key.targetIQN) == ["iqn.init:a"])
        #expect(try await repo.chap(target: key.targetIQN).map(\.secret) == ["s3cret-s3cret"])
        let pr = try await repo.prState(key)
        #expect(pr.generation == UInt32.max)
        #expect(pr.registrations.map(\.reservationKey) == [0xABCD, UInt64.max])
        #expect(pr.registrations.first?.aptpl == true)
        #expect(pr.reservation?.type == 1)
        #expect(try await repo.spc2Reservation(key)?.holderInitiatorPort == "i")
        #expect(try await repo.modePages(key) == [ModePageRecord(pageCode: 8, data: [8, 0x12, 4])])
        #expect(try await repo.aluaStates() == [ALUAStateRecord(targetPortGroup: 1, nodeID: NodeID(1), state: 0, preferred: true)])

        #expect(try await client.transaction { tx in try await StoreRepository(tx).bumpContextVersion(key) } == 1)
        #expect(try await repo.bumpContextVersion(key) == 2)
        // Re-seeding the same LUN does not lower context_version.
        try await repo.upsertLUN(lun)
        #expect(try await repo.contextVersion(key) == 2)

        try await repo.setPRReservation(nil, lun: key)
        try await repo.setSPC2Reservation(nil, lun: key)
        #expect(try await repo.prState(key).reservation == nil)
        #expect(try await repo.spc2Reservation(key) == nil)
        try await repo.deleteTarget(key.targetIQN)
        #expect(try await repo.luns() == [])
        #expect(try await repo.prState(key).registrations == [])
        await client.close()
    }
}
