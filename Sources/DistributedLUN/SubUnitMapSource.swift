import ClusterModel

/// Where a node reads a LUN's current sub-unit map: the metadata store in
/// the daemon, an in-memory table in tests. A replica that sees a newer epoch
/// than it knows, and a sender told its epoch is stale, reload from here.
public protocol SubUnitMapSource: Sendable {
    /// The LUN's map as the store holds it now; nil when it cannot be read.
    func loadMap(_ lun: LUNID) async -> SubUnitMap?
}
