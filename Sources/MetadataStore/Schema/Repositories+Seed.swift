import ClusterModel

/// One item a node's TOML wrote into the store (migration 0008_seeded_items).
public struct SeededItemRecord: Hashable, Sendable {
    /// What was seeded: `target <iqn>`, `access <iqn>`, `lun <iqn>/<n>` (names lower case).
    public var item: String
    /// A digest of what the TOML said of it.
    public var digest: String
    /// The node whose TOML it came from.
    public var nodeID: NodeID
    /// When, in seconds since 1970.
    public var seededAt: Int64

    public init(item: String, digest: String, nodeID: NodeID, seededAt: Int64) {
        self.item = item
        self.digest = digest
        self.nodeID = nodeID
        self.seededAt = seededAt
    }
}

extension StoreRepository {
    /// Every seeded item, by item.
    public func seededItems() async throws -> [String: SeededItemRecord] {
        let rows = try await db.query("SELECT item, digest, node_id, seeded_at FROM seeded_items", [])
        var items: [String: SeededItemRecord] = [:]
        for row in rows {
            let record = SeededItemRecord(
                item: try row.string("item"), digest: try row.string("digest"),
                nodeID: NodeID(try row.uint64("node_id")),
                seededAt: try row.int64("seeded_at"))
            items[record.item] = record
        }
        return items
    }

    /// Records (or replaces) a seeded item.
    public func recordSeededItem(_ record: SeededItemRecord) async throws {
        try await db.exec(
            """
            INSERT INTO seeded_items (item, digest, node_id, seeded_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (item) DO UPDATE SET digest = excluded.digest, node_id = excluded.node_id,
            seeded_at = excluded.seeded_at
            """,
            [.text(record.item), .text(record.digest), .int(record.nodeID.rawValue), .int(record.seededAt)])
    }
}
