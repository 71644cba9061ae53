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

    /// One lease heartbeat of `node`: a write, so it commits only through the quorum.
    public func renewLease(_ node: NodeID) async throws {
        try await db.exec(
            "INSERT INTO node_leases (node_id, beats) VALUES (?, 1) ON CONFLICT (node_id) DO UPDATE SET beats = beats + 1",
            [.int(node.rawValue)])
    }
}
