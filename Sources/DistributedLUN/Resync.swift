import ClusterModel

/// One resync as its primary sees it.
public struct ResyncProgress: Hashable, Sendable {
    /// The sub-unit.
    public var subUnit: SubUnitID
    /// The replica being brought back.
    public var node: NodeID
    /// Bytes to copy (grows when writes the replica misses arrive meanwhile).
    public var bytesTotal: UInt64
    /// Bytes copied.
    public var bytesDone: UInt64
    /// Whether every region is copied (no record of what the replica lacks).
    public var full: Bool
    /// When it started.
    public var startedAt: ContinuousClock.Instant

    /// Done, in percent.
    public var percent: Double { bytesTotal == 0 ? 100 : min(100, Double(bytesDone) * 100 / Double(bytesTotal)) }

    /// Bytes per second since the start, as of `now`.
    public func rate(at now: ContinuousClock.Instant) -> Double {
        let seconds = (now - startedAt).inSeconds
        return seconds > 0 ? Double(bytesDone) / seconds : 0
    }
}

/// What happens to replicas, for the log and the metrics.
public enum ResyncEvent: Sendable {
    /// A primary marked secondaries stale (they missed a write).
    case markedStale(SubUnitID, nodes: [NodeID], epoch: Epoch)
    /// A resync began: the replica takes live writes from now on.
    case started(ResyncProgress)
    /// Another tenth of it is copied.
    case progressed(ResyncProgress)
    /// The replica is in sync again (a store commit made it so).
    case finished(ResyncProgress)
    /// It stopped; it starts again later.
    case failed(ResyncProgress, reason: String)
    /// A primary handed its sub-unit back to the replica placement ranks first.
    case handedBack(SubUnitID, to: NodeID)
}

/// The resyncs one node runs, and what they copied since it started.
public struct ResyncBook: Sendable {
    /// Running ones, by sub-unit and target node.
    public var running: [Key: ResyncProgress] = [:]
    /// Bytes copied by every resync so far.
    public var bytesCopied: UInt64 = 0
    /// Resyncs finished so far.
    public var finished = 0
    /// When each resync last stopped or could not reach its replica: it is
    /// not tried again for the node's `resyncRetryPause`.
    public var lastFailure: [Key: ContinuousClock.Instant] = [:]

    /// A resync's name: which replica of which sub-unit.
    public struct Key: Hashable, Sendable {
        public var subUnit: SubUnitID
        public var node: NodeID
    }
}
