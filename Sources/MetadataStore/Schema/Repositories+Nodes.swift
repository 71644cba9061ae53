import ClusterModel

/// Node drain, add and removal: `member_drains`, `replica_moves` and
/// `removed_members` (migration 0007_node_changes).
extension StoreRepository {
    /// One planned move of a LUN's replica.
    public struct StoredMove: Hashable, Sendable {
        public var key: LUNKey
        public var move: ReplicaMove

        public init(key: LUNKey, move: ReplicaMove) {
            self.key = key
            self.move = move
        }
    }

    /// One member being drained: when it was asked, and how many moves were planned then.
    public struct DrainRecord: Hashable, Sendable {
        public var node: NodeID
        /// Seconds since 1970 (the store's clock).
        public var requestedAt: UInt64
        public var planned: Int

        public init(node: NodeID, requestedAt: UInt64, planned: Int) {
            self.node = node
            self.requestedAt = requestedAt
            self.planned = planned
        }
    }

    /// Every member being drained, by node.
    public func drains() async throws -> [NodeID: DrainRecord] {
        var drains: [NodeID: DrainRecord] = [:]
        for row in try await db.query("SELECT node_id, requested_at, planned FROM member_drains", []) {
            let node = NodeID(try row.uint64("node_id"))
            drains[node] = DrainRecord(node: node, requestedAt: try row.uint64("requested_at"), planned: try row.int("planned"))
        }
        return drains
    }

    /// Marks `node` as drained-to-be, with `planned` moves (kept when it already was).
    public func startDrain(_ node: NodeID, planned: Int) async throws {
        try await db.exec(
            """
            INSERT INTO member_drains (node_id, requested_at, planned) VALUES (?, strftime('%s','now'), ?)
            ON CONFLICT (node_id) DO UPDATE SET planned = member_drains.planned + excluded.planned
            """,
            [.int(node.rawValue), .int(planned)])
    }

    /// Ends `node`'s drain (it takes replicas again) and forgets every move off it
    /// (plan again those that have begun, in the same transaction).
    public func endDrain(_ node: NodeID) async throws {
        try await db.exec("DELETE FROM member_drains WHERE node_id = ?", [.int(node.rawValue)])
        try await db.exec("DELETE FROM replica_moves WHERE from_node = ?", [.int(node.rawValue)])
    }

    /// Every planned move, by LUN, sub-unit and mover.
    public func replicaMoves() async throws -> [StoredMove] {
        try await db.query(
            "SELECT target_iqn, lun, idx, from_node, to_node FROM replica_moves ORDER BY target_iqn, lun, idx, from_node", []
        ).map { row in
            StoredMove(
                key: LUNKey(targetIQN: try row.string("target_iqn"), lun: try row.uint64("lun")),
                move: ReplicaMove(
                    index: UInt32(truncatingIfNeeded: try row.uint64("idx")), from: NodeID(try row.uint64("from_node")),
                    to: NodeID(try row.uint64("to_node"))))
        }
    }

    /// Plans `moves` (a sub-unit's move off a node that has one already
    /// keeps the old one), as multi-row INSERTs: a large drain is a few
    /// statements, not one per sub-unit, so the store's write lock is held
    /// for few round trips (the members' lease renewals wait behind it).
    public func planMoves(_ moves: [StoredMove]) async throws {
        let perStatement = Int(UInt8.max) / 5
        var start = 0
        while start < moves.count {
            let chunk = moves[start..<min(moves.count, start + perStatement)]
            var parameters: [DqliteValue] = []
            var tuples: [String] = []
            for stored in chunk {
                tuples.append("(?, ?, ?, ?, ?, strftime('%s','now'))")
                parameters += stored.key.parameters
                parameters += [.int(stored.move.index), .int(stored.move.from.rawValue), .int(stored.move.to.rawValue)]
            }
            try await db.exec(
                "INSERT INTO replica_moves (target_iqn, lun, idx, from_node, to_node, planned_at) VALUES "
                    + tuples.joined(separator: ", ") + " ON CONFLICT DO NOTHING",
                parameters)
            start += chunk.count
        }
    }

    /// Forgets one move (carried out, or left with nothing to act on).
    public func finishMove(_ stored: StoredMove) async throws {
        try await db.exec("DELETE FROM replica_moves WHERE \(Self.oneMove)", Self.parameters(of: stored))
    }

    /// Sends a planned move to another node.
    public func retargetMove(_ stored: StoredMove, to node: NodeID) async throws {
        try await db.exec(
            "UPDATE replica_moves SET to_node = ? WHERE \(Self.oneMove)", [.int(node.rawValue)] + Self.parameters(of: stored))
    }

    /// The row of one planned move, bound by ``parameters(of:)``.
    private static let oneMove = "target_iqn = ? AND lun = ? AND idx = ? AND from_node = ? AND to_node = ?"

    private static func parameters(of stored: StoredMove) -> [DqliteValue] {
        stored.key.parameters + [.int(stored.move.index), .int(stored.move.from.rawValue), .int(stored.move.to.rawValue)]
    }

    /// The members removed for good, with when (seconds since 1970).
    public func removedMembers() async throws -> [NodeID: UInt64] {
        var removed: [NodeID: UInt64] = [:]
        for row in try await db.query("SELECT node_id, removed_at FROM removed_members", []) {
            removed[NodeID(try row.uint64("node_id"))] = try row.uint64("removed_at")
        }
        return removed
    }

    /// Removes `node` from the cluster's tables for good and leaves a
    /// tombstone, so the same id cannot register again. The caller has
    /// checked that the node holds no replica.
    public func removeMember(_ node: NodeID) async throws {
        let id: [DqliteValue] = [.int(node.rawValue)]
        for table in ["members", "node_leases", "node_sessions", "session_close_requests", "member_drains", "node_resyncs", "node_served_luns"] {
            try await db.exec("DELETE FROM \(table) WHERE node_id = ?", id)
        }
        try await db.exec("DELETE FROM replica_moves WHERE from_node = ?1 OR to_node = ?1", id)
        try await db.exec(
            "INSERT INTO removed_members (node_id, removed_at) VALUES (?, strftime('%s','now')) ON CONFLICT DO NOTHING", id)
    }

    /// Replaces `node`'s published resyncs (JSON, the admin API's shape).
    public func publishResyncs(_ node: NodeID, json: String) async throws {
        try await db.exec(
            """
            INSERT INTO node_resyncs (node_id, resyncs, published_at) VALUES (?, ?, strftime('%s','now'))
            ON CONFLICT (node_id) DO UPDATE SET resyncs = excluded.resyncs, published_at = excluded.published_at
            """, [.int(node.rawValue), .text(json)])
    }

    /// Every node's published resyncs: (node, JSON, seconds since 1970 when published).
    public func publishedResyncs() async throws -> [(node: NodeID, json: String, publishedAt: UInt64)] {
        try await db.query("SELECT node_id, resyncs, published_at FROM node_resyncs ORDER BY node_id", []).map { row in
            (NodeID(try row.uint64("node_id")), try row.string("resyncs"), try row.uint64("published_at"))
        }
    }

    /// Replaces `node`'s published served sizes (JSON: "<target>/<lun>" to bytes).
    public func publishServedLUNs(_ node: NodeID, json: String) async throws {
        try await db.exec(
            """
            INSERT INTO node_served_luns (node_id, luns, published_at) VALUES (?, ?, strftime('%s','now'))
            ON CONFLICT (node_id) DO UPDATE SET luns = excluded.luns, published_at = excluded.published_at
            """, [.int(node.rawValue), .text(json)])
    }

    /// Every node's published served sizes: (node, JSON).
    public func servedLUNs() async throws -> [(node: NodeID, json: String)] {
        try await db.query("SELECT node_id, luns FROM node_served_luns ORDER BY node_id", []).map { row in
            (NodeID(try row.uint64("node_id")), try row.string("luns"))
        }
    }

    /// Sends every planned move onto a member of `gone` (gone for good:
    /// repaired away after `replace_after`, or removed) to another of
    /// `candidates` (``MovePlan/retarget(_:in:candidates:load:)``), or
    /// forgets it when none can take it or it is over. Without this a drain
    /// whose copy was going to a node that then died would wait forever.
    /// `maps` are every distributed LUN's maps as this transaction left them.
    /// Returns how many moves went elsewhere and how many were forgotten.
    public func retargetMoves(onto gone: Set<NodeID>, maps: [LUNKey: SubUnitMap], candidates: Set<NodeID>) async throws
        -> (retargeted: Int, forgotten: Int)
    {
        let moves = try await replicaMoves()
        let stuck = moves.filter { gone.contains($0.move.to) }
        guard !stuck.isEmpty else { return (0, 0) }
        var load = MovePlan.load(Array(maps.values), moves: moves.map(\.move))
        var (retargeted, forgotten) = (0, 0)
        for stored in stuck {
            let index = Int(stored.move.index)
            if let map = maps[stored.key], index < map.subUnits.count,
                let moved = MovePlan.retarget(
                    stored.move, in: map.subUnits[index], candidates: candidates.subtracting(gone), load: &load)
            {
                try await retargetMove(stored, to: moved.to)
                retargeted += 1
            } else {
                try await finishMove(stored)
                forgotten += 1
            }
        }
        return (retargeted, forgotten)
    }
}
