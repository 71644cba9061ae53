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
/// - As primary, carries out the replica moves planned to drain a member or
///   fill an added one (``MovePlan``), one conditional step at a time.
/// - A member failed over for longer than `replace_after` is gone for good:
///   its replicas are dropped from every set and made again on the live
///   members holding the fewest (``FailoverPlan/repaired(_:gone:candidates:)``),
///   conditional on it still being fenced; the primaries then copy them in full.
///   A planned move onto it goes to another live member in the same transaction.
final class FailoverController: Sendable {
    private let cluster: ClusterNode
    private let data: DataPlane
    private let portGroups: PortGroupStates
    private let logger: Logger
    private let liveness: Mutex<MemberLiveness>
    private let resyncing = Mutex(false)
    /// When the last round of resyncs began.
    private let lastFullRound = Mutex<ContinuousClock.Instant?>(nil)
    /// The longest time between two rounds of resyncs.
    static let fullRoundInterval = Duration.seconds(10)
    /// Heartbeat readings, handed over without making the heartbeat wait.
    private let readings: AsyncStream<ClusterNode.LeaseObservation>
    private let feed: AsyncStream<ClusterNode.LeaseObservation>.Continuation
    private let consumer = Mutex<Task<Void, Never>?>(nil)

    /// When each absent member was first seen absent.
    private let absentSince = Mutex<[NodeID: ContinuousClock.Instant]>([:])
    /// When this node last looked for members to replace.
    private let lastRepair = Mutex<ContinuousClock.Instant?>(nil)
    private let replaceAfter: Duration?
    /// `cluster.failback`: whether primaries are handed back after failovers.
    private let failback: Bool

    init(
        cluster: ClusterNode, data: DataPlane, portGroups: PortGroupStates, replaceAfter: Duration?, failback: Bool = true,
        logger: Logger
    ) {
        self.replaceAfter = replaceAfter
        self.failback = failback
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
        let goneSince = absentSince.withLock { since in
            since = since.filter { absent.contains($0.key) }
            for node in absent where since[node] == nil { since[node] = observation.at }
            return since
        }
        await portGroups.update { $0.absent = absent }
        guard cluster.lease.mayChangeContext() else { return }
        let byNode = Dictionary(beats, uniquingKeysWith: { first, _ in first })
        for node in absent.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard let beat = byNode[node], !beat.fenced else { continue }
            await failOver(node, beats: beat.beats, absent: absent)
        }
        // Only members renewing their leases now: not a suspected one, which may be dying.
        let alive = liveness.withLock { liveness in Set(others.filter { liveness.verdict(of: $0) == .alive }) }
        // A member being drained takes no new replica.
        let draining = data.nodeChanges.withLock { $0.draining }
        if let replaceAfter {
            let gone = Set(goneSince.filter { observation.at - $0.value >= replaceAfter && byNode[$0.key]?.fenced == true }.keys)
            if !gone.isEmpty { repair(after: gone, candidates: alive.union([me]).subtracting(draining), at: observation.at) }
        }
        startResyncs(isLive: { alive.contains($0) })
    }

    /// Re-makes the replicas of the members in `gone` on `candidates`, in one
    /// transaction that first checks each is still fenced (one that came
    /// back is resynced instead). At most once per ``fullRoundInterval``.
    private func repair(after gone: Set<NodeID>, candidates: Set<NodeID>, at now: ContinuousClock.Instant) {
        let due = lastRepair.withLock { last in
            guard last.map({ now - $0 >= Self.fullRoundInterval }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return }
        Task { [self] in
            do {
                let (repaired, retargeted, forgotten): (Int, Int, Int) = try await cluster.client.transaction { tx in
                    let repository = StoreRepository(tx)
                    let beats = try await repository.leaseBeats()
                    let stillGone = gone.filter { beats[$0]?.fenced ?? true }
                    guard !stillGone.isEmpty else { return (0, 0, 0) }
                    var repaired = 0
                    var maps: [LUNKey: SubUnitMap] = [:]
                    for (key, _) in try await repository.distributedLUNs() {
                        guard var map = try await repository.subUnitMap(key) else { continue }
                        for change in FailoverPlan.repaired(map, gone: stillGone, candidates: candidates)
                        where try await repository.replaceReplicaSet(
                            key, index: change.index, expecting: change.expecting, with: change.set)
                        {
                            map.subUnits[Int(change.index)] = change.set
                            repaired += 1
                        }
                        maps[key] = map
                    }
                    let (retargeted, forgotten) = try await repository.retargetMoves(
                        onto: stillGone, maps: maps, candidates: candidates)
                    return (repaired, retargeted, forgotten)
                }
                guard repaired + retargeted + forgotten > 0 else { return }
                await data.reloadMaps()
                logger.warning(
                    "members gone for good: their replicas are made again on live members",
                    metadata: [
                        "members": "\(gone.map(\.rawValue).sorted())", "sub-units": "\(repaired)",
                        "moves-retargeted": "\(retargeted)", "moves-forgotten": "\(forgotten)",
                        "replace-after": "\(replaceAfter.map { "\($0)" } ?? "off")",
                    ])
            } catch {
                logger.warning("re-replication did not commit; it is tried again", metadata: ["error": "\(error)"])
            }
        }
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
                    "ms": "\((ContinuousClock.now - started).wholeMilliseconds)",
                ])
        } catch {
            await data.reloadMaps()
            logger.warning("failover of a dead member did not commit", metadata: ["member": "\(dead)", "error": "\(error)"])
        }
    }

    /// Starts one round of resyncs in the background unless one is running:
    /// when a set this node leads has a replica out of sync on a live member
    /// in the maps it holds, and otherwise every ``fullRoundInterval`` (re-reading every
    /// map from the store), in case a change passed this node by.
    private func startResyncs(isLive: @escaping @Sendable (NodeID) -> Bool) {
        let me = cluster.id
        let now = ContinuousClock.now
        // As in the round: no primary goes back to a member being drained.
        let draining = data.nodeChanges.withLock { $0.draining }
        let mayLead: @Sendable (NodeID) -> Bool = { isLive($0) && !draining.contains($0) }
        let behind = data.maps.contains { map in
            map.subUnits.enumerated().contains { index, set in
                set.primary == me
                    && (set.replicas.contains { $0.state != .inSync && isLive($0.node) }
                        || (failback
                            && FailoverPlan.failedBack(set, of: SubUnitID(lun: map.lun, index: UInt32(index)), isLive: mayLead)
                                != nil))
            }
        }
        let due = lastFullRound.withLock { last in
            guard behind || data.leadsPlannedMove(isLive: isLive) || last.map({ now - $0 >= Self.fullRoundInterval }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return }
        guard resyncing.withLock({ running in
            defer { running = true }
            return !running
        }) else { return }
        Task { [self] in
            await data.reloadMaps()
            await data.recoverActivityLogs(logger: logger)
            let changes = await data.readNodeChanges(cluster.client)
            await data.resyncReturned(isLive: isLive)
            await data.carryOutMoves(changes, client: cluster.client, isLive: isLive, logger: logger)
            // Primaries are not handed back to a member being drained.
            let draining = changes.draining
            if failback { await data.failBack(isLive: { isLive($0) && !draining.contains($0) }) }
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
        case .handedBack(let subUnit, let node):
            logger.notice("primary handed back", metadata: ["sub-unit": "\(subUnit)", "primary": "\(node)"])
        }
    }
}
