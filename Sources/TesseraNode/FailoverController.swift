import AdminAPI
import ClusterModel
import DistributedLUN
import Logging
import MetadataStore
import Synchronization

/// Fails dead members over and brings returning ones back (ARCHITECTURE.md
/// "Failover"), on every heartbeat:
///
/// - Judges every member from its lease renewals (``MemberLiveness``). A
///   member whose lease must have lapsed is **dead**: this node fences it and
///   rewrites every replica set it is in, all in one store transaction
///   conditional on its renewal count (``FailoverPlan``): an in-sync
///   secondary is promoted where it was primary, its replicas become stale,
///   each set's epoch goes up by one. Of several survivors deciding at once
///   one transaction wins; the others find the member fenced.
/// - Reports dead and fenced members' port groups unavailable.
/// - As primary, resyncs stale replicas on members that are alive again.
final class FailoverController: Sendable {
    private let cluster: ClusterNode
    private let data: DataPlane
    private let portGroups: PortGroupStates
    private let logger: Logger
    private let liveness: Mutex<MemberLiveness>
    private let resyncing = Mutex(false)
    /// Heartbeat readings, handed over without making the heartbeat wait.
    private let readings: AsyncStream<ClusterNode.LeaseObservation>
    private let feed: AsyncStream<ClusterNode.LeaseObservation>.Continuation
    private let consumer = Mutex<Task<Void, Never>?>(nil)

    init(cluster: ClusterNode, data: DataPlane, portGroups: PortGroupStates, logger: Logger) {
        self.cluster = cluster
        self.data = data
        self.portGroups = portGroups
        self.logger = logger
        self.liveness = Mutex(
            MemberLiveness(lease: cluster.lease.duration, readInterval: max(cluster.lease.duration / 4, .milliseconds(50))))
        (readings, feed) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(8))
    }

    /// Stops taking readings.
    func stop() {
        feed.finish()
        consumer.withLock { $0?.cancel() }
    }

    /// Wires the controller to the node: heartbeat readings, the rejoin after
    /// a fence, the lease gate of the primaries, and resync log lines.
    func start(isAlone: @escaping @Sendable () -> Bool) {
        let lease = cluster.lease
        data.replicaNode.serveOnlyWhile { lease.mayChangeContext() || isAlone() }
        data.replicaNode.onResyncEvent { [logger] event in Self.log(event, logger) }
        cluster.observeLeases { [feed] observation in feed.yield(observation) }
        consumer.withLock {
            $0 = Task { [self] in
                for await observation in readings { await observe(observation) }
            }
        }
        cluster.onRejoin { [data] in await data.reloadMaps() }
    }

    /// One heartbeat's reading.
    func observe(_ observation: ClusterNode.LeaseObservation) async {
        let me = cluster.id
        // The members as the store listed them lately (refreshed every 2 s).
        let others = Set(data.members.map(\.nodeID)).subtracting([me])
        let (changes, absent, beats) = liveness.withLock { liveness in
            let changes = liveness.observe(observation.beats, members: others, at: observation.at)
            return (changes, liveness.absent, others.compactMap { node in liveness.beat(of: node).map { (node, $0) } })
        }
        for (node, verdict) in changes.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            switch verdict {
            case .alive: logger.notice("member is alive", metadata: ["member": "\(node)"])
            case .suspected: logger.info("member has not renewed its lease for a while", metadata: ["member": "\(node)"])
            case .dead: logger.warning("member's lease has lapsed: failing it over", metadata: ["member": "\(node)"])
            case .fenced: logger.notice("member is fenced (failed over)", metadata: ["member": "\(node)"])
            }
        }
        data.absentMembers.withLock { $0 = absent }
        await portGroups.update { $0.absent = absent }
        guard cluster.lease.mayChangeContext() else { return }
        let byNode = Dictionary(beats, uniquingKeysWith: { first, _ in first })
        for node in absent.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard let beat = byNode[node], !beat.fenced else { continue }
            await failOver(node, beats: beat.beats, absent: absent)
        }
        // Only members renewing their leases now: not a suspected one, which may be dying.
        let alive = liveness.withLock { liveness in Set(others.filter { liveness.verdict(of: $0) == .alive }) }
        startResyncs(isLive: { alive.contains($0) })
    }

    /// Fences `dead` and rewrites its replica sets in one transaction.
    private func failOver(_ dead: NodeID, beats: UInt64, absent: Set<NodeID>) async {
        let started = ContinuousClock.now
        do {
            let outcome: (promoted: Int, staled: Int)? = try await cluster.client.transaction { tx in
                let repository = StoreRepository(tx)
                guard try await repository.fence(dead, atBeats: beats) else { return nil }
                var promoted = 0
                var staled = 0
                for (key, _) in try await repository.distributedLUNs() {
                    guard let map = try await repository.subUnitMap(key) else { continue }
                    for change in FailoverPlan.afterFailure(of: dead, in: map, absent: absent) {
                        guard
                            try await repository.replaceReplicaSet(
                                key, index: change.index, expecting: change.expecting, with: change.set)
                        else { continue }
                        if map.subUnits[Int(change.index)].primary == dead { promoted += 1 } else { staled += 1 }
                    }
                }
                return (promoted, staled)
            }
            await data.reloadMaps()
            guard let outcome else {
                logger.info("member was failed over by another node", metadata: ["member": "\(dead)"])
                return
            }
            logger.warning(
                "failed over a dead member",
                metadata: [
                    "member": "\(dead)", "promoted": "\(outcome.promoted)", "marked-stale": "\(outcome.staled)",
                    "ms": "\((ContinuousClock.now - started).components.seconds * 1000 + (ContinuousClock.now - started).components.attoseconds / 1_000_000_000_000_000)",
                ])
        } catch {
            await data.reloadMaps()
            logger.warning("failover of a dead member did not commit", metadata: ["member": "\(dead)", "error": "\(error)"])
        }
    }

    /// Starts one round of resyncs in the background unless one is running.
    private func startResyncs(isLive: @escaping @Sendable (NodeID) -> Bool) {
        guard resyncing.withLock({ running in
            defer { running = true }
            return !running
        }) else { return }
        Task { [self] in
            await data.reloadMaps()
            await data.resyncReturned(isLive: isLive)
            resyncing.withLock { $0 = false }
        }
    }

    /// This node's verdict on `node`, from the renewals it read last.
    func verdict(of node: NodeID) -> MemberLiveness.Verdict { liveness.withLock { $0.verdict(of: node) } }

    /// The replication part of the health report.
    var health: ReplicationHealth {
        var health = ReplicationHealth()
        for map in data.maps {
            for set in map.subUnits {
                for replica in set.replicas {
                    switch replica.state {
                    case .inSync: health.inSync += 1
                    case .stale: health.stale += 1
                    case .resyncing: health.resyncing += 1
                    }
                }
            }
        }
        health.deadNodes = liveness.withLock { $0.absent }.map(\.rawValue).sorted()
        let book = data.resyncStatus
        let now = ContinuousClock.now
        health.resyncs = book.running.values.sorted { "\($0.subUnit)" < "\($1.subUnit)" }.map { p in
            ReplicationHealth.Resync(
                subUnit: "\(p.subUnit)", node: p.node.rawValue, percent: p.percent, bytesDone: p.bytesDone,
                bytesTotal: p.bytesTotal, bytesPerSecond: UInt64(p.rate(at: now)))
        }
        health.resyncBytesTotal = book.bytesCopied
        health.resyncsFinished = book.finished
        return health
    }

    private static func log(_ event: ResyncEvent, _ logger: Logger) {
        let now = ContinuousClock.now
        func fields(_ p: ResyncProgress) -> Logger.Metadata {
            [
                "sub-unit": "\(p.subUnit)", "replica": "\(p.node)", "percent": "\(Int(p.percent))",
                "copied-bytes": "\(p.bytesDone)", "total-bytes": "\(p.bytesTotal)",
                "rate-MiB/s": "\((p.rate(at: now) / 1_048_576 * 10).rounded() / 10)", "full": "\(p.full)",
            ]
        }
        switch event {
        case .markedStale(let subUnit, let nodes, let epoch):
            logger.warning(
                "a secondary missed a write: marked stale before acknowledging",
                metadata: ["sub-unit": "\(subUnit)", "replicas": "\(nodes.map(\.rawValue))", "epoch": "\(epoch)"])
        case .started(let p): logger.notice("resync started", metadata: fields(p))
        case .progressed(let p): logger.info("resync progress", metadata: fields(p))
        case .finished(let p): logger.notice("resync finished: replica in sync", metadata: fields(p))
        case .failed(let p, let reason):
            var metadata = fields(p)
            metadata["reason"] = "\(reason)"
            logger.warning("resync stopped; it starts again", metadata: metadata)
        }
    }
}
