import ClusterModel

/// Where a node reads a LUN's current sub-unit map and changes one replica
/// set: the metadata store in the daemon, an in-memory table in tests. A
/// replica that sees a newer epoch than it knows, and a sender told its
/// epoch is stale, reload from here.
public protocol SubUnitMapSource: Sendable {
    /// The LUN's map as the store holds it now; nil when it cannot be read.
    func loadMap(_ lun: LUNID) async -> SubUnitMap?

    /// Writes `set` for sub-unit `index` if its stored epoch is still
    /// `expecting` (one store transaction; the fence of ARCHITECTURE.md
    /// "The data path").
    func replaceReplicaSet(_ lun: LUNID, index: UInt32, expecting: Epoch, with set: ReplicaSet) async -> ReplicaSetUpdate
}

/// How a conditional replica-set write ended.
public enum ReplicaSetUpdate: Hashable, Sendable {
    /// Written: `set` is the sub-unit's replica set now.
    case replaced
    /// The stored epoch was no longer the expected one; nothing written.
    case conflict
    /// The store could not be reached (or the outcome is unknown): reload and look.
    case unavailable
}
