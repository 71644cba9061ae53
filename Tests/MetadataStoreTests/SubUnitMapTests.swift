import ClusterModel
import Testing

@testable import MetadataStore

/// Migration 0002_distributed_lun, member portals and the sub-unit map
/// against a real single dqlite node.
@Suite("Sub-unit map in the store", .serialized)
struct SubUnitMapTests {
    static let target = "iqn.2026-11.io.tessera:dist"
    static let key = LUNKey(targetIQN: target, lun: 0)
    static let blockSize: UInt32 = 512
    static let subUnitBytes: UInt64 = 1 << 20
    /// Two whole sub-units of 2048 blocks and a short one of 100.
    static let blockCount: UInt64 = 2 * 2048 + 100

    /// Three sub-units: mixed states, primaries that are not the lowest node
    /// id, a degraded one, and an epoch above 2^63.
    static func threeSubUnitMap(lun: LUNID = LUNID(0x8000_0000_0000_0001)) -> SubUnitMap {
        SubUnitMap(
            lun: lun,
            layout: SubUnitLayout(
                blockSize: blockSize, blockCount: blockCount, subUnitBlocks: subUnitBytes / UInt64(blockSize)),
            replicationFactor: 3,
            subUnits: [
                ReplicaSet(
                    epoch: Epoch(rawValue: 1),
                    replicas: [
                        Replica(node: NodeID(3), state: .inSync), Replica(node: NodeID(1), state: .stale),
                        Replica(node: NodeID(2), state: .resyncing),
                    ]),
                ReplicaSet(
                    epoch: Epoch(rawValue: 7),
                    replicas: [
                        Replica(node: NodeID(2), state: .inSync), Replica(node: NodeID(3), state: .inSync),
                    ]),
                ReplicaSet(
                    epoch: Epoch(rawValue: UInt64.max - 1),
                    replicas: [
                        Replica(node: NodeID(1), state: .inSync), Replica(node: NodeID(3), state: .resyncing),
                        Replica(node: NodeID(2), state: .stale),
                    ]),
            ])
    }

    static func lunRecord(_ key: LUNKey = key, blockCount: UInt64 = blockCount) -> LUNRecord {
        LUNRecord(
            key: key, sizeBytes: blockCount * UInt64(blockSize), blockSize: blockSize,
            naaID: [0x60, 1, 2, 3, 4, 5, 6, 7], serial: "SER-\(key.lun)")
    }

    /// A migrated store with the target and `luns` in it.
    static func seeded(_ client: MetadataStoreClient, luns: [LUNKey] = [key]) async throws -> StoreRepository {
        try await Migrator.migrate(client)
        let repo = StoreRepository(client)
        try await repo.upsertTarget(TargetRecord(iqn: target))
        for lun in luns { try await repo.upsertLUN(lunRecord(lun)) }
        return repo
    }

    /// Every stored row of the LUN's map, as the store returns them.
    static func rows(_ db: any SQLExecutor, _ key: LUNKey) async throws -> [[SQLRow]] {
        var all: [[SQLRow]] = []
        for (table, order) in [("lun_layouts", "lun"), ("sub_units", "idx"), ("sub_unit_replicas", "idx, rank")] {
            all.append(
                try await db.query(
                    "SELECT * FROM \(table) WHERE target_iqn = ? AND lun = ? ORDER BY \(order)", key.parameters))
        }
        return all
    }

    static func count(_ db: any SQLExecutor, _ table: String, _ key: LUNKey) async throws -> Int64 {
        try await db.query("SELECT count(*) AS c FROM \(table) WHERE target_iqn = ? AND lun = ?", key.parameters)[0]
            .int64("c")
    }

    static func columns(_ db: any SQLExecutor, _ table: String) async throws -> [String] {
        try await db.query("SELECT name FROM pragma_table_info(?) ORDER BY cid", [.text(table)]).map {
            try $0.string("name")
        }
    }

    // MARK: migration

    @Test(.timeLimit(.minutes(1)))
    func migration0002CreatesTheTablesOnAFreshStore() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        let all = ["0001_initial", "0002_distributed_lun", "0003_shared_context", "0004_fencing", "0005_sessions", "0006_lun_masks", "0007_node_changes",
            "0008_seeded_items", "0009_served_sizes"]
        #expect(try await Migrator.migrate(client) == all)
        #expect(try await Migrator.migrate(client) == [])
        #expect(try await Migrator.appliedMigrations(client) == all)
        #expect(try await Self.columns(client, "context_events") == ["target_iqn", "lun", "version", "request_id", "effects"])
        #expect(try await Self.columns(client, "node_leases") == ["node_id", "beats", "fenced"])
        #expect(try await Self.columns(client, "node_sessions") == ["node_id", "sessions", "published_at"])
        #expect(try await Self.columns(client, "session_close_requests") == ["node_id", "tsih", "requested_at"])
        #expect(try await Self.columns(client, "lun_masks") == ["target_iqn", "lun", "initiator_iqn"])
        #expect(try await Self.columns(client, "seeded_items") == ["item", "digest", "node_id", "seeded_at"])
        #expect(try await Self.columns(client, "node_served_luns") == ["node_id", "luns", "published_at"])
        #expect(try await Self.columns(client, "members").last == "portals")
        #expect(
            try await Self.columns(client, "lun_layouts") == [
                "target_iqn", "lun", "lun_id", "replicas", "sub_unit_bytes",
            ])
        #expect(try await Self.columns(client, "sub_units") == ["target_iqn", "lun", "idx", "epoch"])
        #expect(
            try await Self.columns(client, "sub_unit_replicas") == [
                "target_iqn", "lun", "idx", "rank", "node_id", "state",
            ])
        await client.close()
    }

    @Test(.timeLimit(.minutes(1)))
    func migration0002UpgradesAStoreMigratedTo0001() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        #expect(try await Migrator.migrate(client, migrations: [Schema.migrations[0]]) == ["0001_initial"])
        // A member registered by a binary that knew only 0001.
        try await client.exec(
            "INSERT INTO members (node_id, store_address, iscsi_portal, failure_domain) VALUES (?, ?, ?, ?)",
            [.int(2), .text("127.0.0.1:9002"), .text("127.0.0.1:3262"), .int(5)])

        #expect(
            try await Migrator.migrate(client) == [
                "0002_distributed_lun", "0003_shared_context", "0004_fencing", "0005_sessions", "0006_lun_masks", "0007_node_changes", "0008_seeded_items",
                "0009_served_sizes",
            ])
        #expect(try await Migrator.migrate(client) == [])
        #expect(
            try await Migrator.appliedMigrations(client) == [
                "0001_initial", "0002_distributed_lun", "0003_shared_context", "0004_fencing", "0005_sessions", "0006_lun_masks", "0007_node_changes", "0008_seeded_items",
                "0009_served_sizes",
            ])
        #expect(
            try await StoreRepository(client).members() == [
                MemberRecord(
                    nodeID: NodeID(2), storeAddress: "127.0.0.1:9002", iscsiPortal: "127.0.0.1:3262", failureDomain: 5,
                    portals: [])
            ])
        await client.close()
    }

    // MARK: members

    @Test(.timeLimit(.minutes(1)))
    func memberPortalsRoundTrip() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        try await Migrator.migrate(client)
        let repo = StoreRepository(client)
        let one = MemberRecord(
            nodeID: NodeID(1), storeAddress: "127.0.0.1:9001", peerAddress: "127.0.0.1:7001",
            iscsiPortal: "127.0.0.1:3260",
            portals: ["127.0.0.1:3260,1", "[::1]:3260,1", "10.0.0.1:3261,1"])
        let two = MemberRecord(nodeID: NodeID(2), storeAddress: "127.0.0.1:9002", portals: ["127.0.0.2:3260,2"])
        try await repo.upsertMember(one)
        try await repo.upsertMember(two)
        #expect(try await repo.members() == [one, two])
        // The stored form is the SendTargets values, space-separated.
        #expect(
            try await client.query("SELECT portals FROM members WHERE node_id = 1")[0].string("portals")
                == "127.0.0.1:3260,1 [::1]:3260,1 10.0.0.1:3261,1")

        var fewer = one
        fewer.portals = []
        try await repo.upsertMember(fewer)
        #expect(try await repo.members() == [fewer, two])
        #expect(try await client.query("SELECT portals FROM members WHERE node_id = 1")[0].string("portals") == "")
        await client.close()
    }

    // MARK: the map

    @Test(.timeLimit(.minutes(1)))
    func threeSubUnitMapRoundTripsExactly() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        let repo = try await Self.seeded(client)
        let map = Self.threeSubUnitMap()
        #expect(map.layout.subUnitCount == 3)

        try await client.transaction { tx in
            let repo = StoreRepository(tx)
            #expect(try await repo.layout(Self.key) == nil)
            try await repo.createSubUnitMap(Self.key, map, subUnitBytes: Self.subUnitBytes)
        }
        #expect(try await repo.subUnitMap(Self.key) == map)
        #expect(
            try await repo.layout(Self.key)
                == LUNLayoutRecord(lunID: map.lun, replicationFactor: 3, subUnitBytes: Self.subUnitBytes))
        let replicas = try await client.query(
            "SELECT idx, rank, node_id, state FROM sub_unit_replicas WHERE target_iqn = ? AND lun = ? ORDER BY idx, rank",
            Self.key.parameters
        ).map { "\(try $0.int64("idx"))/\(try $0.int64("rank")):\(try $0.int64("node_id")):\(try $0.string("state"))" }
        #expect(
            replicas == [
                "0/0:3:in-sync", "0/1:1:stale", "0/2:2:resyncing", "1/0:2:in-sync", "1/1:3:in-sync", "2/0:1:in-sync",
                "2/1:3:resyncing", "2/2:2:stale",
            ])

        // A second map for the same LUN is refused and the first stays.
        let before = try await Self.rows(client, Self.key)
        let refused = await #expect(throws: MetadataStoreError.self) {
            try await repo.createSubUnitMap(
                Self.key, Self.threeSubUnitMap(lun: LUNID(9)), subUnitBytes: Self.subUnitBytes)
        }
        #expect(refused?.isConstraintViolation == true)
        #expect(try await Self.rows(client, Self.key) == before)
        #expect(try await repo.subUnitMap(Self.key) == map)
        await client.close()
    }

    /// lun_id is a UInt64 in an SQLite INTEGER: values from 2^63 are stored
    /// bit-cast (negative) and must come back as themselves.
    @Test(
        .timeLimit(.minutes(1)),
        arguments: [0, 1, UInt64(Int64.max), UInt64(1) << 63, 0xFEDC_BA98_7654_3210, UInt64.max])
    func lunIDRoundTrips(_ raw: UInt64) async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        let repo = try await Self.seeded(client)
        let map = Self.threeSubUnitMap(lun: LUNID(raw))
        try await repo.createSubUnitMap(Self.key, map, subUnitBytes: Self.subUnitBytes)
        #expect(try await repo.layout(Self.key)?.lunID == LUNID(raw))
        #expect(try await repo.subUnitMap(Self.key) == map)
        let stored = try await client.query(
            "SELECT lun_id FROM lun_layouts WHERE target_iqn = ? AND lun = ?", Self.key.parameters)[0]
        #expect(stored["lun_id"] == .integer(Int64(bitPattern: raw)))
        await client.close()
    }

    /// More replica rows than one statement's 255 parameters hold: the
    /// inserts are split and the map still reads back whole.
    @Test(.timeLimit(.minutes(1)))
    func largeMapRoundTrips() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        let repo = try await Self.seeded(client, luns: [])
        let key = LUNKey(targetIQN: Self.target, lun: 5)
        let subUnits: UInt64 = 300
        try await repo.upsertLUN(Self.lunRecord(key, blockCount: subUnits * 2048))
        let states = ReplicaState.allCases
        let map = SubUnitMap(
            lun: LUNID(42),
            layout: SubUnitLayout(blockSize: Self.blockSize, blockCount: subUnits * 2048, subUnitBlocks: 2048),
            replicationFactor: 3,
            subUnits: (0..<subUnits).map { i in
                ReplicaSet(
                    epoch: Epoch(rawValue: i + 1),
                    replicas: (0..<3).map { r in
                        Replica(node: NodeID((i + UInt64(r)) % 5 + 1), state: states[(Int(i) + r) % states.count])
                    })
            })
        try await repo.createSubUnitMap(key, map, subUnitBytes: Self.subUnitBytes)
        #expect(try await Self.count(client, "sub_units", key) == 300)
        #expect(try await Self.count(client, "sub_unit_replicas", key) == 900)
        #expect(try await repo.subUnitMap(key) == map)
        await client.close()
    }

    @Test(.timeLimit(.minutes(1)))
    func lunWithoutLayoutHasNoMap() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        let repo = try await Self.seeded(client)
        #expect(try await repo.lun(Self.key) != nil)
        #expect(try await repo.layout(Self.key) == nil)
        #expect(try await repo.subUnitMap(Self.key) == nil)
        // No LUN at all: no map either.
        #expect(try await repo.subUnitMap(LUNKey(targetIQN: Self.target, lun: 77)) == nil)
        await client.close()
    }

    @Test(.timeLimit(.minutes(1)))
    func createRefusesAMapThatDoesNotFitTheLUN() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        let repo = try await Self.seeded(client)
        // No such LUN.
        await #expect(throws: MetadataStoreError.self) {
            try await repo.createSubUnitMap(
                LUNKey(targetIQN: Self.target, lun: 9), Self.threeSubUnitMap(), subUnitBytes: Self.subUnitBytes)
        }
        // subUnitBytes is not the layout's sub-unit size.
        await #expect(throws: MetadataStoreError.self) {
            try await repo.createSubUnitMap(Self.key, Self.threeSubUnitMap(), subUnitBytes: 2 * Self.subUnitBytes)
        }
        // Two replica sets for three sub-units.
        var short = Self.threeSubUnitMap()
        short.subUnits.removeLast()
        await #expect(throws: MetadataStoreError.self) {
            try await repo.createSubUnitMap(Self.key, short, subUnitBytes: Self.subUnitBytes)
        }
        // The LUN is one block longer than the map.
        try await repo.upsertLUN(Self.lunRecord(blockCount: Self.blockCount + 1))
        await #expect(throws: MetadataStoreError.self) {
            try await repo.createSubUnitMap(Self.key, Self.threeSubUnitMap(), subUnitBytes: Self.subUnitBytes)
        }
        #expect(try await Self.rows(client, Self.key) == [[], [], []])
        await client.close()
    }

    // MARK: compare-and-set

    @Test(.timeLimit(.minutes(1)))
    func replaceReplicaSetIsACompareAndSetOnTheEpoch() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        let repo = try await Self.seeded(client)
        var map = Self.threeSubUnitMap()
        try await repo.createSubUnitMap(Self.key, map, subUnitBytes: Self.subUnitBytes)

        // Sub-unit 1 (epoch 7): its secondary missed a write, and a third replica joins to resync.
        let marked = ReplicaSet(
            epoch: Epoch(rawValue: 8),
            replicas: [
                Replica(node: NodeID(2), state: .inSync), Replica(node: NodeID(3), state: .stale),
                Replica(node: NodeID(1), state: .resyncing),
            ])
        #expect(try await repo.replaceReplicaSet(Self.key, index: 1, expecting: Epoch(rawValue: 7), with: marked))
        map.subUnits[1] = marked
        #expect(try await repo.subUnitMap(Self.key) == map)

        // Promotion inside a transaction: the secondary of sub-unit 0 becomes primary, fewer replicas.
        let promoted = ReplicaSet(epoch: Epoch(rawValue: 2), replicas: [Replica(node: NodeID(2), state: .inSync)])
        #expect(
            try await client.transaction { tx in
                try await StoreRepository(tx).replaceReplicaSet(
                    Self.key, index: 0, expecting: Epoch(rawValue: 1), with: promoted)
            })
        map.subUnits[0] = promoted
        #expect(try await repo.subUnitMap(Self.key) == map)

        // A stale expectation (the old epoch, or one that was never stored), and
        // an index the LUN does not have: false, and not one byte changes.
        let before = try await Self.rows(client, Self.key)
        let other = ReplicaSet(epoch: Epoch(rawValue: 100), replicas: [Replica(node: NodeID(9), state: .inSync)])
        #expect(
            try await repo.replaceReplicaSet(Self.key, index: 1, expecting: Epoch(rawValue: 7), with: other) == false)
        #expect(
            try await repo.replaceReplicaSet(Self.key, index: 1, expecting: Epoch(rawValue: 9), with: other) == false)
        #expect(
            try await repo.replaceReplicaSet(Self.key, index: 3, expecting: Epoch(rawValue: 1), with: other) == false)
        #expect(
            try await client.transaction { tx in
                try await StoreRepository(tx).replaceReplicaSet(
                    Self.key, index: 2, expecting: Epoch(rawValue: 1), with: other)
            } == false)
        #expect(try await Self.rows(client, Self.key) == before)
        #expect(try await repo.subUnitMap(Self.key) == map)

        // A transaction that wins the compare-and-set but rolls back leaves nothing behind.
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await client.transaction { tx in
                #expect(
                    try await StoreRepository(tx).replaceReplicaSet(
                        Self.key, index: 1, expecting: Epoch(rawValue: 8), with: other))
                throw Abort()
            }
        }
        #expect(try await Self.rows(client, Self.key) == before)
        await client.close()
    }

    // MARK: deletion

    /// With dqlite's foreign keys on, the cascades alone would do; with them
    /// off, the explicit deletes still remove everything.
    @Test(.timeLimit(.minutes(1)), arguments: [true, false])
    func deletingTheLUNOrTargetRemovesItsMap(foreignKeys: Bool) async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        let other = LUNKey(targetIQN: Self.target, lun: 1)
        let repo = try await Self.seeded(client, luns: [Self.key, other])
        if !foreignKeys { try await client.exec("PRAGMA foreign_keys = OFF") }
        #expect(try await client.query("PRAGMA foreign_keys")[0].values == [.integer(foreignKeys ? 1 : 0)])
        try await repo.createSubUnitMap(Self.key, Self.threeSubUnitMap(), subUnitBytes: Self.subUnitBytes)
        try await repo.createSubUnitMap(other, Self.threeSubUnitMap(lun: LUNID(2)), subUnitBytes: Self.subUnitBytes)

        try await repo.deleteLUN(Self.key)
        #expect(try await repo.layout(Self.key) == nil)
        #expect(try await repo.subUnitMap(Self.key) == nil)
        for table in ["lun_layouts", "sub_units", "sub_unit_replicas"] {
            #expect(try await Self.count(client, table, Self.key) == 0, "\(table)")
        }
        #expect(try await repo.subUnitMap(other) == Self.threeSubUnitMap(lun: LUNID(2)))

        // The LUN can be created again with a new map.
        try await repo.upsertLUN(Self.lunRecord())
        try await repo.createSubUnitMap(Self.key, Self.threeSubUnitMap(lun: LUNID(3)), subUnitBytes: Self.subUnitBytes)
        #expect(try await repo.subUnitMap(Self.key)?.lun == LUNID(3))

        try await repo.deleteTarget(Self.target)
        for key in [Self.key, other] {
            #expect(try await Self.rows(client, key) == [[], [], []])
        }
        await client.close()
    }

    // MARK: inconsistent rows

    /// Rows that do not make a whole map are a decoding error, never a
    /// partial map or a trap.
    @Test(
        .timeLimit(.minutes(1)),
        arguments: [
            ("a sub-unit without replicas", "DELETE FROM sub_unit_replicas WHERE idx = 1"),
            ("a missing index", "DELETE FROM sub_unit_replicas WHERE idx = 1; DELETE FROM sub_units WHERE idx = 1"),
            (
                "a missing last index",
                "DELETE FROM sub_unit_replicas WHERE idx = 2; DELETE FROM sub_units WHERE idx = 2"
            ),
            ("a missing rank", "DELETE FROM sub_unit_replicas WHERE idx = 0 AND rank = 1"),
            ("no primary", "DELETE FROM sub_unit_replicas WHERE idx = 2 AND rank = 0"),
            (
                "an extra sub-unit",
                "INSERT INTO sub_units VALUES ('\(target)', 0, 3, 1); INSERT INTO sub_unit_replicas VALUES ('\(target)', 0, 3, 0, 1, 'in-sync')"
            ),
            ("a capacity the map does not cover", "UPDATE luns SET size_bytes = size_bytes + 3 * 1048576"),
            ("a sub-unit size that is not whole blocks", "UPDATE lun_layouts SET sub_unit_bytes = 1000"),
            ("a zero sub-unit size", "UPDATE lun_layouts SET sub_unit_bytes = 0"),
        ])
    func inconsistentRowsAreADecodingError(_ what: String, _ corruption: String) async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        let repo = try await Self.seeded(client)
        try await repo.createSubUnitMap(Self.key, Self.threeSubUnitMap(), subUnitBytes: Self.subUnitBytes)
        for statement in corruption.split(separator: ";") { try await client.exec(String(statement)) }
        let error = await #expect(throws: MetadataStoreError.self, "\(what)") { try await repo.subUnitMap(Self.key) }
        guard case .decoding? = error?.code else {
            Issue.record("\(what): \(String(describing: error))")
            return
        }
        await client.close()
    }

    /// The CHECK constraint keeps unknown states out; should one get in anyway
    /// (constraints off), reading the map fails instead of guessing.
    @Test(.timeLimit(.minutes(1)))
    func unknownReplicaStateIsRefused() async throws {
        let cluster = try await TestCluster(size: 1)
        defer { cluster.shutdown() }
        let client = cluster.client()
        let repo = try await Self.seeded(client)
        try await repo.createSubUnitMap(Self.key, Self.threeSubUnitMap(), subUnitBytes: Self.subUnitBytes)
        let update = "UPDATE sub_unit_replicas SET state = 'promoted' WHERE idx = 1 AND rank = 0"
        let refused = await #expect(throws: MetadataStoreError.self) { try await client.exec(update) }
        #expect(refused?.isConstraintViolation == true)
        #expect(try await repo.subUnitMap(Self.key) == Self.threeSubUnitMap())

        try await client.exec("PRAGMA ignore_check_constraints = ON")
        try await client.exec(update)
        try await client.exec("PRAGMA ignore_check_constraints = OFF")
        let error = await #expect(throws: MetadataStoreError.self) { try await repo.subUnitMap(Self.key) }
        guard case .decoding(let what)? = error?.code else {
            Issue.record("not a decoding error: \(String(describing: error))")
            return
        }
        #expect(what.contains("promoted"))
        await client.close()
    }
}
