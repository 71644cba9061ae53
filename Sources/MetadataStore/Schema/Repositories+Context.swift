import ClusterModel

/// The effects recorded with one context version.
public struct ContextEventRecord: Hashable, Sendable {
    public var version: UInt64
    public var requestID: String
    public var effects: [UInt8]

    public init(version: UInt64, requestID: String, effects: [UInt8]) {
        self.version = version
        self.requestID = requestID
        self.effects = effects
    }
}

extension StoreRepository {
    /// Records the effects of the change that made `version`.
    public func recordContextEvent(_ event: ContextEventRecord, lun key: LUNKey) async throws {
        try await db.exec(
            "INSERT INTO context_events (target_iqn, lun, version, request_id, effects) VALUES (?, ?, ?, ?, ?)",
            key.parameters + [.int(event.version), .text(event.requestID), .blob(event.effects)])
    }

    /// The recorded effects of the versions after `version`, oldest first.
    public func contextEvents(lun key: LUNKey, after version: UInt64) async throws -> [ContextEventRecord] {
        try await db.query(
            "SELECT version, request_id, effects FROM context_events WHERE target_iqn = ? AND lun = ? AND version > ? ORDER BY version",
            key.parameters + [.int(version)]
        ).map { row in
            ContextEventRecord(
                version: try row.uint64("version"), requestID: try row.string("request_id"), effects: try row.bytes("effects"))
        }
    }

    /// Forgets the effects of versions below `version`.
    public func trimContextEvents(lun key: LUNKey, before version: UInt64) async throws {
        try await db.exec(
            "DELETE FROM context_events WHERE target_iqn = ? AND lun = ? AND version < ?", key.parameters + [.int(version)])
    }

    /// Every LUN's context_version.
    public func contextVersions() async throws -> [LUNKey: UInt64] {
        var versions: [LUNKey: UInt64] = [:]
        for row in try await db.query("SELECT target_iqn, lun, context_version FROM luns", []) {
            versions[LUNKey(targetIQN: try row.string("target_iqn"), lun: try row.uint64("lun"))] =
                try row.uint64("context_version")
        }
        return versions
    }

    /// One lease heartbeat of `node`: a write, so it commits only through the
    /// quorum. False when the node is fenced: then it renewed nothing, and
    /// must rejoin (``unfence(_:)``) after reloading what it serves.
    public func renewLease(_ node: NodeID) async throws -> Bool {
        let renewed = try await db.exec(
            """
            INSERT INTO node_leases (node_id, beats) VALUES (?, 1)
            ON CONFLICT (node_id) DO UPDATE SET beats = beats + 1 WHERE fenced = 0
            """, [.int(node.rawValue)])
        return renewed.rowsAffected == 1
    }

    /// Every node's renewal count and fence, by node.
    public func leaseBeats() async throws -> [NodeID: MemberLiveness.Beat] {
        var beats: [NodeID: MemberLiveness.Beat] = [:]
        for row in try await db.query("SELECT node_id, beats, fenced FROM node_leases", []) {
            beats[NodeID(try row.uint64("node_id"))] = MemberLiveness.Beat(
                beats: try row.uint64("beats"), fenced: try row.int("fenced") != 0)
        }
        return beats
    }

    /// Fences `node` if it has not renewed since `beats` was read and nobody
    /// fenced it yet; true when this call fenced it. Run it in the transaction
    /// that fails the node over, so the failover and the fence commit together.
    public func fence(_ node: NodeID, atBeats beats: UInt64) async throws -> Bool {
        let updated = try await db.exec(
            "UPDATE node_leases SET fenced = 1 WHERE node_id = ? AND beats = ? AND fenced = 0",
            [.int(node.rawValue), .int(beats)])
        if updated.rowsAffected == 1 { return true }
        // A node that never renewed has no row: fence it with one.
        guard beats == 0 else { return false }
        let inserted = try await db.exec(
            "INSERT INTO node_leases (node_id, beats, fenced) VALUES (?, 0, 1) ON CONFLICT (node_id) DO NOTHING",
            [.int(node.rawValue)])
        return inserted.rowsAffected == 1
    }

    /// Clears `node`'s fence and counts a renewal (a rejoin).
    public func unfence(_ node: NodeID) async throws {
        try await db.exec(
            "UPDATE node_leases SET fenced = 0, beats = beats + 1 WHERE node_id = ?", [.int(node.rawValue)])
    }
}
