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
}
