/// How replica sets change when a node fails or returns, as pure functions
/// of the set (ARCHITECTURE.md "Failover"). Every change raises the epoch by
/// one and is written with a compare-and-set on the old epoch, so of two
/// nodes deciding at once only one wins, and every request still carrying
/// the old epoch is refused by the replicas.
public enum FailoverPlan {
    /// One sub-unit's new replica set, to be written if the stored epoch is still `expecting`.
    public struct Change: Hashable, Sendable {
        public var index: UInt32
        public var expecting: Epoch
        public var set: ReplicaSet

        public init(index: UInt32, expecting: Epoch, set: ReplicaSet) {
            self.index = index
            self.expecting = expecting
            self.set = set
        }
    }

    /// The set after `dead` failed, or nil when it holds nothing of it to change.
    ///
    /// - Its primary: the first in-sync secondary on a node not in `absent`
    ///   becomes primary. A stale or resyncing replica is never promoted (it
    ///   may lack acknowledged writes); with no in-sync one the set keeps its
    ///   dead primary, and the sub-unit is unavailable until that node returns.
    /// - Any of its replicas: stale, moved to the end (it missed, or may miss,
    ///   writes from now on; a returning node is resynced before it counts).
    public static func afterFailure(of dead: NodeID, in set: ReplicaSet, absent: Set<NodeID>) -> ReplicaSet? {
        guard let at = set.replicas.firstIndex(where: { $0.node == dead }) else { return nil }
        var replicas = set.replicas
        if at == 0 {
            guard
                let heir = replicas.indices.dropFirst().first(where: {
                    replicas[$0].state == .inSync && !absent.contains(replicas[$0].node) && replicas[$0].node != dead
                })
            else {
                return nil
            }
            let promoted = replicas.remove(at: heir)
            replicas.insert(promoted, at: 0)
            var old = replicas.remove(at: 1)
            old.state = .stale
            replicas.append(old)
        } else {
            guard replicas[at].state != .stale else { return nil }
            var old = replicas.remove(at: at)
            old.state = .stale
            replicas.append(old)
        }
        return ReplicaSet(epoch: set.epoch.next, replicas: replicas)
    }

    /// Every change of `map` after `dead` failed.
    public static func afterFailure(of dead: NodeID, in map: SubUnitMap, absent: Set<NodeID>) -> [Change] {
        map.subUnits.enumerated().compactMap { index, set in
            afterFailure(of: dead, in: set, absent: absent).map {
                Change(index: UInt32(index), expecting: set.epoch, set: $0)
            }
        }
    }

    /// The set with the replicas of `nodes` in `state` (epoch + 1), or nil
    /// when none of them changes: not held, already in that state, or the
    /// primary (a primary is in sync by definition; it is replaced, not demoted).
    public static func setting(_ nodes: some Sequence<NodeID>, to state: ReplicaState, in set: ReplicaSet) -> ReplicaSet? {
        var next = set
        var changed = false
        for node in nodes {
            guard let at = next.replicas.firstIndex(where: { $0.node == node }), at > 0, next.replicas[at].state != state
            else { continue }
            next.replicas[at].state = state
            changed = true
        }
        guard changed else { return nil }
        next.epoch = set.epoch.next
        return next
    }

    /// The set repaired after the members in `gone` left for good, or nil when
    /// nothing changes: their replicas are dropped (never the primary: a set
    /// whose primary is gone waits for it, or for a failover that found an
    /// heir), and replicas are added on `candidates` until the set has
    /// `factor` again, each new one stale (a full copy from the primary makes
    /// it in sync). A candidate already in the set is skipped; of the rest,
    /// the one holding the fewest replicas in `load` is taken first (the
    /// lowest id on a tie). Epoch + 1.
    public static func repaired(
        _ set: ReplicaSet, gone: Set<NodeID>, candidates: Set<NodeID>, load: [NodeID: Int], factor: Int
    ) -> ReplicaSet? {
        guard !gone.contains(set.primary) else { return nil }
        var replicas = set.replicas.filter { !gone.contains($0.node) }
        var changed = replicas.count != set.replicas.count
        var free = candidates.subtracting(gone).subtracting(replicas.map(\.node))
        while replicas.count < factor,
            let next = free.min(by: { (load[$0] ?? 0, $0.rawValue) < (load[$1] ?? 0, $1.rawValue) })
        {
            free.remove(next)
            replicas.append(Replica(node: next, state: .stale))
            changed = true
        }
        guard changed else { return nil }
        return ReplicaSet(epoch: set.epoch.next, replicas: replicas)
    }

    /// Every change of `map` that repairs its sets after the members in
    /// `gone` left for good, spreading the new replicas over `candidates`
    /// by the replicas each already holds in the map.
    public static func repaired(_ map: SubUnitMap, gone: Set<NodeID>, candidates: Set<NodeID>) -> [Change] {
        var load: [NodeID: Int] = [:]
        for set in map.subUnits {
            for replica in set.replicas where !gone.contains(replica.node) { load[replica.node, default: 0] += 1 }
        }
        var changes: [Change] = []
        for (index, set) in map.subUnits.enumerated() {
            guard
                let next = repaired(
                    set, gone: gone, candidates: candidates, load: load, factor: map.replicationFactor)
            else { continue }
            for replica in next.replicas where !set.replicas.contains(where: { $0.node == replica.node }) {
                load[replica.node, default: 0] += 1
            }
            changes.append(Change(index: UInt32(index), expecting: set.epoch, set: next))
        }
        return changes
    }

    /// The set with its primary handed back to the replica placement ranks
    /// first among the in-sync ones on nodes `isLive` says renew their
    /// leases (``Placement``'s order for the sub-unit), or nil when that is
    /// the primary already. After failovers the primaries gather on the
    /// survivors; this spreads them again once the others are back in sync.
    /// The old primary stays an in-sync secondary (it holds every
    /// acknowledged write); the caller hands over with no write in flight.
    public static func failedBack(_ set: ReplicaSet, of subUnit: SubUnitID, isLive: (NodeID) -> Bool) -> ReplicaSet? {
        let eligible = set.replicas.enumerated().filter { $0.offset == 0 || ($0.element.state == .inSync && isLive($0.element.node)) }
        guard
            let best = eligible.max(by: {
                let (a, b) = (Placement.score(subUnit, .init(node: $0.element.node)), Placement.score(subUnit, .init(node: $1.element.node)))
                return a != b ? a < b : $0.element.node > $1.element.node
            }), best.offset != 0
        else { return nil }
        var replicas = set.replicas
        let heir = replicas.remove(at: best.offset)
        replicas.insert(heir, at: 0)
        return ReplicaSet(epoch: set.epoch.next, replicas: replicas)
    }
}
