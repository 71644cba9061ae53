/// The replicas of every distributed LUN as one node sees them: how many are
/// in sync, which members it holds dead, and the resyncs it runs as primary.
public struct ReplicationHealth: Hashable, Sendable {
    /// Replica counts over every LUN's sub-unit map as this node last read it.
    public var inSync = 0
    public var stale = 0
    public var resyncing = 0
    /// Members this node holds dead or fenced.
    public var deadNodes: [UInt64] = []
    /// The resyncs this node runs as primary.
    public var resyncs: [Resync] = []
    /// Bytes this node has copied for resyncs since it started.
    public var resyncBytesTotal: UInt64 = 0
    /// Resyncs this node finished since it started.
    public var resyncsFinished = 0

    /// One running resync.
    public struct Resync: Hashable, Sendable {
        public var subUnit: String
        public var node: UInt64
        public var percent: Double
        public var bytesDone: UInt64
        public var bytesTotal: UInt64
        public var bytesPerSecond: UInt64

        public init(subUnit: String, node: UInt64, percent: Double, bytesDone: UInt64, bytesTotal: UInt64, bytesPerSecond: UInt64)
        {
            self.subUnit = subUnit
            self.node = node
            self.percent = percent
            self.bytesDone = bytesDone
            self.bytesTotal = bytesTotal
            self.bytesPerSecond = bytesPerSecond
        }
    }

    public init() {}

    /// The JSON fields it adds to the health report.
    var jsonFields: [(String, String)] {
        let resyncs = self.resyncs.map { r in
            "{\"sub_unit\":\(JSON.string(r.subUnit)),\"node\":\(r.node),\"percent\":"
                + "\((r.percent * 10).rounded() / 10)"
                + ",\"bytes_done\":\(r.bytesDone),\"bytes_total\":\(r.bytesTotal),\"rate_bytes_per_s\":\(r.bytesPerSecond)}"
        }
        return [
            ("replicas", "{\"in_sync\":\(inSync),\"stale\":\(stale),\"resyncing\":\(resyncing)}"),
            ("dead_nodes", "[" + deadNodes.map { "\($0)" }.joined(separator: ",") + "]"),
            ("resyncs", "[" + resyncs.joined(separator: ",") + "]"),
            ("resync_bytes_total", "\(resyncBytesTotal)"),
        ]
    }

    /// The Prometheus lines it adds to the metrics.
    func metrics(node: UInt64) -> String {
        var lines = [
            "# HELP tessera_replicas Replicas of every sub-unit by state, as this node last read the maps.",
            "# TYPE tessera_replicas gauge",
            "tessera_replicas{node=\"\(node)\",state=\"in-sync\"} \(inSync)",
            "tessera_replicas{node=\"\(node)\",state=\"stale\"} \(stale)",
            "tessera_replicas{node=\"\(node)\",state=\"resyncing\"} \(resyncing)",
            "# HELP tessera_dead_nodes Members this node holds dead or fenced.",
            "# TYPE tessera_dead_nodes gauge",
            "tessera_dead_nodes{node=\"\(node)\"} \(deadNodes.count)",
            "# HELP tessera_resync_bytes_total Bytes copied by resyncs this node ran as primary.",
            "# TYPE tessera_resync_bytes_total counter",
            "tessera_resync_bytes_total{node=\"\(node)\"} \(resyncBytesTotal)",
            "# HELP tessera_resyncs_finished_total Resyncs this node finished as primary.",
            "# TYPE tessera_resyncs_finished_total counter",
            "tessera_resyncs_finished_total{node=\"\(node)\"} \(resyncsFinished)",
            "# HELP tessera_resync_bytes_remaining Bytes a running resync has left to copy.",
            "# TYPE tessera_resync_bytes_remaining gauge",
        ]
        for r in resyncs {
            lines.append(
                "tessera_resync_bytes_remaining{node=\"\(node)\",sub_unit=\"\(r.subUnit)\",target=\"\(r.node)\"} "
                    + "\(r.bytesTotal > r.bytesDone ? r.bytesTotal - r.bytesDone : 0)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
